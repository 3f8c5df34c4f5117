import BRModel
import Foundation
import KubeModel
import Testing

@testable import WebView

@Suite("The web view's model: schedule health, rows, the overview")
struct WebModelTests {
    static let now = Date(timeIntervalSince1970: 1_764_460_800)  // 2025-11-30T00:00:00Z

    func schedule(_ extra: [String: JSONValue] = [:], status: JSONValue = .emptyObject, created: Int64 = -86400) -> JSONValue {
        var spec: JSONValue = ["schedule": "0 * * * *", "maxBackups": 3, "backupTemplate": ["br": ["cluster": "basic"]]]
        for (k, v) in extra { spec[k] = v }
        return ["kind": "BackupSchedule",
                "metadata": ["name": "hourly", "namespace": "ns", "creationTimestamp": .string(Time(unixSeconds: Int64(Self.now.timeIntervalSince1970) + created).description)],
                "spec": spec, "status": status]
    }

    func row(_ name: String, _ phase: String, completedAgo: Int64?) -> WebModel.Row {
        let completed = completedAgo.map { Time(unixSeconds: Int64(Self.now.timeIntervalSince1970) - $0).description }
        return WebModel.Row(kind: "Backup", namespace: "ns", name: name, phase: phase, mode: "snapshot", cluster: "basic", schedule: "hourly",
                            created: completed, started: completed, completed: completed)
    }

    @Test("healthy within three intervals of the last success, late past them, failing with BackupsFailing, paused, pending, invalid")
    func health() {
        let healthy = WebModel.schedule(schedule(), backups: [row("a", "Complete", completedAgo: 3000)], now: Self.now)
        #expect(healthy.health == .healthy && healthy.intervalSeconds == 3600 && healthy.lastSuccessBackup == "a")
        let late = WebModel.schedule(schedule(), backups: [row("a", "Complete", completedAgo: 4 * 3600)], now: Self.now)
        #expect(late.health == .late && late.healthReason == "the last successful backup is 4h old (every 60m)", "\(late.healthReason)")
        let never = WebModel.schedule(schedule(), backups: [row("a", "Failed", completedAgo: 60)], now: Self.now)
        #expect(never.health == .late && never.healthReason.hasPrefix("no successful backup in 24h"))
        let young = WebModel.schedule(schedule(created: -600), backups: [], now: Self.now)
        #expect(young.health == .pending)
        let failing = WebModel.schedule(schedule(status: ["conditions": [["type": "BackupsFailing", "status": "True", "message": "the last 2 backup(s) failed"]]]),
                                        backups: [row("a", "Complete", completedAgo: 60)], now: Self.now)
        #expect(failing.health == .failing && failing.healthReason == "the last 2 backup(s) failed")
        #expect(WebModel.schedule(schedule(["pause": true]), backups: [], now: Self.now).health == .paused)
        #expect(WebModel.schedule(schedule(["schedule": "not a cron"]), backups: [], now: Self.now).health == .invalid)
        #expect(healthy.retention == "keep 3")
    }

    @Test("a row: duration from start to completion, the failure's reason and message, the schedule from the label")
    func rows() {
        let object: JSONValue = [
            "kind": "Backup", "metadata": ["name": "b", "namespace": "ns", "labels": [BRLabels.backupSchedule: "hourly"]],
            "spec": ["br": ["cluster": "basic"]],
            "status": ["phase": "Failed", "timeStarted": "2025-11-29T23:00:00Z", "timeCompleted": "2025-11-29T23:01:30Z", "backupSize": 2048,
                       "conditions": [["type": "Running", "status": "True"], ["type": "Failed", "status": "True", "reason": "BRFailed", "message": "disk full"]]],
        ]
        let r = WebModel.row(object)
        #expect(r.durationSeconds == 90 && r.error == "BRFailed: disk full" && r.schedule == "hourly" && r.sizeBytes == 2048 && r.mode == "snapshot")
    }

    @Test("a verified backup, a failed verification's check, and the schedule's proven point")
    func verification() {
        func backup(_ verification: JSONValue) -> JSONValue {
            ["kind": "Backup", "metadata": ["name": "b", "namespace": "ns"], "spec": ["br": ["cluster": "basic"]],
             "status": ["phase": "Complete", "verification": verification]]
        }
        #expect(WebModel.row(backup(["phase": "Verified", "checks": [["name": "restore", "passed": true]]])).verification == "Verified")
        let failed = WebModel.row(backup(["phase": "Failed", "checks": [["name": "restore", "passed": true],
                                                                         ["name": "checksum", "passed": false, "message": "restore checksum mismatch"]]]))
        #expect(failed.verification == "Failed" && failed.verificationFailure == "checksum: restore checksum mismatch")
        let s = WebModel.schedule(schedule(status: ["lastVerifiedBackup": "b", "lastVerifiedTime": "2025-11-29T23:00:00Z", "provenRestorable": "2025-11-29T22:00:00Z"]),
                                  backups: [], now: Self.now)
        #expect(s.lastVerifiedBackup == "b" && s.provenRestorable == "2025-11-29T22:00:00Z" && s.lastVerified == "2025-11-29T23:00:00Z")
    }

    @Test("the mode and cluster come from the model: a Lightning Restore is `lightning` on spec.lightning.cluster; a Running log backup is in the Running list")
    func modesFromTheModel() {
        let lightning: JSONValue = ["kind": "Restore", "metadata": ["name": "imp", "namespace": "ns"],
                                    "spec": ["to": ["host": "basic-tidb", "secretName": "s"], "lightning": ["cluster": "basic", "dataSource": ["local": ["hostPath": "/d"]]]],
                                    "status": ["phase": "Running"]]
        let row = WebModel.row(lightning)
        #expect(row.mode == "lightning" && row.cluster == "basic", "\(row)")
        let log: JSONValue = ["kind": "Backup", "metadata": ["name": "lb", "namespace": "ns", "creationTimestamp": "2025-11-29T00:00:00Z"],
                              "spec": ["backupMode": "log", "br": ["cluster": "basic"], "local": ["volume": ["name": "v"], "volumeMount": ["name": "v", "mountPath": "/b"]]],
                              "status": ["phase": "Running"]]
        let stopped: JSONValue = ["kind": "Backup", "metadata": ["name": "old", "namespace": "ns"],
                                  "spec": ["backupMode": "log", "br": ["cluster": "basic"]], "status": ["phase": "Stopped"]]
        let o = WebModel.overview(schedules: [], backups: [log, stopped], restores: [lightning], now: Self.now)
        #expect(o.running.map(\.name).sorted() == ["imp", "lb"], "\(o.running.map(\.name))")
    }

    @Test("a back-off retry that is waiting is shown with its time and reason, though the phase stays Running")
    func pendingRetry() {
        let object: JSONValue = ["kind": "Backup", "metadata": ["name": "b", "namespace": "ns"], "spec": ["br": ["cluster": "basic"]],
                                 "status": ["phase": "Running", "backoffRetryStatus": [["retryNum": 1, "detectFailedAt": "2025-11-29T23:00:00Z",
                                                                                        "expectedRetryAt": "2025-11-29T23:05:00Z",
                                                                                        "retryReason": "Job backup-b has failed", "originalReason": "ProcessLost"]]]]
        let row = WebModel.row(object)
        #expect(row.retry == "retry 1 of 2 at 2025-11-29T23:05:00Z after: Job backup-b has failed: ProcessLost", "\(String(describing: row.retry))")
        var done = object
        done["status"]?["phase"] = "Complete"
        #expect(WebModel.row(done).retry == nil)
    }

    @Test("the overview groups backups under their schedule and cluster, counts phases, lists running and failed ones")
    func overview() {
        func backup(_ name: String, _ phase: String, owner: String?) -> JSONValue {
            var b: JSONValue = ["kind": "Backup", "metadata": ["name": .string(name), "namespace": "ns", "creationTimestamp": "2025-11-29T23:00:00Z"],
                                "spec": ["br": ["cluster": "basic"]], "status": ["phase": .string(phase)]]
            if let owner { b["metadata"]?["ownerReferences"] = [["kind": "BackupSchedule", "name": .string(owner), "controller": true]] }
            return b
        }
        let o = WebModel.overview(schedules: [schedule()], backups: [backup("a", "Complete", owner: "hourly"), backup("b", "Running", owner: "hourly"),
                                                                    backup("c", "Failed", owner: nil)], restores: [], now: Self.now)
        #expect(o.schedules.first?.backups == 2 && o.schedules.first?.running == 1)
        #expect(o.phases == ["Complete": 1, "Running": 1, "Failed": 1])
        #expect(o.running.map(\.name) == ["b"] && o.recentFailures.map(\.name) == ["c"])
        #expect(o.clusters.first?.backups == 3)
    }

    @Test("a backup's Events are listed in the order they were written, also within one second")
    func eventsInWrittenOrder() {
        func event(_ reason: String, _ time: String, rv: String) -> JSONValue {
            ["metadata": ["name": .string("bk.\(reason)"), "resourceVersion": .string(rv)], "reason": .string(reason), "message": "m", "type": "Normal",
             "count": 1, "lastTimestamp": .string(time)]
        }
        let events = [event("Complete", "2025-11-30T00:00:05Z", rv: "120"), event("Scheduled", "2025-11-30T00:00:01Z", rv: "9"),
                      event("Running", "2025-11-30T00:00:05Z", rv: "100"), event("Prepare", "2025-11-30T00:00:01Z", rv: "11")]
        let detail = WebModel.detail(["kind": "Backup", "metadata": ["name": "bk", "namespace": "ns"]], events: events)
        #expect(detail.events.map(\.reason) == ["Scheduled", "Prepare", "Running", "Complete"])
    }
}
