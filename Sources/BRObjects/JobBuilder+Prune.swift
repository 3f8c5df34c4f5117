import BRModel
import KubeModel

extension JobBuilder {
    /// `restore-<name>-prune`: `restore … --abort=true`, without the additional and local volumes.
    public func pruneJob(_ restore: Restore, cluster: TidbCluster, name: String) async throws -> JSONValue {
        var spec = restore
        spec.spec.additionalVolumes = nil
        spec.spec.additionalVolumeMounts = nil
        var modeArgs = ["--abort=true", "--mode=\(restore.spec.effectiveRestoreMode.rawValue)"]
        if restore.spec.effectiveRestoreMode == .pitr, let ts = restore.spec.pitrRestoredTs, !ts.isEmpty { modeArgs.append("--pitrRestoredTs=\(ts)") }
        var parts = try await brRestoreParts(spec, cluster: cluster, modeArgs: modeArgs)
        parts.containerName = "restoreprune-manager"
        return job(restoreCommon(restore, name: name), parts)
    }
}
