import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing
import TestServers

/// A newcomer's first hour (issue 40): `validate`, `plan` and `doctor` tell one truth about the same
/// manifests, read several files and folders alike, and `doctor` names every problem in one pass.
@Suite("End to end: validate, plan and doctor agree", .serialized)
struct FirstHourTests {
    static var operatorBinary: String { Operator.buildDirectory + "/tidb-backup-operator" }
    static var managerBinary: String { Operator.buildDirectory + "/tidb-backup-manager" }
    static var root: String { QuickStartTests.root }

    static func write(_ text: String, _ name: String, in dir: String) throws -> String {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let broken: [(name: String, yaml: String, message: String)] = [
        ("cron-range", """
            apiVersion: pingcap.com/v1alpha1
            kind: BackupSchedule
            metadata: {name: nightly, namespace: default}
            spec:
              schedule: "0 25 * * *"
              maxBackups: 3
              backupTemplate:
                br: {cluster: basic}
                s3: {provider: aws, region: us-west-2, bucket: b, prefix: p, secretName: s3-secret}
            """, "End of range (25) above maximum (23)"),
        ("cron-words", """
            apiVersion: pingcap.com/v1alpha1
            kind: BackupSchedule
            metadata: {name: words, namespace: default}
            spec:
              schedule: "every night at 2"
              backupTemplate:
                br: {cluster: basic}
                s3: {provider: aws, region: us-west-2, bucket: b, prefix: p}
            """, "spec.schedule:"),
        ("bucket-name", """
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: typo, namespace: default}
            spec:
              br: {cluster: basic}
              s3: {provider: aws, region: us-west-2, bucketName: b, prefix: p}
            """, "spec.s3.bucketName"),
    ]

    @Test("a bad cron or an unknown storage field: validate, plan and doctor all refuse it with validate's message")
    func brokenManifestsAreRefusedByAllThree() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let dir = op.directory + "/broken"
        for item in Self.broken {
            let file = try Self.write(item.yaml, item.name + ".yaml", in: dir)
            let validate = try await TestServers.run([Self.operatorBinary, "validate", "-f", file])
            #expect(validate.status == 1 && validate.output.contains(item.message), "validate \(item.name): \(validate.output)")
            // The line validate prints is what the other two say.
            let line = validate.output.split(separator: "\n").first { $0.contains(item.message) }.map(String.init) ?? item.message
            let message = line.components(separatedBy: ": ").dropFirst().joined(separator: ": ")
            let plan = try await TestServers.run([Self.managerBinary, "plan", "-f", file])
            #expect(plan.status == 1 && plan.output.contains(message), "plan \(item.name) should refuse with \(message): \(plan.output)")
            #expect(!plan.output.contains("--storage="), "plan \(item.name) printed a plan: \(plan.output)")
            let doctor = try await TestServers.run([Self.managerBinary, "doctor", "-f", file, "--kubeconfig", op.kubeconfig], environment: ["PATH": "/usr/bin:/bin"])
            #expect(doctor.status == 1 && doctor.output.contains(message), "doctor \(item.name) should refuse with \(message): \(doctor.output)")
            #expect(doctor.output.contains("FAIL  \(line.components(separatedBy: ": ")[0].lowercased())  manifest"), "doctor names the object: \(doctor.output)")
        }
    }

    @Test("every example: validate and plan agree that it is valid, plan reads folders, and doctor refuses what is missing in the API")
    func examples() async throws {
        let validate = try await TestServers.run([Self.operatorBinary, "validate", "-f", Self.root + "/examples"])
        #expect(validate.status == 0, "\(validate.output)")
        let enumerator = FileManager.default.enumerator(atPath: Self.root + "/examples")
        let files = (enumerator?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 15, "\(files)")
        for file in files {
            let plan = try await TestServers.run([Self.managerBinary, "plan", "-f", Self.root + "/examples/" + file])
            #expect(plan.status == 0, "plan \(file): \(plan.output)")
        }
        // A folder: the quick start's TidbCluster gives the Backup its PD address.
        let folder = try await TestServers.run([Self.managerBinary, "plan", "-f", Self.root + "/examples/quickstart/"])
        #expect(folder.status == 0 && folder.output.contains("--pd=http://127.0.0.1:2379"), "\(folder.output)")
        #expect(!folder.output.contains("-pd.quickstart:2379"), "the TidbCluster of another file was not used: \(folder.output)")

        // The schedule example names a cluster and a Secret that do not exist: doctor checks its template.
        let op = try await Operator()
        defer { op.stop() }
        let doctor = try await TestServers.run([Self.managerBinary, "doctor", "-f", Self.root + "/examples/backupschedule-timezone.yaml",
                                                "--kubeconfig", op.kubeconfig], environment: ["PATH": "/usr/bin:/bin"])
        #expect(doctor.status == 1, "\(doctor.output)")
        #expect(doctor.output.contains("backupTemplate  tidbcluster: TidbCluster"), "\(doctor.output)")
    }

    @Test("plan of a TidbCluster and a Backup in two files prints the argv of the Job the operator then makes")
    func crossFilePlanIsTheJobsArgv() async throws {
        let pd = try FakePD()
        defer { pd.stop() }
        let op = try await Operator()
        defer { op.stop() }
        let dir = op.directory + "/manifests"
        let volume = try op.localVolume()
        let cluster = try Self.write("""
            apiVersion: pingcap.com/v1alpha1
            kind: TidbCluster
            metadata: {name: basic, namespace: default}
            spec:
              version: v8.5.0
              pdAddresses: ["\(pd.address)"]
            """, "tidbcluster.yaml", in: dir)
        let backup = try Self.write(localBackup("cross", root: volume), "backup.yaml", in: dir)
        let plan = try await TestServers.run([Self.managerBinary, "plan", "-f", cluster, "-f", backup])
        #expect(plan.status == 0, "\(plan.output)")
        #expect(plan.output.contains("--pd=\(pd.address)"), "\(plan.output)")

        try await op.apply(try String(contentsOfFile: cluster, encoding: .utf8))
        try await op.apply(try String(contentsOfFile: backup, encoding: .utf8))
        var args: [String] = []
        _ = try await eventually(60) {
            guard let job = try? await op.api.get(.jobs, namespace: "default", name: "backup-cross") else { return false }
            let container = job.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first
            args = (container?["args"]?.arrayValue ?? []).compactMap(\.stringValue)
            return !args.isEmpty
        }
        #expect(!args.isEmpty, "no Job backup-cross: \(op.tail())")
        let dryRun = try await TestServers.run([Self.managerBinary] + args + ["--dry-run", "--kubeconfig", op.kubeconfig], environment: ["PATH": "/usr/bin:/bin"])
        let ran = PlanDryRunEquivalenceTests.dryRun(dryRun.output)
        let planned = PlanDryRunEquivalenceTests.planned(plan.output.split(separator: "\n").map(String.init))
        #expect(!ran.isEmpty && ran == planned["backup-cross"], "the Job ran \(ran), plan printed \(planned["backup-cross"] ?? [])")
    }

    @Test("doctor reports every failure in one pass, each fix naming the Secret's keys, the namespace or the cluster")
    func doctorReportsEverything() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let file = try Self.write("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: all-wrong, namespace: nowhere}
            spec:
              br: {cluster: missing}
              s3: {provider: aws, region: us-west-2, bucket: b, prefix: p, secretName: s3-secret}
            ---
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: half, namespace: default}
            spec:
              br: {cluster: basic}
              s3: {provider: aws, region: us-west-2, bucket: b, prefix: p, secretName: half-secret}
            """, "wrong.yaml", in: op.directory)
        try await op.applySecret("half-secret", ["access_key": "AKIA"])
        let doctor = try await TestServers.run([Self.managerBinary, "doctor", "-f", file, "--kubeconfig", op.kubeconfig], environment: ["PATH": "/usr/bin:/bin"])
        #expect(doctor.status == 1)
        for expected in ["namespace nowhere does not exist", "fix: kubectl create namespace nowhere",
                         "TidbCluster nowhere/missing not found",
                         "Secret nowhere/s3-secret named by spec.s3.secretName does not exist; it must hold access_key, secret_key",
                         "kubectl -n nowhere create secret generic s3-secret --from-literal=access_key=... --from-literal=secret_key=...",
                         "Secret default/half-secret named by spec.s3.secretName has no key secret_key",
                         "kubectl -n default patch secret half-secret --type=merge -p '{\"stringData\":{\"secret_key\":\"...\"}}'",
                         "backup/nowhere/all-wrong  br:", "backup/default/half  br:"] {
            #expect(doctor.output.contains(expected), "doctor should say \(expected):\n\(doctor.output)")
        }
        #expect(!doctor.output.contains("AKIA"), "a Secret's value was printed")
    }

    @Test("kubectl get bks shows a broken schedule's status, and a paused one's")
    func scheduleStatusColumn() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let volume = try op.localVolume()
        try await op.apply(localSchedule("broken", root: volume, spec: []).replacingOccurrences(of: "@every 2s", with: "0 25 * * *"))
        try await op.apply(localSchedule("resting", root: volume, spec: ["pause: true"]))
        let kubectl = ["kubectl", "--kubeconfig", op.kubeconfig, "get", "bks", "-n", "default"]
        var output = ""
        let shown = try await eventually(30) {
            output = try await TestServers.run(kubectl).output
            let rows = output.split(separator: "\n")
            return rows.contains { $0.hasPrefix("broken ") && $0.contains(" Invalid ") } && rows.contains { $0.hasPrefix("resting ") && $0.contains(" Paused ") }
        }
        #expect(shown, "\(output)")
        #expect(output.split(separator: "\n").first?.contains("STATUS") == true, "\(output)")
    }

    @Test("a server started with SIGINT ignored stops on SIGINT; a second server on its address says the address is in use")
    func stopsOnSIGINTAndNamesATakenAddress() async throws {
        let dir = NSTemporaryDirectory() + "sigint-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let port = TestServers.freePort()
        FileManager.default.createFile(atPath: dir + "/server.log", contents: nil)
        let log = FileHandle(forWritingAtPath: dir + "/server.log")
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/bin/sh")
        // As `nohup ... &` from a script starts it: SIGINT ignored, inherited through exec.
        server.arguments = ["-c", "trap '' INT; exec \"$0\" standalone --data-dir \"$1\" --listen 127.0.0.1:\"$2\" --no-web-view",
                            Self.operatorBinary, dir + "/data", "\(port)"]
        server.standardOutput = log
        server.standardError = log
        try server.run()
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        let kubeconfig = dir + "/data/kubeconfig"
        let serving = try await eventually(30) {
            guard FileManager.default.fileExists(atPath: kubeconfig) else { return false }
            return try await TestServers.run(["kubectl", "--kubeconfig", kubeconfig, "get", "namespaces"]).status == 0
        }
        #expect(serving, "\((try? String(contentsOfFile: dir + "/server.log", encoding: .utf8)) ?? "")")

        let second = try await TestServers.run([Self.operatorBinary, "standalone", "--data-dir", dir + "/data2", "--listen", "127.0.0.1:\(port)"])
        #expect(second.status != 0, "\(second.output)")
        #expect(second.output.contains("cannot listen on 127.0.0.1:\(port): the address is in use"), "\(second.output)")

        let began = ContinuousClock.now
        kill(server.processIdentifier, SIGINT)
        let stopped = await eventually(20) { !server.isRunning }
        let text = (try? String(contentsOfFile: dir + "/server.log", encoding: .utf8)) ?? ""
        #expect(stopped, "the server still runs 20 s after SIGINT:\n\(text)")
        #expect(text.contains("SIGINT, stopping"), "\(text)")
        print("standalone stopped \(ContinuousClock.now - began) after SIGINT")
    }

    @Test("a Backup with backupMode: \"\" (the CRD accepts it) completes as a snapshot, as TiDB Operator treats it")
    func emptyBackupModeIsASnapshot() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(localBackup("empty-mode", root: root).replacingOccurrences(of: "  cleanPolicy: Delete", with: "  cleanPolicy: Delete\n  backupMode: \"\""))
        let stored = try await op.api.get(.backups, namespace: "default", name: "empty-mode")
        #expect(stored.value(at: ["spec", "backupMode"]) == .string(""), "the server keeps the empty mode as given: \(stored)")
        let done = try await op.backup("empty-mode", reaches: ["Complete", "Failed"])
        #expect(done.status.phase == .complete, "\(done.status)")
        #expect(FileManager.default.fileExists(atPath: root + "/empty-mode/backupmeta"))
        // The finished Job no longer counts an active pod (a merge patch of status used to keep the key).
        // (The Backup is Complete before its process has exited; the Job's status follows the exit.)
        var job: JSONValue = .null
        _ = try await eventually(30) {
            job = try await op.api.get(.jobs, namespace: "default", name: "backup-empty-mode")
            return job.value(at: ["status", "succeeded"]) == .int(1)
        }
        #expect(job.value(at: ["status", "succeeded"]) == .int(1) && job.value(at: ["status", "active"]) == nil, "\(job["status"] ?? .null)")
    }
}
