import BRModel
import Foundation
import KubeModel

/// The prune Job of a failed restore (reference 4.6): `br abort restore <type> …` removes what the
/// failed restore half wrote. `PruneRunning`, then `PruneComplete` or `PruneFailed` with TiDB Operator's
/// reasons (`CommandNotFound` for a BR too old to have `abort`).
struct RestorePruneJob {
    let manager: Manager
    let options: ManagerOptions

    func run(_ restore: Restore) async throws {
        guard let br = restore.spec.br else { throw ManagerError("no br config in \(options.namespace)/\(options.name)") }
        let argv: [String]
        do {
            var restoreArgs = try ToolArguments.brRestore(restore, pd: manager.pd(options, br: br), clusterTLS: options.clusterTLS,
                                                          pitrRestoredTs: options.pitrRestoredTs)
            // `restore <type> …` becomes `abort restore <type> …`, without what only a restore run takes.
            restoreArgs.removeAll { $0.hasPrefix("--restored-ts=") || $0.hasPrefix("--full-backup-storage") || $0.hasPrefix("--start-ts=") }
            argv = ["abort"] + restoreArgs
        } catch {
            try await manager.restoreCondition(options, .pruneFailed, reason: "ConstructArgsFailed", message: "\(error)")
            throw error
        }
        if options.dryRun {
            manager.log(Manager.Plan(tool: "br", argv: argv, environment: manager.environmentNames()).render())
            return
        }
        try await manager.restoreCondition(options, .pruneRunning, reason: "PruneJobStarted", message: "Starting cleanup of failed restore")
        let (exe, prefix) = try manager.tools.locate(.br)
        let output = Locked<[String]>([])
        let result = try await ToolRunner(redact: manager.redactor, log: manager.log).run(exe, prefix + argv, environment: manager.toolEnvironment()) { _, line in
            output.mutate { $0.append(line) }
        }
        guard result.succeeded else {
            let text = output.value.joined(separator: "\n")
            let oldBR = text.contains("Usage:") || text.contains("--help")
            let message = oldBR ? "this BR has no `abort` command (upgrade BR to prune a failed restore)"
                : "br abort restore failed, errMsg \(result.errorSummary.joined(separator: "\n")), err: \(result.exitDescription)"
            try await manager.restoreCondition(options, .pruneFailed, reason: oldBR ? "CommandNotFound" : "BRAbortFailed", message: message)
            throw ManagerError(message)
        }
        try await manager.restoreCondition(options, .pruneComplete, reason: "PruneJobComplete", message: "the failed restore's data is cleaned up")
    }
}
