import AWSCore
import AWSSigning
import BRModel
import BackupOperator
import Foundation
import KubeAPI
import KubeClient
import KubeModel
import KubeTesting
import Testing
import TestServers

/// The built `tidb-backup-operator standalone`, with the br stand-in first on PATH, driven through
/// its API like a user with kubectl would.
final class Operator: @unchecked Sendable {
    let directory: String
    private(set) var process: Process
    private(set) var api: KubeClient
    let port: Int
    let arguments: [String]
    let environment: [String: String]

    static var buildDirectory: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug").path
    }

    var kubeconfig: String { directory + "/data/kubeconfig" }

    init(extraArguments: [String] = [], environment extra: [String: String] = [:]) async throws {
        directory = NSTemporaryDirectory() + "e2e-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        env["PATH"] = TestServers.fixtures + "/tools:" + TestServers.childPATH
        environment = env
        arguments = extraArguments
        FileManager.default.createFile(atPath: directory + "/operator.log", contents: nil)
        // A port the kernel just handed out is free, but another process may take it before the
        // operator binds it; a start that dies on the bind is retried on a new port.
        var started: (Process, KubeClient, Int)?
        for _ in 0..<3 where started == nil {
            let port = TestServers.freePort()
            if let (process, client) = try await Self.start(directory: directory, port: port, arguments: extraArguments, environment: env) {
                started = (process, client, port)
            }
        }
        guard let started else { throw Failure("the standalone operator did not start; see \(directory)/operator.log") }
        (process, api, port) = started
    }

    /// Starts `standalone` on `port` and waits until it answers; nil when it exited or did not answer.
    static func start(directory: String, port: Int, arguments: [String], environment: [String: String],
                      timeout: Duration = .seconds(30)) async throws -> (Process, KubeClient)? {
        let kubeconfig = directory + "/data/kubeconfig"
        try? FileManager.default.removeItem(atPath: kubeconfig)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.buildDirectory + "/tidb-backup-operator")
        process.arguments = ["standalone", "--data-dir", directory + "/data", "--listen", "127.0.0.1:\(port)"] + arguments
        process.environment = environment
        let log = FileHandle(forWritingAtPath: directory + "/operator.log")
        log?.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline && process.isRunning {
            try await Task.sleep(for: .milliseconds(100))
            guard FileManager.default.fileExists(atPath: kubeconfig), let c = try? KubeClient(config: KubeConfig.load(path: kubeconfig)) else { continue }
            if (try? await c.list(.namespaces, namespace: nil)) != nil { return (process, c) }
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        TestServers.waitForExit(process, timeout: 60)
        return nil
    }

    /// A directory for local-volume backups (the hostPath and mountPath of the tests' specs).
    func localVolume() throws -> String {
        let root = directory + "/volume"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        TestServers.waitForExit(process, timeout: 60)
    }

    /// Kills the server with SIGKILL and starts it again at once on the same address and data
    /// directory; returns how long it took until it answered.
    func crashAndRestart() async throws -> Duration {
        stop()
        let began = ContinuousClock.now
        guard let (process, client) = try await Self.start(directory: directory, port: port, arguments: arguments, environment: environment) else {
            throw Failure("the standalone operator did not start again on 127.0.0.1:\(port); log: \(tail())")
        }
        self.process = process
        api = client
        return ContinuousClock.now - began
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    func apply(_ yaml: String) async throws {
        for doc in try KubeYAML.documents(yaml) {
            let kind = doc.value["kind"]?.stringValue ?? ""
            let resource: ResourceKind = switch kind {
            case "Backup": .backups
            case "Restore": .restores
            case "TidbCluster": .tidbClusters
            case "Secret": .secrets
            case "BackupSchedule": .backupSchedules
            case "CompactBackup": .compactBackups
            default: throw Failure("unexpected kind \(kind)")
            }
            _ = try await api.create(resource, namespace: "default", object: doc.value)
        }
    }

    /// A Secret in `default` with these string values.
    func applySecret(_ name: String, _ data: [String: String]) async throws {
        let object: JSONValue = ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": .string(name), "namespace": "default"],
                                 "stringData": .object(JSONObject(data.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))]
        _ = try await api.create(.secrets, namespace: "default", object: object)
    }

    /// The Events in `default` once `check` holds for them, or as they are after `timeout` seconds (the
    /// operator writes Events in the background, a moment after the status they report).
    func events(timeout: Double = 10, until check: ([JSONValue]) -> Bool) async throws -> [JSONValue] {
        var items = try await api.list(.events, namespace: "default").items
        _ = await eventually(timeout) {
            items = (try? await api.list(.events, namespace: "default").items) ?? items
            return check(items)
        }
        return items
    }

    /// Polls an object in `default` until `check` holds, up to `timeout` seconds (through the one polling
    /// helper, `eventually`); the failure names what was awaited and shows the last status read and the
    /// operator's log.
    func waitFor<T: APIObject>(_ type: T.Type, _ name: String, timeout: Double = 60, _ what: String,
                               _ check: (T) -> Bool) async throws -> T {
        var last: T?
        let reached = await eventually(timeout) {
            last = try? await api.get(T.self, namespace: "default", name: name)
            return last.map(check) ?? false
        }
        if reached, let last { return last }
        let status = last.map { KubeCodec.encode($0)["status"]?.serialized() ?? "" } ?? "not found"
        throw Failure("\(T.resource.kind) \(name): \(what) not reached; status: \(status); log: \(tail())")
    }

    /// Waits for a Backup to reach one of `phases`, up to `timeout` seconds.
    func backup(_ name: String, reaches phases: Set<String>, timeout: Double = 90) async throws -> Backup {
        try await waitFor(Backup.self, name, timeout: timeout, "one of \(phases.sorted())") { phases.contains($0.status.phase?.rawValue ?? "") }
    }

    func restore(_ name: String, reaches phases: Set<String>, timeout: Double = 90) async throws -> Restore {
        try await waitFor(Restore.self, name, timeout: timeout, "one of \(phases.sorted())") { phases.contains($0.status.phase?.rawValue ?? "") }
    }

    func gone(_ name: String, timeout: Double = 90) async throws {
        let deleted = await eventually(timeout) { (try? await api.getIfPresent(Backup.self, namespace: "default", name: name)) == .some(nil) }
        if !deleted { throw Failure("backup \(name) was not deleted; log: \(tail())") }
    }

    /// The web view's JSON (`/ui/api/…`) as the running server serves it, with the API token.
    func web(_ path: String) async throws -> JSONValue {
        let token = try String(contentsOfFile: directory + "/data/token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let (status, body) = try await TestServers.run(["curl", "-sk", "-H", "Authorization: Bearer \(token)", "https://127.0.0.1:\(port)/ui/api/" + path])
        guard status == 0, let value = try? JSONParser.parse(body) else { throw Failure("GET /ui/api/\(path): curl \(status): \(body.prefix(300))") }
        return value
    }

    func tail() -> String {
        let text = (try? String(contentsOfFile: directory + "/operator.log", encoding: .utf8)) ?? ""
        return String(text.suffix(3000))
    }

    /// Every file under the data directory's job logs, joined (to look for secrets).
    func allLogs() -> String {
        var text = (try? String(contentsOfFile: directory + "/operator.log", encoding: .utf8)) ?? ""
        if let walker = FileManager.default.enumerator(atPath: directory + "/data") {
            // The operator's log and every job's (`jobs/<namespace>/<pod>/log`).
            for case let rel as String in walker where rel.hasSuffix(".log") || (rel as NSString).lastPathComponent == "log" {
                text += (try? String(contentsOfFile: directory + "/data/" + rel, encoding: .utf8)) ?? ""
            }
        }
        return text
    }
}

let cluster = """
    apiVersion: pingcap.com/v1alpha1
    kind: TidbCluster
    metadata: {name: basic, namespace: default}
    spec: {version: v8.5.0, pdAddresses: ["http://127.0.0.1:2379"]}
    """

func localBackup(_ name: String, root: String) -> String {
    """
    apiVersion: pingcap.com/v1alpha1
    kind: Backup
    metadata: {name: \(name), namespace: default}
    spec:
      cleanPolicy: Delete
      backoffRetryPolicy: {maxRetryTimes: 0}
      br: {cluster: basic, sendCredToTikv: true}
      local:
        prefix: \(name)
        volume: {name: backups, hostPath: {path: \(root)}}
        volumeMount: {name: backups, mountPath: \(root)}
    """
}

/// A BackupSchedule `name` (`@every 2s`) whose BR backups go to the local volume `root`, with more
/// lines for its spec and its backup template.
func localSchedule(_ name: String, root: String, spec: [String], template: [String] = []) -> String {
    (["apiVersion: pingcap.com/v1alpha1", "kind: BackupSchedule", "metadata: {name: \(name), namespace: default}", "spec:",
      "  schedule: \"@every 2s\""] + spec.map { "  " + $0 } + ["  backupTemplate:"] + template.map { "    " + $0 }
        + ["    br: {cluster: basic}", "    local:", "      prefix: \(name)", "      volume: {name: backups, hostPath: {path: \(root)}}",
           "      volumeMount: {name: backups, mountPath: \(root)}"]).joined(separator: "\n")
}

/// An S3 client of moto with the tests' keys, and a new bucket named `prefix-<random>`.
func motoBucket(_ moto: TestServers.Moto, _ prefix: String) async throws -> (S3Client, String) {
    let admin = S3Client(endpoint: S3Endpoint(base: URL(string: moto.endpoint)!, region: "us-east-1", pathStyle: true),
                         credentials: .fixed(AWSCredentials(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey)))
    let bucket = "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
    try await admin.createBucket(bucket)
    return (admin, bucket)
}

/// The label selector of a schedule's Backups.
func scheduleSelector(_ name: String) -> String { BRLabels.scheduleSelector(scheduleName: name) }

@Suite("End to end: the standalone operator runs backup-manager and the br stand-in", .serialized)
struct StandaloneBackupTests {
    @Test("BR to a local volume: Backup Complete with size and commit TS, Restore Complete, delete cleans the data; a br that dies leaves the Backup Failed")
    func localVolume() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(localBackup("bk-local", root: root))
        let done = try await op.backup("bk-local", reaches: ["Complete", "Failed"])
        #expect(done.status.phase == .complete, "\(done.status)")
        #expect(done.status.backupPath == "local://\(root)/bk-local")
        #expect((done.status.backupSize ?? 0) > 0)
        #expect(done.status.backupSizeReadable?.hasSuffix("B") == true)
        #expect(Int64(done.status.commitTs ?? "") ?? 0 > 400_000_000_000_000_000)
        #expect(FileManager.default.fileExists(atPath: root + "/bk-local/backupmeta"))
        let files = try FileManager.default.contentsOfDirectory(atPath: root + "/bk-local")
        #expect(files.filter { $0.hasSuffix(".sst") }.count == 3)
        // The size BR declared is the SST bytes.
        let sstBytes = try files.filter { $0.hasSuffix(".sst") }.reduce(Int64(0)) {
            $0 + ((try FileManager.default.attributesOfItem(atPath: root + "/bk-local/" + $1)[.size] as? NSNumber)?.int64Value ?? 0)
        }
        #expect(done.status.backupSize == sstBytes)

        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: rt-local, namespace: default}
            spec:
              br: {cluster: basic}
              local:
                prefix: bk-local
                volume: {name: backups, hostPath: {path: \(root)}}
                volumeMount: {name: backups, mountPath: \(root)}
            """)
        let restored = try await op.restore("rt-local", reaches: ["Complete", "Failed"])
        #expect(restored.status.phase == .complete, "\(restored.status)")
        #expect(restored.status.commitTs == done.status.commitTs)
        #expect(restored.status.progresses?.first?.step == "Full Restore")

        // A br that is killed mid-backup: Failed with BR's exit, never Running forever.
        try await op.apply(localBackup("bk-die", root: root).replacingOccurrences(of: "  br: {cluster: basic, sendCredToTikv: true}",
                                                                                          with: "  br: {cluster: basic}\n  env: [{name: BR_STANDIN_DIE, value: \"1\"}]"))
        let died = try await op.backup("bk-die", reaches: ["Failed"])
        let failed = died.status.conditions?.first { $0.type == .failed }
        #expect(failed?.reason == "BackupDataToRemoteFailed", "\(died.status)")
        #expect(failed?.message?.contains("killed") == true, "\(failed?.message ?? "")")

        _ = try await op.api.delete(Backup.self, namespace: "default", name: "bk-local")
        try await op.gone("bk-local")
        #expect(!FileManager.default.fileExists(atPath: root + "/bk-local/backupmeta"))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root + "/bk-local"))?.isEmpty ?? true)
    }

    @Test("BR to S3 on moto (signature checks on): Complete with size and commit TS, clean on delete removes the objects, no secret in any log")
    func s3() async throws {
        let moto = try await TestServers.moto()
        let (admin, bucket) = try await motoBucket(moto, "e2e")
        let op = try await Operator()
        defer { op.stop() }
        try await op.apply(cluster)
        try await op.applySecret("s3-secret", ["access_key": moto.accessKeyID, "secret_key": moto.secretAccessKey])
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: bk-s3, namespace: default}
            spec:
              cleanPolicy: Delete
              br: {cluster: basic, logLevel: info}
              s3: {provider: aws, region: us-east-1, bucket: \(bucket), prefix: cluster-1/bk-s3, endpoint: "\(moto.endpoint)", secretName: s3-secret}
            """)
        let done = try await op.backup("bk-s3", reaches: ["Complete", "Failed"])
        #expect(done.status.phase == .complete, "\(done.status)")
        #expect(done.status.backupPath == "s3://\(bucket)/cluster-1/bk-s3")
        #expect((done.status.backupSize ?? 0) > 0)
        #expect(!(done.status.commitTs ?? "").isEmpty)
        let listed = try await admin.listObjects(bucket: bucket, prefix: "cluster-1/bk-s3/")
        // Three data files, backupmeta and its schema file (BR's split format).
        #expect(listed.objects.count == 5, "\(listed.objects.map(\.key))")
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: rt-s3, namespace: default}
            spec:
              br: {cluster: basic}
              s3: {provider: aws, region: us-east-1, bucket: \(bucket), prefix: cluster-1/bk-s3, endpoint: "\(moto.endpoint)", secretName: s3-secret}
            """)
        let restored = try await op.restore("rt-s3", reaches: ["Complete", "Failed"])
        #expect(restored.status.phase == .complete, "\(restored.status)")
        #expect(restored.status.commitTs == done.status.commitTs)
        _ = try await op.api.delete(Backup.self, namespace: "default", name: "bk-s3")
        try await op.gone("bk-s3")
        #expect(try await admin.listObjects(bucket: bucket, prefix: "cluster-1/").objects.isEmpty)
        #expect(!op.allLogs().contains(moto.secretAccessKey))
    }

    /// TiDB Operator #6066: on a versioned bucket its clean deleted the current objects only, leaving
    /// every version and a delete marker per key (as much data as the backup).
    @Test("cleanPolicy Delete on a versioned bucket removes every version and delete marker under the backup's prefix, and nothing else")
    func versionedBucketClean() async throws {
        let moto = try await TestServers.moto()
        let (_, bucket) = try await motoBucket(moto, "versioned")
        func boto(_ body: String) async throws -> String {
            let script = """
                import boto3, json
                s3 = boto3.client("s3", endpoint_url="\(moto.endpoint)", region_name="us-east-1",
                                  aws_access_key_id="\(moto.accessKeyID)", aws_secret_access_key="\(moto.secretAccessKey)")
                \(body)
                """
            let (status, output) = try await TestServers.run(["python3", "-c", script])
            #expect(status == 0, "\(output)")
            return output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try await boto("s3.put_bucket_versioning(Bucket=\"\(bucket)\", VersioningConfiguration={\"Status\": \"Enabled\"})")
        _ = try await boto("s3.put_object(Bucket=\"\(bucket)\", Key=\"other/keep\", Body=b\"x\")")
        let op = try await Operator()
        defer { op.stop() }
        try await op.apply(cluster)
        try await op.applySecret("s3-secret", ["access_key": moto.accessKeyID, "secret_key": moto.secretAccessKey])
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: bk-ver, namespace: default}
            spec:
              cleanPolicy: Delete
              br: {cluster: basic}
              s3: {provider: aws, region: us-east-1, bucket: \(bucket), prefix: ver/bk-ver, endpoint: "\(moto.endpoint)", secretName: s3-secret}
            """)
        let done = try await op.backup("bk-ver", reaches: ["Complete", "Failed"])
        #expect(done.status.phase == .complete, "\(done.status)")
        // A second version of one object, as an overwrite leaves it.
        _ = try await boto("s3.put_object(Bucket=\"\(bucket)\", Key=\"ver/bk-ver/backupmeta\", Body=b\"older\")")
        let count = "v = s3.list_object_versions(Bucket=\"\(bucket)\", Prefix=\"PREFIX\"); print(len(v.get(\"Versions\", [])) + len(v.get(\"DeleteMarkers\", [])))"
        await #expect(Int(try boto(count.replacingOccurrences(of: "PREFIX", with: "ver/bk-ver/"))) ?? 0 >= 5)
        _ = try await op.api.delete(Backup.self, namespace: "default", name: "bk-ver")
        try await op.gone("bk-ver")
        await #expect(try boto(count.replacingOccurrences(of: "PREFIX", with: "ver/")) == "0", "versions or delete markers are left under the prefix")
        await #expect(try boto(count.replacingOccurrences(of: "PREFIX", with: "other/")) == "1", "an object outside the prefix was touched")
    }
}

@Suite("End to end: spec.from and the TiDB GC life-time guard (MariaDB as the MySQL-protocol server)", .serialized)
struct StandaloneGCGuardTests {
    @Test("a Backup with spec.from raises tikv_gc_life_time for the BR run and puts it back after success and after a killed br; no password in any log")
    func gcGuard() async throws {
        let db = try await TestServers.offPool(TestServers.startMariaDB)
        func lifeTime() throws -> String { try db.sql("SELECT variable_value FROM mysql.tidb WHERE variable_name = 'tikv_gc_life_time'") }
        #expect(try lifeTime() == "10m0s")
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.applySecret("tidb-secret", ["password": db.password])
        func backup(_ name: String, env: String) -> String {
            localBackup(name, root: root).replacingOccurrences(of: "  br: {cluster: basic, sendCredToTikv: true}", with: """
                  br: {cluster: basic}
                  tikvGCLifeTime: 30h
                  from: {host: 127.0.0.1, port: \(db.port), user: \(db.user), secretName: tidb-secret}
                  env: [\(env)]
                """)
        }
        // MariaDB's general query log (to a table) records every statement the guard sends, so what
        // happened around the run is known exactly, however late a loaded machine starts the Job.
        _ = try await db.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 'ON';")
        func history() throws -> [String] {
            try db.sql("SELECT argument FROM mysql.general_log WHERE argument LIKE 'UPDATE mysql.tidb SET variable_value = %'")
                .split(separator: "\n").compactMap { $0.split(separator: "'", omittingEmptySubsequences: false).dropFirst().first.map(String.init) }
        }
        try await op.apply(backup("bk-gc", env: "{name: BR_STANDIN_HANG, value: \"3\"}"))
        let done = try await op.backup("bk-gc", reaches: ["Complete", "Failed"])
        #expect(done.status.phase == .complete, "\(done.status)")
        // Raised to the spec's 30h for the run, then put back.
        #expect(try history() == ["30h", "10m0s"], "log: \(op.tail())")
        #expect(try lifeTime() == "10m0s")

        try await op.apply(backup("bk-gc-die", env: "{name: BR_STANDIN_DIE, value: \"1\"}"))
        let died = try await op.backup("bk-gc-die", reaches: ["Failed"])
        #expect(died.status.conditions?.first { $0.type == .failed }?.reason == "BackupDataToRemoteFailed")
        #expect(try lifeTime() == "10m0s")
        #expect(try history() == ["30h", "10m0s", "30h", "10m0s"])
        #expect(!op.allLogs().contains(db.password))
    }

    @Test("a TiDB that cannot be reached ends the Backup Failed with ConnectTidbFailed")
    func unreachable() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.applySecret("tidb-secret", ["password": "pw-unreachable-1"])
        try await op.apply(localBackup("bk-noconn", root: root).replacingOccurrences(of: "  br: {cluster: basic, sendCredToTikv: true}", with: """
              br: {cluster: basic}
              from: {host: 127.0.0.1, port: \(TestServers.freePort()), secretName: tidb-secret}
              env: [{name: TIDB_BACKUP_MANAGER_CONNECT_TIMEOUT, value: 2s}]
            """))
        let failed = try await op.backup("bk-noconn", reaches: ["Failed"])
        let condition = failed.status.conditions?.first { $0.type == .failed }
        #expect(condition?.reason == "ConnectTidbFailed", "\(failed.status)")
        #expect(condition?.message?.contains("root@127.0.0.1") == true)
        #expect(!op.allLogs().contains("pw-unreachable-1"))
    }
}

@Suite("End to end: Dumpling export to S3 and TiDB Lightning import (stand-ins that really read and load MariaDB)", .serialized)
struct StandaloneDumplingLightningTests {
    @Test("export → archive on S3 with size and commit TS; the table dropped; import → rows back; Lightning's argv has no password; delete removes the archive")
    func exportAndImport() async throws {
        let db = try await TestServers.offPool(TestServers.startMariaDB)
        _ = try await db.sql("""
            CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(64));
            INSERT INTO shop.orders VALUES (1, 'first'), (2, 'it''s quoted'), (3, NULL);
            CREATE DATABASE other; CREATE TABLE other.skip (id INT PRIMARY KEY); INSERT INTO other.skip VALUES (9);
            """)
        let moto = try await TestServers.moto()
        let (admin, bucket) = try await motoBucket(moto, "dump")
        let op = try await Operator()
        defer { op.stop() }
        let argvFile = op.directory + "/argv.jsonl"
        try await op.apply(cluster)
        try await op.applySecret("s3-secret", ["access_key": moto.accessKeyID, "secret_key": moto.secretAccessKey])
        try await op.applySecret("tidb-secret", ["password": db.password])
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: dump-s3, namespace: default}
            spec:
              cleanPolicy: Delete
              from: {host: 127.0.0.1, port: \(db.port), user: \(db.user), secretName: tidb-secret}
              tableFilter: ["shop.*"]
              storageSize: 1Gi
              s3: {provider: aws, region: us-east-1, bucket: \(bucket), prefix: dumps, endpoint: "\(moto.endpoint)", secretName: s3-secret}
              env: [{name: STANDIN_ARGV_FILE, value: "\(argvFile)"}]
            """)
        let done = try await op.backup("dump-s3", reaches: ["Complete", "Failed", "Invalid"])
        #expect(done.status.phase == .complete, "\(done.status)")
        let path = done.status.backupPath ?? ""
        #expect(path.hasPrefix("s3://\(bucket)/dumps/backup-") && path.hasSuffix(".tgz"), "\(path)")
        #expect((done.status.backupSize ?? 0) > 0)
        #expect(UInt64(done.status.commitTs ?? "") ?? 0 > 400_000_000_000_000_000)
        let key = String(path.dropFirst("s3://\(bucket)/".count))
        #expect(try await admin.headObject(bucket: bucket, key: key) == done.status.backupSize)

        _ = try await db.sql("DROP TABLE shop.orders")
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: load-s3, namespace: default}
            spec:
              to: {host: 127.0.0.1, port: \(db.port), user: \(db.user), secretName: tidb-secret}
              storageSize: 1Gi
              s3: {provider: aws, region: us-east-1, endpoint: "\(moto.endpoint)", secretName: s3-secret, path: "\(path)"}
              env: [{name: STANDIN_ARGV_FILE, value: "\(argvFile)"}]
            """)
        let loaded = try await op.restore("load-s3", reaches: ["Complete", "Failed", "Invalid"])
        #expect(loaded.status.phase == .complete, "\(loaded.status)")
        #expect(loaded.status.commitTs == done.status.commitTs)
        #expect(try await db.sql("SELECT id, IFNULL(note, '-') FROM shop.orders ORDER BY id") == "1\tfirst\n2\tit's quoted\n3\t-")

        // What a `ps` listing shows: Dumpling takes the password only as a flag; Lightning gets it from
        // a configuration file. No log line carries it either way.
        let runs = try String(contentsOfFile: argvFile, encoding: .utf8).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let lightning = runs.first { $0["tool"] as? String == "tidb-lightning" }?["argv"] as? [String] ?? []
        #expect(!lightning.isEmpty && !lightning.joined(separator: " ").contains(db.password))
        #expect(lightning.contains { $0.hasPrefix("--config=") })
        // The data is staged where TiDB Operator's pod has it, on the claim mounted at /backup: on
        // standalone that claim's directory, not the job's run directory; the export's is emptied after upload.
        let volumes = op.directory + "/data/volumes/default/"
        let dumpling = runs.first { $0["tool"] as? String == "dumpling" }?["argv"] as? [String] ?? []
        let output = dumpling.first { $0.hasPrefix("--output=") }.map { String($0.dropFirst("--output=".count)) } ?? ""
        #expect(output.hasPrefix(volumes + "backup-pvc-"), "\(dumpling)")
        let exportClaim = String(output.dropFirst(volumes.count).prefix { $0 != "/" })
        #expect(((try? FileManager.default.subpathsOfDirectory(atPath: volumes + exportClaim)) ?? ["missing"]).allSatisfy { !$0.contains("backup-") },
                "the staged export is removed once uploaded")
        #expect(lightning.contains { $0.hasPrefix("--d=" + volumes + "restore-pvc-") }, "\(lightning)")
        #expect(!op.allLogs().contains(db.password))
        #expect(!op.allLogs().contains(moto.secretAccessKey))
        // Nor does any Event or status.
        let events = try await op.api.list(.events, namespace: "default")
        let recorded = events.items.map { $0.serialized() }.joined(separator: "\n")
        #expect(!events.items.isEmpty && !recorded.contains(db.password) && !recorded.contains(moto.secretAccessKey))
        let statuses = "\(try await op.api.get(Backup.self, namespace: "default", name: "dump-s3").status) \(loaded.status)"
        #expect(!statuses.contains(db.password) && !statuses.contains(moto.secretAccessKey))

        _ = try await op.api.delete(Backup.self, namespace: "default", name: "dump-s3")
        try await op.gone("dump-s3")
        #expect(try await admin.headObject(bucket: bucket, key: key) == nil)
    }
}

@Suite("End to end: a BackupSchedule in the standalone operator", .serialized)
struct StandaloneScheduleTests {
    @Test("@every 2s with maxBackups 3: backups are created on their slots and complete, the oldest are deleted with their data, one of the kept ones restores")
    func everyTwoSeconds() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(localSchedule("every2s", root: root, spec: ["maxBackups: 3"], template: ["cleanPolicy: Delete"]))
        let selector = scheduleSelector("every2s")

        // Watch the schedule's Backups until it has made six; note each one's creation delay and path.
        var seen: [String: (delay: Double, path: String?)] = [:]
        var completed = Set<String>()
        let deadline = Date().addingTimeInterval(120)
        while completed.count < 6 && Date() < deadline {
            for backup in try await op.api.list(Backup.self, namespace: "default", labelSelector: selector) {
                let slot = Self.slotTime(backup.name, schedule: "every2s")
                #expect(slot != nil, "backup name \(backup.name) does not carry its slot time")
                if seen[backup.name] == nil, let slot, let created = backup.metadata.creationTimestamp {
                    seen[backup.name] = (Double(created.unixSeconds) - slot.timeIntervalSince1970, nil)
                }
                if backup.status.phase == .complete {
                    completed.insert(backup.name)
                    seen[backup.name]?.path = backup.status.backupPath
                }
                #expect(backup.status.phase != .failed, "\(backup.name): \(backup.status)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(completed.count >= 6, "only \(completed.sorted()) completed; log: \(op.tail())")
        // Creation follows the slot within a second or so (timestamps have whole seconds).
        for (name, entry) in seen { #expect(entry.delay >= 0 && entry.delay <= 2, "\(name) created \(entry.delay) s after its slot") }

        // Pause; retention still runs. Once the last backup settles, exactly three remain, all Complete.
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "every2s",
                                   patch: Patch(.merge, try JSONParser.parse(#"{"spec":{"pause":true}}"#)))
        var kept: [Backup] = []
        _ = await eventually(60) {
            kept = (try? await op.api.list(Backup.self, namespace: "default", labelSelector: selector)) ?? []
            return kept.count == 3 && kept.allSatisfy { $0.status.phase == .complete && $0.metadata.deletionTimestamp == nil }
        }
        #expect(kept.count == 3 && kept.allSatisfy { $0.status.phase == .complete }, "\(kept.map { ($0.name, $0.status.phase) }); log: \(op.tail())")
        let keptNames = Set(kept.map(\.name))
        // The three kept are the newest ones made.
        let made = Set(seen.keys).union(keptNames).sorted()
        #expect(keptNames == Set(made.suffix(3)), "kept \(keptNames.sorted()), made \(made)")
        for backup in kept {
            let dir = String((backup.status.backupPath ?? "").dropFirst("local://".count))
            #expect(FileManager.default.fileExists(atPath: dir + "/backupmeta"), "\(dir)")
        }
        // Every deleted one that had completed took its data with it.
        let deleted = seen.filter { !keptNames.contains($0.key) && $0.value.path != nil }
        #expect(deleted.count >= 3, "only \(deleted.count) completed backups were deleted")
        for (name, entry) in deleted {
            guard let path = entry.path else { continue }
            let dir = String(path.dropFirst("local://".count))
            #expect(!FileManager.default.fileExists(atPath: dir + "/backupmeta"), "\(name)'s data at \(dir) was kept")
        }
        let schedule = try await op.api.get(BackupSchedule.self, namespace: "default", name: "every2s")
        #expect(keptNames.contains(schedule.status.lastBackup ?? ""), "\(schedule.status)")

        // Restore the newest kept one: retention always keeps the newest Complete Backup, whereas a
        // slot that fired just as the pause landed can still push the oldest kept one out.
        let source = kept.sorted { $0.name < $1.name }.last!
        let prefix = source.spec.local?.prefix ?? ""
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: rt-sched, namespace: default}
            spec:
              br: {cluster: basic}
              local:
                prefix: \(prefix)
                volume: {name: backups, hostPath: {path: \(root)}}
                volumeMount: {name: backups, mountPath: \(root)}
            """)
        let restored = try await op.restore("rt-sched", reaches: ["Complete", "Failed"])
        #expect(restored.status.phase == .complete, "\(restored.status)")
        #expect(restored.status.commitTs == source.status.commitTs)
    }

    @Test("kill -9 of the server mid-backup: it starts again at once on the same address, the old run's job processes are stopped, every Backup settles, no slot has two Backups")
    func crashMidBackup() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        // Each backup's br runs 4 s, so the kill lands while one runs; a Job the crash cut short is
        // retried after 1 s.
        try await op.apply(localSchedule("crash", root: root, spec: ["maxBackups: 20"],
                                         template: ["cleanPolicy: Delete", "backoffRetryPolicy: {minRetryDuration: 1s}",
                                                    "env: [{name: BR_STANDIN_HANG, value: \"4\"}]"]))
        let selector = scheduleSelector("crash")
        // Wait for a job process that runs br, and note the process groups of the running pods.
        var groups: [pid_t] = []
        let deadline = Date().addingTimeInterval(60)
        while groups.isEmpty && Date() < deadline {
            try await Task.sleep(for: .milliseconds(300))
            let running = try await op.api.list(Backup.self, namespace: "default", labelSelector: selector).filter { $0.status.phase == .running }
            guard !running.isEmpty else { continue }
            let pods = try await op.api.list(.pods, namespace: "default").items
            groups = pods.compactMap { pod -> pid_t? in
                guard pod.value(at: ["status", "phase"])?.stringValue == "Running",
                      let value = pod.value(at: ["metadata", "annotations", "standalone.tidb-backup-operator/process"])?.stringValue else { return nil }
                let parts = value.split(separator: "/")
                return parts.count == 3 ? pid_t(parts[1]) : nil
            }
        }
        #expect(!groups.isEmpty, "no backup job ran; log: \(op.tail())")
        #expect(groups.allSatisfy { kill(-$0, 0) == 0 }, "the job processes run before the crash")

        let took = try await op.crashAndRestart()
        print("standalone restart after kill -9 answered in \(took)")
        #expect(took < .seconds(15), "restart took \(took)")
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "crash",
                                   patch: Patch(.merge, try JSONParser.parse(#"{"spec":{"pause":true}}"#)))
        // No process of the old run is left once the server has recovered its pods.
        let oldGone = await eventually(30) { groups.allSatisfy { kill(-$0, 0) == -1 && errno == ESRCH } }
        #expect(oldGone, "processes of the killed server's jobs are still running: groups \(groups)")
        // Every Backup settles: none stays Scheduled, Prepare or Running.
        var backups: [Backup] = []
        _ = await eventually(120) {
            backups = (try? await op.api.list(Backup.self, namespace: "default", labelSelector: selector)) ?? []
            return !backups.isEmpty && backups.allSatisfy { $0.status.phase == .complete || $0.status.phase == .failed }
        }
        #expect(!backups.isEmpty && backups.allSatisfy { $0.status.phase == .complete || $0.status.phase == .failed },
                "\(backups.map { ($0.name, $0.status.phase?.rawValue ?? "-") }); log: \(op.tail())")
        let slots = backups.compactMap { Self.slotTime($0.name, schedule: "crash") }
        #expect(slots.count == backups.count, "every Backup carries its slot: \(backups.map(\.name))")
        #expect(Set(slots).count == slots.count, "a slot has two Backups: \(backups.map(\.name))")
    }

    /// Issue: the job whose br had already succeeded died on the restarted server's SIGTERM without
    /// writing its result (and a connection refused while the server was away failed the write at
    /// once); the Backup stayed Running and was later retried, redoing a backup that had succeeded.
    @Test("br finishes while the server is down: the job writes Complete through the outage and after the restarted server's SIGTERM; nothing is retried")
    func resultSurvivesAServerRestart() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(localBackup("survivor", root: root).replacingOccurrences(
            of: "  cleanPolicy: Delete", with: "  cleanPolicy: Delete\n  backoffRetryPolicy: {minRetryDuration: 1s}\n  env: [{name: BR_STANDIN_HANG, value: \"3\"}]")
            .replacingOccurrences(of: "  backoffRetryPolicy: {maxRetryTimes: 0}\n", with: ""))
        _ = try await op.waitFor(Backup.self, "survivor", timeout: 60, "Running") { $0.status.phase == .running }
        // The server dies while br runs; br ends (successfully) while nothing answers the job: the
        // server comes back only once br has written backupmeta (however slowly a loaded machine runs it).
        op.stop()
        #expect(await eventually(60) { FileManager.default.fileExists(atPath: root + "/survivor/backupmeta") }, "br did not finish")
        try await Task.sleep(for: .seconds(1))
        _ = try await op.crashAndRestart()
        let done = try await op.waitFor(Backup.self, "survivor", timeout: 60, "Complete or Failed") { $0.status.phase == .complete || $0.status.phase == .failed }
        #expect(done.status.phase == .complete, "\(done.status); log: \(op.tail())")
        #expect((done.status.backoffRetryStatus ?? []).isEmpty, "a succeeded backup was put up for a retry: \(done.status)")
        #expect(FileManager.default.fileExists(atPath: root + "/survivor/backupmeta"))
        // It stays Complete: no retry Job runs it again.
        try await Task.sleep(for: .seconds(3))
        let after = try await op.api.get(Backup.self, namespace: "default", name: "survivor")
        #expect(after.status.phase == .complete && (after.status.backoffRetryStatus ?? []).isEmpty, "\(after.status)")
    }

    @Test("a schedule whose bucket does not exist stays bounded: failed backups count in retention, their clean finds nothing to delete and succeeds, the schedule says every backup failed and why")
    func failingScheduleStaysBounded() async throws {
        let moto = try await TestServers.moto()
        let op = try await Operator()
        defer { op.stop() }
        try await op.apply(cluster)
        try await op.applySecret("s3-secret", ["access_key": moto.accessKeyID, "secret_key": moto.secretAccessKey])
        let bucket = "never-created-\(UInt32.random(in: 0...UInt32.max))"
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: BackupSchedule
            metadata: {name: storm, namespace: default}
            spec:
              schedule: "@every 2s"
              maxBackups: 2
              backupTemplate:
                cleanPolicy: Delete
                br: {cluster: basic}
                s3: {provider: aws, region: us-east-1, bucket: \(bucket), prefix: cluster-1/storm, endpoint: "\(moto.endpoint)", secretName: s3-secret}
            """)
        let selector = scheduleSelector("storm")
        var most = (backups: 0, jobs: 0, pods: 0)
        var made = Set<String>()
        var cleanFailed: [String] = []
        let deadline = Date().addingTimeInterval(24)
        while Date() < deadline {
            let backups = try await op.api.list(Backup.self, namespace: "default", labelSelector: selector)
            made.formUnion(backups.map(\.name))
            cleanFailed += backups.filter { $0.status.has(.cleanFailed) }.map(\.name)
            let jobs = try await op.api.list(.jobs, namespace: "default").items.count
            let pods = try await op.api.list(.pods, namespace: "default").items.count
            most = (max(most.backups, backups.count), max(most.jobs, jobs), max(most.pods, pods))
            try await Task.sleep(for: .milliseconds(500))
        }
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "storm",
                                   patch: Patch(.merge, try JSONParser.parse(#"{"spec":{"pause":true}}"#)))
        #expect(made.count >= 5, "the schedule kept making backups: \(made.sorted()); log: \(op.tail())")
        #expect(cleanFailed.isEmpty, "cleans of never-written data failed: \(Set(cleanFailed).sorted())")
        // maxBackups finished ones, the one running, and one being deleted at most.
        #expect(most.backups <= 4, "\(most)")
        #expect(most.jobs <= 8 && most.pods <= 8, "\(most)")
        var kept: [Backup] = []
        _ = await eventually(30) {
            kept = (try? await op.api.list(Backup.self, namespace: "default", labelSelector: selector)) ?? []
            return kept.count <= 2 && kept.allSatisfy { $0.status.phase == .failed }
        }
        #expect(kept.count <= 2 && kept.allSatisfy { $0.status.phase == .failed }, "\(kept.map { ($0.name, $0.status.phase?.rawValue ?? "-") })")
        let schedule = try await op.api.get(BackupSchedule.self, namespace: "default", name: "storm")
        let failing = schedule.status.conditions?.first { $0.type == "BackupsFailing" }
        #expect(failing?.message?.contains("NoSuchBucket") == true, "\(String(describing: schedule.status.conditions))")
        let events = try await op.events { $0.contains { $0["reason"] == "BackupsFailing" && $0.value(at: ["involvedObject", "name"]) == "storm" } }
        #expect(events.contains { $0["reason"] == "BackupsFailing" && $0.value(at: ["involvedObject", "name"]) == "storm" })
    }

    /// The slot time a scheduled Backup's name carries: `<schedule>-2006-01-02t15-04-05`, UTC.
    static func slotTime(_ name: String, schedule: String) -> Date? {
        guard name.hasPrefix(schedule + "-") else { return nil }
        let stamp = String(name.dropFirst(schedule.count + 1))
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd't'HH-mm-ss"
        return f.date(from: stamp)
    }
}
