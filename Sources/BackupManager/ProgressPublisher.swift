import BRModel
import BRObjects
import BackupStorage
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// Collects progress and BR operations from output lines and writes them at most every second.
final class ProgressPublisher: @unchecked Sendable {
    let manager: Manager
    let options: ManagerOptions
    let lock = NSLock()
    var steps: [(String, Double)] = []
    var operations: [BROperation] = []
    var task: Task<Void, Never>?

    init(manager: Manager, options: ManagerOptions) {
        self.manager = manager
        self.options = options
    }

    func record(step: String, percent: Double) {
        lock.lock()
        steps.append((step, percent))
        scheduleLocked()
        lock.unlock()
    }

    func record(operation: BROperation) {
        lock.lock()
        operations.append(operation)
        scheduleLocked()
        lock.unlock()
    }

    func scheduleLocked() {
        guard task == nil else { return }
        task = Task {
            try? await Task.sleep(for: .seconds(1))
            // Detached: `flush` cancels this timer to end its wait, and a cancelled task's API calls
            // would be cancelled too, losing what it took.
            await Task.detached { await self.write() }.value
        }
    }

    func take() -> ([(String, Double)], [BROperation]) {
        lock.lock()
        defer {
            steps = []
            operations = []
            task = nil
            lock.unlock()
        }
        return (steps, operations)
    }

    func write() async {
        let (steps, ops) = take()
        if steps.isEmpty && ops.isEmpty { return }
        let now = Time(Date())
        if !options.isRestore {
            try? await manager.updateBackup(options) { b in
                for (step, percent) in steps { b.status.recordProgress(step: step, percent: percent, now: now) }
                for op in ops { b.status.recordOperation(op) }
            }
            return
        }
        try? await manager.updateRestore(options) { r in
            for (step, percent) in steps { r.status.recordProgress(step: step, percent: percent, now: now) }
            for op in ops { r.status.recordOperation(op) }
        }
    }

    func flush() async {
        let pending = { () -> Task<Void, Never>? in
            self.lock.lock()
            defer { self.lock.unlock() }
            return self.task
        }()
        // The cancelled timer still writes what it took; wait for that, so that nothing of it lands
        // after the result the caller writes next.
        pending?.cancel()
        await pending?.value
        await write()
    }
}
