import BRModel
import BRObjects
import BackupOperator
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel
import KubeTesting
import Testing

/// An in-memory API with a manual clock and the three reconcilers, plus helpers to play the parts of
/// the Job controller and the backup-manager pod.
struct World {
    let api: InMemoryKubeAPI
    /// What the operator's components call (the test's own calls go to `api` directly).
    let operatorAPI: RecordingKubeAPI
    let clock: ManualClock
    let backup: BackupReconciler
    let restore: RestoreReconciler
    let schedule: ScheduleReconciler
    let compact: CompactBackupReconciler
    let events: EventRecorder

    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)  // 2023-11-14T22:13:20Z

    init(start: Date = World.t0, timeouts: OperatorTimeouts = OperatorTimeouts(), zone: TimeZone = TimeZone(identifier: "UTC")!) {
        let clock = ManualClock(start)
        self.clock = clock
        let api = InMemoryKubeAPI(clock: { clock.now() })
        self.api = api
        let operatorAPI = RecordingKubeAPI(api)
        self.operatorAPI = operatorAPI
        events = EventRecorder(api: operatorAPI, clock: clock)
        var settings = JobSettings()
        settings.backupManagerImage = "pingcap/tidb-backup-manager:v1.6.1"
        settings.timeZone = nil
        let jobs = JobBuilder(api: operatorAPI, settings: settings)
        backup = BackupReconciler(api: operatorAPI, jobs: jobs, events: events, clock: clock, timeouts: timeouts)
        restore = RestoreReconciler(api: operatorAPI, jobs: jobs, events: events, clock: clock, timeouts: timeouts)
        schedule = ScheduleReconciler(api: operatorAPI, events: events, clock: clock, defaultZone: zone)
        compact = CompactBackupReconciler(api: operatorAPI, jobs: jobs, events: events, clock: clock, timeouts: timeouts)
    }

    static func yaml(_ text: String) -> JSONValue { try! KubeYAML.documents(text)[0].value }

    func apply(_ kind: ResourceKind, _ yaml: String) async throws -> JSONValue {
        var object = Self.yaml(yaml)
        object = BRDefaults.applied(to: object, kind: object["kind"]?.stringValue ?? "")
        return try await api.create(kind, namespace: object.objectKey.namespace, object: object)
    }

    /// A TidbCluster `basic` reachable from outside Kubernetes, the S3 secret and the TiDB secret.
    func seedCluster(namespace: String = "ns") async throws {
        _ = try await apply(.tidbClusters, """
            apiVersion: pingcap.com/v1alpha1
            kind: TidbCluster
            metadata: {name: basic, namespace: \(namespace)}
            spec: {version: v8.5.0, pdAddresses: ["http://127.0.0.1:2379"]}
            """)
        _ = try await api.create(.secrets, namespace: namespace, object: [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "s3-secret", "namespace": .string(namespace)],
            "data": ["access_key": "YWNjZXNz", "secret_key": "c2VjcmV0"]])
        _ = try await api.create(.secrets, namespace: namespace, object: [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "backup-tidb-secret", "namespace": .string(namespace)],
            "data": ["password": "cGFzcw=="]])
    }

    static func brBackup(_ name: String, cleanPolicy: String = "Delete", extra: String = "") -> String {
        """
        apiVersion: pingcap.com/v1alpha1
        kind: Backup
        metadata: {name: \(name), namespace: ns}
        spec:
          cleanPolicy: \(cleanPolicy)
          br: {cluster: basic, sendCredToTikv: true}
          s3: {provider: aws, region: us-west-2, bucket: my-bucket, prefix: my-folder, secretName: s3-secret}
        \(extra)
        """
    }

    func getBackup(_ name: String, namespace: String = "ns") async throws -> Backup {
        try await api.get(Backup.self, namespace: namespace, name: name)
    }

    func job(_ name: String, namespace: String = "ns") -> JSONValue? {
        api.objects(.jobs, namespace: namespace).first { $0.objectKey.name == name }
    }

    /// The Job controller's verdict on a Job.
    func finishJob(_ name: String, failed: Bool, reason: String = "BackoffLimitExceeded", namespace: String = "ns", started: Date? = nil) async throws {
        var job = try await api.get(.jobs, namespace: namespace, name: name)
        let type = failed ? "Failed" : "Complete"
        var condition: JSONValue = ["type": .string(type), "status": "True"]
        if failed { condition["reason"] = .string(reason) }
        job["status"] = ["conditions": [condition], "completionTime": .string(Time(clock.now()).description)]
        if let started { job["status"]?["startTime"] = .string(Time(started).description) }
        _ = try await api.updateStatus(.jobs, namespace: namespace, object: job)
    }

    /// What the backup-manager pod writes as it runs.
    func podReports(_ name: String, _ type: BackupConditionType, namespace: String = "ns", mutate: (inout BackupStatus) -> Void = { _ in }) async throws {
        var b = try await getBackup(name, namespace: namespace)
        b.status.apply(BackupCondition(type: type), now: Time(clock.now()))
        mutate(&b.status)
        _ = try await api.updateStatus(b)
    }

    /// Reconciles a Backup until it asks for nothing more right now (at most `limit` rounds).
    @discardableResult
    func settleBackup(_ name: String, namespace: String = "ns", limit: Int = 10) async throws -> ReconcileOutcome {
        var outcome = ReconcileOutcome.done
        for _ in 0..<limit {
            outcome = try await backup.reconcile(ObjectKey(namespace: namespace, name: name))
            if outcome != .requeue(after: .zero) { return outcome }
        }
        return outcome
    }

    func eventReasons(namespace: String = "ns") -> [String] {
        api.objects(.events, namespace: namespace).compactMap { $0["reason"]?.stringValue }
    }

    /// Calls that wrote something (create, update, patch, delete) since the last reset.
    var writes: [InMemoryKubeAPI.Call] {
        api.calls.filter { [.create, .update, .patch, .delete].contains($0.verb) && $0.resource != "events" }
    }
}
