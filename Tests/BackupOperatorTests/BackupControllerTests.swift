import BRModel
import BRObjects
import BackupOperator
import ControllerKit
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Synchronization
import Testing

@Suite struct BackupControllerTests {
    @Test func aNewBRBackupGetsItsFinalizerItsJobAndScheduled() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("demo1"))
        #expect(try await w.settleBackup("demo1") == .requeue(after: .seconds(10)), "the first look at the new Job's pod comes soon")
        let b = try await w.getBackup("demo1")
        #expect(b.metadata.finalizers == ["tidb.pingcap.com/backup-protection"])
        #expect(b.status.phase == .scheduled)
        let job = try #require(w.job("backup-demo1"))
        let container = try #require(job.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first)
        #expect(container["args"] == ["backup", "--namespace=ns", "--backupName=demo1", "--tikvVersion=v8.5.0", "--mode=snapshot",
                                      "--pd=http://127.0.0.1:2379"])  // the TidbCluster's spec.pdAddresses
        #expect(container["image"]?.stringValue == "pingcap/tidb-backup-manager:v1.6.1")
        let env = container["env"]?.arrayValue ?? []
        #expect(env.compactMap { $0["name"]?.stringValue } == ["S3_PROVIDER", "S3_ENDPOINT", "AWS_REGION", "AWS_ACL", "AWS_STORAGE_CLASS",
                                                              "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "BR_LOG_TO_TERM"])
        #expect(env.first { $0["name"] == "AWS_STORAGE_CLASS" }?["value"] == "STANDARD_IA")
        #expect(env.first { $0["name"] == "AWS_SECRET_ACCESS_KEY" }?.value(at: ["valueFrom", "secretKeyRef", "key"]) == "secret_key")
        // No secret value is ever copied into the Job.
        #expect(!job.serialized().contains("c2VjcmV0") && !job.serialized().contains("YWNjZXNz"))
        #expect(env.first { $0["name"] == "AWS_SECRET_ACCESS_KEY" }?["value"] == nil)
        #expect(job.value(at: ["metadata", "labels", "app.kubernetes.io/component"]) == "backup")
        #expect(job.value(at: ["metadata", "labels", "tidb.pingcap.com/backup"]) == "demo1")
        #expect(job.value(at: ["metadata", "ownerReferences"])?.arrayValue?.first?["uid"]?.stringValue == b.metadata.uid)
        #expect(job.value(at: ["spec", "backoffLimit"]) == .int(0))
        #expect(job.value(at: ["spec", "template", "spec", "serviceAccountName"]) == "tidb-backup-manager")
        #expect(job.value(at: ["spec", "template", "spec", "initContainers"])?.arrayValue?.first?["image"] == "pingcap/br:v8.5.0")
        #expect(w.eventReasons().contains("SuccessfulCreate"))
    }

    @Test("a pass writes a Backup's status once: an Invalid Backup fixed by an edit gets its Job, Invalid cleared and Scheduled in one status write (two before)")
    func onePassOneStatusWrite() async throws {
        let w = World()
        try await w.seedCluster()
        var invalid = World.yaml(World.brBackup("fixed"))
        invalid["spec"]?["backupType"] = "no-such-type"
        _ = try await w.api.create(.backups, namespace: "ns", object: invalid)
        _ = try await w.backup.reconcile(ObjectKey(namespace: "ns", name: "fixed"))
        #expect(try await w.getBackup("fixed").status.phase == .invalid)
        _ = try await w.api.patch(.backups, namespace: "ns", name: "fixed", patch: .merge(["spec": ["backupType": "full"]]), subresource: nil)
        let before = w.operatorAPI.calls.count
        _ = try await w.backup.reconcile(ObjectKey(namespace: "ns", name: "fixed"))
        let calls = w.operatorAPI.calls.dropFirst(before)
        let statusWrites = calls.filter { ($0.verb == .update || $0.verb == .patch) && $0.subresource == "status" }
        #expect(statusWrites.count == 1, "\(calls)")
        let b = try await w.getBackup("fixed")
        #expect(b.status.phase == .scheduled && b.status.conditions?.first { $0.type == .invalid }?.status == .false, "\(b.status)")
        #expect(w.job("backup-fixed") != nil)
    }

    @Test func reconcilingTwiceChangesNothing() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("twice"))
        try await w.settleBackup("twice")
        let before = try await w.api.get(.backups, namespace: "ns", name: "twice")
        w.api.resetCalls()
        try await w.settleBackup("twice")
        #expect(w.writes.isEmpty, "\(w.writes)")
        #expect(try await w.api.get(.backups, namespace: "ns", name: "twice") == before)
        #expect(w.api.objects(.jobs, namespace: "ns").count == 1)
    }

    @Test func aCrashBetweenJobCreationAndTheStatusWriteIsHarmless() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("crash"))
        // The finalizer update succeeds, the Job is created, then the status write fails.
        w.api.failNext(.update, resource: .backups, subresource: .some("status"))
        await #expect(throws: KubeAPIError.self) { try await w.backup.reconcile(ObjectKey(namespace: "ns", name: "crash")) }
        #expect(w.job("backup-crash") != nil)
        #expect(try await w.getBackup("crash").status.phase == nil)
        try await w.settleBackup("crash")
        #expect(try await w.getBackup("crash").status.phase == .scheduled)
        #expect(w.api.objects(.jobs, namespace: "ns").count == 1)
    }

    @Test func theFinalizerFollowsTheCleanPolicy() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("retain", cleanPolicy: "Retain"))
        _ = try await w.apply(.backups, World.brBackup("onfailure", cleanPolicy: "OnFailure"))
        try await w.settleBackup("retain")
        try await w.settleBackup("onfailure")
        #expect(try await w.getBackup("retain").metadata.finalizers == nil)
        #expect(try await w.getBackup("onfailure").metadata.finalizers == ["tidb.pingcap.com/backup-protection"])

        // 8.7: an API error while adding the finalizer propagates.
        _ = try await w.apply(.backups, World.brBackup("down"))
        w.api.failNext(.update, resource: .backups, subresource: .some(nil),
                       with: KubeAPIError(code: 500, reason: "InternalError", message: "API server down"))
        await #expect(throws: KubeAPIError.self) { try await w.backup.reconcile(ObjectKey(namespace: "ns", name: "down")) }
    }

    @Test func aMissingTidbClusterSaysWhatToCreateAndRecoversWhenItAppears() async throws {
        let w = World()
        _ = try await w.apply(.backups, World.brBackup("nocluster", cleanPolicy: "Retain"))
        #expect(try await w.settleBackup("nocluster") == .requeue(after: .seconds(30)))
        let b = try await w.getBackup("nocluster")
        #expect(b.status.phase == .retryFailed)
        let message = b.status.conditions?.first { $0.type == .retryFailed }?.message ?? ""
        #expect(message.contains("TidbCluster ns/basic not found") && message.contains("spec.pdAddresses"))
        // `kubectl describe` tells the story: a Warning naming what to create, once, then Scheduled.
        let warnings = w.api.objects(.events, namespace: "ns").filter { $0["reason"] == "TidbClusterNotFound" }
        #expect(warnings.count == 1)
        #expect(warnings.first?["type"] == "Warning")
        #expect(warnings.first?["message"]?.stringValue?.contains("spec.pdAddresses") == true)
        try await w.seedCluster()
        try await w.settleBackup("nocluster")
        #expect(try await w.getBackup("nocluster").status.phase == .scheduled)
        #expect(w.eventReasons().contains("Scheduled"))
    }

    @Test("every condition the controller sets is an Event, once; repeating the same condition adds none")
    func conditionChangesAreEvents() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("story"))
        try await w.settleBackup("story")
        try await w.finishJob("backup-story", failed: true)
        try await w.settleBackup("story")
        try await w.settleBackup("story")
        let events = w.api.objects(.events, namespace: "ns").filter { $0.value(at: ["involvedObject", "name"]) == "story" }
        let scheduled = events.filter { $0["reason"] == "Scheduled" }
        #expect(scheduled.count == 1)
        #expect(scheduled.first?["type"] == "Normal")
        #expect(scheduled.first?["message"] == "backup ns/story is Scheduled")
        #expect(scheduled.first?["count"] == 1)
        #expect(events.contains { $0["reason"] == "BackupJobFailed" && $0["type"] == "Warning" })
    }

    @Test func anInvalidBackupProceedsOnceItsSpecIsFixed() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, """
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: bad, namespace: ns}
            spec:
              backupType: db
              br: {cluster: basic}
              s3: {provider: aws, bucket: b, secretName: s3-secret}
            """)
        #expect(try await w.settleBackup("bad") == .done)
        var b = try await w.getBackup("bad")
        #expect(b.status.phase == .invalid)
        #expect(b.status.conditions?.first?.message == "DB should be configured for BR with backup type db in spec of ns/bad")
        #expect(w.job("backup-bad") == nil)
        #expect(w.eventReasons().contains("InvalidSpec"))
        b.spec.br?.db = "test"
        _ = try await w.api.update(b)
        try await w.settleBackup("bad")
        b = try await w.getBackup("bad")
        #expect(b.status.phase == .scheduled)
        #expect(b.status.conditions?.first { $0.type == .invalid }?.status == .false)
        #expect(w.job("backup-bad") != nil)
    }

    /// Reference 3.8: one Job per derived sub-command; a command in effect runs none; a truncate not
    /// after the start is recorded at once.
    @Test func aLogBackupRunsOneJobPerSubCommand() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("log", extra: "  backupMode: log"))
        try await w.settleBackup("log")
        let job = try #require(w.job("backup-log-log-start"))
        let args = job.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(args.contains("--mode=log") && args.contains("--subcommand=log-start"), "\(args)")
        var b = try await w.getBackup("log")
        #expect(b.status.phase == .scheduled && b.status.logSubCommandStatuses?["log-start"]?.phase == .scheduled)

        // The pod reports the start: Running with the start TS; nothing more to run.
        b.status.applyLog(.start, BackupCondition(type: .complete), fields: .init(commitTs: "400000000000000000"), now: Time(w.clock.now()))
        _ = try await w.api.updateStatus(b)
        try await w.finishJob("backup-log-log-start", failed: false)
        w.api.resetCalls()
        try await w.settleBackup("log")
        #expect(w.writes.filter { $0.resource == "jobs.batch" }.isEmpty)

        b = try await w.getBackup("log")
        b.spec.logSubcommand = "log-pause"
        _ = try await w.api.update(b)
        try await w.settleBackup("log")
        #expect(w.job("backup-log-log-pause") != nil)

        b = try await w.getBackup("log")
        b.spec.logTruncateUntil = "1"
        b.status.applyLog(.pause, BackupCondition(type: .complete), now: Time(w.clock.now()))
        _ = try await w.api.update(b)
        _ = try await w.api.updateStatus(try await { var x = try await w.getBackup("log"); x.status = b.status; return x }())
        try await w.settleBackup("log")
        b = try await w.getBackup("log")
        #expect(b.status.phase == .paused)
        #expect(b.status.logSubCommandStatuses?["log-truncate"]?.phase == .complete, "a truncate before the start is recorded, not run")
        #expect(w.job("backup-log-log-truncate") == nil)
    }

    /// TiDB Operator issues one log sub-command at a time: a stop asked for while the start's Job runs
    /// waits for it (no stop Job beside a running start Job), then runs.
    @Test func aLogStopWaitsForTheRunningStart() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("lb", extra: "  backupMode: log"))
        try await w.settleBackup("lb")
        #expect(w.job("backup-lb-log-start") != nil)
        var b = try await w.getBackup("lb")
        b.status.applyLog(.start, BackupCondition(type: .running), now: Time(w.clock.now()))
        _ = try await w.api.updateStatus(b)
        b = try await w.getBackup("lb")
        b.spec.logSubcommand = "log-stop"
        _ = try await w.api.update(b)
        try await w.settleBackup("lb")
        #expect(w.job("backup-lb-log-stop") == nil, "a stop Job was created while the start Job ran")

        b = try await w.getBackup("lb")
        b.status.applyLog(.start, BackupCondition(type: .complete), fields: .init(commitTs: "400000000000000000"), now: Time(w.clock.now()))
        _ = try await w.api.updateStatus(b)
        try await w.finishJob("backup-lb-log-start", failed: false)
        w.clock.advance(by: 6)
        try await w.settleBackup("lb")
        #expect(w.job("backup-lb-log-stop") != nil, "the stop runs once the start has completed")
    }

    /// Reference 8.6, with the default policy (300 s, 2 retries, 30 min).
    @Test func aFailedJobIsRetriedWithBackoffThenFails() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("x", cleanPolicy: "Retain"))
        try await w.settleBackup("x")
        let t0 = w.clock.now()
        try await w.podReports("x", .running)
        try await w.finishJob("backup-x", failed: true)
        #expect(try await w.settleBackup("x") == .requeue(after: .seconds(301)))
        var b = try await w.getBackup("x")
        var record = try #require(b.status.backoffRetryStatus?.first)
        #expect(record.retryNum == 1 && record.retryReason == "Job backup-x has failed" && record.originalReason == "BackoffLimitExceeded")
        #expect(record.expectedRetryAt?.unixSeconds == Int64(t0.timeIntervalSince1970) + 300)

        w.clock.set(t0.addingTimeInterval(300))
        try await w.settleBackup("x")
        #expect(try await w.getBackup("x").status.phase == .running, "not strictly later: nothing happens")

        w.clock.set(t0.addingTimeInterval(301))
        _ = try await w.backup.reconcile(ObjectKey(namespace: "ns", name: "x"))
        b = try await w.getBackup("x")
        #expect(b.status.phase == .retryFailed)
        #expect(b.status.conditions?.first { $0.type == .retryFailed }?.message == "reason Job backup-x has failed, original reason BackoffLimitExceeded")

        // Next: the Job is deleted, Restart recorded, and a new Job runs.
        try await w.settleBackup("x")
        b = try await w.getBackup("x")
        #expect(b.status.has(.restart))
        #expect(b.status.backoffRetryStatus?.first?.realRetryAt != nil)
        #expect(b.status.phase == .scheduled)
        #expect(w.job("backup-x") != nil)

        // Second failure: retry after 600 s.
        let t1 = w.clock.now()
        try await w.finishJob("backup-x", failed: true)
        try await w.settleBackup("x")
        b = try await w.getBackup("x")
        record = try #require(b.status.backoffRetryStatus?.last)
        #expect(record.retryNum == 2 && record.expectedRetryAt?.unixSeconds == Int64(t1.timeIntervalSince1970) + 600)
        w.clock.set(t1.addingTimeInterval(601))
        try await w.settleBackup("x")
        #expect(try await w.getBackup("x").status.phase == .scheduled)

        // Third failure: more than maxRetryTimes.
        try await w.finishJob("backup-x", failed: true)
        try await w.settleBackup("x")
        b = try await w.getBackup("x")
        #expect(b.status.phase == .failed)
        #expect(b.status.conditions?.first { $0.type == .failed }?.message
            == "exceed retry times, max is 2, failed reason Job backup-x has failed, original reason BackoffLimitExceeded")
    }

    @Test func retriesStopAfterRetryTimeout() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("slow", cleanPolicy: "Retain",
                                                      extra: "  backoffRetryPolicy: {minRetryDuration: 20m, maxRetryTimes: 5, retryTimeout: 30m}"))
        try await w.settleBackup("slow")
        try await w.finishJob("backup-slow", failed: true)
        try await w.settleBackup("slow")
        w.clock.advance(by: 1201)
        try await w.settleBackup("slow")
        try await w.finishJob("backup-slow", failed: true)
        try await w.settleBackup("slow")
        w.clock.advance(by: 700)  // 1901 s after the first failure
        try await w.settleBackup("slow")
        let b = try await w.getBackup("slow")
        #expect(b.status.phase == .failed)
        #expect(b.status.conditions?.first { $0.type == .failed }?.message?.hasPrefix("retry timeout, max is 30m0s, failed reason") == true)
    }

    @Test func nothingStaysScheduledOrRunningForever() async throws {
        var timeouts = OperatorTimeouts()
        timeouts.podStart = .seconds(600)
        timeouts.run = .seconds(3600)
        let w = World(timeouts: timeouts)
        try await w.seedCluster()
        for name in ["stuck", "long", "vanished", "silent"] { _ = try await w.apply(.backups, World.brBackup(name, cleanPolicy: "Retain")) }
        for name in ["stuck", "long", "vanished", "silent"] { try await w.settleBackup(name) }
        try await w.podReports("long", .running) { $0.timeStarted = Time(World.t0) }
        try await w.podReports("silent", .running)
        _ = try await w.api.delete(.jobs, namespace: "ns", name: "backup-vanished")
        try await w.finishJob("backup-silent", failed: false, started: World.t0.addingTimeInterval(5))
        w.clock.advance(by: 601)
        for name in ["stuck", "long", "vanished", "silent"] { try await w.settleBackup(name) }
        #expect(try await w.getBackup("stuck").status.conditions?.first { $0.type == .failed }?.reason == "PodNotStarted")
        #expect(w.job("backup-stuck") == nil)
        #expect(try await w.getBackup("vanished").status.conditions?.first { $0.type == .failed }?.reason == "JobNotFound")
        // A Job that succeeded without a result: a result Job reads it from storage; when that fails too, Failed.
        #expect(try await w.getBackup("silent").status.phase == .running)
        // The run's start is known from its Job: recorded, so the result Job's Complete has a timeTaken.
        #expect(try await w.getBackup("silent").status.timeStarted == Time(World.t0.addingTimeInterval(5)))
        let result = try #require(w.job("backup-silent-result"))
        #expect(result.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["args"]?.arrayValue?.contains("--result-only=true") == true)
        try await w.finishJob("backup-silent-result", failed: true)
        try await w.settleBackup("silent")
        #expect(try await w.getBackup("silent").status.conditions?.first { $0.type == .failed }?.reason == "JobSucceededWithoutResult")
        #expect(try await w.getBackup("long").status.phase == .running)
        w.clock.advance(by: 3000)
        try await w.settleBackup("long")
        #expect(try await w.getBackup("long").status.conditions?.first { $0.type == .failed }?.reason == "DeadlineExceeded")
        #expect(w.job("backup-long") == nil)
    }

    @Test func deletingWithCleanPolicyDeleteRunsTheCleanJobThenReleases() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("gone"))
        try await w.settleBackup("gone")
        try await w.podReports("gone", .running) { $0.backupPath = "s3://my-bucket/my-folder/" }
        _ = try await w.api.delete(.backups, namespace: "ns", name: "gone")
        // The running backup Job is stopped first.
        try await w.settleBackup("gone")
        #expect(w.job("backup-gone") == nil)
        try await w.settleBackup("gone")
        let clean = try #require(w.job("clean-gone"))
        #expect(clean.value(at: ["spec", "backoffLimit"]) == .int(6))
        #expect(clean.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first?["args"]
            == ["clean", "--namespace=ns", "--backupName=gone"])
        let b = try await w.getBackup("gone")
        #expect(b.status.phase == .clean && b.status.conditions?.first { $0.type == .clean }?.status == .false)
        // Still held until the clean pod reports Clean.
        try await w.settleBackup("gone")
        #expect(try await w.getBackup("gone").metadata.finalizers != nil)
        try await w.finishJob("clean-gone", failed: false)
        try await w.podReports("gone", .clean)
        try await w.settleBackup("gone")
        await #expect(throws: KubeAPIError.self) { _ = try await w.getBackup("gone") }
    }

    @Test func deletingARetainedOrUnfailedOnFailureBackupKeepsTheData() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("keep", cleanPolicy: "OnFailure"))
        try await w.settleBackup("keep")
        try await w.podReports("keep", .complete) { $0.backupPath = "s3://my-bucket/my-folder/" }
        _ = try await w.api.delete(.backups, namespace: "ns", name: "keep")
        try await w.settleBackup("keep")
        await #expect(throws: KubeAPIError.self) { _ = try await w.getBackup("keep") }
        #expect(w.job("clean-keep") == nil)
    }

    @Test func aTerminatingNamespaceDoesNotHoldTheBackupForever() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("ns-going"))
        try await w.settleBackup("ns-going")
        try await w.podReports("ns-going", .complete) { $0.backupPath = "s3://my-bucket/my-folder/" }
        try await w.finishJob("backup-ns-going", failed: false)
        _ = try await w.api.delete(.backups, namespace: "ns", name: "ns-going")
        w.api.failNext(.create, resource: .jobs, with: KubeAPIError(code: 403, reason: "Forbidden",
            message: "jobs.batch \"clean-ns-going\" is forbidden: unable to create new content in namespace ns because it is being terminated"))
        try await w.settleBackup("ns-going")
        await #expect(throws: KubeAPIError.self) { _ = try await w.getBackup("ns-going") }
        let warning = w.api.objects(.events, namespace: "ns").first { $0["reason"] == "CleanSkipped" }
        #expect(warning?["message"]?.stringValue?.contains("was kept") == true)
    }

    /// TiDB Operator #4994: a namespace being deleted hung on a Backup whose clean could not succeed
    /// (the bucket unreachable): the clean Job failed, the finalizer stayed, and the namespace with it.
    @Test func aCleanJobThatFailsInATerminatingNamespaceReleasesTheBackupAndSaysWhatWasLeft() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("stuck"))
        try await w.settleBackup("stuck")
        try await w.podReports("stuck", .complete) { $0.backupPath = "s3://my-bucket/my-folder/" }
        try await w.finishJob("backup-stuck", failed: false)
        _ = try await w.api.delete(.backups, namespace: "ns", name: "stuck")
        try await w.settleBackup("stuck")
        #expect(w.job("clean-stuck") != nil)
        try await w.finishJob("clean-stuck", failed: true)
        // While the namespace lives, a failed clean keeps the finalizer (the data is not given up).
        try await w.settleBackup("stuck")
        #expect(try await w.getBackup("stuck").metadata.finalizers != nil)
        // The namespace is then deleted.
        _ = try? await w.api.create(.namespaces, namespace: nil, object: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "ns"]])
        var namespace = try await w.api.get(.namespaces, namespace: nil, name: "ns")
        namespace["status"] = ["phase": "Terminating"]
        _ = try await w.api.updateStatus(.namespaces, namespace: nil, object: namespace)
        try await w.settleBackup("stuck")
        await #expect(throws: KubeAPIError.self) { _ = try await w.getBackup("stuck") }
        let left = w.api.objects(.events, namespace: "default").first { $0["reason"] == "BackupDataLeftBehind" }
        #expect(left?.value(at: ["involvedObject", "kind"]) == "Namespace")
        #expect(left?["message"]?.stringValue?.contains("s3://my-bucket/my-folder/") == true, "\(String(describing: left))")
    }

    @Test func aDumplingExportGetsItsPVCAndExportJob() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, """
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: export, namespace: ns}
            spec:
              from: {host: 10.0.0.1, port: 4000, user: root, secretName: backup-tidb-secret}
              storageSize: 10Gi
              s3: {provider: aws, bucket: dumps, secretName: s3-secret}
            """)
        try await w.settleBackup("export")
        let job = try #require(w.job("backup-export"))
        let container = try #require(job.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first)
        #expect(container["args"] == ["export", "--namespace=ns", "--backupName=export", "--bucket=dumps", "--storageType=s3"])
        #expect(container["env"]?.arrayValue?.first?["name"] == "BACKUP_MANAGER_PASSWORD")
        let pvcs = w.api.objects(.persistentVolumeClaims, namespace: "ns")
        #expect(pvcs.count == 1 && pvcs[0].objectKey.name.hasPrefix("backup-pvc-"))
        #expect(pvcs[0].value(at: ["spec", "resources", "requests", "storage"]) == "10Gi")
    }
}

/// PD's etcd as a test hands it in: the tracker reads through `PDKeyValueStore`.
final class FakePD: PDKeyValueStore, @unchecked Sendable {
    let lock = NSLock()
    var keys: [String: [UInt8]] = [:]
    func get(_ key: String) async throws -> [UInt8]? { lock.withLock { keys[key] } }
    func list(prefix: String) async throws -> [(key: String, value: [UInt8])] {
        lock.withLock { keys.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }
}

@Suite("The log backup tracker through the PD seam")
struct LogTrackerSeamTests {
    @Test("the checkpoint BR's advancer writes reaches the status, read from the PD addresses of the TidbCluster")
    func checkpointFromTheSeam() async throws {
        let w = World()
        try await w.seedCluster()
        let pd = FakePD()
        let seen = Mutex<[[String]]>([])
        let reconciler = BackupReconciler(api: w.operatorAPI, jobs: JobBuilder(api: w.operatorAPI, settings: JobSettings()), events: w.events,
                                          clock: w.clock, pdStores: { endpoints in seen.withLock { $0.append(endpoints) }; return pd })
        _ = try await w.apply(.backups, World.brBackup("lb", extra: "  backupMode: log"))
        var b = try await w.getBackup("lb")
        b.status.applyLog(.start, BackupCondition(type: .running), now: Time(w.clock.now()))
        b.status.applyLog(.start, BackupCondition(type: .complete), fields: .init(commitTs: "450000000000000000"), now: Time(w.clock.now()))
        _ = try await w.api.updateStatus(b)
        pd.lock.withLock {
            pd.keys[LogBackupKernel.infoKey("lb")] = LogBackupKernel.TaskInfo(name: "lb", startTs: 450_000_000_000_000_000).protobuf
            pd.keys[LogBackupKernel.globalCheckpointKey("lb")] = LogBackupKernel.encodeCheckpoint(450_000_000_000_009_999)
        }
        let outcome = try await reconciler.reconcile(ObjectKey(namespace: "ns", name: "lb"))
        b = try await w.getBackup("lb")
        #expect(b.status.logCheckpointTs == "450000000000009999", "\(outcome) \(b.status)")
        #expect(seen.withLock { $0 } == [["http://127.0.0.1:2379"]])
    }
}
