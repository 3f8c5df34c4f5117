import BRModel
import Foundation
import KubeModel

extension JobBuilder {
    /// The Job of a CompactBackup (reference 6.9): `tidb-backup-manager compact`, with `br` and
    /// `tikv-ctl` copied by two init containers into one `tool-bin` volume mounted at both tool
    /// directories; the storage environment and the spec's own variables (no `TZ`: the range is UTC).
    /// `attempt`: how many attempts failed before this one (an annotation the controller reads back).
    public func compactJob(_ compact: CompactBackup, cluster: TidbCluster?, attempt: Int) async throws -> JSONValue {
        let ns = compact.namespace
        let spec = compact.spec
        let tikvTag = Self.tag(of: cluster?.tikvImage)
        let brImage = Self.toolImage(spec.toolImage, default: "pingcap/br", tikvTag: tikvTag)
        guard let tikvImage = (spec.tikvImage ?? "").isEmpty ? cluster?.tikvImage : spec.tikvImage, !tikvImage.isEmpty else {
            throw JobBuildError("TikvImageNotFound",
                                "compact \(ns)/\(compact.name): set spec.tikvImage, or spec.br.cluster to a TidbCluster whose TiKV image has tikv-ctl")
        }
        var env = try await storageEnv(namespace: ns, storage: spec.storage, useKMS: spec.useKMS ?? false)
        for u in spec.env ?? [] {
            if let i = env.firstIndex(where: { $0.name == u.name }) { env[i] = u } else { env.append(u) }
        }
        var parts = PodParts(env: env, args: ["compact", "--namespace=\(ns)", "--resourceName=\(compact.name)"], containerName: "backup-manager")
        if let cluster { Self.addPD(cluster, &parts) }
        parts.volumes.append(Self.emptyDir("tool-bin"))
        parts.mounts.append(Self.mount("tool-bin", "/var/lib/br-bin"))
        parts.mounts.append(Self.mount("tool-bin", "/var/lib/kvctl-bin"))
        parts.initContainers = [
            Self.copyInit("br", image: brImage, from: "/br", to: "/var/lib/br-bin", resources: spec.resources, volume: "tool-bin"),
            Self.copyInit("tikv-ctl", image: tikvImage, from: "/tikv-ctl", to: "/var/lib/kvctl-bin", resources: spec.resources, volume: "tool-bin"),
        ]
        additional(spec.additionalVolumes, spec.additionalVolumeMounts, local: spec.local, parts: &parts)
        var annotations = compact.metadata.annotations ?? [:]
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = nil
        annotations[BRLabels.compactAttemptAnnotation] = String(attempt)
        let common = Common(name: compact.jobName, namespace: ns, labels: BRLabels.compactJobLabels(compact), annotations: annotations,
                            owner: Self.ownerReference(kind: "CompactBackup", metadata: compact.metadata), backoffLimit: 0,
                            serviceAccount: (spec.serviceAccount ?? "").isEmpty ? BRDefaults.serviceAccount : spec.serviceAccount!,
                            automountToken: spec.automountServiceAccountToken, resources: spec.resources, tolerations: spec.tolerations,
                            imagePullSecrets: spec.imagePullSecrets, affinity: spec.affinity, priorityClassName: spec.priorityClassName,
                            podSecurityContext: spec.podSecurityContext)
        return job(common, parts)
    }
}
