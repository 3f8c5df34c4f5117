import AsyncHTTPClient
import BackupOperator
import Foundation
import KubeModel
import NIOCore
import NIOFoundationCompat

/// Reads keys of PD's embedded etcd through its v3 JSON gateway (`POST /v3/kv/range`), which every PD
/// serves on its client URL: no gRPC stack is needed for a handful of reads a minute.
public struct PDEtcd: PDKeyValueStore {
    /// `http://host:2379`, … (PD's client URLs); the first that answers is used.
    public var endpoints: [String]
    public var http: HTTPClient
    public var timeout: TimeAmount

    public init(endpoints: [String], http: HTTPClient = .shared, timeout: TimeAmount = .seconds(5)) {
        self.endpoints = endpoints.map { $0.hasPrefix("http://") || $0.hasPrefix("https://") ? $0 : "http://\($0)" }
            .map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.http = http
        self.timeout = timeout
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The value of exactly `key` (not a prefix), or nil when it does not exist.
    public func get(_ key: String) async throws -> [UInt8]? {
        try await range(["key": .string(Data(key.utf8).base64EncodedString())]).first?.value
    }

    /// Every key under `prefix` with its value, in key order.
    public func list(prefix: String) async throws -> [(key: String, value: [UInt8])] {
        var end = Array(prefix.utf8)
        // The range end of a prefix: its last byte that is not 0xff, plus one.
        while let last = end.last, last == 0xFF { end.removeLast() }
        if !end.isEmpty { end[end.count - 1] += 1 }
        return try await range(["key": .string(Data(prefix.utf8).base64EncodedString()),
                                "range_end": .string(Data(end.isEmpty ? [0] : end).base64EncodedString())])
    }

    func range(_ body: JSONValue) async throws -> [(key: String, value: [UInt8])] {
        var problems: [String] = []
        for endpoint in endpoints {
            var request = HTTPClientRequest(url: endpoint + "/v3/kv/range")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.bytes()))
            do {
                let response = try await http.execute(request, timeout: timeout)
                let data = Data(buffer: try await response.body.collect(upTo: 16 << 20))
                guard response.status == .ok else {
                    problems.append("\(endpoint): HTTP \(response.status.code)")
                    continue
                }
                let answer = try JSONParser.parse(data).value
                return try (answer["kvs"]?.arrayValue ?? []).map { kv in
                    let key = Data(base64Encoded: kv["key"]?.stringValue ?? "").map { String(decoding: $0, as: UTF8.self) } ?? ""
                    // etcd's gateway leaves out an empty value.
                    guard let value = kv["value"]?.stringValue else { return (key, []) }
                    guard let bytes = Data(base64Encoded: value) else { throw Failure(description: "\(endpoint): the value of \(key) is not base64") }
                    return (key, Array(bytes))
                }
            } catch let e as Failure {
                throw e
            } catch {
                problems.append("\(endpoint): \(error)")
            }
        }
        throw Failure(description: "PD's etcd cannot be read (\(problems.joined(separator: "; ")))")
    }
}
