import BRModel
import BRObjects
import BackupStorage
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// One log backup sub-command in the job binary (reference 6.3.3): `br log start|stop|pause|resume|truncate`,
/// every status write carrying the command so that `BackupStatus.applyLog` files it under
/// `logSubCommandStatuses` and moves the whole status as the translation table says.
struct LogBackupJob {
    let manager: Manager
    let options: ManagerOptions
    var log: @Sendable (String) -> Void { manager.log }

    /// TiDB Operator's failure reasons, spelling included.
    static let failureReasons: [LogSubCommand: String] = [
        .start: "StartLogBackupFailed", .stop: "StopLogBackupFailed", .pause: "PauseLogBackupFailed",
        .resume: "ResumeLogBackuFailed", .truncate: "TruncateLogBackuFailed",
    ]

    func write(_ command: LogSubCommand, _ type: BackupConditionType, reason: String? = nil, message: String? = nil,
               fields: LogCommandFields = LogCommandFields()) async throws {
        let now = Time(manager.now())
        let condition = BackupCondition(type: type, reason: reason, message: message.map { manager.redactor($0) }, command: command)
        var changed = false
        let written = try await manager.update(Backup.self, options) { b in
            changed = b.status.applyLog(command, condition, fields: fields, now: now)
        }
        if changed, let written { await manager.events.record(written, ConditionEvent(written, condition)) }
    }

    func run() async throws {
        let backup = try await manager.object(Backup.self, options)
        guard let br = backup.spec.br else { throw ManagerError("no br config in \(options.namespace)/\(options.name)") }
        let command = LogSubCommand(rawValue: options.subcommand)
        guard let failure = Self.failureReasons[command] else {
            throw ManagerError("log backup \(options.namespace)/\(options.name) unknown log subcommand \(options.subcommand)")
        }
        let argv = try RunPlan.backup(backup, options, pd: manager.pd(options, br: br), brFiles: ToolArguments.brBinDirectory)[0].argv
        if options.dryRun {
            log(Manager.Plan(tool: "br", argv: argv, environment: manager.environmentNames()).render())
            return
        }
        try await write(command, .prepare)
        var running = LogCommandFields()
        if command == .start {
            do {
                running.backupPath = try ToolArguments.storagePath(backup.spec.storage)
            } catch {
                try await write(command, .failed, reason: "GetBackupRemotePathFailed", message: "\(error)")
                throw error
            }
        }
        if command == .truncate { running.logTruncatingUntil = options.truncateUntil }
        let started = Time(manager.now())
        try await write(command, .running, fields: running)
        let (exe, prefix) = try manager.tools.locate(.br)
        let progress = ProgressPublisher(manager: manager, options: options)
        let result = try await ToolRunner(redact: manager.redactor, log: log).run(exe, prefix + argv, environment: manager.toolEnvironment()) { _, line in
            if let op = BRLog.operation(line, now: Time(Date())) { progress.record(operation: op) }
        }
        await progress.flush()
        guard result.succeeded else {
            let message = result.brFailure(options)
            try await write(command, .failed, reason: failure, message: message)
            throw ManagerError(message)
        }
        var done = LogCommandFields(timeStarted: started, timeCompleted: Time(manager.now()))
        switch command {
        case .start:
            do {
                let meta = try await manager.readBackupMeta(try manager.storageFactory.make(backup.spec.storage))
                done.commitTs = String(meta.startVersion)
            } catch {
                try await write(command, .failed, reason: "GetLogBackupMetadataFailed", message: "\(error)")
                throw error
            }
        case .truncate:
            done.logSuccessTruncateUntil = options.truncateUntil
        default: break
        }
        try await write(command, .complete, fields: done)
        log("log backup \(options.namespace)/\(options.name): \(command.rawValue) complete")
    }
}
