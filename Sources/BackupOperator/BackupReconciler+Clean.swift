import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel
import Logging

/// Deleting a Backup (reference 3.7, snapshot modes): its Job stopped first, its data cleaned per
/// `cleanPolicy` by a clean Job, the finalizer released, never held for ever by a namespace going away.
extension BackupReconciler {
    // MARK: Deletion (reference 3.7, snapshot modes)

    func cleanUp(_ backup: Backup) async throws -> ReconcileOutcome {
        guard backup.metadata.hasFinalizer(BRLabels.backupFinalizer) else { return .done }
        let policy = backup.spec.effectiveCleanPolicy
        let mustClean = policy == .delete || (policy == .onFailure && backup.status.phase == .failed)
        if !mustClean || backup.status.has(.clean) {
            try await removeFinalizer(backup)
            return .done
        }
        if backup.spec.effectiveBackupMode == .volumeSnapshot {
            // Deleting a volume-snapshot backup mid-way must not leave GC paused.
            let initJob = try await api.jobState(namespace: backup.namespace, name: backup.volumeInitJobName)
            if initJob.exists && !initJob.deleting { try await deleteJob(backup, backup.volumeInitJobName) }
        }
        if backup.spec.effectiveBackupMode == .log, let outcome = try await LogBackupFlow(r: self).stopBeforeClean(backup) { return outcome }
        // The backup's own Job must be finished (or gone) before its data is deleted.
        let backupJob = try await api.jobState(namespace: backup.namespace, name: backup.jobName)
        if backupJob.exists && !backupJob.finished {
            if !backupJob.deleting { try await deleteJob(backup, backup.jobName) }
            return .requeue(after: .seconds(2))
        }
        if (backup.status.backupPath ?? "").isEmpty {
            try await setCondition(backup, BackupCondition(type: .clean, reason: "NothingToClean", message: "the backup has no backupPath"))
            try await removeFinalizer(backup)
            return .done
        }
        let cleanJob = try await api.jobState(namespace: backup.namespace, name: backup.cleanJobName)
        if cleanJob.exists {
            if cleanJob.failed, try await releaseInTerminatingNamespace(backup, because: "clean job \(backup.cleanJobName) failed (\(cleanJob.failureReason))") {
                return .done
            }
            if cleanJob.failed && !backup.status.has(.cleanFailed) {
                try await setCondition(backup, BackupCondition(type: .cleanFailed, reason: "CleanJobFailed",
                    message: "Job \(backup.cleanJobName) failed (\(cleanJob.failureReason)); the data is kept and the finalizer stays: delete Job \(backup.cleanJobName) to try again, or remove the finalizer to give up"))
                await events.record(backup, .warning, reason: "CleanFailed", message: "Job \(backup.cleanJobName) failed")
                metrics?.increment("backup_clean_failures_total")
            }
            if cleanJob.succeeded {
                // The job binary marks the Backup cleaned before it exits; that write did not arrive
                // (TiDB Operator's pod at a takeover, or a lost write): the Job's success says it all.
                try await setCondition(backup, BackupCondition(type: .clean, reason: "CleanJobSucceeded", message: Adoption.cleanJobSucceeded(backup.cleanJobName)))
                try await removeFinalizer(backup)
                return .done
            }
            return cleanJob.finished ? .done : .requeue(after: .seconds(30))
        }
        let job: JSONValue
        do {
            job = try await jobs.cleanJob(backup)
        } catch let e as JobBuildError {
            // A Secret deleted before the namespace (TiDB Operator #2888, #4994): the clean can never run.
            if try await releaseInTerminatingNamespace(backup, because: "its clean job cannot be built (\(e.message))") { return .done }
            try await setCondition(backup, BackupCondition(type: .retryFailed, reason: e.reason, message: e.message))
            throw e
        }
        do {
            _ = try await api.create(.jobs, namespace: backup.namespace, object: job)
            await events.record(backup, .normal, reason: "SuccessfulCreate",
                                message: "create clean job \(backup.namespace)/\(backup.cleanJobName) successful")
        } catch let e as KubeAPIError where e.isAlreadyExists {
        } catch let e as KubeAPIError where Self.namespaceTerminating(e) {
            // The namespace is going away: no Job can start there any more. Keep the data, let the Backup go.
            await events.record(backup, .warning, reason: "CleanSkipped",
                                message: "namespace \(backup.namespace) is being deleted, so clean job \(backup.cleanJobName) cannot run; the backup data at \(backup.status.backupPath ?? "") was kept")
            try await removeFinalizer(backup)
            return .done
        } catch let e as KubeAPIError {
            try await setCondition(backup, BackupCondition(type: .retryFailed, reason: "CreateCleanJobFailed",
                message: "create clean job \(backup.namespace)/\(backup.cleanJobName) failed, err: \(e.message)"))
            throw e
        }
        try await setCondition(backup, BackupCondition(type: .clean, status: .false))
        return .requeue(after: .seconds(60))
    }

    /// In a namespace being deleted, a clean that cannot succeed (its Secret already gone, its bucket
    /// unreachable) must not hold the Backup, and with it the namespace, for ever: the Backup is
    /// released and what was left behind is said twice, on the Backup and in an Event about the
    /// Namespace (in `default`, where it outlives the namespace). True when it released the Backup.
    func releaseInTerminatingNamespace(_ backup: Backup, because why: String) async throws -> Bool {
        guard let namespace = try await api.getIfPresent(JSONValue.self, .namespaces, namespace: nil, name: backup.namespace),
              namespace.value(at: ["metadata", "deletionTimestamp"]) != nil || namespace.value(at: ["status", "phase"])?.stringValue == "Terminating"
        else { return false }
        let message = "namespace \(backup.namespace) is being deleted and \(why): the data of Backup \(backup.name) at \(backup.status.backupPath ?? "") was left in place; the Backup is released"
        await events.record(backup, .warning, reason: "CleanSkipped", message: message)
        var reference: JSONValue = ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(backup.namespace)]]
        if let uid = namespace.value(at: ["metadata", "uid"]) { reference["metadata"]?["uid"] = uid }
        await events.record(reference, .warning, reason: "BackupDataLeftBehind", message: message)
        logger.warning("backup data left behind", metadata: ["backup": "\(backup.namespace)/\(backup.name)", "path": "\(backup.status.backupPath ?? "")"])
        try await removeFinalizer(backup)
        return true
    }

    static func namespaceTerminating(_ e: KubeAPIError) -> Bool {
        (e.isForbidden && e.message.contains("being terminated")) || (e.isNotFound && e.message.contains("namespaces"))
    }

    func removeFinalizer(_ backup: Backup) async throws {
        try await StatusWriter.updateObject(api, Backup.self, namespace: backup.namespace, name: backup.name) { b in
            b.metadata.removeFinalizer(BRLabels.backupFinalizer)
        }
    }
}
