import BRModel
import BackupStorage
import Foundation
import KubeAPI
import KubeModel

/// The `export` (Dumpling) and `import` (Lightning) sub-commands (reference 6.7). The archive moves
/// through BackupStorage, so no rclone is needed; the upload is a multipart upload that only appears
/// under its final name once complete, so there is no `.tmp` object to rename.
extension Manager {
    /// Where the Dumpling output and the downloaded Lightning source live: the Job's claim, mounted at
    /// `/backup` as in TiDB Operator's pod (on standalone, the claim's directory, which the job learns
    /// from its own mounts), so the claim's size and class hold the data; `TIDB_BACKUP_MANAGER_WORKDIR`
    /// when set; else the working directory.
    var workDirectory: String {
        if let dir = environment["TIDB_BACKUP_MANAGER_WORKDIR"], !dir.isEmpty { return dir }
        let claim = localPath(Self.claimMount)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: claim, isDirectory: &isDirectory), isDirectory.boolValue,
           FileManager.default.isWritableFile(atPath: claim) {
            return claim
        }
        return FileManager.default.currentDirectoryPath
    }

    /// Where the Job builder mounts the export's and the import's claim.
    public static let claimMount = "/backup"

    /// The export's name (`backup-<RFC 3339 UTC>`), its local directory under the work directory and
    /// its `status.backupPath` (reference 6.7).
    public static func exportPaths(_ storage: StorageProvider, workDirectory: String, at date: Date) -> (name: String, local: String, backupPath: String) {
        let (bucket, prefix) = StorageFactory.normalise(bucket: storage.s3?.bucket ?? storage.gcs?.bucket ?? "", prefix: storage.prefix ?? "")
        let name = exportName(date)
        let remoteDirectory = prefix.isEmpty ? bucket : bucket + "/" + prefix
        return (name, workDirectory + "/" + remoteDirectory + "/" + name, "\(storage.type.rawValue)://\(remoteDirectory)/\(name).tgz")
    }

    /// Lightning's data directory for an archive path: `<work>/<path after ://>` without `.tgz`.
    public static func importDirectory(_ backupPath: String, workDirectory: String) -> (archive: String, data: String) {
        let rest = backupPath.range(of: "://").map { String(backupPath[$0.upperBound...]) } ?? backupPath
        let archive = workDirectory + "/" + rest
        return (archive, archive.hasSuffix(".tgz") ? String(archive.dropLast(4)) : archive + ".data")
    }

    static func exportName(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        return "backup-" + f.string(from: date)
    }

    func runTar(_ arguments: [String]) async throws {
        let result = try await ToolRunner(redact: redactor, log: log).run("/usr/bin/env", ["tar"] + arguments, environment: ["PATH": "/usr/bin:/bin"])
        guard result.succeeded else {
            throw ManagerError("tar \(arguments.joined(separator: " ")) failed: \(result.errorSummary.joined(separator: "; ")) (\(result.exitDescription))")
        }
    }

    // MARK: export

    public func export(_ options: ManagerOptions) async throws {
        let backup = try await object(Backup.self, options)
        guard let from = backup.spec.from else {
            try await backupCondition(options, .failed, reason: "InvalidSpec", message: "spec.from is required for a Dumpling export")
            throw ManagerError("spec.from is required for a Dumpling export")
        }
        let storage = backup.spec.storage
        guard storage.type == .s3 || storage.type == .gcs else {
            try await backupCondition(options, .failed, reason: "UnsupportedStorageType",
                                      message: "a Dumpling export goes to s3 or gcs, not \(storage.type.rawValue)")
            throw ManagerError("unsupported storage type \(storage.type.rawValue)")
        }
        let endpoint = TiDBEndpoint(from, environment: environment, clientTLS: options.clientTLS, skipClientCA: options.skipClientCA)
        let (name, localDirectory, backupPath) = Self.exportPaths(storage, workDirectory: workDirectory, at: now())
        let archive = localDirectory + ".tgz"
        let argv = ToolArguments.dumplingExport(backup, output: localDirectory, endpoint: endpoint, clientTLS: options.clientTLS,
                                                skipClientCA: options.skipClientCA)
        if options.dryRun {
            log(Plan(tool: "dumpling", argv: argv.map { redactor($0) }, environment: environmentNames()).render())
            return
        }
        let started = Time(now())
        let (exe, toolPrefix) = try tools.locate(.dumpling)
        try FileManager.default.createDirectory(atPath: localDirectory, withIntermediateDirectories: true)
        // The staged data goes when the Job no longer needs it, whatever the outcome: a failed export
        // is made again from the start, and a claim is not left full of a half-written dump.
        defer {
            try? FileManager.default.removeItem(atPath: localDirectory)
            try? FileManager.default.removeItem(atPath: archive)
        }
        let result = try await withGCGuard(from, lifeTime: backup.spec.tikvGCLifeTime, options,
                                           fail: { try await backupCondition(options, .failed, reason: $0, message: $1) }) {
            try await backupCondition(options, .prepare)
            try await backupCondition(options, .running, extra: { s in
                s.backupPath = backupPath
                s.timeStarted = started
            })
            return try await ToolRunner(redact: redactor, log: log).run(exe, toolPrefix + argv, environment: toolEnvironment())
        }
        guard result.succeeded else {
            let message = "cluster \(options.namespace)/\(options.name), wait dumpling command failed, errMsg \(result.errorSummary.joined(separator: "\n")), err: \(result.exitDescription)"
            try await backupCondition(options, .failed, reason: "DumpTidbClusterFailed", message: message)
            throw ManagerError(message)
        }
        let commitTs: String
        do {
            let text = try String(contentsOfFile: localDirectory + "/metadata", encoding: .utf8)
            guard let ts = dumplingCommitTs(text), !ts.isEmpty else { throw ManagerError("no Pos line in \(localDirectory)/metadata") }
            commitTs = ts
        } catch {
            try await backupCondition(options, .failed, reason: "GetCommitTsFailed", message: "get commitTs from Dumpling's metadata failed: \(error)")
            throw error
        }
        do {
            let parent = (localDirectory as NSString).deletingLastPathComponent
            try await runTar(["-czf", archive, "-C", parent, name])
        } catch {
            try await backupCondition(options, .failed, reason: "ArchiveBackupDataFailed", message: "\(error)")
            throw error
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: archive)[.size] as? NSNumber)?.int64Value ?? 0
        try? FileManager.default.removeItem(atPath: localDirectory)
        do {
            try await storageFactory.make(storage).upload(file: archive, to: name + ".tgz")
        } catch {
            try await backupCondition(options, .failed, reason: "BackupDataToRemoteFailed", message: "upload \(archive) to \(backupPath) failed: \(error)")
            throw error
        }
        try? FileManager.default.removeItem(atPath: archive)
        let completed = Time(now())
        try await backupCondition(options, .complete, extra: { s in
            s.timeStarted = started
            s.complete(at: completed)
            s.backupPath = backupPath
            s.backupSize = size
            s.backupSizeReadable = BRStatusMath.readableSize(size)
            s.commitTs = commitTs
        })
        log("export \(options.namespace)/\(options.name) complete: \(backupPath), \(size) bytes, commitTs \(commitTs)")
    }

    // MARK: import

    /// The storage holding `path` (`s3://bucket/key…`): the spec's provider settings with the bucket
    /// taken from the path and no prefix; answers it with the object's key.
    func archiveLocation(_ path: String, spec: StorageProvider) throws -> (any BackupStorage, String) {
        guard let scheme = path.range(of: "://") else { throw ManagerError("backupPath \(path) has no scheme") }
        let rest = path[scheme.upperBound...]
        guard let slash = rest.firstIndex(of: "/"), rest.index(after: slash) < rest.endIndex else {
            throw ManagerError("backupPath \(path) names no object")
        }
        let bucket = String(rest[..<slash]), key = String(rest[rest.index(after: slash)...])
        var storage = spec
        switch storage.type {
        case .s3:
            storage.s3?.bucket = bucket
            storage.s3?.path = nil
        case .gcs:
            storage.gcs?.bucket = bucket
            storage.gcs?.path = nil
        default:
            throw ManagerError("unsupported storage type \(storage.type.rawValue) for a Lightning import")
        }
        storage.prefix = ""
        return (try storageFactory.make(storage), key)
    }

    public func importData(_ options: ManagerOptions, backupPath: String) async throws {
        var options = options
        options.isRestore = true
        let restore = try await object(Restore.self, options)
        guard let to = restore.spec.to else {
            try await restoreCondition(options, .failed, reason: "InvalidSpec", message: "spec.to is required for a Lightning import")
            throw ManagerError("spec.to is required for a Lightning import")
        }
        let endpoint = TiDBEndpoint(to, environment: environment, clientTLS: options.clientTLS, skipClientCA: options.skipClientCA)
        guard backupPath.contains("://") else {
            try await restoreCondition(options, .failed, reason: "DownloadBackupDataFailed", message: "backupPath \(backupPath) has no scheme")
            throw ManagerError("backupPath \(backupPath) has no scheme")
        }
        let (archive, dataDirectory) = Self.importDirectory(backupPath, workDirectory: workDirectory)
        // The password goes to Lightning in a private configuration file, not in its argv.
        let configDirectory = NSTemporaryDirectory() + "lightning-\(UUID().uuidString)"
        let configFile = configDirectory + "/tidb-lightning.toml"
        let argv = ToolArguments.lightningImport(restore, dataDirectory: dataDirectory, endpoint: endpoint, configFile: configFile,
                                                 clientTLS: options.clientTLS, skipClientCA: options.skipClientCA)
        if options.dryRun {
            log(Plan(tool: "tidb-lightning", argv: argv, environment: environmentNames()).render())
            return
        }
        let started = Time(now())
        try await restoreCondition(options, .running, extra: { s in if s.timeStarted == nil { s.timeStarted = started } })
        do {
            let (storage, key) = try archiveLocation(backupPath, spec: restore.spec.storage)
            try FileManager.default.createDirectory(atPath: (archive as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try await storage.download(key, to: archive)
        } catch {
            try await restoreCondition(options, .failed, reason: "DownloadBackupDataFailed", message: "download backup \(backupPath) data failed, err: \(error)")
            throw error
        }
        do {
            try await runTar(["-xzf", archive, "-C", (archive as NSString).deletingLastPathComponent])
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dataDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ManagerError("the archive \(backupPath) has no top-level directory \((dataDirectory as NSString).lastPathComponent)")
            }
        } catch {
            try await restoreCondition(options, .failed, reason: "UnarchiveBackupDataFailed", message: "\(error)")
            throw error
        }
        let commitTs: String
        do {
            let text = try String(contentsOfFile: dataDirectory + "/metadata", encoding: .utf8)
            guard let ts = dumplingCommitTs(text), !ts.isEmpty else { throw ManagerError("no Pos line in \(dataDirectory)/metadata") }
            commitTs = ts
        } catch {
            try await restoreCondition(options, .failed, reason: "GetCommitTsFailed", message: "get commitTs from Dumpling's metadata failed: \(error)")
            throw error
        }
        let (exe, toolPrefix) = try tools.locate(.lightning)
        try FileManager.default.createDirectory(atPath: configDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: configDirectory) }
        guard FileManager.default.createFile(atPath: configFile, contents: Data((ToolArguments.lightningConfig(password: endpoint.password) + ToolArguments.lightningCheckpoint(dataDirectory: dataDirectory)).utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw ManagerError("cannot write \(configFile)")
        }
        let result = try await ToolRunner(redact: redactor, log: log).run(exe, toolPrefix + argv, environment: toolEnvironment())
        guard result.succeeded else {
            let message = "cluster \(options.namespace)/\(options.name), wait tidb-lightning command failed, errMsg \(result.errorSummary.joined(separator: "\n")), err: \(result.exitDescription)"
            try await restoreCondition(options, .failed, reason: "LoaderBackupDataFailed", message: message)
            throw ManagerError(message)
        }
        try? FileManager.default.removeItem(atPath: dataDirectory)
        try? FileManager.default.removeItem(atPath: archive)
        let completed = Time(now())
        try await restoreCondition(options, .complete, extra: { s in
            if s.timeStarted == nil { s.timeStarted = started }
            s.timeCompleted = completed
            if let start = s.timeStarted { s.timeTaken = BRStatusMath.timeTaken(from: start, to: completed) }
            s.commitTs = commitTs
        })
        log("import \(options.namespace)/\(options.name) complete, commitTs \(commitTs)")
    }
}
