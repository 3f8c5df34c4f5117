import BRModel
import Foundation
import KubeModel
import Testing

@Suite("Volume-snapshot restore: the PV / PVC rewrite of 7.5 step 3")
struct VolumeRestorePlanTests {
    /// `restoremeta` of a backup of TidbCluster `basic` in `tidb`: three stores with a data and a raft
    /// volume each, BR's new volume per snapshot filled in.
    static func restoreMeta() throws -> VolumeSnapshotDocument {
        var doc = try VolumeSnapshotClusterMeta.gather(EBSObjects.inputs())
        doc.kubernetes?.crdTidbCluster = ["metadata": ["name": "basic", "namespace": "tidb"]]
        for s in doc.tikv.stores.indices {
            for v in doc.tikv.stores[s].volumes.indices {
                doc.tikv.stores[s].volumes[v].snapshotID = "snap-\(s)\(v)"
                doc.tikv.stores[s].volumes[v].restoreVolumeID = "vol-new\(s)\(v)"
            }
        }
        // What a real cluster's objects carry and the restore must drop or change.
        var k = doc.kubernetes!
        for i in k.pvs.indices {
            let claim = k.pvcs[i].value(at: ["metadata", "name"]) ?? ""
            k.pvs[i]["metadata"]?["uid"] = "u"
            k.pvs[i]["metadata"]?["labels"] = ["app.kubernetes.io/instance": "basic", "tidb.pingcap.com/pod-name": .string("basic-tikv-\(i / 2)")]
            k.pvs[i]["spec"]?["claimRef"] = ["kind": "PersistentVolumeClaim", "namespace": "tidb", "uid": "c", "resourceVersion": "9", "name": claim]
            k.pvs[i]["spec"]?["nodeAffinity"] = ["required": ["nodeSelectorTerms": [["matchExpressions": [
                ["key": "topology.ebs.csi.aws.com/zone", "operator": "In", "values": ["us-west-2a"]],
                ["key": "other", "operator": "In", "values": ["x"]]]]]]]
            k.pvs[i]["status"] = ["phase": "Bound"]
            k.pvcs[i]["metadata"]?["annotations"] = ["pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes", "keep": "1"]
            k.pvcs[i]["metadata"]?["resourceVersion"] = "7"
        }
        doc.kubernetes = k
        return doc
    }

    @Test("into another cluster and namespace: new volume ids, claims renamed and moved, PVs renamed and pre-bound, labels, zone, annotations")
    func acrossClusters() throws {
        var n = 0
        let plan = try VolumeRestorePlan.make(try Self.restoreMeta(), target: .init(cluster: "restored", namespace: "prod", rawClusterNamespace: "prod", volumeAZ: "us-west-2c"),
                                              newName: { n += 1; return "pvc-new-\(n)" })
        #expect(plan.pairs.count == 6)
        let first = plan.pairs[0]
        #expect(first.volumeID == "vol-new00")
        #expect(first.pvName == "pvc-new-1")
        #expect(first.pvcName == "tikv-restored-tikv-0" && first.pvcNamespace == "prod")
        #expect(first.pv.value(at: ["spec", "csi", "volumeHandle"]) == "vol-new00")
        #expect(first.pv.value(at: ["spec", "claimRef"]) == ["kind": "PersistentVolumeClaim", "namespace": "prod", "name": "tikv-restored-tikv-0"])
        #expect(first.pvc.value(at: ["spec", "volumeName"]) == "pvc-new-1")
        #expect(first.pv.value(at: ["metadata", "annotations"]) == ["tikv-volume-restore/volume-id": "vol-new00"])
        #expect(first.pvc.value(at: ["metadata", "annotations"]) == ["keep": "1"])
        #expect(first.pv.value(at: ["metadata", "uid"]) == nil && first.pvc.value(at: ["metadata", "resourceVersion"]) == nil)
        #expect(first.pv["status"] == nil && first.pvc["status"] == nil)
        #expect(first.pv.value(at: ["metadata", "labels", "app.kubernetes.io/instance"]) == "restored")
        #expect(first.pv.value(at: ["metadata", "labels", "app.kubernetes.io/namespace"]) == "prod")
        #expect(first.pv.value(at: ["metadata", "labels", "tidb.pingcap.com/pod-name"]) == "restored-tikv-0")
        #expect(first.pvc.value(at: ["metadata", "labels", "app.kubernetes.io/instance"]) == "restored")
        let expressions = first.pv.value(at: ["spec", "nodeAffinity", "required", "nodeSelectorTerms"])?.arrayValue?.first?["matchExpressions"]?.arrayValue
        #expect(expressions?[0]["values"] == ["us-west-2c"])
        #expect(expressions?[1]["values"] == ["x"], "other keys are left alone")
        // The raft claim of store 3, in-tree: aws://<zone>/<id> needs the zone label; without it the bare id.
        let raft = plan.pairs[5]
        #expect(raft.pvcName == "tikv-raft-restored-tikv-2")
        #expect(raft.pv.value(at: ["spec", "awsElasticBlockStore", "volumeID"]) == "vol-new21")
    }

    @Test("into the same cluster and namespace: names kept, only ids and bindings change")
    func sameCluster() throws {
        let plan = try VolumeRestorePlan.make(try Self.restoreMeta(), target: .init(cluster: "basic", namespace: "tidb", rawClusterNamespace: "tidb"))
        #expect(plan.pairs.map(\.pvName) == ["pv-data-0", "pv-raft-0", "pv-data-1", "pv-raft-1", "pv-data-2", "pv-raft-2"])
        #expect(plan.pairs[0].pvcName == "tikv-basic-tikv-0" && plan.pairs[0].pvcNamespace == "tidb")
        #expect(plan.pairs[0].pv.value(at: ["spec", "claimRef", "uid"]) == nil)
        #expect(plan.pairs[0].pv.value(at: ["metadata", "labels", "app.kubernetes.io/instance"]) == "basic")
        // An empty raw clusterNamespace differs from the backup's, as upstream compares it: objects move.
        let moved = try VolumeRestorePlan.make(try Self.restoreMeta(), target: .init(cluster: "basic", namespace: "tidb", rawClusterNamespace: ""))
        #expect(moved.pairs[0].pvName.hasPrefix("pvc-"))
    }

    @Test("resetPVCSequence vector of 8.15: tikv-test-tikv-{0,1,2,6,7,8} → {0..5}, claimRefs follow, per volume group")
    func resequence() throws {
        func pair(_ claim: String) -> VolumeRestorePlan.Pair {
            .init(pv: ["metadata": ["name": .string("pv-" + claim)], "spec": ["claimRef": ["name": .string(claim)]]],
                  pvc: ["metadata": ["name": .string(claim)]], volumeID: "vol-x")
        }
        let names = [0, 1, 2, 6, 7, 8].map { "tikv-test-tikv-\($0)" } + [3, 9].map { "raft-test-tikv-\($0)" }
        let out = try VolumeRestorePlan.resequenced(names.map(pair), cluster: "test")
        #expect(out.map(\.pvcName) == (0...5).map { "tikv-test-tikv-\($0)" } + ["raft-test-tikv-0", "raft-test-tikv-1"])
        #expect(out.map { $0.pv.value(at: ["spec", "claimRef", "name"])?.stringValue ?? "" } == out.map(\.pvcName))
        #expect(throws: VolumeSnapshotError.self) { try VolumeRestorePlan.resequenced([pair("data-0")], cluster: "test") }
    }

    @Test("restoremeta checks: no kubernetes section, unequal PVs and PVCs, no stores, a PV without claimRef")
    func checks() throws {
        let target = VolumeRestorePlan.Target(cluster: "r", namespace: "n", rawClusterNamespace: "n")
        var meta = try Self.restoreMeta()
        meta.kubernetes = nil
        #expect(throws: VolumeSnapshotError.self) { try VolumeRestorePlan.make(meta, target: target) }
        meta = try Self.restoreMeta()
        meta.kubernetes!.pvcs.removeLast()
        #expect(throws: VolumeSnapshotError.self) { try VolumeRestorePlan.make(meta, target: target) }
        meta = try Self.restoreMeta()
        meta.tikv.stores = []
        #expect(throws: VolumeSnapshotError.self) { try VolumeRestorePlan.make(meta, target: target) }
        meta = try Self.restoreMeta()
        meta.kubernetes!.pvs[0]["spec"]?["claimRef"] = nil
        do {
            _ = try VolumeRestorePlan.make(meta, target: target)
            Issue.record("a PV without claimRef must be refused")
        } catch let e as VolumeSnapshotError {
            #expect(e.reason == "PVClaimRefNil")
        }
    }
}

@Suite("Volume-snapshot restore: the backup must fit the cluster (reference 2.3, TiDB Operator's messages)")
struct VolumeRestoreCheckTests {
    static func cluster(tikv: Int?, tiflash: Int? = nil, volumes: Int = 0, config: JSONValue? = nil) -> JSONValue {
        var spec: JSONValue = [:]
        if let tikv {
            var t: JSONValue = ["replicas": .int(Int64(tikv)), "storageVolumes": .array((0..<volumes).map { ["name": .string("v\($0)")] })]
            if let config { t["config"] = config }
            spec["tikv"] = t
        }
        if let tiflash { spec["tiflash"] = ["replicas": .int(Int64(tiflash))] }
        return ["spec": spec]
    }

    @Test("replicas, storage volumes, TiFlash and encryption, each named")
    func mismatches() {
        #expect(VolumeRestoreCheck.problem(backup: Self.cluster(tikv: 3), target: Self.cluster(tikv: 3)) == nil)
        #expect(VolumeRestoreCheck.problem(backup: Self.cluster(tikv: 3), target: Self.cluster(tikv: 4)) == "tikv replica mismatch")
        #expect(VolumeRestoreCheck.problem(backup: Self.cluster(tikv: 3), target: Self.cluster(tikv: nil)) == "restore to no tikv cluster")
        #expect(VolumeRestoreCheck.problem(backup: Self.cluster(tikv: nil), target: Self.cluster(tikv: 3)) == "backup source tc has no tivk nodes")
        #expect(VolumeRestoreCheck.problem(backup: Self.cluster(tikv: 3, volumes: 1), target: Self.cluster(tikv: 3)) == "additional volumes mismatched")
        #expect(VolumeRestoreCheck.problem(backup: Self.cluster(tikv: 3, tiflash: 1), target: Self.cluster(tikv: 3)) == "tiflash replica mismatched")
        #expect(VolumeRestoreCheck.problem(backup: Self.cluster(tikv: 3, tiflash: 0), target: Self.cluster(tikv: 3)) == nil)
        let encrypted = Self.cluster(tikv: 3, config: .string("[security.encryption]\ndata-encryption-method = \"aes256-ctr\"\n[security.encryption.master-key]\nkey-id = \"k1\"\n"))
        #expect(VolumeRestoreCheck.problem(backup: encrypted, target: Self.cluster(tikv: 3))?.hasPrefix("TiKV encryption missmatched with backup") == true)
        let sameMethodOtherKey = Self.cluster(tikv: 3, config: ["security": ["encryption": ["data-encryption-method": "aes256-ctr", "master-key": ["key-id": "k2"]]]])
        #expect(VolumeRestoreCheck.problem(backup: encrypted, target: sameMethodOtherKey)?.contains("master key id") == true)
        let same = Self.cluster(tikv: 3, config: ["security": ["encryption": ["data-encryption-method": "aes256-ctr", "master-key": ["key-id": "k1"]]]])
        #expect(VolumeRestoreCheck.problem(backup: encrypted, target: same) == nil)
        let plaintext = Self.cluster(tikv: 3, config: .string("[security.encryption]\ndata-encryption-method = \"plaintext\"\n"))
        #expect(VolumeRestoreCheck.problem(backup: plaintext, target: Self.cluster(tikv: 3)) == nil)
    }
}

@Suite("Volume-snapshot restore: the prepare Job's flags, as TiDB Operator's restore manager adds them")
struct VolumeRestoreFlagTests {
    static func prepareArguments(_ change: (inout RestoreSpec) -> Void) -> [String] {
        var spec = RestoreSpec()
        spec.restoreMode = .volumeSnapshot
        spec.br = BRConfig(cluster: "basic")
        change(&spec)
        return Restore(name: "r", namespace: "ns", spec: spec).volumeJob(.prepare).modeArguments
    }

    @Test("--use-fsr=true follows warmupStrategy fsr alone (with or without a warmup Job); --target-az only when volumeAZ is set")
    func prepareFlags() {
        #expect(Self.prepareArguments { $0.warmupStrategy = .fsr } == ["--mode=volume-snapshot", "--prepare", "--use-fsr=true"])
        #expect(Self.prepareArguments { $0.warmupStrategy = .fsr; $0.warmup = .sync; $0.volumeAZ = "us-west-2a" }
                == ["--mode=volume-snapshot", "--prepare", "--target-az=us-west-2a", "--use-fsr=true"])
        #expect(Self.prepareArguments { $0.warmupStrategy = .hybrid; $0.warmup = .sync } == ["--mode=volume-snapshot", "--prepare"])
        #expect(Self.prepareArguments { $0.volumeAZ = "" } == ["--mode=volume-snapshot", "--prepare"])
        var data = RestoreSpec()
        data.restoreMode = .volumeSnapshot
        data.warmupStrategy = .fsr
        #expect(Restore(name: "r", namespace: "ns", spec: data).volumeJob(.data).modeArguments == ["--mode=volume-snapshot"])
    }
}
