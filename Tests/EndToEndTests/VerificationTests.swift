import BRModel
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import TestServers
import Testing

/// `BackupSchedule.spec.verification` on the standalone operator, with the br stand-in restoring into
/// a scratch TidbCluster.
@Suite("End to end: restore verification of a schedule's backups", .serialized)
struct VerificationTests {
    static let scratch = """
        apiVersion: pingcap.com/v1alpha1
        kind: TidbCluster
        metadata: {name: scratch, namespace: default}
        spec: {version: v8.5.0, pdAddresses: ["http://127.0.0.1:2381"]}
        """

    @Test("a schedule's backups are verified through Restores into the scratch cluster; a checksum mismatch fails the verification with BR's message, the condition and an Event; keep bounds the Restores")
    func scheduleVerifiesItsBackups() async throws {
        let receiver = try await TestServers.offPool { try TestServers.webhookReceiver(failFirst: 0) }
        let op = try await Operator(extraArguments: ["--notify-webhook", receiver + "/hook"])
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(Self.scratch)
        try await op.apply(localSchedule("nightly", root: root, spec: ["maxBackups: 10", "verification: {target: {cluster: scratch}, keep: 2}"])
            .replacingOccurrences(of: "@every 2s", with: "@every 3s"))
        let ns = "default"
        let selector = scheduleSelector("nightly")
        func backups() async throws -> [Backup] { try await op.api.list(Backup.self, namespace: ns, labelSelector: selector) }
        func pause(_ on: Bool) async throws {
            _ = try await op.api.patch(.backupSchedules, namespace: ns, name: "nightly", patch: .merge(["spec": ["pause": .bool(on)]]), subresource: nil)
        }
        // Two backups, then the schedule pauses; both are verified (a paused schedule's backups still are).
        #expect(await eventually(60) { ((try? await backups()) ?? []).filter { $0.status.phase == .complete }.count >= 2 }, "log: \(op.tail())")
        try await pause(true)
        // A backup started just before the pause may still complete: wait for a snapshot in which every
        // backup has settled and every complete one is verified, and check that snapshot.
        var settled: [Backup] = []
        let verifiedBoth = await eventually(90) {
            let all = (try? await backups()) ?? []
            let done = all.allSatisfy { $0.status.phase == .complete || $0.status.phase == .failed }
            guard !all.isEmpty, done, all.filter({ $0.status.phase == .complete }).allSatisfy({ $0.status.verification?.phase == .verified }) else { return false }
            settled = all
            return true
        }
        let first = settled.isEmpty ? try await backups().filter { $0.status.phase == .complete } : settled.filter { $0.status.phase == .complete }
        #expect(verifiedBoth, "\(first.map { ($0.name, $0.status.verification.map { "\($0.phase) \($0.failure ?? "")" } ?? "-") }); log: \(op.tail())")
        var checkedRestores = 0
        for backup in first {
            let v = try #require(backup.status.verification)
            #expect(v.target == "default/scratch")
            #expect(v.checks?.map(\.name) == ["restore", "checksum"] && v.checks?.allSatisfy(\.passed) == true, "\(v)")
            // Within a minute of the backup.
            if let done = backup.status.timeCompleted?.unixSeconds, let verified = v.timeCompleted?.unixSeconds {
                #expect(verified - done < 60, "verified \(verified - done) s after the backup completed")
            }
            // Restores beyond `keep` are deleted (a loaded machine makes more backups before the pause).
            guard let restore = try await op.api.getIfPresent(Restore.self, namespace: ns, name: try #require(v.restore)) else { continue }
            checkedRestores += 1
            #expect(restore.metadata.labels?[BRLabels.verifies] == backup.name)
            #expect(restore.metadata.ownerReferences?.first?.kind == "Backup" && restore.metadata.ownerReferences?.first?.name == backup.name)
            #expect(restore.spec.br?.cluster == "scratch" && restore.spec.br?.checksum == true)
            #expect(restore.spec.local?.prefix == backup.spec.local?.prefix, "the Restore reads the backup's own data")
        }
        #expect(checkedRestores >= 1)
        // The web view shows what the server holds: each verified backup has its badge's data, on the
        // schedule's page and on its own; an older one, whose Job the schedule removed, says so.
        let page = try await op.web("schedules/default/nightly")
        let rows = page["backups"]?.arrayValue ?? []
        for backup in first {
            let row = rows.first { $0["name"]?.stringValue == backup.name }
            #expect(row?["verification"] == "Verified", "\(backup.name): \(String(describing: row))")
        }
        let oldest = try #require(first.min { ($0.metadata.creationTimestamp?.unixSeconds ?? 0) < ($1.metadata.creationTimestamp?.unixSeconds ?? 0) })
        let detail = try await op.web("backups/default/\(oldest.name)")
        #expect(detail.value(at: ["row", "verification"]) == "Verified", "\(detail)")
        if detail["log"] == nil {
            #expect(detail["logGone"]?.stringValue?.contains("its schedule removes the previous backup's Job") == true, "\(detail)")
        }
        var schedule = try await op.api.get(BackupSchedule.self, namespace: ns, name: "nightly")
        #expect(first.map(\.name).contains(schedule.status.lastVerifiedBackup ?? ""), "\(schedule.status)")
        #expect(schedule.status.lastVerifiedTime != nil && schedule.status.provenRestorable != nil, "\(schedule.status)")
        #expect(!(schedule.status.conditions ?? []).contains { $0.type == "VerificationFailed" })

        // The next backup's data does not match its checksums when restored: the verification fails.
        _ = try await op.api.patch(.backupSchedules, namespace: ns, name: "nightly", patch: .merge(["spec": ["backupTemplate": [
            "env": [["name": "BR_STANDIN_CHECKSUM_MISMATCH", "value": "1"]]]]]), subresource: nil)
        let before = Set(first.map(\.name))
        try await pause(false)
        #expect(await eventually(60) { ((try? await backups()) ?? []).contains { !before.contains($0.name) && $0.status.phase == .complete } })
        try await pause(true)
        // One verification at a time, the newest backup first; a loaded machine can still be slow.
        let failed = await eventually(180) {
            ((try? await backups()) ?? []).contains { !before.contains($0.name) && $0.status.verification?.phase == .failed }
        }
        let states = try await backups().map { "\($0.name): \($0.status.phase?.rawValue ?? "-")/\($0.status.verification?.phase.rawValue ?? "-")" }
        #expect(failed, "backups: \(states); log: \(op.tail())")
        let bad = try #require(try await backups().first { !before.contains($0.name) && $0.status.verification?.phase == .failed })
        let check = try #require(bad.status.verification?.checks?.first { !$0.passed })
        #expect(check.name == "checksum" && (check.message ?? "").contains("ErrRestoreChecksumMismatch"), "\(check)")
        // The schedule reads its backups' verifications on its next pass: its condition follows the Backup's status.
        _ = await eventually(30) {
            let s = try? await op.api.get(BackupSchedule.self, namespace: ns, name: "nightly")
            return s?.status.conditions?.contains { $0.type == "VerificationFailed" && $0.status == .true } == true
        }
        schedule = try await op.api.get(BackupSchedule.self, namespace: ns, name: "nightly")
        let condition = schedule.status.conditions?.first { $0.type == "VerificationFailed" }
        // (A loaded machine may make more than one backup before the pause: the condition names the latest failure.)
        let failedNames = try await backups().filter { $0.status.verification?.phase == .failed }.map(\.name)
        #expect(condition?.status == .true && failedNames.contains { (condition?.message ?? "").contains($0) }, "\(schedule.status)")
        #expect(first.map(\.name).contains(schedule.status.lastVerifiedBackup ?? ""), "the proven point stays the last verified backup")
        let events = try await op.events { items in
            items.contains { $0["reason"]?.stringValue == "VerificationFailed" && $0.value(at: ["involvedObject", "name"])?.stringValue == bad.name }
        }
        #expect(events.contains { $0["reason"]?.stringValue == "VerificationFailed" && $0["type"]?.stringValue == "Warning" })
        // And the webhook.
        let notified = await eventually(30) {
            let (_, out) = (try? await TestServers.run(["curl", "-s", receiver + "/received"])) ?? (1, "")
            return ((try? JSONParser.parse(out))?.arrayValue ?? []).contains {
                $0.value(at: ["body", "type"])?.stringValue == "backup.verification_failed" && $0.value(at: ["body", "name"])?.stringValue == bad.name
                    && ($0.value(at: ["body", "message"])?.stringValue ?? "").contains("checksum")
            }
        }
        #expect(notified, "no backup.verification_failed notification for \(bad.name)")

        // keep: 2 — at most two finished verification Restores remain (the Backups keep their outcome).
        #expect(await eventually(30) {
            let restores = (try? await op.api.list(Restore.self, namespace: ns, labelSelector: "\(BRLabels.verificationSchedule)=nightly")) ?? []
            return restores.filter { $0.metadata.deletionTimestamp == nil }.count <= 2
        })
        #expect(try await backups().filter { $0.status.verification != nil }.count >= 3)
    }

    @Test("through the scratch TiDB (MariaDB here): the backup's databases are dropped before the restore, others kept; queries run after it, a wrong answer fails the check")
    func cleanupDrops() async throws {
        let db = try await TestServers.offPool(TestServers.startMariaDB)
        _ = try await db.sql("CREATE DATABASE app; CREATE TABLE app.orders (id INT PRIMARY KEY); INSERT INTO app.orders VALUES (1); CREATE DATABASE keep_me;"
            + " CREATE TABLE keep_me.t (id INT); INSERT INTO keep_me.t VALUES (7);")
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(Self.scratch)
        try await op.applySecret("scratch-tidb", ["password": db.password])
        let target = "{cluster: scratch, tidb: {host: 127.0.0.1, port: \(db.port), user: \(db.user), secretName: scratch-tidb}}"
        try await op.apply(localSchedule("cleaned", root: root, spec: [
            "verification: {target: \(target), checks: {queries: [{sql: \"SELECT COUNT(*) FROM keep_me.t\", expect: \"1\"}]}}",
        ]))
        try await op.apply(localSchedule("badquery", root: root, spec: [
            "verification: {target: \(target), checks: {queries: [{sql: \"SELECT 1\"}, {sql: \"SELECT id FROM keep_me.t\", expect: \"8\"}]}}",
        ]))
        // One backup each is enough: each schedule pauses once it has one.
        func firstFinished(_ schedule: String) async throws -> Backup {
            #expect(await eventually(60) { !(((try? await op.api.list(Backup.self, namespace: "default", labelSelector: scheduleSelector(schedule))) ?? []).isEmpty) })
            _ = try await op.api.patch(.backupSchedules, namespace: "default", name: schedule, patch: .merge(["spec": ["pause": true]]), subresource: nil)
            var found: Backup?
            _ = await eventually(60) {
                found = ((try? await op.api.list(Backup.self, namespace: "default", labelSelector: scheduleSelector(schedule))) ?? [])
                    .first { $0.status.verification?.phase == .verified || $0.status.verification?.phase == .failed }
                return found != nil
            }
            return try #require(found, "no verification of \(schedule) finished; log: \(op.tail())")
        }
        let backup = try await firstFinished("cleaned")
        #expect(backup.status.verification?.phase == .verified, "\(backup.status.verification.map { "\($0)" } ?? "-")")
        #expect(backup.status.verification?.checks?.map(\.name) == ["restore", "checksum", "queries"], "\(backup.status.verification.map { "\($0)" } ?? "-")")
        let bad = try await firstFinished("badquery")
        let failedCheck = bad.status.verification?.checks?.first { !$0.passed }
        #expect(bad.status.verification?.phase == .failed && failedCheck?.name == "queries", "\(bad.status.verification.map { "\($0)" } ?? "-")")
        #expect((failedCheck?.message ?? "").contains("query 2 (SELECT id FROM keep_me.t) returned \"7\", expected \"8\""), "\(failedCheck.map { "\($0)" } ?? "-")")
        let restore = try await op.api.get(Restore.self, namespace: "default", name: try #require(backup.status.verification?.restore))
        #expect(restore.metadata.annotations?[BRLabels.verificationCleanupAnnotation] == "drop" && restore.spec.to?.port == Int32(db.port))
        let databases = try await db.sql("SHOW DATABASES").split(separator: "\n").map(String.init)
        #expect(!databases.contains("app"), "the backup's database was not dropped: \(databases)")
        #expect(databases.contains("keep_me"), "a database the backup does not hold was dropped: \(databases)")
        #expect(op.allLogs().contains("verification cleanup: dropped app from \(db.user)@127.0.0.1:\(db.port) before the restore"),
                "the job log does not say what it dropped")
        #expect(op.allLogs().contains("verification cleanup: dropped app from \(db.user)@127.0.0.1:\(db.port) after the run"))
        #expect(!op.allLogs().contains(db.password), "the scratch TiDB's password is in a log")
    }

    @Test("target.template: the scratch TidbCluster is created for the run, the restore waits until it is Ready, and it is deleted after")
    func templateCluster() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(localSchedule("tmpl", root: root, spec: [
            "verification: {target: {cluster: scratch-tmp, template: {version: v8.5.0, pdAddresses: [\"http://127.0.0.1:2381\"]}}}",
        ]))
        #expect(await eventually(60) { !(((try? await op.api.list(Backup.self, namespace: "default", labelSelector: scheduleSelector("tmpl"))) ?? []).isEmpty) })
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "tmpl", patch: .merge(["spec": ["pause": true]]), subresource: nil)
        // The cluster is made, labelled as the verification's; no Restore runs until it is Ready.
        var made: JSONValue?
        #expect(await eventually(60) {
            made = try? await op.api.getIfPresent(JSONValue.self, .tidbClusters, namespace: "default", name: "scratch-tmp")
            return made != nil
        }, "no scratch cluster; log: \(op.tail())")
        #expect(made?.value(at: ["metadata", "labels", BRLabels.scratchCluster]) != nil)
        try await Task.sleep(for: .seconds(2))
        #expect(try await op.api.list(Restore.self, namespace: "default").isEmpty, "a Restore ran into a cluster not yet Ready")
        // TiDB Operator would say it is Ready; here the test does.
        _ = try await op.api.patch(.tidbClusters, namespace: "default", name: "scratch-tmp",
                                   patch: .merge(["status": ["conditions": [["type": "Ready", "status": "True"]]]]), subresource: nil)
        let verified = await eventually(60) {
            ((try? await op.api.list(Backup.self, namespace: "default", labelSelector: scheduleSelector("tmpl"))) ?? []).contains { $0.status.verification?.phase == .verified }
        }
        #expect(verified, "log: \(op.tail())")
        #expect(await eventually(30) { (try? await op.api.getIfPresent(JSONValue.self, .tidbClusters, namespace: "default", name: "scratch-tmp")) == .some(nil) },
                "the scratch cluster was not deleted after the run")
        // The production cluster is never touched.
        #expect(try await op.api.getIfPresent(JSONValue.self, .tidbClusters, namespace: "default", name: "basic") != nil)
    }

    @Test("one Backup verified on demand by its annotation; an annotation naming the backup's own cluster is refused with a Warning")
    func adHoc() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(Self.scratch)
        try await op.apply(localBackup("once", root: root).replacingOccurrences(of: "metadata: {name: once, namespace: default}",
            with: "metadata: {name: once, namespace: default, annotations: {\(BRLabels.verifyAnnotation): default/scratch}}"))
        try await op.apply(localBackup("into-prod", root: root).replacingOccurrences(of: "metadata: {name: into-prod, namespace: default}",
            with: "metadata: {name: into-prod, namespace: default, annotations: {\(BRLabels.verifyAnnotation): basic}}"))
        try await op.apply(localBackup("garbled", root: root).replacingOccurrences(of: "metadata: {name: garbled, namespace: default}",
            with: "metadata: {name: garbled, namespace: default, annotations: {\(BRLabels.verifyAnnotation): a/b/c}}"))
        let verified = try await op.waitFor(Backup.self, "once", timeout: 60, "verified") { $0.status.verification?.phase == .verified }
        #expect(verified.status.verification?.target == "default/scratch")
        let restore = try await op.api.get(Restore.self, namespace: "default", name: Verification.restoreName(for: "once"))
        #expect(restore.metadata.labels?[BRLabels.verifies] == "once" && restore.metadata.labels?[BRLabels.verificationSchedule] == nil)
        func refusal(of name: String) -> ([JSONValue]) -> Bool {
            { $0.contains { $0["reason"]?.stringValue == "VerificationRefused" && $0.value(at: ["involvedObject", "name"])?.stringValue == name } }
        }
        let events = try await op.events(until: refusal(of: "into-prod"))
        let refused = try #require(events.first { $0["reason"]?.stringValue == "VerificationRefused" && $0.value(at: ["involvedObject", "name"])?.stringValue == "into-prod" })
        #expect((refused["message"]?.stringValue ?? "").contains("never into production"), "\(refused)")
        let garbled = try await op.events(until: refusal(of: "garbled"))
        #expect(garbled.contains { ($0["message"]?.stringValue ?? "").contains("expected NAMESPACE/CLUSTER or CLUSTER, got \"a/b/c\"") })
        let prod = try await op.backup("into-prod", reaches: ["Complete"])
        #expect(prod.status.verification == nil)
        #expect(try await op.api.getIfPresent(Restore.self, namespace: "default", name: Verification.restoreName(for: "into-prod")) == nil)
    }

    @Test("a verification that targets the cluster the schedule backs up is refused by the API server's admission")
    func productionTargetRefused() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        do {
            try await op.apply(localSchedule("oops", root: root, spec: ["verification: {target: {cluster: basic}}"]))
            Issue.record("a schedule verifying into its own cluster was accepted")
        } catch let e as KubeAPIError {
            #expect(e.code == 422 && e.message.contains("never into production"), "\(e)")
        }
        do {
            try await op.apply(localSchedule("nolog", root: root, spec: ["verification: {target: {cluster: scratch}, pointInTime: true}"]))
            Issue.record("pointInTime without a log backup was accepted")
        } catch let e as KubeAPIError {
            #expect(e.code == 422 && e.message.contains("verification.pointInTime requires spec.logBackupTemplate"), "\(e)")
        }
    }

    @Test("pointInTime: after the snapshot passes, the verification waits for the log's checkpoint to pass the backup, then restores that point from the backup and the schedule's log backup; the proven point moves to it")
    func pointInTime() async throws {
        let etcd = try await TestServers.offPool(TestServers.etcd)
        let op = try await Operator(extraArguments: ["--log-sync-interval", "300ms"])
        defer { op.stop() }
        let root = try op.localVolume()
        let ns = "default"
        try await op.apply(LogBackupTests.etcdCluster(pd: etcd))
        try await op.apply(Self.scratch)
        try await op.apply(localSchedule("pv", root: root, spec: [
            "logBackupTemplate:", "  br: {cluster: basic}", "  local:", "    prefix: pv-log",
            "    volume: {name: backups, hostPath: {path: \(root)}}", "    volumeMount: {name: backups, mountPath: \(root)}",
            "verification: {target: {cluster: scratch}, pointInTime: true}"]))
        let log = try await op.waitFor(Backup.self, "log-pv", timeout: 60, "the log backup running") { $0.status.phase == .running && $0.status.logCheckpointTs != nil }
        let selector = scheduleSelector("pv")
        /// The schedule's first Complete snapshot backup.
        func snapshot() async throws -> Backup? {
            try await op.api.list(Backup.self, namespace: ns, labelSelector: selector)
                .filter { $0.spec.effectiveBackupMode == .snapshot && $0.status.phase == .complete }
                .min { (UInt64($0.status.commitTs ?? "") ?? 0) < (UInt64($1.status.commitTs ?? "") ?? 0) }
        }
        #expect(await eventually(60) { (try? await snapshot()) != nil }, "log: \(op.tail())")
        _ = try await op.api.patch(.backupSchedules, namespace: ns, name: "pv", patch: .merge(["spec": ["pause": true]]), subresource: nil)
        #expect(await eventually(60) { (try? await snapshot())?.status.verification?.checks?.count == 2 }, "log: \(op.tail())")
        // The snapshot restored and passed; the log's checkpoint is still at its start, before the backup: it waits.
        var backup = try #require(try await snapshot())
        #expect(backup.status.verification?.phase == .running && backup.status.verification?.restore == Verification.restoreName(for: backup.name),
                "\(String(describing: backup.status.verification))")
        try await Task.sleep(for: .seconds(2))
        #expect(try await op.api.getIfPresent(Restore.self, namespace: ns, name: Verification.restoreName(for: backup.name, step: .pointInTime)) == nil)

        // TiKV moves the checkpoint an hour ahead and flushes it: the point restored is now (never past the clock).
        let ahead = TSO.fromUnixSeconds(Int64(Date().timeIntervalSince1970) + 3600)
        try await LogBackupTests().etcdPut(etcd, LogBackupKernel.globalCheckpointKey("log-pv"), LogBackupKernel.encodeCheckpoint(ahead))
        try LogBackupTests.flushCheckpoint(root + "/" + (log.spec.storage.local?.prefix ?? ""), ahead)
        let before = Int64(Date().timeIntervalSince1970)
        backup = try await op.waitFor(Backup.self, backup.name, timeout: 60, "verified through a point in time") { $0.status.verification?.phase != .running }
        let v = try #require(backup.status.verification)
        #expect(v.phase == .verified, "\(v); log: \(op.tail())")
        #expect(v.checks?.map(\.name) == ["restore", "checksum", "point-in-time", "point-in-time checksum"] && v.checks?.allSatisfy(\.passed) == true, "\(v)")
        let point = try #require(v.pitrRestoredTs.flatMap { UInt64($0) })
        #expect(point > (UInt64(backup.status.commitTs ?? "") ?? .max) && point < ahead, "point \(point), commit \(backup.status.commitTs ?? "")")
        let pitr = try await op.api.get(Restore.self, namespace: ns, name: Verification.restoreName(for: backup.name, step: .pointInTime))
        #expect(v.restore == pitr.name)
        #expect(pitr.spec.restoreMode == .pitr && pitr.spec.pitrRestoredTs == String(point) && pitr.status.phase == .complete, "\(pitr.spec)")
        #expect(pitr.spec.local?.prefix == log.spec.storage.local?.prefix && pitr.spec.pitrFullBackupStorageProvider.local?.prefix == backup.spec.local?.prefix)
        #expect(pitr.spec.br?.cluster == "scratch" && pitr.metadata.labels?[BRLabels.verifies] == backup.name)
        let argv = "restore point --pd=http://127.0.0.1:2381 --storage=local://\(root)/\(log.spec.storage.local?.prefix ?? "")"
            + " --checksum=true --restored-ts=\(point) --full-backup-storage=local://\(root)/\(backup.spec.local?.prefix ?? "")"
        #expect(op.allLogs().contains(argv), "\(op.allLogs().split(separator: "\n").filter { $0.contains("restore point") })")
        // The schedule's proven point is the point restored, not the snapshot.
        let proven = await eventually(30) {
            let s = try? await op.api.get(BackupSchedule.self, namespace: ns, name: "pv")
            return s?.status.lastVerifiedBackup == backup.name && s?.status.provenRestorable?.unixSeconds == TSO.unixMilliseconds(point) / 1000
        }
        let schedule = try await op.api.get(BackupSchedule.self, namespace: ns, name: "pv")
        #expect(proven, "\(schedule.status)")
        #expect(TSO.unixMilliseconds(point) / 1000 >= before - 5)
    }
}
