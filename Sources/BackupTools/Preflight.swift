import AsyncHTTPClient
import BRModel
import BRObjects
import BackupManager
import Foundation
import KubeAPI
import KubeModel
import ManifestTools

/// The checks a user runs before a first backup (`tidb-backup-manager doctor -f backup.yaml`): for
/// every Backup, Restore and BackupSchedule in the manifests, first what `validate` says of it, then
/// everything its Jobs will need, each reported on one line with what to do when it fails. Every check
/// that can run runs, so one pass names every problem. It only reads: the API (objects, Secrets), PD's
/// version endpoint, the storage (a list of one page and a look for `backupmeta`), and the tool's
/// `--version`. Objects the manifests hold but the server does not yet (a Secret or TidbCluster in
/// another file) count as there, and say so.
public struct Preflight: Sendable {
    public struct Check: Sendable, Equatable {
        public enum Result: String, Sendable { case ok = "ok", failed = "FAIL", skipped = "skip" }
        public var object: String
        public var name: String
        public var result: Result
        public var detail: String
        public var fix: String?

        public init(object: String, name: String, result: Result, detail: String, fix: String? = nil) {
            self.object = object
            self.name = name
            self.result = result
            self.detail = detail
            self.fix = fix
        }

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
    /// When the checks run: the slot a schedule's next Backup is made for.
    let now: Date

    public init(api: any KubeAPI, environment: [String: String] = ProcessInfo.processInfo.environment, http: HTTPClient = .shared,
                timeout: Duration = .seconds(5), now: Date = Date()) {
        self.api = api
        self.environment = environment
        self.http = http
        self.timeout = timeout
        self.now = now
    }

    /// Runs every check for the Backups, Restores and BackupSchedules among the manifests.
    public func run(_ manifests: ManifestSet, defaultNamespace: String) async -> [Check] {
        let context = Context(api: ManifestBackedAPI(base: api, manifests: manifests, defaultNamespace: defaultNamespace), manifests: manifests,
                              defaultNamespace: defaultNamespace)
        var checks = Self.validation(manifests, defaultNamespace: defaultNamespace)
        let reachable: Bool
        do {
            _ = try await api.list(.namespaces, namespace: nil, options: ListOptions(limit: 1))
            checks.append(Check(object: "api", name: "server", result: .ok, detail: "the Kubernetes API answers"))
            reachable = true
        } catch {
            checks.append(Check(object: "api", name: "server", result: .failed, detail: "\(error)",
                                fix: "start `tidb-backup-operator standalone` and export KUBECONFIG=$PWD/.tidb-backup/kubeconfig, or point --kubeconfig at your cluster"))
            reachable = false
        }
        for object in manifests.objects where object.value["apiVersion"]?.stringValue == "pingcap.com/v1alpha1" {
            let stored = ManifestValidator.stored(object.value, defaultNamespace: defaultNamespace)
            switch object.kind {
            case Backup.kind:
                guard let backup = try? KubeCodec.decode(Backup.self, from: stored) else { continue }
                checks += await check(subject(backup, label: "backup/\(backup.namespace)/\(backup.name)"), context, reachable: reachable)
            case Restore.kind:
                guard let restore = try? KubeCodec.decode(Restore.self, from: stored) else { continue }
                checks += await check(subject(restore), context, reachable: reachable)
            case BackupSchedule.kind:
                guard let schedule = try? KubeCodec.decode(BackupSchedule.self, from: stored) else { continue }
                checks += await check(schedule, context, reachable: reachable)
            default: continue
            }
        }
        return checks
    }

    /// The checks that need no API: what `validate` says, for a doctor without a kubeconfig.
    public static func offline(_ manifests: ManifestSet, defaultNamespace: String) -> [Check] {
        validation(manifests, defaultNamespace: defaultNamespace)
    }

    /// What `validate` says of each object, first and in its words: one failed check per problem, the
    /// field named, the file and line to correct.
    static func validation(_ manifests: ManifestSet, defaultNamespace: String) -> [Check] {
        var checks: [Check] = []
        for line in manifests.unreadable {
            checks.append(Check(object: "manifests", name: "read", result: .failed, detail: line, fix: "correct the file named"))
        }
        for object in manifests.objects {
            let (ours, findings) = ManifestValidator().findings(in: object.value(defaultNamespace: defaultNamespace), source: object.source)
            for finding in findings {
                // `Backup/ns/name` as validate writes it, `backup/ns/name` as doctor's other lines do.
                let kindEnd = finding.object.firstIndex(of: "/") ?? finding.object.endIndex
                let label = finding.object[..<kindEnd].lowercased() + finding.object[kindEnd...]
                checks.append(Check(object: label, name: "manifest", result: .failed,
                                    detail: finding.field.map { "\($0): \(finding.message)" } ?? finding.message,
                                    fix: "correct \(finding.field ?? "the object") in \(object.source) (`tidb-backup-operator validate -f FILE` says the same offline)"))
            }
            if ours && findings.isEmpty {
                checks.append(Check(object: "\(object.kind.lowercased())/\(object.namespace ?? defaultNamespace)/\(object.name)", name: "manifest",
                                    result: .ok, detail: "valid (\(object.source))"))
            }
        }
        return checks
    }

    // MARK: one object

    struct Context: Sendable {
        var api: ManifestBackedAPI
        var manifests: ManifestSet
        var defaultNamespace: String
    }

    /// What the checks need to know of a Backup or a Restore.
    struct Subject: Sendable {
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
        /// The Secrets the spec names, with the keys the Job builder reads from each.
        var secretNeeds: [SecretNeed]
        var validate: @Sendable (TidbCluster?) -> [ValidationProblem]
        var job: @Sendable (JobBuilder, TidbCluster?) async throws -> JSONValue?
    }

    func subject(_ backup: Backup, label: String) -> Subject {
        Subject(label: label, namespace: backup.namespace, clusterNamespace: backup.clusterNamespace,
                br: backup.spec.br, storage: backup.spec.storage, readsBackup: false, checksStorage: true,
                tool: backup.spec.br != nil ? .br : .dumpling, env: backup.spec.env,
                secretNeeds: [backup.spec.storage.secretNeed()].compactMap { $0 } + [backup.spec.from?.secretNeed(field: "spec.from")].compactMap { $0 },
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
                })
    }

    func subject(_ restore: Restore) -> Subject {
        Subject(label: "restore/\(restore.namespace)/\(restore.name)", namespace: restore.namespace, clusterNamespace: restore.clusterNamespace,
                br: restore.spec.br, storage: restore.spec.storage, readsBackup: true, checksStorage: restore.spec.br != nil,
                tool: restore.spec.br != nil ? .br : .lightning, env: restore.spec.env,
                secretNeeds: [restore.spec.lightning?.dataSource.remote?.secretNeed ?? restore.spec.storage.secretNeed(),
                              restore.spec.to?.secretNeed(field: "spec.to")].compactMap { $0 },
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
                })
    }

    /// A schedule is checked through what it will create: the Backup of its next slot (and its log
    /// backup), each as a Backup is checked, and its verification target.
    func check(_ schedule: BackupSchedule, _ context: Context, reachable: Bool) async -> [Check] {
        let label = "backupschedule/\(schedule.metadata.namespace ?? "")/\(schedule.metadata.name ?? "")"
        var checks = await check(subject(schedule.makeBackup(slot: Time(now)), label: "\(label) backupTemplate"), context, reachable: reachable)
        if let log = schedule.makeLogBackup(now: Time(now)) {
            checks += await check(subject(log, label: "\(label) logBackupTemplate"), context, reachable: reachable)
        }
        if schedule.spec.verification != nil, reachable { checks += await verificationTarget(schedule, context) }
        return checks
    }

    func check(_ subject: Subject, _ context: Context, reachable: Bool) async -> [Check] {
        let label = subject.label
        guard reachable else {
            // Without the API only the tool can be looked at.
            return [Check(object: label, name: "objects", result: .skipped, detail: "the API does not answer: namespace, cluster, Secrets and storage not checked"),
                    await tool(subject.tool, userEnv: subject.env, label)]
        }
        var checks: [Check] = []
        await namespace(subject.namespace, label, context, &checks)
        let cluster = await tidbCluster(subject.br, clusterNamespace: subject.clusterNamespace, label, context, &checks)
        let problems = subject.validate(cluster)
        if problems.isEmpty {
            checks.append(Check(object: label, name: "spec", result: .ok, detail: "valid\(cluster.map { " for \($0.metadata.name ?? "") \($0.spec.version ?? "")" } ?? "")"))
        } else {
            // Rules that need the cluster (its version); the rest were reported as `manifest`.
            checks.append(Check(object: label, name: "spec", result: .failed, detail: problems.map { "\($0.field): \($0.message)" }.joined(separator: "; "),
                                fix: "correct \(problems.map(\.field).joined(separator: ", ")) (`tidb-backup-operator validate -f FILE` checks offline)"))
        }
        var job: JSONValue?
        var buildError: (any Error)?
        do {
            job = try await subject.job(JobBuilder(api: context.api, settings: JobSettings()), cluster)
        } catch {
            buildError = error
        }
        if let job {
            let env = await secrets(job, namespace: subject.namespace, label, context, &checks)
            if let env, subject.checksStorage {
                checks.append(await storage(subject.storage, environment: env, expectBackup: subject.readsBackup, label))
            }
        } else {
            // No Job could be built (no cluster yet, or the builder stopped at the first Secret it
            // could not use): every Secret the spec names is still checked, with its keys.
            let needs = await secretNeeds(subject.secretNeeds, namespace: subject.namespace, label, context)
            checks += needs
            if let buildError, !needs.contains(where: { $0.result == .failed }) {
                checks.append(Check(object: label, name: "job", result: .failed, detail: "the Job cannot be built: \(buildError)",
                                    fix: "correct what the message names; the operator reports the same as a Failed condition"))
            }
        }
        if let br = subject.br { checks += await pd(cluster, br: br, namespace: subject.clusterNamespace, label) }
        checks.append(await tool(subject.tool, userEnv: subject.env, label))
        return checks
    }
}
