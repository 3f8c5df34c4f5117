import BRModel
import Foundation
import StandaloneServer

/// The standalone server as the product starts it (its CRDs and their rules), for tests that make
/// one in-process.
extension ResourceRegistry {
    public static let product: ResourceRegistry = {
        do { return try ResourceRegistry(customResources: BRKinds.standaloneCRDs) } catch { fatalError("the product's CRDs do not read: \(error)") }
    }()
}

extension APIServerCore {
    /// A core over `store` serving the product's kinds.
    public static func product(store: ObjectStore, clock: @escaping @Sendable () -> Date = Date.init) throws -> APIServerCore {
        try APIServerCore(store: store, registry: .product, rules: BRKinds.ruleEvaluators, clock: clock)
    }
}

extension StandaloneAPIServer.Configuration {
    /// A configuration serving the product's kinds.
    public static func product(dataDirectory: DataDirectory, host: String = "127.0.0.1", port: Int) -> Self {
        Self(dataDirectory: dataDirectory, host: host, port: port, customResources: BRKinds.standaloneCRDs, rules: BRKinds.ruleEvaluators)
    }
}
