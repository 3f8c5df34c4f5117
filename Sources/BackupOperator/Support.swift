import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// How a failing Job's or object's problem is reported to the user.
public struct OperatorTimeouts: Sendable {
    /// A Backup or Restore still `Scheduled` (its pod never started, or never reported) after this
    /// long is failed with the pod's own reason (`--job-start-timeout`). A pod queued on purpose
    /// (`SchedulingGated`, standalone's `--max-jobs`) is not counted; one scheduled late counts from then.
    public var podStart: Duration = .seconds(10 * 60)
    /// A run still `Prepare`/`Running` after this long is failed and its Job deleted.
    public var run: Duration = .seconds(72 * 3600)
    /// How long a Job may have succeeded while the status still is not terminal (the pod writes the
    /// result before exiting, so this only covers a lost write).
    public var resultGrace: Duration = .seconds(120)
    /// How often a log backup in effect has its checkpoint and state read from PD's etcd.
    public var logSync: Duration = .seconds(60)
    public init() {}
}

/// The deadlines of a Job that has not failed (shared by Backup and Restore): a pod that never
/// reports, a run that goes on too long, a Job that succeeded without the pod writing its result.
enum RunVerdict: Equatable {
    static let succeededWithoutResult = "JobSucceededWithoutResult"
    case wait(Duration)
    case fail(reason: String, message: String, deleteJob: Bool)
    /// How often a Job waiting for its pod is looked at.
    static let podLook: Duration = .seconds(30)
    /// The first look at a new Job's pod: soon, so a pod that cannot start is told within seconds.
    static func firstLook(_ timeouts: OperatorTimeouts) -> Duration { min(timeouts.podStart, .seconds(10)) }

    static func of(jobName: String, job: JobState, waitingForPod: Bool, pod: PodStart = .starting(since: nil), phaseSince: Date,
                   started: Date?, now: Date, timeouts: OperatorTimeouts, what: String) -> RunVerdict {
        func wait(_ seconds: Double) -> RunVerdict { .wait(.seconds(Int64(max(1, seconds.rounded(.up))))) }
        if job.succeeded {
            // Nothing the pod of another controller's Job writes can arrive (see `Adoption`): no grace.
            if job.isForeign {
                return .fail(reason: succeededWithoutResult, message: Adoption.foreignJobSucceeded(jobName, what: what), deleteJob: false)
            }
            let finished = job.object.value(at: ["status", "completionTime"])?.stringValue.flatMap(Time.init(rfc3339:))?.date ?? now
            let left = timeouts.resultGrace.seconds - now.timeIntervalSince(finished)
            return left <= 0 ? .fail(reason: succeededWithoutResult,
                                     message: "Job \(jobName) completed but the \(what) result was never written to the status", deleteJob: false)
                : wait(left)
        }
        if waitingForPod {
            // The pod is looked at again within `podLook`: the operator does not watch pods.
            let limit = GoDuration(seconds: Int64(timeouts.podStart.seconds))
            switch pod {
            case .queued:
                return .wait(podLook)
            case .blocked(let name, let reason, let message):
                let left = timeouts.podStart.seconds - now.timeIntervalSince(phaseSince)
                return left <= 0 ? .fail(reason: reason, message: "pod \(name) of Job \(jobName) did not start within \(limit) (--job-start-timeout): \(reason)"
                                         + (message.isEmpty ? "" : ": \(message)"), deleteJob: true)
                    : wait(min(left, podLook.seconds))
            case .starting(let since):
                let from = max(phaseSince, since ?? phaseSince)
                let left = timeouts.podStart.seconds - now.timeIntervalSince(from)
                return left <= 0 ? .fail(reason: "PodNotStarted", message: "the pod of Job \(jobName) did not start within \(limit) (--job-start-timeout)",
                                         deleteJob: true)
                    : wait(min(left, podLook.seconds))
            case .started:
                let left = timeouts.podStart.seconds - now.timeIntervalSince(phaseSince)
                return left <= 0 ? .fail(reason: "PodNotStarted",
                                         message: "the pod of Job \(jobName) runs but has not reported the \(what) within \(limit) (--job-start-timeout)",
                                         deleteJob: true)
                    : wait(min(left, podLook.seconds))
            }
        }
        let left = timeouts.run.seconds - now.timeIntervalSince(started ?? phaseSince)
        return left <= 0 ? .fail(reason: "DeadlineExceeded",
                                 message: "the \(what) ran longer than \(GoDuration(seconds: Int64(timeouts.run.seconds))); Job \(jobName) was deleted",
                                 deleteJob: true)
            : wait(left)
    }
}

extension RunVerdict {
    /// `of`, with the pod looked at while the Job waits for it, and a Warning Event (`PodNotStarting`,
    /// aggregated by the recorder) on the object as soon as the pod says why it cannot start, so
    /// `kubectl describe` and the web view tell it long before the deadline.
    static func watching<T: KubeResource>(_ object: T, api: any KubeAPI, events: EventRecorder, jobName: String, job: JobState,
                                          waitingForPod: Bool, phaseSince: Date, started: Date?, now: Date,
                                          timeouts: OperatorTimeouts, what: String) async -> RunVerdict {
        var pod = PodStart.starting(since: nil)
        if waitingForPod && !job.succeeded {
            pod = await api.podStart(namespace: object.metadata.namespace ?? "", jobName: jobName)
            if case .blocked(let name, let reason, let message) = pod {
                let deadline = Time(phaseSince.addingTimeInterval(timeouts.podStart.seconds))
                await events.record(object, .warning, reason: "PodNotStarting",
                                    message: "pod \(name) of Job \(jobName) cannot start: \(reason)\(message.isEmpty ? "" : ": \(message)"); "
                                        + "the \(what) fails if it has not started by \(deadline)")
            }
        }
        return of(jobName: jobName, job: job, waitingForPod: waitingForPod, pod: pod, phaseSince: phaseSince, started: started, now: now,
                  timeouts: timeouts, what: what)
    }
}

/// The TidbCluster a BR Backup or Restore names (`spec.br.cluster` in its `clusterNamespace`).
enum ClusterLookup {
    enum Result {
        /// No BR section (Dumpling / Lightning): no cluster needed.
        case notNeeded
        case found(TidbCluster)
        /// The message for the `TidbClusterNotFound` condition, saying what to create.
        case missing(String)

        var cluster: TidbCluster? {
            if case .found(let c) = self { return c }
            return nil
        }

        var isMissing: Bool {
            if case .missing = self { return true }
            return false
        }
    }

    /// A Restore's cluster: `br.cluster`, or `lightning.cluster` for a Lightning import.
    static func find(_ api: any KubeAPI, _ restore: Restore) async throws -> Result {
        if let lightning = restore.spec.lightning {
            guard let name = lightning.cluster, !name.isEmpty else { return .notNeeded }
            let ns = (lightning.clusterNamespace ?? "").isEmpty ? restore.namespace : lightning.clusterNamespace!
            if let cluster = try await api.getIfPresent(TidbCluster.self, namespace: ns, name: name) { return .found(cluster) }
            return .missing("TidbCluster \(ns)/\(name) not found: create it (for a cluster outside Kubernetes, a TidbCluster with spec.pdAddresses and spec.version)")
        }
        return try await find(api, br: restore.spec.br, clusterNamespace: restore.clusterNamespace)
    }

    static func find(_ api: any KubeAPI, br: BRConfig?, clusterNamespace: String) async throws -> Result {
        guard let br, !br.cluster.isEmpty else { return .notNeeded }
        if let cluster = try await api.getIfPresent(TidbCluster.self, namespace: clusterNamespace, name: br.cluster) { return .found(cluster) }
        return .missing("TidbCluster \(clusterNamespace)/\(br.cluster) not found: create it (for a cluster outside Kubernetes, a TidbCluster with spec.pdAddresses and spec.version)")
    }
}
