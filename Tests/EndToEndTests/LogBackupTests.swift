import BRModel
import Foundation
import KubeAPI
import KubeClient
import KubeModel
import Testing
import TestServers

@Suite("End to end: a log backup's sub-commands through spec edits, in the standalone operator", .serialized)
struct LogBackupTests {
    /// TidbCluster `basic` whose PD (its etcd) is at `pd`.
    static func etcdCluster(pd: String) -> String {
        "apiVersion: pingcap.com/v1alpha1\nkind: TidbCluster\nmetadata: {name: basic, namespace: default}\nspec: {version: v8.5.0, pdAddresses: [\"\(pd)\"]}"
    }

    /// A log Backup `name` of cluster `basic` to the local volume `root`, with more spec lines.
    static func logBackup(_ name: String, root: String, extra: [String] = []) -> String {
        (["apiVersion: pingcap.com/v1alpha1", "kind: Backup", "metadata: {name: \(name), namespace: default}", "spec:",
          "  backupMode: log", "  br: {cluster: basic}"] + extra.map { "  " + $0 }
            + ["  local:", "    prefix: \(name)", "    volume: {name: backups, hostPath: {path: \(root)}}",
               "    volumeMount: {name: backups, mountPath: \(root)}"]).joined(separator: "\n")
    }

    func patch(_ op: Operator, _ name: String, _ spec: JSONValue) async throws {
        _ = try await op.api.patch(.backups, namespace: "default", name: name, patch: .merge(["spec": spec]))
    }

    func waitFor(_ op: Operator, _ name: String, timeout: Double = 60, _ what: String, _ check: (Backup) -> Bool) async throws -> Backup {
        try await op.waitFor(Backup.self, name, timeout: timeout, what, check)
    }

    @Test("start → Running with the start TS; pause, resume, pause again (the old Job replaced), resume; truncate removes older log files; stop; delete cleans")
    func subCommands() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(Self.logBackup("lb", root: root, extra: ["cleanPolicy: Delete"]))
        var b = try await waitFor(op, "lb", "Running with a commit TS") { $0.status.phase == .running && !($0.status.commitTs ?? "").isEmpty }
        let start = UInt64(b.status.commitTs ?? "") ?? 0
        #expect(start > 0)
        #expect(b.status.logSubCommandStatuses?["log-start"]?.phase == .complete)
        #expect(b.status.backupPath == "local://\(root)/lb")
        #expect(FileManager.default.fileExists(atPath: "\(root)/lb/backupmeta"))

        try await patch(op, "lb", ["logSubcommand": "log-pause"])
        b = try await waitFor(op, "lb", "Paused") { $0.status.phase == .paused }
        #expect(b.status.logSubCommandStatuses?["log-pause"]?.phase == .complete)
        try await patch(op, "lb", ["logSubcommand": "log-start"])
        b = try await waitFor(op, "lb", "Running again (resume)") { $0.status.phase == .running && $0.status.logSubCommandStatuses?["log-resume"]?.phase == .complete }
        #expect(b.status.logSubCommandStatuses?["log-pause"]?.phase == .repeatable)
        try await patch(op, "lb", ["logSubcommand": "log-pause"])
        _ = try await waitFor(op, "lb", "Paused a second time") { $0.status.phase == .paused && $0.status.logSubCommandStatuses?["log-pause"]?.phase == .complete }
        try await patch(op, "lb", ["logSubcommand": "log-start"])
        b = try await waitFor(op, "lb", "Running a second time") { $0.status.phase == .running && $0.status.logSubCommandStatuses?["log-resume"]?.phase == .complete }

        // The resume wrote a newer log file; truncating between the two removes the first only.
        let logs = { () -> [String] in
            ((FileManager.default.enumerator(atPath: "\(root)/lb/v1")?.allObjects as? [String]) ?? []).filter { $0.hasSuffix(".log") }
        }
        #expect(logs().count >= 2, "\(logs())")
        let until = start + 1
        try await patch(op, "lb", ["logTruncateUntil": .string(String(until))])
        b = try await waitFor(op, "lb", "truncated") { $0.status.logSuccessTruncateUntil == String(until) }
        #expect(b.status.logSubCommandStatuses?["log-truncate"]?.phase == .complete)
        #expect(b.status.phase == .running)
        #expect(!logs().contains { $0.hasSuffix("/\(start).log") }, "\(logs())")
        #expect(!logs().isEmpty)
        // A truncate to a point already truncated runs nothing and says so.
        try await patch(op, "lb", ["logTruncateUntil": .string(String(start))])
        _ = try await waitFor(op, "lb", "skipped truncate") { $0.status.logSubCommandStatuses?["log-truncate"]?.conditions?.first { $0.type == .complete }?.message?.contains("nothing to truncate") == true }

        try await patch(op, "lb", ["logSubcommand": "log-stop"])
        b = try await waitFor(op, "lb", "Stopped") { $0.status.phase == .stopped }
        #expect(b.status.logSubCommandStatuses?["log-stop"]?.phase == .complete)

        _ = try await op.api.delete(Backup.self, namespace: "default", name: "lb")
        try await op.gone("lb")
        #expect(!FileManager.default.fileExists(atPath: "\(root)/lb/backupmeta"))
    }

    @Test("a failing sub-command: the sub-command Failed with TiDB Operator's reason, the task's phase unchanged")
    func failingPause() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(Self.logBackup("lf", root: root, extra: ["env: [{name: BR_STANDIN_LOG_FAIL, value: pause}]"]))
        _ = try await waitFor(op, "lf", "Running") { $0.status.phase == .running && !($0.status.commitTs ?? "").isEmpty }
        try await patch(op, "lf", ["logSubcommand": "log-pause"])
        let b = try await waitFor(op, "lf", "pause failed") { $0.status.logSubCommandStatuses?["log-pause"]?.phase == .failed }
        let failed = b.status.logSubCommandStatuses?["log-pause"]?.conditions?.first { $0.type == .failed }
        #expect(failed?.reason == "PauseLogBackupFailed", "\(String(describing: failed))")
        #expect(b.status.phase == .running, "the task still runs")
    }

    @Test("PiTR: a log backup and a later full backup restore to a point after the full backup; a log truncated past the full backup cannot")
    func pointInTime() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        let local = { (prefix: String) in
            "local: {prefix: \(prefix), volume: {name: backups, hostPath: {path: \(root)}}, volumeMount: {name: backups, mountPath: \(root)}}"
        }
        try await op.apply(Self.logBackup("log", root: root))
        let logBackup = try await waitFor(op, "log", "Running") { $0.status.phase == .running && !($0.status.commitTs ?? "").isEmpty }
        try await op.apply(localBackup("full", root: root))
        let full = try await op.backup("full", reaches: ["Complete", "Failed"])
        #expect(full.status.phase == .complete)
        let fullTs = UInt64(full.status.commitTs ?? "") ?? 0
        #expect(fullTs > UInt64(logBackup.status.commitTs ?? "") ?? 0)

        func restore(_ name: String, at ts: UInt64) -> String {
            """
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: \(name), namespace: default}
            spec:
              restoreMode: pitr
              pitrRestoredTs: "\(ts)"
              br: {cluster: basic}
              \(local("log"))
              pitrFullBackupStorageProvider:
                \(local("full"))
            """
        }
        // TiKV flushed the log up to fullTs + 1000: BR refuses a later point, which the log does not hold.
        try Self.flushCheckpoint(root + "/log", fullTs + 1000)
        try await op.apply(restore("pitr-ahead", at: fullTs + 5000))
        let ahead = try await op.restore("pitr-ahead", reaches: ["Complete", "Failed"])
        #expect(ahead.status.phase == .failed && ahead.status.conditions?.first { $0.type == .failed }?.message?.contains("current existed log") == true,
                "\(ahead.status)")
        try await op.apply(restore("pitr", at: fullTs + 1000))
        let done = try await op.restore("pitr", reaches: ["Complete", "Failed"])
        #expect(done.status.phase == .complete, "\(done.status)")
        #expect(done.status.commitTs == String(fullTs + 1000))
        #expect(done.status.progresses?.contains { $0.step == "Restore Log" } == true)
        let logs = op.allLogs()
        #expect(logs.contains("restore point --pd=http://127.0.0.1:2379 --storage=local://\(root)/log --restored-ts=\(fullTs + 1000) --full-backup-storage=local://\(root)/full"),
                "the job ran br restore point with TiDB Operator's arguments")

        // Truncating the log past the full backup breaks that chain: the restore says why.
        try await patch(op, "log", ["logTruncateUntil": .string(String(fullTs + 10))])
        _ = try await waitFor(op, "log", "truncated") { $0.status.logSuccessTruncateUntil == String(fullTs + 10) }
        try await op.apply(restore("pitr-broken", at: fullTs + 1000))
        let broken = try await op.restore("pitr-broken", reaches: ["Complete", "Failed"])
        #expect(broken.status.phase == .failed)
        #expect(broken.status.conditions?.first { $0.type == .failed }?.message?.contains("truncated until") == true, "\(broken.status)")
    }

    /// Plays TiKV: the global checkpoint a store flushed to the log backup's storage directory
    /// (`v1/global_checkpoint/<store>.ts`, 8 bytes little-endian), the latest point BR restores to.
    static func flushCheckpoint(_ directory: String, _ ts: UInt64, store: Int = 1) throws {
        try FileManager.default.createDirectory(atPath: directory + "/v1/global_checkpoint", withIntermediateDirectories: true)
        try withUnsafeBytes(of: ts.littleEndian) { Data($0) }.write(to: URL(fileURLWithPath: directory + "/v1/global_checkpoint/\(store).ts"))
    }

    /// Plays TiKV and PD: writes (or deletes, with nil) a key of the etcd PD's addresses name.
    func etcdPut(_ endpoint: String, _ key: String, _ value: [UInt8]?) async throws {
        var body: [String: String] = ["key": Data(key.utf8).base64EncodedString()]
        if let value { body["value"] = Data(value).base64EncodedString() }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        let (status, output) = try await TestServers.run(["curl", "-s", "-X", "POST", "-H", "Content-Type: application/json", "-d", json,
                                                     endpoint + (value == nil ? "/v3/kv/deleterange" : "/v3/kv/put")])
        #expect(status == 0, "\(output)")
    }

    @Test("the tracker: the checkpoint from PD's etcd in status, an error pause becomes Paused with its reason, a kernel the status disagrees with twice wins, a lost task fails its sub-command; after kill -9 it goes on, no sub-command run twice")
    func tracker() async throws {
        let etcd = try await TestServers.offPool(TestServers.etcd)
        let op = try await Operator(extraArguments: ["--log-sync-interval", "500ms"])
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(Self.etcdCluster(pd: etcd))
        try await op.apply(Self.logBackup("lt", root: root))
        // BR wrote the task info (protobuf) and no checkpoint: the task stands at its start TS.
        var b = try await waitFor(op, "lt", "Running, checkpoint at the start") { $0.status.phase == .running && $0.status.logCheckpointTs != nil && $0.status.logCheckpointTs == $0.status.commitTs }
        let start = UInt64(b.status.commitTs ?? "") ?? 0
        #expect(b.status.timeSynced != nil)

        // Older TiKV: a checkpoint per store under the task's prefix; the slowest one counts. A task
        // whose name starts the same (`lt-2`) is not read.
        try await etcdPut(etcd, "/tidb/br-stream/checkpoint/lt/store/1", LogBackupKernel.encodeCheckpoint(start + 3000))
        try await etcdPut(etcd, "/tidb/br-stream/checkpoint/lt/store/2", LogBackupKernel.encodeCheckpoint(start + 2000))
        try await etcdPut(etcd, "/tidb/br-stream/checkpoint/lt-2/central_global", LogBackupKernel.encodeCheckpoint(start + 1))
        b = try await waitFor(op, "lt", "checkpoint of the slowest store") { $0.status.logCheckpointTs == String(start + 2000) }
        // The advancer writes the task's global checkpoint where BR's streamhelper puts it.
        try await etcdPut(etcd, LogBackupKernel.globalCheckpointKey("lt"), LogBackupKernel.encodeCheckpoint(start + 5000))
        b = try await waitFor(op, "lt", "checkpoint advanced") { $0.status.logCheckpointTs == String(start + 5000) }
        // The lag behind now is a metric (served by standalone at /metrics, behind the token).
        let token = try String(contentsOfFile: op.directory + "/data/token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let (status, metrics) = try await TestServers.run(["curl", "-sk", "-H", "Authorization: Bearer \(token)", "https://127.0.0.1:\(op.port)/metrics"])
        let lagLine = metrics.split(separator: "\n").first { $0.hasPrefix("tidb_backup_operator_log_backup_checkpoint_lag_seconds{backup=\"default/lt\"}") }
        let lag = lagLine.flatMap { Double($0.split(separator: " ").last ?? "") }
        #expect(status == 0 && lag != nil && lag! >= 0 && lag! < 600, "\(metrics)")
        let (_, refused) = try await TestServers.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(op.port)/metrics"])
        #expect(refused == "401", "metrics without the token: \(refused)")

        // TiKV pauses the task on an error (PauseV2 with a protobuf StreamBackupError, as TiKV writes it):
        // Paused with the reason; a user's log-start resumes it.
        let error = LogBackupKernel.StreamBackupError(happenAt: 1_700_000_000_000, code: "KV:LogBackup:IO", message: "disk full", storeID: 4)
        let pause = try JSONSerialization.data(withJSONObject: ["severity": "ERROR", "operation_hostname": "tikv-4", "operation_pid": 1,
                                                                 "operation_time": "2026-12-06T08:00:00Z",
                                                                 "payload_type": "application/x-protobuf;messagetype=brpb.StreamBackupError",
                                                                 "payload": Data(error.protobuf).base64EncodedString()])
        try await etcdPut(etcd, "/tidb/br-stream/pause/lt", Array(pause))
        b = try await waitFor(op, "lt", "error-paused") { $0.status.phase == .paused }
        let paused = b.status.conditions?.first { $0.type == .paused }
        #expect(paused?.reason == "LogBackupErrorPaused" && paused?.message == "Log backup paused due to error: Paused by error(store 4): disk full", "\(String(describing: paused))")
        let events = try await op.events { $0.contains { $0["reason"] == "LogBackupErrorPaused" } }.compactMap { $0["reason"]?.stringValue }
        #expect(events.contains("LogBackupErrorPaused"))
        // It stays paused (no resume the user did not ask for) until the spec asks for log-start.
        try await Task.sleep(for: .seconds(2))
        #expect(try await op.api.get(Backup.self, namespace: "default", name: "lt").status.phase == .paused)
        try await patch(op, "lt", ["logSubcommand": "log-start"])
        b = try await waitFor(op, "lt", "resumed") { $0.status.phase == .running && $0.status.logSubCommandStatuses?["log-resume"]?.phase == .complete }
        try await patch(op, "lt", ["logSubcommand": .null])

        // Paused by hand (`br log pause` outside the operator writes severity REGULAR_OPERATION): not an
        // error; after two looks the status follows, with an Event.
        let byHand = try JSONSerialization.data(withJSONObject: ["severity": "REGULAR_OPERATION", "operation_hostname": "laptop", "operation_pid": 7,
                                                                  "operation_time": "2026-12-06T08:00:00Z", "payload_type": "", "payload": NSNull()])
        try await etcdPut(etcd, "/tidb/br-stream/pause/lt", Array(byHand))
        b = try await waitFor(op, "lt", "kernel sync") { $0.status.phase == .paused }
        #expect(b.status.conditions?.first { $0.type == .paused }?.reason == "LogBackupKernelSync")
        #expect(try await op.events { $0.contains { $0["reason"] == "LogBackupKernelSync" } }.contains { $0["reason"] == "LogBackupKernelSync" })
        try await etcdPut(etcd, "/tidb/br-stream/pause/lt", nil)
        b = try await waitFor(op, "lt", "kernel sync back") { $0.status.phase == .running }

        // kill -9 of the operator: the tracker goes on after the restart; log-start ran once.
        _ = try await op.crashAndRestart()
        try await etcdPut(etcd, LogBackupKernel.globalCheckpointKey("lt"), LogBackupKernel.encodeCheckpoint(start + 9000))
        b = try await waitFor(op, "lt", "checkpoint after restart") { $0.status.logCheckpointTs == String(start + 9000) }
        let pods = try await op.api.list(.pods, namespace: "default").items.compactMap { $0.value(at: ["metadata", "name"])?.stringValue }
        #expect(pods.filter { $0.hasPrefix("backup-lt-log-start-") }.count == 1, "\(pods)")

        // The task vanishes from TiKV: the sub-command in effect fails and says why.
        try await etcdPut(etcd, "/tidb/br-stream/info/lt", nil)
        b = try await waitFor(op, "lt", "task not found") { $0.status.logSubCommandStatuses?["log-start"]?.phase == .failed }
        #expect(b.status.logSubCommandStatuses?["log-start"]?.conditions?.first { $0.type == .failed }?.reason == "LogBackupTaskNotFound")
        // TiDB Operator PR #6630: the Backup itself fails, and is not left Running on a task that is gone.
        b = try await waitFor(op, "lt", "Backup failed") { $0.status.phase == .failed }
        #expect(b.status.conditions?.last { $0.type == .failed }?.reason == "LogBackupTaskNotFound", "\(b.status)")
    }

    @Test("a schedule with a log backup and maxBackups 2: the log runs beside the snapshots, is truncated to the oldest kept snapshot as they rotate, and a PiTR between two kept snapshots restores")
    func scheduleKeepsPiTRPossible() async throws {
        let etcd = try await TestServers.offPool(TestServers.etcd)
        let op = try await Operator(extraArguments: ["--log-sync-interval", "300ms"])
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(Self.etcdCluster(pd: etcd))
        try await op.apply(localSchedule("pitr", root: root, spec: ["maxBackups: 2", "logBackupTemplate:", "  br: {cluster: basic}",
                                                                  "  local:", "    prefix: pitr-log",
                                                                  "    volume: {name: backups, hostPath: {path: \(root)}}",
                                                                  "    volumeMount: {name: backups, mountPath: \(root)}"]))
        let log = try await waitFor(op, "log-pitr", "the schedule's log backup running") { $0.status.phase == .running && !($0.status.commitTs ?? "").isEmpty }
        #expect(log.spec.storage.local?.prefix?.hasPrefix("pitr-log/log-") == true, "\(String(describing: log.spec.storage.local?.prefix))")
        // TiKV keeps the checkpoint ahead of the snapshots (an hour from now).
        let ahead = TSO.fromUnixSeconds(Int64(Date().timeIntervalSince1970) + 3600)
        try await etcdPut(etcd, LogBackupKernel.globalCheckpointKey("log-pitr"), LogBackupKernel.encodeCheckpoint(ahead))
        try Self.flushCheckpoint(root + "/" + (log.spec.storage.local?.prefix ?? ""), ahead)

        // Snapshots rotate; once some were deleted, the log is truncated to the oldest kept one.
        let selector = scheduleSelector("pitr")
        var kept: [Backup] = []
        func settled(within seconds: Double, quiet: Bool) async throws -> Backup? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let all = try await op.api.list(Backup.self, namespace: "default", labelSelector: selector)
                kept = all.filter { $0.spec.effectiveBackupMode != .log && $0.status.phase == .complete }
                    .sorted { (UInt64($0.status.commitTs ?? "") ?? 0) < (UInt64($1.status.commitTs ?? "") ?? 0) }
                let l = all.first { $0.name == "log-pitr" }
                let created = try await op.api.get(BackupSchedule.self, namespace: "default", name: "pitr")
                if kept.count == 2, let l, let until = l.status.logSuccessTruncateUntil, until == kept.first?.status.commitTs,
                   (created.status.lastBackup ?? "") != "", all.count <= 4,
                   !quiet || all.allSatisfy({ $0.status.phase == .complete || $0.status.phase == .running }) {
                    return l
                }
                try await Task.sleep(for: .milliseconds(300))
            }
            return nil
        }
        _ = try #require(try await settled(within: 90, quiet: false), "the log was not truncated to the oldest kept snapshot; \(op.tail())")
        // Paused, so the snapshots the checks and the restore below use are not rotated away under them
        // (a loaded machine would otherwise truncate the log past the base before the restore ran).
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "pitr", patch: .merge(["spec": ["pause": true]]))
        let l = try #require(try await settled(within: 60, quiet: true), "no settled state after the pause; \(op.tail())")
        #expect(l.status.phase == .running, "the log backup keeps running")
        let schedule = try await op.api.get(BackupSchedule.self, namespace: "default", name: "pitr")
        #expect(schedule.status.logBackup == "log-pitr" && schedule.status.logBackupStartTs != nil)
        // The restorable window: from the oldest kept snapshot through the log to its checkpoint.
        #expect(schedule.status.restorableContinuous == true, "\(schedule.status)")
        #expect(schedule.status.earliestRestorable?.unixSeconds == TSO.unixMilliseconds(UInt64(kept[0].status.commitTs ?? "") ?? 0) / 1000)
        #expect(schedule.status.latestRestorable?.unixSeconds == TSO.unixMilliseconds(ahead) / 1000)
        let (_, table) = try await TestServers.run(["kubectl", "--kubeconfig", op.kubeconfig, "get", "bks", "pitr"])
        #expect(table.contains("EARLIESTRESTORABLE") && table.contains("LATESTRESTORABLE"), "\(table)")

        // A point between the two kept snapshots restores from the older one plus the log.
        let base = kept[0], later = kept[1]
        let point = (UInt64(base.status.commitTs ?? "") ?? 0) + 1
        #expect(point < UInt64(later.status.commitTs ?? "") ?? 0)
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: pitr-restore, namespace: default}
            spec:
              restoreMode: pitr
              pitrRestoredTs: "\(point)"
              br: {cluster: basic}
              local: {prefix: \(l.spec.storage.local?.prefix ?? ""), volume: {name: backups, hostPath: {path: \(root)}}, volumeMount: {name: backups, mountPath: \(root)}}
              pitrFullBackupStorageProvider:
                local: {prefix: \(base.spec.storage.local?.prefix ?? ""), volume: {name: backups, hostPath: {path: \(root)}}, volumeMount: {name: backups, mountPath: \(root)}}
            """)
        let restored = try await op.restore("pitr-restore", reaches: ["Complete", "Failed"])
        #expect(restored.status.phase == .complete, "\(restored.status)")
    }

    @Test("prune: afterFailed: a failed restore is followed by PruneScheduled, the prune Job running br abort restore, PruneComplete; the Failed condition stays")
    func pruneAfterFailed() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        let abortFile = op.directory + "/aborted"
        try await op.apply(cluster)
        try await op.apply(localBackup("pfull", root: root))
        _ = try await op.backup("pfull", reaches: ["Complete"])
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: pr, namespace: default}
            spec:
              prune: afterFailed
              br: {cluster: basic}
              env: [{name: BR_STANDIN_FAIL, value: "1"}, {name: BR_STANDIN_ABORT_FILE, value: "\(abortFile)"}]
              local: {prefix: pfull, volume: {name: backups, hostPath: {path: \(root)}}, volumeMount: {name: backups, mountPath: \(root)}}
            """)
        let r = try await op.restore("pr", reaches: ["PruneComplete", "PruneFailed"])
        #expect(r.status.phase == .pruneComplete, "\(r.status)")
        #expect(r.hasCondition(.failed) && r.hasCondition(.pruneScheduled) && r.hasCondition(.pruneRunning))
        let aborted = (try? String(contentsOfFile: abortFile, encoding: .utf8)) ?? ""
        #expect(aborted.hasPrefix("abort restore full --pd=http://127.0.0.1:2379 --storage=local://\(root)/pfull"), "\(aborted)")
        #expect((try? await op.api.get(.jobs, namespace: "default", name: "restore-pr-prune")) != nil)
    }
}
