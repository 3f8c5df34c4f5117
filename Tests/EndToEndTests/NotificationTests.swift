import BRModel
import Foundation
import KubeTesting
import KubeAPI
import KubeClient
import KubeModel
import Testing
import TestServers

@Suite("End to end: webhook notifications from the standalone operator", .serialized)
struct NotificationTests {
    func received(_ base: String) async throws -> [JSONValue] {
        let (_, out) = try await TestServers.run(["curl", "-s", base + "/received"])
        return (try? JSONParser.parse(out))?.arrayValue ?? []
    }

    @Test("a failing schedule: backup.failed to the global URL and the schedule's own, signed, retried after 500s; schedule.late; fixed: schedule.recovered")
    func failingSchedule() async throws {
        let receiver = try await TestServers.offPool { try TestServers.webhookReceiver(failFirst: 2) }
        let op0 = NSTemporaryDirectory() + "notify-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: op0, withIntermediateDirectories: true)
        let keyFile = op0 + "/key"
        try "k3y-for-signing".write(toFile: keyFile, atomically: true, encoding: .utf8)
        let op = try await Operator(extraArguments: ["--notify-webhook", receiver + "/hook", "--notify-webhook-secret-file", keyFile])
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(LogBackupTests.etcdCluster(pd: "http://127.0.0.1:1"))
        var yaml = localSchedule("noisy", root: root, spec: ["maxBackups: 3"], template: ["env: [{name: BR_STANDIN_FAIL, value: \"1\"}]"])
        yaml = yaml.replacingOccurrences(of: "metadata: {name: noisy, namespace: default}",
                                         with: "metadata: {name: noisy, namespace: default, annotations: {tidb-backup-operator.pingcap.com/notify-webhook: \"\(receiver)/schedule-hook\"}}")
        try await op.apply(yaml)

        func wait(_ what: String, timeout: Double = 60, _ check: ([JSONValue]) -> Bool) async throws -> [JSONValue] {
            var got: [JSONValue] = []
            if await eventually(timeout, {
                got = (try? await received(receiver)) ?? got
                return check(got)
            }) { return got }
            throw Operator.Failure("\(what) not received; got \(got); log: \(op.tail())")
        }
        func of(_ type: String, _ path: String) -> ([JSONValue]) -> Bool {
            { $0.contains { $0["path"]?.stringValue == path && $0.value(at: ["body", "type"])?.stringValue == type } }
        }
        var got = try await wait("backup.failed on both URLs") { of("backup.failed", "/hook")($0) && of("backup.failed", "/schedule-hook")($0) }
        let failed = try #require(got.first { $0["path"] == "/hook" && $0.value(at: ["body", "type"]) == "backup.failed" })
        #expect(failed.value(at: ["body", "schedule"]) == "noisy" && failed.value(at: ["body", "cluster"]) == "basic", "\(failed)")
        #expect(failed.value(at: ["body", "phase"]) == "Failed" && !(failed.value(at: ["body", "reason"])?.stringValue ?? "").isEmpty, "\(failed)")
        // Signed with the key: HMAC-SHA256 of the exact body.
        let raw = failed["raw"]?.stringValue ?? ""
        let (_, mac) = try await TestServers.run(["python3", "-c", "import hmac, hashlib, sys; print('sha256=' + hmac.new(b'k3y-for-signing', sys.argv[1].encode(), hashlib.sha256).hexdigest())", raw])
        #expect(failed["signature"]?.stringValue == mac.trimmingCharacters(in: .whitespacesAndNewlines), "\(failed)")
        // The first two deliveries were answered 500 and tried again.
        let (_, attempts) = try await TestServers.run(["curl", "-s", receiver + "/attempts"])
        #expect((try JSONParser.parse(attempts))["attempts"]?.intValue ?? 0 >= Int64(got.count + 2), "\(attempts) for \(got.count) kept")

        got = try await wait("schedule.late", timeout: 60, of("schedule.late", "/hook"))
        let schedule = try await op.api.get(BackupSchedule.self, namespace: "default", name: "noisy")
        #expect(schedule.status.conditions?.contains { $0.type == "Late" && $0.status == .true } == true, "\(schedule.status)")

        // Fixed: the next backup completes and the schedule recovers.
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "noisy", patch: .merge(["spec": ["backupTemplate": ["env": []]]]))
        got = try await wait("schedule.recovered", timeout: 60, of("schedule.recovered", "/schedule-hook"))
        #expect(!got.contains { ($0["raw"]?.stringValue ?? "").contains("k3y-for-signing") }, "the key is never in a body")
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "noisy", patch: .merge(["spec": ["pause": true]]))
    }
}
