import Foundation
import KubeAPI
import KubeModel
import Logging
import Synchronization

/// Writes core/v1 Events about objects. A repeat of the same (object, type, reason, message) within
/// the aggregation window bumps the existing Event's `count` and `lastTimestamp` instead of adding one.
/// Failures are logged, never thrown: an Event is never worth failing a reconcile for.
///
/// Delivery is `.inline` (the call returns when the Event is written: the job binary, tests) or
/// `.background` (the operator): `record` queues the Event and returns at once, and a few delivery
/// tasks write the queue, each object's Events in order on one of them (so its repeats aggregate as
/// inline). Like Kubernetes' recorder, a full queue drops the new Event (logged and counted) rather
/// than slow the reconciles down.
public final class EventRecorder: Sendable {
    public enum EventType: String, Sendable { case normal = "Normal", warning = "Warning" }
    public enum Delivery: Sendable {
        case inline
        /// `lanes` delivery tasks, at most `capacity` Events waiting in each.
        case background(lanes: Int, capacity: Int, linger: TimeInterval = 0)
    }

    let api: any KubeAPI
    let component: String
    let clock: any ControllerClock
    let logger: Logger
    let window: TimeInterval
    private let recent = Mutex<[String: (name: String, count: Int64, at: Date)]>([:])
    /// How many recent Events are remembered for aggregation.
    static let recentLimit = 4096

    /// An Event to write: the object it is about by reference only (a queued Event holds no copy of
    /// the object).
    struct Pending: Sendable {
        let apiVersion: JSONValue
        let kind: JSONValue
        let namespace: String
        let name: String
        let uid: String
        let resourceVersion: JSONValue?
        let type: EventType
        let reason: String
        let message: String
        let at: Date

        init(_ object: JSONValue, _ type: EventType, reason: String, message: String, at: Date) {
            apiVersion = object["apiVersion"] ?? ""
            kind = object["kind"] ?? ""
            namespace = object.value(at: ["metadata", "namespace"])?.stringValue ?? "default"
            name = object.value(at: ["metadata", "name"])?.stringValue ?? ""
            uid = object.value(at: ["metadata", "uid"])?.stringValue ?? ""
            resourceVersion = object.value(at: ["metadata", "resourceVersion"])
            (self.type, self.reason, self.at) = (type, reason, at)
            // A tool's whole stderr is no Event message: its beginning and its last lines are.
            self.message = StatusText.bounded(message, limit: StatusText.eventLimit)
        }
    }
    private let lanes: [AsyncStream<Pending>.Continuation]
    private let workers = Mutex<[Task<Void, Never>]>([])
    /// Events queued and not yet written (or dropped), for `flush()`.
    private let queued = Atomic<Int>(0)
    /// Events dropped because their lane was full.
    private let droppedCount = Atomic<Int>(0)

    public init(api: any KubeAPI, component: String = "tidb-backup-operator", clock: any ControllerClock = SystemClock(),
                window: TimeInterval = 600, delivery: Delivery = .inline, logger: Logger = Logger(label: "events")) {
        self.api = api
        self.component = component
        self.clock = clock
        self.window = window
        self.logger = logger
        guard case .background(let count, let capacity, let linger) = delivery else {
            lanes = []
            return
        }
        var lanes: [AsyncStream<Pending>.Continuation] = []
        var streams: [AsyncStream<Pending>] = []
        for _ in 0..<max(1, count) {
            let (stream, continuation) = AsyncStream.makeStream(of: Pending.self, bufferingPolicy: .bufferingOldest(max(1, capacity)))
            lanes.append(continuation)
            streams.append(stream)
        }
        self.lanes = lanes
        // The tasks hold the recorder weakly: it ends (and finishes its lanes) when its owner lets go.
        let tasks = streams.map { stream in
            Task { [weak self] in
                for await pending in stream {
                    guard let self else { return }
                    // An Event waits until it is `linger` old: the writes a burst of reconciles must make
                    // (Jobs, statuses, a schedule's Backups) go first, the Events just after.
                    let wait = linger - self.clock.now().timeIntervalSince(pending.at)
                    if wait > 0 { try? await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
                    await self.write(pending)
                    self.queued.subtract(1, ordering: .relaxed)
                }
            }
        }
        workers.withLock { $0 = tasks }
    }

    deinit {
        for lane in lanes { lane.finish() }
    }

    /// Events queued and not yet written.
    public var pending: Int { queued.load(ordering: .relaxed) }

    /// Events dropped so far because the background queue was full.
    public var dropped: Int { droppedCount.load(ordering: .relaxed) }

    /// Waits until every Event queued so far is written (background delivery), or `limit` has passed;
    /// returns at once inline. Whether all were written.
    @discardableResult
    public func flush(within limit: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while queued.load(ordering: .relaxed) > 0 {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    /// Records an Event about a typed object (only its reference is taken: no encoding of the object).
    public func record<T: KubeResource>(_ object: T, _ type: EventType, reason: String, message: String) async {
        var metadata: JSONObject = ["name": .string(object.metadata.name ?? ""), "namespace": .string(object.metadata.namespace ?? "default"),
                                    "uid": .string(object.metadata.uid ?? "")]
        if let rv = object.metadata.resourceVersion { metadata["resourceVersion"] = .string(rv) }
        await record(["apiVersion": .string(T.apiVersion), "kind": .string(T.kind), "metadata": .object(metadata)], type, reason: reason, message: message)
    }

    /// Records an Event about `object`: written before returning inline, queued in the background.
    public func record(_ object: JSONValue, _ type: EventType, reason: String, message: String) async {
        let pending = Pending(object, type, reason: reason, message: message, at: clock.now())
        guard !lanes.isEmpty else { return await write(pending) }
        // One lane per object, so its Events keep their order and its repeats meet on one lane.
        var hasher = Hasher()
        hasher.combine(pending.namespace)
        hasher.combine(pending.name)
        let lane = lanes[Int(UInt(bitPattern: hasher.finalize()) % UInt(lanes.count))]
        queued.add(1, ordering: .relaxed)
        if case .dropped = lane.yield(pending) {
            queued.subtract(1, ordering: .relaxed)
            let total = droppedCount.add(1, ordering: .relaxed).newValue
            // Once per 100 dropped, not once each: a flood of Events must not become a flood of logs.
            if total % 100 == 1 {
                logger.warning("event queue full: dropping events", metadata: ["dropped": "\(total)", "reason": "\(reason)"])
            }
        }
    }

    func write(_ pending: Pending) async {
        let (namespace, name, uid) = (pending.namespace, pending.name, pending.uid)
        let (type, reason, message) = (pending.type, pending.reason, pending.message)
        let key = [uid, name, type.rawValue, reason, message].joined(separator: "\u{1}")
        let now = pending.at
        let timestamp = Time(now).description
        let previous = recent.withLock { r -> (name: String, count: Int64, at: Date)? in
            if r.count > Self.recentLimit {
                // Bounded, and pruned once per `recentLimit / 2` new keys rather than on every call (a
                // burst of distinct Events within the window would otherwise filter the whole map each time).
                r = r.filter { now.timeIntervalSince($0.value.at) < window }
                if r.count > Self.recentLimit / 2 {
                    let cutoff = r.values.map(\.at).sorted(by: >)[Self.recentLimit / 2 - 1]
                    r = r.filter { $0.value.at >= cutoff }
                }
            }
            guard let p = r[key], now.timeIntervalSince(p.at) < window else { return nil }
            r[key] = (p.name, p.count + 1, now)
            return p
        }
        do {
            if let previous {
                _ = try await api.patch(.events, namespace: namespace, name: previous.name,
                                        patch: .merge(["count": .int(previous.count + 1), "lastTimestamp": .string(timestamp)]))
                return
            }
        } catch {
            // The earlier Event is gone (expired or deleted): write a new one.
        }
        let eventName = "\(name).\(String(UInt64(now.timeIntervalSince1970 * 1e9), radix: 16))\(String(Int.random(in: 0..<4096), radix: 16))"
        var involved: JSONValue = ["apiVersion": pending.apiVersion, "kind": pending.kind,
                                   "namespace": .string(namespace), "name": .string(name), "uid": .string(uid)]
        if let rv = pending.resourceVersion { involved["resourceVersion"] = rv }
        let event: JSONValue = [
            "apiVersion": "v1", "kind": "Event",
            "metadata": ["name": .string(eventName), "namespace": .string(namespace)],
            "involvedObject": involved,
            "reason": .string(reason), "message": .string(message), "type": .string(type.rawValue),
            "source": ["component": .string(component)],
            "firstTimestamp": .string(timestamp), "lastTimestamp": .string(timestamp), "count": 1,
            "reportingComponent": .string(component), "reportingInstance": .string(component),
        ]
        do {
            _ = try await api.create(.events, namespace: namespace, object: event)
            recent.withLock { $0[key] = (eventName, 1, now) }
        } catch {
            logger.warning("cannot record event", metadata: ["object": "\(namespace)/\(name)", "reason": "\(reason)", "error": "\(error)"])
        }
    }
}
