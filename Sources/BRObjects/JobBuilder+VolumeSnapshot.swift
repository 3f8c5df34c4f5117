import BRModel
import KubeModel

/// The Jobs of a volume-snapshot (EBS) backup (reference 7.2): `backup-<name>-init`, which holds GC and
/// PD scheduling paused while its BR runs, and `backup-<name>`, which snapshots the volumes.
extension JobBuilder {
    func volumeSnapshotParts(_ backup: Backup, cluster: TidbCluster, initialize: Bool) async throws -> PodParts {
        try await brBackupParts(backup, cluster: cluster, modeArgs: backup.volumeJob(initialize: initialize).modeArguments)
    }

    /// `backup-<name>-init`: BR's `operator pause-gc-and-schedulers`, ended by deleting the Job; its
    /// deadline (`volumeBackupInitJobMaxActiveSeconds`, 600 s) bounds the pause if everything else fails.
    public func volumeInitJob(_ backup: Backup, cluster: TidbCluster) async throws -> JSONValue {
        let parts = try await volumeSnapshotParts(backup, cluster: cluster, initialize: true)
        var job = job(common(backup, name: backup.volumeInitJobName, component: "backup", backoffLimit: 0), parts)
        let deadline = backup.spec.volumeBackupInitJobMaxActiveSeconds ?? 600
        job["spec"]?["activeDeadlineSeconds"] = .int(Int64(deadline > 0 ? deadline : 600))
        return job
    }

    /// `backup-<name>`: BR's `backup full --type=aws-ebs` over the cluster metadata the operator gathered.
    public func volumeBackupJob(_ backup: Backup, cluster: TidbCluster) async throws -> JSONValue {
        let parts = try await volumeSnapshotParts(backup, cluster: cluster, initialize: false)
        return job(common(backup, name: backup.jobName, component: "backup", backoffLimit: 0), parts)
    }
}

/// The Jobs of a volume-snapshot (EBS) restore (reference 7.5): `restore-<name>` (BR makes volumes from
/// the snapshots), `restore-data-<name>` (BR brings the data to the backup's point), and, when the first
/// failed, `restore-<name>-clean-volumes` (the volumes it made are deleted).
extension JobBuilder {
    public typealias VolumeRestoreStep = Restore.VolumeStep

    public func volumeRestoreJob(_ restore: Restore, cluster: TidbCluster, step: VolumeRestoreStep) async throws -> JSONValue {
        let modeArgs = restore.volumeJob(step).modeArguments
        let parts = try await brRestoreParts(restore, cluster: cluster, modeArgs: modeArgs)
        var common = restoreCommon(restore, name: step.jobName(restore))
        common.backoffLimit = 0
        return job(common, parts)
    }
}

/// The Jobs of a log backup (reference 3.8): `backup-<name>-<sub-command>`.
extension JobBuilder {
    public func logBackupJob(_ backup: Backup, cluster: TidbCluster, command: LogSubCommand) async throws -> JSONValue {
        let flow = backup.logJob(command)
        let parts = try await brBackupParts(backup, cluster: cluster, modeArgs: flow.modeArguments)
        return job(common(backup, name: flow.name, component: "backup", backoffLimit: 0), parts)
    }
}
