import BRModel
import ControllerKit
import Foundation
import KubeAPI
import KubeModel
import Logging

/// Everything the operator runs, wired onto a manager: informers for the three kinds and for the Jobs
/// they own, and the three controllers. The same wiring runs against a real cluster and in standalone
/// mode; only the `KubeAPI` differs.
public struct OperatorSetup: Sendable {
    public struct Options: Sendable {
        /// Watch one namespace, or all when nil.
        public var namespace: String?
        public var workers = 4
        public var jobs = JobSettings()
        public var timeouts = OperatorTimeouts()
        public var clock: any ControllerClock = SystemClock()
        public var timeZone: TimeZone = .current
        public init() {}
    }

    public let backups: Controller
    public let restores: Controller
    public let schedules: Controller
    public let informers: [Informer]

    public init(api: any KubeAPI, options: Options, metrics: MetricsRegistry, logger: Logger = Logger(label: "tidb-backup-operator")) {
        let events = EventRecorder(api: api, clock: options.clock, logger: logger)
        let builder = JobBuilder(api: api, settings: options.jobs)
        backups = Controller(name: "backup", reconciler: BackupReconciler(api: api, jobs: builder, events: events, clock: options.clock,
                                                                          timeouts: options.timeouts, logger: logger),
                             workers: options.workers, clock: options.clock, metrics: metrics, logger: logger)
        restores = Controller(name: "restore", reconciler: RestoreReconciler(api: api, jobs: builder, events: events, clock: options.clock,
                                                                             timeouts: options.timeouts),
                              workers: options.workers, clock: options.clock, metrics: metrics, logger: logger)
        schedules = Controller(name: "backupschedule", reconciler: ScheduleReconciler(api: api, events: events, clock: options.clock,
                                                                                      defaultZone: options.timeZone, metrics: metrics, logger: logger),
                               workers: max(1, options.workers / 2), clock: options.clock, metrics: metrics, logger: logger)
        let ns = options.namespace
        // The reconcilers read what they act on from the API; the informers only route changes to
        // keys, so they cache identity and ownership alone.
        let slim: @Sendable (JSONValue) -> JSONValue = Self.metadataOnly
        let backupInformer = Informer(api: api, kind: .backups, namespace: ns, transform: slim, logger: logger)
        let restoreInformer = Informer(api: api, kind: .restores, namespace: ns, transform: slim, logger: logger)
        let scheduleInformer = Informer(api: api, kind: .backupSchedules, namespace: ns, transform: slim, logger: logger)
        let jobInformer = Informer(api: api, kind: .jobs, namespace: ns,
                                   labelSelector: "\(BRLabels.managedBy) in (backup-operator,restore-operator)", transform: slim, logger: logger)
        informers = [backupInformer, restoreInformer, scheduleInformer, jobInformer]

        let (backups, restores, schedules) = (self.backups, self.restores, self.schedules)
        backupInformer.onChange { change in
            let object = change.object
            await backups.enqueue(object.objectKey)
            // A schedule waits for its running Backup: tell it when that Backup changes.
            if let owner = Self.controller(of: object, kind: "BackupSchedule") {
                await schedules.enqueue(ObjectKey(namespace: object.objectKey.namespace, name: owner))
            }
        }
        restoreInformer.onChange { change in await restores.enqueue(change.object.objectKey) }
        scheduleInformer.onChange { change in await schedules.enqueue(change.object.objectKey) }
        jobInformer.onChange { change in
            let object = change.object
            let ns = object.objectKey.namespace
            if let owner = Self.controller(of: object, kind: "Backup") { await backups.enqueue(ObjectKey(namespace: ns, name: owner)) }
            if let owner = Self.controller(of: object, kind: "Restore") { await restores.enqueue(ObjectKey(namespace: ns, name: owner)) }
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

    static func controller(of object: JSONValue, kind: String) -> String? {
        object.value(at: ["metadata", "ownerReferences"])?.arrayValue?
            .first { $0["kind"]?.stringValue == kind && $0["controller"] == .bool(true) }?["name"]?.stringValue
    }

    /// Adds the informers and controllers to a manager.
    public func install(into manager: ControllerManager) {
        for informer in informers { manager.add(informer: informer) }
        for controller in [backups, restores, schedules] { manager.add(controller: controller) }
    }
}
