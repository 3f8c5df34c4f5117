import BRModel
import KubeModel

/// The Jobs of a volume-snapshot (EBS) backup (reference 7.2): `backup-<name>-init`, which holds GC and
/// PD scheduling paused while its BR runs, and `backup-<name>`, which snapshots the volumes.
extension JobBuilder {
    func volumeSnapshotParts(_ backup: Backup, cluster: TidbCluster, initialize: Bool) async throws -> PodParts {
        let ns = backup.namespace
        let env = try await brEnv(namespace: ns, objectName: backup.name, kind: "backup", access: backup.spec.from,
                                  storage: backup.spec.storage, useKMS: backup.spec.useKMS ?? false)
        let tag = Self.tag(of: cluster.tikvImage)
        var parts = PodParts(env: merged(env, user: backup.spec.env),
                             args: ["backup", "--namespace=\(ns)", "--backupName=\(backup.name)"], containerName: "backup")
        if !tag.isEmpty { parts.args.append("--tikvVersion=\(tag)") }
        parts.args.append("--mode=volume-snapshot")
        if initialize { parts.args.append("--initialize=true") }
        Self.addPD(cluster, &parts)
        brTLS(cluster: cluster, access: backup.spec.from, parts: &parts)
        Self.addBinaryCopy("br", image: Self.toolImage(backup.spec.toolImage, default: "pingcap/br", tikvTag: tag), from: "/br",
                           dir: "/var/lib/br-bin", resources: backup.spec.resources, parts: &parts)
        additional(backup.spec.additionalVolumes, backup.spec.additionalVolumeMounts, local: backup.spec.local, parts: &parts)
        return parts
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
