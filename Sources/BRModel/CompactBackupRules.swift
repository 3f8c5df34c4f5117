import Foundation
import KubeModel

/// `CompactBackup.status.state` (reference 6.9): `Scheduled` → `Prepare` (Job created) → `Running`
/// (written by the job binary) → `Complete`, or `RetryFailed` between attempts, or `Failed`.
public enum CompactState: String, Sendable, CaseIterable {
    case scheduled = "Scheduled", prepare = "Prepare", running = "Running", complete = "Complete"
    case retryFailed = "RetryFailed", failed = "Failed"
}

extension CompactBackup {
    public var name: String { metadata.name ?? "" }
    public var namespace: String { metadata.namespace ?? "" }
    public var state: CompactState? { status.state.flatMap(CompactState.init(rawValue:)) }
    public var isFinished: Bool { state == .complete || state == .failed }
    /// The Job is named after the CompactBackup, as TiDB Operator names it.
    public var jobName: String { name }
    public var effectiveConcurrency: Int { spec.concurrency ?? 4 }
    public var effectiveMaxRetryTimes: Int { Int(spec.maxRetryTimes ?? 6) }

    /// The range to compact as TSOs. Times without a zone are UTC, the zone the schedule writes them
    /// in (TiDB Operator reads them in the pod's local zone, reference 9.5 item 9).
    public func range() throws -> (from: UInt64, until: UInt64) {
        let utc = TimeZone(identifier: "UTC")!
        let from: UInt64, until: UInt64
        do { from = try TSO.parse(spec.startTs ?? "", zone: utc) } catch { throw CompactRuleError("spec.startTs: \(error)") }
        do { until = try TSO.parse(spec.endTs ?? "", zone: utc) } catch { throw CompactRuleError("spec.endTs: \(error)") }
        guard from > 0 else { throw CompactRuleError("spec.startTs: start-ts must be set") }
        guard until >= from else { throw CompactRuleError("spec.endTs: end-ts \(until) is before start-ts \(from)") }
        return (from, until)
    }
}

public struct CompactRuleError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// When a CompactBackup tries again (reference 6.9): the n-th failure waits `10 s × 2^(n−1)` after it
/// was detected, 0 for the first, at most 6 minutes; after `maxRetryTimes` retries it fails for good.
public enum CompactRetry {
    public static func delay(afterFailures n: Int) -> Int64 {
        guard n > 1 else { return 0 }
        return min(10 * (Int64(1) << Int64(min(n - 1, 20))), 360)
    }

    /// True when every retry allowed is spent: `failures` attempts failed and only `maxRetryTimes`
    /// retries follow the first attempt.
    public static func exhausted(failures: Int, maxRetryTimes: Int) -> Bool { failures > maxRetryTimes }
}

/// tikv-ctl's progress of a compaction (its "Finishing compaction." log fields), as TiDB Operator
/// writes it into `status.progress`.
public struct CompactProgress: Equatable, Sendable {
    public var metaCompleted: UInt64 = 0
    public var metaTotal: UInt64 = 0
    public var bytesToCompact: UInt64 = 0
    public var bytesCompacted: UInt64 = 0
    public init(metaCompleted: UInt64 = 0, metaTotal: UInt64 = 0, bytesToCompact: UInt64 = 0, bytesCompacted: UInt64 = 0) {
        self.metaCompleted = metaCompleted
        self.metaTotal = metaTotal
        self.bytesToCompact = bytesToCompact
        self.bytesCompacted = bytesCompacted
    }
    public var text: String { "[READ_META(\(metaCompleted)/\(metaTotal)),COMPACT_WORK(\(bytesCompacted)/\(bytesToCompact))]" }
}

/// A schedule's compactions (reference 5.8) as pure rules: how far compaction has come, and the next
/// range to compact.
public enum ScheduleCompaction {
    /// The progress the last CompactBackup proves, or nil when it proves nothing new; `blocked` while
    /// it has not finished (no new compaction starts meanwhile).
    public static func progress(last: CompactBackup?, logStart: Time, current: Time?) -> (progress: Time?, blocked: Bool) {
        guard let last else { return (nil, false) }
        let text: String
        switch last.state {
        case .complete: text = last.status.endTs ?? ""
        case .failed: text = last.spec.startTs ?? ""
        default: return (nil, true)
        }
        guard let ts = try? TSO.parse(text, zone: TimeZone(identifier: "UTC")!), ts > 0 else { return (nil, false) }
        let t = Time(unixSeconds: TSO.unixMilliseconds(ts) / 1000)
        if t.unixSeconds < logStart.unixSeconds { return (nil, false) }
        if let current, t.unixSeconds <= current.unixSeconds { return (nil, false) }
        return (t, false)
    }

    /// The next range, or nil when none is due: it starts where compaction has come (or where the log
    /// started, or `minStart` if later), and ends at the checkpoint, or three intervals on when the
    /// checkpoint is further; nothing while the log is younger than one interval or the last
    /// compaction began less than an interval ago.
    public static func nextRange(progress: Time?, logStart: Time, checkpoint: UInt64, minStart: UInt64?, interval: Int64,
                                 lastExecution: Time?, now: Time) -> (start: Time, end: Time)? {
        guard interval > 0, checkpoint > 0 else { return nil }
        let checkpointSeconds = TSO.unixMilliseconds(checkpoint) / 1000
        var start = (progress ?? logStart).unixSeconds
        guard start < checkpointSeconds else { return nil }
        if let minStart, minStart > 0 { start = max(start, TSO.unixMilliseconds(minStart) / 1000) }
        guard start < checkpointSeconds else { return nil }
        let end = checkpointSeconds - start < 3 * interval ? checkpointSeconds : start + 3 * interval
        if end - logStart.unixSeconds < interval { return nil }
        if let lastExecution, now.unixSeconds - lastExecution.unixSeconds < interval { return nil }
        return (Time(unixSeconds: start), Time(unixSeconds: end))
    }
}

extension BackupSchedule {
    /// The CompactBackup for `range` (reference 5.8): the compact template, the range in UTC
    /// `2006-01-02 15:04:05`, the storage prefix of the log backup's directory, the schedule's labels
    /// and owner; named `compact-<schedule>-<UTC now>`.
    public func makeCompactBackup(start: Time, end: Time, now: Time) -> CompactBackup? {
        guard var spec = self.spec.compactBackupTemplate, let logStart = status.logBackupStartTs else { return nil }
        spec.startTs = BRNames.compactTimestamp(start)
        spec.endTs = BRNames.compactTimestamp(end)
        inherit(into: &spec, prefixSuffix: "log-\(BRNames.scheduleTimestamp(logStart))")
        let scheduleName = metadata.name ?? ""
        var compact = CompactBackup(name: BRNames.scheduleCompactName(schedule: scheduleName, at: now), namespace: metadata.namespace ?? "",
                                    spec: spec)
        var labels = BRLabels.scheduleLabels(scheduleName: scheduleName)
        for (k, v) in metadata.labels ?? [:] where labels[k] == nil { labels[k] = v }
        compact.metadata.labels = labels
        compact.metadata.ownerReferences = [controllerReference]
        return compact
    }
}

extension BRLabels {
    /// Labels of a CompactBackup's Job (`app.kubernetes.io/instance: Compact-Backup`, as TiDB Operator).
    public static func compactJobLabels(_ compact: CompactBackup) -> [String: String] {
        var labels = [name: "backup", managedBy: "backup-operator", instance: "Compact-Backup", component: "backup",
                      compactBackup: compact.metadata.name ?? ""]
        for (k, v) in compact.metadata.labels ?? [:] where labels[k] == nil { labels[k] = v }
        return labels
    }

    /// Our label on a compact Job: the CompactBackup it runs.
    public static let compactBackup = "tidb-backup-operator.pingcap.com/compact-backup"
    /// Our annotation on a compact Job: how many failed attempts came before it, so that its own
    /// failure is recorded exactly once, whatever crashes in between.
    public static let compactAttemptAnnotation = "tidb-backup-operator.pingcap.com/attempt"
}
