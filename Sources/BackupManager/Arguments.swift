import BRModel
import BackupStorage
import Foundation

public struct ArgumentError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Argument construction for br, dumpling and tidb-lightning (reference 6.3.1, 6.4, 6.6, 6.7; vectors 8.9–8.11).
public enum ToolArguments {
    static let trimSlash = CharacterSet(charactersIn: "/")

    /// `path.Join` then `path.Clean`, without a leading `/` added.
    static func join(_ parts: String...) -> String {
        let joined = parts.filter { !$0.isEmpty }.joined(separator: "/")
        let absolute = joined.hasPrefix("/")
        var out: [Substring] = []
        for part in joined.split(separator: "/") where part != "." {
            if part == "..", !out.isEmpty, out.last != ".." { out.removeLast() } else { out.append(part) }
        }
        return (absolute ? "/" : "") + out.joined(separator: "/")
    }

    static func normalised(_ bucket: String?, _ prefix: String?) -> (String, String) {
        StorageFactory.normalise(bucket: bucket ?? "", prefix: prefix ?? "")
    }

    /// `status.backupPath` (reference 6.4.2).
    public static func storagePath(_ storage: StorageProvider) throws -> String {
        switch storage.type {
        case .s3: return "s3://" + join(storage.s3!.bucket ?? "", storage.s3!.prefix ?? "")
        case .gcs: return "gcs://" + join(storage.gcs!.bucket ?? "", storage.gcs!.prefix ?? "") + "/"
        case .azblob: return "azure://" + join(storage.azblob!.container ?? "", storage.azblob!.prefix ?? "") + "/"
        case .local: return "local://" + join(storage.local!.volumeMount.mountPath, storage.local!.prefix ?? "")
        case .unknown: throw ArgumentError("storage unknown not supported yet")
        }
    }

    static func queryEscape(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: " "): out += "+"
            default: out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    /// BR's storage flags (reference 6.4.1). `flag` other than `storage` gives the single-token form.
    public static func storageArgs(_ storage: StorageProvider, flag: String = "storage") throws -> [String] {
        let plain = flag.isEmpty || flag == "storage"
        switch storage.type {
        case .s3:
            let s3 = storage.s3!
            let (bucket, prefix) = normalised(s3.bucket, s3.prefix)
            var url = "s3://" + join(bucket, prefix)
            guard plain else { return ["--\(flag)=\(url)"] }
            if let force = s3.forcePathStyle { url += "?force-path-style=\(force)" }
            var args = ["--storage=\(url)"]
            for (name, value) in [("region", s3.region), ("provider", s3.provider.rawValue), ("endpoint", s3.endpoint), ("sse", s3.sse),
                                  ("acl", s3.acl), ("storage-class", s3.storageClass)] {
                if let value, !value.isEmpty { args.append("--s3.\(name)=\(value)") }
            }
            return args
        case .gcs:
            let gcs = storage.gcs!
            let (bucket, prefix) = normalised(gcs.bucket, gcs.prefix)
            let url = "gcs://" + join(bucket, prefix) + "/"
            guard plain else { return ["--\(flag)=\(url)"] }
            var args = ["--storage=\(url)"]
            if let c = gcs.storageClass, !c.isEmpty { args.append("--gcs.storage-class=\(c)") }
            if let acl = gcs.objectAcl, !acl.isEmpty { args.append("--gcs.predefined-acl=\(acl)") }
            return args
        case .azblob:
            let az = storage.azblob!
            let (container, prefix) = normalised(az.container, az.prefix)
            var url = "azure://" + join(container, prefix) + "/"
            var query: [(String, String)] = []
            if let a = az.storageAccount, !a.isEmpty { query.append(("account-name", a)) }
            if let s = az.sasToken, !s.isEmpty { query.append(("sas-token", s)) }
            if !query.isEmpty { url += "?" + query.sorted { $0.0 < $1.0 }.map { "\($0.0)=\(queryEscape($0.1))" }.joined(separator: "&") }
            guard plain else { return ["--\(flag)=\(url)"] }
            var args = ["--storage=\(url)"]
            if let tier = az.accessTier, !tier.isEmpty { args.append("--azblob.access-tier=\(tier)") }
            return args
        case .local:
            let local = storage.local!
            return ["--\(plain ? "storage" : flag)=local://" + join(local.volumeMount.mountPath, local.prefix ?? "")]
        case .unknown:
            throw ArgumentError("storage unknown not supported yet")
        }
    }

    /// The table filter part `F`.
    static func filterArgs(tableFilter: [String]?, type: BackupType?, br: BRConfig) -> [String] {
        if let filters = tableFilter, !filters.isEmpty { return filters.flatMap { ["--filter", $0] } }
        var args: [String] = []
        if type == .table {
            if let t = br.table, !t.isEmpty { args.append("--table=\(t)") }
            if let d = br.db, !d.isEmpty { args.append("--db=\(d)") }
        } else if type == .db {
            if let d = br.db, !d.isEmpty { args.append("--db=\(d)") }
        }
        return args
    }

    static func globalArgs(_ br: BRConfig) -> [String] {
        var args: [String] = []
        if let v = br.logLevel, !v.isEmpty { args.append("--log-level=\(v)") }
        if let v = br.statusAddr, !v.isEmpty { args.append("--status-addr=\(v)") }
        if let v = br.sendCredToTikv { args.append("--send-credentials-to-tikv=\(v)") }
        return args
    }

    /// `P`: the PD address and, with cluster TLS, the client certificate paths.
    public static func pdArgs(pd: String, clusterTLS: Bool) -> [String] {
        var args = ["--pd=\(pd)"]
        if clusterTLS {
            args += ["--ca=/var/lib/cluster-client-tls/ca.crt", "--cert=/var/lib/cluster-client-tls/tls.crt", "--key=/var/lib/cluster-client-tls/tls.key"]
        }
        return args
    }

    /// `<cluster>-pd.<clusterNamespace|namespace>:2379`.
    public static func defaultPD(br: BRConfig, namespace: String) -> String {
        let ns = (br.clusterNamespace ?? "").isEmpty ? namespace : br.clusterNamespace!
        return "\(br.cluster)-pd.\(ns):2379"
    }

    /// `br backup …` for a snapshot backup.
    public static func brBackup(_ backup: Backup, pd: String, clusterTLS: Bool) throws -> [String] {
        guard let br = backup.spec.br else { throw ArgumentError("no br config in \(backup.namespace)/\(backup.name)") }
        var args = ["backup", backup.spec.effectiveBackupType.rawValue]
        if let ts = backup.spec.commitTs, !ts.isEmpty { args.append("--backupts=\(ts)") }
        args += pdArgs(pd: pd, clusterTLS: clusterTLS)
        args += globalArgs(br)
        args += try storageArgs(backup.spec.storage)
        args += filterArgs(tableFilter: backup.spec.tableFilter, type: backup.spec.backupType, br: br)
        if let v = br.concurrency { args.append("--concurrency=\(v)") }
        if let v = br.rateLimit { args.append("--ratelimit=\(v)") }
        if let v = br.timeAgo, !v.isEmpty { args.append("--timeago=\(v)") }
        if let v = br.checksum { args.append("--checksum=\(v)") }
        if let v = br.checkRequirements { args.append("--check-requirements=\(v)") }
        args += br.options ?? []
        return args
    }

    /// `br restore …` for snapshot and PiTR restores.
    public static func brRestore(_ restore: Restore, pd: String, clusterTLS: Bool, pitrRestoredTs: String = "0") throws -> [String] {
        guard let br = restore.spec.br else { throw ArgumentError("no br config in \(restore.namespace)/\(restore.name)") }
        let mode = restore.spec.effectiveRestoreMode
        let type = mode == .pitr ? "point" : restore.spec.effectiveBackupType.rawValue
        var args = ["restore", type]
        args += pdArgs(pd: pd, clusterTLS: clusterTLS)
        args += globalArgs(br)
        args += try storageArgs(restore.spec.storage)
        args += filterArgs(tableFilter: restore.spec.tableFilter, type: restore.spec.backupType, br: br)
        if let v = br.concurrency { args.append("--concurrency=\(v)") }
        if let v = br.checksum { args.append("--checksum=\(v)") }
        if let v = br.checkRequirements { args.append("--check-requirements=\(v)") }
        if let v = br.rateLimit { args.append("--ratelimit=\(v)") }
        if let v = br.onLine { args.append("--online=\(v)") }
        args += br.options ?? []
        if mode == .pitr {
            args.append("--restored-ts=\(pitrRestoredTs)")
            if restore.spec.pitrFullBackupStorageProvider.type != .unknown {
                args += try storageArgs(restore.spec.pitrFullBackupStorageProvider, flag: "full-backup-storage")
            } else if let start = restore.spec.logRestoreStartTs, !start.isEmpty {
                args.append("--start-ts=\(start)")
            } else {
                throw ArgumentError("error: Either pitrFullBackupStorageProvider or logRestoreStartTs option needs to be passed in pitr mode")
            }
        }
        return args
    }

    static let defaultDumplingFilters = ["--filter", "*.*", "--filter",
                                         "!/^(mysql|test|INFORMATION_SCHEMA|PERFORMANCE_SCHEMA|METRICS_SCHEMA|INSPECTION_SCHEMA)$/.*"]

    /// Dumpling's filter and option part (reference 8.11).
    public static func dumplingOptions(_ backup: Backup) -> [String] {
        var args: [String]
        if let f = backup.spec.tableFilter, !f.isEmpty {
            args = f.flatMap { ["--filter", $0] }
        } else if let f = backup.spec.dumpling?.tableFilter, !f.isEmpty {
            args = f.flatMap { ["--filter", $0] }
        } else {
            args = defaultDumplingFilters
        }
        if let o = backup.spec.dumpling?.options, !o.isEmpty { args += o } else { args += ["--threads=16", "--rows=10000"] }
        return args
    }
}

extension ToolArguments {
    /// `br log start|stop|pause|resume|truncate …` (reference 6.3.1), for `plan`.
    public static func brLog(_ backup: Backup, subcommand: String, pd: String, clusterTLS: Bool, commitTs: String? = nil) throws -> [String] {
        guard let br = backup.spec.br else { throw ArgumentError("no br config in \(backup.namespace)/\(backup.name)") }
        var args: [String]
        switch subcommand {
        case "log-start":
            args = ["log", "start", "--task-name=\(backup.name)"]
            if let ts = commitTs ?? backup.spec.commitTs, !ts.isEmpty, ts != "0" { args.append("--start-ts=\(ts)") }
        case "log-stop", "log-pause", "log-resume":
            args = ["log", String(subcommand.dropFirst(4)), "--task-name=\(backup.name)"]
        case "log-truncate":
            guard let until = backup.spec.logTruncateUntil, !until.isEmpty, until != "0" else {
                throw ArgumentError("log backup truncate until \(backup.spec.logTruncateUntil ?? "") is invalid")
            }
            args = ["log", "truncate", "--until=\(until)"]
        default:
            throw ArgumentError("log backup \(backup.namespace)/\(backup.name) unknown log subcommand \(subcommand)")
        }
        args += pdArgs(pd: pd, clusterTLS: clusterTLS) + globalArgs(br) + (try storageArgs(backup.spec.storage))
        args += filterArgs(tableFilter: backup.spec.tableFilter, type: backup.spec.backupType, br: br)
        if let v = br.concurrency { args.append("--concurrency=\(v)") }
        if let v = br.rateLimit { args.append("--ratelimit=\(v)") }
        if let v = br.timeAgo, !v.isEmpty { args.append("--timeago=\(v)") }
        if let v = br.checksum { args.append("--checksum=\(v)") }
        if let v = br.checkRequirements { args.append("--check-requirements=\(v)") }
        return args + (br.options ?? [])
    }
}

extension ToolArguments {
    /// TLS flags for Dumpling and Lightning talking to TiDB (reference 6.7): the CA unless
    /// `--skipClientCA`, the client pair, from the mounted client-TLS secret.
    static func tidbTLSArgs(clientTLS: Bool, skipClientCA: Bool, directory: String = "/var/lib/tidb-client-tls") -> [String] {
        guard clientTLS else { return [] }
        return (skipClientCA ? [] : ["--ca=\(directory)/ca.crt"]) + ["--cert=\(directory)/tls.crt", "--key=\(directory)/tls.key"]
    }

    /// `dumpling …` for an export (reference 6.7): output, connection, filters and options, TLS.
    /// Dumpling takes the password only as a flag, so it is in Dumpling's own argv; every log line
    /// and plan shows it as `<redacted>`.
    public static func dumplingExport(_ backup: Backup, output: String, endpoint: TiDBEndpoint, clientTLS: Bool, skipClientCA: Bool) -> [String] {
        ["--output=\(output)", "--host=\(endpoint.host)", "--port=\(endpoint.port)", "--user=\(endpoint.user)", "--password=\(endpoint.password)"]
            + dumplingOptions(backup) + tidbTLSArgs(clientTLS: clientTLS, skipClientCA: skipClientCA)
    }

    /// `tidb-lightning …` for an import (reference 6.7), with the password moved out of argv into the
    /// configuration file `configFile` (Lightning reads `[tidb] password` from `--config`).
    public static func lightningImport(_ restore: Restore, dataDirectory: String, endpoint: TiDBEndpoint, configFile: String,
                                       clientTLS: Bool, skipClientCA: Bool) -> [String] {
        var args = ["--status-addr=0.0.0.0:8289", "--backend=tidb", "--server-mode=false", "--log-file=-", "--config=\(configFile)",
                    "--tidb-user=\(endpoint.user)", "--tidb-host=\(endpoint.host)", "--d=\(dataDirectory)", "--tidb-port=\(endpoint.port)"]
        for f in restore.spec.tableFilter ?? [] { args += ["-f", f] }
        return args + tidbTLSArgs(clientTLS: clientTLS, skipClientCA: skipClientCA)
    }

    /// Checkpoints next to the data rather than in Lightning's default `/tmp` file, which every job on
    /// one machine would share.
    public static func lightningCheckpoint(dataDirectory: String) -> String {
        "[checkpoint]\nenable = true\ndriver = \"file\"\ndsn = \(TOMLText.quoted(dataDirectory + "/" + LightningLayout.checkpointFile))\n"
    }

    /// The Lightning configuration that carries the password: TOML, one basic string.
    public static func lightningConfig(password: String) -> String {
        "[tidb]\npassword = \(TOMLText.quoted(password))\n"
    }
}

extension ToolArguments {
    /// Where TiDB Operator's pods keep BR's volume-snapshot files (the `br-bin` volume).
    public static let brBinDirectory = "/var/lib/br-bin"

    /// Where BR's volume-snapshot files go: `/var/lib/br-bin` in a pod (and in a dry run, which shows
    /// what runs there), else the job's working directory (a standalone job has its own).
    static func brFileDirectory(dryRun: Bool) -> String {
        if dryRun || FileManager.default.isWritableFile(atPath: brBinDirectory) { return brBinDirectory }
        return FileManager.default.currentDirectoryPath
    }

    /// `br operator pause-gc-and-schedulers P`: the init Job of a volume-snapshot backup (reference 6.3.1,
    /// 7.2). Only the PD and TLS flags, as TiDB Operator passes them.
    public static func brPauseGCAndSchedulers(_ backup: Backup, pd: String, clusterTLS: Bool) throws -> [String] {
        guard backup.spec.br != nil else { throw ArgumentError("no br config in \(backup.namespace)/\(backup.name)") }
        return ["operator", "pause-gc-and-schedulers"] + pdArgs(pd: pd, clusterTLS: clusterTLS)
    }

    /// `br backup <type|full> --type=aws-ebs --volume-file=F --operator-paused-gc-and-scheduler=true P G S F T_b`
    /// over the cluster metadata file, GC and schedulers being held by the init Job (reference 6.3.1).
    public static func brVolumeBackup(_ backup: Backup, pd: String, clusterTLS: Bool, volumeFile: String) throws -> [String] {
        var args = try brBackup(backup, pd: pd, clusterTLS: clusterTLS)
        // brBackup begins `backup <type>` and may carry `--backupts`, which a volume snapshot has no use for.
        args.removeAll { $0.hasPrefix("--backupts=") }
        args.insert(contentsOf: ["--type=aws-ebs", "--volume-file=\(volumeFile)", "--operator-paused-gc-and-scheduler=true"], at: 2)
        return args
    }

    /// `br restore <type|full> P G S F T_r --type=aws-ebs`, the EBS flags after the user's options as TiDB
    /// Operator puts them (reference 6.5): with `outputFile`, the prepare step (`--prepare --output-file=…
    /// --target-az=<may be empty> --use-fsr=true|false`: volumes from snapshots, their ids written to the
    /// file); without, the data step.
    public static func brVolumeRestore(_ restore: Restore, pd: String, clusterTLS: Bool, outputFile: String?, targetAZ: String?,
                                       useFSR: Bool) throws -> [String] {
        var args = try brRestore(restore, pd: pd, clusterTLS: clusterTLS)
        args.append("--type=aws-ebs")
        if let outputFile {
            args += ["--prepare", "--output-file=\(outputFile)", "--target-az=\(targetAZ ?? "")", "--use-fsr=\(useFSR)"]
        }
        return args
    }
}
