import AWSCore
import BRModel
import BackupStorage
import Foundation

/// Deleting a volume-snapshot backup's EBS snapshots before its objects (reference 7.7): every
/// `snapshot_id` of `backupmeta`, `InvalidSnapshot.NotFound` counting as deleted, throttled by
/// `cleanOption.snapshotsDeleteRatio` (after every 10 deletions, at least 10 / ratio seconds).
///
/// Unlike TiDB Operator, an unreadable `backupmeta` is an error (the clean fails and the finalizer
/// stays) instead of a success that leaks every snapshot; only a backup that failed before BR wrote
/// `backupmeta` may have none (BR deletes the snapshots it began when it fails).
struct VolumeSnapshotClean {
    let manager: Manager
    var sleep: @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }

    func deleteSnapshots(_ backup: Backup, storage: any BackupStorage) async throws {
        let ids = try await snapshotIDs(backup, storage: storage)
        guard !ids.isEmpty else {
            manager.log("clean of \(backup.namespace)/\(backup.name): no EBS snapshots to delete")
            return
        }
        let ec2 = try EC2Client.fromEnvironment(manager.environment, fallbackRegion: backup.spec.s3?.region)
        let ratio = backup.spec.cleanOption?.snapshotsDeleteRatio ?? 1
        let window = ratio > 0 ? Duration.seconds(Int64(10 / ratio)) : .zero
        var deleted = 0, missing = 0
        var windowStart = ContinuousClock.now
        for (i, id) in ids.enumerated() {
            if try await ec2.deleteSnapshot(id) { deleted += 1 } else { missing += 1 }
            if (i + 1) % 10 == 0 {
                let spent = ContinuousClock.now - windowStart
                if spent < window { try await sleep(window - spent) }
                windowStart = ContinuousClock.now
            }
        }
        manager.log("clean of \(backup.namespace)/\(backup.name): \(deleted) EBS snapshots deleted, \(missing) already gone")
    }

    func snapshotIDs(_ backup: Backup, storage: any BackupStorage) async throws -> [String] {
        let data: Data
        do {
            data = try await storage.read(VolumeSnapshotLayout.backupMetaKey)
        } catch where Self.isMissing(error) {
            guard backup.status.phase == .failed || backup.status.has(.volumeBackupFailed) || backup.status.has(.volumeBackupInitializeFailed) else {
                throw ManagerError("\(backup.status.backupPath ?? "")/\(VolumeSnapshotLayout.backupMetaKey) does not exist, so the snapshots of this backup cannot be found; the data is kept")
            }
            // BR deletes the snapshots it began when it fails before writing backupmeta.
            manager.log("clean of \(backup.namespace)/\(backup.name): the backup failed before BR wrote \(VolumeSnapshotLayout.backupMetaKey); no snapshots are recorded")
            return []
        }
        return try VolumeSnapshotDocument.decode(data).snapshots.map(\.snapshotID)
    }

    static func isMissing(_ error: any Error) -> Bool {
        let text = "\(error)"
        return text.contains("NoSuchKey") || text.contains("not exist") || text.contains("NotFound") || text.contains("No such file")
    }
}
