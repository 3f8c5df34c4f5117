import BRModel
import BRObjects
import ControllerKit
import Cron
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// A schedule's verification (`spec.verification`): its backups restored into a scratch cluster, one
/// at a time, each run an ordinary Restore (`BackupSchedule.makeVerificationRestore`) owned by the
/// Backup it verifies.
///
/// Steps, each pass: the finished verification Restores give their Backups `status.verification`
/// (Verified, or Failed with the failing check's message) → the schedule's status says the newest
/// verified backup and the point it restores to, and `VerificationFailed` while the latest verification
/// failed → while a verification Restore runs nothing new starts → the next backup (the oldest not yet
/// verified; with `verification.schedule`, at each slot the newest) gets its Restore → finished
/// verification Restores beyond `keep` are deleted (their Backups keep the outcome).
struct ScheduleVerificationStep {
    let api: any KubeAPI
    let events: EventRecorder
    let metrics: MetricsRegistry?
    let notifier: Notifier?

    static let failedCondition = "VerificationFailed"

    /// Returns when to look again (a verification slot), or nil (the Restores' changes bring the schedule back).
    func run(_ schedule: BackupSchedule, _ status: inout BackupScheduleStatus, zone: TimeZone, now: Date) async throws -> Duration? {
        guard let spec = schedule.spec.verification else {
            status.clear(Self.failedCondition)
            return nil
        }
        let ns = schedule.metadata.namespace ?? ""
        let name = schedule.metadata.name ?? ""
        let selector = BRLabels.scheduleLabels(scheduleName: name).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        let backups = try await api.list(Backup.self, namespace: ns, labelSelector: selector)
        let restores = try await api.list(Restore.self, namespace: ns, labelSelector: "\(BRLabels.verificationSchedule)=\(name)")
        var byBackup = Dictionary(backups.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

        // 1. Outcomes.
        for restore in restores {
            guard let backupName = restore.metadata.labels?[BRLabels.verifies], let backup = byBackup[backupName],
                  let phase = restore.status.phase, phase == .complete || phase == .failed,
                  backup.status.verification?.phase == .running, backup.status.verification?.restore == restore.name else { continue }
            let checks = Verification.checks(of: restore, checksum: spec.checksum)
            let passed = checks.allSatisfy(\.passed)
            let finished = restore.status.timeCompleted ?? Time(now)
            let written = try await StatusWriter.update(api, Backup.self, namespace: ns, name: backup.name, from: backup) { b in
                guard var v = b.status.verification, v.restore == restore.name else { return }
                v.phase = passed ? .verified : .failed
                v.checks = checks
                v.timeCompleted = finished
                b.status.verification = v
            }
            if let written { byBackup[backupName] = written }
            let outcome = passed ? "Verified" : "Failed"
            metrics?.increment("backup_verifications_total", ["schedule": schedule.metadata.key, "outcome": outcome])
            if passed {
                await events.record(backup, .normal, reason: "Verified",
                                    message: "restored into \(written?.status.verification?.target ?? "") by Restore \(restore.name); checks passed: \(checks.map(\.name).joined(separator: ", "))")
            } else {
                let failure = written?.status.verification?.failure ?? "failed"
                await events.record(backup, .warning, reason: "VerificationFailed", message: "Restore \(restore.name): \(failure)")
                notifier?.send(Notifier.Message(type: "backup.verification_failed", time: finished.description, namespace: ns, name: backup.name,
                                                schedule: name, cluster: schedule.spec.verification?.target.cluster, phase: "Failed",
                                                reason: "VerificationFailed", message: "Restore \(restore.name): \(failure)"),
                               extra: schedule.metadata.annotations?[Notifier.annotation])
            }
        }

        // 2. The schedule's view.
        let finished = byBackup.values.compactMap { b -> (Backup, BackupVerificationStatus)? in
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

        // 3. Retention of the Restores (finished ones beyond `keep`, oldest first).
        let done = restores.filter { $0.status.phase == .complete || $0.status.phase == .failed }
            .sorted { ($0.metadata.creationTimestamp?.unixSeconds ?? 0, $0.name) > ($1.metadata.creationTimestamp?.unixSeconds ?? 0, $1.name) }
        for old in done.dropFirst(spec.effectiveKeep) {
            _ = try? await api.delete(.restores, namespace: ns, name: old.name, options: DeleteOptions(propagationPolicy: .background))
        }

        // 4. One at a time: the scratch cluster holds one restore.
        if restores.contains(where: { r in r.metadata.deletionTimestamp == nil && !(r.status.phase == .complete || r.status.phase == .failed) }) {
            return nil
        }
        // A verification recorded as started whose Restore is not there (a crash between the two
        // writes, or the Restore deleted): its Restore is created again, under the same name.
        if let stranded = byBackup.values.sorted(by: ScheduleReconciler.olderFirst).first(where: { b in
            b.status.verification?.phase == .running && !restores.contains { $0.name == b.status.verification?.restore }
        }), let restore = schedule.makeVerificationRestore(of: stranded) {
            do { _ = try await api.create(restore) } catch let e as KubeAPIError where e.isAlreadyExists {}
            return nil
        }
        let candidates = byBackup.values.filter { $0.status.phase == .complete && $0.status.verification == nil
            && $0.spec.effectiveBackupMode == .snapshot && $0.metadata.deletionTimestamp == nil }
        guard !candidates.isEmpty else { return nil }
        let next: Backup
        if let cronText = spec.schedule, let cron = try? CronSchedule(parsing: cronText) {
            let since = status.lastVerificationStart?.date ?? schedule.metadata.creationTimestamp?.date ?? now
            guard let due = cron.next(after: since, in: zone) else { return nil }
            if due > now { return .seconds(max(1, Int64(due.timeIntervalSince(now).rounded(.up)))) }
            next = candidates.max(by: ScheduleReconciler.olderFirst)!
        } else {
            next = candidates.min(by: ScheduleReconciler.olderFirst)!
        }
        try await start(schedule, spec, next, &status, now: now)
        return nil
    }

    func start(_ schedule: BackupSchedule, _ spec: VerificationSpec, _ backup: Backup, _ status: inout BackupScheduleStatus, now: Date) async throws {
        guard let restore = schedule.makeVerificationRestore(of: backup) else { return }
        let ns = schedule.metadata.namespace ?? ""
        let target = "\(restore.spec.br?.clusterNamespace ?? ns)/\(spec.target.cluster)"
        // The Backup says it first: a crash between the two leaves a Running verification whose Restore
        // the next pass creates (same name), never a Restore nobody reads.
        _ = try await StatusWriter.update(api, Backup.self, namespace: ns, name: backup.name, from: backup) { b in
            b.status.verification = BackupVerificationStatus(phase: .running, restore: restore.name, target: target, timeStarted: Time(now))
        }
        do {
            _ = try await api.create(restore)
            await events.record(backup, .normal, reason: "VerificationStarted",
                                message: "restoring into \(target) with Restore \(ns)/\(restore.name) to verify this backup")
        } catch let e as KubeAPIError where e.isAlreadyExists {}
        status.lastVerificationStart = Time(now)
    }

    /// The point in time a backup restores to: its commit TS's physical time, else its completion.
    static func restorePoint(_ backup: Backup) -> Int64? {
        if let ts = backup.status.commitTs.flatMap({ UInt64($0) }), ts > 0 { return Int64(ts >> 18) / 1000 }
        return backup.status.timeCompleted?.unixSeconds
    }
}
