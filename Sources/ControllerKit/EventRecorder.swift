import Foundation
import KubeAPI
import KubeModel
import Logging
import Synchronization

/// Writes core/v1 Events about objects. A repeat of the same (object, type, reason, message) within
/// the aggregation window bumps the existing Event's `count` and `lastTimestamp` instead of adding one.
/// Failures are logged, never thrown: an Event is never worth failing a reconcile for.
public final class EventRecorder: Sendable {
    public enum EventType: String, Sendable { case normal = "Normal", warning = "Warning" }

    let api: any KubeAPI
    let component: String
    let clock: any ControllerClock
    let logger: Logger
    let window: TimeInterval
    private let recent = Mutex<[String: (name: String, count: Int64, at: Date)]>([:])
    /// How many recent Events are remembered for aggregation.
    static let recentLimit = 4096

    public init(api: any KubeAPI, component: String = "tidb-backup-operator", clock: any ControllerClock = SystemClock(),
                window: TimeInterval = 600, logger: Logger = Logger(label: "events")) {
        self.api = api
        self.component = component
        self.clock = clock
        self.window = window
        self.logger = logger
    }

    public func record(_ object: JSONValue, _ type: EventType, reason: String, message: String) async {
        let namespace = object.value(at: ["metadata", "namespace"])?.stringValue ?? "default"
        let name = object.value(at: ["metadata", "name"])?.stringValue ?? ""
        let uid = object.value(at: ["metadata", "uid"])?.stringValue ?? ""
        let key = [uid, name, type.rawValue, reason, message].joined(separator: "\u{1}")
        let now = clock.now()
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
        var involved: JSONValue = ["apiVersion": object["apiVersion"] ?? "", "kind": object["kind"] ?? "",
                                   "namespace": .string(namespace), "name": .string(name), "uid": .string(uid)]
        if let rv = object.value(at: ["metadata", "resourceVersion"]) { involved["resourceVersion"] = rv }
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
