import BRModel
import BRObjects
import ControllerKit
import Cron
import Foundation
import KubeAPI
import KubeEvents
import KubeModel
import Logging

/// The BackupSchedule controller (reference 5) for snapshot backups, with the improvements of DESIGN:
/// it wakes at the next cron time (requeue-after) instead of polling; the Backup's name and prefix come
/// from the slot time, so a restart or a retried reconcile never makes two Backups for one slot; only
/// the latest missed slot runs and finding it costs the same after a long pause; `spec.timeZone` and
/// `spec.startingDeadlineSeconds` are honoured; retention never deletes a running Backup and always
/// keeps the newest Complete one.
public final class ScheduleReconciler: Reconciler {
    let api: any KubeAPI
    let events: EventRecorder
    let clock: any ControllerClock
    let defaultZone: TimeZone
    let metrics: MetricsRegistry?
    let notifier: Notifier?
    let logger: Logger

    public init(api: any KubeAPI, events: EventRecorder, clock: any ControllerClock = SystemClock(), defaultZone: TimeZone = .current,
                metrics: MetricsRegistry? = nil, notifier: Notifier? = nil, logger: Logger = Logger(label: "backupschedule-controller")) {
        self.api = api
        self.notifier = notifier
        self.events = events
        self.clock = clock
        self.defaultZone = defaultZone
        self.metrics = metrics
        self.logger = logger
        metrics?.describe("backupschedule_last_successful_backup_timestamp_seconds", .gauge,
                          help: "Creation time of the newest Complete Backup of each schedule.")
        metrics?.describe("backupschedule_backup_creation_delay_seconds", .histogram,
                          help: "Time from a cron slot to the creation of its Backup.")
        metrics?.describe("backupschedule_interval_seconds", .gauge, help: "Time between two cron slots of each schedule (alerts compare ages with it).")
        metrics?.describe("backupschedule_backups", .gauge, help: "Backups of each schedule by phase (log backups not counted).")
        metrics?.describe("backup_verified_timestamp_seconds", .gauge,
                          help: "When a verification of the schedule's newest verified backup finished (spec.verification).")
        metrics?.describe("backup_verifications_total", .counter, help: "Finished verifications of the schedule's backups by outcome (Verified, Failed).")
    }

    public func reconcile(_ key: ObjectKey) async throws -> ReconcileOutcome {
        guard let schedule = try await api.getIfPresent(BackupSchedule.self, namespace: key.namespace, name: key.name) else { return .done }
        if schedule.metadata.deletionTimestamp != nil { return .done }
        let now = clock.now()
        var status = schedule.status

        // Validation: cron and time zone. An invalid schedule creates nothing but still cleans up.
        let problems = BRValidation.validate(schedule)
        let cron = try? CronSchedule(parsing: schedule.spec.schedule)
        let zone = schedule.spec.timeZone.flatMap { TimeZone(identifier: $0) } ?? defaultZone
        if let first = problems.first {
            status.set(ScheduleCondition(type: "Invalid", reason: "InvalidSpec", message: "\(first.field): \(first.message)"), now: Time(now))
            status.nextScheduledTime = nil
            try await garbageCollect(schedule, &status, now: now)
            try await write(schedule, status)
            return .done
        }
        status.clear("Invalid")
        status.clear("NotSupported")
        if let why = ScheduleCompactStep.disabledReason(schedule) {
            status.set(ScheduleCondition(type: "CompactionDisabled", reason: "CompactionDisabled", message: why), now: Time(now))
        } else {
            status.clear("CompactionDisabled")
        }
        guard let cron else { return .done }
        if let interval = cron.interval(after: now, in: zone) {
            metrics?.set("backupschedule_interval_seconds", ["schedule": schedule.metadata.key], interval)
        }
        if schedule.spec.pause != true { try await logBackups.ensure(schedule, &status, now: now) }

        var outcome: ReconcileOutcome = .done
        if schedule.spec.pause == true {
            status.nextScheduledTime = nil
        } else {
            let lastBefore = status.lastBackup
            outcome = try await runDueSlot(schedule, cron: cron, zone: zone, now: now, status: &status)
            if status.lastBackup != lastBefore {
                // A slot's Backup was just created: record it and come back at once for retention.
                // When many schedules share a slot, every Backup is created before any retention runs.
                try await write(schedule, status)
                return .requeue(after: .zero)
            }
        }
        try await garbageCollect(schedule, &status, now: now)
        if schedule.spec.pause != true, let wake = try await compactions.run(schedule, &status, now: now) {
            outcome = outcome.sooner(.requeue(after: wake))
        }
        // A paused schedule makes no backups; the ones it has are still verified.
        if let wake = try await verification.run(schedule, &status, zone: zone, now: now) {
            outcome = outcome.sooner(.requeue(after: wake))
        }
        try await write(schedule, status)
        return outcome
    }

    var compactions: ScheduleCompactStep { ScheduleCompactStep(api: api, events: events) }

    var logBackups: ScheduleLogBackupStep { ScheduleLogBackupStep(api: api, events: events) }

    var verification: ScheduleVerificationStep { ScheduleVerificationStep(api: api, events: events, metrics: metrics, notifier: notifier) }

    // MARK: Scheduling

    func runDueSlot(_ schedule: BackupSchedule, cron: CronSchedule, zone: TimeZone, now: Date,
                  status: inout BackupScheduleStatus) async throws -> ReconcileOutcome {
        let earliest = (status.lastBackupTime ?? status.allBackupCleanTime ?? schedule.metadata.creationTimestamp)?.date ?? now
        guard earliest <= now else {
            // The clock went backwards: wait for the next slot after the recorded one.
            let next = cron.next(after: earliest, in: zone)
            status.nextScheduledTime = next.map(Time.init)
            return next.map { .requeue(after: Self.until($0, from: now)) } ?? .done
        }
        let missed = cron.missedSlots(after: earliest, through: now, limit: 1000, in: zone)
        // Slots stay on the schedule's grid: an `@every` schedule counts from its last slot, not from
        // now, so a backup made late (an outage, a long previous run) does not move every later one.
        guard let slot = missed.latest else {
            let next = cron.next(after: now, onGridOf: earliest, in: zone)
            status.nextScheduledTime = next.map(Time.init)
            return next.map { .requeue(after: Self.until($0, from: now)) } ?? .done
        }
        let nextAfterSlot = cron.next(after: max(now, slot), onGridOf: slot, in: zone)
        status.nextScheduledTime = nextAfterSlot.map(Time.init)
        let wake: ReconcileOutcome = nextAfterSlot.map { .requeue(after: Self.until($0, from: now)) } ?? .done

        if let deadline = schedule.spec.startingDeadlineSeconds, now.timeIntervalSince(slot) > TimeInterval(deadline) {
            await events.record(schedule, .warning, reason: "MissedSchedule",
                                message: "skipped the backup due at \(Time(slot)): it is more than startingDeadlineSeconds (\(deadline)) late")
            status.lastBackupTime = Time(slot)
            return wake
        }
        let (blocker, last) = try await runningBackup(schedule, slotBackup: BRNames.scheduledBackupName(schedule: schedule.metadata.name ?? "", slot: Time(slot)))
        if let blocker {
            // One at a time: the Backup's own events bring us back when it finishes; poll for group members.
            logger.debug("waiting", metadata: ["schedule": "\(schedule.metadata.key)", "backup": "\(blocker)"])
            return .requeue(after: .seconds(10))
        }
        // The previous Backup's Job goes before the new Backup exists when they share the Dumpling
        // volume (reference 5.6); a BR Job shares nothing, so its deletion waits until the new Backup
        // is created, off the path from the slot to the Backup.
        let dumpling = schedule.spec.backupTemplate.br == nil
        if dumpling { try await deleteJob(of: last) }
        var backup = schedule.makeBackup(slot: Time(slot))
        backup = BRDefaults.applied(to: backup)
        let name = backup.name
        do {
            _ = try await api.create(backup)
            metrics?.observe("backupschedule_backup_creation_delay_seconds", ["schedule": schedule.metadata.key], max(0, now.timeIntervalSince(slot)))
            await events.record(schedule, .normal, reason: "SuccessfulCreate",
                                message: "create Backup \(schedule.metadata.namespace ?? "")/\(name) for backupSchedule/\(schedule.metadata.name ?? "") successful")
        } catch let e as KubeAPIError where e.isAlreadyExists {
            let existing = try await api.getIfPresent(Backup.self, namespace: backup.namespace, name: name)
            let ours = existing?.metadata.ownerReferences?.contains { $0.uid == schedule.metadata.uid } ?? false
            if !ours {
                await events.record(schedule, .warning, reason: "BackupNameTaken",
                                    message: "Backup \(name) already exists and does not belong to this schedule; skipped the slot at \(Time(slot))")
                status.lastBackupTime = Time(slot)
                return wake
            }
            // Ours: created by an earlier reconcile whose status write was lost. Adopt it.
        } catch let e as KubeAPIError {
            await events.record(schedule, .warning, reason: "FailedCreate",
                                message: "create Backup \(schedule.metadata.namespace ?? "")/\(name) for backupSchedule/\(schedule.metadata.name ?? "") failed error: \(e.message)")
            throw e
        }
        if !dumpling { try await deleteJob(of: last) }
        status.lastBackup = name
        status.lastBackupTime = Time(slot)
        status.allBackupCleanTime = nil
        return wake
    }

    static func until(_ date: Date, from now: Date) -> Duration {
        .milliseconds(max(0, Int64((date.timeIntervalSince(now) * 1000).rounded(.up))))
    }

    /// The Backup that keeps this schedule from starting another (reference 5.5), or nil.
    ///
    /// Unlike TiDB Operator, a Failed backup never blocks (whether or not it was ever scheduled), and
    /// Invalid is accepted in a group as it is alone.
    /// The name of a Backup of this schedule (or of its group) that has not finished, if any; and this
    /// schedule's own last Backup, as read.
    /// `slotBackup`: the Backup the due slot would create; one of that name is adopted (a lost status
    /// write), not waited for.
    func runningBackup(_ schedule: BackupSchedule, slotBackup: String) async throws -> (blocker: String?, last: Backup?) {
        let ns = schedule.metadata.namespace ?? ""
        var members = [schedule]
        if let group = schedule.metadata.labels?[BRLabels.backupScheduleGroup] {
            members = try await api.list(BackupSchedule.self, namespace: ns, labelSelector: "\(BRLabels.backupScheduleGroup)=\(group)")
        }
        var own: Backup?
        for member in members {
            guard let last = member.status.lastBackup, !last.isEmpty,
                  let backup = try await api.getIfPresent(Backup.self, namespace: ns, name: last) else { continue }
            if member.metadata.uid == schedule.metadata.uid { own = backup }
            if !Self.isFinished(backup) { return (last, own) }
        }
        // Not only the one `lastBackup` names: any of the schedule's own snapshot Backups still to
        // finish holds the next one back (a run of two at once was seen once in a full parallel test run
        // with `lastBackup` naming a finished Backup while a newer one was only Scheduled).
        let mine = try await api.list(Backup.self, namespace: ns, labelSelector: BRLabels.scheduleSelector(scheduleName: schedule.metadata.name ?? ""))
        if let unfinished = mine.first(where: { $0.name != slotBackup && !Self.isFinished($0) && $0.spec.effectiveBackupMode != .log
                                                 && $0.metadata.deletionTimestamp == nil }) {
            return (unfinished.name, own)
        }
        return (nil, own)
    }

    static func isFinished(_ b: Backup) -> Bool {
        b.status.has(.complete) || b.status.has(.failed) || b.status.has(.invalid)
            || [.complete, .failed, .invalid].contains(b.status.phase)
    }

    /// Deletes the previous backup's Job (reference 5.6).
    func deleteJob(of backup: Backup?) async throws {
        guard let backup else { return }
        do {
            _ = try await api.delete(.jobs, namespace: backup.namespace, name: backup.jobName, options: DeleteOptions(propagationPolicy: .foreground))
        } catch let e as KubeAPIError where e.isNotFound {}
    }

    // MARK: Retention (reference 5.9)

    func garbageCollect(_ schedule: BackupSchedule, _ status: inout BackupScheduleStatus, now: Date) async throws {
        let ns = schedule.metadata.namespace ?? ""
        let backups = try await api.list(Backup.self, namespace: ns, labelSelector: BRLabels.scheduleSelector(scheduleName: schedule.metadata.name ?? ""))
        if let newest = backups.filter({ $0.status.phase == .complete }).max(by: Self.olderFirst) {
            metrics?.set("backupschedule_last_successful_backup_timestamp_seconds", ["schedule": schedule.metadata.key],
                         Double(newest.metadata.creationTimestamp?.unixSeconds ?? 0))
        }
        await reportFailures(schedule, backups, &status, now: now)
        reportLateness(schedule, backups, &status, now: now)
        if let metrics {
            var byPhase: [String: Int] = Dictionary(uniqueKeysWithValues: Self.countedPhases.map { ($0, 0) })
            for b in backups where b.spec.effectiveBackupMode != .log { byPhase[b.status.phase?.rawValue ?? "Pending", default: 0] += 1 }
            for (phase, n) in byPhase { metrics.set("backupschedule_backups", ["schedule": schedule.metadata.key, "phase": phase], Double(n)) }
        }
        let doomed: [Backup]
        if let reserved = schedule.spec.maxReservedTime {
            guard let duration = try? GoDuration(parsing: reserved) else { return Self.setWindow(&status, backups) }
            doomed = Self.expiredByTime(backups, reserved: duration, now: now)
            let expiredTS = TSO.fromUnixSeconds(Int64(now.timeIntervalSince1970.rounded(.down)) - duration.wholeSeconds)
            try await compactions.garbageCollect(schedule, &status, expiredTS: expiredTS, keep: nil)
        } else if let max = schedule.spec.maxBackups, max > 0 {
            doomed = Self.expiredByCount(backups, keep: Int(max))
            try await compactions.garbageCollect(schedule, &status, expiredTS: nil, keep: Int(max))
        } else {
            return Self.setWindow(&status, backups)
        }
        var deleted = 0
        for backup in doomed {
            do {
                _ = try await api.delete(Backup.self, namespace: ns, name: backup.name)
                deleted += 1
                await events.record(schedule, .normal, reason: "SuccessfulDelete",
                                    message: "delete Backup \(ns)/\(backup.name) for backupSchedule/\(schedule.metadata.name ?? "") successful")
            } catch let e as KubeAPIError where e.isNotFound {
                deleted += 1
            } catch {
                await events.record(schedule, .warning, reason: "FailedDelete",
                                    message: "delete Backup \(ns)/\(backup.name) for backupSchedule/\(schedule.metadata.name ?? "") failed error: \(error)")
                break
            }
        }
        // Every pass, not only one that deleted: the log's checkpoint may reach the oldest kept snapshot later.
        let gone = Set(doomed.prefix(deleted).map(\.name))
        var withStatus = schedule
        withStatus.status = status
        try await logBackups.truncate(withStatus, kept: backups.filter { !gone.contains($0.name) })
        Self.setWindow(&status, backups.filter { !gone.contains($0.name) })
        if deleted > 0 && deleted == backups.count {
            status.lastBackupTime = nil
            status.lastBackup = ""
            status.allBackupCleanTime = Time(now)
        }
    }

    /// The restorable window of the backups that are kept.
    static func setWindow(_ status: inout BackupScheduleStatus, _ kept: [Backup]) {
        let window = RestorableWindow.compute(kept, logBackup: status.logBackup)
        status.earliestRestorable = window?.from
        status.latestRestorable = window?.until
        status.restorableContinuous = window?.continuous
    }

    /// Phases always reported (at zero when none), so a phase that empties reads 0, not its old count.
    static let countedPhases = ["Pending", "Scheduled", "Prepare", "Running", "Complete", "Failed", "Invalid", "RetryFailed"]

    /// How many Failed backups time-based retention keeps, newest first: failed backups have no commit
    /// TS, so a Complete backup still inside `maxReservedTime` would otherwise shelter every failed one
    /// made after it, and a schedule that always fails would pile them up without bound.
    public static let failedKeptUnderTimeRetention = 3

    /// The `BackupsFailing` condition and a Warning Event while the newest finished backups failed
    /// (counted back to the newest Complete one), with the newest failure's reason and message; a
    /// Complete backup clears it.
    func reportFailures(_ schedule: BackupSchedule, _ backups: [Backup], _ status: inout BackupScheduleStatus, now: Date) async {
        let finished = backups.filter(Self.isFinished).sorted(by: Self.olderFirst).reversed()
        let failed = Array(finished.prefix { $0.status.phase != .complete })
        guard let newest = failed.first else {
            if status.conditions?.contains(where: { $0.type == "BackupsFailing" }) == true {
                status.clear("BackupsFailing")
                await events.record(schedule, .normal, reason: "BackupsRecovered",
                                    message: "the newest backup of backupSchedule/\(schedule.metadata.name ?? "") completed")
            }
            return
        }
        let condition = newest.status.conditions?.last { $0.type == .failed || $0.type == .invalid }
        let reason = condition?.reason.flatMap { $0.isEmpty ? nil : $0 } ?? (newest.status.phase?.rawValue ?? "Failed")
        let what = failed.count == finished.count ? "every backup so far (\(failed.count))" : "the last \(failed.count) backup(s)"
        let message = "\(what) failed; the newest, \(newest.name): \(reason): \(condition?.message ?? "")"
        // The Warning Event comes with the status write (every condition change is one).
        status.set(ScheduleCondition(type: "BackupsFailing", reason: "BackupsFailing", message: message), now: Time(now))
    }

    /// The `Late` condition: no successful backup (since the schedule was made) for three intervals,
    /// while not paused. Appearing and clearing, it notifies (`schedule.late`, `schedule.recovered`).
    /// The schedule's health (`status.health`) is decided here too, from the conditions set before.
    func reportLateness(_ schedule: BackupSchedule, _ backups: [Backup], _ status: inout BackupScheduleStatus, now: Date) {
        let zone = schedule.spec.timeZone.flatMap { TimeZone(identifier: $0) } ?? defaultZone
        let interval = (try? CronSchedule(parsing: schedule.spec.schedule))?.interval(after: now, in: zone)
        let complete = backups.filter { $0.spec.effectiveBackupMode != .log && $0.status.phase == .complete }
        let lastSuccess = complete.compactMap { ($0.status.timeCompleted ?? $0.metadata.creationTimestamp)?.date }.max()
        let created = schedule.metadata.creationTimestamp?.date ?? now
        defer {
            func holds(_ type: String) -> Bool { status.conditions?.contains { $0.type == type && $0.status == .true } ?? false }
            status.health = ScheduleHealth.of(invalid: holds("Invalid"), paused: schedule.spec.pause == true, failing: holds("BackupsFailing"),
                                              interval: interval, lastSuccess: lastSuccess, created: created, now: now).rawValue
        }
        guard let interval else { return }
        let age = now.timeIntervalSince(lastSuccess ?? created)
        let wasLate = status.conditions?.contains { $0.type == "Late" && $0.status == .true } ?? false
        let late = schedule.spec.pause != true && ScheduleHealth.isLate(lastSuccess: lastSuccess, created: created, interval: interval, now: now)
        let ns = schedule.metadata.namespace ?? "", name = schedule.metadata.name ?? ""
        if late {
            let message = lastSuccess == nil ? "no successful backup in \(Int(age))s (every \(Int(interval))s)"
                : "the last successful backup is \(Int(age))s old (every \(Int(interval))s)"
            if !wasLate {
                status.set(ScheduleCondition(type: "Late", reason: "NoRecentBackup", message: message), now: Time(now))
                notifier?.send(Notifier.Message(type: "schedule.late", time: Time(now).description, namespace: ns, name: name, schedule: name,
                                                cluster: schedule.spec.backupTemplate.br?.cluster, phase: nil, reason: "NoRecentBackup",
                                                message: message), extra: schedule.metadata.annotations?[Notifier.annotation])
            }
        } else if wasLate {
            status.clear("Late")
            notifier?.send(Notifier.Message(type: "schedule.recovered", time: Time(now).description, namespace: ns, name: name, schedule: name,
                                            cluster: schedule.spec.backupTemplate.br?.cluster, phase: nil, reason: "BackupCompleted",
                                            message: lastSuccess.map { "a backup completed at \(Time($0))" } ?? "the schedule was paused"),
                           extra: schedule.metadata.annotations?[Notifier.annotation])
        }
    }

    /// Every condition that appears or changes is an Event (Warnings: the schedule is invalid, not
    /// fully supported, or its backups fail), so `kubectl describe` tells the schedule's story too.
    func recordConditionChanges(_ schedule: BackupSchedule, from old: [ScheduleCondition], to new: [ScheduleCondition]) async {
        for condition in new {
            let before = old.first { $0.type == condition.type }
            guard before?.status != condition.status || before?.reason != condition.reason || before?.message != condition.message else { continue }
            await events.record(schedule, condition.status == .true ? .warning : .normal,
                                reason: condition.reason ?? condition.type,
                                message: condition.message ?? "backupSchedule \(schedule.metadata.key): \(condition.type) is \(condition.status.rawValue)")
        }
    }

    static func olderFirst(_ a: Backup, _ b: Backup) -> Bool {
        let ta = a.metadata.creationTimestamp?.unixSeconds ?? 0, tb = b.metadata.creationTimestamp?.unixSeconds ?? 0
        return ta != tb ? ta < tb : a.name < b.name
    }

    /// The newest Complete Backup: kept whatever the rules say.
    static func newestComplete(_ backups: [Backup]) -> String? {
        backups.filter { $0.status.phase == .complete }.max(by: olderFirst)?.name
    }

    /// Time-based retention without a log backup: walking oldest first over finished backups, delete
    /// until the first whose commit TS is not yet expired.
    public static func expiredByTime(_ backups: [Backup], reserved: GoDuration, now: Date) -> [Backup] {
        let keep = newestComplete(backups)
        let candidates = backups.filter { $0.spec.effectiveBackupMode != .log && isFinished($0) }.sorted(by: olderFirst)
        let expiredTS = TSO.fromUnixSeconds(Int64(now.timeIntervalSince1970.rounded(.down)) - reserved.wholeSeconds)
        var out = candidates.filter { $0.name != keep && retentionTSO($0) < expiredTS }
        let doomed = Set(out.map(\.name))
        let failed = candidates.filter { $0.status.phase != .complete && !doomed.contains($0.name) }.reversed()
        out += failed.dropFirst(failedKeptUnderTimeRetention)
        return out
    }

    /// The point a backup's age is counted from: its commit TS (the data's point in time); one that has
    /// none (Failed before BR reported it) from its creation. TiDB Operator reads a missing commit TS as 0,
    /// so under `maxReservedTime` a backup that failed a moment ago counts as expired and is deleted (with
    /// its files, under `cleanPolicy: Delete`) as soon as its Job ends (TiDB Operator #5604).
    static func retentionTSO(_ b: Backup) -> UInt64 {
        if let text = b.status.commitTs, !text.isEmpty, let ts = try? TSO.parse(text, zone: TimeZone(identifier: "UTC")!), ts > 0 { return ts }
        guard let created = b.metadata.creationTimestamp else { return .max }
        return TSO.fromUnixSeconds(created.unixSeconds)
    }

    /// Count-based retention: newest first, everything past `keep` goes — except running backups and
    /// the newest Complete one.
    public static func expiredByCount(_ backups: [Backup], keep: Int) -> [Backup] {
        let newest = newestComplete(backups)
        return backups.sorted(by: olderFirst).reversed().enumerated()
            .filter { $0.offset >= keep && isFinished($0.element) && $0.element.name != newest }
            .map(\.element)
    }

    func write(_ schedule: BackupSchedule, _ status: BackupScheduleStatus) async throws {
        guard status != schedule.status else { return }
        await recordConditionChanges(schedule, from: schedule.status.conditions ?? [], to: status.conditions ?? [])
        let ns = schedule.metadata.namespace ?? "", name = schedule.metadata.name ?? ""
        _ = try await StatusWriter.update(api, BackupSchedule.self, namespace: ns, name: name) { s in
            s.status = status
        }
    }
}
