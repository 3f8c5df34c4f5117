import KubeModel

/// Label, annotation and finalizer keys and values (reference 1.10). Every key lives here.
public enum BRLabels {
    public static let name = "app.kubernetes.io/name"
    public static let managedBy = "app.kubernetes.io/managed-by"
    public static let instance = "app.kubernetes.io/instance"
    public static let component = "app.kubernetes.io/component"
    public static let backup = "tidb.pingcap.com/backup"
    public static let restore = "tidb.pingcap.com/restore"
    public static let backupSchedule = "tidb.pingcap.com/backup-schedule"
    public static let backupScheduleGroup = "tidb.pingcap.com/backup-schedule-group"
    public static let warmUpPod = "tidb.pingcap.com/warm-up-pod"

    public static let backupFinalizer = "tidb.pingcap.com/backup-protection"
    public static let tikvVolumesReadyAnnotation = "tidb.pingcap.com/tikv-volumes-ready"
    /// Written by the job binary on its Backup or Restore while it holds `tikv_gc_life_time` raised: the
    /// value to put back. A run killed before it could reset the life time leaves it, and the next run
    /// (the retry) puts that value back, not the raised one it finds.
    public static let gcLifeTimeOriginalAnnotation = "tidb-backup-operator.pingcap.com/original-tikv-gc-life-time"

    /// On every Job this operator builds. A Job without it was made by another controller (TiDB
    /// Operator before the takeover): its pod's status writes (a PUT of the whole object) do not reach
    /// a status subresource, so what it reports is read another way (see `Adoption`).
    public static let jobBuilderAnnotation = "tidb-backup-operator.pingcap.com/built-by"
    public static let jobBuilder = "tidb-backup-operator"
    /// Set by the user on a Backup, Restore, BackupSchedule or CompactBackup that this operator is to
    /// reconcile (the operator never sets it itself; a schedule's Backups inherit its labels). TiDB
    /// Operator started with `--selector=tidb-backup-operator.pingcap.com/managed!=true` leaves such
    /// objects alone; `run --selector=tidb-backup-operator.pingcap.com/managed=true` here takes only them
    /// (docs/migrate-from-tidb-operator.md).
    public static let managed = "tidb-backup-operator.pingcap.com/managed"

    /// On a Complete Backup, `NAMESPACE/CLUSTER` (or `CLUSTER` in the Backup's namespace): verify it once
    /// by restoring it into that scratch cluster.
    public static let verifyAnnotation = "tidb-backup-operator.pingcap.com/verify"
    /// On a verification Restore: `drop` — before BR runs, the job binary drops the databases the backup
    /// holds through `spec.to` (the scratch TiDB).
    public static let verificationCleanupAnnotation = "tidb-backup-operator.pingcap.com/verification-cleanup"
    /// On a verification Restore: the queries (JSON, `[{"sql", "expect"}]`) the job binary runs through
    /// `spec.to` after BR.
    public static let verificationQueriesAnnotation = "tidb-backup-operator.pingcap.com/verification-queries"
    /// On a TidbCluster a verification created from `target.template`: the Backup it was made for. Only
    /// such a cluster is deleted after the run.
    public static let scratchCluster = "tidb-backup-operator.pingcap.com/scratch-for"
    /// On a verification Restore: the Backup it verifies.
    public static let verifies = "tidb-backup-operator.pingcap.com/verifies"
    /// On a verification Restore: the schedule whose verification made it.
    public static let verificationSchedule = "tidb-backup-operator.pingcap.com/verification-of"

    /// Labels of jobs and PVCs that belong to a Backup: operator labels first; the Backup's own labels
    /// are added only for keys not already present.
    public static func backupJobLabels(_ backup: Backup, component: String = "backup") -> [String: String] {
        var labels = [
            name: "backup",
            managedBy: "backup-operator",
            instance: backup.metadata.labels?[instance] ?? backup.metadata.name ?? "",
            BRLabels.component: component,
            BRLabels.backup: backup.metadata.name ?? "",
        ]
        for (k, v) in backup.metadata.labels ?? [:] where labels[k] == nil { labels[k] = v }
        return labels
    }

    /// Labels of jobs that belong to a Restore.
    public static func restoreJobLabels(_ restore: Restore, component: String = "restore") -> [String: String] {
        var labels = [
            name: "restore",
            managedBy: "restore-operator",
            instance: restore.metadata.labels?[instance] ?? restore.metadata.name ?? "",
            BRLabels.component: component,
            BRLabels.restore: restore.metadata.name ?? "",
        ]
        for (k, v) in restore.metadata.labels ?? [:] where labels[k] == nil { labels[k] = v }
        return labels
    }

    /// Labels of Backups and CompactBackups a schedule creates; also the selector for its retention.
    public static func scheduleLabels(scheduleName: String) -> [String: String] {
        [name: "backup-schedule", managedBy: "backup-schedule-operator", instance: scheduleName, backupSchedule: scheduleName]
    }

    /// `scheduleLabels` as a label selector: the schedule's Backups.
    public static func scheduleSelector(scheduleName: String) -> String {
        scheduleLabels(scheduleName: scheduleName).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}

/// Names derived from objects (reference 1.10 and 8.1).
public enum BRNames {
    /// `2006-01-02t15-04-05` in UTC, the time format of scheduled object names and prefixes.
    public static func scheduleTimestamp(_ t: Time) -> String {
        let c = CivilTime(unixSeconds: t.unixSeconds)
        return String(format: "%04d-%02d-%02dt%02d-%02d-%02d", c.year, c.month, c.day, c.hour, c.minute, c.second)
    }

    /// `2006-01-02 15:04:05` in UTC, the format of compaction start and end.
    public static func compactTimestamp(_ t: Time) -> String {
        let c = CivilTime(unixSeconds: t.unixSeconds)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", c.year, c.month, c.day, c.hour, c.minute, c.second)
    }

    public static func scheduledBackupName(schedule: String, slot: Time) -> String { "\(schedule)-\(scheduleTimestamp(slot))" }
    public static func scheduleLogBackupName(schedule: String) -> String { "log-\(schedule)" }
    public static func scheduleCompactName(schedule: String, at t: Time) -> String { "compact-\(schedule)-\(scheduleTimestamp(t))" }

    /// FNV-1 (not FNV-1a), 32 bits.
    public static func fnv1_32(_ s: String) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        for b in s.utf8 {
            h = h &* 16_777_619
            h ^= UInt32(b)
        }
        return h
    }

    /// Kubernetes' `rand.SafeEncodeString`: every character mapped into an alphabet without vowels.
    public static func safeEncode(_ s: String) -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String(s.unicodeScalars.map { alphabet[Int($0.value) % alphabet.count] })
    }

    /// `"<host>_<port>"` hashed and encoded, the suffix of Dumpling and Lightning PVC names.
    public static func endpointHash(_ access: TiDBAccessConfig?) -> String {
        let endpoint = "\(access?.host ?? "")_\(access?.effectivePort ?? 4000)"
        return safeEncode(String(fnv1_32(endpoint)))
    }
}

extension Backup {
    public var name: String { metadata.name ?? "" }
    public var namespace: String { metadata.namespace ?? "" }

    /// `backup-<name>`, or `backup-<name>-<subcommand>` for a log backup.
    public var jobName: String {
        if spec.backupMode == .log { return "backup-\(name)-\(derivedLogSubcommand.rawValue)" }
        return "backup-\(name)"
    }
    public var volumeInitJobName: String { "\(jobName)-init" }
    public var cleanJobName: String { "clean-\(name)" }
    public var stopLogJobName: String { "stop-\(name)" }
    public var dumplingPVCName: String { "backup-pvc-\(BRNames.endpointHash(spec.from))" }

    /// The log sub-command to run, derived from the spec and the current phase (reference 3.8).
    public var derivedLogSubcommand: LogSubCommand {
        let phase = status.phase
        var command: LogSubCommand
        switch spec.logSubcommand?.rawValue ?? "" {
        case "":
            if spec.logStop == true || phase == .stopped { command = .stop }
            else if phase == .paused {
                // Paused in TiKV, by an error or by hand (the tracker recorded it): stays paused until the
                // spec asks for `log-start`. TiDB Operator would resume it at once, over and over for an error.
                let reason = status.conditions?.first { $0.type == .paused }?.reason ?? ""
                command = ["LogBackupErrorPaused", "LogBackupKernelSync"].contains(reason) ? .pause : .resume
            }
            else { command = .start }
        case LogSubCommand.start.rawValue: command = phase == .paused ? .resume : .start
        case LogSubCommand.stop.rawValue: command = .stop
        case LogSubCommand.pause.rawValue: command = .pause
        default: return .unknown
        }
        let inSync: Bool
        switch command {
        case .start: inSync = !(status.commitTs ?? "").isEmpty
        case .stop: inSync = phase == .stopped
        case .pause: inSync = phase == .paused
        case .resume: inSync = phase == .running
        default: inSync = false
        }
        if inSync, let until = spec.logTruncateUntil, !until.isEmpty, until != status.logSuccessTruncateUntil {
            command = .truncate
        }
        return command
    }

    /// The namespace of the target TidbCluster: `br.clusterNamespace`, else the Backup's.
    public var clusterNamespace: String {
        let ns = spec.br?.clusterNamespace ?? ""
        return ns.isEmpty ? namespace : ns
    }
}

extension Restore {
    public var name: String { metadata.name ?? "" }
    public var namespace: String { metadata.namespace ?? "" }

    /// `restore-<name>`, or `restore-data-<name>` while volumes are restored but data is not.
    public var jobName: String {
        if hasCondition(.volumeComplete) && !hasCondition(.dataComplete) { return "restore-data-\(name)" }
        return "restore-\(name)"
    }
    public var pruneJobName: String { "\(jobName)-prune" }
    public var lightningPVCName: String { "restore-pvc-\(BRNames.endpointHash(spec.to))" }

    public func hasCondition(_ type: RestoreConditionType) -> Bool {
        status.conditions?.contains { $0.type == type && $0.status == .true } ?? false
    }

    public var clusterNamespace: String {
        let ns = spec.br?.clusterNamespace ?? ""
        return ns.isEmpty ? namespace : ns
    }
}

/// What a Backup or Restore is, in one word, for lists, decided from the few spec fields that decide it,
/// so that a reader of raw objects (the web view's list of thousands) need not decode them.
public enum FlowKinds {
    /// `dumpling` for an export (no `spec.br`), else the mode (`snapshot` when none is set).
    public static func backup(hasBR: Bool, mode: String?) -> String {
        hasBR ? ((mode ?? "").isEmpty ? BackupMode.snapshot.rawValue : mode!) : "dumpling"
    }

    /// `lightning` (`spec.lightning`), `import` (a Lightning import of a Dumpling archive, no `spec.br`),
    /// else the mode (`snapshot`, `pitr`, `volume-snapshot`).
    public static func restore(hasLightning: Bool, hasBR: Bool, mode: String?) -> String {
        if hasLightning { return "lightning" }
        if !hasBR { return "import" }
        return (mode ?? "").isEmpty ? RestoreMode.snapshot.rawValue : mode!
    }
}

extension Backup {
    /// A back-off retry that is waiting (TiDB Operator keeps the phase it had, so this is the only word
    /// of it): "retry 1 of 2 at <time> after: <why the Job failed>"; nil when none is pending.
    public var pendingRetry: String? {
        guard let last = status.backoffRetryStatus?.last, last.realRetryAt == nil, let at = last.expectedRetryAt,
              ![.complete, .failed, .invalid].contains(status.phase) else { return nil }
        let reason = [last.retryReason, last.originalReason].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
        return "retry \(last.retryNum ?? 1) of \(spec.effectiveBackoffRetryPolicy.maxRetryTimes ?? BRDefaults.maxRetryTimes) at \(at)" + (reason.isEmpty ? "" : " after: \(reason)")
    }
}
