import AsyncHTTPClient
import BRModel
import BackupManager
import BackupStorage
import Foundation
import KubeAPI
import KubeModel
import ManifestTools

extension Preflight {
    // MARK: the checks

    /// The namespace exists (or the manifests create it).
    func namespace(_ name: String, _ label: String, _ context: Context, _ checks: inout [Check]) async {
        do {
            _ = try await api.get(.namespaces, namespace: nil, name: name)
        } catch let e as KubeAPIError where e.isNotFound {
            if let made = context.api.fromManifests(.namespaces, namespace: nil, name: name) {
                checks.append(Check(object: label, name: "namespace", result: .ok, detail: "\(name) is created by \(made.source) (not applied yet)"))
                return
            }
            checks.append(Check(object: label, name: "namespace", result: .failed, detail: "namespace \(name) does not exist",
                                fix: "kubectl create namespace \(name)"))
        } catch {
            checks.append(Check(object: label, name: "namespace", result: .failed, detail: "\(error)", fix: nil))
        }
    }

    /// A schedule's verification target: not the cluster it backs up, there, and its PD answering.
    func verificationTarget(_ schedule: BackupSchedule, _ context: Context) async -> [Check] {
        guard let v = schedule.spec.verification else { return [] }
        let ns = schedule.metadata.namespace ?? ""
        let label = "backupschedule/\(ns)/\(schedule.metadata.name ?? "")"
        let targetNS = v.target.namespace(default: ns)
        if Verification.targetsProduction(schedule) {
            return [Check(object: label, name: "verification-target", result: .failed,
                          detail: "\(targetNS)/\(v.target.cluster) \(Verification.productionMessage)",
                          fix: "set spec.verification.target to a TidbCluster kept for verification (its data is replaced by each run)")]
        }
        var checks: [Check] = []
        let br = BRConfig(cluster: v.target.cluster, clusterNamespace: targetNS)
        let cluster = await tidbCluster(br, clusterNamespace: targetNS, label, context, &checks)
        if let cluster { checks += await pd(cluster, br: br, namespace: targetNS, label) }
        if let empty = await scratchEmpty(v, namespace: ns, label, context) { checks.append(empty) }
        return checks
    }

    /// With `cleanup: none` nothing clears the scratch cluster between runs, and BR's restore refuses
    /// tables that exist (a point-in-time restore wants no user table at all): it must hold none.
    /// Read through `target.tidb` with the password of its Secret, as the verification's Job would.
    func scratchEmpty(_ v: VerificationSpec, namespace: String, _ label: String, _ context: Context) async -> Check? {
        guard v.effectiveCleanup == "none" else { return nil }
        guard let tidb = v.target.tidb else {
            return Check(object: label, name: "scratch-empty", result: .skipped,
                         detail: "cleanup: none and no target.tidb: whether the scratch cluster holds tables cannot be looked at")
        }
        let secret = try? await context.api.get(.secrets, namespace: namespace, name: tidb.secretName)
        guard let password = secret.flatMap({ Self.secretValue($0, key: "password") }) else {
            return Check(object: label, name: "scratch-empty", result: .failed,
                         detail: "Secret \(namespace)/\(tidb.secretName) with key password not found (target.tidb.secretName)",
                         fix: "kubectl -n \(namespace) create secret generic \(tidb.secretName) --from-literal=password=...")
        }
        var env = environment
        env["BACKUP_MANAGER_PASSWORD"] = password
        let endpoint = TiDBEndpoint(tidb, environment: env, clientTLS: false, skipClientCA: false)
        let connectEnv = env
        do {
            let rows = try await withTimeout {
                let connection = try await TiDBConnection.connect(endpoint, environment: connectEnv, deadline: Date(), retryEvery: .seconds(1))
                return try await connection.execute("SELECT TABLE_SCHEMA, COUNT(*) FROM information_schema.TABLES GROUP BY TABLE_SCHEMA")
            }
            let held = rows.compactMap { row -> String? in
                guard let db = row.first ?? nil, Verification.isUserDatabase(db) else { return nil }
                return "\(db) (\((row.count > 1 ? row[1] : nil) ?? "?") tables)"
            }.sorted()
            if held.isEmpty {
                return Check(object: label, name: "scratch-empty", result: .ok, detail: "\(endpoint.address) holds no user table")
            }
            return Check(object: label, name: "scratch-empty", result: .failed,
                         detail: "\(endpoint.address) holds \(held.joined(separator: ", ")): with cleanup: none each run's restore finds them in its way",
                         fix: "set spec.verification.cleanup: drop (the backup's databases are dropped before and after each run), or drop them yourself")
        } catch {
            return Check(object: label, name: "scratch-empty", result: .failed, detail: "\(error)",
                         fix: "check target.tidb (host, port, user) and that the scratch TiDB answers from here")
        }
    }

    func tidbCluster(_ br: BRConfig?, clusterNamespace: String, _ label: String, _ context: Context, _ checks: inout [Check]) async -> TidbCluster? {
        guard let br else { return nil }
        do {
            if let cluster = try await api.getIfPresent(TidbCluster.self, namespace: clusterNamespace, name: br.cluster) {
                checks.append(Check(object: label, name: "tidbcluster", result: .ok, detail: "\(clusterNamespace)/\(br.cluster) exists"))
                return cluster
            }
            if let found = context.api.fromManifests(.tidbClusters, namespace: clusterNamespace, name: br.cluster),
               let cluster = try? KubeCodec.decode(TidbCluster.self, from: ManifestValidator.stored(found.value, defaultNamespace: context.defaultNamespace)) {
                checks.append(Check(object: label, name: "tidbcluster", result: .ok,
                                    detail: "\(clusterNamespace)/\(br.cluster) is in \(found.source) (not applied yet: apply it before the \(label.split(separator: "/").first ?? "object"))"))
                return cluster
            }
            checks.append(Check(object: label, name: "tidbcluster", result: .failed, detail: "TidbCluster \(clusterNamespace)/\(br.cluster) not found",
                                fix: "for a cluster outside Kubernetes, apply a TidbCluster named \(br.cluster) in namespace \(clusterNamespace) with spec.pdAddresses (e.g. [\"http://127.0.0.1:2379\"]) and spec.version (see examples/tidbcluster-standalone.yaml)"))
        } catch {
            checks.append(Check(object: label, name: "tidbcluster", result: .failed, detail: "\(error)", fix: nil))
        }
        return nil
    }

    /// A key of a Secret as the kubelet would hand it to the container (`data` is base64, `stringData`
    /// from a manifest not applied yet is plain).
    static func secretValue(_ secret: JSONValue, key: String) -> String? {
        if let b64 = secret.value(at: ["data", key])?.stringValue, let data = Data(base64Encoded: b64) { return String(decoding: data, as: UTF8.self) }
        return secret.value(at: ["stringData", key])?.stringValue
    }

    /// The command that makes a Secret hold `keys`: a new Secret, or the keys added to one that exists.
    static func secretFix(namespace: String, name: String, keys: [String], exists: Bool) -> String {
        if exists {
            let pairs = keys.map { "\"\($0)\":\"...\"" }.joined(separator: ",")
            return "kubectl -n \(namespace) patch secret \(name) --type=merge -p '{\"stringData\":{\(pairs)}}'"
        }
        return "kubectl -n \(namespace) create secret generic \(name) " + keys.map { "--from-literal=\($0)=..." }.joined(separator: " ")
    }

    /// Every Secret key the Job reads must exist; returns the environment a job process would get.
    func secrets(_ job: JSONValue, namespace: String, _ label: String, _ context: Context, _ checks: inout [Check]) async -> [String: String]? {
        var env = environment
        var used: [String] = []
        // Secret name -> (whether it exists, keys it lacks), in the order the Job reads them.
        var lacking: [(secret: String, exists: Bool, keys: [String])] = []
        let container = job.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first ?? .emptyObject
        for item in container["env"]?.arrayValue ?? [] {
            guard let name = item["name"]?.stringValue else { continue }
            if let v = item["value"]?.stringValue { env[name] = v; continue }
            guard let ref = item.value(at: ["valueFrom", "secretKeyRef"]) else { continue }
            let secret = ref["name"]?.stringValue ?? ""
            let key = ref["key"]?.stringValue ?? ""
            let object = try? await context.api.get(.secrets, namespace: namespace, name: secret)
            if let value = object.flatMap({ Self.secretValue($0, key: key) }) {
                env[name] = value
                used.append("\(secret).\(key)")
            } else if ref["optional"] != .bool(true) {
                if let i = lacking.firstIndex(where: { $0.secret == secret }) { lacking[i].keys.append(key) } else { lacking.append((secret, object != nil, [key])) }
            }
        }
        if !lacking.isEmpty {
            for l in lacking {
                checks.append(Check(object: label, name: "secrets", result: .failed,
                                    detail: l.exists ? "Secret \(namespace)/\(l.secret) has no key \(l.keys.joined(separator: ", "))"
                                        : "Secret \(namespace)/\(l.secret) does not exist (the Job reads keys \(l.keys.joined(separator: ", ")))",
                                    fix: Self.secretFix(namespace: namespace, name: l.secret, keys: l.keys, exists: l.exists)))
            }
            return nil
        }
        checks.append(Check(object: label, name: "secrets", result: .ok,
                            detail: used.isEmpty ? "none needed" : "present: \(used.sorted().joined(separator: ", "))"))
        return env
    }

    /// The Secrets a spec names, each checked for the keys the Job builder reads, when the builder
    /// stopped before a Job could be made.
    func secretNeeds(_ needs: [SecretNeed], namespace: String, _ label: String, _ context: Context) async -> [Check] {
        var checks: [Check] = []
        for need in needs {
            let object = try? await context.api.get(.secrets, namespace: namespace, name: need.name)
            let present = Set((object?["data"]?.objectValue?.keys).map(Array.init) ?? []).union((object?["stringData"]?.objectValue?.keys).map(Array.init) ?? [])
            let missing = object == nil ? need.keys : need.missing(from: present)
            if missing.isEmpty {
                checks.append(Check(object: label, name: "secrets", result: .ok, detail: "\(need.name) (\(need.field)) holds \(need.keys.joined(separator: ", "))"))
                continue
            }
            let alternative = need.instead.map { " (or \($0.joined(separator: ", ")))" } ?? ""
            checks.append(Check(object: label, name: "secrets", result: .failed,
                                detail: object == nil ? "Secret \(namespace)/\(need.name) named by \(need.field) does not exist; it must hold \(need.keys.joined(separator: ", "))\(alternative)"
                                    : "Secret \(namespace)/\(need.name) named by \(need.field) has no key \(missing.joined(separator: ", "))\(alternative)",
                                fix: Self.secretFix(namespace: namespace, name: need.name, keys: missing, exists: object != nil)))
        }
        return checks
    }

    /// Lists one page under the prefix with the Job's credentials. A Backup's prefix must not hold a
    /// finished backup already (BR refuses it); a Restore's must.
    func storage(_ spec: StorageProvider, environment env: [String: String], expectBackup: Bool, _ label: String) async -> Check {
        let store: any BackupStorage
        do {
            store = try StorageFactory(environment: env, http: http).make(spec)
        } catch {
            return Check(object: label, name: "storage", result: .failed, detail: "\(error)", fix: Self.storageFix("\(error)", spec))
        }
        let location = store.location
        do {
            let page = try await withTimeout { try await store.listPage(prefix: "", token: nil, limit: 1) }
            let hasMeta = try await withTimeout { try await store.exists("backupmeta") }
            if expectBackup && !hasMeta {
                return Check(object: label, name: "storage", result: .failed, detail: "\(location) is reachable but holds no backupmeta",
                             fix: "point the Restore at the prefix of a Complete Backup (its status.backupPath)")
            }
            if !expectBackup && hasMeta {
                return Check(object: label, name: "storage", result: .failed, detail: "\(location) already holds a backup (backupmeta)",
                             fix: "choose another prefix: BR does not write a backup over another")
            }
            return Check(object: label, name: "storage", result: .ok,
                         detail: "\(location) reachable with the given credentials (\(page.objects.isEmpty ? "empty" : "not empty"))")
        } catch {
            let text = "\(error)"
            return Check(object: label, name: "storage", result: .failed, detail: "\(location): \(text)", fix: Self.storageFix(text, spec))
        }
    }

    static func storageFix(_ error: String, _ spec: StorageProvider) -> String {
        let secret = spec.s3?.secretName ?? spec.gcs?.secretName ?? spec.azblob?.secretName
        if error.contains("SignatureDoesNotMatch") || error.contains("InvalidAccessKeyId") || error.contains("AuthenticationFailed")
            || error.contains("invalid_grant") || error.contains("403") {
            return secret.map { "the credentials in Secret \($0) are refused: check its keys (access_key / secret_key for S3)" }
                ?? "the credentials are refused: check the environment or the IAM role the job runs with"
        }
        if error.contains("NoSuchBucket") || error.contains("ContainerNotFound") || error.contains("404") {
            return "create the bucket, or correct the bucket name in the spec"
        }
        if spec.type == .local { return "create the directory (spec.local.volumeMount.mountPath, the hostPath in standalone) and make it writable" }
        return "check the endpoint and the network path to the storage"
    }

    func pd(_ cluster: TidbCluster?, br: BRConfig, namespace: String, _ label: String) async -> [Check] {
        let addresses = (cluster?.spec.pdAddresses ?? []).filter { !$0.isEmpty }
        guard !addresses.isEmpty else {
            return [Check(object: label, name: "pd", result: .skipped,
                          detail: "\(ToolArguments.defaultPD(br: br, namespace: namespace)) is a cluster-internal address; checked by the Job")]
        }
        var checks: [Check] = []
        for address in addresses {
            let base = address.contains("://") ? address : "http://\(address)"
            do {
                let request = HTTPClientRequest(url: base.trimmingSuffix("/") + "/pd/api/v1/version")
                let response = try await http.execute(request, timeout: .seconds(Int64(timeout.components.seconds)))
                let body = try await response.body.collect(upTo: 64 * 1024)
                let version = (try? JSONParser.parse(String(buffer: body)))?["version"]?.stringValue
                if response.status.code == 200, let version {
                    checks.append(Check(object: label, name: "pd", result: .ok, detail: "\(address) answers, PD \(version)"))
                } else {
                    checks.append(Check(object: label, name: "pd", result: .failed, detail: "\(address) answered HTTP \(response.status.code), not as PD",
                                        fix: "spec.pdAddresses of the TidbCluster must list PD's client URLs (port 2379)"))
                }
            } catch {
                checks.append(Check(object: label, name: "pd", result: .failed, detail: "\(address) does not answer (\(error))",
                                    fix: "start PD (`tiup playground` starts one at 127.0.0.1:2379) or correct spec.pdAddresses of the TidbCluster"))
            }
        }
        return checks
    }

    func tool(_ tool: ToolLocator.Tool, userEnv: [EnvVar]?, _ label: String) async -> Check {
        var env = environment
        for v in userEnv ?? [] { if let value = v.value { env[v.name] = value } }
        let located: (executable: String, prefix: [String])
        do {
            located = try ToolLocator(environment: env).locate(tool)
        } catch {
            return Check(object: label, name: tool.rawValue, result: .failed, detail: "\(error)",
                         fix: "install it (e.g. `tiup install \(tool == .br ? "br" : tool.rawValue):v8.5.0`) and set \(tool.configVariable)=\"tiup \(tool == .br ? "br" : tool.rawValue):v8.5.0\" in the server's environment or the spec's env, or put \(tool.rawValue) on PATH (standalone: --tool-path DIR)")
        }
        let command = ([located.executable] + located.prefix + ["--version"])
        let output = await Self.run(command, environment: env, timeout: .seconds(60))
        guard let output, output.status == 0 else {
            return Check(object: label, name: tool.rawValue, result: .failed,
                         detail: "\(command.joined(separator: " ")) did not run: \(output.map { "exit \($0.status): \($0.text.suffix(300))" } ?? "timed out")",
                         fix: "check the installation of \(tool.rawValue)")
        }
        let version = output.text.split(separator: "\n").first { $0.contains("Release Version") }
            .map { $0.replacingOccurrences(of: "Release Version:", with: "").trimmingCharacters(in: .whitespaces) }
            ?? String(output.text.split(separator: "\n").first ?? "")
        return Check(object: label, name: tool.rawValue, result: .ok, detail: "\(command.dropLast().joined(separator: " ")), version \(version)")
    }

    // MARK: helpers

    func withTimeout<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let limit = timeout
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw ManagerError("no answer within \(limit.components.seconds) s")
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
    }

    static func run(_ argv: [String], environment: [String: String], timeout: Duration) async -> (status: Int32, text: String)? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: argv[0])
                p.arguments = Array(argv.dropFirst())
                p.environment = environment
                let pipe = Pipe()
                p.standardOutput = pipe
                p.standardError = pipe
                p.standardInput = FileHandle.nullDevice
                do { try p.run() } catch {
                    continuation.resume(returning: (127, "\(error)"))
                    return
                }
                let killer = DispatchWorkItem { if p.isRunning { p.terminate() } }
                DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(timeout.components.seconds)), execute: killer)
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilExit()
                killer.cancel()
                continuation.resume(returning: p.terminationReason == .uncaughtSignal ? nil : (p.terminationStatus, String(decoding: data, as: UTF8.self)))
            }
        }
    }
}
extension String {
    fileprivate func trimmingSuffix(_ s: String) -> String { hasSuffix(s) ? String(dropLast(s.count)) : self }
}
