import KubeModel

/// Defaults (reference 1.11).
///
/// Schema defaults — the ones the API server fills on write — are declared once on the model types and
/// applied here through the generated schema, so the operator, the standalone server and the CRDs
/// cannot disagree. Defaults TiDB Operator applies in code, without writing them to the object, are
/// the `effective…` accessors below.
public enum BRDefaults {
    public static let serviceAccount = "tidb-backup-manager"
    public static let storageSize = "100Gi"
    public static let tikvGCLifeTime = "72h"
    public static let backupManagerImage = "pingcap/tidb-backup-manager:latest"
    public static let minRetryDuration = "300s"
    public static let maxRetryTimes = 2
    public static let retryTimeout = "30m"
    public static let s3StorageClass = "STANDARD_IA"
    public static let s3ACL = "private"
    public static let azureAccessTier = "Cool"

    /// The object with every schema default filled, as the API server would store it.
    public static func applied<T: KubeResource>(to object: T) -> T {
        let schema = SchemaReflection.schema(for: T.self)
        let defaulted = schema.applyDefaults(to: KubeCodec.encode(object))
        guard var result = try? KubeCodec.decode(T.self, from: defaulted) else { return object }
        result.retainedDocument = object.retainedDocument.map { schema.applyDefaults(to: $0) }
        return result
    }

    /// Schema defaults for a raw document of one of our kinds (used before decoding, as the server does).
    public static func applied(to document: JSONValue, kind: String) -> JSONValue {
        guard let schema = BRKinds.schema(forKind: kind) else { return document }
        return schema.applyDefaults(to: document)
    }
}

extension BackupSpec {
    public var effectiveBackupType: BackupType { (backupType?.rawValue ?? "").isEmpty ? .full : backupType! }
    public var effectiveBackupMode: BackupMode { (backupMode?.rawValue ?? "").isEmpty ? .snapshot : backupMode! }
    public var effectiveCleanPolicy: CleanPolicy { (cleanPolicy?.rawValue ?? "").isEmpty ? .retain : cleanPolicy! }
    public var effectiveServiceAccount: String { (serviceAccount ?? "").isEmpty ? BRDefaults.serviceAccount : serviceAccount! }
    public var effectiveStorageSize: String { (storageSize ?? "").isEmpty ? BRDefaults.storageSize : storageSize! }
    public var effectiveTiKVGCLifeTime: String { (tikvGCLifeTime ?? "").isEmpty ? BRDefaults.tikvGCLifeTime : tikvGCLifeTime! }

    /// `backoffRetryPolicy` with the CRD defaults for members the object lacks (an object created
    /// without the key has none until its first update; reference 9.2 item 4).
    public var effectiveBackoffRetryPolicy: BackoffRetryPolicy {
        BackoffRetryPolicy(
            minRetryDuration: (backoffRetryPolicy.minRetryDuration ?? "").isEmpty ? BRDefaults.minRetryDuration : backoffRetryPolicy.minRetryDuration,
            maxRetryTimes: backoffRetryPolicy.maxRetryTimes ?? BRDefaults.maxRetryTimes,
            retryTimeout: (backoffRetryPolicy.retryTimeout ?? "").isEmpty ? BRDefaults.retryTimeout : backoffRetryPolicy.retryTimeout)
    }

    /// `cleanOption` with TiDB Operator's code defaults for absent or non-positive members (reference 1.2.5).
    public var effectiveCleanOption: CleanOption {
        var o = cleanOption ?? CleanOption()
        if (o.pageSize ?? 0) == 0 { o.pageSize = 10_000 }
        if (o.retryCount ?? 0) <= 0 { o.retryCount = 5 }
        if (o.batchConcurrency ?? 0) == 0 { o.batchConcurrency = 10 }
        if (o.routineConcurrency ?? 0) == 0 { o.routineConcurrency = 100 }
        if o.backoffEnabled == nil { o.backoffEnabled = false }
        if o.disableBatchConcurrency == nil { o.disableBatchConcurrency = false }
        if o.snapshotsDeleteRatio == nil { o.snapshotsDeleteRatio = 1 }
        return o
    }
}

extension RestoreSpec {
    public var effectiveBackupType: BackupType { (backupType?.rawValue ?? "").isEmpty ? .full : backupType! }
    public var effectiveRestoreMode: RestoreMode { (restoreMode?.rawValue ?? "").isEmpty ? .snapshot : restoreMode! }
    public var effectiveServiceAccount: String { (serviceAccount ?? "").isEmpty ? BRDefaults.serviceAccount : serviceAccount! }
    public var effectiveStorageSize: String { (storageSize ?? "").isEmpty ? BRDefaults.storageSize : storageSize! }
    public var effectiveTiKVGCLifeTime: String { (tikvGCLifeTime ?? "").isEmpty ? BRDefaults.tikvGCLifeTime : tikvGCLifeTime! }
}
