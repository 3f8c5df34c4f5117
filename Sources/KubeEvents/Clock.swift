import Foundation

/// Wall-clock time for controllers: real in production, manual in tests (schedules, deadlines and
/// requeue-after all read it).
public protocol ControllerClock: Sendable {
    func now() -> Date
    /// Returns at `deadline` (or throws `CancellationError`).
    func sleep(until deadline: Date) async throws
}

public struct SystemClock: ControllerClock {
    public init() {}
    public func now() -> Date { Date() }
    public func sleep(until deadline: Date) async throws {
        // Without a tolerance the runtime may wake a long sleep late by a fraction of its length (a
        // schedule's next slot is a minute or more away): ask for the deadline, within a millisecond.
        let seconds = deadline.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .milliseconds(Int64(seconds * 1000) + 1), tolerance: .milliseconds(1)) }
    }
}

public extension ControllerClock {
    func sleep(for duration: Duration) async throws {
        try await sleep(until: now().addingTimeInterval(duration.seconds))
    }
}

public extension Duration {
    var seconds: TimeInterval { TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18 }
}

/// A clock that moves only when told: sleepers wake when `advance` passes their deadline. For tests of
/// schedules, deadlines and back-off.
public final class ManualClock: ControllerClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date
    private var sleepers: [(id: UUID, deadline: Date, continuation: CheckedContinuation<Void, any Error>)] = []

    public init(_ start: Date) { current = start }

    public func now() -> Date {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    public func sleep(until deadline: Date) async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                lock.lock()
                if Task.isCancelled {
                    lock.unlock()
                    c.resume(throwing: CancellationError())
                    return
                }
                if deadline <= current {
                    lock.unlock()
                    c.resume()
                    return
                }
                sleepers.append((id, deadline, c))
                lock.unlock()
            }
        } onCancel: {
            lock.lock()
            let index = sleepers.firstIndex { $0.id == id }
            let sleeper = index.map { sleepers.remove(at: $0) }
            lock.unlock()
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    public func advance(by seconds: TimeInterval) { set(now().addingTimeInterval(seconds)) }

    /// How many callers are waiting in `sleep` (tests step time once every sleeper has gone back to sleep).
    public var sleeperCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return sleepers.count
    }

    public func set(_ date: Date) {
        lock.lock()
        current = date
        let due = sleepers.filter { $0.deadline <= date }
        sleepers.removeAll { $0.deadline <= date }
        lock.unlock()
        for s in due { s.continuation.resume() }
    }
}
