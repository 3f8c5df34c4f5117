import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// A volume-snapshot (EBS) backup of one cluster, driven phase by phase by this operator (reference
/// 7.2), where TiDB Operator needs its federation manager to flip every phase:
///
/// 1. **initialize**: `backup-<name>-init` runs BR's `operator pause-gc-and-schedulers`; its job binary
///    writes `VolumeBackupInitialized` once BR says GC and the schedulers are paused.
/// 2. **execute**: the operator gathers the cluster metadata (TiKV stores, their EBS volumes, PVCs, PVs,
///    the TidbCluster) into the ConfigMap `backup-<name>-clustermeta`; `backup-<name>` stores it as
///    `clustermeta`, runs `br backup full --type=aws-ebs`, writes `VolumeBackupSnapshotsCreated` as soon
///    as `backupmeta` exists, then `VolumeBackupComplete` with the commit TS and sizes.
/// 3. **resume**: once the snapshots exist the init Job is deleted (BR resumes GC and scheduling on
///    SIGTERM) → `VolumeBackupInitializeComplete`.
/// 4. **teardown**: `Complete`, only after the init Job is gone; or `Failed`, the init Job deleted at
///    once. Every failure path deletes the init Job, and a Backup that is Failed or Complete never
///    keeps one, so GC and PD scheduling are not left paused. There is no automatic retry (as upstream).
///
/// The storage is only ever touched by the Jobs: the operator needs no credentials for it.
struct VolumeSnapshotBackupFlow {
    let r: BackupReconciler
    var api: any KubeAPI { r.api }

    /// Longest wait for the init Job to go before `Complete` is written anyway (a stuck finalizer).
    static let initJobGoneWait: TimeInterval = 120

    func reconcile(_ backup: Backup, cluster: TidbCluster?) async throws -> ReconcileOutcome {
        let status = backup.status
        let initJob = try await api.jobState(namespace: backup.namespace, name: backup.volumeInitJobName)
        if status.phase == .complete || status.phase == .failed || status.phase == .invalid {
            // Whatever happened, nothing may keep GC and PD scheduling paused for a finished Backup.
            if initJob.exists && !initJob.deleting { try await r.deleteJob(backup, backup.volumeInitJobName) }
            return .done
        }
        if status.has(.volumeBackupFailed) || status.has(.volumeBackupInitializeFailed) || status.has(.volumeBackupComplete) {
            return try await teardown(backup, initJob: initJob)
        }
        let execJob = try await api.jobState(namespace: backup.namespace, name: backup.jobName)
        if execJob.failed {
            return try await failed(backup, .volumeBackupFailed, reason: "BackupJobFailed",
                                    message: "Job \(backup.jobName) failed (\(execJob.failureReason)) before it reported a result")
        }
        if status.has(.volumeBackupSnapshotsCreated) {
            return try await resume(backup, initJob: initJob, execJob: execJob)
        }
        return try await initialize(backup, cluster: cluster, initJob: initJob, execJob: execJob)
    }

    // MARK: initialize and execute

    func initialize(_ backup: Backup, cluster: TidbCluster?, initJob: JobState, execJob: JobState) async throws -> ReconcileOutcome {
        guard let cluster else {
            try await r.setCondition(backup, BackupCondition(type: .invalid, reason: "InvalidSpec", message: "a volume-snapshot backup needs spec.br.cluster"))
            return .done
        }
        if !initJob.exists {
            if backup.status.has(.scheduled) {
                return try await failed(backup, .volumeBackupInitializeFailed, reason: "InitializeJobDeleted",
                                        message: "init job deleted before all the volume snapshots are created")
            }
            // A cluster whose volumes cannot be snapshotted (no TiKV pods, a volume that is not EBS)
            // fails here, before GC and PD scheduling are paused for nothing.
            do {
                _ = try await gatherMetadata(backup, cluster: cluster)
            } catch let e as VolumeSnapshotError {
                return try await failed(backup, .volumeBackupInitializeFailed, reason: e.reason, message: e.message)
            }
            let job = try await build(backup) { try await r.jobs.volumeInitJob(backup, cluster: cluster) }
            guard let job else { return .requeue(after: .seconds(30)) }
            try await create(backup, job, name: backup.volumeInitJobName, what: "volume backup init")
            try await r.setCondition(backup, BackupCondition(type: .scheduled))
            return .requeue(after: r.timeouts.podStart)
        }
        // Before every snapshot exists, the init Job must be alive: it is what holds GC paused.
        if initJob.deleting {
            return try await failed(backup, .volumeBackupInitializeFailed, reason: "InitializeJobDeleted",
                                    message: "init job deleted before all the volume snapshots are created")
        }
        if initJob.finished {
            return try await failed(backup, .volumeBackupInitializeFailed, reason: "InitializeJobCompletedOrFailed",
                                    message: "init job completed or failed before all the volume snapshots are created")
        }
        if !backup.status.has(.scheduled) { try await r.setCondition(backup, BackupCondition(type: .scheduled)) }
        guard backup.status.has(.volumeBackupInitialized) else { return .requeue(after: .seconds(10)) }
        if execJob.exists { return .requeue(after: .seconds(30)) }
        if backup.status.has(.prepare) || backup.status.has(.running) {
            return try await failed(backup, .volumeBackupFailed, reason: "JobNotFound",
                                    message: "Job \(backup.jobName) no longer exists while the volumes were being snapshotted")
        }
        return try await execute(backup, cluster: cluster)
    }

    /// Gathers the cluster metadata, hands it to the backup Job through a ConfigMap, creates the Job.
    func execute(_ backup: Backup, cluster: TidbCluster) async throws -> ReconcileOutcome {
        let document: VolumeSnapshotDocument
        do {
            document = try await gatherMetadata(backup, cluster: cluster)
        } catch let e as VolumeSnapshotError {
            return try await failed(backup, .volumeBackupFailed, reason: e.reason, message: e.message)
        }
        let data = document.encoded().serialized()
        if data.utf8.count > 900_000 {
            return try await failed(backup, .volumeBackupFailed, reason: "ClusterMetaTooLarge",
                                    message: "the cluster metadata is \(data.utf8.count) bytes, over what a ConfigMap holds (1 MiB)")
        }
        try await saveConfigMap(backup, data: data)
        let job = try await build(backup) { try await r.jobs.volumeBackupJob(backup, cluster: cluster) }
        guard let job else { return .requeue(after: .seconds(30)) }
        try await create(backup, job, name: backup.jobName, what: "volume backup")
        await r.events.record(backup, .normal, reason: "VolumeSnapshotsStarting",
                              message: "GC and PD scheduling are paused; \(document.tikv.stores.flatMap(\.volumes).count) volumes of \(document.tikv.stores.count) TiKV stores are being snapshotted")
        return .requeue(after: r.timeouts.podStart)
    }

    func gatherMetadata(_ backup: Backup, cluster: TidbCluster) async throws -> VolumeSnapshotDocument {
        let ns = cluster.metadata.namespace ?? backup.clusterNamespace
        let clusterName = cluster.metadata.name ?? ""
        let clusterObject = try await api.get(.tidbClusters, namespace: ns, name: clusterName)
        if VolumeSnapshotClusterMeta.declaresStores(clusterObject) {
            return try VolumeSnapshotClusterMeta.gather(.init(cluster: clusterObject))
        }
        let selector = "\(BRLabels.component)=tikv,\(BRLabels.instance)=\(clusterName)"
        let pods = try await api.listAll(.pods, namespace: ns, labelSelector: selector).items
        var pvcs: [JSONValue] = []
        var pvs: [JSONValue] = []
        var claims = Set<String>()
        for pod in pods {
            for volume in pod.value(at: ["spec", "volumes"])?.arrayValue ?? [] {
                guard let claim = volume.value(at: ["persistentVolumeClaim", "claimName"])?.stringValue, claims.insert(claim).inserted else { continue }
                guard let pvc = try await api.getIfPresent(JSONValue.self, .persistentVolumeClaims, namespace: ns, name: claim) else { continue }
                pvcs.append(pvc)
                if let pv = pvc.value(at: ["spec", "volumeName"])?.stringValue, !pv.isEmpty,
                   let object = try await getClusterScoped(.persistentVolumes, name: pv) {
                    pvs.append(object)
                }
            }
        }
        return try VolumeSnapshotClusterMeta.gather(.init(cluster: clusterObject, pods: pods, pvcs: pvcs, pvs: pvs))
    }

    func getClusterScoped(_ kind: ResourceKind, name: String) async throws -> JSONValue? {
        do { return try await api.get(kind, namespace: nil, name: name) } catch let e as KubeAPIError where e.isNotFound { return nil }
    }

    func saveConfigMap(_ backup: Backup, data: String) async throws {
        let name = VolumeSnapshotLayout.clusterMetaConfigMap(backup)
        let configMap: JSONValue = [
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": ["name": .string(name), "namespace": .string(backup.namespace),
                         "labels": JobBuilder.stringMap(BRLabels.backupJobLabels(backup)),
                         "ownerReferences": [JobBuilder.ownerReference(kind: "Backup", metadata: backup.metadata)]],
            "data": [.init(VolumeSnapshotLayout.clusterMetaConfigMapKey): .string(data)],
        ]
        // One left by an earlier pass whose Job creation failed is replaced by the metadata gathered now.
        try await api.createOrReplace(.configMaps, namespace: backup.namespace, object: configMap)
    }

    // MARK: resume and teardown

    /// The snapshots exist: the init Job goes, which makes BR resume GC and PD scheduling.
    func resume(_ backup: Backup, initJob: JobState, execJob: JobState) async throws -> ReconcileOutcome {
        if !backup.status.has(.volumeBackupInitializeComplete) {
            if initJob.exists && !initJob.deleting { try await r.deleteJob(backup, backup.volumeInitJobName) }
            try await r.setCondition(backup, BackupCondition(type: .volumeBackupInitializeComplete,
                                                             message: "the volume snapshots exist; GC and PD scheduling are resumed"))
        }
        if !execJob.exists {
            return try await failed(backup, .volumeBackupFailed, reason: "JobNotFound",
                                    message: "Job \(backup.jobName) no longer exists while the snapshots were being completed")
        }
        return .requeue(after: .seconds(30))
    }

    func teardown(_ backup: Backup, initJob: JobState) async throws -> ReconcileOutcome {
        let status = backup.status
        var protectionLost = false
        if initJob.exists {
            if initJob.finished && !status.has(.volumeBackupSnapshotsCreated) { protectionLost = true }
            if !initJob.deleting { try await r.deleteJob(backup, backup.volumeInitJobName) }
        }
        try await deleteConfigMap(backup)
        let failure = [BackupConditionType.volumeBackupInitializeFailed, .volumeBackupFailed]
            .compactMap { type in status.conditions?.first { $0.type == type && $0.status == .true } }.first
        if let failure {
            // A BR still snapshotting would do so without GC and scheduling paused: stop it too.
            let execJob = try await api.jobState(namespace: backup.namespace, name: backup.jobName)
            if execJob.exists && !execJob.finished && !execJob.deleting { try await r.deleteJob(backup, backup.jobName) }
            try await finish(backup, BackupCondition(type: .failed, reason: failure.reason ?? "AlreadyFailed",
                                                     message: failure.message ?? "the volume-snapshot backup failed"))
            return .done
        }
        if protectionLost {
            try await finish(backup, BackupCondition(type: .failed, reason: "InitializeJobCompletedOrFailed",
                                                     message: "init job completed or failed before all the volume snapshots were created: GC and PD scheduling were not paused for the whole snapshot"))
            return .done
        }
        if initJob.exists {
            // Complete only once BR has resumed GC and scheduling (bounded, should deletion hang).
            let since = status.conditions?.first { $0.type == .volumeBackupComplete }?.lastTransitionTime?.date ?? r.clock.now()
            if r.clock.now().timeIntervalSince(since) < Self.initJobGoneWait { return .requeue(after: .seconds(1)) }
            await r.events.record(backup, .warning, reason: "InitJobNotGone",
                                  message: "Job \(backup.volumeInitJobName) is still being deleted \(Int(Self.initJobGoneWait)) s after the snapshots completed")
        }
        try await finish(backup, BackupCondition(type: .complete))
        return .done
    }

    /// The terminal write, Complete or Failed, with the completion time (a failed backup has one too).
    func finish(_ backup: Backup, _ condition: BackupCondition) async throws {
        let now = r.now
        var changed = false
        let written = try await StatusWriter.update(api, Backup.self, namespace: backup.namespace, name: backup.name, from: backup) { b in
            changed = b.status.apply(condition, now: now)
            if changed { b.status.complete(at: now) }
        }
        if changed { await r.events.record(written ?? backup, ConditionEvent(backup, condition)) }
    }

    func deleteConfigMap(_ backup: Backup) async throws {
        do {
            _ = try await api.delete(.configMaps, namespace: backup.namespace, name: VolumeSnapshotLayout.clusterMetaConfigMap(backup))
        } catch let e as KubeAPIError where e.isNotFound {}
    }

    // MARK: helpers

    /// Records a volume-backup failure condition; the next pass tears down (init Job deleted, Failed).
    func failed(_ backup: Backup, _ type: BackupConditionType, reason: String, message: String) async throws -> ReconcileOutcome {
        try await r.setCondition(backup, BackupCondition(type: type, reason: reason, message: message))
        if let fresh = try await api.getIfPresent(Backup.self, namespace: backup.namespace, name: backup.name) {
            let initJob = try await api.jobState(namespace: backup.namespace, name: backup.volumeInitJobName)
            return try await teardown(fresh, initJob: initJob)
        }
        return .done
    }

    func build(_ backup: Backup, _ make: () async throws -> JSONValue) async throws -> JSONValue? {
        do {
            return try await make()
        } catch let e as JobBuildError {
            try await r.setCondition(backup, BackupCondition(type: .retryFailed, reason: e.reason, message: e.message))
            return nil
        }
    }

    func create(_ backup: Backup, _ job: JSONValue, name: String, what: String) async throws {
        if case .failed(let message, let error) = try await JobStep(api: api, events: r.events).create(
            job, for: backup, namespace: backup.namespace, name: name,
            created: "create \(what) job \(backup.namespace)/\(name) successful", failed: "create \(what) job \(backup.namespace)/\(name) failed") {
            try await r.setCondition(backup, BackupCondition(type: .retryFailed, reason: "CreateBackupJobFailed", message: message))
            throw error
        }
    }
}
