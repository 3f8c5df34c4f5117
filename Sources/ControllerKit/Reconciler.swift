import Foundation
import KubeAPI
import KubeEvents
import Logging

/// What a reconcile asks for next.
public enum ReconcileOutcome: Sendable, Equatable {
    /// Nothing to do until something changes.
    case done
    /// Look again after this long (a cron slot, a deadline, polling a Job).
    case requeue(after: Duration)
}

/// Brings one object's world in line with its spec. Called with a key, never twice at once for the
/// same key; errors are retried with per-key backoff.
public protocol Reconciler: Sendable {
    func reconcile(_ key: ObjectKey) async throws -> ReconcileOutcome
}

/// A work queue and the workers that drain it into a reconciler.
public final class Controller: Sendable {
    public let name: String
    public let queue: WorkQueue<ObjectKey>
    let reconciler: any Reconciler
    let workers: Int
    /// The workers' task priority (nil: the caller's).
    let priority: TaskPriority?
    let metrics: MetricsRegistry
    let logger: Logger

    public init(name: String, reconciler: any Reconciler, workers: Int = 2, priority: TaskPriority? = nil, clock: any ControllerClock = SystemClock(),
                backoff: WorkQueue<ObjectKey>.Backoff = .init(), metrics: MetricsRegistry = MetricsRegistry(),
                logger: Logger = Logger(label: "controller")) {
        self.name = name
        self.priority = priority
        self.reconciler = reconciler
        self.workers = max(1, workers)
        self.metrics = metrics
        self.logger = logger
        queue = WorkQueue(name: name, backoff: backoff, clock: clock, metrics: metrics)
        metrics.describe("controller_reconcile_total", .counter, help: "Reconciles by controller and result.")
        metrics.describe("controller_reconcile_duration_seconds", .histogram, help: "Time spent in one reconcile.")
        metrics.describe("workqueue_depth", .gauge, help: "Keys waiting in a controller's queue.")
        metrics.describe("workqueue_adds_total", .counter, help: "Keys added to a controller's queue.")
        metrics.describe("workqueue_queue_duration_seconds", .histogram, help: "Time a key waits before a worker takes it.")
    }

    public func enqueue(_ key: ObjectKey) async { await queue.add(key) }

    /// Runs the workers until cancelled.
    public func run() async {
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<workers {
                    group.addTask(priority: priority) { await self.work() }
                }
            }
        } onCancel: {
            Task { await self.queue.shutDown() }
        }
    }

    func work() async {
        while let key = await queue.next() {
            await process(key)
            await queue.done(key)
        }
    }

    /// One reconcile of `key` with its bookkeeping (exposed for tests that step controllers by hand).
    public func process(_ key: ObjectKey) async {
        let started = ContinuousClock.now
        do {
            let outcome = try await reconciler.reconcile(key)
            await queue.forget(key)
            if case .requeue(let after) = outcome { await queue.add(key, after: after) }
            metrics.increment("controller_reconcile_total", ["controller": name, "result": "success"])
        } catch let error as KubeAPIError where error.isConflict {
            // Someone else wrote first: read again right away.
            metrics.increment("controller_reconcile_total", ["controller": name, "result": "conflict"])
            await queue.add(key)
        } catch is CancellationError {
            return
        } catch {
            metrics.increment("controller_reconcile_total", ["controller": name, "result": "error"])
            logger.warning("reconcile failed", metadata: ["controller": "\(name)", "key": "\(key)", "error": "\(error)"])
            await queue.addRateLimited(key)
        }
        metrics.observe("controller_reconcile_duration_seconds", ["controller": name], started.duration(to: .now).seconds)
    }
}

extension ReconcileOutcome {
    /// The earlier of two wake-ups (`done` never wakes).
    public func sooner(_ other: ReconcileOutcome) -> ReconcileOutcome {
        switch (self, other) {
        case (.done, _): return other
        case (_, .done): return self
        case (.requeue(let a), .requeue(let b)): return .requeue(after: min(a, b))
        }
    }
}
