import BRModel
import BRObjects
import BackupStorage
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// A snapshot backup's result read from its `backupmeta` in storage: the commit TS and the size.
extension Manager {
    /// Reads `backupmeta` and writes Complete with its size and commit TS (`message`, `started` when
    /// given); a backupmeta that cannot be read is `GetBackupMetadataFailed` with `missing`'s words.
    func completeFromMeta(_ backup: Backup, _ options: ManagerOptions, path: String, started: Time?, message: String? = nil,
                          missing: (any Error) -> String) async throws {
        let meta: BackupMetaSummary
        let size: Int64
        do {
            let storage = try storageFactory.make(backup.spec.storage)
            meta = try await readBackupMeta(storage)
            size = try await backupSize(meta, storage: storage)
        } catch {
            let text = missing(error)
            try await backupCondition(options, .failed, reason: "GetBackupMetadataFailed", message: text)
            throw ManagerError(text)
        }
        let completed = Time(now())
        try await backupCondition(options, .complete, message: message, extra: { s in
            if let started { s.timeStarted = started }
            s.backupPath = path
            s.complete(at: completed)
            s.backupSize = size
            s.backupSizeReadable = BRStatusMath.readableSize(size)
            s.commitTs = String(meta.endVersion)
        })
        log("backup \(options.namespace)/\(options.name) complete: \(size) bytes, commitTs \(meta.endVersion)")
    }

    /// The result of a snapshot backup whose Job ended without writing it, read from `backupmeta`:
    /// Complete with its size and commit TS, or Failed when there is no usable metadata.
    func recordResult(_ backup: Backup, _ options: ManagerOptions) async throws {
        let path: String
        do { path = try ToolArguments.storagePath(backup.spec.storage) } catch {
            try await backupCondition(options, .failed, reason: "GetBackupRemotePathFailed", message: "\(error)")
            throw error
        }
        if options.dryRun {
            log("result only: reads \(path)/backupmeta and writes Complete with its size and commit TS, or Failed")
            return
        }
        try await completeFromMeta(backup, options, path: path, started: nil,
                                   message: "the result was read from \(path)/backupmeta after the backup Job completed without writing it",
                                   missing: { "the backup Job completed without writing its result, and no usable backupmeta is at \(path): \($0)" })
    }

    func readBackupMeta(_ storage: any BackupStorage) async throws -> BackupMetaSummary {
        var lastError: Error = ManagerError("backupmeta not read")
        for (attempt, delay) in ([Duration.zero] + metaRetryDelays).enumerated() {
            if attempt > 0 { try await Task.sleep(for: delay) }
            let bytes: Data
            do {
                bytes = try await storage.read("backupmeta")
            } catch {
                lastError = error
                if "\(error)".contains("not exist") || "\(error)".contains("NoSuchKey") { break }
                continue
            }
            // Bytes that do not parse never will: no second read.
            return try BackupMetaSummary.parse(bytes)
        }
        throw lastError
    }

    /// `backup_size` when BR wrote it; else the inline files (old format); else, for the split format
    /// (where TiDB Operator reports only the meta's own size), the data files of the index and its meta
    /// files; else what the storage holds under the prefix.
    /// Reads the split format's MetaFile objects from `names` on, each once (at most 100,000): `visit`
    /// takes one's bytes and returns the names it refers to further.
    func walkMetaFiles(_ names: [String], _ storage: any BackupStorage, _ visit: (ArraySlice<UInt8>) throws -> [String]) async throws {
        var pending = names
        var seen = Set<String>()
        while let name = pending.popLast(), seen.insert(name).inserted, seen.count < 100_000 {
            pending += try visit(ArraySlice(try await storage.read(name)))
        }
    }

    func backupSize(_ meta: BackupMetaSummary, storage: any BackupStorage) async throws -> Int64 {
        if meta.backupSize > 0 { return Int64(meta.backupSize) }
        if meta.inlineFilesSize > 0 { return Int64(meta.encodedSize) + Int64(meta.inlineFilesSize) }
        var total = meta.indexedFilesSize
        try await walkMetaFiles(meta.metaFileNames, storage) { bytes in
            let (size, more) = try BackupMetaSummary.metaFile(bytes)
            total += size
            return more
        }
        if total > 0 { return Int64(total) }
        return try await storage.measure().bytes
    }
}
