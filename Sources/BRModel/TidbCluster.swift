import KubeModel

/// The members of a `TidbCluster` that the backup operator reads. Everything else is kept as it was read.
///
/// In standalone mode a TidbCluster object describes a cluster that is not on Kubernetes:
/// `spec.pdAddresses` gives PD's endpoints and `spec.version` the TiKV version.
public struct TidbCluster: KubeResource, Hashable {
    public static let apiVersion = "pingcap.com/v1alpha1"
    public static let kind = "TidbCluster"

    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    public var spec: TidbClusterSpec
    public var status: JSONValue?
    public var retainedDocument: JSONValue?

    enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, spec, status }

    public init(name: String, namespace: String, spec: TidbClusterSpec = TidbClusterSpec()) {
        metadata = ObjectMeta(name: name, namespace: namespace)
        self.spec = spec
    }

    /// Whether `status.conditions` has `Ready` = `True`.
    public var isReady: Bool {
        guard let conditions = status?["conditions"]?.arrayValue else { return false }
        return conditions.contains { $0["type"] == "Ready" && $0["status"] == "True" }
    }

    /// The TiKV image of the cluster (`spec.tikv.image`, else `spec.tikv.baseImage:version`).
    public var tikvImage: String? {
        if let image = spec.tikv?["image"]?.stringValue, !image.isEmpty { return image }
        let base = spec.tikv?["baseImage"]?.stringValue ?? "pingcap/tikv"
        guard let version = spec.version, !version.isEmpty else { return nil }
        return "\(base):\(version)"
    }
}

public struct TidbClusterSpec: Codable, Hashable, Sendable, SchemaAnnotated {
    public var version: String?
    public var pdAddresses: [String]?
    public var acrossK8s: Bool?
    public var recoveryMode: Bool?
    public var tlsCluster: JSONValue?
    public var tikv: JSONValue?
    public var tidb: JSONValue?
    public var pd: JSONValue?

    public init(version: String? = nil, pdAddresses: [String]? = nil) {
        self.version = version
        self.pdAddresses = pdAddresses
    }

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        // TidbCluster's own CRD belongs to TiDB Operator; we model a few members and keep the rest.
        schema.preserveUnknownFields = true
    }

    /// Whether TLS between cluster components is enabled (`spec.tlsCluster.enabled`).
    public var tlsClusterEnabled: Bool { tlsCluster?["enabled"] == .bool(true) }
}
