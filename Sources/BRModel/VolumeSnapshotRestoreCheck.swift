import KubeModel

/// Whether a volume-snapshot backup fits the cluster it is restored into (reference 2.3, the checks
/// against `backupmeta`), with TiDB Operator's messages. The job binary runs them, since only it reads
/// the storage.
public enum VolumeRestoreCheck {
    /// The first mismatch between the backed-up TidbCluster and the target, or nil.
    public static func problem(backup: JSONValue?, target: JSONValue) -> String? {
        func replicas(_ cluster: JSONValue?, _ component: String) -> Int64? {
            guard let c = cluster?.value(at: ["spec", component]), c.objectValue != nil else { return nil }
            return c["replicas"]?.intValue ?? 0
        }
        let backupFlash = replicas(backup, "tiflash") ?? 0
        let targetFlash = replicas(target, "tiflash") ?? 0
        if backupFlash != targetFlash { return "tiflash replica mismatched" }
        guard let targetKV = replicas(target, "tikv"), targetKV > 0 else { return "restore to no tikv cluster" }
        guard let backupKV = replicas(backup, "tikv"), backupKV > 0 else { return "backup source tc has no tivk nodes" }
        if backupKV != targetKV { return "tikv replica mismatch" }
        let volumes = { (c: JSONValue?) in c?.value(at: ["spec", "tikv", "storageVolumes"])?.arrayValue?.count ?? 0 }
        if volumes(backup) != volumes(target) { return "additional volumes mismatched" }
        let method = configValue(backup, "security.encryption", "data-encryption-method")
        if let method, !method.isEmpty, method != "plaintext" {
            let targetMethod = configValue(target, "security.encryption", "data-encryption-method")
            if targetMethod != method {
                return "TiKV encryption missmatched with backup with error tikv encryption config mismatched, backup data-encryption-method \(method), restore \(targetMethod ?? "none")"
            }
            if let key = configValue(backup, "security.encryption.master-key", "key-id"), !key.isEmpty,
               configValue(target, "security.encryption.master-key", "key-id") != key {
                return "TiKV encryption missmatched with backup with error tikv encryption config mismatched, master key id differs"
            }
        }
        return nil
    }

    /// A value of `spec.tikv.config` (TOML text or an object), unquoted.
    static func configValue(_ cluster: JSONValue?, _ table: String, _ key: String) -> String? {
        guard let config = cluster?.value(at: ["spec", "tikv", "config"]) else { return nil }
        if let text = config.stringValue {
            guard let toml = try? TOMLText(text), var v = toml.value(table, key) else { return nil }
            if v.count >= 2, let q = v.first, q == "\"" || q == "'", v.last == q { v = String(v.dropFirst().dropLast()) }
            return v
        }
        var node: JSONValue? = config
        for part in table.split(separator: ".") { node = node?[String(part)] }
        return node?[key]?.stringValue
    }
}
