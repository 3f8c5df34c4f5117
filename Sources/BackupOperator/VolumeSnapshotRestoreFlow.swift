import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// A volume-snapshot (EBS) restore into one TidbCluster in recovery mode, driven phase by phase by this
/// operator (reference 7.5), where TiDB Operator needs its federation manager:
///
/// 1. **restore-volume**: `restore-<name>` checks the backup against the cluster, has BR create a
///    volume from every snapshot (`--prepare`), stores BR's answer as `restoremeta` and hands it back
///    through the ConfigMap `restore-<name>-restoremeta` → `VolumeComplete`.
/// 2. **volumes**: the operator creates the PVs and claims of `VolumeRestorePlan` (pre-bound to the new
///    volumes), records them in the ConfigMap, and starts TiKV with the annotation
///    `tidb.pingcap.com/tikv-volumes-ready`.
/// 3. **TiKV up**: `TikvComplete` once every store is Up (one may be missing with `tolerateSingleTiKVOutage`).
/// 4. **restore-data**: `restore-data-<name>` tags the new volumes for their PVs and runs BR without
///    `--prepare` → `DataComplete` with the commit TS.
/// 5. **restore-finish**: the TiKV pods are restarted, `recoveryMode` is cleared, the annotation removed
///    → `Complete`.
///
/// A failure before the volumes were handed over runs `restore-<name>-clean-volumes`, which deletes the
/// volumes BR made → `CleanVolumeComplete`. Cloud and storage calls are made by the Jobs only.
struct VolumeSnapshotRestoreFlow {
    let r: RestoreReconciler
    var api: any KubeAPI { r.api }

    static func restoreMetaConfigMap(_ restore: Restore) -> String { VolumeSnapshotLayout.restoreMetaConfigMap(restore: restore.name) }
    static let restoreMetaKey = VolumeSnapshotLayout.restoreMetaConfigMapKey
    static let volumesKey = VolumeSnapshotLayout.restoredVolumesConfigMapKey

    func reconcile(_ restore: Restore) async throws -> ReconcileOutcome {
        switch restore.status.phase {
        case .failed?: return try await cleanVolumesAfterFailure(restore)
        case .complete?, .invalid?: return .done
        default: break
        }
        let lookup = try await ClusterLookup.find(api, restore)
        guard case .found(let cluster) = lookup else {
            if case .missing(let message) = lookup {
                try await r.setCondition(restore, RestoreCondition(type: .retryFailed, reason: "TidbClusterNotFound", message: message))
            } else {
                try await r.setCondition(restore, RestoreCondition(type: .invalid, reason: "InvalidSpec",
                                                                   message: "a volume-snapshot restore needs spec.br.cluster, the TidbCluster whose TiKV volumes are restored"))
                return .done
            }
            return .requeue(after: .seconds(30))
        }
        if let problem = BRValidation.validate(restore, tikvImage: cluster.tikvImage, cluster: cluster).first {
            try await r.setCondition(restore, RestoreCondition(type: .invalid, reason: "InvalidSpec", message: problem.message))
            return .done
        }
        let clusterObject = try await api.get(.tidbClusters, namespace: restore.clusterNamespace, name: cluster.metadata.name ?? "")
        if restore.hasCondition(.dataComplete) { return try await finish(restore, cluster: clusterObject) }
        if clusterObject.value(at: ["spec", "recoveryMode"]) != .bool(true) {
            try await r.setCondition(restore, RestoreCondition(type: .invalid, reason: "InvalidSpec", message: "recovery mode is off"))
            return .done
        }
        if !restore.hasCondition(.volumeComplete) { return try await runJob(restore, cluster: cluster, step: .prepare) }
        if clusterObject.value(at: ["metadata", "annotations", BRLabels.tikvVolumesReadyAnnotation]) == nil {
            return try await handOverVolumes(restore, cluster: clusterObject)
        }
        if !restore.hasCondition(.tikvComplete) { return try await waitForTiKV(restore, cluster: clusterObject) }
        return try await runJob(restore, cluster: cluster, step: .data)
    }

    // MARK: Jobs

    /// Creates the step's Job once, and watches it: a failed or vanished Job fails the Restore.
    func runJob(_ restore: Restore, cluster: TidbCluster, step: JobBuilder.VolumeRestoreStep) async throws -> ReconcileOutcome {
        let name = step.jobName(restore)
        let job = try await api.jobState(namespace: restore.namespace, name: name)
        if job.exists {
            if job.failed {
                try await r.fail(restore, reason: "AlreadyFailed", message: "Job \(name) has failed: \(job.failureReason)")
                return .requeue(after: .zero)
            }
            return .requeue(after: .seconds(30))
        }
        if startedJob(restore, step: step) {
            try await r.fail(restore, reason: "JobNotFound", message: "Job \(name) no longer exists while the restore was \(restore.status.phase?.rawValue ?? "")")
            return .requeue(after: .zero)
        }
        let built: JSONValue
        do {
            built = try await r.jobs.volumeRestoreJob(restore, cluster: cluster, step: step)
        } catch let e as JobBuildError {
            try await r.setCondition(restore, RestoreCondition(type: .retryFailed, reason: e.reason, message: e.message))
            return .requeue(after: .seconds(30))
        }
        if try await api.createIfAbsent(.jobs, namespace: restore.namespace, object: built) {
            await r.events.record(restore, .normal, reason: "SuccessfulCreate",
                                  message: "create job \(restore.namespace)/\(name) for restore \(restore.name) successful")
        }
        if step == .prepare, let warmup = restore.spec.warmup {
            await r.events.record(restore, .warning, reason: "WarmUpNotSupported",
                                  message: "warmup \(warmup.rawValue) is not run by this operator: the volumes are used as they come from the snapshots\(restore.spec.warmupStrategy == .fsr ? " (BR is asked for Fast Snapshot Restore)" : "")")
        }
        try await r.setCondition(restore, RestoreCondition(type: .scheduled, message: "Job \(name)"))
        return .requeue(after: r.timeouts.podStart)
    }

    /// Whether the step's Job was created before (its Scheduled condition names it).
    func startedJob(_ restore: Restore, step: JobBuilder.VolumeRestoreStep) -> Bool {
        guard [.scheduled, .running].contains(restore.status.phase) else { return false }
        return restore.status.conditions?.first { $0.type == .scheduled }?.message == "Job \(step.jobName(restore))"
    }

    // MARK: volumes

    /// Creates the PVs and claims that point at BR's new volumes, then lets TiKV start.
    func handOverVolumes(_ restore: Restore, cluster: JSONValue) async throws -> ReconcileOutcome {
        let configMapName = Self.restoreMetaConfigMap(restore)
        guard let configMap = try await api.getIfPresent(JSONValue.self, .configMaps, namespace: restore.namespace, name: configMapName),
              let text = configMap.value(at: ["data", Self.restoreMetaKey])?.stringValue else {
            try await r.setCondition(restore, RestoreCondition(type: .retryFailed, reason: "FileNotExists",
                                                               message: "ConfigMap \(restore.namespace)/\(configMapName) with restoremeta is missing"))
            return .requeue(after: .seconds(30))
        }
        let clusterName = cluster.value(at: ["metadata", "name"])?.stringValue ?? ""
        let plan: VolumeRestorePlan
        do {
            let meta = try VolumeSnapshotDocument.decode(Data(text.utf8))
            plan = try VolumeRestorePlan.make(meta, target: .init(cluster: clusterName, namespace: restore.clusterNamespace,
                                                                  rawClusterNamespace: restore.spec.br?.clusterNamespace ?? "",
                                                                  volumeAZ: restore.spec.volumeAZ))
        } catch let e as VolumeSnapshotError {
            try await r.fail(restore, reason: e.reason, message: e.message)
            return .requeue(after: .zero)
        }
        var created: [JSONValue] = []
        for var pair in plan.pairs {
            // A PV left by an earlier pass for the same claim and volume is reused.
            let existingPV = try await existingVolume(for: pair)
            if let existingPV {
                pair.pvc["spec"]?["volumeName"] = .string(existingPV)
            } else {
                _ = try await api.create(.persistentVolumes, namespace: nil, object: pair.pv)
            }
            if let claim = try await api.getIfPresent(JSONValue.self, .persistentVolumeClaims, namespace: pair.pvcNamespace, name: pair.pvcName) {
                let bound = claim.value(at: ["spec", "volumeName"])?.stringValue ?? ""
                if bound != (existingPV ?? pair.pvName) {
                    try await r.fail(restore, reason: "ExistingPVCConflict",
                                     message: "pvc \(pair.pvcNamespace)/\(pair.pvcName) already exists, and has different volume. please remove it carefully to continue volume restore process")
                    return .requeue(after: .zero)
                }
            } else {
                _ = try await api.create(.persistentVolumeClaims, namespace: pair.pvcNamespace, object: pair.pvc)
            }
            created.append(["volumeID": .string(pair.volumeID), "pv": .string(existingPV ?? pair.pvName),
                            "pvc": .string(pair.pvcName), "namespace": .string(pair.pvcNamespace)])
        }
        var recorded = configMap
        recorded["data"]?[Self.volumesKey] = .string(JSONValue.array(created).serialized())
        _ = try await api.update(.configMaps, namespace: restore.namespace, object: recorded)
        await r.events.record(restore, .normal, reason: "VolumesRestored",
                              message: "\(created.count) PVs and PVCs created for the restored EBS volumes; TiKV of \(clusterName) can start")
        var annotated = cluster
        if annotated.value(at: ["metadata", "annotations"])?.objectValue == nil { annotated["metadata"]?["annotations"] = .object(JSONObject()) }
        annotated["metadata"]?["annotations"]?[BRLabels.tikvVolumesReadyAnnotation] = .string("\(restore.namespace)/\(restore.name)")
        do {
            _ = try await api.update(.tidbClusters, namespace: restore.clusterNamespace, object: annotated)
        } catch let e as KubeAPIError {
            try await r.setCondition(restore, RestoreCondition(type: .retryFailed, reason: "AddTCAnnWaitTiKVFailed", message: e.message))
            throw e
        }
        return .requeue(after: .seconds(10))
    }

    /// The name of a PV that already binds this claim to this volume, if one does.
    func existingVolume(for pair: VolumeRestorePlan.Pair) async throws -> String? {
        guard let existing = try await getClusterScoped(.persistentVolumes, pair.pvName) else { return nil }
        let sameClaim = existing.value(at: ["spec", "claimRef", "name"]) == pair.pv.value(at: ["spec", "claimRef", "name"])
        let sameVolume = existing.value(at: ["metadata", "annotations", VolumeSnapshotLayout.restoredVolumeIDAnnotation]) == .string(pair.volumeID)
        return sameClaim && sameVolume ? pair.pvName : nil
    }

    func getClusterScoped(_ kind: ResourceKind, _ name: String) async throws -> JSONValue? {
        do { return try await api.get(kind, namespace: nil, name: name) } catch let e as KubeAPIError where e.isNotFound { return nil }
    }

    /// `TikvComplete` once every TiKV store of the cluster is Up.
    func waitForTiKV(_ restore: Restore, cluster: JSONValue) async throws -> ReconcileOutcome {
        let replicas = Int(cluster.value(at: ["spec", "tikv", "replicas"])?.intValue ?? 0)
        let stores = cluster.value(at: ["status", "tikv", "stores"])?.objectValue.map { Array($0.map(\.value)) } ?? []
        let up = stores.filter { $0["state"] == "Up" }.count
        let needed = restore.spec.tolerateSingleTiKVOutage == true ? max(replicas - 1, 1) : replicas
        if replicas > 0 && up >= needed && (restore.spec.tolerateSingleTiKVOutage == true || stores.count == replicas) {
            try await r.setCondition(restore, RestoreCondition(type: .tikvComplete, message: "\(up) of \(replicas) TiKV stores are Up"))
            return .requeue(after: .zero)
        }
        return .requeue(after: .seconds(10))
    }

    // MARK: finish and failure

    /// TiKV restarted out of recovery mode, the cluster's recovery mark cleared → Complete.
    func finish(_ restore: Restore, cluster: JSONValue) async throws -> ReconcileOutcome {
        let ns = restore.clusterNamespace
        let name = cluster.value(at: ["metadata", "name"])?.stringValue ?? ""
        if cluster.value(at: ["spec", "recoveryMode"]) == .bool(true) {
            let selector = "\(BRLabels.component)=tikv,\(BRLabels.instance)=\(name)"
            for pod in try await api.listAll(.pods, namespace: ns, labelSelector: selector).items {
                do {
                    _ = try await api.delete(.pods, namespace: ns, name: pod.value(at: ["metadata", "name"])?.stringValue ?? "")
                } catch let e as KubeAPIError where e.isNotFound {}
            }
            var cleared = cluster
            cleared["spec"]?["recoveryMode"] = .bool(false)
            cleared["metadata"]?["annotations"]?[BRLabels.tikvVolumesReadyAnnotation] = nil
            do {
                _ = try await api.update(.tidbClusters, namespace: ns, object: cleared)
            } catch let e as KubeAPIError {
                try await r.setCondition(restore, RestoreCondition(type: .retryFailed, reason: "ClearTCRecoveryMarkFailed", message: e.message))
                throw e
            }
        }
        let now = Time(r.clock.now())
        let condition = RestoreCondition(type: .complete)
        let written = try await StatusWriter.update(api, Restore.self, namespace: restore.namespace, name: restore.name, from: restore) { s in
            _ = s.status.apply(condition, now: now)
            s.status.timeCompleted = now
            if let start = s.status.timeStarted { s.status.timeTaken = BRStatusMath.timeTaken(from: start, to: now) }
        }
        await r.events.record(written ?? restore, ConditionEvent(restore, condition))
        try await deleteConfigMap(restore)
        return .done
    }

    /// A Restore that failed before its volumes were handed over: the volumes BR made are deleted by a Job.
    func cleanVolumesAfterFailure(_ restore: Restore) async throws -> ReconcileOutcome {
        guard !restore.hasCondition(.volumeComplete), !restore.hasCondition(.cleanVolumeComplete),
              restore.status.conditions?.contains(where: { $0.type == .scheduled }) == true else { return .done }
        let name = JobBuilder.VolumeRestoreStep.cleanVolumes.jobName(restore)
        let job = try await api.jobState(namespace: restore.namespace, name: name)
        if job.exists {
            if job.failed {
                await r.events.record(restore, .warning, reason: "CleanVolumeFailed",
                                      message: "Job \(name) failed; the volumes BR made may remain: delete the Job to try again")
            }
            return job.finished ? .done : .requeue(after: .seconds(30))
        }
        guard case .found(let cluster) = try await ClusterLookup.find(api, restore) else { return .done }
        let built = try await r.jobs.volumeRestoreJob(restore, cluster: cluster, step: .cleanVolumes)
        if try await api.createIfAbsent(.jobs, namespace: restore.namespace, object: built) {
            await r.events.record(restore, .normal, reason: "SuccessfulCreate",
                                  message: "create job \(restore.namespace)/\(name) to delete the volumes of the failed restore")
        }
        return .requeue(after: .seconds(30))
    }

    func deleteConfigMap(_ restore: Restore) async throws {
        do {
            _ = try await api.delete(.configMaps, namespace: restore.namespace, name: Self.restoreMetaConfigMap(restore))
        } catch let e as KubeAPIError where e.isNotFound {}
    }
}
