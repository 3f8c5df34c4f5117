import Foundation

/// What the operator reads of PD's embedded etcd (the log backup tracker): exact keys and prefixes.
/// The executables wire an implementation in (`PDEtcd`, over etcd's JSON gateway); policy imports no
/// HTTP, and a test can hand in its own.
public protocol PDKeyValueStore: Sendable {
    /// The value of exactly `key`, or nil when it does not exist.
    func get(_ key: String) async throws -> [UInt8]?
    /// Every key under `prefix` with its value, in key order.
    func list(prefix: String) async throws -> [(key: String, value: [UInt8])]
}

/// A PD key-value store for PD's client URLs (`http://host:2379`, …).
public typealias PDStoreFactory = @Sendable (_ endpoints: [String]) -> any PDKeyValueStore

/// How a webhook notification is sent: one POST, answering the HTTP status (or throwing when nothing
/// answered). The executables wire the HTTP client in.
public protocol WebhookTransport: Sendable {
    func post(_ body: Data, to url: String, headers: [(String, String)], timeout: Duration) async throws -> Int
}

/// Where nothing was wired in: every use fails, saying so (a test that needs PD or webhooks wires its own).
public struct NotWired: PDKeyValueStore, WebhookTransport {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }
    let what: String
    public init(_ what: String) { self.what = what }
    public func get(_ key: String) async throws -> [UInt8]? { throw Failure(description: "no \(what) was wired into this process") }
    public func list(prefix: String) async throws -> [(key: String, value: [UInt8])] { throw Failure(description: "no \(what) was wired into this process") }
    public func post(_ body: Data, to url: String, headers: [(String, String)], timeout: Duration) async throws -> Int {
        throw Failure(description: "no \(what) was wired into this process")
    }
}
