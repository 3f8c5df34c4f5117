import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// `prune: afterFailed` (reference 4.6): a failed BR restore (not a volume-snapshot one) has what it
/// half wrote removed by `br abort restore` in the Job `<restore job>-prune`: `PruneScheduled` → the
/// Job → `PruneRunning` / `PruneComplete` or `PruneFailed`, written by the job binary. The Restore stays
/// Failed in spirit: its Failed condition is kept; the phase shows the prune's progress, as upstream.
struct RestorePruneStep {
    let r: RestoreReconciler

    /// Nil when the Restore needs no prune (or it is over).
    func step(_ restore: Restore, cluster: TidbCluster?) async throws -> ReconcileOutcome? {
        guard restore.spec.prune == .afterFailed, restore.spec.effectiveRestoreMode != .volumeSnapshot, restore.spec.br != nil,
              restore.hasCondition(.failed), !restore.hasCondition(.pruneComplete), !restore.hasCondition(.pruneFailed) else { return nil }
        guard let cluster else { return nil }
        if !restore.hasCondition(.pruneScheduled) {
            try await r.setCondition(restore, RestoreCondition(type: .pruneScheduled, reason: "RestoreFailedPruneScheduled",
                                                               message: "Restore failed, prune job will be scheduled for cleanup."))
            return .requeue(after: .zero)
        }
        let name = "restore-\(restore.name)-prune"
        let job = try await r.api.jobState(namespace: restore.namespace, name: name)
        if job.exists {
            if job.failed {
                try await r.setCondition(restore, RestoreCondition(type: .pruneFailed, reason: "PruneJobFailed",
                                                                   message: "Job \(name) has failed: \(job.failureReason)"))
                return .done
            }
            return .requeue(after: .seconds(30))
        }
        let built: JSONValue
        do {
            built = try await r.jobs.pruneJob(restore, cluster: cluster, name: name)
        } catch let e as JobBuildError {
            try await r.setCondition(restore, RestoreCondition(type: .pruneFailed, reason: e.reason, message: e.message))
            return .done
        }
        do {
            if try await r.api.createIfAbsent(.jobs, namespace: restore.namespace, object: built) {
                await r.events.record(restore, .normal, reason: "SuccessfulCreate",
                                      message: "create prune job \(restore.namespace)/\(name) for failed restore \(restore.name) successful")
            }
        } catch let e as KubeAPIError {
            try await r.setCondition(restore, RestoreCondition(type: .pruneFailed, reason: "CreateJobFailed", message: e.message))
            return .done
        }
        return .requeue(after: r.timeouts.podStart)
    }
}
