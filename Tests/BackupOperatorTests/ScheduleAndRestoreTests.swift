import BRModel
import BackupOperator
import ControllerKit
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

extension World {
    func scheduleYAML(_ name: String, cron: String, extra: String = "", template: String = "") -> String {
        """
        apiVersion: pingcap.com/v1alpha1
        kind: BackupSchedule
        metadata: {name: \(name), namespace: ns}
        spec:
          schedule: "\(cron)"
        \(extra)
          backupTemplate:
            cleanPolicy: Retain
            br: {cluster: basic}
            s3: {provider: aws, bucket: b, prefix: p, secretName: s3-secret}
        \(template)
        """
    }

    /// One reconcile as the controller runs it: a `requeue(after: .zero)` (retention after a slot's
    /// Backup was created) is followed at once, up to a bound.
    func schedules(_ name: String) async throws -> ReconcileOutcome {
        var outcome = try await schedule.reconcile(ObjectKey(namespace: "ns", name: name))
        for _ in 0..<5 where outcome == .requeue(after: .zero) {
            outcome = try await schedule.reconcile(ObjectKey(namespace: "ns", name: name))
        }
        return outcome
    }

    func backupNames() -> [String] { api.objects(.backups, namespace: "ns").map { $0.objectKey.name }.sorted() }

    func markAll(_ type: BackupConditionType, commitTs: (String) -> String? = { _ in nil }) async throws {
        for name in backupNames() {
            var b = try await getBackup(name)
            guard b.status.phase == nil else { continue }
            b.status.apply(BackupCondition(type: type), now: Time(clock.now()))
            b.status.commitTs = commitTs(name)
            _ = try await api.updateStatus(b)
        }
    }
}

@Suite struct ScheduleControllerTests {
    @Test func wakesAtTheNextSlotAndNamesTheBackupAfterIt() async throws {
        let w = World(start: Date(timeIntervalSince1970: 1_704_067_200))  // 2024-01-01T00:00:00Z
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("daily", cron: "0 2 * * *"))
        #expect(try await w.schedules("daily") == .requeue(after: .seconds(7200)))
        #expect(w.backupNames().isEmpty)
        var bs = try await w.api.get(BackupSchedule.self, namespace: "ns", name: "daily")
        #expect(bs.status.nextScheduledTime?.description == "2024-01-01T02:00:00Z")
        w.clock.advance(by: 7200.4)
        guard case .requeue(let wake) = try await w.schedules("daily") else { Issue.record("no requeue"); return }
        #expect(abs(wake.seconds - 86_399.6) < 0.01, "wakes at the next slot: \(wake)")
        #expect(w.backupNames() == ["daily-2024-01-01t02-00-00"])
        let backup = try await w.getBackup("daily-2024-01-01t02-00-00")
        #expect(backup.spec.s3?.prefix == "p/basic-pd.ns-2379-2024-01-01t02-00-00")
        #expect(backup.metadata.labels?["tidb.pingcap.com/backup-schedule"] == "daily")
        bs = try await w.api.get(BackupSchedule.self, namespace: "ns", name: "daily")
        #expect(bs.status.lastBackup == "daily-2024-01-01t02-00-00")
        #expect(bs.status.lastBackupTime?.description == "2024-01-01T02:00:00Z")
        #expect(bs.status.nextScheduledTime?.description == "2024-01-02T02:00:00Z")
        // Reconciling again in the same slot changes nothing.
        w.api.resetCalls()
        _ = try await w.schedules("daily")
        #expect(w.writes.isEmpty, "\(w.writes)")
    }

    @Test("verification.schedule: nothing is verified before its slot; at the slot the newest unverified backup is, then nothing until the next")
    func verificationOnItsOwnSlots() async throws {
        let w = World(start: Date(timeIntervalSince1970: 1_704_067_200))  // 2024-01-01T00:00:00Z
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("v", cron: "@every 1m",
                                                                extra: "  verification: {schedule: \"*/10 * * * *\", target: {cluster: scratch}}"))
        func restores() async throws -> [Restore] { try await w.api.list(Restore.self, namespace: "ns", labelSelector: "\(BRLabels.verificationSchedule)=v") }
        for _ in 0..<3 {
            w.clock.advance(by: 61)
            _ = try await w.schedules("v")
            try await w.markAll(.complete)
            _ = try await w.schedules("v")
        }
        #expect(try await restores().isEmpty, "verified before the verification slot")
        let newest = w.backupNames().last!  // the newest Complete one (the slot at 00:10 makes another, not yet run)
        guard case .requeue = try await w.schedules("v") else { Issue.record("no wake-up for the verification slot"); return }
        w.clock.advance(by: 600 - 3 * 61)  // 00:10:00
        _ = try await w.schedules("v")
        let started = try await restores()
        #expect(started.count == 1)
        #expect(started.first?.metadata.labels?[BRLabels.verifies] == newest, "the newest backup is verified at the slot: \(started.map(\.name))")
        var run = try #require(started.first)
        run.status.apply(RestoreCondition(type: .complete), now: Time(w.clock.now()))
        _ = try await w.api.updateStatus(run)
        _ = try await w.settleBackup(newest)
        #expect(try await w.getBackup(newest).status.verification?.phase == .verified)
        _ = try await w.schedules("v")
        #expect(try await restores().count == 1, "a second verification before the next slot")
        let schedule = try await w.api.get(BackupSchedule.self, namespace: "ns", name: "v")
        #expect(schedule.status.lastVerifiedBackup == newest && schedule.status.lastVerificationStart?.description == "2024-01-01T00:10:00Z")
    }

    @Test("without verification.schedule the newest unverified backup goes first, one at a time; older ones follow when it is done")
    func verificationNewestFirst() async throws {
        let w = World(start: Date(timeIntervalSince1970: 1_704_067_200))
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("n", cron: "@every 1m"))
        func restores() async throws -> [Restore] { try await w.api.list(Restore.self, namespace: "ns", labelSelector: "\(BRLabels.verificationSchedule)=n") }
        // Three Complete backups, then verification is turned on: none of them is verified yet.
        for _ in 0..<3 {
            w.clock.advance(by: 61)
            _ = try await w.schedules("n")
            try await w.markAll(.complete)
        }
        _ = try await w.api.patch(.backupSchedules, namespace: "ns", name: "n",
                                  patch: .merge(["spec": ["verification": ["target": ["cluster": "scratch"]]]]), subresource: nil)
        let names = w.backupNames()
        #expect(names.count >= 3)
        _ = try await w.schedules("n")
        var started = try await restores()
        #expect(started.map { $0.metadata.labels?[BRLabels.verifies] } == [names.last], "\(started.map(\.name)) of \(names)")
        _ = try await w.schedules("n")
        #expect(try await restores().count == 1, "one at a time")
        var run = try #require(started.first)
        run.status.apply(RestoreCondition(type: .complete), now: Time(w.clock.now()))
        _ = try await w.api.updateStatus(run)
        _ = try await w.settleBackup(names.last!)
        _ = try await w.schedules("n")
        started = try await restores()
        #expect(Set(started.compactMap { $0.metadata.labels?[BRLabels.verifies] }) == [names.last!, names[names.count - 2]], "\(started.map(\.name))")
    }

    @Test func slotsFollowTheScheduleTimeZoneAcrossDaylightSaving() async throws {
        // New York springs forward on 2024-03-10: 02:30 local does not exist that day.
        let w = World(start: Date(timeIntervalSince1970: 1_709_856_000))  // 2024-03-08T00:00:00Z
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("ny", cron: "30 2 * * *", extra: "  timeZone: America/New_York"))
        var created: [String] = []
        for _ in 0..<8 {
            let outcome = try await w.schedules("ny")
            try await w.markAll(.complete)
            guard case .requeue(let after) = outcome else { break }
            w.clock.advance(by: after.seconds + 0.5)
            created = w.backupNames()
        }
        // 02:30 EST = 07:30Z before the change, 02:30 EDT = 06:30Z after; nothing on the 10th.
        #expect(Array(created.prefix(4)) == ["ny-2024-03-08t07-30-00", "ny-2024-03-09t07-30-00", "ny-2024-03-11t06-30-00", "ny-2024-03-12t06-30-00"])
    }

    @Test func anInvalidTimeZoneIsAnInvalidCondition() async throws {
        let w = World()
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("tz", cron: "0 * * * *", extra: "  timeZone: Mars/Olympus_Mons"))
        #expect(try await w.schedules("tz") == .done)
        let bs = try await w.api.get(BackupSchedule.self, namespace: "ns", name: "tz")
        #expect(bs.status.conditions?.first?.type == "Invalid")
        #expect(bs.status.conditions?.first?.message?.contains("spec.timeZone") == true)
        // The condition is an Event too, once.
        _ = try await w.schedules("tz")
        let events = w.api.objects(.events, namespace: "ns").filter { $0["reason"] == "InvalidSpec" }
        #expect(events.count == 1 && events.first?["type"] == "Warning")
        #expect(events.first?["message"]?.stringValue?.contains("spec.timeZone") == true)
    }

    @Test func afterALongPauseOnlyTheLatestSlotRuns() async throws {
        let start = Date(timeIntervalSince1970: 1_704_067_200)
        let w = World(start: start)
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("hourly", cron: "0 * * * *", extra: "  pause: true"))
        _ = try await w.schedules("hourly")
        var bs = try await w.api.get(BackupSchedule.self, namespace: "ns", name: "hourly")
        #expect(bs.status.nextScheduledTime == nil)
        w.clock.advance(by: 2 * 366 * 86400 + 1800)  // two years: 17,000+ missed slots
        _ = try await w.schedules("hourly")
        #expect(w.backupNames().isEmpty, "paused")
        bs = try await w.api.get(BackupSchedule.self, namespace: "ns", name: "hourly")
        bs.spec.pause = false
        _ = try await w.api.update(bs)
        _ = try await w.schedules("hourly")
        #expect(w.backupNames() == ["hourly-2026-01-02t00-00-00"])
    }

    @Test func oneBackupAtATimeAndAFailedOneDoesNotBlock() async throws {
        let w = World(start: Date(timeIntervalSince1970: 1_704_067_200))
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("s", cron: "@every 1m"))
        w.clock.advance(by: 61)
        _ = try await w.schedules("s")
        #expect(w.backupNames().count == 1)
        w.clock.advance(by: 60)
        #expect(try await w.schedules("s") == .requeue(after: .seconds(10)))
        #expect(w.backupNames().count == 1, "the first is still running")
        // Deliberate difference from TiDB Operator (8.4 row 4): Failed without ever being Scheduled does not block.
        try await w.markAll(.failed)
        _ = try await w.schedules("s")
        #expect(w.backupNames().count == 2)
    }

    /// Issue: after one late backup, every later slot of an `@every` schedule was taken from "now", and
    /// nextScheduledTime was rewritten on every poll while a backup ran.
    @Test func everySchedulesKeepTheirGridAfterALateBackup() async throws {
        let t0 = Date(timeIntervalSince1970: 1_704_067_200)
        let w = World(start: t0)
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("g", cron: "@every 1m"))
        w.clock.advance(by: 60)
        _ = try await w.schedules("g")
        #expect(w.backupNames().count == 1)
        // The first backup runs past the next slot (t0+120) by 45 s.
        w.clock.advance(by: 65)
        #expect(try await w.schedules("g") == .requeue(after: .seconds(10)))
        w.api.resetCalls()
        w.clock.advance(by: 10)
        #expect(try await w.schedules("g") == .requeue(after: .seconds(10)))
        #expect(w.writes.filter { $0.resource.hasPrefix("backupschedules") }.isEmpty, "nothing changed: no status write while waiting")
        w.clock.advance(by: 20)  // t0+155
        try await w.markAll(.complete)
        let outcome = try await w.schedules("g")
        #expect(w.backupNames().count == 2, "the late slot at t0+120 runs now")
        // The next one is at t0+180, on the grid, not now + 1m (t0+215).
        #expect(outcome == .requeue(after: .seconds(25)), "\(outcome)")
        let bs = try await w.api.get(BackupSchedule.self, namespace: "ns", name: "g")
        #expect(bs.status.nextScheduledTime == Time(t0.addingTimeInterval(180)))
        #expect(bs.status.lastBackupTime == Time(t0.addingTimeInterval(120)))
    }

    @Test func groupMembersWaitForEachOther() async throws {
        let w = World(start: Date(timeIntervalSince1970: 1_704_067_200))
        for name in ["g1", "g2"] {
            var yaml = w.scheduleYAML(name, cron: "@every 1m")
            yaml = yaml.replacingOccurrences(of: "metadata: {name: \(name), namespace: ns}",
                                             with: "metadata: {name: \(name), namespace: ns, labels: {tidb.pingcap.com/backup-schedule-group: grp}}")
            _ = try await w.apply(.backupSchedules, yaml)
        }
        w.clock.advance(by: 61)
        _ = try await w.schedules("g1")
        #expect(try await w.schedules("g2") == .requeue(after: .seconds(10)))
        #expect(w.backupNames().count == 1)
        try await w.markAll(.complete)
        _ = try await w.schedules("g2")
        #expect(w.backupNames().count == 2)
    }

    @Test func aRestartInTheMiddleOfASlotNeverMakesTwoBackups() async throws {
        let w = World(start: Date(timeIntervalSince1970: 1_704_067_200))
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("r", cron: "*/5 * * * *"))
        w.clock.advance(by: 301)
        // The Backup is created, then the status write is lost.
        w.api.failNext(.update, resource: .backupSchedules, subresource: .some("status"))
        await #expect(throws: KubeAPIError.self) { _ = try await w.schedules("r") }
        #expect(w.backupNames() == ["r-2024-01-01t00-05-00"])
        w.clock.advance(by: 20)
        _ = try await w.schedules("r")
        #expect(w.backupNames() == ["r-2024-01-01t00-05-00"], "adopted, not created again")
        let bs = try await w.api.get(BackupSchedule.self, namespace: "ns", name: "r")
        #expect(bs.status.lastBackup == "r-2024-01-01t00-05-00")
    }

    @Test func aNameTakenBySomeoneElseIsSkippedWithAWarning() async throws {
        let w = World(start: Date(timeIntervalSince1970: 1_704_067_200))
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("t", cron: "*/5 * * * *"))
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("t-2024-01-01t00-05-00", cleanPolicy: "Retain"))
        w.clock.advance(by: 301)
        _ = try await w.schedules("t")
        #expect(w.eventReasons().contains("BackupNameTaken"))
        let bs = try await w.api.get(BackupSchedule.self, namespace: "ns", name: "t")
        #expect(bs.status.lastBackupTime?.description == "2024-01-01T00:05:00Z")
        #expect(bs.status.lastBackup == nil)
    }

    @Test func aSlotPastTheStartingDeadlineIsSkipped() async throws {
        let w = World(start: Date(timeIntervalSince1970: 1_704_067_200))
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("late", cron: "0 * * * *", extra: "  startingDeadlineSeconds: 60"))
        w.clock.advance(by: 3600 + 120)
        _ = try await w.schedules("late")
        #expect(w.backupNames().isEmpty)
        #expect(w.eventReasons().contains("MissedSchedule"))
        w.clock.advance(by: 3600 - 120 + 30)
        _ = try await w.schedules("late")
        #expect(w.backupNames() == ["late-2024-01-01t02-00-00"])
    }

    @Test func countRetentionKeepsRunningBackupsAndTheNewestComplete() async throws {
        let w = World(start: Date(timeIntervalSince1970: 1_704_067_200))
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("keep", cron: "@every 1h", extra: "  maxBackups: 2"))
        for _ in 0..<5 {
            w.clock.advance(by: 3601)
            _ = try await w.schedules("keep")
            try await w.markAll(.complete)
        }
        #expect(w.backupNames().count == 2)
        // Now the newest two fail: the newest Complete one must survive although it is past maxBackups.
        for _ in 0..<2 {
            w.clock.advance(by: 3601)
            _ = try await w.schedules("keep")
            try await w.markAll(.failed)
        }
        _ = try await w.schedules("keep")
        let names = w.backupNames()
        #expect(names.count == 3)
        let complete = try await names.asyncFilter { try await w.getBackup($0).status.phase == .complete }
        #expect(complete.count == 1)
    }

    @Test("a schedule whose every backup fails says so in a BackupsFailing condition and one Warning per new failure; a Complete backup clears it")
    func failingScheduleIsReported() async throws {
        let w = World(start: Date(timeIntervalSince1970: 1_704_067_200))
        _ = try await w.apply(.backupSchedules, w.scheduleYAML("broken", cron: "@every 1h", extra: "  maxBackups: 2"))
        for _ in 0..<4 {
            w.clock.advance(by: 3601)
            _ = try await w.schedules("broken")
            for name in w.backupNames() {
                var b = try await w.getBackup(name)
                guard b.status.phase == nil else { continue }
                b.status.apply(BackupCondition(type: .failed, reason: "BackupDataToRemoteFailed", message: "NoSuchBucket: The specified bucket does not exist"),
                               now: Time(w.clock.now()))
                _ = try await w.api.updateStatus(b)
            }
            _ = try await w.schedules("broken")
        }
        // Failed backups count in retention: never more than maxBackups of them.
        #expect(w.backupNames().count == 2)
        let schedule = try await w.api.get(BackupSchedule.self, namespace: "ns", name: "broken")
        let failing = schedule.status.conditions?.first { $0.type == "BackupsFailing" }
        #expect(failing?.reason == "BackupsFailing")
        #expect(failing?.message?.contains("BackupDataToRemoteFailed") == true)
        #expect(failing?.message?.contains("every backup so far (2) failed") == true, "\(String(describing: failing))")
        #expect(failing?.message?.contains("NoSuchBucket") == true)
        let warnings = w.api.objects(.events, namespace: "ns").filter { $0["reason"] == "BackupsFailing" }
        #expect(warnings.count >= 1 && warnings.allSatisfy { $0["type"] == "Warning" })
        w.clock.advance(by: 3601)
        _ = try await w.schedules("broken")
        try await w.markAll(.complete)
        _ = try await w.schedules("broken")
        let healed = try await w.api.get(BackupSchedule.self, namespace: "ns", name: "broken")
        #expect(healed.status.conditions?.contains { $0.type == "BackupsFailing" } != true)
        #expect(w.eventReasons().contains("BackupsRecovered"))
    }

    static func backup(_ name: String, created: Int64, commit: String, phase: BackupConditionType) -> Backup {
        var b = Backup(name: name, namespace: "ns", spec: BackupSpec())
        b.metadata.creationTimestamp = Time(unixSeconds: created)
        b.status.phase = phase
        b.status.commitTs = commit
        return b
    }

    @Test("time-based retention keeps at most three Failed backups, even behind a Complete one that has not expired")
    func timeRetentionBoundsFailedBackups() throws {
        let mar5: Int64 = 1_709_596_800
        let list = [Self.backup("ok", created: mar5, commit: "2024-03-05 00:00:00", phase: .complete)]
            + (1...8).map { Self.backup("f\($0)", created: mar5 + Int64($0) * 60, commit: "", phase: .failed) }
        let expired = ScheduleReconciler.expiredByTime(list, reserved: GoDuration(seconds: 72 * 3600),
                                                       now: Date(timeIntervalSince1970: TimeInterval(mar5 + 3600)))
        #expect(expired.map(\.name).sorted() == ["f1", "f2", "f3", "f4", "f5"])
    }

    @Test("#5604: a backup without a commit TS (Failed before BR reported one) ages from its creation, so one that just failed is not expired behind expired ones")
    func timeRetentionAgesABackupWithoutCommitTsFromItsCreation() throws {
        let day: Int64 = 86400, mar5: Int64 = 1_709_596_800
        let now = mar5 + 10 * day
        let list = [Self.backup("a", created: mar5, commit: "2024-03-05 00:00:00", phase: .complete),
                    Self.backup("b", created: mar5 + day, commit: "2024-03-06 00:00:00", phase: .complete),
                    Self.backup("old-failure", created: mar5 + 2 * day, commit: "", phase: .failed),
                    Self.backup("just-failed", created: now - 60, commit: "", phase: .failed)]
        let expired = ScheduleReconciler.expiredByTime(list, reserved: GoDuration(seconds: 72 * 3600), now: Date(timeIntervalSince1970: TimeInterval(now)))
        #expect(expired.map(\.name) == ["a", "old-failure"], "b is the newest Complete; just-failed is a minute old")
    }

    @Test func timeRetentionFollowsCommitTimestamps() throws {
        // Reference 8.5 [derived]: now 2024-03-10T00:00Z, 72h → delete 03-05 and 03-06 only.
        let day: Int64 = 86400, mar5: Int64 = 1_709_596_800
        let list = [Self.backup("a", created: mar5, commit: "2024-03-05 00:00:00", phase: .complete),
                    Self.backup("b", created: mar5 + day, commit: "2024-03-06 00:00:00", phase: .complete),
                    Self.backup("c", created: mar5 + 3 * day, commit: "2024-03-08 00:00:00", phase: .complete),
                    Self.backup("d", created: mar5 + 4 * day, commit: "", phase: .failed)]
        let expired = ScheduleReconciler.expiredByTime(list, reserved: GoDuration(seconds: 72 * 3600),
                                                       now: Date(timeIntervalSince1970: TimeInterval(mar5 + 5 * day)))
        #expect(expired.map(\.name) == ["a", "b"])
        // The newest Complete one is kept even when everything has expired.
        let all = ScheduleReconciler.expiredByTime(Array(list.prefix(3)), reserved: GoDuration(seconds: 3600),
                                                   now: Date(timeIntervalSince1970: TimeInterval(mar5 + 30 * day)))
        #expect(all.map(\.name) == ["a", "b"])
    }
}

extension Array {
    func asyncFilter(_ predicate: (Element) async throws -> Bool) async rethrows -> [Element] {
        var out: [Element] = []
        for e in self where try await predicate(e) { out.append(e) }
        return out
    }
}

@Suite struct RestoreControllerTests {
    static let restoreYAML = """
        apiVersion: pingcap.com/v1alpha1
        kind: Restore
        metadata: {name: r1, namespace: ns}
        spec:
          br: {cluster: basic}
          s3: {provider: aws, region: us-west-2, bucket: my-bucket, prefix: my-folder, secretName: s3-secret}
        """

    @Test func aBRRestoreGetsItsJobAndAFailedJobFailsIt() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.restores, Self.restoreYAML)
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "r1"))
        let job = try #require(w.job("restore-r1"))
        let container = try #require(job.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first)
        #expect(container["args"] == ["restore", "--namespace=ns", "--restoreName=r1", "--tikvVersion=v8.5.0",
                                      "--pd=http://127.0.0.1:2379", "--mode=snapshot"])
        #expect(container["name"] == "restore")
        #expect(job.value(at: ["spec", "template", "spec", "terminationGracePeriodSeconds"]) == .int(10))
        var r = try await w.api.get(Restore.self, namespace: "ns", name: "r1")
        #expect(r.status.phase == .scheduled)
        // Twice: nothing changes.
        w.api.resetCalls()
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "r1"))
        #expect(w.writes.isEmpty)
        try await w.finishJob("restore-r1", failed: true)
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "r1"))
        r = try await w.api.get(Restore.self, namespace: "ns", name: "r1")
        #expect(r.status.phase == .failed)
        #expect(r.status.conditions?.last?.reason == "AlreadyFailed")
        #expect(r.status.conditions?.last?.message == "Job restore-r1 has failed: BackoffLimitExceeded")
    }

    @Test func aCrashBetweenJobCreationAndTheStatusWriteIsHarmless() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.restores, Self.restoreYAML)
        w.api.failNext(.update, resource: .restores, subresource: .some("status"))
        await #expect(throws: KubeAPIError.self) { _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "r1")) }
        #expect(w.job("restore-r1") != nil)
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "r1"))
        #expect(try await w.api.get(Restore.self, namespace: "ns", name: "r1").status.phase == .scheduled)
        #expect(w.api.objects(.jobs, namespace: "ns").count == 1)
    }

    @Test func aLightningImportGetsItsPVCAndImportJob() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.restores, """
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: imp, namespace: ns}
            spec:
              to: {host: 10.0.0.2, port: 4000, user: root, secretName: backup-tidb-secret}
              storageSize: 20Gi
              s3: {provider: aws, path: s3://dumps/export-1/, secretName: s3-secret}
            """)
        _ = try await w.restore.reconcile(ObjectKey(namespace: "ns", name: "imp"))
        let job = try #require(w.job("restore-imp"))
        #expect(job.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["args"]
            == ["import", "--namespace=ns", "--restoreName=imp", "--backupPath=s3://dumps/export-1/"])
        #expect(w.api.objects(.persistentVolumeClaims, namespace: "ns").first?.objectKey.name.hasPrefix("restore-pvc-") == true)
    }
}
