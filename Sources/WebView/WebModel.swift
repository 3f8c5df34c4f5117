import BRModel
import Cron
import Foundation
import KubeModel

/// The page's JSON (documented in docs/web-view.md), built from the objects as the API serves them:
/// pure functions of the objects and the time, so the page shows the same on a cluster and standalone.
public enum WebModel {
    /// One Backup or Restore as a row of a table or a bar of a timeline.
    public struct Row: Codable, Sendable, Equatable {
        public var kind: String
        public var namespace: String
        public var name: String
        public var phase: String
        public var mode: String?
        public var cluster: String?
        public var schedule: String?
        public var created: String?
        public var started: String?
        public var completed: String?
        public var durationSeconds: Double?
        public var sizeBytes: Int64?
        public var size: String?
        public var commitTs: String?
        /// The reason and message of a Failed or Invalid condition.
        public var error: String?
        /// A back-off retry that is waiting, with its time and why (the phase does not say).
        public var retry: String? = nil
        /// The backup's verification (`status.verification.phase`: Running, Verified, Failed) and, when
        /// it failed, the failing check and its message.
        public var verification: String? = nil
        public var verificationFailure: String? = nil
        /// Why its Job's pod has not started, in the pod's words (the newest `PodNotStarting` Event), while
        /// it waits to start.
        public var waiting: String? = nil
    }

    public enum Health: String, Codable, Sendable { case healthy, late, failing, paused, pending, invalid }

    public struct Schedule: Codable, Sendable, Equatable {
        public var namespace: String
        public var name: String
        public var cron: String
        public var cluster: String?
        public var health: Health
        /// Why the badge says what it says, in words.
        public var healthReason: String
        public var lastSuccess: String?
        public var lastSuccessBackup: String?
        public var intervalSeconds: Double?
        public var nextRun: String?
        public var retention: String
        public var earliestRestorable: String?
        public var latestRestorable: String?
        public var pointInTime: Bool
        /// The newest backup a verification restored and checked, when, and the point it restores to.
        public var lastVerifiedBackup: String? = nil
        public var lastVerified: String? = nil
        public var provenRestorable: String? = nil
        public var logBackup: String?
        public var backups: Int
        public var failed: Int
        public var running: Int
    }

    public struct Cluster: Codable, Sendable, Equatable {
        public var namespace: String
        public var name: String
        public var lastSuccess: String?
        public var lastBackup: String?
        public var lastPhase: String?
        public var backups: Int
    }

    public struct Overview: Codable, Sendable, Equatable {
        public var generatedAt: String
        public var schedules: [Schedule]
        public var clusters: [Cluster]
        /// Backups and Restores by phase.
        public var phases: [String: Int]
        public var running: [Row]
        public var recentFailures: [Row]
    }

    public struct ScheduleDetail: Codable, Sendable, Equatable {
        public var schedule: Schedule
        public var backups: [Row]
        public var conditions: [ConditionRow]
    }

    public struct ConditionRow: Codable, Sendable, Equatable {
        public var type: String
        public var status: String
        public var reason: String?
        public var message: String?
        public var time: String?
        public var command: String?
    }

    public struct EventRow: Codable, Sendable, Equatable {
        public var type: String
        public var reason: String
        public var message: String
        public var count: Int64
        public var last: String?
    }

    public struct LogTail: Codable, Sendable, Equatable {
        public var job: String
        public var pod: String
        public var text: String
    }

    public struct Detail: Codable, Sendable, Equatable {
        public var log: LogTail?
        /// When there is no log to show for a run that did happen: why (its Job was removed), and that
        /// what the run recorded is in the conditions and the error above.
        public var logGone: String? = nil
        public var row: Row
        public var conditions: [ConditionRow]
        public var progress: [String: String]
        public var backupPath: String?
        public var events: [EventRow]
        public var logCheckpointTs: String?
    }

    // MARK: Building

    public static let utc = TimeZone(identifier: "UTC")!

    static func str(_ v: JSONValue?, _ path: [String]) -> String? {
        guard let s = v?.value(at: path)?.stringValue, !s.isEmpty else { return nil }
        return s
    }

    /// What `row` and `detail` read of a Backup or Restore: all a web store needs to keep of one (its
    /// metadata aside). A field read here and not kept would silently vanish from the page.
    public static let objectFields: [[String]] = [
        ["spec", "backupMode"], ["spec", "restoreMode"], ["spec", "backupType"], ["spec", "br", "cluster"], ["spec", "lightning", "cluster"],
        ["spec", "backoffRetryPolicy"],
        ["status", "phase"], ["status", "conditions"], ["status", "timeStarted"], ["status", "timeCompleted"],
        ["status", "backupSize"], ["status", "backupSizeReadable"], ["status", "commitTs"], ["status", "backupPath"],
        ["status", "progresses"], ["status", "logCheckpointTs"], ["status", "verification"], ["status", "backoffRetryStatus"],
    ]

    /// Whether a row's run is past the point where its Job started (so a missing log means the Job went).
    static func ran(_ r: Row) -> Bool {
        r.started != nil || ["Prepare", "Running", "Complete", "Failed", "Stopped", "Paused"].contains(r.phase)
    }

    /// The newest `PodNotStarting` Event's message of an object that has not started.
    static func waiting(_ r: Row, events: [JSONValue]) -> String? {
        guard !ran(r) else { return nil }
        return events.filter { $0["reason"]?.stringValue == "PodNotStarting" }.sorted(by: eventOrder).last?["message"]?.stringValue
    }

    /// A Backup or Restore as a row.
    public static func row(_ object: JSONValue) -> Row {
        let kind = object["kind"]?.stringValue ?? "Backup"
        let conditions = object.value(at: ["status", "conditions"])?.arrayValue ?? []
        let failure = conditions.last { c in
            ["Failed", "Invalid"].contains(c["type"]?.stringValue ?? "") && c["status"]?.stringValue != "False"
        }
        let phase = str(object, ["status", "phase"]) ?? (conditions.isEmpty ? "Pending" : "Pending")
        let started = str(object, ["status", "timeStarted"])
        let completed = str(object, ["status", "timeCompleted"])
        var duration: Double?
        if let a = started.flatMap(Time.init(rfc3339:)), let b = completed.flatMap(Time.init(rfc3339:)), b >= a {
            duration = Double(b.unixSeconds - a.unixSeconds)
        }
        let size = object.value(at: ["status", "backupSize"])?.intValue
        let error = failure.map { c in
            [c["reason"]?.stringValue, c["message"]?.stringValue].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
        }
        // The mode as the model decides it (FlowKinds, from the fields that decide it: no object of
        // thousands is decoded whole); a Lightning Restore names its cluster in spec.lightning.
        let spec = object["spec"]
        let mode: String, cluster: String?
        if kind == "Restore" {
            mode = FlowKinds.restore(hasLightning: spec?["lightning"] != nil, hasBR: spec?["br"] != nil, mode: str(object, ["spec", "restoreMode"]))
            cluster = str(object, ["spec", "br", "cluster"]) ?? str(object, ["spec", "lightning", "cluster"])
        } else {
            mode = FlowKinds.backup(hasBR: spec?["br"] != nil, mode: str(object, ["spec", "backupMode"]))
            cluster = str(object, ["spec", "br", "cluster"])
        }
        // A waiting back-off retry: the few objects that have retry records are decoded for it.
        var retry: String?
        if kind != "Restore", object.value(at: ["status", "backoffRetryStatus"]) != nil, let b = try? KubeCodec.decode(Backup.self, from: object) {
            retry = b.pendingRetry
        }
        let failedCheck = object.value(at: ["status", "verification", "checks"])?.arrayValue?.first { $0["passed"] == .bool(false) }
        return Row(kind: kind, namespace: str(object, ["metadata", "namespace"]) ?? "", name: str(object, ["metadata", "name"]) ?? "",
                   phase: phase, mode: mode,
                   cluster: cluster, schedule: str(object, ["metadata", "labels", BRLabels.backupSchedule]),
                   created: str(object, ["metadata", "creationTimestamp"]), started: started, completed: completed,
                   durationSeconds: duration, sizeBytes: size, size: str(object, ["status", "backupSizeReadable"]),
                   commitTs: str(object, ["status", "commitTs"]), error: error.flatMap { $0.isEmpty ? nil : $0 }, retry: retry,
                   verification: str(object, ["status", "verification", "phase"]),
                   verificationFailure: failedCheck.map { "\($0["name"]?.stringValue ?? "check"): \($0["message"]?.stringValue ?? "failed")" })
    }

    static func ownerSchedule(_ object: JSONValue) -> String? {
        object.value(at: ["metadata", "ownerReferences"])?.arrayValue?.first { $0["kind"]?.stringValue == "BackupSchedule" }?["name"]?.stringValue
            ?? str(object, ["metadata", "labels", BRLabels.backupSchedule])
    }

    /// The schedule's summary: healthy while its newest successful backup is younger than two
    /// intervals (plus one for the run itself); late past that; failing while its newest finished
    /// backups failed; paused; pending before its first backup is due.
    public static func schedule(_ object: JSONValue, backups: [Row], now: Date, defaultZone: TimeZone = utc) -> Schedule {
        let ns = str(object, ["metadata", "namespace"]) ?? "", name = str(object, ["metadata", "name"]) ?? ""
        let cronText = str(object, ["spec", "schedule"]) ?? ""
        let zone = str(object, ["spec", "timeZone"]).flatMap(TimeZone.init(identifier:)) ?? defaultZone
        let cron = try? CronSchedule(parsing: cronText)
        let interval = cron?.interval(after: now, in: zone)
        let snapshots = backups.filter { $0.mode != "log" }
        let complete = snapshots.filter { $0.phase == "Complete" }
        let newest = complete.max { ($0.completed ?? $0.created ?? "") < ($1.completed ?? $1.created ?? "") }
        let lastSuccess = newest.flatMap { $0.completed ?? $0.created }
        let conditions = object.value(at: ["status", "conditions"])?.arrayValue ?? []
        func holds(_ type: String) -> JSONValue? { conditions.first { $0["type"]?.stringValue == type && $0["status"]?.stringValue == "True" } }
        let created = str(object, ["metadata", "creationTimestamp"]).flatMap(Time.init(rfc3339:))?.date ?? now
        let since = lastSuccess.flatMap(Time.init(rfc3339:))?.date
        // The health is the model's (the same the operator writes for `kubectl get bks`); the words are the page's.
        let decided = ScheduleHealth.of(invalid: holds("Invalid") != nil, paused: object.value(at: ["spec", "pause"]) == .bool(true),
                                        failing: holds("BackupsFailing") != nil, interval: interval, lastSuccess: since, created: created, now: now)
        let health = Health(rawValue: decided.rawValue.lowercased()) ?? .invalid
        let age = now.timeIntervalSince(since ?? created)
        let every = interval.map { " (every \(Self.words($0)))" } ?? ""
        let reason: String
        switch decided {
        case .invalid:
            reason = holds("Invalid")?["message"]?.stringValue ?? "the cron expression \(cronText) does not parse"
        case .paused:
            reason = "paused: no backups are created"
        case .failing:
            reason = holds("BackupsFailing")?["message"]?.stringValue ?? "the newest backups failed"
        case .late:
            reason = lastSuccess == nil ? "no successful backup in \(Self.words(age))\(every)" : "the last successful backup is \(Self.words(age)) old\(every)"
        case .pending:
            reason = "no backup has completed yet"
        case .healthy:
            reason = "the last successful backup is \(Self.words(age)) old\(every)"
        }
        var retention = "none"
        if let t = str(object, ["spec", "maxReservedTime"]) { retention = "keep \(t)" } else if let n = object.value(at: ["spec", "maxBackups"])?.intValue, n > 0 {
            retention = "keep \(n)"
        }
        return Schedule(namespace: ns, name: name, cron: cronText, cluster: str(object, ["spec", "backupTemplate", "br", "cluster"]),
                        health: health, healthReason: reason, lastSuccess: lastSuccess, lastSuccessBackup: newest?.name,
                        intervalSeconds: interval, nextRun: str(object, ["status", "nextScheduledTime"]), retention: retention,
                        earliestRestorable: str(object, ["status", "earliestRestorable"]), latestRestorable: str(object, ["status", "latestRestorable"]),
                        pointInTime: object.value(at: ["status", "restorableContinuous"]) == .bool(true),
                        lastVerifiedBackup: str(object, ["status", "lastVerifiedBackup"]), lastVerified: str(object, ["status", "lastVerifiedTime"]),
                        provenRestorable: str(object, ["status", "provenRestorable"]),
                        logBackup: str(object, ["status", "logBackup"]), backups: snapshots.count,
                        failed: snapshots.filter { $0.phase == "Failed" || $0.phase == "Invalid" }.count,
                        running: snapshots.filter { !["Complete", "Failed", "Invalid"].contains($0.phase) }.count)
    }

    static func words(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 120 { return "\(s)s" }
        if s < 7200 { return "\(s / 60)m" }
        if s < 172_800 { return "\(s / 3600)h" }
        return "\(s / 86400)d"
    }

    public static func overview(schedules: [JSONValue], backups: [JSONValue], restores: [JSONValue], now: Date,
                                defaultZone: TimeZone = utc) -> Overview {
        let rows = backups.map(row)
        var bySchedule: [String: [Row]] = [:]
        for (object, r) in zip(backups, rows) {
            if let s = ownerSchedule(object) { bySchedule["\(r.namespace)/\(s)", default: []].append(r) }
        }
        let summaries = schedules.map { s in
            schedule(s, backups: bySchedule["\(str(s, ["metadata", "namespace"]) ?? "")/\(str(s, ["metadata", "name"]) ?? "")"] ?? [], now: now,
                     defaultZone: defaultZone)
        }.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
        var clusters: [String: Cluster] = [:]
        var newestCreated: [String: String] = [:]
        for r in rows where r.mode != "log" {
            guard let c = r.cluster else { continue }
            let key = "\(r.namespace)/\(c)"
            var entry = clusters[key] ?? Cluster(namespace: r.namespace, name: c, backups: 0)
            entry.backups += 1
            let at = r.completed ?? r.created ?? ""
            if r.phase == "Complete", at > (entry.lastSuccess ?? "") { entry.lastSuccess = at }
            if (r.created ?? "") >= newestCreated[key, default: ""] {
                newestCreated[key] = r.created ?? ""
                entry.lastBackup = r.name
                entry.lastPhase = r.phase
            }
            clusters[key] = entry
        }
        let restoreRows = restores.map(row)
        var phases: [String: Int] = [:]
        for r in rows + restoreRows { phases[r.phase, default: 0] += 1 }
        let all = rows + restoreRows
        // A log backup runs for as long as its task does: listed while Running (its other phases, such
        // as Stopped or Paused, are states rather than work under way).
        let running = all.filter { $0.mode == "log" ? $0.phase == "Running" : !["Complete", "Failed", "Invalid", "Pending"].contains($0.phase) }
            .sorted { ($0.created ?? "") > ($1.created ?? "") }
        let failures = all.filter { $0.phase == "Failed" || $0.phase == "Invalid" }
            .sorted { ($0.completed ?? $0.created ?? "") > ($1.completed ?? $1.created ?? "") }
        return Overview(generatedAt: Time(now).description, schedules: summaries,
                        clusters: clusters.values.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) },
                        phases: phases, running: Array(running.prefix(50)), recentFailures: Array(failures.prefix(20)))
    }

    public static func conditions(_ object: JSONValue) -> [ConditionRow] {
        (object.value(at: ["status", "conditions"])?.arrayValue ?? []).map { c in
            ConditionRow(type: c["type"]?.stringValue ?? "", status: c["status"]?.stringValue ?? "", reason: c["reason"]?.stringValue,
                         message: c["message"]?.stringValue, time: c["lastTransitionTime"]?.stringValue, command: c["command"]?.stringValue)
        }.sorted { ($0.time ?? "") < ($1.time ?? "") }
    }

    /// `events`: Events of the schedule's Backups, for why one has not started.
    public static func scheduleDetail(_ object: JSONValue, backups: [JSONValue], events: [JSONValue] = [], now: Date,
                                      defaultZone: TimeZone = utc) -> ScheduleDetail {
        let rows = backups.map { b -> Row in
            var r = row(b)
            r.waiting = waiting(r, events: events.filter { $0.value(at: ["involvedObject", "name"])?.stringValue == r.name
                && $0.value(at: ["involvedObject", "kind"])?.stringValue == r.kind })
            return r
        }.sorted { ($0.created ?? "", $0.name) < ($1.created ?? "", $1.name) }
        return ScheduleDetail(schedule: schedule(object, backups: rows, now: now, defaultZone: defaultZone), backups: rows,
                              conditions: conditions(object))
    }

    public static func event(_ e: JSONValue) -> EventRow {
        EventRow(type: e["type"]?.stringValue ?? "Normal", reason: e["reason"]?.stringValue ?? "", message: e["message"]?.stringValue ?? "",
                 count: e["count"]?.intValue ?? 1,
                 last: e["lastTimestamp"]?.stringValue ?? e["eventTime"]?.stringValue ?? e["firstTimestamp"]?.stringValue)
    }

    /// Events oldest first. Their times have whole seconds, and one step often records several in
    /// one second: within a second the order they were written (their resourceVersion, which the
    /// API server increases with each write) decides.
    static func eventOrder(_ a: JSONValue, _ b: JSONValue) -> Bool {
        func time(_ e: JSONValue) -> Date {
            (e["lastTimestamp"]?.stringValue ?? e["eventTime"]?.stringValue ?? e["firstTimestamp"]?.stringValue).flatMap(Time.init(rfc3339:))?.date
                ?? .distantPast
        }
        func version(_ e: JSONValue) -> UInt64 { e.value(at: ["metadata", "resourceVersion"])?.stringValue.flatMap { UInt64($0) } ?? 0 }
        let (ta, tb) = (time(a), time(b))
        if ta != tb { return ta < tb }
        let (va, vb) = (version(a), version(b))
        if va != vb { return va < vb }
        return (str(a, ["metadata", "name"]) ?? "") < (str(b, ["metadata", "name"]) ?? "")
    }

    public static func detail(_ object: JSONValue, events: [JSONValue]) -> Detail {
        var progress: [String: String] = [:]
        for p in object.value(at: ["status", "progresses"])?.arrayValue ?? [] {
            if let step = p["step"]?.stringValue {
                let v = p["progress"].map { v -> String in v.intValue.map(String.init) ?? (v.stringValue ?? "\(v)") } ?? ""
                progress[step] = v
            }
        }
        var r = row(object)
        r.waiting = waiting(r, events: events)
        return Detail(log: nil, row: r, conditions: conditions(object), progress: progress, backupPath: str(object, ["status", "backupPath"]),
                      events: events.sorted(by: eventOrder).map(event),
                      logCheckpointTs: str(object, ["status", "logCheckpointTs"]))
    }
}
