import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// One backup's verification, wherever it was asked for (a schedule's `spec.verification`, or the
/// annotation `tidb-backup-operator.pingcap.com/verify: NAMESPACE/CLUSTER` on a Complete Backup): its
/// Restore is started here, and its outcome is recorded here, by the Backup's own reconciler (the
/// Restore's changes come to the Backup it is owned by).
struct BackupVerification {
    let api: any KubeAPI
    let events: EventRecorder
    let metrics: MetricsRegistry?
    let notifier: Notifier?
    let now: Date

    /// The verification a Backup asks for by its annotation, or nil.
    static func requested(_ backup: Backup) -> VerificationSpec? {
        guard let value = backup.metadata.annotations?[BRLabels.verifyAnnotation], let target = Verification.target(annotation: value) else { return nil }
        return VerificationSpec(target: target)
    }

    /// Whether the Backup carries the on-demand annotation at all (well formed or not).
    static func annotated(_ backup: Backup) -> Bool { backup.metadata.annotations?[BRLabels.verifyAnnotation] != nil }

    /// How long a scratch cluster made from `target.template` may take to become Ready.
    static let scratchReadyTimeout: TimeInterval = 30 * 60

    /// What the Backup's reconciler does for a Complete Backup: record a finished verification, put
    /// back a Restore that is missing, or start the verification its annotation asks for. Returns when
    /// to look again (a scratch cluster becoming ready), or nil.
    func reconcile(_ backup: Backup) async throws -> Duration? {
        if backup.status.verification?.phase == .running {
            return try await follow(backup)
        } else if backup.status.verification == nil, backup.status.phase == .complete, Self.annotated(backup) {
            guard let spec = Self.requested(backup) else {
                let value = backup.metadata.annotations?[BRLabels.verifyAnnotation] ?? ""
                await events.record(backup, .warning, reason: "VerificationRefused",
                                    message: "annotation \(BRLabels.verifyAnnotation): expected NAMESPACE/CLUSTER or CLUSTER, got \"\(value)\"")
                return nil
            }
            if let problem = Self.problem(spec, backup) {
                await events.record(backup, .warning, reason: "VerificationRefused", message: problem)
                return nil
            }
            try await start(backup, spec, schedule: nil)
        }
        return nil
    }

    /// The verification asked for a Backup: its schedule's, else its annotation's.
    func spec(for backup: Backup) async throws -> (VerificationSpec, BackupSchedule?)? {
        if let name = backup.metadata.labels?[BRLabels.backupSchedule],
           let schedule = try await api.getIfPresent(BackupSchedule.self, namespace: backup.namespace, name: name),
           let spec = schedule.spec.verification {
            return (spec, schedule)
        }
        return Self.requested(backup).map { ($0, nil) }
    }

    /// Creates the verification Restore, once a scratch cluster made from `target.template` is Ready
    /// (created here when absent). Returns when to look again while it is not, or nil.
    func createRestore(_ backup: Backup, _ spec: VerificationSpec, schedule: BackupSchedule?) async throws -> Duration? {
        if let cluster = Verification.makeScratchCluster(spec, namespace: backup.namespace, for: backup) {
            let ns = cluster.value(at: ["metadata", "namespace"])?.stringValue ?? backup.namespace
            guard let existing = try await api.getIfPresent(TidbCluster.self, namespace: ns, name: spec.target.cluster) else {
                do {
                    _ = try await api.create(.tidbClusters, namespace: ns, object: cluster)
                    await events.record(backup, .normal, reason: "ScratchClusterCreated",
                                        message: "TidbCluster \(ns)/\(spec.target.cluster) created from verification.target.template; waiting until it is Ready")
                } catch let e as KubeAPIError where e.isAlreadyExists {
                } catch let e as KubeAPIError where e.code == 404 {
                    try await record(backup, finished: Time(now), by: nil, cluster: spec.target.cluster, checks: [VerificationCheck(name: "scratch-cluster", passed: false,
                        message: "TidbCluster cannot be created (\(e.message)): verification.target.template needs TiDB Operator's TidbCluster CRD")])
                    return nil
                }
                return .seconds(10)
            }
            if !existing.isReady {
                let started = backup.status.verification?.timeStarted?.date ?? now
                if now.timeIntervalSince(started) > Self.scratchReadyTimeout {
                    try await record(backup, finished: Time(now), by: nil, cluster: spec.target.cluster, checks: [VerificationCheck(name: "scratch-cluster", passed: false,
                        message: "TidbCluster \(ns)/\(spec.target.cluster) was not Ready within \(Int(Self.scratchReadyTimeout / 60)) minutes")])
                    try await deleteScratchCluster(backup, spec)
                    return nil
                }
                return .seconds(10)
            }
        }
        do { _ = try await api.create(Verification.makeRestore(of: backup, spec: spec, schedule: schedule)) } catch let e as KubeAPIError where e.isAlreadyExists {}
        return nil
    }

    /// Deletes the scratch cluster a template made for this backup's run (never another TidbCluster).
    func deleteScratchCluster(_ backup: Backup, _ spec: VerificationSpec) async throws {
        guard spec.target.template != nil else { return }
        let ns = spec.target.namespace(default: backup.namespace)
        guard let cluster = try await api.getIfPresent(TidbCluster.self, namespace: ns, name: spec.target.cluster),
              cluster.metadata.labels?[BRLabels.scratchCluster] == backup.name else { return }
        _ = try? await api.delete(.tidbClusters, namespace: ns, name: spec.target.cluster, options: DeleteOptions(propagationPolicy: .background))
        await events.record(backup, .normal, reason: "ScratchClusterDeleted", message: "TidbCluster \(ns)/\(spec.target.cluster) deleted after the verification")
    }

    /// Why a verification of `backup` into `spec.target` must not run, or nil.
    static func problem(_ spec: VerificationSpec, _ backup: Backup) -> String? {
        guard let br = backup.spec.br, backup.spec.effectiveBackupMode == .snapshot else {
            return "annotation \(BRLabels.verifyAnnotation): only BR snapshot backups are verified"
        }
        if spec.target.isCluster(of: br, in: backup.namespace) {
            return "annotation \(BRLabels.verifyAnnotation): \(spec.target.namespace(default: backup.namespace))/\(spec.target.cluster) \(Verification.productionMessage)"
        }
        return nil
    }

    /// Starts the verification: the Backup says so first, then its Restore is created (a crash between
    /// the two leaves a Running verification whose Restore `follow` creates).
    func start(_ backup: Backup, _ spec: VerificationSpec, schedule: BackupSchedule?) async throws {
        let restore = Verification.makeRestore(of: backup, spec: spec, schedule: schedule)
        let target = "\(restore.spec.br?.clusterNamespace ?? backup.namespace)/\(spec.target.cluster)"
        let written = try await StatusWriter.update(api, Backup.self, namespace: backup.namespace, name: backup.name, from: backup) { b in
            b.status.verification = BackupVerificationStatus(phase: .running, restore: restore.name, target: target, timeStarted: Time(now))
        }
        await events.record(written ?? backup, .normal, reason: "VerificationStarted",
                            message: "restoring into \(target) with Restore \(backup.namespace)/\(restore.name) to verify this backup")
        _ = try await createRestore(written ?? backup, spec, schedule: schedule)
    }

    /// A Running verification: its Restore's outcome, once it has one, becomes the Backup's, or (with
    /// `pointInTime`, the snapshot passed) the next step starts.
    func follow(_ backup: Backup) async throws -> Duration? {
        guard let v = backup.status.verification, let name = v.restore else { return nil }
        let pointName = Verification.restoreName(for: backup.name, step: .pointInTime)
        guard let restore = try await api.getIfPresent(Restore.self, namespace: backup.namespace, name: name) else {
            // Not there yet (its scratch cluster not Ready), or gone before it finished: made (again),
            // under the same name.
            guard let (spec, schedule) = try await spec(for: backup) else { return nil }
            if name == pointName { return try await startPointInTime(backup, spec, schedule: schedule, snapshotChecks: v.checks ?? [], snapshotDone: now) }
            return try await createRestore(backup, spec, schedule: schedule)
        }
        guard let phase = restore.status.phase, phase == .complete || phase == .failed else { return nil }
        let step = VerificationStep(of: restore)
        let stepChecks = Verification.checks(of: restore, checksum: restore.spec.br?.checksum ?? true)
        let asked = try await spec(for: backup)
        if step == .snapshot, stepChecks.allSatisfy(\.passed), let (spec, schedule) = asked, Verification.steps(spec).contains(.pointInTime) {
            return try await startPointInTime(backup, spec, schedule: schedule, snapshotChecks: stepChecks,
                                              snapshotDone: restore.status.timeCompleted?.date ?? now)
        }
        if let (spec, _) = asked { try await deleteScratchCluster(backup, spec) }
        let checks = (step == .pointInTime ? v.checks ?? [] : []) + stepChecks
        try await record(backup, finished: restore.status.timeCompleted ?? Time(now), by: restore.name, cluster: restore.spec.br?.cluster, checks: checks)
        return nil
    }

    /// The point-in-time step: a point inside the schedule's log window (its checkpoint, at most now,
    /// past this backup's commit TS) restored from this backup and the log. Waits (up to
    /// `Verification.logCatchUpTimeout` after the snapshot step) for the checkpoint to pass the backup;
    /// a Restore that went missing is made again with the point already chosen. Returns when to look again.
    func startPointInTime(_ backup: Backup, _ spec: VerificationSpec, schedule: BackupSchedule?,
                          snapshotChecks: [VerificationCheck], snapshotDone: Date) async throws -> Duration? {
        let ns = backup.namespace
        let pointName = Verification.restoreName(for: backup.name, step: .pointInTime)
        let cluster = spec.target.cluster
        func fail(_ message: String) async throws -> Duration? {
            try await deleteScratchCluster(backup, spec)
            try await record(backup, finished: Time(now), by: nil, cluster: cluster,
                             checks: snapshotChecks + [VerificationCheck(name: VerificationStep.pointInTime.rawValue, passed: false, message: message)])
            return nil
        }
        guard let logName = schedule?.status.logBackup, !logName.isEmpty,
              let log = try await api.getIfPresent(Backup.self, namespace: ns, name: logName) else {
            return try await fail("the schedule has no log backup (status.logBackup) to restore a point in time through")
        }
        var v = backup.status.verification ?? BackupVerificationStatus(phase: .running)
        let restoredTs: UInt64
        if v.restore == pointName, let ts = v.pitrRestoredTs.flatMap({ UInt64($0) }) {
            restoredTs = ts
        } else {
            guard let commit = backup.status.commitTs.flatMap({ UInt64($0) }), commit > 0 else {
                return try await fail("the backup has no commit TS to restore a point after")
            }
            let checkpoint = log.status.logCheckpointTs.flatMap { UInt64($0) }
            guard let point = Verification.pointInTime(snapshotCommitTs: commit, logCheckpointTs: checkpoint, now: now) else {
                if now.timeIntervalSince(snapshotDone) > Verification.logCatchUpTimeout {
                    return try await fail("the log backup \(logName)'s checkpoint (\(checkpoint.map(String.init) ?? "none")) did not pass this backup's commit TS \(commit) within \(Int(Verification.logCatchUpTimeout / 60)) minutes")
                }
                if v.checks != snapshotChecks {
                    // What the snapshot step proved shows while the log catches up.
                    _ = try await StatusWriter.update(api, Backup.self, namespace: ns, name: backup.name, from: backup) { b in
                        guard b.status.verification?.phase == .running else { return }
                        b.status.verification?.checks = snapshotChecks
                    }
                    await events.record(backup, .normal, reason: "VerificationWaitingForLog",
                                        message: "snapshot verified; waiting for log backup \(logName)'s checkpoint to pass this backup's commit TS \(commit)")
                }
                return .seconds(15)
            }
            restoredTs = point
            v.restore = pointName
            v.pitrRestoredTs = String(point)
            v.checks = snapshotChecks
            let verification = v
            let written = try await StatusWriter.update(api, Backup.self, namespace: ns, name: backup.name, from: backup) { b in
                guard b.status.verification?.phase == .running else { return }
                b.status.verification = verification
            }
            let when = Date(timeIntervalSince1970: TimeInterval(TSO.unixMilliseconds(point)) / 1000)
            await events.record(written ?? backup, .normal, reason: "VerificationPointInTime",
                                message: "snapshot verified; restoring \(point) (\(Time(when).description)) from this backup and log backup \(logName) with Restore \(ns)/\(pointName)")
        }
        let restore = Verification.makePointRestore(of: backup, log: log, restoredTs: restoredTs, spec: spec, schedule: schedule)
        do { _ = try await api.create(restore) } catch let e as KubeAPIError where e.isAlreadyExists {}
        return nil
    }

    /// The one way an outcome is recorded: the Backup's status, the metric, an Event, and for a
    /// failure the webhook. `restoreName`: the Restore whose outcome it is (nil when none ran).
    func record(_ backup: Backup, finished: Time, by restoreName: String?, cluster: String?, checks: [VerificationCheck]) async throws {
        let passed = checks.allSatisfy(\.passed)
        let written = try await StatusWriter.update(api, Backup.self, namespace: backup.namespace, name: backup.name, from: backup) { b in
            guard var v = b.status.verification, v.phase == .running, restoreName == nil || v.restore == restoreName else { return }
            v.phase = passed ? .verified : .failed
            v.checks = checks
            v.timeCompleted = finished
            b.status.verification = v
        }
        let schedule = backup.metadata.labels?[BRLabels.backupSchedule] ?? ""
        metrics?.increment("backup_verifications_total", ["schedule": schedule.isEmpty ? "" : "\(backup.namespace)/\(schedule)",
                                                          "outcome": passed ? "Verified" : "Failed"])
        let by = restoreName.map { "Restore \($0)" } ?? "the verification"
        if passed {
            await events.record(written ?? backup, .normal, reason: "Verified",
                                message: "restored into \(written?.status.verification?.target ?? "") by \(by); checks passed: \(checks.map(\.name).joined(separator: ", "))")
            return
        }
        let failure = written?.status.verification?.failure ?? "failed"
        await events.record(written ?? backup, .warning, reason: "VerificationFailed", message: "\(by): \(failure)")
        var extra: String?
        if !schedule.isEmpty {
            extra = try? await api.getIfPresent(BackupSchedule.self, namespace: backup.namespace, name: schedule)?.metadata.annotations?[Notifier.annotation]
        }
        notifier?.send(Notifier.Message(type: "backup.verification_failed", time: finished.description, namespace: backup.namespace, name: backup.name,
                                        schedule: schedule.isEmpty ? nil : schedule, cluster: cluster, phase: "Failed",
                                        reason: "VerificationFailed", message: "\(by): \(failure)"),
                       extra: extra)
    }
}
