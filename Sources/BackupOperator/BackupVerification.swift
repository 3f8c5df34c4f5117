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
        guard let value = backup.metadata.annotations?[BRLabels.verifyAnnotation], !value.isEmpty else { return nil }
        let parts = value.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let target = parts.count == 2 ? VerificationTarget(cluster: parts[1], clusterNamespace: parts[0]) : VerificationTarget(cluster: value)
        return VerificationSpec(target: target)
    }

    /// How long a scratch cluster made from `target.template` may take to become Ready.
    static let scratchReadyTimeout: TimeInterval = 30 * 60

    /// What the Backup's reconciler does for a Complete Backup: record a finished verification, put
    /// back a Restore that is missing, or start the verification its annotation asks for. Returns when
    /// to look again (a scratch cluster becoming ready), or nil.
    func reconcile(_ backup: Backup) async throws -> Duration? {
        if backup.status.verification?.phase == .running {
            return try await follow(backup)
        } else if backup.status.verification == nil, backup.status.phase == .complete, let spec = Self.requested(backup) {
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
                    try await finish(backup, restore: nil, checks: [VerificationCheck(name: "scratch-cluster", passed: false,
                        message: "TidbCluster cannot be created (\(e.message)): verification.target.template needs TiDB Operator's TidbCluster CRD")])
                    return nil
                }
                return .seconds(10)
            }
            if !existing.isReady {
                let started = backup.status.verification?.timeStarted?.date ?? now
                if now.timeIntervalSince(started) > Self.scratchReadyTimeout {
                    try await finish(backup, restore: nil, checks: [VerificationCheck(name: "scratch-cluster", passed: false,
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
        let ns = (spec.target.clusterNamespace ?? "").isEmpty ? backup.namespace : spec.target.clusterNamespace!
        guard let cluster = try await api.getIfPresent(TidbCluster.self, namespace: ns, name: spec.target.cluster),
              cluster.metadata.labels?[BRLabels.scratchCluster] == backup.name else { return }
        _ = try? await api.delete(.tidbClusters, namespace: ns, name: spec.target.cluster, options: DeleteOptions(propagationPolicy: .background))
        await events.record(backup, .normal, reason: "ScratchClusterDeleted", message: "TidbCluster \(ns)/\(spec.target.cluster) deleted after the verification")
    }

    /// Writes a verification's outcome that no Restore gave (the scratch cluster never came).
    func finish(_ backup: Backup, restore: Restore?, checks: [VerificationCheck]) async throws {
        let written = try await StatusWriter.update(api, Backup.self, namespace: backup.namespace, name: backup.name, from: backup) { b in
            guard var v = b.status.verification, v.phase == .running else { return }
            v.phase = checks.allSatisfy(\.passed) ? .verified : .failed
            v.checks = checks
            v.timeCompleted = Time(now)
            b.status.verification = v
        }
        await events.record(written ?? backup, .warning, reason: "VerificationFailed", message: written?.status.verification?.failure ?? "failed")
    }

    /// Why a verification of `backup` into `spec.target` must not run, or nil.
    static func problem(_ spec: VerificationSpec, _ backup: Backup) -> String? {
        guard let br = backup.spec.br, backup.spec.effectiveBackupMode == .snapshot else {
            return "annotation \(BRLabels.verifyAnnotation): only BR snapshot backups are verified"
        }
        let targetNS = (spec.target.clusterNamespace ?? "").isEmpty ? backup.namespace : spec.target.clusterNamespace!
        if spec.target.cluster == br.cluster && targetNS == backup.clusterNamespace {
            return "annotation \(BRLabels.verifyAnnotation): \(targetNS)/\(spec.target.cluster) \(Verification.productionMessage)"
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

    /// A Running verification: its Restore's outcome, once it has one, becomes the Backup's.
    func follow(_ backup: Backup) async throws -> Duration? {
        guard let name = backup.status.verification?.restore else { return nil }
        guard let restore = try await api.getIfPresent(Restore.self, namespace: backup.namespace, name: name) else {
            // Not there yet (its scratch cluster not Ready), or gone before it finished: made (again),
            // under the same name.
            guard let (spec, schedule) = try await spec(for: backup) else { return nil }
            return try await createRestore(backup, spec, schedule: schedule)
        }
        guard let phase = restore.status.phase, phase == .complete || phase == .failed else { return nil }
        if let (spec, _) = try await spec(for: backup) { try await deleteScratchCluster(backup, spec) }
        let checksum = restore.spec.br?.checksum ?? true
        let checks = Verification.checks(of: restore, checksum: checksum)
        let passed = checks.allSatisfy(\.passed)
        let finished = restore.status.timeCompleted ?? Time(now)
        let written = try await StatusWriter.update(api, Backup.self, namespace: backup.namespace, name: backup.name, from: backup) { b in
            guard var v = b.status.verification, v.restore == restore.name, v.phase == .running else { return }
            v.phase = passed ? .verified : .failed
            v.checks = checks
            v.timeCompleted = finished
            b.status.verification = v
        }
        let schedule = backup.metadata.labels?[BRLabels.backupSchedule] ?? ""
        metrics?.increment("backup_verifications_total", ["schedule": schedule.isEmpty ? "" : "\(backup.namespace)/\(schedule)",
                                                          "outcome": passed ? "Verified" : "Failed"])
        let target = written?.status.verification?.target ?? ""
        if passed {
            await events.record(written ?? backup, .normal, reason: "Verified",
                                message: "restored into \(target) by Restore \(restore.name); checks passed: \(checks.map(\.name).joined(separator: ", "))")
        } else {
            let failure = written?.status.verification?.failure ?? "failed"
            await events.record(written ?? backup, .warning, reason: "VerificationFailed", message: "Restore \(restore.name): \(failure)")
            var extra: String?
            if !schedule.isEmpty {
                extra = try? await api.getIfPresent(BackupSchedule.self, namespace: backup.namespace, name: schedule)?.metadata.annotations?[Notifier.annotation]
            }
            notifier?.send(Notifier.Message(type: "backup.verification_failed", time: finished.description, namespace: backup.namespace, name: backup.name,
                                            schedule: schedule.isEmpty ? nil : schedule, cluster: restore.spec.br?.cluster, phase: "Failed",
                                            reason: "VerificationFailed", message: "Restore \(restore.name): \(failure)"),
                           extra: extra)
        }
        return nil
    }
}
