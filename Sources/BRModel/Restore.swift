import KubeModel

/// A `pingcap.com/v1alpha1` Restore: BR restore (snapshot, PiTR, volume snapshot) or a Lightning import.
public struct Restore: KubeResource, Hashable {
    public static let apiVersion = "pingcap.com/v1alpha1"
    public static let kind = "Restore"

    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    public var spec: RestoreSpec
    public var status: RestoreStatus
    public var retainedDocument: JSONValue?

    enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, spec, status }

    public init(name: String, namespace: String, spec: RestoreSpec) {
        metadata = ObjectMeta(name: name, namespace: namespace)
        self.spec = spec
        status = RestoreStatus()
    }
}

/// `Restore.spec` (reference 1.6).
public struct RestoreSpec: Codable, Hashable, Sendable, HasStorage, SchemaAnnotated {
    public var resources: ResourceRequirements
    public var env: [EnvVar]?
    public var to: TiDBAccessConfig?
    public var backupType: BackupType?
    public var restoreMode: RestoreMode?
    public var pitrRestoredTs: String?
    public var prune: PruneType?
    public var logRestoreStartTs: String?
    public var federalVolumeRestorePhase: FederalVolumeRestorePhase?
    public var volumeAZ: String?
    public var tikvGCLifeTime: String?
    public var s3: S3StorageProvider?
    public var gcs: GCSStorageProvider?
    public var azblob: AzblobStorageProvider?
    public var local: LocalStorageProvider?
    public var pitrFullBackupStorageProvider: StorageProvider
    public var storageClassName: String?
    public var volumeAttributesClassName: String?
    public var storageSize: String?
    public var br: BRConfig?
    public var tolerations: [Toleration]?
    public var affinity: JSONValue?
    public var useKMS: Bool?
    public var serviceAccount: String?
    public var automountServiceAccountToken: Bool?
    public var toolImage: String?
    public var imagePullSecrets: [LocalObjectReference]?
    public var tableFilter: [String]?
    public var warmup: RestoreWarmupMode?
    public var warmupImage: String?
    public var warmupStrategy: RestoreWarmupStrategy?
    public var podSecurityContext: JSONValue?
    public var priorityClassName: String?
    public var additionalVolumes: [Volume]?
    public var additionalVolumeMounts: [VolumeMount]?
    public var tolerateSingleTiKVOutage: Bool?
    public var backoffLimit: Int32?
    /// A TiDB Lightning import job (our addition; see `LightningSpec`).
    public var lightning: LightningSpec?

    public init() {
        resources = ResourceRequirements()
        pitrFullBackupStorageProvider = StorageProvider()
    }

    /// Where the snapshot this restore starts from keeps its backupmeta: the full backup's storage of a
    /// PiTR restore that names one, else the restore's own storage.
    public var snapshotStorage: StorageProvider {
        effectiveRestoreMode == .pitr && pitrFullBackupStorageProvider.type != .unknown ? pitrFullBackupStorageProvider : storage
    }

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        schema.modify(["restoreMode"]) { $0.defaultValue = "snapshot" }
        schema.modify(["warmupStrategy"]) { $0.defaultValue = "hybrid" }
        schema.modify(["tolerateSingleTiKVOutage"]) { $0.defaultValue = false }
        schema.modify(["backoffLimit"]) { $0.defaultValue = 0 }
    }
}

/// `Restore.status` (reference 1.7).
public struct RestoreStatus: Codable, Hashable, Sendable, EmptyInitializable, SchemaAnnotated {
    @EmitNull public var timeStarted: Time?
    @EmitNull public var timeCompleted: Time?
    public var timeTaken: String?
    public var commitTs: String?
    public var phase: RestoreConditionType?
    public var conditions: [RestoreCondition]?
    public var progresses: [Progress]?
    public var brOperations: [BROperation]?

    public init() {}

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        schema.markNullable("conditions", "progresses", "brOperations")
    }
}

/// One entry of `Restore.status.conditions`.
public struct RestoreCondition: Codable, Hashable, Sendable {
    public var type: RestoreConditionType
    public var status: ConditionStatus
    @EmitNull public var lastTransitionTime: Time?
    public var reason: String?
    public var message: String?

    public init(type: RestoreConditionType, status: ConditionStatus = .true, reason: String? = nil,
                message: String? = nil, lastTransitionTime: Time? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
    }
}
