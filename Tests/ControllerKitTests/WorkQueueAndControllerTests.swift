import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel
import KubeTesting
import Synchronization
import Testing

@Suite struct WorkQueueTests {
    @Test func aKeyIsQueuedOnceAndNeverHandedOutTwiceAtOnce() async throws {
        let q = WorkQueue<String>(name: "t")
        await q.add("a")
        await q.add("a")
        await q.add("b")
        #expect(await q.depth == 2)
        let first = await q.next()
        #expect(first == "a")
        // Added again while being processed: held back until done.
        await q.add("a")
        #expect(await q.depth == 1)
        #expect(await q.next() == "b")
        #expect(await q.depth == 0)
        await q.done("a")
        #expect(await q.depth == 1)
        #expect(await q.next() == "a")
        await q.done("a")
        await q.done("b")
        #expect(await q.depth == 0)
    }

    @Test func delayedAddsWaitAndTheEarliestDeadlineWins() async throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_700_000_000))
        let q = WorkQueue<String>(name: "t", clock: clock)
        await q.add("late", after: .seconds(60))
        await q.add("soon", after: .milliseconds(50))
        await q.add("late", after: .milliseconds(100))
        // One timer sleeps for all delayed keys, until the earliest deadline.
        #expect(try await eventually { clock.sleeperCount == 1 }, "one timer task for every delayed key")
        #expect(await q.depth == 0)
        clock.advance(by: 0.06)
        #expect(try await eventually { await q.depth == 1 })
        #expect(await q.next() == "soon")
        clock.advance(by: 0.05)
        #expect(await q.next() == "late", "the 60 s wait gave way to the 100 ms one")
        // Many delayed keys still cost one sleeping task; each comes at its own deadline.
        for i in 0..<1000 { await q.add("k\(i)", after: .seconds(Double(10 + i % 7))) }
        #expect(try await eventually { clock.sleeperCount == 1 })
        clock.advance(by: 10.5)
        #expect(try await eventually { await q.depth == 143 }, "the keys due at 10 s, no others")
        clock.advance(by: 7)
        #expect(try await eventually { await q.depth == 1000 })
    }

    @Test func failuresBackOffPerKeyUntilForgotten() async throws {
        let q = WorkQueue<String>(name: "t", backoff: .init(base: .milliseconds(10), cap: .milliseconds(40)))
        for _ in 0..<5 { await q.addRateLimited("x") }
        #expect(await q.failureCount("x") == 5)
        #expect(await q.failureCount("y") == 0)
        #expect(await q.next() == "x")
        await q.forget("x")
        #expect(await q.failureCount("x") == 0)
    }

    @Test func shutDownReleasesWaitingWorkers() async throws {
        let q = WorkQueue<String>(name: "t")
        async let waiting = q.next()
        try await Task.sleep(for: .milliseconds(50))
        await q.shutDown()
        #expect(await waiting == nil)
    }
}

/// Counts reconciles and how many ran at once for one key.
final class ProbeReconciler: Reconciler, @unchecked Sendable {
    struct State {
        var running: [ObjectKey: Int] = [:]
        var maxConcurrentPerKey = 0
        var calls: [ObjectKey: Int] = [:]
        var failuresLeft = 0
        var conflictsLeft = 0
    }
    let state = Mutex(State())

    func reconcile(_ key: ObjectKey) async throws -> ReconcileOutcome {
        let (fail, conflict) = state.withLock { s -> (Bool, Bool) in
            s.running[key, default: 0] += 1
            s.maxConcurrentPerKey = max(s.maxConcurrentPerKey, s.running[key]!)
            s.calls[key, default: 0] += 1
            let fail = s.failuresLeft > 0
            if fail { s.failuresLeft -= 1 }
            let conflict = !fail && s.conflictsLeft > 0
            if conflict { s.conflictsLeft -= 1 }
            return (fail, conflict)
        }
        try await Task.sleep(for: .milliseconds(20))
        state.withLock { $0.running[key]! -= 1 }
        if fail { throw KubeAPIError(code: 500, reason: "InternalError", message: "boom") }
        if conflict { throw KubeAPIError(code: 409, reason: "Conflict", message: "modified") }
        return .done
    }
}

@Suite struct ControllerTests {
    @Test func workersNeverReconcileOneKeyConcurrentlyAndRetryFailures() async throws {
        let probe = ProbeReconciler()
        probe.state.withLock {
            $0.failuresLeft = 2
            $0.conflictsLeft = 1
        }
        let metrics = MetricsRegistry()
        let controller = Controller(name: "probe", reconciler: probe, workers: 4,
                                    backoff: .init(base: .milliseconds(10), cap: .milliseconds(50)), metrics: metrics)
        let run = Task { await controller.run() }
        let key = ObjectKey(namespace: "ns", name: "a")
        for _ in 0..<20 {
            await controller.enqueue(key)
            await controller.enqueue(ObjectKey(namespace: "ns", name: "b"))
            try await Task.sleep(for: .milliseconds(3))
        }
        let settled = try await eventually {
            let calls = probe.state.withLock { $0.calls[key] ?? 0 }
            let idle = await controller.queue.depth == 0
            return calls >= 4 && idle && (metrics.value("controller_reconcile_total", ["controller": "probe", "result": "error"]) ?? 0) == 2
        }
        #expect(settled)
        #expect(probe.state.withLock { $0.maxConcurrentPerKey } == 1)
        // 20 adds collapse into far fewer reconciles.
        #expect(probe.state.withLock { $0.calls[key] ?? 0 } < 20)
        #expect(metrics.value("controller_reconcile_total", ["controller": "probe", "result": "conflict"]) == 1)
        run.cancel()
        await run.value
        let text = metrics.exposition()
        #expect(text.contains("# TYPE tidb_backup_operator_controller_reconcile_total counter"), "\(text)")
        #expect(text.contains("tidb_backup_operator_controller_reconcile_total{controller=\"probe\",result=\"error\"} 2"), "\(text)")
        #expect(text.contains("tidb_backup_operator_controller_reconcile_duration_seconds_bucket{controller=\"probe\",le=\"+Inf\"}"), "\(text)")
    }
}

@Suite struct EventRecorderTests {
    @Test func repeatsAreCountedOnOneEvent() async throws {
        let api = InMemoryKubeAPI()
        let recorder = EventRecorder(api: api)
        let object: JSONValue = ["apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
                                 "metadata": ["name": "b1", "namespace": "ns", "uid": "u1"]]
        await recorder.record(object, .warning, reason: "BackupFailed", message: "br exited with 1")
        await recorder.record(object, .warning, reason: "BackupFailed", message: "br exited with 1")
        await recorder.record(object, .normal, reason: "BackupComplete", message: "done")
        let events = api.objects(.events, namespace: "ns")
        #expect(events.count == 2)
        let failed = events.first { $0["reason"]?.stringValue == "BackupFailed" }
        #expect(failed?["count"] == .int(2))
        #expect(failed?["type"]?.stringValue == "Warning")
        #expect(failed?.value(at: ["involvedObject", "kind"])?.stringValue == "Backup")
        #expect(failed?.value(at: ["involvedObject", "uid"])?.stringValue == "u1")
    }
}


@Suite struct EventRecorderBoundTests {
    @Test("past the remembered-Event bound, a burst of distinct Events stays one Event each and a repeat of a recent one is still counted on it")
    func boundedAggregation() async throws {
        let api = InMemoryKubeAPI()
        let recorder = EventRecorder(api: api)
        for i in 0..<5000 {
            let object: JSONValue = ["apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
                                     "metadata": ["name": .string("b\(i)"), "namespace": "ns", "uid": .string("u\(i)")]]
            await recorder.record(object, .normal, reason: "Scheduled", message: "backup ns/b\(i) is Scheduled")
        }
        let last: JSONValue = ["apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "metadata": ["name": "b4999", "namespace": "ns", "uid": "u4999"]]
        await recorder.record(last, .normal, reason: "Scheduled", message: "backup ns/b4999 is Scheduled")
        let events = api.objects(.events, namespace: "ns")
        #expect(events.count == 5000)
        #expect(events.first { $0.value(at: ["involvedObject", "name"]) == "b4999" }?["count"] == .int(2))
    }
}

@Suite struct EventRecorderBackgroundTests {
    static func backup(_ i: Int) -> JSONValue {
        ["apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
         "metadata": ["name": .string("b\(i)"), "namespace": "ns", "uid": .string("u\(i)"), "resourceVersion": "7"]]
    }

    @Test("background delivery: record returns before the write; after flush every Event is written, repeats of one object counted on one Event")
    func backgroundDeliveryWritesAllAndAggregates() async throws {
        let api = InMemoryKubeAPI()
        let recorder = EventRecorder(api: api, delivery: .background(lanes: 3, capacity: 1000))
        for i in 0..<200 { await recorder.record(Self.backup(i), .normal, reason: "Scheduled", message: "backup ns/b\(i) is Scheduled") }
        for _ in 0..<4 { await recorder.record(Self.backup(7), .warning, reason: "BackupFailed", message: "br exited with 1") }
        await recorder.flush()
        let events = api.objects(.events, namespace: "ns")
        #expect(events.count == 201)
        #expect(recorder.dropped == 0)
        let failed = events.filter { $0["reason"] == "BackupFailed" }
        #expect(failed.count == 1)
        #expect(failed.first?["count"] == .int(4))
        #expect(failed.first?.value(at: ["involvedObject", "resourceVersion"]) == "7")
        #expect(failed.first?.value(at: ["involvedObject", "kind"]) == "Backup")
    }

    @Test("background delivery with a full queue drops new Events and counts them; the reconcile never waits")
    func fullQueueDrops() async throws {
        let api = InMemoryKubeAPI()
        // The API answers every create slowly: the one lane fills up.
        let recorder = EventRecorder(api: SlowCreates(inner: api), delivery: .background(lanes: 1, capacity: 5))
        let started = ContinuousClock.now
        for i in 0..<50 { await recorder.record(Self.backup(i), .normal, reason: "Scheduled", message: "m\(i)") }
        #expect(started.duration(to: .now) < .milliseconds(150))
        #expect(recorder.dropped >= 40)
        // A flush with too little time says so; one with enough writes what was queued.
        #expect(await recorder.flush(within: .milliseconds(50)) == false)
        #expect(recorder.pending > 0)
        // (Enough: a second alone; a full parallel run on two cores has kept this suite's tasks from
        // running for 20-30 s, so the bound is generous.)
        #expect(await recorder.flush(within: .seconds(120)))
        #expect(recorder.pending == 0)
        #expect(api.objects(.events, namespace: "ns").count == 50 - recorder.dropped)
    }
}

/// Creates that take 200 ms; everything else passes straight through.
struct SlowCreates: KubeAPI {
    let inner: InMemoryKubeAPI
    func get(_ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue {
        try await inner.get(kind, namespace: namespace, name: name)
    }
    func list(_ kind: ResourceKind, namespace: String?, options: ListOptions) async throws -> ObjectList {
        try await inner.list(kind, namespace: namespace, options: options)
    }
    func watch(_ kind: ResourceKind, namespace: String?, options: WatchOptions) async throws -> WatchStream {
        try await inner.watch(kind, namespace: namespace, options: options)
    }
    func create(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> JSONValue {
        try await Task.sleep(for: .milliseconds(200))
        return try await inner.create(kind, namespace: namespace, object: object)
    }
    func update(_ kind: ResourceKind, namespace: String?, object: JSONValue, subresource: String?) async throws -> JSONValue {
        try await inner.update(kind, namespace: namespace, object: object, subresource: subresource)
    }
    func patch(_ kind: ResourceKind, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> JSONValue {
        try await inner.patch(kind, namespace: namespace, name: name, patch: patch, subresource: subresource)
    }
    func delete(_ kind: ResourceKind, namespace: String?, name: String, options: DeleteOptions) async throws -> JSONValue? {
        try await inner.delete(kind, namespace: namespace, name: name, options: options)
    }
}
