import Foundation
import KubeModel

/// The PersistentVolumes and claims a volume-snapshot restore creates (reference 7.5, restore-volume
/// step 3): the backed-up objects of `restoremeta`, pointed at the volumes BR made from the snapshots,
/// renamed for the restore cluster, pre-bound to each other. Pure; the controller creates them.
public struct VolumeRestorePlan: Sendable, Equatable {
    public struct Pair: Sendable, Equatable {
        public var pv: JSONValue
        public var pvc: JSONValue
        public var volumeID: String
        public var pvName: String { pv.value(at: ["metadata", "name"])?.stringValue ?? "" }
        public var pvcName: String { pvc.value(at: ["metadata", "name"])?.stringValue ?? "" }
        public var pvcNamespace: String { pvc.value(at: ["metadata", "namespace"])?.stringValue ?? "" }
        public init(pv: JSONValue, pvc: JSONValue, volumeID: String) {
            self.pv = pv
            self.pvc = pvc
            self.volumeID = volumeID
        }
    }

    public var pairs: [Pair]

    public struct Target: Sendable {
        /// The restore's TidbCluster and the namespace it is in.
        public var cluster: String
        public var namespace: String
        /// `spec.br.clusterNamespace` as written (TiDB Operator compares the raw value: an empty one
        /// differs from the backup's namespace, which renames the objects).
        public var rawClusterNamespace: String
        public var volumeAZ: String?
        public init(cluster: String, namespace: String, rawClusterNamespace: String, volumeAZ: String? = nil) {
            self.cluster = cluster
            self.namespace = namespace
            self.rawClusterNamespace = rawClusterNamespace
            self.volumeAZ = volumeAZ
        }
    }

    static let removedClaimAnnotations = ["pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller"]
    static let zoneKey = "topology.ebs.csi.aws.com/zone"

    /// Checks `restoremeta` (reasons as TiDB Operator's) and builds the plan.
    public static func make(_ meta: VolumeSnapshotDocument, target: Target, newName: () -> String = { "pvc-" + UUID().uuidString.lowercased() }) throws -> VolumeRestorePlan {
        guard let kubernetes = meta.kubernetes else {
            throw VolumeSnapshotError(reason: "GetKubernetesFailed", message: "restoremeta has no kubernetes section")
        }
        guard !kubernetes.pvs.isEmpty, kubernetes.pvs.count == kubernetes.pvcs.count else {
            throw VolumeSnapshotError(reason: "InvalidKubernetesResource",
                                      message: "restoremeta has \(kubernetes.pvs.count) PVs and \(kubernetes.pvcs.count) PVCs; they must be equal and not zero")
        }
        guard !meta.tikv.stores.isEmpty else {
            throw VolumeSnapshotError(reason: "GetTiKVStoresFailed", message: "restoremeta has no TiKV stores")
        }
        var restored: [String: String] = [:]
        for volume in meta.tikv.stores.flatMap(\.volumes) where !volume.restoreVolumeID.isEmpty {
            restored[volume.volumeID] = volume.restoreVolumeID
        }
        let backupCluster = kubernetes.crdTidbCluster?.value(at: ["metadata", "name"])?.stringValue ?? ""
        let backupNamespace = kubernetes.crdTidbCluster?.value(at: ["metadata", "namespace"])?.stringValue ?? ""
        let moving = backupCluster != target.cluster || backupNamespace != target.rawClusterNamespace
        let claims = Dictionary(kubernetes.pvcs.map { ($0.value(at: ["metadata", "name"])?.stringValue ?? "", $0) }, uniquingKeysWith: { a, _ in a })

        var pairs: [Pair] = []
        for savedPV in kubernetes.pvs {
            let pvName = savedPV.value(at: ["metadata", "name"])?.stringValue ?? ""
            guard let oldID = savedPV.value(at: ["metadata", "annotations", VolumeSnapshotLayout.volumeIDAnnotation])?.stringValue,
                  let newID = restored[oldID] else { continue }
            guard let claimName = savedPV.value(at: ["spec", "claimRef", "name"])?.stringValue else {
                throw VolumeSnapshotError(reason: "PVClaimRefNil", message: "PV \(pvName) of volume \(oldID) has no claimRef")
            }
            guard let savedPVC = claims[claimName] else {
                throw VolumeSnapshotError(reason: "PVCNotFound", message: "PVC \(claimName) of PV \(pvName) is not in restoremeta")
            }
            var pv = trimmed(savedPV)
            var pvc = trimmed(savedPVC)
            for a in removedClaimAnnotations { pvc["metadata"]?["annotations"]?[a] = nil }
            pv["metadata"]?["annotations"]?[VolumeSnapshotLayout.volumeIDAnnotation] = nil
            pv["spec"]?["claimRef"]?["uid"] = nil
            pv["spec"]?["claimRef"]?["resourceVersion"] = nil
            try EBSVolumeID.set(newID, in: &pv)
            if moving {
                let newClaim = renamed(claimName, from: backupCluster, to: target.cluster)
                let newPV = newName()
                pvc["metadata"]?["name"] = .string(newClaim)
                pvc["metadata"]?["namespace"] = .string(target.namespace)
                pvc["spec"]?["volumeName"] = .string(newPV)
                pv["metadata"]?["name"] = .string(newPV)
                pv["spec"]?["claimRef"]?["name"] = .string(newClaim)
                pv["spec"]?["claimRef"]?["namespace"] = .string(target.namespace)
                setLabel(&pv, BRLabels.instance, target.cluster)
                setLabel(&pvc, BRLabels.instance, target.cluster)
                setLabel(&pv, "app.kubernetes.io/namespace", target.namespace)
                renamePodLabel(&pv, from: backupCluster, to: target.cluster)
                renamePodLabel(&pvc, from: backupCluster, to: target.cluster)
            }
            if let az = target.volumeAZ, !az.isEmpty { pv = withZone(pv, az) }
            if pv.value(at: ["metadata", "annotations"])?.objectValue == nil { pv["metadata"]?["annotations"] = .object(JSONObject()) }
            pv["metadata"]?["annotations"]?[VolumeSnapshotLayout.restoredVolumeIDAnnotation] = .string(newID)
            pairs.append(Pair(pv: pv, pvc: pvc, volumeID: newID))
        }
        if pairs.isEmpty {
            throw VolumeSnapshotError(reason: "GetPVFailed", message: "no PV of restoremeta carries a volume that BR restored (annotation \(VolumeSnapshotLayout.volumeIDAnnotation))")
        }
        return VolumeRestorePlan(pairs: try resequenced(pairs, cluster: target.cluster))
    }

    /// Keeps only name, namespace, labels and annotations of the metadata; drops status.
    static func trimmed(_ object: JSONValue) -> JSONValue {
        var out = object
        var meta = JSONObject()
        for key in ["name", "namespace", "labels", "annotations"] {
            if let v = object.value(at: ["metadata", key]) { meta[key] = v }
        }
        out["metadata"] = .object(meta)
        out["status"] = nil
        return out
    }

    static func setLabel(_ object: inout JSONValue, _ key: String, _ value: String) {
        if object.value(at: ["metadata", "labels"])?.objectValue == nil { object["metadata"]?["labels"] = .object(JSONObject()) }
        object["metadata"]?["labels"]?[key] = .string(value)
    }

    static func renamePodLabel(_ object: inout JSONValue, from: String, to: String) {
        guard let pod = object.value(at: ["metadata", "labels", "tidb.pingcap.com/pod-name"])?.stringValue else { return }
        setLabel(&object, "tidb.pingcap.com/pod-name", renamed(pod, from: from, to: to))
    }

    /// `…-<from>-tikv-<n>` → `…-<to>-tikv-<n>` (the trailing part only).
    static func renamed(_ name: String, from: String, to: String) -> String {
        let old = "\(from)-tikv-"
        guard let r = name.range(of: old, options: .backwards) else { return name }
        let ordinal = name[r.upperBound...]
        guard !ordinal.isEmpty, ordinal.allSatisfy(\.isNumber) else { return name }
        return name[..<r.lowerBound] + "\(to)-tikv-" + ordinal
    }

    /// Node-affinity terms on the EBS CSI zone key name `az` instead.
    static func withZone(_ pv: JSONValue, _ az: String) -> JSONValue {
        var pv = pv
        guard var terms = pv.value(at: ["spec", "nodeAffinity", "required", "nodeSelectorTerms"])?.arrayValue else { return pv }
        for i in terms.indices {
            for field in ["matchExpressions", "matchFields"] {
                guard var list = terms[i][field]?.arrayValue else { continue }
                for j in list.indices where list[j]["key"] == .string(zoneKey) && (field == "matchFields" || list[j]["operator"] == "In") {
                    list[j]["values"] = [.string(az)]
                }
                terms[i][field] = .array(list)
            }
        }
        pv["spec"]?["nodeAffinity"]?["required"]?["nodeSelectorTerms"] = .array(terms)
        return pv
    }

    /// Claim ordinals made contiguous from 0 within each volume group (`<group>-<cluster>-tikv-<n>`),
    /// keeping their order; the PVs' claimRefs follow (8.15 `resetPVCSequence`).
    public static func resequenced(_ pairs: [Pair], cluster: String) throws -> [Pair] {
        let suffix = "-\(cluster)-tikv-"
        var groups: [String: [(ordinal: Int, index: Int)]] = [:]
        for (i, pair) in pairs.enumerated() {
            let name = pair.pvcName
            guard let r = name.range(of: suffix, options: .backwards), r.lowerBound > name.startIndex,
                  let ordinal = Int(name[r.upperBound...]) else {
                throw VolumeSnapshotError(reason: "InvalidPVCName", message: "PVC \(name) does not end in <volume>\(suffix)<ordinal>")
            }
            groups[String(name[..<r.lowerBound]), default: []].append((ordinal, i))
        }
        var out = pairs
        for (group, members) in groups {
            for (n, member) in members.sorted(by: { $0.ordinal < $1.ordinal }).enumerated() where member.ordinal != n {
                let name = "\(group)\(suffix)\(n)"
                out[member.index].pvc["metadata"]?["name"] = .string(name)
                out[member.index].pv["spec"]?["claimRef"]?["name"] = .string(name)
            }
        }
        return out
    }
}
