import KubeModel

/// A `pingcap.com/v1alpha1` CompactBackup: compaction of a log backup's range.
public struct CompactBackup: KubeResource, Hashable {
    public static let apiVersion = "pingcap.com/v1alpha1"
    public static let kind = "CompactBackup"

    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    public var spec: CompactSpec
    public var status: CompactStatus
    public var retainedDocument: JSONValue?

    enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, spec, status }

    public init(name: String, namespace: String, spec: CompactSpec) {
        metadata = ObjectMeta(name: name, namespace: namespace)
        self.spec = spec
        status = CompactStatus()
    }
}

/// `CompactBackup.spec`.
public struct CompactSpec: Codable, Hashable, Sendable, HasStorage, SchemaAnnotated {
    public var resources: ResourceRequirements
    public var env: [EnvVar]?
    public var br: BRConfig?
    public var tikvImage: String?
    public var toolImage: String?
    public var startTs: String?
    public var endTs: String?
    public var concurrency: Int?
    public var maxRetryTimes: Int32?
    public var s3: S3StorageProvider?
    public var gcs: GCSStorageProvider?
    public var azblob: AzblobStorageProvider?
    public var local: LocalStorageProvider?
    public var tolerations: [Toleration]?
    public var affinity: JSONValue?
    public var useKMS: Bool?
    public var serviceAccount: String?
    public var automountServiceAccountToken: Bool?
    public var imagePullSecrets: [LocalObjectReference]?
    public var podSecurityContext: JSONValue?
    public var priorityClassName: String?
    public var additionalVolumes: [Volume]?
    public var additionalVolumeMounts: [VolumeMount]?

    public init() { resources = ResourceRequirements() }

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        schema.modify(["concurrency"]) { $0.defaultValue = 4 }
        schema.modify(["maxRetryTimes"]) { $0.defaultValue = 6 }
    }
}

/// `CompactBackup.status`.
public struct CompactStatus: Codable, Hashable, Sendable, EmptyInitializable {
    public var state: String?
    public var progress: String?
    public var message: String?
    public var endTs: String?
    public var backoffRetryStatus: [CompactRetryRecord]?
    public init() {}
}

public struct CompactRetryRecord: Codable, Hashable, Sendable {
    public var retryNum: Int?
    public var detectFailedAt: Time?
    public var retryReason: String?

    public init(retryNum: Int? = nil, detectFailedAt: Time? = nil, retryReason: String? = nil) {
        self.retryNum = retryNum
        self.detectFailedAt = detectFailedAt
        self.retryReason = retryReason
    }
}
