import AsyncHTTPClient
import Foundation
import KubeModel
import NIOCore
import NIOFoundationCompat

/// Reads keys of PD's embedded etcd through its v3 JSON gateway (`POST /v3/kv/range`), which every PD
/// serves on its client URL: no gRPC stack is needed for a handful of reads a minute.
public struct PDEtcd: Sendable {
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
        let body: JSONValue = ["key": .string(Data(key.utf8).base64EncodedString())]
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
                guard let first = answer["kvs"]?.arrayValue?.first else { return nil }
                guard let value = first["value"]?.stringValue else { return [] }
                guard let bytes = Data(base64Encoded: value) else { throw Failure(description: "\(endpoint): the value of \(key) is not base64") }
                return Array(bytes)
            } catch let e as Failure {
                throw e
            } catch {
                problems.append("\(endpoint): \(error)")
            }
        }
        throw Failure(description: "PD's etcd cannot be read (\(problems.joined(separator: "; ")))")
    }
}
