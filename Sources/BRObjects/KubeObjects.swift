import BRModel
import Foundation
import KubeAPI
import KubeModel

/// The model's objects over the Kubernetes API: what the operator and the job binary both need to read
/// and write them (typed access, the state of a Job, the one status writer).
extension Backup: APIObject { public static var resource: ResourceKind { .backups } }
extension Restore: APIObject { public static var resource: ResourceKind { .restores } }
extension BackupSchedule: APIObject { public static var resource: ResourceKind { .backupSchedules } }
extension TidbCluster: APIObject { public static var resource: ResourceKind { .tidbClusters } }
extension CompactBackup: APIObject { public static var resource: ResourceKind { .compactBackups } }

extension KubeAPI {
    /// An untyped object, or nil when it does not exist (Jobs, which have no Swift model here).
    public func getIfPresent(_ type: JSONValue.Type, _ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue? {
        do { return try await get(kind, namespace: namespace, name: name) } catch let e as KubeAPIError where e.isNotFound { return nil }
    }
}

extension KubeAPI {
    /// The state of the Job `name` (absent when there is none): how every flow looks at its Jobs.
    public func jobState(namespace: String, name: String) async throws -> JobState {
        JobState(try await getIfPresent(JSONValue.self, .jobs, namespace: namespace, name: name))
    }
}

/// What a Job's status says, as far as the controllers care.
public struct JobState: Sendable {
    public var exists: Bool
    public var failed: Bool
    public var succeeded: Bool
    public var deleting: Bool
    public var failureReason: String
    public var object: JSONValue

    public init(_ job: JSONValue?) {
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

    public var finished: Bool { failed || succeeded }

    /// A Job this operator did not build (TiDB Operator's, found at a takeover): its pod cannot write
    /// a result into the status subresource.
    public var isForeign: Bool {
        exists && object.value(at: ["metadata", "annotations", BRLabels.jobBuilderAnnotation])?.stringValue != BRLabels.jobBuilder
    }
}

/// A status write refused because the object changed since the pass read it: the pass is run again.
public struct StatusConflict: Error, CustomStringConvertible, Sendable {
    public var kind: String
    public var namespace: String
    public var name: String
    public var description: String { "\(kind) \(namespace)/\(name) changed while it was reconciled; the pass is run again" }
}

/// Writes an object's status: re-read, apply the change, skip when nothing changed, retry on conflict.
/// The one way every status is written, by the controllers and by the job binary (reference 3.10,
/// without TiDB Operator's blind retries on any error). A controller retries conflicts only (other
/// errors go back to its work queue); the job binary, which has no queue and whose result must not be
/// lost, also rides out an API that cannot be reached for a moment (`outage`).
public enum StatusWriter {
    @discardableResult
    /// `from`: the object as the caller read it, tried first instead of a fresh read (a 409 means it
    /// was stale, and the retry reads it again). `outage`: how long connection errors, 5xx and 429 are
    /// retried (with growing pauses), `onRetry` told of each; nil for none.
    public static func update<T: APIObject>(_ api: any KubeAPI, _ type: T.Type, namespace: String, name: String, from read: T? = nil,
                                            outage: Duration? = nil, onRetry: (any Error) -> Void = { _ in },
                                            _ change: (inout T) -> Void) async throws -> T? where T: Equatable {
        try await write(api, type, namespace: namespace, name: name, from: read, status: true, outage: outage, onRetry: onRetry, change)
    }

    /// The status write of a controller's pass, whose changes were decided on `read`: written on that
    /// version only. When the object changed meanwhile (409), the changes are not re-applied to the
    /// newer object, whose state they were not decided on (a `Scheduled` decided before the job binary
    /// wrote `Complete` would move a finished Backup back): `StatusConflict` is thrown and the pass is
    /// run again from a fresh read. Returns the object as written, or nil when it no longer exists.
    public static func updateDecided<T: APIObject>(_ api: any KubeAPI, _ type: T.Type, read: T,
                                                   _ change: (inout T) -> Void) async throws -> T? where T: Equatable {
        var current = read
        change(&current)
        if current == read { return current }
        do {
            return try await api.updateStatus(current)
        } catch let e as KubeAPIError where e.isConflict {
            throw StatusConflict(kind: T.resource.kind, namespace: read.metadata.namespace ?? "", name: read.metadata.name ?? "")
        } catch let e as KubeAPIError where e.isNotFound {
            return nil
        }
    }

    /// The same rule for the object itself (its metadata: finalizers, annotations), never its status.
    @discardableResult
    public static func updateObject<T: APIObject>(_ api: any KubeAPI, _ type: T.Type, namespace: String, name: String, from read: T? = nil,
                                                  _ change: (inout T) -> Void) async throws -> T? where T: Equatable {
        try await write(api, type, namespace: namespace, name: name, from: read, status: false, outage: nil, onRetry: { _ in }, change)
    }

    static func write<T: APIObject>(_ api: any KubeAPI, _ type: T.Type, namespace: String, name: String, from read: T?, status: Bool,
                                    outage: Duration?, onRetry: (any Error) -> Void,
                                    _ change: (inout T) -> Void) async throws -> T? where T: Equatable {
        let deadline = outage.map { ContinuousClock.now + $0 }
        var conflicts = 0
        var failures = 0
        var first = true
        while true {
            do {
                let fresh: T?
                if first, let read { fresh = read } else { fresh = try await api.getIfPresent(T.self, namespace: namespace, name: name) }
                first = false
                guard var current = fresh else { return nil }
                let before = current
                change(&current)
                if current == before { return current }
                return try await status ? api.updateStatus(current) : api.update(current)
            } catch let e as KubeAPIError where e.isConflict {
                conflicts += 1
                if conflicts >= 5 { return nil }
            } catch let e as KubeAPIError where e.isNotFound && !status {
                // An object gone while its metadata was being changed needs no change.
                return nil
            } catch let e as KubeAPIError where !(e.code >= 500 || e.code == 429) {
                throw e
            } catch {
                guard let deadline, ContinuousClock.now < deadline, !(error is CancellationError) else { throw error }
                failures += 1
                onRetry(error)
                try await Task.sleep(for: .milliseconds(min(2000, 100 * (1 << min(failures - 1, 5)))))
            }
        }
    }
}
