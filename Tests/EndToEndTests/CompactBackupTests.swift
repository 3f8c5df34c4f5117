import BRModel
import Foundation
import KubeTesting
import KubeAPI
import KubeClient
import KubeModel
import Testing
import TestServers

@Suite("End to end: CompactBackups and a schedule's compactions, in the standalone operator", .serialized)
struct CompactBackupTests {
    func waitFor(_ op: Operator, _ name: String, timeout: Double = 60, _ what: String, _ check: (CompactBackup) -> Bool) async throws -> CompactBackup {
        try await op.waitFor(CompactBackup.self, name, timeout: timeout, what, check)
    }

    /// Log files at TSOs 100, 200, 900 under `<root>/<prefix>/v1/`, and a CompactBackup of 50..300 of them.
    static func logsAndCompact(_ name: String, root: String, prefix: String, env: String = "[]") throws -> String {
        try FileManager.default.createDirectory(atPath: "\(root)/\(prefix)/v1/20240301", withIntermediateDirectories: true)
        for ts in ["100", "200", "900"] { try Data("log \(ts)".utf8).write(to: URL(fileURLWithPath: "\(root)/\(prefix)/v1/20240301/\(ts).log")) }
        return """
            apiVersion: pingcap.com/v1alpha1
            kind: CompactBackup
            metadata: {name: \(name), namespace: default}
            spec:
              startTs: "50"
              endTs: "300"
              tikvImage: pingcap/tikv:v8.5.0
              env: \(env)
              local: {prefix: \(prefix), volume: {name: backups, hostPath: {path: \(root)}}, volumeMount: {name: backups, mountPath: \(root)}}
            """
    }

    @Test("a CompactBackup completes (files in storage, kubectl get cpbk); one whose tikv-ctl aborts once is retried at once and completes with one retry record")
    func compactions() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        // The stand-in's first run on this storage aborts.
        try await op.apply(Self.logsAndCompact("once", root: root, prefix: "a", env: "[{name: TIKV_CTL_STANDIN_ABORT_TIMES, value: \"1\"}]"))
        let retried = try await waitFor(op, "once", "Complete") { $0.status.state == "Complete" }
        #expect(retried.status.backoffRetryStatus?.count == 1, "\(retried.status)")
        #expect(retried.status.backoffRetryStatus?.first?.retryReason?.contains("injected failure of run 1") == true, "\(retried.status)")
        #expect(retried.status.endTs == "300" && retried.status.progress == "[READ_META(2/2),COMPACT_WORK(14/14)]", "\(retried.status)")
        #expect(retried.status.message == nil)
        let out = try FileManager.default.contentsOfDirectory(atPath: root + "/a/compaction-out/50-300").sorted()
        #expect(out == ["1.sst", "2.sst", "meta.json"])

        let (status, table) = try await TestServers.run(["kubectl", "--kubeconfig", op.kubeconfig, "get", "cpbk"])
        #expect(status == 0, "\(table)")
        #expect(table.contains("STATUS") && table.contains("ENDTS") && table.contains("once") && table.contains("Complete"), "\(table)")
    }

    /// A schedule `name` (`@every 2s`, `maxBackups: 2`) with a log backup and compaction every 2 s, all on
    /// the local volume `root` (the log in `<name>-log`).
    static func compactingSchedule(_ name: String, root: String) -> String {
        let storage = ["local:", "    prefix: \(name)-log", "    volume: {name: backups, hostPath: {path: \(root)}}",
                       "    volumeMount: {name: backups, mountPath: \(root)}"]
        return localSchedule(name, root: root, spec: ["maxBackups: 2", "compactInterval: 2s", "logBackupTemplate:", "  br: {cluster: basic}"]
                                 + storage.map { "  " + $0 }
                                 + ["compactBackupTemplate:", "  br: {cluster: basic}", "  concurrency: 2"] + storage.map { "  " + $0 })
    }

    @Test("a schedule with a log backup, compactBackupTemplate and compactInterval: CompactBackups follow the log, the progress advances, the log is truncated no further than it")
    func scheduleCompacts() async throws {
        let etcd = try await TestServers.offPool(TestServers.etcd)
        let op = try await Operator(extraArguments: ["--log-sync-interval", "300ms"])
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(LogBackupTests.etcdCluster(pd: etcd))
        try await op.apply(Self.compactingSchedule("cpt", root: root))
        let logTests = LogBackupTests()
        let log = try await logTests.waitFor(op, "log-cpt", "the schedule's log backup running") { $0.status.phase == .running && !($0.status.commitTs ?? "").isEmpty }
        let ahead = TSO.fromUnixSeconds(Int64(Date().timeIntervalSince1970) + 3600)
        try await logTests.etcdPut(etcd, LogBackupKernel.globalCheckpointKey("log-cpt"), LogBackupKernel.encodeCheckpoint(ahead))

        let selector = scheduleSelector("cpt")
        let deadline = Date().addingTimeInterval(90)
        var done: [CompactBackup] = []
        var schedule: BackupSchedule?
        var truncatedLog: Backup?
        _ = await eventually(deadline.timeIntervalSinceNow) {
            done = ((try? await op.api.list(CompactBackup.self, namespace: "default", labelSelector: selector)) ?? []).filter { $0.status.state == "Complete" }
            schedule = try? await op.api.get(BackupSchedule.self, namespace: "default", name: "cpt")
            truncatedLog = try? await op.api.get(Backup.self, namespace: "default", name: "log-cpt")
            return done.count >= 2 && schedule?.status.lastCompactProgress != nil && truncatedLog?.status.logSuccessTruncateUntil != nil
        }
        #expect(done.count >= 2, "CompactBackups complete: \(done.map(\.name)); log: \(op.tail())")
        let s = try #require(schedule)
        let progress = try #require(s.status.lastCompactProgress, "\(s.status)")
        let logStart = try #require(s.status.logBackupStartTs)
        #expect(progress.unixSeconds > logStart.unixSeconds)
        // Each range starts where the one before ended, in the log backup's directory.
        let ranges = done.sorted { ($0.spec.startTs ?? "") < ($1.spec.startTs ?? "") }
        // (the first began at the log's start; retention keeps the newest maxBackups finished ones).
        #expect((ranges.first?.spec.startTs ?? "") >= BRNames.compactTimestamp(logStart), "\(ranges.map { [$0.spec.startTs, $0.spec.endTs] })")
        // The first one (perhaps retired since) began at the log's start: its creation Event says so.
        let opening = "(\(BRNames.compactTimestamp(logStart)).."
        let events = try await op.events { $0.contains { ($0["message"]?.stringValue ?? "").contains("create CompactBackup") && ($0["message"]?.stringValue ?? "").contains(opening) } }
            .compactMap { $0["message"]?.stringValue }
        #expect(events.contains { $0.contains("create CompactBackup") && $0.contains(opening) }, "\(events)")
        let all = try await op.api.list(CompactBackup.self, namespace: "default", labelSelector: selector)
        #expect(all.filter(\.isFinished).count <= 2, "retention by maxBackups: \(all.map(\.name))")
        for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.spec.endTs == b.spec.startTs, "\(ranges.map { [$0.spec.startTs, $0.spec.endTs] })") }
        #expect(ranges.allSatisfy { $0.spec.storage.local?.prefix == log.spec.storage.local?.prefix }, "compactions work in the log's directory")
        // Truncation never passes what compaction reached.
        let until = UInt64(try #require(truncatedLog?.status.logSuccessTruncateUntil, "the log was not truncated; \(op.tail())")) ?? 0
        #expect(until > 0 && until <= TSO.fromUnixSeconds(progress.unixSeconds), "truncated until \(until), progress \(progress)")
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "cpt", patch: .merge(["spec": ["pause": true]]))
    }
}
