import ArgumentParser
import BRModel

/// The job binary. Its sub-commands (backup, restore, export, import, clean) arrive with the
/// backup-manager issue; until then it only identifies itself.
struct TidbBackupManagerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tidb-backup-manager",
        abstract: "Runs br, dumpling or tidb-lightning for one Backup or Restore (sub-commands not built yet).",
        version: "0.1.0")
}

TidbBackupManagerCommand.main()
