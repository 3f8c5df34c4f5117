import AWSCore
import BRModel
import BackupStorage
import Foundation
import KubeAPI
import KubeModel

/// The Jobs of a volume-snapshot (EBS) restore, in the job binary (reference 7.5):
/// - `--prepare`: checks the backup against the target cluster (TiKV and TiFlash replicas, storage
///   volumes, encryption), runs `br restore full --type=aws-ebs --prepare`, stores BR's answer as
///   `restoremeta` and hands it to the operator in the ConfigMap `restore-<name>-restoremeta` →
///   `VolumeComplete`. BR's answer is kept even when BR fails, so the volumes it made can be deleted.
/// - the data step: tags each new volume with the PV and claim the operator made for it, runs
///   `br restore full --type=aws-ebs` → `DataComplete` with the commit TS.
/// - `--clean-volumes`: deletes the volumes of `restoremeta` (3 at a time, NotFound is fine) →
///   `CleanVolumeComplete`, the Restore staying Failed.
struct VolumeSnapshotRestoreJob {
    let manager: Manager
    let options: ManagerOptions
    var log: @Sendable (String) -> Void { manager.log }

    static let restoreMetaKey = VolumeSnapshotLayout.restoreMetaConfigMapKey
    static let volumesKey = VolumeSnapshotLayout.restoredVolumesConfigMapKey
    var configMapName: String { VolumeSnapshotLayout.restoreMetaConfigMap(restore: options.name) }

    func run(_ restore: Restore) async throws {
        guard let br = restore.spec.br else { throw ManagerError("no br config in \(options.namespace)/\(options.name)") }
        let pd = manager.pd(options, br: br)
        if options.cleanVolumes { return try await cleanVolumes(restore) }
        if options.prepare { return try await prepare(restore, pd: pd) }
        try await data(restore, pd: pd)
    }

    func condition(_ type: RestoreConditionType, _ reason: String? = nil, _ message: String? = nil,
                   extra: @escaping (inout RestoreStatus) -> Void = { _ in }) async throws {
        try await manager.restoreCondition(options, type, reason: reason, message: message, extra: extra)
    }

    // MARK: prepare

    func prepare(_ restore: Restore, pd: String) async throws {
        let directory = ToolArguments.brFileDirectory(dryRun: options.dryRun)
        let outputFile = directory + "/csb_restore.json"
        let argv = try RunPlan.restore(restore, options, pd: pd, brFiles: directory)[0].argv
        if options.dryRun {
            log(Manager.Plan(tool: "br", argv: argv, environment: manager.environmentNames()).render())
            return
        }
        let storage: any BackupStorage
        let backup: VolumeSnapshotDocument
        do {
            storage = try manager.storageFactory.make(restore.spec.storage)
            backup = try VolumeSnapshotDocument.decode(try await storage.read(VolumeSnapshotLayout.backupMetaKey))
        } catch {
            try await condition(.failed, "GetBackupMetadataFailed", "read \(VolumeSnapshotLayout.backupMetaKey) of the volume-snapshot backup: \(error)")
            throw error
        }
        let target = try await manager.api.get(.tidbClusters, namespace: restore.clusterNamespace, name: restore.spec.br?.cluster ?? "")
        if let problem = VolumeRestoreCheck.problem(backup: backup.kubernetes?.crdTidbCluster, target: target) {
            try await condition(.invalid, "InvalidSpec", problem)
            throw ManagerError(problem)
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: outputFile)
        defer { try? FileManager.default.removeItem(atPath: outputFile) }
        let started = Time(manager.now())
        try await condition(.running, extra: { s in if s.timeStarted == nil { s.timeStarted = started } })
        // BR prints the resolved TS of the backup (`EBS restore success … resolved_ts=N`) in this phase
        // only (`restore_ebs_meta.go`); it is the restore's commit TS.
        let resolved = Locked<String?>(nil)
        let result = try await runBR(argv, step: "Volume Restore", resolved: resolved)
        // Whatever BR managed to create is recorded, also after a failure: the cleaning reads it.
        var handedOver = false
        if let output = FileManager.default.contents(atPath: outputFile) {
            do {
                try await storage.write(VolumeSnapshotLayout.restoreMetaKey, data: output)
                try await saveConfigMap(restoreMeta: String(decoding: output, as: UTF8.self))
                handedOver = true
            } catch {
                try await condition(.failed, "SaveFileToExternalStorageFailed", "save \(VolumeSnapshotLayout.restoreMetaKey): \(error)")
                throw error
            }
        }
        guard result.succeeded else {
            let message = result.brFailure(options)
            try await condition(.failed, "RestoreVolumeFailed", message)
            throw ManagerError(message)
        }
        guard handedOver else {
            let message = "br wrote no \(outputFile)"
            try await condition(.failed, "FileNotExists", message)
            throw ManagerError(message)
        }
        let commitTs = resolved.value
        try await condition(.volumeComplete, nil, "the volumes are created from the snapshots", extra: { s in
            if s.timeStarted == nil { s.timeStarted = started }
            if let commitTs { s.commitTs = commitTs }
        })
    }

    func saveConfigMap(restoreMeta: String) async throws {
        let api = manager.api
        var configMap: JSONValue = [
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": ["name": .string(configMapName), "namespace": .string(options.namespace)],
            "data": [.init(Self.restoreMetaKey): .string(restoreMeta)],
        ]
        if let restore = try? await api.get(.restores, namespace: options.namespace, name: options.name) {
            configMap["metadata"]?["ownerReferences"] = [["apiVersion": "pingcap.com/v1alpha1", "kind": "Restore",
                                                          "name": .string(options.name), "uid": restore.value(at: ["metadata", "uid"]) ?? "",
                                                          "controller": true, "blockOwnerDeletion": true]]
        }
        try await api.createOrReplace(.configMaps, namespace: options.namespace, object: configMap)
    }

    /// Runs BR with its progress file read under `step` (100 once BR has succeeded) and, as TiDB
    /// Operator does on every phase, the resolved TS taken from an `EBS restore success` line.
    func runBR(_ argv: [String], step: String, resolved: Locked<String?>) async throws -> ToolResult {
        let (exe, prefix) = try manager.tools.locate(.br)
        let progress = ProgressPublisher(manager: manager, options: options)
        let file = BRProgressFile(step: step)
        file.clear()
        let watcher = file.watch(progress)
        let result = try await ToolRunner(redact: manager.redactor, log: log).run(exe, prefix + argv, environment: manager.toolEnvironment()) { _, line in
            if line.contains("EBS restore success"), let ts = BRLog.value(of: "resolved_ts", in: line) { resolved.value = ts }
        }
        watcher.cancel()
        if result.succeeded { progress.record(step: step, percent: 100) }
        await progress.flush()
        return result
    }

    // MARK: data

    func data(_ restore: Restore, pd: String) async throws {
        let argv = try RunPlan.restore(restore, options, pd: pd, brFiles: ToolArguments.brBinDirectory)[0].argv
        if options.dryRun {
            log(Manager.Plan(tool: "br", argv: argv, environment: manager.environmentNames()).render())
            return
        }
        do {
            try await tagVolumes(restore)
        } catch {
            try await condition(.failed, "volume_tag_adding_failed", "tag the restored volumes: \(error)")
            throw error
        }
        try await condition(.running)
        let resolved = Locked<String?>(nil)
        let result = try await runBR(argv, step: "Data Restore", resolved: resolved)
        guard result.succeeded else {
            let message = result.brFailure(options)
            try await condition(.failed, "RestoreDataFromRemoteFailed", message)
            throw ManagerError(message)
        }
        // The commit TS came with the prepare phase; a BR that also prints it here has the last word.
        let seen = resolved.value
        try await condition(.dataComplete, nil, nil, extra: { s in if let seen { s.commitTs = seen } })
        let commitTs = seen ?? restore.status.commitTs ?? ""
        log("volume-snapshot restore \(options.namespace)/\(options.name): data restored to resolved ts \(commitTs)")
    }

    /// Each new volume carries the names Kubernetes' EBS driver gives the volumes it provisions.
    func tagVolumes(_ restore: Restore) async throws {
        let configMap = try await manager.api.get(.configMaps, namespace: options.namespace, name: configMapName)
        guard let text = configMap.value(at: ["data", Self.volumesKey])?.stringValue,
              let entries = try JSONParser.parse(text).arrayValue else {
            throw ManagerError("ConfigMap \(options.namespace)/\(configMapName) does not list the PVs made for the volumes yet")
        }
        let ec2 = try EC2Client.fromEnvironment(manager.environment, fallbackRegion: restore.spec.s3?.region)
        for e in entries {
            guard let id = e["volumeID"]?.stringValue, let pv = e["pv"]?.stringValue else { continue }
            try await ec2.createTags(resources: [id], tags: [
                "CSIVolumeName": pv, "kubernetes.io/created-for/pv/name": pv,
                "kubernetes.io/created-for/pvc/name": e["pvc"]?.stringValue ?? "",
                "kubernetes.io/created-for/pvc/namespace": e["namespace"]?.stringValue ?? "",
            ])
        }
        log("tagged \(entries.count) restored volumes with their PV and PVC names")
    }

    // MARK: clean volumes

    func cleanVolumes(_ restore: Restore) async throws {
        if options.dryRun {
            log("clean volumes: would delete every restore_volume_id of \(VolumeSnapshotLayout.restoreMetaKey)")
            return
        }
        let storage = try manager.storageFactory.make(restore.spec.storage)
        var found: [String] = []
        do {
            let meta = try VolumeSnapshotDocument.decode(try await storage.read(VolumeSnapshotLayout.restoreMetaKey))
            found = meta.tikv.stores.flatMap(\.volumes).map(\.restoreVolumeID).filter { !$0.isEmpty }
        } catch where VolumeSnapshotClean.isMissing(error) {
            log("no \(VolumeSnapshotLayout.restoreMetaKey): BR made no volumes to delete")
        }
        let ec2 = try EC2Client.fromEnvironment(manager.environment, fallbackRegion: restore.spec.s3?.region)
        let ids = found
        let deleted = try await withThrowingTaskGroup(of: Bool.self) { group in
            var next = 0, count = 0
            func add(_ i: Int) { group.addTask { try await ec2.deleteVolume(ids[i]) } }
            while next < min(3, ids.count) { add(next); next += 1 }
            while let gone = try await group.next() {
                if gone { count += 1 }
                if next < ids.count { add(next); next += 1 }
            }
            return count
        }
        let message = "\(deleted) restored volumes deleted, \(ids.count - deleted) already gone"
        log("clean volumes of \(options.namespace)/\(options.name): \(message)")
        // The Restore stays Failed: the condition is recorded without taking the phase.
        let now = Time(manager.now())
        try await manager.update(Restore.self, options) { r in
            let phase = r.status.phase
            _ = r.status.apply(RestoreCondition(type: .cleanVolumeComplete, message: message), now: now)
            r.status.phase = phase
        }
    }
}
