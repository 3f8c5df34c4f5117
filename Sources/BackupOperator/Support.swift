import BRModel
import ControllerKit
import Foundation
import KubeAPI
import KubeModel

extension Backup: APIObject { public static var resource: ResourceKind { .backups } }
extension Restore: APIObject { public static var resource: ResourceKind { .restores } }
extension BackupSchedule: APIObject { public static var resource: ResourceKind { .backupSchedules } }
extension TidbCluster: APIObject { public static var resource: ResourceKind { .tidbClusters } }

extension KubeAPI {
    /// An untyped object, or nil when it does not exist (Jobs, which have no Swift model here).
    func getIfPresent(_ type: JSONValue.Type, _ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue? {
        do { return try await get(kind, namespace: namespace, name: name) } catch let e as KubeAPIError where e.isNotFound { return nil }
    }
}

/// What a Job's status says, as far as the controllers care.
struct JobState {
    var exists: Bool
    var failed: Bool
    var succeeded: Bool
    var deleting: Bool
    var failureReason: String
    var object: JSONValue

    init(_ job: JSONValue?) {
        object = job ?? .null
        exists = job != nil
        let conditions = job?.value(at: ["status", "conditions"])?.arrayValue ?? []
        func holds(_ type: String) -> JSONValue? { conditions.first { $0["type"]?.stringValue == type && $0["status"]?.stringValue == "True" } }
        let failedCondition = holds("Failed")
        failed = failedCondition != nil
        failureReason = failedCondition?["reason"]?.stringValue ?? ""
        succeeded = holds("Complete") != nil
        deleting = job?.value(at: ["metadata", "deletionTimestamp"]) != nil
    }

    var finished: Bool { failed || succeeded }
}

/// Writes an object's status: re-read, apply the change, skip when nothing changed, retry on conflict.
/// The one way every controller writes status (reference 3.10, without TiDB Operator's blind retries
/// on any error: only conflicts are retried here; other errors go back to the work queue).
enum StatusWriter {
    @discardableResult
    /// `from`: the object as the caller read it in this reconcile, tried first instead of a fresh read
    /// (a 409 means it was stale, and the retry reads it again).
    static func update<T: APIObject>(_ api: any KubeAPI, _ type: T.Type, namespace: String, name: String, from read: T? = nil,
                                     _ change: (inout T) -> Void) async throws -> T? where T: Equatable {
        for attempt in 0..<5 {
            let fresh: T?
            if attempt == 0, let read { fresh = read } else { fresh = try await api.getIfPresent(T.self, namespace: namespace, name: name) }
            guard var current = fresh else { return nil }
            let before = current
            change(&current)
            if current == before { return current }
            do {
                return try await api.updateStatus(current)
            } catch let e as KubeAPIError where e.isConflict && attempt < 4 {
                continue
            }
        }
        return nil
    }
}

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
