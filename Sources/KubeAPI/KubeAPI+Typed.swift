import Foundation
import KubeModel

public extension KubeAPI {
    func list(_ kind: ResourceKind, namespace: String?) async throws -> ObjectList {
        try await list(kind, namespace: namespace, options: ListOptions())
    }

    func update(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> JSONValue {
        try await update(kind, namespace: namespace, object: object, subresource: nil)
    }

    func patch(_ kind: ResourceKind, namespace: String?, name: String, patch: Patch) async throws -> JSONValue {
        try await self.patch(kind, namespace: namespace, name: name, patch: patch, subresource: nil)
    }

    func delete(_ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue? {
        try await delete(kind, namespace: namespace, name: name, options: DeleteOptions())
    }

    /// Creates the object; false when one of that name already exists (it is left as it is).
    @discardableResult
    func createIfAbsent(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> Bool {
        do {
            _ = try await create(kind, namespace: namespace, object: object)
            return true
        } catch let e as KubeAPIError where e.isAlreadyExists {
            return false
        }
    }

    /// Creates the object, or replaces the one of that name that exists (taking over its resourceVersion).
    @discardableResult
    func createOrReplace(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> JSONValue {
        do {
            return try await create(kind, namespace: namespace, object: object)
        } catch let e as KubeAPIError where e.isAlreadyExists {
            var replacement = object
            let existing = try await get(kind, namespace: namespace, name: object.value(at: ["metadata", "name"])?.stringValue ?? "")
            replacement["metadata"]?["resourceVersion"] = existing.value(at: ["metadata", "resourceVersion"])
            return try await update(kind, namespace: namespace, object: replacement)
        }
    }

    /// Every page of a list, following continue tokens.
    func listAll(_ kind: ResourceKind, namespace: String?, labelSelector: String? = nil, pageSize: Int = 500) async throws -> ObjectList {
        var options = ListOptions(labelSelector: labelSelector, limit: pageSize)
        var items: [JSONValue] = []
        var resourceVersion = ""
        while true {
            let page = try await list(kind, namespace: namespace, options: options)
            items += page.items
            if resourceVersion.isEmpty { resourceVersion = page.resourceVersion }
            guard let next = page.continueToken, !next.isEmpty else { break }
            options.continueToken = next
        }
        return ObjectList(items: items, resourceVersion: resourceVersion, continueToken: nil)
    }

    /// Writes `object.status`. Through the status subresource when the kind has one; otherwise (TiDB
    /// Operator's own CRDs have none) as a whole-object update. A 404 from the subresource on a server
    /// whose CRD lacks it also falls back to the whole-object update.
    func updateStatus(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> JSONValue {
        guard kind.hasStatusSubresource else { return try await update(kind, namespace: namespace, object: object) }
        do {
            return try await update(kind, namespace: namespace, object: object, subresource: "status")
        } catch let error as KubeAPIError where error.isNotFound {
            // Distinguish "no such object" from "no such subresource".
            _ = try await get(kind, namespace: namespace, name: object.value(at: ["metadata", "name"])?.stringValue ?? "")
            return try await update(kind, namespace: namespace, object: object)
        }
    }

    // MARK: Typed

    func get<T: APIObject>(_ type: T.Type, namespace: String?, name: String) async throws -> T {
        try KubeCodec.decode(T.self, from: try await get(T.resource, namespace: namespace, name: name))
    }

    /// `nil` when the object does not exist.
    func getIfPresent<T: APIObject>(_ type: T.Type, namespace: String?, name: String) async throws -> T? {
        do { return try await get(type, namespace: namespace, name: name) } catch let e as KubeAPIError where e.isNotFound { return nil }
    }

    func list<T: APIObject>(_ type: T.Type, namespace: String?, labelSelector: String? = nil) async throws -> [T] {
        try await listAll(T.resource, namespace: namespace, labelSelector: labelSelector).items.map {
            try KubeCodec.decode(T.self, from: $0)
        }
    }

    func create<T: APIObject>(_ object: T) async throws -> T {
        try KubeCodec.decode(T.self, from: try await create(T.resource, namespace: object.metadata.namespace, object: KubeCodec.encode(object)))
    }

    func update<T: APIObject>(_ object: T) async throws -> T {
        try KubeCodec.decode(T.self, from: try await update(T.resource, namespace: object.metadata.namespace, object: KubeCodec.encode(object)))
    }

    func updateStatus<T: APIObject>(_ object: T) async throws -> T {
        try KubeCodec.decode(T.self, from: try await updateStatus(T.resource, namespace: object.metadata.namespace,
                                                                 object: KubeCodec.encode(object)))
    }

    @discardableResult
    func delete<T: APIObject>(_ type: T.Type, namespace: String?, name: String, options: DeleteOptions = DeleteOptions()) async throws -> T? {
        try await delete(T.resource, namespace: namespace, name: name, options: options).map { try KubeCodec.decode(T.self, from: $0) }
    }
}

public extension JSONValue {
    /// `metadata.namespace`/`metadata.name` of an object document.
    var objectKey: ObjectKey {
        ObjectKey(namespace: value(at: ["metadata", "namespace"])?.stringValue ?? "",
                  name: value(at: ["metadata", "name"])?.stringValue ?? "")
    }
}

/// Identifies one object of a kind: what work queues hold.
public struct ObjectKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }
    public var description: String { namespace.isEmpty ? name : "\(namespace)/\(name)" }
    public static func < (a: ObjectKey, b: ObjectKey) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
}
