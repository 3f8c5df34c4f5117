import KubeModel
import Testing

@testable import BRModel

@Suite("Status rules (reference 1.9, 6.5, 8.12)")
struct StatusRulesTests {
    let t1 = Time(unixSeconds: 1_000)
    let t2 = Time(unixSeconds: 2_000)
    let t3 = Time(unixSeconds: 3_000)

    @Test("a new condition is appended and becomes the phase; Restart never becomes the phase")
    func appendAndRestart() {
        var s = BackupStatus()
        let first = s.apply(BackupCondition(type: .scheduled), now: t1)
        #expect(first)
        #expect(s.phase == .scheduled)
        let restart = s.apply(BackupCondition(type: .restart), now: t2)
        #expect(restart)
        #expect(s.phase == .scheduled)
        #expect(s.conditions?.map(\.type) == [.scheduled, .restart])
    }

    @Test("re-asserting the current phase with the same fields changes nothing and keeps the time")
    func idempotent() {
        var s = BackupStatus()
        s.apply(BackupCondition(type: .running, reason: "r"), now: t1)
        let again = s.apply(BackupCondition(type: .running, reason: "r"), now: t2)
        #expect(!again)
        #expect(s.conditions?.first?.lastTransitionTime == t1)
        let changed = s.apply(BackupCondition(type: .running, reason: "other"), now: t3)
        #expect(changed)
        #expect(s.conditions?.first?.lastTransitionTime == t1, "same status keeps the old time")
    }

    @Test("returning to an earlier type overwrites its entry with the new time and keeps first-insertion order")
    func phaseChangeOverwrites() {
        var s = BackupStatus()
        s.apply(BackupCondition(type: .scheduled), now: t1)
        s.apply(BackupCondition(type: .failed, reason: "x"), now: t2)
        let back = s.apply(BackupCondition(type: .scheduled), now: t3)
        #expect(back)
        #expect(s.phase == .scheduled)
        #expect(s.conditions?.map(\.type) == [.scheduled, .failed])
        #expect(s.conditions?.first?.lastTransitionTime == t3)
        #expect(s.has(.failed))
    }

    @Test("restore conditions always set the phase, even when False")
    func restore() {
        var r = RestoreStatus()
        r.apply(RestoreCondition(type: .running), now: t1)
        let failed = r.apply(RestoreCondition(type: .failed, status: .false), now: t2)
        #expect(failed)
        #expect(r.phase == .failed)
        let repeated = r.apply(RestoreCondition(type: .failed, status: .false), now: t3)
        #expect(!repeated)
    }

    @Test("timeTaken", arguments: [(Int64(45), "45s"), (3600, "1h0m0s"), (3723, "1h2m3s"), (86400, "24h0m0s"), (0, "0s"), (240, "4m0s")])
    func timeTaken(_ seconds: Int64, _ text: String) {
        #expect(BRStatusMath.timeTaken(from: Time(unixSeconds: 100), to: Time(unixSeconds: 100 + seconds)) == text)
    }

    @Test("completion recomputes timeTaken (2020-12-25 vector)")
    func completion() {
        var s = BackupStatus()
        s.timeStarted = Time(rfc3339: "2020-12-25T21:46:59Z")
        s.complete(at: Time(rfc3339: "2020-12-25T21:50:59Z")!)
        #expect(s.timeTaken == "4m0s")
    }

    @Test("SI sizes as go-humanize prints them", arguments: [
        (Int64(0), "0 B"), (9, "9 B"), (10, "10 B"), (999, "999 B"), (1000, "1.0 kB"), (1024, "1.0 kB"), (5024, "5.0 kB"),
        (123_456, "124 kB"), (82_854_982, "83 MB"), (1_500_000_000, "1.5 GB"), (1_000_000_000_000, "1.0 TB"),
    ])
    func sizes(_ bytes: Int64, _ text: String) {
        #expect(BRStatusMath.readableSize(bytes) == text)
    }

    @Test("BR operations: newest first, unique by id, at most 10, empty ids ignored")
    func operations() {
        var s = BackupStatus()
        for i in 0..<11 { s.recordOperation(BROperation(operationID: "op\(i)", startedAt: nil, command: "backup", observedAt: t1)) }
        #expect(s.brOperations?.count == 10)
        #expect(s.brOperations?.first?.operationID == "op10")
        #expect(s.brOperations?.contains { $0.operationID == "op0" } == false)
        s.recordOperation(BROperation(operationID: "op5", startedAt: nil, command: "backup", observedAt: t2))
        #expect(s.brOperations?.first?.operationID == "op5")
        #expect(s.brOperations?.filter { $0.operationID == "op5" }.count == 1)
        let recorded = s.recordOperation(BROperation(operationID: "", startedAt: nil, command: nil, observedAt: nil))
        #expect(!recorded)
    }

    @Test("progress: a new step closes the previous one; a step only moves forward")
    func progress() {
        var s = BackupStatus()
        s.recordProgress(step: "Full Restore", percent: 40, now: t1)
        s.recordProgress(step: "Full Restore", percent: 30, now: t2)
        #expect(s.progresses?.first?.progress == 40)
        s.recordProgress(step: "Checksum", percent: 5, now: t3)
        #expect(s.progresses?.map(\.step) == ["Full Restore", "Checksum"])
        #expect(s.progresses?.first?.progress == 100)
        #expect(s.progresses?.first?.lastTransitionTime == t3)
    }

    @Test("a condition's message is bounded when applied, by the operator and by the job alike")
    func messagesAreBounded() {
        var s = BackupStatus()
        let long = "reason\n" + String(repeating: "x\n", count: 4000) + "the last error"
        s.apply(BackupCondition(type: .failed, reason: "BackupDataToRemoteFailed", message: long), now: Time(unixSeconds: 1))
        let message = s.conditions?.first?.message ?? ""
        #expect(message.utf8.count <= StatusText.conditionLimit && message.hasSuffix("the last error") && message.hasPrefix("reason"))
        var r = RestoreStatus()
        r.apply(RestoreCondition(type: .failed, message: long), now: Time(unixSeconds: 1))
        #expect((r.conditions?.first?.message ?? "").utf8.count <= StatusText.conditionLimit)
    }
}
