import BRModel
import Foundation
import KubeModel

/// `lightning convert`: the `tidb-lightning` Helm chart's values (seed 003) as a Restore with
/// `spec.lightning`. Every key is either mapped or named in an error; nothing is dropped silently.
public struct LightningChartConverter {
    public struct Result: Sendable {
        /// The Restore, when every key could be mapped.
        public var restore: JSONValue?
        /// One line per key that cannot be mapped, with the reason.
        public var problems: [String]
        /// Keys accepted without effect, with why (shown as comments).
        public var notes: [String]
    }

    public var name: String
    public var namespace: String

    public init(name: String = "lightning-import", namespace: String = "default") {
        self.name = name
        self.namespace = namespace
    }

    public func convert(_ values: JSONValue) -> Result {
        var problems: [String] = []
        var notes: [String] = []
        var spec = JSONObject()
        var lightning = JSONObject()
        var metadata: JSONObject = ["name": .string(name), "namespace": .string(namespace)]
        guard let root = values.objectValue else {
            return Result(restore: nil, problems: ["the values file is not a mapping"], notes: [])
        }
        func present(_ v: JSONValue?) -> Bool {
            switch v {
            case nil, .null?: false
            case .object(let o)?: !o.isEmpty
            case .array(let a)?: !a.isEmpty
            case .string(let s)?: !s.isEmpty
            default: true
            }
        }
        func strings(_ object: JSONValue?, _ keys: [String], prefix: String) -> JSONObject {
            var out = JSONObject()
            for (k, v) in object?.objectValue ?? JSONObject() where present(v) {
                if keys.contains(k) {
                    switch v {
                    case .string, .bool, .int: out[k] = v
                    default: problems.append("\(prefix).\(k): expected a scalar, found \(v.typeName)")
                    }
                } else {
                    problems.append("\(prefix).\(k): not a key of the chart this converter knows")
                }
            }
            return out
        }

        var target = JSONObject()
        for (key, value) in root where present(value) {
            switch key {
            case "backend":
                let backend = value.stringValue ?? ""
                if backend == "importer" {
                    problems.append("backend: importer was removed in TiDB 5.3 and has no equivalent; use local or tidb")
                } else {
                    lightning["backend"] = value
                }
            case "sortedKV":
                lightning["sortedKV"] = .object(strings(value, ["storageClassName", "storage"], prefix: "sortedKV"))
            case "failFast":
                if case .bool = value { lightning["failFast"] = value } else if let s = value.stringValue, ["true", "false"].contains(s) {
                    lightning["failFast"] = .bool(s == "true")
                } else {
                    problems.append("failFast: expected true or false")
                }
            case "dataSource":
                var source = JSONObject()
                for (mode, body) in value.objectValue ?? JSONObject() where present(body) {
                    switch mode {
                    case "local": source["local"] = .object(strings(body, ["nodeName", "hostPath"], prefix: "dataSource.local"))
                    case "remote":
                        var remote = strings(body, ["rcloneImage", "storageClassName", "storage", "secretName", "path", "directory"], prefix: "dataSource.remote")
                        if remote["rcloneImage"] != nil {
                            remote["rcloneImage"] = nil
                            notes.append("dataSource.remote.rcloneImage: not needed; the data is fetched by the job's own storage clients")
                        }
                        if remote["path"] == nil, remote["directory"] == nil { problems.append("dataSource.remote: neither path nor directory is set") }
                        source["remote"] = .object(remote)
                    case "adhoc": source["adhoc"] = .object(strings(body, ["pvcName", "backupName"], prefix: "dataSource.adhoc"))
                    default: problems.append("dataSource.\(mode): not a data source (local, remote, adhoc)")
                    }
                }
                if source.count > 1 { problems.append("dataSource: \(source.keys.joined(separator: ", ")) are set; the chart allows one") }
                lightning["dataSource"] = .object(source)
            case "tlsCluster":
                lightning["tlsCluster"] = .object(strings(value, ["enabled", "tlsClientSecretName"], prefix: "tlsCluster"))
            case "tlsClient":
                lightning["tlsClient"] = .object(strings(value, ["enabled", "tlsClientSecretName"], prefix: "tlsClient"))
            case "targetTidbCluster":
                target = strings(value, ["name", "namespace", "user", "secretName", "secretUserKey", "secretPwdKey"], prefix: "targetTidbCluster")
            case "config":
                guard let text = value.stringValue else { problems.append("config: expected a TOML string"); continue }
                convertConfig(text, into: &lightning, problems: &problems, notes: &notes)
            case "serviceAccount":
                if let s = value.stringValue { spec["serviceAccount"] = .string(s) } else { problems.append("serviceAccount: expected a name") }
            case "image":
                spec["toolImage"] = value
            case "resources": spec["resources"] = value
            case "tolerations": spec["tolerations"] = value
            case "affinity": spec["affinity"] = value
            case "annotations":
                metadata["annotations"] = value
            case "timezone":
                if let tz = value.stringValue, tz != "UTC" { spec["env"] = [["name": "TZ", "value": .string(tz)]] }
            case "imagePullPolicy":
                notes.append("imagePullPolicy: the Job's containers use IfNotPresent")
            case "nodeSelector":
                problems.append("nodeSelector: a Restore has no node selector; express it as affinity (spec.affinity), or use dataSource.local.nodeName")
            case "service":
                problems.append("service: the Restore's Job exposes no Service; Lightning's status port is reachable on the pod")
            default:
                problems.append("\(key): not a key of the tidb-lightning chart this converter knows")
            }
        }
        // The target cluster.
        let cluster = target["name"]?.stringValue ?? ""
        let clusterNamespace = target["namespace"]?.stringValue ?? ""
        if cluster.isEmpty {
            problems.append("targetTidbCluster.name: required (the TidbCluster to import into)")
        } else {
            lightning["cluster"] = .string(cluster)
            if !clusterNamespace.isEmpty && clusterNamespace != namespace { lightning["clusterNamespace"] = .string(clusterNamespace) }
        }
        let host = clusterNamespace.isEmpty || clusterNamespace == namespace ? "\(cluster)-tidb" : "\(cluster)-tidb.\(clusterNamespace)"
        var to: JSONObject = ["host": .string(host), "port": 4000, "user": target["user"] ?? "root"]
        if let secret = target["secretName"]?.stringValue, !secret.isEmpty {
            to["secretName"] = .string(secret)
            if let key = target["secretPwdKey"]?.stringValue, key != "password" {
                problems.append("targetTidbCluster.secretPwdKey: the Restore reads the password from the Secret's key password, not \(key)")
            }
            if let key = target["secretUserKey"]?.stringValue, key != "user" || target["user"] == nil {
                notes.append("targetTidbCluster.secretUserKey: the Restore takes the user as spec.to.user (\(to["user"]?.stringValue ?? "root")), not from the Secret's \(key) key")
            }
        } else {
            // The chart's default: Lightning logs in as the user with no password. The CRD requires the
            // member (TiDB Operator's schema), so it is there, empty.
            to["secretName"] = ""
            notes.append("targetTidbCluster.secretName: none, as in the chart: Lightning logs in as \(to["user"]?.stringValue ?? "root") without a password (name a Secret with key password to use one)")
        }
        spec["to"] = .object(to)
        if lightning["dataSource"] == nil { problems.append("dataSource: required (one of local, remote, adhoc)") }
        spec["lightning"] = .object(lightning)
        let restore: JSONValue = ["apiVersion": "pingcap.com/v1alpha1", "kind": "Restore", "metadata": .object(metadata), "spec": .object(spec)]
        return Result(restore: problems.isEmpty ? restore : nil, problems: problems, notes: notes)
    }

    /// The chart's `config`: its `[checkpoint]` file settings become `spec.lightning.checkpoint` (the
    /// job keeps the file in the data directory); the rest is passed through.
    func convertConfig(_ text: String, into lightning: inout JSONObject, problems: inout [String], notes: inout [String]) {
        let toml: TOMLText
        do { toml = try TOMLText(text) } catch {
            problems.append("config: not valid TOML: \(error)")
            return
        }
        var checkpoint = JSONObject()
        var drop: [(table: String, key: String)] = []
        let driver = toml.value("checkpoint", "driver").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) } ?? "file"
        if driver == "file" {
            if let enable = toml.value("checkpoint", "enable") { checkpoint["enabled"] = .bool(enable == "true"); drop.append(("checkpoint", "enable")) }
            if let keep = toml.value("checkpoint", "keep-after-success") {
                checkpoint["keepAfterSuccess"] = .bool(keep == "true")
                drop.append(("checkpoint", "keep-after-success"))
            }
            if toml.value("checkpoint", "dsn") != nil {
                notes.append("config [checkpoint] dsn: the checkpoint file is kept in the data directory")
                drop.append(("checkpoint", "dsn"))
            }
            if toml.value("checkpoint", "driver") != nil { drop.append(("checkpoint", "driver")) }
        }
        if toml.sets("tidb", "password") { problems.append("config [tidb] password: put the password in the Secret targetTidbCluster.secretName names") }
        if !checkpoint.isEmpty { lightning["checkpoint"] = .object(checkpoint) }
        let rest = toml.removing(drop)
        if !rest.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            lightning["config"] = .string(rest.hasSuffix("\n") ? rest : rest + "\n")
        }
    }
}
