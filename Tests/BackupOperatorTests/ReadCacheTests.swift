import BRModel
import BackupOperator
import ControllerKit
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

/// The operator as `run` wires it (informer caches for Jobs and TidbClusters): a new Backup costs no
/// read of its Job, and a Job the cache has not seen is still found by the create.
@Suite struct ReadCacheTests {
    /// The setup with its informers running and synced; `body` gets the setup, `stop` ends the informers.
    static func withSetup(_ w: World, _ body: (OperatorSetup) async throws -> Void) async throws {
        var options = OperatorSetup.Options()
        options.clock = w.clock
        options.eventDelivery = .inline
        let setup = OperatorSetup(api: w.operatorAPI, options: options, metrics: MetricsRegistry())
        let informing = Task { await withTaskGroup(of: Void.self) { g in for i in setup.informers { g.addTask { await i.run() } } } }
        defer { informing.cancel() }
        #expect(try await eventually { setup.informers.allSatisfy(\.hasSynced) })
        try await body(setup)
    }

    /// The tests' one polling helper; its bound is generous because a full parallel run can starve the
    /// informers' tasks for many seconds.
    static func eventually(_ condition: () -> Bool) async throws -> Bool {
        await KubeTesting.eventually { condition() }
    }

    @Test("a new Backup: the Job is created without a GET of it first, and the Backup is Scheduled")
    func newBackupCreatesItsJobWithoutReadingIt() async throws {
        let w = World()
        try await w.seedCluster()
        try await Self.withSetup(w) { setup in
            _ = try await w.apply(.backups, World.brBackup("b", cleanPolicy: "Retain"))
            let before = w.operatorAPI.calls.count
            await setup.backups.process(ObjectKey(namespace: "ns", name: "b"))
            let calls = w.operatorAPI.calls.dropFirst(before)
            #expect(w.job("backup-b") != nil)
            #expect(!calls.contains { $0.verb == .get && $0.resource.hasPrefix("jobs") }, "\(calls)")
            #expect(calls.contains { $0.verb == .create && $0.resource.hasPrefix("jobs") }, "\(calls)")
            #expect(try await w.getBackup("b").status.phase == .scheduled)
            #expect(w.eventReasons().contains("SuccessfulCreate"))
        }
    }

    @Test("a Job the cache does not hold (created before a lost status write): the create finds it, the Backup is Scheduled with that Job")
    func jobUnknownToTheCacheIsAdopted() async throws {
        let w = World()
        try await w.seedCluster()
        try await Self.withSetup(w) { setup in
            _ = try await w.apply(.backups, World.brBackup("b", cleanPolicy: "Retain"))
            // Without the operator's labels the Job informer never sees it: the cache says "absent".
            _ = try await w.api.create(.jobs, namespace: "ns", object: [
                "apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": "backup-b", "namespace": "ns", "annotations": ["test/made": "earlier"]],
                "spec": ["template": ["spec": ["containers": [["name": "c", "image": "i"]], "restartPolicy": "Never"]]]])
            await setup.backups.process(ObjectKey(namespace: "ns", name: "b"))
            #expect(try await w.getBackup("b").status.phase == .scheduled)
            #expect(w.api.objects(.jobs, namespace: "ns").count == 1)
            #expect(w.job("backup-b")?.value(at: ["metadata", "annotations", "test/made"]) == "earlier")
        }
    }

    @Test("a Job of that name still going away: the Backup waits for it and stays without a phase")
    func jobGoingAwayIsWaitedFor() async throws {
        let w = World()
        try await w.seedCluster()
        try await Self.withSetup(w) { setup in
            _ = try await w.apply(.backups, World.brBackup("b", cleanPolicy: "Retain"))
            _ = try await w.api.create(.jobs, namespace: "ns", object: [
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": ["name": "backup-b", "namespace": "ns", "finalizers": ["test/hold"]],
                "spec": ["template": ["spec": ["containers": [["name": "c", "image": "i"]], "restartPolicy": "Never"]]]])
            _ = try await w.api.delete(.jobs, namespace: "ns", name: "backup-b")
            await setup.backups.process(ObjectKey(namespace: "ns", name: "b"))
            #expect(try await w.getBackup("b").status.phase == nil)
            #expect(w.job("backup-b")?.value(at: ["metadata", "deletionTimestamp"]) != nil)
            #expect(!w.eventReasons().contains("SuccessfulCreate"))
        }
    }
}
