import Foundation

/// `metav1.ObjectMeta`: the members the operator and the standalone server read or write.
public struct ObjectMeta: Codable, Hashable, Sendable {
    public var name: String?
    public var generateName: String?
    public var namespace: String?
    public var selfLink: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int64?
    public var creationTimestamp: Time?
    public var deletionTimestamp: Time?
    public var deletionGracePeriodSeconds: Int64?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var ownerReferences: [OwnerReference]?
    public var finalizers: [String]?
    public var managedFields: [JSONValue]?

    public init(name: String? = nil, namespace: String? = nil, labels: [String: String]? = nil,
                annotations: [String: String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
    }

    /// `namespace/name`, the form TiDB Operator uses in messages.
    public var key: String { "\(namespace ?? "")/\(name ?? "")" }

    public func hasFinalizer(_ f: String) -> Bool { finalizers?.contains(f) ?? false }

    public mutating func addFinalizer(_ f: String) {
        if !hasFinalizer(f) { finalizers = (finalizers ?? []) + [f] }
    }

    public mutating func removeFinalizer(_ f: String) {
        finalizers?.removeAll { $0 == f }
        if finalizers?.isEmpty == true { finalizers = nil }
    }
}

/// `metav1.OwnerReference`.
public struct OwnerReference: Codable, Hashable, Sendable {
    public var apiVersion: String
    public var kind: String
    public var name: String
    public var uid: String
    public var controller: Bool?
    public var blockOwnerDeletion: Bool?

    public init(apiVersion: String, kind: String, name: String, uid: String, controller: Bool? = true,
                blockOwnerDeletion: Bool? = true) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.uid = uid
        self.controller = controller
        self.blockOwnerDeletion = blockOwnerDeletion
    }
}

extension KubeResource {
    /// The controller owner reference that points at this object (reference 1.10: `controller` and
    /// `blockOwnerDeletion` both true).
    public var controllerReference: OwnerReference {
        OwnerReference(apiVersion: Self.apiVersion, kind: Self.kind, name: metadata.name ?? "", uid: metadata.uid ?? "")
    }
}
