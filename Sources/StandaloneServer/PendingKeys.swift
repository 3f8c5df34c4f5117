import Foundation

/// Changed keys waiting to be looked at, each once, in the order they first changed; the newest
/// resourceVersion of each is kept (to tell a change the runner made itself).
final class PendingKeys: @unchecked Sendable {
    struct Change: Sendable {
        var namespace: String
        var name: String
        var resourceVersion: Int64
        var deleted: Bool
    }

    private let lock = NSLock()
    private var order: [String] = []
    private var head = 0
    private var changes: [String: Change] = [:]
    private var waiter: CheckedContinuation<Change?, Never>?
    private var finished = false

    func add(_ namespace: String, _ name: String, rv: Int64, deleted: Bool) {
        let key = "\(namespace)/\(name)"
        let change = Change(namespace: namespace, name: name, resourceVersion: rv, deleted: deleted)
        lock.lock()
        if let w = waiter {
            waiter = nil
            lock.unlock()
            w.resume(returning: change)
            return
        }
        if changes.updateValue(change, forKey: key) == nil { order.append(key) }
        lock.unlock()
    }

    func finish() {
        lock.lock()
        finished = true
        let w = waiter
        waiter = nil
        lock.unlock()
        w?.resume(returning: nil)
    }

    /// The next changed key, or nil once the source ended and nothing is left.
    func next() async -> Change? {
        await withCheckedContinuation { (c: CheckedContinuation<Change?, Never>) in
            lock.lock()
            while head < order.count {
                let key = order[head]
                head += 1
                if head > 1024 && head * 2 > order.count {
                    order.removeFirst(head)
                    head = 0
                }
                if let change = changes.removeValue(forKey: key) {
                    lock.unlock()
                    c.resume(returning: change)
                    return
                }
            }
            if finished {
                lock.unlock()
                c.resume(returning: nil)
                return
            }
            waiter = c
            lock.unlock()
        }
    }
}
