import BRModel
import BackupManager
import Cron
import Foundation
import KubeModel
import ManifestTools

/// `tidb-backup-manager plan`, offline: for each object of a manifest, every Job its flow has and the
/// tool runs each would make (the same `RunPlan` the Jobs and their `--dry-run` use), with the
/// environment the operator's Job gives the tool, secrets as `<redacted>`.
public struct OfflinePlan {
    public var tikvVersion: String
    public var clusterTLS: Bool
    /// The job binary's own readers of a Job's arguments (its command-line parsers).
    let backupOptions: ([String]) throws -> ManagerOptions
    let restoreOptions: ([String]) throws -> ManagerOptions

    public init(tikvVersion: String, clusterTLS: Bool, backupOptions: @escaping ([String]) throws -> ManagerOptions,
                restoreOptions: @escaping ([String]) throws -> ManagerOptions) {
        self.tikvVersion = tikvVersion
        self.clusterTLS = clusterTLS
        self.backupOptions = backupOptions
        self.restoreOptions = restoreOptions
    }

    struct PlanError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// What `plan` prints: the lines of every plannable object, and the objects it refused (with
    /// `validate`'s words) or could not plan.
    public struct Output: Sendable {
        public var lines: [String] = []
        public var errors: [String] = []
    }

    /// The plan of each Backup, CompactBackup, Restore and BackupSchedule (the Backup of its next slot)
    /// among the manifests, read as the API server would store them (schema defaults applied). An
    /// object `validate` refuses is not planned: its problems are the errors. TidbClusters of any of
    /// the files give their PD addresses.
    public func plan(_ manifests: ManifestSet, defaultNamespace: String, now: Date = Date()) -> Output {
        var output = Output()
        output.errors = manifests.unreadable
        var pdByCluster: [String: String] = [:]
        for object in manifests.objects where object.kind == TidbCluster.kind {
            let stored = ManifestValidator.stored(object.value, defaultNamespace: defaultNamespace)
            if let c = try? KubeCodec.decode(TidbCluster.self, from: stored), let pds = c.spec.pdAddresses, !pds.isEmpty {
                pdByCluster["\(c.metadata.namespace ?? defaultNamespace)/\(c.metadata.name ?? "")"] = pds.joined(separator: ",")
            }
        }
        for object in manifests.objects {
            let findings = ManifestValidator().findings(in: object.value(defaultNamespace: defaultNamespace), source: object.source).findings
            if !findings.isEmpty {
                output.errors += findings.map { "\($0) (\(object.source))" }
                continue
            }
            let stored = ManifestValidator.stored(object.value, defaultNamespace: defaultNamespace)
            do {
                output.lines += try lines(stored, kind: object.kind, known: pdByCluster, now: now)
            } catch {
                output.errors.append("\(object.kind)/\(object.namespace ?? defaultNamespace)/\(object.name): \(error) (\(object.source))")
            }
        }
        return output
    }

    /// The plan of one object of our kinds (other kinds plan nothing).
    func lines(_ value: JSONValue, kind: String, known pdByCluster: [String: String], now: Date) throws -> [String] {
        switch kind {
        case Backup.kind:
            return try lines(try KubeCodec.decode(Backup.self, from: value), known: pdByCluster)
        case BackupSchedule.kind:
            let s = try KubeCodec.decode(BackupSchedule.self, from: value)
            let zone = s.spec.timeZone.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!
            guard let slot = try CronSchedule(parsing: s.spec.schedule).next(after: now, in: zone) else {
                throw PlanError("spec.schedule: \(s.spec.schedule) has no next time")
            }
            let backup = s.makeBackup(slot: Time(slot))
            return ["# BackupSchedule \(s.metadata.namespace ?? "")/\(s.metadata.name ?? ""): its next Backup, \(backup.name), at \(Time(slot))"]
                + (try lines(backup, known: pdByCluster))
                + (try s.makeLogBackup(now: Time(now)).map { ["# BackupSchedule \(s.metadata.namespace ?? "")/\(s.metadata.name ?? ""): its log backup"] + (try lines($0, known: pdByCluster)) } ?? [])
        case CompactBackup.kind:
            let c = try KubeCodec.decode(CompactBackup.self, from: value)
            return ["# CompactBackup \(c.metadata.namespace ?? "default")/\(c.metadata.name ?? "")"] + (try planCompact(c))
        case Restore.kind:
            let r = try KubeCodec.decode(Restore.self, from: value)
            let head = "# Restore \(r.namespace)/\(r.name)"
            if let lightning = r.spec.lightning { return [head] + (try planLightning(r, lightning, known: pdByCluster)) }
            guard let br = r.spec.br else { return [head] + (try planImport(r)) }
            return [head] + (try planRestore(r, pd: pd(br, namespace: r.namespace, known: pdByCluster)))
        default:
            return []
        }
    }

    func lines(_ b: Backup, known pdByCluster: [String: String]) throws -> [String] {
        let head = "# Backup \(b.namespace)/\(b.name)"
        guard let br = b.spec.br else { return [head] + (try planExport(b)) }
        return [head] + planBackup(b, pd: pd(br, namespace: b.namespace, known: pdByCluster))
    }

    func pd(_ br: BRConfig, namespace: String, known: [String: String]) -> String {
        let ns = (br.clusterNamespace ?? "").isEmpty ? namespace : br.clusterNamespace!
        return known["\(ns)/\(br.cluster)"] ?? ToolArguments.defaultPD(br: br, namespace: namespace)
    }

    /// The arguments a Job of the flow gives the job binary, as the operator's Job builder adds the
    /// cluster's: PD, cluster TLS, TiKV version.
    func jobArguments(_ job: FlowJob, namespace: String, name: String, pd: String) -> [String] {
        let object = job.kind == .restore ? "--restoreName=\(name)" : "--backupName=\(name)"
        return ["--namespace=\(namespace)", object, "--tikvVersion=\(tikvVersion)", "--pd=\(pd)"] + job.modeArguments
            + (clusterTLS ? ["--cluster-tls=true"] : [])
    }

    /// Every Job the Backup's flow has (the model decides which: a log backup's sub-command from spec
    /// and status, a volume snapshot's two phases), each as the job binary reads its arguments and runs
    /// its tool: the same `RunPlan` the job and its `--dry-run` use.
    func planBackup(_ b: Backup, pd: String) -> [String] {
        do {
            return try planJobs(b.flowJobs.filter { $0.kind == .backup }, namespace: b.namespace, name: b.name, pd: pd) {
                try RunPlan.backup(b, try backupOptions($0), pd: pd, brFiles: ToolArguments.brBinDirectory)
            } + envLines(b.spec.storage)
        } catch {
            return ["# error: \(error)"]
        }
    }

    /// Every BR Job of the Restore's flow, as for a Backup.
    func planRestore(_ r: Restore, pd: String) throws -> [String] {
        try planJobs(r.flowJobs.filter { $0.kind == .restore }, namespace: r.namespace, name: r.name, pd: pd) {
            try RunPlan.restore(r, try restoreOptions($0), pd: pd, brFiles: ToolArguments.brBinDirectory)
        } + envLines(r.spec.storage)
    }

    /// `# Job <name> (<step>)`, then each tool run (the tool, then its argv) of the Job's arguments.
    func planJobs(_ jobs: [FlowJob], namespace: String, name: String, pd: String, runs: ([String]) throws -> [ToolRun]) throws -> [String] {
        var lines: [String] = []
        for job in jobs {
            lines.append("# Job \(job.name) (\(job.step))")
            for run in try runs(jobArguments(job, namespace: namespace, name: name, pd: pd)) { lines += [run.tool] + run.argv }
        }
        return lines
    }

    /// A CompactBackup's Job, as `RunPlan` has it.
    func planCompact(_ c: CompactBackup) throws -> [String] {
        var lines = ["# Job \(c.jobName) (compact)"]
        for run in try RunPlan.compact(c, storage: CompactJob.storagePlaceholder) { lines += [run.tool] + run.argv }
        return lines + envLines(c.spec.storage)
    }

    /// The environment the operator's Job gives the tool, secrets as `<redacted>`.
    /// Dumpling's argv as the export Job would run it now (the output directory carries the time).
    func planExport(_ b: Backup) throws -> [String] {
        guard let from = b.spec.from else { throw PlanError("spec.from is required for a Dumpling export") }
        let endpoint = TiDBEndpoint(from, environment: ["BACKUP_MANAGER_PASSWORD": "<redacted>"], clientTLS: !(from.tlsClientSecretName ?? "").isEmpty,
                                    skipClientCA: false)
        let paths = Manager.exportPaths(b.spec.storage, workDirectory: "/backup", at: Date())
        return ["dumpling"] + ToolArguments.dumplingExport(b, output: paths.local, endpoint: endpoint, clientTLS: !(from.tlsClientSecretName ?? "").isEmpty,
                                                           skipClientCA: false)
            + ["# status.backupPath: \(paths.backupPath)"] + envLines(b.spec.storage, password: true)
    }

    /// Lightning's argv for an import; the password is in the private config file, not here.
    func planImport(_ r: Restore) throws -> [String] {
        guard let to = r.spec.to else { throw PlanError("spec.to is required for a Lightning import") }
        let path = r.spec.s3?.path ?? r.spec.gcs?.path ?? ""
        let tls = !(to.tlsClientSecretName ?? "").isEmpty
        let endpoint = TiDBEndpoint(to, environment: [:], clientTLS: tls, skipClientCA: false)
        let data = Manager.importDirectory(path, workDirectory: "/backup").data
        return ["tidb-lightning"] + ToolArguments.lightningImport(r, dataDirectory: data, endpoint: endpoint, configFile: "<private config file with [tidb] password>",
                                                                  clientTLS: tls, skipClientCA: false) + envLines(r.spec.storage, password: true)
    }

    /// A `spec.lightning` import: where the data comes from, Lightning's argv (in-pod paths) and the
    /// configuration file it gets, with the password redacted.
    func planLightning(_ r: Restore, _ spec: LightningSpec, known: [String: String]) throws -> [String] {
        guard let to = r.spec.to else { throw PlanError("spec.to is required for a Lightning import") }
        let endpoint = TiDBEndpoint(to, environment: ["BACKUP_MANAGER_PASSWORD": "<redacted>"], clientTLS: spec.tlsClient?.enabled == true, skipClientCA: false)
        let source: String
        let data: String
        if let remote = spec.dataSource.remote {
            data = LightningLayout.dataMount + "/" + LightningLayout.backupName(of: remote.location)
            source = "# data: \(remote.location) fetched into claim \(r.lightningDataPVCName) at \(data)"
        } else if let adhoc = spec.dataSource.adhoc {
            data = LightningLayout.dataMount + "/" + adhoc.backupName
            source = "# data: claim \(adhoc.pvcName) at \(data)"
        } else {
            data = LightningLayout.dataMount
            source = "# data: \(spec.dataSource.local?.hostPath ?? "") on node \(spec.dataSource.local?.nodeName ?? "<any>") at \(data)"
        }
        let ns = (spec.clusterNamespace ?? "").isEmpty ? r.namespace : spec.clusterNamespace!
        let pd = known["\(ns)/\(spec.cluster ?? "")"] ?? "\(spec.cluster ?? "")-pd.\(ns):2379"
        let config = "<private config file>"
        let argv = LightningConfigFile.arguments(r, spec: spec, endpoint: endpoint, dataDirectory: data, configFile: config,
                                                 sortedKV: LightningLayout.sortedKVMount, pd: pd)
        let text = try LightningConfigFile.text(spec: spec, password: "<redacted>", dataDirectory: data,
                                                clusterTLS: spec.tlsCluster?.enabled == true ? LightningLayout.clusterTLSMount : nil,
                                                clientTLS: spec.tlsClient?.enabled == true ? LightningLayout.clientTLSMount : nil)
        return [source, "tidb-lightning"] + argv + ["# \(config):"] + text.split(separator: "\n", omittingEmptySubsequences: false).map { "  \($0)" }
    }

    func envLines(_ storage: StorageProvider, password: Bool = false) -> [String] {
        var env: [String] = []
        switch storage.type {
        case .s3:
            let s3 = storage.s3!
            env += ["S3_PROVIDER=\(s3.provider.rawValue)", "S3_ENDPOINT=\(s3.endpoint ?? "")", "AWS_REGION=\(s3.region ?? "")",
                    "AWS_ACL=\((s3.acl ?? "").isEmpty ? (s3.provider.rawValue == "aws" ? "private" : "") : s3.acl!)",
                    "AWS_STORAGE_CLASS=\((s3.storageClass ?? "").isEmpty ? (s3.provider.rawValue == "aws" ? "STANDARD_IA" : "") : s3.storageClass!)"]
            if let s = s3.secretName, !s.isEmpty { env += ["AWS_ACCESS_KEY_ID=<redacted>", "AWS_SECRET_ACCESS_KEY=<redacted>"] }
        case .gcs:
            env += ["GCS_PROJECT_ID=\(storage.gcs!.projectId)"]
            if let s = storage.gcs!.secretName, !s.isEmpty { env += ["GCS_SERVICE_ACCOUNT_JSON_KEY=<redacted>"] }
        case .azblob:
            env += ["AZURE_ACCESS_TIER=\((storage.azblob!.accessTier ?? "").isEmpty ? "Cool" : storage.azblob!.accessTier!)"]
            if let s = storage.azblob!.secretName, !s.isEmpty { env += ["AZURE_STORAGE_ACCOUNT=<redacted>", "AZURE_STORAGE_KEY=<redacted>"] }
        default: break
        }
        if password { env.insert("BACKUP_MANAGER_PASSWORD=<redacted>", at: 0) }
        return ["env:"] + (env + ["BR_LOG_TO_TERM=\\u0001"]).map { "  \($0)" }
    }
}
