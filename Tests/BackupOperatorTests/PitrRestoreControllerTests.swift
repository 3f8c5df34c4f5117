import BRModel
import BackupOperator
import ControllerKit
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

@Suite("PiTR restores: the TiKV configuration gate of reference 4.5")
struct PitrRestoreControllerTests {
    /// A TidbCluster managed by TiDB Operator (no pdAddresses), a PiTR Restore of it; the gate holds the
    /// Job until the TiKV ConfigMap says gc.ratio-threshold = -1.
    /// Drives the gate; returns the Job's arguments once it ran.
    static func run(_ w: World) async throws -> [String] {
        _ = try await w.apply(.tidbClusters, """
            apiVersion: pingcap.com/v1alpha1
            kind: TidbCluster
            metadata: {name: managed, namespace: ns}
            spec: {version: v8.5.0}
            """)
        _ = try await w.api.create(.configMaps, namespace: "ns", object: [
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": ["name": "managed-tikv-abc", "namespace": "ns", "labels": ["app.kubernetes.io/component": "tikv", "app.kubernetes.io/instance": "managed"]],
            "data": ["config-file": "[gc]\nratio-threshold = 1.1\n"]])
        _ = try await w.apply(.restores, """
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: pitr, namespace: ns}
            spec:
              restoreMode: pitr
              pitrRestoredTs: "400000000000000000"
              br: {cluster: managed}
              s3: {provider: aws, region: us-west-2, bucket: logs, prefix: log, secretName: s3-secret}
              pitrFullBackupStorageProvider:
                s3: {provider: aws, region: us-west-2, bucket: full, prefix: f, secretName: s3-secret}
            """)
        #expect(try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "pitr")) == .requeue(after: .seconds(10)))
        let waiting = try await w.api.get(Restore.self, namespace: "ns", name: "pitr")
        #expect(waiting.status.conditions?.first?.message == "config reset, waiting for configmap updated(wants = -1.0, theirs = 1.1), keep polling")
        #expect(w.job("restore-pitr") == nil)

        var map = try await w.api.get(.configMaps, namespace: "ns", name: "managed-tikv-abc")
        map["data"] = ["config-file": "[gc]\nratio-threshold = -1.0\n"]
        _ = try await w.api.update(.configMaps, namespace: "ns", object: map)
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "pitr"))
        let job = try #require(w.job("restore-pitr"))
        let args = job.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(args.contains("--mode=pitr") && args.contains("--pitrRestoredTs=400000000000000000"), "\(args)")
        return args
    }

    @Test("the Job waits for gc.ratio-threshold = -1 in the TiKV ConfigMap, then runs with --mode=pitr")
    func gate() async throws {
        let w = World()
        try await w.seedCluster()
        let args = try await Self.run(w)
        #expect(args.first == "restore" && args.contains("--mode=pitr"), "\(args)")
    }
}
