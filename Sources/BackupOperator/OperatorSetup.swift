import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel
import Logging

/// Everything the operator runs, wired onto a manager: informers for the three kinds and for the Jobs
/// they own, and the three controllers. The same wiring runs against a real cluster and in standalone
/// mode; only the `KubeAPI` differs.
public struct OperatorSetup: Sendable {
    public struct Options: Sendable {
        /// Watch one namespace, or all when nil.
        public var namespace: String?
        public var workers = 16
        public var jobs = JobSettings()
        public var timeouts = OperatorTimeouts()
        public var clock: any ControllerClock = SystemClock()
        public var timeZone: TimeZone = .current
        /// Serve reads of Jobs and TidbClusters from informer caches. Worth it against a remote API
        /// server (a GET saved is a round trip saved); standalone, where a read is a call into the same
        /// process, the caches would only cost memory.
        public var cacheReads = true
        /// How Events are written: in the background by default; tests that read Events right after a
        /// reconcile use `.inline`.
        public var eventDelivery: EventRecorder.Delivery = .background(lanes: 4, capacity: 2048, linger: 0.2)
        /// Webhook notifications (a global URL; schedules may name their own).
        public var notifications = Notifier.Configuration()
        /// The mechanisms the executable wires in: how webhooks are posted, how PD's etcd is read.
        public var webhooks: any WebhookTransport = NotWired("webhook transport")
        public var pdStores: PDStoreFactory = { _ in NotWired("reader of PD's etcd") }
        /// Only Backups, Restores, BackupSchedules and CompactBackups whose labels match (a Kubernetes
        /// label selector); nil for all. How a takeover from TiDB Operator goes object by object.
        public var selector: String?
        public init() {}
    }

    public let backups: Controller
    public let restores: Controller
    public let schedules: Controller
    public let compactions: Controller
    public let informers: [Informer]
    /// The controllers' Event recorder (flushed on a graceful shutdown).
    public let events: EventRecorder
    /// The TidbCluster cache: it only saves reads, so readiness does not wait for it.
    let clusterInformer: Informer?

    public init(api base: any KubeAPI, options: Options, metrics: MetricsRegistry, logger: Logger = Logger(label: "tidb-backup-operator")) {
        let ns = options.namespace
        // The reconcilers read what they act on from the API; the informers of the three kinds only
        // route changes to keys, so they cache identity and ownership alone. Jobs keep their status
        // and annotations too, always: whether a change matters (a Job failed, finished, is going) is
        // read from them, standalone as on a cluster. TidbClusters (few) are cached whole when reads
        // are served from the caches.
        let slim: @Sendable (JSONValue) -> JSONValue = Self.metadataOnly
        let jobInformer = Informer(api: base, kind: .jobs, namespace: ns,
                                   labelSelector: "\(BRLabels.managedBy) in (backup-operator,restore-operator)",
                                   transform: Self.jobSummary, logger: logger)
        let clusterInformer: Informer? = options.cacheReads ? Informer(api: base, kind: .tidbClusters, namespace: ns, logger: logger) : nil
        self.clusterInformer = clusterInformer
        let api: any KubeAPI = options.cacheReads
            ? CachedReadsAPI(base: base, caches: [.jobs: jobInformer, .tidbClusters: clusterInformer!]) : base
        // Events are written in the background: a reconcile does not wait for them (as with Kubernetes' recorder).
        let events = EventRecorder(api: api, clock: options.clock, delivery: options.eventDelivery, logger: logger)
        self.events = events
        let selector = options.selector
        let backupInformer = Informer(api: base, kind: .backups, namespace: ns, labelSelector: selector, transform: slim, logger: logger)
        let restoreInformer = Informer(api: base, kind: .restores, namespace: ns, labelSelector: selector, transform: slim, logger: logger)
        let scheduleInformer = Informer(api: base, kind: .backupSchedules, namespace: ns, labelSelector: selector, transform: slim, logger: logger)
        let compactInformer = Informer(api: base, kind: .compactBackups, namespace: ns, labelSelector: selector, transform: slim, logger: logger)
        /// With a selector, a key that reaches a queue another way (a Job's owner) is reconciled only
        /// when its object is selected, which its kind's informer (listing with the selector) knows.
        func selected(_ reconciler: any Reconciler, _ informer: Informer) -> any Reconciler {
            selector == nil ? reconciler : SelectedObjects(inner: reconciler, informer: informer)
        }
        let builder = JobBuilder(api: api, settings: options.jobs)
        let notifier = Notifier(configuration: options.notifications, transport: options.webhooks, logger: logger)
        backups = Controller(name: "backup", reconciler: selected(BackupReconciler(api: api, jobs: builder, events: events, clock: options.clock,
                                                                          timeouts: options.timeouts, metrics: metrics, notifier: notifier,
                                                                          pdStores: options.pdStores, logger: logger), backupInformer),
                             workers: options.workers, clock: options.clock, metrics: metrics, logger: logger)
        restores = Controller(name: "restore", reconciler: selected(RestoreReconciler(api: api, jobs: builder, events: events, clock: options.clock,
                                                                             timeouts: options.timeouts), restoreInformer),
                              workers: options.workers, clock: options.clock, metrics: metrics, logger: logger)
        // Schedules' workers run at a higher task priority: a slot's Backup is due at a moment, and
        // the work its creation causes downstream (the Backup's reconcile, its Job) can wait a little.
        schedules = Controller(name: "backupschedule", reconciler: selected(ScheduleReconciler(api: api, events: events, clock: options.clock,
                                                                                      defaultZone: options.timeZone, metrics: metrics, notifier: notifier,
                                                                                      logger: logger), scheduleInformer),
                               workers: options.workers, priority: .high, clock: options.clock, metrics: metrics, logger: logger)
        compactions = Controller(name: "compactbackup", reconciler: selected(CompactBackupReconciler(api: api, jobs: builder, events: events, clock: options.clock,
                                                                                         timeouts: options.timeouts, logger: logger), compactInformer),
                                 workers: options.workers, clock: options.clock, metrics: metrics, logger: logger)
        informers = [backupInformer, restoreInformer, scheduleInformer, compactInformer, jobInformer] + (clusterInformer.map { [$0] } ?? [])

        let (backups, restores, schedules, compactions) = (self.backups, self.restores, self.schedules, self.compactions)
        backupInformer.onChange { change in
            let object = change.object
            await backups.enqueue(object.objectKey)
            // A schedule waits for its running Backup: tell it when that Backup changes.
            if let owner = Self.controller(of: object, kind: "BackupSchedule") {
                await schedules.enqueue(ObjectKey(namespace: object.objectKey.namespace, name: owner))
            }
        }
        restoreInformer.onChange { change in
            let object = change.object
            await restores.enqueue(object.objectKey)
            // A verification Restore's outcome is recorded by the Backup it verifies (whose change then
            // brings its schedule).
            if let backup = object.value(at: ["metadata", "labels", BRLabels.verifies])?.stringValue {
                await backups.enqueue(ObjectKey(namespace: object.objectKey.namespace, name: backup))
            }
        }
        compactInformer.onChange { change in
            let object = change.object
            await compactions.enqueue(object.objectKey)
            // A schedule starts its next compaction when the last one finishes.
            if let owner = Self.controller(of: object, kind: "BackupSchedule") {
                await schedules.enqueue(ObjectKey(namespace: object.objectKey.namespace, name: owner))
            }
        }
        scheduleInformer.onChange { change in await schedules.enqueue(change.object.objectKey) }
        jobInformer.onChange { change in
            // A Job's owner cares when the Job ends, starts going away, or goes away; not when it
            // appears (its creator just made it) or when its pod starts.
            guard Self.jobChangeMatters(change) else { return }
            let object = change.object
            let ns = object.objectKey.namespace
            if let owner = Self.controller(of: object, kind: "Backup") { await backups.enqueue(ObjectKey(namespace: ns, name: owner)) }
            if let owner = Self.controller(of: object, kind: "Restore") { await restores.enqueue(ObjectKey(namespace: ns, name: owner)) }
            if let owner = Self.controller(of: object, kind: "CompactBackup") { await compactions.enqueue(ObjectKey(namespace: ns, name: owner)) }
        }
    }

    /// apiVersion, kind and the metadata that says which object it is, which version, and who owns it.
    static func metadataOnly(_ object: JSONValue) -> JSONValue {
        var metadata = JSONObject()
        for key in ["name", "namespace", "uid", "resourceVersion", "generation", "labels", "ownerReferences", "deletionTimestamp"] {
            if let v = object.value(at: ["metadata", key]) { metadata[key] = v }
        }
        var slim = JSONObject()
        if let v = object["apiVersion"] { slim["apiVersion"] = v }
        if let v = object["kind"] { slim["kind"] = v }
        slim["metadata"] = .object(metadata)
        return .object(slim)
    }

    static func jobChangeMatters(_ change: Informer.Change) -> Bool {
        switch change {
        case .added(let job):
            // Found already finished (a re-list after a missed watch, or the start of the operator).
            return JobState(job).finished || JobState(job).deleting
        case .deleted: return true
        case .updated(let old, let new):
            let (a, b) = (JobState(old), JobState(new))
            return a.failed != b.failed || a.succeeded != b.succeeded || a.deleting != b.deleting
        }
    }

    /// A Job as the reconcilers read it: identity, ownership, annotations and status (what
    /// `JobState` and a recovery look at), without the pod template.
    static func jobSummary(_ object: JSONValue) -> JSONValue {
        var summary = metadataOnly(object)
        // Only this product's annotations (a Job copies its Backup's, which may hold kubectl's record).
        if let annotations = object.value(at: ["metadata", "annotations"])?.objectValue {
            let ours = annotations.filter { $0.key.contains("pingcap.com/") }
            if !ours.isEmpty { summary["metadata"]?["annotations"] = .object(JSONObject(ours.map { ($0.key, $0.value) })) }
        }
        // Of the status, what `JobState` and the run deadlines read: each condition's type, status and
        // reason, and the completion time.
        if let status = object["status"] {
            var kept = JSONObject()
            if let conditions = status["conditions"]?.arrayValue {
                kept["conditions"] = .array(conditions.map { c in
                    var slim = JSONObject()
                    for key in ["type", "status", "reason"] { if let v = c[key] { slim[key] = v } }
                    return .object(slim)
                })
            }
            if let done = status["completionTime"] { kept["completionTime"] = done }
            summary["status"] = .object(kept)
        }
        return summary
    }

    static func controller(of object: JSONValue, kind: String) -> String? {
        object.value(at: ["metadata", "ownerReferences"])?.arrayValue?
            .first { $0["kind"]?.stringValue == kind && $0["controller"] == .bool(true) }?["name"]?.stringValue
    }

    /// Adds the informers and controllers to a manager.
    public func install(into manager: ControllerManager) {
        for informer in informers { manager.add(informer: informer, requiredForReadiness: informer !== clusterInformer) }
        for controller in [backups, restores, schedules, compactions] { manager.add(controller: controller) }
    }
}

/// A reconciler that leaves alone the objects its kind's informer does not hold (not selected).
struct SelectedObjects: Reconciler {
    let inner: any Reconciler
    let informer: Informer

    func reconcile(_ key: ObjectKey) async throws -> ReconcileOutcome {
        guard informer.hasSynced else { return .requeue(after: .seconds(1)) }
        guard informer.get(key) != nil else { return .done }
        return try await inner.reconcile(key)
    }
}
