import AWSCore
import BRModel
import BackupStorage
import Foundation
import KubeAPI
import KubeModel

/// The two Jobs of a volume-snapshot (EBS) backup, in the job binary (reference 7.2):
/// - `initialize`: runs `br operator pause-gc-and-schedulers` and writes `VolumeBackupInitialized`
///   once BR says GC and the schedulers are paused. BR then keeps them paused until this Job is deleted
///   (the SIGTERM reaches BR, which resumes both) or its deadline passes.
/// - `execute`: stores the operator's cluster metadata as `clustermeta` (refusing to overwrite one),
///   runs `br backup full --type=aws-ebs`, reports `VolumeBackupSnapshotsCreated` as soon as `backupmeta`
///   exists (so the operator ends the pause), tags the snapshots with the Backup, computes the sizes
///   from the EBS direct APIs, and writes `VolumeBackupComplete` with the commit TS.
struct VolumeSnapshotBackupJob {
    let manager: Manager
    let options: ManagerOptions
    var log: @Sendable (String) -> Void { manager.log }

    /// How often the storage is looked at for `backupmeta` while BR runs.
    var metaPollInterval: Duration = .seconds(2)

    func run() async throws {
        let backup = try await manager.object(Backup.self, options)
        guard let br = backup.spec.br else { throw ManagerError("no br config in \(options.namespace)/\(options.name)") }
        let pd = manager.pd(options, br: br)
        if options.initialize {
            try await initialize(backup, pd: pd)
        } else {
            try await execute(backup, pd: pd)
        }
    }

    // MARK: initialize

    func initialize(_ backup: Backup, pd: String) async throws {
        let argv = try RunPlan.backup(backup, options, pd: pd, brFiles: ToolArguments.brBinDirectory)[0].argv
        if options.dryRun {
            log(Manager.Plan(tool: "br", argv: argv, environment: manager.environmentNames()).render())
            return
        }
        let (exe, prefix) = try manager.tools.locate(.br)
        let seen = PauseLines()
        let manager = self.manager
        let options = self.options
        let result = try await ToolRunner(redact: manager.redactor, log: log).run(exe, prefix + argv, environment: manager.toolEnvironment()) { _, line in
            guard seen.note(line) else { return }
            Task {
                try? await manager.backupCondition(options, .volumeBackupInitialized,
                                                   message: "GC and PD schedulers are paused; they stay paused until Job \(backup.volumeInitJobName) is deleted")
            }
        }
        // Let a status write started by the last line land before deciding.
        try await Task.sleep(for: .milliseconds(200))
        if ToolRunner.terminationRequested {
            log("init job of \(options.namespace)/\(options.name) stopped (\(result.exitDescription)): BR resumed GC and PD scheduling")
            return
        }
        guard result.succeeded else {
            let message = "pause GC and PD schedulers failed, errMsg \(result.errorSummary.joined(separator: "\n")), err: \(result.exitDescription)"
            if !seen.ready {
                try await manager.backupCondition(options, .volumeBackupInitializeFailed, reason: "InitializeVolumeBackupFailed", message: message)
            }
            throw ManagerError(message)
        }
        // BR ended on its own: the pause is over although nobody asked. The operator sees the Job
        // finished and fails the backup unless the snapshots already exist.
        log("br operator pause-gc-and-schedulers exited by itself; GC and PD scheduling are no longer paused")
    }

    // MARK: execute

    func execute(_ backup: Backup, pd: String) async throws {
        let directory = ToolArguments.brFileDirectory(dryRun: options.dryRun)
        let volumeFile = directory + "/csb_backup.json"
        let argv = try RunPlan.backup(backup, options, pd: pd, brFiles: directory)[0].argv
        if options.dryRun {
            log(Manager.Plan(tool: "br", argv: argv, environment: manager.environmentNames()).render())
            return
        }
        let path: String
        do {
            path = try ToolArguments.storagePath(backup.spec.storage)
        } catch {
            try await fail(.volumeBackupFailed, "GetBackupRemotePathFailed", "\(error)")
            throw error
        }
        try await manager.backupCondition(options, .prepare, extra: { $0.backupPath = path })
        let storage: any BackupStorage
        do { storage = try manager.storageFactory.make(backup.spec.storage) } catch {
            try await fail(.volumeBackupFailed, "NewStorageBackendFailed", "\(error)")
            throw error
        }
        // The metadata the operator gathered, stored where BR and a restore read it.
        let clusterMeta = try await readClusterMeta(backup)
        do {
            if try await storage.exists(VolumeSnapshotLayout.clusterMetaKey) {
                let message = "\(path)/\(VolumeSnapshotLayout.clusterMetaKey) already exists: another backup used this prefix; use a new prefix"
                try await fail(.volumeBackupFailed, "FileExistedInExternalStorage", message)
                throw ManagerError(message)
            }
        } catch let e as ManagerError { throw e } catch {
            try await fail(.volumeBackupFailed, "FileExistedInExternalStorageFailed", "look for \(path)/\(VolumeSnapshotLayout.clusterMetaKey): \(error)")
            throw error
        }
        do {
            try await storage.write(VolumeSnapshotLayout.clusterMetaKey, data: clusterMeta.data)
            try await saveManifest(clusterMeta.document, storage: storage)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try clusterMeta.data.write(to: URL(fileURLWithPath: volumeFile))
        } catch {
            try await fail(.volumeBackupFailed, "SaveFileToExternalStorageFailed", "save the cluster metadata to \(path): \(error)")
            throw error
        }
        defer { try? FileManager.default.removeItem(atPath: volumeFile) }

        let started = Time(manager.now())
        try await manager.backupCondition(options, .running, extra: { $0.timeStarted = started })
        let (exe, prefix) = try manager.tools.locate(.br)
        let resolved = Locked<String?>(nil)
        let watcher = Task { await watchForBackupMeta(storage) }
        let progress = ProgressPublisher(manager: manager, options: options)
        let progressFile = BRProgressFile(step: "Full Backup")
        progressFile.clear()
        let progressWatcher = progressFile.watch(progress)
        let result = try await ToolRunner(redact: manager.redactor, log: log).run(exe, prefix + argv, environment: manager.toolEnvironment()) { _, line in
            if line.contains("EBS backup success"), let ts = BRLog.value(of: "resolved_ts", in: line) { resolved.value = ts }
        }
        watcher.cancel()
        await watcher.value
        progressWatcher.cancel()
        if result.succeeded { progress.record(step: "Full Backup", percent: 100) }
        await progress.flush()
        guard result.succeeded else {
            let message = result.brFailure(options)
            try await fail(.volumeBackupFailed, "BackupDataToRemoteFailed", message)
            throw ManagerError(message)
        }
        let meta: VolumeSnapshotDocument
        do {
            meta = try VolumeSnapshotDocument.decode(try await storage.read(VolumeSnapshotLayout.backupMetaKey))
        } catch {
            try await fail(.volumeBackupFailed, "GetBackupMetadataFailed", "read \(path)/\(VolumeSnapshotLayout.backupMetaKey): \(error)")
            throw error
        }
        // Once: the watcher above normally wrote it while BR ran, and the operator has moved on since
        // (VolumeBackupInitializeComplete); writing it again would turn the phase and its time back.
        if !(try await manager.object(Backup.self, options)).status.has(.volumeBackupSnapshotsCreated) {
            try await manager.backupCondition(options, .volumeBackupSnapshotsCreated)
        }
        let commitTs = meta.clusterInfo?.resolvedTs.map(String.init) ?? resolved.value ?? ""
        var sizes = VolumeSnapshotSizes.Result()
        do {
            let ec2 = try EC2Client.fromEnvironment(manager.environment, fallbackRegion: backup.spec.s3?.region)
            try await tag(meta, backup: backup, ec2: ec2)
            sizes = try await VolumeSnapshotSizes(ec2: ec2, log: log).calculate(meta, level: backup.spec.calcSizeLevel ?? .all)
        } catch {
            // The snapshots are good; only the figures are missing. Say so, keep the backup.
            log("snapshot sizes of \(options.namespace)/\(options.name) not computed: \(manager.redactor("\(error)"))")
        }
        try await manager.backupCondition(options, .volumeBackupComplete, message: Self.summary(meta), extra: { s in
            s.timeStarted = started
            s.commitTs = commitTs
            s.backupSize = sizes.full
            s.backupSizeReadable = sizes.full.map(BRStatusMath.readableSize)
            s.incrementalBackupSize = sizes.incremental
            s.incrementalBackupSizeReadable = sizes.incremental.map(BRStatusMath.readableSize)
        })
        log("volume-snapshot backup \(options.namespace)/\(options.name): \(meta.snapshots.count) snapshots, commitTs \(commitTs)")
    }

    /// `6 snapshots: store 1 vol-a → snap-b, …` (the first 24; `describe` shows it).
    static func summary(_ meta: VolumeSnapshotDocument) -> String {
        let pairs = meta.tikv.stores.flatMap { store in
            store.volumes.filter { !$0.snapshotID.isEmpty }.map { "store \(store.storeID) \($0.volumeID) → \($0.snapshotID)" }
        }
        let shown = pairs.prefix(24).joined(separator: ", ")
        return "\(pairs.count) snapshots: \(shown)\(pairs.count > 24 ? ", …" : "")"
    }

    func fail(_ type: BackupConditionType, _ reason: String, _ message: String) async throws {
        try await manager.backupCondition(options, type, reason: reason, message: message)
    }

    func readClusterMeta(_ backup: Backup) async throws -> (data: Data, document: VolumeSnapshotDocument) {
        let name = VolumeSnapshotLayout.clusterMetaConfigMap(backup)
        do {
            let configMap = try await manager.api.get(.configMaps, namespace: options.namespace, name: name)
            guard let text = configMap.value(at: ["data", VolumeSnapshotLayout.clusterMetaConfigMapKey])?.stringValue else {
                throw ManagerError("ConfigMap \(options.namespace)/\(name) has no \(VolumeSnapshotLayout.clusterMetaConfigMapKey)")
            }
            let data = Data(text.utf8)
            return (data, try VolumeSnapshotDocument.decode(data))
        } catch {
            try await fail(.volumeBackupFailed, "GetClusterMetaFailed", "read the cluster metadata from ConfigMap \(options.namespace)/\(name): \(error)")
            throw error
        }
    }

    /// `manifests/<namespace>/TidbCluster/<name>.yaml`, without managedFields; an existing one is kept.
    func saveManifest(_ document: VolumeSnapshotDocument, storage: any BackupStorage) async throws {
        guard var cluster = document.kubernetes?.crdTidbCluster, let name = cluster.value(at: ["metadata", "name"])?.stringValue else { return }
        cluster["metadata"]?["managedFields"] = nil
        let ns = cluster.value(at: ["metadata", "namespace"])?.stringValue ?? options.namespace
        let key = "manifests/\(ns)/TidbCluster/\(name).yaml"
        if try await storage.exists(key) { return }
        try await storage.write(key, data: Data(KubeYAML.emit(cluster).utf8))
    }

    /// Polls for `backupmeta` while BR runs; when it appears the snapshots are taken from EBS's point of
    /// view, and the operator can end the GC pause.
    func watchForBackupMeta(_ storage: any BackupStorage) async {
        while !Task.isCancelled {
            if (try? await storage.exists(VolumeSnapshotLayout.backupMetaKey)) == true {
                try? await manager.backupCondition(options, .volumeBackupSnapshotsCreated)
                return
            }
            try? await Task.sleep(for: metaPollInterval)
        }
    }

    /// Every snapshot carries the Backup it belongs to (`namespace/name`), so it can be found later.
    func tag(_ meta: VolumeSnapshotDocument, backup: Backup, ec2: EC2Client) async throws {
        let ids = meta.snapshots.map(\.snapshotID)
        for chunk in stride(from: 0, to: ids.count, by: 500) {
            try await ec2.createTags(resources: Array(ids[chunk..<min(chunk + 500, ids.count)]),
                                     tags: [VolumeSnapshotLayout.backupTag: "\(backup.namespace)/\(backup.name)"])
        }
    }
}

/// Whether BR has said both "GC is paused" and "Schedulers are paused"; `note` is true exactly once.
final class PauseLines: @unchecked Sendable {
    let lock = NSLock()
    var gc = false
    var schedulers = false
    var reported = false

    var ready: Bool { lock.withLock { gc && schedulers } }

    func note(_ line: String) -> Bool {
        lock.withLock {
            if line.contains(VolumeSnapshotLayout.gcPausedLine) { gc = true }
            if line.contains(VolumeSnapshotLayout.schedulersPausedLine) { schedulers = true }
            guard gc && schedulers && !reported else { return false }
            reported = true
            return true
        }
    }
}

/// A value shared with a tool's output handler (which runs on the reader threads).
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
    func mutate(_ change: (inout Value) -> Void) { lock.withLock { change(&stored) } }
}
