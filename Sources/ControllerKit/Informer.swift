import Foundation
import KubeAPI
import KubeEvents
import KubeModel
import Logging
import Synchronization

/// Keeps a cache of one kind of object (optionally one namespace, optionally label-selected) current:
/// list, then watch from the list's resource version, resume from the last seen version when a watch
/// ends, list again on 410 Gone. Handlers hear of every change, including changes found by a re-list
/// (objects that vanished while no watch was open arrive as deletions).
public final class Informer: Sendable {
    public enum Change: Sendable {
        case added(JSONValue)
        case updated(old: JSONValue, new: JSONValue)
        case deleted(JSONValue)

        public var object: JSONValue {
            switch self {
            case .added(let o), .deleted(let o): o
            case .updated(_, let o): o
            }
        }
    }

    public let kind: ResourceKind
    public let namespace: String?
    public let labelSelector: String?
    let api: any KubeAPI
    let logger: Logger
    let retryDelay: Duration
    let watchTimeoutSeconds: Int?
    /// Applied to every object before it is cached and handed to handlers (client-go's
    /// `SetTransform`): a controller that reads objects from the API keeps only what its handlers
    /// need, so ten thousand cached objects cost little memory.
    let transform: (@Sendable (JSONValue) -> JSONValue)?

    struct State {
        var objects: [ObjectKey: JSONValue] = [:]
        var synced = false
        var handlers: [@Sendable (Change) async -> Void] = []
        var lists = 0
        var watches = 0
    }
    private let state = Mutex(State())

    public init(api: any KubeAPI, kind: ResourceKind, namespace: String? = nil, labelSelector: String? = nil,
                retryDelay: Duration = .seconds(1), watchTimeoutSeconds: Int? = nil, transform: (@Sendable (JSONValue) -> JSONValue)? = nil,
                logger: Logger = Logger(label: "informer")) {
        self.transform = transform
        self.api = api
        self.kind = kind
        self.namespace = namespace
        self.labelSelector = labelSelector
        self.retryDelay = retryDelay
        self.watchTimeoutSeconds = watchTimeoutSeconds
        self.logger = logger
    }

    /// Registers a handler; call before `run`.
    public func onChange(_ handler: @escaping @Sendable (Change) async -> Void) {
        state.withLock { $0.handlers.append(handler) }
    }

    public var hasSynced: Bool { state.withLock { $0.synced } }
    /// How many times it listed and opened a watch (tests check that resuming does not re-list).
    public var listCount: Int { state.withLock { $0.lists } }
    public var watchCount: Int { state.withLock { $0.watches } }

    public func get(_ key: ObjectKey) -> JSONValue? { state.withLock { $0.objects[key] } }
    public func get(namespace: String, name: String) -> JSONValue? { get(ObjectKey(namespace: namespace, name: name)) }
    public func list() -> [JSONValue] { state.withLock { Array($0.objects.values) } }
    public var count: Int { state.withLock { $0.objects.count } }

    /// Runs until cancelled.
    ///
    /// While the API server cannot be reached it retries with a doubling delay (from `retryDelay` up to
    /// 10 s, with jitter, so replicas and informers do not come back in step) and logs the first failure
    /// and then one line per delay step, not one per attempt; it keeps its resource version, so once the
    /// server answers it resumes the watch without listing everything again.
    public func run() async {
        var resourceVersion: String?
        var failures = 0
        while !Task.isCancelled {
            do {
                if resourceVersion == nil { resourceVersion = try await relist() }
                try await watch(from: &resourceVersion)
                if failures > 0 { logger.info("list/watch resumed", metadata: ["resource": "\(kind)", "failures": "\(failures)"]) }
                failures = 0
            } catch let error as KubeAPIError where error.isGone {
                logger.info("watch history expired, listing again", metadata: ["resource": "\(kind)"])
                resourceVersion = nil
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
                let delay = Self.backoff(base: retryDelay, failures: failures)
                if failures.nonzeroBitCount == 1 {
                    logger.warning("list/watch failed", metadata: ["resource": "\(kind)", "error": "\(error)", "failures": "\(failures)",
                                                                  "retry_in": "\(delay)"])
                }
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// `base · 2^(failures-1)`, at most 10 s (so the operator is back within seconds of the server),
    /// with up to 20 % jitter.
    static func backoff(base: Duration, failures: Int) -> Duration {
        let doubled = base * (1 << min(max(failures - 1, 0), 10))
        let capped = min(doubled, max(base, .seconds(10)))
        return capped + capped * Double.random(in: 0..<0.2)
    }

    /// Lists everything and reconciles the cache with it; returns the list's resource version.
    func relist() async throws -> String {
        let listed = try await api.listAll(kind, namespace: namespace, labelSelector: labelSelector)
        var fresh: [ObjectKey: JSONValue] = [:]
        for item in listed.items { fresh[item.objectKey] = transform?(item) ?? item }
        let (changes, handlers) = state.withLock { s -> ([Change], [@Sendable (Change) async -> Void]) in
            var changes: [Change] = []
            for (key, old) in s.objects where fresh[key] == nil { changes.append(.deleted(old)) }
            for (key, new) in fresh.sorted(by: { $0.key < $1.key }) {
                if let old = s.objects[key] {
                    if old.value(at: ["metadata", "resourceVersion"]) != new.value(at: ["metadata", "resourceVersion"]) {
                        changes.append(.updated(old: old, new: new))
                    }
                } else {
                    changes.append(.added(new))
                }
            }
            s.objects = fresh
            s.synced = true
            s.lists += 1
            return (changes, s.handlers)
        }
        for change in changes { for h in handlers { await h(change) } }
        return listed.resourceVersion
    }

    func watch(from resourceVersion: inout String?) async throws {
        state.withLock { $0.watches += 1 }
        let stream = try await api.watch(kind, namespace: namespace,
                                         options: WatchOptions(labelSelector: labelSelector, resourceVersion: resourceVersion,
                                                               allowBookmarks: true, timeoutSeconds: watchTimeoutSeconds))
        for try await event in stream {
            if let rv = event.resourceVersion, !rv.isEmpty { resourceVersion = rv }
            let key = event.object.objectKey
            let object = event.type == .bookmark ? event.object : (transform?(event.object) ?? event.object)
            let (change, handlers) = state.withLock { s -> (Change?, [@Sendable (Change) async -> Void]) in
                switch event.type {
                case .bookmark: return (nil, [])
                case .added, .modified:
                    let old = s.objects[key]
                    s.objects[key] = object
                    return (old.map { .updated(old: $0, new: object) } ?? .added(object), s.handlers)
                case .deleted:
                    s.objects[key] = nil
                    return (.deleted(object), s.handlers)
                }
            }
            if let change { for h in handlers { await h(change) } }
        }
    }
}
