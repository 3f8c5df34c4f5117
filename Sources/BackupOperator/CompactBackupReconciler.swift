import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel
import Logging


/// The CompactBackup controller (reference 2.5 and 6.9): one Job at a time, named after the
/// CompactBackup, running `tidb-backup-manager compact`, which runs `br operator base64ify` and then
/// `tikv-ctl compact-log-backup` and writes `Running`, the progress and `Complete`.
///
/// The steps of a reconcile, in order: validate → a Job in place → its outcome → a retry after its
/// back-off. Where TiDB Operator differs, on purpose: the pod does not restart in place
/// (`restartPolicy: Never`), so every attempt is a new Job created after the recorded back-off,
/// never sooner; each Job carries the number of failures before it, so a failure is recorded once
/// whatever crashes in between; `maxRetryTimes` counts retries after the first attempt.
public final class CompactBackupReconciler: Reconciler {
    let api: any KubeAPI
    let jobs: JobBuilder
    let events: EventRecorder
    let clock: any ControllerClock
    let timeouts: OperatorTimeouts
    let logger: Logger

    public init(api: any KubeAPI, jobs: JobBuilder, events: EventRecorder, clock: any ControllerClock = SystemClock(),
                timeouts: OperatorTimeouts = OperatorTimeouts(), logger: Logger = Logger(label: "compactbackup-controller")) {
        self.api = api
        self.jobs = jobs
        self.events = events
        self.clock = clock
        self.timeouts = timeouts
        self.logger = logger
    }

    public func reconcile(_ key: ObjectKey) async throws -> ReconcileOutcome {
        guard let compact = try await api.getIfPresent(CompactBackup.self, namespace: key.namespace, name: key.name),
              compact.metadata.deletionTimestamp == nil, !compact.isFinished else { return .done }
        if let outcome = try await validate(compact) { return outcome }
        let job = try await api.jobState(namespace: compact.namespace, name: compact.jobName)
        if job.exists { return try await follow(compact, job: job) }
        return try await startAttempt(compact)
    }

    // MARK: Steps

    /// Reference 2.5: an invalid spec fails at once (nothing could make it run); a valid one is Scheduled.
    func validate(_ compact: CompactBackup) async throws -> ReconcileOutcome? {
        var problems = BRValidation.validate(compact)
        if problems.isEmpty {
            do { _ = try compact.range() } catch { problems.append(ValidationProblem(field: "spec", message: "\(error)")) }
        }
        if let first = problems.first {
            try await write(compact, state: .failed, message: "\(first.field): \(first.message)")
            await events.record(compact, .warning, reason: "InvalidSpec", message: "\(first.field): \(first.message)")
            return .done
        }
        if compact.state == nil {
            try await write(compact, state: .scheduled)
            return .requeue(after: .zero)
        }
        return nil
    }

    /// A Job exists: wait for it, or record its failure and take it away for the next attempt.
    func follow(_ compact: CompactBackup, job: JobState) async throws -> ReconcileOutcome {
        if job.deleting { return .requeue(after: .seconds(2)) }
        let failures = compact.status.backoffRetryStatus?.count ?? 0
        let attempt = Int(job.object.value(at: ["metadata", "annotations", BRLabels.compactAttemptAnnotation])?.stringValue ?? "") ?? failures
        if job.succeeded {
            if compact.state != .complete {
                // The pod exits 0 only after writing Complete; a lost write is made good here.
                try await write(compact, state: .complete)
            }
            return .done
        }
        guard job.failed else {
            if compact.state == .retryFailed || compact.state == .scheduled { try await write(compact, state: .prepare) }
            return .requeue(after: timeouts.podStart)
        }
        if attempt >= failures {
            // This Job's failure is not recorded yet.
            let reason = [compact.status.message, "Job \(compact.jobName) has failed (\(job.failureReason))"]
                .compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "; ")
            let record = CompactRetryRecord(retryNum: failures, detectFailedAt: Time(clock.now()), retryReason: reason)
            let written = try await StatusWriter.update(api, CompactBackup.self, namespace: compact.namespace, name: compact.name, from: compact) { c in
                guard (c.status.backoffRetryStatus?.count ?? 0) == failures else { return }
                c.status.backoffRetryStatus = (c.status.backoffRetryStatus ?? []) + [record]
                c.status.state = CompactState.retryFailed.rawValue
                c.status.message = reason
            }
            let total = failures + 1
            let exhausted = CompactRetry.exhausted(failures: total, maxRetryTimes: compact.effectiveMaxRetryTimes)
            await events.record(written ?? compact, .warning, reason: "Failed(Retryable)",
                                message: exhausted ? reason : "\(reason); retry \(total) of \(compact.effectiveMaxRetryTimes) in \(CompactRetry.delay(afterFailures: total))s")
        }
        do {
            _ = try await api.delete(.jobs, namespace: compact.namespace, name: compact.jobName, options: DeleteOptions(propagationPolicy: .foreground))
        } catch let e as KubeAPIError where e.isNotFound {}
        return .requeue(after: .seconds(1))
    }

    /// No Job: fail for good when the retries are spent, wait out the back-off, else create the Job.
    func startAttempt(_ compact: CompactBackup) async throws -> ReconcileOutcome {
        let records = compact.status.backoffRetryStatus ?? []
        if compact.state == .prepare || compact.state == .running {
            // A Job was made for this attempt and is gone without a recorded failure: deleted by hand.
            try await recordVanished(compact)
            return .requeue(after: .zero)
        }
        if CompactRetry.exhausted(failures: records.count, maxRetryTimes: compact.effectiveMaxRetryTimes) {
            let last = records.last?.retryReason ?? ""
            let message = "create job failed, reached max retry times (\(compact.effectiveMaxRetryTimes)); last failure: \(last)"
            try await write(compact, state: .failed, message: message)
            await events.record(compact, .warning, reason: "Failed", message: message)
            return .done
        }
        if let last = records.last, let detected = last.detectFailedAt {
            let due = detected.unixSeconds + CompactRetry.delay(afterFailures: records.count)
            let now = Int64(clock.now().timeIntervalSince1970)
            if now < due { return .requeue(after: .seconds(due - now)) }
        }
        let built: JSONValue
        do {
            let cluster = try await cluster(of: compact)
            built = try await jobs.compactJob(compact, cluster: cluster, attempt: records.count)
        } catch let e as JobBuildError {
            try await write(compact, state: .retryFailed, message: "\(e.reason): \(e.message)")
            await events.record(compact, .warning, reason: e.reason, message: e.message)
            return .requeue(after: .seconds(30))
        }
        do {
            if try await api.createIfAbsent(.jobs, namespace: compact.namespace, object: built) {
                await events.record(compact, .normal, reason: "SuccessfulCreate",
                                    message: "create compact job \(compact.namespace)/\(compact.jobName) successful (attempt \(records.count + 1))")
            }
        } catch let e as KubeAPIError {
            try await write(compact, state: .retryFailed, message: "create job \(compact.jobName) failed, err: \(e.message)")
            throw e
        }
        try await write(compact, state: .prepare)
        return .requeue(after: timeouts.podStart)
    }

    /// A Job deleted by hand before it finished counts as a failed attempt.
    func recordVanished(_ compact: CompactBackup) async throws {
        let failures = compact.status.backoffRetryStatus?.count ?? 0
        let record = CompactRetryRecord(retryNum: failures, detectFailedAt: Time(clock.now()),
                                        retryReason: "Job \(compact.jobName) no longer exists while the compaction was \(compact.status.state ?? "")")
        _ = try await StatusWriter.update(api, CompactBackup.self, namespace: compact.namespace, name: compact.name, from: compact) { c in
            guard (c.status.backoffRetryStatus?.count ?? 0) == failures else { return }
            c.status.backoffRetryStatus = (c.status.backoffRetryStatus ?? []) + [record]
            c.status.state = CompactState.retryFailed.rawValue
            c.status.message = record.retryReason
        }
    }

    /// The TidbCluster of `spec.br.cluster`, when named: its TiKV image picks the tool images.
    func cluster(of compact: CompactBackup) async throws -> TidbCluster? {
        guard let br = compact.spec.br, !br.cluster.isEmpty else { return nil }
        let ns = (br.clusterNamespace ?? "").isEmpty ? compact.namespace : br.clusterNamespace!
        return try await api.getIfPresent(TidbCluster.self, namespace: ns, name: br.cluster)
    }

    func write(_ compact: CompactBackup, state: CompactState, message: String? = nil) async throws {
        _ = try await StatusWriter.update(api, CompactBackup.self, namespace: compact.namespace, name: compact.name, from: compact) { c in
            c.status.state = state.rawValue
            if let message { c.status.message = message }
        }
    }
}
