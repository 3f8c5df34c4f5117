import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// The recovery of a Failed Lightning Restore that its annotation asks for (`LightningRecovery`):
/// the failed Job goes, a Job that runs the `tidb-lightning-ctl` step and then the import on the same
/// data comes, the Restore goes back to Scheduled, and the annotation is removed so that it runs once.
struct LightningRecoveryStep {
    let api: any KubeAPI
    let jobs: JobBuilder
    let events: EventRecorder
    let clock: any ControllerClock
    let setCondition: (Restore, [RestoreCondition]) async throws -> Void

    static let key = LightningLayout.recoveryAnnotation

    /// nil when there is nothing to recover and the Restore follows its usual course.
    func step(_ restore: Restore, cluster: TidbCluster?) async throws -> ReconcileOutcome? {
        guard let raw = restore.metadata.annotations?[Self.key] else { return nil }
        let jobName = restore.jobName
        let existing = try await api.getIfPresent(JSONValue.self, .jobs, namespace: restore.namespace, name: jobName)
        let carried = existing?.value(at: ["metadata", "annotations", Self.key])?.stringValue
        guard restore.status.phase == .failed else {
            // Asked for while the import runs: it applies if that run fails. Once the recovery Job
            // exists, the request is done.
            if carried == raw { try await removeAnnotation(restore) }
            return nil
        }
        let recovery: LightningRecovery
        switch LightningRecovery.parse(raw) {
        case .failure(let problem):
            await events.record(restore, .warning, reason: "InvalidLightningRecovery", message: problem.description)
            try await removeAnnotation(restore)
            return .done
        case .success(let r): recovery = r
        }
        if let existing {
            if carried == raw {
                // This recovery already ran and failed: the Restore stays Failed until asked again.
                try await removeAnnotation(restore)
                return .done
            }
            if existing.value(at: ["metadata", "deletionTimestamp"]) == nil {
                _ = try? await api.delete(.jobs, namespace: restore.namespace, name: jobName, options: DeleteOptions(propagationPolicy: .foreground))
            }
            return .requeue(after: .seconds(1))
        }
        let built = try await jobs.lightningJob(restore, cluster: cluster, recovery: raw)
        _ = try await api.createIfAbsent(.jobs, namespace: restore.namespace, object: built)
        let what = recovery.action == .resume ? "the import again, resuming from its checkpoints"
            : "tidb-lightning-ctl \(recovery.ctlArguments.map { $0.joined(separator: " ") }.joined(separator: "; ")), then the import again from its checkpoints"
        try await setCondition(restore, [
            RestoreCondition(type: .failed, status: .false, reason: "LightningRecovery", message: "recovering as \(Self.key)=\(raw) asks"),
            RestoreCondition(type: .scheduled, reason: "LightningRecovery", message: "Job \(jobName) runs \(what)"),
        ])
        try await removeAnnotation(restore)
        return .requeue(after: .seconds(5))
    }

    func removeAnnotation(_ restore: Restore) async throws {
        let patch = try JSONParser.parse(#"{"metadata":{"annotations":{"\#(Self.key)":null}}}"#)
        _ = try await api.patch(.restores, namespace: restore.namespace, name: restore.name, patch: Patch(.merge, patch))
    }
}
