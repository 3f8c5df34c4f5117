import ArgumentParser
import CoreMetrics
import BRModel
import BackupOperator
import ControllerKit
import Foundation
import KubeModel
import OperatorHTTP
import ManifestTools
import WebView
import StandaloneServer
import Synchronization

@main
struct TidbBackupOperatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tidb-backup-operator",
        abstract: "TiDB backup & restore operator (pingcap.com/v1alpha1 Backup, Restore, BackupSchedule).",
        version: ProductVersion.current,
        subcommands: [Standalone.self, Run.self, Validate.self, Manifests.self, Lightning.self])
}

struct Standalone: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the embedded Kubernetes-compatible API server on SQLite; use kubectl with DIR/kubeconfig.")

    @Option(name: .customLong("data-dir"), help: "Directory for the database, TLS certificate, token and kubeconfig.")
    var dataDir = ".tidb-backup"

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = "127.0.0.1:\(StandaloneAPIServer.defaultPort)"

    @Flag(name: .customLong("allow-remote"), help: "Allow listening on an address other than loopback.")
    var allowRemote = false

    @Option(name: .customLong("max-jobs"), help: "Jobs that run at once as local processes; more wait as pending.")
    var maxJobs = 4

    @Option(name: .customLong("image"), parsing: .singleValue,
            help: "IMAGE=PATH: run PATH for containers whose image contains IMAGE (e.g. tidb-backup-manager=/opt/bin/tidb-backup-manager). Repeatable.")
    var images: [String] = []

    @Option(name: .customLong("backup-manager-image"), help: "Image named in the Jobs the controllers create.")
    var backupManagerImage = BRDefaults.backupManagerImage

    @Option(name: .customLong("selector"),
            help: "Only Backups, Restores, BackupSchedules and CompactBackups with matching labels (a label selector, e.g. tidb-backup-operator.pingcap.com/managed=true for a takeover from TiDB Operator object by object).")
    var selector: String?

    @Flag(name: .customLong("no-controllers"), help: "Serve the API and run Jobs only; do not run the Backup, Restore and BackupSchedule controllers.")
    var noControllers = false

    @OptionGroup var timing: TimingOptions

    @Option(name: .customLong("tool-path"), parsing: .singleValue,
            help: "A directory searched for container commands (br, dumpling, tidb-lightning) before PATH. Repeatable.")
    var toolPaths: [String] = []

    @Option(name: .customLong("notify-webhook"), help: "A URL that gets a JSON POST when a backup fails or a schedule becomes late or recovers.")
    var notifyWebhook: String?

    @Option(name: .customLong("notify-webhook-secret-file"), help: "A file with a key that signs each notification (X-Tidb-Backup-Signature: sha256=HMAC).")
    var notifyWebhookSecretFile: String?

    @Flag(name: .customLong("no-web-view"), help: "Do not serve the web view at /ui/ (it needs the token, as the API does).")
    var noWebView = false

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT, got \(listen)")
        }
        let host = String(listen[..<colon])
        let loopback = host == "127.0.0.1" || host == "localhost" || host == "::1" || host.hasPrefix("127.")
        guard loopback || allowRemote else {
            throw ValidationError("--listen \(listen) is not a loopback address; add --allow-remote to serve other machines")
        }
        guard maxJobs >= 1 else { throw ValidationError("--max-jobs must be at least 1, got \(maxJobs)") }
        var config = StandaloneAPIServer.Configuration(dataDirectory: DataDirectory(dataDir), host: host, port: port,
                                                       customResources: BRKinds.standaloneCRDs, rules: BRKinds.ruleEvaluators)
        config.jobs.maxConcurrentJobs = maxJobs
        for mapping in images {
            guard let eq = mapping.firstIndex(of: "="), !mapping[..<eq].isEmpty, !mapping[mapping.index(after: eq)...].isEmpty else {
                throw ValidationError("--image must be IMAGE=PATH, got \(mapping)")
            }
            let path = String(mapping[mapping.index(after: eq)...])
            guard FileManager.default.isExecutableFile(atPath: path) else { throw ValidationError("--image \(mapping): \(path) is not an executable file") }
            config.jobs.images.append((imageContains: String(mapping[..<eq]), executable: path))
        }
        config.jobs.searchPaths = toolPaths + config.jobs.searchPaths
        // How jobs find their tools is set where the server starts (e.g. TIDB_BACKUP_MANAGER_BR="tiup br:v8.5.0"),
        // as an image would carry it on Kubernetes.
        for (name, value) in ProcessInfo.processInfo.environment where name.hasPrefix("TIDB_BACKUP_MANAGER_") || name == "TIUP_HOME" {
            config.jobs.baseEnvironment[name] = value
        }
        // The Jobs' image runs tidb-backup-manager: by default the one installed beside this binary.
        let sibling = JobRunner.siblingDirectory + "/tidb-backup-manager"
        if !config.jobs.images.contains(where: { backupManagerImage.contains($0.imageContains) }),
           FileManager.default.isExecutableFile(atPath: sibling) {
            config.jobs.images.append((imageContains: "tidb-backup-manager", executable: sibling))
        }
        let metrics = MetricsRegistry()
        // Libraries that report through swift-metrics land on the same /metrics.
        MetricsSystem.bootstrap(metrics.factory)
        config.metrics = { metrics.exposition() }
        var server = try StandaloneAPIServer(configuration: config)
        let dir = server.configuration.dataDirectory
        let webStore: WebStore? = noWebView ? nil : WebStore(api: StoreKubeAPI(core: server.core))
        if let webStore {
            let ui = WebUI(store: webStore, token: try dir.token(), secureCookie: true)
            server.configuration.webView = { request in await ui.respond(&request) }
        }
        let manager = ControllerManager(metrics: metrics)
        var options = OperatorSetup.Options()
        options.jobs.backupManagerImage = backupManagerImage
        options.cacheReads = false
        if let selector {
            do { _ = try LabelSelector(parsing: selector) } catch { throw ValidationError("--selector: \(error.description)") }
            options.selector = selector
        }
        options.timeouts = try timing.timeouts()
        options.notifications = try notificationSettings(url: notifyWebhook, secretFile: notifyWebhookSecretFile)
        options.webhooks = HTTPWebhookTransport()
        options.pdStores = { PDEtcd(endpoints: $0, timeout: .seconds(2)) }
        OperatorSetup(api: StoreKubeAPI(core: server.core), options: options, metrics: metrics).install(into: manager)
        let runControllers = !noControllers
        let finalServer = server
        StopSignals.install()
        let pending = PendingParts()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await pending.run("the API server and its job processes") {
                    try await finalServer.run { bound in
                        let banner = """
                            tidb-backup-operator standalone: serving https://\(host):\(bound)
                            kubeconfig: \(dir.kubeconfig)
                            try: kubectl --kubeconfig \(dir.kubeconfig) get backups
                            \(webStore == nil ? "" : "web view: https://\(host):\(bound)/ui/ (log in with the token in \(dir.path)/token)\n")
                            """
                        FileHandle.standardOutput.write(Data(banner.utf8))
                    }
                }
            }
            if runControllers { group.addTask { try await pending.run("the controllers") { try await manager.run() } } }
            if let webStore { group.addTask { try await pending.run("the web view's informers") { await webStore.run() } } }
            // SIGTERM (a container's stop, systemd) and SIGINT (Ctrl-C) stop it gracefully: job
            // processes get SIGTERM, watches end. As a container's process 1, a signal with no handler
            // would not stop it at all. A stop is bounded; a second signal ends the process at once.
            group.addTask {
                guard let signal = await StopSignals.next() else { return }
                FileHandle.standardError.write(Data("tidb-backup-operator standalone: \(signal), stopping\n".utf8))
                pending.exitAfter(.seconds(Self.stopDeadlineSeconds))
            }
            do {
                try await group.next()
            } catch let error as AddressInUse {
                throw ValidationError(error.description)
            }
            group.cancelAll()
        }
    }

    /// How long a graceful stop may take before the process exits anyway.
    static let stopDeadlineSeconds = 10
}

/// The parts of a running server that have not ended yet, so that a stop that takes too long says
/// what it waits for, and ends the process when its time is up.
final class PendingParts: Sendable {
    private let names = Mutex<[String]>([])

    func run(_ name: String, _ body: @Sendable () async throws -> Void) async throws {
        names.withLock { $0.append(name) }
        defer { names.withLock { $0.removeAll { $0 == name } } }
        try await body()
    }

    /// Logs, once a second while the stop lasts, what is still running, and exits after `deadline`.
    func exitAfter(_ deadline: Duration) {
        let seconds = Int(deadline.components.seconds)
        Thread.detachNewThread { [self] in
            for elapsed in 1...max(seconds, 1) {
                Thread.sleep(forTimeInterval: 1)
                let left = names.withLock { $0 }
                if left.isEmpty { return }
                FileHandle.standardError.write(Data("tidb-backup-operator standalone: stopping for \(elapsed) s, waiting for \(left.joined(separator: ", "))\n".utf8))
            }
            let left = names.withLock { $0 }
            guard !left.isEmpty else { return }
            FileHandle.standardError.write(Data("tidb-backup-operator standalone: stopped after \(seconds) s without \(left.joined(separator: ", ")) ending\n".utf8))
            exit(1)
        }
    }
}

struct Validate: AsyncParsableCommand {
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

    func run() async throws {
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


struct Lightning: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tools for TiDB Lightning imports as Restores.", subcommands: [Convert.self])

    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Turn the tidb-lightning Helm chart's values.yaml into a Restore with spec.lightning.",
            discussion: """
                Prints the Restore (YAML) on standard output, with a comment for each key accepted without effect.
                Every key that cannot be mapped is named on standard error, and nothing is printed.
                Exit status: 0 converted, 1 some key cannot be mapped, 2 the file could not be read.
                """)

        @Option(name: [.customShort("f"), .customLong("filename")], help: "the chart's values file, or - for standard input")
        var file: String
        @Option(name: .long, help: "the Restore's name") var name = "lightning-import"
        @Option(name: [.customShort("n"), .long], help: "the Restore's namespace") var namespace = "default"

        func run() throws {
            let text: String
            do {
                text = file == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                    : try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                FileHandle.standardError.write(Data("error: \(file): \(error.localizedDescription)\n".utf8))
                throw ExitCode(2)
            }
            let values: JSONValue
            do {
                values = try KubeYAML.documents(text).first?.value ?? .object(JSONObject())
            } catch {
                FileHandle.standardError.write(Data("error: \(file): \(error)\n".utf8))
                throw ExitCode(2)
            }
            let result = LightningChartConverter(name: name, namespace: namespace).convert(values)
            guard let restore = result.restore else {
                for p in result.problems { FileHandle.standardError.write(Data("\(file): \(p)\n".utf8)) }
                throw ExitCode(1)
            }
            for n in result.notes { print("# \(n)") }
            print(KubeYAML.emit(restore), terminator: "")
        }
    }
}
