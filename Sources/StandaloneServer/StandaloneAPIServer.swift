import Foundation
import Hummingbird
import ServiceLifecycle
import HummingbirdTLS
import KubeModel
import Logging
import NIOCore

/// The standalone control plane's API server: Kubernetes REST over TLS with a bearer token.
public struct StandaloneAPIServer: Sendable {
    public struct Configuration: Sendable {
        public var dataDirectory: DataDirectory
        public var host: String
        public var port: Int
        public var bookmarkInterval: Duration = .seconds(60)
        /// The operator's metrics in the Prometheus text format, served at `/metrics` (behind the token).
        public var metrics: (@Sendable () -> String)?
        /// Serves `/ui` and everything under it (the web view, which does its own access check).
        public var webView: (@Sendable (inout Request) async -> Response)?
        public var jobs = JobRunner.Configuration()
        /// Changes kept for resuming watches; older resource versions get 410 Gone.
        public var watchHistory = 20_000
        /// The CustomResourceDefinitions served beside the built-in kinds, and what their CEL rules mean.
        public var customResources: [JSONValue]
        public var rules: Admission.RuleEvaluators
        public init(dataDirectory: DataDirectory, host: String = "127.0.0.1", port: Int = StandaloneAPIServer.defaultPort,
                    customResources: [JSONValue], rules: Admission.RuleEvaluators = [:]) {
            self.dataDirectory = dataDirectory
            self.host = host
            self.port = port
            self.customResources = customResources
            self.rules = rules
        }
    }

    /// The documented default port of `tidb-backup-operator standalone`.
    public static let defaultPort = 16443

    public let core: APIServerCore
    public var configuration: Configuration

    public init(configuration: Configuration) throws {
        try configuration.dataDirectory.create()
        self.configuration = configuration
        core = try APIServerCore(store: ObjectStore(path: configuration.dataDirectory.database, historyLimit: configuration.watchHistory),
                                 registry: ResourceRegistry(customResources: configuration.customResources), rules: configuration.rules)
    }

    /// Serves until the task is cancelled. `onListening` receives the bound port (useful with port 0)
    /// after the kubeconfig has been written.
    public func run(logger: Logger = Logger(label: "standalone-api"), onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let dir = configuration.dataDirectory
        let token = try dir.token()
        let (certPEM, keyPEM) = try dir.tlsMaterial(hosts: [configuration.host])
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(certPEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)))
        tls.applicationProtocols = ["http/1.1"]
        let host = configuration.host
        let displayHost = host == "0.0.0.0" ? "127.0.0.1" : host
        let handler = HTTPHandler(core: core, token: token, presentation: Presentation(registry: core.registry, serverAddress: "\(displayHost):\(configuration.port)"),
                                  bookmarkInterval: configuration.bookmarkInterval, metrics: configuration.metrics,
                                  webView: configuration.webView)
        let responder = CallbackResponder<BasicRequestContext> { request, _ in await handler.respond(request) }
        let app = Application(
            responder: responder,
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(host, port: configuration.port), serverName: "tidb-backup-operator"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                do {
                    try dir.writeKubeconfig(server: "https://\(displayHost):\(port)", token: token)
                } catch {
                    logger.error("cannot write kubeconfig", metadata: ["error": "\(error)"])
                }
                await onListening(port)
            },
            logger: logger)
        var jobs = configuration.jobs
        if jobs.baseEnvironment["KUBECONFIG"] == nil {
            jobs.baseEnvironment["KUBECONFIG"] = URL(fileURLWithPath: dir.kubeconfig).standardizedFileURL.path
        }
        let runner = JobRunner(core: core, workRoot: dir.jobsDirectory, configuration: jobs)
        // Deletions a crash interrupted (a namespace half emptied, dependents of a deleted owner) go on.
        try core.collectGarbage()
        defer { core.hub.finishAll() }
        let core = self.core
        try await withThrowingTaskGroup(of: Void.self) { group in
            let address = "\(host):\(configuration.port)"
            group.addTask {
                do {
                    try await Self.serve(app, hub: core.hub, logger: logger)
                } catch let error as IOError where error.errnoCode == EADDRINUSE {
                    throw AddressInUse(address: address)
                } catch where "\(error)".contains("Address already in use") {
                    // The bind error as the service group hands it on, wrapped.
                    throw AddressInUse(address: address)
                }
            }
            group.addTask { try await runner.run() }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Runs the HTTP server until this task is cancelled, then stops it gracefully: watches end, the
    /// listening socket closes, connections already accepted are served to the end. Cancelling the
    /// server abruptly instead drops connections it accepted meanwhile without finishing them, which
    /// trips a precondition in NIO (`Deinited NIOAsyncWriter without calling finish()`) and kills the
    /// process. After 5 s the server is cancelled anyway.
    static func serve(_ app: some ApplicationProtocol & Service, hub: WatchHub, logger: Logger) async throws {
        let services = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let serving = Task { try await services.run() }
        try await withTaskCancellationHandler {
            try await serving.value
        } onCancel: {
            hub.finishAll()
            Task {
                await services.triggerGracefulShutdown()
                try? await Task.sleep(for: .seconds(5))
                serving.cancel()
            }
        }
    }
}

/// The address the server was to listen on is taken, most likely by another server.
public struct AddressInUse: Error, CustomStringConvertible, Sendable {
    public var address: String
    public var description: String {
        "cannot listen on \(address): the address is in use (another tidb-backup-operator standalone may be running there); stop it, or give another --listen"
    }
}
