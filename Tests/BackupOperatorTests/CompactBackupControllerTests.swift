import BRModel
import BackupOperator
import ControllerKit
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

@Suite("CompactBackup controller: the Job, its failures recorded once, back-off and the retry limit (reference 2.5, 6.9)")
struct CompactBackupControllerTests {
    static func compact(_ name: String, extra: [String] = []) -> String {
        (["apiVersion: pingcap.com/v1alpha1", "kind: CompactBackup", "metadata: {name: \(name), namespace: ns}", "spec:",
          "  br: {cluster: basic}", "  startTs: \"2024-03-01 00:00:00\"", "  endTs: \"2024-03-01 01:30:00\"",
          "  s3: {provider: aws, region: us-west-2, bucket: logs, prefix: log-1, secretName: s3-secret}"] + extra.map { "  " + $0 })
            .joined(separator: "\n")
    }

    func settle(_ w: World, _ name: String) async throws -> ReconcileOutcome {
        var outcome = ReconcileOutcome.done
        for _ in 0..<10 {
            outcome = try await w.compact.reconcile(ObjectKey(namespace: "ns", name: name))
            if outcome != .requeue(after: .zero) && outcome != .requeue(after: .seconds(1)) { return outcome }
        }
        return outcome
    }

    func state(_ w: World, _ name: String) async throws -> CompactBackup { try await w.api.get(CompactBackup.self, namespace: "ns", name: name) }

    @Test("the Job: named after the CompactBackup, br and tikv-ctl copied into one tool-bin volume, compact --resourceName, attempt 0; Prepare")
    func job() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.tidbClusters, """
            apiVersion: pingcap.com/v1alpha1
            kind: TidbCluster
            metadata: {name: managed, namespace: ns}
            spec: {version: v8.5.0, tikv: {baseImage: pingcap/tikv}}
            """)
        _ = try await w.apply(.compactBackups, Self.compact("c1").replacingOccurrences(of: "cluster: basic", with: "cluster: managed"))
        _ = try await settle(w, "c1")
        #expect(try await state(w, "c1").state == .prepare)
        let job = try #require(w.job("c1"))
        let pod = job.value(at: ["spec", "template", "spec"])!
        let inits = pod["initContainers"]?.arrayValue ?? []
        #expect(inits.compactMap { $0["name"]?.stringValue } == ["br", "tikv-ctl"])
        #expect(inits.compactMap { $0["image"]?.stringValue } == ["pingcap/br:v8.5.0", "pingcap/tikv:v8.5.0"])
        #expect(inits.allSatisfy { $0["volumeMounts"]?.arrayValue?.first?["name"] == "tool-bin" })
        let main = pod["containers"]?.arrayValue?.first
        #expect(main?["args"]?.arrayValue?.compactMap(\.stringValue) == ["compact", "--namespace=ns", "--resourceName=c1"])
        #expect(main?["volumeMounts"]?.arrayValue?.compactMap { $0["mountPath"]?.stringValue } == ["/var/lib/br-bin", "/var/lib/kvctl-bin"])
        let env = main?["env"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(env.contains("AWS_ACCESS_KEY_ID") && !env.contains("TZ"), "\(env)")
        #expect(job.value(at: ["metadata", "annotations", BRLabels.compactAttemptAnnotation]) == "0")
        #expect(job.value(at: ["metadata", "labels", BRLabels.instance]) == "Compact-Backup")
        #expect(job.value(at: ["metadata", "ownerReferences"])?.arrayValue?.first?["kind"] == "CompactBackup")
        #expect(pod["restartPolicy"] == "Never" && job.value(at: ["spec", "backoffLimit"]) == .int(0))
    }

    @Test("no cluster named and no spec.tikvImage: RetryFailed naming both fields, no Job")
    func noTikvImage() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.compactBackups, Self.compact("c1").replacingOccurrences(of: "  br: {cluster: basic}\n", with: ""))
        _ = try await settle(w, "c1")
        let c = try await state(w, "c1")
        #expect(c.state == .retryFailed && c.status.message?.contains("spec.tikvImage") == true, "\(c.status)")
        #expect(w.job("c1") == nil)
    }

    @Test("an invalid spec fails at once with the field and TiDB Operator's message")
    func invalid() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.compactBackups, Self.compact("c1").replacingOccurrences(of: "  endTs: \"2024-03-01 01:30:00\"\n", with: ""))
        #expect(try await settle(w, "c1") == .done)
        let c = try await state(w, "c1")
        #expect(c.state == .failed && c.status.message == "spec.endTs: end-ts must be set")
        _ = try await w.apply(.compactBackups, Self.compact("c2", extra: ["concurrency: 0"]).replacingOccurrences(of: "name: c1", with: "name: c2"))
        _ = try await settle(w, "c2")
        #expect(try await state(w, "c2").status.message == "spec.concurrency: concurrency must be greater than 0")
    }

    @Test("failures: each recorded once (even when the deleted Job is seen again), retried after 0 s, 20 s, 40 s; after maxRetryTimes retries Failed")
    func retries() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.compactBackups, Self.compact("c1", extra: ["maxRetryTimes: 3", "tikvImage: pingcap/tikv:v8.5.0"]))
        _ = try await settle(w, "c1")
        var expectedWaits: [Int64] = [0, 20, 40]
        for attempt in 0...3 {
            let job = try #require(w.job("c1"), "attempt \(attempt)")
            #expect(job.value(at: ["metadata", "annotations", BRLabels.compactAttemptAnnotation])?.stringValue == String(attempt))
            // The pod wrote why before it exited 1.
            var c = try await state(w, "c1")
            c.status.state = "Running"
            c.status.message = "compaction aborted: injected \(attempt)"
            _ = try await w.api.updateStatus(c)
            try await w.finishJob("c1", failed: true)
            let stale = try await w.api.get(.jobs, namespace: "ns", name: "c1")
            _ = try await w.compact.reconcile(ObjectKey(namespace: "ns", name: "c1"))
            // An informer that still holds the failed Job shows it again: no second record.
            _ = try await w.api.create(.jobs, namespace: "ns", object: { var j = stale; j["metadata"]?["resourceVersion"] = nil; j["metadata"]?["uid"] = nil; return j }())
            try await w.finishJob("c1", failed: true)
            _ = try await w.compact.reconcile(ObjectKey(namespace: "ns", name: "c1"))
            c = try await state(w, "c1")
            #expect(c.status.backoffRetryStatus?.count == attempt + 1, "attempt \(attempt): \(c.status)")
            #expect(c.status.backoffRetryStatus?.last?.retryReason?.contains("injected \(attempt)") == true)
            #expect(w.job("c1") == nil)
            let outcome = try await settle(w, "c1")
            if attempt == 3 {
                c = try await state(w, "c1")
                #expect(c.state == .failed, "\(c.status)")
                #expect(c.status.message?.hasPrefix("create job failed, reached max retry times (3)") == true)
                #expect(outcome == .done)
                break
            }
            let wait = expectedWaits.removeFirst()
            if wait > 0 {
                #expect(outcome == .requeue(after: .seconds(wait)), "attempt \(attempt)")
                #expect(w.job("c1") == nil)
                w.clock.advance(by: TimeInterval(wait))
                _ = try await settle(w, "c1")
            }
            #expect(try await state(w, "c1").state == .prepare)
        }
        #expect(w.eventReasons().filter { $0 == "Failed(Retryable)" }.count == 4)
    }

    @Test("a Job that succeeded while the pod's Complete write was lost → Complete; a Job deleted by hand mid-run counts as a failure")
    func outcomes() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.compactBackups, Self.compact("c1", extra: ["tikvImage: pingcap/tikv:v8.5.0"]))
        _ = try await settle(w, "c1")
        try await w.finishJob("c1", failed: false)
        _ = try await settle(w, "c1")
        #expect(try await state(w, "c1").state == .complete)

        _ = try await w.apply(.compactBackups, Self.compact("c2", extra: ["tikvImage: pingcap/tikv:v8.5.0"]).replacingOccurrences(of: "name: c1", with: "name: c2"))
        _ = try await settle(w, "c2")
        _ = try await w.api.delete(.jobs, namespace: "ns", name: "c2")
        _ = try await settle(w, "c2")
        let c = try await state(w, "c2")
        #expect(c.status.backoffRetryStatus?.count == 1 && c.status.backoffRetryStatus?.first?.retryReason?.contains("no longer exists") == true,
                "\(c.status)")
        #expect(w.job("c2") != nil, "the retry after the first failure is immediate")
    }
}
