import KubeModel

/// A `pingcap.com/v1alpha1` BackupSchedule: Backups created on a cron schedule, with retention.
public struct BackupSchedule: KubeResource, Hashable {
    public static let apiVersion = "pingcap.com/v1alpha1"
    public static let kind = "BackupSchedule"

    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    public var spec: BackupScheduleSpec
    public var status: BackupScheduleStatus
    public var retainedDocument: JSONValue?

    enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, spec, status }

    public init(name: String, namespace: String, spec: BackupScheduleSpec) {
        metadata = ObjectMeta(name: name, namespace: namespace)
        self.spec = spec
        status = BackupScheduleStatus()
    }
}

/// `BackupSchedule.spec` (reference 1.8), plus three members of our own that TiDB Operator's clients
/// ignore: `timeZone`, `startingDeadlineSeconds` and `serviceAccount`.
public struct BackupScheduleSpec: Codable, Hashable, Sendable, HasStorage, SchemaAnnotated {
    public var schedule: String
    public var pause: Bool?
    public var maxBackups: Int32?
    public var maxReservedTime: String?
    public var compactInterval: String?
    public var backupTemplate: BackupSpec
    public var logBackupTemplate: BackupSpec?
    public var compactBackupTemplate: CompactSpec?
    public var minCompactStartTs: String?
    public var storageClassName: String?
    public var volumeAttributesClassName: String?
    public var storageSize: String?
    public var imagePullSecrets: [LocalObjectReference]?
    public var br: BRConfig?
    public var s3: S3StorageProvider?
    public var gcs: GCSStorageProvider?
    public var azblob: AzblobStorageProvider?
    public var local: LocalStorageProvider?
    /// IANA time zone the cron expression is evaluated in; the operator's zone when unset.
    public var timeZone: String?
    /// A slot missed by more than this many seconds is skipped with a Warning event.
    public var startingDeadlineSeconds: Int64?
    /// Service account for the Backups this schedule creates when the template names none. TiDB
    /// Operator's documentation puts `serviceAccount` here; we honour it rather than reject it.
    public var serviceAccount: String?
    /// Our addition: restore the schedule's backups into a scratch cluster and check them.
    public var verification: VerificationSpec?

    public init(schedule: String, backupTemplate: BackupSpec) {
        self.schedule = schedule
        self.backupTemplate = backupTemplate
    }

    /// The CEL rule: the verification target is not the cluster the schedule backs up.
    public static let verificationTargetRule = "!has(self.verification) || !has(self.backupTemplate.br) || self.verification.target.cluster != self.backupTemplate.br.cluster"
        + " || (has(self.verification.target.clusterNamespace) ? self.verification.target.clusterNamespace : '')"
        + " != (has(self.backupTemplate.br.clusterNamespace) ? self.backupTemplate.br.clusterNamespace : '')"
    /// The CEL rule: `verification.pointInTime` needs `logBackupTemplate`.
    public static let pointInTimeRule = "!has(self.verification) || !has(self.verification.pointInTime) || !self.verification.pointInTime || has(self.logBackupTemplate)"

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        // A log backup template that omits backupMode means a log backup, not a snapshot named log-<bs>
        // (reference 9.5 item 7).
        schema.modify(["logBackupTemplate", "backupMode"]) { $0.defaultValue = "log" }
        schema.modify(["startingDeadlineSeconds"]) { $0.minimum = 0 }
        schema.modify(["maxBackups"]) { $0.minimum = 0 }
        schema.modify(["verification", "keep"]) { $0.minimum = 1 }
        schema.validations = [
            (rule: verificationTargetRule, message: "verification.target " + Verification.productionMessage),
            (rule: pointInTimeRule, message: "verification.pointInTime " + Verification.pointInTimeMessage),
        ]
    }
}

/// `BackupSchedule.status`.
public struct BackupScheduleStatus: Codable, Hashable, Sendable, EmptyInitializable {
    public var lastBackup: String?
    public var lastCompact: String?
    public var logBackup: String?
    public var logBackupStartTs: Time?
    public var lastBackupTime: Time?
    public var lastCompactProgress: Time?
    public var lastCompactExecutionTs: Time?
    public var allBackupCleanTime: Time?
    /// Our addition: when the next Backup is due (absent while paused or invalid).
    public var nextScheduledTime: Time?
    /// Our addition: the restorable window — the earliest and latest points the kept backups restore
    /// to (any point between them when `restorableContinuous`, i.e. through the log backup; otherwise
    /// only the snapshots' own points). Absent while nothing is restorable.
    public var earliestRestorable: Time?
    public var latestRestorable: Time?
    public var restorableContinuous: Bool?
    /// Our addition: the newest backup a verification restored and checked, when that verification
    /// finished, and the point in time that backup restores to (the newest point proven restorable).
    public var lastVerifiedBackup: String?
    public var lastVerifiedTime: Time?
    public var provenRestorable: Time?
    /// Our addition: when the last verification started (the verification cron counts from it).
    public var lastVerificationStart: Time?
    /// Our addition: the schedule's health in one word (`ScheduleHealth`: Healthy, Late, Failing, Paused,
    /// Pending, Invalid), for the Status column of `kubectl get bks`.
    public var health: String?
    /// Our addition: `Invalid` (bad cron or time zone), `CompactionDisabled`, `BackupsFailing`, `LogBackupConflict`,
    /// `VerificationFailed`.
    public var conditions: [ScheduleCondition]?

    public init() {}
}

/// A condition of a BackupSchedule (our addition; TiDB Operator's schedules have none).
public struct ScheduleCondition: Codable, Hashable, Sendable {
    public var type: String
    public var status: ConditionStatus
    @EmitNull public var lastTransitionTime: Time?
    public var reason: String?
    public var message: String?

    public init(type: String, status: ConditionStatus = .true, reason: String? = nil, message: String? = nil, lastTransitionTime: Time? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
    }
}

extension BackupScheduleStatus {
    /// Sets a condition (unique by type), keeping its time when the status does not change.
    public mutating func set(_ condition: ScheduleCondition, now: Time) {
        var list = conditions ?? []
        var c = condition
        c.lastTransitionTime = now
        if let i = list.firstIndex(where: { $0.type == c.type }) {
            if list[i].status == c.status { c.lastTransitionTime = list[i].lastTransitionTime }
            list[i] = c
        } else {
            list.append(c)
        }
        conditions = list
    }

    /// Drops a condition type.
    public mutating func clear(_ type: String) {
        conditions?.removeAll { $0.type == type }
        if conditions?.isEmpty == true { conditions = nil }
    }
}
