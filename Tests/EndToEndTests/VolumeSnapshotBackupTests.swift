import AWSCore
import AWSSigning
import BRModel
import BackupOperator
import Foundation
import KubeAPI
import KubeClient
import KubeModel
import KubeTesting
import Testing
import TestServers

/// A TiDB cluster laid out as TiDB Operator lays it out on Kubernetes, in the standalone server: the
/// TidbCluster, three TiKV pods (stored, never run) with their store ids, each with a data and a raft
/// PVC bound to a PV whose CSI handle is a real moto volume holding two written blocks.
struct EBSCluster {
    let name: String
    var volumes: [String] = []
    var ec2: EC2Client

    static func ec2(_ moto: TestServers.Moto) -> EC2Client {
        EC2Client(region: "us-east-1", ec2Endpoint: URL(string: moto.endpoint)!, ebsEndpoint: URL(string: moto.endpoint)!,
                  credentials: .fixed(AWSCredentials(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey)))
    }

    static func create(_ op: Operator, moto: TestServers.Moto, name: String, csiDriver: (Int) -> String = { _ in "ebs.csi.aws.com" }) async throws -> EBSCluster {
        var cluster = EBSCluster(name: name, ec2: ec2(moto))
        let tc: JSONValue = [
            "apiVersion": "pingcap.com/v1alpha1", "kind": "TidbCluster", "metadata": ["name": .string(name), "namespace": "default"],
            "spec": ["version": "v8.5.0", "pdAddresses": ["http://127.0.0.1:2379"], "pd": ["replicas": 3], "tidb": ["replicas": 2],
                     "tikv": ["replicas": 3, "config": "[raft-engine]\ndir = \"/var/lib/raft\"\n",
                              "storageVolumes": [["name": "raft", "storageSize": "1Gi", "mountPath": "/var/lib/raft"]]]],
        ]
        _ = try await op.api.create(.tidbClusters, namespace: "default", object: tc)
        for i in 0..<3 {
            var claims: [JSONValue] = []
            for (j, volumeName) in ["tikv", "tikv-raft"].enumerated() {
                let volume = try await cluster.ec2.createVolume(EC2VolumeRequest(availabilityZone: "us-east-1a", sizeGiB: 10, volumeType: "gp3",
                                                                                 tags: ["moto-test:blocks": "0:a\(i)\(j),1:b\(i)\(j)"]))
                cluster.volumes.append(volume.id)
                let claim = "\(volumeName)-\(name)-tikv-\(i)"
                let pv = "pvc-\(name)-\(i)-\(j)"
                let labels: JSONValue = ["app.kubernetes.io/component": "tikv", "app.kubernetes.io/instance": .string(name),
                                         "app.kubernetes.io/managed-by": "tidb-operator", "app.kubernetes.io/name": "tidb-cluster"]
                _ = try await op.api.create(.persistentVolumes, namespace: nil, object: [
                    "apiVersion": "v1", "kind": "PersistentVolume", "metadata": ["name": .string(pv), "labels": labels],
                    "spec": ["capacity": ["storage": "10Gi"], "accessModes": ["ReadWriteOnce"],
                             "csi": ["driver": .string(csiDriver(i * 2 + j)), "volumeHandle": .string(volume.id), "fsType": "ext4"],
                             "claimRef": ["kind": "PersistentVolumeClaim", "namespace": "default", "name": .string(claim)],
                             "nodeAffinity": ["required": ["nodeSelectorTerms": [["matchExpressions": [
                                ["key": "topology.ebs.csi.aws.com/zone", "operator": "In", "values": ["us-east-1a"]]]]]]]],
                ])
                _ = try await op.api.create(.persistentVolumeClaims, namespace: "default", object: [
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": .string(claim), "namespace": "default", "labels": labels],
                    "spec": ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "10Gi"]], "volumeName": .string(pv)],
                ])
                claims.append(["name": .string(volumeName), "persistentVolumeClaim": ["claimName": .string(claim)]])
            }
            _ = try await op.api.create(.pods, namespace: "default", object: [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": .string("\(name)-tikv-\(i)"), "namespace": "default",
                             "labels": ["app.kubernetes.io/component": "tikv", "app.kubernetes.io/instance": .string(name),
                                        "tidb.pingcap.com/store-id": .string(String(i + 1))]],
                "spec": ["containers": [["name": "tikv", "image": "pingcap/tikv:v8.5.0"]], "volumes": .array(claims)],
            ])
        }
        return cluster
    }

    /// Snapshots of this cluster's volumes in moto.
    func snapshots() async throws -> [EC2Snapshot] {
        try await ec2.describeSnapshots(filters: [("volume-id", volumes)])
    }
}

func ebsBackup(_ name: String, cluster: String, bucket: String, moto: TestServers.Moto, gcLog: String, env: [String: String] = [:],
               prefix: String? = nil) -> String {
    let extra = (["AWS_ENDPOINT_URL": moto.endpoint, "BR_STANDIN_GC_LOG": gcLog].merging(env) { $1 })
        .sorted { $0.key < $1.key }.map { "    - {name: \($0.key), value: \"\($0.value)\"}" }.joined(separator: "\n")
    return """
        apiVersion: pingcap.com/v1alpha1
        kind: Backup
        metadata: {name: \(name), namespace: default}
        spec:
          backupMode: volume-snapshot
          cleanPolicy: Delete
          volumeBackupInitJobMaxActiveSeconds: 120
          br: {cluster: \(cluster)}
          env:
        \(extra)
          s3: {provider: aws, region: us-east-1, bucket: \(bucket), prefix: \(prefix ?? name), endpoint: "\(moto.endpoint)", secretName: aws}
        """
}

/// The stand-in's record of GC pauses: (event, time) in order.
func gcEvents(_ path: String) -> [(String, Double)] {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { line in
        guard let v = try? JSONParser.parse(String(line)), let e = v["event"]?.stringValue else { return nil }
        let t: Double = switch v["time"] { case .double(let d)?: d; case .int(let i)?: Double(i); default: 0 }
        return (e, t)
    }
}

func jobExists(_ op: Operator, _ name: String) async throws -> Bool {
    do {
        _ = try await op.api.get(.jobs, namespace: "default", name: name)
        return true
    } catch let e as KubeAPIError where e.isNotFound { return false }
}

@Suite("End to end: EBS volume-snapshot backups in the standalone operator, on moto's EC2 and S3 (signature checks on)", .serialized)
struct VolumeSnapshotBackupTests {
    @Test("a Backup of three TiKV stores with two volumes each: Complete with commit TS, six tagged snapshots, sizes, the pause ended before Complete; delete removes snapshots and objects")
    func backupAndClean() async throws {
        let moto = try await TestServers.moto()
        let (admin, bucket) = try await motoBucket(moto, "ebs")
        let op = try await Operator()
        defer { op.stop() }
        try await op.applySecret("aws", ["access_key": moto.accessKeyID, "secret_key": moto.secretAccessKey])
        let cluster = try await EBSCluster.create(op, moto: moto, name: "ebs1")
        let gcLog = op.directory + "/gc-ebs-1.log"
        try await op.apply(ebsBackup("ebs-1", cluster: "ebs1", bucket: bucket, moto: moto, gcLog: gcLog))

        let done = try await op.backup("ebs-1", reaches: ["Complete", "Failed"], timeout: 120)
        #expect(done.status.phase == .complete, "\(done.status)")
        for type: BackupConditionType in [.scheduled, .volumeBackupInitialized, .prepare, .running, .volumeBackupSnapshotsCreated,
                                          .volumeBackupInitializeComplete, .volumeBackupComplete, .complete] {
            #expect(done.status.has(type), "\(type.rawValue) missing: \(done.status.conditions ?? [])")
        }
        // The status reads in the order things happened: the snapshots existed before GC resumed.
        let at = { (type: BackupConditionType) in done.status.conditions?.first { $0.type == type }?.lastTransitionTime?.date ?? .distantFuture }
        #expect(at(.volumeBackupSnapshotsCreated) <= at(.volumeBackupInitializeComplete), "\(done.status.conditions ?? [])")
        #expect(UInt64(done.status.commitTs ?? "") ?? 0 > 0)
        #expect(done.status.backupPath == "s3://\(bucket)/ebs-1")
        // Two 512 KiB blocks per volume, each volume's first snapshot: full = incremental = 6 MiB.
        #expect(done.status.backupSize == Int64(6 * 2 * 524288), "\(String(describing: done.status.backupSize))")
        #expect(done.status.incrementalBackupSize == Int64(6 * 2 * 524288))
        #expect(done.status.timeCompleted != nil && done.status.timeTaken != nil)
        // What kubectl describe shows: BR's progress, and which snapshot holds which store's volume.
        #expect(done.status.progresses?.contains { $0.step == "Full Backup" && $0.progress == 100 } == true, "\(String(describing: done.status.progresses))")
        let summary = done.status.conditions?.first { $0.type == .volumeBackupComplete }?.message ?? ""
        #expect(summary.hasPrefix("6 snapshots: store 1 vol-"), "\(summary)")

        let snapshots = try await cluster.snapshots()
        #expect(snapshots.count == 6)
        #expect(snapshots.allSatisfy { $0.tags[VolumeSnapshotLayout.backupTag] == "default/ebs-1" }, "\(snapshots.map(\.tags))")
        #expect(Set(snapshots.map(\.volumeID)) == Set(cluster.volumes))

        // The pause began before the first snapshot and ended before the Backup said Complete.
        let events = gcEvents(gcLog)
        #expect(events.map(\.0) == ["paused", "resumed"], "\(events)")
        if let resumed = events.last?.1, let completed = done.status.timeCompleted?.date {
            #expect(resumed <= completed.timeIntervalSince1970 + 1, "resumed at \(resumed), Complete at \(completed)")
        }
        #expect(try await jobExists(op, "backup-ebs-1-init") == false)
        #expect((try? await op.api.get(.configMaps, namespace: "default", name: "backup-ebs-1-clustermeta")) == nil)

        // What a restore needs is in S3: the metadata we gave BR, BR's answer, the TidbCluster's manifest.
        let keys = Set(try await admin.listObjects(bucket: bucket, prefix: "ebs-1/").objects.map(\.key))
        #expect(keys == ["ebs-1/clustermeta", "ebs-1/backupmeta", "ebs-1/manifests/default/TidbCluster/ebs1.yaml"], "\(keys)")
        let meta = try VolumeSnapshotDocument.decode(try await admin.getObject(bucket: bucket, key: "ebs-1/backupmeta"))
        #expect(meta.snapshots.count == 6)
        #expect(meta.tikv.stores.map(\.storeID) == [1, 2, 3])
        #expect(meta.kubernetes?.pvs.count == 6)
        #expect(meta.tikv.stores[0].volumes.map(\.type) == ["storage.data-dir", "raft-engine.dir"])

        _ = try await op.api.delete(Backup.self, namespace: "default", name: "ebs-1")
        try await op.gone("ebs-1", timeout: 120)
        #expect(try await cluster.snapshots().isEmpty)
        #expect(try await admin.listObjects(bucket: bucket, prefix: "ebs-1/").objects.isEmpty)
        #expect(!op.allLogs().contains(moto.secretAccessKey))
    }

    @Test("faults: the init Job deleted before the snapshots, BR failing mid-snapshot, a PV of another CSI driver, an existing clustermeta, the backup Job deleted mid-way; each Failed with its reason and GC resumed")
    func faults() async throws {
        let moto = try await TestServers.moto()
        let (admin, bucket) = try await motoBucket(moto, "ebs-faults")
        let op = try await Operator()
        defer { op.stop() }
        try await op.applySecret("aws", ["access_key": moto.accessKeyID, "secret_key": moto.secretAccessKey])
        let cluster = try await EBSCluster.create(op, moto: moto, name: "ebs2")

        // 1. The init Job deleted while BR waits to snapshot: Failed, the pause ended, no snapshot taken.
        let log1 = op.directory + "/gc-1.log"
        try await op.apply(ebsBackup("f-init", cluster: "ebs2", bucket: bucket, moto: moto, gcLog: log1, env: ["BR_STANDIN_EBS_WAIT": "4"]))
        _ = try await op.backup("f-init", reaches: ["Running", "Prepare"], timeout: 60)
        _ = try await op.api.delete(.jobs, namespace: "default", name: "backup-f-init-init", options: DeleteOptions(propagationPolicy: .foreground))
        let f1 = try await op.backup("f-init", reaches: ["Complete", "Failed"], timeout: 60)
        #expect(f1.status.phase == .failed)
        #expect(f1.status.conditions?.first { $0.type == .failed }?.reason == "InitializeJobDeleted", "\(f1.status)")
        try await waitUntil { gcEvents(log1).map(\.0) == ["paused", "resumed"] }
        // The backup Job that was waiting to snapshot is stopped too: it would snapshot without the pause.
        try await waitUntil { try await jobExists(op, "backup-f-init") == false }
        #expect(try await cluster.snapshots().isEmpty)

        // 2. BR fails after two snapshots: Failed with BR's error, its snapshots deleted, GC resumed at once.
        let log2 = op.directory + "/gc-2.log"
        try await op.apply(ebsBackup("f-br", cluster: "ebs2", bucket: bucket, moto: moto, gcLog: log2, env: ["BR_STANDIN_EBS_FAIL_AFTER": "2"]))
        let f2 = try await op.backup("f-br", reaches: ["Complete", "Failed"], timeout: 90)
        #expect(f2.status.phase == .failed)
        #expect(f2.status.conditions?.first { $0.type == .failed }?.reason == "BackupDataToRemoteFailed", "\(f2.status)")
        #expect(f2.status.has(.volumeBackupFailed))
        try await waitUntil { gcEvents(log2).map(\.0) == ["paused", "resumed"] }
        try await waitUntil { try await jobExists(op, "backup-f-br-init") == false }
        #expect(try await cluster.snapshots().isEmpty)

        // 3. A PV of another CSI driver: Failed naming the driver, before GC is paused (no init Job).
        let other = try await EBSCluster.create(op, moto: moto, name: "ebs3", csiDriver: { $0 == 3 ? "disk.csi.azure.com" : "ebs.csi.aws.com" })
        let log3 = op.directory + "/gc-3.log"
        try await op.apply(ebsBackup("f-csi", cluster: "ebs3", bucket: bucket, moto: moto, gcLog: log3))
        let f3 = try await op.backup("f-csi", reaches: ["Complete", "Failed"], timeout: 60)
        let c3 = f3.status.conditions?.first { $0.type == .failed }
        #expect(f3.status.phase == .failed)
        #expect(c3?.message?.contains("unable to handle CSI driver: disk.csi.azure.com") == true, "\(f3.status)")
        #expect(c3?.message?.contains("pvc-ebs3-1-1") == true)
        #expect(gcEvents(log3).isEmpty, "GC and PD scheduling were paused for a cluster that cannot be snapshotted")
        #expect(f3.status.timeCompleted != nil)
        #expect(try await other.snapshots().isEmpty)

        // 4. clustermeta already under the prefix: Failed, no retry, the old object kept.
        try await admin.putObject(bucket: bucket, key: "taken/clustermeta", data: Data("{}".utf8))
        let log4 = op.directory + "/gc-4.log"
        try await op.apply(ebsBackup("f-exists", cluster: "ebs2", bucket: bucket, moto: moto, gcLog: log4, prefix: "taken"))
        let f4 = try await op.backup("f-exists", reaches: ["Complete", "Failed"], timeout: 60)
        #expect(f4.status.conditions?.first { $0.type == .failed }?.reason == "FileExistedInExternalStorage", "\(f4.status)")
        #expect(try await admin.getObject(bucket: bucket, key: "taken/clustermeta") == Data("{}".utf8))
        try await waitUntil { gcEvents(log4).map(\.0) == ["paused", "resumed"] }

        // 5. The backup Job deleted while BR waits to snapshot: its BR is stopped and says so (Failed), the pause ended.
        let log5 = op.directory + "/gc-5.log"
        try await op.apply(ebsBackup("f-job", cluster: "ebs2", bucket: bucket, moto: moto, gcLog: log5, env: ["BR_STANDIN_EBS_WAIT": "5"]))
        _ = try await op.backup("f-job", reaches: ["Running"], timeout: 60)
        _ = try await op.api.delete(.jobs, namespace: "default", name: "backup-f-job", options: DeleteOptions(propagationPolicy: .foreground))
        let f5 = try await op.backup("f-job", reaches: ["Complete", "Failed"], timeout: 60)
        // The job binary reports BR's termination, or, when the grace period ends first, the operator finds the Job gone.
        let c5 = f5.status.conditions?.first { $0.type == .failed }
        #expect((c5?.reason == "BackupDataToRemoteFailed" && c5?.message?.contains("signal: terminated") == true) || c5?.reason == "JobNotFound",
                "\(f5.status)")
        try await waitUntil { gcEvents(log5).map(\.0) == ["paused", "resumed"] }
        try await waitUntil { try await jobExists(op, "backup-f-job-init") == false }
        try await Task.sleep(for: .seconds(2))
        let after = try await op.api.get(Backup.self, namespace: "default", name: "f-exists")
        #expect(after.status.phase == .failed && after.status.backoffRetryStatus == nil)
        #expect(try await cluster.snapshots().isEmpty)
        #expect(!op.allLogs().contains(moto.secretAccessKey))
    }
}

extension VolumeSnapshotBackupTests {
    /// A TidbCluster `target` in namespace `restored`, in recovery mode, with three TiKV pods that are
    /// not running yet (as TiDB Operator starts them in recovery mode).
    static func recoveryCluster(_ op: Operator) async throws {
        _ = try await op.api.create(.namespaces, namespace: nil, object: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "restored"]])
        _ = try await op.api.create(.tidbClusters, namespace: "restored", object: [
            "apiVersion": "pingcap.com/v1alpha1", "kind": "TidbCluster", "metadata": ["name": "target", "namespace": "restored"],
            "spec": ["version": "v8.5.0", "pdAddresses": ["http://127.0.0.1:2379"], "recoveryMode": true, "pd": ["replicas": 3], "tidb": ["replicas": 2],
                     "tikv": ["replicas": 3, "storageVolumes": [["name": "raft", "storageSize": "1Gi", "mountPath": "/var/lib/raft"]]]],
        ])
        for i in 0..<3 {
            _ = try await op.api.create(.pods, namespace: "restored", object: [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": .string("target-tikv-\(i)"), "namespace": "restored",
                             "labels": ["app.kubernetes.io/component": "tikv", "app.kubernetes.io/instance": "target"]],
                "spec": ["containers": [["name": "tikv", "image": "pingcap/tikv:v8.5.0"]]],
            ])
        }
    }

    static func restoreYAML(_ name: String, bucket: String, prefix: String, moto: TestServers.Moto, env: [String: String] = [:]) -> String {
        let extra = (["AWS_ENDPOINT_URL": moto.endpoint].merging(env) { $1 })
            .sorted { $0.key < $1.key }.map { "    - {name: \($0.key), value: \"\($0.value)\"}" }.joined(separator: "\n")
        return """
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: \(name), namespace: restored}
            spec:
              restoreMode: volume-snapshot
              volumeAZ: us-east-1c
              br: {cluster: target, clusterNamespace: restored}
              env:
            \(extra)
              s3: {provider: aws, region: us-east-1, bucket: \(bucket), prefix: \(prefix), endpoint: "\(moto.endpoint)", secretName: aws}
            """
    }

    func restoreWhenReached(_ op: Operator, _ name: String, _ phases: Set<String>, timeout: Double = 90) async throws -> Restore {
        var last: Restore?
        if await eventually(timeout, {
            last = try? await op.api.get(Restore.self, namespace: "restored", name: name)
            return last?.status.phase.map { phases.contains($0.rawValue) } ?? false
        }), let last { return last }
        throw Operator.Failure("restore \(name) did not reach \(phases.sorted()); status: \(String(describing: last?.status)); log: \(op.tail())")
    }

    @Test("restore into a second cluster in recovery mode in another namespace: six volumes from the snapshots, PVs/PVCs rewritten and pre-bound, TiKV started, then data, recovery mode cleared, Complete; a failing volume step deletes the volumes it made")
    func restore() async throws {
        let moto = try await TestServers.moto()
        let (admin, bucket) = try await motoBucket(moto, "ebs-restore")
        let op = try await Operator()
        defer { op.stop() }
        try await op.applySecret("aws", ["access_key": moto.accessKeyID, "secret_key": moto.secretAccessKey])
        let source = try await EBSCluster.create(op, moto: moto, name: "src")
        try await op.apply(ebsBackup("bk", cluster: "src", bucket: bucket, moto: moto, gcLog: op.directory + "/gc.log"))
        let backup = try await op.backup("bk", reaches: ["Complete", "Failed"], timeout: 120)
        #expect(backup.status.phase == .complete, "\(backup.status)")
        let snapshots = try await source.snapshots()
        #expect(snapshots.count == 6)

        try await Self.recoveryCluster(op)
        _ = try await op.api.create(.secrets, namespace: "restored", object: [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "aws", "namespace": "restored"],
            "stringData": ["access_key": .string(moto.accessKeyID), "secret_key": .string(moto.secretAccessKey)]])
        _ = try await op.api.create(.restores, namespace: "restored", object: try KubeYAML.documents(Self.restoreYAML("rt", bucket: bucket, prefix: "bk", moto: moto))[0].value)

        // restore-volume: BR made a volume per snapshot, in the asked zone; the operator made PVs and PVCs and let TiKV start.
        var cluster = try await op.api.get(.tidbClusters, namespace: "restored", name: "target")
        _ = await eventually(90) {
            cluster = (try? await op.api.get(.tidbClusters, namespace: "restored", name: "target")) ?? cluster
            return cluster.value(at: ["metadata", "annotations", "tidb.pingcap.com/tikv-volumes-ready"]) != nil
        }
        #expect(cluster.value(at: ["metadata", "annotations", "tidb.pingcap.com/tikv-volumes-ready"]) == "restored/rt", "\(op.tail())")
        let restoredVolumes = try await source.ec2.describeVolumes(filters: [("snapshot-id", snapshots.map(\.id))])
        #expect(restoredVolumes.count == 6)
        #expect(restoredVolumes.allSatisfy { $0.availabilityZone == "us-east-1c" })
        #expect(try await admin.headObject(bucket: bucket, key: "bk/restoremeta") != nil)

        let claims = try await op.api.list(.persistentVolumeClaims, namespace: "restored").items
        #expect(Set(claims.compactMap { $0.value(at: ["metadata", "name"])?.stringValue }) == Set((0..<3).flatMap { ["tikv-target-tikv-\($0)", "tikv-raft-target-tikv-\($0)"] }))
        let volumes = try await op.api.list(.persistentVolumes, namespace: nil).items.filter { $0.value(at: ["metadata", "labels", "app.kubernetes.io/instance"]) == "target" }
        #expect(volumes.count == 6)
        for claim in claims {
            let claimName = claim.value(at: ["metadata", "name"])?.stringValue ?? ""
            let pv = volumes.first { $0.value(at: ["metadata", "name"]) == claim.value(at: ["spec", "volumeName"]) }
            #expect(pv != nil, "the claim \(claimName) names its PV")
            #expect(pv?.value(at: ["spec", "claimRef", "name"])?.stringValue == claimName)
            #expect(pv?.value(at: ["spec", "claimRef", "namespace"]) == "restored")
            #expect(pv?.value(at: ["spec", "claimRef", "uid"]) == nil)
            let handle = pv?.value(at: ["spec", "csi", "volumeHandle"])?.stringValue ?? ""
            #expect(restoredVolumes.contains { $0.id == handle }, "PV of \(claimName) points at a restored volume, not \(handle)")
            #expect(pv?.value(at: ["metadata", "annotations", "tikv-volume-restore/volume-id"])?.stringValue == handle)
            #expect(pv?.value(at: ["metadata", "labels", "app.kubernetes.io/namespace"]) == "restored")
            #expect(pv?.value(at: ["spec", "nodeAffinity", "required", "nodeSelectorTerms"])?.arrayValue?.first?["matchExpressions"]?.arrayValue?.first?["values"] == ["us-east-1c"])
            #expect((pv?.value(at: ["metadata", "name"])?.stringValue ?? "").hasPrefix("pvc-"))
        }
        #expect(try await restoreWhenReached(op, "rt", ["VolumeComplete"]).status.phase == .volumeComplete)

        // TiKV comes up (the test plays TiDB Operator and PD): restore-data, restore-finish.
        cluster = try await op.api.get(.tidbClusters, namespace: "restored", name: "target")
        cluster["status"] = ["tikv": ["stores": ["1": ["state": "Up"], "2": ["state": "Up"], "3": ["state": "Up"]]]]
        _ = try await op.api.update(.tidbClusters, namespace: "restored", object: cluster)
        let done = try await restoreWhenReached(op, "rt", ["Complete", "Failed"])
        #expect(done.status.phase == .complete, "\(done.status)")
        for type: RestoreConditionType in [.scheduled, .running, .volumeComplete, .tikvComplete, .dataComplete, .complete] {
            #expect(done.hasCondition(type), "\(type.rawValue) missing: \(done.status.conditions ?? [])")
        }
        // BR prints the resolved TS in the prepare phase only: the commit TS is kept from there.
        #expect(done.status.commitTs == backup.status.commitTs && !(done.status.commitTs ?? "").isEmpty, "\(done.status)")
        for step in ["Volume Restore", "Data Restore"] {
            #expect(done.status.progresses?.contains { $0.step == step && $0.progress == 100 } == true, "\(String(describing: done.status.progresses))")
        }
        cluster = try await op.api.get(.tidbClusters, namespace: "restored", name: "target")
        #expect(cluster.value(at: ["spec", "recoveryMode"]) == .bool(false))
        #expect(cluster.value(at: ["metadata", "annotations", "tidb.pingcap.com/tikv-volumes-ready"]) == nil)
        #expect(try await op.api.list(.pods, namespace: "restored").items.filter { $0.value(at: ["metadata", "labels", "app.kubernetes.io/component"]) == "tikv" }.isEmpty,
                "TiKV pods restarted out of recovery mode")
        let tagged = try await source.ec2.describeVolumes(ids: restoredVolumes.map(\.id))
        #expect(tagged.allSatisfy { ($0.tags["CSIVolumeName"] ?? "").hasPrefix("pvc-") && $0.tags["kubernetes.io/created-for/pvc/namespace"] == "restored" }, "\(tagged.map(\.tags))")

        // A second restore whose volume step fails after two volumes: Failed, and those two are deleted.
        cluster = try await op.api.get(.tidbClusters, namespace: "restored", name: "target")
        cluster["spec"]?["recoveryMode"] = true
        _ = try await op.api.update(.tidbClusters, namespace: "restored", object: cluster)
        _ = try await op.api.create(.restores, namespace: "restored", object: try KubeYAML.documents(
            Self.restoreYAML("rt-fail", bucket: bucket, prefix: "bk", moto: moto, env: ["BR_STANDIN_EBS_RESTORE_FAIL_AFTER": "2"]))[0].value)
        let failed = try await restoreWhenReached(op, "rt-fail", ["Failed"])
        #expect(failed.status.conditions?.first { $0.type == .failed }?.reason == "RestoreVolumeFailed", "\(failed.status)")
        var cleaned = try await op.api.get(Restore.self, namespace: "restored", name: "rt-fail")
        _ = await eventually(60) {
            cleaned = (try? await op.api.get(Restore.self, namespace: "restored", name: "rt-fail")) ?? cleaned
            return cleaned.hasCondition(.cleanVolumeComplete)
        }
        #expect(cleaned.hasCondition(.cleanVolumeComplete), "\(cleaned.status); \(op.tail())")
        #expect(cleaned.status.phase == .failed)
        let left = try await source.ec2.describeVolumes(filters: [("snapshot-id", snapshots.map(\.id))])
        #expect(Set(left.map(\.id)) == Set(restoredVolumes.map(\.id)), "only the first restore's volumes remain")
        #expect(!op.allLogs().contains(moto.secretAccessKey))
    }
}

/// Polls `condition` for up to `timeout` seconds (`eventually`), recording an issue when it never holds.
func waitUntil(timeout: Double = 30, _ condition: () async throws -> Bool) async throws {
    if try await !eventually(timeout, condition) { Issue.record("condition not met within \(timeout) s") }
}
