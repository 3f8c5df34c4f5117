import Foundation
import KubeAPI
import KubeModel

/// How to reach and authenticate to an API server: read from a kubeconfig file or from the pod's
/// service account (in-cluster).
public struct KubeConfig: Sendable {
    public var server: String
    /// PEM certificates trusted for the server; `nil` uses the system roots.
    public var certificateAuthorityPEM: String?
    public var insecureSkipTLSVerify = false
    public var tlsServerName: String?
    public var clientCertificatePEM: String?
    public var clientKeyPEM: String?
    public var credentials: Credentials = .none
    /// The context's namespace (or the service account's): what `--namespace` defaults to.
    public var namespace: String = "default"

    public enum Credentials: Sendable {
        case none
        case token(String)
        /// Re-read when it changes: projected service-account tokens rotate.
        case tokenFile(String)
        case exec(ExecConfig)
        case basic(username: String, password: String)
    }

    /// A client-go credential plugin (`users[].user.exec`), e.g. `aws eks get-token`.
    public struct ExecConfig: Sendable, Hashable {
        public var command: String
        public var args: [String]
        public var env: [String: String]
        public var apiVersion: String
        public init(command: String, args: [String] = [], env: [String: String] = [:],
                    apiVersion: String = "client.authentication.k8s.io/v1") {
            self.command = command
            self.args = args
            self.env = env
            self.apiVersion = apiVersion
        }
    }

    public init(server: String) {
        self.server = server
    }

    public struct ConfigError: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Reads a kubeconfig: the named context (or `current-context`), its cluster and user. Relative
    /// file paths are resolved against the kubeconfig's directory, as kubectl does.
    public static func load(path: String, context requested: String? = nil) throws -> KubeConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError("cannot read kubeconfig \(path): \(error.localizedDescription)")
        }
        let root: JSONValue
        do {
            guard let first = try KubeYAML.documents(text).first?.value else { throw ConfigError("kubeconfig \(path) is empty") }
            root = first
        } catch let error as YAMLError {
            throw ConfigError("kubeconfig \(path): \(error)")
        }
        return try parse(root, directory: (path as NSString).deletingLastPathComponent, context: requested, source: path)
    }

    static func named(_ list: JSONValue?, _ name: String, _ member: String) -> JSONValue? {
        list?.arrayValue?.first { $0["name"]?.stringValue == name }?[member]
    }

    public static func parse(_ root: JSONValue, directory: String, context requested: String? = nil, source: String = "kubeconfig") throws -> KubeConfig {
        guard let contextName = requested ?? root["current-context"]?.stringValue, !contextName.isEmpty else {
            throw ConfigError("\(source): no context given and current-context is not set")
        }
        guard let context = named(root["contexts"], contextName, "context") else {
            throw ConfigError("\(source): context \"\(contextName)\" does not exist")
        }
        let clusterName = context["cluster"]?.stringValue ?? ""
        guard let cluster = named(root["clusters"], clusterName, "cluster") else {
            throw ConfigError("\(source): cluster \"\(clusterName)\" of context \"\(contextName)\" does not exist")
        }
        guard let server = cluster["server"]?.stringValue, !server.isEmpty else {
            throw ConfigError("\(source): cluster \"\(clusterName)\" has no server")
        }
        func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path) }
        func pem(data: JSONValue?, file: JSONValue?, what: String) throws -> String? {
            if let encoded = data?.stringValue, !encoded.isEmpty {
                guard let decoded = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters) else {
                    throw ConfigError("\(source): \(what) is not valid base64")
                }
                return String(decoding: decoded, as: UTF8.self)
            }
            if let path = file?.stringValue, !path.isEmpty {
                do { return try String(contentsOfFile: resolve(path), encoding: .utf8) } catch {
                    throw ConfigError("\(source): cannot read \(what) file \(resolve(path))")
                }
            }
            return nil
        }
        var config = KubeConfig(server: server.hasSuffix("/") ? String(server.dropLast()) : server)
        config.certificateAuthorityPEM = try pem(data: cluster["certificate-authority-data"], file: cluster["certificate-authority"],
                                                 what: "certificate-authority")
        config.insecureSkipTLSVerify = cluster["insecure-skip-tls-verify"] == .bool(true)
        config.tlsServerName = cluster["tls-server-name"]?.stringValue
        if let ns = context["namespace"]?.stringValue, !ns.isEmpty { config.namespace = ns }
        if let userName = context["user"]?.stringValue, let user = named(root["users"], userName, "user") {
            config.clientCertificatePEM = try pem(data: user["client-certificate-data"], file: user["client-certificate"],
                                                  what: "client-certificate")
            config.clientKeyPEM = try pem(data: user["client-key-data"], file: user["client-key"], what: "client-key")
            if let token = user["token"]?.stringValue, !token.isEmpty {
                config.credentials = .token(token)
            } else if let file = user["tokenFile"]?.stringValue, !file.isEmpty {
                config.credentials = .tokenFile(resolve(file))
            } else if let exec = user["exec"], let command = exec["command"]?.stringValue {
                var env: [String: String] = [:]
                for entry in exec["env"]?.arrayValue ?? [] {
                    if let n = entry["name"]?.stringValue { env[n] = entry["value"]?.stringValue ?? "" }
                }
                config.credentials = .exec(ExecConfig(command: command, args: exec["args"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                                      env: env, apiVersion: exec["apiVersion"]?.stringValue ?? "client.authentication.k8s.io/v1"))
            } else if let username = user["username"]?.stringValue, let password = user["password"]?.stringValue {
                config.credentials = .basic(username: username, password: password)
            } else if user["auth-provider"] != nil {
                throw ConfigError("\(source): user \"\(userName)\" uses an auth-provider, which is not supported; use an exec plugin")
            }
        }
        return config
    }

    /// The pod's service account: `KUBERNETES_SERVICE_HOST`/`_PORT`, its token (re-read as it rotates),
    /// CA and namespace.
    public static func inCluster(environment: [String: String] = ProcessInfo.processInfo.environment,
                                 directory: String = "/var/run/secrets/kubernetes.io/serviceaccount") throws -> KubeConfig {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw ConfigError("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        var config = KubeConfig(server: "https://\(hostPart):\(port)")
        let tokenPath = directory + "/token"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw ConfigError("not running in a cluster: \(tokenPath) is not readable")
        }
        config.credentials = .tokenFile(tokenPath)
        config.certificateAuthorityPEM = try? String(contentsOfFile: directory + "/ca.crt", encoding: .utf8)
        if let ns = try? String(contentsOfFile: directory + "/namespace", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines), !ns.isEmpty {
            config.namespace = ns
        }
        return config
    }

    /// As kubectl and controllers find their configuration: an explicit file, then `$KUBECONFIG` (the
    /// first existing entry), then in-cluster, then `~/.kube/config`.
    public static func resolve(kubeconfig explicit: String? = nil, context: String? = nil,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> KubeConfig {
        if let explicit, !explicit.isEmpty { return try load(path: explicit, context: context) }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            for path in list.split(separator: ":").map(String.init) where FileManager.default.fileExists(atPath: path) {
                return try load(path: path, context: context)
            }
        }
        if let config = try? inCluster(environment: environment) { return config }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let path = home + "/.kube/config"
        if FileManager.default.fileExists(atPath: path) { return try load(path: path, context: context) }
        throw ConfigError("no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod")
    }
}
