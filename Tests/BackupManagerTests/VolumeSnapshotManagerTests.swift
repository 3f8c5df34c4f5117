import BRModel
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

@testable import BackupManager

/// The job binary's side of a volume-snapshot backup, with the BR stand-in and an in-memory API; every
/// call it makes is one deploy/backup-rbac.yaml allows.
@Suite("tidb-backup-manager: the init and backup Jobs of a volume-snapshot backup", .serialized)
struct VolumeSnapshotManagerTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let br = repository.appendingPathComponent("Tests/Fixtures/tools/br").path

    struct Setup {
        let api: InMemoryKubeAPI
        let recorded: RecordingKubeAPI
        let manager: Manager
        let directory: String
        let logs: LogLines
    }

    final class LogLines: @unchecked Sendable {
        let lock = NSLock()
        var lines: [String] = []
        func add(_ s: String) { lock.withLock { lines.append(s) } }
        var text: String { lock.withLock { lines.joined(separator: "\n") } }
    }

    func setup(_ env: [String: String] = [:]) async throws -> Setup {
        let directory = NSTemporaryDirectory() + "vs-manager-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/backups", withIntermediateDirectories: true)
        let api = InMemoryKubeAPI()
        let backup = try KubeYAML.documents("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: v, namespace: ns}
            spec:
              backupMode: volume-snapshot
              br: {cluster: ebs}
              local:
                prefix: v
                volume: {name: b, hostPath: {path: \(directory)/backups}}
                volumeMount: {name: b, mountPath: \(directory)/backups}
            """)[0].value
        _ = try await api.create(.backups, namespace: "ns", object: backup)
        let recorded = RecordingKubeAPI(api)
        let logs = LogLines()
        var environment = ProcessInfo.processInfo.environment
        environment["TIDB_BACKUP_MANAGER_BR"] = Self.br
        environment["BR_STANDIN_GC_LOG"] = directory + "/gc.log"
        for (k, v) in env { environment[k] = v }
        let manager = Manager(api: recorded, environment: environment, log: { logs.add($0) })
        return Setup(api: api, recorded: recorded, manager: manager, directory: directory, logs: logs)
    }

    func options(initialize: Bool) -> ManagerOptions {
        var o = ManagerOptions(namespace: "ns", name: "v")
        o.mode = "volume-snapshot"
        o.initialize = initialize
        o.pd = "http://127.0.0.1:2379"
        return o
    }

    func backup(_ s: Setup) async throws -> Backup { try await s.api.get(Backup.self, namespace: "ns", name: "v") }

    func checkRBAC(_ s: Setup) throws {
        let rules = try RBACRules(file: Self.repository.appendingPathComponent("deploy/backup-rbac.yaml").path, kind: "Role")
        #expect(!s.recorded.calls.isEmpty)
        #expect(rules.refused(s.recorded.calls).isEmpty, "refused by deploy/backup-rbac.yaml: \(rules.refused(s.recorded.calls))")
    }

    @Test("init: VolumeBackupInitialized once BR says GC and the schedulers are paused; BR ending by itself is logged, not hidden")
    func initialize() async throws {
        let s = try await setup(["BR_STANDIN_INIT_EXIT_AFTER": "1"])
        try await s.manager.backup(options(initialize: true))
        let b = try await backup(s)
        #expect(b.status.has(.volumeBackupInitialized), "\(b.status)")
        #expect(s.logs.text.contains("operator pause-gc-and-schedulers --pd=http://127.0.0.1:2379"))
        #expect(s.logs.text.contains("exited by itself"))
        try checkRBAC(s)
    }

    @Test("init: BR failing before the pause → VolumeBackupInitializeFailed with BR's error")
    func initializeFails() async throws {
        let s = try await setup(["BR_STANDIN_INIT_FAIL": "1"])
        await #expect(throws: ManagerError.self) { try await s.manager.backup(options(initialize: true)) }
        let c = try await backup(s).status.conditions?.first { $0.type == .volumeBackupInitializeFailed }
        #expect(c?.reason == "InitializeVolumeBackupFailed")
        #expect(c?.message?.contains("cannot connect to PD") == true, "\(String(describing: c))")
        try checkRBAC(s)
    }

    @Test("backup: without the operator's metadata → VolumeBackupFailed GetClusterMetaFailed; an existing clustermeta → FileExistedInExternalStorage, kept")
    func executeRefusals() async throws {
        let s = try await setup()
        await #expect(throws: (any Error).self) { try await s.manager.backup(options(initialize: false)) }
        var c = try await backup(s).status.conditions?.first { $0.type == .volumeBackupFailed }
        #expect(c?.reason == "GetClusterMetaFailed", "\(String(describing: c))")

        let t = try await setup()
        let meta = VolumeSnapshotDocument(tikv: .init(replicas: 1, stores: [.init(storeID: 1, volumes: [.init(volumeID: "vol-1", type: "storage.data-dir", mountPath: "/var/lib/tikv")])]),
                                          pd: .init(replicas: 1), tidb: .init(replicas: 1), kubernetes: nil)
        _ = try await t.api.create(.configMaps, namespace: "ns", object: [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "backup-v-clustermeta", "namespace": "ns"],
            "data": ["clustermeta.json": .string(meta.encoded().serialized())]])
        try FileManager.default.createDirectory(atPath: t.directory + "/backups/v", withIntermediateDirectories: true)
        try Data("old".utf8).write(to: URL(fileURLWithPath: t.directory + "/backups/v/clustermeta"))
        await #expect(throws: (any Error).self) { try await t.manager.backup(options(initialize: false)) }
        c = try await backup(t).status.conditions?.first { $0.type == .volumeBackupFailed }
        #expect(c?.reason == "FileExistedInExternalStorage", "\(String(describing: c))")
        #expect(try String(contentsOfFile: t.directory + "/backups/v/clustermeta", encoding: .utf8) == "old")
        try checkRBAC(t)
    }

    @Test("dry run: the argv of both Jobs")
    func plan() async throws {
        let s = try await setup()
        var o = options(initialize: true)
        o.dryRun = true
        try await s.manager.backup(o)
        o.initialize = false
        try await s.manager.backup(o)
        let text = s.logs.text
        #expect(text.contains("  operator\n  pause-gc-and-schedulers\n  --pd=http://127.0.0.1:2379"), "\(text)")
        #expect(text.contains("  backup\n  full\n  --type=aws-ebs\n"))
        #expect(text.contains("  --operator-paused-gc-and-scheduler=true\n"))
        #expect(text.contains("  --storage=local://\(s.directory)/backups/v"))
    }

    // MARK: restore

    /// A Restore `vr` of the local backup `v` into TidbCluster `target` (one TiKV), with BR's backupmeta in place.
    func restoreSetup(targetReplicas: Int, env: [String: String] = [:]) async throws -> Setup {
        let s = try await setup(env)
        let meta = VolumeSnapshotDocument(tikv: .init(replicas: 1, stores: [.init(storeID: 1, volumes: [
            .init(volumeID: "vol-1", type: "storage.data-dir", mountPath: "/var/lib/tikv", snapshotID: "snap-1")])]),
                                          pd: .init(replicas: 1), tidb: .init(replicas: 1),
                                          kubernetes: .init(pvcs: [], pvs: [], crdTidbCluster: ["metadata": ["name": "ebs", "namespace": "ns"],
                                                                                               "spec": ["tikv": ["replicas": 1]]]))
        try FileManager.default.createDirectory(atPath: s.directory + "/backups/v", withIntermediateDirectories: true)
        try meta.encoded().data().write(to: URL(fileURLWithPath: s.directory + "/backups/v/backupmeta"))
        _ = try await s.api.create(.tidbClusters, namespace: "ns", object: [
            "apiVersion": "pingcap.com/v1alpha1", "kind": "TidbCluster", "metadata": ["name": "target", "namespace": "ns"],
            "spec": ["recoveryMode": true, "tikv": ["replicas": .int(Int64(targetReplicas))]]])
        _ = try await s.api.create(.restores, namespace: "ns", object: try KubeYAML.documents("""
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: vr, namespace: ns}
            spec:
              restoreMode: volume-snapshot
              br: {cluster: target}
              local:
                prefix: v
                volume: {name: b, hostPath: {path: \(s.directory)/backups}}
                volumeMount: {name: b, mountPath: \(s.directory)/backups}
            """)[0].value)
        return s
    }

    func restoreOptions(prepare: Bool) -> ManagerOptions {
        var o = ManagerOptions(namespace: "ns", name: "vr")
        o.mode = "volume-snapshot"
        o.prepare = prepare
        o.pd = "http://127.0.0.1:2379"
        return o
    }

    @Test("restore prepare: a backup of another shape is refused before BR runs (Invalid, TiDB Operator's message)")
    func restoreMismatch() async throws {
        let s = try await restoreSetup(targetReplicas: 3)
        await #expect(throws: ManagerError.self) { try await s.manager.restore(restoreOptions(prepare: true)) }
        let r = try await s.api.get(Restore.self, namespace: "ns", name: "vr")
        #expect(r.status.phase == .invalid)
        #expect(r.status.conditions?.first?.message == "tikv replica mismatch")
        #expect(!s.logs.text.contains("running:"), "BR did not run")
        try checkRBAC(s)
    }

    @Test("restore prepare: BR failing still hands over what it wrote (restoremeta and the ConfigMap), so the cleaning finds its volumes")
    func restorePrepareFails() async throws {
        let s = try await restoreSetup(targetReplicas: 1, env: ["BR_STANDIN_EBS_RESTORE_FAIL_AFTER": "0", "AWS_REGION": "us-east-1"])
        await #expect(throws: ManagerError.self) { try await s.manager.restore(restoreOptions(prepare: true)) }
        let r = try await s.api.get(Restore.self, namespace: "ns", name: "vr")
        #expect(r.status.conditions?.first { $0.type == .failed }?.reason == "RestoreVolumeFailed", "\(r.status)")
        #expect(FileManager.default.fileExists(atPath: s.directory + "/backups/v/restoremeta"))
        let configMap = try await s.api.get(.configMaps, namespace: "ns", name: "restore-vr-restoremeta")
        #expect(configMap.value(at: ["data", "restoremeta.json"])?.stringValue?.contains("snap-1") == true)
        // TiDB Operator's order: the EBS flags after the PD, storage and user options.
        #expect(s.logs.text.contains("restore full --pd=") && s.logs.text.contains(" --type=aws-ebs --prepare --output-file="), "\(s.logs.text)")
        try checkRBAC(s)
    }
}
