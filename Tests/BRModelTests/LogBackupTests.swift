import BRModel
import Foundation
import KubeModel
import Testing

@Suite("Log backup: the kernel helpers (8.16) and the status translation of 3.8")
struct LogBackupTests {
    @Test("checkpoint decoding: 8 bytes big-endian round-trip; any other length is 0")
    func checkpoints() {
        for v: UInt64 in [0, 123456789, .max] {
            #expect(LogBackupKernel.checkpoint(LogBackupKernel.encodeCheckpoint(v)) == v)
        }
        #expect(LogBackupKernel.checkpoint([]) == 0)
        #expect(LogBackupKernel.checkpoint([1, 2, 3, 4, 5, 6, 7]) == 0)
        #expect(LogBackupKernel.checkpoint([1, 2, 3, 4, 5, 6, 7, 8, 9]) == 0)
        #expect(LogBackupKernel.checkpoint(Array("invalid".utf8)) == 0)
        #expect(LogBackupKernel.checkpoint(nil) == 0)
    }

    @Test("kernel state and consistency with the sub-command")
    func state() {
        #expect(LogBackupKernel.state(paused: true) == .paused)
        #expect(LogBackupKernel.state(paused: false) == .running)
        #expect(LogBackupKernel.consistent(.running, with: .start) && LogBackupKernel.consistent(.running, with: .resume))
        #expect(!LogBackupKernel.consistent(.running, with: .pause))
        #expect(LogBackupKernel.consistent(.paused, with: .pause) && !LogBackupKernel.consistent(.paused, with: .start))
    }

    static func pause(_ object: [String: Any]) -> [UInt8] { Array(try! JSONSerialization.data(withJSONObject: object)) }
    static func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

    @Test("pause reasons of 8.16")
    func pauseReasons() {
        #expect(LogBackupKernel.pauseReason(nil) == "manual")
        #expect(LogBackupKernel.pauseReason([]) == "manual")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "MANUAL"])) == "manual")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "ERROR", "payload_type": "text/plain", "payload": Self.b64("Storage connection failed")])) == "Storage connection failed")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "ERROR", "payload_type": "text/plain; charset=utf-8", "payload": Self.b64("text")])) == "text")
        let error = #"{"happen_at": 1, "error_code": "E", "error_message": "Failed to backup: disk full", "store_id": 5}"#
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "ERROR", "payload_type": "application/x-protobuf; messagetype=brpb.StreamBackupError",
                                                        "payload": Self.b64(error)])) == "Paused by error(store 5): Failed to backup: disk full")
        #expect(LogBackupKernel.pauseReason(Array("{not json".utf8)) == "unknown")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "ERROR", "payload_type": "image/png", "payload": Self.b64("x")])) == "error")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "ERROR", "payload_type": "application/x-protobuf", "payload": Self.b64(error)])) == "error")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "ERROR", "payload_type": "application/x-protobuf; messagetype=other.Type", "payload": Self.b64(error)])) == "error")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "ERROR", "payload_type": "application/x-protobuf; messagetype=brpb.StreamBackupError", "payload": Self.b64("\u{1}\u{2}")])) == "error")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "ERROR", "payload_type": "not a mime", "payload": Self.b64("x")])) == "error")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "ERROR", "payload_type": "text/plain", "payload": ""])) == "")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "SOMETHING", "payload_type": "text/plain", "payload": Self.b64("why")])) == "why")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "manual"])) == "manual")
    }

    @Test("BR's pause records: `br log pause` (REGULAR_OPERATION, with or without a message) is a pause by hand; TiKV's protobuf StreamBackupError is an error with its store")
    func pauseRecordsAsBRAndTiKVWriteThem() {
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "REGULAR_OPERATION", "operation_hostname": "h", "operation_pid": 1,
                                                        "operation_time": "2026-12-06T08:00:00Z", "payload_type": "", "payload": NSNull()])) == "manual")
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "REGULAR_OPERATION", "payload_type": "text/plain;charset=UTF-8",
                                                        "payload": Self.b64("maintenance")])) == "manual")
        let error = LogBackupKernel.StreamBackupError(happenAt: 1_700_000_000_000, code: "KV:LogBackup:Io", message: "disk full", storeID: 4)
        #expect(LogBackupKernel.StreamBackupError(payload: error.protobuf) == error)
        #expect(LogBackupKernel.pauseReason(Self.pause(["severity": "ERROR", "payload_type": "application/x-protobuf;messagetype=brpb.StreamBackupError",
                                                        "payload": Data(error.protobuf).base64EncodedString()])) == "Paused by error(store 4): disk full")
    }

    @Test("the task's checkpoint: the global one; else the slowest store's under the task's own prefix; else the start TS of the protobuf task info")
    func taskCheckpoint() throws {
        let info = LogBackupKernel.TaskInfo(name: "lb", startTs: 450_000_000_000_000_000, tableFilter: ["*.*"])
        #expect(try LogBackupKernel.TaskInfo(protobuf: info.protobuf) == info)
        #expect(LogBackupKernel.globalCheckpointKey("lb") == "/tidb/br-stream/checkpoint/lb/central_global")
        let enc = LogBackupKernel.encodeCheckpoint
        #expect(LogBackupKernel.taskCheckpoint(global: enc(9), underPrefix: [("/tidb/br-stream/checkpoint/lb/store/1", enc(3))], info: info) == 9)
        #expect(LogBackupKernel.taskCheckpoint(global: nil, underPrefix: [("/tidb/br-stream/checkpoint/lb/store/1", enc(7)),
                                                                           ("/tidb/br-stream/checkpoint/lb/store/2", enc(5))], info: info) == 5)
        #expect(LogBackupKernel.taskCheckpoint(global: nil, underPrefix: [], info: info) == info.startTs)
        #expect(LogBackupKernel.taskCheckpoint(global: nil, underPrefix: [], info: nil) == 0)
        #expect(throws: ProtoError.self) { try LogBackupKernel.TaskInfo(protobuf: [0x12, 0x05, 0x01]) }
    }

    @Test("the translation of 3.8: start runs the whole status up to Running and keeps it; stop, pause, resume only on Complete; truncate only its fields")
    func translation() {
        var s = BackupStatus()
        let t0 = Time(unixSeconds: 1_700_000_000), t1 = Time(unixSeconds: 1_700_000_100)
        s.applyLog(.start, BackupCondition(type: .scheduled), now: t0)
        #expect(s.phase == .scheduled)
        s.applyLog(.start, BackupCondition(type: .running), fields: .init(backupPath: "s3://b/log"), now: t0)
        #expect(s.phase == .running && s.backupPath == "s3://b/log")
        s.applyLog(.start, BackupCondition(type: .complete), fields: .init(timeStarted: t0, timeCompleted: t1, commitTs: "42"), now: t1)
        #expect(s.phase == .running, "a started log backup stays Running")
        #expect(s.commitTs == "42" && s.timeStarted == t0 && s.timeCompleted == nil)
        #expect(s.logSubCommandStatuses?["log-start"]?.phase == .complete)
        #expect(s.logSubCommandStatuses?["log-start"]?.timeCompleted == t1)

        s.applyLog(.pause, BackupCondition(type: .running), now: t1)
        #expect(s.phase == .running && s.logSubCommandStatuses?["log-pause"]?.phase == .running)
        s.applyLog(.pause, BackupCondition(type: .complete), fields: .init(timeStarted: t1, timeCompleted: t1), now: t1)
        #expect(s.phase == .paused && s.timeStarted == t0)
        s.applyLog(.resume, BackupCondition(type: .complete), now: t1)
        #expect(s.phase == .running)
        #expect(s.logSubCommandStatuses?["log-pause"]?.phase == .repeatable, "a later pause can run again")

        s.applyLog(.truncate, BackupCondition(type: .running), fields: .init(logTruncatingUntil: "100"), now: t1)
        #expect(s.phase == .running && s.logSubCommandStatuses?["log-truncate"]?.logTruncatingUntil == "100")
        #expect(s.logSuccessTruncateUntil == nil)
        s.applyLog(.truncate, BackupCondition(type: .complete), fields: .init(timeStarted: t1, timeCompleted: t1, logSuccessTruncateUntil: "100"), now: t1)
        #expect(s.logSuccessTruncateUntil == "100" && s.phase == .running)

        s.applyLog(.stop, BackupCondition(type: .failed, reason: "StopLogBackupFailed"), now: t1)
        #expect(s.phase == .running, "a failed stop leaves the task as it was")
        s.applyLog(.stop, BackupCondition(type: .complete), fields: .init(timeStarted: t1, timeCompleted: t1), now: t1)
        #expect(s.phase == .stopped && s.timeCompleted == t1 && s.timeStarted == t0)
        #expect(s.conditions?.first { $0.type == .stopped }?.command == .stop)
    }

    @Test("derivation: a task paused in TiKV (an error, or by hand) stays paused until the spec asks for log-start; a user's pause resumes on an empty spec as upstream")
    func pausedInTiKV() {
        var b = Backup(name: "lb", namespace: "ns", spec: BackupSpec())
        b.spec.backupMode = .log
        b.status.commitTs = "1"
        b.status.applyLog(.pause, BackupCondition(type: .complete, reason: "LogBackupErrorPaused"), now: Time(unixSeconds: 1))
        #expect(b.status.phase == .paused)
        #expect(b.derivedLogSubcommand == .pause)
        b.spec.logSubcommand = "log-start"
        #expect(b.derivedLogSubcommand == .resume)
        var user = Backup(name: "lb", namespace: "ns", spec: BackupSpec())
        user.spec.backupMode = .log
        user.status.applyLog(.pause, BackupCondition(type: .complete), now: Time(unixSeconds: 1))
        #expect(user.derivedLogSubcommand == .resume)
    }
}
