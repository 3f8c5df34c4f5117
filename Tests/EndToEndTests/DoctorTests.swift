import AWSCore
import AWSSigning
import Foundation
import KubeTesting
import KubeAPI
import KubeModel
import Testing
import TestServers

/// A stand-in for PD's HTTP API: Python's static file server answering `/pd/api/v1/version`.
final class FakePD: @unchecked Sendable {
    let process: Process
    let address: String

    init() throws {
        let root = NSTemporaryDirectory() + "fake-pd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/pd/api/v1", withIntermediateDirectories: true)
        try #"{"version":"v8.5.0","git_hash":"standin","start_timestamp":1}"#.write(toFile: root + "/pd/api/v1/version", atomically: true, encoding: .utf8)
        let port = TestServers.freePort()
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", root, "\(port)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        address = "http://127.0.0.1:\(port)"
    }

    func waitUntilServing() async throws {
        let address = self.address
        guard await eventually(10, { (try? await TestServers.run(["curl", "-sf", address + "/pd/api/v1/version"]))?.status == 0 }) else {
            throw Operator.Failure("the fake PD at \(address) did not start")
        }
    }

    /// SIGKILL: a child of the test process inherits its blocked signals, so SIGTERM would not end it.
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        TestServers.waitForExit(process, timeout: 60)
    }
}

@Suite("End to end: tidb-backup-manager doctor against the standalone server", .serialized)
struct DoctorTests {
    static var managerBinary: String { Operator.buildDirectory + "/tidb-backup-manager" }

    func doctor(_ op: Operator, file: String, path: String) async throws -> (status: Int32, output: String) {
        try await TestServers.run([Self.managerBinary, "doctor", "-f", file, "--kubeconfig", op.kubeconfig], environment: ["PATH": path])
    }

    @Test("a good setup passes every check; a missing Secret key, a wrong S3 key, an unreachable PD and a missing br are each named with a fix; nothing is written")
    func goodAndBroken() async throws {
        let moto = try await TestServers.moto()
        let (admin, bucket) = try await motoBucket(moto, "doctor")
        let pd = try FakePD()
        defer { pd.stop() }
        try await pd.waitUntilServing()
        let op = try await Operator()
        defer { op.stop() }
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: TidbCluster
            metadata: {name: basic, namespace: default}
            spec: {version: v8.5.0, pdAddresses: ["\(pd.address)"]}
            ---
            apiVersion: pingcap.com/v1alpha1
            kind: TidbCluster
            metadata: {name: nopd, namespace: default}
            spec: {version: v8.5.0, pdAddresses: ["http://127.0.0.1:\(TestServers.freePort())"]}
            """)
        try await op.applySecret("s3-good", ["access_key": moto.accessKeyID, "secret_key": moto.secretAccessKey])
        try await op.applySecret("s3-nokey", ["access_key": moto.accessKeyID])
        try await op.applySecret("s3-wrong", ["access_key": moto.accessKeyID, "secret_key": "not-the-key"])
        func backup(_ name: String, cluster: String, secret: String) -> String {
            """
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: \(name), namespace: default}
            spec:
              br: {cluster: \(cluster)}
              s3: {provider: aws, region: us-east-1, bucket: \(bucket), prefix: \(name), endpoint: "\(moto.endpoint)", secretName: \(secret)}
            """
        }
        let tools = TestServers.fixtures + "/tools:/usr/local/bin:/usr/bin:/bin"
        let good = op.directory + "/good.yaml"
        try backup("good", cluster: "basic", secret: "s3-good").write(toFile: good, atomically: true, encoding: .utf8)
        let passed = try await doctor(op, file: good, path: tools)
        #expect(passed.status == 0, "\(passed.output)")
        for check in ["namespace", "tidbcluster", "spec", "secrets", "storage", "pd", "br"] where check != "namespace" {
            #expect(passed.output.contains("ok    backup/default/good  \(check):"), "\(check) in:\n\(passed.output)")
        }
        #expect(passed.output.contains("PD v8.5.0"))
        #expect(passed.output.contains("version v8.5.0-standin"))

        let broken = op.directory + "/broken.yaml"
        try [backup("nokey", cluster: "basic", secret: "s3-nokey"), backup("wrongkey", cluster: "basic", secret: "s3-wrong"),
             backup("nopd", cluster: "nopd", secret: "s3-good")].joined(separator: "\n---\n").write(toFile: broken, atomically: true, encoding: .utf8)
        let failed = try await doctor(op, file: broken, path: "/usr/bin:/bin")
        #expect(failed.status == 1)
        let lines = failed.output
        #expect(lines.contains("FAIL  backup/default/nokey  secrets: Secret default/s3-nokey named by spec.s3.secretName has no key secret_key"), "\(lines)")
        #expect(lines.contains("fix: kubectl -n default patch secret s3-nokey --type=merge -p '{\"stringData\":{\"secret_key\":\"...\"}}'"), "\(lines)")
        #expect(lines.contains("FAIL  backup/default/wrongkey  storage:"), "\(lines)")
        #expect(lines.contains("SignatureDoesNotMatch") || lines.contains("InvalidAccessKeyId"), "\(lines)")
        #expect(lines.contains("fix: the credentials in Secret s3-wrong are refused"), "\(lines)")
        #expect(lines.contains("FAIL  backup/default/nopd  pd:"), "\(lines)")
        #expect(lines.contains("fix: start PD"), "\(lines)")
        #expect(lines.contains("FAIL  backup/default/nopd  br: br not found"), "\(lines)")
        #expect(lines.contains("TIDB_BACKUP_MANAGER_BR"), "\(lines)")
        #expect(!lines.contains(moto.secretAccessKey) && !lines.contains("not-the-key"), "no secret in the output")

        // Only reads: no object was created, nothing written to the bucket.
        #expect(try await op.api.list(.backups, namespace: "default").items.isEmpty)
        #expect(try await admin.listObjects(bucket: bucket, prefix: "").objects.isEmpty)
    }

    /// The secrets checked are those of the first Job of the model's flow: for a `spec.lightning`
    /// Restore the Lightning Job's (its rclone Secret), not a Dumpling import's.
    @Test("a Lightning Restore is checked for the Secrets of its Lightning Job: a rclone Secret without rclone.conf is named")
    func lightningSecrets() async throws {
        let op = try await Operator()
        defer { op.stop() }
        try await op.applySecret("tidb-secret", ["password": "pw"])
        try await op.applySecret("rclone", ["other": "x"])
        let file = op.directory + "/lightning.yaml"
        try """
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: imp, namespace: default}
            spec:
              to: {host: 127.0.0.1, port: 4000, user: root, secretName: tidb-secret}
              lightning:
                dataSource: {remote: {path: "s3:bucket/export.tar.gz", secretName: rclone}}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await doctor(op, file: file, path: "/usr/bin:/bin")
        #expect(result.status == 1)
        #expect(result.output.contains("FAIL  restore/default/imp  secrets: Secret default/rclone named by spec.lightning.dataSource.remote.secretName has no key rclone.conf"),
                "\(result.output)")
    }

    @Test("a schedule's verification target is checked: its own cluster is refused, a missing scratch cluster is named with a fix")
    func verificationTarget() async throws {
        let op = try await Operator()
        defer { op.stop() }
        try await op.apply(cluster)
        let file = op.directory + "/verify.yaml"
        try """
            apiVersion: pingcap.com/v1alpha1
            kind: BackupSchedule
            metadata: {name: into-prod, namespace: default}
            spec:
              schedule: "0 2 * * *"
              backupTemplate: {br: {cluster: basic}, s3: {provider: aws, bucket: b}}
              verification: {target: {cluster: basic, clusterNamespace: default}}
            ---
            apiVersion: pingcap.com/v1alpha1
            kind: BackupSchedule
            metadata: {name: no-scratch, namespace: default}
            spec:
              schedule: "0 2 * * *"
              backupTemplate: {br: {cluster: basic}, s3: {provider: aws, bucket: b}}
              verification: {target: {cluster: scratch}}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await doctor(op, file: file, path: "/usr/bin:/bin")
        #expect(result.status == 1)
        #expect(result.output.contains("FAIL  backupschedule/default/into-prod  verification-target:") && result.output.contains("never into production"),
                "\(result.output)")
        #expect(result.output.contains("FAIL  backupschedule/default/no-scratch  tidbcluster: TidbCluster default/scratch not found"), "\(result.output)")
    }

    @Test("cleanup: none: the scratch TiDB (MariaDB here) must hold no user table; one that does is named with a fix, an emptied one passes")
    func scratchMustBeEmpty() async throws {
        let db = try await TestServers.offPool(TestServers.startMariaDB)
        _ = try await db.sql("CREATE DATABASE app; CREATE TABLE app.orders (id INT PRIMARY KEY); CREATE TABLE app.items (id INT); CREATE DATABASE empty_one;")
        let op = try await Operator()
        defer { op.stop() }
        try await op.apply(cluster)
        try await op.apply("apiVersion: pingcap.com/v1alpha1\nkind: TidbCluster\nmetadata: {name: scratch, namespace: default}\nspec: {version: v8.5.0, pdAddresses: [\"http://127.0.0.1:9\"]}")
        try await op.applySecret("scratch-tidb", ["password": db.password])
        let file = op.directory + "/scratch.yaml"
        try """
            apiVersion: pingcap.com/v1alpha1
            kind: BackupSchedule
            metadata: {name: kept, namespace: default}
            spec:
              schedule: "0 2 * * *"
              backupTemplate: {br: {cluster: basic}, s3: {provider: aws, bucket: b}}
              verification:
                target: {cluster: scratch, tidb: {host: 127.0.0.1, port: \(db.port), user: \(db.user), secretName: scratch-tidb}}
                cleanup: none
            """.write(toFile: file, atomically: true, encoding: .utf8)
        var result = try await doctor(op, file: file, path: "/usr/bin:/bin")
        #expect(result.output.contains("FAIL  backupschedule/default/kept  scratch-empty: \(db.user)@127.0.0.1:\(db.port) holds app (2 tables)")
                && result.output.contains("fix: set spec.verification.cleanup: drop"), "\(result.output)")
        #expect(!result.output.contains("empty_one"), "a database without tables is in no restore's way")
        #expect(!result.output.contains(db.password))
        _ = try await db.sql("DROP DATABASE app;")
        result = try await doctor(op, file: file, path: "/usr/bin:/bin")
        #expect(result.output.contains("ok    backupschedule/default/kept  scratch-empty: \(db.user)@127.0.0.1:\(db.port) holds no user table"), "\(result.output)")
    }
}
