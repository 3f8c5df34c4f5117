/// A Secret a Job reads: the field of the spec that names it and the keys it must hold. The Job
/// builder refuses a Secret without them; `doctor` names them in its fix, so a user creates the Secret
/// right the first time.
public struct SecretNeed: Sendable, Equatable {
    /// The field that names the Secret, e.g. `spec.s3.secretName`.
    public var field: String
    public var name: String
    /// Every key the Secret must hold.
    public var keys: [String]
    /// Keys that will do instead of `keys` (Azure: AD client credentials instead of the shared key).
    public var instead: [String]?

    public init(field: String, name: String, keys: [String], instead: [String]? = nil) {
        self.field = field
        self.name = name
        self.keys = keys
        self.instead = instead
    }

    /// The keys of `present` this need lacks; empty when either key set is complete.
    public func missing(from present: Set<String>) -> [String] {
        let lacking = keys.filter { !present.contains($0) }
        if lacking.isEmpty { return [] }
        if let instead, instead.allSatisfy(present.contains) { return [] }
        return lacking
    }
}

extension StorageProvider {
    /// The Secret the storage's credentials come from, with the keys TiDB Operator's Job builder reads
    /// (reference 3.6.1); nil when the spec names none (credentials from the pod's identity).
    /// `base` is the path of the object holding the provider, e.g. `spec`.
    public func secretNeed(base: String = "spec") -> SecretNeed? {
        if let s3, let name = s3.secretName, !name.isEmpty {
            return SecretNeed(field: "\(base).s3.secretName", name: name, keys: ["access_key", "secret_key"])
        }
        if let gcs, let name = gcs.secretName, !name.isEmpty {
            return SecretNeed(field: "\(base).gcs.secretName", name: name, keys: ["credentials"])
        }
        if let azblob, let name = azblob.secretName, !name.isEmpty {
            let account = (azblob.storageAccount ?? "").isEmpty ? ["AZURE_STORAGE_ACCOUNT"] : []
            // A SAS token in the spec needs no key from the Secret.
            guard (azblob.sasToken ?? "").isEmpty else { return account.isEmpty ? nil : SecretNeed(field: "\(base).azblob.secretName", name: name, keys: account) }
            return SecretNeed(field: "\(base).azblob.secretName", name: name, keys: account + ["AZURE_STORAGE_KEY"],
                              instead: account + ["AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"])
        }
        return nil
    }
}

extension TiDBAccessConfig {
    /// The Secret with the TiDB user's password (`spec.from` of an export, `spec.to` of an import).
    public func secretNeed(field: String) -> SecretNeed {
        SecretNeed(field: "\(field).secretName", name: secretName, keys: ["password"])
    }
}

extension LightningRemoteSource {
    /// The Secret with rclone's configuration, when the remote source names one.
    public var secretNeed: SecretNeed? {
        guard let name = secretName, !name.isEmpty else { return nil }
        return SecretNeed(field: "spec.lightning.dataSource.remote.secretName", name: name, keys: [LightningLayout.rcloneConfigKey])
    }
}
