import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// How a failing Job's or object's problem is reported to the user.
public struct OperatorTimeouts: Sendable {
    /// A Backup or Restore still `Scheduled` (its pod never reported) after this long is failed.
    public var podStart: Duration = .seconds(30 * 60)
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

    static func of(jobName: String, job: JobState, waitingForPod: Bool, phaseSince: Date, started: Date?, now: Date,
                   timeouts: OperatorTimeouts, what: String) -> RunVerdict {
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
            let left = timeouts.podStart.seconds - now.timeIntervalSince(phaseSince)
            return left <= 0 ? .fail(reason: "PodNotStarted",
                                     message: "the pod of Job \(jobName) did not start within \(GoDuration(seconds: Int64(timeouts.podStart.seconds)))",
                                     deleteJob: true)
                : wait(left)
        }
        let left = timeouts.run.seconds - now.timeIntervalSince(started ?? phaseSince)
        return left <= 0 ? .fail(reason: "DeadlineExceeded",
                                 message: "the \(what) ran longer than \(GoDuration(seconds: Int64(timeouts.run.seconds))); Job \(jobName) was deleted",
                                 deleteJob: true)
            : wait(left)
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
