import BRModel
import BRObjects
import BackupOperator
import ControllerKit
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

@Suite("Restore controller: spec.lightning Jobs and checkpoint recovery")
struct LightningControllerTests {
    static let remoteYAML = """
        apiVersion: pingcap.com/v1alpha1
        kind: Restore
        metadata: {name: imp, namespace: ns}
        spec:
          to: {host: basic-tidb, port: 4000, user: root, secretName: backup-tidb-secret}
          lightning:
            cluster: basic
            backend: local
            sortedKV: {storageClassName: local-storage, storage: 50Gi}
            dataSource:
              remote: {path: "s3:bench/sysbench.tar.gz", secretName: rclone-secret, storage: 20Gi, storageClassName: ssd}
            tlsCluster: {enabled: true}
            tlsClient: {enabled: true}
        """

    /// Sets the recovery annotation on Restore ns/imp, as `kubectl annotate` would.
    static func requestRecovery(_ w: World, _ value: String) async throws {
        _ = try await w.api.patch(.restores, namespace: "ns", name: "imp",
                                  patch: Patch(.merge, ["metadata": ["annotations": [LightningLayout.recoveryAnnotation: .string(value)]]]))
    }

    static func seedRclone(_ w: World) async throws {
        _ = try await w.api.create(.secrets, namespace: "ns", object: [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "rclone-secret", "namespace": "ns"],
            "data": ["rclone.conf": .string(Data("[s3]\ntype = s3\n".utf8).base64EncodedString())]])
    }

    @Test("a remote import: data claim without owner, owned sorted-KV claim, the lightning sub-command with PD and TLS, the rclone config from its Secret")
    func remoteJob() async throws {
        let w = World()
        try await w.seedCluster()
        try await Self.seedRclone(w)
        _ = try await w.apply(.restores, Self.remoteYAML)
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "imp"))
        let job = try #require(w.job("restore-imp"))
        let pod = try #require(job.value(at: ["spec", "template", "spec"]))
        let container = try #require(pod["containers"]?.arrayValue?.first)
        #expect(container["args"] == ["lightning", "--namespace=ns", "--restoreName=imp", "--pd=http://127.0.0.1:2379", "--cluster-tls=true", "--client-tls=true"])
        let env = container["env"]?.arrayValue ?? []
        #expect(env.contains { $0["name"] == .string(LightningLayout.rcloneConfigEnv) && $0.value(at: ["valueFrom", "secretKeyRef", "key"]) == "rclone.conf" })
        #expect(env.contains { $0["name"] == "BACKUP_MANAGER_PASSWORD" })
        let mounts = Dictionary(uniqueKeysWithValues: (container["volumeMounts"]?.arrayValue ?? []).compactMap { m in
            m["name"]?.stringValue.map { ($0, m["mountPath"]?.stringValue ?? "") } })
        #expect(mounts == ["data": LightningLayout.dataMount, "sorted-kv": LightningLayout.sortedKVMount,
                           "cluster-tls": LightningLayout.clusterTLSMount, "tidb-client-tls": LightningLayout.clientTLSMount])
        let volumes = pod["volumes"]?.arrayValue ?? []
        #expect(volumes.contains { $0["name"] == "data" && $0.value(at: ["persistentVolumeClaim", "claimName"]) == "imp-lightning-data" })
        #expect(volumes.contains { $0["name"] == "cluster-tls" && $0.value(at: ["secret", "secretName"]) == "basic-lightning-cluster-secret" })
        #expect(volumes.contains { $0["name"] == "tidb-client-tls" && $0.value(at: ["secret", "secretName"]) == "basic-tidb-client-secret" })
        let claims = Dictionary(uniqueKeysWithValues: w.api.objects(.persistentVolumeClaims, namespace: "ns").map { ($0.objectKey.name, $0) })
        #expect(claims["imp-lightning-data"]?.value(at: ["metadata", "ownerReferences"]) == nil)
        #expect(claims["imp-lightning-data"]?.value(at: ["spec", "resources", "requests", "storage"]) == "20Gi")
        #expect(claims["imp-lightning-data"]?.value(at: ["spec", "storageClassName"]) == "ssd")
        #expect(claims["imp-lightning-sorted-kv"]?.value(at: ["metadata", "ownerReferences"])?.arrayValue?.first?["name"] == "imp")
        #expect(claims["imp-lightning-sorted-kv"]?.value(at: ["spec", "resources", "requests", "storage"]) == "50Gi")
        #expect(try await w.api.get(Restore.self, namespace: "ns", name: "imp").status.phase == .scheduled)
    }

    @Test("a local source pins the pod to its node; a missing rclone key or adhoc claim is a RetryFailed condition naming it")
    func localAndMissing() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.restores, """
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: loc, namespace: ns}
            spec:
              to: {host: basic-tidb, secretName: backup-tidb-secret}
              lightning: {dataSource: {local: {nodeName: kind-worker3, hostPath: /data/export-20190820}}}
            """)
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "loc"))
        let pod = try #require(w.job("restore-loc")?.value(at: ["spec", "template", "spec"]))
        #expect(pod["nodeSelector"] == ["kubernetes.io/hostname": "kind-worker3"])
        #expect(pod["volumes"]?.arrayValue?.first { $0["name"] == "data" }?["hostPath"] == ["path": "/data/export-20190820", "type": "Directory"])

        _ = try await w.apply(.restores, """
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: adh, namespace: ns}
            spec:
              to: {host: basic-tidb, secretName: backup-tidb-secret}
              lightning: {dataSource: {adhoc: {pvcName: gone, backupName: b}}}
            """)
        await #expect(throws: JobBuildError.self) { _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "adh")) }
        let r = try await w.api.get(Restore.self, namespace: "ns", name: "adh")
        #expect(r.status.phase == .retryFailed && r.status.conditions?.last?.reason == "PVCNotFound")
        #expect(r.status.conditions?.last?.message?.contains("dataSource.adhoc.pvcName gone") == true)
    }

    @Test("recovery: the annotation on a Failed Restore replaces the failed Job with one that carries --recover, goes back to Scheduled once, and is removed")
    func recovery() async throws {
        let w = World()
        try await w.seedCluster()
        try await Self.seedRclone(w)
        _ = try await w.apply(.restores, Self.remoteYAML)
        let key = ObjectKey(namespace: "ns", name: "imp")
        _ = try await w.restore.reconcile(key)
        // The pod reports the failure itself (and with failFast false its Job would still be running).
        var r = try await w.api.get(Restore.self, namespace: "ns", name: "imp")
        r.status.apply(RestoreCondition(type: .failed, reason: "LightningCheckpointError", message: "tables: `db`.`t3`"), now: Time(w.clock.now()))
        _ = try await w.api.updateStatus(r)
        // A request asked for while nothing failed yet is left for later; a bad one is refused with an Event.
        try await Self.requestRecovery(w, "explode")
        _ = try await w.restore.reconcile(key)
        r = try await w.api.get(Restore.self, namespace: "ns", name: "imp")
        #expect(r.metadata.annotations?[LightningLayout.recoveryAnnotation] == nil && r.status.phase == .failed)
        #expect(w.api.objects(.events, namespace: "ns").contains { $0["reason"] == "InvalidLightningRecovery" })

        try await Self.requestRecovery(w, "destroy-error:db.t3")
        // First the old Job goes.
        let outcome = try await w.restore.reconcile(key)
        #expect(outcome == .requeue(after: .seconds(1)))
        #expect(w.job("restore-imp") == nil)
        _ = try await w.restore.reconcile(key)
        let job = try #require(w.job("restore-imp"))
        let args = job.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(args.contains("--recover=destroy-error:db.t3"), "\(args)")
        #expect(job.value(at: ["metadata", "annotations", LightningLayout.recoveryAnnotation]) == "destroy-error:db.t3")
        r = try await w.api.get(Restore.self, namespace: "ns", name: "imp")
        #expect(r.status.phase == .scheduled && r.metadata.annotations?[LightningLayout.recoveryAnnotation] == nil)
        #expect(r.status.conditions?.first { $0.type == .failed }?.status == .false)
        #expect(r.status.conditions?.first { $0.type == .scheduled }?.message?.contains("--checkpoint-error-destroy=`db`.`t3`") == true)
        // Nothing more happens on the next pass.
        w.api.resetCalls()
        _ = try await w.restore.reconcile(key)
        #expect(w.writes.isEmpty, "\(w.writes)")
    }
}
