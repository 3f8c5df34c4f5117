import Foundation
import KubeAPI
import KubeModel
import Synchronization

/// A `KubeAPI` held in memory, with the API server's object semantics (resource versions, generation,
/// the status subresource, optimistic concurrency, finalizers, selectors, pagination, watch resume and
/// Gone) and none of its controllers: no garbage collector, no Job controller. It records every call and
/// can be told to fail chosen calls, which is how controller tests simulate crashes and outages.
public final class InMemoryKubeAPI: KubeAPI {
    public enum Verb: String, Sendable, CaseIterable { case get, list, watch, create, update, patch, delete }

    public struct Call: Sendable, Hashable, CustomStringConvertible {
        public var verb: Verb
        public var resource: String
        public var subresource: String?
        public var namespace: String?
        public var name: String?
        public var description: String {
            "\(verb.rawValue) \(resource)\(subresource.map { "/\($0)" } ?? "") \(namespace ?? "")/\(name ?? "")"
        }
    }

    struct Fault {
        var verb: Verb
        var resource: String?
        var subresource: String??
        var remaining: Int
        var error: KubeAPIError
    }

    struct Subscriber {
        var resource: String
        var namespace: String?
        var selector: LabelSelector?
        var continuation: WatchStream.Continuation
    }

    struct State {
        var objects: [String: [ObjectKey: JSONValue]] = [:]
        var resourceVersion: Int64 = 1000
        var history: [(resource: String, event: WatchEvent, rv: Int64)] = []
        var historyStart: Int64 = 1000
        var subscribers: [Int: Subscriber] = [:]
        var nextSubscriber = 0
        var faults: [Fault] = []
        var calls: [Call] = []
    }

    private let state = Mutex(State())
    private let historyLimit: Int
    private let clock: @Sendable () -> Date

    public init(historyLimit: Int = 10_000, clock: @escaping @Sendable () -> Date = Date.init) {
        self.historyLimit = historyLimit
        self.clock = clock
    }

    // MARK: Test controls

    /// Makes the next `count` calls of `verb` (on `resource`, e.g. `backups.pingcap.com`, and subresource
    /// when given) fail with `error` before they change anything.
    public func failNext(_ verb: Verb, resource: ResourceKind? = nil, subresource: String?? = nil, count: Int = 1,
                         with error: KubeAPIError = KubeAPIError(code: 500, reason: "InternalError", message: "injected failure")) {
        state.withLock {
            $0.faults.append(Fault(verb: verb, resource: resource?.qualifiedName, subresource: subresource, remaining: count, error: error))
        }
    }

    /// Every call so far, in order.
    public var calls: [Call] { state.withLock { $0.calls } }

    public func resetCalls() { state.withLock { $0.calls.removeAll() } }

    /// Every stored object of a kind (tests read the world through this without recording a call).
    public func objects(_ kind: ResourceKind, namespace: String? = nil) -> [JSONValue] {
        state.withLock { s in
            (s.objects[kind.qualifiedName] ?? [:]).filter { namespace == nil || $0.key.namespace == namespace }
                .sorted { $0.key < $1.key }.map(\.value)
        }
    }

    /// Ends every open watch, as a restarting API server does.
    public func closeWatches() {
        let all = state.withLock { s -> [WatchStream.Continuation] in
            let c = s.subscribers.values.map(\.continuation)
            s.subscribers.removeAll()
            return c
        }
        for c in all { c.finish() }
    }

    /// Forgets change history up to now, so resuming a watch from an older version gets 410 Gone.
    public func compactHistory() {
        state.withLock { s in
            s.history.removeAll()
            s.historyStart = s.resourceVersion
        }
    }

    public var openWatchCount: Int { state.withLock { $0.subscribers.count } }

    // MARK: KubeAPI

    public func get(_ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue {
        try state.withLock { s in
            try Self.admitCall(&s, .get, kind, nil, namespace, name)
            guard let object = s.objects[kind.qualifiedName]?[key(kind, namespace, name)] else { throw KubeAPIError.notFound(kind, name) }
            return object
        }
    }

    public func list(_ kind: ResourceKind, namespace: String?, options: ListOptions) async throws -> ObjectList {
        let selector = try options.labelSelector.flatMap { $0.isEmpty ? nil : try Self.parseSelector($0) }
        let fields = try options.fieldSelector.flatMap { text -> FieldSelector? in
            if text.isEmpty { return nil }
            do { return try FieldSelector(parsing: text) } catch { throw KubeAPIError(code: 400, reason: "BadRequest", message: "\(error)") }
        }
        return try state.withLock { s in
            try Self.admitCall(&s, .list, kind, nil, namespace, nil)
            var after: ObjectKey?
            if let token = options.continueToken, !token.isEmpty {
                guard let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8),
                      let slash = text.firstIndex(of: "/") else {
                    throw KubeAPIError(code: 400, reason: "BadRequest", message: "continue key is not valid")
                }
                after = ObjectKey(namespace: String(text[..<slash]), name: String(text[text.index(after: slash)...]))
            }
            var items = (s.objects[kind.qualifiedName] ?? [:])
                .filter { k, v in
                    (namespace == nil || !kind.namespaced || k.namespace == namespace) && (after.map { k > $0 } ?? true)
                        && (selector?.matches(Self.labels(v)) ?? true) && (fields?.matches(v) ?? true)
                }
                .sorted { $0.key < $1.key }
            var next: String?
            if let limit = options.limit, limit > 0, items.count > limit {
                items = Array(items.prefix(limit))
                let last = items.last!.key
                next = Data("\(last.namespace)/\(last.name)".utf8).base64EncodedString()
            }
            return ObjectList(items: items.map(\.value), resourceVersion: String(s.resourceVersion), continueToken: next)
        }
    }

    public func watch(_ kind: ResourceKind, namespace: String?, options: WatchOptions) async throws -> WatchStream {
        let selector = try options.labelSelector.flatMap { $0.isEmpty ? nil : try Self.parseSelector($0) }
        let (stream, continuation) = WatchStream.makeStream(bufferingPolicy: .unbounded)
        let id = try state.withLock { s -> Int in
            try Self.admitCall(&s, .watch, kind, nil, namespace, nil)
            func visible(_ object: JSONValue) -> Bool {
                (namespace == nil || object.objectKey.namespace == namespace) && (selector?.matches(Self.labels(object)) ?? true)
            }
            let rvText = options.resourceVersion ?? ""
            if rvText.isEmpty || rvText == "0" {
                for (_, object) in (s.objects[kind.qualifiedName] ?? [:]).sorted(by: { $0.key < $1.key }) where visible(object) {
                    continuation.yield(WatchEvent(.added, object))
                }
            } else {
                guard let from = Int64(rvText) else {
                    throw KubeAPIError(code: 400, reason: "BadRequest", message: "invalid resourceVersion \"\(rvText)\"")
                }
                if from < s.historyStart {
                    continuation.finish(throwing: KubeAPIError(code: 410, reason: "Expired",
                        message: "too old resource version: \(from) (\(s.historyStart))"))
                    return -1
                }
                for entry in s.history where entry.resource == kind.qualifiedName && entry.rv > from && visible(entry.event.object) {
                    continuation.yield(entry.event)
                }
            }
            let id = s.nextSubscriber
            s.nextSubscriber += 1
            s.subscribers[id] = Subscriber(resource: kind.qualifiedName, namespace: kind.namespaced ? namespace : nil,
                                           selector: selector, continuation: continuation)
            return id
        }
        guard id >= 0 else { return stream }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        if let timeout = options.timeoutSeconds {
            Task {
                try? await Task.sleep(for: .seconds(timeout))
                continuation.finish()
            }
        }
        return stream
    }

    public func create(_ kind: ResourceKind, namespace: String?, object input: JSONValue) async throws -> JSONValue {
        let now = Time(clock()).description
        return try mutate { s in
            try Self.admitCall(&s, .create, kind, nil, namespace, input.objectKey.name)
            var object = input
            if object["metadata"] == nil { object["metadata"] = .emptyObject }
            var name = object.objectKey.name
            if name.isEmpty, let prefix = object.value(at: ["metadata", "generateName"])?.stringValue, !prefix.isEmpty {
                repeat { name = prefix + Self.randomSuffix() } while s.objects[kind.qualifiedName]?[self.key(kind, namespace, name)] != nil
                object["metadata"]?["name"] = .string(name)
            }
            guard !name.isEmpty else {
                throw KubeAPIError(code: 422, reason: "Invalid", message: "\(kind.kind).\(kind.group) \"\" is invalid: metadata.name: Required value: name or generateName is required",
                                   causes: [.init(field: "metadata.name", message: "Required value: name or generateName is required")])
            }
            if let bodyNamespace = object.value(at: ["metadata", "namespace"])?.stringValue, kind.namespaced,
               let namespace, bodyNamespace != namespace {
                throw KubeAPIError(code: 400, reason: "BadRequest",
                                   message: "the namespace of the provided object does not match the namespace sent on the request")
            }
            let key = self.key(kind, namespace, name)
            if s.objects[kind.qualifiedName]?[key] != nil {
                throw KubeAPIError(code: 409, reason: "AlreadyExists", message: "\(kind.qualifiedName) \"\(name)\" already exists")
            }
            if kind.namespaced { object["metadata"]?["namespace"] = .string(key.namespace) }
            object["apiVersion"] = .string(kind.apiVersion)
            object["kind"] = .string(kind.kind)
            object["metadata"]?["uid"] = .string(UUID().uuidString.lowercased())
            object["metadata"]?["creationTimestamp"] = .string(now)
            object["metadata"]?["deletionTimestamp"] = nil
            object["metadata"]?["generation"] = 1
            if kind.hasStatusSubresource && kind.group == "pingcap.com" { object["status"] = nil }
            return self.commit(&s, kind, key, object, .added)
        }
    }

    public func update(_ kind: ResourceKind, namespace: String?, object input: JSONValue, subresource: String?) async throws -> JSONValue {
        try mutate { s in
            try Self.admitCall(&s, .update, kind, subresource, namespace, input.objectKey.name)
            return try self.apply(&s, kind, namespace, input, subresource: subresource, preconditionRV: input.value(at: ["metadata", "resourceVersion"])?.stringValue)
        }
    }

    public func patch(_ kind: ResourceKind, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> JSONValue {
        try mutate { s in
            try Self.admitCall(&s, .patch, kind, subresource, namespace, name)
            guard let current = s.objects[kind.qualifiedName]?[self.key(kind, namespace, name)] else { throw KubeAPIError.notFound(kind, name) }
            var next: JSONValue
            switch patch.kind {
            case .merge: next = JSONPatching.mergePatch(current, with: patch.body)
            case .strategicMerge: next = JSONPatching.strategicMergePatch(current, with: patch.body)
            case .json:
                do { next = try JSONPatching.jsonPatch(current, with: patch.body) } catch {
                    throw KubeAPIError(code: 422, reason: "Invalid", message: "\(error)")
                }
            }
            let explicit = patch.kind != .json ? patch.body.value(at: ["metadata", "resourceVersion"])?.stringValue : nil
            // A patch without a resourceVersion applies to the current object (the API server's patcher
            // sets it); only an update (PUT) of a custom resource must name one.
            let currentRV = current.value(at: ["metadata", "resourceVersion"])
            if explicit == nil { next["metadata"]?["resourceVersion"] = currentRV }
            return try self.apply(&s, kind, namespace, next, subresource: subresource, preconditionRV: explicit ?? currentRV?.stringValue)
        }
    }

    public func delete(_ kind: ResourceKind, namespace: String?, name: String, options: DeleteOptions) async throws -> JSONValue? {
        let now = Time(clock()).description
        return try mutate { s in
            try Self.admitCall(&s, .delete, kind, nil, namespace, name)
            let key = self.key(kind, namespace, name)
            guard let existing = s.objects[kind.qualifiedName]?[key] else { throw KubeAPIError.notFound(kind, name) }
            if let uid = options.preconditionUID, existing.value(at: ["metadata", "uid"])?.stringValue != uid {
                throw KubeAPIError(code: 409, reason: "Conflict",
                    message: "Operation cannot be fulfilled on \(kind.qualifiedName) \"\(name)\": Precondition failed: UID in precondition: \(uid), UID in object meta: \(existing.value(at: ["metadata", "uid"])?.stringValue ?? "")")
            }
            if let rv = options.preconditionResourceVersion, existing.value(at: ["metadata", "resourceVersion"])?.stringValue != rv {
                throw Self.conflict(kind, name)
            }
            let finalizers = existing.value(at: ["metadata", "finalizers"])?.arrayValue ?? []
            if finalizers.isEmpty {
                s.objects[kind.qualifiedName]?[key] = nil
                _ = self.record(&s, kind, existing, .deleted)
                return nil
            }
            if existing.value(at: ["metadata", "deletionTimestamp"]) != nil { return existing }
            var next = existing
            next["metadata"]?["deletionTimestamp"] = .string(now)
            next["metadata"]?["deletionGracePeriodSeconds"] = 0
            if case .int(let g)? = existing.value(at: ["metadata", "generation"]) { next["metadata"]?["generation"] = .int(g + 1) }
            return self.commit(&s, kind, key, next, .modified)
        }
    }

    // MARK: Internals

    /// Runs a write under the lock; watch events are yielded there too, so every watcher sees writes in
    /// resource-version order (continuations buffer without blocking).
    private func mutate<R: Sendable>(_ body: (inout State) throws -> R) throws -> R {
        try state.withLock { s in try body(&s) }
    }

    private func key(_ kind: ResourceKind, _ namespace: String?, _ name: String) -> ObjectKey {
        ObjectKey(namespace: kind.namespaced ? (namespace ?? "default") : "", name: name)
    }

    private func apply(_ s: inout State, _ kind: ResourceKind, _ namespace: String?, _ input: JSONValue, subresource: String?,
                       preconditionRV: String?) throws -> JSONValue {
        let name = input.objectKey.name
        let key = self.key(kind, namespace, name)
        guard let existing = s.objects[kind.qualifiedName]?[key] else { throw KubeAPIError.notFound(kind, name) }
        if kind.group == "pingcap.com" && (preconditionRV ?? "").isEmpty && subresource == nil {
            throw KubeAPIError(code: 422, reason: "Invalid", message: "\(kind.kind).\(kind.group) \"\(name)\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                               causes: [.init(field: "metadata.resourceVersion", message: "Invalid value: 0x0: must be specified for an update")])
        }
        if let preconditionRV, !preconditionRV.isEmpty, existing.value(at: ["metadata", "resourceVersion"])?.stringValue != preconditionRV {
            throw Self.conflict(kind, name)
        }
        var next = existing
        if subresource == "status" {
            next["status"] = input["status"]
        } else {
            next = input
            if kind.hasStatusSubresource { next["status"] = existing["status"] }
            for member in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace"] {
                next["metadata"]?[member] = existing.value(at: ["metadata", member])
            }
            next["apiVersion"] = existing["apiVersion"]
            next["kind"] = existing["kind"]
        }
        let deleting = existing.value(at: ["metadata", "deletionTimestamp"]) != nil
        let before = Set(existing.value(at: ["metadata", "finalizers"])?.arrayValue?.compactMap(\.stringValue) ?? [])
        let after = Set(next.value(at: ["metadata", "finalizers"])?.arrayValue?.compactMap(\.stringValue) ?? [])
        if deleting && !after.subtracting(before).isEmpty {
            throw KubeAPIError(code: 422, reason: "Invalid",
                message: "\(kind.kind) \"\(name)\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted",
                causes: [.init(field: "metadata.finalizers", message: "Forbidden: no new finalizers can be added if the object is being deleted")])
        }
        var strippedOld = existing, strippedNew = next
        strippedOld["metadata"] = nil
        strippedNew["metadata"] = nil
        let specChanged = kind.hasStatusSubresource ? existing["spec"] != next["spec"] : strippedOld != strippedNew
        if specChanged, case .int(let g)? = existing.value(at: ["metadata", "generation"]) { next["metadata"]?["generation"] = .int(g + 1) }
        var comparable = next
        comparable["metadata"]?["resourceVersion"] = existing.value(at: ["metadata", "resourceVersion"])
        if comparable == existing { return existing }
        if deleting && after.isEmpty {
            s.objects[kind.qualifiedName]?[key] = nil
            return record(&s, kind, next, .deleted)
        }
        return commit(&s, kind, key, next, .modified)
    }

    private func commit(_ s: inout State, _ kind: ResourceKind, _ key: ObjectKey, _ object: JSONValue, _ type: WatchEvent.Kind) -> JSONValue {
        s.resourceVersion += 1
        var stored = object
        stored["metadata"]?["resourceVersion"] = .string(String(s.resourceVersion))
        s.objects[kind.qualifiedName, default: [:]][key] = stored
        publish(&s, kind, WatchEvent(type, stored))
        return stored
    }

    /// A deletion: the last state, with a new resource version, goes to watchers.
    private func record(_ s: inout State, _ kind: ResourceKind, _ object: JSONValue, _ type: WatchEvent.Kind) -> JSONValue {
        s.resourceVersion += 1
        var last = object
        last["metadata"]?["resourceVersion"] = .string(String(s.resourceVersion))
        publish(&s, kind, WatchEvent(type, last))
        return last
    }

    private func publish(_ s: inout State, _ kind: ResourceKind, _ event: WatchEvent) {
        s.history.append((kind.qualifiedName, event, s.resourceVersion))
        if s.history.count > historyLimit {
            let drop = s.history.count - historyLimit
            s.historyStart = s.history[drop - 1].rv
            s.history.removeFirst(drop)
        }
        for sub in s.subscribers.values where sub.resource == kind.qualifiedName {
            if let ns = sub.namespace, event.object.objectKey.namespace != ns { continue }
            if let selector = sub.selector, !selector.matches(Self.labels(event.object)) { continue }
            sub.continuation.yield(event)
        }
    }

    private static func admitCall(_ s: inout State, _ verb: Verb, _ kind: ResourceKind, _ subresource: String?,
                                  _ namespace: String?, _ name: String?) throws {
        s.calls.append(Call(verb: verb, resource: kind.qualifiedName, subresource: subresource, namespace: namespace, name: name))
        if let index = s.faults.firstIndex(where: { f in
            f.verb == verb && (f.resource == nil || f.resource == kind.qualifiedName)
                && (f.subresource == nil || f.subresource! == subresource)
        }) {
            let error = s.faults[index].error
            s.faults[index].remaining -= 1
            if s.faults[index].remaining <= 0 { s.faults.remove(at: index) }
            throw error
        }
    }

    static func conflict(_ kind: ResourceKind, _ name: String) -> KubeAPIError {
        KubeAPIError(code: 409, reason: "Conflict",
                     message: "Operation cannot be fulfilled on \(kind.qualifiedName) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again")
    }

    static func parseSelector(_ text: String) throws -> LabelSelector {
        do { return try LabelSelector(parsing: text) } catch { throw KubeAPIError(code: 400, reason: "BadRequest", message: "\(error)") }
    }

    static func labels(_ object: JSONValue) -> [String: String] {
        object.value(at: ["metadata", "labels"])?.objectValue.map { o in
            Dictionary(uniqueKeysWithValues: o.compactMap { k, v in v.stringValue.map { (k, $0) } })
        } ?? [:]
    }

    static func randomSuffix() -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in alphabet.randomElement()! })
    }
}
