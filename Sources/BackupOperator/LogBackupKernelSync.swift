import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// The log backup tracker (reference 3.8), as a step of each log backup's reconcile rather than a
/// separate loop: every `logSync` interval (and at every start of the operator, since each Backup is
/// reconciled then) a task in effect has PD's etcd read for it:
/// - the checkpoint (the advancer's `central_global`, else the slowest store's, else the task's start)
///   → `logCheckpointTs` and `timeSynced`;
/// - no task info → the sub-command in effect fails with `LogBackupTaskNotFound` (not for a stop);
/// - paused by an error (not by a user) → `Paused`, the reason in the condition and a Warning Event;
/// - a state that differs from the status twice in a row → the status follows the kernel
///   (`LogBackupKernelSync`), with an Event. No BR command is ever issued by this step.
///
/// Where TiDB Operator differs (reference 9.4): keys are read exactly, not as prefixes (task `lb` no
/// longer matches `lb-2`); a read that fails is retried at the next interval instead of failing the
/// tracker for good; an error pause becomes `Paused`, so `logSubcommand: log-start` resumes it.
struct LogBackupKernelSync {
    let r: BackupReconciler

    func sync(_ backup: Backup, command: LogSubCommand, cluster: TidbCluster) async throws -> ReconcileOutcome {
        let interval = r.timeouts.logSync
        guard backup.status.phase == .running || backup.status.phase == .paused else { return .done }
        let key = ObjectKey(namespace: backup.namespace, name: backup.name)
        // Once per interval, however often the Backup changes meanwhile.
        let now = r.clock.now()
        if let last = r.logSyncTimes.get(key), now.timeIntervalSince(last) < interval.seconds {
            return .requeue(after: .milliseconds(Int64((interval.seconds - now.timeIntervalSince(last)) * 1000) + 1))
        }
        r.logSyncTimes.set(key, now)
        let ns = cluster.metadata.namespace ?? backup.clusterNamespace
        let endpoints = (cluster.spec.pdAddresses?.filter { !$0.isEmpty }).flatMap { $0.isEmpty ? nil : $0 }
            ?? ["\(cluster.spec.tlsClusterEnabled ? "https" : "http")://\(cluster.metadata.name ?? "")-pd.\(ns):2379"]
        let etcd = r.pdStores(endpoints)
        let task = backup.name
        let info: [UInt8]?
        let checkpoint: UInt64
        let pause: [UInt8]?
        do {
            info = try await etcd.get(LogBackupKernel.infoKey(task))
            let global = try await etcd.get(LogBackupKernel.globalCheckpointKey(task))
            // Older TiKV: one checkpoint per store under the task's prefix.
            let others = global == nil ? try await etcd.list(prefix: LogBackupKernel.checkpointPrefix(task)) : []
            checkpoint = LogBackupKernel.taskCheckpoint(global: global, underPrefix: others,
                                                        info: info.flatMap { try? LogBackupKernel.TaskInfo(protobuf: $0) })
            pause = try await etcd.get(LogBackupKernel.pauseKey(task))
        } catch {
            r.logger.warning("log backup tracker: PD's etcd not read; trying again later", metadata: ["backup": "\(key)", "error": "\(error)"])
            return .requeue(after: interval)
        }
        guard info != nil else {
            if command != .stop && backup.status.logSubCommandStatuses?[command.rawValue]?.phase != .failed {
                try await LogBackupFlow(r: r).write(backup, command, BackupCondition(type: .failed, reason: "LogBackupTaskNotFound",
                    message: "Log backup task not found in TiKV, the task may have been deleted or cluster state is inconsistent"))
            }
            return .requeue(after: interval)
        }
        if checkpoint > 0 {
            let lag = max(0, r.clock.now().timeIntervalSince1970 - Double(TSO.unixMilliseconds(checkpoint)) / 1000)
            r.metrics?.set("log_backup_checkpoint_lag_seconds", ["backup": "\(key)"], lag)
        }
        if checkpoint > 0 && String(checkpoint) != backup.status.logCheckpointTs {
            let now = r.now
            _ = try await StatusWriter.update(r.api, Backup.self, namespace: backup.namespace, name: backup.name, from: backup) { b in
                b.status.logCheckpointTs = String(checkpoint)
                b.status.timeSynced = now
            }
        }
        let state = LogBackupKernel.state(paused: pause != nil)
        if state == .paused && backup.status.phase != .paused {
            let reason = LogBackupKernel.pauseReason(pause)
            if reason != "manual" {
                try await LogBackupFlow(r: r).write(backup, .pause, BackupCondition(type: .complete, reason: "LogBackupErrorPaused",
                                                                                     message: "Log backup paused due to error: \(reason)"))
                await r.events.record(backup, .warning, reason: "LogBackupErrorPaused",
                                      message: "log backup task \(task) was paused by an error: \(reason); fix it, then set spec.logSubcommand: log-start to resume")
                r.logMismatches.set(key, nil)
                return .requeue(after: interval)
            }
        }
        // The status's phase against the kernel (TiDB Operator compares the derived command, which
        // keeps a status that TiKV left behind from ever catching up).
        let said: LogBackupKernel.State = backup.status.phase == .paused ? .paused : .running
        if said == state {
            r.logMismatches.set(key, nil)
            return .requeue(after: interval)
        }
        let follows: LogSubCommand = state == .paused ? .pause : .resume
        if r.logMismatches.get(key) != follows {
            r.logMismatches.set(key, follows)
            return .requeue(after: interval)
        }
        r.logMismatches.set(key, nil)
        try await LogBackupFlow(r: r).write(backup, follows, BackupCondition(type: .complete, reason: "LogBackupKernelSync",
                                                                            message: "Synced with kernel state: \(state.rawValue)"))
        await r.events.record(backup, .warning, reason: "LogBackupKernelSync",
                              message: "log backup task \(task) is \(state.rawValue) in TiKV while the Backup said otherwise; the status now follows TiKV (no command was issued)")
        return .requeue(after: interval)
    }
}

/// A value per log backup kept in memory by the tracker: the sub-command whose state last disagreed
/// with the kernel, the time of the last read.
final class PerBackup<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [ObjectKey: Value] = [:]
    func get(_ key: ObjectKey) -> Value? { lock.withLock { values[key] } }
    func set(_ key: ObjectKey, _ value: Value?) { lock.withLock { values[key] = value } }
}
