import Foundation
import KubeModel
import Testing

@testable import BRModel

@Suite("CompactBackup rules: retry back-off, a schedule's compaction progress and next range (reference 5.8, 6.9, 8.2)")
struct CompactBackupRulesTests {
    static let logStart = Time(unixSeconds: 1_709_251_200)  // 2024-03-01T00:00:00Z

    static func tso(_ seconds: Int64) -> UInt64 { TSO.fromUnixSeconds(seconds) }

    @Test("back-off: 0 s after the first failure, then 10 s doubling, at most 6 min; maxRetryTimes retries after the first attempt")
    func backoff() {
        #expect((1...8).map { CompactRetry.delay(afterFailures: $0) } == [0, 20, 40, 80, 160, 320, 360, 360])
        #expect(CompactRetry.delay(afterFailures: 0) == 0)
        #expect(!CompactRetry.exhausted(failures: 6, maxRetryTimes: 6))
        #expect(CompactRetry.exhausted(failures: 7, maxRetryTimes: 6))
        #expect(CompactRetry.exhausted(failures: 1, maxRetryTimes: 0))
    }

    @Test("8.2: compact with logBackupStartTs 2024-03-01T00:00:00Z, prefix logs, start 00:00, end +90 min")
    func build() throws {
        var schedule = BackupSchedule(name: "daily", namespace: "ns", spec: BackupScheduleSpec(schedule: "0 0 * * *", backupTemplate: BackupSpec()))
        var template = CompactSpec()
        template.s3 = S3StorageProvider(provider: .aws, prefix: "logs")
        schedule.spec.compactBackupTemplate = template
        schedule.metadata.uid = "u"
        schedule.status.logBackupStartTs = Self.logStart
        let c = try #require(schedule.makeCompactBackup(start: Self.logStart, end: Time(unixSeconds: Self.logStart.unixSeconds + 5400),
                                                        now: Time(unixSeconds: 1_709_622_489)))
        #expect(c.spec.s3?.prefix == "logs/log-2024-03-01t00-00-00")
        #expect(c.spec.startTs == "2024-03-01 00:00:00" && c.spec.endTs == "2024-03-01 01:30:00")
        #expect(c.name == "compact-daily-2024-03-05t07-08-09")
        #expect(c.metadata.labels?[BRLabels.backupSchedule] == "daily")
        #expect(c.metadata.ownerReferences?.first?.uid == "u")
        // The range is read in UTC whatever the process's zone (reference 9.5 item 9).
        let range = try c.range()
        #expect(TSO.unixMilliseconds(range.from) == Self.logStart.unixSeconds * 1000)
        #expect(TSO.unixMilliseconds(range.until) == (Self.logStart.unixSeconds + 5400) * 1000)
    }

    func compact(_ state: CompactState?, start: String = "2024-03-01 00:00:00", endTs: String? = nil) -> CompactBackup {
        var spec = CompactSpec()
        spec.startTs = start
        var c = CompactBackup(name: "c", namespace: "ns", spec: spec)
        c.status.state = state?.rawValue
        c.status.endTs = endTs
        return c
    }

    @Test("progress: Complete → its endTs; Failed → its start; running → blocked; before the log's start or not past the current progress → ignored")
    func progress() {
        let end = String(Self.tso(Self.logStart.unixSeconds + 600))
        #expect(ScheduleCompaction.progress(last: compact(.complete, endTs: end), logStart: Self.logStart, current: nil)
                == (Time(unixSeconds: Self.logStart.unixSeconds + 600), false))
        #expect(ScheduleCompaction.progress(last: compact(.failed, start: "2024-03-01 00:05:00"), logStart: Self.logStart, current: nil)
                == (Time(unixSeconds: Self.logStart.unixSeconds + 300), false))
        for state in [CompactState.running, .prepare, .scheduled, .retryFailed] {
            #expect(ScheduleCompaction.progress(last: compact(state), logStart: Self.logStart, current: nil) == (nil, true))
        }
        #expect(ScheduleCompaction.progress(last: compact(.failed, start: "2024-02-29 23:00:00"), logStart: Self.logStart, current: nil) == (nil, false))
        #expect(ScheduleCompaction.progress(last: compact(.complete, endTs: end), logStart: Self.logStart,
                                            current: Time(unixSeconds: Self.logStart.unixSeconds + 900)) == (nil, false))
        #expect(ScheduleCompaction.progress(last: nil, logStart: Self.logStart, current: nil) == (nil, false))
    }

    @Test("next range: from the progress (or the log's start, or minCompactStartTs) to the checkpoint, at most three intervals; none while the log is young or the last began within an interval")
    func nextRange() {
        let s = Self.logStart.unixSeconds
        let now = Time(unixSeconds: s + 100_000)
        func next(progress: Int64? = nil, checkpoint: Int64, minStart: Int64? = nil, last: Int64? = nil) -> [Int64]? {
            ScheduleCompaction.nextRange(progress: progress.map { Time(unixSeconds: $0) }, logStart: Self.logStart, checkpoint: Self.tso(checkpoint),
                                         minStart: minStart.map(Self.tso), interval: 3600, lastExecution: last.map { Time(unixSeconds: $0) },
                                         now: now).map { [$0.start.unixSeconds - s, $0.end.unixSeconds - s] }
        }
        #expect(next(checkpoint: s + 5400) == [0, 5400])
        #expect(next(checkpoint: s + 50_000) == [0, 10_800])
        #expect(next(progress: s + 10_800, checkpoint: s + 50_000) == [10_800, 21_600])
        #expect(next(checkpoint: s + 1800) == nil, "the log is younger than one interval")
        #expect(next(progress: s + 5400, checkpoint: s + 5400) == nil, "nothing new since the last compaction")
        #expect(next(checkpoint: s + 50_000, minStart: s + 20_000) == [20_000, 30_800])
        #expect(next(checkpoint: s + 50_000, last: now.unixSeconds - 600) == nil, "the last began ten minutes ago")
        #expect(next(checkpoint: s + 50_000, last: now.unixSeconds - 3600) == [0, 10_800])
        #expect(ScheduleCompaction.nextRange(progress: nil, logStart: Self.logStart, checkpoint: 0, minStart: nil, interval: 3600,
                                             lastExecution: nil, now: now) == nil, "no checkpoint yet")
    }
}

@Suite("The restorable window of a schedule's backups")
struct RestorableWindowTests {
    func backup(_ name: String, mode: BackupMode = .snapshot, phase: BackupConditionType = .complete, commit: Int64? = nil,
                checkpoint: Int64? = nil, truncated: Int64? = nil) -> Backup {
        var spec = BackupSpec()
        spec.backupMode = mode
        var b = Backup(name: name, namespace: "ns", spec: spec)
        b.status.phase = phase
        b.status.commitTs = commit.map { String(TSO.fromUnixSeconds($0)) }
        b.status.logCheckpointTs = checkpoint.map { String(TSO.fromUnixSeconds($0)) }
        b.status.logSuccessTruncateUntil = truncated.map { String(TSO.fromUnixSeconds($0)) }
        return b
    }

    @Test("with a running log: the oldest snapshot the log covers to the checkpoint; without: the snapshots' points; nothing without a Complete snapshot")
    func window() throws {
        let snaps = [backup("s1", commit: 1000), backup("s2", commit: 2000), backup("s3", commit: 3000), backup("f", phase: .failed)]
        let log = backup("log", mode: .log, phase: .running, commit: 1500, checkpoint: 3600)
        let w = try #require(RestorableWindow.compute(snaps + [log], logBackup: "log"))
        #expect(w.from.unixSeconds == 2000 && w.until.unixSeconds == 3600 && w.continuous)
        let truncated = backup("log", mode: .log, phase: .running, commit: 1500, checkpoint: 3600, truncated: 2500)
        #expect(RestorableWindow.compute(snaps + [truncated], logBackup: "log")?.from.unixSeconds == 3000)
        let stopped = backup("log", mode: .log, phase: .stopped, commit: 1500, checkpoint: 3600)
        let discrete = try #require(RestorableWindow.compute(snaps + [stopped], logBackup: "log"))
        #expect(discrete.from.unixSeconds == 1000 && discrete.until.unixSeconds == 3000 && !discrete.continuous)
        #expect(RestorableWindow.compute([backup("f", phase: .failed), log], logBackup: "log") == nil)
    }
}
