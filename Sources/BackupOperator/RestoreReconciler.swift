import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel
import Logging

/// The Restore controller (reference 4) for BR snapshot restores and Lightning imports. Restores have
/// no finalizer: their Jobs go with them through owner references.
public final class RestoreReconciler: Reconciler {
    let api: any KubeAPI
    let jobs: JobBuilder
    let events: EventRecorder
    let clock: any ControllerClock
    let timeouts: OperatorTimeouts

    public init(api: any KubeAPI, jobs: JobBuilder, events: EventRecorder, clock: any ControllerClock = SystemClock(),
                timeouts: OperatorTimeouts = OperatorTimeouts()) {
        self.api = api
        self.jobs = jobs
        self.events = events
        self.clock = clock
        self.timeouts = timeouts
    }

    typealias Pass = ReconcilePass<Restore, RestoreCondition>

    /// The steps of a pass, in order (reference 4): volume-snapshot restores have their own flow and
    /// other unknown modes are refused; the cluster is found; a Lightning import recovers its
    /// checkpoints after a failure and a failed BR restore is pruned; a finished Restore stops there;
    /// a missing cluster is retried and the spec validated; a PiTR restore waits for TiKV's GC to be
    /// off; the Job is followed or created.
    var steps: ReconcileSteps<Pass> {
        ReconcileSteps([
            ("mode", mode), ("cluster", findCluster), ("lightning-recovery", lightningRecovery), ("prune", prune),
            ("finished", finished), ("cluster-missing", clusterMissing), ("validate", validate), ("job", job),
        ])
    }

    public func reconcile(_ key: ObjectKey) async throws -> ReconcileOutcome {
        guard let restore = try await api.getIfPresent(Restore.self, namespace: key.namespace, name: key.name) else { return .done }
        var pass = Pass(restore)
        return try await steps.run(&pass, thenWrite: write)
    }

    /// The pass's status changes, in one write.
    func write(_ pass: inout Pass) async throws {
        try await pass.status.flush(api, now: Time(clock.now()), events: events) { ConditionEvent($0, $1) }
    }

    func mode(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        let mode = pass.restore.spec.effectiveRestoreMode
        if mode == .volumeSnapshot { return try await VolumeSnapshotRestoreFlow(r: self).reconcile(pass.restore) }
        if mode.rawValue != "snapshot" && mode != .pitr {
            pass.status.set(RestoreCondition(type: .invalid, reason: "NotSupported",
                message: "restoreMode \(mode.rawValue) is not supported by this version of tidb-backup-operator yet; the Restore is kept unchanged"),
                            now: Time(clock.now()))
            return .done
        }
        return nil
    }

    func findCluster(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        pass.lookup = try await ClusterLookup.find(api, pass.restore)
        return nil
    }

    /// A Lightning import's checkpoints after a failure (its own status writes).
    func lightningRecovery(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        guard pass.restore.spec.lightning != nil, !pass.lookup.isMissing else { return nil }
        return try await recovery.step(pass.restore, cluster: pass.cluster)
    }

    /// A failed BR restore's prune (its own status writes).
    func prune(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        guard pass.restore.hasCondition(.failed) else { return nil }
        return try await RestorePruneStep(r: self).step(pass.restore, cluster: pass.cluster)
    }

    func finished(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        if let phase = pass.restore.status.phase, [.complete, .failed].contains(phase) || pass.restore.hasCondition(.failed) { return .done }
        return nil
    }

    func clusterMissing(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        guard case .missing(let message) = pass.lookup else { return nil }
        pass.status.set(RestoreCondition(type: .retryFailed, reason: "TidbClusterNotFound", message: message), now: Time(clock.now()))
        return .requeue(after: .seconds(30))
    }

    func validate(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        guard let first = BRValidation.validate(pass.restore, tikvImage: pass.cluster?.tikvImage, cluster: pass.cluster).first else { return nil }
        pass.status.set(RestoreCondition(type: .invalid, reason: "InvalidSpec", message: first.message), now: Time(clock.now()))
        return .done
    }

    /// The Job: a PiTR restore first waits for TiKV's GC to be off; then the Job is followed while it
    /// runs (an adopted TiDB Operator Job that succeeded completes the Restore) or created.
    func job(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        let restore = pass.restore
        let now = clock.now()
        let jobName = restore.jobName
        let job = try await api.jobState(namespace: restore.namespace, name: jobName)
        if !job.exists, restore.spec.effectiveRestoreMode == .pitr, let cluster = pass.cluster, let wait = try await PitrGate(api: api).wait(restore, cluster: cluster) {
            pass.status.set(RestoreCondition(type: .retryFailed, reason: "PitrConfigNotReady", message: wait), now: Time(now))
            return .requeue(after: .seconds(10))
        }
        if job.exists {
            if job.deleting { return .requeue(after: .seconds(2)) }
            if job.failed {
                pass.status.set(RestoreCondition(type: .failed, reason: "AlreadyFailed", message: "Job \(jobName) has failed: \(job.failureReason)"), now: Time(now))
                return .done
            }
            if restore.status.phase == nil || restore.status.phase == .invalid || restore.status.phase == .retryFailed {
                // The Job was created but the status write after it was lost.
                pass.status.set(RestoreCondition(type: .scheduled), now: Time(now))
                return .requeue(after: RunVerdict.firstLook(timeouts))
            }
            let phase = restore.status.phase
            let since = restore.status.conditions?.first { $0.type == phase }?.lastTransitionTime?.date ?? now
            switch await RunVerdict.watching(restore, api: api, events: events, jobName: jobName, job: job,
                                             waitingForPod: phase == .scheduled || phase == nil || phase == .invalid,
                                             phaseSince: since, started: restore.status.timeStarted?.date, now: now, timeouts: timeouts, what: "restore") {
            case .wait(let d): return .requeue(after: d)
            case .fail(let reason, _, _) where reason == RunVerdict.succeededWithoutResult && job.isForeign:
                let completed = job.object.value(at: ["status", "completionTime"])?.stringValue.flatMap(Time.init(rfc3339:)) ?? Time(now)
                let started = job.object.value(at: ["status", "startTime"])?.stringValue.flatMap(Time.init(rfc3339:))
                pass.status.edit { r in
                    if r.status.timeStarted == nil { r.status.timeStarted = started }
                    _ = r.status.apply(RestoreCondition(type: .complete, reason: "AdoptedJobSucceeded", message: Adoption.restoreCompleted(jobName)),
                                       now: completed)
                    if r.status.timeCompleted == nil { r.status.timeCompleted = completed }
                }
                await events.record(restore, .normal, reason: "AdoptedJobSucceeded", message: Adoption.restoreCompleted(jobName))
                return .done
            case .fail(let reason, let message, let deleteJob):
                // The failure written first: should the Restore have changed meanwhile, its Job stays for the next pass.
                pass.status.set(RestoreCondition(type: .failed, reason: reason, message: message), now: Time(now))
                try await write(&pass)
                if deleteJob {
                    _ = try? await api.delete(.jobs, namespace: restore.namespace, name: jobName, options: DeleteOptions(propagationPolicy: .foreground))
                }
                return .done
            }
        }
        if let phase = restore.status.phase, [.scheduled, .running].contains(phase) {
            pass.status.set(RestoreCondition(type: .failed, reason: "JobNotFound",
                                             message: "Job \(jobName) no longer exists while the restore was \(phase.rawValue)"), now: Time(now))
            return .done
        }
        let built: JSONValue
        do {
            if restore.spec.lightning != nil {
                built = try await jobs.lightningJob(restore, cluster: pass.cluster)
            } else {
                built = restore.spec.br == nil ? try await jobs.importJob(restore) : try await jobs.brRestoreJob(restore, cluster: pass.cluster!)
            }
        } catch let e as JobBuildError {
            pass.status.set(RestoreCondition(type: .retryFailed, reason: e.reason, message: e.message), now: Time(now))
            throw e
        }
        switch try await JobStep(api: api, events: events).create(built, for: restore, namespace: restore.namespace, name: jobName,
                                                                  created: "create job \(restore.namespace)/\(jobName) for restore \(restore.name) successful",
                                                                  failed: "create restore \(restore.namespace)/\(restore.name) job \(jobName) failed") {
        case .wait(let d): return .requeue(after: d)
        case .failed(let message, let error):
            pass.status.set(RestoreCondition(type: .retryFailed, reason: "CreateRestoreJobFailed", message: message), now: Time(now))
            throw error
        case .created, .existed:
            if !restore.hasCondition(.scheduled) || restore.status.phase != .scheduled {
                pass.status.set(RestoreCondition(type: .scheduled), now: Time(now))
            }
            return .requeue(after: RunVerdict.firstLook(timeouts))
        }
    }

    var recovery: LightningRecoveryStep {
        LightningRecoveryStep(api: api, jobs: jobs, events: events, clock: clock) { restore, conditions in
            try await self.setConditions(restore, conditions)
        }
    }

    func fail(_ restore: Restore, reason: String, message: String) async throws {
        try await setCondition(restore, RestoreCondition(type: .failed, reason: reason, message: message))
    }

    /// Applies a condition and, when it changed anything, records it as an Event.
    @discardableResult
    func setCondition(_ restore: Restore, _ condition: RestoreCondition) async throws -> Bool {
        try await setConditions(restore, [condition])
    }

    /// Applies conditions in order in one status write; an Event for each that changed something.
    @discardableResult
    func setConditions(_ restore: Restore, _ conditions: [RestoreCondition]) async throws -> Bool {
        let now = Time(clock.now())
        var changed: [RestoreCondition] = []
        let written = try await StatusWriter.update(api, Restore.self, namespace: restore.namespace, name: restore.name, from: restore) { r in
            changed = conditions.filter { r.status.apply($0, now: now) }
        }
        for condition in changed { await events.record(written ?? restore, ConditionEvent(restore, condition)) }
        return !changed.isEmpty
    }
}

extension ReconcilePass where Object == Restore, Condition == RestoreCondition {
    init(_ restore: Restore) { self.init(restore) { r, c, now in r.status.apply(c, now: now) } }
    var restore: Restore { status.object }
}
