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
