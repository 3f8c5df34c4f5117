import KubeAPI
import KubeModel
import ManifestTools

/// The API as `doctor` and `plan` let the Job builder see it. Reads go to the server; an object the
/// server does not have but the manifests given hold (a Secret or TidbCluster in another file, not
/// applied yet) is answered from the manifests. Writes (the Dumpling and Lightning claims) are answered
/// with the object unchanged and never sent.
struct ManifestBackedAPI: KubeAPI {
    let base: any KubeAPI
    let manifests: ManifestSet
    let defaultNamespace: String

    /// The manifests' object of that kind and name, as the server would store it.
    func fromManifests(_ kind: ResourceKind, namespace: String?, name: String) -> ManifestSet.Object? {
        manifests.objects.first {
            $0.kind == kind.kind && $0.name == name && (!kind.namespaced || ($0.namespace ?? defaultNamespace) == namespace)
        }
    }

    func get(_ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue {
        do {
            return try await base.get(kind, namespace: namespace, name: name)
        } catch let e as KubeAPIError where e.isNotFound {
            guard let found = fromManifests(kind, namespace: namespace, name: name) else { throw e }
            return ManifestValidator.stored(found.value, defaultNamespace: defaultNamespace)
        }
    }
    func list(_ kind: ResourceKind, namespace: String?, options: ListOptions) async throws -> ObjectList {
        try await base.list(kind, namespace: namespace, options: options)
    }
    func watch(_ kind: ResourceKind, namespace: String?, options: WatchOptions) async throws -> WatchStream {
        try await base.watch(kind, namespace: namespace, options: options)
    }
    func create(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> JSONValue { object }
    func update(_ kind: ResourceKind, namespace: String?, object: JSONValue, subresource: String?) async throws -> JSONValue { object }
    func patch(_ kind: ResourceKind, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> JSONValue {
        try await get(kind, namespace: namespace, name: name)
    }
    func delete(_ kind: ResourceKind, namespace: String?, name: String, options: DeleteOptions) async throws -> JSONValue? { nil }
}
