import Foundation
import AsyncHTTPClient
import Hummingbird
import KubeAPI
import KubeClient
import KubeModel
import StandaloneServer
import StandaloneTesting
import Synchronization
import Testing

func temporaryDirectory(_ prefix: String) -> String {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

@Suite struct KubeConfigTests {
    static let kubeconfig = """
        apiVersion: v1
        kind: Config
        current-context: dev
        clusters:
        - name: c1
          cluster: {server: "https://10.0.0.1:6443/", certificate-authority: ca.pem}
        - name: c2
          cluster: {server: "https://10.0.0.2:6443", insecure-skip-tls-verify: true}
        contexts:
        - name: dev
          context: {cluster: c1, user: u-token, namespace: backups}
        - name: prod
          context: {cluster: c2, user: u-exec}
        - name: files
          context: {cluster: c1, user: u-file}
        - name: broken
          context: {cluster: nope, user: u-token}
        users:
        - name: u-token
          user: {token: abc}
        - name: u-file
          user: {tokenFile: tok}
        - name: u-exec
          user:
            exec:
              apiVersion: client.authentication.k8s.io/v1beta1
              command: aws
              args: [eks, get-token, --cluster-name, prod]
              env: [{name: AWS_PROFILE, value: ops}]
        """

    func write() throws -> String {
        let dir = temporaryDirectory("kubeconfig")
        try Self.kubeconfig.write(toFile: dir + "/config", atomically: true, encoding: .utf8)
        try "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".write(toFile: dir + "/ca.pem", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func contextsClustersAndUsersResolve() throws {
        let dir = try write()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dev = try KubeConfig.load(path: dir + "/config")
        #expect(dev.server == "https://10.0.0.1:6443")
        #expect(dev.namespace == "backups")
        #expect(dev.certificateAuthorityPEM?.contains("BEGIN CERTIFICATE") == true, "relative CA file read next to the kubeconfig")
        guard case .token(let t) = dev.credentials else { Issue.record("token expected"); return }
        #expect(t == "abc")

        let prod = try KubeConfig.load(path: dir + "/config", context: "prod")
        #expect(prod.insecureSkipTLSVerify && prod.namespace == "default")
        guard case .exec(let exec) = prod.credentials else { Issue.record("exec expected"); return }
        #expect(exec.command == "aws" && exec.args == ["eks", "get-token", "--cluster-name", "prod"])
        #expect(exec.env == ["AWS_PROFILE": "ops"] && exec.apiVersion == "client.authentication.k8s.io/v1beta1")

        let files = try KubeConfig.load(path: dir + "/config", context: "files")
        guard case .tokenFile(let path) = files.credentials else { Issue.record("token file expected"); return }
        #expect(path == dir + "/tok")
    }

    @Test func errorsNameTheProblem() throws {
        let dir = try write()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: KubeConfig.ConfigError.self) { try KubeConfig.load(path: dir + "/config", context: "missing") }
        do { _ = try KubeConfig.load(path: dir + "/config", context: "broken") } catch {
            #expect("\(error)".contains("cluster \"nope\""))
        }
        do { _ = try KubeConfig.load(path: dir + "/nothing") } catch {
            #expect("\(error)".contains("cannot read kubeconfig"))
        }
    }

    @Test func inClusterUsesTheServiceAccountFiles() throws {
        let dir = temporaryDirectory("sa")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "t0k3n\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        try "prod-ns".write(toFile: dir + "/namespace", atomically: true, encoding: .utf8)
        let config = try KubeConfig.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"],
                                              directory: dir)
        #expect(config.server == "https://[fd00::1]:443")
        #expect(config.namespace == "prod-ns")
        #expect(throws: KubeConfig.ConfigError.self) { try KubeConfig.inCluster(environment: [:], directory: dir) }
    }
}

/// The client against the standalone server, authenticating in each way a kubeconfig allows.
@Suite struct KubeClientAuthTests {
    static func withServer(_ body: (String, DataDirectory) async throws -> Void) async throws {
        let dir = temporaryDirectory("client")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try StandaloneAPIServer(configuration: .product(dataDirectory: DataDirectory(dir), port: 0))
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run { continuation.yield($0) } }
        var it = ports.makeAsyncIterator()
        guard let port = await it.next() else { throw KubeConfig.ConfigError("no port") }
        do { try await body("https://127.0.0.1:\(port)", DataDirectory(dir)) } catch {
            task.cancel()
            _ = await task.result
            throw error
        }
        task.cancel()
        _ = await task.result
    }

    @Test func anExecPluginsTokenIsUsedAndAWrongTokenIsRefused() async throws {
        try await Self.withServer { url, data in
            let base = try KubeConfig.load(path: data.kubeconfig)
            let token = try data.token()
            // A credential plugin that prints the ExecCredential, as `aws eks get-token` does.
            let plugin = (data.kubeconfig as NSString).deletingLastPathComponent + "/plugin.sh"
            try """
                #!/bin/sh
                test -n "$KUBERNETES_EXEC_INFO" || exit 3
                printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$PLUGIN_TOKEN"
                """.write(toFile: plugin, atomically: true, encoding: .utf8)
            chmod(plugin, 0o755)
            var config = base
            config.credentials = .exec(.init(command: plugin, env: ["PLUGIN_TOKEN": token]))
            let client = try KubeClient(config: config)
            let list = try await client.list(.namespaces, namespace: nil)
            #expect(list.items.contains { $0.objectKey.name == "default" })

            var wrong = base
            wrong.credentials = .token("not-the-token")
            do {
                _ = try await KubeClient(config: wrong).list(.namespaces, namespace: nil)
                Issue.record("a wrong token must be refused")
            } catch let e as KubeAPIError {
                #expect(e.code == 401)
                #expect(!e.description.contains("not-the-token"))
            }

            // A token file is read (and re-read after a 401).
            let tokenFile = (data.kubeconfig as NSString).deletingLastPathComponent + "/token-copy"
            try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
            var fromFile = base
            fromFile.credentials = .tokenFile(tokenFile)
            _ = try await KubeClient(config: fromFile).get(.namespaces, namespace: nil, name: "default")
            #expect(url.hasPrefix("https://"))
        }
    }
}

/// Throttling and server errors against a tiny HTTP server that answers 429 / 503 first.
@Suite struct KubeClientRetryTests {
    @Test func throttlingIsRetriedHonouringRetryAfterAndErrorsCarryTheStatus() async throws {
        let hits = Mutex<[String: Int]>([:])
        let router = Router()
        router.get("api/v1/namespaces/{name}") { _, context -> Response in
            let name = context.parameters.get("name") ?? ""
            let n = hits.withLock { h -> Int in h[name, default: 0] += 1; return h[name]! }
            switch (name, n) {
            case ("throttled", 1):
                return Response(status: .tooManyRequests, headers: [.retryAfter: "1", .contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429,"message":"slow down"}"#)))
            case ("flaky", 1):
                return Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "try again")))
            case ("missing", _):
                return Response(status: .notFound, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"namespaces \"missing\" not found"}"#)))
            default:
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"\#(name)"}}"#)))
            }
        }
        let (port, task) = try await serving(router)
        let client = try KubeClient(config: KubeConfig(server: "http://127.0.0.1:\(port)"))
        let started = Date()
        let ns = try await client.get(.namespaces, namespace: nil, name: "throttled")
        #expect(ns.objectKey.name == "throttled")
        #expect(Date().timeIntervalSince(started) >= 0.9, "waited for Retry-After")
        _ = try await client.get(.namespaces, namespace: nil, name: "flaky")
        #expect(hits.withLock { $0["throttled"] } == 2 && hits.withLock { $0["flaky"] } == 2)
        do {
            _ = try await client.get(.namespaces, namespace: nil, name: "missing")
            Issue.record("404 expected")
        } catch let e as KubeAPIError {
            #expect(e.isNotFound && e.message == "namespaces \"missing\" not found")
        }
        #expect(hits.withLock { $0["missing"] } == 1, "a 404 is not retried")
        task.cancel()
        _ = await task.result
    }
}

@Suite struct KubeClientWatchTests {
    @Test("a watch asks for bookmarks and a timeoutSeconds drawn from 5-10 minutes, and an idle watch ends quietly even with a client whose read timeout is shorter")
    func idleWatchesEndQuietly() async throws {
        let queries = Mutex<[String]>([])
        let router = Router()
        router.get("api/v1/namespaces") { request, _ -> Response in
            queries.withLock { $0.append(request.uri.query ?? "") }
            // No event and no bookmark for 3 s, then the server ends the watch as at its timeoutSeconds.
            // The writer must be finished even when the handler is cancelled (a debug build traps otherwise).
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody { writer in
                try? await Task.sleep(for: .seconds(3))
                try await writer.finish(nil)
            })
        }
        let (port, task) = try await serving(router)
        defer { task.cancel() }
        // A caller's client with a 1 s read timeout, as AsyncHTTPClient's shared one has 90 s.
        let impatient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup,
                                   configuration: HTTPClient.Configuration(timeout: .init(connect: .seconds(5), read: .seconds(1))))
        var events = 0
        do {
            let client = try KubeClient(config: KubeConfig(server: "http://127.0.0.1:\(port)"), httpClient: impatient)
            for try await _ in try await client.watch(.namespaces, namespace: nil, options: WatchOptions()) { events += 1 }
            // Four more, read to their end, so that no response is in flight when the server stops.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask { for try await _ in try await client.watch(.namespaces, namespace: nil, options: WatchOptions()) {} }
                }
                try await group.waitForAll()
            }
        } catch {
            Issue.record("the idle watch failed: \(error)")
        }
        try await impatient.shutdown()
        #expect(events == 0)
        let seen = queries.withLock { $0 }
        #expect(seen.count == 5)
        #expect(seen.allSatisfy { $0.contains("allowWatchBookmarks=true") && $0.contains("watch=true") }, "\(seen)")
        let timeouts = seen.compactMap { q in q.split(separator: "&").first { $0.hasPrefix("timeoutSeconds=") }.flatMap { Int($0.dropFirst(15)) } }
        #expect(timeouts.count == 5 && timeouts.allSatisfy { (300...600).contains($0) }, "\(timeouts)")
        #expect(Set(timeouts).count > 1, "drawn at random: \(timeouts)")
    }
}

/// A tiny HTTP server on 127.0.0.1 for `router`: its port, and the task to cancel when done.
func serving(_ router: Router<BasicRequestContext>) async throws -> (port: Int, task: Task<Void, any Error>) {
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                          onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) })
    let task = Task { try await app.runService() }
    var it = ports.makeAsyncIterator()
    return (try #require(await it.next()), task)
}
