import Foundation
import KubeModel
import Logging

/// The part of the job runner that stands for the scheduler and the kubelet around a container's run:
/// a pod that cannot start stays Pending with the reason Kubernetes gives, one that waits for a slot
/// is marked as held back on purpose, and a deleted claim's directory goes.
extension JobRunner {
    /// Why a Pending pod cannot start yet, in the words Kubernetes' scheduler and kubelet use: its pod
    /// stays Pending and is tried again (`blocked`), as a pod waits for its claim, image or Secret.
    struct StartBlock: Error {
        /// False: not schedulable (`PodScheduled: False`); true: scheduled, its container waiting.
        var scheduled: Bool
        var reason: String
        var message: String
    }

    /// Keeps a pod Pending with why it cannot start, written once (and its log told once) per reason.
    func hold(_ pod: JSONValue, container: JSONValue, _ block: StartBlock, logPath: String, jobKey: String) throws {
        blocked.insert(jobKey)
        let ns = pod.value(at: ["metadata", "namespace"])?.stringValue ?? ""
        let podName = pod.value(at: ["metadata", "name"])?.stringValue ?? ""
        let now = Time(Date()).description
        var status: JSONObject = ["phase": "Pending"]
        if block.scheduled {
            status["conditions"] = [["type": "PodScheduled", "status": "True", "lastTransitionTime": .string(now)]]
            status["containerStatuses"] = [["name": container["name"] ?? "main", "ready": false, "restartCount": 0,
                                            "state": ["waiting": ["reason": .string(block.reason), "message": .string(block.message)]]]]
        } else {
            status["conditions"] = [["type": "PodScheduled", "status": "False", "reason": .string(block.reason),
                                     "message": .string(block.message), "lastTransitionTime": .string(now)]]
        }
        if Self.sameHold(pod["status"], status) { return }
        try appendLog(logPath, "standalone job runner: pod \(podName) cannot start: \(block.reason): \(block.message)\n")
        // A merge patch keeps keys it does not name: the other shape's are removed with null.
        if !block.scheduled { status["containerStatuses"] = .null }
        _ = try core.patch(podType, namespace: ns, name: podName, patchType: .merge, patch: ["status": .object(status)], subresource: "status")
    }

    /// Whether a pod's status already says what `hold` would write (times aside).
    static func sameHold(_ current: JSONValue?, _ next: JSONObject) -> Bool {
        func shape(_ v: JSONValue?) -> [String] {
            let conditions = (v?["conditions"]?.arrayValue ?? []).map { "\($0["type"]?.stringValue ?? "")=\($0["status"]?.stringValue ?? "")/\($0["reason"]?.stringValue ?? "")/\($0["message"]?.stringValue ?? "")" }
            let waiting = (v?["containerStatuses"]?.arrayValue ?? []).map { "\($0.value(at: ["state", "waiting", "reason"])?.stringValue ?? "")/\($0.value(at: ["state", "waiting", "message"])?.stringValue ?? "")" }
            return [v?["phase"]?.stringValue ?? ""] + conditions + waiting
        }
        return shape(current) == shape(.object(next))
    }

    /// Marks a pod that waits for one of the `--max-jobs` slots as Kubernetes marks a pod held back
    /// on purpose, so a start deadline does not count the wait.
    func queue(_ pod: JSONValue, job: JSONValue) throws {
        wait(job)
        let scheduled = (pod.value(at: ["status", "conditions"])?.arrayValue ?? []).first { $0["type"] == "PodScheduled" }
        guard scheduled?["reason"] != "SchedulingGated" else { return }
        let ns = pod.value(at: ["metadata", "namespace"])?.stringValue ?? ""
        let podName = pod.value(at: ["metadata", "name"])?.stringValue ?? ""
        _ = try core.patch(podType, namespace: ns, name: podName, patchType: .merge, patch: ["status": [
            "phase": "Pending",
            "conditions": [["type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                            "message": .string("waiting for one of the \(configuration.maxConcurrentJobs) job slots (--max-jobs)"),
                            "lastTransitionTime": .string(Time(Date()).description)]]]], subresource: "status")
    }

    /// A deleted claim takes its directory with it (the Delete reclaim policy).
    func claimDeleted(namespace: String, name: String) {
        guard !namespace.isEmpty, !name.isEmpty, !name.contains("/"), !namespace.contains("/") else { return }
        let directory = ContainerSetup.claimDirectory(volumesRoot: setup.volumesRoot, namespace: namespace, claim: name)
        if FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.removeItem(atPath: directory)
                logger.info("removed the directory of deleted claim \(namespace)/\(name)")
            } catch {
                logger.warning("cannot remove the directory of deleted claim \(namespace)/\(name): \(error)")
            }
        }
    }

    public static func claimDirectory(volumesRoot: String, namespace: String, claim: String) -> String {
        ContainerSetup.claimDirectory(volumesRoot: volumesRoot, namespace: namespace, claim: claim)
    }
}
