import BRModel
import Foundation
import KubeModel
import Testing

/// Builders of the objects TiDB Operator's layout gives a TiKV store.
enum EBSObjects {
    static func pv(_ name: String, csiHandle: String? = nil, driver: String = "ebs.csi.aws.com", inTree: String? = nil, zone: String? = nil) -> JSONValue {
        var spec: JSONValue = ["capacity": ["storage": "10Gi"]]
        if let csiHandle { spec["csi"] = ["driver": .string(driver), "volumeHandle": .string(csiHandle)] }
        if let inTree { spec["awsElasticBlockStore"] = ["volumeID": .string(inTree)] }
        var meta: JSONValue = ["name": .string(name)]
        if let zone { meta["labels"] = ["failure-domain.beta.kubernetes.io/zone": .string(zone)] }
        return ["apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta, "spec": spec]
    }

    static func pvc(_ name: String, volume: String) -> JSONValue {
        ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": .string(name), "namespace": "tidb", "managedFields": [["manager": "x"]]],
         "spec": ["volumeName": .string(volume)], "status": ["phase": "Bound"]]
    }

    static func pod(_ name: String, store: String?, claims: [(String, String)]) -> JSONValue {
        var labels: JSONValue = ["app.kubernetes.io/component": "tikv", "app.kubernetes.io/instance": "basic"]
        if let store { labels["tidb.pingcap.com/store-id"] = .string(store) }
        return ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(name), "namespace": "tidb", "labels": labels],
                "spec": ["volumes": .array(claims.map { ["name": .string($0.0), "persistentVolumeClaim": ["claimName": .string($0.1)]] }
                                           + [["name": "config", "configMap": ["name": "c"]]])]]
    }

    static func cluster(config: JSONValue? = nil) -> JSONValue {
        var tikv: JSONValue = ["replicas": 3, "storageVolumes": [["name": "raft", "storageSize": "1Gi", "mountPath": "/var/lib/raft"]]]
        if let config { tikv["config"] = config }
        return ["apiVersion": "pingcap.com/v1alpha1", "kind": "TidbCluster",
                "metadata": ["name": "basic", "namespace": "tidb", "managedFields": [["manager": "kubectl"]]],
                "spec": ["pd": ["replicas": 3], "tidb": ["replicas": 2], "tikv": tikv]]
    }

    /// Three stores, each with a data and a raft volume.
    static func inputs(config: JSONValue? = nil) -> VolumeSnapshotClusterMeta.Inputs {
        var pods: [JSONValue] = [], pvcs: [JSONValue] = [], pvs: [JSONValue] = []
        for i in 0..<3 {
            pods.append(pod("basic-tikv-\(i)", store: "\(i + 1)", claims: [("tikv", "tikv-basic-tikv-\(i)"), ("tikv-raft", "tikv-raft-basic-tikv-\(i)")]))
            pvcs.append(pvc("tikv-basic-tikv-\(i)", volume: "pv-data-\(i)"))
            pvcs.append(pvc("tikv-raft-basic-tikv-\(i)", volume: "pv-raft-\(i)"))
            pvs.append(pv("pv-data-\(i)", csiHandle: "vol-0data\(i)"))
            pvs.append(pv("pv-raft-\(i)", inTree: "aws://us-west-2a/vol-0raft\(i)"))
        }
        return .init(cluster: cluster(config: config), pods: pods, pvcs: pvcs, pvs: pvs)
    }
}

@Suite("Volume snapshots: EBS volume ids (8.15), the cluster metadata, the documents")
struct VolumeSnapshotTests {
    @Test("GetVolumeID vectors of 8.15")
    func volumeIDs() throws {
        #expect(try EBSVolumeID.from(pv: ["spec": ["hostPath": ["path": "/x"]]]) == nil)
        #expect(throws: VolumeSnapshotError.self) { try EBSVolumeID.from(pv: EBSObjects.pv("p", inTree: "")) }
        #expect(try EBSVolumeID.from(pv: EBSObjects.pv("p", inTree: "foo")) == nil)
        #expect(try EBSVolumeID.from(pv: EBSObjects.pv("p", inTree: "aws://us-east-1c/vol-abc123")) == "vol-abc123")
        #expect(try EBSVolumeID.from(pv: EBSObjects.pv("p", inTree: "vol-abc123")) == "vol-abc123")
        #expect(try EBSVolumeID.from(pv: EBSObjects.pv("p", csiHandle: "vol-0866e1c99bd130a2c")) == "vol-0866e1c99bd130a2c")
        do {
            _ = try EBSVolumeID.from(pv: EBSObjects.pv("p", csiHandle: "x", driver: "pd.csi.storage.gke.io"))
            Issue.record("another CSI driver must be refused")
        } catch let e as VolumeSnapshotError {
            #expect(e.message == "unable to handle CSI driver: pd.csi.storage.gke.io")
        }
    }

    @Test("SetVolumeID vectors of 8.15: in-tree with and without the zone label, CSI")
    func setVolumeIDs() throws {
        var withZone = EBSObjects.pv("p", inTree: "vol-old", zone: "us-east-1a")
        try EBSVolumeID.set("vol-updated", in: &withZone)
        #expect(withZone.value(at: ["spec", "awsElasticBlockStore", "volumeID"]) == "aws://us-east-1a/vol-updated")
        var bare = EBSObjects.pv("p", inTree: "vol-old")
        try EBSVolumeID.set("vol-updated", in: &bare)
        #expect(bare.value(at: ["spec", "awsElasticBlockStore", "volumeID"]) == "vol-updated")
        var csi = EBSObjects.pv("p", csiHandle: "vol-old")
        try EBSVolumeID.set("vol-new", in: &csi)
        #expect(csi.value(at: ["spec", "csi", "volumeHandle"]) == "vol-new")
        var none: JSONValue = ["metadata": ["name": "x"], "spec": [:]]
        #expect(throws: VolumeSnapshotError.self) { try EBSVolumeID.set("vol-1", in: &none) }
    }

    @Test("three TiKV pods with two PVCs each: stores, volume types from the TiKV config, PVs annotated, managedFields dropped")
    func gather() throws {
        let doc = try VolumeSnapshotClusterMeta.gather(EBSObjects.inputs(config: .string("[raft-engine]\ndir = \"/var/lib/raft\"\n")))
        #expect(doc.tikv.replicas == 3)
        #expect(doc.pd.replicas == 3 && doc.tidb.replicas == 2)
        #expect(doc.tikv.stores.map(\.storeID) == [1, 2, 3])
        let first = doc.tikv.stores[0].volumes
        #expect(first.map(\.volumeID) == ["vol-0data0", "vol-0raft0"])
        #expect(first.map(\.type) == ["storage.data-dir", "raft-engine.dir"])
        #expect(first.map(\.mountPath) == ["/var/lib/tikv", "/var/lib/raft"])
        #expect(doc.kubernetes?.pvcs.count == 6 && doc.kubernetes?.pvs.count == 6)
        #expect(doc.kubernetes?.pvs.first?.value(at: ["metadata", "annotations", "temporary/volume-id"]) == "vol-0data0")
        #expect(doc.kubernetes?.pvcs.first?.value(at: ["metadata", "managedFields"]) == nil)
        #expect(doc.kubernetes?.crdTidbCluster?.value(at: ["metadata", "managedFields"]) == nil)
        // Object config works the same; without a matching key the type is empty, as upstream.
        let object = try VolumeSnapshotClusterMeta.gather(EBSObjects.inputs(config: ["raft-engine": ["dir": "/var/lib/raft"]]))
        #expect(object.tikv.stores[1].volumes[1].type == "raft-engine.dir")
        let plain = try VolumeSnapshotClusterMeta.gather(EBSObjects.inputs())
        #expect(plain.tikv.stores[1].volumes[1].type == "")

        // The wire form TiDB Operator and BR read: snake_case keys.
        let wire = doc.encoded()
        #expect(wire.value(at: ["tikv", "stores"])?.arrayValue?.first?["store_id"] == .int(1))
        #expect(wire.value(at: ["tikv", "stores"])?.arrayValue?.first?["volumes"]?.arrayValue?.first?["volume_id"] == "vol-0data0")
        #expect(wire.value(at: ["kubernetes", "crd_tidb_cluster", "metadata", "name"]) == "basic")
        let back = try VolumeSnapshotDocument.decode(wire.data())
        #expect(back == doc)
    }

    @Test("what cannot be backed up is named: another CSI driver, a missing PVC or PV, a pod without a store id")
    func gatherErrors() throws {
        var other = EBSObjects.inputs()
        other.pvs[2] = EBSObjects.pv("pv-data-1", csiHandle: "projects/p/disks/d", driver: "pd.csi.storage.gke.io")
        #expect(throws: VolumeSnapshotError(reason: "GetVolumeIDFailed", message: "PV pv-data-1 of PVC tikv-basic-tikv-1: unable to handle CSI driver: pd.csi.storage.gke.io")) {
            try VolumeSnapshotClusterMeta.gather(other)
        }
        var noPVC = EBSObjects.inputs()
        noPVC.pvcs.removeAll { $0.value(at: ["metadata", "name"]) == "tikv-raft-basic-tikv-2" }
        #expect(throws: VolumeSnapshotError(reason: "PVCNotFound", message: "PVC tikv-raft-basic-tikv-2 of TiKV pod basic-tikv-2 (volume tikv-raft) is not found")) {
            try VolumeSnapshotClusterMeta.gather(noPVC)
        }
        var noPV = EBSObjects.inputs()
        noPV.pvs.removeFirst()
        #expect(throws: VolumeSnapshotError(reason: "PVNotFound", message: "PV pv-data-0 of PVC tikv-basic-tikv-0 is not found")) {
            try VolumeSnapshotClusterMeta.gather(noPV)
        }
        var noStore = EBSObjects.inputs()
        noStore.pods[0] = EBSObjects.pod("basic-tikv-0", store: nil, claims: [("tikv", "tikv-basic-tikv-0")])
        #expect(throws: VolumeSnapshotError.self) { try VolumeSnapshotClusterMeta.gather(noStore) }
        var noPods = EBSObjects.inputs()
        noPods.pods = []
        #expect(throws: VolumeSnapshotError.self) { try VolumeSnapshotClusterMeta.gather(noPods) }
    }

    @Test("a cluster off Kubernetes declares its stores in spec.tikv.externalStores; mistakes name the field")
    func externalStores() throws {
        var cluster = EBSObjects.cluster()
        cluster["spec"]?["tikv"]?["externalStores"] = [
            ["storeID": 1, "volumes": [["volumeID": "vol-01"], ["volumeID": "vol-02", "type": "raft-engine.dir", "mountPath": "/data/raft"]]],
            ["storeID": 4, "volumes": [["volumeID": "vol-03"]]],
        ]
        let doc = try VolumeSnapshotClusterMeta.gather(.init(cluster: cluster))
        #expect(doc.tikv.stores.map(\.storeID) == [1, 4])
        #expect(doc.tikv.stores[0].volumes.map(\.type) == ["storage.data-dir", "raft-engine.dir"])
        #expect(doc.tikv.stores[0].volumes.map(\.mountPath) == ["/var/lib/tikv", "/data/raft"])
        #expect(doc.kubernetes?.pvs == [])

        cluster["spec"]?["tikv"]?["externalStores"] = [["storeID": 1, "volumes": [["volumeID": "disk-1"]]]]
        #expect(throws: VolumeSnapshotError(reason: "GetVolumeIDFailed", message: "spec.tikv.externalStores[0].volumes[0].volumeID must be an EBS volume id (vol-…)")) {
            try VolumeSnapshotClusterMeta.gather(.init(cluster: cluster))
        }
        cluster["spec"]?["tikv"]?["externalStores"] = [["storeID": 1, "volumes": [["volumeID": "vol-1"]]], ["storeID": 1, "volumes": [["volumeID": "vol-2"]]]]
        #expect(throws: VolumeSnapshotError(reason: "GetTiKVStoresFailed", message: "spec.tikv.externalStores[1].storeID 1 is listed twice")) {
            try VolumeSnapshotClusterMeta.gather(.init(cluster: cluster))
        }
    }

    @Test("BR's backupmeta for EBS (the seed's example) reads, with its snapshots")
    func backupMeta() throws {
        let text = """
        {"cluster_info": {"cluster_version": "6.3.0-alpha", "full_backup_type": "aws-ebs", "resolved_ts": 436732770870624257},
         "tikv": {"replicas": 1, "stores": [{"store_id": 1, "volumes": [
            {"volume_id": "vol-0bedb7ec0993f8a41", "type": "raft-engine.dir", "snapshot_id": "snap-074769e94078a89b7", "volume_az": "us-west-2a"},
            {"volume_id": "vol-08b303894657288a9", "type": "storage.data-dir", "snapshot_id": "snap-07b969994a363fdab", "volume_az": "us-west-2a"}]}]},
         "pd": {"replicas": 0}, "tidb": {"replicas": 0},
         "kubernetes": {"pvs": [], "pvcs": [], "crd_tidb_cluster": {}}}
        """
        let doc = try VolumeSnapshotDocument.decode(Data(text.utf8))
        #expect(doc.clusterInfo?.resolvedTs == 436732770870624257)
        #expect(doc.snapshots.map(\.snapshotID) == ["snap-074769e94078a89b7", "snap-07b969994a363fdab"])
        #expect(doc.tikv.stores[0].volumes[0].volumeAZ == "us-west-2a")
        #expect(throws: VolumeSnapshotError.self) { try VolumeSnapshotDocument.decode(Data("{\"tikv\": 3}".utf8)) }
        #expect(throws: VolumeSnapshotError.self) { try VolumeSnapshotDocument.decode(Data("nope".utf8)) }
    }

    @Test("the TiUP-on-EC2 example declares three stores the metadata reads")
    func tiupExample() throws {
        let cluster = try yamlObjects(Paths.repo("examples/volume-snapshot/tidbcluster-tiup-on-ec2.yaml"))[0]
        let doc = try VolumeSnapshotClusterMeta.gather(.init(cluster: cluster))
        #expect(doc.tikv.stores.map(\.storeID) == [1, 4, 5])
        #expect(doc.tikv.stores[0].volumes.map(\.mountPath) == ["/data/tikv", "/data/raft"])
        #expect(doc.tikv.stores[1].volumes.map(\.type) == ["storage.data-dir"])
        #expect(doc.pd.replicas == 3 && doc.tidb.replicas == 2)
    }
}
