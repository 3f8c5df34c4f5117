import KubeModel

/// Gathers what a volume-snapshot backup needs to know about one cluster (reference 7.2, execute 1b):
/// its TiKV stores with their EBS volumes, PD and TiDB replicas, the TidbCluster, and the TiKV PVCs and
/// PVs (each PV annotated with its volume id). Pure: the caller reads the objects.
///
/// Two sources of stores:
/// - **On Kubernetes** (TiDB Operator's layout): every TiKV pod (`app.kubernetes.io/component=tikv`,
///   `app.kubernetes.io/instance=<cluster>`) with its store id label; the pod volume `tikv` is the data
///   directory `/var/lib/tikv`, and `tikv-<name>` each `spec.tikv.storageVolumes[]` entry.
/// - **A cluster that is not on Kubernetes** (TiUP on EC2 hosts, served by the standalone server): the
///   TidbCluster lists its stores in `spec.tikv.externalStores`:
///   `[{storeID: 1, volumes: [{volumeID: vol-…, type: storage.data-dir, mountPath: /var/lib/tikv}]}]`.
public enum VolumeSnapshotClusterMeta {
    public static let dataVolume = "tikv"
    public static let dataMountPath = "/var/lib/tikv"
    public static let dataType = "storage.data-dir"

    public struct Inputs: Sendable {
        public var cluster: JSONValue
        public var pods: [JSONValue]
        public var pvcs: [JSONValue]
        public var pvs: [JSONValue]
        public init(cluster: JSONValue, pods: [JSONValue] = [], pvcs: [JSONValue] = [], pvs: [JSONValue] = []) {
            self.cluster = cluster
            self.pods = pods
            self.pvcs = pvcs
            self.pvs = pvs
        }
    }

    /// Whether the cluster declares its stores itself (`spec.tikv.externalStores`).
    public static func declaresStores(_ cluster: JSONValue) -> Bool {
        cluster.value(at: ["spec", "tikv", "externalStores"])?.arrayValue != nil
    }

    public static func gather(_ inputs: Inputs) throws -> VolumeSnapshotDocument {
        let cluster = inputs.cluster
        let pd = Int(cluster.value(at: ["spec", "pd", "replicas"])?.intValue ?? 0)
        let tidb = Int(cluster.value(at: ["spec", "tidb", "replicas"])?.intValue ?? 0)
        var kept = cluster
        kept["metadata"]?["managedFields"] = nil
        if declaresStores(cluster) {
            let stores = try externalStores(cluster)
            return VolumeSnapshotDocument(tikv: .init(replicas: stores.count, stores: stores), pd: .init(replicas: pd),
                                          tidb: .init(replicas: tidb), kubernetes: .init(pvcs: [], pvs: [], crdTidbCluster: kept))
        }
        let clusterName = cluster.value(at: ["metadata", "name"])?.stringValue ?? ""
        let pvcsByName = Dictionary(inputs.pvcs.map { ($0.value(at: ["metadata", "name"])?.stringValue ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        let pvsByName = Dictionary(inputs.pvs.map { ($0.value(at: ["metadata", "name"])?.stringValue ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        let mountPaths = storageVolumeMounts(cluster)
        var stores: [VolumeSnapshotDocument.Store] = []
        var usedPVCs: [JSONValue] = []
        var usedPVs: [JSONValue] = []
        let pods = inputs.pods.sorted { ($0.value(at: ["metadata", "name"])?.stringValue ?? "") < ($1.value(at: ["metadata", "name"])?.stringValue ?? "") }
        if pods.isEmpty {
            throw VolumeSnapshotError(reason: "GetTiKVPodsFailed", message: "no TiKV pods of TidbCluster \(clusterName) were found (labels app.kubernetes.io/component=tikv, app.kubernetes.io/instance=\(clusterName)); for a cluster that is not on Kubernetes, list its stores in spec.tikv.externalStores")
        }
        for pod in pods {
            let podName = pod.value(at: ["metadata", "name"])?.stringValue ?? ""
            guard let text = pod.value(at: ["metadata", "labels", VolumeSnapshotLayout.storeIDLabel])?.stringValue, let storeID = UInt64(text) else {
                throw VolumeSnapshotError(reason: "GetStoreIDFailed", message: "TiKV pod \(podName) has no numeric \(VolumeSnapshotLayout.storeIDLabel) label: its store is not registered yet")
            }
            var volumes: [VolumeSnapshotDocument.Volume] = []
            for volume in pod.value(at: ["spec", "volumes"])?.arrayValue ?? [] {
                let name = volume["name"]?.stringValue ?? ""
                let mountPath: String
                let type: String
                if name == dataVolume {
                    mountPath = dataMountPath
                    type = dataType
                } else if name.hasPrefix("\(dataVolume)-"), let m = mountPaths[String(name.dropFirst(dataVolume.count + 1))] {
                    mountPath = m
                    type = configKey(cluster, valued: m) ?? ""
                } else {
                    continue
                }
                guard let claim = volume.value(at: ["persistentVolumeClaim", "claimName"])?.stringValue else { continue }
                guard let pvc = pvcsByName[claim] else {
                    throw VolumeSnapshotError(reason: "PVCNotFound", message: "PVC \(claim) of TiKV pod \(podName) (volume \(name)) is not found")
                }
                let pvName = pvc.value(at: ["spec", "volumeName"])?.stringValue ?? ""
                guard !pvName.isEmpty, var pv = pvsByName[pvName] else {
                    throw VolumeSnapshotError(reason: "PVNotFound", message: "PV \(pvName.isEmpty ? "(none: the claim is not bound)" : pvName) of PVC \(claim) is not found")
                }
                let id: String?
                do { id = try EBSVolumeID.from(pv: pv) } catch let e as VolumeSnapshotError {
                    throw VolumeSnapshotError(reason: e.reason, message: "PV \(pvName) of PVC \(claim): \(e.message)")
                }
                guard let id else {
                    throw VolumeSnapshotError(reason: "GetVolumeIDFailed", message: "PV \(pvName) of PVC \(claim) is not an EBS volume (no ebs.csi.aws.com volume handle or awsElasticBlockStore volume id)")
                }
                pv["metadata"]?["managedFields"] = nil
                if pv.value(at: ["metadata", "annotations"])?.objectValue == nil { pv["metadata"]?["annotations"] = .object(JSONObject()) }
                pv["metadata"]?["annotations"]?[VolumeSnapshotLayout.volumeIDAnnotation] = .string(id)
                var keptPVC = pvc
                keptPVC["metadata"]?["managedFields"] = nil
                usedPVCs.append(keptPVC)
                usedPVs.append(pv)
                volumes.append(.init(volumeID: id, type: type, mountPath: mountPath))
            }
            if volumes.isEmpty {
                throw VolumeSnapshotError(reason: "GetVolumeIDFailed", message: "TiKV pod \(podName) has no volume backed by a PVC (volume \(dataVolume) or \(dataVolume)-<storageVolume>)")
            }
            stores.append(.init(storeID: storeID, volumes: volumes))
        }
        let statusStores = (cluster.value(at: ["status", "tikv", "stores"])?.objectValue?.count ?? 0)
            + (cluster.value(at: ["status", "tikv", "peerStores"])?.objectValue?.count ?? 0)
        return VolumeSnapshotDocument(tikv: .init(replicas: statusStores > 0 ? statusStores : stores.count, stores: stores),
                                      pd: .init(replicas: pd), tidb: .init(replicas: tidb),
                                      kubernetes: .init(pvcs: usedPVCs, pvs: usedPVs, crdTidbCluster: kept))
    }

    /// `spec.tikv.storageVolumes[]`: name → mount path.
    static func storageVolumeMounts(_ cluster: JSONValue) -> [String: String] {
        var out: [String: String] = [:]
        for v in cluster.value(at: ["spec", "tikv", "storageVolumes"])?.arrayValue ?? [] {
            if let n = v["name"]?.stringValue, let m = v["mountPath"]?.stringValue { out[n] = m }
        }
        return out
    }

    /// The TiKV configuration key (dotted) whose value is `path`, from `spec.tikv.config` as an object
    /// or TOML text; nil when none is.
    static func configKey(_ cluster: JSONValue, valued path: String) -> String? {
        guard let config = cluster.value(at: ["spec", "tikv", "config"]) else { return nil }
        if let text = config.stringValue {
            guard let toml = try? TOMLText(text) else { return nil }
            for (table, keys) in toml.tables.sorted(by: { $0.key < $1.key }) {
                for key in keys {
                    var v = toml.value(table, key) ?? ""
                    if v.count >= 2, let q = v.first, q == "\"" || q == "'", v.last == q { v = String(v.dropFirst().dropLast()) }
                    if v == path { return table.isEmpty ? key : "\(table).\(key)" }
                }
            }
            return nil
        }
        func search(_ v: JSONValue, _ prefix: String) -> String? {
            guard let o = v.objectValue else { return nil }
            for (k, child) in o {
                let key = prefix.isEmpty ? k : "\(prefix).\(k)"
                if child.stringValue == path { return key }
                if let found = search(child, key) { return found }
            }
            return nil
        }
        return search(config, "")
    }

    static func externalStores(_ cluster: JSONValue) throws -> [VolumeSnapshotDocument.Store] {
        let entries = cluster.value(at: ["spec", "tikv", "externalStores"])?.arrayValue ?? []
        if entries.isEmpty {
            throw VolumeSnapshotError(reason: "GetTiKVStoresFailed", message: "spec.tikv.externalStores of TidbCluster \(cluster.value(at: ["metadata", "name"])?.stringValue ?? "") is empty")
        }
        var seen = Set<UInt64>()
        return try entries.enumerated().map { i, entry in
            let field = "spec.tikv.externalStores[\(i)]"
            guard let id = entry["storeID"]?.intValue, id > 0 else {
                throw VolumeSnapshotError(reason: "GetTiKVStoresFailed", message: "\(field).storeID must be a positive store id")
            }
            guard seen.insert(UInt64(id)).inserted else {
                throw VolumeSnapshotError(reason: "GetTiKVStoresFailed", message: "\(field).storeID \(id) is listed twice")
            }
            let volumes = entry["volumes"]?.arrayValue ?? []
            if volumes.isEmpty { throw VolumeSnapshotError(reason: "GetTiKVStoresFailed", message: "\(field).volumes is empty") }
            return VolumeSnapshotDocument.Store(storeID: UInt64(id), volumes: try volumes.enumerated().map { j, v in
                let vfield = "\(field).volumes[\(j)]"
                guard let volumeID = v["volumeID"]?.stringValue, EBSVolumeID.firstVolumeID(volumeID) == volumeID else {
                    throw VolumeSnapshotError(reason: "GetVolumeIDFailed", message: "\(vfield).volumeID must be an EBS volume id (vol-…)")
                }
                let mountPath = v["mountPath"]?.stringValue ?? (j == 0 ? dataMountPath : "")
                let type = v["type"]?.stringValue ?? (mountPath == dataMountPath ? dataType : "")
                return .init(volumeID: volumeID, type: type, mountPath: mountPath)
            })
        }
    }
}
