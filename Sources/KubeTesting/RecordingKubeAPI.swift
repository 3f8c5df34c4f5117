import Foundation
import KubeAPI
import KubeModel
import Synchronization

/// Passes every call through to another API and records it: tests use it to see exactly what one
/// component (not the test itself) asked of the API, e.g. to check it against an RBAC role.
public final class RecordingKubeAPI: KubeAPI {
    public let inner: any KubeAPI
    private let log = Mutex<[InMemoryKubeAPI.Call]>([])

    public init(_ inner: any KubeAPI) { self.inner = inner }

    public typealias CreateHook = @Sendable (ResourceKind, JSONValue) async throws -> Void
    private let createHook = Mutex<CreateHook?>(nil)

    /// Runs `hook` after each create the operator makes succeeds, before the call returns to it: what
    /// another actor does in that moment (a Job's pod that runs at once and writes its result).
    public func afterCreate(_ hook: CreateHook?) { createHook.withLock { $0 = hook } }

    public var calls: [InMemoryKubeAPI.Call] { log.withLock { $0 } }

    func note(_ verb: InMemoryKubeAPI.Verb, _ kind: ResourceKind, _ sub: String? = nil, _ ns: String?, _ name: String?) {
        log.withLock { $0.append(.init(verb: verb, resource: kind.qualifiedName, subresource: sub, namespace: ns, name: name)) }
    }

    public func get(_ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue {
        note(.get, kind, nil, namespace, name)
        return try await inner.get(kind, namespace: namespace, name: name)
    }
    public func list(_ kind: ResourceKind, namespace: String?, options: ListOptions) async throws -> ObjectList {
        note(.list, kind, nil, namespace, nil)
        return try await inner.list(kind, namespace: namespace, options: options)
    }
    public func watch(_ kind: ResourceKind, namespace: String?, options: WatchOptions) async throws -> WatchStream {
        note(.watch, kind, nil, namespace, nil)
        return try await inner.watch(kind, namespace: namespace, options: options)
    }
    public func create(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> JSONValue {
        note(.create, kind, nil, namespace, object.objectKey.name)
        let created = try await inner.create(kind, namespace: namespace, object: object)
        if let hook = createHook.withLock({ $0 }) { try await hook(kind, created) }
        return created
    }
    public func update(_ kind: ResourceKind, namespace: String?, object: JSONValue, subresource: String?) async throws -> JSONValue {
        note(.update, kind, subresource, namespace, object.objectKey.name)
        return try await inner.update(kind, namespace: namespace, object: object, subresource: subresource)
    }
    public func patch(_ kind: ResourceKind, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> JSONValue {
        note(.patch, kind, subresource, namespace, name)
        return try await inner.patch(kind, namespace: namespace, name: name, patch: patch, subresource: subresource)
    }
    public func delete(_ kind: ResourceKind, namespace: String?, name: String, options: DeleteOptions) async throws -> JSONValue? {
        note(.delete, kind, nil, namespace, name)
        return try await inner.delete(kind, namespace: namespace, name: name, options: options)
    }
}
