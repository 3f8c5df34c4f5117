import Foundation
import Synchronization
import KubeModel
import KubeTesting
import Testing

@testable import StandaloneServer
import StandaloneTesting

@Suite("Watches over HTTP and job recovery", .serialized)
struct WatchAndRecoveryTests {
    /// Watches here end by their own `timeoutSeconds`; the generous client limit only guards against a
    /// hang, because CPU-heavy suites running in parallel can delay the in-process server by seconds.
    func curl(_ h: Harness, _ path: String, maxTime: Int = 90) async throws -> String {
        let token = try DataDirectory(h.directory).token()
        return try await Harness.runAsync("/usr/bin/env", [
            "curl", "-s", "-N", "--max-time", String(maxTime), "--cacert", DataDirectory(h.directory).certificate,
            "-H", "Authorization: Bearer \(token)", "https://127.0.0.1:\(h.port)\(path)",
        ], timeout: Double(maxTime + 5)).stdout
    }

    var backups: ResourceType { ResourceRegistry.product.find(group: "pingcap.com", version: "v1alpha1", plural: "backups")! }

    func backup(_ name: String) -> JSONValue {
        ["apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "metadata": ["name": .string(name)],
         "spec": ["br": ["cluster": "c"], "s3": ["provider": "aws", "bucket": "b"]]]
    }

    @Test("a watch from a resourceVersion replays later changes, sends bookmarks, and ends at timeoutSeconds")
    func watchFromResourceVersion() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let first = try h.server.core.create(backups, namespace: "default", body: backup("a")).object
        let rv = first.value(at: ["metadata", "resourceVersion"])?.stringValue ?? ""
        _ = try h.server.core.create(backups, namespace: "default", body: backup("b"))
        _ = try h.server.core.delete(backups, namespace: "default", name: "a")
        let out = try await curl(h, "/apis/pingcap.com/v1alpha1/namespaces/default/backups?watch=1&resourceVersion=\(rv)&allowWatchBookmarks=true&timeoutSeconds=3")
        let events = try out.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        let summary = events.map { "\($0["type"]?.stringValue ?? "")/\($0.value(at: ["object", "metadata", "name"])?.stringValue ?? "")" }
        #expect(Array(summary.prefix(2)) == ["ADDED/b", "DELETED/a"])
        #expect(summary.contains("BOOKMARK/"), "\(summary)")
        let bookmark = events.first { $0["type"] == "BOOKMARK" }
        #expect(bookmark?.value(at: ["object", "kind"]) == "Backup")
        #expect(bookmark?.value(at: ["object", "metadata", "resourceVersion"]) != nil)
    }

    @Test("a watch without a resourceVersion starts with ADDED for every object; a too-old one gets a 410 ERROR event")
    func initialAndGone() async throws {
        let dir = Harness.temporaryDirectory()
        // A short history so that early resourceVersions fall out of it.
        _ = try ObjectStore(path: DataDirectory(dir).database, historyLimit: 10)
        let h = try await Harness(directory: dir)
        defer { Task { await h.stop() } }
        for i in 0..<3 { _ = try h.server.core.create(backups, namespace: "default", body: backup("x\(i)")) }
        let initial = try await curl(h, "/apis/pingcap.com/v1alpha1/namespaces/default/backups?watch=1&timeoutSeconds=1")
        #expect(initial.split(separator: "\n").filter { $0.contains("\"ADDED\"") }.count == 3)

        let store = try ObjectStore(path: DataDirectory(dir).database, historyLimit: 10)
        let core = try APIServerCore.product(store: store)
        for i in 0..<1_000 { _ = try core.create(backups, namespace: "default", body: backup("y\(i)")) }
        let gone = try await curl(h, "/apis/pingcap.com/v1alpha1/namespaces/default/backups?watch=1&resourceVersion=2&timeoutSeconds=1")
        let event = try JSONParser.parse(gone.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(event["type"] == "ERROR")
        #expect(event.value(at: ["object", "code"]) == 410)
        #expect(event.value(at: ["object", "reason"]) == "Expired")
    }

    @Test("unknown paths are plain-text 404s; requests without the token get 401; /version needs none")
    func errorsAndAuth() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        #expect(try await curl(h, "/apis/nope.example.com/v1/widgets") == "404 page not found\n")
        #expect(try await curl(h, "/apis/pingcap.com/v1alpha1/namespaces/default/bk") == "404 page not found\n")
        let anonymous = try await Harness.runAsync("/usr/bin/env", ["curl", "-s", "--cacert", DataDirectory(h.directory).certificate,
                                                                    "https://127.0.0.1:\(h.port)/api/v1/namespaces"]).stdout
        #expect(try JSONParser.parse(anonymous)["code"] == 401)
        let version = try await Harness.runAsync("/usr/bin/env", ["curl", "-s", "--cacert", DataDirectory(h.directory).certificate,
                                                                  "https://127.0.0.1:\(h.port)/version"]).stdout
        #expect(try JSONParser.parse(version)["major"] == "1")
        let attributes = try FileManager.default.attributesOfItem(atPath: DataDirectory(h.directory).tokenFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test("after a crash, pods left Running fail with ProcessLost and their Job follows backoffLimit")
    func restartRecovery() async throws {
        let dir = Harness.temporaryDirectory()
        let jobs = ResourceRegistry.product.find(group: "batch", version: "v1", plural: "jobs")!
        let pods = ResourceRegistry.product.find(group: "", version: "v1", plural: "pods")!
        do {
            // The state a killed server leaves: a Job with a Running pod whose process is gone.
            let core = try APIServerCore.product(store: ObjectStore(path: DataDirectory(dir).database))
            let job = try core.create(jobs, namespace: "default", body: [
                "apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": "long"],
                "spec": ["backoffLimit": 0, "template": ["spec": ["containers": [["name": "main", "image": "busybox", "command": ["true"]]]]]],
            ]).object
            let uid = job.value(at: ["metadata", "uid"]) ?? ""
            _ = try core.create(pods, namespace: "default", body: [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": "long-abcde", "labels": ["batch.kubernetes.io/controller-uid": uid, "job-name": "long"],
                             "ownerReferences": [["apiVersion": "batch/v1", "kind": "Job", "name": "long", "uid": uid, "controller": true]]],
                "spec": ["containers": [["name": "main", "image": "busybox", "command": ["true"]]]],
            ])
            _ = try core.patch(pods, namespace: "default", name: "long-abcde", patchType: .merge, patch: ["status": ["phase": "Running"]],
                               subresource: "status")
        }
        let h = try await Harness(directory: dir)
        defer { Task { await h.stop() } }
        #expect(try await eventually {
            let job = try h.server.core.get(jobs, namespace: "default", name: "long")
            return job.value(at: ["status", "conditions"])?.arrayValue?.first?["reason"] == "BackoffLimitExceeded"
        })
        let pod = try h.server.core.get(pods, namespace: "default", name: "long-abcde")
        #expect(pod.value(at: ["status", "phase"]) == "Failed")
        #expect(pod.value(at: ["status", "reason"]) == "ProcessLost")
        #expect(try h.server.core.list(pods, namespace: "default").items.count == 1, "no second attempt with backoffLimit 0")
    }

    @Test("a job process inherits no descriptor of the server: only stdin, stdout and stderr are open")
    func noInheritedDescriptors() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let jobs = ResourceRegistry.product.find(group: "batch", version: "v1", plural: "jobs")!
        // ls, a child of the job's shell, lists the shell's descriptors ($$ is the shell). No pipe: the
        // shell would hold its ends while ls runs; `; :` keeps the shell from exec-ing into ls.
        _ = try h.server.core.create(jobs, namespace: "default", body: [
            "apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": "fds"],
            "spec": ["template": ["spec": ["containers": [["name": "main", "image": "busybox",
                                                              "command": ["sh", "-c", "ls /proc/$$/fd; :"]]]]]],
        ])
        #expect(try await eventually(30) {
            try h.server.core.get(jobs, namespace: "default", name: "fds").value(at: ["status", "succeeded"]) == 1
        })
        let log = try await h.kubectl(["logs", "job/fds"]).stdout
        let fds = Set(log.split(whereSeparator: \.isWhitespace).map(String.init))
        #expect(fds == ["0", "1", "2"], "open in the job process: \(log)")
    }

    @Test("after a crash, a job process of the previous run is stopped (its whole group) before its pod is marked ProcessLost")
    func orphanStopped() async throws {
        let dir = Harness.temporaryDirectory()
        let jobs = ResourceRegistry.product.find(group: "batch", version: "v1", plural: "jobs")!
        let pods = ResourceRegistry.product.find(group: "", version: "v1", plural: "pods")!
        // The previous run's job process: a shell leading its own group with a child, started as the
        // job runner starts them.
        let process = try LocalProcess(executable: "/bin/sh", arguments: ["-c", "sleep 3600 & wait"], environment: ["PATH": "/usr/bin:/bin"],
                                       directory: dir, logPath: dir + "/orphan.log") { _, _ in }
        let orphan = process.pid
        try await Task.sleep(for: .milliseconds(200))
        let record = try #require(ProcessRecord.of(orphan))
        #expect(record.processGroup == orphan)
        #expect(record.livingMembers().count == 2, "the shell and its sleep")
        do {
            let core = try APIServerCore.product(store: ObjectStore(path: DataDirectory(dir).database))
            let job = try core.create(jobs, namespace: "default", body: [
                "apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": "left"],
                "spec": ["backoffLimit": 0, "template": ["spec": ["containers": [["name": "main", "image": "busybox", "command": ["true"]]]]]],
            ]).object
            let uid = job.value(at: ["metadata", "uid"]) ?? ""
            _ = try core.create(pods, namespace: "default", body: [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": "left-abcde", "labels": ["batch.kubernetes.io/controller-uid": uid, "job-name": "left"],
                             "annotations": [ProcessRecord.annotation: .string(record.annotationValue)],
                             "ownerReferences": [["apiVersion": "batch/v1", "kind": "Job", "name": "left", "uid": uid, "controller": true]]],
                "spec": ["containers": [["name": "main", "image": "busybox", "command": ["true"]]]],
            ])
            _ = try core.patch(pods, namespace: "default", name: "left-abcde", patchType: .merge, patch: ["status": ["phase": "Running"]],
                               subresource: "status")
        }
        let h = try await Harness(directory: dir)
        defer { Task { await h.stop() } }
        #expect(try await eventually(30) {
            try h.server.core.get(pods, namespace: "default", name: "left-abcde").value(at: ["status", "reason"]) == "ProcessLost"
        })
        #expect(await eventually(10) { record.livingMembers().isEmpty }, "no process of the previous run is left")
    }

    @Test("a recorded process group whose number was given again (pid wrap-around) is not the job's: nothing in it is stopped")
    func reusedGroupIsNotAnOrphan() {
        let record = ProcessRecord(boot: "b", processGroup: 4242, startTicks: 1000)
        let ours = [ProcessTable.Entry(pid: 4242, processGroup: 4242, startTicks: 1000), .init(pid: 4300, processGroup: 4242, startTicks: 1005),
                    .init(pid: 77, processGroup: 77, startTicks: 10)]
        #expect(record.livingMembers(in: ours, boot: "b") == [4242, 4300])
        // The leader is gone; the tool it started lives on in the group.
        #expect(record.livingMembers(in: Array(ours.dropFirst()), boot: "b") == [4300])
        // Later the number 4242 leads another group (say mariadb-install-db started by Foundation's Process).
        let reused = [ProcessTable.Entry(pid: 4242, processGroup: 4242, startTicks: 90_000), .init(pid: 4250, processGroup: 4242, startTicks: 90_001)]
        #expect(record.livingMembers(in: reused, boot: "b").isEmpty)
        #expect(record.livingMembers(in: ours, boot: "another boot").isEmpty)
    }

    @Test("a job process's leftovers end with it, as a container's do: a tool it started in the background is killed when it exits")
    func leftoversEndWithTheMainProcess() async throws {
        let dir = Harness.temporaryDirectory()
        let exited = Mutex(false)
        let process = try LocalProcess(executable: "/bin/sh", arguments: ["-c", "sleep 3602.5 & exit 0"], environment: ["PATH": "/usr/bin:/bin"],
                                       directory: dir, logPath: dir + "/leftover.log") { _, _ in exited.withLock { $0 = true } }
        _ = process
        func sleeping() async throws -> Bool {
            try await Harness.runAsync("/bin/sh", ["-c", "ps -eo args | grep -c '^sleep 3602.5$'"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) != "0"
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !exited.withLock({ $0 }) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(exited.withLock { $0 })
        var gone = false
        while ContinuousClock.now < deadline {
            if try await !sleeping() { gone = true; break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(gone, "the background sleep outlived the job process")
    }

    @Test("a watch that starts while the server stops ends at once")
    func watchAfterStop() async {
        let hub = WatchHub()
        let (open, _) = hub.subscribe("/pods")
        hub.finishAll()
        let (late, _) = hub.subscribe("/pods")
        for await _ in open {}
        #expect(hub.watcherCount("/pods") == 0, "a late watch is not kept open")
        var iterator = late.makeAsyncIterator()
        #expect(await iterator.next() == nil)
    }

    @Test("activeDeadlineSeconds stops a Job that runs too long")
    func deadline() async throws {
        let h = try await Harness(jobs: { var c = JobRunner.Configuration(); c.terminationGrace = .seconds(1); return c }())
        defer { Task { await h.stop() } }
        let jobs = ResourceRegistry.product.find(group: "batch", version: "v1", plural: "jobs")!
        _ = try h.server.core.create(jobs, namespace: "default", body: [
            "apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": "slow"],
            "spec": ["activeDeadlineSeconds": 1, "template": ["spec": ["containers": [["name": "main", "image": "busybox", "command": ["sleep", "3601.5"]]]]]],
        ])
        #expect(try await eventually {
            try h.server.core.get(jobs, namespace: "default", name: "slow").value(at: ["status", "conditions"])?.arrayValue?.first?["reason"]
                == "DeadlineExceeded"
        })
        #expect(try await eventually(5) {
            try await Harness.runAsync("/bin/sh", ["-c", "ps -eo args | grep -c 'sleep 3601.5$'"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0"
        })
    }

    @Test("no more than maxConcurrentJobs processes run at once; the rest wait")
    func concurrencyLimit() async throws {
        let h = try await Harness(jobs: { var c = JobRunner.Configuration(); c.maxConcurrentJobs = 2; return c }())
        defer { Task { await h.stop() } }
        let jobs = ResourceRegistry.product.find(group: "batch", version: "v1", plural: "jobs")!
        for i in 0..<4 {
            _ = try h.server.core.create(jobs, namespace: "default", body: [
                "apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": .string("j\(i)")],
                "spec": ["template": ["spec": ["containers": [["name": "main", "image": "busybox", "command": ["sleep", "1.2"]]]]]],
            ])
        }
        var maxSeen = 0
        let allDone = try await eventually(30) {
            let running = try await Harness.runAsync("/bin/sh", ["-c", "ps -eo args | grep -c '^/usr/bin/sleep 1.2$'"]).stdout
            maxSeen = max(maxSeen, Int(running.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
            return try (0..<4).allSatisfy { i in
                try h.server.core.get(jobs, namespace: "default", name: "j\(i)").value(at: ["status", "succeeded"]) == 1
            }
        }
        #expect(allDone)
        #expect(maxSeen <= 2)
        #expect(maxSeen >= 1)
    }
}

@Suite("Standalone: volume mounts of a job process, and the store's group commit")
struct VolumeAndGroupCommitTests {
    @Test("a Job's claim, emptyDir and Secret volumes are local directories named in STANDALONE_VOLUME_MOUNTS; Secret keys are 0600 files; a deleted claim takes its directory")
    func volumeMounts() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let registry = ResourceRegistry.product
        let jobs = registry.find(group: "batch", version: "v1", plural: "jobs")!
        let secrets = registry.find(group: "", version: "v1", plural: "secrets")!
        let claims = registry.find(group: "", version: "v1", plural: "persistentvolumeclaims")!
        _ = try h.server.core.create(secrets, namespace: "default", body: [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "creds"], "data": ["token": .string(Data("s3cr3t".utf8).base64EncodedString())]])
        _ = try h.server.core.create(claims, namespace: "default", body: [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": "data"],
            "spec": ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "1Gi"]]]])
        // The job finds each mount's directory in the variable, writes to the claim, reads the Secret.
        let script = """
            dir() { printf '%s\\n' "$STANDALONE_VOLUME_MOUNTS" | sed -n "s|^$1=||p"; }
            echo kept > "$(dir /data)/file"; ls -d "$(dir /scratch)"
            echo "token=$(cat "$(dir /etc/creds)/token") mode=$(stat -c %a "$(dir /etc/creds)/token")"
            """
        _ = try h.server.core.create(jobs, namespace: "default", body: [
            "apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": "mounts"],
            "spec": ["backoffLimit": 0, "template": ["spec": [
                "volumes": [["name": "data", "persistentVolumeClaim": ["claimName": "data"]], ["name": "scratch", "emptyDir": [:]],
                            ["name": "creds", "secret": ["secretName": "creds"]]],
                "containers": [["name": "main", "image": "busybox", "command": ["sh", "-c", .string(script)],
                                "volumeMounts": [["name": "data", "mountPath": "/data"], ["name": "scratch", "mountPath": "/scratch"],
                                                 ["name": "creds", "mountPath": "/etc/creds"]]]]]]],
        ])
        #expect(try await eventually(30) {
            try h.server.core.get(jobs, namespace: "default", name: "mounts").value(at: ["status", "succeeded"]) == 1
        })
        let log = try await h.kubectl(["logs", "job/mounts"]).stdout
        #expect(log.contains("token=s3cr3t mode=600"), "\(log)")
        let claimDirectory = JobRunner.claimDirectory(volumesRoot: h.directory + "/volumes", namespace: "default", claim: "data")
        #expect((try? String(contentsOfFile: claimDirectory + "/file", encoding: .utf8)) == "kept\n", "the claim outlives the Job")
        _ = try h.server.core.delete(claims, namespace: "default", name: "data")
        #expect(try await eventually(10) { !FileManager.default.fileExists(atPath: claimDirectory) })
    }

    @Test("a pod that cannot start stays Pending with Kubernetes' reason (a missing claim: Unschedulable; no executable for the image: ErrImagePull; a missing Secret: CreateContainerConfigError) and starts once what it lacks appears")
    func podsWaitForWhatTheyLack() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        let registry = ResourceRegistry.product
        let jobs = registry.find(group: "batch", version: "v1", plural: "jobs")!
        let pods = registry.find(group: "", version: "v1", plural: "pods")!
        let secrets = registry.find(group: "", version: "v1", plural: "secrets")!
        let claims = registry.find(group: "", version: "v1", plural: "persistentvolumeclaims")!
        func job(_ name: String, image: String = "busybox", volumes: [JSONValue] = [], env: [JSONValue] = []) -> JSONValue {
            ["apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": .string(name)],
             "spec": ["backoffLimit": 0, "template": ["spec": [
                 "volumes": .array(volumes),
                 "containers": [["name": "main", "image": .string(image), "command": ["sh", "-c", "echo ran"], "env": .array(env),
                                 "volumeMounts": .array(volumes.map { ["name": $0["name"]!, "mountPath": "/mnt/x"] })]]]]]]
        }
        _ = try h.server.core.create(jobs, namespace: "default", body: job("claim", volumes: [["name": "data", "persistentVolumeClaim": ["claimName": "later"]]]))
        // The image maps to nothing, and the command is not an executable this machine has either.
        var noTool = job("tool")
        noTool["spec"]?["template"]?["spec"]?["containers"] = [["name": "main", "image": "registry.example/none:v1", "command": ["no-such-tool-here"]]]
        _ = try h.server.core.create(jobs, namespace: "default", body: noTool)
        _ = try h.server.core.create(jobs, namespace: "default", body: job("secret", env: [["name": "KEY", "valueFrom": ["secretKeyRef": ["name": "later", "key": "k"]]]]))
        func pod(_ job: String) throws -> JSONValue? {
            try h.server.core.list(pods, namespace: "default").items.first { $0.value(at: ["metadata", "labels", "job-name"]) == .string(job) }
        }
        func scheduled(_ p: JSONValue?) -> JSONValue? { (p?.value(at: ["status", "conditions"])?.arrayValue ?? []).first { $0["type"] == "PodScheduled" } }
        func waiting(_ p: JSONValue?) -> String { p?.value(at: ["status", "containerStatuses"])?.arrayValue?.first?.value(at: ["state", "waiting", "reason"])?.stringValue ?? "" }
        #expect(try await eventually(20) { scheduled(try pod("claim"))?["reason"] == "Unschedulable" })
        let claimPod = try pod("claim")
        #expect(claimPod?.value(at: ["status", "phase"]) == "Pending")
        #expect(scheduled(claimPod)?["message"] == "persistentvolumeclaim \"later\" not found", "\(String(describing: claimPod))")
        #expect(try await eventually(20) { waiting(try pod("tool")) == "ErrImagePull" })
        #expect(try await eventually(20) { waiting(try pod("secret")) == "CreateContainerConfigError" })
        let secretPod = try pod("secret")
        #expect(secretPod?.value(at: ["status", "containerStatuses"])?.arrayValue?.first?.value(at: ["state", "waiting", "message"])?.stringValue?.contains("secret \"later\"") == true)
        // Nothing failed meanwhile: Kubernetes keeps such pods Pending, the Job neither fails nor starts another.
        for name in ["claim", "tool", "secret"] {
            let j = try h.server.core.get(jobs, namespace: "default", name: name)
            #expect(j.value(at: ["status", "failed"]) == nil && j.value(at: ["status", "conditions"]) == nil, "\(name): \(j)")
            #expect(try h.server.core.list(pods, namespace: "default").items.filter { $0.value(at: ["metadata", "labels", "job-name"]) == .string(name) }.count == 1)
        }
        // What they lack appears: they start and complete.
        _ = try h.server.core.create(claims, namespace: "default", body: [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": "later"],
            "spec": ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "1Gi"]]]])
        _ = try h.server.core.create(secrets, namespace: "default", body: [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "later"], "data": ["k": .string(Data("v".utf8).base64EncodedString())]])
        for name in ["claim", "secret"] {
            #expect(try await eventually(30) { try h.server.core.get(jobs, namespace: "default", name: name).value(at: ["status", "succeeded"]) == 1 }, "\(name)")
            #expect(scheduled(try pod(name))?["status"] == "True")
        }
        #expect(waiting(try pod("tool")) == "ErrImagePull", "still no executable")
    }

    @Test("concurrent writes share transactions: a write that fails changes nothing and fails alone; every other is stored with its own resourceVersion")
    func groupCommit() throws {
        let dir = Harness.temporaryDirectory()
        let store = try ObjectStore(path: dir + "/s.sqlite")
        struct Refused: Error {}
        let outcomes = Mutex<[Int: Int64]>([:])
        DispatchQueue.concurrentPerform(iterations: 400) { i in
            let event = try? store.write("/configmaps", namespace: "ns", name: "cm-\(i)") { _ in
                if i % 5 == 0 { throw Refused() }
                return ["metadata": ["name": .string("cm-\(i)"), "namespace": "ns", "uid": .string("u\(i)")], "data": ["i": .string("\(i)")]]
            }
            if let rv = event?.resourceVersion { outcomes.withLock { $0[i] = rv } }
        }
        let written = outcomes.withLock { $0 }
        #expect(written.count == 320 && written.keys.allSatisfy { $0 % 5 != 0 })
        #expect(Set(written.values).count == 320, "one resourceVersion per write")
        for i in 0..<400 {
            let stored = try store.get("/configmaps", namespace: "ns", name: "cm-\(i)")
            #expect((stored == nil) == (i % 5 == 0), "cm-\(i)")
            if let stored { #expect(stored.value(at: ["metadata", "resourceVersion"])?.stringValue == String(written[i] ?? -1)) }
        }
    }
}

@Suite struct JobProcessDirectoryTests {
    /// Runs `executable` in a new directory; returns the directory and what the process printed.
    func run(_ executable: String) async throws -> (String, [String]) {
        let dir = Harness.temporaryDirectory()
        let work = dir + "/work dir"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let exited = AsyncStream.makeStream(of: Int32.self)
        _ = try LocalProcess(executable: executable, arguments: ["-c", "pwd; echo \"$PWD\""], environment: ["PATH": "/usr/bin:/bin", "PWD": "/elsewhere"],
                             directory: work, logPath: dir + "/log") { code, _ in
            exited.continuation.yield(code)
            exited.continuation.finish()
        }
        var code: Int32?
        for await c in exited.stream { code = c }
        #expect(code == 0)
        let log = try String(contentsOfFile: dir + "/log", encoding: .utf8)
        return (work, log.split(separator: "\n").map(String.init))
    }

    @Test("a job process starts in its working directory with PWD saying so: by path (glibc's chdir action) and by name (through a shell)")
    func workingDirectory() async throws {
        for executable in ["/bin/sh", "sh"] {
            let (work, lines) = try await run(executable)
            #expect(lines == [work, work], "\(executable): \(lines)")
        }
    }
}
