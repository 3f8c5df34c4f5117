import ArgumentParser
import BRModel
import BackupManager
import Foundation
import KubeAPI
import KubeClient
import KubeModel
import BackupTools
import ManifestTools

/// Flags every sub-command takes. TiDB Operator's Jobs pass camelCase flags (`--backupName`), and its
/// CLI treats `_` and `-` alike; both spellings are accepted here.
struct Common: ParsableArguments {
    @Option(name: [.customShort("k"), .long], help: "kubeconfig (default: KUBECONFIG, then in-cluster)")
    var kubeconfig: String?
    @Option(name: .long, help: "namespace of the Backup or Restore")
    var namespace: String
    @Flag(name: .customLong("dry-run"), help: "print the tool's argv and environment names (secrets redacted) and exit")
    var dryRun = false
    @Option(name: .long, help: "PD address(es); default <cluster>-pd.<clusterNamespace>:2379")
    var pd: String?
}

func makeAPI(_ common: Common) throws -> any KubeAPI {
    let config = try KubeConfig.resolve(kubeconfig: common.kubeconfig, context: nil)
    return try KubeClient(config: config)
}

func boolFlag(_ s: String?) -> Bool { s.map { $0 == "true" || $0 == "1" } ?? false }

func runManager(_ body: @escaping @Sendable () async throws -> Void) async throws {
    ToolRunner.forwardTerminationSignals()
    do {
        try await body()
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// The flags every BR Job passes, Backup or Restore.
struct BRFlags: ParsableArguments {
    @Option(name: [.customLong("tikvVersion"), .customLong("tikv-version")]) var tikvVersion = "4.0"
    @Option(name: [.customLong("client-tls"), .customLong("client_tls")]) var clientTLS: String?
    @Option(name: [.customLong("cluster-tls"), .customLong("cluster_tls")]) var clusterTLS: String?
    @Option(name: [.customLong("skipClientCA")]) var skipClientCA: String?
    @Option(name: .long) var mode = "snapshot"

    /// The options these flags and the common ones set.
    func options(_ common: Common, name: String) -> ManagerOptions {
        var o = ManagerOptions(namespace: common.namespace, name: name)
        o.tikvVersion = tikvVersion
        o.clientTLS = boolFlag(clientTLS)
        o.clusterTLS = boolFlag(clusterTLS)
        o.skipClientCA = boolFlag(skipClientCA)
        o.mode = mode
        o.pd = common.pd
        o.dryRun = common.dryRun
        return o
    }
}

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "backup", abstract: "Back up a cluster with BR for one Backup.")
    @OptionGroup var common: Common
    @Option(name: [.customLong("backupName"), .customLong("backup-name")]) var backupName: String
    @OptionGroup var br: BRFlags
    @Option(name: .long) var subcommand = "log-start"
    @Option(name: .customLong("commit-ts")) var commitTs = "0"
    @Option(name: .customLong("truncate-until")) var truncateUntil = "0"
    @Option(name: .long) var initialize = "false"
    @Option(name: .customLong("result-only"), help: "read the result of a backup whose Job ended without writing it from backupmeta") var resultOnly = "false"

    /// What the Job's arguments say, as the job and `plan` read them.
    func options() -> ManagerOptions {
        var o = br.options(common, name: backupName)
        o.initialize = boolFlag(initialize)
        o.resultOnly = boolFlag(resultOnly)
        o.subcommand = subcommand
        o.commitTs = commitTs == "0" ? nil : commitTs
        o.truncateUntil = truncateUntil == "0" ? nil : truncateUntil
        return o
    }

    func run() async throws {
        let api = try makeAPI(common)
        let options = options()
        try await runManager { try await Manager(api: api).backup(options) }
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restore", abstract: "Restore a backup with BR for one Restore.")
    @OptionGroup var common: Common
    @Option(name: [.customLong("restoreName"), .customLong("restore-name")]) var restoreName: String
    @OptionGroup var br: BRFlags
    @Option(name: .customLong("pitrRestoredTs")) var pitrRestoredTs = "0"
    @Flag(name: .long) var prepare = false
    @Option(name: .customLong("target-az")) var targetAZ: String?
    @Option(name: .customLong("use-fsr")) var useFSR: String?
    @Option(name: .long) var abort = "false"
    @Flag(name: .customLong("clean-volumes")) var cleanVolumes = false

    /// What the Job's arguments say, as the job and `plan` read them.
    func options() -> ManagerOptions {
        var o = br.options(common, name: restoreName)
        o.pitrRestoredTs = pitrRestoredTs
        o.prepare = prepare
        o.cleanVolumes = cleanVolumes
        o.abort = boolFlag(abort)
        o.targetAZ = targetAZ
        o.useFSR = boolFlag(useFSR)
        return o
    }

    func run() async throws {
        let api = try makeAPI(common)
        let options = options()
        try await runManager { try await Manager(api: api).restore(options) }
    }
}

struct CleanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "clean", abstract: "Delete a Backup's data from its storage.")
    @OptionGroup var common: Common
    @Option(name: [.customLong("backupName"), .customLong("backup-name")]) var backupName: String

    func run() async throws {
        var o = ManagerOptions(namespace: common.namespace, name: backupName)
        o.dryRun = common.dryRun
        let api = try makeAPI(common)
        let options = o
        try await runManager { try await Manager(api: api).clean(options) }
    }
}

struct CompactCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "compact",
                                                    abstract: "Compact a range of a log backup with tikv-ctl for one CompactBackup.")
    @OptionGroup var common: Common
    @Option(name: [.customLong("resourceName"), .customLong("resource-name")]) var resourceName: String

    func run() async throws {
        var o = ManagerOptions(namespace: common.namespace, name: resourceName)
        o.pd = common.pd
        o.dryRun = common.dryRun
        let api = try makeAPI(common)
        let options = o
        try await runManager { try await Manager(api: api).compact(options) }
    }
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Export a cluster with Dumpling for one Backup and upload the archive.")
    @OptionGroup var common: Common
    @Option(name: [.customLong("backupName"), .customLong("backup-name")]) var backupName: String
    @Option(name: .long, help: "the bucket (as the Job passes it; the spec's storage is what is used)") var bucket: String?
    @Option(name: [.customLong("storageType"), .customLong("storage-type")]) var storageType: String?
    @Option(name: [.customLong("client-tls"), .customLong("client_tls")]) var clientTLS: String?
    @Option(name: [.customLong("skipClientCA")]) var skipClientCA: String?

    func run() async throws {
        var o = ManagerOptions(namespace: common.namespace, name: backupName)
        o.clientTLS = boolFlag(clientTLS)
        o.skipClientCA = boolFlag(skipClientCA)
        o.dryRun = common.dryRun
        let api = try makeAPI(common)
        let options = o
        try await runManager { try await Manager(api: api).export(options) }
    }
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import", abstract: "Download a Dumpling archive and load it with TiDB Lightning for one Restore.")
    @OptionGroup var common: Common
    @Option(name: [.customLong("restoreName"), .customLong("restore-name")]) var restoreName: String
    @Option(name: [.customLong("backupPath"), .customLong("backup-path")]) var backupPath: String
    @Option(name: [.customLong("client-tls"), .customLong("client_tls")]) var clientTLS: String?
    @Option(name: [.customLong("skipClientCA")]) var skipClientCA: String?

    func run() async throws {
        var o = ManagerOptions(namespace: common.namespace, name: restoreName)
        o.clientTLS = boolFlag(clientTLS)
        o.skipClientCA = boolFlag(skipClientCA)
        o.dryRun = common.dryRun
        let api = try makeAPI(common)
        let options = o
        let path = backupPath
        try await runManager { try await Manager(api: api).importData(options, backupPath: path) }
    }
}

struct LightningCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lightning",
        abstract: "Run the TiDB Lightning import of a Restore with spec.lightning: fetch its data source, import with checkpoints, report.")
    @OptionGroup var common: Common
    @Option(name: [.customLong("restoreName"), .customLong("restore-name")]) var restoreName: String
    @Option(name: [.customLong("client-tls"), .customLong("client_tls")]) var clientTLS: String?
    @Option(name: [.customLong("cluster-tls"), .customLong("cluster_tls")]) var clusterTLS: String?
    @Option(name: .long, help: "a checkpoint recovery to run first (the value of the lightning-recovery annotation)") var recover: String?

    func run() async throws {
        var o = ManagerOptions(namespace: common.namespace, name: restoreName)
        o.clientTLS = boolFlag(clientTLS)
        o.clusterTLS = boolFlag(clusterTLS)
        o.dryRun = common.dryRun
        o.pd = common.pd
        let api = try makeAPI(common)
        let options = o
        let recovery = recover
        try await runManager { try await LightningImport(manager: Manager(api: api), options: options, recovery: recovery).run() }
    }
}

/// The manifests `plan` and `doctor` read, as `validate` and kubectl take them.
struct ManifestInput: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("filename"), .customLong("file")], parsing: .singleValue,
            help: "A manifest file (YAML or JSON, several documents allowed), a directory (searched for .yaml, .yml, .json) or - for standard input. Repeatable; every object of every file is read first, so a TidbCluster or Secret in one file serves a Backup in another.")
    var files: [String] = []
    @Option(name: [.customShort("n"), .long], help: "namespace for objects that name none")
    var namespace = "default"

    func load() throws -> ManifestSet {
        guard !files.isEmpty else { throw ValidationError("give at least one file or directory with -f (or - for standard input)") }
        return ManifestSet.load(files)
    }
}

/// `plan -f FILE ...`: what every Job of every object would run, offline.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print, offline, every Job each Backup, Restore, CompactBackup and BackupSchedule would get and the tool argv (br, dumpling, tidb-lightning, tikv-ctl) and environment of each.",
        discussion: """
            Objects are read as the API server stores them (schema defaults applied) and checked with the
            rules of `tidb-backup-operator validate` first: an object it refuses is named on standard error
            with the same message and not planned. A BackupSchedule is planned through the Backup of its
            next slot. Exit status: 0 everything planned, 1 an object refused or not planned, 2 a file
            could not be read.
            """)
    @OptionGroup var input: ManifestInput
    @Option(name: .long, help: "TiKV version, as the operator passes it") var tikvVersion = "4.0"
    @Flag(name: .customLong("cluster-tls")) var clusterTLS = false

    func run() throws {
        let manifests = try input.load()
        // A Job's arguments are read by the same parsers the job binary runs with.
        let plan = OfflinePlan(tikvVersion: tikvVersion, clusterTLS: clusterTLS,
                               backupOptions: { try BackupCommand.parse($0).options() },
                               restoreOptions: { try RestoreCommand.parse($0).options() })
        let output = plan.plan(manifests, defaultNamespace: input.namespace)
        if !output.lines.isEmpty { print(output.lines.joined(separator: "\n")) }
        for line in output.errors { FileHandle.standardError.write(Data("error: \(line)\n".utf8)) }
        if !manifests.unreadable.isEmpty { throw ExitCode(2) }
        if !output.errors.isEmpty { throw ExitCode(1) }
    }
}

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check, before a first run, what each Backup, Restore and BackupSchedule in the manifests needs: valid fields, the API, its namespace, TidbCluster and PD, Secret keys, storage access, the tool.",
        discussion: """
            First the rules of `tidb-backup-operator validate`, then every check that can run, so one pass
            names every problem. A schedule is checked through the Backups it will create. Reads only:
            nothing is created and no storage object is written. One line per check, with what to do when
            it fails. The tool is looked for as a job process on this machine finds it (TiDB Operator's
            in-pod paths, TIDB_BACKUP_MANAGER_BR / _DUMPLING / _LIGHTNING, PATH).
            Exit status: 0 every check passed, 1 a check failed.
            """)
    @OptionGroup var input: ManifestInput
    @Option(name: [.customShort("k"), .long], help: "kubeconfig (default: KUBECONFIG, then in-cluster, then ~/.kube/config)")
    var kubeconfig: String?

    func run() async throws {
        let manifests = try input.load()
        var checks: [Preflight.Check]
        do {
            let api = try KubeClient(config: KubeConfig.resolve(kubeconfig: kubeconfig, context: nil))
            checks = await Preflight(api: api).run(manifests, defaultNamespace: input.namespace)
        } catch {
            checks = Preflight.offline(manifests, defaultNamespace: input.namespace)
            checks.append(Preflight.Check(object: "api", name: "server", result: .failed, detail: "no usable kubeconfig (\(error))",
                                          fix: "start `tidb-backup-operator standalone` and export KUBECONFIG=$PWD/.tidb-backup/kubeconfig, or pass --kubeconfig"))
        }
        for check in checks { print(check.render()) }
        let failed = checks.filter { $0.result == .failed }.count
        print(failed == 0 ? "all \(checks.count) checks passed" : "\(failed) of \(checks.count) checks failed")
        if failed > 0 { throw ExitCode(1) }
    }
}

@main
struct TidbBackupManagerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tidb-backup-manager",
        abstract: "Runs br for one Backup or Restore and writes its status; cleans backup data.",
        version: ProductVersion.current,
        subcommands: [BackupCommand.self, RestoreCommand.self, ExportCommand.self, ImportCommand.self, LightningCommand.self, CleanCommand.self, CompactCommand.self, PlanCommand.self, DoctorCommand.self])
}

