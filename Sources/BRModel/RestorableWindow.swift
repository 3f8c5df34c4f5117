import KubeModel

/// What a schedule's backups can restore to, for `kubectl get bks` (our addition to the status).
///
/// With a log backup, any point from the oldest Complete snapshot the log still covers (its commit TS
/// at or after the log's start and truncation point) to the log's checkpoint: a snapshot plus the
/// log replayed to the point. Without one, only the snapshots' own commit points, oldest to newest.
public enum RestorableWindow {
    public static func compute(_ backups: [Backup], logBackup: String?) -> (from: Time, until: Time, continuous: Bool)? {
        func ts(_ s: String?) -> UInt64 { UInt64(s ?? "") ?? 0 }
        func time(_ tso: UInt64) -> Time { Time(unixSeconds: TSO.unixMilliseconds(tso) / 1000) }
        let snapshots = backups.filter { $0.spec.effectiveBackupMode == .snapshot && $0.status.phase == .complete }
            .map { ts($0.status.commitTs) }.filter { $0 > 0 }.sorted()
        guard let newest = snapshots.last else { return nil }
        if let logName = logBackup, !logName.isEmpty,
           let log = backups.first(where: { $0.name == logName && $0.spec.effectiveBackupMode == .log }),
           log.status.phase == .running || log.status.phase == .paused {
            let covered = max(ts(log.status.commitTs), ts(log.status.logSuccessTruncateUntil))
            let checkpoint = ts(log.status.logCheckpointTs)
            if covered > 0, let base = snapshots.first(where: { $0 >= covered }), checkpoint >= base {
                return (time(base), time(checkpoint), true)
            }
        }
        return (time(snapshots[0]), time(newest), false)
    }
}
