import BRModel
import BRObjects
import BackupManager
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

/// The flow of a Backup's Job is decided once, by the operator when it builds the Job (`--mode`); the
/// job binary runs it and does not decide again from the spec, which may have been edited since.
@Suite("tidb-backup-manager backup: the Job's mode against the spec")
struct JobModeTests {
    func backup(mode: String) async throws -> InMemoryKubeAPI {
        let api = InMemoryKubeAPI()
        _ = try await api.create(.backups, namespace: "ns", object: try KubeYAML.documents("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: b, namespace: ns}
            spec:
              backupMode: "\(mode)"
              br: {cluster: basic}
              local: {prefix: p, volume: {name: v, hostPath: {path: /tmp}}, volumeMount: {name: v, mountPath: /tmp}}
            """)[0].value)
        return api
    }

    @Test("a Job built for a snapshot whose Backup now says log fails SpecChangedSinceJob, naming both modes, and runs nothing")
    func specEditedSinceTheJob() async throws {
        let api = try await backup(mode: "log")
        var options = ManagerOptions(namespace: "ns", name: "b")
        options.mode = "snapshot"
        let manager = Manager(api: api, environment: [:], log: { _ in })
        await #expect(throws: (any Error).self) { try await manager.backup(options) }
        let b = try await api.get(Backup.self, namespace: "ns", name: "b")
        let failed = try #require(b.status.conditions?.first { $0.type == .failed })
        #expect(failed.reason == "SpecChangedSinceJob")
        #expect(failed.message?.contains("built for backupMode snapshot, but spec.backupMode is now log") == true, "\(failed)")
    }

    @Test("an unknown --mode is NotSupported")
    func unknownMode() async throws {
        let api = try await backup(mode: "")
        var options = ManagerOptions(namespace: "ns", name: "b")
        options.mode = "hologram"
        let manager = Manager(api: api, environment: [:], log: { _ in })
        await #expect(throws: (any Error).self) { try await manager.backup(options) }
        let b = try await api.get(Backup.self, namespace: "ns", name: "b")
        #expect(b.status.conditions?.first { $0.type == .failed }?.reason == "NotSupported")
    }
}
