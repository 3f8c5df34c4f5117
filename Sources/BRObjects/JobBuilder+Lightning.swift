import BRModel
import Foundation
import KubeAPI
import KubeModel

/// The Job of a Restore with `spec.lightning` (seed 003): the chart's pod, as a Restore's Job. The
/// data volume is mounted at `LightningLayout.dataMount`, the sorted-KV volume at `sortedKVMount`;
/// the job binary's `lightning` sub-command does the rest.
extension JobBuilder {
    public func lightningJob(_ restore: Restore, cluster: TidbCluster?, recovery: String? = nil) async throws -> JSONValue {
        guard let spec = restore.spec.lightning else { throw JobBuildError("InvalidSpec", "spec.lightning is not set") }
        guard let to = restore.spec.to else { throw JobBuildError("InvalidSpec", "spec.to is required for a Lightning import") }
        let ns = restore.namespace
        let useKMS = restore.spec.useKMS ?? false
        // No Secret named: the user logs in without a password, as the chart's default does.
        var env = to.secretName.isEmpty ? [] : try await passwordEnv(namespace: ns, objectName: restore.name, kind: "restore", access: to, useKMS: useKMS)
        var parts = PodParts(env: [], args: ["lightning", "--namespace=\(ns)", "--restoreName=\(restore.name)"], containerName: "tidb-lightning")
        if let recovery { parts.args.append("--recover=\(recovery)") }
        if let cluster { Self.addPD(cluster, &parts) }
        let owner = Self.ownerReference(kind: "Restore", metadata: restore.metadata)
        let labels = [BRLabels.name: "restore", BRLabels.managedBy: "restore-operator",
                      BRLabels.instance: BRLabels.restoreJobLabels(restore)[BRLabels.instance] ?? restore.name]

        // The data volume.
        let source = spec.dataSource
        var nodeName: String?
        if let remote = source.remote {
            if let secretName = remote.secretName, !secretName.isEmpty {
                let keys = try await secret(ns, secretName, reason: "GetRcloneSecretFailed", what: "restore \(ns)/\(restore.name)")
                guard keys[LightningLayout.rcloneConfigKey] != nil else {
                    throw JobBuildError("KeyNotExist", "restore \(ns)/\(restore.name) rclone secret \(secretName) missing key \(LightningLayout.rcloneConfigKey)")
                }
                env.append(.fromSecret(LightningLayout.rcloneConfigEnv, secret: secretName, key: LightningLayout.rcloneConfigKey))
            } else if restore.spec.storage.type != .unknown {
                env += try await storageEnv(namespace: ns, storage: restore.spec.storage, useKMS: useKMS)
            }
            // Not owned by the Restore: the fetched data and its checkpoints outlive it, so that a
            // re-applied Restore, or an adhoc one naming this claim, resumes instead of fetching again.
            try await ensurePVC(namespace: ns, name: restore.lightningDataPVCName,
                                size: (remote.storage ?? "").isEmpty ? LightningLayout.defaultVolumeSize : remote.storage!,
                                storageClassName: remote.storageClassName, attributesClass: nil, labels: labels, owner: "\(ns)/\(restore.name)")
            parts.volumes.append(Self.claimVolume("data", restore.lightningDataPVCName))
        } else if let adhoc = source.adhoc {
            guard (try? await api.get(.persistentVolumeClaims, namespace: ns, name: adhoc.pvcName)) != nil else {
                throw JobBuildError("PVCNotFound", "restore \(ns)/\(restore.name): dataSource.adhoc.pvcName \(adhoc.pvcName) does not exist in namespace \(ns)")
            }
            parts.volumes.append(Self.claimVolume("data", adhoc.pvcName))
        } else if let local = source.local {
            parts.volumes.append(["name": "data", "hostPath": ["path": .string(local.hostPath), "type": "Directory"]])
            if let n = local.nodeName, !n.isEmpty { nodeName = n }
        }
        parts.mounts.append(Self.mount("data", LightningLayout.dataMount))

        if spec.effectiveBackend == .local, let sorted = spec.sortedKV {
            try await ensurePVC(namespace: ns, name: restore.lightningSortedKVPVCName,
                                size: (sorted.storage ?? "").isEmpty ? LightningLayout.defaultVolumeSize : sorted.storage!,
                                storageClassName: sorted.storageClassName, attributesClass: nil, labels: labels,
                                owner: "\(ns)/\(restore.name)", ownerReference: owner)
            parts.volumes.append(Self.claimVolume("sorted-kv", restore.lightningSortedKVPVCName))
            parts.mounts.append(Self.mount("sorted-kv", LightningLayout.sortedKVMount))
        }

        let clusterName = spec.cluster ?? ""
        if spec.tlsCluster?.enabled == true {
            let name = (spec.tlsCluster?.tlsClientSecretName ?? "").isEmpty ? "\(clusterName)-lightning-cluster-secret" : spec.tlsCluster!.tlsClientSecretName!
            parts.args.append("--cluster-tls=true")
            parts.volumes.append(Self.secretVolume("cluster-tls", name))
            parts.mounts.append(Self.mount("cluster-tls", LightningLayout.clusterTLSMount, readOnly: true))
        }
        if spec.tlsClient?.enabled == true {
            let name = (spec.tlsClient?.tlsClientSecretName ?? "").isEmpty ? "\(clusterName)-tidb-client-secret" : spec.tlsClient!.tlsClientSecretName!
            parts.args.append("--client-tls=true")
            parts.volumes.append(Self.secretVolume("tidb-client-tls", name))
            parts.mounts.append(Self.mount("tidb-client-tls", LightningLayout.clientTLSMount, readOnly: true))
        }
        additional(restore.spec.additionalVolumes, restore.spec.additionalVolumeMounts, local: nil, parts: &parts)
        if let tool = restore.spec.toolImage, !tool.isEmpty {
            // The image holds tidb-lightning-ctl beside tidb-lightning; a recovery needs both.
            Self.addBinaryCopy("lightning", image: tool, from: "/tidb-lightning /tidb-lightning-ctl", dir: "/var/lib/lightning-bin",
                               resources: restore.spec.resources, parts: &parts)
        }
        parts.env = merged(env, user: restore.spec.env)
        var common = restoreCommon(restore, name: restore.jobName)
        // The Restore's annotations are copied; this one marks only the Job that carries out a recovery.
        common.annotations[LightningLayout.recoveryAnnotation] = recovery
        var built = job(common, parts)
        if let nodeName {
            built["spec"]?["template"]?["spec"]?["nodeSelector"] = ["kubernetes.io/hostname": .string(nodeName)]
        }
        return built
    }

    static func claimVolume(_ name: String, _ claim: String) -> JSONValue {
        ["name": .string(name), "persistentVolumeClaim": ["claimName": .string(claim)]]
    }
}
