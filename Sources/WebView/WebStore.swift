import BRModel
import ControllerKit
import Foundation
import KubeAPI
import KubeModel
import Logging
import Synchronization

/// What the web view reads: list-watches (informers) of Backups, Restores, BackupSchedules and their
/// Events through the Kubernetes API, each object cut down to what the page shows, and a broadcast of
/// every change for the page's live updates.
public final class WebStore: Sendable {
    let backups: Informer
    let restores: Informer
    let schedules: Informer
    let events: Informer
    let api: any KubeAPI
    let subscribers = Mutex<[Int: AsyncStream<String>.Continuation]>([:])
    let nextID = Mutex(0)

    public init(api: any KubeAPI, namespace: String? = nil, logger: Logger = Logger(label: "web-view")) {
        self.api = api
        backups = Informer(api: api, kind: .backups, namespace: namespace, transform: Self.slimBackup, logger: logger)
        restores = Informer(api: api, kind: .restores, namespace: namespace, transform: Self.slimBackup, logger: logger)
        schedules = Informer(api: api, kind: .backupSchedules, namespace: namespace, transform: Self.slimSchedule, logger: logger)
        events = Informer(api: api, kind: .events, namespace: namespace, transform: Self.slimEvent, logger: logger)
        for (informer, kind) in [(backups, "Backup"), (restores, "Restore"), (schedules, "BackupSchedule"), (events, "Event")] {
            informer.onChange { [weak self] change in self?.publish(kind: kind, object: change.object) }
        }
    }

    public var hasSynced: Bool { [backups, restores, schedules, events].allSatisfy(\.hasSynced) }

    /// Set by the first request: until someone looks, the web view watches nothing and holds nothing,
    /// so a server whose page is never opened pays nothing for it.
    let activation = Mutex<(active: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    /// Starts the list-watches (once) and waits, at most `timeout`, until they have listed.
    public func activate(timeout: Duration = .seconds(10)) async {
        let waiter = activation.withLock { a -> CheckedContinuation<Void, Never>? in
            guard !a.active else { return nil }
            a.active = true
            defer { a.waiter = nil }
            return a.waiter
        }
        waiter?.resume()
        let deadline = ContinuousClock.now + timeout
        while !hasSynced && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }

    /// Waits for the first request, then runs the list-watches until cancelled.
    public func run() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = activation.withLock { a -> Bool in
                    if a.active || Task.isCancelled { return true }
                    a.waiter = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let waiter = activation.withLock { a -> CheckedContinuation<Void, Never>? in
                defer { a.waiter = nil }
                return a.waiter
            }
            waiter?.resume()
        }
        if Task.isCancelled { return }
        await withTaskGroup(of: Void.self) { group in
            for informer in [backups, restores, schedules, events] { group.addTask { await informer.run() } }
        }
        for (_, c) in subscribers.withLock({ $0 }) { c.finish() }
    }

    // MARK: Live updates

    /// A stream of changes (`{"kind":…,"namespace":…,"name":…}`), ended by the returned function.
    public func subscribe() -> (AsyncStream<String>, @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1000))
        let id = nextID.withLock { n in n += 1; return n }
        subscribers.withLock { $0[id] = continuation }
        return (stream, { [weak self] in
            self?.subscribers.withLock { _ = $0.removeValue(forKey: id) }
            continuation.finish()
        })
    }

    var subscriberCount: Int { subscribers.withLock { $0.count } }

    func publish(kind: String, object: JSONValue) {
        guard subscribers.withLock({ !$0.isEmpty }) else { return }
        var target = object
        if kind == "Event" {
            guard let involved = object["involvedObject"], let k = involved["kind"]?.stringValue,
                  ["Backup", "Restore", "BackupSchedule", "CompactBackup"].contains(k) else { return }
            target = ["metadata": ["namespace": involved["namespace"] ?? "", "name": involved["name"] ?? ""]]
            let message: JSONValue = ["kind": .string(k), "namespace": target.value(at: ["metadata", "namespace"]) ?? "",
                                      "name": target.value(at: ["metadata", "name"]) ?? "", "event": true]
            broadcast(message.serialized())
            return
        }
        let message: JSONValue = ["kind": .string(kind), "namespace": object.value(at: ["metadata", "namespace"]) ?? "",
                                  "name": object.value(at: ["metadata", "name"]) ?? ""]
        broadcast(message.serialized())
    }

    func broadcast(_ text: String) {
        for (_, c) in subscribers.withLock({ $0 }) { c.yield(text) }
    }

    // MARK: Reads

    public func overview(now: Date) -> WebModel.Overview {
        WebModel.overview(schedules: schedules.list(), backups: backups.list(), restores: restores.list(), now: now)
    }

    public func scheduleDetail(namespace: String, name: String, now: Date) -> WebModel.ScheduleDetail? {
        guard let schedule = schedules.get(namespace: namespace, name: name) else { return nil }
        let owned = backups.list().filter { $0.value(at: ["metadata", "namespace"])?.stringValue == namespace && WebModel.ownerSchedule($0) == name }
        let notStarting = events.list().filter {
            $0["reason"]?.stringValue == "PodNotStarting" && $0.value(at: ["involvedObject", "namespace"])?.stringValue == namespace
        }
        return WebModel.scheduleDetail(schedule, backups: owned, events: notStarting, now: now)
    }

    public func detail(kind: String, namespace: String, name: String) async -> WebModel.Detail? {
        let informer = kind == "Restore" ? restores : backups
        guard let object = informer.get(namespace: namespace, name: name) else { return nil }
        let related = events.list().filter {
            $0.value(at: ["involvedObject", "kind"])?.stringValue == kind && $0.value(at: ["involvedObject", "namespace"])?.stringValue == namespace
                && $0.value(at: ["involvedObject", "name"])?.stringValue == name
        }
        var detail = WebModel.detail(object, events: related)
        detail.log = await logTail(kind: kind, namespace: namespace, name: name)
        if detail.log == nil && WebModel.ran(detail.row) {
            let job = (kind == "Restore" ? "restore-" : "backup-") + name
            detail.logGone = detail.row.schedule != nil
                ? "Job \(job) has been removed: its schedule removes the previous backup's Job when it makes the next one, as TiDB Operator does. What the run recorded is in the conditions and events on this page."
                : "Job \(job) and its pod are gone, and their log with them. What the run recorded is in the conditions and events on this page."
        }
        return detail
    }

    /// The last lines of the newest pod of the object's newest Job (the job binary's log, which never
    /// holds a secret), read through the API when it serves pod logs.
    func logTail(kind: String, namespace: String, name: String, lines: Int = 60) async -> WebModel.LogTail? {
        guard let source = api as? any PodLogSource else { return nil }
        let label = kind == "Restore" ? BRLabels.restore : BRLabels.backup
        func newest(_ items: [JSONValue]) -> JSONValue? {
            items.max { ($0.value(at: ["metadata", "creationTimestamp"])?.stringValue ?? "", $0.value(at: ["metadata", "name"])?.stringValue ?? "")
                < ($1.value(at: ["metadata", "creationTimestamp"])?.stringValue ?? "", $1.value(at: ["metadata", "name"])?.stringValue ?? "") }
        }
        guard let jobs = try? await api.list(.jobs, namespace: namespace, options: ListOptions(labelSelector: "\(label)=\(name)")),
              let job = newest(jobs.items), let jobName = job.value(at: ["metadata", "name"])?.stringValue,
              let pods = try? await api.list(.pods, namespace: namespace, options: ListOptions(labelSelector: "job-name=\(jobName)")),
              let pod = newest(pods.items), let podName = pod.value(at: ["metadata", "name"])?.stringValue else { return nil }
        let text = (try? await source.podLog(namespace: namespace, name: podName, tailLines: lines)) ?? ""
        return WebModel.LogTail(job: jobName, pod: podName, text: text)
    }

    // MARK: What is kept of each object

    static func pick(_ object: JSONValue, _ paths: [[String]]) -> JSONValue {
        var out: JSONValue = .emptyObject
        for path in paths {
            guard let v = object.value(at: path) else { continue }
            out = set(out, path[...], v)
        }
        return out
    }

    static func set(_ base: JSONValue, _ path: ArraySlice<String>, _ value: JSONValue) -> JSONValue {
        guard let key = path.first else { return value }
        var object = base
        let child = base[key] ?? .emptyObject
        object[key] = set(child, path.dropFirst(), value)
        return object
    }

    static let metadataPaths: [[String]] = [["apiVersion"], ["kind"], ["metadata", "name"], ["metadata", "namespace"], ["metadata", "uid"],
                                            ["metadata", "resourceVersion"], ["metadata", "creationTimestamp"], ["metadata", "labels"],
                                            ["metadata", "ownerReferences"], ["metadata", "deletionTimestamp"]]

    @Sendable static func slimBackup(_ o: JSONValue) -> JSONValue {
        pick(o, metadataPaths + WebModel.objectFields)
    }

    @Sendable static func slimSchedule(_ o: JSONValue) -> JSONValue {
        pick(o, metadataPaths + [["spec", "schedule"], ["spec", "pause"], ["spec", "maxBackups"], ["spec", "maxReservedTime"],
                                 ["spec", "timeZone"], ["spec", "backupTemplate", "br", "cluster"], ["status"]])
    }

    @Sendable static func slimEvent(_ o: JSONValue) -> JSONValue {
        let kind = o.value(at: ["involvedObject", "kind"])?.stringValue ?? ""
        guard ["Backup", "Restore", "BackupSchedule", "CompactBackup"].contains(kind) else { return pick(o, metadataPaths) }
        return pick(o, metadataPaths + [["involvedObject", "kind"], ["involvedObject", "namespace"], ["involvedObject", "name"], ["type"],
                                        ["reason"], ["message"], ["count"], ["lastTimestamp"], ["firstTimestamp"], ["eventTime"]])
    }
}
