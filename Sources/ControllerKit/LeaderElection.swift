import Foundation
import KubeAPI
import KubeEvents
import KubeModel
import Logging
import Synchronization

/// Lease-based leader election (coordination.k8s.io/v1), with client-go's rules: a lease held by
/// someone else is taken over only after it has gone unrenewed for `leaseDuration` as observed
/// locally (so clock skew between machines does not matter); the leader renews every `retryPeriod` and
/// steps down when it could not renew for `renewDeadline`; a leader that shuts down releases the lease
/// so the next one need not wait.
///
/// Every attempt is bounded by time of its own: a renewal may take no longer than what is left of the
/// renew deadline, and one that has not answered by then is cancelled and counts as failed. A leader
/// whose connection hangs (a partition that refuses nothing) therefore stops acting within the renew
/// deadline, before the lease can expire for the others, instead of waiting on its HTTP client's own
/// retries; and a renewal stuck in a connection pool is not sent with a stale renewTime after the heal.
public final class LeaderElector: Sendable {
    public struct Configuration: Sendable {
        public var leaseName: String
        public var namespace: String
        public var identity: String
        public var leaseDuration: Duration = .seconds(15)
        public var renewDeadline: Duration = .seconds(10)
        public var retryPeriod: Duration = .seconds(2)
        public init(leaseName: String, namespace: String, identity: String) {
            self.leaseName = leaseName
            self.namespace = namespace
            self.identity = identity
        }
    }

    public enum ElectionError: Error, CustomStringConvertible {
        case lostLease(String)
        public var description: String {
            switch self {
            case .lostLease(let m): "lost the leader lease: \(m)"
            }
        }
    }

    let api: any KubeAPI
    public let configuration: Configuration
    let clock: any ControllerClock
    let logger: Logger

    public init(api: any KubeAPI, configuration: Configuration, clock: any ControllerClock = SystemClock(),
                logger: Logger = Logger(label: "leader-election")) {
        self.api = api
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
    }

    static func microTime(_ date: Date) -> String {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let micros = Int((date.timeIntervalSince1970 - Double(seconds)) * 1_000_000)
        var text = Time(unixSeconds: seconds).description
        text.removeLast()
        return text + String(format: ".%06dZ", micros)
    }

    /// Waits to become leader, runs `work` while leading, and returns when `work` returns. Throws
    /// `ElectionError.lostLease` (after cancelling `work`) when the lease cannot be renewed.
    public func run(_ work: @escaping @Sendable () async throws -> Void) async throws {
        var observed: (record: JSONValue?, at: Date)? = nil
        // Acquire.
        while true {
            try Task.checkCancellation()
            let attempt = await bounded(observed, within: configuration.renewDeadline.seconds)
            observed = attempt.observed
            if attempt.renewed { break }
            try await clock.sleep(for: configuration.retryPeriod)
        }
        logger.info("became leader", metadata: ["lease": "\(configuration.namespace)/\(configuration.leaseName)",
                                                "identity": "\(configuration.identity)"])
        let acquired = observed
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await work() }
            group.addTask {
                var observed = acquired
                var lastRenew = self.clock.now()
                let deadline = self.configuration.renewDeadline.seconds
                while true {
                    try await self.clock.sleep(for: self.configuration.retryPeriod)
                    let started = self.clock.now()
                    // No longer than what is left of the renew deadline.
                    let attempt = await self.bounded(observed, within: deadline - started.timeIntervalSince(lastRenew))
                    observed = attempt.observed
                    if attempt.renewed {
                        // The renewal's own time: the lease says the same (renewTime is taken at its start).
                        lastRenew = started
                    } else if attempt.timedOut || self.clock.now().timeIntervalSince(lastRenew) >= deadline {
                        throw ElectionError.lostLease("not renewed for \(self.configuration.renewDeadline)")
                    }
                }
            }
            defer { group.cancelAll() }
            do {
                try await group.next()
            } catch is CancellationError {
                // Released from a fresh task: this one is cancelled, and its requests would be too.
                await Task { await self.release() }.value
                throw CancellationError()
            } catch let error as ElectionError {
                logger.error("stepping down", metadata: ["error": "\(error)"])
                throw error
            }
            await Task { await self.release() }.value
        }
    }

    typealias Observed = (record: JSONValue?, at: Date)?

    /// One acquire-or-renew, abandoned (its task cancelled) when it has not answered within `seconds`
    /// of real time. The wait does not depend on the attempt ending: a request hanging on a dead
    /// connection is left behind, cancelled, not awaited.
    func bounded(_ observed: Observed, within seconds: TimeInterval) async -> (renewed: Bool, observed: Observed, timedOut: Bool) {
        guard seconds > 0 else { return (false, observed, true) }
        let box = Once<(renewed: Bool, observed: Observed, timedOut: Bool)>()
        return await withCheckedContinuation { continuation in
            box.set(continuation)
            let attempt = Task {
                var o = observed
                let renewed = (try? await self.tryAcquireOrRenew(&o)) ?? false
                box.resume((renewed, o, false))
            }
            let timer = Task {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                if box.resume((false, observed, true)) {
                    self.logger.warning("leader election: the API did not answer in time; the attempt is abandoned",
                                        metadata: ["seconds": "\(seconds)"])
                    attempt.cancel()
                }
            }
            box.onResume { timer.cancel() }
        }
    }

    func tryAcquireOrRenew(_ observed: inout (record: JSONValue?, at: Date)?) async throws -> Bool {
        let c = configuration
        let now = clock.now()
        let lease: JSONValue
        do {
            lease = try await api.get(.leases, namespace: c.namespace, name: c.leaseName)
        } catch let error as KubeAPIError where error.isNotFound {
            let fresh: JSONValue = [
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": ["name": .string(c.leaseName), "namespace": .string(c.namespace)],
                "spec": ["holderIdentity": .string(c.identity), "leaseDurationSeconds": .int(Int64(c.leaseDuration.seconds)),
                         "acquireTime": .string(Self.microTime(now)), "renewTime": .string(Self.microTime(now)), "leaseTransitions": 0],
            ]
            do {
                let created = try await api.create(.leases, namespace: c.namespace, object: fresh)
                observed = (created["spec"], now)
                return true
            } catch let e as KubeAPIError where e.isAlreadyExists { return false }
        }
        let spec = lease["spec"] ?? .emptyObject
        if observed?.record != spec { observed = (spec, now) }
        let holder = spec["holderIdentity"]?.stringValue ?? ""
        let iHold = holder == c.identity
        if !holder.isEmpty && !iHold {
            var duration = c.leaseDuration.seconds
            if case .int(let s)? = spec["leaseDurationSeconds"] { duration = TimeInterval(s) }
            if let since = observed?.at, now.timeIntervalSince(since) < duration { return false }
        }
        var next = lease
        next["spec"]?["holderIdentity"] = .string(c.identity)
        next["spec"]?["leaseDurationSeconds"] = .int(Int64(c.leaseDuration.seconds))
        next["spec"]?["renewTime"] = .string(Self.microTime(now))
        if !iHold {
            next["spec"]?["acquireTime"] = .string(Self.microTime(now))
            var transitions: Int64 = 0
            if case .int(let t)? = spec["leaseTransitions"] { transitions = t }
            next["spec"]?["leaseTransitions"] = .int(transitions + (holder.isEmpty ? 0 : 1))
        }
        do {
            let updated = try await api.update(.leases, namespace: c.namespace, object: next)
            observed = (updated["spec"], now)
            return true
        } catch let e as KubeAPIError where e.isConflict {
            return false
        }
    }

    /// Gives the lease up so a successor need not wait for it to expire.
    func release() async {
        let c = configuration
        do {
            var lease = try await api.get(.leases, namespace: c.namespace, name: c.leaseName)
            guard lease.value(at: ["spec", "holderIdentity"])?.stringValue == c.identity else { return }
            let now = Self.microTime(clock.now())
            lease["spec"]?["holderIdentity"] = ""
            lease["spec"]?["leaseDurationSeconds"] = 1
            lease["spec"]?["renewTime"] = .string(now)
            lease["spec"]?["acquireTime"] = .string(now)
            _ = try await api.update(.leases, namespace: c.namespace, object: lease)
            logger.info("released the leader lease")
        } catch {
            logger.warning("cannot release the leader lease", metadata: ["error": "\(error)"])
        }
    }
}

/// A continuation resumed by whichever of several racers comes first; the others' results are dropped.
final class Once<Value: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Value, Never>?, done: Bool, after: [@Sendable () -> Void])>((nil, false, []))

    func set(_ continuation: CheckedContinuation<Value, Never>) { state.withLock { $0.continuation = continuation } }

    /// Runs `action` once the continuation is resumed (at once if it already was).
    func onResume(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            if s.done { return true }
            s.after.append(action)
            return false
        }
        if now { action() }
    }

    /// Whether this call was the one that resumed it.
    @discardableResult
    func resume(_ value: Value) -> Bool {
        let taken = state.withLock { s -> (CheckedContinuation<Value, Never>, [@Sendable () -> Void])? in
            guard !s.done, let c = s.continuation else { return nil }
            s.done = true
            defer { s.after = [] }
            return (c, s.after)
        }
        guard let (continuation, after) = taken else { return false }
        continuation.resume(returning: value)
        for action in after { action() }
        return true
    }
}
