import Foundation
import KubeModel

/// Fans committed changes out to open watches.
public final class WatchHub: Sendable {
    private let state = LockedState()

    final class LockedState: @unchecked Sendable {
        let lock = NSLock()
        var next = 0
        var closed = false
        var subscribers: [Int: (String, AsyncStream<StoredEvent>.Continuation)] = [:]
    }

    public init() {}

    /// A stream of the changes to one resource from now on, and a function that ends it.
    public func subscribe(_ resourceKey: String) -> (AsyncStream<StoredEvent>, @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<StoredEvent>.makeStream(bufferingPolicy: .bufferingNewest(100_000))
        state.lock.lock()
        if state.closed {
            // The server is stopping: a watch that starts now ends at once.
            state.lock.unlock()
            continuation.finish()
            return (stream, {})
        }
        let id = state.next
        state.next += 1
        state.subscribers[id] = (resourceKey, continuation)
        state.lock.unlock()
        let cancel: @Sendable () -> Void = { [state] in
            state.lock.lock()
            let sub = state.subscribers.removeValue(forKey: id)
            state.lock.unlock()
            sub?.1.finish()
        }
        continuation.onTermination = { _ in cancel() }
        return (stream, cancel)
    }

    /// Open watches on a resource (tests use it to know a client is watching).
    public func watcherCount(_ resourceKey: String) -> Int {
        state.lock.lock()
        defer { state.lock.unlock() }
        return state.subscribers.values.filter { $0.0 == resourceKey }.count
    }

    public func publish(_ event: StoredEvent) {
        state.lock.lock()
        let targets = state.subscribers.values.filter { $0.0 == event.resourceKey }.map(\.1)
        state.lock.unlock()
        for t in targets { t.yield(event) }
    }

    /// Ends every open watch, and every watch that starts from now on.
    public func finishAll() {
        state.lock.lock()
        state.closed = true
        let all = state.subscribers.values.map(\.1)
        state.subscribers.removeAll()
        state.lock.unlock()
        for c in all { c.finish() }
    }
}
