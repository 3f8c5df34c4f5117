import BRModel
import Foundation

/// The configuration file and argv of a `spec.lightning` import. The file carries what must not be
/// in an argv (the password) and what has no flag (checkpoints, TLS paths), merged into the user's
/// `spec.lightning.config` without overriding a key the user set (the password excepted: validation
/// refuses one in the spec).
public enum LightningConfigFile {
    public static func text(spec: LightningSpec, password: String, dataDirectory: String, clusterTLS: String?, clientTLS: String?) throws -> String {
        let user = try TOMLText(spec.config ?? "")
        var settings: [(table: String, key: String, value: String)] = [("tidb", "password", TOMLText.quoted(password))]
        if spec.checkpointEnabled {
            settings += [("checkpoint", "enable", "true"), ("checkpoint", "driver", "\"file\""),
                         ("checkpoint", "dsn", TOMLText.quoted(dataDirectory + "/" + LightningLayout.checkpointFile)),
                         ("checkpoint", "keep-after-success", spec.checkpoint?.keepAfterSuccess == true ? "true" : "false")]
        } else {
            settings.append(("checkpoint", "enable", "false"))
        }
        if let dir = clusterTLS {
            settings += [("security", "ca-path", TOMLText.quoted(dir + "/ca.crt")), ("security", "cert-path", TOMLText.quoted(dir + "/tls.crt")),
                         ("security", "key-path", TOMLText.quoted(dir + "/tls.key"))]
            // Cluster TLS without client TLS: Lightning would use the cluster certificate for TiDB too
            // (the chart asks users to write this line themselves).
            if clientTLS == nil { settings.append(("tidb", "tls", "\"false\"")) }
        }
        if let dir = clientTLS {
            settings += [("tidb.security", "ca-path", TOMLText.quoted(dir + "/ca.crt")), ("tidb.security", "cert-path", TOMLText.quoted(dir + "/tls.crt")),
                         ("tidb.security", "key-path", TOMLText.quoted(dir + "/tls.key"))]
        }
        return user.merged(with: settings)
    }

    public static func arguments(_ restore: Restore, spec: LightningSpec, endpoint: TiDBEndpoint, dataDirectory: String, configFile: String,
                                 sortedKV: String, pd: String?, statusAddress: String? = nil) -> [String] {
        let status = (statusAddress ?? "").isEmpty ? "0.0.0.0:8289" : statusAddress!
        var args = ["--status-addr=\(status)", "--backend=\(spec.effectiveBackend.rawValue)", "--server-mode=false", "--log-file=-",
                    "--config=\(configFile)", "--tidb-user=\(endpoint.user)", "--tidb-host=\(endpoint.host)", "--tidb-port=\(endpoint.port)",
                    "--d=\(dataDirectory)"]
        if spec.effectiveBackend == .local {
            args.append("--sorted-kv-dir=\(sortedKV)")
            if let pd, !pd.isEmpty { args.append("--pd-urls=\(pd)") }
        }
        for f in restore.spec.tableFilter ?? [] { args += ["-f", f] }
        return args
    }
}
