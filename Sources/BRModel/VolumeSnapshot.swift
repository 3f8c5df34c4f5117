import Foundation
import KubeModel

/// The documents of a volume-snapshot (EBS) backup (reference 7.3). One shape serves the three:
/// `clustermeta` (what the operator gathered, BR's `--volume-file`), `backupmeta` (BR's answer with a
/// snapshot per volume and the resolved ts) and `restoremeta` (BR's `--prepare` output with the new
/// volume per snapshot).
public struct VolumeSnapshotDocument: Codable, Hashable, Sendable {
    public var clusterInfo: ClusterInfo?
    public var tikv: TiKVPart
    public var pd: Replicas
    public var tidb: Replicas
    public var kubernetes: KubernetesPart?
    public var options: JSONValue?
    public var region: String?

    enum CodingKeys: String, CodingKey {
        case clusterInfo = "cluster_info", tikv, pd, tidb, kubernetes, options, region
    }

    public init(tikv: TiKVPart, pd: Replicas, tidb: Replicas, kubernetes: KubernetesPart?) {
        self.tikv = tikv
        self.pd = pd
        self.tidb = tidb
        self.kubernetes = kubernetes
    }

    public struct ClusterInfo: Codable, Hashable, Sendable {
        public var clusterVersion: String?
        public var fullBackupType: String?
        public var resolvedTs: UInt64?
        public var replicas: [String: UInt64]?

        enum CodingKeys: String, CodingKey {
            case clusterVersion = "cluster_version", fullBackupType = "full_backup_type", resolvedTs = "resolved_ts", replicas
        }

        public init(clusterVersion: String? = nil, fullBackupType: String? = nil, resolvedTs: UInt64? = nil, replicas: [String: UInt64]? = nil) {
            self.clusterVersion = clusterVersion
            self.fullBackupType = fullBackupType
            self.resolvedTs = resolvedTs
            self.replicas = replicas
        }
    }

    public struct Replicas: Codable, Hashable, Sendable {
        public var replicas: Int
        public init(replicas: Int) { self.replicas = replicas }
    }

    public struct TiKVPart: Codable, Hashable, Sendable {
        public var replicas: Int
        public var stores: [Store]
        public init(replicas: Int, stores: [Store]) {
            self.replicas = replicas
            self.stores = stores
        }
    }

    public struct Store: Codable, Hashable, Sendable {
        public var storeID: UInt64
        public var volumes: [Volume]
        enum CodingKeys: String, CodingKey { case storeID = "store_id", volumes }
        public init(storeID: UInt64, volumes: [Volume]) {
            self.storeID = storeID
            self.volumes = volumes
        }
    }

    public struct Volume: Codable, Hashable, Sendable {
        public var volumeID: String
        public var type: String
        public var mountPath: String?
        public var snapshotID: String
        public var restoreVolumeID: String
        public var volumeAZ: String?
        public var status: String?

        enum CodingKeys: String, CodingKey {
            case volumeID = "volume_id", type, mountPath = "mount_path", snapshotID = "snapshot_id",
                 restoreVolumeID = "restore_volume_id", volumeAZ = "volume_az", status
        }

        public init(volumeID: String, type: String, mountPath: String?, snapshotID: String = "", restoreVolumeID: String = "", volumeAZ: String? = nil) {
            self.volumeID = volumeID
            self.type = type
            self.mountPath = mountPath
            self.snapshotID = snapshotID
            self.restoreVolumeID = restoreVolumeID
            self.volumeAZ = volumeAZ
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            volumeID = try c.decodeIfPresent(String.self, forKey: .volumeID) ?? ""
            type = try c.decodeIfPresent(String.self, forKey: .type) ?? ""
            mountPath = try c.decodeIfPresent(String.self, forKey: .mountPath)
            snapshotID = try c.decodeIfPresent(String.self, forKey: .snapshotID) ?? ""
            restoreVolumeID = try c.decodeIfPresent(String.self, forKey: .restoreVolumeID) ?? ""
            volumeAZ = try c.decodeIfPresent(String.self, forKey: .volumeAZ)
            status = try c.decodeIfPresent(String.self, forKey: .status)
        }
    }

    public struct KubernetesPart: Codable, Hashable, Sendable {
        public var pvcs: [JSONValue]
        public var pvs: [JSONValue]
        public var crdTidbCluster: JSONValue?
        public var options: JSONValue?
        enum CodingKeys: String, CodingKey { case pvcs, pvs, crdTidbCluster = "crd_tidb_cluster", options }
        public init(pvcs: [JSONValue], pvs: [JSONValue], crdTidbCluster: JSONValue?) {
            self.pvcs = pvcs
            self.pvs = pvs
            self.crdTidbCluster = crdTidbCluster
        }
    }

    /// Every (volume, snapshot) pair that has a snapshot.
    public var snapshots: [(volumeID: String, snapshotID: String)] {
        tikv.stores.flatMap { $0.volumes }.filter { !$0.snapshotID.isEmpty }.map { ($0.volumeID, $0.snapshotID) }
    }

    public func encoded() -> JSONValue { KubeCodec.encodeValue(self) }

    public static func decode(_ data: Data) throws -> VolumeSnapshotDocument {
        let value: JSONValue
        do { value = try JSONParser.parse(data).value } catch {
            throw VolumeSnapshotError(reason: "ParseCloudSnapshotBackupFailed", message: "the document is not JSON: \(error)")
        }
        do { return try KubeCodec.decodeValue(VolumeSnapshotDocument.self, from: value) } catch {
            throw VolumeSnapshotError(reason: "ParseCloudSnapshotBackupFailed", message: "the document is not a volume-snapshot backup description: \(error)")
        }
    }
}

/// A volume-snapshot step that cannot go on, with TiDB Operator's reason.
public struct VolumeSnapshotError: Error, CustomStringConvertible, Sendable, Equatable {
    public var reason: String
    public var message: String
    public init(reason: String, message: String) {
        self.reason = reason
        self.message = message
    }
    public var description: String { message }
}

/// Layout of a volume-snapshot backup: object keys, labels, annotations.
public enum VolumeSnapshotLayout {
    public static let clusterMetaKey = "clustermeta"
    public static let backupMetaKey = "backupmeta"
    public static let restoreMetaKey = "restoremeta"
    /// The annotation carrying a PV's EBS volume id in the saved objects.
    public static let volumeIDAnnotation = "temporary/volume-id"
    public static let restoredVolumeIDAnnotation = "tikv-volume-restore/volume-id"
    public static let storeIDLabel = "tidb.pingcap.com/store-id"
    public static let ebsCSIDriver = "ebs.csi.aws.com"
    /// BR's log lines that say the init job holds GC and PD scheduling paused.
    public static let gcPausedLine = "GC is paused"
    public static let schedulersPausedLine = "Schedulers are paused"
    /// Tags our job binary puts on every snapshot of a backup, so a snapshot can be traced back to it.
    public static let backupTag = "tidb-backup-operator.pingcap.com/backup"
    /// The ConfigMap through which the operator hands the gathered cluster metadata to the backup job.
    public static func clusterMetaConfigMap(_ backup: Backup) -> String { "\(backup.jobName)-clustermeta" }
    public static let clusterMetaConfigMapKey = "clustermeta.json"
    /// The ConfigMap through which a restore's prepare Job hands BR's restoremeta to the operator, and
    /// the operator tells the data Job which PV and claim it made for each new volume.
    public static func restoreMetaConfigMap(restore: String) -> String { "restore-\(restore)-restoremeta" }
    public static let restoreMetaConfigMapKey = "restoremeta.json"
    public static let restoredVolumesConfigMapKey = "volumes.json"
    /// The TidbCluster manifest kept beside the metadata (`manifests/<ns>/TidbCluster/<name>.yaml`).
    public static let manifestPrefix = "manifest:"
}

/// EBS volume ids in PersistentVolumes (reference 8.15).
public enum EBSVolumeID {
    /// The id in a PV: the CSI `ebs.csi.aws.com` volume handle, or the in-tree `awsElasticBlockStore`
    /// volume id (`aws://zone/vol-…` or `vol-…`). `nil` without an EBS source or when no `vol-` id is
    /// found; an error for another CSI driver or an empty in-tree id.
    public static func from(pv: JSONValue) throws -> String? {
        let spec = pv["spec"]
        if let csi = spec?["csi"], csi.objectValue != nil {
            let driver = csi["driver"]?.stringValue ?? ""
            guard driver == VolumeSnapshotLayout.ebsCSIDriver else {
                throw VolumeSnapshotError(reason: "GetVolumeIDFailed", message: "unable to handle CSI driver: \(driver)")
            }
            return firstVolumeID(csi["volumeHandle"]?.stringValue ?? "")
        }
        if let ebs = spec?["awsElasticBlockStore"], ebs.objectValue != nil {
            let id = ebs["volumeID"]?.stringValue ?? ""
            if id.isEmpty {
                throw VolumeSnapshotError(reason: "GetVolumeIDFailed", message: "awsElasticBlockStore.volumeID of PV \(pv.value(at: ["metadata", "name"])?.stringValue ?? "") is empty")
            }
            return firstVolumeID(id)
        }
        return nil
    }

    /// The first `vol-…` in the text (the id runs to the end of the word).
    static func firstVolumeID(_ text: String) -> String? {
        guard let r = text.range(of: "vol-") else { return nil }
        let tail = text[r.lowerBound...].prefix { $0.isLetter || $0.isNumber || $0 == "-" }
        return tail.count > 4 ? String(tail) : nil
    }

    /// Points a PV at another EBS volume: the CSI handle, or the in-tree id as `aws://<zone>/<id>`
    /// when the PV has the zone label, else the bare id.
    public static func set(_ id: String, in pv: inout JSONValue) throws {
        if pv.value(at: ["spec", "csi"])?.objectValue != nil {
            pv["spec"]?["csi"]?["volumeHandle"] = .string(id)
            return
        }
        if pv.value(at: ["spec", "awsElasticBlockStore"])?.objectValue != nil {
            let zone = pv.value(at: ["metadata", "labels", "failure-domain.beta.kubernetes.io/zone"])?.stringValue ?? ""
            pv["spec"]?["awsElasticBlockStore"]?["volumeID"] = .string(zone.isEmpty ? id : "aws://\(zone)/\(id)")
            return
        }
        throw VolumeSnapshotError(reason: "ResetRestoreVolumeIDFailed",
                                  message: "PV \(pv.value(at: ["metadata", "name"])?.stringValue ?? "") has no EBS volume source")
    }
}
