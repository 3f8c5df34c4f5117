import Foundation
import KubeModel

/// Kubernetes API semantics over the object store: defaults and validation from the CRD schemas,
/// metadata (uid, generation, resourceVersion), optimistic concurrency, finalizers, deletion with
/// propagation, garbage collection by owner references, namespaces, and the built-in defaults of the
/// few core kinds the product uses.
public final class APIServerCore: Sendable {
    public let store: ObjectStore
    public let registry: ResourceRegistry
    let admission: Admission
    public let hub = WatchHub()
    let clock: @Sendable () -> Date

    public enum FieldValidation: String, Sendable { case strict = "Strict", warn = "Warn", ignore = "Ignore" }

    public struct WriteOptions: Sendable {
        public var fieldValidation: FieldValidation = .warn
        public var dryRun = false
        public var fieldManager: String?
        /// In-process writers only (never set from a request): a write of the main resource that also
        /// sets `status`, so that metadata and status change in one write.
        var withStatus = false
        public init() {}
    }

    public struct Result: Sendable {
        public var object: JSONValue
        public var warnings: [String] = []
        public var created = false
    }

    /// `registry`: the kinds served (the built-in ones and the CRDs handed in); `rules`: what the CEL
    /// rules of those CRDs mean (see `Admission`).
    public init(store: ObjectStore, registry: ResourceRegistry, rules: Admission.RuleEvaluators = [:],
                clock: @escaping @Sendable () -> Date = Date.init) throws {
        self.store = store
        self.registry = registry
        admission = Admission(rules: rules)
        self.clock = clock
        store.onCommit { [hub] event in hub.publish(event) }
        for ns in ["default", "kube-system"] where try store.get(namespaceType.key, namespace: "", name: ns) == nil {
            _ = try create(namespaceType, namespace: nil, body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(ns)]])
        }
    }

    var namespaceType: ResourceType { registry.find(group: "", version: "v1", plural: "namespaces")! }

    func now() -> String { Time(clock()).description }

    // MARK: Reads

    public func get(_ type: ResourceType, namespace: String?, name: String) throws -> JSONValue {
        guard let object = try store.get(type.key, namespace: namespace ?? "", name: name) else { throw APIError.notFound(type, name) }
        return object
    }

    public struct ListResult: Sendable {
        public var items: [JSONValue]
        public var resourceVersion: Int64
        public var continueToken: String?
        public var remaining: Int?
    }

    public func list(_ type: ResourceType, namespace: String?, labelSelector: LabelSelector? = nil,
                     fieldSelector: FieldSelector? = nil, limit: Int? = nil, continueToken: String? = nil) throws -> ListResult {
        var after: (String, String)?
        if let continueToken, !continueToken.isEmpty {
            guard let data = Data(base64Encoded: Self.padBase64(continueToken.replacingOccurrences(of: "-", with: "+")
                .replacingOccurrences(of: "_", with: "/"))), let token = try? JSONParser.parse(data).value,
                let start = token["start"]?.stringValue
            else { throw APIError.badRequest("continue key is not valid: illegal base64 data") }
            let parts = start.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            after = parts.count == 2 ? (parts[0], parts[1]) : ("", start)
        }
        // Without selectors the page size goes down to SQLite; with them every row must be looked at.
        let pushDown = labelSelector == nil && fieldSelector == nil && (limit ?? 0) > 0
        let listed = try store.list(type.key, namespace: namespace, after: after, limit: pushDown ? limit! + 1 : nil,
                                    containing: Self.necessaryBytes(labelSelector))
        var items = listed.items.filter { object in
            let labels = object.value(at: ["metadata", "labels"])?.objectValue.map { o in
                Dictionary(uniqueKeysWithValues: o.compactMap { k, v in v.stringValue.map { (k, $0) } })
            } ?? [:]
            return (labelSelector?.matches(labels) ?? true) && (fieldSelector?.matches(object) ?? true)
        }
        var next: String?
        var remaining: Int?
        if let limit, limit > 0, items.count > limit {
            remaining = items.count - limit + (pushDown ? listed.remaining : 0)
            items = Array(items.prefix(limit))
            let last = items.last!
            let position = "\(last.value(at: ["metadata", "namespace"])?.stringValue ?? "")/\(last.value(at: ["metadata", "name"])?.stringValue ?? "")"
            let token: JSONValue = ["v": "meta.k8s.io/v1", "rv": .int(listed.resourceVersion), "start": .string(position)]
            next = Data(token.serialized().utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        return ListResult(items: items, resourceVersion: listed.resourceVersion, continueToken: next, remaining: remaining)
    }

    /// What a stored object matching `selector` must contain: the `"key":"value"` member of each
    /// equality (or one-value `in`), the `"key":` of each existence requirement. A schedule's listing
    /// of its own Backups then parses those Backups, not every Backup of the namespace.
    static func necessaryBytes(_ selector: LabelSelector?) -> [[UInt8]] {
        (selector?.requirements ?? []).compactMap { requirement in
            switch requirement {
            case .equals(let key, let value): JSONValue.memberBytes(key, value)
            case .in(let key, let values) where values.count == 1: JSONValue.memberBytes(key, values.first!)
            case .exists(let key): JSONValue.memberBytes(key, nil)
            default: nil
            }
        }
    }

    /// An open watch: the events to send first (current objects as ADDED, or recorded history after
    /// `from`), then the live changes; `matches` tells which live events the watcher may see.
    public struct WatchSession: Sendable {
        public var initial: [StoredEvent]
        public var startRV: Int64
        public var live: AsyncStream<StoredEvent>
        public var cancel: @Sendable () -> Void
        public var matches: @Sendable (JSONValue) -> Bool
    }

    /// Subscribes before reading, so no change falls between the initial events and the live ones.
    /// Throws `410 Expired` when `from` is older than the kept history.
    public func openWatch(_ type: ResourceType, namespace: String?, labels: LabelSelector?, fields: FieldSelector?,
                          from: Int64?) throws -> WatchSession {
        let (stream, cancel) = hub.subscribe(type.key)
        let matches: @Sendable (JSONValue) -> Bool = { object in
            if let namespace, object.value(at: ["metadata", "namespace"])?.stringValue != namespace { return false }
            let l = object.value(at: ["metadata", "labels"])?.objectValue.map { o in
                Dictionary(uniqueKeysWithValues: o.compactMap { k, v in v.stringValue.map { (k, $0) } })
            } ?? [:]
            return (labels?.matches(l) ?? true) && (fields?.matches(object) ?? true)
        }
        do {
            if let from {
                let oldest = try store.oldestWatchableResourceVersion
                if from < oldest { throw APIError.gone("too old resource version: \(from) (\(oldest))") }
                let initial = try store.history(type.key, after: from).filter { matches($0.object) }
                return WatchSession(initial: initial, startRV: max(from, initial.last?.resourceVersion ?? from),
                                    live: stream, cancel: cancel, matches: matches)
            }
            let listed = try list(type, namespace: namespace, labelSelector: labels, fieldSelector: fields)
            let initial = listed.items.map { object in
                StoredEvent(kind: .added, resourceKey: type.key, namespace: object.value(at: ["metadata", "namespace"])?.stringValue ?? "",
                            name: object.value(at: ["metadata", "name"])?.stringValue ?? "", resourceVersion: listed.resourceVersion, object: object)
            }
            return WatchSession(initial: initial, startRV: listed.resourceVersion, live: stream, cancel: cancel, matches: matches)
        } catch {
            cancel()
            throw error
        }
    }

    static func padBase64(_ s: String) -> String { s + String(repeating: "=", count: (4 - s.count % 4) % 4) }

    // MARK: Writes

    static func isDNSSubdomain(_ s: String) -> Bool {
        guard !s.isEmpty, s.count <= 253, let f = s.first, let l = s.last, f.isLowercase || f.isNumber, l.isLowercase || l.isNumber
        else { return false }
        return s.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" || $0 == "." }
    }

    /// The namespace must exist; a terminating one takes no new objects (`creating`), but its objects
    /// can still be updated, which is how their finalizers are released (NamespaceLifecycle admission).
    func checkNamespace(_ type: ResourceType, _ namespace: String?, body: inout JSONValue, creating: Bool = true) throws {
        guard type.namespaced, let namespace else { return }
        if let bodyNS = body.value(at: ["metadata", "namespace"])?.stringValue, !bodyNS.isEmpty, bodyNS != namespace {
            throw APIError.badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        body["metadata"]?["namespace"] = .string(namespace)
        guard let ns = try store.get(namespaceType.key, namespace: "", name: namespace) else {
            throw APIError(code: 404, reason: "NotFound", message: "namespaces \"\(namespace)\" not found",
                           details: ["name": .string(namespace), "kind": "namespaces"])
        }
        if creating && ns.value(at: ["metadata", "deletionTimestamp"]) != nil {
            throw APIError(code: 403, reason: "Forbidden",
                           message: "\(type.plural) \"\(body.value(at: ["metadata", "name"])?.stringValue ?? "")\" is forbidden: unable to create new content in namespace \(namespace) because it is being terminated",
                           details: ["causes": [["reason": "NamespaceTerminating", "field": "metadata.namespace"]]])
        }
    }

    /// Five characters from Kubernetes' alphabet without vowels (27^5 names per prefix).
    static func randomSuffix() -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in alphabet.randomElement()! })
    }

    public func create(_ type: ResourceType, namespace: String?, body input: JSONValue, options: WriteOptions = WriteOptions(),
                       attempt: Int = 0) throws -> Result {
        var body = input
        if body["metadata"] == nil { body["metadata"] = .emptyObject }
        var name = body.value(at: ["metadata", "name"])?.stringValue ?? ""
        let generatePrefix = name.isEmpty ? (body.value(at: ["metadata", "generateName"])?.stringValue ?? "") : ""
        if !generatePrefix.isEmpty {
            name = generatePrefix + Self.randomSuffix()
            body["metadata"]?["name"] = .string(name)
        }
        try admission.checkKind(type, body, name: name)
        guard !name.isEmpty else {
            throw APIError.invalid(type, name, [FieldError(field: "metadata.name", reason: .required, message: "Required value: name or generateName is required")])
        }
        guard Self.isDNSSubdomain(name) else {
            throw APIError.invalid(type, name, [FieldError(field: "metadata.name", reason: .invalid,
                message: "Invalid value: \"\(name)\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")])
        }
        try checkNamespace(type, namespace, body: &body)
        var (object, warnings) = try admission.admit(type, body, name: name, options: options)
        object["apiVersion"] = .string(type.groupVersion)
        object["kind"] = .string(type.kind)
        object["metadata"]?["uid"] = .string(UUID().uuidString.lowercased())
        object["metadata"]?["creationTimestamp"] = .string(now())
        object["metadata"]?["resourceVersion"] = nil
        object["metadata"]?["deletionTimestamp"] = nil
        if type.isCustom || type.kind == "Job" { object["metadata"]?["generation"] = 1 }
        if type.hasStatusSubresource && type.isCustom { object["status"] = nil }
        object = try admission.builtinDefaults(type, object)
        if options.dryRun { return Result(object: object, warnings: warnings, created: true) }
        let ns = type.namespaced ? (namespace ?? "") : ""
        var existed = false
        let event = try store.write(type.key, namespace: ns, name: name) { existing in
            if existing != nil { existed = true; return existing }
            return object
        }
        if existed || event == nil {
            // A generated name that collides is generated again, as the API server does.
            if !generatePrefix.isEmpty && attempt < 8 {
                var retry = input
                retry["metadata"]?["name"] = nil
                return try create(type, namespace: namespace, body: retry, options: options, attempt: attempt + 1)
            }
            throw APIError.alreadyExists(type, name)
        }
        guard let event else { throw APIError.alreadyExists(type, name) }
        return Result(object: event.object, warnings: warnings, created: true)
    }

    /// PUT, or the main or status subresource after a patch was applied.
    public func update(_ type: ResourceType, namespace: String?, name: String, body input: JSONValue, subresource: String? = nil,
                       requireResourceVersion: Bool? = nil, options: WriteOptions = WriteOptions()) throws -> Result {
        try update(type, namespace: namespace, name: name, body: input, subresource: subresource, requireResourceVersion: requireResourceVersion,
                   options: options, collect: true)
    }

    /// `collect: false` when the garbage collector itself writes: it queues what follows instead.
    func update(_ type: ResourceType, namespace: String?, name: String, body input: JSONValue, subresource: String? = nil,
                requireResourceVersion: Bool? = nil, options: WriteOptions = WriteOptions(), collect: Bool) throws -> Result {
        var body = input
        if body["metadata"] == nil { body["metadata"] = .emptyObject }
        if let bodyName = body.value(at: ["metadata", "name"])?.stringValue, bodyName != name {
            throw APIError.badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        body["metadata"]?["name"] = .string(name)
        try admission.checkKind(type, body, name: name)
        try checkNamespace(type, namespace, body: &body, creating: false)
        let sentRV = body.value(at: ["metadata", "resourceVersion"])?.stringValue
        if (requireResourceVersion ?? type.isCustom) && (sentRV ?? "").isEmpty {
            throw APIError.invalid(type, name, [FieldError(field: "metadata.resourceVersion", reason: .invalid,
                message: "Invalid value: 0x0: must be specified for an update")])
        }
        var (admitted, warnings) = try admission.admit(type, body, name: name, options: options)
        let ns = type.namespaced ? (namespace ?? "") : ""
        var failure: APIError?
        var finalObject: JSONValue?
        let event = try store.write(type.key, namespace: ns, name: name) { existing -> JSONValue? in
            guard let existing else { failure = .notFound(type, name); return nil }
            if let sentRV, !sentRV.isEmpty, existing.value(at: ["metadata", "resourceVersion"])?.stringValue != sentRV {
                failure = .conflict(type, name)
                return existing
            }
            var next = existing
            if subresource == "status" {
                next["status"] = admitted["status"]
            } else {
                next = admitted
                if type.hasStatusSubresource && !options.withStatus { next["status"] = existing["status"] }
                // Immutable metadata comes from the stored object.
                for key in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace"] {
                    next["metadata"]?[key] = existing.value(at: ["metadata", key])
                }
                next["apiVersion"] = existing["apiVersion"]
                next["kind"] = existing["kind"]
                if type.kind == "Secret" { next = (try? self.admission.builtinDefaults(type, next)) ?? next }
            }
            let deleting = existing.value(at: ["metadata", "deletionTimestamp"]) != nil
            if deleting {
                let before = Set(existing.value(at: ["metadata", "finalizers"])?.arrayValue?.compactMap(\.stringValue) ?? [])
                let after = Set(next.value(at: ["metadata", "finalizers"])?.arrayValue?.compactMap(\.stringValue) ?? [])
                if !after.subtracting(before).isEmpty {
                    failure = .invalid(type, name, [FieldError(field: "metadata.finalizers", reason: .forbidden,
                        message: "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers \(after.subtracting(before).sorted())")])
                    return existing
                }
            }
            // Generation counts spec changes; without a status subresource any change counts (reference fixture 17).
            let specChanged = type.hasStatusSubresource ? existing["spec"] != next["spec"]
                : Self.withoutMeta(existing) != Self.withoutMeta(next)
            if specChanged, let g = existing.value(at: ["metadata", "generation"]), case .int(let gen) = g {
                next["metadata"]?["generation"] = .int(gen + 1)
            }
            var comparable = next
            comparable["metadata"]?["resourceVersion"] = existing.value(at: ["metadata", "resourceVersion"])
            if comparable == existing {
                finalObject = existing
                return existing
            }
            if options.dryRun {
                finalObject = next
                return existing
            }
            if deleting && (next.value(at: ["metadata", "finalizers"])?.arrayValue ?? []).isEmpty {
                finalObject = next
                return nil
            }
            return next
        }
        if let failure { throw failure }
        // A deleting object whose last other finalizer was just removed, left with only those the
        // collector handles (foregroundDeletion, orphan): the collector finishes it now — nothing else
        // would look at it again (a pod deleted in the foreground once its process had exited stayed).
        if let event, event.kind == .modified, collect, event.object.value(at: ["metadata", "deletionTimestamp"]) != nil {
            let left = Set(event.object.value(at: ["metadata", "finalizers"])?.arrayValue?.compactMap(\.stringValue) ?? [])
            if !left.isEmpty && left.isSubset(of: ["foregroundDeletion", "orphan"]) {
                try drain([GarbageWork.after(type, event.object, gone: false)])
            }
        }
        if let event, finalObject == nil || event.kind == .deleted {
            if event.kind == .deleted && collect { try drain([GarbageWork.after(type, finalObject ?? event.object, gone: true)]) }
            return Result(object: event.kind == .deleted ? (finalObject ?? event.object) : event.object, warnings: warnings)
        }
        admitted = finalObject ?? admitted
        return Result(object: admitted, warnings: warnings)
    }

    static func withoutMeta(_ o: JSONValue) -> JSONValue {
        var c = o
        c["metadata"] = nil
        return c
    }

    public enum PatchType: String, Sendable {
        case merge = "application/merge-patch+json"
        case json = "application/json-patch+json"
        case strategic = "application/strategic-merge-patch+json"
        case apply = "application/apply-patch+yaml"
    }

    public func patch(_ type: ResourceType, namespace: String?, name: String, patchType: PatchType, patch: JSONValue,
                      subresource: String? = nil, options: WriteOptions = WriteOptions()) throws -> Result {
        if patchType == .strategic && type.isCustom {
            throw APIError(code: 415, reason: "UnsupportedMediaType",
                           message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
        }
        for _ in 0..<10 {
            let current: JSONValue
            if patchType == .apply, (try store.get(type.key, namespace: namespace ?? "", name: name)) == nil {
                guard options.fieldManager != nil else {
                    throw APIError.invalid(type, name, [FieldError(field: "fieldManager", reason: .required,
                        message: "Required value: is required for apply patch")])
                }
                return try create(type, namespace: namespace, body: patch, options: options)
            }
            current = try get(type, namespace: namespace, name: name)
            var next: JSONValue
            switch patchType {
            case .merge, .apply: next = JSONPatching.mergePatch(current, with: patch)
            case .strategic: next = JSONPatching.strategicMergePatch(current, with: patch)
            case .json:
                do { next = try JSONPatching.jsonPatch(current, with: patch) } catch {
                    throw APIError(code: 422, reason: "Invalid", message: error.description)
                }
            }
            // A resourceVersion inside the patch is a precondition; otherwise the patch applies to what was read.
            let explicitRV = patch.value(at: ["metadata", "resourceVersion"]) != nil && patchType != .json
            if !explicitRV { next["metadata"]?["resourceVersion"] = current.value(at: ["metadata", "resourceVersion"]) }
            do {
                return try update(type, namespace: namespace, name: name, body: next, subresource: subresource,
                                  requireResourceVersion: false, options: options)
            } catch let e as APIError where e.code == 409 && !explicitRV {
                continue
            }
        }
        throw APIError.conflict(type, name)
    }

    public struct DeleteOptions: Sendable {
        public var propagationPolicy: String?
        public var preconditionUID: String?
        public var preconditionResourceVersion: String?
        public var dryRun = false
        public init() {}
    }

    /// Deletes an object. Returns the object when finalizers keep it, or `nil` when it is gone.
    public func delete(_ type: ResourceType, namespace: String?, name: String, options: DeleteOptions = DeleteOptions()) throws -> (JSONValue, gone: Bool) {
        let (result, gone, changed) = try deleteOne(type, namespace: namespace, name: name, options: options)
        if changed, !options.dryRun {
            try drain([GarbageWork.after(type, result, gone: gone)])
        }
        return (result, gone)
    }

    /// The deletion itself, without the garbage collection it sets off.
    func deleteOne(_ type: ResourceType, namespace: String?, name: String, options: DeleteOptions = DeleteOptions()) throws -> (JSONValue, gone: Bool, changed: Bool) {
        let policy = options.propagationPolicy ?? "Background"
        guard ["Background", "Foreground", "Orphan"].contains(policy) else {
            throw APIError.invalid(type, name, [FieldError(field: "propagationPolicy", reason: .notSupported,
                message: "Unsupported value: \"\(policy)\": supported values: \"Foreground\", \"Background\", \"Orphan\"")])
        }
        let ns = type.namespaced ? (namespace ?? "") : ""
        var failure: APIError?
        var result: JSONValue?
        var gone = false
        let event = try store.write(type.key, namespace: ns, name: name) { existing -> JSONValue? in
            guard let existing else { failure = .notFound(type, name); return nil }
            if let uid = options.preconditionUID, existing.value(at: ["metadata", "uid"])?.stringValue != uid {
                failure = APIError(code: 409, reason: "Conflict",
                    message: "Operation cannot be fulfilled on \(type.qualifiedName) \"\(name)\": Precondition failed: UID in precondition: \(uid), UID in object meta: \(existing.value(at: ["metadata", "uid"])?.stringValue ?? "")")
                return existing
            }
            if let rv = options.preconditionResourceVersion, existing.value(at: ["metadata", "resourceVersion"])?.stringValue != rv {
                failure = .conflict(type, name)
                return existing
            }
            var next = existing
            var finalizers = existing.value(at: ["metadata", "finalizers"])?.arrayValue?.compactMap(\.stringValue) ?? []
            if policy == "Foreground" && !finalizers.contains("foregroundDeletion") { finalizers.append("foregroundDeletion") }
            if policy == "Orphan" && !finalizers.contains("orphan") { finalizers.append("orphan") }
            if type.kind == "Namespace" && !finalizers.contains("kubernetes") { finalizers.append("kubernetes") }
            if finalizers.isEmpty {
                result = existing
                gone = true
                return options.dryRun ? existing : nil
            }
            next["metadata"]?["finalizers"] = .array(finalizers.map { .string($0) })
            if existing.value(at: ["metadata", "deletionTimestamp"]) == nil {
                next["metadata"]?["deletionTimestamp"] = .string(now())
                next["metadata"]?["deletionGracePeriodSeconds"] = 0
                if case .int(let g)? = existing.value(at: ["metadata", "generation"]) { next["metadata"]?["generation"] = .int(g + 1) }
                if type.kind == "Namespace" { next["status"] = ["phase": "Terminating"] }
            }
            result = next
            return options.dryRun ? existing : next
        }
        if let failure { throw failure }
        return (result ?? .null, gone, event != nil)
    }

    /// What the garbage collector and namespace controller look at after a change.
    enum GarbageWork {
        /// An object that is gone: its dependents may have lost their last owner, an owner deleting in
        /// the foreground may be able to go, its namespace may be empty now.
        case gone(uid: String, namespace: String, owners: [String])
        /// An object being deleted whose finalizers the collector handles (orphan, foregroundDeletion,
        /// a namespace's `kubernetes`).
        case deleting(ResourceType, namespace: String?, name: String)

        static func after(_ type: ResourceType, _ object: JSONValue, gone: Bool) -> GarbageWork {
            let meta = object["metadata"] ?? .emptyObject
            if gone {
                return .gone(uid: meta["uid"]?.stringValue ?? "", namespace: meta["namespace"]?.stringValue ?? "",
                             owners: ObjectStore.ownerUIDs(object))
            }
            return .deleting(type, namespace: meta["namespace"]?.stringValue, name: meta["name"]?.stringValue ?? "")
        }
    }

}
