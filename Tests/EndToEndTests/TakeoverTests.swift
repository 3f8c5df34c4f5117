import BRModel
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import TestServers
import Testing

/// The takeover of docs/migrate-from-tidb-operator.md, in the standalone server: the operator runs with
/// `--selector=tidb-backup-operator.pingcap.com/managed=true`, objects are first in the state TiDB
/// Operator leaves them (statuses, finalizers, its Jobs with their pods still running, in-flight pods
/// that report with a whole-object update), and labelling each one hands it over.
@Suite("End to end: taking over from TiDB Operator", .serialized)
struct TakeoverTests {
    static let label = BRLabels.managed
    static let podStandIn = TestServers.fixtures + "/tidb_operator_pod.py"

    /// A Job as TiDB Operator builds it for `owner`: its labels and owner reference, no annotation of
    /// ours; its container runs the stand-in of TiDB Operator's pod. (Its image is named for the
    /// stand-in: the standalone server runs every `tidb-backup-manager` image as this project's binary.)
    static func tidbOperatorJob(_ name: String, component: String, owner: JSONValue, kind: String, command: [String]) -> JSONValue {
        let ownerName = owner.value(at: ["metadata", "name"])?.stringValue ?? ""
        let labels: JSONValue = ["app.kubernetes.io/name": .string(kind == "Backup" ? "backup" : "restore"),
                                 "app.kubernetes.io/managed-by": .string(kind == "Backup" ? "backup-operator" : "restore-operator"),
                                 "app.kubernetes.io/instance": .string(ownerName), "app.kubernetes.io/component": .string(component),
                                 (kind == "Backup" ? "tidb.pingcap.com/backup" : "tidb.pingcap.com/restore"): .string(ownerName)]
        return ["apiVersion": "batch/v1", "kind": "Job",
                "metadata": ["name": .string(name), "namespace": "default", "labels": labels,
                             "ownerReferences": [["apiVersion": "pingcap.com/v1alpha1", "kind": .string(kind), "name": .string(ownerName),
                                                  "uid": owner.value(at: ["metadata", "uid"]) ?? "", "controller": true, "blockOwnerDeletion": true]]],
                "spec": ["backoffLimit": 0, "template": ["metadata": ["labels": labels], "spec": [
                    "restartPolicy": "Never", "serviceAccountName": "tidb-backup-manager",
                    "containers": [["name": .string(component), "image": "tidb-operator-pod-standin:v1.6.1",
                                    "command": .array(command.map { .string($0) })]]]]]]
    }

    @Test("objects in TiDB Operator's state are adopted as they are: no duplicate Job, no lost result, no lost clean, no burst; an object not handed over is left alone")
    func takeover() async throws {
        let op = try await Operator(extraArguments: ["--selector=\(Self.label)=true"])
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        let ns = "default"
        func statusOf(_ kind: ResourceKind, _ name: String, _ status: JSONValue) async throws {
            _ = try await op.api.patch(kind, namespace: ns, name: name, patch: .merge(["status": status]), subresource: "status")
        }
        func create(_ yaml: String, finalizer: Bool = true) async throws -> JSONValue {
            var object = try KubeYAML.documents(yaml)[0].value
            if finalizer { object["metadata"]?["finalizers"] = [.string(BRLabels.backupFinalizer)] }
            let kind: ResourceKind = object["kind"]?.stringValue == "Restore" ? .restores : object["kind"]?.stringValue == "BackupSchedule" ? .backupSchedules : .backups
            return try await op.api.create(kind, namespace: ns, object: object)
        }
        func br(_ args: [String]) async throws {
            let (status, output) = try await TestServers.run(["env", "PATH=\(op.environment["PATH"] ?? "")", "br"] + args)
            #expect(status == 0, "\(output)")
        }
        let t0 = Time(Date().addingTimeInterval(-600))
        let conditionsUpTo: (String) -> JSONValue = { last in
            let steps = ["Scheduled", "Prepare", "Running", "Complete"]
            return .array(steps.prefix(through: steps.firstIndex(of: last)!).map { ["type": .string($0), "status": "True", "lastTransitionTime": .string(t0.description)] })
        }

        // 1. A Complete backup with its finished Job and its data.
        try await br(["backup", "full", "--pd=127.0.0.1:2379", "--storage=local://\(root)/bk-done"])
        let done = try await create(localBackup("bk-done", root: root))
        try await statusOf(.backups, "bk-done", ["phase": "Complete", "conditions": conditionsUpTo("Complete"), "commitTs": "449",
                                                 "backupPath": .string("local://\(root)/bk-done"), "timeStarted": .string(t0.description),
                                                 "timeCompleted": .string(t0.description)])
        _ = try await op.api.create(.jobs, namespace: ns, object: Self.tidbOperatorJob("backup-bk-done", component: "backup", owner: done, kind: "Backup", command: ["true"]))

        // 2. A Running backup whose TiDB Operator pod is still at work; it will report Complete (commitTs 1) whole-object.
        let running = try await create(localBackup("bk-running", root: root))
        try await statusOf(.backups, "bk-running", ["phase": "Running", "conditions": conditionsUpTo("Running"),
                                                    "backupPath": .string("local://\(root)/bk-running"), "timeStarted": .string(t0.description)])
        _ = try await op.api.create(.jobs, namespace: ns, object: Self.tidbOperatorJob("backup-bk-running", component: "backup", owner: running, kind: "Backup",
            command: ["python3", Self.podStandIn, "backup", ns, "bk-running", "local://\(root)/bk-running", "3"]))

        // 3. A backup being deleted while TiDB Operator's clean Job deletes its data.
        try await br(["backup", "full", "--pd=127.0.0.1:2379", "--storage=local://\(root)/bk-cleaning"])
        let cleaning = try await create(localBackup("bk-cleaning", root: root))
        try await statusOf(.backups, "bk-cleaning", ["phase": "Complete", "conditions": conditionsUpTo("Complete"), "commitTs": "450",
                                                     "backupPath": .string("local://\(root)/bk-cleaning")])
        _ = try await op.api.create(.jobs, namespace: ns, object: Self.tidbOperatorJob("clean-bk-cleaning", component: "clean", owner: cleaning, kind: "Backup",
            command: ["python3", Self.podStandIn, "clean", ns, "bk-cleaning", "\(root)/bk-cleaning", "3"]))
        _ = try await op.api.delete(.backups, namespace: ns, name: "bk-cleaning", options: DeleteOptions())

        // 4. A Running restore with its TiDB Operator Job.
        try await br(["backup", "full", "--pd=127.0.0.1:2379", "--storage=local://\(root)/bk-source"])
        let restore = try await create("""
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: rs-running, namespace: default}
            spec:
              br: {cluster: basic}
              local:
                prefix: bk-source
                volume: {name: backups, hostPath: {path: \(root)}}
                volumeMount: {name: backups, mountPath: \(root)}
            """, finalizer: false)
        try await statusOf(.restores, "rs-running", ["phase": "Running", "conditions": conditionsUpTo("Running"), "timeStarted": .string(t0.description)])
        _ = try await op.api.create(.jobs, namespace: ns, object: Self.tidbOperatorJob("restore-rs-running", component: "restore", owner: restore, kind: "Restore",
            command: ["python3", Self.podStandIn, "restore", ns, "rs-running", "local://\(root)/bk-source", "3"]))

        // 5. An hourly schedule whose last backup was three slots ago (its Backup Complete).
        let hour = Int64(Date().timeIntervalSince1970) / 3600 * 3600
        let lastSlot = Time(Date(timeIntervalSince1970: TimeInterval(hour - 3 * 3600)))
        let lastName = BRNames.scheduledBackupName(schedule: "hourly", slot: lastSlot)
        _ = try await create("""
            apiVersion: pingcap.com/v1alpha1
            kind: BackupSchedule
            metadata: {name: hourly, namespace: default}
            spec:
              schedule: "0 * * * *"
              maxBackups: 5
              backupTemplate:
                br: {cluster: basic}
                local:
                  prefix: hourly
                  volume: {name: backups, hostPath: {path: \(root)}}
                  volumeMount: {name: backups, mountPath: \(root)}
            """, finalizer: false)
        try await statusOf(.backupSchedules, "hourly", ["lastBackup": .string(lastName), "lastBackupTime": .string(lastSlot.description)])
        var lastBackup = try KubeYAML.documents(localBackup(lastName, root: root))[0].value
        lastBackup["metadata"]?["labels"] = .object(JSONObject(BRLabels.scheduleLabels(scheduleName: "hourly").map { ($0.key, .string($0.value)) }))
        _ = try await op.api.create(.backups, namespace: ns, object: lastBackup)
        try await statusOf(.backups, lastName, ["phase": "Complete", "conditions": conditionsUpTo("Complete"), "commitTs": "440",
                                                "backupPath": .string("local://\(root)/\(lastName)")])

        // 6. A Running backup that stays with TiDB Operator (not labelled).
        let left = try await create(localBackup("bk-left", root: root))
        try await statusOf(.backups, "bk-left", ["phase": "Running", "conditions": conditionsUpTo("Running"), "timeStarted": .string(t0.description)])
        _ = try await op.api.create(.jobs, namespace: ns, object: Self.tidbOperatorJob("backup-bk-left", component: "backup", owner: left, kind: "Backup",
            command: ["python3", Self.podStandIn, "hold", ns, "bk-left", "-", "60"]))

        // Nothing is touched before the hand-over.
        try await Task.sleep(for: .seconds(2))
        #expect(try await op.api.list(.jobs, namespace: ns).items.count == 5, "the operator created a Job for objects not handed over")

        // The hand-over: label everything but bk-left, as the migration guide says.
        for (kind, name) in [(ResourceKind.backups, "bk-done"), (.backups, "bk-running"), (.backups, "bk-cleaning"), (.restores, "rs-running"),
                             (.backupSchedules, "hourly"), (.backups, lastName)] {
            _ = try await op.api.patch(kind, namespace: ns, name: name, patch: .merge(["metadata": ["labels": [Self.label: "true"]]]),
                                       subresource: nil)
        }

        // The in-flight backup ends Complete with the commit TS its backupmeta holds (read by the result Job), not the pod's lost "1".
        let finished = try await op.backup("bk-running", reaches: ["Complete", "Failed"], timeout: 60)
        #expect(finished.status.phase == .complete, "\(finished.status)")
        #expect(finished.status.commitTs != nil && finished.status.commitTs != "1", "\(finished.status)")
        // The restore whose pod reported into the void is Complete.
        let restored = try await op.restore("rs-running", reaches: ["Complete", "Failed"], timeout: 60)
        #expect(restored.status.phase == .complete, "\(restored.status)")
        #expect(restored.status.conditions?.last?.reason == "AdoptedJobSucceeded", "\(restored.status)")
        // The clean TiDB Operator started finishes: data gone, the Backup released, no second clean Job.
        let released = await eventually(60) { (try? await op.api.getIfPresent(Backup.self, namespace: ns, name: "bk-cleaning")) == .some(nil) }
        #expect(released, "bk-cleaning still held; log: \(op.tail())")
        #expect(!FileManager.default.fileExists(atPath: root + "/bk-cleaning/backupmeta"))
        // The schedule goes on from its lastBackupTime: one Backup for the latest missed slot, labelled for this operator.
        let scheduled = await eventually(30) {
            ((try? await op.api.list(Backup.self, namespace: ns, labelSelector: scheduleSelector("hourly"))) ?? []).count >= 2
        }
        #expect(scheduled, "the schedule made no Backup; log: \(op.tail())")
        try await Task.sleep(for: .seconds(2))
        let hourly = try await op.api.list(Backup.self, namespace: ns, labelSelector: scheduleSelector("hourly"))
        let nowSlot = BRNames.scheduledBackupName(schedule: "hourly", slot: Time(Date(timeIntervalSince1970: TimeInterval(hour))))
        #expect(Set(hourly.map(\.name)) == [lastName, nowSlot], "a burst or a wrong slot: \(hourly.map(\.name))")
        #expect(hourly.first { $0.name == nowSlot }?.metadata.labels?[Self.label] == "true", "TiDB Operator would take the new Backup too")

        // The Complete backup was not run again; its finalizer is TiDB Operator's; deleting it cleans its data with one Job.
        let kept = try await op.api.get(Backup.self, namespace: ns, name: "bk-done")
        #expect(kept.status.phase == .complete && kept.status.commitTs == "449", "\(kept.status)")
        #expect(kept.metadata.finalizers == [BRLabels.backupFinalizer])
        _ = try await op.api.delete(.backups, namespace: ns, name: "bk-done", options: DeleteOptions())
        try await op.gone("bk-done", timeout: 60)
        #expect(!FileManager.default.fileExists(atPath: root + "/bk-done/backupmeta"), "the adopted Backup's data was not cleaned")

        // Jobs: no second backup Job for any adopted backup; ours carry TiDB Operator's labels.
        let jobs = try await op.api.list(.jobs, namespace: ns).items
        let names = jobs.compactMap { $0.value(at: ["metadata", "name"])?.stringValue }
        for name in ["backup-bk-done", "backup-bk-running", "clean-bk-cleaning", "restore-rs-running"] {
            #expect(names.filter { $0 == name }.count <= 1)
        }
        #expect(!names.contains { $0.hasPrefix("backup-bk-done") && $0 != "backup-bk-done" }, "\(names)")
        for job in jobs where job.value(at: ["metadata", "annotations", BRLabels.jobBuilderAnnotation]) != nil {
            #expect(job.value(at: ["metadata", "labels", "app.kubernetes.io/managed-by"])?.stringValue.map { ["backup-operator", "restore-operator"].contains($0) } == true,
                    "\(job.value(at: ["metadata", "name"]) ?? "")")
        }

        // bk-left was never touched: same phase, no condition added, no Job but TiDB Operator's.
        let untouched = try await op.api.get(Backup.self, namespace: ns, name: "bk-left")
        #expect(untouched.status.phase == .running && untouched.status.conditions?.count == 3, "\(untouched.status)")
        #expect(names.filter { $0.contains("bk-left") } == ["backup-bk-left"], "\(names)")
    }
}
