import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// A schedule's compactions (reference 5.8, 5.9): next to its log backup, a CompactBackup every
/// `compactInterval` over the log written since the last one (at most three intervals at a time, so a
/// long backlog is caught up in steps), and retention of CompactBackups with the snapshots'.
///
/// Steps: the last CompactBackup's outcome moves `lastCompactProgress` (never back) → while it runs
/// nothing new starts → the next range from the progress to the log's checkpoint → create it.
/// Where TiDB Operator differs: `lastCompactExecutionTs` is written only when the CompactBackup was
/// created (upstream also writes it after a failed create, which delays the retry by an interval);
/// a schedule whose compaction cannot run says why in a `CompactionDisabled` condition.
struct ScheduleCompactStep {
    let api: any KubeAPI
    let events: EventRecorder

    /// Why compaction cannot run for this schedule, or nil.
    static func disabledReason(_ schedule: BackupSchedule) -> String? {
        guard schedule.spec.compactBackupTemplate != nil else { return nil }
        if schedule.spec.logBackupTemplate == nil { return "compactBackupTemplate needs logBackupTemplate: compaction works on the schedule's log backup" }
        if (schedule.spec.compactInterval ?? "").isEmpty { return "compactBackupTemplate needs compactInterval: how often to compact" }
        return nil
    }

    /// Creates the next CompactBackup when one is due; returns when to look again.
    func run(_ schedule: BackupSchedule, _ status: inout BackupScheduleStatus, now: Date) async throws -> Duration? {
        guard Self.disabledReason(schedule) == nil, schedule.spec.compactBackupTemplate != nil,
              let logStart = status.logBackupStartTs, let logName = status.logBackup, !logName.isEmpty,
              let interval = try? GoDuration(parsing: schedule.spec.compactInterval ?? ""), interval.wholeSeconds > 0 else { return nil }
        let ns = schedule.metadata.namespace ?? ""
        if let lastName = status.lastCompact, !lastName.isEmpty {
            let last = try await api.getIfPresent(CompactBackup.self, namespace: ns, name: lastName)
            let (progress, blocked) = ScheduleCompaction.progress(last: last, logStart: logStart, current: status.lastCompactProgress)
            if let progress { status.lastCompactProgress = progress }
            // A running compaction's own changes bring the schedule back.
            if blocked { return nil }
        }
        guard let log = try await api.getIfPresent(Backup.self, namespace: ns, name: logName) else { return nil }
        let checkpoint = UInt64(log.status.logCheckpointTs ?? "") ?? 0
        let minStart = (schedule.spec.minCompactStartTs).flatMap { try? TSO.parse($0, zone: TimeZone(identifier: "UTC")!) }
        let current = Time(now)
        guard let range = ScheduleCompaction.nextRange(progress: status.lastCompactProgress, logStart: logStart, checkpoint: checkpoint,
                                                       minStart: minStart, interval: interval.wholeSeconds,
                                                       lastExecution: status.lastCompactExecutionTs, now: current) else {
            // Due at the earliest an interval after the last one began (the checkpoint moves meanwhile).
            let since = status.lastCompactExecutionTs.map { current.unixSeconds - $0.unixSeconds } ?? 0
            return .seconds(max(1, interval.wholeSeconds - since))
        }
        guard let compact = schedule.makeCompactBackup(start: range.start, end: range.end, now: current) else { return nil }
        do {
            _ = try await api.create(compact)
            await events.record(schedule, .normal, reason: "SuccessfulCreate",
                                message: "create CompactBackup \(ns)/\(compact.name) (\(compact.spec.startTs ?? "")..\(compact.spec.endTs ?? "") UTC) for backupSchedule/\(schedule.metadata.name ?? "") successful")
        } catch let e as KubeAPIError where e.isAlreadyExists {
            // Created by an earlier pass whose status write was lost: the name is this second's.
        } catch let e as KubeAPIError {
            await events.record(schedule, .warning, reason: "FailedCreate",
                                message: "create CompactBackup \(ns)/\(compact.name) for backupSchedule/\(schedule.metadata.name ?? "") failed error: \(e.message)")
            throw e
        }
        status.lastCompact = compact.name
        status.lastCompactExecutionTs = current
        return .seconds(interval.wholeSeconds)
    }

    /// Retention of the schedule's CompactBackups (reference 5.9): by time, finished ones whose range
    /// ended before `expiredTS`, oldest first; by count, all past the newest `keep`. A running one is
    /// never deleted.
    func garbageCollect(_ schedule: BackupSchedule, _ status: inout BackupScheduleStatus, expiredTS: UInt64?, keep: Int?) async throws {
        guard expiredTS != nil || keep != nil else { return }
        let ns = schedule.metadata.namespace ?? ""
        let selector = BRLabels.scheduleLabels(scheduleName: schedule.metadata.name ?? "")
            .sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        let compacts = try await api.list(CompactBackup.self, namespace: ns, labelSelector: selector)
        let doomed = Self.expired(compacts, expiredTS: expiredTS, keep: keep)
        var deleted = 0
        for c in doomed {
            do {
                _ = try await api.delete(CompactBackup.self, namespace: ns, name: c.name)
            } catch let e as KubeAPIError where e.isNotFound {}
            deleted += 1
        }
        if deleted > 0 && deleted == compacts.count { status.lastCompact = nil }
    }

    static func expired(_ compacts: [CompactBackup], expiredTS: UInt64?, keep: Int?) -> [CompactBackup] {
        let oldestFirst = compacts.sorted {
            let (a, b) = ($0.metadata.creationTimestamp?.unixSeconds ?? 0, $1.metadata.creationTimestamp?.unixSeconds ?? 0)
            return a != b ? a < b : $0.name < $1.name
        }
        if let expiredTS {
            let utc = TimeZone(identifier: "UTC")!
            return Array(oldestFirst.prefix { c in
                c.isFinished && ((try? TSO.parse(c.spec.endTs ?? "", zone: utc)) ?? 0) < expiredTS
            })
        }
        guard let keep else { return [] }
        return oldestFirst.reversed().enumerated().filter { $0.offset >= keep && $0.element.isFinished }.map(\.element)
    }
}
