import BRModel
import BackupStorage
import Foundation
import KubeAPI
import KubeModel

/// The `lightning` sub-command: a Restore with `spec.lightning` (seed 003), in named steps —
/// locate the data, fetch it (remote), verify it, write the configuration, recover (when asked),
/// import, report. Checkpoints live in the data directory, so a retried or re-applied Restore on
/// the same data resumes.
public struct LightningImport: Sendable {
    public var manager: Manager
    public var options: ManagerOptions
    /// The annotation value of a recovery (`LightningRecovery`), when the Job carries one.
    public var recovery: String?

    public init(manager: Manager, options: ManagerOptions, recovery: String? = nil) {
        self.manager = manager
        var options = options
        options.isRestore = true
        self.options = options
        self.recovery = recovery
    }

    /// A failure with the reason written into the Restore's Failed condition.
    struct StepFailure: Error, CustomStringConvertible {
        var reason: String
        var message: String
        var description: String { message }
    }

    /// What the run needs after `prepare`.
    struct Plan {
        var restore: Restore
        var spec: LightningSpec
        var endpoint: TiDBEndpoint
        var dataDirectory: String
        var remote: ResolvedRemote?
        var manager: Manager
    }

    public func run() async throws {
        let restore = try await manager.object(Restore.self, options)
        guard let spec = restore.spec.lightning else { throw ManagerError("restore \(options.namespace)/\(options.name) has no spec.lightning") }
        var plan: Plan
        do {
            plan = try prepare(restore, spec)
        } catch let f as StepFailure {
            try await fail(f, spec: spec)
            return
        }
        let started = Time(manager.now())
        if !options.dryRun {
            try await manager.restoreCondition(options, .running, extra: { s in if s.timeStarted == nil { s.timeStarted = started } })
        }
        do {
            if let remote = plan.remote, !options.dryRun { try await fetch(remote, into: plan.dataDirectory, using: plan.manager) }
            if !options.dryRun { try verify(plan.dataDirectory) }
            try await importData(plan)
        } catch let f as StepFailure {
            try await fail(f, spec: spec)
            return
        }
        if options.dryRun { return }
        if plan.remote != nil, spec.checkpoint?.keepAfterSuccess != true {
            // The import is complete: the fetched copy has served its purpose. The claim stays (it
            // is the user's to delete); its space is freed.
            try? FileManager.default.removeItem(atPath: plan.dataDirectory)
        }
        let commitTs = (try? String(contentsOfFile: plan.dataDirectory + "/metadata", encoding: .utf8)).flatMap { dumplingCommitTs($0) }
        let completed = Time(manager.now())
        try await manager.restoreCondition(options, .complete, extra: { s in
            if s.timeStarted == nil { s.timeStarted = started }
            s.timeCompleted = completed
            if let start = s.timeStarted { s.timeTaken = BRStatusMath.timeTaken(from: start, to: completed) }
            if let commitTs, !commitTs.isEmpty { s.commitTs = commitTs }
        })
        manager.log("lightning import \(options.namespace)/\(options.name) complete")
    }

    // MARK: steps

    /// Locates the data directory and, for a remote source, resolves its storage and credentials.
    func prepare(_ restore: Restore, _ spec: LightningSpec) throws -> Plan {
        guard let to = restore.spec.to else { throw StepFailure(reason: "InvalidSpec", message: "spec.to is required for a Lightning import") }
        var manager = self.manager
        let mount = manager.localPath(LightningLayout.dataMount)
        var remote: ResolvedRemote?
        let dataDirectory: String
        if let r = spec.dataSource.remote {
            do {
                remote = try RemoteSourceResolver.resolve(r.location, spec: restore.spec.storage, rclone: manager.environment[LightningLayout.rcloneConfigEnv])
            } catch {
                throw StepFailure(reason: "InvalidDataSource", message: manager.redactor("\(error)"))
            }
            // The credentials from the rclone configuration join the environment, so the redactor
            // knows them too.
            for (k, v) in remote!.environment { manager.environment[k] = v }
            dataDirectory = mount + "/" + LightningLayout.backupName(of: r.location)
        } else if let adhoc = spec.dataSource.adhoc {
            dataDirectory = mount + "/" + adhoc.backupName
        } else {
            dataDirectory = mount
        }
        let endpoint = TiDBEndpoint(to, environment: manager.environment, clientTLS: options.clientTLS, skipClientCA: options.skipClientCA)
        return Plan(restore: restore, spec: spec, endpoint: endpoint, dataDirectory: dataDirectory, remote: remote, manager: manager)
    }

    /// Fetches a tarball (unpacked) or a directory into `directory`, unless a complete fetch of the
    /// same location is already there (then the import resumes on it).
    func fetch(_ remote: ResolvedRemote, into directory: String, using manager: Manager) async throws {
        let fm = FileManager.default
        let marker = directory + "/" + LightningLayout.fetchedMarker
        let source = manager.describe(remote)
        if let previous = try? String(contentsOfFile: marker, encoding: .utf8), previous == source {
            manager.log("\(source) was fetched into \(directory) by an earlier run; resuming on it")
            return
        }
        let parent = (directory as NSString).deletingLastPathComponent
        let name = (directory as NSString).lastPathComponent
        let staging = parent + "/.fetch-" + name
        do {
            try? fm.removeItem(atPath: staging)
            try? fm.removeItem(atPath: directory)
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
            let storage = try StorageFactory(environment: manager.environment).make(remote.provider)
            let key = remote.location.key
            if [".tar.gz", ".tgz", ".tar"].contains(where: { key.hasSuffix($0) }) {
                let archive = parent + "/.download-" + name + (key.hasSuffix(".tar") ? ".tar" : ".tar.gz")
                defer { try? fm.removeItem(atPath: archive) }
                manager.log("downloading \(source)")
                try await storage.download(key, to: archive)
                do {
                    try await manager.runTar(["-xf", archive, "-C", staging])
                } catch {
                    throw StepFailure(reason: "UnarchiveBackupDataFailed", message: "unpack \(source): \(error)")
                }
                // A tarball with one top-level directory holds the data in it.
                let entries = try fm.contentsOfDirectory(atPath: staging)
                var isDirectory: ObjCBool = false
                if entries.count == 1, fm.fileExists(atPath: staging + "/" + entries[0], isDirectory: &isDirectory), isDirectory.boolValue {
                    try fm.moveItem(atPath: staging + "/" + entries[0], toPath: directory)
                    try fm.removeItem(atPath: staging)
                } else {
                    try fm.moveItem(atPath: staging, toPath: directory)
                }
            } else {
                let prefix = key.isEmpty || key.hasSuffix("/") ? key : key + "/"
                let count = try await downloadDirectory(storage, prefix: prefix, into: staging, log: manager.log)
                guard count > 0 else { throw StepFailure(reason: "DownloadBackupDataFailed", message: "\(source) holds no objects") }
                try fm.moveItem(atPath: staging, toPath: directory)
            }
            try Data(source.utf8).write(to: URL(fileURLWithPath: marker))
        } catch let f as StepFailure {
            throw f
        } catch {
            throw StepFailure(reason: "DownloadBackupDataFailed", message: manager.redactor("download \(source) failed: \(error)"))
        }
    }

    /// Every object under `prefix`, four at a time; answers how many.
    func downloadDirectory(_ storage: any BackupStorage, prefix: String, into directory: String, log: @escaping @Sendable (String) -> Void) async throws -> Int {
        var keys: [String] = []
        var token: String?
        repeat {
            let page = try await storage.listPage(prefix: prefix, token: token, limit: 1000)
            keys += page.objects.map(\.key).filter { !$0.hasSuffix("/") }
            token = page.next
        } while token != nil
        log("downloading \(keys.count) objects under \(storage.location)/\(prefix)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func add() {
                guard next < keys.count else { return }
                let key = keys[next]
                next += 1
                let relative = String(key.dropFirst(prefix.count))
                group.addTask {
                    guard !relative.isEmpty, !relative.split(separator: "/").contains("..") else { return }
                    let target = directory + "/" + relative
                    try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    try await storage.download(key, to: target)
                }
            }
            for _ in 0..<4 { add() }
            while try await group.next() != nil { add() }
        }
        return keys.count
    }

    /// The data directory holds something Lightning can import.
    func verify(_ directory: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StepFailure(reason: "DataSourceNotFound", message: "the data directory \(directory) does not exist")
        }
        let suffixes = [".sql", ".csv", ".parquet", ".sql.gz", ".csv.gz", ".sql.zst", ".csv.zst", ".sql.snappy", ".csv.snappy"]
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let path = enumerator?.nextObject() as? String {
            if suffixes.contains(where: { path.hasSuffix($0) }) { return }
        }
        throw StepFailure(reason: "InvalidDataSource", message: "\(directory) holds no schema or data files (.sql, .csv, .parquet)")
    }

    /// Writes the configuration (0600, in a private directory), runs the recovery step when asked,
    /// then Lightning; its progress goes into status.
    func importData(_ plan: Plan) async throws {
        let manager = plan.manager
        let spec = plan.spec
        let configDirectory = NSTemporaryDirectory() + "lightning-\(UUID().uuidString)"
        let configFile = configDirectory + "/tidb-lightning.toml"
        let config: String
        do {
            config = try LightningConfigFile.text(spec: spec, password: plan.endpoint.password, dataDirectory: plan.dataDirectory,
                                                  clusterTLS: spec.tlsCluster?.enabled == true ? manager.localPath(LightningLayout.clusterTLSMount) : nil,
                                                  clientTLS: spec.tlsClient?.enabled == true ? manager.localPath(LightningLayout.clientTLSMount) : nil)
        } catch {
            throw StepFailure(reason: "InvalidSpec", message: "spec.lightning.config: \(error)")
        }
        let pd = spec.effectiveBackend == .local ? (options.pd ?? defaultPD(plan)) : nil
        let argv = LightningConfigFile.arguments(plan.restore, spec: spec, endpoint: plan.endpoint, dataDirectory: plan.dataDirectory,
                                                 configFile: configFile, sortedKV: manager.localPath(LightningLayout.sortedKVMount), pd: pd,
                                                 statusAddress: manager.environment["TIDB_BACKUP_MANAGER_LIGHTNING_STATUS_ADDR"])
        // tidb-lightning-ctl takes Lightning's global flags: the same configuration and connection.
        let ctlBase = ["--config=\(configFile)", "--tidb-user=\(plan.endpoint.user)", "--tidb-host=\(plan.endpoint.host)",
                       "--tidb-port=\(plan.endpoint.port)", "--d=\(plan.dataDirectory)"]
        var recovery: LightningRecovery?
        if let raw = self.recovery {
            switch LightningRecovery.parse(raw) {
            case .failure(let f): throw StepFailure(reason: "InvalidSpec", message: f.description)
            case .success(let r): recovery = r
            }
        }
        if options.dryRun {
            for ctl in recovery?.ctlArguments ?? [] {
                manager.log(Manager.Plan(tool: "tidb-lightning-ctl", argv: ctlBase + ctl, environment: manager.environmentNames()).render())
            }
            manager.log(Manager.Plan(tool: "tidb-lightning", argv: argv, environment: manager.environmentNames()).render())
            return
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: configDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? fm.removeItem(atPath: configDirectory) }
        guard fm.createFile(atPath: configFile, contents: Data(config.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw StepFailure(reason: "InvalidSpec", message: "cannot write \(configFile)")
        }
        if spec.effectiveBackend == .local {
            try? fm.createDirectory(atPath: manager.localPath(LightningLayout.sortedKVMount), withIntermediateDirectories: true)
        }
        if let recovery, !recovery.ctlArguments.isEmpty {
            let (ctl, prefix) = try manager.tools.locate(.lightningCtl)
            for arguments in recovery.ctlArguments {
                let result = try await ToolRunner(redact: manager.redactor, log: manager.log)
                    .run(ctl, prefix + ctlBase + arguments, environment: manager.toolEnvironment())
                guard result.succeeded else {
                    throw StepFailure(reason: "LightningCtlFailed",
                                      message: "tidb-lightning-ctl \(arguments.joined(separator: " ")) failed: \(result.errorSummary.joined(separator: "; ")) (\(result.exitDescription))")
                }
            }
            await manager.events.record(plan.restore, .normal, reason: "LightningRecovered",
                                        message: "tidb-lightning-ctl \(recovery.ctlArguments.map { $0.joined(separator: " ") }.joined(separator: "; ")) done; importing again")
        }
        let (exe, prefix) = try manager.tools.locate(.lightning)
        let progress = ProgressPublisher(manager: manager, options: options)
        let watcher = LightningOutput()
        let result = try await ToolRunner(redact: manager.redactor, log: manager.log).run(exe, prefix + argv, environment: manager.toolEnvironment()) { _, line in
            watcher.read(line)
            if let percent = LightningOutput.progress(line) { progress.record(step: "import", percent: percent) }
        }
        await progress.flush()
        guard result.succeeded else {
            throw watcher.failure(summary: result.errorSummary.joined(separator: "\n"), exit: result.exitDescription,
                                  restore: "\(options.namespace)/\(options.name)")
        }
    }

    func defaultPD(_ plan: Plan) -> String {
        let cluster = plan.spec.cluster ?? ""
        let ns = (plan.spec.clusterNamespace ?? "").isEmpty ? options.namespace : plan.spec.clusterNamespace!
        return "\(cluster)-pd.\(ns):2379"
    }

    /// Writes Failed with the step's reason; with `failFast: false` the process then stays up, as the
    /// chart's pod does, for `kubectl exec` until its Job is deleted.
    func fail(_ failure: StepFailure, spec: LightningSpec) async throws {
        try await manager.restoreCondition(options, .failed, reason: failure.reason, message: failure.message)
        guard !options.dryRun else { throw ManagerError(failure.message) }
        if !spec.effectiveFailFast {
            manager.log("failFast is false: this pod stays up so that its data and checkpoints can be inspected; delete the Job, or set \(LightningLayout.recoveryAnnotation) on the Restore, to end it")
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
        throw ManagerError(failure.message)
    }
}

extension Manager {
    /// Where an in-pod path is on this machine: the standalone job runner names each volume mount's
    /// directory in `STANDALONE_VOLUME_MOUNTS`; in a pod the path is itself.
    public func localPath(_ inPod: String) -> String {
        guard let text = environment["STANDALONE_VOLUME_MOUNTS"], !text.isEmpty else { return inPod }
        var best: (String, String)?
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            let mount = String(line[..<eq]), directory = String(line[line.index(after: eq)...])
            if inPod == mount || inPod.hasPrefix(mount.hasSuffix("/") ? mount : mount + "/") {
                if best == nil || mount.count > best!.0.count { best = (mount, directory) }
            }
        }
        guard let (mount, directory) = best else { return inPod }
        return directory + inPod.dropFirst(mount.count)
    }

    /// The remote location as written, for messages and the fetch marker.
    func describe(_ remote: ResolvedRemote) -> String {
        let l = remote.location
        let head = l.rcloneRemote.map { "\($0):" } ?? "\(l.scheme ?? "")://"
        return head + l.bucket + (l.key.isEmpty ? "" : "/" + l.key)
    }
}

/// What Lightning's output says: progress, the tables named in error lines, and whether it stopped
/// on checkpoints that hold an error from an earlier run.
final class LightningOutput: @unchecked Sendable {
    private let lock = NSLock()
    private var tables: [String] = []
    private var checkpointError = false

    func read(_ line: String) {
        guard line.contains("[ERROR]") || line.contains("[FATAL]") || line.contains("[WARN]") else { return }
        let names = Self.tableNames(line)
        // Lightning's refusal to start over a checkpoint that records an error from an earlier run.
        let lower = line.lowercased()
        let isCheckpoint = lower.contains("failed last time") || lower.contains("illegal checkpoint") || line.contains("ErrCheckpoint")
        lock.lock()
        defer { lock.unlock() }
        if isCheckpoint { checkpointError = true }
        guard line.contains("[ERROR]") || line.contains("[FATAL]") else { return }
        for n in names where !tables.contains(n) { tables.append(n) }
    }

    /// Backquoted `` `db`.`table` `` names in a line.
    static func tableNames(_ line: String) -> [String] {
        var out: [String] = []
        var rest = Substring(line)
        while let start = rest.range(of: "`") {
            let after = rest[start.upperBound...]
            guard let mid = after.range(of: "`.`"), let end = after[mid.upperBound...].range(of: "`") else { break }
            let db = after[..<mid.lowerBound], table = after[mid.upperBound..<end.lowerBound]
            if !db.contains("`"), !table.isEmpty, !db.isEmpty {
                out.append("`\(db)`.`\(table)`")
                rest = after[end.upperBound...]
            } else {
                rest = after
            }
        }
        return out
    }

    /// `[progress] … [total=42.5%]` → 42.5.
    static func progress(_ line: String) -> Double? {
        guard line.contains("progress"), let r = line.range(of: "[total=") else { return nil }
        let number = line[r.upperBound...].prefix { $0.isNumber || $0 == "." }
        return Double(number)
    }

    func failure(summary: String, exit: String, restore: String) -> LightningImport.StepFailure {
        lock.lock()
        defer { lock.unlock() }
        let named = tables.isEmpty ? "" : "; tables: \(tables.joined(separator: ", "))"
        let key = LightningLayout.recoveryAnnotation
        if checkpointError {
            return .init(reason: "LightningCheckpointError", message: """
                tidb-lightning stopped: checkpoints hold errors from an earlier run\(named). To go on, annotate the Restore with \
                \(key)=destroy-error (import those tables again from the start) or \(key)=ignore-error (keep what was imported; \
                for transient errors), optionally followed by :db.table; errMsg \(summary), err: \(exit)
                """)
        }
        let hint = tables.isEmpty ? "" : ". Fix the cause, then annotate the Restore with \(key)=resume (checkpoints keep finished tables) or \(key)=destroy-error:\(tables[0]) (import that table again)"
        return .init(reason: "LoaderBackupDataFailed",
                     message: "cluster \(restore), wait tidb-lightning command failed\(named), errMsg \(summary), err: \(exit)\(hint)")
    }
}
