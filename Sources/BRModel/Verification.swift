import Foundation
import KubeModel

/// `BackupSchedule.spec.verification` (our addition, like `spec.lightning`): the schedule's backups are
/// restored into a scratch cluster and checked, so that "the newest point in time actually restored"
/// is a fact of the schedule rather than a hope. Each run is an ordinary Restore labelled
/// `BRLabels.verifies` and owned by the Backup it verifies.
public struct VerificationSpec: Codable, Hashable, Sendable {
    /// A cron expression (in the schedule's time zone): at each slot the newest Complete backup not yet
    /// verified is verified. Without it every Complete backup is verified once, the newest first (so the
    /// proven point keeps up when backups come faster than they restore).
    public var schedule: String?
    /// The scratch cluster the backups are restored into. Never the cluster the schedule backs up.
    public var target: VerificationTarget
    public var checks: VerificationChecks?
    /// `drop`: before each run and after it, the databases the backup holds are dropped through the
    /// scratch TiDB (`target.tidb`), so the restore finds none of them (a BR full restore refuses tables
    /// that exist); `none`: left as they are. Default `drop` when `target.tidb` is given, else `none`.
    public var cleanup: String?
    /// Verification Restores kept per schedule, newest first (default 3); older finished ones are deleted.
    public var keep: Int32?
    /// With the schedule's log backup (`logBackupTemplate`): once the snapshot restored and passed, a
    /// point inside the log window (the log's checkpoint, at most now) is restored too, from this backup
    /// and the log (`br restore point`), so the proven point moves past the snapshot.
    public var pointInTime: Bool?

    public init(target: VerificationTarget) { self.target = target }

    public var effectiveKeep: Int { Int(max(keep ?? 3, 1)) }
    public var checksum: Bool { checks?.checksum ?? true }
    public var effectiveCleanup: String { cleanup ?? (target.tidb == nil ? "none" : "drop") }
}

/// An existing TidbCluster used only for verification.
public struct VerificationTarget: Codable, Hashable, Sendable {
    public var cluster: String
    /// The TidbCluster's namespace; the schedule's when unset.
    public var clusterNamespace: String?
    /// The scratch cluster's TiDB (host, port, user, and the Secret with its `password`), through which
    /// `cleanup: drop` drops the restored databases.
    public var tidb: TiDBAccessConfig?
    /// A TidbCluster `spec`: the cluster named `cluster` is created from it for each run (Kubernetes with
    /// TiDB Operator installed), waited for until its `Ready` condition is True, and deleted after the run.
    /// Only a TidbCluster this operator created for a verification is ever deleted.
    public var template: JSONValue?

    public init(cluster: String, clusterNamespace: String? = nil) {
        self.cluster = cluster
        self.clusterNamespace = clusterNamespace
    }

    /// The target's namespace: `clusterNamespace`, else that of the object that names it.
    public func namespace(default ns: String) -> String { (clusterNamespace ?? "").isEmpty ? ns : clusterNamespace! }

    /// Whether this target is the cluster `br` backs up, both named from an object in `ns`.
    public func isCluster(of br: BRConfig, in ns: String) -> Bool {
        cluster == br.cluster && namespace(default: ns) == ((br.clusterNamespace ?? "").isEmpty ? ns : br.clusterNamespace!)
    }
}

public struct VerificationChecks: Codable, Hashable, Sendable {
    /// BR's checksum of the restored tables against the backup's metadata (`br restore --checksum`; default true).
    public var checksum: Bool?
    /// SQL run on the scratch TiDB (`target.tidb`) after the restore, in order.
    public var queries: [VerificationQuery]?

    public init(checksum: Bool? = nil, queries: [VerificationQuery]? = nil) {
        self.checksum = checksum
        self.queries = queries
    }
}

/// One query of a verification: it must run without error and, with `expect`, its first row's first
/// column must read exactly that (NULL reads as `NULL`).
public struct VerificationQuery: Codable, Hashable, Sendable {
    public var sql: String
    public var expect: String?

    public init(sql: String, expect: String? = nil) {
        self.sql = sql
        self.expect = expect
    }
}

/// `Backup.status.verification`: the last verification of this backup.
public struct BackupVerificationStatus: Codable, Hashable, Sendable {
    public struct Phase: OpenEnum {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public static let running: Self = "Running"
        public static let verified: Self = "Verified"
        public static let failed: Self = "Failed"
        public static let knownValues: [Self] = [.running, .verified, .failed]
    }
    public var phase: Phase
    /// The verification Restore.
    public var restore: String?
    /// The scratch cluster, `namespace/name`.
    public var target: String?
    public var timeStarted: Time?
    public var timeCompleted: Time?
    public var checks: [VerificationCheck]?
    /// With `pointInTime`: the TSO the point-in-time restore restores to (set when it starts).
    public var pitrRestoredTs: String?

    public init(phase: Phase, restore: String? = nil, target: String? = nil, timeStarted: Time? = nil) {
        self.phase = phase
        self.restore = restore
        self.target = target
        self.timeStarted = timeStarted
    }

    /// The message of the first failed check.
    public var failure: String? { checks?.first { !$0.passed }.map { "\($0.name): \($0.message ?? "failed")" } }
}

/// One check of a verification and its outcome.
public struct VerificationCheck: Codable, Hashable, Sendable {
    /// `restore` (the data restored into the scratch cluster), `checksum` (BR's table checksums),
    /// `queries`; the point-in-time step's the same with `point-in-time` before them (`point-in-time`
    /// alone for its restore), and `scratch-cluster` when a template's cluster never became Ready.
    public var name: String
    public var passed: Bool
    public var message: String?

    public init(name: String, passed: Bool, message: String? = nil) {
        self.name = name
        self.passed = passed
        self.message = message.map { StatusText.bounded($0) }
    }
}

/// The Restores of one verification, in order: the snapshot itself, then (with `pointInTime`) a point
/// inside the schedule's log window restored from the snapshot and the log.
public enum VerificationStep: String, Sendable, CaseIterable {
    case snapshot
    case pointInTime = "point-in-time"

    /// The step a verification Restore performs.
    public init(of restore: Restore) { self = restore.spec.effectiveRestoreMode == .pitr ? .pointInTime : .snapshot }

    /// A check's name in this step (the snapshot's names as they are; the point's prefixed).
    func checkName(_ name: String) -> String {
        switch self {
        case .snapshot: return name
        case .pointInTime: return name == "restore" ? rawValue : "\(rawValue) \(name)"
        }
    }
}

/// The verification decisions, made once: which backup is next, what its Restore is, what the Restore's
/// outcome says about each check.
public enum Verification {
    /// The steps `spec` asks of a schedule's backup.
    public static func steps(_ spec: VerificationSpec) -> [VerificationStep] {
        spec.pointInTime == true ? [.snapshot, .pointInTime] : [.snapshot]
    }

    /// The Restore that performs `step` of the verification of `backup`.
    public static func restoreName(for backup: String, step: VerificationStep = .snapshot) -> String {
        let name = step == .snapshot ? "verify-\(backup)" : "verify-\(backup)-pitr"
        // Its Job is `restore-<name>` and Job names are label values (at most 63 characters).
        guard name.count > 55 else { return name }
        var hash: UInt32 = 2_166_136_261
        for b in name.utf8 { hash = (hash ^ UInt32(b)) &* 16_777_619 }
        return String(name.prefix(46)) + "-" + String(format: "%08x", hash)
    }

    /// The reason the job binary gives a verification Restore whose restore succeeded but whose queries did not.
    public static let queryFailedReason = "VerificationQueryFailed"

    /// The checks a finished verification Restore proves or refutes, named for its step.
    public static func checks(of restore: Restore, checksum: Bool) -> [VerificationCheck] {
        let step = VerificationStep(of: restore)
        return snapshotChecks(of: restore, checksum: checksum).map {
            VerificationCheck(name: step.checkName($0.name), passed: $0.passed, message: $0.message)
        }
    }

    static func snapshotChecks(of restore: Restore, checksum: Bool) -> [VerificationCheck] {
        let hasQueries = restore.metadata.annotations?[BRLabels.verificationQueriesAnnotation] != nil
        var passedRestore = [VerificationCheck(name: "restore", passed: true)]
        if checksum { passedRestore.append(VerificationCheck(name: "checksum", passed: true)) }
        if restore.status.phase == .complete {
            return passedRestore + (hasQueries ? [VerificationCheck(name: "queries", passed: true)] : [])
        }
        let failed = restore.status.conditions?.last { $0.type == .failed }
        let message = failed?.message ?? "the restore failed"
        if failed?.reason == queryFailedReason {
            return passedRestore + [VerificationCheck(name: "queries", passed: false, message: message)]
        }
        // BR's own words for a table whose restored data does not match the backup's metadata.
        if message.contains("ErrRestoreChecksumMismatch") || message.contains("failed to validate checksum") {
            return [VerificationCheck(name: "restore", passed: true), VerificationCheck(name: "checksum", passed: false, message: message)]
        }
        return [VerificationCheck(name: "restore", passed: false, message: message)]
    }

    /// Whether a verification target names the cluster the schedule backs up (resolved namespaces).
    public static func targetsProduction(_ schedule: BackupSchedule) -> Bool {
        guard let v = schedule.spec.verification, let br = schedule.spec.backupTemplate.br else { return false }
        return v.target.isCluster(of: br, in: schedule.metadata.namespace ?? "")
    }

    /// The target an on-demand annotation names (`NAMESPACE/CLUSTER`, or `CLUSTER` in the Backup's
    /// namespace); nil when it is neither.
    public static func target(annotation value: String) -> VerificationTarget? {
        func isName(_ s: Substring) -> Bool {
            !s.isEmpty && s.count <= 253 && s.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" || $0 == "." }
        }
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy(isName) else { return nil }
        return parts.count == 2 ? VerificationTarget(cluster: String(parts[1]), clusterNamespace: String(parts[0])) : VerificationTarget(cluster: value)
    }

    /// How long the point-in-time step waits for the log backup's checkpoint to pass the snapshot.
    public static let logCatchUpTimeout: TimeInterval = 30 * 60

    /// The point the point-in-time step restores to: the log backup's checkpoint, at most `now` (a
    /// checkpoint is never ahead of the cluster's clock; a point after now is not a point anyone needs);
    /// nil while it is not past the snapshot's commit TS.
    public static func pointInTime(snapshotCommitTs: UInt64, logCheckpointTs: UInt64?, now: Date) -> UInt64? {
        guard let checkpoint = logCheckpointTs, checkpoint > 0 else { return nil }
        let point = min(checkpoint, TSO.fromUnixSeconds(Int64(now.timeIntervalSince1970)))
        return point > snapshotCommitTs ? point : nil
    }

    /// Whether a database of a (scratch) cluster is the user's: not TiDB's own, nor BR's temporary copy
    /// of system tables. Those are what a verification's cleanup drops and what a restore finds in its way.
    public static func isUserDatabase(_ name: String) -> Bool {
        !["mysql", "information_schema", "performance_schema", "metrics_schema", "sys"].contains(name.lowercased())
            && !name.hasPrefix("__TiDB_BR_Temporary_")
    }

    /// Whether a schedule asks for a point in time without the log backup it is restored through.
    public static func lacksLogBackup(_ spec: BackupScheduleSpec) -> Bool {
        spec.verification?.pointInTime == true && spec.logBackupTemplate == nil
    }

    public static let pointInTimeMessage = "requires spec.logBackupTemplate: a point in time is restored through the schedule's log backup"

    public static let productionMessage = "must not be the cluster this schedule backs up: a verification restores into a scratch cluster, never into production"
}

extension Verification {
    /// The TidbCluster a `target.template` makes for a run, labelled as this operator's own.
    public static func makeScratchCluster(_ spec: VerificationSpec, namespace: String, for backup: Backup) -> JSONValue? {
        guard let template = spec.target.template else { return nil }
        let ns = spec.target.namespace(default: namespace)
        return ["apiVersion": "pingcap.com/v1alpha1", "kind": "TidbCluster",
                "metadata": ["name": .string(spec.target.cluster), "namespace": .string(ns),
                             "labels": [BRLabels.scratchCluster: .string(backup.name)]],
                "spec": template]
    }

    /// The Restore that verifies `backup` per `spec`: the backup's storage restored with BR into the
    /// target, with the checksum as the spec says; labelled with what it verifies (and the schedule
    /// that asked, if one did), owned by the Backup.
    public static func makeRestore(of backup: Backup, spec: VerificationSpec, schedule: BackupSchedule?) -> Restore {
        let ns = backup.namespace
        var rspec = RestoreSpec()
        var br = BRConfig(cluster: spec.target.cluster)
        br.clusterNamespace = spec.target.namespace(default: ns)
        br.checksum = spec.checksum
        br.sendCredToTikv = backup.spec.br?.sendCredToTikv
        rspec.br = br
        rspec.backupType = .full
        rspec.storage = backup.spec.storage
        rspec.env = backup.spec.env
        rspec.toolImage = backup.spec.toolImage
        rspec.serviceAccount = backup.spec.serviceAccount
        rspec.imagePullSecrets = backup.spec.imagePullSecrets
        rspec.tolerations = backup.spec.tolerations
        var restore = Restore(name: restoreName(for: backup.name), namespace: ns, spec: rspec)
        var annotations: [String: String] = [:]
        if spec.effectiveCleanup == "drop", let tidb = spec.target.tidb {
            // The job binary drops the backup's databases through it before BR runs.
            restore.spec.to = tidb
            annotations[BRLabels.verificationCleanupAnnotation] = "drop"
        }
        if let queries = spec.checks?.queries, !queries.isEmpty, let tidb = spec.target.tidb {
            // ... and runs the queries through it after BR.
            restore.spec.to = tidb
            annotations[BRLabels.verificationQueriesAnnotation] = KubeCodec.encodeValue(queries).serialized()
        }
        if !annotations.isEmpty { restore.metadata.annotations = annotations }
        var labels = [BRLabels.verifies: backup.name]
        if let name = schedule?.metadata.name { labels[BRLabels.verificationSchedule] = name }
        // A takeover's hand-over label travels, so TiDB Operator leaves the Restore alone too.
        if let managed = schedule?.metadata.labels?[BRLabels.managed] ?? backup.metadata.labels?[BRLabels.managed] { labels[BRLabels.managed] = managed }
        restore.metadata.labels = labels
        restore.metadata.ownerReferences = [backup.controllerReference]
        return restore
    }
}


extension Verification {
    /// The Restore of the point-in-time step: `restoredTs` restored from `backup` (the full backup) and
    /// the schedule's `log` backup (`br restore point`), into the same target with the same cleanup and
    /// queries as the snapshot step.
    public static func makePointRestore(of backup: Backup, log: Backup, restoredTs: UInt64, spec: VerificationSpec,
                                        schedule: BackupSchedule?) -> Restore {
        var restore = makeRestore(of: backup, spec: spec, schedule: schedule)
        restore.metadata.name = restoreName(for: backup.name, step: .pointInTime)
        restore.spec.restoreMode = .pitr
        restore.spec.pitrRestoredTs = String(restoredTs)
        restore.spec.storage = log.spec.storage
        restore.spec.pitrFullBackupStorageProvider = backup.spec.storage
        return restore
    }
}
