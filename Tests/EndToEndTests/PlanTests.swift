import BRModel
import Foundation
import KubeAPI
import KubeModel
import Testing
import TestServers

/// `tidb-backup-manager plan -f` and `--dry-run`, run as a user runs them.
@Suite("tidb-backup-manager plan and --dry-run")
struct PlanTests {
    static var binary: String { Operator.buildDirectory + "/tidb-backup-manager" }

    static func plan(_ yaml: String, _ extra: [String] = []) async throws -> [String] {
        let file = NSTemporaryDirectory() + "plan-\(UUID().uuidString).yaml"
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let (status, output) = try await TestServers.run([binary, "plan", "-f", file] + extra)
        #expect(status == 0, "\(output)")
        return output.split(separator: "\n").map(String.init)
    }

    /// The argv rows of one object's first tool run in the plan output.
    static func argv(_ lines: [String], object: String) -> [String] {
        guard var i = lines.firstIndex(of: "# \(object)").map({ $0 + 1 }) else { return [] }
        while i < lines.count, lines[i].hasPrefix("#") { i += 1 }
        return Array(lines[(i + 1)...].prefix { !$0.hasPrefix("#") && $0 != "env:" })
    }

    @Test("the argv rows of reference 8.10: snapshot backup, with commitTs, with cluster TLS; log start and truncate; PiTR restore")
    func reference810() async throws {
        let backup = """
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: bk1, namespace: tidb}
            spec:
              br: {cluster: basic, logLevel: info, concurrency: 4, checksum: true, sendCredToTikv: true, options: ["--lastbackupts=1"]}
              s3: {provider: aws, region: us-west-2, bucket: my-bucket, prefix: my-folder}
            """
        let expected = ["backup", "full", "--pd=basic-pd.tidb:2379", "--log-level=info", "--send-credentials-to-tikv=true",
                        "--storage=s3://my-bucket/my-folder", "--s3.region=us-west-2", "--s3.provider=aws", "--concurrency=4", "--checksum=true",
                        "--lastbackupts=1"]
        let plain = try await Self.plan(backup, ["--tikv-version", "v8.5.0"])
        #expect(plain[1] == "# Job backup-bk1 (snapshot)" && plain[2] == "br", "\(plain)")
        #expect(Self.argv(plain, object: "Backup tidb/bk1") == expected)
        #expect(Array(plain.drop { $0 != "env:" }.dropFirst()) == ["  S3_PROVIDER=aws", "  S3_ENDPOINT=", "  AWS_REGION=us-west-2", "  AWS_ACL=private",
                                                                   "  AWS_STORAGE_CLASS=STANDARD_IA", "  BR_LOG_TO_TERM=\\u0001"])
        let withTs = try await Self.plan(backup.replacingOccurrences(of: "spec:\n", with: "spec:\n  commitTs: \"400036290571534337\"\n"))
        #expect(Array(Self.argv(withTs, object: "Backup tidb/bk1").prefix(3)) == ["backup", "full", "--backupts=400036290571534337"])
        let tls = try await Self.plan(backup, ["--cluster-tls"])
        #expect(Array(Self.argv(tls, object: "Backup tidb/bk1")[2...5]) == [
            "--pd=basic-pd.tidb:2379", "--ca=/var/lib/cluster-client-tls/ca.crt", "--cert=/var/lib/cluster-client-tls/tls.crt",
            "--key=/var/lib/cluster-client-tls/tls.key",
        ])

        let log = try await Self.plan("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: lb, namespace: tidb}
            spec:
              backupMode: log
              commitTs: "443000000000000000"
              logTruncateUntil: "443100000000000000"
              br: {cluster: basic}
              s3: {provider: aws, region: us-west-2, bucket: my-bucket, prefix: log}
            ---
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: rt, namespace: tidb}
            spec:
              restoreMode: pitr
              pitrRestoredTs: "443123456789"
              logRestoreStartTs: "443123456780"
              br: {cluster: basic}
              s3: {provider: aws, region: us-west-2, bucket: my-bucket, prefix: log}
            """)
        #expect(Array(Self.argv(log, object: "Backup tidb/lb").prefix(5)) == ["log", "start", "--task-name=lb", "--start-ts=443000000000000000",
                                                                              "--pd=basic-pd.tidb:2379"])
        let truncate = log.firstIndex(of: "# Job backup-lb-log-truncate (log-truncate)").map { Array(log[($0 + 2)...].prefix(4)) }
        #expect(truncate == ["log", "truncate", "--until=443100000000000000", "--pd=basic-pd.tidb:2379"])
        let pitr = Self.argv(log, object: "Restore tidb/rt")
        #expect(Array(pitr.prefix(3)) == ["restore", "point", "--pd=basic-pd.tidb:2379"])
        #expect(Array(pitr.suffix(2)) == ["--restored-ts=443123456789", "--start-ts=443123456780"])
    }

    @Test("a TidbCluster's pdAddresses in the same file replace the derived PD address; Dumpling and Lightning plans redact the password")
    func pdAddressesAndDumpling() async throws {
        let lines = try await Self.plan("""
            apiVersion: pingcap.com/v1alpha1
            kind: TidbCluster
            metadata: {name: basic, namespace: tidb}
            spec: {pdAddresses: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]}
            ---
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: bk, namespace: tidb}
            spec:
              br: {cluster: basic}
              local: {prefix: p, volume: {name: v, hostPath: {path: /data}}, volumeMount: {name: v, mountPath: /data}}
            ---
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: dump, namespace: tidb}
            spec:
              from: {host: basic-tidb.tidb, secretName: s}
              storageSize: 10Gi
              s3: {provider: aws, region: us-west-2, bucket: b, prefix: p}
            ---
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: load, namespace: tidb}
            spec:
              to: {host: basic-tidb.tidb, user: loader, secretName: s}
              storageSize: 10Gi
              s3: {provider: aws, region: us-west-2, path: "s3://b/p/backup-2024-03-05T07:08:09Z.tgz"}
            """)
        #expect(Self.argv(lines, object: "Backup tidb/bk").contains("--pd=http://10.0.0.1:2379,http://10.0.0.2:2379"))
        let dump = Self.argv(lines, object: "Backup tidb/dump")
        #expect(dump.first?.hasPrefix("--output=/backup/b/p/backup-") == true)
        #expect(dump.contains("--password=<redacted>"))
        let load = Self.argv(lines, object: "Restore tidb/load")
        #expect(load.contains("--d=/backup/b/p/backup-2024-03-05T07:08:09Z") && load.contains("--tidb-user=loader"))
        #expect(!load.contains { $0.hasPrefix("--tidb-password") })
    }

    @Test("--dry-run prints the argv for an object on the server, runs nothing and writes no status")
    func dryRun() async throws {
        let op = try await Operator()
        defer { op.stop() }
        // No TidbCluster named "absent": the controller fails the Backup before any Job, so only the
        // dry run touches it.
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: dry, namespace: default}
            spec:
              br: {cluster: absent, logLevel: debug}
              s3: {provider: aws, region: us-east-1, bucket: b, prefix: p, secretName: s3-secret}
            """)
        try await Task.sleep(for: .seconds(1))
        let before = try await op.api.get(Backup.self, namespace: "default", name: "dry")
        let (status, output) = try await TestServers.run([Self.binary, "backup", "--namespace=default", "--backupName=dry", "--dry-run",
                                                    "--kubeconfig", op.directory + "/data/kubeconfig"],
                                                   environment: ["AWS_SECRET_ACCESS_KEY": "dry-run-secret-9", "PATH": "/usr/bin:/bin"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("backup\n") || output.contains("  backup"), "\(output)")
        #expect(output.contains("--log-level=debug") && output.contains("--storage=s3://b/p"))
        #expect(output.contains("AWS_SECRET_ACCESS_KEY=<redacted>") && !output.contains("dry-run-secret-9"))
        let after = try await op.api.get(Backup.self, namespace: "default", name: "dry")
        #expect(after.metadata.resourceVersion == before.metadata.resourceVersion)
    }

    @Test("a volume-snapshot Backup and Restore: the br argv of every phase, from the examples")
    func volumeSnapshot() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("examples/volume-snapshot/backup.yaml"), encoding: .utf8) + "\n---\n"
            + String(contentsOf: root.appendingPathComponent("examples/volume-snapshot/restore.yaml"), encoding: .utf8)
        let lines = try await Self.plan(text)
        let joined = lines.joined(separator: " ")
        #expect(joined.contains("br operator pause-gc-and-schedulers --pd=basic-pd.tidb:2379"), "\(lines)")
        // TiDB Operator's order and the pod's paths: the init Job passes only PD and TLS flags; the
        // restore's EBS flags come after the storage and the user's options, --target-az and --use-fsr always.
        #expect(joined.contains("br operator pause-gc-and-schedulers --pd=basic-pd.tidb:2379 #"), "\(lines)")
        #expect(joined.contains("br backup full --type=aws-ebs --volume-file=/var/lib/br-bin/csb_backup.json --operator-paused-gc-and-scheduler=true --pd=basic-pd.tidb:2379 --storage=s3://my-bucket/ebs/basic-2026-11-30"))
        #expect(joined.contains("br restore full --pd=restored-pd.tidb:2379 --storage=s3://my-bucket/ebs/basic-2026-11-30 --s3.region=us-west-2 --s3.provider=aws --type=aws-ebs --prepare --output-file=/var/lib/br-bin/csb_restore.json --target-az=us-west-2a --use-fsr=false"), "\(joined)")
        #expect(joined.contains("# Job restore-data-ebs-restore (restore-data) br restore full --pd=restored-pd.tidb:2379 --storage=s3://my-bucket/ebs/basic-2026-11-30 --s3.region=us-west-2 --s3.provider=aws --type=aws-ebs env:"), "\(joined)")
    }

    @Test("a log backup plans the sub-command its next Job runs: stop (logSubcommand or logStop), pause, resume of a Paused backup asked to log-start")
    func logSubCommands() async throws {
        func backup(_ spec: String, status: String = "") -> String {
            """
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: lb, namespace: tidb}
            spec:
              backupMode: log
            \(spec)
              br: {cluster: basic}
              s3: {provider: aws, region: us-west-2, bucket: my-bucket, prefix: log}
            \(status)
            """
        }
        let running = "status: {phase: Running, commitTs: \"443000000000000000\"}"
        #expect(Array(Self.argv(try await Self.plan(backup("  logSubcommand: log-stop", status: running)), object: "Backup tidb/lb").prefix(4))
                == ["log", "stop", "--task-name=lb", "--pd=basic-pd.tidb:2379"])
        #expect(Array(Self.argv(try await Self.plan(backup("  logStop: true", status: running)), object: "Backup tidb/lb").prefix(3)) == ["log", "stop", "--task-name=lb"])
        #expect(Array(Self.argv(try await Self.plan(backup("  logSubcommand: log-pause", status: running)), object: "Backup tidb/lb").prefix(4))
                == ["log", "pause", "--task-name=lb", "--pd=basic-pd.tidb:2379"])
        let resumed = Self.argv(try await Self.plan(backup("  logSubcommand: log-start", status: "status: {phase: Paused, commitTs: \"443000000000000000\"}")),
                                object: "Backup tidb/lb")
        #expect(Array(resumed.prefix(4)) == ["log", "resume", "--task-name=lb", "--pd=basic-pd.tidb:2379"])
        #expect(!resumed.contains { $0.hasPrefix("--start-ts") })
    }

    @Test("a CompactBackup plans br operator base64ify with the storage flags, then tikv-ctl compact-log-backup over its range")
    func compact() async throws {
        let lines = try await Self.plan("""
            apiVersion: pingcap.com/v1alpha1
            kind: CompactBackup
            metadata: {name: cpt, namespace: tidb}
            spec:
              startTs: "443000000000000000"
              endTs: "443100000000000000"
              concurrency: 8
              br: {cluster: basic}
              s3: {provider: aws, region: us-west-2, bucket: my-bucket, prefix: log}
            """)
        let joined = lines.joined(separator: " ")
        #expect(joined.contains("# Job cpt (compact) br operator base64ify --storage=s3://my-bucket/log --s3.region=us-west-2 --s3.provider=aws tikv-ctl --log-level INFO --log-format json compact-log-backup --storage-base64 <base64 of the storage, from br> --from 443000000000000000 --until 443100000000000000 -N 8"), "\(lines)")
    }
}

/// Issue: `plan`, the Jobs and the status had come to disagree. Every BR Job that an example manifest,
/// or an object state the end-to-end tests reach, leads to is run through `plan -f` (offline, from the
/// file) and through the job binary's `--dry-run` (online: its object read back from the API with the
/// arguments the model gives the Job), and both must print the same argv.
@Suite("plan and the job binary's --dry-run agree, Job by Job", .serialized)
struct PlanDryRunEquivalenceTests {
    static var root: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    /// `# Job <name> (<step>)` → the tool runs under it: [(tool, argv)].
    static func planned(_ lines: [String]) -> [String: [[String]]] {
        var out: [String: [[String]]] = [:]
        var job: String?
        var current: [String]?
        func flush() { if let job, let current { out[job, default: []].append(current) } }
        for line in lines {
            if line.hasPrefix("# Job ") {
                flush()
                current = nil
                job = String(line.dropFirst("# Job ".count).prefix { $0 != " " })
            } else if line.hasPrefix("#") || line == "env:" || line.hasPrefix("  ") {
                flush()
                current = nil
                if line.hasPrefix("# ") && !line.hasPrefix("# Job ") { job = nil }
            } else if ["br", "tikv-ctl", "dumpling", "tidb-lightning"].contains(line) && job != nil {
                flush()
                current = [line]
            } else if current != nil {
                current!.append(line)
            }
        }
        flush()
        return out
    }

    /// `tool: br` / `  argv…` / `env:` blocks of a dry run.
    static func dryRun(_ output: String) -> [[String]] {
        var out: [[String]] = []
        var current: [String]?
        for line in output.split(separator: "\n").map(String.init) {
            if line.hasPrefix("tool: ") {
                if let current { out.append(current) }
                current = [String(line.dropFirst("tool: ".count))]
            } else if line == "env:" {
                if let c = current { out.append(c) }
                current = nil
            } else if current != nil, line.hasPrefix("  ") {
                current!.append(String(line.dropFirst(2)))
            }
        }
        if let current { out.append(current) }
        return out
    }

    @Test("every BR Job of every example manifest, and of log backups in the states the end-to-end tests reach, prints the same argv in plan and in --dry-run")
    func examplesAndStates() async throws {
        let op = try await Operator(extraArguments: ["--no-controllers"])
        defer { op.stop() }
        let binary = PlanTests.binary
        var compared = 0
        var files = try FileManager.default.subpathsOfDirectory(atPath: Self.root.appendingPathComponent("examples").path)
            .filter { $0.hasSuffix(".yaml") }.map { Self.root.appendingPathComponent("examples/" + $0).path }
        // States the end-to-end tests reach: a running log backup asked to stop or pause, a paused one asked to start
        // (a resume), one with a truncate pending; a PiTR restore.
        let states = op.directory + "/states.yaml"
        let log = { (name: String, spec: String, status: String) in
            """
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: \(name), namespace: states}
            spec:
              backupMode: log
            \(spec)
              br: {cluster: basic, logLevel: info}
              s3: {provider: aws, region: us-west-2, bucket: b, prefix: \(name)}
            \(status)
            """
        }
        let running = "status: {phase: Running, commitTs: \"443000000000000000\"}"
        try [log("stop", "  logSubcommand: log-stop", running), log("stopflag", "  logStop: true", running),
             log("pause", "  logSubcommand: log-pause", running),
             log("resume", "  logSubcommand: log-start", "status: {phase: Paused, commitTs: \"443000000000000000\"}"),
             log("truncate", "  logTruncateUntil: \"443100000000000000\"", running),
             log("start", "  commitTs: \"443000000000000000\"", ""),
             """
             apiVersion: pingcap.com/v1alpha1
             kind: Restore
             metadata: {name: pitr, namespace: states}
             spec:
               restoreMode: pitr
               pitrRestoredTs: "443123456789"
               br: {cluster: basic}
               s3: {provider: aws, region: us-west-2, bucket: b, prefix: log}
               pitrFullBackupStorageProvider:
                 s3: {provider: aws, region: us-west-2, bucket: b, prefix: full}
             """].joined(separator: "\n---\n").write(toFile: states, atomically: true, encoding: .utf8)
        files.append(states)
        var namespaces = Set<String>()
        for file in files.sorted() {
            let docs = try KubeYAML.documents(try String(contentsOfFile: file, encoding: .utf8)).map(\.value)
            var pdAddresses: [String: String] = [:]
            for doc in docs where doc["kind"]?.stringValue == "TidbCluster" {
                let c = try KubeCodec.decode(TidbCluster.self, from: doc)
                if let pds = c.spec.pdAddresses, !pds.isEmpty { pdAddresses["\(c.metadata.namespace ?? "default")/\(c.metadata.name ?? "")"] = pds.joined(separator: ",") }
            }
            let (status, output) = try await TestServers.run([binary, "plan", "-f", file])
            #expect(status == 0, "\(file): \(output)")
            let plan = Self.planned(output.split(separator: "\n").map(String.init))
            for doc in docs {
                let kind = doc["kind"]?.stringValue ?? ""
                guard kind == "Backup" || kind == "Restore" else { continue }
                let ns = doc.value(at: ["metadata", "namespace"])?.stringValue ?? "default"
                let name = doc.value(at: ["metadata", "name"])?.stringValue ?? ""
                let jobs: [FlowJob]
                let cluster: BRConfig?
                if kind == "Backup" {
                    let b = try KubeCodec.decode(Backup.self, from: doc)
                    (jobs, cluster) = (b.flowJobs.filter { $0.kind == .backup }, b.spec.br)
                } else {
                    let r = try KubeCodec.decode(Restore.self, from: doc)
                    (jobs, cluster) = (r.flowJobs.filter { $0.kind == .restore }, r.spec.br)
                }
                guard let cluster, !jobs.isEmpty else { continue }
                if namespaces.insert(ns).inserted && ns != "default" {
                    _ = try? await op.api.create(.namespaces, namespace: nil, object: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(ns)]])
                }
                // The object as the job reads it: spec and status from the file.
                var object = doc
                object["metadata"]?["namespace"] = .string(ns)
                let resource: ResourceKind = kind == "Backup" ? .backups : .restores
                _ = try? await op.api.delete(resource, namespace: ns, name: name)
                let created = try await op.api.create(resource, namespace: ns, object: object)
                if let wanted = doc["status"] {
                    var withStatus = created
                    withStatus["status"] = wanted
                    _ = try await op.api.updateStatus(resource, namespace: ns, object: withStatus)
                }
                let clusterNS = (cluster.clusterNamespace ?? "").isEmpty ? ns : cluster.clusterNamespace!
                for job in jobs {
                    // As the operator's Job builder passes them: PD only when the TidbCluster names addresses.
                    var args = [kind == "Backup" ? "backup" : "restore", "--namespace=\(ns)",
                                kind == "Backup" ? "--backupName=\(name)" : "--restoreName=\(name)", "--tikvVersion=4.0"]
                    if let pd = pdAddresses["\(clusterNS)/\(cluster.cluster)"] { args.append("--pd=\(pd)") }
                    args += job.modeArguments + ["--dry-run", "--kubeconfig", op.kubeconfig]
                    let (code, text) = try await TestServers.run([binary] + args, environment: ["PATH": "/usr/bin:/bin"])
                    #expect(code == 0, "\(file) \(job.name): \(text)")
                    let ran = Self.dryRun(text)
                    #expect(!ran.isEmpty && ran.allSatisfy { $0.count > 2 }, "\(file) \(job.name): the dry run printed no tool run: \(text)")
                    #expect(ran == plan[job.name] ?? [], "\(file) Job \(job.name): --dry-run printed \(ran), plan printed \(plan[job.name] ?? [])")
                    compared += 1
                }
            }
        }
        print("plan_dry_run_jobs_compared: \(compared)")
        #expect(compared >= 15, "only \(compared) Jobs were compared")
    }
}
