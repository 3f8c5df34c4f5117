import Foundation
import KubeModel

/// One Job of a Backup's, Restore's or CompactBackup's flow, as the model decides it from the whole
/// object (spec and status): its name, the step it is, and what the job binary is told. The operator
/// builds its Jobs from these, `plan` prints the tool runs of these, and the job binary reads the same
/// arguments back; none of them decides a mode or a sub-command again.
public struct FlowJob: Sendable, Equatable {
    public enum Kind: String, Sendable { case backup, restore, export, `import`, lightning, clean, compact }

    public var name: String
    /// What the step is called in `plan` and logs: `snapshot`, `log-start` … `log-truncate`,
    /// `initialize`, `execute`, `restore-volume`, `restore-data`, `clean-volumes`, `pitr`, `export`,
    /// `import`, `lightning`, `compact`, `clean`.
    public var step: String
    /// The job binary's sub-command.
    public var kind: Kind
    /// The arguments after `<sub-command> --namespace=… --<object>Name=…` that the object alone decides.
    /// The cluster's PD addresses, TLS and TiKV version are added by whoever reads the cluster.
    public var modeArguments: [String]

    public init(name: String, step: String, kind: Kind, modeArguments: [String] = []) {
        self.name = name
        self.step = step
        self.kind = kind
        self.modeArguments = modeArguments
    }
}

extension Backup {
    /// The Jobs the Backup's current state leads to, in the order they run.
    public var flowJobs: [FlowJob] {
        if spec.br == nil { return [FlowJob(name: jobName, step: "export", kind: .export)] }
        switch spec.effectiveBackupMode {
        case .log:
            // A truncate asked for with the start runs once the start has completed.
            let command = derivedLogSubcommand
            let truncate = command == .start && !(spec.logTruncateUntil ?? "").isEmpty
            return [logJob(command)] + (truncate ? [logJob(.truncate)] : [])
        case .volumeSnapshot: return [volumeJob(initialize: true), volumeJob(initialize: false)]
        default: return [FlowJob(name: jobName, step: "snapshot", kind: .backup, modeArguments: ["--mode=snapshot"])]
        }
    }

    /// A snapshot backup whose Job ended successfully without its result arriving (a job killed between
    /// BR's success and its status write; a TiDB Operator pod whose whole-object PUT lost its status to
    /// the status subresource): this Job reads the result from the backup's metadata in storage and
    /// writes it, or says that there is none.
    public var resultJob: FlowJob {
        FlowJob(name: "\(jobName)-result", step: "result", kind: .backup, modeArguments: ["--mode=snapshot", "--result-only=true"])
    }

    /// The Job of one log sub-command: `backup-<name>-<sub-command>`.
    public func logJob(_ command: LogSubCommand) -> FlowJob {
        var args = ["--mode=log", "--subcommand=\(command.rawValue)"]
        if command == .start, let ts = spec.commitTs, !ts.isEmpty { args.append("--commit-ts=\(ts)") }
        if command == .truncate, let until = spec.logTruncateUntil, !until.isEmpty { args.append("--truncate-until=\(until)") }
        return FlowJob(name: "backup-\(name)-\(command.rawValue)", step: command.rawValue, kind: .backup, modeArguments: args)
    }

    /// A volume-snapshot backup's init Job (GC and PD scheduling paused while it lives) or its execute Job.
    public func volumeJob(initialize: Bool) -> FlowJob {
        FlowJob(name: initialize ? volumeInitJobName : jobName, step: initialize ? "initialize" : "execute", kind: .backup,
                modeArguments: ["--mode=volume-snapshot"] + (initialize ? ["--initialize=true"] : []))
    }
}

extension Restore {
    /// The steps of a volume-snapshot restore that run a Job.
    public enum VolumeStep: String, Sendable, CaseIterable {
        case prepare = "restore-volume", data = "restore-data", cleanVolumes = "clean-volumes"

        public func jobName(_ restore: Restore) -> String {
            switch self {
            case .prepare: "restore-\(restore.name)"
            case .data: "restore-data-\(restore.name)"
            case .cleanVolumes: "restore-\(restore.name)-clean-volumes"
            }
        }
    }

    /// The Jobs the Restore leads to, in the order they run (a volume-snapshot restore's cleaning of
    /// the volumes runs only after a failure, and is not listed).
    public var flowJobs: [FlowJob] {
        if spec.lightning != nil { return [FlowJob(name: "restore-\(name)", step: "lightning", kind: .lightning)] }
        if spec.br == nil { return [FlowJob(name: "restore-\(name)", step: "import", kind: .import)] }
        switch spec.effectiveRestoreMode {
        case .volumeSnapshot: return [volumeJob(.prepare), volumeJob(.data)]
        case .pitr:
            var args = ["--mode=pitr"]
            if let ts = spec.pitrRestoredTs, !ts.isEmpty { args.append("--pitrRestoredTs=\(ts)") }
            return [FlowJob(name: "restore-\(name)", step: "pitr", kind: .restore, modeArguments: args)]
        default:
            return [FlowJob(name: "restore-\(name)", step: "snapshot", kind: .restore, modeArguments: ["--mode=snapshot"])]
        }
    }

    public func volumeJob(_ step: VolumeStep) -> FlowJob {
        var args = ["--mode=volume-snapshot"]
        switch step {
        case .prepare:
            args.append("--prepare")
            if let az = spec.volumeAZ, !az.isEmpty { args.append("--target-az=\(az)") }
            // As TiDB Operator: the strategy alone decides (FSR on the new volumes needs no warmup Job).
            if spec.warmupStrategy == .fsr { args.append("--use-fsr=true") }
        case .data: break
        case .cleanVolumes: args.append("--clean-volumes")
        }
        return FlowJob(name: step.jobName(self), step: step.rawValue, kind: .restore, modeArguments: args)
    }
}
