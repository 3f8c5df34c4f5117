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

    public func reconcile(_ key: ObjectKey) async throws -> ReconcileOutcome {
        guard let restore = try await api.getIfPresent(Restore.self, namespace: key.namespace, name: key.name) else { return .done }
        let mode = restore.spec.effectiveRestoreMode
        if mode == .volumeSnapshot { return try await VolumeSnapshotRestoreFlow(r: self).reconcile(restore) }
        if mode.rawValue != "snapshot" && mode != .pitr {
            try await setCondition(restore, RestoreCondition(type: .invalid, reason: "NotSupported",
                message: "restoreMode \(mode.rawValue) is not supported by this version of tidb-backup-operator yet; the Restore is kept unchanged"))
            return .done
        }
        let lookup = try await ClusterLookup.find(api, restore)
        if restore.spec.lightning != nil, !lookup.isMissing, let outcome = try await recovery.step(restore, cluster: lookup.cluster) {
            return outcome
        }
        if restore.hasCondition(.failed), let outcome = try await RestorePruneStep(r: self).step(restore, cluster: lookup.cluster) { return outcome }
        if let phase = restore.status.phase, [.complete, .failed].contains(phase) || restore.hasCondition(.failed) { return .done }

        if case .missing(let message) = lookup {
            try await setCondition(restore, RestoreCondition(type: .retryFailed, reason: "TidbClusterNotFound", message: message))
            return .requeue(after: .seconds(30))
        }
        let cluster = lookup.cluster
        let problems = BRValidation.validate(restore, tikvImage: cluster?.tikvImage, cluster: cluster)
        if let first = problems.first {
            try await setCondition(restore, RestoreCondition(type: .invalid, reason: "InvalidSpec", message: first.message))
            return .done
        }

        let jobName = restore.jobName
        let job = try await api.jobState(namespace: restore.namespace, name: jobName)
        if !job.exists, mode == .pitr, let cluster, let wait = try await PitrGate(api: api).wait(restore, cluster: cluster) {
            try await setCondition(restore, RestoreCondition(type: .retryFailed, reason: "PitrConfigNotReady", message: wait))
            return .requeue(after: .seconds(10))
        }
        if job.exists {
            if job.deleting { return .requeue(after: .seconds(2)) }
            if job.failed {
                try await fail(restore, reason: "AlreadyFailed", message: "Job \(jobName) has failed: \(job.failureReason)")
                return .done
            }
            if restore.status.phase == nil || restore.status.phase == .invalid || restore.status.phase == .retryFailed {
                // The Job was created but the status write after it was lost.
                try await setCondition(restore, RestoreCondition(type: .scheduled))
                return .requeue(after: timeouts.podStart)
            }
            let now = clock.now()
            let phase = restore.status.phase
            let since = restore.status.conditions?.first { $0.type == phase }?.lastTransitionTime?.date ?? now
            switch RunVerdict.of(jobName: jobName, job: job, waitingForPod: phase == .scheduled || phase == nil || phase == .invalid,
                                 phaseSince: since, started: restore.status.timeStarted?.date, now: now, timeouts: timeouts, what: "restore") {
            case .wait(let d): return .requeue(after: d)
            case .fail(let reason, _, _) where reason == RunVerdict.succeededWithoutResult && job.isForeign:
                let completed = job.object.value(at: ["status", "completionTime"])?.stringValue.flatMap(Time.init(rfc3339:)) ?? Time(now)
                _ = try await StatusWriter.update(api, Restore.self, namespace: restore.namespace, name: restore.name, from: restore) { r in
                    if r.status.timeStarted == nil {
                        r.status.timeStarted = job.object.value(at: ["status", "startTime"])?.stringValue.flatMap(Time.init(rfc3339:))
                    }
                    _ = r.status.apply(RestoreCondition(type: .complete, reason: "AdoptedJobSucceeded", message: Adoption.restoreCompleted(jobName)),
                                       now: completed)
                    if r.status.timeCompleted == nil { r.status.timeCompleted = completed }
                }
                await events.record(restore, .normal, reason: "AdoptedJobSucceeded", message: Adoption.restoreCompleted(jobName))
                return .done
            case .fail(let reason, let message, let deleteJob):
                if deleteJob {
                    _ = try? await api.delete(.jobs, namespace: restore.namespace, name: jobName,
                                              options: DeleteOptions(propagationPolicy: .foreground))
                }
                try await fail(restore, reason: reason, message: message)
                return .done
            }
        }
        if let phase = restore.status.phase, [.scheduled, .running].contains(phase) {
            try await fail(restore, reason: "JobNotFound", message: "Job \(jobName) no longer exists while the restore was \(phase.rawValue)")
            return .done
        }
        let built: JSONValue
        do {
            if restore.spec.lightning != nil {
                built = try await jobs.lightningJob(restore, cluster: cluster)
            } else {
                built = restore.spec.br == nil ? try await jobs.importJob(restore) : try await jobs.brRestoreJob(restore, cluster: cluster!)
            }
        } catch let e as JobBuildError {
            try await setCondition(restore, RestoreCondition(type: .retryFailed, reason: e.reason, message: e.message))
            throw e
        }
        do {
            _ = try await api.create(.jobs, namespace: restore.namespace, object: built)
            await events.record(restore, .normal, reason: "SuccessfulCreate",
                                message: "create job \(restore.namespace)/\(jobName) for restore \(restore.name) successful")
        } catch let e as KubeAPIError where e.isAlreadyExists {
        } catch let e as KubeAPIError {
            let message = "create restore \(restore.namespace)/\(restore.name) job \(jobName) failed, err: \(e.message)"
            try await setCondition(restore, RestoreCondition(type: .retryFailed, reason: "CreateRestoreJobFailed", message: message))
            await events.record(restore, .warning, reason: "FailedCreate", message: message)
            throw e
        }
        if !restore.hasCondition(.scheduled) || restore.status.phase != .scheduled {
            try await setCondition(restore, RestoreCondition(type: .scheduled))
        }
        return .requeue(after: timeouts.podStart)
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
