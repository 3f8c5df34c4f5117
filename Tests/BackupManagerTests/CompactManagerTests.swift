import BRModel
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

@testable import BackupManager

/// The job binary's side of a CompactBackup, with the BR and tikv-ctl stand-ins and an in-memory API.
@Suite("tidb-backup-manager compact: base64ify, tikv-ctl's JSON log, the status it writes", .serialized)
struct CompactManagerTests {
    static let tools = VolumeSnapshotManagerTests.repository.appendingPathComponent("Tests/Fixtures/tools").path

    struct Setup {
        let api: InMemoryKubeAPI
        let recorded: RecordingKubeAPI
        let manager: Manager
        let root: String
        let logs: VolumeSnapshotManagerTests.LogLines
    }

    /// Log files at TSOs 100, 200 and 900 under `<root>/logs`, and CompactBackup `c` of 50..300.
    func setup(_ env: [String: String] = [:], until: String = "300") async throws -> Setup {
        let root = NSTemporaryDirectory() + "compact-manager-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/logs/v1/20240301", withIntermediateDirectories: true)
        for (ts, data) in [("100", "first"), ("200", "second!"), ("900", "later")] {
            try Data(data.utf8).write(to: URL(fileURLWithPath: "\(root)/logs/v1/20240301/\(ts).log"))
        }
        let api = InMemoryKubeAPI()
        _ = try await api.create(.compactBackups, namespace: "ns", object: try KubeYAML.documents("""
            apiVersion: pingcap.com/v1alpha1
            kind: CompactBackup
            metadata: {name: c, namespace: ns}
            spec:
              startTs: "50"
              endTs: "\(until)"
              concurrency: 2
              local:
                prefix: logs
                volume: {name: b, hostPath: {path: \(root)}}
                volumeMount: {name: b, mountPath: \(root)}
            """)[0].value)
        let recorded = RecordingKubeAPI(api)
        let logs = VolumeSnapshotManagerTests.LogLines()
        var environment = ProcessInfo.processInfo.environment
        environment["TIDB_BACKUP_MANAGER_BR"] = Self.tools + "/br"
        environment["TIDB_BACKUP_MANAGER_TIKV_CTL"] = Self.tools + "/tikv-ctl"
        for (k, v) in env { environment[k] = v }
        var manager = Manager(api: recorded, environment: environment, log: { logs.add($0) })
        manager.now = Date.init
        return Setup(api: api, recorded: recorded, manager: manager, root: root, logs: logs)
    }

    func compact(_ s: Setup) async throws -> CompactBackup { try await s.api.get(CompactBackup.self, namespace: "ns", name: "c") }

    @Test("a compaction: Running, then Complete with the progress of the last \"Finishing compaction.\" and endTs = the range's end; the storage's base64 is in no log line")
    func completes() async throws {
        let s = try await setup()
        try await s.manager.compact(ManagerOptions(namespace: "ns", name: "c"))
        let c = try await compact(s)
        #expect(c.status.state == "Complete", "\(c.status)")
        #expect(c.status.endTs == "300")
        #expect(c.status.progress == "[READ_META(2/2),COMPACT_WORK(12/12)]")
        #expect(c.status.message == nil)
        let out = try FileManager.default.contentsOfDirectory(atPath: s.root + "/logs/compaction-out/50-300").sorted()
        #expect(out == ["1.sst", "2.sst", "meta.json"])
        let encoded = Data(#"{"storage": "local://\#(s.root)/logs"}"#.utf8).base64EncodedString()
        #expect(!s.logs.text.contains(encoded), "the storage's base64 was logged")
        #expect(s.logs.text.contains("--storage-base64 <redacted>"), "\(s.logs.text)")
        let events = s.api.objects(.events, namespace: "ns").compactMap { $0["reason"]?.stringValue }
        #expect(events == ["Started", "Finished"])
        let rules = try RBACRules(file: VolumeSnapshotManagerTests.repository.appendingPathComponent("deploy/backup-rbac.yaml").path, kind: "Role")
        #expect(rules.refused(s.recorded.calls).isEmpty, "refused by deploy/backup-rbac.yaml: \(rules.refused(s.recorded.calls))")
    }

    @Test("\"Compaction aborted.\": the error in status.message and a Warning Event, the run fails; the controller records the attempt")
    func aborted() async throws {
        let s = try await setup(["TIKV_CTL_STANDIN_ABORT_TIMES": "1"])
        await #expect(throws: ManagerError.self) { try await s.manager.compact(ManagerOptions(namespace: "ns", name: "c")) }
        let c = try await compact(s)
        #expect(c.status.state == "Running")
        #expect(c.status.message == "compaction aborted: injected failure of run 1: failed to read metadata", "\(c.status)")
        #expect(s.api.objects(.events, namespace: "ns").contains { $0["type"] == "Warning" && $0["reason"] == "Failed" })
    }

    @Test("a range whose end is before its start is refused before any tool runs, naming the field")
    func badRange() async throws {
        let s = try await setup(until: "10")
        await #expect(throws: ManagerError.self) { try await s.manager.compact(ManagerOptions(namespace: "ns", name: "c")) }
        let c = try await compact(s)
        #expect(c.status.message == "spec.endTs: end-ts 10 is before start-ts 50", "\(c.status)")
        #expect(!s.logs.text.contains("running:"))
    }

    @Test("tikv-ctl's log lines: progress, spawned inputs, aborts; other lines ignored")
    func logLines() {
        #expect(CompactLogLine(#"{"message":"Finishing compaction.","meta_completed":3,"meta_total":9,"bytes_to_compact":100,"bytes_compacted":40}"#)
                == .progress(CompactProgress(metaCompleted: 3, metaTotal: 9, bytesToCompact: 100, bytesCompacted: 40)))
        #expect(CompactLogLine(#"{"Message":"Spawning compaction.","input_max_ts":449568071476658177}"#) == .spawned(maxTs: 449568071476658177))
        #expect(CompactLogLine(#"{"message":"Compaction aborted.","err":"io error"}"#) == .aborted("io error"))
        #expect(CompactLogLine(#"{"message":"other"}"#) == nil)
        #expect(CompactLogLine("[2024/03/01 00:00:00] [INFO] plain text") == nil)
    }
}
