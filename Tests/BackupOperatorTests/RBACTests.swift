import BRModel
import BackupOperator
import ControllerKit
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

/// The ClusterRole in deploy/operator/rbac.yaml allows every call the operator makes: run the
/// controllers, informers and leader election through their paths and check each recorded call.
@Suite struct RBACTests {
    static func clusterRoleRules() throws -> RBACRules {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("deploy/operator/rbac.yaml").path
        return try RBACRules(file: path, kind: "ClusterRole")
    }

    @Test func theOperatorNeverNeedsMoreThanItsClusterRole() async throws {
        let rules = try Self.clusterRoleRules()
        let w = World(start: Date(timeIntervalSince1970: 1_704_067_200))
        try await w.seedCluster()
        w.api.resetCalls()

        // Informers and leader election, as the manager runs them.
        let setup = OperatorSetup(api: w.operatorAPI, options: OperatorSetup.Options(), metrics: MetricsRegistry())
        let informing = Task { await withTaskGroup(of: Void.self) { g in for i in setup.informers { g.addTask { await i.run() } } } }
        var lease = LeaderElector.Configuration(leaseName: "tidb-backup-operator", namespace: "ns", identity: "me")
        lease.retryPeriod = .milliseconds(50)
        let elector = LeaderElector(api: w.operatorAPI, configuration: lease)
        let leading = Task { try await elector.run { try await Task.sleep(for: .seconds(60)) } }

        // A backup's whole life: job, failure and retry, deletion with cleaning.
        _ = try await w.apply(.backups, World.brBackup("b"))
        try await w.settleBackup("b")
        try await w.finishJob("backup-b", failed: true)
        try await w.settleBackup("b")
        w.clock.advance(by: 301)
        try await w.settleBackup("b")
        try await w.podReports("b", .complete) { $0.backupPath = "s3://my-bucket/my-folder/" }
        _ = try await w.api.delete(.backups, namespace: "ns", name: "b")
        try await w.settleBackup("b")
        try await w.settleBackup("b")
        // An export (PVC), a restore, an import.
        _ = try await w.apply(.backups, """
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: e, namespace: ns}
            spec:
              from: {host: h, secretName: backup-tidb-secret}
              storageSize: 1Gi
              s3: {provider: aws, bucket: x, secretName: s3-secret}
            """)
        try await w.settleBackup("e")
        _ = try await w.apply(.restores, RestoreControllerTests.restoreYAML)
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "r1"))
        try await w.finishJob("restore-r1", failed: true)
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "r1"))
        // A Lightning import from remote storage, failed and recovered.
        try await LightningControllerTests.seedRclone(w)
        _ = try await w.apply(.restores, LightningControllerTests.remoteYAML)
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "imp"))
        try await w.finishJob("restore-imp", failed: true)
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "imp"))
        try await LightningControllerTests.requestRecovery(w, "resume")
        for _ in 0..<3 { _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "imp")) }
        // A volume-snapshot backup: TiKV pods, PVCs and PVs read; the metadata ConfigMap written and deleted.
        try await w.seedEBSCluster()
        _ = try await w.apply(.backups, World.volumeBackup("vs"))
        try await w.settleBackup("vs")
        for report: BackupConditionType in [.volumeBackupInitialized, .volumeBackupSnapshotsCreated, .volumeBackupComplete] {
            try await w.podReports("vs", report) { $0.backupPath = "s3://my-bucket/vs" }
            try await w.settleBackup("vs")
        }
        _ = try await w.api.delete(.backups, namespace: "ns", name: "vs")
        try await w.settleBackup("vs")
        // A volume-snapshot restore: PVs and claims created, TiKV started, TiKV pods restarted, recovery mode cleared.
        try await VolumeSnapshotRestoreControllerTests.runToCompletion(w)
        // A PiTR restore waiting for the TiKV configuration.
        try await PitrRestoreControllerTests.run(w)
        // A compaction that fails once and is retried.
        _ = try await w.apply(.compactBackups, CompactBackupControllerTests.compact("cp", extra: ["tikvImage: pingcap/tikv:v8.5.0"]))
        for _ in 0..<3 { _ = try await w.compact.reconcile(ObjectKey(namespace: "ns", name: "cp")) }
        try await w.finishJob("cp", failed: true)
        for _ in 0..<4 { _ = try await w.compact.reconcile(ObjectKey(namespace: "ns", name: "cp")) }
        // A schedule creating and retiring backups.
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("s", cron: "@every 1m", extra: "  maxBackups: 1"))
        for _ in 0..<3 {
            w.clock.advance(by: 61)
            _ = try await w.schedules("s")
            try await w.markAll(.complete)
        }
        _ = try await w.schedules("s")
        // A schedule that verifies its backups: Restores into a scratch cluster created, recorded, retired.
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("v", cron: "@every 1m", extra: "  verification: {target: {cluster: scratch}, keep: 1}"))
        for _ in 0..<3 {
            w.clock.advance(by: 61)
            _ = try await w.schedules("v")
            try await w.markAll(.complete)
            _ = try await w.schedules("v")
            for var r in try await w.api.list(Restore.self, namespace: "ns", labelSelector: "\(BRLabels.verificationSchedule)=v") where r.status.phase == nil {
                r.status.apply(RestoreCondition(type: .complete), now: Time(w.clock.now()))
                _ = try await w.api.updateStatus(r)
                if let verified = r.metadata.labels?[BRLabels.verifies] { _ = try await w.settleBackup(verified) }
            }
        }
        _ = try await w.schedules("v")
        #expect(try await w.api.list(Restore.self, namespace: "ns", labelSelector: "\(BRLabels.verificationSchedule)=v").count == 1)
        // ... and one whose scratch cluster is made from a template for the run, then deleted.
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("vt", cron: "@every 1m", extra: "  verification: {target: {cluster: tmp, template: {version: v8.5.0}}}"))
        w.clock.advance(by: 61)
        _ = try await w.schedules("vt")
        try await w.markAll(.complete)
        _ = try await w.schedules("vt")
        var tmp = try await w.api.get(TidbCluster.self, namespace: "ns", name: "tmp")
        tmp.status = ["conditions": [["type": "Ready", "status": "True"]]]
        _ = try await w.api.updateStatus(tmp)
        let verifying = try #require(try await w.api.list(Backup.self, namespace: "ns").first { $0.status.verification?.phase == .running && $0.status.verification?.target == "ns/tmp" })
        _ = try await w.settleBackup(verifying.name)
        var run = try await w.api.get(Restore.self, namespace: "ns", name: Verification.restoreName(for: verifying.name))
        run.status.apply(RestoreCondition(type: .complete), now: Time(w.clock.now()))
        _ = try await w.api.updateStatus(run)
        _ = try await w.settleBackup(verifying.name)
        #expect(try await w.api.getIfPresent(TidbCluster.self, namespace: "ns", name: "tmp") == nil)

        // Wait (bounded) until the informers have watched and the elector holds the lease.
        for _ in 0..<900 {
            let seen = Set(w.operatorAPI.calls.map { "\($0.verb.rawValue) \($0.resource)" })
            if seen.contains("watch jobs.batch") && seen.contains("watch backupschedules.pingcap.com") && seen.contains("watch compactbackups.pingcap.com")
                && seen.contains("create leases.coordination.k8s.io") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        leading.cancel()
        _ = await leading.result
        informing.cancel()
        await informing.value

        let calls = w.operatorAPI.calls
        #expect(calls.count > 50)
        let verbs = Set(calls.map { "\($0.verb.rawValue) \($0.resource)\($0.subresource.map { "/\($0)" } ?? "")" })
        for needed in ["watch jobs.batch", "create leases.coordination.k8s.io", "update backups.pingcap.com/status", "delete backups.pingcap.com",
                       "create persistentvolumeclaims", "get secrets", "create events", "patch restores.pingcap.com", "delete jobs.batch",
                       "list pods", "get persistentvolumeclaims", "get persistentvolumes", "create configmaps", "delete configmaps",
                       "create persistentvolumes", "update tidbclusters.pingcap.com", "delete pods", "update configmaps", "list configmaps",
                       "update compactbackups.pingcap.com/status", "list compactbackups.pingcap.com", "watch compactbackups.pingcap.com",
                       "create restores.pingcap.com", "delete restores.pingcap.com", "create tidbclusters.pingcap.com", "delete tidbclusters.pingcap.com"] {
            #expect(verbs.contains(needed), "the scenario exercised \(needed)")
        }
        let denied = rules.refused(calls)
        #expect(denied.isEmpty, "refused by deploy/operator/rbac.yaml: \(denied)")
    }
}
