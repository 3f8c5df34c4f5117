import Foundation
import KubeAPI
import KubeClient
import KubeModel
import KubeTesting
import StandaloneServer
import StandaloneTesting
import Testing

/// The implementations of `KubeAPI` the contract is checked against.
enum Implementation: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case inMemory, sqliteStore, httpClient, realServer
    var testDescription: String { rawValue }

    /// Whether the test can make its watch history expire (a real server compacts on its own schedule).
    var canExpireHistory: Bool { self != .realServer }

    /// The real API server named by `KUBE_CONTRACT_KUBECONFIG`, when set.
    static var available: [Implementation] {
        ProcessInfo.processInfo.environment["KUBE_CONTRACT_KUBECONFIG"].map { $0.isEmpty ? [] : [.realServer] }
            .map { [.inMemory, .sqliteStore, .httpClient] + $0 } ?? [.inMemory, .sqliteStore, .httpClient]
    }
}

/// One implementation, ready for a test: a fresh namespace in it, a way to make its watch history
/// expire (when the implementation can), and the cleanup.
final class ContractFixture: @unchecked Sendable {
    let api: any KubeAPI
    let namespace: String
    let expireHistory: (@Sendable () async throws -> Void)?
    private let teardown: @Sendable () async -> Void

    init(api: any KubeAPI, namespace: String, expireHistory: (@Sendable () async throws -> Void)?, teardown: @escaping @Sendable () async -> Void) {
        self.api = api
        self.namespace = namespace
        self.expireHistory = expireHistory
        self.teardown = teardown
    }

    func close() async { await teardown() }

    static let historyLimit = 60

    static func temporaryDirectory() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("contract-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func make(_ implementation: Implementation) async throws -> ContractFixture {
        let namespace = "contract-" + UUID().uuidString.prefix(8).lowercased()
        switch implementation {
        case .inMemory:
            let api = InMemoryKubeAPI(historyLimit: historyLimit)
            return ContractFixture(api: api, namespace: namespace, expireHistory: { try await churn(api, namespace) }, teardown: {})
        case .sqliteStore:
            let dir = temporaryDirectory()
            let core = try APIServerCore.product(store: ObjectStore(path: dir + "/store.sqlite", historyLimit: historyLimit))
            let api = StoreKubeAPI(core: core)
            _ = try await api.create(.namespaces, namespace: nil, object: ["metadata": ["name": .string(namespace)]])
            return ContractFixture(api: api, namespace: namespace, expireHistory: { try await churn(api, namespace) },
                                   teardown: { try? FileManager.default.removeItem(atPath: dir) })
        case .httpClient:
            let dir = temporaryDirectory()
            var config = StandaloneAPIServer.Configuration.product(dataDirectory: DataDirectory(dir), port: 0)
            config.watchHistory = historyLimit
            config.bookmarkInterval = .seconds(1)
            let server = try StandaloneAPIServer(configuration: config)
            let (ports, continuation) = AsyncStream<Int>.makeStream()
            let task = Task { try await server.run { port in continuation.yield(port) } }
            var iterator = ports.makeAsyncIterator()
            guard await iterator.next() != nil else { throw KubeConfig.ConfigError("standalone server did not start") }
            let client = try KubeClient(config: KubeConfig.load(path: DataDirectory(dir).kubeconfig))
            _ = try await client.create(.namespaces, namespace: nil, object: ["metadata": ["name": .string(namespace)]])
            return ContractFixture(api: client, namespace: namespace, expireHistory: { try await churn(client, namespace) },
                                   teardown: {
                                       task.cancel()
                                       _ = await task.result
                                       try? FileManager.default.removeItem(atPath: dir)
                                   })
        case .realServer:
            let path = ProcessInfo.processInfo.environment["KUBE_CONTRACT_KUBECONFIG"] ?? ""
            let client = try KubeClient(config: KubeConfig.load(path: path))
            _ = try await client.create(.namespaces, namespace: nil, object: ["metadata": ["name": .string(namespace)]])
            return ContractFixture(api: client, namespace: namespace, expireHistory: nil, teardown: {
                _ = try? await client.delete(.namespaces, namespace: nil, name: namespace)
            })
        }
    }

    /// Writes more changes than the kept history holds.
    static func churn(_ api: any KubeAPI, _ namespace: String) async throws {
        var object: JSONValue = ["metadata": ["name": "churn"], "data": ["n": "0"]]
        object = try await api.create(.configMaps, namespace: namespace, object: object)
        for i in 1...(historyLimit * 2) {
            object["data"] = ["n": .string(String(i))]
            object = try await api.update(.configMaps, namespace: namespace, object: object)
        }
    }
}

/// Runs `body` against a fresh fixture and always cleans up.
func withFixture(_ implementation: Implementation, _ body: (ContractFixture) async throws -> Void) async throws {
    let fixture = try await ContractFixture.make(implementation)
    do {
        try await body(fixture)
    } catch {
        await fixture.close()
        throw error
    }
    await fixture.close()
}
