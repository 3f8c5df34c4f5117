import KubeModel

/// `Restore.spec.lightning`: a TiDB Lightning import job with everything the `tidb-lightning` Helm
/// chart offers (seed 003), as part of a Restore. Optional and additive: a Restore without it keeps
/// TiDB Operator's meaning (BR, or Lightning on a Dumpling archive named by the storage path).
public struct LightningSpec: Codable, Hashable, Sendable, SchemaAnnotated {
    /// The target TidbCluster: PD for the `local` backend, and the names of its TLS Secrets.
    public var cluster: String?
    /// The TidbCluster's namespace; the Restore's when empty.
    public var clusterNamespace: String?
    /// `tidb` (SQL through TiDB; the default) or `local` (sorted KV written straight to TiKV; needs
    /// `sortedKV`). The chart's `importer` backend was removed from TiDB in 5.3 and is refused.
    public var backend: LightningBackend?
    /// The volume where the `local` backend sorts key-value pairs before ingesting them.
    public var sortedKV: LightningVolume?
    /// Checkpoints, kept in the data directory so that a new Job resumes where the last one stopped.
    public var checkpoint: LightningCheckpoint?
    /// `true` (the default): a failed import ends the Job. `false`: the pod stays up after a failure
    /// (as the chart's does) so that its data and checkpoints can be inspected with `kubectl exec`.
    public var failFast: Bool?
    /// Where the data to import comes from: exactly one of `local`, `remote`, `adhoc`.
    public var dataSource: LightningDataSource
    /// TLS between Lightning and PD / TiKV (the cluster's `spec.tlsCluster.enabled`).
    public var tlsCluster: LightningTLS?
    /// TLS between Lightning and TiDB (the cluster's `spec.tidb.tlsClient.enabled`).
    public var tlsClient: LightningTLS?
    /// Extra Lightning configuration (TOML), merged under the settings the job generates. It may not
    /// hold the TiDB password (that comes from `spec.to.secretName`).
    public var config: String?

    public init(dataSource: LightningDataSource) {
        self.dataSource = dataSource
    }

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        schema.modify(["backend"]) { $0.defaultValue = "tidb" }
        schema.modify(["failFast"]) { $0.defaultValue = true }
    }

    public var effectiveBackend: LightningBackend { backend ?? .tidb }
    public var effectiveFailFast: Bool { failFast ?? true }
    public var checkpointEnabled: Bool { checkpoint?.enabled ?? true }
}

public struct LightningBackend: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let tidb: Self = "tidb"
    public static let local: Self = "local"
    public static let knownValues: [Self] = [.tidb, .local]
}

/// A volume the operator creates as a PersistentVolumeClaim (the chart's `sortedKV` and
/// `dataSource.remote` sizes). Standalone gives it a directory under its data directory.
public struct LightningVolume: Codable, Hashable, Sendable {
    public var storageClassName: String?
    /// A Kubernetes quantity (`100Gi`).
    public var storage: String?

    public init(storageClassName: String? = nil, storage: String? = nil) {
        self.storageClassName = storageClassName
        self.storage = storage
    }
}

public struct LightningCheckpoint: Codable, Hashable, Sendable, SchemaAnnotated {
    /// On by default.
    public var enabled: Bool?
    /// Keep the checkpoint file after a successful import (Lightning's `keep-after-success`).
    public var keepAfterSuccess: Bool?

    public init(enabled: Bool? = nil, keepAfterSuccess: Bool? = nil) {
        self.enabled = enabled
        self.keepAfterSuccess = keepAfterSuccess
    }

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        schema.modify(["enabled"]) { $0.defaultValue = true }
    }
}

public struct LightningDataSource: Codable, Hashable, Sendable {
    public var local: LightningLocalSource?
    public var remote: LightningRemoteSource?
    public var adhoc: LightningAdhocSource?

    public init(local: LightningLocalSource? = nil, remote: LightningRemoteSource? = nil, adhoc: LightningAdhocSource? = nil) {
        self.local = local
        self.remote = remote
        self.adhoc = adhoc
    }
}

/// Data in a directory of one node (standalone: of this machine).
public struct LightningLocalSource: Codable, Hashable, Sendable {
    /// The node holding the directory; the pod is pinned to it. Ignored standalone.
    public var nodeName: String?
    public var hostPath: String

    public init(nodeName: String? = nil, hostPath: String) {
        self.nodeName = nodeName
        self.hostPath = hostPath
    }
}

/// Data on remote storage, fetched into a volume that outlives the Job.
public struct LightningRemoteSource: Codable, Hashable, Sendable {
    /// A tarball (`.tar.gz`, `.tgz`, `.tar`): `s3://bucket/key`, `gcs://bucket/key`,
    /// `azure://container/key`, or rclone's `remote:bucket/key` with `secretName`.
    public var path: String?
    /// A directory of data files, written like `path`.
    public var directory: String?
    /// A Secret whose `rclone.conf` key holds an rclone configuration (the chart's Secret): the section
    /// named by the path's remote gives the provider and credentials. Without it, a URL path uses the
    /// Restore's `s3` / `gcs` / `azblob` settings and credentials.
    public var secretName: String?
    public var storageClassName: String?
    /// Size of the volume the data is fetched into (default 100Gi).
    public var storage: String?
    /// Accepted for the chart's values and ignored: the data is fetched by our own storage clients.
    public var rcloneImage: String?

    public init(path: String? = nil, directory: String? = nil, secretName: String? = nil) {
        self.path = path
        self.directory = directory
        self.secretName = secretName
    }

    /// The tarball or directory location, whichever is set.
    public var location: String { (path?.isEmpty == false ? path : directory) ?? "" }
    public var isDirectory: Bool { path?.isEmpty != false }
}

/// Data already in a PersistentVolumeClaim, e.g. left by an earlier remote import.
public struct LightningAdhocSource: Codable, Hashable, Sendable {
    public var pvcName: String
    /// The data's directory in that volume: the remote tarball's name without `.tar.gz` / `.tgz`.
    public var backupName: String

    public init(pvcName: String, backupName: String) {
        self.pvcName = pvcName
        self.backupName = backupName
    }
}

public struct LightningTLS: Codable, Hashable, Sendable {
    public var enabled: Bool?
    /// The Secret with the client certificate (`tlsClient`: default `<cluster>-tidb-client-secret`;
    /// `tlsCluster`: default `<cluster>-lightning-cluster-secret`).
    public var tlsClientSecretName: String?

    public init(enabled: Bool? = nil, tlsClientSecretName: String? = nil) {
        self.enabled = enabled
        self.tlsClientSecretName = tlsClientSecretName
    }
}

/// Names and in-pod paths shared by the operator (which builds the Job) and the job binary.
public enum LightningLayout {
    /// Where the data volume (remote / adhoc PVC, local host path) is mounted.
    public static let dataMount = "/var/lib/tidb-lightning"
    /// Where the sorted-KV volume is mounted.
    public static let sortedKVMount = "/var/lib/sorted-kv"
    /// Where TLS Secrets are mounted.
    public static let clusterTLSMount = "/var/lib/lightning-cluster-tls"
    public static let clientTLSMount = "/var/lib/tidb-client-tls"
    /// Lightning's checkpoint file, in the data directory (the chart keeps it there since v1.1.10).
    public static let checkpointFile = "tidb_lightning_checkpoint.pb"
    /// A file in the data directory saying which remote source was fetched there completely.
    public static let fetchedMarker = ".tidb-backup-operator-fetched"
    /// The annotation that asks for a checkpoint recovery on a Failed Restore (see `LightningRecovery`).
    public static let recoveryAnnotation = "tidb-backup-operator.pingcap.com/lightning-recovery"
    /// The rclone configuration key of `dataSource.remote.secretName`.
    public static let rcloneConfigKey = "rclone.conf"
    /// The environment variable that carries that configuration into the job.
    public static let rcloneConfigEnv = "TIDB_BACKUP_MANAGER_RCLONE_CONFIG"
    /// The default size of the remote data volume and of the sorted-KV volume.
    public static let defaultVolumeSize = "100Gi"

    /// The name of the data directory a remote location unpacks to: the last path element without
    /// `.tar.gz` / `.tgz` / `.tar` (the chart's `backupName`).
    public static func backupName(of location: String) -> String {
        var last = location
        if let colon = last.range(of: "://") { last = String(last[colon.upperBound...]) } else if let colon = last.firstIndex(of: ":") {
            last = String(last[last.index(after: colon)...])
        }
        while last.hasSuffix("/") { last.removeLast() }
        last = String(last.split(separator: "/").last ?? "")
        for suffix in [".tar.gz", ".tgz", ".tar"] where last.hasSuffix(suffix) { return String(last.dropLast(suffix.count)) }
        return last
    }
}

extension Restore {
    /// The PVC a remote data source is fetched into; it survives the Restore so that a re-applied
    /// Restore (or an `adhoc` one naming it) resumes from its checkpoints.
    public var lightningDataPVCName: String { "\(name)-lightning-data" }
    public var lightningSortedKVPVCName: String { "\(name)-lightning-sorted-kv" }
}

/// What the annotation `LightningLayout.recoveryAnnotation` asks for on a Failed Lightning Restore:
/// a `tidb-lightning-ctl` step on the failed run's checkpoints, then the import again (it resumes).
///
/// Value: `ACTION` or `ACTION:TABLE[,TABLE…]`, tables as `db.table` or `` `db`.`table` ``, none meaning
/// every table. ACTION is one of
/// - `resume`: no ctl step (the cause was outside Lightning, e.g. a download or a full disk);
/// - `ignore-error`: `--checkpoint-error-ignore` (keep the data, clear the error; for transient errors);
/// - `destroy-error`: `--checkpoint-error-destroy` (drop what was imported of the failed tables and
///   import them again from the start);
/// - `remove`: `--checkpoint-remove` (forget the checkpoints; the import starts over).
public struct LightningRecovery: Hashable, Sendable, CustomStringConvertible {
    public enum Action: String, Sendable, CaseIterable {
        case resume, ignoreError = "ignore-error", destroyError = "destroy-error", remove
        /// The `tidb-lightning-ctl` flag, nil for `resume`.
        public var ctlFlag: String? {
            switch self {
            case .resume: nil
            case .ignoreError: "--checkpoint-error-ignore"
            case .destroyError: "--checkpoint-error-destroy"
            case .remove: "--checkpoint-remove"
            }
        }
    }

    public var action: Action
    /// Backquoted `` `db`.`table` `` names; empty means all.
    public var tables: [String]

    public var description: String { tables.isEmpty ? action.rawValue : "\(action.rawValue):\(tables.joined(separator: ","))" }

    /// The `tidb-lightning-ctl` argument lists (one per table, or one with `all`).
    public var ctlArguments: [[String]] {
        guard let flag = action.ctlFlag else { return [] }
        return (tables.isEmpty ? ["all"] : tables).map { ["\(flag)=\($0)"] }
    }

    public static func parse(_ text: String) -> Result<LightningRecovery, RemoteLocation.ParseFailure> {
        let trimmed = text.trimmedTOML
        let (head, rest) = trimmed.firstIndex(of: ":").map { (String(trimmed[..<$0]), String(trimmed[trimmed.index(after: $0)...])) } ?? (trimmed, "")
        guard let action = Action(rawValue: head) else {
            return .failure(RemoteLocation.ParseFailure("\(LightningLayout.recoveryAnnotation): unknown action \"\(head)\"; use one of "
                + Action.allCases.map(\.rawValue).joined(separator: ", ") + ", optionally followed by :db.table[,db.table]"))
        }
        var tables: [String] = []
        for item in rest.split(separator: ",").map({ String($0).trimmedTOML }) where !item.isEmpty {
            guard let name = quotedTable(item) else {
                return .failure(RemoteLocation.ParseFailure("\(LightningLayout.recoveryAnnotation): \"\(item)\" is not a table name such as db.table"))
            }
            tables.append(name)
        }
        if action == .resume && !tables.isEmpty {
            return .failure(RemoteLocation.ParseFailure("\(LightningLayout.recoveryAnnotation): resume takes no tables"))
        }
        return .success(LightningRecovery(action: action, tables: tables))
    }

    /// `db.t` or `` `db`.`t` `` → `` `db`.`t` ``.
    public static func quotedTable(_ text: String) -> String? {
        if text.hasPrefix("`") {
            let parts = text.split(separator: "`", omittingEmptySubsequences: true)
            guard parts.count == 3, parts[1] == "." else { return nil }
            return "`\(parts[0])`.`\(parts[2])`"
        }
        let parts = text.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !text.contains("`") else { return nil }
        return "`\(parts[0])`.`\(parts[1])`"
    }
}
