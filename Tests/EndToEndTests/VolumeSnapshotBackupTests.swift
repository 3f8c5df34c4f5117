import AWSCore
import AWSSigning
import BRModel
import BackupOperator
import Foundation
import KubeAPI
import KubeClient
import KubeModel
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
        #expect(UInt64(done.status.commitTs ?? "") ?? 0 > 0)
        #expect(done.status.backupPath == "s3://\(bucket)/ebs-1")
        // Two 512 KiB blocks per volume, each volume's first snapshot: full = incremental = 6 MiB.
        #expect(done.status.backupSize == Int64(6 * 2 * 524288), "\(String(describing: done.status.backupSize))")
        #expect(done.status.incrementalBackupSize == Int64(6 * 2 * 524288))
        #expect(done.status.timeCompleted != nil && done.status.timeTaken != nil)

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

    @Test("faults: the init Job deleted before the snapshots, BR failing mid-snapshot, a PV of another CSI driver, an existing clustermeta; each Failed with its reason and GC resumed")
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

        // 3. A PV of another CSI driver: Failed naming the driver, before any snapshot.
        let other = try await EBSCluster.create(op, moto: moto, name: "ebs3", csiDriver: { $0 == 3 ? "disk.csi.azure.com" : "ebs.csi.aws.com" })
        let log3 = op.directory + "/gc-3.log"
        try await op.apply(ebsBackup("f-csi", cluster: "ebs3", bucket: bucket, moto: moto, gcLog: log3))
        let f3 = try await op.backup("f-csi", reaches: ["Complete", "Failed"], timeout: 60)
        let c3 = f3.status.conditions?.first { $0.type == .failed }
        #expect(f3.status.phase == .failed)
        #expect(c3?.message?.contains("unable to handle CSI driver: disk.csi.azure.com") == true, "\(f3.status)")
        #expect(c3?.message?.contains("pvc-ebs3-1-1") == true)
        try await waitUntil { gcEvents(log3).map(\.0) == ["paused", "resumed"] }
        #expect(try await other.snapshots().isEmpty)

        // 4. clustermeta already under the prefix: Failed, no retry, the old object kept.
        try await admin.putObject(bucket: bucket, key: "taken/clustermeta", data: Data("{}".utf8))
        let log4 = op.directory + "/gc-4.log"
        try await op.apply(ebsBackup("f-exists", cluster: "ebs2", bucket: bucket, moto: moto, gcLog: log4, prefix: "taken"))
        let f4 = try await op.backup("f-exists", reaches: ["Complete", "Failed"], timeout: 60)
        #expect(f4.status.conditions?.first { $0.type == .failed }?.reason == "FileExistedInExternalStorage", "\(f4.status)")
        #expect(try await admin.getObject(bucket: bucket, key: "taken/clustermeta") == Data("{}".utf8))
        try await waitUntil { gcEvents(log4).map(\.0) == ["paused", "resumed"] }
        try await Task.sleep(for: .seconds(2))
        let after = try await op.api.get(Backup.self, namespace: "default", name: "f-exists")
        #expect(after.status.phase == .failed && after.status.backoffRetryStatus == nil)
        #expect(try await cluster.snapshots().isEmpty)
        #expect(!op.allLogs().contains(moto.secretAccessKey))
    }
}

/// Polls `condition` for up to `timeout` seconds.
func waitUntil(timeout: Double = 30, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(200))
    }
    Issue.record("condition not met within \(timeout) s")
}
