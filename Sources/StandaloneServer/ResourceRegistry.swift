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
    /// Where the schema carries CEL rules (see `Admission`).
    public var ruleSites: [RuleSite] = []

    public var groupVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    /// `backups.pingcap.com`, `secrets`: the resource as Status details and RBAC name it.
    public var qualifiedName: String { group.isEmpty ? plural : "\(plural).\(group)" }
    /// `Backup.pingcap.com`, as 422 messages name the kind.
    public var qualifiedKind: String { group.isEmpty ? kind : "\(kind).\(group)" }
    public var key: String { "\(group)/\(plural)" }
}

/// Every resource type of the standalone server: the built-in kinds it implements, and the custom
/// resources of the CustomResourceDefinitions it was started with.
public struct ResourceRegistry: Sendable {
    public let types: [ResourceType]

    public init(types: [ResourceType]) { self.types = types }

    /// The built-in kinds and one custom resource per CRD (apiextensions.k8s.io/v1) in `crds`.
    public init(customResources crds: [JSONValue]) throws {
        types = Self.builtins + (try crds.map(ResourceType.init(crd:)))
    }

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

extension ResourceType {
    /// A custom resource as its CustomResourceDefinition declares it: group, names, scope, the storage
    /// version's schema, status subresource and printer columns. `metadata` is validated by the server
    /// itself (as ObjectMeta), whatever the CRD says of it, as a Kubernetes API server does.
    public init(crd: JSONValue) throws {
        func need(_ path: [String]) throws -> String {
            guard let s = crd.value(at: path)?.stringValue, !s.isEmpty else {
                throw SchemaReadError(path: "CustomResourceDefinition \(crd.value(at: ["metadata", "name"])?.stringValue ?? "?") " + path.joined(separator: "."),
                                      problem: "is required")
            }
            return s
        }
        guard crd["kind"]?.stringValue == "CustomResourceDefinition" else {
            throw SchemaReadError(path: "kind", problem: "is not CustomResourceDefinition")
        }
        let versions = crd.value(at: ["spec", "versions"])?.arrayValue ?? []
        guard let version = versions.first(where: { $0["storage"] == .bool(true) }) ?? versions.first else {
            throw SchemaReadError(path: "CustomResourceDefinition \(crd.value(at: ["metadata", "name"])?.stringValue ?? "?") spec.versions", problem: "is empty")
        }
        var schema = try OpenAPISchema(json: version.value(at: ["schema", "openAPIV3Schema"]) ?? ["type": "object", "x-kubernetes-preserve-unknown-fields": true])
        schema.setProperty("metadata", SchemaReflection.schema(for: ObjectMeta.self))
        let kind = try need(["spec", "names", "kind"])
        self.init(group: try need(["spec", "group"]), version: version["name"]?.stringValue ?? "v1", kind: kind,
                  plural: try need(["spec", "names", "plural"]),
                  singular: crd.value(at: ["spec", "names", "singular"])?.stringValue ?? kind.lowercased(),
                  shortNames: (crd.value(at: ["spec", "names", "shortNames"])?.arrayValue ?? []).compactMap(\.stringValue),
                  namespaced: crd.value(at: ["spec", "scope"])?.stringValue != "Cluster", schema: schema,
                  hasStatusSubresource: version.value(at: ["subresources", "status"]) != nil,
                  printerColumns: (version["additionalPrinterColumns"]?.arrayValue ?? []).compactMap { c in
                      guard let name = c["name"]?.stringValue, let path = c["jsonPath"]?.stringValue else { return nil }
                      return PrinterColumn(name, c["type"]?.stringValue ?? "string", path, priority: Int(c["priority"]?.intValue ?? 0))
                  },
                  categories: (crd.value(at: ["spec", "names", "categories"])?.arrayValue ?? []).compactMap(\.stringValue), isCustom: true)
        ruleSites = RuleSite.sites(in: schema)
    }
}
