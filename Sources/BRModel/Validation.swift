import Foundation
import Cron
import KubeModel

/// One problem in an object, with the field it concerns.
public struct ValidationProblem: Hashable, Sendable, CustomStringConvertible {
    public var field: String
    public var message: String
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { "\(field): \(message)" }
}

/// Semantic validation (reference section 2), with TiDB Operator's messages.
///
/// TiDB Operator stops at the first failure; these functions report every independent problem in
/// TiDB Operator's order, so the first element is the message TiDB Operator would give and the
/// controllers use it for the `Invalid` condition, while `validate` shows them all.
public enum BRValidation {
    /// Validates a Backup. `tikvImage` is the target cluster's TiKV image (`nil` when unknown: version
    /// gates then assume a recent TiKV, as TiDB Operator does for unparsable tags); `cluster` is the
    /// target TidbCluster when known (volume-snapshot checks need it).
    public static func validate(_ backup: Backup, tikvImage: String? = nil, cluster: TidbCluster? = nil) -> [ValidationProblem] {
        validate(spec: backup.spec, key: backup.metadata.key, path: "spec", tikvImage: tikvImage, cluster: cluster,
                 derivedLogCommand: backup.derivedLogSubcommand)
    }

    static func validate(spec: BackupSpec, key: String, path: String, tikvImage: String?, cluster: TidbCluster?,
                         derivedLogCommand: LogSubCommand? = nil) -> [ValidationProblem] {
        var out: [ValidationProblem] = []
        func add(_ field: String, _ message: String) { out.append(ValidationProblem(field: "\(path).\(field)", message: message)) }
        let inSpec = "in spec of \(key)"

        func accessChecks(_ access: TiDBAccessConfig?, _ field: String) {
            if access == nil || access!.host.isEmpty {
                add(access == nil ? field : "\(field).host", "missing cluster config \(inSpec)")
            }
            if let access, access.secretName.isEmpty { add("\(field).secretName", "missing tidbSecretName config \(inSpec)") }
        }

        guard let br = spec.br else {
            accessChecks(spec.from, "from")
            if (spec.storageSize ?? "").isEmpty { add("storageSize", "missing StorageSize config \(inSpec)") }
            out += durationChecks(spec.backoffRetryPolicy, key: key, path: path)
            return out
        }
        if TiKVVersion(image: tikvImage).isOlder(than: (4, 0, 8)) { accessChecks(spec.from, "from") }
        if br.cluster.isEmpty { add("br.cluster", "cluster should be configured for BR \(inSpec)") }
        let type = spec.backupType?.rawValue ?? ""
        if !["", "full", "db", "table"].contains(type) {
            add("backupType", "invalid backup type \(type) for BR \(inSpec)")
        }
        if type == "db" || type == "table", (br.db ?? "").isEmpty {
            add("br.db", "DB should be configured for BR with backup type \(type) \(inSpec)")
        }
        if type == "table", (br.table ?? "").isEmpty {
            add("br.table", "table should be configured for BR with backup type table \(inSpec)")
        }
        out += storageChecks(spec.storage, key: key, path: path)
        let mode = spec.backupMode?.rawValue ?? ""
        if !["", "snapshot", "log", "volume-snapshot"].contains(mode) {
            add("backupMode", "unsupported backup mode \(mode) \(inSpec), supported: snapshot, log, volume-snapshot")
        }
        if mode == "log" {
            if TiKVVersion(image: tikvImage).isOlder(than: (6, 1, 0)) {
                add("backupMode", "tikv \(tikvImage ?? "") doesn't support log backup \(inSpec), the first version is v6.1.0")
            }
            if derivedLogCommand == .unknown {
                add("logSubcommand", "log backup \(key) subcommand `\(spec.logSubcommand?.rawValue ?? "")` is not supported")
            }
            do { _ = try TSO.parse(spec.commitTs ?? "") } catch { add("commitTs", error.description) }
            do { _ = try TSO.parse(spec.logTruncateUntil ?? "") } catch { add("logTruncateUntil", error.description) }
        }
        // TiDB Operator accepts volume snapshots only for `acrossK8s` clusters, because only its federation
        // manager drives the phases; this operator drives them itself, so a single cluster is fine.
        if mode == "volume-snapshot" {
            if spec.br == nil { add("br", "a volume-snapshot backup needs spec.br (the cluster whose TiKV volumes are snapshotted) \(inSpec)") }
            if spec.s3 == nil && spec.local == nil {
                add("s3", "a volume-snapshot backup keeps its metadata in S3 (BR's aws-ebs type) \(inSpec)")
            }
        }
        if spec.logSubcommand != nil && spec.logStop != nil { add("logStop", BackupSpec.logStopMessage) }
        out += durationChecks(spec.backoffRetryPolicy, key: key, path: path)
        return out
    }

    static func durationChecks(_ p: BackoffRetryPolicy, key: String, path: String) -> [ValidationProblem] {
        var out: [ValidationProblem] = []
        if let v = p.minRetryDuration, !v.isEmpty {
            do { _ = try GoDuration(parsing: v) } catch {
                out.append(ValidationProblem(field: "\(path).backoffRetryPolicy.minRetryDuration",
                    message: "fail to parse minRetryDuration \(v) of backup \(key), \(error)"))
            }
        }
        if let v = p.retryTimeout, !v.isEmpty {
            do { _ = try GoDuration(parsing: v) } catch {
                out.append(ValidationProblem(field: "\(path).backoffRetryPolicy.retryTimeout",
                    message: "fail to parse retryTimeout \(v) of backup \(key), \(error)"))
            }
        }
        return out
    }

    /// Storage checks of the effective provider (s3, else gcs, else local; reference 2.2 step 6), plus
    /// the Azure container, which TiDB Operator never checks.
    static func storageChecks(_ storage: StorageProvider, key: String, path: String) -> [ValidationProblem] {
        var out: [ValidationProblem] = []
        func add(_ field: String, _ message: String) { out.append(ValidationProblem(field: "\(path).\(field)", message: message)) }
        let inSpec = "configured for BR in spec of \(key)"
        if let s3 = storage.s3 {
            if (s3.bucket ?? "").isEmpty { add("s3.bucket", "bucket should be \(inSpec)") }
            if let ep = s3.endpoint, !ep.isEmpty {
                switch endpointProblem(ep) {
                case nil: break
                case "invalid endpoint"?: add("s3.endpoint", "invalid endpoint \(ep) is \(inSpec)")
                case let problem?: add("s3.endpoint", "\(problem) \(ep) \(inSpec)")
                }
            }
        } else if let gcs = storage.gcs {
            if gcs.projectId.isEmpty { add("gcs.projectId", "projectId should be \(inSpec)") }
            if (gcs.bucket ?? "").isEmpty { add("gcs.bucket", "bucket should be \(inSpec)") }
        } else if let az = storage.azblob {
            if (az.container ?? "").isEmpty { add("azblob.container", "container should be \(inSpec)") }
        } else if let local = storage.local {
            if local.volume.name != local.volumeMount.name {
                add("local.volumeMount.name", "Spec.Local.Volume.Name != Spec.Local.VolumeMount.Name is \(inSpec)")
            }
            if local.volumeMount.mountPath.isEmpty {
                add("local.volumeMount.mountPath", "empty Spec.Local.VolumeMount.MountPath is \(inSpec)")
            } else if local.volumeMount.mountPath.contains(":") {
                add("local.volumeMount.mountPath", "Spec.Local.VolumeMount.MountPath cannot contain ':' \(inSpec)")
            }
        }
        return out
    }

    /// Go's `url.Parse` outcome for an endpoint: a parse error, a missing scheme or a missing host.
    static func endpointProblem(_ ep: String) -> String? {
        let invalidChars = CharacterSet(charactersIn: " #%^*\"<>\\{}|`").union(.controlCharacters)
        if let schemeEnd = ep.range(of: "://") {
            let scheme = ep[..<schemeEnd.lowerBound]
            if scheme.isEmpty || !scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) {
                return "invalid endpoint"
            }
            let rest = ep[schemeEnd.upperBound...]
            let host = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            if host.unicodeScalars.contains(where: invalidChars.contains) { return "invalid endpoint" }
            if host.isEmpty { return "host not found in endpoint" }
            return nil
        }
        if ep.unicodeScalars.contains(where: { invalidChars.contains($0) && $0 != "/" }) || ep.hasPrefix(":") {
            return "invalid endpoint"
        }
        return "scheme not found in endpoint"
    }

    /// Validates a Restore (reference 2.3).
    public static func validate(_ restore: Restore, tikvImage: String? = nil, cluster: TidbCluster? = nil) -> [ValidationProblem] {
        var out: [ValidationProblem] = []
        let spec = restore.spec
        let key = restore.metadata.key
        func add(_ field: String, _ message: String) { out.append(ValidationProblem(field: "spec.\(field)", message: message)) }
        let inSpec = "in spec of \(key)"
        func accessChecks() {
            if spec.to == nil || spec.to!.host.isEmpty { add(spec.to == nil ? "to" : "to.host", "missing cluster config \(inSpec)") }
            if let to = spec.to, to.secretName.isEmpty { add("to.secretName", "missing tidbSecretName config \(inSpec)") }
        }
        if let lightning = spec.lightning {
            // The tidb-lightning chart logs in without a password unless a Secret is named
            // (`targetTidbCluster.secretName` empty by default), so a `spec.lightning` import may too.
            if spec.to == nil || spec.to!.host.isEmpty { add(spec.to == nil ? "to" : "to.host", "missing cluster config \(inSpec)") }
            return out + lightning.problems(restore: restore)
        }
        guard let br = spec.br else {
            accessChecks()
            if (spec.storageSize ?? "").isEmpty { add("storageSize", "missing StorageSize config \(inSpec)") }
            return out
        }
        if TiKVVersion(image: tikvImage).isOlder(than: (4, 0, 8)) { accessChecks() }
        if br.cluster.isEmpty { add("br.cluster", "cluster should be configured for BR \(inSpec)") }
        let type = spec.backupType?.rawValue ?? ""
        if !["", "full", "db", "table"].contains(type) { add("backupType", "invalid restore type \(type) for BR \(inSpec)") }
        if type == "db" || type == "table", (br.db ?? "").isEmpty {
            add("br.db", "DB should be configured for BR with restore type \(type) \(inSpec)")
        }
        let mode = spec.restoreMode?.rawValue ?? ""
        if mode == "pitr" {
            let hasFull = spec.pitrFullBackupStorageProvider.type != .unknown
            let hasStart = !(spec.logRestoreStartTs ?? "").isEmpty
            if hasFull && hasStart {
                add("logRestoreStartTs", "pitrFullBackupStorageProvider and logRestoreStartTs option can not co-exists in pitr mode")
            } else if !hasFull && !hasStart {
                add("pitrFullBackupStorageProvider", "either pitrFullBackupStorageProvider or logRestoreStartTs option needs to be passed in pitr mode")
            }
        }
        if type == "table", (br.table ?? "").isEmpty {
            add("br.table", "table should be configured for BR with restore type table \(inSpec)")
        }
        out += storageChecks(spec.storage, key: key, path: "spec")
        if !["", "snapshot", "pitr", "volume-snapshot"].contains(mode) {
            add("restoreMode", "unsupported restore mode \(mode) \(inSpec), supported: snapshot, pitr, volume-snapshot")
        }
        // TiDB Operator accepts volume-snapshot restores only across Kubernetes clusters (its federation
        // drives them); this operator drives them itself, so one cluster is fine.
        _ = cluster
        if spec.warmup != nil, (spec.warmupImage ?? "").isEmpty {
            add("warmupImage", "warmupImage should be configured when warmup is set \(inSpec)")
        }
        return out
    }

    /// Validates a BackupSchedule. TiDB Operator checks nothing here and fails every reconcile on a bad
    /// cron expression; we report it, and everything below, as problems of the spec.
    public static func validate(_ schedule: BackupSchedule) -> [ValidationProblem] {
        var out: [ValidationProblem] = []
        let key = schedule.metadata.key
        let spec = schedule.spec
        do { _ = try CronSchedule(parsing: spec.schedule) } catch {
            out.append(ValidationProblem(field: "spec.schedule",
                message: "parse backup schedule \(key) cron format \(spec.schedule) failed, err: \(error)"))
        }
        for (field, value) in [("maxReservedTime", spec.maxReservedTime), ("compactInterval", spec.compactInterval)] {
            guard let value else { continue }
            do {
                let d = try GoDuration(parsing: value)
                if d.nanoseconds <= 0 { out.append(ValidationProblem(field: "spec.\(field)", message: "must be a positive duration, got \(value)")) }
            } catch {
                out.append(ValidationProblem(field: "spec.\(field)", message: "\(error)"))
            }
        }
        if let zone = spec.timeZone, TimeZone(identifier: zone) == nil || zone.isEmpty {
            out.append(ValidationProblem(field: "spec.timeZone", message: "unknown time zone \(zone)"))
        }
        if let m = spec.maxBackups, m < 0 {
            out.append(ValidationProblem(field: "spec.maxBackups", message: "must be greater than or equal to 0"))
        }
        out += validate(spec: spec.backupTemplate, key: key, path: "spec.backupTemplate", tikvImage: nil, cluster: nil)
        if let v = spec.verification {
            if spec.backupTemplate.br == nil || [.log, .volumeSnapshot].contains(spec.backupTemplate.effectiveBackupMode) {
                out.append(ValidationProblem(field: "spec.verification", message: "verifies BR snapshot backups; backupTemplate is not one"))
            }
            if v.target.cluster.isEmpty {
                out.append(ValidationProblem(field: "spec.verification.target.cluster", message: "Required value: the TidbCluster to restore into"))
            } else if Verification.targetsProduction(schedule) {
                out.append(ValidationProblem(field: "spec.verification.target", message: Verification.productionMessage))
            }
            if let cron = v.schedule {
                do { _ = try CronSchedule(parsing: cron) } catch {
                    out.append(ValidationProblem(field: "spec.verification.schedule", message: "parse cron format \(cron) failed, err: \(error)"))
                }
            }
            if let cleanup = v.cleanup, cleanup != "drop" && cleanup != "none" {
                out.append(ValidationProblem(field: "spec.verification.cleanup", message: "Unsupported value: \"\(cleanup)\": supported values: \"drop\", \"none\""))
            } else if v.cleanup == "drop" && v.target.tidb == nil {
                out.append(ValidationProblem(field: "spec.verification.target.tidb",
                    message: "Required value: cleanup drop drops the restored databases through the scratch cluster's TiDB (host, port, user, secretName)"))
            }
            if let queries = v.checks?.queries, !queries.isEmpty {
                if v.target.tidb == nil {
                    out.append(ValidationProblem(field: "spec.verification.target.tidb",
                        message: "Required value: checks.queries run on the scratch cluster's TiDB (host, port, user, secretName)"))
                }
                for (i, q) in queries.enumerated() where q.sql.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    out.append(ValidationProblem(field: "spec.verification.checks.queries[\(i)].sql", message: "Required value"))
                }
            }
            if let template = v.target.template, template.objectValue == nil {
                out.append(ValidationProblem(field: "spec.verification.target.template", message: "must be a TidbCluster spec (an object)"))
            }
            if let tidb = v.target.tidb, tidb.secretName.isEmpty {
                out.append(ValidationProblem(field: "spec.verification.target.tidb.secretName", message: "Required value: the Secret holding the TiDB password"))
            }
            if let keep = v.keep, keep < 1 {
                out.append(ValidationProblem(field: "spec.verification.keep", message: "must be greater than or equal to 1"))
            }
            if Verification.lacksLogBackup(spec) {
                out.append(ValidationProblem(field: "spec.verification.pointInTime", message: Verification.pointInTimeMessage))
            }
        }
        if let log = spec.logBackupTemplate {
            out += validate(spec: log, key: key, path: "spec.logBackupTemplate", tikvImage: nil, cluster: nil)
        }
        return out
    }

    /// Validates a CompactBackup (reference 2.5).
    public static func validate(_ compact: CompactBackup) -> [ValidationProblem] {
        var out: [ValidationProblem] = []
        let s = compact.spec
        if (s.startTs ?? "").isEmpty { out.append(ValidationProblem(field: "spec.startTs", message: "start-ts must be set")) }
        if (s.endTs ?? "").isEmpty { out.append(ValidationProblem(field: "spec.endTs", message: "end-ts must be set")) }
        if let c = s.concurrency, c <= 0 { out.append(ValidationProblem(field: "spec.concurrency", message: "concurrency must be greater than 0")) }
        if let m = s.maxRetryTimes, m < 0 {
            out.append(ValidationProblem(field: "spec.maxRetryTimes", message: "maxRetryTimes must be greater than or equal to 0"))
        }
        return out
    }
}

/// The version in a TiKV image tag, for TiDB Operator's version gates.
struct TiKVVersion {
    var parts: (Int, Int, Int)?

    init(image: String?) {
        guard let image, let colon = image.lastIndex(of: ":"), !image[colon...].contains("/") else { parts = nil; return }
        var tag = image[image.index(after: colon)...]
        if tag.hasPrefix("v") { tag = tag.dropFirst() }
        let core = tag.prefix { $0 != "-" && $0 != "+" }
        let n = core.split(separator: ".").map { Int($0) }
        guard n.count == 3, let a = n[0], let b = n[1], let c = n[2] else { parts = nil; return }
        parts = (a, b, c)
    }

    /// Unparsable tags (`latest`, `nightly`) count as new enough.
    func isOlder(than v: (Int, Int, Int)) -> Bool {
        guard let p = parts else { return false }
        return p < v
    }
}
