import BRModel
import BRObjects
import BackupStorage
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// Flags shared by the sub-commands, as TiDB Operator's Job passes them.
public struct ManagerOptions: Sendable {
    public var namespace: String
    public var name: String
    public var tikvVersion: String = "4.0"
    public var clientTLS = false
    public var clusterTLS = false
    public var skipClientCA = false
    public var mode: String = "snapshot"
    public var pitrRestoredTs: String = "0"
    /// A log backup's sub-command (`--subcommand`) and its arguments.
    public var subcommand = "log-start"
    public var commitTs: String?
    public var truncateUntil: String?
    /// `--initialize=true`: the init Job of a volume-snapshot backup.
    public var initialize = false
    /// `--result-only=true`: no tool runs; the result of a backup whose Job ended without writing it is
    /// read from `backupmeta` in storage (the model's `Backup.resultJob`).
    public var resultOnly = false
    /// Volume-snapshot restore steps: `--prepare` (BR creates the volumes), `--clean-volumes` (they are
    /// deleted after a failure); neither: the data step.
    public var prepare = false
    public var cleanVolumes = false
    /// `--abort=true`: the prune Job of a failed restore.
    public var abort = false
    public var targetAZ: String?
    public var useFSR = false
    /// PD addresses given by the operator (a TidbCluster's `spec.pdAddresses`); otherwise derived.
    public var pd: String?
    public var dryRun = false
    /// How long to keep trying to reach TiDB when `spec.from` / `spec.to` is set (reference 6.2: 30 min).
    public var connectTimeout: Duration = .seconds(1800)
    /// Whether the object is a Restore (`restore`, `import`) rather than a Backup.
    public var isRestore = false
    var kind: ResourceKind { isRestore ? .restores : .backups }

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }
}

public struct ManagerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The job side: reads its object, runs the tool, writes the conditions and results.
public struct Manager: Sendable {
    public var api: any KubeAPI
    public var storageFactory: StorageFactory
    public var tools: ToolLocator
    public var environment: [String: String]
    public var log: @Sendable (String) -> Void
    /// Each condition this job writes is also an Event on its object (never a secret: messages are redacted).
    public var events: EventRecorder
    public var now: @Sendable () -> Date = Date.init
    /// How long a status write is retried while the API cannot be reached.
    public var statusWriteBudget: Duration = .seconds(60)
    /// Delays between `backupmeta` read attempts (reference 6.2: 1 s doubling, 6 steps).
    public var metaRetryDelays: [Duration] = [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(32)]

    public init(api: any KubeAPI, environment: [String: String] = ProcessInfo.processInfo.environment,
                log: @escaping @Sendable (String) -> Void = { writeLogLine($0) }) {
        self.api = api
        self.environment = environment
        storageFactory = StorageFactory(environment: environment)
        tools = ToolLocator(environment: environment)
        self.log = log
        events = EventRecorder(api: api, component: "tidb-backup-manager")
    }

    var secretValues: [String] {
        let names = ["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN", "BACKUP_MANAGER_PASSWORD", "GCS_SERVICE_ACCOUNT_JSON_KEY",
                     "AZURE_STORAGE_KEY", "AZURE_CLIENT_SECRET"]
        let rclone = environment[LightningLayout.rcloneConfigEnv].map { RcloneConfig($0).secrets } ?? []
        return names.compactMap { environment[$0] }.filter { !$0.isEmpty } + rclone
    }

    var redactor: Redactor { Redactor(secrets: secretValues) }

    // MARK: status

    /// Writes the object's status through the one status writer, riding out an API that cannot be
    /// reached for `statusWriteBudget` (a standalone server restarting, an API server failing over):
    /// a result must not be lost to a moment's outage. Returns the object as written (or as it is, when
    /// the change changed nothing).
    @discardableResult
    func update<T: APIObject & Equatable>(_ type: T.Type, _ options: ManagerOptions, _ change: @escaping (inout T) -> Void) async throws -> T? {
        var retries = 0
        return try await StatusWriter.update(api, T.self, namespace: options.namespace, name: options.name, outage: statusWriteBudget,
                                             onRetry: { error in
                                                 retries += 1
                                                 if retries == 1 || retries % 10 == 0 {
                                                     log("status write of \(options.namespace)/\(options.name) failed (\(redactor("\(error)"))); retrying")
                                                 }
                                             }, change)
    }

    func updateBackup(_ options: ManagerOptions, _ change: @escaping (inout Backup) -> Void) async throws {
        try await update(Backup.self, options, change)
    }

    func backupCondition(_ options: ManagerOptions, _ type: BackupConditionType, reason: String? = nil, message: String? = nil,
                         status: ConditionStatus = .true, extra: @escaping (inout BackupStatus) -> Void = { _ in }) async throws {
        let now = Time(self.now())
        let message = message.map { redactor($0) }
        let condition = BackupCondition(type: type, status: status, reason: reason, message: message)
        var changed = false
        let written = try await update(Backup.self, options) { b in
            extra(&b.status)
            changed = b.status.apply(condition, now: now)
        }
        if changed, let written { await events.record(written, ConditionEvent(written, condition)) }
    }

    func updateRestore(_ options: ManagerOptions, _ change: @escaping (inout Restore) -> Void) async throws {
        try await update(Restore.self, options, change)
    }

    func restoreCondition(_ options: ManagerOptions, _ type: RestoreConditionType, reason: String? = nil, message: String? = nil,
                          extra: @escaping (inout RestoreStatus) -> Void = { _ in }) async throws {
        let now = Time(self.now())
        let message = message.map { redactor($0) }
        let condition = RestoreCondition(type: type, reason: reason, message: message)
        var changed = false
        let written = try await update(Restore.self, options) { r in
            extra(&r.status)
            changed = r.status.apply(condition, now: now)
        }
        if changed, let written { await events.record(written, ConditionEvent(written, condition)) }
    }

    // MARK: plan

    /// The argv and environment names of a run, secrets shown as `<redacted>`.
    public struct Plan: Sendable {
        public var tool: String
        public var argv: [String]
        public var environment: [String]

        public func render() -> String {
            (["tool: \(tool)"] + argv.map { "  \($0)" } + ["env:"] + environment.map { "  \($0)" }).joined(separator: "\n")
        }
    }

    public func pd(_ options: ManagerOptions, br: BRConfig) -> String {
        if let pd = options.pd, !pd.isEmpty { return pd }
        return ToolArguments.defaultPD(br: br, namespace: options.namespace)
    }

    // MARK: backup

    /// The Backup or Restore the sub-command works on; a missing one is named in the error.
    func object<T: APIObject>(_ type: T.Type, _ options: ManagerOptions) async throws -> T {
        do {
            return try await api.get(T.self, namespace: options.namespace, name: options.name)
        } catch let e as KubeAPIError where e.isNotFound {
            throw ManagerError("\(String(describing: T.self).lowercased()) \(options.namespace)/\(options.name) not found")
        }
    }

    public func backup(_ options: ManagerOptions) async throws {
        let backup = try await object(Backup.self, options)
        guard let br = backup.spec.br else { throw ManagerError("no br config in \(options.namespace)/\(options.name)") }
        let mode = backup.spec.effectiveBackupMode
        if mode == .log && options.mode == "log" {
            return try await LogBackupJob(manager: self, options: options).run()
        }
        if mode == .volumeSnapshot && options.mode == "volume-snapshot" {
            return try await VolumeSnapshotBackupJob(manager: self, options: options).run()
        }
        guard ["snapshot", "log", "volume-snapshot"].contains(options.mode) else {
            try await backupCondition(options, .failed, reason: "NotSupported", message: "backup mode \(options.mode) is not supported by this backup manager yet")
            throw ManagerError("backup mode \(options.mode) is not supported yet")
        }
        guard mode.rawValue == options.mode else {
            // The operator decided the flow when it built the Job; the spec says otherwise now (an edit since).
            let message = "Job \(backup.jobName) was built for backupMode \(options.mode), but spec.backupMode is now \(mode.rawValue): "
                + "a Backup's mode cannot change once its Job exists; create a new Backup for the new mode"
            try await backupCondition(options, .failed, reason: "SpecChangedSinceJob", message: message)
            throw ManagerError(message)
        }
        if options.resultOnly { return try await recordResult(backup, options) }
        let argv = try RunPlan.backup(backup, options, pd: pd(options, br: br), brFiles: ToolArguments.brBinDirectory)[0].argv
        if options.dryRun {
            log(Plan(tool: "br", argv: argv, environment: environmentNames()).render())
            return
        }
        if backup.status.phase != .scheduled || backup.status.has(.restart) {
            try await backupCondition(options, .restart)
        }
        let path: String
        do {
            path = try ToolArguments.storagePath(backup.spec.storage)
        } catch {
            try await backupCondition(options, .failed, reason: "GetBackupRemotePathFailed", message: "\(error)")
            throw error
        }
        let started = Time(now())
        try await backupCondition(options, .prepare, extra: { $0.backupPath = path })
        let (exe, prefix) = try tools.locate(.br)
        let result = try await withGCGuard(backup.spec.from, lifeTime: backup.spec.tikvGCLifeTime, options,
                                           fail: { try await backupCondition(options, .failed, reason: $0, message: $1) }) {
            try await backupCondition(options, .running, extra: { $0.timeStarted = started })
            return try await ToolRunner(redact: redactor, log: log).run(exe, prefix + argv, environment: toolEnvironment())
        }
        guard result.succeeded else {
            let message = result.brFailure(options)
            try await backupCondition(options, .failed, reason: "BackupDataToRemoteFailed", message: message)
            throw ManagerError(message)
        }
        try await completeFromMeta(backup, options, path: path, started: started, missing: { "read backupmeta of \(path): \($0)" })
    }

    func environmentNames() -> [String] {
        let secretNames: Set = ["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "BACKUP_MANAGER_PASSWORD",
                                "GCS_SERVICE_ACCOUNT_JSON_KEY", "AZURE_STORAGE_KEY", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID"]
        let relevant = ["S3_", "AWS_", "GCS_", "AZURE_", "BR_", "BACKUP_MANAGER_", "TZ"]
        return environment.keys.filter { k in relevant.contains { k.hasPrefix($0) } }.sorted().map { k in
            secretNames.contains(k) ? "\(k)=<redacted>" : "\(k)=\(environment[k]!)"
        }
    }

    /// The tools' environment: ours, with `BR_LOG_TO_TERM` as the Job sets it.
    func toolEnvironment() -> [String: String] {
        var env = environment
        if env["BR_LOG_TO_TERM"] == nil { env["BR_LOG_TO_TERM"] = "\u{1}" }
        return env
    }

    // MARK: restore

    public func restore(_ options: ManagerOptions) async throws {
        var options = options
        options.isRestore = true
        let restore = try await object(Restore.self, options)
        if options.abort { return try await RestorePruneJob(manager: self, options: options).run(restore) }
        if restore.spec.effectiveRestoreMode == .volumeSnapshot && options.mode == "volume-snapshot" {
            return try await VolumeSnapshotRestoreJob(manager: self, options: options).run(restore)
        }
        guard let br = restore.spec.br else { throw ManagerError("no br config in \(options.namespace)/\(options.name)") }
        let argv = try RunPlan.restore(restore, options, pd: pd(options, br: br), brFiles: ToolArguments.brBinDirectory)[0].argv
        if options.dryRun {
            log(Plan(tool: "br", argv: argv, environment: environmentNames()).render())
            return
        }
        let started = Time(now())
        try await restoreCondition(options, .running, extra: { s in if s.timeStarted == nil { s.timeStarted = started } })
        if restore.metadata.annotations?[BRLabels.verificationCleanupAnnotation] == "drop", let scratch = restore.spec.to {
            do {
                try await dropBackupDatabases(restore, through: scratch, options)
            } catch {
                let message = redactor("dropping the backup's databases from the scratch cluster before the restore failed: \(error)")
                try await restoreCondition(options, .failed, reason: "VerificationCleanupFailed", message: message)
                throw ManagerError(message)
            }
        }
        let (exe, prefix) = try tools.locate(.br)
        let progress = ProgressPublisher(manager: self, options: options)
        let result = try await withGCGuard(restore.spec.to, lifeTime: restore.spec.tikvGCLifeTime, options,
                                           fail: { try await restoreCondition(options, .failed, reason: $0, message: $1) }) {
            try await ToolRunner(redact: redactor, log: log).run(exe, prefix + argv, environment: toolEnvironment()) { _, line in
                if let p = BRLog.progress(line) { progress.record(step: p.step, percent: Double(p.progress) ?? 0) }
                if let op = BRLog.operation(line, now: Time(Date())) { progress.record(operation: op) }
            }
        }
        await progress.flush()
        guard result.succeeded else {
            let message = result.brFailure(options)
            try await restoreCondition(options, .failed, reason: "RestoreDataFromRemoteFailed", message: message)
            throw ManagerError(message)
        }
        if let text = restore.metadata.annotations?[BRLabels.verificationQueriesAnnotation], let scratch = restore.spec.to {
            let failure = await runVerificationQueries(text, through: scratch, options)
            // The run is over for the scratch cluster: its databases go again (a failure to drop them is
            // logged; the next run drops them before its restore anyway).
            if restore.metadata.annotations?[BRLabels.verificationCleanupAnnotation] == "drop" {
                do { try await dropBackupDatabases(restore, through: scratch, options, when: "after the run") } catch {
                    log(redactor("verification cleanup after the run failed (the next run drops them first): \(error)"))
                }
            }
            if let failure {
                try await restoreCondition(options, .failed, reason: Verification.queryFailedReason, message: failure)
                throw ManagerError(failure)
            }
        } else if restore.metadata.annotations?[BRLabels.verificationCleanupAnnotation] == "drop", let scratch = restore.spec.to {
            do { try await dropBackupDatabases(restore, through: scratch, options, when: "after the run") } catch {
                log(redactor("verification cleanup after the run failed (the next run drops them first): \(error)"))
            }
        }
        let commitTs: UInt64
        do {
            if restore.spec.effectiveRestoreMode == .pitr {
                // The point restored to; the log storage's backupmeta only says where the log starts.
                commitTs = try TSO.parse(options.pitrRestoredTs)
            } else {
                commitTs = try await readBackupMeta(try storageFactory.make(restore.spec.storage)).endVersion
            }
        } catch {
            try await restoreCondition(options, .failed, reason: "GetCommitTsFailed", message: "\(error)")
            throw error
        }
        let completed = Time(now())
        try await restoreCondition(options, .complete, extra: { s in
            if s.timeStarted == nil { s.timeStarted = started }
            s.timeCompleted = completed
            if let start = s.timeStarted { s.timeTaken = BRStatusMath.timeTaken(from: start, to: completed) }
            s.commitTs = String(commitTs)
        })
        log("restore \(options.namespace)/\(options.name) complete, commitTs \(commitTs)")
    }

    // MARK: TiDB

    /// A verification's queries (`spec.verification.checks.queries`), run in order on the scratch TiDB
    /// after the restore: the first that fails or reads other than its `expect` is the failure (nil: all passed).
    func runVerificationQueries(_ text: String, through scratch: TiDBAccessConfig, _ options: ManagerOptions) async -> String? {
        let queries: [VerificationQuery]
        do { queries = try KubeCodec.decodeValue([VerificationQuery].self, from: try JSONParser.parse(text)) } catch {
            return "the verification queries cannot be read: \(error)"
        }
        let endpoint = TiDBEndpoint(scratch, environment: environment, clientTLS: options.clientTLS, skipClientCA: options.skipClientCA)
        let connection: TiDBConnection
        do {
            connection = try await TiDBConnection.connect(endpoint, environment: environment, deadline: now().addingTimeInterval(300), log: log)
        } catch {
            return redactor("cannot run the verification queries: \(error)")
        }
        for (i, query) in queries.enumerated() {
            let rows: [[String?]]
            do { rows = try await connection.execute(query.sql) } catch {
                return redactor("query \(i + 1) (\(query.sql)) failed: \(error)")
            }
            let got = rows.first.map { ($0.first ?? nil) ?? "NULL" }
            if let expect = query.expect, got != expect {
                return "query \(i + 1) (\(query.sql)) returned \(got.map { "\"\($0)\"" } ?? "no row"), expected \"\(expect)\""
            }
            log("verification query \(i + 1) passed: \(query.sql) -> \(got ?? "no row")")
        }
        return nil
    }

    /// A verification's cleanup (`spec.verification.cleanup: drop`): the databases the backup holds,
    /// read from its metadata (inline schemas and the `schema_index` meta files), are dropped through
    /// the scratch cluster's TiDB before the restore (so that BR's full restore finds none of its tables
    /// there) and again after the run (its queries done). A point-in-time restore drops those of its
    /// full backup (databases created later inside the log window are not in any metadata read here).
    func dropBackupDatabases(_ restore: Restore, through scratch: TiDBAccessConfig, _ options: ManagerOptions,
                             when: String = "before the restore") async throws {
        let storage = try storageFactory.make(restore.spec.snapshotStorage)
        let meta = try await readBackupMeta(storage)
        var databases = meta.databases
        try await walkMetaFiles(meta.schemaMetaFileNames, storage) { bytes in
            let (more, nested) = try BackupMetaSummary.schemaMetaFile(bytes)
            databases += more
            return nested
        }
        let dropped = Set(databases).filter(Verification.isUserDatabase).sorted()
        guard !dropped.isEmpty else {
            log("verification cleanup: the backup's metadata names no user database; nothing dropped")
            return
        }
        let endpoint = TiDBEndpoint(scratch, environment: environment, clientTLS: options.clientTLS, skipClientCA: options.skipClientCA)
        let connection = try await TiDBConnection.connect(endpoint, environment: environment, deadline: now().addingTimeInterval(300), log: log)
        for database in dropped {
            _ = try await connection.execute("DROP DATABASE IF EXISTS `\(database.replacingOccurrences(of: "`", with: "``"))`")
        }
        log("verification cleanup: dropped \(dropped.joined(separator: ", ")) from \(endpoint.address) \(when)")
    }

    /// Runs `body` under the GC life-time guard when the spec names a TiDB (`spec.from` / `spec.to`),
    /// else plainly. A failure to connect or to read, parse, set or reset the life time is written as
    /// a Failed condition with TiDB Operator's reason.
    func withGCGuard<T: Sendable>(_ config: TiDBAccessConfig?, lifeTime: String?, _ options: ManagerOptions,
                                  fail: (String, String) async throws -> Void, _ body: () async throws -> T) async throws -> T {
        guard let config else { return try await body() }
        let endpoint = TiDBEndpoint(config, environment: environment, clientTLS: options.clientTLS, skipClientCA: options.skipClientCA)
        // `TIDB_BACKUP_MANAGER_CONNECT_TIMEOUT` (a Go duration, settable through `spec.env`) shortens or
        // lengthens the 30 minutes.
        var timeout = Double(options.connectTimeout.components.seconds)
        if let text = environment["TIDB_BACKUP_MANAGER_CONNECT_TIMEOUT"], let d = try? GoDuration(parsing: text) {
            timeout = Double(d.nanoseconds) / 1e9
        }
        let connection: TiDBConnection
        do {
            connection = try await TiDBConnection.connect(endpoint, environment: environment, deadline: now().addingTimeInterval(timeout), log: log)
        } catch {
            let message = redactor("\(error)")
            try await fail("ConnectTidbFailed", message)
            throw ManagerError(message)
        }
        do {
            let kind: ResourceKind = options.kind
            let api = self.api
            let key = BRLabels.gcLifeTimeOriginalAnnotation
            let guardian = GCLifeTimeGuard(connection: connection, target: lifeTime, log: log, recall: {
                try? await api.get(kind, namespace: options.namespace, name: options.name).value(at: ["metadata", "annotations", key])?.stringValue
            }, remember: { value in
                try await Self.annotate(api, kind, options, key, value)
            })
            return try await guardian.run(body)
        } catch let failure as GCLifeTimeGuard.Failure {
            try await fail(failure.reason, redactor(failure.description))
            throw ManagerError(redactor(failure.description))
        }
    }

    /// Sets (or with nil removes) one annotation on the Backup or Restore, by the one write rule.
    static func annotate(_ api: any KubeAPI, _ kind: ResourceKind, _ options: ManagerOptions, _ key: String, _ value: String?) async throws {
        func set<T: APIObject & Equatable>(_ type: T.Type) async throws {
            try await StatusWriter.updateObject(api, type, namespace: options.namespace, name: options.name) { o in
                var annotations = o.metadata.annotations ?? [:]
                annotations[key] = value
                o.metadata.annotations = annotations.isEmpty ? nil : annotations
            }
        }
        if kind == .restores { try await set(Restore.self) } else { try await set(Backup.self) }
    }

    // MARK: clean

    public func clean(_ options: ManagerOptions) async throws {
        let backup = try await object(Backup.self, options)
        guard let path = backup.status.backupPath, !path.isEmpty else {
            try await backupCondition(options, .failed, reason: "BackupPathIsEmpty", message: "backup \(options.namespace)/\(options.name) has no status.backupPath")
            throw ManagerError("backup \(options.namespace)/\(options.name) has no status.backupPath")
        }
        if options.dryRun {
            log("clean: would delete every object under \(path)")
            return
        }
        do {
            if backup.spec.br == nil {
                // A Dumpling archive: the object itself and a leftover upload.
                var storage = backup.spec.storage
                storage.prefix = ""
                let store = try storageFactory.make(storage)
                let key = try archiveKey(path, storage: backup.spec.storage)
                do {
                    try await store.delete(key)
                    try await store.delete(key + ".tmp")
                } catch where StorageError.isMissingContainer(error) {
                    log("clean of \(path): the bucket does not exist, so nothing was written there and nothing is left to delete")
                }
            } else {
                var settings = CleanSettings()
                if let o = backup.spec.cleanOption {
                    if let v = o.pageSize, v > 0 { settings.pageSize = Int(v) }
                    if let v = o.retryCount, v > 0 { settings.retryCount = v }
                    settings.backoffEnabled = o.backoffEnabled ?? false
                    settings.disableBatchConcurrency = o.disableBatchConcurrency ?? false
                    if let v = o.batchConcurrency, v > 0 { settings.batchConcurrency = Int(v) }
                    if let v = o.routineConcurrency, v > 0 { settings.routineConcurrency = Int(v) }
                }
                let storage = try storageFactory.make(backup.spec.storage)
                if backup.spec.effectiveBackupMode == .volumeSnapshot {
                    try await VolumeSnapshotClean(manager: self).deleteSnapshots(backup, storage: storage)
                }
                let report = try await Cleaner(storage: storage, settings: settings).clean()
                if report.containerMissing {
                    log("clean of \(path): the bucket does not exist, so nothing was written there and nothing is left to delete")
                } else {
                    log("clean of \(path): \(report.deleted) objects deleted in \(report.requests) requests, \(report.rounds) round(s)")
                }
            }
        } catch {
            try await backupCondition(options, .cleanFailed, reason: "CleanBackupDataFailed", message: "clean \(path): \(error)")
            throw error
        }
        try await backupCondition(options, .clean)
    }

    /// The archive's key within the bucket, from `s3://bucket/prefix/backup-….tgz`.
    func archiveKey(_ path: String, storage: StorageProvider) throws -> String {
        guard let scheme = path.range(of: "://") else { throw ManagerError("backupPath \(path) has no scheme") }
        let rest = path[scheme.upperBound...]
        guard let slash = rest.firstIndex(of: "/") else { throw ManagerError("backupPath \(path) names no object") }
        return String(rest[rest.index(after: slash)...])
    }
}
