import Foundation
import KubeAPI
import KubeEvents
import Logging
import ServiceLifecycle
import Synchronization

/// Runs informers and controllers together — under leader election when configured — as one
/// swift-service-lifecycle `Service`: a graceful shutdown (SIGTERM) stops the workers and releases the
/// lease. As in controller-runtime, informers start with leadership, so a standby replica holds no
/// cache and costs almost nothing.
public final class ControllerManager: Service, Sendable {
    public let metrics: MetricsRegistry
    let election: LeaderElector?
    let logger: Logger
    private let parts = Mutex<(informers: [Informer], controllers: [Controller], starters: [@Sendable () async -> Void],
                               optional: Set<ObjectIdentifier>)>(([], [], [], []))
    private let leading = Atomic<Bool>(false)

    public init(election: LeaderElector? = nil, metrics: MetricsRegistry = MetricsRegistry(), logger: Logger = Logger(label: "manager")) {
        self.election = election
        self.metrics = metrics
        self.logger = logger
        metrics.describe("leader_election_master_status", .gauge, help: "1 while this replica leads.")
        // A standby exports 0, so "no replica leads" is a sum of 0 rather than a missing series.
        metrics.set("leader_election_master_status", [:], 0)
    }

    /// `requiredForReadiness: false` for a cache that only saves reads (its resource may not even be
    /// installed, e.g. TidbClusters on a cluster without TiDB Operator's CRDs).
    public func add(informer: Informer, requiredForReadiness: Bool = true) {
        parts.withLock {
            $0.informers.append(informer)
            if !requiredForReadiness { $0.optional.insert(ObjectIdentifier(informer)) }
        }
    }
    public func add(controller: Controller) { parts.withLock { $0.controllers.append(controller) } }
    /// Work that runs while leading besides the controllers (e.g. periodic checks).
    public func add(task: @escaping @Sendable () async -> Void) { parts.withLock { $0.starters.append(task) } }

    public var isLeading: Bool { leading.load(ordering: .relaxed) }

    /// Ready once every informer has listed (a standby replica is ready too: it serves nothing).
    public var isReady: Bool {
        if election != nil && !isLeading { return true }
        return parts.withLock { p in p.informers.allSatisfy { $0.hasSynced || p.optional.contains(ObjectIdentifier($0)) } } && isLeading
    }

    /// Returns normally on a graceful shutdown; throws when leadership is lost (the process should exit
    /// and be restarted, as controller-runtime does, rather than keep running without the lease).
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                if let election = self.election {
                    try await election.run { try await self.runControllers() }
                } else {
                    try await self.runControllers()
                }
            }
        } catch is CancellationError {
            logger.info("controllers stopped")
        }
    }

    func runControllers() async throws {
        leading.store(true, ordering: .relaxed)
        metrics.set("leader_election_master_status", [:], 1)
        defer {
            leading.store(false, ordering: .relaxed)
            metrics.set("leader_election_master_status", [:], 0)
        }
        let (informers, controllers, starters) = parts.withLock { ($0.informers, $0.controllers, $0.starters) }
        logger.info("starting controllers", metadata: ["controllers": "\(controllers.map(\.name))", "informers": "\(informers.count)"])
        await withTaskGroup(of: Void.self) { group in
            for informer in informers { group.addTask { await informer.run() } }
            for controller in controllers { group.addTask { await controller.run() } }
            for starter in starters { group.addTask { await starter() } }
        }
        try Task.checkCancellation()
    }
}
