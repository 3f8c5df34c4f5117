import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// A log backup (`backupMode: log`, reference 3.8): one Job per sub-command, `backup-<name>-log-<cmd>`,
/// derived from `spec.logSubcommand`, `logStop` and `logTruncateUntil` and the current phase:
/// - a command already in effect runs no Job (start: a commit TS; stop: Stopped; pause: Paused;
///   resume: Running); then a new `logTruncateUntil` becomes `log-truncate`;
/// - a truncate to a point not after the start or the last truncate is recorded Complete at once;
/// - a command that ran before (a pause after a resume) has its old Job replaced.
///
/// Every status write goes through `BackupStatus.applyLog`, so `logSubCommandStatuses` and the whole
/// status move as TiDB Operator's translation table says.
struct LogBackupFlow {
    let r: BackupReconciler
    var api: any KubeAPI { r.api }

    func reconcile(_ backup: Backup, cluster: TidbCluster?) async throws -> ReconcileOutcome {
        let command = backup.derivedLogSubcommand
        guard let cluster else {
            try await r.setCondition(backup, BackupCondition(type: .invalid, reason: "InvalidSpec", message: "a log backup needs spec.br.cluster"))
            return .done
        }
        if let skipped = try await skip(backup, command) {
            // A command in effect: the tracker's step keeps the status in line with TiKV.
            if skipped == .done && command != .truncate { return try await LogBackupKernelSync(r: r).sync(backup, command: command, cluster: cluster) }
            return skipped
        }
        let jobName = backup.logJob(command).name
        if let waiting = try await otherCommandRunning(backup, command) { return waiting }
        let job = try await api.jobState(namespace: backup.namespace, name: jobName)
        let entry = backup.status.logSubCommandStatuses?[command.rawValue]
        if job.exists {
            if job.deleting { return .requeue(after: .seconds(2)) }
            if job.finished && (entry?.phase == .repeatable || entry?.phase == .complete || entry == nil) {
                // Run before and asked for again (pause, resume, pause): the old Job makes way.
                try await r.deleteJob(backup, jobName)
                return .requeue(after: .seconds(1))
            }
            if job.failed && entry?.phase != .failed {
                try await write(backup, command, BackupCondition(type: .failed, reason: "AlreadyFailed",
                                                                 message: "Job \(jobName) has failed: \(job.failureReason)"))
            }
            return job.finished ? .done : .requeue(after: .seconds(30))
        }
        if entry?.phase == .failed {
            // Not retried (as upstream): a spec edit asks again. The tracker keeps reading TiKV meanwhile.
            return try await LogBackupKernelSync(r: r).sync(backup, command: command, cluster: cluster)
        }
        let built: JSONValue
        do {
            built = try await r.jobs.logBackupJob(backup, cluster: cluster, command: command)
        } catch let e as JobBuildError {
            try await write(backup, command, BackupCondition(type: .retryFailed, reason: e.reason, message: e.message))
            return .requeue(after: .seconds(30))
        }
        if try await api.createIfAbsent(.jobs, namespace: backup.namespace, object: built) {
            await r.events.record(backup, .normal, reason: "SuccessfulCreate",
                                  message: "create log backup job \(backup.namespace)/\(jobName) (\(command.rawValue)) successful")
        }
        try await write(backup, command, BackupCondition(type: .scheduled))
        return .requeue(after: r.timeouts.podStart)
    }

    /// One sub-command at a time, as TiDB Operator does: while another sub-command's Job of this Backup
    /// is still at work (its entry Scheduled, Prepare or Running and its Job not finished), a new command
    /// (a stop asked for while the start runs) waits for it. A Job that ended without its result
    /// arriving does not block.
    func otherCommandRunning(_ backup: Backup, _ command: LogSubCommand) async throws -> ReconcileOutcome? {
        let busy: [BackupConditionType] = [.scheduled, .prepare, .running]
        for (name, entry) in backup.status.logSubCommandStatuses ?? [:] where name != command.rawValue {
            guard let phase = entry.phase, busy.contains(phase) else { continue }
            let other = try await api.jobState(namespace: backup.namespace, name: backup.logJob(LogSubCommand(rawValue: name)).name)
            if other.exists && !other.finished {
                r.logger.info("log sub-command waits for the one running", metadata: ["backup": "\(backup.namespace)/\(backup.name)",
                                                                                   "command": "\(command.rawValue)", "running": "\(name)"])
                return .requeue(after: .seconds(5))
            }
        }
        return nil
    }

    /// Before a deleted log backup's data goes, its task is stopped (`stop-<name>`), so that TiKV does
    /// not go on writing into a prefix being deleted. Nil when there is nothing (more) to wait for.
    func stopBeforeClean(_ backup: Backup) async throws -> ReconcileOutcome? {
        guard !(backup.status.commitTs ?? "").isEmpty, backup.status.phase != .stopped, let br = backup.spec.br else { return nil }
        let name = backup.stopLogJobName
        let job = try await api.jobState(namespace: backup.namespace, name: name)
        if job.exists { return job.finished ? nil : .requeue(after: .seconds(5)) }
        guard let cluster = try await api.getIfPresent(TidbCluster.self, namespace: backup.clusterNamespace, name: br.cluster) else { return nil }
        var built = try await r.jobs.logBackupJob(backup, cluster: cluster, command: .stop)
        built["metadata"]?["name"] = .string(name)
        if try await api.createIfAbsent(.jobs, namespace: backup.namespace, object: built) {
            await r.events.record(backup, .normal, reason: "SuccessfulCreate",
                                  message: "create job \(backup.namespace)/\(name) to stop log backup \(backup.name) before its data is cleaned")
        }
        return .requeue(after: .seconds(5))
    }

    /// The skip rules of 3.8; nil when a Job must run.
    func skip(_ backup: Backup, _ command: LogSubCommand) async throws -> ReconcileOutcome? {
        let phase = backup.status.phase
        switch command {
        case .start: if !(backup.status.commitTs ?? "").isEmpty { return .done }
        case .stop: if phase == .stopped { return .done }
        case .pause: if phase == .paused { return .done }
        case .resume: if phase == .running { return .done }
        case .truncate:
            let until = tso(backup.spec.logTruncateUntil)
            let start = tso(backup.status.commitTs)
            let done = tso(backup.status.logSuccessTruncateUntil)
            if until <= start || until <= done {
                let now = r.now
                try await write(backup, .truncate, BackupCondition(type: .complete, message: "nothing to truncate before \(backup.spec.logTruncateUntil ?? "")"),
                                fields: LogCommandFields(timeStarted: now, timeCompleted: now, logSuccessTruncateUntil: backup.spec.logTruncateUntil,
                                                         logTruncatingUntil: backup.spec.logTruncateUntil))
                return .done
            }
        default: break
        }
        return nil
    }

    func write(_ backup: Backup, _ command: LogSubCommand, _ condition: BackupCondition,
               fields: LogCommandFields = LogCommandFields()) async throws {
        let now = r.now
        var changed = false
        let written = try await StatusWriter.update(api, Backup.self, namespace: backup.namespace, name: backup.name, from: backup) { b in
            changed = b.status.applyLog(command, condition, fields: fields, now: now)
        }
        if changed { await r.events.record(written ?? backup, ConditionEvent(backup, condition)) }
    }
}

/// A TSO in decimal or as a time (`TSO.parse`); 0 when absent or invalid.
func tso(_ text: String?) -> UInt64 {
    guard let text, let v = try? TSO.parse(text) else { return 0 }
    return v
}
