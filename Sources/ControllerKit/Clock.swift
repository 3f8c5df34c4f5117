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
        let seconds = deadline.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .milliseconds(Int64(seconds * 1000) + 1)) }
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
    private var sleepers: [(deadline: Date, continuation: CheckedContinuation<Void, any Error>)] = []

    public init(_ start: Date) { current = start }

    public func now() -> Date {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    public func sleep(until deadline: Date) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            lock.lock()
            if deadline <= current {
                lock.unlock()
                c.resume()
                return
            }
            sleepers.append((deadline, c))
            lock.unlock()
        }
    }

    public func advance(by seconds: TimeInterval) { set(now().addingTimeInterval(seconds)) }

    public func set(_ date: Date) {
        lock.lock()
        current = date
        let due = sleepers.filter { $0.deadline <= date }
        sleepers.removeAll { $0.deadline <= date }
        lock.unlock()
        for s in due { s.continuation.resume() }
    }
}
