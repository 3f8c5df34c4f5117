import AWSCore
import AWSSigning
import BRModel
import Foundation
import KubeAPI
import KubeClient
import KubeModel
import KubeTesting
import Testing
import TestServers

/// The fault suite: what happens when processes die, the API server goes away and S3 misbehaves.
/// Run by `scripts/chaos` (CHAOS=1), not by the test command: it takes minutes (a 60 s outage among
/// them). Each scenario prints one `chaos-row | scenario | PASS/FAIL | figures` line for the table.
@Suite("Fault suite", .serialized, .enabled(if: ProcessInfo.processInfo.environment["CHAOS"] == "1"))
struct ChaosTests {
    static func row(_ scenario: String, _ pass: Bool, _ detail: String) {
        print("chaos-row | \(scenario) | \(pass ? "PASS" : "FAIL") | \(detail)")
    }

    static func seconds(_ d: Duration) -> String { String(format: "%.2f s", Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) }

    /// Waits until every Backup matching `selector` is Complete or Failed; returns them.
    static func settle(_ op: Operator, selector: String?, timeout: Double = 120) async throws -> [Backup] {
        var backups: [Backup] = []
        _ = await eventually(timeout) {
            backups = (try? await op.api.list(Backup.self, namespace: "default", labelSelector: selector)) ?? backups
            return !backups.isEmpty && backups.allSatisfy { $0.status.phase == .complete || $0.status.phase == .failed }
        }
        return backups
    }

    @Test("SIGKILL of the standalone server three times during a schedule storm")
    func standaloneKilledDuringStorm() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(localSchedule("storm", root: root, spec: ["startingDeadlineSeconds: 10", "maxBackups: 100"],
                                         template: ["backoffRetryPolicy: {minRetryDuration: 1s}", "env: [{name: BR_STANDIN_HANG, value: \"1\"}]"]))
        var restarts: [(at: Date, took: Duration)] = []
        for _ in 0..<3 {
            try await Task.sleep(for: .seconds(5))
            let at = Date()
            restarts.append((at, try await op.crashAndRestart()))
        }
        try await Task.sleep(for: .seconds(8))
        _ = try await op.api.patch(.backupSchedules, namespace: "default", name: "storm",
                                   patch: Patch(.merge, try JSONParser.parse(#"{"spec":{"pause":true}}"#)))
        let selector = scheduleSelector("storm")
        let backups = try await Self.settle(op, selector: selector)
        let settled = backups.allSatisfy { $0.status.phase == .complete || $0.status.phase == .failed }
        let slots = backups.compactMap { StandaloneScheduleTests.slotTime($0.name, schedule: "storm") }
        let unique = Set(slots).count == slots.count && slots.count == backups.count
        // After each restart the schedule carries on: a Backup for a slot within startingDeadlineSeconds
        // plus one interval of it.
        let resumed = restarts.allSatisfy { r in slots.contains { $0 > r.at.addingTimeInterval(-2) && $0 <= r.at.addingTimeInterval(12) } }
        let complete = backups.filter { $0.status.phase == .complete }.count
        let slowest = restarts.map(\.took).max() ?? .zero
        let pass = settled && unique && resumed
        Self.row("standalone SIGKILL x3 during @every 2s", pass,
                 "\(backups.count) backups (\(complete) Complete), one per slot: \(unique), resumed after each: \(resumed), all settled: \(settled), slowest restart \(Self.seconds(slowest))")
        #expect(pass, "\(backups.map { ($0.name, $0.status.phase?.rawValue ?? "-") }); log: \(op.tail())")
    }

    @Test("SIGKILL of a running backup job (every process of it) with the GC life time raised")
    func backupJobKilled() async throws {
        let db = try await TestServers.offPool(TestServers.startMariaDB)
        func lifeTime() throws -> String { try db.sql("SELECT variable_value FROM mysql.tidb WHERE variable_name = 'tikv_gc_life_time'") }
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.applySecret("tidb-secret", ["password": db.password])
        try await op.apply(localBackup("bk-kill", root: root).replacingOccurrences(of: "  backoffRetryPolicy: {maxRetryTimes: 0}\n", with: "  backoffRetryPolicy: {minRetryDuration: 1s, maxRetryTimes: 2}\n")
            .replacingOccurrences(of: "  br: {cluster: basic, sendCredToTikv: true}", with: """
                  br: {cluster: basic}
                  from: {host: 127.0.0.1, port: \(db.port), user: \(db.user), secretName: tidb-secret}
                  env: [{name: BR_STANDIN_HANG, value: "5"}]
                """))
        // Once the life time is raised the tool runs: kill the job's whole process group.
        var killed = false
        let deadline = Date().addingTimeInterval(60)
        while !killed && Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
            guard (try? lifeTime()) == "72h" else { continue }
            for pod in try await op.api.list(.pods, namespace: "default").items where pod.value(at: ["status", "phase"]) == "Running" {
                guard let value = pod.value(at: ["metadata", "annotations", "standalone.tidb-backup-operator/process"])?.stringValue,
                      let group = value.split(separator: "/").dropFirst().first.flatMap({ pid_t($0) }) else { continue }
                killed = kill(-group, SIGKILL) == 0
            }
        }
        let backup = try await op.backup("bk-kill", reaches: ["Complete", "Failed"], timeout: 120)
        let restored = await eventually(30) { (try? lifeTime()) == "10m0s" }
        let annotation = try await op.api.get(.backups, namespace: "default", name: "bk-kill")
            .value(at: ["metadata", "annotations", BRLabels.gcLifeTimeOriginalAnnotation])
        let retried = backup.status.backoffRetryStatus?.count ?? 0
        let pass = killed && restored && annotation == nil && (backup.status.phase == .complete || backup.status.phase == .failed)
        Self.row("SIGKILL of a running backup job", pass,
                 "killed: \(killed), Backup \(backup.status.phase?.rawValue ?? "-") after \(retried) retry(ies), tikv_gc_life_time back to 10m0s: \(restored), record cleared: \(annotation == nil)")
        #expect(pass, "\(backup.status); log: \(op.tail())")
    }

    /// `tidb-backup-operator run` against the standalone server (started with --no-controllers). With
    /// `supervised`, a replica that exits is started again after a second, as a Deployment's pod is
    /// restarted (the operator exits when it loses its lease, as controller-runtime does).
    final class RunReplica: @unchecked Sendable {
        let log: String
        let arguments: [String]
        let environment: [String: String]
        private let lock = NSLock()
        private var current: Process
        private var stopped = false
        private(set) var starts = 1

        init(_ op: Operator, name: String, supervised: Bool = false, kubeconfig: String? = nil, extra: [String] = []) throws {
            log = op.directory + "/\(name).log"
            FileManager.default.createFile(atPath: log, contents: nil)
            arguments = ["run", "--kubeconfig", kubeconfig ?? op.kubeconfig, "--leader-elect", "--leader-election-namespace", "default",
                         "--metrics-addr", "127.0.0.1:\(TestServers.freePort())", "--health-addr", "127.0.0.1:\(TestServers.freePort())"] + extra
            // Each replica is a pod of its own: its name is its leader-election identity across restarts.
            var env = op.environment
            env["POD_NAME"] = name
            environment = env
            current = try Self.launch(arguments, env, log)
            guard supervised else { return }
            Thread.detachNewThread { [self] in
                while true {
                    let p = lock.withLock { current }
                    while TestServers.waitForExit(p, timeout: 3600) == nil {}
                    Thread.sleep(forTimeInterval: 1)
                    let restarted: Bool = lock.withLock {
                        guard !stopped, let next = try? Self.launch(arguments, environment, log) else { return false }
                        current = next
                        starts += 1
                        return true
                    }
                    if !restarted { return }
                }
            }
        }

        static func launch(_ arguments: [String], _ environment: [String: String], _ log: String) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Operator.buildDirectory + "/tidb-backup-operator")
            process.arguments = arguments
            process.environment = environment
            let handle = FileHandle(forWritingAtPath: log)
            handle?.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            return process
        }

        var text: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        var restarts: Int { lock.withLock { starts - 1 } }
        var isRunning: Bool { lock.withLock { current.isRunning } }

        func kill9() { stop(SIGKILL) }

        /// Stops it for good with `signal` (SIGTERM: as a Deployment's rolling update stops an old pod).
        func stop(_ signal: Int32) {
            let p = lock.withLock { stopped = true; return current }
            kill(p.processIdentifier, signal)
            TestServers.waitForExit(p, timeout: 60)
        }
    }

    static func jobExists(_ op: Operator, _ name: String) async -> Bool {
        (try? await op.api.get(.jobs, namespace: "default", name: name)) != nil
    }

    static func backupYAML(_ name: String) -> String {
        """
        apiVersion: pingcap.com/v1alpha1
        kind: Backup
        metadata: {name: \(name), namespace: default}
        spec: {br: {cluster: basic}, s3: {provider: aws, bucket: b, prefix: \(name)}}
        """
    }

    @Test("SIGKILL of the leading operator replica in run mode, a second replica standing by")
    func leaderKilled() async throws {
        let op = try await Operator(extraArguments: ["--no-controllers", "--image", "tidb-backup-manager=/bin/true"])
        defer { op.stop() }
        try await op.apply(cluster)
        let a = try RunReplica(op, name: "replica-a"), b = try RunReplica(op, name: "replica-b")
        defer { a.kill9(); b.kill9() }
        try await op.apply(Self.backupYAML("before"))
        let first = await eventually(60) { await Self.jobExists(op, "backup-before") }
        let lease = try await op.api.get(.leases, namespace: "default", name: "tidb-backup-operator")
        let holder = lease.value(at: ["spec", "holderIdentity"])?.stringValue ?? ""
        let leader = a.text.contains(holder) ? a : b, standby = leader === a ? b : a
        leader.kill9()
        let killedAt = ContinuousClock.now
        try await op.apply(Self.backupYAML("after"))
        let taken = await eventually(60) { await Self.jobExists(op, "backup-after") }
        let takeover = ContinuousClock.now - killedAt
        let jobs = try await op.api.list(.jobs, namespace: "default").items.compactMap { $0.value(at: ["metadata", "name"])?.stringValue }
        let newHolder = try await op.api.get(.leases, namespace: "default", name: "tidb-backup-operator").value(at: ["spec", "holderIdentity"])?.stringValue ?? ""
        let pass = first && taken && !holder.isEmpty && newHolder != holder && jobs.sorted() == ["backup-after", "backup-before"]
        Self.row("SIGKILL of the leader (run mode, 2 replicas)", pass,
                 "takeover and the next Job in \(Self.seconds(takeover)) (lease 15 s), Jobs \(jobs.sorted()), one per Backup: \(Set(jobs).count == jobs.count)")
        #expect(pass, "replica a:\n\(a.text.suffix(2000))\nreplica b:\n\(b.text.suffix(2000))")
        _ = standby
    }

    /// The leader alone partitioned: its connections hang (a frozen TCP forwarder between it and the
    /// API server), nothing is refused. It must stop acting within its renew deadline (10 s) and
    /// before the standby can take the lease (15 s after its last renewal).
    @Test("the leader's connection to the API hanging (partition of the leader alone), a second replica standing by")
    func leaderPartitioned() async throws {
        let op = try await Operator(extraArguments: ["--no-controllers", "--image", "tidb-backup-manager=/bin/true"])
        defer { op.stop() }
        try await op.apply(cluster)
        let port = TestServers.freePort()
        let forwarder = Process()
        forwarder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        forwarder.arguments = ["python3", TestServers.fixtures + "/tcp_forwarder.py", "--port", "\(port)", "--target", "127.0.0.1:\(op.port)"]
        try forwarder.run()
        defer { kill(forwarder.processIdentifier, SIGCONT); forwarder.terminate() }
        let proxied = op.directory + "/kubeconfig-proxied"
        let original = try String(contentsOfFile: op.kubeconfig, encoding: .utf8)
        try original.replacingOccurrences(of: "127.0.0.1:\(op.port)", with: "127.0.0.1:\(port)").write(toFile: proxied, atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(500))
        let a = try RunReplica(op, name: "replica-a", kubeconfig: proxied)
        defer { a.kill9() }
        // a leads first (b starts only once it does).
        let led = await eventually(60) { a.text.contains("became leader") }
        let b = try RunReplica(op, name: "replica-b")
        defer { b.kill9() }
        try await Task.sleep(for: .seconds(3))
        let holder = try await op.api.get(.leases, namespace: "default", name: "tidb-backup-operator").value(at: ["spec", "holderIdentity"])?.stringValue ?? ""
        kill(forwarder.processIdentifier, SIGSTOP)
        let frozen = ContinuousClock.now
        var stopped: Duration?
        var taken: Duration?
        var newHolder = holder
        while ContinuousClock.now - frozen < .seconds(40) && (stopped == nil || taken == nil) {
            if stopped == nil && !a.isRunning { stopped = ContinuousClock.now - frozen }
            if taken == nil {
                newHolder = (try? await op.api.get(.leases, namespace: "default", name: "tidb-backup-operator"))?
                    .value(at: ["spec", "holderIdentity"])?.stringValue ?? holder
                if newHolder != holder && !newHolder.isEmpty { taken = ContinuousClock.now - frozen }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(forwarder.processIdentifier, SIGCONT)
        let pass = led && a.text.contains(holder) && stopped != nil && taken != nil && stopped! <= .milliseconds(12_500) && stopped! < taken!
        Self.row("the leader's connection hanging (partition of the leader alone, run mode, 2 replicas)", pass,
                 "old leader stopped acting after \(stopped.map(Self.seconds) ?? "never") (renew deadline 10 s), the standby took the lease after \(taken.map(Self.seconds) ?? "never") (lease 15 s); never both: \(stopped != nil && taken != nil && stopped! < taken!)")
        #expect(pass, "replica a:\n\(a.text.suffix(2000))\nreplica b:\n\(b.text.suffix(2000))")
    }

    /// The outage scenarios' start: a standalone API server (Jobs only), one supervised `run` replica
    /// leading, and its first Job made; the outage's length from CHAOS_OUTAGE (60 s by default).
    static func outageSetup() async throws -> (outage: Double, op: Operator, replica: RunReplica, first: Bool) {
        let outage = Double(ProcessInfo.processInfo.environment["CHAOS_OUTAGE"] ?? "") ?? 60
        let op = try await Operator(extraArguments: ["--no-controllers", "--image", "tidb-backup-manager=/bin/true"])
        try await op.apply(cluster)
        let replica = try RunReplica(op, name: "replica", supervised: true)
        try await op.apply(Self.backupYAML("before"))
        let first = await eventually(60) { await Self.jobExists(op, "backup-before") }
        return (outage, op, replica, first)
    }

    @Test("the API server unreachable for a while (CHAOS_OUTAGE seconds, 60 by default), the operator in run mode")
    func apiServerOutage() async throws {
        let (outage, op, replica, first) = try await Self.outageSetup()
        defer { op.stop() }
        defer { replica.kill9() }
        op.stop()
        try await Task.sleep(for: .seconds(outage))
        _ = try await op.crashAndRestart()
        let back = ContinuousClock.now
        try await op.apply(Self.backupYAML("after"))
        let resumed = await eventually(90) { await Self.jobExists(op, "backup-after") }
        let took = ContinuousClock.now - back
        let text = replica.text
        let warnings = text.components(separatedBy: "list/watch failed").count - 1
        let steppedDown = text.contains("lost the leader lease")
        // Each start lists the four kinds once; a restart after stepping down is one more round, no storm.
        let starts = text.components(separatedBy: "starting controllers").count - 1
        let pass = first && resumed && warnings <= 4 * 8 && starts <= 1 + replica.restarts
        Self.row("API server unreachable for \(Int(outage)) s (run mode, restarted like a pod)", pass,
                 "next Job \(Self.seconds(took)) after the server came back; stepped down without renewals: \(steppedDown), restarts by the supervisor: \(replica.restarts), controller starts: \(starts), \(warnings) warning lines")
        #expect(pass, "\(text.suffix(3000))")
    }

    /// The API server frozen (SIGSTOP): every connection hangs, nothing is refused. The leader must step
    /// down within its renew deadline, and lead again within seconds of the server's return.
    @Test("the API server frozen with SIGSTOP for a while (CHAOS_OUTAGE seconds, 60 by default), the operator in run mode")
    func apiServerFrozen() async throws {
        let (outage, op, replica, first) = try await Self.outageSetup()
        defer { op.stop() }
        defer { replica.kill9() }
        kill(op.process.processIdentifier, SIGSTOP)
        let frozen = ContinuousClock.now
        var steppedDown: Duration?
        while ContinuousClock.now - frozen < .seconds(outage) {
            if steppedDown == nil && replica.text.contains("lost the leader lease") { steppedDown = ContinuousClock.now - frozen }
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(op.process.processIdentifier, SIGCONT)
        let back = ContinuousClock.now
        try await op.apply(Self.backupYAML("after"))
        let resumed = await eventually(90) { await Self.jobExists(op, "backup-after") }
        let took = ContinuousClock.now - back
        let pass = first && resumed && steppedDown != nil && steppedDown! <= .milliseconds(12_500) && took < .seconds(20)
        Self.row("API server frozen (SIGSTOP) for \(Int(outage)) s (run mode, restarted like a pod)", pass,
                 "the leader stepped down \(steppedDown.map(Self.seconds) ?? "never") after the freeze (renew deadline 10 s); next Job \(Self.seconds(took)) after the server resumed")
        #expect(pass, "\(replica.text.suffix(3000))")
    }

    @Test("S3 answering 503, slowly, then 500 for good")
    func s3Faults() async throws {
        let moto = try await TestServers.moto()
        let port = TestServers.freePort()
        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        proxy.arguments = ["python3", TestServers.fixtures + "/fault_proxy.py", "--port", "\(port)", "--target", moto.endpoint]
        proxy.standardOutput = FileHandle.nullDevice
        proxy.standardError = FileHandle.nullDevice
        try proxy.run()
        defer { kill(proxy.processIdentifier, SIGKILL); TestServers.waitForExit(proxy, timeout: 60) }
        let endpoint = "http://127.0.0.1:\(port)"
        func fault(_ query: String) async throws { _ = try await TestServers.run(["curl", "-s", "-X", "POST", "\(endpoint)/__fault__?\(query)"]) }
        _ = await eventually(30) { (try? await TestServers.run(["curl", "-sf", "\(endpoint)/__fault__"]))?.status == 0 }
        let (admin, bucket) = try await motoBucket(moto, "chaos")
        let op = try await Operator()
        defer { op.stop() }
        try await op.apply(cluster)
        try await op.applySecret("s3-secret", ["access_key": moto.accessKeyID, "secret_key": moto.secretAccessKey])
        func backup(_ name: String) -> String {
            """
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: \(name), namespace: default}
            spec:
              cleanPolicy: Delete
              backoffRetryPolicy: {maxRetryTimes: 0}
              br: {cluster: basic}
              s3: {provider: aws, region: us-east-1, bucket: \(bucket), prefix: cluster-1/\(name), endpoint: "\(endpoint)", secretName: s3-secret}
            """
        }
        var results: [String] = []
        var pass = true
        for (name, query, expected) in [("bk-503", "mode=503&count=4", BackupConditionType.complete),
                                        ("bk-slow", "mode=slow&seconds=2&count=4", .complete),
                                        ("bk-500", "mode=500&count=-1", .failed)] {
            try await fault(query)
            let started = ContinuousClock.now
            try await op.apply(backup(name))
            let done = try await op.backup(name, reaches: ["Complete", "Failed"], timeout: 180)
            let message = done.status.conditions?.first { $0.type == .failed }?.message ?? ""
            let ok = done.status.phase == expected && (expected == .complete || message.contains("InternalError"))
            pass = pass && ok
            results.append("\(name): \(done.status.phase?.rawValue ?? "-") in \(Self.seconds(ContinuousClock.now - started))\(message.isEmpty ? "" : " (\(message.prefix(80)))")")
            try await fault("mode=ok")
        }
        // The clean of a Complete backup through 503s still deletes everything.
        try await fault("mode=503&count=3")
        _ = try await op.api.delete(Backup.self, namespace: "default", name: "bk-503")
        try await op.gone("bk-503", timeout: 120)
        let left = try await admin.listObjects(bucket: bucket, prefix: "cluster-1/bk-503/").objects.count
        pass = pass && left == 0
        results.append("clean through 503s: \(left) objects left")
        Self.row("S3 503 / slow / 500", pass, results.joined(separator: "; "))
        #expect(pass, "\(results); log: \(op.tail())")
    }
}
