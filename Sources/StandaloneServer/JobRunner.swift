import Foundation
import KubeModel
import Logging
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Runs batch/v1 Jobs as local processes: one Pod object per attempt, the pod template's main container
/// command run with its environment (Secret and ConfigMap references resolved from the store) in a
/// working directory of its own, output kept as the pod log, and Job status kept as the job controller
/// keeps it (active, succeeded, failed, start and completion times, Complete / Failed conditions,
/// `backoffLimit`, `activeDeadlineSeconds`).
public actor JobRunner {
    public struct Configuration: Sendable {
        /// How many processes run at once; more Jobs wait with a Pending pod.
        public var maxConcurrentJobs: Int = 4
        /// Executables that stand for images: the first entry whose key is contained in the image wins.
        public var images: [(imageContains: String, executable: String)] = []
        /// Directories searched for a container command's executable before PATH.
        public var searchPaths: [String] = [JobRunner.siblingDirectory]
        /// Time between SIGTERM and SIGKILL when a Job is deleted or runs past its deadline.
        public var terminationGrace: Duration = .seconds(10)
        /// Variables every local process gets unless its container sets them: how a job reaches this
        /// server (`KUBECONFIG`), as a pod reaches the API through its service-account mount.
        public var baseEnvironment: [String: String] = [:]
        public init() {}
    }

    /// The directory of the running executable (where `tidb-backup-manager` sits beside the operator).
    public static var siblingDirectory: String {
        (CommandLine.arguments.first.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().deletingLastPathComponent().path }) ?? "."
    }

    /// The runner's own thread. Its writes to the store wait for their commit, and it starts
    /// processes and makes directories: on a thread of its own that waiting never holds up Swift's
    /// cooperative threads (one per core), which serve the requests and the controllers.
    static let thread = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
    public nonisolated var unownedExecutor: UnownedSerialExecutor { Self.thread.executor.asUnownedSerialExecutor() }

    let core: APIServerCore
    let configuration: Configuration
    let workRoot: String
    /// The kubelet's part: a container's program, environment and volumes on this machine.
    var setup: ContainerSetup { ContainerSetup(core: core, configuration: configuration, workRoot: workRoot) }
    let logger: Logger
    var running: [String: LocalProcess] = [:]  // pod key -> process
    /// Unfinished Jobs with `activeDeadlineSeconds`: besides Jobs with a running process, the only
    /// ones the periodic pass looks at.
    var deadlineJobs: Set<String> = []
    var killRequested: Set<String> = []
    /// Jobs with a Pending pod that waits for a free slot, oldest first.
    var waiting: [String] = []
    var waitingSet: Set<String> = []

    var hasFreeSlot: Bool { running.values.filter(\.isRunning).count < configuration.maxConcurrentJobs }

    func wait(_ job: JSONValue) {
        let key = Self.key(job)
        if waitingSet.insert(key).inserted { waiting.append(key) }
    }

    /// Starts waiting Jobs while slots are free.
    func startWaiting() async {
        while hasFreeSlot, !waiting.isEmpty {
            let key = waiting.removeFirst()
            waitingSet.remove(key)
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            try? await reconcile(namespace: parts[0], name: parts[1])
        }
    }

    public init(core: APIServerCore, workRoot: String, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "job-runner")) {
        self.core = core
        self.configuration = configuration
        self.workRoot = workRoot
        self.logger = logger
    }

    var jobType: ResourceType { core.registry.find(group: "batch", version: "v1", plural: "jobs")! }
    var podType: ResourceType { core.registry.find(group: "", version: "v1", plural: "pods")! }

    /// Watches Jobs and Pods until cancelled.
    public func run() async throws {
        try await recoverAfterRestart()
        let (jobs, cancelJobs) = core.hub.subscribe(jobType.key)
        let (pods, cancelPods) = core.hub.subscribe(podType.key)
        let claimType = core.registry.find(group: "", version: "v1", plural: "persistentvolumeclaims")!
        let (claims, cancelClaims) = core.hub.subscribe(claimType.key)
        defer {
            cancelJobs()
            cancelPods()
            cancelClaims()
        }
        try await reconcileAll()
        await withTaskGroup(of: Void.self) { group in
            // Job changes are taken off the hub at once and coalesced by key: the runner looks at a
            // Job's current state anyway, so ten changes queued while it launched a process cost one
            // look, and no change event (with its whole object) waits in memory meanwhile.
            let pending = PendingKeys()
            group.addTask {
                for await e in jobs { pending.add(e.namespace, e.name, rv: e.resourceVersion, deleted: e.kind == .deleted) }
                pending.finish()
            }
            group.addTask {
                while let next = await pending.next() { await self.jobChanged(next) }
            }
            group.addTask {
                for await e in pods {
                    if e.kind == .deleted {
                        await self.podDeleted(e)
                    } else if e.kind == .modified && e.object.value(at: ["metadata", "deletionTimestamp"]) != nil {
                        await self.podDeleting(e)
                    }
                }
            }
            group.addTask {
                // A deleted claim takes its directory with it (the Delete reclaim policy).
                for await e in claims where e.kind == .deleted { await self.claimDeleted(namespace: e.namespace, name: e.name) }
            }
            group.addTask {
                // Deadlines and waiting jobs are looked at every second too.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    try? await self.reconcileTimed()
                }
            }
            await group.waitForAll()
        }
        for (_, p) in running where p.isRunning { p.signal(SIGTERM) }
    }

    static func key(_ o: JSONValue) -> String {
        "\(o.value(at: ["metadata", "namespace"])?.stringValue ?? "")/\(o.value(at: ["metadata", "name"])?.stringValue ?? "")"
    }

    /// Pods left Running or Pending by a previous server process. Their processes may still run (a
    /// crash does not take its children along): those of the previous run are found by the record on
    /// the pod and stopped like a deleted pod's (SIGTERM to the group, which lets the job binary put the
    /// GC life time back and write its result, then SIGKILL after the grace period). The pods then fail
    /// with `ProcessLost`, and their Jobs follow `backoffLimit`, so each backup has one outcome.
    func recoverAfterRestart() async throws {
        var lost: [JSONValue] = []
        var orphans: [ProcessRecord] = []
        for pod in try core.list(podType, namespace: nil).items {
            let phase = pod.value(at: ["status", "phase"])?.stringValue ?? ""
            guard phase == "Running" || phase == "Pending" else { continue }
            lost.append(pod)
            if let value = pod.value(at: ["metadata", "annotations", ProcessRecord.annotation])?.stringValue,
               let record = ProcessRecord(annotationValue: value), !record.livingMembers().isEmpty {
                orphans.append(record)
            }
        }
        if !orphans.isEmpty {
            logger.warning("stopping job processes left by the previous run", metadata: ["groups": "\(orphans.map(\.processGroup))"])
            for record in orphans { for pid in record.livingMembers() { kill(pid, SIGTERM) } }
            let deadline = ContinuousClock.now + configuration.terminationGrace
            while ContinuousClock.now < deadline, orphans.contains(where: { !$0.livingMembers().isEmpty }) {
                try? await Task.sleep(for: .milliseconds(100))
            }
            for record in orphans { for pid in record.livingMembers() { kill(pid, SIGKILL) } }
        }
        for pod in lost {
            _ = try core.patch(podType, namespace: pod.value(at: ["metadata", "namespace"])?.stringValue,
                               name: pod.value(at: ["metadata", "name"])?.stringValue ?? "", patchType: .merge,
                               patch: ["status": ["phase": "Failed", "reason": "ProcessLost",
                                                  "message": "the standalone server restarted while this pod's process was running"]],
                               subresource: "status")
        }
        // Pods whose deletion waited for a process that is now gone.
        for pod in try core.list(podType, namespace: nil).items where pod.value(at: ["metadata", "deletionTimestamp"]) != nil {
            releaseProcessFinalizer(pod.value(at: ["metadata", "namespace"])?.stringValue ?? "", pod.value(at: ["metadata", "name"])?.stringValue ?? "")
        }
    }

    /// A pod that runs a process carries this finalizer, so that deleting it (or its Job, in the
    /// foreground) completes only once the process has exited, as a kubelet confirms a container's end
    /// before the pod object goes. Without it, a deleted Job would be gone while its process still ran.
    public static let processFinalizer = "tidb-backup-operator.pingcap.com/local-process"

    /// A pod marked for deletion: its process is stopped, and the pod goes when it has exited.
    func podDeleting(_ e: StoredEvent) {
        let key = "\(e.namespace)/\(e.name)"
        if let p = running[key], p.isRunning {
            if !killRequested.contains(key) { terminate(key, p) }
        } else {
            releaseProcessFinalizer(e.namespace, e.name)
        }
    }

    func releaseProcessFinalizer(_ ns: String, _ name: String) {
        // A concurrent change (the garbage collector marking it, a status write) makes the guarded patch
        // conflict: read again and retry, or the pod — and a Job deleted in the foreground — would stay.
        for _ in 0..<10 {
            guard let pod = try? core.get(podType, namespace: ns, name: name),
                  pod.value(at: ["metadata", "deletionTimestamp"]) != nil else { return }
            let finalizers = pod.value(at: ["metadata", "finalizers"])?.arrayValue ?? []
            guard finalizers.contains(.string(Self.processFinalizer)) else { return }
            do {
                _ = try core.patch(podType, namespace: ns, name: name, patchType: .merge,
                                   patch: ["metadata": ["finalizers": .array(finalizers.filter { $0 != .string(Self.processFinalizer) }),
                                                        "resourceVersion": pod.value(at: ["metadata", "resourceVersion"]) ?? .null]])
                return
            } catch {
                logger.debug("releasing the process finalizer again", metadata: ["pod": "\(ns)/\(name)", "error": "\(error)"])
            }
        }
        logger.warning("could not release the process finalizer", metadata: ["pod": "\(ns)/\(name)"])
    }

    func podDeleted(_ e: StoredEvent) {
        let key = "\(e.namespace)/\(e.name)"
        logger.debug("pod deleted", metadata: ["pod": "\(key)", "running": "\(running[key]?.isRunning ?? false)"])
        if let p = running[key], p.isRunning { terminate(key, p) }
    }

    func terminate(_ key: String, _ p: LocalProcess) {
        killRequested.insert(key)
        p.signal(SIGTERM)
        let grace = configuration.terminationGrace
        Task {
            try? await Task.sleep(for: grace)
            p.signal(SIGKILL)
        }
    }

    /// Looks at every Job that is not finished (finished ones need nothing unless a process of theirs
    /// still runs): new Jobs waiting for a free slot, deadlines.
    func reconcileAll() async throws {
        for job in try core.list(jobType, namespace: nil).items where !Self.isFinished(job) || hasProcess(job) { try reconcile(job) }
        await startWaiting()
    }

    /// The periodic pass: only Jobs that have something time-based (a deadline) or a process to watch,
    /// found from memory — reading every Job each second would cost more the more Jobs are kept.
    func reconcileTimed() async throws {
        var keys = deadlineJobs
        // Blocked pods are tried again every few seconds: a claim, a Secret or an executable may have appeared.
        if !blocked.isEmpty, Date().timeIntervalSince(lastBlockedTry) >= 3 {
            lastBlockedTry = Date()
            keys.formUnion(blocked)
        }
        for podKey in running.keys {
            let parts = podKey.split(separator: "/", maxSplits: 1)
            guard parts.count == 2, parts[1].count > 6 else { continue }
            keys.insert("\(parts[0])/\(parts[1].dropLast(6))")
        }
        for key in keys.sorted() {
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            try await reconcile(namespace: parts[0], name: parts[1])
        }
        await startWaiting()
    }

    /// The resourceVersion of each Job's status as this runner last wrote it: the change event of
    /// its own write needs no second look (it would compute the same status from the same pods).
    var ownWrites: [String: Int64] = [:]

    func jobChanged(_ e: PendingKeys.Change) async {
        let key = "\(e.namespace)/\(e.name)"
        let own = ownWrites.removeValue(forKey: key)
        if e.deleted || own == e.resourceVersion { return }
        try? await reconcile(namespace: e.namespace, name: e.name)
    }

    func reconcile(namespace: String, name: String) async throws {
        guard let job = try? core.get(jobType, namespace: namespace, name: name) else {
            deadlineJobs.remove("\(namespace)/\(name)")
            blocked.remove("\(namespace)/\(name)")
            return
        }
        try reconcile(job)
    }

    static func isFinished(_ job: JSONValue) -> Bool {
        (job.value(at: ["status", "conditions"])?.arrayValue ?? []).contains {
            ($0["type"] == "Complete" || $0["type"] == "Failed") && $0["status"] == "True"
        }
    }

    func hasProcess(_ job: JSONValue) -> Bool {
        let prefix = "\(job.value(at: ["metadata", "namespace"])?.stringValue ?? "")/\(job.value(at: ["metadata", "name"])?.stringValue ?? "")-"
        return running.keys.contains { $0.hasPrefix(prefix) }
    }

    /// The Job's pods: named `<job>-<suffix>`, so found through the name index, then checked by owner uid.
    func podsOf(_ job: JSONValue) throws -> [JSONValue] {
        let uid = job.value(at: ["metadata", "uid"])?.stringValue ?? ""
        let ns = job.value(at: ["metadata", "namespace"])?.stringValue ?? ""
        let name = job.value(at: ["metadata", "name"])?.stringValue ?? ""
        return try core.store.list(podType.key, namespace: ns, namePrefix: name + "-").filter {
            $0.value(at: ["metadata", "labels", "batch.kubernetes.io/controller-uid"])?.stringValue == uid
        }
    }

    func reconcile(_ job: JSONValue) throws {
        let ns = job.value(at: ["metadata", "namespace"])?.stringValue ?? ""
        let name = job.value(at: ["metadata", "name"])?.stringValue ?? ""
        let conditions = job.value(at: ["status", "conditions"])?.arrayValue ?? []
        let finished = conditions.contains { ($0["type"] == "Complete" || $0["type"] == "Failed") && $0["status"] == "True" }
        if job.value(at: ["spec", "activeDeadlineSeconds"]) != nil && !finished && job.value(at: ["metadata", "deletionTimestamp"]) == nil {
            deadlineJobs.insert("\(ns)/\(name)")
        } else {
            deadlineJobs.remove("\(ns)/\(name)")
        }
        let pods = try podsOf(job)
        let active = pods.filter { ["Pending", "Running"].contains($0.value(at: ["status", "phase"])?.stringValue ?? "Pending") }
        if job.value(at: ["metadata", "deletionTimestamp"]) != nil || finished {
            blocked.remove(Self.key(job))
            for pod in active { if let p = running[Self.key(pod)], p.isRunning { terminate(Self.key(pod), p) } }
            return
        }
        let succeeded = pods.filter { $0.value(at: ["status", "phase"]) == "Succeeded" }.count
        let failed = pods.filter { $0.value(at: ["status", "phase"]) == "Failed" }.count
        var status = job["status"]?.objectValue ?? JSONObject()
        let now = Time(Date()).description
        if status["startTime"] == nil { status["startTime"] = .string(now) }
        status["active"] = active.isEmpty ? nil : .int(Int64(active.count))
        status["succeeded"] = succeeded == 0 ? nil : .int(Int64(succeeded))
        status["failed"] = failed == 0 ? nil : .int(Int64(failed))
        let backoffLimit: Int64 = { if case .int(let v)? = job.value(at: ["spec", "backoffLimit"]) { return v }; return 6 }()
        var terminal: (String, String, String)?
        if succeeded > 0 {
            terminal = ("Complete", "", "")
        } else if Int64(failed) > backoffLimit {
            terminal = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        } else if case .int(let deadline)? = job.value(at: ["spec", "activeDeadlineSeconds"]),
                  let start = status["startTime"]?.stringValue.flatMap(Time.init(rfc3339:)),
                  Int64(Date().timeIntervalSince1970) - start.unixSeconds > deadline {
            terminal = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
            for pod in active { if let p = running[Self.key(pod)], p.isRunning { terminate(Self.key(pod), p) } }
        }
        if let (type, reason, message) = terminal {
            var c: JSONObject = ["type": .string(type), "status": "True", "lastProbeTime": .string(now), "lastTransitionTime": .string(now)]
            if !reason.isEmpty { c["reason"] = .string(reason); c["message"] = .string(message) }
            status["conditions"] = .array(conditions + [.object(c)])
            if type == "Complete" { status["completionTime"] = .string(now) }
            status["active"] = nil
        } else if active.isEmpty {
            try startPod(job, attempt: failed)
            status["active"] = 1
        } else {
            for pod in active where pod.value(at: ["status", "phase"]) == "Pending" && running[Self.key(pod)] == nil {
                if hasFreeSlot { try launch(pod, job: job) } else { try queue(pod, job: job) }
            }
        }
        if .object(status) != (job["status"] ?? .emptyObject) {
            // A merge patch keeps a key it does not name: one the new status drops (`active` once the
            // Job has finished) is removed by naming it with null.
            var patch = status
            for (key, _) in job["status"]?.objectValue ?? JSONObject() where status[key] == nil { patch[key] = .null }
            let written = try core.patch(jobType, namespace: ns, name: name, patchType: .merge, patch: ["status": .object(patch)], subresource: "status")
            if let rv = written.object.value(at: ["metadata", "resourceVersion"])?.stringValue.flatMap({ Int64($0) }) {
                ownWrites["\(ns)/\(name)"] = rv
            }
        }
    }

    func startPod(_ job: JSONValue, attempt: Int) throws {
        let ns = job.value(at: ["metadata", "namespace"])?.stringValue ?? ""
        let jobName = job.value(at: ["metadata", "name"])?.stringValue ?? ""
        let podName = "\(jobName)-\(String(UUID().uuidString.lowercased().filter { $0.isLetter || $0.isNumber }.prefix(5)))"
        let dir = "\(workRoot)/\(ns)/\(podName)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var meta = job.value(at: ["spec", "template", "metadata"])?.objectValue ?? JSONObject()
        meta["name"] = .string(podName)
        meta["namespace"] = .string(ns)
        var annotations = meta["annotations"]?.objectValue ?? JSONObject()
        annotations[PodLogs.annotation] = .string("\(dir)/log")
        meta["annotations"] = .object(annotations)
        meta["ownerReferences"] = [["apiVersion": "batch/v1", "kind": "Job", "name": .string(jobName),
                                    "uid": job.value(at: ["metadata", "uid"]) ?? "", "controller": true, "blockOwnerDeletion": true]]
        let pod: JSONValue = ["apiVersion": "v1", "kind": "Pod", "metadata": .object(meta),
                              "spec": job.value(at: ["spec", "template", "spec"]) ?? .emptyObject]
        let created = try core.create(podType, namespace: ns, body: pod).object
        if hasFreeSlot { try launch(created, job: job) } else { try queue(created, job: job) }
    }

    /// Jobs whose Pending pod is blocked, tried again by the periodic pass.
    var blocked: Set<String> = []
    var lastBlockedTry = Date.distantPast

    /// Starts the main container's process for a Pending pod.
    func launch(_ pod: JSONValue, job: JSONValue) throws {
        let ns = pod.value(at: ["metadata", "namespace"])?.stringValue ?? ""
        let podName = pod.value(at: ["metadata", "name"])?.stringValue ?? ""
        let key = "\(ns)/\(podName)"
        let logPath = pod.value(at: ["metadata", "annotations", PodLogs.annotation])?.stringValue ?? "\(workRoot)/\(ns)/\(podName)/log"
        let dir = (logPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: logPath) { FileManager.default.createFile(atPath: logPath, contents: nil) }
        guard let container = pod.value(at: ["spec", "containers"])?.arrayValue?.first else {
            try finishPod(ns, podName, exitCode: 127, reason: "NoContainer", message: "the pod template has no containers")
            return
        }
        let command = (container["command"]?.arrayValue ?? []).compactMap(\.stringValue)
        let args = (container["args"]?.arrayValue ?? []).compactMap(\.stringValue)
        let argv = command + args
        let image = container["image"]?.stringValue ?? ""
        let executable: String
        var env: [String: String]
        do {
            // In the order a pod meets them: scheduling (its claims), the image, the container's configuration.
            try setup.requireClaims(pod)
            guard let found = setup.resolveExecutable(image: image, argv: argv) else {
                throw StartBlock(scheduled: true, reason: "ErrImagePull",
                                 message: "no local executable stands for image \(image) (command \(argv.first ?? "<none>")); map one with --image or --tool-path")
            }
            executable = found
            do {
                env = try setup.environment(container, pod: pod)
                let mounts = try setup.volumeMounts(container, pod: pod, podDirectory: dir)
                if !mounts.isEmpty { env[ContainerSetup.mountsVariable] = ContainerSetup.encodeMounts(mounts) }
            } catch {
                throw StartBlock(scheduled: true, reason: "CreateContainerConfigError", message: "\(error)")
            }
        } catch let block as StartBlock {
            try hold(pod, container: container, block, logPath: logPath, jobKey: Self.key(job))
            return
        }
        blocked.remove(Self.key(job))
        let process: LocalProcess
        do {
            // The executable stands for the command's first word; the rest and `args` are its arguments.
            process = try LocalProcess(executable: executable, arguments: Array(command.dropFirst()) + args, environment: env,
                                       directory: dir, logPath: logPath) { [weak self] code, signaled in
                Task { await self?.exited(key: key, ns: ns, pod: podName, code: code, signaled: signaled) }
            }
        } catch {
            try appendLog(logPath, "standalone job runner: cannot start \(executable): \(error)\n")
            try finishPod(ns, podName, exitCode: 128, reason: "StartError", message: "cannot start \(executable)")
            return
        }
        running[key] = process
        var metadata: JSONValue = ["finalizers": .array((pod.value(at: ["metadata", "finalizers"])?.arrayValue ?? []) + [.string(Self.processFinalizer)])]
        if let record = ProcessRecord.of(process.pid) { metadata["annotations"] = [ProcessRecord.annotation: .string(record.annotationValue)] }
        // The process's finalizer and record, and Running, in one write.
        var both = APIServerCore.WriteOptions()
        both.withStatus = true
        let now = Time(Date()).description
        _ = try core.patch(podType, namespace: ns, name: podName, patchType: .merge, patch: [
            "metadata": metadata,
            "status": ["phase": "Running", "startTime": .string(now), "hostIP": "127.0.0.1",
                       "conditions": [["type": "PodScheduled", "status": "True", "lastTransitionTime": .string(now)],
                                      ["type": "Ready", "status": "True", "lastTransitionTime": .string(now)]],
                       "containerStatuses": [["name": container["name"] ?? "main", "ready": true, "restartCount": 0,
                                              "state": ["running": ["startedAt": .string(now)]]]]],
        ], options: both)
    }

    func exited(key: String, ns: String, pod: String, code: Int32, signaled: Bool) {
        running[key] = nil
        let killed = killRequested.remove(key) != nil
        let reason = code == 0 && !signaled ? "Completed" : (killed ? "Killed" : "Error")
        try? finishPod(ns, pod, exitCode: signaled ? 128 + code : code, reason: reason, message: "")
        releaseProcessFinalizer(ns, pod)
        // Its Job first, then whatever waits for the slot it freed.
        let jobName = pod.count > 6 ? String(pod.dropLast(6)) : pod
        Task {
            try? await self.reconcile(namespace: ns, name: jobName)
            await self.startWaiting()
        }
    }

    func finishPod(_ ns: String, _ pod: String, exitCode: Int32, reason: String, message: String) throws {
        var terminated: JSONObject = ["exitCode": .int(Int64(exitCode)), "reason": .string(reason), "finishedAt": .string(Time(Date()).description)]
        if !message.isEmpty { terminated["message"] = .string(message) }
        _ = try? core.patch(podType, namespace: ns, name: pod, patchType: .merge, patch: [
            "status": ["phase": exitCode == 0 ? "Succeeded" : "Failed",
                       "containerStatuses": [["name": "main", "ready": false, "restartCount": 0, "state": ["terminated": .object(terminated)]]]],
        ], subresource: "status")
    }

    func appendLog(_ path: String, _ text: String) throws {
        let h = FileHandle(forWritingAtPath: path)
        try h?.seekToEnd()
        try h?.write(contentsOf: Data(text.utf8))
        try h?.close()
    }
}
