import KubeModel

/// A `pingcap.com/v1alpha1` Backup: one backup of a TiDB cluster with BR (snapshot, log or volume
/// snapshot) or an export with Dumpling.
public struct Backup: KubeResource, Hashable {
    public static let apiVersion = "pingcap.com/v1alpha1"
    public static let kind = "Backup"

    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    public var spec: BackupSpec
    public var status: BackupStatus
    public var retainedDocument: JSONValue?

    enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, spec, status }

    public init(name: String, namespace: String, spec: BackupSpec) {
        metadata = ObjectMeta(name: name, namespace: namespace)
        self.spec = spec
        status = BackupStatus()
    }
}

/// `Backup.spec` (reference 1.3).
public struct BackupSpec: Codable, Hashable, Sendable, HasStorage, SchemaAnnotated {
    public var resources: ResourceRequirements
    public var env: [EnvVar]?
    public var from: TiDBAccessConfig?
    public var backupType: BackupType?
    public var backupMode: BackupMode?
    public var tikvGCLifeTime: String?
    public var s3: S3StorageProvider?
    public var gcs: GCSStorageProvider?
    public var azblob: AzblobStorageProvider?
    public var local: LocalStorageProvider?
    public var storageClassName: String?
    public var volumeAttributesClassName: String?
    public var storageSize: String?
    public var br: BRConfig?
    public var commitTs: String?
    public var logSubcommand: LogSubCommandSpec?
    public var logTruncateUntil: String?
    public var logStop: Bool?
    public var calcSizeLevel: CalcSizeLevel?
    public var federalVolumeBackupPhase: FederalVolumeBackupPhase?
    public var resumeGcSchedule: Bool?
    public var dumpling: DumplingConfig?
    public var tolerations: [Toleration]?
    public var toolImage: String?
    public var imagePullSecrets: [LocalObjectReference]?
    public var tableFilter: [String]?
    public var affinity: JSONValue?
    public var useKMS: Bool?
    public var serviceAccount: String?
    public var automountServiceAccountToken: Bool?
    public var cleanPolicy: CleanPolicy?
    public var cleanOption: CleanOption?
    public var podSecurityContext: JSONValue?
    public var priorityClassName: String?
    public var backoffRetryPolicy: BackoffRetryPolicy
    public var additionalVolumes: [Volume]?
    public var additionalVolumeMounts: [VolumeMount]?
    public var volumeBackupInitJobMaxActiveSeconds: Int?

    public init() {
        resources = ResourceRequirements()
        backoffRetryPolicy = BackoffRetryPolicy()
    }

    static let logStopMessage = "Field `logStop` is the old version field, please use `logSubcommand` instead"

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        schema.modify(["backupMode"]) { $0.defaultValue = "snapshot" }
        schema.modify(["cleanPolicy"]) { $0.defaultValue = "Retain" }
        schema.modify(["calcSizeLevel"]) { $0.defaultValue = "all" }
        schema.modify(["volumeBackupInitJobMaxActiveSeconds"]) { $0.defaultValue = 600 }
        schema.validations = [
            (rule: "has(self.logSubcommand) ? !has(self.logStop) : true", message: logStopMessage),
            (rule: "has(self.logStop) ? !has(self.logSubcommand) : true", message: logStopMessage),
        ]
    }
}

/// `Backup.status` (reference 1.4).
public struct BackupStatus: Codable, Hashable, Sendable, EmptyInitializable, SchemaAnnotated {
    public var backupPath: String?
    /// Our addition: the last verification of this backup (a schedule's `spec.verification`).
    public var verification: BackupVerificationStatus?
    @EmitNull public var timeStarted: Time?
    @EmitNull public var timeCompleted: Time?
    public var timeSynced: Time?
    public var timeTaken: String?
    public var backupSizeReadable: String?
    public var backupSize: Int64?
    public var incrementalBackupSizeReadable: String?
    public var incrementalBackupSize: Int64?
    public var commitTs: String?
    public var logSuccessTruncateUntil: String?
    public var logCheckpointTs: String?
    public var phase: BackupConditionType?
    public var conditions: [BackupCondition]?
    public var logSubCommandStatuses: [String: LogSubCommandStatus]?
    public var progresses: [Progress]?
    public var brOperations: [BROperation]?
    public var backoffRetryStatus: [BackoffRetryRecord]?

    public init() {}

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        schema.markNullable("conditions", "progresses", "brOperations")
    }
}

/// One entry of `Backup.status.conditions`. Conditions are unique by `type`.
public struct BackupCondition: Codable, Hashable, Sendable {
    public var command: LogSubCommand?
    public var type: BackupConditionType
    public var status: ConditionStatus
    @EmitNull public var lastTransitionTime: Time?
    public var reason: String?
    public var message: String?

    public init(type: BackupConditionType, status: ConditionStatus = .true, reason: String? = nil,
                message: String? = nil, command: LogSubCommand? = nil, lastTransitionTime: Time? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.command = command
        self.lastTransitionTime = lastTransitionTime
    }
}

/// The status of one log backup sub-command (`status.logSubCommandStatuses[<command>]`).
public struct LogSubCommandStatus: Codable, Hashable, Sendable, SchemaAnnotated {
    public var command: LogSubCommand?
    @EmitNull public var timeStarted: Time?
    @EmitNull public var timeCompleted: Time?
    public var logTruncatingUntil: String?
    public var phase: BackupConditionType?
    public var conditions: [BackupCondition]?

    public static func annotateSchema(_ schema: inout OpenAPISchema) { schema.markNullable("conditions") }
}

/// One snapshot back-off retry (`status.backoffRetryStatus[]`).
public struct BackoffRetryRecord: Codable, Hashable, Sendable {
    public var retryNum: Int?
    public var detectFailedAt: Time?
    public var expectedRetryAt: Time?
    public var realRetryAt: Time?
    public var retryReason: String?
    public var originalReason: String?

    public init(retryNum: Int? = nil, detectFailedAt: Time? = nil, expectedRetryAt: Time? = nil, realRetryAt: Time? = nil,
                retryReason: String? = nil, originalReason: String? = nil) {
        self.retryNum = retryNum
        self.detectFailedAt = detectFailedAt
        self.expectedRetryAt = expectedRetryAt
        self.realRetryAt = realRetryAt
        self.retryReason = retryReason
        self.originalReason = originalReason
    }
}
