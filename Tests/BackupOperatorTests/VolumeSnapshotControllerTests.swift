import BRModel
import BackupOperator
import ControllerKit
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

extension World {
    /// A TidbCluster `ebs` laid out as TiDB Operator does: one TiKV pod (store 1) whose data volume is
    /// a PVC bound to a PV with an EBS CSI handle.
    func seedEBSCluster(namespace: String = "ns", driver: String = "ebs.csi.aws.com") async throws {
        _ = try await apply(.tidbClusters, """
            apiVersion: pingcap.com/v1alpha1
            kind: TidbCluster
            metadata: {name: ebs, namespace: \(namespace)}
            spec: {version: v8.5.0, pdAddresses: ["http://127.0.0.1:2379"], pd: {replicas: 3}, tidb: {replicas: 1}, tikv: {replicas: 1}}
            """)
        _ = try await api.create(.persistentVolumes, namespace: nil, object: [
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": ["name": "pv-0"],
            "spec": ["csi": ["driver": .string(driver), "volumeHandle": "vol-0123456789abcdef0"]]])
        _ = try await api.create(.persistentVolumeClaims, namespace: namespace, object: [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": "tikv-ebs-tikv-0", "namespace": .string(namespace)],
            "spec": ["volumeName": "pv-0"]])
        _ = try await api.create(.pods, namespace: namespace, object: [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": "ebs-tikv-0", "namespace": .string(namespace),
                         "labels": ["app.kubernetes.io/component": "tikv", "app.kubernetes.io/instance": "ebs", "tidb.pingcap.com/store-id": "1"]],
            "spec": ["volumes": [["name": "tikv", "persistentVolumeClaim": ["claimName": "tikv-ebs-tikv-0"]]]]])
    }

    static func volumeBackup(_ name: String) -> String {
        """
        apiVersion: pingcap.com/v1alpha1
        kind: Backup
        metadata: {name: \(name), namespace: ns}
        spec:
          backupMode: volume-snapshot
          cleanPolicy: Delete
          br: {cluster: ebs}
          s3: {provider: aws, region: us-west-2, bucket: my-bucket, prefix: \(name), secretName: s3-secret}
        """
    }
}

@Suite("Volume-snapshot backups: the controller's phases and every way out of them")
struct VolumeSnapshotControllerTests {
    func started(_ name: String = "v") async throws -> World {
        let w = World()
        try await w.seedCluster()
        try await w.seedEBSCluster()
        _ = try await w.apply(.backups, World.volumeBackup(name))
        try await w.settleBackup(name)
        return w
    }

    @Test("init Job with --initialize=true and a deadline; then the metadata ConfigMap and the backup Job; the init Job goes when the snapshots exist; Complete once it is gone")
    func happyPath() async throws {
        let w = try await started()
        let initJob = try #require(w.job("backup-v-init"))
        let args = initJob.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(args.contains("--mode=volume-snapshot") && args.contains("--initialize=true"), "\(args)")
        #expect(initJob.value(at: ["spec", "activeDeadlineSeconds"]) == .int(600))
        #expect(w.job("backup-v") == nil, "no snapshot before GC is paused")
        #expect(try await w.getBackup("v").status.phase == .scheduled)

        try await w.podReports("v", .volumeBackupInitialized)
        try await w.settleBackup("v")
        let configMap = try await w.api.get(.configMaps, namespace: "ns", name: "backup-v-clustermeta")
        let meta = try VolumeSnapshotDocument.decode(Data((configMap.value(at: ["data", "clustermeta.json"])?.stringValue ?? "").utf8))
        #expect(meta.tikv.stores.map(\.storeID) == [1])
        #expect(meta.tikv.stores.first?.volumes.first?.volumeID == "vol-0123456789abcdef0")
        let job = try #require(w.job("backup-v"))
        let jobArgs = job.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(jobArgs.contains("--mode=volume-snapshot") && !jobArgs.contains("--initialize=true"))

        try await w.podReports("v", .running)
        try await w.settleBackup("v")
        #expect(w.job("backup-v-init") != nil, "GC stays paused until the snapshots exist")
        try await w.podReports("v", .volumeBackupSnapshotsCreated)
        try await w.settleBackup("v")
        #expect(w.job("backup-v-init") == nil)
        #expect(try await w.getBackup("v").status.has(.volumeBackupInitializeComplete))
        try await w.podReports("v", .volumeBackupComplete) { $0.commitTs = "42" }
        try await w.settleBackup("v")
        let done = try await w.getBackup("v")
        #expect(done.status.phase == .complete)
        #expect(done.status.timeCompleted != nil)
        #expect((try? await w.api.get(.configMaps, namespace: "ns", name: "backup-v-clustermeta")) == nil)
    }

    @Test("the init Job ends by itself before the snapshots: Failed (InitializeJobCompletedOrFailed), the running backup Job stopped")
    func initEndsEarly() async throws {
        let w = try await started()
        try await w.podReports("v", .volumeBackupInitialized)
        try await w.settleBackup("v")
        #expect(w.job("backup-v") != nil)
        try await w.finishJob("backup-v-init", failed: false)
        try await w.settleBackup("v")
        let b = try await w.getBackup("v")
        #expect(b.status.phase == .failed && b.status.timeCompleted != nil)
        #expect(b.status.conditions?.first { $0.type == .failed }?.reason == "InitializeJobCompletedOrFailed")
        #expect(w.job("backup-v-init") == nil && w.job("backup-v") == nil)
    }

    @Test("the init Job deleted by someone: Failed (InitializeJobDeleted); the backup Job failing: Failed, init Job deleted at once")
    func deletedAndFailed() async throws {
        let w = try await started()
        _ = try await w.api.delete(.jobs, namespace: "ns", name: "backup-v-init")
        try await w.settleBackup("v")
        var b = try await w.getBackup("v")
        #expect(b.status.conditions?.first { $0.type == .failed }?.reason == "InitializeJobDeleted")
        #expect(w.job("backup-v") == nil, "nothing is snapshotted without the pause")

        let w2 = try await started("x")
        try await w2.podReports("x", .volumeBackupInitialized)
        try await w2.settleBackup("x")
        try await w2.finishJob("backup-x", failed: true)
        try await w2.settleBackup("x")
        b = try await w2.getBackup("x")
        #expect(b.status.phase == .failed)
        #expect(b.status.has(.volumeBackupFailed))
        #expect(w2.job("backup-x-init") == nil)
    }

    @Test("a PV of another CSI driver: Failed before GC is paused (no init Job ever), naming the driver and the PV, with a completion time")
    func otherDriver() async throws {
        let w = World()
        try await w.seedCluster()
        try await w.seedEBSCluster(driver: "pd.csi.storage.gke.io")
        _ = try await w.apply(.backups, World.volumeBackup("v"))
        try await w.settleBackup("v")
        let b = try await w.getBackup("v")
        let failed = b.status.conditions?.first { $0.type == .failed }
        #expect(b.status.phase == .failed)
        #expect(failed?.reason == "GetVolumeIDFailed")
        #expect(failed?.message == "PV pv-0 of PVC tikv-ebs-tikv-0: unable to handle CSI driver: pd.csi.storage.gke.io")
        #expect(b.status.timeCompleted != nil)
        #expect(w.writes.filter { $0.resource == "jobs.batch" && $0.verb == .create }.isEmpty, "no Job was created: \(w.writes)")
    }

    @Test("a cluster with no TiKV pods: Failed (GetTiKVPodsFailed) before the init Job pauses GC and PD scheduling")
    func noTiKVPods() async throws {
        let w = World()
        try await w.seedCluster()
        try await w.seedEBSCluster()
        _ = try await w.api.delete(.pods, namespace: "ns", name: "ebs-tikv-0")
        _ = try await w.apply(.backups, World.volumeBackup("v"))
        try await w.settleBackup("v")
        let b = try await w.getBackup("v")
        #expect(b.status.phase == .failed && b.status.timeCompleted != nil, "\(b.status)")
        #expect(b.status.conditions?.first { $0.type == .failed }?.reason == "GetTiKVPodsFailed")
        #expect(w.writes.filter { $0.resource == "jobs.batch" && $0.verb == .create }.isEmpty, "no init Job: \(w.writes)")
    }

    @Test("a finished Backup never keeps an init Job, and deleting a Backup mid-way deletes it")
    func leftovers() async throws {
        let w = try await started()
        try await w.podReports("v", .failed)
        try await w.settleBackup("v")
        #expect(w.job("backup-v-init") == nil)

        let w2 = try await started("y")
        #expect(w2.job("backup-y-init") != nil)
        _ = try await w2.api.delete(.backups, namespace: "ns", name: "y")
        try await w2.settleBackup("y")
        #expect(w2.job("backup-y-init") == nil)
    }
}
