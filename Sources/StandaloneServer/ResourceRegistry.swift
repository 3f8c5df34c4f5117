import BRModel
import KubeModel

/// A resource type the standalone server serves.
public struct ResourceType: Sendable {
    public var group: String
    public var version: String
    public var kind: String
    public var plural: String
    public var singular: String
    public var shortNames: [String]
    public var namespaced: Bool
    /// Validation schema of whole objects; `nil` for built-in kinds, which are stored as sent.
    public var schema: OpenAPISchema?
    public var hasStatusSubresource: Bool
    public var printerColumns: [PrinterColumn]
    public var categories: [String]
    public var isCustom: Bool

    public var groupVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    /// `backups.pingcap.com`, `secrets`: the resource as Status details and RBAC name it.
    public var qualifiedName: String { group.isEmpty ? plural : "\(plural).\(group)" }
    /// `Backup.pingcap.com`, as 422 messages name the kind.
    public var qualifiedKind: String { group.isEmpty ? kind : "\(kind).\(group)" }
    public var key: String { "\(group)/\(plural)" }
}

/// Every resource type of the standalone server.
public struct ResourceRegistry: Sendable {
    public let types: [ResourceType]

    public static let standard = ResourceRegistry(types: builtins + custom)

    static func builtin(_ group: String, _ version: String, _ kind: String, _ plural: String, namespaced: Bool = true,
                        short: [String] = [], status: Bool = false, columns: [PrinterColumn] = []) -> ResourceType {
        ResourceType(group: group, version: version, kind: kind, plural: plural, singular: kind.lowercased(), shortNames: short,
                     namespaced: namespaced, schema: nil, hasStatusSubresource: status, printerColumns: columns,
                     categories: [], isCustom: false)
    }

    static let builtins: [ResourceType] = [
        builtin("", "v1", "Namespace", "namespaces", namespaced: false, short: ["ns"], status: true,
                columns: [PrinterColumn("Status", "string", ".status.phase")]),
        builtin("", "v1", "Secret", "secrets", columns: [PrinterColumn("Type", "string", ".type")]),
        builtin("", "v1", "ConfigMap", "configmaps", short: ["cm"]),
        builtin("", "v1", "Event", "events", short: ["ev"], columns: [
            PrinterColumn("Type", "string", ".type"), PrinterColumn("Reason", "string", ".reason"),
            PrinterColumn("Object", "string", ".involvedObject.name"), PrinterColumn("Message", "string", ".message"),
        ]),
        builtin("", "v1", "Pod", "pods", short: ["po"], status: true, columns: [PrinterColumn("Status", "string", ".status.phase")]),
        builtin("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short: ["pvc"], status: true,
                columns: [PrinterColumn("Status", "string", ".status.phase")]),
        builtin("", "v1", "PersistentVolume", "persistentvolumes", namespaced: false, short: ["pv"], status: true, columns: [
            PrinterColumn("Capacity", "string", ".spec.capacity.storage"), PrinterColumn("Status", "string", ".status.phase"),
            PrinterColumn("Claim", "string", ".spec.claimRef.name"),
        ]),
        builtin("", "v1", "ServiceAccount", "serviceaccounts", short: ["sa"]),
        builtin("batch", "v1", "Job", "jobs", status: true, columns: [
            PrinterColumn("Succeeded", "integer", ".status.succeeded"), PrinterColumn("Failed", "integer", ".status.failed"),
        ]),
        builtin("coordination.k8s.io", "v1", "Lease", "leases", columns: [PrinterColumn("Holder", "string", ".spec.holderIdentity")]),
    ]

    static let custom: [ResourceType] = BRKinds.all.map { info in
        ResourceType(group: info.group, version: info.version, kind: info.kind, plural: info.plural, singular: info.singular,
                     shortNames: info.shortNames, namespaced: true, schema: info.schema, hasStatusSubresource: true,
                     printerColumns: info.printerColumns, categories: [], isCustom: true)
    } + [
        ResourceType(group: "pingcap.com", version: "v1alpha1", kind: "TidbCluster", plural: "tidbclusters", singular: "tidbcluster",
                     shortNames: ["tc"], namespaced: true, schema: SchemaReflection.schema(for: TidbCluster.self),
                     hasStatusSubresource: false, printerColumns: [PrinterColumn("Version", "string", ".spec.version")],
                     categories: [], isCustom: true),
    ]

    public func find(group: String, version: String, plural: String) -> ResourceType? {
        types.first { $0.group == group && $0.version == version && $0.plural == plural }
    }

    public func find(kind: String, group: String) -> ResourceType? {
        types.first { $0.kind == kind && $0.group == group }
    }

    /// Group versions in the order discovery lists them (core first, custom groups last).
    public var groupVersions: [(group: String, version: String)] {
        var seen: [String] = []
        var out: [(String, String)] = []
        for t in types where !seen.contains(t.groupVersion) {
            seen.append(t.groupVersion)
            out.append((t.group, t.version))
        }
        return out
    }
}
