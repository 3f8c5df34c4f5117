import BRModel
import BackupOperator
import ControllerKit
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

@Suite("Volume-snapshot restores: the controller's phases")
struct VolumeSnapshotRestoreControllerTests {
    /// `restoremeta` of a backup of TidbCluster `ebs` in `ns`: one store, one volume, BR's new volume filled in.
    static func restoreMeta() -> VolumeSnapshotDocument {
        let pv: JSONValue = ["apiVersion": "v1", "kind": "PersistentVolume",
                             "metadata": ["name": "pv-0", "annotations": ["temporary/volume-id": "vol-old"]],
                             "spec": ["csi": ["driver": "ebs.csi.aws.com", "volumeHandle": "vol-old"],
                                      "claimRef": ["name": "tikv-ebs-tikv-0", "namespace": "ns", "uid": "x"]]]
        let pvc: JSONValue = ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": "tikv-ebs-tikv-0", "namespace": "ns"],
                              "spec": ["volumeName": "pv-0"]]
        var doc = VolumeSnapshotDocument(tikv: .init(replicas: 1, stores: [.init(storeID: 1, volumes: [
            .init(volumeID: "vol-old", type: "storage.data-dir", mountPath: "/var/lib/tikv", snapshotID: "snap-1", restoreVolumeID: "vol-new")])]),
                                         pd: .init(replicas: 1), tidb: .init(replicas: 1),
                                         kubernetes: .init(pvcs: [pvc], pvs: [pv], crdTidbCluster: ["metadata": ["name": "ebs", "namespace": "ns"]]))
        doc.clusterInfo = .init(resolvedTs: 42)
        return doc
    }

    static let yaml = """
        apiVersion: pingcap.com/v1alpha1
        kind: Restore
        metadata: {name: vr, namespace: ns}
        spec:
          restoreMode: volume-snapshot
          br: {cluster: target}
          s3: {provider: aws, region: us-west-2, bucket: my-bucket, prefix: v, secretName: s3-secret}
        """

    static func seedTarget(_ w: World, recoveryMode: Bool = true) async throws {
        _ = try await w.apply(.tidbClusters, """
            apiVersion: pingcap.com/v1alpha1
            kind: TidbCluster
            metadata: {name: target, namespace: ns}
            spec: {version: v8.5.0, pdAddresses: ["http://127.0.0.1:2379"], recoveryMode: \(recoveryMode), tikv: {replicas: 1}}
            """)
        _ = try await w.api.create(.pods, namespace: "ns", object: [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": "target-tikv-0", "namespace": "ns", "labels": ["app.kubernetes.io/component": "tikv", "app.kubernetes.io/instance": "target"]]])
    }

    /// What the prepare Job leaves when it succeeds: the ConfigMap with BR's answer and VolumeComplete.
    static func prepared(_ w: World) async throws {
        _ = try await w.api.create(.configMaps, namespace: "ns", object: [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "restore-vr-restoremeta", "namespace": "ns"],
            "data": ["restoremeta.json": .string(restoreMeta().encoded().serialized())]])
        try await report(w, .volumeComplete)
    }

    static func report(_ w: World, _ type: RestoreConditionType) async throws {
        var r = try await w.api.get(Restore.self, namespace: "ns", name: "vr")
        r.status.apply(RestoreCondition(type: type), now: Time(w.clock.now()))
        _ = try await w.api.updateStatus(r)
    }

    static func settle(_ w: World) async throws {
        for _ in 0..<6 {
            if try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "vr")) != .requeue(after: .zero) { return }
        }
    }

    /// The whole restore, the test playing the Jobs and TiDB Operator.
    static func runToCompletion(_ w: World) async throws {
        try await seedTarget(w)
        _ = try await w.apply(.restores, yaml)
        try await settle(w)
        try await prepared(w)
        try await settle(w)
        var cluster = try await w.api.get(.tidbClusters, namespace: "ns", name: "target")
        cluster["status"] = ["tikv": ["stores": ["1": ["state": "Up"]]]]
        _ = try await w.api.updateStatus(.tidbClusters, namespace: "ns", object: cluster)
        try await settle(w)
        try await report(w, .dataComplete)
        try await settle(w)
    }

    @Test("prepare Job, then PV and PVC for the new volume and the TiKV annotation, TikvComplete, data Job, finish: pods restarted, recovery mode off, Complete")
    func phases() async throws {
        let w = World()
        try await w.seedCluster()
        try await Self.seedTarget(w)
        _ = try await w.apply(.restores, Self.yaml)
        try await Self.settle(w)
        let prepare = try #require(w.job("restore-vr"))
        let args = prepare.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(args.contains("--mode=volume-snapshot") && args.contains("--prepare"), "\(args)")

        try await Self.prepared(w)
        try await Self.settle(w)
        let pvs = w.api.objects(.persistentVolumes, namespace: nil)
        #expect(pvs.count == 1)
        #expect(pvs.first?.value(at: ["spec", "csi", "volumeHandle"]) == "vol-new")
        let claim = try await w.api.get(.persistentVolumeClaims, namespace: "ns", name: "tikv-target-tikv-0")
        #expect(claim.value(at: ["spec", "volumeName"]) == pvs.first?.value(at: ["metadata", "name"]))
        var cluster = try await w.api.get(.tidbClusters, namespace: "ns", name: "target")
        #expect(cluster.value(at: ["metadata", "annotations", "tidb.pingcap.com/tikv-volumes-ready"]) == "ns/vr")
        let recorded = try await w.api.get(.configMaps, namespace: "ns", name: "restore-vr-restoremeta")
        #expect(recorded.value(at: ["data", "volumes.json"])?.stringValue?.contains("vol-new") == true)
        #expect(w.job("restore-data-vr") == nil, "no data step before TiKV is up")

        cluster["status"] = ["tikv": ["stores": ["1": ["state": "Up"]]]]
        _ = try await w.api.updateStatus(.tidbClusters, namespace: "ns", object: cluster)
        try await Self.settle(w)
        #expect(try await w.api.get(Restore.self, namespace: "ns", name: "vr").hasCondition(.tikvComplete))
        #expect(w.job("restore-data-vr") != nil)

        try await Self.report(w, .dataComplete)
        try await Self.settle(w)
        let done = try await w.api.get(Restore.self, namespace: "ns", name: "vr")
        #expect(done.status.phase == .complete)
        cluster = try await w.api.get(.tidbClusters, namespace: "ns", name: "target")
        #expect(cluster.value(at: ["spec", "recoveryMode"]) == .bool(false))
        #expect(cluster.value(at: ["metadata", "annotations", "tidb.pingcap.com/tikv-volumes-ready"]) == nil)
        #expect(w.api.objects(.pods, namespace: "ns").isEmpty)
    }

    @Test("a cluster not in recovery mode: Invalid 'recovery mode is off', no Job")
    func notInRecovery() async throws {
        let w = World()
        try await w.seedCluster()
        try await Self.seedTarget(w, recoveryMode: false)
        _ = try await w.apply(.restores, Self.yaml)
        try await Self.settle(w)
        let r = try await w.api.get(Restore.self, namespace: "ns", name: "vr")
        #expect(r.status.phase == .invalid)
        #expect(r.status.conditions?.first?.message == "recovery mode is off")
        #expect(w.job("restore-vr") == nil)
    }

    @Test("a claim already bound elsewhere: Failed ExistingPVCConflict, nothing overwritten")
    func conflict() async throws {
        let w = World()
        try await w.seedCluster()
        try await Self.seedTarget(w)
        _ = try await w.api.create(.persistentVolumeClaims, namespace: "ns", object: [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": "tikv-target-tikv-0", "namespace": "ns"], "spec": ["volumeName": "someone-else"]])
        _ = try await w.apply(.restores, Self.yaml)
        try await Self.settle(w)
        try await Self.prepared(w)
        try await Self.settle(w)
        let r = try await w.api.get(Restore.self, namespace: "ns", name: "vr")
        #expect(r.status.conditions?.first { $0.type == .failed }?.reason == "ExistingPVCConflict")
        let claim = try await w.api.get(.persistentVolumeClaims, namespace: "ns", name: "tikv-target-tikv-0")
        #expect(claim.value(at: ["spec", "volumeName"]) == "someone-else")
    }

    @Test("the prepare Job fails: Failed, then the clean-volumes Job; the data step never runs")
    func prepareFails() async throws {
        let w = World()
        try await w.seedCluster()
        try await Self.seedTarget(w)
        _ = try await w.apply(.restores, Self.yaml)
        try await Self.settle(w)
        try await w.finishJob("restore-vr", failed: true)
        try await Self.settle(w)
        let r = try await w.api.get(Restore.self, namespace: "ns", name: "vr")
        #expect(r.status.phase == .failed)
        let clean = try #require(w.job("restore-vr-clean-volumes"))
        let args = clean.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(args.contains("--clean-volumes"))
        #expect(w.job("restore-data-vr") == nil)
    }
}
