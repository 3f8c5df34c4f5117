import BRModel
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing
import TestServers

/// TiDB Operator #6304: the operator replaced by a newer version while a schedule's log backup ran
/// (v1.6.2 read a status field v1.6.1 never wrote, `logBackupStartTs`, and crashed on every pass).
@Suite("End to end: a rolling update of the operator while a schedule's log backup runs", .serialized)
struct RollingUpdateTests {
    @Test("#6304: the old replica leads and runs the schedule; its status lacks logBackupStartTs, as an older operator wrote it; the new replica takes the lease, keeps the one log backup, takes the start from the log, and compaction goes on")
    func newReplicaCarriesOn() async throws {
        let etcd = try await TestServers.offPool(TestServers.etcd)
        // The API (and the Jobs, as local processes) from the standalone server; the controllers from `run` replicas.
        let op = try await Operator(extraArguments: ["--no-controllers"])
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(LogBackupTests.etcdCluster(pd: etcd))
        try await op.apply(CompactBackupTests.compactingSchedule("ru", root: root))
        let extra = ["--log-sync-interval", "300ms"]
        let old = try ChaosTests.RunReplica(op, name: "replica-old", extra: extra)
        defer { old.kill9() }
        let logTests = LogBackupTests()
        let log = try await logTests.waitFor(op, "log-ru", "the schedule's log backup running") { $0.status.phase == .running && !($0.status.commitTs ?? "").isEmpty }
        try await logTests.etcdPut(etcd, LogBackupKernel.globalCheckpointKey("log-ru"), LogBackupKernel.encodeCheckpoint(TSO.fromUnixSeconds(Int64(Date().timeIntervalSince1970) + 3600)))
        let selector = scheduleSelector("ru")
        func compactions() async -> [CompactBackup] { (try? await op.api.list(CompactBackup.self, namespace: "default", labelSelector: selector)) ?? [] }
        #expect(await eventually(60) { await compactions().contains { $0.status.state == "Complete" } }, "old replica: \(old.text.suffix(2000))")

        // The rolling update: the new replica starts beside the old one (standing by), then the old one is stopped.
        let new = try ChaosTests.RunReplica(op, name: "replica-new", extra: extra)
        defer { new.kill9() }
        try await Task.sleep(for: .seconds(2))
        old.stop(SIGTERM)
        // What the older version left: its status has no logBackupStartTs.
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "ru",
                                   patch: .merge(["status": ["logBackupStartTs": .null]]), subresource: "status")
        let before = Set(await compactions().map(\.name))
        var schedule: BackupSchedule?
        let carriedOn = await eventually(90) {
            schedule = try? await op.api.get(BackupSchedule.self, namespace: "default", name: "ru")
            let fresh = await compactions().filter { !before.contains($0.name) && $0.status.state == "Complete" }
            return schedule?.status.logBackupStartTs != nil && !fresh.isEmpty
        }
        #expect(carriedOn, "new replica: \(new.text.suffix(3000))")
        let lease = try await op.api.get(.leases, namespace: "default", name: "tidb-backup-operator")
        #expect(lease.value(at: ["spec", "holderIdentity"])?.stringValue == "replica-new", "\(lease)")
        // The start came from the log backup itself: its start TS.
        let start = UInt64(log.status.commitTs ?? "") ?? 0
        #expect(schedule?.status.logBackupStartTs?.unixSeconds == TSO.unixMilliseconds(start) / 1000, "\(String(describing: schedule?.status))")
        // One log backup, started once, across both replicas.
        let logs = try await op.api.list(Backup.self, namespace: "default", labelSelector: selector).filter { $0.spec.effectiveBackupMode == .log }
        #expect(logs.map(\.name) == ["log-ru"])
        let pods = try await op.api.list(.pods, namespace: "default").items.compactMap { $0.value(at: ["metadata", "name"])?.stringValue }
        #expect(pods.filter { $0.hasPrefix("backup-log-ru-log-start-") }.count == 1, "\(pods)")
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "ru", patch: .merge(["spec": ["pause": true]]))
    }
}
