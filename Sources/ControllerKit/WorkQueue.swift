import Foundation
import KubeEvents

/// The keys a controller has to look at. A key is queued at most once however often it is added, is
/// never handed to two workers at once (added again while being processed, it comes back after
/// `done`), can be added after a delay, and backs off exponentially per key while it keeps failing.
public actor WorkQueue<Key: Hashable & Sendable> {
    public struct Backoff: Sendable {
        public var base: Duration
        public var cap: Duration
        public init(base: Duration = .milliseconds(500), cap: Duration = .seconds(300)) {
            self.base = base
            self.cap = cap
        }
    }

    private var queue: [Key] = []
    private var head = 0
    private var queued: Set<Key> = []
    private var processing: Set<Key> = []
    private var dirty: Set<Key> = []
    private var addedAt: [Key: ContinuousClock.Instant] = [:]
    private var failures: [Key: Int] = [:]
    /// Delayed keys and their deadlines; `timers` orders them (entries whose deadline no longer
    /// matches `waiting` are stale and skipped). One task sleeps until the earliest deadline, instead
    /// of one sleeping task per key (ten thousand delayed keys cost ten thousand tasks otherwise).
    private var waiting: [Key: Date] = [:]
    private var timers = DeadlineHeap<Key>()
    private var timer: (deadline: Date, task: Task<Void, Never>)?
    private var getters: [CheckedContinuation<Key?, Never>] = []
    private var shuttingDown = false
    private let backoff: Backoff
    private let clock: any ControllerClock
    private let metrics: MetricsRegistry?
    private let name: String

    public init(name: String, backoff: Backoff = Backoff(), clock: any ControllerClock = SystemClock(), metrics: MetricsRegistry? = nil) {
        self.name = name
        self.backoff = backoff
        self.clock = clock
        self.metrics = metrics
    }

    public var depth: Int { queue.count - head }
    public var isProcessing: Bool { !processing.isEmpty }

    public func add(_ key: Key) {
        guard !shuttingDown else { return }
        metrics?.increment("workqueue_adds_total", ["name": name])
        if queued.contains(key) { return }
        if processing.contains(key) {
            dirty.insert(key)
            return
        }
        queued.insert(key)
        addedAt[key] = .now
        if let getter = getters.first {
            getters.removeFirst()
            hand(key, to: getter)
        } else {
            queue.append(key)
            metrics?.set("workqueue_depth", ["name": name], Double(depth))
        }
    }

    /// Adds `key` once `delay` has passed; an earlier pending deadline for the same key wins.
    public func add(_ key: Key, after delay: Duration) {
        guard !shuttingDown else { return }
        if delay <= .zero { return add(key) }
        let deadline = clock.now().addingTimeInterval(delay.seconds)
        if let existing = waiting[key], existing <= deadline { return }
        waiting[key] = deadline
        timers.push(deadline, key)
        armTimer()
    }

    /// Makes the timer task sleep until the earliest pending deadline.
    private func armTimer() {
        while let top = timers.peek, waiting[top.key] != top.deadline { timers.pop() }
        guard let earliest = timers.peek?.deadline else {
            timer?.task.cancel()
            timer = nil
            return
        }
        if let t = timer, t.deadline <= earliest { return }
        timer?.task.cancel()
        let clock = self.clock
        let task = Task {
            do { try await clock.sleep(until: earliest) } catch { return }
            self.fireDue()
        }
        timer = (earliest, task)
    }

    private func fireDue() {
        timer = nil
        // Deadlines within the timer's own tolerance (1 ms) fire together: keys due at the same
        // moment, computed a few microseconds apart, would otherwise wait for a timer each in turn.
        let now = clock.now().addingTimeInterval(0.001)
        while let top = timers.peek, top.deadline <= now {
            timers.pop()
            guard waiting[top.key] == top.deadline else { continue }
            waiting[top.key] = nil
            add(top.key)
        }
        armTimer()
    }

    /// Adds `key` after its per-key backoff: base × 2^(failures), capped.
    public func addRateLimited(_ key: Key) {
        let n = failures[key, default: 0]
        failures[key] = n + 1
        let seconds = min(backoff.base.seconds * pow(2, Double(min(n, 30))), backoff.cap.seconds)
        add(key, after: .milliseconds(Int64(seconds * 1000)))
    }

    /// Clears the key's failure count (after a successful reconcile).
    public func forget(_ key: Key) {
        failures[key] = nil
    }

    public func failureCount(_ key: Key) -> Int { failures[key, default: 0] }

    /// The next key to process, waiting for one; `nil` once the queue is shut down.
    public func next() async -> Key? {
        if head < queue.count {
            let key = queue[head]
            head += 1
            if head > 1024 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return take(key)
        }
        if shuttingDown { return nil }
        return await withCheckedContinuation { getters.append($0) }
    }

    private func hand(_ key: Key, to getter: CheckedContinuation<Key?, Never>) {
        getter.resume(returning: take(key))
    }

    private func take(_ key: Key) -> Key {
        queued.remove(key)
        processing.insert(key)
        if let t = addedAt.removeValue(forKey: key) {
            let waited = t.duration(to: .now)
            metrics?.observe("workqueue_queue_duration_seconds", ["name": name], waited.seconds)
        }
        metrics?.set("workqueue_depth", ["name": name], Double(depth))
        return key
    }

    /// Marks `key` processed; if it was added meanwhile it is queued again now.
    public func done(_ key: Key) {
        processing.remove(key)
        if dirty.remove(key) != nil { add(key) }
    }

    public func shutDown() {
        shuttingDown = true
        timer?.task.cancel()
        timer = nil
        waiting.removeAll()
        timers = DeadlineHeap()
        let pending = getters
        getters.removeAll()
        for g in pending { g.resume(returning: nil) }
    }
}

/// A binary min-heap of (deadline, key).
struct DeadlineHeap<Key> {
    private var items: [(deadline: Date, key: Key)] = []

    var peek: (deadline: Date, key: Key)? { items.first }

    mutating func push(_ deadline: Date, _ key: Key) {
        items.append((deadline, key))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].deadline < items[parent].deadline else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    @discardableResult
    mutating func pop() -> (deadline: Date, key: Key)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < items.count, items[l].deadline < items[smallest].deadline { smallest = l }
            if r < items.count, items[r].deadline < items[smallest].deadline { smallest = r }
            if smallest == i { break }
            items.swapAt(i, smallest)
            i = smallest
        }
        return top
    }
}
