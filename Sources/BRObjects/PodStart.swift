import Foundation
import KubeAPI
import KubeModel

/// Where a Job's pod is on its way to running, in the pod's own words: what the scheduler and the
/// kubelet (or the standalone job runner, which speaks as they do) wrote into its status.
public enum PodStart: Equatable, Sendable {
    /// No pod yet, or one being set up normally (`ContainerCreating`, `PodInitializing`); `since` is
    /// when it was scheduled, when known.
    case starting(since: Date?)
    /// Held back on purpose until a slot is free (`PodScheduled: False, SchedulingGated`): a queue,
    /// not a fault, so no start deadline runs.
    case queued(message: String)
    /// It cannot start as things are: not schedulable (a missing claim, no node), an image that cannot
    /// be pulled, a Secret or ConfigMap it lacks.
    case blocked(pod: String, reason: String, message: String)
    /// Its container runs or has run.
    case started

    /// Waiting reasons of a container that is being set up as it should be.
    static let settingUp: Set<String> = ["", "ContainerCreating", "PodInitializing"]

    /// The state of the newest of a Job's pods.
    public static func of(_ pods: [JSONValue]) -> PodStart {
        func created(_ p: JSONValue) -> String { p.value(at: ["metadata", "creationTimestamp"])?.stringValue ?? "" }
        guard let pod = pods.max(by: { created($0) < created($1) }) else { return .starting(since: nil) }
        let name = pod.value(at: ["metadata", "name"])?.stringValue ?? ""
        let phase = pod.value(at: ["status", "phase"])?.stringValue ?? "Pending"
        if phase != "Pending" { return .started }
        let conditions = pod.value(at: ["status", "conditions"])?.arrayValue ?? []
        let scheduled = conditions.first { $0["type"]?.stringValue == "PodScheduled" }
        if let scheduled, scheduled["status"]?.stringValue == "False" {
            let reason = scheduled["reason"]?.stringValue ?? ""
            let message = scheduled["message"]?.stringValue ?? ""
            if reason == "SchedulingGated" { return .queued(message: message) }
            return .blocked(pod: name, reason: reason.isEmpty ? "Unschedulable" : reason, message: message)
        }
        let statuses = (pod.value(at: ["status", "initContainerStatuses"])?.arrayValue ?? [])
            + (pod.value(at: ["status", "containerStatuses"])?.arrayValue ?? [])
        for status in statuses {
            guard let waiting = status.value(at: ["state", "waiting"]) else { continue }
            let reason = waiting["reason"]?.stringValue ?? ""
            if !settingUp.contains(reason) {
                return .blocked(pod: name, reason: reason, message: waiting["message"]?.stringValue ?? "")
            }
        }
        let since = scheduled?["lastTransitionTime"]?.stringValue.flatMap(Time.init(rfc3339:))?.date
        return .starting(since: since)
    }
}

extension KubeAPI {
    /// How the pod of the Job `jobName` is getting on (Kubernetes labels a Job's pods `job-name`). An
    /// answer the API cannot give counts as a pod still starting: the deadline still holds.
    public func podStart(namespace: String, jobName: String) async -> PodStart {
        guard let pods = try? await listAll(.pods, namespace: namespace, labelSelector: "job-name=\(jobName)").items else {
            return .starting(since: nil)
        }
        return PodStart.of(pods)
    }
}
