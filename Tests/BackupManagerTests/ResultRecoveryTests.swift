import BRModel
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

@testable import BackupManager

/// The job side of `Backup.resultJob`: a snapshot backup whose Job ended without writing its result.
@Suite("tidb-backup-manager backup --result-only: the result read back from backupmeta")
struct ResultRecoveryTests {
    func setup(backupmeta: [UInt8]?) async throws -> (InMemoryKubeAPI, Manager, String) {
        let root = NSTemporaryDirectory() + "result-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/bk", withIntermediateDirectories: true)
        if let backupmeta { try Data(backupmeta).write(to: URL(fileURLWithPath: root + "/bk/backupmeta")) }
        let api = InMemoryKubeAPI()
        _ = try await api.create(.backups, namespace: "ns", object: try KubeYAML.documents("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: bk, namespace: ns}
            spec:
              br: {cluster: basic}
              local:
                prefix: bk
                volume: {name: b, hostPath: {path: \(root)}}
                volumeMount: {name: b, mountPath: \(root)}
            """)[0].value)
        var manager = Manager(api: api, environment: [:], log: { _ in })
        manager.metaRetryDelays = []
        return (api, manager, root)
    }

    static var options: ManagerOptions {
        var o = ManagerOptions(namespace: "ns", name: "bk")
        o.mode = "snapshot"
        o.resultOnly = true
        return o
    }

    @Test("backupmeta there: Complete with its commit TS, size and path; no tool runs")
    func found() async throws {
        var meta = ProtoWriter()
        meta.varint(5, 450_000_000_000_000_000)
        meta.varint(6, 450_000_000_000_000_123)
        meta.varint(25, 4096)
        let (api, manager, root) = try await setup(backupmeta: meta.bytes)
        try await manager.backup(Self.options)
        let b = try await api.get(Backup.self, namespace: "ns", name: "bk")
        #expect(b.status.phase == .complete, "\(b.status)")
        #expect(b.status.commitTs == "450000000000000123" && b.status.backupSize == 4096 && b.status.timeCompleted != nil)
        #expect(b.status.backupPath == "local://\(root)/bk")
    }

    @Test("a backupmeta that does not parse fails at once: it is not read again as after a network error")
    func unparsableIsNotRetried() async throws {
        var (api, manager, _) = try await setup(backupmeta: [0xff, 0xff, 0xff, 0xff, 0x0f])
        manager.metaRetryDelays = [.seconds(30)]
        let began = ContinuousClock.now
        await #expect(throws: (any Error).self) { try await manager.backup(Self.options) }
        #expect(ContinuousClock.now - began < .seconds(20), "the unreadable backupmeta was read again after the retry delay")
        let b = try await api.get(Backup.self, namespace: "ns", name: "bk")
        #expect(b.status.phase == .failed, "\(b.status)")
    }

    @Test("no backupmeta: Failed, saying the result never arrived and where it was looked for")
    func missing() async throws {
        let (api, manager, root) = try await setup(backupmeta: nil)
        await #expect(throws: ManagerError.self) { try await manager.backup(Self.options) }
        let b = try await api.get(Backup.self, namespace: "ns", name: "bk")
        let failed = b.status.conditions?.first { $0.type == .failed }
        #expect(b.status.phase == .failed && failed?.reason == "GetBackupMetadataFailed")
        #expect(failed?.message?.contains("completed without writing its result") == true && failed?.message?.contains("local://\(root)/bk") == true,
                "\(String(describing: failed))")
    }
}
