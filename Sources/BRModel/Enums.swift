import KubeModel

/// `spec.backupType` of Backup and Restore. Free string at the API level; validation accepts
/// empty, `full`, `db` and `table` for BR (reference 2.2).
public struct BackupType: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let full: Self = "full"
    public static let raw: Self = "raw"
    public static let db: Self = "db"
    public static let table: Self = "table"
    public static let tiflashReplica: Self = "tiflash-replica"
    public static let knownValues: [Self] = [.full, .raw, .db, .table, .tiflashReplica]
}

/// `spec.backupMode` of a Backup.
public struct BackupMode: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let snapshot: Self = "snapshot"
    public static let log: Self = "log"
    public static let volumeSnapshot: Self = "volume-snapshot"
    public static let knownValues: [Self] = [.snapshot, .log, .volumeSnapshot]
}

/// `spec.restoreMode` of a Restore.
public struct RestoreMode: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let snapshot: Self = "snapshot"
    public static let pitr: Self = "pitr"
    public static let volumeSnapshot: Self = "volume-snapshot"
    public static let knownValues: [Self] = [.snapshot, .pitr, .volumeSnapshot]
}

/// `spec.cleanPolicy`: what happens to remote data when the Backup is deleted. Enforced by the CRD.
public struct CleanPolicy: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let retain: Self = "Retain"
    public static let onFailure: Self = "OnFailure"
    public static let delete: Self = "Delete"
    public static let knownValues: [Self] = [.retain, .onFailure, .delete]
    public static var enforcedBySchema: Bool { true }
}

/// Log backup sub-commands. Only start, stop and pause are accepted in `spec.logSubcommand`; the others
/// are derived and appear in status.
public struct LogSubCommand: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let start: Self = "log-start"
    public static let truncate: Self = "log-truncate"
    public static let stop: Self = "log-stop"
    public static let pause: Self = "log-pause"
    public static let resume: Self = "log-resume"
    public static let unknown: Self = "log-unknown"
    public static let knownValues: [Self] = [.start, .truncate, .stop, .pause, .resume, .unknown]
}

/// The values the CRD accepts for `spec.logSubcommand`.
public struct LogSubCommandSpec: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let knownValues: [Self] = ["log-start", "log-stop", "log-pause"]
    public static var enforcedBySchema: Bool { true }
    public var command: LogSubCommand { LogSubCommand(rawValue: rawValue) }
}

/// `status.conditions[].type` and `status.phase` of a Backup (reference 1.5).
public struct BackupConditionType: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let scheduled: Self = "Scheduled"
    public static let running: Self = "Running"
    public static let complete: Self = "Complete"
    public static let clean: Self = "Clean"
    public static let repeatable: Self = "Repeatable"
    public static let failed: Self = "Failed"
    public static let retryFailed: Self = "RetryFailed"
    public static let cleanFailed: Self = "CleanFailed"
    public static let invalid: Self = "Invalid"
    public static let prepare: Self = "Prepare"
    public static let paused: Self = "Paused"
    public static let stopped: Self = "Stopped"
    public static let restart: Self = "Restart"
    public static let volumeBackupInitialized: Self = "VolumeBackupInitialized"
    public static let volumeBackupInitializeFailed: Self = "VolumeBackupInitializeFailed"
    public static let volumeBackupSnapshotsCreated: Self = "VolumeBackupSnapshotsCreated"
    public static let volumeBackupInitializeComplete: Self = "VolumeBackupInitializeComplete"
    public static let volumeBackupComplete: Self = "VolumeBackupComplete"
    public static let volumeBackupFailed: Self = "VolumeBackupFailed"
    public static let knownValues: [Self] = [
        .scheduled, .running, .complete, .clean, .repeatable, .failed, .retryFailed, .cleanFailed, .invalid,
        .prepare, .paused, .stopped, .restart, .volumeBackupInitialized, .volumeBackupInitializeFailed,
        .volumeBackupSnapshotsCreated, .volumeBackupInitializeComplete, .volumeBackupComplete, .volumeBackupFailed,
    ]
}

/// `status.conditions[].type` and `status.phase` of a Restore (reference 1.7).
public struct RestoreConditionType: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let scheduled: Self = "Scheduled"
    public static let running: Self = "Running"
    public static let volumeComplete: Self = "VolumeComplete"
    public static let cleanVolumeComplete: Self = "CleanVolumeComplete"
    public static let warmUpStarted: Self = "WarmUpStarted"
    public static let warmUpComplete: Self = "WarmUpComplete"
    public static let dataComplete: Self = "DataComplete"
    public static let tikvComplete: Self = "TikvComplete"
    public static let complete: Self = "Complete"
    public static let failed: Self = "Failed"
    public static let retryFailed: Self = "RetryFailed"
    public static let invalid: Self = "Invalid"
    public static let pruneScheduled: Self = "PruneScheduled"
    public static let pruneRunning: Self = "PruneRunning"
    public static let pruneComplete: Self = "PruneComplete"
    public static let pruneFailed: Self = "PruneFailed"
    public static let knownValues: [Self] = [
        .scheduled, .running, .volumeComplete, .cleanVolumeComplete, .warmUpStarted, .warmUpComplete, .dataComplete,
        .tikvComplete, .complete, .failed, .retryFailed, .invalid, .pruneScheduled, .pruneRunning, .pruneComplete,
        .pruneFailed,
    ]
}

/// `True`, `False` or `Unknown`.
public struct ConditionStatus: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let `true`: Self = "True"
    public static let `false`: Self = "False"
    public static let unknown: Self = "Unknown"
    public static let knownValues: [Self] = [.true, .false, .unknown]
}

public struct FederalVolumeBackupPhase: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let initialize: Self = "initialize"
    public static let execute: Self = "execute"
    public static let teardown: Self = "teardown"
    public static let knownValues: [Self] = [.initialize, .execute, .teardown]
}

public struct FederalVolumeRestorePhase: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let restoreVolume: Self = "restore-volume"
    public static let restoreData: Self = "restore-data"
    public static let restoreFinish: Self = "restore-finish"
    public static let knownValues: [Self] = [.restoreVolume, .restoreData, .restoreFinish]
}

/// `spec.prune` of a Restore. Enforced by the CRD.
public struct PruneType: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let afterFailed: Self = "afterFailed"
    public static let knownValues: [Self] = [.afterFailed]
    public static var enforcedBySchema: Bool { true }
}

public struct RestoreWarmupMode: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let sync: Self = "sync"
    public static let async: Self = "async"
    public static let knownValues: [Self] = [.sync, .async]
}

public struct RestoreWarmupStrategy: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let fio: Self = "fio"
    public static let hybrid: Self = "hybrid"
    public static let fsr: Self = "fsr"
    public static let checkWALOnly: Self = "check-wal-only"
    public static let knownValues: [Self] = [.fio, .hybrid, .fsr, .checkWALOnly]
}

/// `spec.calcSizeLevel` (EBS size calculation).
public struct CalcSizeLevel: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let all: Self = "all"
    public static let full: Self = "full"
    public static let incremental: Self = "incremental"
    public static let knownValues: [Self] = [.all, .full, .incremental]
}

/// `spec.s3.provider`. Any string is accepted; a few change path style and endpoint handling (reference 6.4).
public struct S3Provider: OpenEnum {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let aws: Self = "aws"
    public static let alibaba: Self = "alibaba"
    public static let digitalocean: Self = "digitalocean"
    public static let dreamhost: Self = "dreamhost"
    public static let ibmcos: Self = "ibmcos"
    public static let minio: Self = "minio"
    public static let netease: Self = "netease"
    public static let wasabi: Self = "wasabi"
    public static let ceph: Self = "ceph"
    public static let other: Self = "other"
    public static let knownValues: [Self] = [
        .aws, .alibaba, .digitalocean, .dreamhost, .ibmcos, .minio, .netease, .wasabi, .ceph, .other,
    ]
}

/// The effective storage of an object (reference 1.2.1).
public enum BackupStorageType: String, Sendable, Hashable {
    case s3, gcs, azblob, local, unknown
}
