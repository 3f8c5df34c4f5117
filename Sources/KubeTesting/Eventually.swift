import Foundation

/// Polls until `condition` holds, for state that changes asynchronously (watches, processes,
/// controllers). The timeout only bounds how long a failing test waits: it is generous because a
/// loaded CI machine can starve the test's tasks for many seconds.
public func eventually(_ timeout: TimeInterval = 90, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
