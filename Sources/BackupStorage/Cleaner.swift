import Foundation

/// `spec.cleanOption` with the code defaults of reference 1.2.5 applied.
public struct CleanSettings: Sendable, Hashable {
    public var pageSize: Int = 10000
    public var retryCount: Int = 5
    public var backoffEnabled: Bool = false
    public var disableBatchConcurrency: Bool = false
    public var batchConcurrency: Int = 10
    public var routineConcurrency: Int = 100

    public init() {}
}

public struct CleanReport: Sendable, Hashable {
    public var rounds = 0
    public var listed = 0
    public var deleted = 0
    public var failed = 0
    public var requests = 0
    public var backoffs = 0
    /// The bucket or container does not exist: nothing was ever written there, so nothing is left.
    public var containerMissing = false
    /// Old versions and delete markers removed from a versioned bucket.
    public var versionsDeleted = 0
}

/// Deletes everything under a storage's prefix (reference 6.8.1): page by page, each page in
/// batches of the storage's batch size in parallel (or one request per object), backing off after
/// a page with failures when asked, then checking that nothing failed and nothing is left. A failed
/// round is retried, up to `retryCount` rounds.
public struct Cleaner: Sendable {
    public var storage: any BackupStorage
    public var settings: CleanSettings
    public var sleep: @Sendable (Duration) async throws -> Void

    public init(storage: any BackupStorage, settings: CleanSettings = CleanSettings(),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) {
        self.storage = storage
        self.settings = settings
        self.sleep = sleep
    }

    public func clean() async throws -> CleanReport {
        var report = CleanReport()
        var lastError: Error = StorageError("clean of \(storage.location) did not run")
        for _ in 0..<max(1, settings.retryCount) {
            report.rounds += 1
            do {
                try await round(&report)
                // On a versioned bucket the deletes above left the data as old versions behind
                // delete markers (TiDB Operator leaves them: #6066); they go too.
                if let versioned = storage as? any VersionedObjectStore {
                    let purged = try await versioned.purgeVersions()
                    report.versionsDeleted += purged.deleted
                    if !purged.failures.isEmpty {
                        let sample = purged.failures.prefix(3).map(\.description).joined(separator: "; ")
                        throw StorageError("some object versions failed to be deleted from \(storage.location): \(purged.failures.count) (\(sample))")
                    }
                }
                return report
            } catch where StorageError.isMissingContainer(error) {
                report.containerMissing = true
                return report
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    func round(_ report: inout CleanReport) async throws {
        var listed = 0
        var deleted = 0
        var failures: [DeleteFailure] = []
        var token: String?
        var backoff: Duration = .milliseconds(100)
        repeat {
            let page = try await storage.listPage(prefix: "", token: token, limit: max(1, settings.pageSize))
            token = page.next
            if page.objects.isEmpty { break }
            let keys = page.objects.map(\.key)
            let (ok, failed, requests) = try await deletePage(keys)
            report.requests += requests
            listed += keys.count
            deleted += ok
            failures += failed
            if settings.backoffEnabled {
                if !failed.isEmpty || ok + failed.count < keys.count {
                    report.backoffs += 1
                    try await sleep(backoff)
                    backoff = min(backoff * 2, .seconds(1))
                } else {
                    backoff = .milliseconds(100)
                }
            }
        } while token != nil
        report.listed += listed
        report.deleted += deleted
        report.failed += failures.count
        if deleted < listed {
            let sample = failures.prefix(3).map(\.description).joined(separator: "; ")
            throw StorageError("some objects failed to be deleted from \(storage.location): \(listed - deleted) of \(listed)" + (sample.isEmpty ? "" : " (\(sample))"))
        }
        let left = try await storage.listPage(prefix: "", token: nil, limit: 1)
        if !left.objects.isEmpty {
            throw StorageError("some objects are missing to be deleted from \(storage.location), for example \(left.objects[0].key)")
        }
    }

    /// Deletes one page; answers (deleted, failures, requests sent).
    func deletePage(_ keys: [String]) async throws -> (Int, [DeleteFailure], Int) {
        let useBatches = storage.batchDeleteSize != nil && !settings.disableBatchConcurrency
        let chunkSize = useBatches ? storage.batchDeleteSize! : 1
        let width = max(1, useBatches ? settings.batchConcurrency : settings.routineConcurrency)
        let chunks = stride(from: 0, to: keys.count, by: chunkSize).map { Array(keys[$0..<min(keys.count, $0 + chunkSize)]) }
        let storage = self.storage
        return await withTaskGroup(of: [DeleteFailure].self) { group in
            var next = 0
            var failures: [DeleteFailure] = []
            func add(_ chunk: [String]) {
                group.addTask {
                    do {
                        if useBatches { return try await storage.deleteBatch(chunk) }
                        try await storage.delete(chunk[0])
                        return []
                    } catch {
                        // A failed request marks every key of its batch failed.
                        return chunk.map { DeleteFailure(key: $0, message: "\(error)") }
                    }
                }
            }
            while next < min(width, chunks.count) {
                add(chunks[next])
                next += 1
            }
            while let failed = await group.next() {
                failures += failed
                if next < chunks.count {
                    add(chunks[next])
                    next += 1
                }
            }
            return (keys.count - failures.count, failures, chunks.count)
        }
    }
}
