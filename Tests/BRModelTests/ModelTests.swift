import Foundation
import KubeModel
import ManifestTools
import Testing

@testable import BRModel

func decodeAny(_ value: JSONValue) throws -> JSONValue {
    switch value["kind"]?.stringValue {
    case "Backup": return KubeCodec.encode(try KubeCodec.decode(Backup.self, from: value))
    case "Restore": return KubeCodec.encode(try KubeCodec.decode(Restore.self, from: value))
    case "BackupSchedule": return KubeCodec.encode(try KubeCodec.decode(BackupSchedule.self, from: value))
    case "CompactBackup": return KubeCodec.encode(try KubeCodec.decode(CompactBackup.self, from: value))
    case "TidbCluster": return KubeCodec.encode(try KubeCodec.decode(TidbCluster.self, from: value))
    default: return value
    }
}

/// Removes what encoding adds by design (always-emitted empty structs and nulls) so that a document
/// can be compared with its round trip.
func withoutWireAdditions(_ v: JSONValue) -> JSONValue {
    switch v {
    case .object(let o):
        var out = JSONObject()
        for (k, x) in o {
            let c = withoutWireAdditions(x)
            if c == .null || c == .emptyObject { continue }
            out[k] = c
        }
        return .object(out)
    case .array(let a): return .array(a.map(withoutWireAdditions))
    default: return v
    }
}

@Suite("The pingcap.com/v1alpha1 model on the wire")
struct WireTests {
    @Test("every example and seed manifest decodes and round-trips", arguments: exampleFiles())
    func examplesRoundTrip(_ file: String) throws {
        for object in try yamlObjects(file) {
            let back = try decodeAny(object)
            #expect(withoutWireAdditions(back) == withoutWireAdditions(object), "\(file)")
        }
    }

    @Test("fields this version does not know survive decode and encode, at every depth")
    func lossless() throws {
        let document = try JSONParser.parse(#"""
            {"apiVersion":"pingcap.com/v1alpha1","kind":"Backup","futureTop":{"a":1},
             "metadata":{"name":"b","namespace":"ns","futureMeta":"x"},
             "spec":{"br":{"cluster":"c","futureBR":[1,2]},"s3":{"provider":"aws","bucket":"x","futureS3":true},
                     "futureSpec":"typo kept","backoffRetryPolicy":{"futureRetry":1}},
             "status":{"conditions":[{"type":"Scheduled","status":"True","futureCond":"y","lastTransitionTime":null}],
                       "futureStatus":{"deep":{"er":[null]}}}}
            """#)
        var backup = try KubeCodec.decode(Backup.self, from: document)
        let out = KubeCodec.encode(backup)
        for path in [["futureTop"], ["metadata", "futureMeta"], ["spec", "br", "futureBR"], ["spec", "s3", "futureS3"],
                     ["spec", "futureSpec"], ["spec", "backoffRetryPolicy", "futureRetry"], ["status", "futureStatus"]] {
            #expect(out.value(at: path) == document.value(at: path), "\(path)")
        }
        #expect(out["status"]?["conditions"]?.arrayValue?.first?["futureCond"] == "y")
        // Known members come from the typed value: a change shows, a cleared member disappears.
        backup.spec.s3?.bucket = "y"
        backup.spec.br?.cluster = "d"
        backup.spec.s3?.region = nil
        backup.status.phase = .scheduled
        let changed = KubeCodec.encode(backup)
        #expect(changed.value(at: ["spec", "s3", "bucket"]) == "y")
        #expect(changed.value(at: ["spec", "br", "cluster"]) == "d")
        #expect(changed.value(at: ["spec", "s3", "futureS3"]) == true)
        #expect(changed.value(at: ["status", "phase"]) == "Scheduled")
        // Member order of the original document is kept.
        #expect(changed.objectValue?.keys.prefix(4) == ["apiVersion", "kind", "futureTop", "metadata"])
    }

    @Test("times are second-precision UTC, non-pointer times are null, empty structs are emitted")
    func wireForms() throws {
        var backup = Backup(name: "b", namespace: "ns", spec: BackupSpec())
        backup.status.timeCompleted = Time(rfc3339: "2024-03-05T15:08:09.5+08:00")
        backup.status.conditions = [BackupCondition(type: .complete)]
        let json = KubeCodec.encode(backup)
        #expect(json.value(at: ["status", "timeStarted"]) == .null)
        #expect(json.value(at: ["status", "timeCompleted"]) == "2024-03-05T07:08:09Z")
        #expect(json.value(at: ["status", "timeSynced"]) == nil)
        #expect(json.value(at: ["status", "conditions"])?.arrayValue?.first?["lastTransitionTime"] == .null)
        #expect(json.value(at: ["spec", "backoffRetryPolicy"]) == .emptyObject)
        #expect(json.value(at: ["spec", "resources"]) == .emptyObject)
        #expect(json["apiVersion"] == "pingcap.com/v1alpha1")
        #expect(json["kind"] == "Backup")
        var restore = Restore(name: "r", namespace: "ns", spec: RestoreSpec())
        restore.spec.backupType = "full"
        #expect(KubeCodec.encode(restore).value(at: ["spec", "pitrFullBackupStorageProvider"]) == .emptyObject)
    }

    @Test("an unknown enum value is kept, not rejected, so validation can name it")
    func openEnums() throws {
        let b = try KubeCodec.decode(Backup.self, from: [
            "metadata": ["name": "b"], "spec": ["backupType": "everything", "br": ["cluster": "c"]],
        ])
        #expect(b.spec.backupType?.rawValue == "everything")
        #expect(b.spec.backupType?.isKnown == false)
        #expect(KubeCodec.encode(b).value(at: ["spec", "backupType"]) == "everything")
    }

    @Test("a wrong type is a decoding error naming the field")
    func decodingErrors() {
        do {
            _ = try KubeCodec.decode(Backup.self, from: ["metadata": ["name": "b"], "spec": ["br": ["cluster": "c", "concurrency": "four"]]])
            Issue.record("expected an error")
        } catch {
            #expect(error.field == "spec.br.concurrency")
        }
        do {
            _ = try KubeCodec.decode(Backup.self, from: ["metadata": ["name": "b"], "spec": ["br": [:]]])
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "spec.br.cluster: Required value")
        }
    }
}

@Suite("Defaults (reference 1.11)")
struct DefaultsTests {
    @Test("schema defaults are filled as the API server fills them")
    func schemaDefaults() {
        var spec = BackupSpec()
        spec.br = BRConfig(cluster: "c")
        spec.cleanOption = CleanOption()
        let b = BRDefaults.applied(to: Backup(name: "b", namespace: "ns", spec: spec))
        #expect(b.spec.backupMode == .snapshot)
        #expect(b.spec.cleanPolicy == .retain)
        #expect(b.spec.calcSizeLevel == .all)
        #expect(b.spec.volumeBackupInitJobMaxActiveSeconds == 600)
        #expect(b.spec.backoffRetryPolicy == BackoffRetryPolicy(minRetryDuration: "300s", maxRetryTimes: 2, retryTimeout: "30m"))
        #expect(b.spec.cleanOption?.retryCount == 5)
        #expect(b.spec.cleanOption?.snapshotsDeleteRatio == 1)
        #expect(b.spec.backupType == nil, "backupType has a code default only")

        let r = BRDefaults.applied(to: Restore(name: "r", namespace: "ns", spec: RestoreSpec()))
        #expect(r.spec.restoreMode == .snapshot)
        #expect(r.spec.warmupStrategy == .hybrid)
        #expect(r.spec.tolerateSingleTiKVOutage == false)
        #expect(r.spec.backoffLimit == 0)

        var cs = CompactSpec()
        cs.startTs = "1"
        let c = BRDefaults.applied(to: CompactBackup(name: "c", namespace: "ns", spec: cs))
        #expect(c.spec.concurrency == 4)
        #expect(c.spec.maxRetryTimes == 6)
    }

    @Test("cleanOption defaults apply only when cleanOption is present; explicit values stay")
    func cleanOptionPresence() {
        let b = BRDefaults.applied(to: Backup(name: "b", namespace: "ns", spec: BackupSpec()))
        #expect(b.spec.cleanOption == nil)
        var spec = BackupSpec()
        spec.cleanPolicy = .delete
        spec.backoffRetryPolicy.maxRetryTimes = 9
        let kept = BRDefaults.applied(to: Backup(name: "b", namespace: "ns", spec: spec))
        #expect(kept.spec.cleanPolicy == .delete)
        #expect(kept.spec.backoffRetryPolicy.maxRetryTimes == 9)
        #expect(kept.spec.backoffRetryPolicy.retryTimeout == "30m")
    }

    @Test("a log backup template defaults to log mode")
    func logTemplate() {
        var spec = BackupScheduleSpec(schedule: "@daily", backupTemplate: BackupSpec())
        spec.logBackupTemplate = BackupSpec()
        let s = BRDefaults.applied(to: BackupSchedule(name: "s", namespace: "ns", spec: spec))
        #expect(s.spec.logBackupTemplate?.backupMode == .log)
        #expect(s.spec.backupTemplate.backupMode == .snapshot)
    }

    @Test("code defaults are read through effective accessors without changing the object")
    func codeDefaults() {
        var spec = BackupSpec()
        spec.from = TiDBAccessConfig(host: "h", secretName: "s")
        #expect(spec.effectiveBackupType == .full)
        #expect(spec.effectiveServiceAccount == "tidb-backup-manager")
        #expect(spec.effectiveStorageSize == "100Gi")
        #expect(spec.effectiveTiKVGCLifeTime == "72h")
        #expect(spec.from?.effectivePort == 4000)
        #expect(spec.from?.effectiveUser == "root")
        #expect(spec.effectiveBackoffRetryPolicy.minRetryDuration == "300s")
        let clean = spec.effectiveCleanOption
        #expect(clean.pageSize == 10_000 && clean.retryCount == 5 && clean.batchConcurrency == 10 && clean.routineConcurrency == 100)
    }
}

@Suite("Names, labels and hashes (reference 1.10, 8.1)")
struct NamingTests {
    @Test("PVC name hashes", arguments: [
        ("10.1.1.2", Int32(0), "85578669cc"), ("localhost", 0, "6c968db54c"), ("basic-tidb.tidb-cluster", 4000, "7769f6fc94"),
        ("", 0, "7644db7f5b"),
    ])
    func hashes(_ host: String, _ port: Int32, _ hash: String) {
        #expect(BRNames.endpointHash(TiDBAccessConfig(host: host, port: port, secretName: "s")) == hash)
    }

    @Test("FNV-1 values")
    func fnv() {
        #expect(BRNames.fnv1_32("10.1.1.2_4000") == 4_113_422_577)
        #expect(BRNames.fnv1_32("localhost_4000") == 2_752_486_107)
        #expect(BRNames.fnv1_32("_4000") == 3_200_863_916)
    }

    @Test("job and object names")
    func names() {
        let b = Backup(name: "bk1", namespace: "ns", spec: BackupSpec())
        #expect(b.jobName == "backup-bk1")
        #expect(b.volumeInitJobName == "backup-bk1-init")
        #expect(b.cleanJobName == "clean-bk1")
        #expect(b.stopLogJobName == "stop-bk1")
        var log = Backup(name: "lb", namespace: "ns", spec: BackupSpec())
        log.spec.backupMode = .log
        log.spec.logTruncateUntil = "400000"
        log.status.commitTs = "1"
        #expect(log.jobName == "backup-lb-log-truncate")
        log.status.commitTs = nil
        #expect(log.jobName == "backup-lb-log-start")
        var rt = Restore(name: "rt1", namespace: "ns", spec: RestoreSpec())
        #expect(rt.jobName == "restore-rt1")
        #expect(rt.pruneJobName == "restore-rt1-prune")
        rt.status.conditions = [RestoreCondition(type: .volumeComplete)]
        #expect(rt.jobName == "restore-data-rt1")
        let slot = Time(rfc3339: "2024-03-05T07:08:09Z")!
        #expect(BRNames.scheduledBackupName(schedule: "daily", slot: slot) == "daily-2024-03-05t07-08-09")
        #expect(BRNames.scheduleLogBackupName(schedule: "daily") == "log-daily")
        #expect(BRNames.scheduleCompactName(schedule: "daily", at: slot) == "compact-daily-2024-03-05t07-08-09")
        #expect(BRNames.compactTimestamp(slot) == "2024-03-05 07:08:09")
    }

    @Test("the log sub-command derivation of reference 3.8", arguments: [
        ("", "", false, "log-start"), ("", "Stopped", false, "log-stop"), ("", "", true, "log-stop"), ("", "Paused", false, "log-resume"),
        ("log-start", "Paused", false, "log-resume"), ("log-stop", "", false, "log-stop"), ("log-pause", "", false, "log-pause"),
        ("log-bogus", "", false, "log-unknown"),
    ])
    func logCommand(_ spec: String, _ phase: String, _ logStop: Bool, _ expected: String) {
        var b = Backup(name: "lb", namespace: "ns", spec: BackupSpec())
        b.spec.backupMode = .log
        if !spec.isEmpty { b.spec.logSubcommand = LogSubCommandSpec(rawValue: spec) }
        if !phase.isEmpty { b.status.phase = BackupConditionType(rawValue: phase) }
        if logStop { b.spec.logStop = true }
        #expect(b.derivedLogSubcommand.rawValue == expected)
    }

    @Test("job labels put operator labels first; the Backup's labels only add keys")
    func labels() {
        var b = Backup(name: "bk1", namespace: "ns", spec: BackupSpec())
        b.metadata.labels = [BRLabels.instance: "prod", BRLabels.component: "mine", "team": "db"]
        let l = BRLabels.backupJobLabels(b)
        #expect(l[BRLabels.instance] == "prod")
        #expect(l[BRLabels.component] == "backup")
        #expect(l["team"] == "db")
        #expect(l[BRLabels.name] == "backup" && l[BRLabels.managedBy] == "backup-operator" && l[BRLabels.backup] == "bk1")
        #expect(BRLabels.scheduleLabels(scheduleName: "bs") == [
            "app.kubernetes.io/name": "backup-schedule", "app.kubernetes.io/managed-by": "backup-schedule-operator",
            "app.kubernetes.io/instance": "bs", "tidb.pingcap.com/backup-schedule": "bs",
        ])
    }

    @Test("the controller owner reference")
    func ownerReference() {
        var b = Backup(name: "bk1", namespace: "ns", spec: BackupSpec())
        b.metadata.uid = "u-1"
        #expect(b.controllerReference == OwnerReference(apiVersion: "pingcap.com/v1alpha1", kind: "Backup", name: "bk1", uid: "u-1",
                                                        controller: true, blockOwnerDeletion: true))
    }

    @Test("TSO conversion", arguments: [("445644800000000000", UInt64(445_644_800_000_000_000)), ("", 0),
                                        ("2023-11-14T22:13:20Z", 445_644_800_000_000_000)])
    func tso(_ s: String, _ v: UInt64) throws {
        #expect(try TSO.parse(s) == v)
        #expect(try TSO.parse("2023-11-14 22:13:20", zone: TimeZone(identifier: "UTC")!) == 445_644_800_000_000_000)
        #expect(TSO.fromUnixSeconds(1_700_000_000) == 445_644_800_000_000_000)
    }
}
