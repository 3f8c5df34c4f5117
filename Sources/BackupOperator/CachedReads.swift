import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// The API the reconcilers use: reads of Jobs and TidbClusters come from the informers' caches when
/// they hold the object (the informers keep what the reconcilers read of them), everything else
/// goes to the API server. A miss falls through to the server, so a Job created a moment ago is
/// still found; a cached object may be a moment old, and its change event brings the reconcile back.
/// On Kubernetes this saves two GETs of most reconciles; the Backups, Restores and schedules
/// themselves are always read from the server.
struct CachedReadsAPI: KubeAPI {
    let base: any KubeAPI
    let caches: [ResourceKind: Informer]

    enum CachedAnswer {
        case present(JSONValue)
        /// The cache has synced and does not hold it.
        case absent
        /// No synced cache of that kind.
        case unknown
    }

    /// What the cache alone says of an object, without a call to the server.
    func cached(_ kind: ResourceKind, namespace: String, name: String) -> CachedAnswer {
        guard let informer = caches[kind], informer.hasSynced else { return .unknown }
        return informer.get(namespace: namespace, name: name).map { .present($0) } ?? .absent
    }

    func get(_ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue {
        if let informer = caches[kind], informer.hasSynced, let object = informer.get(namespace: namespace ?? "", name: name) {
            return object
        }
        return try await base.get(kind, namespace: namespace, name: name)
    }

    func list(_ kind: ResourceKind, namespace: String?, options: ListOptions) async throws -> ObjectList {
        try await base.list(kind, namespace: namespace, options: options)
    }

    func watch(_ kind: ResourceKind, namespace: String?, options: WatchOptions) async throws -> WatchStream {
        try await base.watch(kind, namespace: namespace, options: options)
    }

    func create(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> JSONValue {
        try await base.create(kind, namespace: namespace, object: object)
    }

    func update(_ kind: ResourceKind, namespace: String?, object: JSONValue, subresource: String?) async throws -> JSONValue {
        try await base.update(kind, namespace: namespace, object: object, subresource: subresource)
    }

    func patch(_ kind: ResourceKind, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> JSONValue {
        try await base.patch(kind, namespace: namespace, name: name, patch: patch, subresource: subresource)
    }

    func delete(_ kind: ResourceKind, namespace: String?, name: String, options: DeleteOptions) async throws -> JSONValue? {
        try await base.delete(kind, namespace: namespace, name: name, options: options)
    }
}
