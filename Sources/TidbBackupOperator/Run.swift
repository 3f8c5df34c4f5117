import ArgumentParser
import CoreMetrics
import BRModel
import BackupOperator
import ControllerKit
import Foundation
import Hummingbird
import KubeAPI
import KubeClient
import KubeModel
import OperatorHTTP
import Logging
import ServiceLifecycle
import WebView

/// `tidb-backup-operator run`: the controllers against a Kubernetes API server.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the controllers against a Kubernetes cluster (in-cluster, --kubeconfig, or $KUBECONFIG).")

    @Option(help: "Path to a kubeconfig; default: $KUBECONFIG, then in-cluster, then ~/.kube/config.")
    var kubeconfig: String?

    @Option(help: "The kubeconfig context to use.")
    var context: String?

    @Option(help: "Watch only this namespace (default: all namespaces).")
    var namespace: String?

    @Flag(name: .customLong("leader-elect"), help: "Elect one active replica through a coordination.k8s.io Lease.")
    var leaderElect = false

    @Option(name: .customLong("leader-election-namespace"), help: "Namespace of the Lease (default: --namespace, else the pod's namespace).")
    var leaderElectionNamespace: String?

    @Option(name: .customLong("leader-election-id"), help: "Name of the Lease.")
    var leaderElectionID = "tidb-backup-operator"

    // A reconcile mostly waits on the API server; 16 per controller keep two cores busy under a backlog
    // (10,000 new Backups: 36 s with 16, 50 s with 4), and --kube-api-qps still bounds the load.
    @Option(name: .customLong("selector"),
            help: "Only Backups, Restores, BackupSchedules and CompactBackups with matching labels (a label selector, e.g. tidb-backup-operator.pingcap.com/managed=true for a takeover from TiDB Operator object by object).")
    var selector: String?

    @Option(help: "Workers per controller (concurrent reconciles).")
    var workers = 16

    @Option(name: .customLong("metrics-addr"), help: "HOST:PORT for /metrics; empty to disable.")
    var metricsAddr = "0.0.0.0:8080"

    @Option(name: .customLong("health-addr"), help: "HOST:PORT for /healthz and /readyz.")
    var healthAddr = "0.0.0.0:8081"

    @Option(name: .customLong("backup-manager-image"), help: "Image of the job containers (runs tidb-backup-manager).")
    var backupManagerImage = BRDefaults.backupManagerImage

    @Option(name: .customLong("kube-api-qps"), help: "Client-side request rate to the API server.")
    var qps: Double = 50

    @Option(name: .customLong("kube-api-burst"), help: "Client-side request burst to the API server.")
    var burst = 100

    @OptionGroup var timing: TimingOptions

    @Option(name: .customLong("notify-webhook"), help: "A URL that gets a JSON POST when a backup fails or a schedule becomes late or recovers.")
    var notifyWebhook: String?

    @Option(name: .customLong("notify-webhook-secret-file"), help: "A file with a key that signs each notification (X-Tidb-Backup-Signature: sha256=HMAC).")
    var notifyWebhookSecretFile: String?

    @Option(name: .customLong("ui-addr"), help: "HOST:PORT for the web view (/ui/); empty (the default) to disable.")
    var uiAddr = ""

    @Option(name: .customLong("ui-token-file"), help: "A file holding the token that opens the web view (required with --ui-addr).")
    var uiTokenFile: String?

    func validate() throws {
        if !uiAddr.isEmpty {
            _ = try HostPort(flag: "--ui-addr", uiAddr)
            guard let file = uiTokenFile, let token = try? String(contentsOfFile: file, encoding: .utf8),
                  token.trimmingCharacters(in: .whitespacesAndNewlines).count >= 16 else {
                throw ValidationError("--ui-addr needs --ui-token-file naming a readable file with a token of at least 16 characters")
            }
        }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard qps > 0, burst >= 1 else { throw ValidationError("--kube-api-qps must be > 0 and --kube-api-burst >= 1") }
        for (flag, value) in [("--metrics-addr", metricsAddr), ("--health-addr", healthAddr)] where !value.isEmpty {
            _ = try HostPort(flag: flag, value)
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let logger = Logger(label: "tidb-backup-operator")
        let config: KubeConfig
        do { config = try KubeConfig.resolve(kubeconfig: kubeconfig, context: context) } catch {
            throw ValidationError("\(error)")
        }
        var clientOptions = KubeClient.Options()
        clientOptions.qps = qps
        clientOptions.burst = burst
        let api = try KubeClient(config: config, options: clientOptions, logger: logger)

        let metrics = MetricsRegistry()
        // Libraries that report through swift-metrics land on the same /metrics.
        MetricsSystem.bootstrap(metrics.factory)
        var election: LeaderElector?
        if leaderElect {
            // The pod's name (POD_NAME, from the downward API) stays the same when the container restarts,
            // so a leader restarted after an API outage finds its own name on the lease and leads again at
            // once. Without it, a name of this process alone: two replicas never share one.
            let podName = ProcessInfo.processInfo.environment["POD_NAME"] ?? ""
            let identity = podName.isEmpty ? "\(ProcessInfo.processInfo.hostName)_\(UUID().uuidString.prefix(8).lowercased())" : podName
            let lease = LeaderElector.Configuration(leaseName: leaderElectionID,
                                                    namespace: leaderElectionNamespace ?? namespace ?? config.namespace, identity: identity)
            election = LeaderElector(api: api, configuration: lease, logger: logger)
        }
        let manager = ControllerManager(election: election, metrics: metrics, logger: logger)
        var options = OperatorSetup.Options()
        options.namespace = namespace
        options.workers = workers
        if let selector {
            do { _ = try LabelSelector(parsing: selector) } catch { throw ValidationError("--selector: \(error.description)") }
            options.selector = selector
        }
        options.jobs.backupManagerImage = backupManagerImage
        options.timeouts = try timing.timeouts()
        options.notifications = try notificationSettings(url: notifyWebhook, secretFile: notifyWebhookSecretFile)
        options.webhooks = HTTPWebhookTransport()
        options.pdStores = { PDEtcd(endpoints: $0, timeout: .seconds(2)) }
        let setup = OperatorSetup(api: api, options: options, metrics: metrics, logger: logger)
        setup.install(into: manager)

        var services: [any Service] = [manager]
        services.append(try ProbeServer.application(address: HostPort(flag: "--health-addr", healthAddr), manager: manager, metrics: nil, logger: logger))
        if !metricsAddr.isEmpty {
            services.append(try ProbeServer.application(address: HostPort(flag: "--metrics-addr", metricsAddr), manager: nil, metrics: metrics, logger: logger))
        }
        if !uiAddr.isEmpty, let file = uiTokenFile {
            let token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let store = WebStore(api: api, namespace: namespace, logger: logger)
            let ui = WebUI(store: store, token: token, secureCookie: false)
            services.append(WebViewServer(store: store, ui: ui, address: try HostPort(flag: "--ui-addr", uiAddr), logger: logger))
        }
        logger.info("starting", metadata: ["server": "\(config.server)", "namespace": "\(namespace ?? "<all>")", "leaderElect": "\(leaderElect)"])
        var groupConfiguration = ServiceGroupConfiguration(services: services.map { .init(service: $0) }, gracefulShutdownSignals: [], logger: logger)
        // A stop is bounded: what has not ended after this is cancelled.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(20)
        let group = ServiceGroup(configuration: groupConfiguration)
        // SIGTERM (the kubelet's stop) and SIGINT, however dispositions were inherited (StopSignals).
        StopSignals.install()
        Task.detached {
            guard let signal = await StopSignals.next() else { return }
            logger.info("stopping", metadata: ["signal": "\(signal)"])
            await group.triggerGracefulShutdown()
        }
        try await group.run()
        // A graceful stop: the Events the last reconciles recorded are written before the process exits.
        if await !setup.events.flush(within: .seconds(5)) {
            logger.warning("stopped with Events not yet written", metadata: ["events": "\(setup.events.pending)"])
        }
    }
}

struct HostPort {
    var host: String
    var port: Int
    init(flag: String, _ value: String) throws {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("\(flag) must be HOST:PORT, got \(value)")
        }
        let host = String(value[..<colon])
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }
}

/// `/healthz`, `/readyz` and `/metrics` over plain HTTP.
enum ProbeServer {
    static func application(address: HostPort, manager: ControllerManager?, metrics: MetricsRegistry?, logger: Logger) throws -> some Service {
        let router = Router()
        router.get("healthz") { _, _ in "ok" }
        if let manager {
            router.get("readyz") { _, _ -> Response in
                manager.isReady ? Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "ok")))
                    : Response(status: .serviceUnavailable, body: ResponseBody(byteBuffer: ByteBuffer(string: "informers not synced")))
            }
        }
        if let metrics {
            router.get("metrics") { _, _ -> Response in
                Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                         body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.exposition())))
            }
        }
        return Application(router: router, configuration: .init(address: .hostname(address.host, port: address.port)), logger: logger)
    }
}


/// The web view on its own port (`run --ui-addr`): its list-watches and its HTTP server, as one service.
struct WebViewServer: Service {
    let store: WebStore
    let ui: WebUI
    let address: HostPort
    let logger: Logger

    func run() async throws {
        let ui = self.ui
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            var request = request
            guard WebUI.handles(request.uri.path) else {
                return Response(status: .seeOther, headers: [.location: "/ui/"])
            }
            return await ui.respond(&request)
        }
        let app = Application(responder: responder, configuration: .init(address: .hostname(address.host, port: address.port)), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            group.addTask { try await app.runService() }
            try await group.next()
            group.cancelAll()
        }
    }
}


/// `--notify-webhook` and `--notify-webhook-secret-file`, checked.
func notificationSettings(url: String?, secretFile: String?) throws -> Notifier.Configuration {
    var settings = Notifier.Configuration()
    if let url, !url.isEmpty {
        guard let u = URL(string: url), ["http", "https"].contains(u.scheme ?? ""), u.host != nil else {
            throw ValidationError("--notify-webhook must be an http:// or https:// URL")
        }
        settings.url = url
    }
    if let secretFile {
        guard let key = try? String(contentsOfFile: secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !key.isEmpty else {
            throw ValidationError("--notify-webhook-secret-file \(secretFile) cannot be read or is empty")
        }
        settings.signingKey = key
    }
    return settings
}
