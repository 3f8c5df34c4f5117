import KubeModel

/// `spec.s3` (reference 1.2.1). `provider` is required by the CRD.
public struct S3StorageProvider: Codable, Hashable, Sendable {
    public var provider: S3Provider
    public var region: String?
    public var path: String?
    public var bucket: String?
    public var endpoint: String?
    public var storageClass: String?
    public var acl: String?
    public var secretName: String?
    public var prefix: String?
    public var sse: String?
    public var options: [String]?
    public var forcePathStyle: Bool?

    public init(provider: S3Provider, region: String? = nil, bucket: String? = nil, prefix: String? = nil,
                endpoint: String? = nil, secretName: String? = nil) {
        self.provider = provider
        self.region = region
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.secretName = secretName
    }
}

/// `spec.gcs`. `projectId` is required by the CRD; the Secret's `credentials` key holds the
/// service-account JSON.
public struct GCSStorageProvider: Codable, Hashable, Sendable {
    public var projectId: String
    public var location: String?
    public var path: String?
    public var bucket: String?
    public var storageClass: String?
    public var objectAcl: String?
    public var bucketAcl: String?
    public var secretName: String?
    public var prefix: String?

    public init(projectId: String, bucket: String? = nil, prefix: String? = nil, secretName: String? = nil) {
        self.projectId = projectId
        self.bucket = bucket
        self.prefix = prefix
        self.secretName = secretName
    }
}

/// `spec.azblob`.
public struct AzblobStorageProvider: Codable, Hashable, Sendable {
    public var path: String?
    public var container: String?
    public var accessTier: String?
    public var secretName: String?
    public var storageAccount: String?
    public var sasToken: String?
    public var prefix: String?

    public init(container: String? = nil, prefix: String? = nil, secretName: String? = nil) {
        self.container = container
        self.prefix = prefix
        self.secretName = secretName
    }
}

/// `spec.local`: a volume mounted into the job (used by BR as `local://<mountPath>/<prefix>`).
public struct LocalStorageProvider: Codable, Hashable, Sendable {
    public var volume: Volume
    public var volumeMount: VolumeMount
    public var prefix: String?

    public init(volume: Volume, volumeMount: VolumeMount, prefix: String? = nil) {
        self.volume = volume
        self.volumeMount = volumeMount
        self.prefix = prefix
    }
}

/// The four storage members. In Backup, Restore, BackupSchedule and CompactBackup specs they are inlined
/// (their keys sit directly in `spec`); in `pitrFullBackupStorageProvider` they form an object.
public struct StorageProvider: Codable, Hashable, Sendable, EmptyInitializable {
    public var s3: S3StorageProvider?
    public var gcs: GCSStorageProvider?
    public var azblob: AzblobStorageProvider?
    public var local: LocalStorageProvider?

    public init() {}

    public init(s3: S3StorageProvider? = nil, gcs: GCSStorageProvider? = nil, azblob: AzblobStorageProvider? = nil,
                local: LocalStorageProvider? = nil) {
        self.s3 = s3
        self.gcs = gcs
        self.azblob = azblob
        self.local = local
    }

    /// The effective storage: the first present of s3, gcs, azblob, local.
    public var type: BackupStorageType {
        if s3 != nil { return .s3 }
        if gcs != nil { return .gcs }
        if azblob != nil { return .azblob }
        if local != nil { return .local }
        return .unknown
    }

    /// The prefix of the effective storage.
    public var prefix: String? {
        get {
            switch type {
            case .s3: s3?.prefix
            case .gcs: gcs?.prefix
            case .azblob: azblob?.prefix
            case .local: local?.prefix
            case .unknown: nil
            }
        }
        set {
            switch type {
            case .s3: s3?.prefix = newValue
            case .gcs: gcs?.prefix = newValue
            case .azblob: azblob?.prefix = newValue
            case .local: local?.prefix = newValue
            case .unknown: break
            }
        }
    }
}

/// A spec that inlines the storage members.
public protocol HasStorage {
    var s3: S3StorageProvider? { get set }
    var gcs: GCSStorageProvider? { get set }
    var azblob: AzblobStorageProvider? { get set }
    var local: LocalStorageProvider? { get set }
}

extension HasStorage {
    public var storage: StorageProvider {
        get { StorageProvider(s3: s3, gcs: gcs, azblob: azblob, local: local) }
        set {
            s3 = newValue.s3
            gcs = newValue.gcs
            azblob = newValue.azblob
            local = newValue.local
        }
    }
}
