import BRModel
import BRObjects

/// Taking over from TiDB Operator (docs/migrate-from-tidb-operator.md). Objects are adopted as TiDB
/// Operator left them, because names, labels, finalizers and Jobs are the same: a Complete Backup
/// stays done, a schedule goes on from its `lastBackupTime` (one missed slot, no burst), a Job is
/// followed by its name. What differs is how a pod reports: TiDB Operator's job binary writes the
/// result with a PUT of the whole object, and this operator's CRDs have a status subresource, so the
/// API server answers 200 and drops the status. A Job without `BRLabels.jobBuilderAnnotation` is such
/// a Job; its outcome is taken from the Job itself and from storage:
/// - a backup Job that succeeded: the result is read from the backup's metadata at once (the Job of
///   `Backup.resultJob`), without the grace given to a pod of ours whose write may still come;
/// - a restore Job that succeeded: BR exits 0 only after the restore, so the Restore is Complete
///   (without the commit TS its pod could not write);
/// - a clean Job that succeeded (also one of ours whose write was lost): the data is gone, so the
///   Backup is marked cleaned and its finalizer removed, rather than kept terminating forever.
enum Adoption {
    static func foreignJobSucceeded(_ jobName: String, what: String) -> String {
        "Job \(jobName) completed; it was not created by tidb-backup-operator (TiDB Operator's, from before the takeover), "
            + "and its pod's \(what) result, written as a whole-object update, cannot reach the status subresource"
    }

    static func restoreCompleted(_ jobName: String) -> String {
        "Job \(jobName), created by TiDB Operator before the takeover, completed: the restore ran to its end "
            + "(its commit TS and size were written by a pod whose status update the API server ignores)"
    }

    static func cleanJobSucceeded(_ jobName: String) -> String {
        "Job \(jobName) completed: the backup data is deleted"
    }
}
