import KubeModel

/// Where a kind of object lives in the API: enough to build its REST path and to know whether writes
/// to `status` go through a subresource.
public struct ResourceKind: Hashable, Sendable, CustomStringConvertible {
    public var group: String
    public var version: String
    public var kind: String
    public var plural: String
    public var namespaced: Bool
    public var hasStatusSubresource: Bool

    public init(group: String, version: String, kind: String, plural: String, namespaced: Bool = true,
                hasStatusSubresource: Bool = true) {
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.namespaced = namespaced
        self.hasStatusSubresource = hasStatusSubresource
    }

    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    /// `backups.pingcap.com`, `jobs.batch`, `pods`: the name RBAC rules and error messages use.
    public var qualifiedName: String { group.isEmpty ? plural : "\(plural).\(group)" }
    public var description: String { qualifiedName }

    /// The collection path, e.g. `/apis/batch/v1/namespaces/ns/jobs`.
    public func path(namespace: String?, name: String? = nil, subresource: String? = nil) -> String {
        var path = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if namespaced, let namespace { path += "/namespaces/\(namespace)" }
        path += "/\(plural)"
        if let name {
            path += "/\(name)"
            if let subresource { path += "/\(subresource)" }
        }
        return path
    }
}

extension ResourceKind {
    public static let backups = ResourceKind(group: "pingcap.com", version: "v1alpha1", kind: "Backup", plural: "backups")
    public static let restores = ResourceKind(group: "pingcap.com", version: "v1alpha1", kind: "Restore", plural: "restores")
    public static let backupSchedules = ResourceKind(group: "pingcap.com", version: "v1alpha1", kind: "BackupSchedule",
                                                     plural: "backupschedules")
    public static let compactBackups = ResourceKind(group: "pingcap.com", version: "v1alpha1", kind: "CompactBackup",
                                                    plural: "compactbackups")
    public static let tidbClusters = ResourceKind(group: "pingcap.com", version: "v1alpha1", kind: "TidbCluster",
                                                  plural: "tidbclusters")
    public static let jobs = ResourceKind(group: "batch", version: "v1", kind: "Job", plural: "jobs")
    public static let pods = ResourceKind(group: "", version: "v1", kind: "Pod", plural: "pods")
    public static let secrets = ResourceKind(group: "", version: "v1", kind: "Secret", plural: "secrets", hasStatusSubresource: false)
    public static let configMaps = ResourceKind(group: "", version: "v1", kind: "ConfigMap", plural: "configmaps",
                                                hasStatusSubresource: false)
    public static let serviceAccounts = ResourceKind(group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts",
                                                     hasStatusSubresource: false)
    public static let events = ResourceKind(group: "", version: "v1", kind: "Event", plural: "events", hasStatusSubresource: false)
    public static let namespaces = ResourceKind(group: "", version: "v1", kind: "Namespace", plural: "namespaces",
                                                namespaced: false)
    public static let leases = ResourceKind(group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases",
                                            hasStatusSubresource: false)
    public static let persistentVolumes = ResourceKind(group: "", version: "v1", kind: "PersistentVolume", plural: "persistentvolumes",
                                                       namespaced: false)
    public static let persistentVolumeClaims = ResourceKind(group: "", version: "v1", kind: "PersistentVolumeClaim",
                                                            plural: "persistentvolumeclaims")
}

/// A typed object together with where it lives in the API.
public protocol APIObject: KubeResource {
    static var resource: ResourceKind { get }
}
