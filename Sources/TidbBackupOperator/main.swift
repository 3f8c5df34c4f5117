import ArgumentParser
import BRModel
import Foundation
import KubeModel
import ManifestTools

struct TidbBackupOperatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tidb-backup-operator",
        abstract: "TiDB backup & restore operator (pingcap.com/v1alpha1 Backup, Restore, BackupSchedule).",
        subcommands: [Validate.self, Manifests.self])
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check manifests offline against the CRD schemas and the operator's validation rules.",
        discussion: """
            Prints one `kind/namespace/name: field.path: message` line per problem.
            Exit status: 0 all valid, 1 some object invalid, 2 a file could not be read or parsed.
            """)

    @Option(name: [.customShort("f"), .customLong("filename")], parsing: .singleValue,
            help: "A file, a directory (searched for .yaml, .yml, .json) or - for standard input. Repeatable.")
    var files: [String] = []

    @Argument(help: "More files or directories.")
    var paths: [String] = []

    func run() throws {
        let all = files + paths
        guard !all.isEmpty else { throw ValidationError("give at least one file with -f (or - for standard input)") }
        let report = ManifestValidator().validate(paths: all)
        for line in report.unreadable { FileHandle.standardError.write(Data("error: \(line)\n".utf8)) }
        for line in report.problems { print(line) }
        if report.exitCode == 0 { print("\(report.checked) object(s) valid") }
        throw ExitCode(report.exitCode)
    }
}

struct Manifests: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print deployment manifests generated from the API model.", subcommands: [CRDs.self])

    struct CRDs: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crds", abstract: "Print the CustomResourceDefinitions of Backup, BackupSchedule, CompactBackup, Restore.")

        func run() throws { print(BRKinds.crdsYAML(), terminator: "") }
    }
}

TidbBackupOperatorCommand.main()
