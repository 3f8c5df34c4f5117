/// Semantic checks of `spec.lightning` (the chart's rules, with messages that name the field).
extension LightningSpec {
    public func problems(restore: Restore) -> [ValidationProblem] {
        var out: [ValidationProblem] = []
        func add(_ field: String, _ message: String) { out.append(ValidationProblem(field: "spec.lightning.\(field)", message: message)) }
        if restore.spec.br != nil {
            out.append(ValidationProblem(field: "spec.br", message: "spec.br and spec.lightning are exclusive: a Restore runs either BR or a Lightning import"))
        }
        let backend = effectiveBackend
        if backend.rawValue == "importer" {
            add("backend", "the importer backend was removed in TiDB 5.3; use local or tidb")
        } else if !backend.isKnown {
            add("backend", "unknown backend \(backend.rawValue); use local or tidb")
        }
        if backend == .local {
            if sortedKV == nil {
                add("sortedKV", "the local backend sorts key-value pairs on a volume of its own: set sortedKV (storageClassName, storage)")
            }
            if (cluster ?? "").isEmpty {
                add("cluster", "the local backend writes to TiKV through PD: name the target TidbCluster")
            }
        }
        if let size = sortedKV?.storage, !size.isEmpty, !Self.isQuantity(size) { add("sortedKV.storage", "\(size) is not a quantity such as 100Gi") }

        let sources = [("local", dataSource.local != nil), ("remote", dataSource.remote != nil), ("adhoc", dataSource.adhoc != nil)]
            .filter(\.1).map(\.0)
        if sources.count != 1 {
            add("dataSource", sources.isEmpty ? "set one of local, remote, adhoc"
                : "local, remote and adhoc are exclusive, found \(sources.joined(separator: " and "))")
        }
        if let local = dataSource.local {
            if local.hostPath.isEmpty {
                add("dataSource.local.hostPath", "the directory holding the data is required")
            } else if !local.hostPath.hasPrefix("/") {
                add("dataSource.local.hostPath", "\(local.hostPath) is not an absolute path")
            }
        }
        if let remote = dataSource.remote {
            let hasPath = !(remote.path ?? "").isEmpty, hasDirectory = !(remote.directory ?? "").isEmpty
            if hasPath == hasDirectory {
                add("dataSource.remote", hasPath ? "path (a tarball) and directory are exclusive" : "set path (a tarball) or directory")
            }
            let field = hasPath ? "dataSource.remote.path" : "dataSource.remote.directory"
            if hasPath || hasDirectory {
                switch RemoteLocation.parse(remote.location) {
                case .failure(let message): add(field, message.description)
                case .success(let location):
                    if location.rcloneRemote != nil, (remote.secretName ?? "").isEmpty {
                        add("dataSource.remote.secretName", "\(remote.location) names rclone remote \(location.rcloneRemote!): name the Secret whose rclone.conf defines it")
                    }
                    if hasPath, !([".tar.gz", ".tgz", ".tar"].contains { location.key.hasSuffix($0) }) {
                        add(field, "\(remote.location) is not a tarball (.tar.gz, .tgz, .tar); use directory for a directory of data files")
                    }
                    if location.key.isEmpty && hasPath { add(field, "\(remote.location) names no object") }
                }
            }
            if let size = remote.storage, !size.isEmpty, !Self.isQuantity(size) { add("dataSource.remote.storage", "\(size) is not a quantity such as 100Gi") }
        }
        if let adhoc = dataSource.adhoc {
            if adhoc.pvcName.isEmpty { add("dataSource.adhoc.pvcName", "the PersistentVolumeClaim holding the data is required") }
            if adhoc.backupName.isEmpty {
                add("dataSource.adhoc.backupName", "the data's directory in the volume is required (the remote tarball's name without .tar.gz)")
            } else if adhoc.backupName.contains("/") || adhoc.backupName == ".." {
                add("dataSource.adhoc.backupName", "\(adhoc.backupName) must be one directory name")
            }
        }
        for (name, tls, secret) in [("tlsCluster", tlsCluster, "<cluster>-lightning-cluster-secret"), ("tlsClient", tlsClient, "<cluster>-tidb-client-secret")]
        where tls?.enabled == true && (cluster ?? "").isEmpty && (tls?.tlsClientSecretName ?? "").isEmpty {
            add("\(name).tlsClientSecretName", "TLS is enabled but neither cluster nor tlsClientSecretName is set, so the certificate Secret (\(secret)) is unknown")
        }
        if let config, !config.isEmpty {
            do {
                let toml = try TOMLText(config)
                if toml.sets("tidb", "password") {
                    add("config", "[tidb] password must not be in the spec: the job reads it from the Secret that spec.to.secretName names")
                }
                if toml.sets("checkpoint", "dsn"), config.contains("@tcp(") {
                    // A MySQL checkpoint DSN carries a password in clear text.
                    add("config", "[checkpoint] dsn holds credentials; keep checkpoints in the data directory (the default) instead")
                }
            } catch {
                add("config", "not valid TOML: \(error)")
            }
        }
        return out
    }

    /// A Kubernetes quantity, as far as sizes go.
    static func isQuantity(_ text: String) -> Bool {
        let suffixes = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", ""]
        for s in suffixes where text.hasSuffix(s) {
            let number = text.dropLast(s.count)
            if !number.isEmpty, Double(number) != nil { return true }
        }
        return false
    }
}

/// A remote data location: a URL (`s3://bucket/key`, `gcs://`, `gs://`, `azure://`, `azblob://`) or
/// rclone's `remote:bucket/key`.
public struct RemoteLocation: Hashable, Sendable {
    /// `s3`, `gcs` or `azblob` for a URL; nil for an rclone path (its type comes from the config).
    public var scheme: String?
    public var rcloneRemote: String?
    public var bucket: String
    public var key: String

    public static func parse(_ text: String) -> Result<RemoteLocation, ParseFailure> {
        if let range = text.range(of: "://") {
            let raw = String(text[..<range.lowerBound]).lowercased()
            let scheme: String
            switch raw {
            case "s3": scheme = "s3"
            case "gcs", "gs": scheme = "gcs"
            case "azure", "azblob": scheme = "azblob"
            default: return .failure(ParseFailure("\(text): unsupported scheme \(raw)://; use s3://, gcs://, azure:// or rclone's remote:bucket/path"))
            }
            let (bucket, key) = split(String(text[range.upperBound...]))
            if bucket.isEmpty { return .failure(ParseFailure("\(text) names no bucket")) }
            return .success(RemoteLocation(scheme: scheme, rcloneRemote: nil, bucket: bucket, key: key))
        }
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else {
            return .failure(ParseFailure("\(text) is neither a URL (s3://bucket/key) nor rclone's remote:bucket/key"))
        }
        let remote = String(text[..<colon])
        let (bucket, key) = split(String(text[text.index(after: colon)...]))
        if bucket.isEmpty { return .failure(ParseFailure("\(text) names no bucket")) }
        return .success(RemoteLocation(scheme: nil, rcloneRemote: remote, bucket: bucket, key: key))
    }

    static func split(_ rest: String) -> (String, String) {
        let trimmed = rest.drop { $0 == "/" }
        guard let slash = trimmed.firstIndex(of: "/") else { return (String(trimmed), "") }
        return (String(trimmed[..<slash]), String(trimmed[trimmed.index(after: slash)...]))
    }

    public struct ParseFailure: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }
}
