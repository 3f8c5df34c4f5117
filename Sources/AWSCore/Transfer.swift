import Foundation

/// The pieces every object store's large-file transfer shares: the file's size, one chunk of it,
/// positioned writes, and a bounded number of parts in flight.
public enum Transfer {
    public static func fileSize(_ path: String) throws -> Int64 {
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            return (attributes[.size] as? NSNumber)?.int64Value ?? 0
        } catch {
            throw LocalFileError(description: "cannot read \(path): \(error.localizedDescription)")
        }
    }

    public static func readChunk(_ path: String, offset: Int64, count: Int) throws -> Data {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        return try handle.read(upToCount: count) ?? Data()
    }

    /// Runs `body(0..<count)` with at most `concurrency` in flight; the first error cancels the rest.
    public static func forEachPart<R: Sendable>(_ count: Int, concurrency: Int,
                                                _ body: @escaping @Sendable (Int) async throws -> R) async throws -> [R] {
        try await withThrowingTaskGroup(of: (Int, R).self) { group in
            var results = [R?](repeating: nil, count: count)
            var next = 0
            func add() {
                let n = next
                group.addTask { (n, try await body(n)) }
                next += 1
            }
            while next < min(count, max(1, concurrency)) { add() }
            while let (n, value) = try await group.next() {
                results[n] = value
                if next < count { add() }
            }
            return results.map { $0! }
        }
    }

    /// Downloads `size` bytes into `path` in ranged parts: `fetch(start...end)` answers one range.
    public static func download(size: Int64, to path: String, partSize: Int, concurrency: Int,
                                fetch: @escaping @Sendable (ClosedRange<Int64>) async throws -> Data) async throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw LocalFileError(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if size == 0 { return }
        let parts = Int((size + Int64(partSize) - 1) / Int64(partSize))
        _ = try await forEachPart(parts, concurrency: concurrency) { n in
            let start = Int64(n) * Int64(partSize)
            let end = min(start + Int64(partSize), size) - 1
            let data = try await fetch(start...end)
            guard Int64(data.count) == end - start + 1 else {
                throw LocalFileError(description: "range \(start)-\(end) of the object returned \(data.count) bytes")
            }
            try data.withUnsafeBytes { raw in
                var written = 0
                while written < raw.count {
                    let n = pwrite(fd, raw.baseAddress! + written, raw.count - written, off_t(start) + off_t(written))
                    if n < 0 { throw LocalFileError(description: "writing \(path): \(String(cString: strerror(errno)))") }
                    written += n
                }
            }
        }
    }
}
