import BRModel
import Foundation

/// One run of a tool in a Job's process.
public struct ToolRun: Sendable, Equatable {
    public var tool: String
    public var argv: [String]
    public init(tool: String, argv: [String]) {
        self.tool = tool
        self.argv = argv
    }
}

/// What a BR Job's process runs, from its object and the arguments the Job gave it (the model's
/// `FlowJob.modeArguments` with the cluster's PD and TLS): the one answer that the job binary runs,
/// its `--dry-run` prints and `plan` prints for every Job of an object's flow.
public enum RunPlan {
    /// `brFiles`: where BR's volume-snapshot files go (`/var/lib/br-bin` in a pod).
    public static func backup(_ backup: Backup, _ options: ManagerOptions, pd: String, brFiles: String) throws -> [ToolRun] {
        switch options.mode {
        case "log":
            var spec = backup
            let command = LogSubCommand(rawValue: options.subcommand)
            if command == .truncate { spec.spec.logTruncateUntil = options.truncateUntil }
            return [ToolRun(tool: "br", argv: try ToolArguments.brLog(spec, subcommand: command.rawValue, pd: pd, clusterTLS: options.clusterTLS,
                                                                      commitTs: options.commitTs))]
        case "volume-snapshot":
            if options.initialize {
                return [ToolRun(tool: "br", argv: try ToolArguments.brPauseGCAndSchedulers(backup, pd: pd, clusterTLS: options.clusterTLS))]
            }
            return [ToolRun(tool: "br", argv: try ToolArguments.brVolumeBackup(backup, pd: pd, clusterTLS: options.clusterTLS,
                                                                               volumeFile: brFiles + "/csb_backup.json"))]
        default:
            if options.resultOnly { return [] }
            return [ToolRun(tool: "br", argv: try ToolArguments.brBackup(backup, pd: pd, clusterTLS: options.clusterTLS))]
        }
    }

    public static func restore(_ restore: Restore, _ options: ManagerOptions, pd: String, brFiles: String) throws -> [ToolRun] {
        switch options.mode {
        case "volume-snapshot":
            if options.cleanVolumes { return [] }
            return [ToolRun(tool: "br", argv: try ToolArguments.brVolumeRestore(restore, pd: pd, clusterTLS: options.clusterTLS,
                                                                                outputFile: options.prepare ? brFiles + "/csb_restore.json" : nil,
                                                                                targetAZ: options.targetAZ, useFSR: options.useFSR))]
        default:
            return [ToolRun(tool: "br", argv: try ToolArguments.brRestore(restore, pd: pd, clusterTLS: options.clusterTLS,
                                                                          pitrRestoredTs: options.pitrRestoredTs))]
        }
    }

    /// A CompactBackup's Job: `br operator base64ify` turns the storage into one argument for tikv-ctl
    /// (`storage`: its output, or a placeholder where it is not known), then `tikv-ctl compact-log-backup`.
    public static func compact(_ compact: CompactBackup, storage: String) throws -> [ToolRun] {
        let range = try compact.range()
        return [ToolRun(tool: "br", argv: ["operator", "base64ify"] + (try ToolArguments.storageArgs(compact.spec.storage))),
                ToolRun(tool: "tikv-ctl", argv: CompactJob.compactArgv(storage: storage, range: range, concurrency: compact.effectiveConcurrency))]
    }
}
