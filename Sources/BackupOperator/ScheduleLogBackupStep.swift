import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// A schedule's log backup (reference 5.8, 5.9): created once from `logBackupTemplate` and kept
/// running next to the snapshots; after retention deletes snapshots, the log is truncated to the oldest
/// snapshot that is kept, so every kept snapshot plus the log restores to any point since it — and no
/// log older than that is paid for.
///
/// Where TiDB Operator differs: a `log-<schedule>` Backup that already exists and is this schedule's is
/// adopted (upstream's sync aborts on it forever); count-based retention never deletes the log backup;
/// the truncation follows count-based retention too (upstream truncates only with `maxReservedTime`).
struct ScheduleLogBackupStep {
    let api: any KubeAPI
    let events: EventRecorder

    /// Creates the log backup when the schedule has a template and none yet. A schedule whose status an
    /// older operator wrote names its log backup without the time it started (TiDB Operator before
    /// v1.6.2 had no `logBackupStartTs`, and v1.6.2 crashed on such a schedule, #6304): that time is taken
    /// from the log backup itself, so compaction, which counts from it, carries on.
    func ensure(_ schedule: BackupSchedule, _ status: inout BackupScheduleStatus, now: Date) async throws {
        if let name = status.logBackup, !name.isEmpty {
            if status.logBackupStartTs == nil,
               let log = try await api.getIfPresent(Backup.self, namespace: schedule.metadata.namespace ?? "", name: name) {
                status.logBackupStartTs = Self.startTime(of: log)
            }
            return
        }
        guard let backup = schedule.makeLogBackup(now: Time(now)) else { return }
        let ns = schedule.metadata.namespace ?? ""
        do {
            _ = try await api.create(backup)
            await events.record(schedule, .normal, reason: "SuccessfulCreate",
                                message: "create log backup \(ns)/\(backup.name) for backupSchedule/\(schedule.metadata.name ?? "") successful")
        } catch let e as KubeAPIError where e.isAlreadyExists {
            let existing = try await api.get(Backup.self, namespace: ns, name: backup.name)
            guard existing.metadata.ownerReferences?.contains(where: { $0.uid == schedule.metadata.uid }) == true else {
                status.set(ScheduleCondition(type: "LogBackupConflict", reason: "LogBackupExists",
                                             message: "backup schedule \(ns)/\(schedule.metadata.name ?? ""), log backup \(backup.name) already exists and is not this schedule's"),
                           now: Time(now))
                return
            }
        }
        status.clear("LogBackupConflict")
        status.logBackup = backup.name
        status.logBackupStartTs = Time(now)
    }

    /// When a log backup began: its start TS (`status.commitTs`) once BR reported it, else its creation.
    static func startTime(of log: Backup) -> Time? {
        if let ts = UInt64(log.status.commitTs ?? ""), ts > 0 { return Time(unixSeconds: TSO.unixMilliseconds(ts) / 1000) }
        return log.metadata.creationTimestamp
    }

    /// After retention: the log backup truncated to the oldest kept Complete snapshot, when that point
    /// lies after the log's start and not after its checkpoint.
    func truncate(_ schedule: BackupSchedule, kept: [Backup]) async throws {
        guard let logName = schedule.status.logBackup, !logName.isEmpty,
              let log = kept.first(where: { $0.name == logName && $0.spec.effectiveBackupMode == .log }) else { return }
        let snapshots = kept.filter { $0.spec.effectiveBackupMode != .log && $0.status.phase == .complete }
        guard var oldest = snapshots.map({ tso($0.status.commitTs) }).filter({ $0 > 0 }).min() else { return }
        if schedule.spec.compactBackupTemplate != nil {
            // Log not yet compacted is kept (reference 5.9 step 4): nothing goes before the first compaction.
            guard let progress = schedule.status.lastCompactProgress else { return }
            oldest = min(oldest, TSO.fromUnixSeconds(progress.unixSeconds))
        }
        let start = tso(log.status.commitTs)
        let checkpoint = tso(log.status.logCheckpointTs)
        let current = tso(log.spec.logTruncateUntil)
        guard start > 0, oldest > start, oldest <= checkpoint, oldest > current else { return }
        var updated = log
        updated.spec.logTruncateUntil = String(oldest)
        do {
            _ = try await api.update(updated)
            await events.record(schedule, .normal, reason: "LogTruncate",
                                message: "log backup \(log.namespace)/\(log.name) truncated until \(oldest) (the oldest kept snapshot, or how far compaction has come) for backupSchedule/\(schedule.metadata.name ?? "")")
        } catch let e as KubeAPIError where e.isConflict || e.isNotFound {
            // Changed meanwhile: the next pass looks again.
        }
    }
}
