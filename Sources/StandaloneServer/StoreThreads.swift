import NIOPosix

/// Threads for calls into the store that wait. A write waits until the group commit that carries it
/// has committed (`GroupCommit`); on Swift's cooperative threads (one per core, two here) two such
/// waits would stop every task of the process: request parsing, the controllers, the job runner.
/// Writes run here instead, and the tasks that asked for them suspend rather than block, so the cores
/// keep working and the writes that pile up meanwhile share one commit.
public enum StoreThreads {
    /// More threads than cores on purpose: most of them wait for a commit rather than run.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    /// Runs `body` on a store thread and returns its result to the suspended caller.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }
}
