import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel
import Logging

/// The Backup controller (reference 3) for BR snapshot backups and Dumpling exports.
///
/// Where it differs from TiDB Operator, on purpose: it watches its Jobs (not only their deletion), so
/// a failed Job is seen at once rather than on a 30 s resync; an Invalid Backup is validated again
/// when its spec changes; the back-off retry state lives in the retry records, not in the overloaded
/// `RetryFailed` phase; and every non-terminal state has a way to Failed (a vanished Job, a pod that
/// never starts, a run past its deadline).
public final class BackupReconciler: Reconciler {
    let api: any KubeAPI
    let jobs: JobBuilder
    let events: EventRecorder
    let clock: any ControllerClock
    let timeouts: OperatorTimeouts
    let logger: Logger
    let metrics: MetricsRegistry?
    let notifier: Notifier?
    /// How PD's etcd is read (the log backup tracker): wired in by the executable.
    let pdStores: PDStoreFactory
    let logMismatches = PerBackup<LogSubCommand>()
    let logSyncTimes = PerBackup<Date>()
    /// Backups whose outcome is in the metrics (by uid).
    let observed = PerBackup<Bool>()

    public init(api: any KubeAPI, jobs: JobBuilder, events: EventRecorder, clock: any ControllerClock = SystemClock(),
                timeouts: OperatorTimeouts = OperatorTimeouts(), metrics: MetricsRegistry? = nil, notifier: Notifier? = nil,
                pdStores: @escaping PDStoreFactory = { _ in NotWired("reader of PD's etcd") }, logger: Logger = Logger(label: "backup-controller")) {
        self.api = api
        self.pdStores = pdStores
        self.metrics = metrics
        self.notifier = notifier
        metrics?.describe("log_backup_checkpoint_lag_seconds", .gauge,
                          help: "How far each log backup's checkpoint (read from PD's etcd) is behind now: the data a loss now would lose.")
        metrics?.describe("backup_duration_seconds", .histogram, help: "Time from start to completion of each Complete backup, by schedule and mode.",
                          buckets: Self.durationBuckets)
        metrics?.describe("backup_size_bytes", .histogram, help: "Size of each Complete backup, by schedule and mode.",
                          buckets: Self.sizeBuckets)
        metrics?.describe("backup_failures_total", .counter, help: "Backups that ended Failed or Invalid, by schedule and reason.")
        metrics?.describe("backup_clean_failures_total", .counter, help: "Clean Jobs that failed (the backup's data was kept).")
        self.jobs = jobs
        self.events = events
        self.clock = clock
        self.timeouts = timeouts
        self.logger = logger
    }

    var now: Time { Time(clock.now()) }

    static let durationBuckets: [Double] = [30, 60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400]
    /// 1 MiB to 4 TiB.
    static let sizeBuckets: [Double] = [20, 24, 27, 30, 33, 36, 38, 40, 42].map { pow(2, Double($0)) }

    typealias Pass = ReconcilePass<Backup, BackupCondition>

    /// The steps of a pass, in order (reference 3.1-3.7): a Backup being deleted is cleaned; one
    /// that may need cleaning gets the finalizer; a finished one only has its outcome observed (and
    /// its verification followed); then the cluster is found and the spec validated against it; log
    /// and volume-snapshot backups go to their own flows; a snapshot waits for a Ready cluster, and its
    /// Job is followed, retried or created.
    var steps: ReconcileSteps<Pass> {
        ReconcileSteps([
            ("delete", deleting), ("finalizer", finalizer), ("finished", finished), ("cluster", findCluster),
            ("validate", validate), ("flow", modeFlow), ("cluster-ready", clusterReady), ("job", job),
        ])
    }

    public func reconcile(_ key: ObjectKey) async throws -> ReconcileOutcome {
        guard let backup = try await api.getIfPresent(Backup.self, namespace: key.namespace, name: key.name) else { return .done }
        var pass = Pass(backup)
        return try await steps.run(&pass, thenWrite: write)
    }

    /// The pass's status changes, in one write.
    func write(_ pass: inout Pass) async throws {
        try await pass.status.flush(api, now: now, events: events) { ConditionEvent($0, $1) }
    }

    func deleting(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        pass.backup.metadata.deletionTimestamp != nil ? try await cleanUp(pass.backup) : nil
    }

    func finalizer(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        if pass.backup.isCleanCandidate && !pass.backup.metadata.hasFinalizer(BRLabels.backupFinalizer) {
            var backup = pass.backup
            backup.metadata.addFinalizer(BRLabels.backupFinalizer)
            pass = Pass(try await api.update(backup))
        }
        return nil
    }

    /// A Complete or Failed snapshot: its outcome in the metrics; a volume snapshot keeps no init Job;
    /// a verification is followed or started.
    func finished(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        let backup = pass.backup
        let mode = backup.spec.effectiveBackupMode
        if [.complete, .failed, .invalid].contains(backup.status.phase) && mode != .log { await observeOutcome(backup) }
        guard (backup.status.phase == .complete || backup.status.phase == .failed) && mode != .log else { return nil }
        if mode == .volumeSnapshot { return try await VolumeSnapshotBackupFlow(r: self).reconcile(backup, cluster: nil) }
        if mode == .snapshot, backup.status.verification?.phase == .running || BackupVerification.annotated(backup),
           let wait = try await BackupVerification(api: api, events: events, metrics: metrics, notifier: notifier, now: clock.now()).reconcile(backup) {
            return .requeue(after: wait)
        }
        return .done
    }

    /// The cluster BR will use; a missing one is retried.
    func findCluster(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        let lookup = try await ClusterLookup.find(api, br: pass.backup.spec.br, clusterNamespace: pass.backup.clusterNamespace)
        if case .missing(let message) = lookup {
            pass.status.set(BackupCondition(type: .retryFailed, reason: "TidbClusterNotFound", message: message), now: now)
            return .requeue(after: .seconds(30))
        }
        pass.lookup = lookup
        return nil
    }

    /// The spec against the cluster: Invalid ends the pass; an Invalid Backup fixed by a spec edit
    /// goes on (TiDB Operator never looks again).
    func validate(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        let problems = BRValidation.validate(pass.backup, tikvImage: pass.cluster?.tikvImage, cluster: pass.cluster)
        if let first = problems.first {
            pass.status.set(BackupCondition(type: .invalid, reason: "InvalidSpec", message: first.message), now: now)
            return .done
        }
        if pass.backup.status.phase == .invalid {
            pass.status.edit { b in
                b.status.conditions = b.status.conditions?.map { c in
                    var c = c
                    if c.type == .invalid { c.status = .false }
                    return c
                }
                b.status.phase = nil
            }
        }
        return nil
    }

    /// Log and volume-snapshot backups have flows of their own (which write their own status).
    func modeFlow(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        let mode = pass.backup.spec.effectiveBackupMode
        guard mode == .volumeSnapshot || mode == .log else { return nil }
        try await write(&pass)
        if mode == .volumeSnapshot { return try await VolumeSnapshotBackupFlow(r: self).reconcile(pass.backup, cluster: pass.cluster) }
        return try await LogBackupFlow(r: self).reconcile(pass.backup, cluster: pass.cluster)
    }

    /// A cluster managed by TiDB Operator reports readiness (an external one, with pdAddresses, has no
    /// status): the Job waits for it.
    func clusterReady(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        if let cluster = pass.cluster, let conditions = cluster.status?["conditions"]?.arrayValue, !conditions.isEmpty, !cluster.isReady {
            return .requeue(after: .seconds(15))
        }
        return nil
    }

    /// The Job: followed while it runs, retried after it failed, created when there is none.
    func job(_ pass: inout Pass) async throws -> ReconcileOutcome? {
        let backup = pass.backup
        let jobName = backup.jobName
        let job = JobState(try await currentJob(backup))
        if job.exists {
            if job.deleting { return .requeue(after: .seconds(2)) }
            if job.failed || hasPendingRetry(backup) {
                try await write(&pass)
                return try await handleFailure(pass.backup, job: job)
            }
            if backup.status.phase == nil || backup.status.phase == .invalid {
                // The Job was created but the status write after it was lost (a crash, a conflict).
                pass.status.set(BackupCondition(type: .scheduled), now: now)
            }
            try await write(&pass)
            return try await watchRun(pass.backup, job: job)
        }
        if hasPendingRetry(backup) {
            try await write(&pass)
            return try await handleFailure(pass.backup, job: job)
        }
        if let phase = backup.status.phase, [.scheduled, .prepare, .running].contains(phase) {
            pass.status.set(BackupCondition(type: .failed, reason: "JobNotFound",
                                            message: "Job \(jobName) no longer exists while the backup was \(phase.rawValue)"), now: now)
            return .done
        }
        return try await createJob(&pass)
    }

    // MARK: Outcome metrics

    /// A backup's outcome in the metrics once: its duration and size when Complete, its reason when
    /// Failed or Invalid (and a `backup.failed` notification). After a restart only outcomes of the last
    /// 15 minutes are counted, so old backups are not counted again.
    func observeOutcome(_ backup: Backup) async {
        guard metrics != nil || notifier != nil, let uid = backup.metadata.uid else { return }
        let key = ObjectKey(namespace: "", name: uid)
        guard observed.get(key) == nil else { return }
        observed.set(key, true)
        let end = (backup.status.timeCompleted ?? backup.status.conditions?.last?.lastTransitionTime)?.date ?? clock.now()
        guard clock.now().timeIntervalSince(end) < 900 else { return }
        let schedule = backup.metadata.labels?[BRLabels.backupSchedule].map { "\(backup.namespace)/\($0)" } ?? ""
        if backup.status.phase == .complete {
            let labels = ["schedule": schedule, "mode": backup.spec.effectiveBackupMode.rawValue]
            if let start = backup.status.timeStarted?.date { metrics?.observe("backup_duration_seconds", labels, max(0, end.timeIntervalSince(start))) }
            if let size = backup.status.backupSize { metrics?.observe("backup_size_bytes", labels, Double(size)) }
        } else {
            let condition = backup.status.conditions?.last { $0.type == .failed || $0.type == .invalid }
            let reason = condition?.reason.flatMap { $0.isEmpty ? nil : $0 } ?? (backup.status.phase?.rawValue ?? "Failed")
            metrics?.increment("backup_failures_total", ["schedule": schedule, "reason": reason])
            if let notifier {
                let scheduleName = backup.metadata.labels?[BRLabels.backupSchedule]
                var owner: BackupSchedule?
                if let scheduleName { owner = try? await api.getIfPresent(BackupSchedule.self, namespace: backup.namespace, name: scheduleName) }
                notifier.send(Notifier.Message(type: "backup.failed", time: Time(end).description, namespace: backup.namespace, name: backup.name,
                                               schedule: scheduleName, cluster: backup.spec.br?.cluster, phase: backup.status.phase?.rawValue,
                                               reason: reason, message: condition?.message),
                              extra: owner?.metadata.annotations?[Notifier.annotation])
            }
        }
    }

    // MARK: Job creation

    /// The Backup's Job. A Backup with no phase and no retry under way has never been recorded with a
    /// Job: when the Job cache has synced without it, it is taken as absent without asking the server
    /// (on a cluster, a GET saved on every new Backup). The create that follows finds out otherwise.
    func currentJob(_ backup: Backup) async throws -> JSONValue? {
        if backup.status.phase == nil, !hasPendingRetry(backup), let cache = api as? CachedReadsAPI,
           case .absent = cache.cached(.jobs, namespace: backup.namespace, name: backup.jobName) {
            return nil
        }
        return try await api.getIfPresent(JSONValue.self, .jobs, namespace: backup.namespace, name: backup.jobName)
    }

    func createJob(_ pass: inout Pass) async throws -> ReconcileOutcome {
        let backup = pass.backup
        let built: JSONValue
        do {
            built = backup.spec.br == nil ? try await jobs.exportJob(backup) : try await jobs.brBackupJob(backup, cluster: pass.cluster!)
        } catch let e as JobBuildError {
            pass.status.set(BackupCondition(type: .retryFailed, reason: e.reason, message: e.message), now: now)
            throw e
        }
        switch try await JobStep(api: api, events: events).create(built, for: backup, namespace: backup.namespace, name: backup.jobName,
                                                                  created: "create job \(backup.namespace)/\(backup.jobName) for cluster \(BRLabels.backupJobLabels(backup)[BRLabels.instance] ?? "") backup successful",
                                                                  failed: "create backup \(backup.namespace)/\(backup.name) job \(backup.jobName) failed") {
        case .wait(let d): return .requeue(after: d)
        case .failed(let message, let error):
            pass.status.set(BackupCondition(type: .retryFailed, reason: "CreateBackupJobFailed", message: message), now: now)
            throw error
        case .created, .existed:
            pass.status.set(BackupCondition(type: .scheduled), now: now)
            return .requeue(after: RunVerdict.firstLook(timeouts))
        }
    }

    // MARK: A running Job

    /// Deadlines for a Job that has not failed: a pod that never reports, a run that goes on too long,
    /// a Job that succeeded without its pod writing the result.
    func watchRun(_ backup: Backup, job: JobState) async throws -> ReconcileOutcome {
        let now = clock.now()
        let phase = backup.status.phase
        let since = backup.status.conditions?.first { $0.type == phase }?.lastTransitionTime?.date ?? now
        let verdict = await RunVerdict.watching(backup, api: api, events: events, jobName: backup.jobName, job: job,
                                                waitingForPod: phase == .scheduled || phase == .retryFailed || phase == nil,
                                                phaseSince: since, started: backup.status.timeStarted?.date, now: now, timeouts: timeouts, what: "backup")
        switch verdict {
        case .wait(let d): return .requeue(after: d)
        case .fail(let reason, let message, _) where reason == RunVerdict.succeededWithoutResult && backup.spec.br != nil
                                                 && backup.spec.effectiveBackupMode == .snapshot:
            return try await recoverResult(backup, job: job, message: message)
        case .fail(let reason, let message, let deleteJob):
            // The failure first: should the Backup have changed meanwhile, its Job is still there for the next pass.
            try await fail(backup, reason: reason, message: message)
            if deleteJob { try await self.deleteJob(backup, backup.jobName) }
            return .done
        }
    }

    /// The backup Job succeeded but its result never arrived: rather than fail a backup that may well
    /// have succeeded (or retry it, redoing it), a Job of the model's flow (`resultJob`) reads the result
    /// from `backupmeta` in storage and writes it; when that Job cannot, the Backup fails saying so.
    func recoverResult(_ backup: Backup, job backupJob: JobState, message: String) async throws -> ReconcileOutcome {
        let name = backup.resultJob.name
        // The run's start is known from its Job even when its pod never wrote it (TiDB Operator's pod at a
        // takeover): recorded first, so the Complete the result Job writes has timeStarted and timeTaken.
        if backup.status.timeStarted == nil,
           let started = backupJob.object.value(at: ["status", "startTime"])?.stringValue.flatMap(Time.init(rfc3339:)) {
            try await StatusWriter.update(api, Backup.self, namespace: backup.namespace, name: backup.name, from: backup) { b in
                if b.status.timeStarted == nil { b.status.timeStarted = started }
            }
        }
        let job = try await api.jobState(namespace: backup.namespace, name: name)
        if job.exists {
            if job.failed {
                try await fail(backup, reason: RunVerdict.succeededWithoutResult, message: "\(message); Job \(name) could not read it from storage either")
                return .done
            }
            // Its own status write ends this; a result Job that succeeded without writing is no better.
            if job.succeeded {
                try await fail(backup, reason: RunVerdict.succeededWithoutResult, message: "\(message); Job \(name) wrote none either")
                return .done
            }
            return .requeue(after: .seconds(10))
        }
        let lookup = try await ClusterLookup.find(api, br: backup.spec.br, clusterNamespace: backup.clusterNamespace)
        guard let cluster = lookup.cluster else {
            try await fail(backup, reason: RunVerdict.succeededWithoutResult, message: message)
            return .done
        }
        let built: JSONValue
        do { built = try await jobs.backupResultJob(backup, cluster: cluster) } catch let e as JobBuildError {
            try await fail(backup, reason: RunVerdict.succeededWithoutResult, message: "\(message); the Job to read it cannot be built: \(e.message)")
            return .done
        }
        if try await api.createIfAbsent(.jobs, namespace: backup.namespace, object: built) {
            await events.record(backup, .warning, reason: "ResultMissing",
                                message: "\(message): reading it from the backup's metadata in storage with Job \(backup.namespace)/\(name)")
        }
        return .requeue(after: .seconds(10))
    }

    // MARK: Back-off retry (reference 3.3)

    /// A retry is under way: records exist and the last one has not been carried out.
    func hasPendingRetry(_ backup: Backup) -> Bool {
        guard let last = backup.status.backoffRetryStatus?.last else { return false }
        return last.realRetryAt == nil
    }

    func handleFailure(_ backup: Backup, job: JobState) async throws -> ReconcileOutcome {
        var backup = backup
        let jobName = backup.jobName
        let now = self.now
        let policy = backup.spec.effectiveBackoffRetryPolicy
        let minRetry = (try? GoDuration(parsing: policy.minRetryDuration ?? BRDefaults.minRetryDuration)) ?? GoDuration(seconds: 300)
        let retryTimeout = (try? GoDuration(parsing: policy.retryTimeout ?? BRDefaults.retryTimeout)) ?? GoDuration(seconds: 1800)
        let maxRetries = policy.maxRetryTimes ?? BRDefaults.maxRetryTimes

        // Detection: a failed Job not yet recorded gets a record.
        if !hasPendingRetry(backup) {
            guard job.failed else { return .done }
            let records = backup.status.backoffRetryStatus ?? []
            let n = records.count + 1
            let delay = minRetry.wholeSeconds * Int64(1 << min(n - 1, 30))
            let record = BackoffRetryRecord(retryNum: n, detectFailedAt: now, expectedRetryAt: Time(unixSeconds: now.unixSeconds + delay),
                                            realRetryAt: nil, retryReason: "Job \(jobName) has failed", originalReason: job.failureReason)
            backup = try await StatusWriter.update(api, Backup.self, namespace: backup.namespace, name: backup.name) { b in
                b.status.backoffRetryStatus = (b.status.backoffRetryStatus ?? []) + [record]
            } ?? backup
            await events.record(backup, .warning, reason: "BackupJobFailed",
                                message: "Job \(jobName) has failed (\(job.failureReason)); retry \(n) of \(maxRetries) at \(record.expectedRetryAt!)")
        }
        let records = backup.status.backoffRetryStatus ?? []
        guard let first = records.first, let last = records.last else { return .done }
        let reasons = "failed reason \(last.retryReason ?? ""), original reason \(last.originalReason ?? "")"
        let retryingNow = backup.status.phase == .retryFailed
            && backup.status.conditions?.first(where: { $0.type == .retryFailed })?.reason == "RetryFailedBackup"
        if retryingNow {
            if job.exists {
                // Its deletion (foreground: the pod goes first) brings us back; the next pass records Restart.
                try await deleteJob(backup, jobName)
                return .requeue(after: .zero)
            }
            let restarted = try await StatusWriter.update(api, Backup.self, namespace: backup.namespace, name: backup.name) { b in
                _ = b.status.apply(BackupCondition(type: .restart), now: now)
                if var list = b.status.backoffRetryStatus, !list.isEmpty {
                    list[list.count - 1].realRetryAt = now
                    b.status.backoffRetryStatus = list
                }
            }
            await events.record(restarted ?? backup, .normal, reason: "Restart",
                                message: "backup \(backup.namespace)/\(backup.name) is retried with a new Job \(jobName)")
            return .requeue(after: .zero)
        }
        let elapsed = now.unixSeconds - (first.detectFailedAt?.unixSeconds ?? now.unixSeconds)
        if elapsed > retryTimeout.wholeSeconds {
            try await fail(backup, reason: "AlreadyFailed", message: "retry timeout, max is \(retryTimeout), \(reasons)")
            return .done
        }
        if (last.retryNum ?? 0) > maxRetries {
            try await fail(backup, reason: "AlreadyFailed", message: "exceed retry times, max is \(maxRetries), \(reasons)")
            return .done
        }
        let expected = last.expectedRetryAt?.unixSeconds ?? now.unixSeconds
        if now.unixSeconds > expected {
            try await setCondition(backup, BackupCondition(type: .retryFailed, reason: "RetryFailedBackup",
                                                           message: "reason \(last.retryReason ?? ""), original reason \(last.originalReason ?? "")"))
            return .requeue(after: .zero)
        }
        let untilRetry = expected - now.unixSeconds + 1
        let untilTimeout = retryTimeout.wholeSeconds - elapsed + 1
        return .requeue(after: .seconds(max(1, min(untilRetry, untilTimeout))))
    }

    // MARK: Helpers

    func deleteJob(_ backup: Backup, _ name: String) async throws {
        do {
            _ = try await api.delete(.jobs, namespace: backup.namespace, name: name, options: DeleteOptions(propagationPolicy: .foreground))
            await events.record(backup, .normal, reason: "SuccessfulDelete",
                                message: "delete job \(backup.namespace)/\(name) for backup \(backup.name) successful")
        } catch let e as KubeAPIError where e.isNotFound {}
    }

    /// Fails the Backup as it was read when the failure was decided: a Backup that changed meanwhile (its
    /// job binary wrote `Complete`) is not failed on the strength of an older read (`StatusConflict`,
    /// the pass runs again).
    func fail(_ backup: Backup, reason: String, message: String) async throws {
        let now = self.now
        let condition = BackupCondition(type: .failed, reason: reason, message: message)
        var changed = false
        let written = try await StatusWriter.updateDecided(api, Backup.self, read: backup) { b in
            changed = b.status.apply(condition, now: now)
        }
        if changed { await events.record(written ?? backup, ConditionEvent(backup, condition)) }
    }

    /// Applies a condition through the status writer and, when it changed anything, records it as an
    /// Event; returns whether it changed anything.
    @discardableResult
    func setCondition(_ backup: Backup, _ condition: BackupCondition) async throws -> Bool {
        let now = self.now
        var changed = false
        let written = try await StatusWriter.update(api, Backup.self, namespace: backup.namespace, name: backup.name, from: backup) { b in
            changed = b.status.apply(condition, now: now)
        }
        if changed { await events.record(written ?? backup, ConditionEvent(backup, condition)) }
        return changed
    }
}

extension Backup {
    /// Backups that get the protection finalizer (reference 3.4).
    var isCleanCandidate: Bool {
        spec.effectiveBackupMode == .log || spec.effectiveCleanPolicy == .delete || spec.effectiveCleanPolicy == .onFailure
    }
}

extension ReconcilePass where Object == Backup, Condition == BackupCondition {
    init(_ backup: Backup) { self.init(backup) { b, c, now in b.status.apply(c, now: now) } }
    var backup: Backup { status.object }
}
