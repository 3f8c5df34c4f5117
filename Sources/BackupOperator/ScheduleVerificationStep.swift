import BRModel
import BRObjects
import ControllerKit
import Cron
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// A schedule's verification (`spec.verification`): its backups restored into a scratch cluster, one
/// at a time, each run an ordinary Restore owned by the Backup it verifies (`BackupVerification`, which
/// the Backup's reconciler also uses to record the outcome).
///
/// Steps, each pass: the schedule's status says the newest verified backup and the point it restores
/// to, and `VerificationFailed` while the latest verification failed → finished verification Restores
/// beyond `keep` are deleted (their Backups keep the outcome) → while a verification runs nothing new
/// starts → the next backup (the newest not yet verified, at once or, with `verification.schedule`, at
/// each slot) is started.
struct ScheduleVerificationStep {
    let api: any KubeAPI
    let events: EventRecorder
    let metrics: MetricsRegistry?
    let notifier: Notifier?

    static let failedCondition = "VerificationFailed"

    /// Returns when to look again (a verification slot), or nil (the Backups' changes bring the schedule back).
    func run(_ schedule: BackupSchedule, _ status: inout BackupScheduleStatus, zone: TimeZone, now: Date) async throws -> Duration? {
        guard let spec = schedule.spec.verification else {
            status.clear(Self.failedCondition)
            return nil
        }
        let ns = schedule.metadata.namespace ?? ""
        let name = schedule.metadata.name ?? ""
        let backups = try await api.list(Backup.self, namespace: ns, labelSelector: BRLabels.scheduleSelector(scheduleName: name))

        // 1. The schedule's view.
        let finished = backups.compactMap { b -> (Backup, BackupVerificationStatus)? in
            guard let v = b.status.verification, v.phase != .running else { return nil }
            return (b, v)
        }.sorted { ($0.1.timeCompleted?.unixSeconds ?? 0, $0.0.name) < ($1.1.timeCompleted?.unixSeconds ?? 0, $1.0.name) }
        let verified = finished.filter { $0.1.phase == .verified }
        if let newest = verified.max(by: { (Self.restorePoint($0.0) ?? 0) < (Self.restorePoint($1.0) ?? 0) }) {
            status.lastVerifiedBackup = newest.0.name
            status.lastVerifiedTime = newest.1.timeCompleted
            status.provenRestorable = Self.restorePoint(newest.0).map { Time(Date(timeIntervalSince1970: TimeInterval($0))) }
            if let seconds = status.lastVerifiedTime?.unixSeconds {
                metrics?.set("backup_verified_timestamp_seconds", ["schedule": schedule.metadata.key], Double(seconds))
            }
        }
        if let latest = finished.last, latest.1.phase == .failed {
            status.set(ScheduleCondition(type: Self.failedCondition, reason: "VerificationFailed",
                                         message: "Backup \(latest.0.name): \(latest.1.failure ?? "failed")"), now: Time(now))
        } else {
            status.clear(Self.failedCondition)
        }

        // 2. Retention of the Restores (finished ones beyond `keep`, oldest first).
        let restores = try await api.list(Restore.self, namespace: ns, labelSelector: "\(BRLabels.verificationSchedule)=\(name)")
        let done = restores.filter { $0.status.phase == .complete || $0.status.phase == .failed }
            .sorted { ($0.metadata.creationTimestamp?.unixSeconds ?? 0, $0.name) > ($1.metadata.creationTimestamp?.unixSeconds ?? 0, $1.name) }
        for old in done.dropFirst(spec.effectiveKeep) {
            _ = try? await api.delete(.restores, namespace: ns, name: old.name, options: DeleteOptions(propagationPolicy: .background))
        }

        // 3. One at a time: the scratch cluster holds one restore.
        if backups.contains(where: { $0.status.verification?.phase == .running }) { return nil }
        let candidates = backups.filter { $0.status.phase == .complete && $0.status.verification == nil
            && $0.spec.effectiveBackupMode == .snapshot && $0.metadata.deletionTimestamp == nil }
        guard !candidates.isEmpty else { return nil }
        let next: Backup
        if let cronText = spec.schedule, let cron = try? CronSchedule(parsing: cronText) {
            let since = status.lastVerificationStart?.date ?? schedule.metadata.creationTimestamp?.date ?? now
            guard let due = cron.next(after: since, in: zone) else { return nil }
            if due > now { return .seconds(max(1, Int64(due.timeIntervalSince(now).rounded(.up)))) }
        }
        // The newest first: when backups come faster than they restore, the proven point stays the
        // latest backup, and older ones wait for a quiet moment instead of a queue that only grows.
        next = candidates.max(by: ScheduleReconciler.olderFirst)!
        try await BackupVerification(api: api, events: events, metrics: metrics, notifier: notifier, now: now).start(next, spec, schedule: schedule)
        status.lastVerificationStart = Time(now)
        return nil
    }

    /// The point in time a verified backup proves: the point its point-in-time step restored, else
    /// its commit TS's physical time, else its completion.
    static func restorePoint(_ backup: Backup) -> Int64? {
        if backup.status.verification?.phase == .verified, let ts = backup.status.verification?.pitrRestoredTs.flatMap({ UInt64($0) }), ts > 0 {
            return TSO.unixMilliseconds(ts) / 1000
        }
        if let ts = backup.status.commitTs.flatMap({ UInt64($0) }), ts > 0 { return TSO.unixMilliseconds(ts) / 1000 }
        return backup.status.timeCompleted?.unixSeconds
    }
}
