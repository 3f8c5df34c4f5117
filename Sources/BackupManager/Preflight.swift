import AsyncHTTPClient
import BRModel
import BRObjects
import BackupStorage
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// The checks a user runs before a first backup (`tidb-backup-operator doctor -f backup.yaml`): for
/// every Backup and Restore in a manifest, everything its Job will need, each reported on one line
/// with what to do when it fails. It only reads: the API (objects, Secrets), PD's version endpoint,
/// the storage (a list of one page and a look for `backupmeta`), and the tool's `--version`.
public struct Preflight: Sendable {
    public struct Check: Sendable, Equatable {
        public enum Result: String, Sendable { case ok = "ok", failed = "FAIL", skipped = "skip" }
        public var object: String
        public var name: String
        public var result: Result
        public var detail: String
        public var fix: String?

        public func render() -> String {
            var line = "\(result.rawValue.padding(toLength: 4, withPad: " ", startingAt: 0))  \(object)  \(name): \(detail)"
            if let fix, result == .failed { line += "\n      fix: \(fix)" }
            return line
        }
    }

    let api: any KubeAPI
    /// The environment a job process would start from (in standalone: the server's, with the Job's env on top).
    let environment: [String: String]
    let http: HTTPClient
    let timeout: Duration

    public init(api: any KubeAPI, environment: [String: String] = ProcessInfo.processInfo.environment, http: HTTPClient = .shared,
                timeout: Duration = .seconds(5)) {
        self.api = api
        self.environment = environment
        self.http = http
        self.timeout = timeout
    }

    /// Runs every check for the Backups and Restores among `objects`; other kinds are skipped.
    public func run(_ objects: [JSONValue], defaultNamespace: String) async -> [Check] {
        var checks: [Check] = []
        do {
            _ = try await api.list(.namespaces, namespace: nil, options: ListOptions(limit: 1))
            checks.append(Check(object: "api", name: "server", result: .ok, detail: "the Kubernetes API answers"))
        } catch {
            checks.append(Check(object: "api", name: "server", result: .failed, detail: "\(error)",
                                fix: "start `tidb-backup-operator standalone` and export KUBECONFIG=.tidb-backup/kubeconfig, or point --kubeconfig at your cluster"))
            return checks
        }
        for var object in objects {
            let kind = object["kind"]?.stringValue ?? ""
            guard kind == "Backup" || kind == "Restore" || kind == "BackupSchedule" else { continue }
            if object.value(at: ["metadata", "namespace"])?.stringValue?.isEmpty ?? true {
                object["metadata"]?["namespace"] = .string(defaultNamespace)
            }
            if kind == "BackupSchedule" {
                // What is checked of a schedule here is its verification target; its backups are
                // checked as Backups when they exist.
                if let schedule = try? KubeCodec.decode(BackupSchedule.self, from: object), schedule.spec.verification != nil {
                    checks += await verificationTarget(schedule)
                }
            } else if kind == "Backup", let backup = try? KubeCodec.decode(Backup.self, from: object) {
                checks += await check(backup)
            } else if kind == "Restore", let restore = try? KubeCodec.decode(Restore.self, from: object) {
                checks += await check(restore)
            } else {
                let name = object.value(at: ["metadata", "name"])?.stringValue ?? "?"
                checks.append(Check(object: "\(kind.lowercased())/\(name)", name: "manifest", result: .failed,
                                    detail: "cannot be read as a \(kind)", fix: "run `tidb-backup-operator validate -f FILE` for the field at fault"))
            }
        }
        return checks
    }

    // MARK: one object

    /// What the checks need to know of a Backup or a Restore.
    struct Subject {
        var label: String
        var namespace: String
        var clusterNamespace: String
        var br: BRConfig?
        var storage: StorageProvider
        /// A Restore reads an existing backup (`backupmeta` must be there); a Backup must not find one.
        var readsBackup: Bool
        /// Whether the storage is checked (a Lightning import reads its archive by path instead).
        var checksStorage: Bool
        var tool: ToolLocator.Tool
        var env: [EnvVar]?
        var validate: (TidbCluster?) -> [ValidationProblem]
        var job: (JobBuilder, TidbCluster?) async throws -> JSONValue?
    }

    func check(_ backup: Backup) async -> [Check] {
        await check(Subject(label: "backup/\(backup.namespace)/\(backup.name)", namespace: backup.namespace, clusterNamespace: backup.clusterNamespace,
                            br: backup.spec.br, storage: backup.spec.storage, readsBackup: false, checksStorage: true,
                            tool: backup.spec.br != nil ? .br : .dumpling, env: backup.spec.env,
                            validate: { BRValidation.validate(backup, tikvImage: $0?.tikvImage, cluster: $0) },
                            job: { builder, cluster in
                                // The first Job of the model's flow: the one a run starts with.
                                guard let first = backup.flowJobs.first else { return nil }
                                if first.kind == .export { return try await builder.exportJob(backup) }
                                guard let cluster else { return nil }
                                switch first.step {
                                case "initialize": return try await builder.volumeInitJob(backup, cluster: cluster)
                                case let step where step.hasPrefix("log-"):
                                    return try await builder.logBackupJob(backup, cluster: cluster, command: LogSubCommand(rawValue: step))
                                default: return try await builder.brBackupJob(backup, cluster: cluster)
                                }
                            }))
    }

    func check(_ restore: Restore) async -> [Check] {
        await check(Subject(label: "restore/\(restore.namespace)/\(restore.name)", namespace: restore.namespace, clusterNamespace: restore.clusterNamespace,
                            br: restore.spec.br, storage: restore.spec.storage, readsBackup: true, checksStorage: restore.spec.br != nil,
                            tool: restore.spec.br != nil ? .br : .lightning, env: restore.spec.env,
                            validate: { BRValidation.validate(restore, tikvImage: $0?.tikvImage, cluster: $0) },
                            job: { builder, cluster in
                                guard let first = restore.flowJobs.first else { return nil }
                                switch first.kind {
                                case .lightning: return try await builder.lightningJob(restore, cluster: cluster)
                                case .import: return try await builder.importJob(restore)
                                default:
                                    guard let cluster else { return nil }
                                    if first.step == Restore.VolumeStep.prepare.rawValue {
                                        return try await builder.volumeRestoreJob(restore, cluster: cluster, step: .prepare)
                                    }
                                    return try await builder.brRestoreJob(restore, cluster: cluster)
                                }
                            }))
    }

    func check(_ subject: Subject) async -> [Check] {
        let label = subject.label
        var checks: [Check] = []
        guard let namespaceOK = await namespace(subject.namespace, label, &checks), namespaceOK else { return checks }
        let cluster = await tidbCluster(subject.br, clusterNamespace: subject.clusterNamespace, label, &checks)
        let problems = subject.validate(cluster)
        checks.append(problems.isEmpty ? Check(object: label, name: "spec", result: .ok, detail: "valid")
            : Check(object: label, name: "spec", result: .failed, detail: problems.map(\.message).joined(separator: "; "),
                    fix: "correct the fields named; `tidb-backup-operator validate -f FILE` checks offline"))
        let job: JSONValue?
        do {
            job = try await subject.job(JobBuilder(api: ReadOnlyAPI(base: api), settings: JobSettings()), cluster)
        } catch {
            checks.append(Check(object: label, name: "secrets", result: .failed, detail: "\(error)",
                                fix: "create the Secret the spec names with the keys listed (kubectl create secret generic NAME --from-literal=KEY=VALUE)"))
            job = nil
        }
        guard let job else { return checks }
        let env = await secrets(job, namespace: subject.namespace, label, &checks)
        if let env, subject.checksStorage {
            checks.append(await storage(subject.storage, environment: env, expectBackup: subject.readsBackup, label))
        }
        if let br = subject.br { checks += await pd(cluster, br: br, namespace: subject.clusterNamespace, label) }
        checks.append(await tool(subject.tool, userEnv: subject.env, label))
        return checks
    }

    // MARK: the checks

    func namespace(_ name: String, _ label: String, _ checks: inout [Check]) async -> Bool? {
        do {
            _ = try await api.get(.namespaces, namespace: nil, name: name)
            return true
        } catch let e as KubeAPIError where e.isNotFound {
            checks.append(Check(object: label, name: "namespace", result: .failed, detail: "namespace \(name) does not exist",
                                fix: "kubectl create namespace \(name)"))
            return false
        } catch {
            checks.append(Check(object: label, name: "namespace", result: .failed, detail: "\(error)", fix: nil))
            return false
        }
    }

    /// A schedule's verification target: not the cluster it backs up, there, and its PD answering.
    func verificationTarget(_ schedule: BackupSchedule) async -> [Check] {
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
        let cluster = await tidbCluster(br, clusterNamespace: targetNS, label, &checks)
        if let cluster { checks += await pd(cluster, br: br, namespace: targetNS, label) }
        if let empty = await scratchEmpty(v, namespace: ns, label) { checks.append(empty) }
        return checks
    }

    /// With `cleanup: none` nothing clears the scratch cluster between runs, and BR's restore refuses
    /// tables that exist (a point-in-time restore wants no user table at all): it must hold none.
    /// Read through `target.tidb` with the password of its Secret, as the verification's Job would.
    func scratchEmpty(_ v: VerificationSpec, namespace: String, _ label: String) async -> Check? {
        guard v.effectiveCleanup == "none" else { return nil }
        guard let tidb = v.target.tidb else {
            return Check(object: label, name: "scratch-empty", result: .skipped,
                         detail: "cleanup: none and no target.tidb: whether the scratch cluster holds tables cannot be looked at")
        }
        let secret = try? await api.get(.secrets, namespace: namespace, name: tidb.secretName)
        guard let b64 = secret?.value(at: ["data", "password"])?.stringValue, let password = Data(base64Encoded: b64) else {
            return Check(object: label, name: "scratch-empty", result: .failed,
                         detail: "Secret \(namespace)/\(tidb.secretName) with key password not found (target.tidb.secretName)",
                         fix: "kubectl -n \(namespace) create secret generic \(tidb.secretName) --from-literal=password=...")
        }
        var env = environment
        env["BACKUP_MANAGER_PASSWORD"] = String(decoding: password, as: UTF8.self)
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

    func tidbCluster(_ br: BRConfig?, clusterNamespace: String, _ label: String, _ checks: inout [Check]) async -> TidbCluster? {
        guard let br else { return nil }
        do {
            if let cluster = try await api.getIfPresent(TidbCluster.self, namespace: clusterNamespace, name: br.cluster) {
                checks.append(Check(object: label, name: "tidbcluster", result: .ok, detail: "\(clusterNamespace)/\(br.cluster) exists"))
                return cluster
            }
            checks.append(Check(object: label, name: "tidbcluster", result: .failed, detail: "TidbCluster \(clusterNamespace)/\(br.cluster) not found",
                                fix: "for a cluster outside Kubernetes, apply a TidbCluster named \(br.cluster) in namespace \(clusterNamespace) with spec.pdAddresses (e.g. [\"http://127.0.0.1:2379\"]) and spec.version (see examples/tidbcluster-standalone.yaml)"))
        } catch {
            checks.append(Check(object: label, name: "tidbcluster", result: .failed, detail: "\(error)", fix: nil))
        }
        return nil
    }

    /// Every Secret key the Job reads must exist; returns the environment a job process would get.
    func secrets(_ job: JSONValue, namespace: String, _ label: String, _ checks: inout [Check]) async -> [String: String]? {
        var env = environment
        var missing: [String] = []
        var used: [String] = []
        let container = job.value(at: ["spec", "template", "spec", "containers"])?.arrayValue?.first ?? .emptyObject
        for item in container["env"]?.arrayValue ?? [] {
            guard let name = item["name"]?.stringValue else { continue }
            if let v = item["value"]?.stringValue { env[name] = v; continue }
            guard let ref = item.value(at: ["valueFrom", "secretKeyRef"]) else { continue }
            let secret = ref["name"]?.stringValue ?? ""
            let key = ref["key"]?.stringValue ?? ""
            let optional = ref["optional"] == .bool(true)
            let object = try? await api.get(.secrets, namespace: namespace, name: secret)
            if let b64 = object?.value(at: ["data", key])?.stringValue, let data = Data(base64Encoded: b64) {
                env[name] = String(decoding: data, as: UTF8.self)
                used.append("\(secret).\(key)")
            } else if let text = object?.value(at: ["stringData", key])?.stringValue {
                env[name] = text
                used.append("\(secret).\(key)")
            } else if !optional {
                missing.append(object == nil ? "Secret \(namespace)/\(secret) does not exist (wanted key \(key))" : "Secret \(namespace)/\(secret) has no key \(key)")
            }
        }
        if !missing.isEmpty {
            checks.append(Check(object: label, name: "secrets", result: .failed, detail: missing.joined(separator: "; "),
                                fix: "kubectl -n \(namespace) create secret generic NAME --from-literal=KEY=VALUE (or add the key to the existing Secret)"))
            return nil
        }
        checks.append(Check(object: label, name: "secrets", result: .ok,
                            detail: used.isEmpty ? "none needed" : "present: \(used.sorted().joined(separator: ", "))"))
        return env
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

/// The API as the preflight lets the Job builder see it: reads go through, writes (the Dumpling and
/// Lightning PVC) are answered with the object unchanged and never sent.
struct ReadOnlyAPI: KubeAPI {
    let base: any KubeAPI
    func get(_ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue { try await base.get(kind, namespace: namespace, name: name) }
    func list(_ kind: ResourceKind, namespace: String?, options: ListOptions) async throws -> ObjectList {
        try await base.list(kind, namespace: namespace, options: options)
    }
    func watch(_ kind: ResourceKind, namespace: String?, options: WatchOptions) async throws -> WatchStream {
        try await base.watch(kind, namespace: namespace, options: options)
    }
    func create(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> JSONValue { object }
    func update(_ kind: ResourceKind, namespace: String?, object: JSONValue, subresource: String?) async throws -> JSONValue { object }
    func patch(_ kind: ResourceKind, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> JSONValue {
        try await base.get(kind, namespace: namespace, name: name)
    }
    func delete(_ kind: ResourceKind, namespace: String?, name: String, options: DeleteOptions) async throws -> JSONValue? { nil }
}

extension String {
    fileprivate func trimmingSuffix(_ s: String) -> String { hasSuffix(s) ? String(dropLast(s.count)) : self }
}
