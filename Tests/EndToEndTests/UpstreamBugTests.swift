import AWSCore
import BRModel
import BRObjects
import Foundation
import KubeTesting
import KubeAPI
import KubeModel
import Testing
import TestServers

/// TiDB Operator's most reported backup bugs (their issue numbers), each played end to end against the
/// standalone operator. The versioned-bucket clean (#6066) is in `StandaloneBackupTests`, retention
/// beside a log backup (#6320) in `LogBackupTests.scheduleKeepsPiTRPossible`.
@Suite("End to end: TiDB Operator's reported backup bugs do not happen here", .serialized)
struct UpstreamBugTests {
    /// #2888, #4994: a namespace whose Backups' storage Secret was deleted first hung on the Backups'
    /// finalizer for ever (the clean Job could never be built).
    @Test("a namespace deleted after its Backups' storage Secret is gone: the Backup is released, the namespace goes, an Event in default says what was left behind")
    func namespaceWithoutItsSecret() async throws {
        let moto = try await TestServers.moto()
        let (admin, bucket) = try await motoBucket(moto, "doomed")
        let op = try await Operator()
        defer { op.stop() }
        let ns = "doomed"
        _ = try await op.api.create(.namespaces, namespace: nil, object: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(ns)]])
        func create(_ kind: ResourceKind, _ yaml: String) async throws {
            _ = try await op.api.create(kind, namespace: ns, object: try KubeYAML.documents(yaml)[0].value)
        }
        try await create(.tidbClusters, cluster.replacingOccurrences(of: "namespace: default", with: "namespace: \(ns)"))
        _ = try await op.api.create(.secrets, namespace: ns, object: [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "s3-secret", "namespace": .string(ns)],
            "stringData": ["access_key": .string(moto.accessKeyID), "secret_key": .string(moto.secretAccessKey)]])
        try await create(.backups, """
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: bk, namespace: \(ns)}
            spec:
              cleanPolicy: Delete
              br: {cluster: basic}
              s3: {provider: aws, region: us-east-1, bucket: \(bucket), prefix: doomed/bk, endpoint: "\(moto.endpoint)", secretName: s3-secret}
            """)
        var done: Backup?
        _ = await eventually(60) {
            done = try? await op.api.getIfPresent(Backup.self, namespace: ns, name: "bk")
            return done?.status.phase == .complete || done?.status.phase == .failed
        }
        #expect(done?.status.phase == .complete, "\(String(describing: done?.status))")
        _ = try await op.api.delete(.secrets, namespace: ns, name: "s3-secret")
        _ = try await op.api.delete(.namespaces, namespace: nil, name: ns)
        let gone = await eventually(60) {
            do { _ = try await op.api.get(.namespaces, namespace: nil, name: ns) } catch let e as KubeAPIError where e.isNotFound { return true } catch {}
            return false
        }
        #expect(gone, "namespace \(ns) is still there; log: \(op.tail())")
        let events = try await op.events { items in items.contains { $0["reason"]?.stringValue == "BackupDataLeftBehind" } }
        let left = events.first { $0["reason"]?.stringValue == "BackupDataLeftBehind" }
        #expect(left?.value(at: ["involvedObject", "kind"]) == "Namespace" && left?.value(at: ["involvedObject", "name"]) == .string(ns))
        #expect(left?["message"]?.stringValue?.contains("s3://\(bucket)/doomed/bk") == true, "\(String(describing: left))")
        // The data is where it was: nothing could delete it, and nothing pretended to.
        #expect(!(try await admin.listObjects(bucket: bucket, prefix: "doomed/bk/").objects.isEmpty))
    }

    /// #5392: resuming a schedule paused for many slots failed, or made a backup per missed slot.
    @Test("a schedule resumed after more than 100 missed slots makes one backup, for the latest slot")
    func resumeAfterALongPause() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(localSchedule("long", root: root, spec: ["pause: true"]).replacingOccurrences(of: "@every 2s", with: "@every 1m"))
        // Its last backup was 3 hours ago (180 slots), as a long pause leaves it.
        var schedule = try await op.api.get(BackupSchedule.self, namespace: "default", name: "long")
        schedule.status.lastBackupTime = Time(Date().addingTimeInterval(-3 * 3600))
        _ = try await op.api.updateStatus(schedule)
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "long", patch: Patch(.merge, try JSONParser.parse(#"{"spec":{"pause":false}}"#)))
        var backups: [Backup] = []
        _ = await eventually(10) {
            backups = (try? await op.api.list(Backup.self, namespace: "default", labelSelector: scheduleSelector("long"))) ?? []
            return !backups.isEmpty
        }
        try await Task.sleep(for: .seconds(2))
        backups = try await op.api.list(Backup.self, namespace: "default", labelSelector: scheduleSelector("long"))
        #expect(backups.count == 1, "\(backups.map(\.name))")
        schedule = try await op.api.get(BackupSchedule.self, namespace: "default", name: "long")
        #expect(schedule.status.conditions?.contains { $0.type == "Invalid" && $0.status == .true } != true, "\(schedule.status)")
        let slot = schedule.status.lastBackupTime?.date ?? .distantPast
        #expect(Date().timeIntervalSince(slot) < 61, "the slot run is the latest one, not an old one: \(slot)")
    }

    /// #5604: under `maxReservedTime`, a backup with no commit TS (one that failed) counted as expired
    /// the moment its Job ended, and was deleted with its files.
    @Test("#5604: maxReservedTime 72h with an expired backup of the schedule: backups that just failed (no commit TS) are kept with their data, the expired one goes")
    func justFailedBackupsAreNotExpired() async throws {
        // The backups fail before BR runs (their pod waits for a claim that never comes), so they have no commit TS.
        let op = try await Operator(extraArguments: ["--job-start-timeout", "2s"])
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(localSchedule("aging", root: root, spec: ["maxReservedTime: 72h", "pause: true"],
                                         template: ["cleanPolicy: Delete"] + StuckJobTests.extraClaim("never-made"))
                                .replacingOccurrences(of: "@every 2s", with: "@every 5s"))
        let schedule = try await op.api.get(BackupSchedule.self, namespace: "default", name: "aging")
        // A Complete backup of the schedule from a week ago (as an earlier run left it), and a newer one.
        for (name, daysAgo) in [("aging-week-old", 7), ("aging-yesterday", 1)] {
            var b = schedule.makeBackup(slot: Time(Date().addingTimeInterval(-Double(daysAgo) * 86400)))
            b.metadata.name = name
            b.spec.br?.cluster = "basic"
            _ = try await op.api.create(b)
            // Written as the backup's job binary wrote it (its status writer retries the operator's own writes' conflicts).
            try await StatusWriter.update(op.api, Backup.self, namespace: "default", name: name) { b in
                b.status.apply(BackupCondition(type: .complete), now: Time(Date()))
                b.status.commitTs = String(TSO.fromUnixSeconds(Int64(Date().timeIntervalSince1970) - Int64(daysAgo) * 86400))
            }
        }
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "aging", patch: .merge(["spec": ["pause": false]]))
        // Each backup ends Failed with no commit TS, and must outlive its Job.
        var failed: [Backup] = []
        let enough = await eventually(60) {
            failed = ((try? await op.api.list(Backup.self, namespace: "default", labelSelector: scheduleSelector("aging"))) ?? [])
                .filter { $0.status.phase == .failed }
            return failed.count >= 2
        }
        #expect(enough, "log: \(op.tail())")
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "aging", patch: .merge(["spec": ["pause": true]]))
        try await op.gone("aging-week-old", timeout: 30)
        try await Task.sleep(for: .seconds(3))  // further passes of the schedule's retention
        let left = try await op.api.list(Backup.self, namespace: "default", labelSelector: scheduleSelector("aging"))
        let names = Set(left.map(\.name))
        #expect(names.contains("aging-yesterday"), "\(names)")
        for b in failed {
            #expect(names.contains(b.name), "\(b.name) failed a moment ago and was deleted; left: \(names.sorted())")
            #expect((b.status.commitTs ?? "").isEmpty)
        }
    }

    /// #5631: BR 7.x writes its data files in a MetaFile that `file_index` names and (before it wrote
    /// `backup_size`) no total: the size TiDB Operator reported was the top-level meta's own few bytes.
    @Test("#5631: a backup whose backupmeta keeps its data files in a MetaFile and no backup_size reports the size of its data files, on moto's S3 and on a local volume")
    func sizeOfAVersion2Meta() async throws {
        let moto = try await TestServers.moto()
        let (admin, bucket) = try await motoBucket(moto, "meta-v2")
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.applySecret("s3-secret", ["access_key": moto.accessKeyID, "secret_key": moto.secretAccessKey])
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: v2-s3, namespace: default}
            spec:
              br: {cluster: basic}
              s3: {provider: aws, region: us-east-1, bucket: \(bucket), prefix: v2, endpoint: "\(moto.endpoint)", secretName: s3-secret}
              env: [{name: BR_STANDIN_META, value: v2-no-size}]
            """)
        try await op.apply(localBackup("v2-local", root: root).replacingOccurrences(of: "  cleanPolicy: Delete",
                                                                                   with: "  cleanPolicy: Delete\n  env: [{name: BR_STANDIN_META, value: v2-no-size}]"))
        let s3 = try await op.backup("v2-s3", reaches: ["Complete", "Failed"])
        let local = try await op.backup("v2-local", reaches: ["Complete", "Failed"])
        #expect(s3.status.phase == .complete && local.status.phase == .complete, "\(s3.status) \(local.status)")
        // What the storage holds of the data files (the SSTs), as its own listing says.
        let listed = try await admin.listObjects(bucket: bucket, prefix: "v2/").objects
        #expect(listed.contains { $0.key == "v2/backupmeta.datafile.000000001" }, "\(listed.map(\.key))")
        let sstOnS3 = listed.filter { $0.key.hasSuffix(".sst") }.reduce(Int64(0)) { $0 + $1.size }
        #expect(sstOnS3 > 10_000 && s3.status.backupSize == sstOnS3, "reported \(s3.status.backupSize ?? -1), data files \(sstOnS3)")
        let dir = root + "/v2-local"
        let sstLocal = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".sst") }
            .reduce(Int64(0)) { $0 + ((try FileManager.default.attributesOfItem(atPath: dir + "/" + $1)[.size] as? NSNumber)?.int64Value ?? 0) }
        #expect(sstLocal > 10_000 && local.status.backupSize == sstLocal, "reported \(local.status.backupSize ?? -1), data files \(sstLocal)")
    }

    /// #4220: two backups of one schedule ran at once when a backup outlasted the interval.
    @Test("a schedule whose backups outlast its interval never has two running at once")
    func oneBackupAtATime() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(localSchedule("slow", root: root, spec: ["maxBackups: 10"], template: ["env: [{name: BR_STANDIN_HANG, value: \"3\"}]"])
            .replacingOccurrences(of: "@every 2s", with: "@every 1s"))
        var most = 0
        var seen = Set<String>()
        let end = Date().addingTimeInterval(12)
        while Date() < end {
            let backups = try await op.api.list(Backup.self, namespace: "default", labelSelector: scheduleSelector("slow"))
            seen.formUnion(backups.map(\.name))
            most = max(most, backups.filter { ![.complete, .failed, .invalid].contains($0.status.phase) && $0.status.phase != nil }.count)
            try await Task.sleep(for: .milliseconds(100))
        }
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "slow", patch: Patch(.merge, try JSONParser.parse(#"{"spec":{"pause":true}}"#)))
        #expect(seen.count >= 2, "the schedule ran: \(seen)")
        #expect(most == 1, "\(most) backups of one schedule were running at once")
    }
}
