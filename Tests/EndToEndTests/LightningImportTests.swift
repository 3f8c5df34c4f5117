import AWSCore
import AWSSigning
import BRModel
import BackupStorage
import Foundation
import KubeTesting
import KubeAPI
import KubeModel
import Testing
import TestServers

/// A Dumpling-format data set: database `db`, tables t1…tN, two data files each (so that a resume
/// can skip a finished file within a table), and Dumpling's `metadata`.
func writeDataSet(_ directory: String, db: String, tables: Int = 5) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    func write(_ name: String, _ text: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: directory + "/" + name)) }
    try write("metadata", "Started dump at: 2026-11-30 00:00:00\nSHOW MASTER STATUS:\n\tLog: tidb-binlog\n\tPos: 452745845561311234\n\tGTID:\n\nFinished dump at: 2026-11-30 00:00:01\n")
    try write("\(db)-schema-create.sql", "CREATE DATABASE `\(db)`;\n")
    for t in 1...tables {
        try write("\(db).t\(t)-schema.sql", "CREATE TABLE `t\(t)` (id INT PRIMARY KEY, v VARCHAR(32));\n")
        try write("\(db).t\(t).000000000.sql", "INSERT INTO `t\(t)` VALUES (1,'t\(t) first'),(2,'t\(t) second');\n")
        try write("\(db).t\(t).000000001.sql", "INSERT INTO `t\(t)` VALUES (3,'t\(t) third');\n")
    }
}

func lightningRestore(_ name: String, port: Int, user: String, source: String, extra: [String] = []) -> String {
    """
    apiVersion: pingcap.com/v1alpha1
    kind: Restore
    metadata: {name: \(name), namespace: default}
    spec:
      to: {host: 127.0.0.1, port: \(port), user: \(user), secretName: tidb-secret}
    \(extra.map { "  " + $0 }.joined(separator: "\n"))
      lightning:
        dataSource: \(source)
    """
}

extension Operator {
    /// Every object `kind` in `default` with its status, joined (to look for secrets).
    func statusesAndEvents() async throws -> String {
        let restores = try await api.list(.restores, namespace: "default").items.map { $0.serialized() }
        let events = try await api.list(.events, namespace: "default").items.map { $0.serialized() }
        return (restores + events).joined(separator: "\n")
    }

    func argv(_ tool: String) throws -> [[String]] {
        let text = (try? String(contentsOfFile: directory + "/argv.jsonl", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["tool"] as? String == tool }.compactMap { $0["argv"] as? [String] }
    }
}

@Suite("End to end: TiDB Lightning import jobs (spec.lightning) in the standalone operator, against MariaDB", .serialized)
struct LightningImportTests {
    static func rows(_ db: TestServers.MariaDB, _ schema: String, tables: Int = 5) throws -> [String] {
        try (1...tables).map { try db.sql("SELECT COUNT(*), GROUP_CONCAT(id ORDER BY id) FROM `\(schema)`.`t\($0)`") }
    }

    @Test("local source: a directory on this machine is imported, progress reaches 100, commit TS from Dumpling's metadata; no secret in argv, logs, events or status")
    func localSource() async throws {
        let db = try await TestServers.offPool(TestServers.startMariaDB)
        let op = try await Operator()
        defer { op.stop() }
        let data = op.directory + "/export-local"
        try writeDataSet(data, db: "loc")
        try await op.applySecret("tidb-secret", ["password": db.password])
        try await op.apply(lightningRestore("imp-local", port: db.port, user: db.user, source: "{local: {hostPath: \(data)}}",
                                            extra: ["env: [{name: STANDIN_ARGV_FILE, value: \"\(op.directory)/argv.jsonl\"}]"]))
        let done = try await op.restore("imp-local", reaches: ["Complete", "Failed", "Invalid"])
        #expect(done.status.phase == .complete, "\(done.status)")
        #expect(try Self.rows(db, "loc") == Array(repeating: "3\t1,2,3", count: 5))
        #expect(done.status.commitTs == "452745845561311234")
        #expect(done.status.progresses?.first { $0.step == "import" }?.progress == 100, "\(String(describing: done.status.progresses))")
        // The checkpoint was kept in the data directory while it ran and removed after success.
        #expect(!FileManager.default.fileExists(atPath: data + "/" + LightningLayout.checkpointFile))
        let argv = try op.argv("tidb-lightning").first ?? []
        #expect(argv.contains("--backend=tidb") && argv.contains("--d=\(data)") && argv.contains { $0.hasPrefix("--config=") }, "\(argv)")
        #expect(!argv.joined(separator: " ").contains(db.password))
        #expect(!op.allLogs().contains(db.password))
        #expect(!(try await op.statusesAndEvents()).contains(db.password))
        let events = try await op.events { items in
            let reasons = items.compactMap { $0["reason"]?.stringValue }
            return reasons.contains("SuccessfulCreate") && reasons.contains("Complete")
        }.compactMap { $0["reason"]?.stringValue }
        #expect(events.contains("SuccessfulCreate") && events.contains("Complete"), "\(events)")
    }

    @Test("the chart's default target converts (no Secret: a user without a password), validates and imports as that user")
    func passwordlessChartDefault() async throws {
        let db = try await TestServers.offPool(TestServers.startMariaDB)
        _ = try await db.sql("CREATE USER 'nopw'@'%'; GRANT ALL ON *.* TO 'nopw'@'%'; CREATE USER 'nopw'@'localhost'; GRANT ALL ON *.* TO 'nopw'@'localhost';")
        let op = try await Operator()
        defer { op.stop() }
        let data = op.directory + "/export-nopw"
        try writeDataSet(data, db: "nopw", tables: 2)
        let values = op.directory + "/values.yaml"
        try "dataSource: {local: {hostPath: \(data)}}\nbackend: tidb\ntargetTidbCluster: {name: basic, namespace: default, user: nopw}\n"
            .write(toFile: values, atomically: true, encoding: .utf8)
        let converted = try await TestServers.run([Operator.buildDirectory + "/tidb-backup-operator", "lightning", "convert", "-f", values, "--name", "imp-nopw"])
        #expect(converted.status == 0, "\(converted.output)")
        // The converted Restore, pointed at this machine's MariaDB in place of the cluster's TiDB service.
        var restore = try #require(try KubeYAML.documents(converted.output).first?.value)
        restore["spec"]?["to"]?["host"] = "127.0.0.1"
        restore["spec"]?["to"]?["port"] = .int(Int64(db.port))
        let manifest = op.directory + "/restore-nopw.json"
        try restore.serialized().write(toFile: manifest, atomically: true, encoding: .utf8)
        let validated = try await TestServers.run([Operator.buildDirectory + "/tidb-backup-operator", "validate", "-f", manifest])
        #expect(validated.status == 0, "\(validated.output)")
        try await op.apply("apiVersion: pingcap.com/v1alpha1\nkind: TidbCluster\nmetadata: {name: basic, namespace: default}\nspec: {version: v8.5.0, pdAddresses: [\"http://127.0.0.1:2379\"]}")
        try await op.apply(restore.serialized())
        let done = try await op.restore("imp-nopw", reaches: ["Complete", "Failed", "Invalid"])
        #expect(done.status.phase == .complete, "\(done.status)")
        #expect(try Self.rows(db, "nopw", tables: 2) == Array(repeating: "3\t1,2,3", count: 2))
    }

    @Test("remote tarball on S3 (signature checks on) through the chart's rclone Secret, with the local backend: sorted KV on its volume, data fetched into a claim that outlives the Restore")
    func remoteTarballS3() async throws {
        let db = try await TestServers.offPool(TestServers.startMariaDB)
        let moto = try await TestServers.moto()
        let (admin, bucket) = try await motoBucket(moto, "lightning")
        let op = try await Operator()
        defer { op.stop() }
        let staging = op.directory + "/staging"
        try writeDataSet(staging + "/sbtest_s3", db: "rem")
        let archive = op.directory + "/sbtest_s3.tar.gz"
        let tar = try await TestServers.run(["tar", "-czf", archive, "-C", staging, "sbtest_s3"])
        #expect(tar.status == 0, "\(tar.output)")
        try await admin.uploadFile(archive, bucket: bucket, key: "exports/sbtest_s3.tar.gz")
        try await op.apply(cluster)
        try await op.applySecret("tidb-secret", ["password": db.password])
        try await op.applySecret("cloud-storage-secret", ["rclone.conf": """
            [s3]
            type = s3
            provider = AWS
            env_auth = false
            access_key_id = \(moto.accessKeyID)
            secret_access_key = \(moto.secretAccessKey)
            region = us-east-1
            endpoint = \(moto.endpoint)
            force_path_style = true
            """])
        try await op.apply(lightningRestore("imp-s3", port: db.port, user: db.user,
                                            source: "{remote: {path: \"s3:\(bucket)/exports/sbtest_s3.tar.gz\", secretName: cloud-storage-secret, storage: 1Gi}}",
                                            extra: ["env: [{name: STANDIN_ARGV_FILE, value: \"\(op.directory)/argv.jsonl\"}]"])
                       + "\n    backend: local\n    cluster: basic\n    sortedKV: {storage: 1Gi}")
        let done = try await op.restore("imp-s3", reaches: ["Complete", "Failed", "Invalid"])
        #expect(done.status.phase == .complete, "\(done.status); log: \(op.tail())")
        #expect(try Self.rows(db, "rem") == Array(repeating: "3\t1,2,3", count: 5))
        let argv = try op.argv("tidb-lightning").first ?? []
        #expect(argv.contains("--backend=local") && argv.contains("--pd-urls=http://127.0.0.1:2379"), "\(argv)")
        let sortedKV = argv.first { $0.hasPrefix("--sorted-kv-dir=") }.map { String($0.dropFirst("--sorted-kv-dir=".count)) } ?? ""
        #expect(sortedKV.hasSuffix("/volumes/default/imp-s3-lightning-sorted-kv"), "\(sortedKV)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: sortedKV)) ?? []).count == 10)
        // The data claim exists without an owner (it outlives the Restore); the sorted-KV claim is owned.
        let dataClaim = try await op.api.get(.persistentVolumeClaims, namespace: "default", name: "imp-s3-lightning-data")
        #expect(dataClaim.value(at: ["metadata", "ownerReferences"]) == nil)
        #expect(dataClaim.value(at: ["spec", "resources", "requests", "storage"])?.stringValue == "1Gi")
        let kvClaim = try await op.api.get(.persistentVolumeClaims, namespace: "default", name: "imp-s3-lightning-sorted-kv")
        #expect(kvClaim.value(at: ["metadata", "ownerReferences"])?.arrayValue?.first?["kind"]?.stringValue == "Restore")
        for secret in [db.password, moto.secretAccessKey] {
            #expect(!op.allLogs().contains(secret))
            #expect(!(try await op.statusesAndEvents()).contains(secret))
            #expect(!(try op.argv("tidb-lightning").flatMap { $0 }.joined(separator: " ")).contains(secret))
        }
    }

    @Test("remote directory on the GCS emulator with the Restore's gcs settings")
    func remoteDirectoryGCS() async throws {
        let db = try await TestServers.offPool(TestServers.startMariaDB)
        let gcs = try await TestServers.gcs()
        let op = try await Operator()
        defer { op.stop() }
        let host = String(gcs.endpoint.dropFirst("http://".count))
        let bucket = "lightning-\(UInt32.random(in: 0...UInt32.max))"
        let client = GCSClient(base: URL(string: gcs.endpoint)!, tokens: nil)
        try await client.createBucket(bucket, project: "test-project", location: "US", storageClass: "STANDARD")
        let local = op.directory + "/gcs-data"
        try writeDataSet(local, db: "gdir", tables: 3)
        for name in try FileManager.default.contentsOfDirectory(atPath: local) {
            try await client.upload(file: local + "/" + name, bucket: bucket, object: "exports/day1/" + name)
        }
        try await op.applySecret("tidb-secret", ["password": db.password])
        try await op.apply(lightningRestore("imp-gcs", port: db.port, user: db.user,
                                            source: "{remote: {directory: \"gcs://\(bucket)/exports/day1\"}}",
                                            extra: ["gcs: {projectId: test-project}", "env: [{name: STORAGE_EMULATOR_HOST, value: \"\(host)\"}]"]))
        let done = try await op.restore("imp-gcs", reaches: ["Complete", "Failed", "Invalid"])
        #expect(done.status.phase == .complete, "\(done.status); log: \(op.tail())")
        #expect(try Self.rows(db, "gdir", tables: 3) == Array(repeating: "3\t1,2,3", count: 3))
    }

    @Test("adhoc: data already in a claim (as a remote import leaves it) is imported from <claim>/<backupName>; a missing claim is named")
    func adhoc() async throws {
        let db = try await TestServers.offPool(TestServers.startMariaDB)
        let op = try await Operator()
        defer { op.stop() }
        try await op.applySecret("tidb-secret", ["password": db.password])
        let claim: JSONValue = ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": "kept-data", "namespace": "default"],
                                "spec": ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "1Gi"]]]]
        _ = try await op.api.create(.persistentVolumeClaims, namespace: "default", object: claim)
        try writeDataSet(op.directory + "/data/volumes/default/kept-data/backup-2026-11-30T00:00:00Z", db: "adh", tables: 2)
        try await op.apply(lightningRestore("imp-adhoc", port: db.port, user: db.user,
                                            source: "{adhoc: {pvcName: kept-data, backupName: \"backup-2026-11-30T00:00:00Z\"}}"))
        let done = try await op.restore("imp-adhoc", reaches: ["Complete", "Failed", "Invalid"])
        #expect(done.status.phase == .complete, "\(done.status); log: \(op.tail())")
        #expect(try Self.rows(db, "adh", tables: 2) == Array(repeating: "3\t1,2,3", count: 2))
        // The claim's directory goes with the claim.
        let claimDirectory = op.directory + "/data/volumes/default/kept-data"
        #expect(FileManager.default.fileExists(atPath: claimDirectory))
        _ = try await op.api.delete(.persistentVolumeClaims, namespace: "default", name: "kept-data")
        #expect(await eventually(10) { !FileManager.default.fileExists(atPath: claimDirectory) })

        try await op.apply(lightningRestore("imp-noclaim", port: db.port, user: db.user, source: "{adhoc: {pvcName: nowhere, backupName: b}}"))
        let waiting = try await op.restore("imp-noclaim", reaches: ["RetryFailed", "Failed"])
        let condition = waiting.status.conditions?.first { $0.type == waiting.status.phase }
        #expect(condition?.reason == "PVCNotFound" && condition?.message?.contains("dataSource.adhoc.pvcName nowhere") == true, "\(waiting.status)")
    }

    @Test("failure at table 3 of 5: Failed naming the table; re-applied: stopped on the checkpoint error, pod kept (failFast false); destroy-error recovery: tables 1-2 not loaded again, Complete")
    func failAndRecover() async throws {
        let db = try await TestServers.offPool(TestServers.startMariaDB)
        _ = try await db.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 'ON';")
        let op = try await Operator()
        defer { op.stop() }
        let data = op.directory + "/export-fail"
        try writeDataSet(data, db: "rec")
        let failSwitch = op.directory + "/fail-switch"
        FileManager.default.createFile(atPath: failSwitch, contents: nil)
        try await op.applySecret("tidb-secret", ["password": db.password])
        let env = "env: [{name: LIGHTNING_STANDIN_FAIL_AT, value: \"3\"}, {name: LIGHTNING_STANDIN_FAIL_SWITCH, value: \"\(failSwitch)\"}, {name: STANDIN_ARGV_FILE, value: \"\(op.directory)/argv.jsonl\"}]"
        try await op.apply(lightningRestore("imp-rec", port: db.port, user: db.user, source: "{local: {hostPath: \(data)}}", extra: [env]))
        let failed = try await op.restore("imp-rec", reaches: ["Complete", "Failed"])
        let first = failed.status.conditions?.first { $0.type == .failed }
        #expect(failed.status.phase == .failed && first?.reason == "LoaderBackupDataFailed", "\(failed.status)")
        #expect(first?.message?.contains("`rec`.`t3`") == true, "\(String(describing: first?.message))")
        #expect(first?.message?.contains(LightningLayout.recoveryAnnotation) == true)
        #expect(FileManager.default.fileExists(atPath: data + "/" + LightningLayout.checkpointFile))

        // The cause is gone; the Restore is re-applied, now with failFast false. Lightning refuses to
        // run over the failed checkpoint; the pod stays up for inspection.
        try FileManager.default.removeItem(atPath: failSwitch)
        _ = try await op.api.delete(Restore.self, namespace: "default", name: "imp-rec")
        #expect(await eventually(10) { (try? await op.api.getIfPresent(Restore.self, namespace: "default", name: "imp-rec")) == .some(nil) })
        try await op.apply(lightningRestore("imp-rec", port: db.port, user: db.user, source: "{local: {hostPath: \(data)}}", extra: [env])
                           + "\n    failFast: false")
        let stopped = try await op.restore("imp-rec", reaches: ["Complete", "Failed"])
        let second = stopped.status.conditions?.first { $0.type == .failed }
        #expect(second?.reason == "LightningCheckpointError" && second?.message?.contains("`rec`.`t3`") == true, "\(String(describing: second))")
        try await Task.sleep(for: .seconds(1))
        let job = try await op.api.get(.jobs, namespace: "default", name: "restore-imp-rec")
        #expect(job.value(at: ["status", "active"]) == .int(1), "failFast false keeps the pod: \(job.value(at: ["status"]) ?? .null)")

        _ = try await op.api.patch(.restores, namespace: "default", name: "imp-rec",
                                   patch: Patch(.merge, try JSONParser.parse(#"{"metadata":{"annotations":{"\#(LightningLayout.recoveryAnnotation)":"destroy-error"}}}"#)))
        let done = try await op.restore("imp-rec", reaches: ["Complete"], timeout: 120)
        #expect(try Self.rows(db, "rec") == Array(repeating: "3\t1,2,3", count: 5))
        #expect(done.metadata.annotations?[LightningLayout.recoveryAnnotation] == nil)
        #expect(done.status.conditions?.first { $0.type == .failed }?.status == .false)
        // Tables 1-2 were loaded once; table 3's first file twice (before the failure, and after its
        // partial data was destroyed); tables 4-5 once.
        func inserts(_ table: String) throws -> Int {
            Int(try db.sql("SELECT COUNT(*) FROM mysql.general_log WHERE command_type = 'Query' AND CONVERT(argument USING utf8mb4) LIKE 'INSERT INTO `\(table)` VALUES (1,%'")) ?? -1
        }
        #expect(try inserts("t1") == 1 && inserts("t2") == 1 && inserts("t4") == 1 && inserts("t5") == 1)
        #expect(try inserts("t3") == 2)
        let ctl = try op.argv("tidb-lightning-ctl")
        #expect(ctl.count == 1 && ctl[0].contains("--checkpoint-error-destroy=all"), "\(ctl)")
        #expect(!ctl.joined().joined().contains(db.password))
        let reasons = try await op.events { $0.contains { $0["reason"] == "LightningRecovered" } }.compactMap { $0["reason"]?.stringValue }
        #expect(reasons.contains("LightningRecovered"), "\(reasons)")
        #expect(!op.allLogs().contains(db.password))
    }
}

@Suite("End to end: lightning convert output applied with kubectl", .serialized)
struct LightningConvertApplyTests {
    @Test("the seed's chart values in every mode and backend convert (the built binary) and kubectl applies the Restores with strict field validation")
    func convertAndApply() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let binary = Operator.buildDirectory + "/tidb-backup-operator"
        let target = "targetTidbCluster: {name: basic, namespace: default, user: root, secretName: basic-tidb-secret}"
        let sources = ["dataSource: {local: {nodeName: kind-worker3, hostPath: /data/export-20190820}}",
                       "dataSource: {remote: {rcloneImage: rclone/rclone:1.55.1, storageClassName: local-storage, storage: 100Gi, secretName: cloud-storage-secret, path: \"s3:bench-data-us/sysbench/sbtest_16_1e7.tar.gz\"}}",
                       "dataSource: {remote: {secretName: cloud-storage-secret, directory: \"s3:bench-data-us\"}}",
                       "dataSource: {adhoc: {pvcName: tidb-cluster-scheduled-backup, backupName: scheduled-backup-20190822-041004}}"]
        let backends = ["backend: local\nsortedKV: {storageClassName: local-storage, storage: 100Gi}", "backend: tidb"]
        var index = 0
        for source in sources {
            for backend in backends {
                index += 1
                let values = op.directory + "/values-\(index).yaml"
                try [source, backend, "failFast: true", target, "tlsCluster: {}", "tlsClient: {}", "config: |\n  [lightning]\n  level = \"info\"\n"]
                    .joined(separator: "\n").write(toFile: values, atomically: true, encoding: .utf8)
                let converted = try await TestServers.run([binary, "lightning", "convert", "-f", values, "--name", "imp-\(index)"])
                #expect(converted.status == 0, "\(converted.output)")
                let manifest = op.directory + "/restore-\(index).yaml"
                try converted.output.write(toFile: manifest, atomically: true, encoding: .utf8)
                let applied = try await TestServers.run(["kubectl", "--kubeconfig", op.kubeconfig, "apply", "--validate=strict", "--dry-run=server", "-f", manifest])
                #expect(applied.status == 0 && applied.output.contains("restore.pingcap.com/imp-\(index) created (server dry run)"), "\(applied.output)")
            }
        }
        // The chart's default target names no Secret (Lightning logs in without a password): it converts, with a note.
        let defaults = op.directory + "/values-defaults.yaml"
        try "dataSource: {local: {hostPath: /data/export}}\nbackend: tidb\ntargetTidbCluster: {name: basic, namespace: default, user: root}\n"
            .write(toFile: defaults, atomically: true, encoding: .utf8)
        let passwordless = try await TestServers.run([binary, "lightning", "convert", "-f", defaults, "--name", "imp-nopw"])
        #expect(passwordless.status == 0 && passwordless.output.contains("without a password") && passwordless.output.contains("secretName: ''"),
                "\(passwordless.output)")
        // A key the converter cannot map: exit 1, the key named, nothing on standard output.
        let bad = op.directory + "/bad.yaml"
        try "backend: importer\n\(target)\ndataSource: {local: {hostPath: /d}}\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try await TestServers.run([binary, "lightning", "convert", "-f", bad])
        #expect(refused.status == 1 && refused.output.contains("backend: importer was removed"), "\(refused.output)")
    }
}
