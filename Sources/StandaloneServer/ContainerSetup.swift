import Foundation
import KubeModel

/// What a kubelet does before it starts a container, for a local process: the program that stands for
/// the image, the environment with Secret and ConfigMap references resolved, and the volumes as local
/// directories (claims kept apart from the Jobs that use them, Secret volumes written out).
struct ContainerSetup: Sendable {
    let core: APIServerCore
    let configuration: JobRunner.Configuration
    let workRoot: String

    /// The local program for a container: a configured image mapping, else the command's base name in
    /// the search paths (the operator's own directory first), else PATH.
    func resolveExecutable(image: String, argv: [String]) -> String? {
        if let mapped = configuration.images.first(where: { image.contains($0.imageContains) }) { return mapped.executable }
        guard let command = argv.first else { return nil }
        if command.hasPrefix("/") && FileManager.default.isExecutableFile(atPath: command) { return command }
        let base = (command as NSString).lastPathComponent
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
        for dir in configuration.searchPaths + path {
            let candidate = (dir as NSString).appendingPathComponent(base)
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    struct EnvError: Error, CustomStringConvertible { var description: String }

    /// The variable through which a local process learns where its container's volume mounts are on
    /// this machine: one `mountPath=directory` per line. A process cannot be given a mount namespace
    /// without privileges, so the job binary translates its in-pod paths with it.
    public static let mountsVariable = "STANDALONE_VOLUME_MOUNTS"

    /// Where PersistentVolumeClaims live: one directory per claim, kept until the claim is deleted,
    /// so that data outlives the Jobs that use it as it does on Kubernetes.
    var volumesRoot: String { ((workRoot as NSString).deletingLastPathComponent as NSString).appendingPathComponent("volumes") }

    public static func claimDirectory(volumesRoot: String, namespace: String, claim: String) -> String {
        "\(volumesRoot)/\(namespace)/\(claim)"
    }

    /// Like the scheduler, a pod whose claim does not exist is not placed: the job runner keeps it
    /// Pending, saying which claim it waits for, instead of running it on a directory nobody declared.
    func requireClaims(_ pod: JSONValue) throws {
        let ns = pod.value(at: ["metadata", "namespace"])?.stringValue ?? ""
        let claimType = core.registry.find(group: "", version: "v1", plural: "persistentvolumeclaims")!
        for volume in pod.value(at: ["spec", "volumes"])?.arrayValue ?? [] {
            guard let claim = volume.value(at: ["persistentVolumeClaim", "claimName"])?.stringValue else { continue }
            let found = try? core.get(claimType, namespace: ns, name: claim)
            if found == nil || found?.value(at: ["metadata", "deletionTimestamp"]) != nil {
                throw JobRunner.StartBlock(scheduled: false, reason: "Unschedulable",
                                           message: "persistentvolumeclaim \"\(claim)\" not found" + (found == nil ? "" : " (it is being deleted)"))
            }
        }
    }

    /// The main container's volume mounts as local directories: a claim's directory, a host path as it
    /// is, an emptyDir inside the pod's directory. Secret, ConfigMap and projected volumes are not
    /// materialised (the jobs read those through the API or their environment).
    func volumeMounts(_ container: JSONValue, pod: JSONValue, podDirectory: String) throws -> [(String, String)] {
        let ns = pod.value(at: ["metadata", "namespace"])?.stringValue ?? ""
        var sources: [String: JSONValue] = [:]
        for v in pod.value(at: ["spec", "volumes"])?.arrayValue ?? [] {
            if let name = v["name"]?.stringValue { sources[name] = v }
        }
        var out: [(String, String)] = []
        for m in container["volumeMounts"]?.arrayValue ?? [] {
            guard let name = m["name"]?.stringValue, let mountPath = m["mountPath"]?.stringValue, let volume = sources[name] else { continue }
            var directory: String
            if let claim = volume.value(at: ["persistentVolumeClaim", "claimName"])?.stringValue {
                directory = Self.claimDirectory(volumesRoot: volumesRoot, namespace: ns, claim: claim)
            } else if let path = volume.value(at: ["hostPath", "path"])?.stringValue {
                directory = path
            } else if volume["emptyDir"] != nil {
                directory = "\(podDirectory)/volumes/\(name)"
            } else if let secretName = volume.value(at: ["secret", "secretName"])?.stringValue {
                // A Secret volume: its keys as files, readable by this user only, in the pod's directory.
                directory = "\(podDirectory)/volumes/\(name)"
                try materialiseSecret(namespace: ns, name: secretName, optional: volume.value(at: ["secret", "optional"]) == .bool(true),
                                      into: directory, volume: name)
                out.append((mountPath, directory))
                continue
            } else {
                continue
            }
            if let sub = m["subPath"]?.stringValue, !sub.isEmpty, !sub.contains("..") { directory += "/" + sub }
            let type = volume.value(at: ["hostPath", "type"])?.stringValue ?? ""
            if volume["hostPath"] == nil || type == "DirectoryOrCreate" {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } else if type == "Directory" && !FileManager.default.fileExists(atPath: directory) {
                throw EnvError(description: "hostPath \(directory) of volume \(name) does not exist")
            }
            out.append((mountPath, directory))
        }
        return out
    }

    func materialiseSecret(namespace: String, name: String, optional: Bool, into directory: String, volume: String) throws {
        let secretType = core.registry.find(group: "", version: "v1", plural: "secrets")!
        guard let secret = try? core.get(secretType, namespace: namespace, name: name) else {
            if optional { return }
            throw EnvError(description: "secret \"\(name)\" of volume \(volume) not found")
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for (key, value) in secret.value(at: ["data"])?.objectValue ?? JSONObject() {
            guard !key.contains("/"), key != "..", let b64 = value.stringValue, let data = Data(base64Encoded: b64) else { continue }
            let path = directory + "/" + key
            try? fm.removeItem(atPath: path)
            guard fm.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw EnvError(description: "cannot write key \(key) of secret \(name)")
            }
        }
    }

    static func encodeMounts(_ mounts: [(String, String)]) -> String {
        mounts.map { "\($0.0)=\($0.1)" }.joined(separator: "\n")
    }

    /// The container's environment with references resolved from the store. Values are never logged.
    func environment(_ container: JSONValue, pod: JSONValue) throws -> [String: String] {
        var env: [String: String] = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
                                     "HOME": ProcessInfo.processInfo.environment["HOME"] ?? "/tmp"]
        for (k, v) in configuration.baseEnvironment { env[k] = v }
        let ns = pod.value(at: ["metadata", "namespace"])?.stringValue
        let secretType = core.registry.find(group: "", version: "v1", plural: "secrets")!
        let configMapType = core.registry.find(group: "", version: "v1", plural: "configmaps")!
        for item in container["env"]?.arrayValue ?? [] {
            guard let name = item["name"]?.stringValue else { continue }
            if let v = item["value"]?.stringValue { env[name] = v; continue }
            guard let from = item["valueFrom"] else { continue }
            if let ref = from["secretKeyRef"] {
                let secretName = ref["name"]?.stringValue ?? ""
                let key = ref["key"]?.stringValue ?? ""
                let optional = ref["optional"] == .bool(true)
                guard let secret = try? core.get(secretType, namespace: ns, name: secretName),
                      let b64 = secret.value(at: ["data", key])?.stringValue, let data = Data(base64Encoded: b64) else {
                    if optional { continue }
                    throw EnvError(description: "secret \"\(secretName)\" key \"\(key)\" not found for env \(name)")
                }
                env[name] = String(decoding: data, as: UTF8.self)
            } else if let ref = from["configMapKeyRef"] {
                let cmName = ref["name"]?.stringValue ?? ""
                let key = ref["key"]?.stringValue ?? ""
                guard let cm = try? core.get(configMapType, namespace: ns, name: cmName), let v = cm.value(at: ["data", key])?.stringValue else {
                    if ref["optional"] == .bool(true) { continue }
                    throw EnvError(description: "configmap \"\(cmName)\" key \"\(key)\" not found for env \(name)")
                }
                env[name] = v
            } else if let path = from.value(at: ["fieldRef", "fieldPath"])?.stringValue {
                env[name] = pod.value(at: path.split(separator: ".").map(String.init))?.stringValue ?? ""
            }
        }
        return env
    }
}
