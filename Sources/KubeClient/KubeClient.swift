import AsyncHTTPClient
import Foundation
import KubeAPI
import KubeModel
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// `KubeAPI` over HTTPS: a real API server or the standalone one. Client-side rate limiting, retries
/// with backoff for throttling and server errors (honouring `Retry-After`), a fresh token after a 401,
/// and watches as an `AsyncSequence` of events.
public final class KubeClient: KubeAPI {
    public struct Options: Sendable {
        public var qps: Double = 50
        public var burst: Int = 100
        /// Attempts for a request that gets 429 (any verb) or 5xx / no answer (reads only).
        public var maxAttempts = 5
        public var requestTimeout: TimeAmount = .seconds(60)
        /// A watch's `timeoutSeconds` when the caller gives none, drawn from this range for each watch
        /// (client-go draws from 5-10 minutes, so that many watchers do not all come back at once); the
        /// server ends the watch then and the informer resumes from its last resource version.
        public var watchTimeoutSeconds: ClosedRange<Int> = 300...600
        public var userAgent = "tidb-backup-operator"
        public init() {}
    }

    public let config: KubeConfig
    let options: Options
    let http: HTTPClient
    let tls: TLSConfiguration
    let auth: AuthorizationSource
    let limiter: RateLimiter
    let logger: Logger

    public init(config: KubeConfig, options: Options = Options(), httpClient: HTTPClient = .shared,
                logger: Logger = Logger(label: "kube-client")) throws {
        self.config = config
        self.options = options
        self.http = httpClient
        self.logger = logger
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = config.certificateAuthorityPEM {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca.utf8)))
            }
            if config.insecureSkipTLSVerify { tls.certificateVerification = .none }
            if let cert = config.clientCertificatePEM, let key = config.clientKeyPEM {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(cert.utf8)).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.utf8), format: .pem))
            }
        } catch {
            throw KubeConfig.ConfigError("invalid TLS material for \(config.server): \(error)")
        }
        self.tls = tls
        auth = AuthorizationSource(config.credentials)
        limiter = RateLimiter(qps: options.qps, burst: options.burst)
    }

    // MARK: KubeAPI

    public func get(_ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue {
        try await object(send(.GET, kind.path(namespace: namespace, name: name)))
    }

    public func list(_ kind: ResourceKind, namespace: String?, options: ListOptions) async throws -> ObjectList {
        var query: [(String, String)] = []
        if let s = options.labelSelector, !s.isEmpty { query.append(("labelSelector", s)) }
        if let s = options.fieldSelector, !s.isEmpty { query.append(("fieldSelector", s)) }
        if let l = options.limit, l > 0 { query.append(("limit", String(l))) }
        if let c = options.continueToken, !c.isEmpty { query.append(("continue", c)) }
        let list = try await object(send(.GET, kind.path(namespace: namespace), query: query))
        let items = (list["items"]?.arrayValue ?? []).map { item -> JSONValue in
            // Items of a list carry no apiVersion/kind; put them back so typed decoding sees whole objects.
            var item = item
            if item["apiVersion"] == nil { item["apiVersion"] = .string(kind.apiVersion) }
            if item["kind"] == nil { item["kind"] = .string(kind.kind) }
            return item
        }
        let next = list.value(at: ["metadata", "continue"])?.stringValue
        return ObjectList(items: items, resourceVersion: list.value(at: ["metadata", "resourceVersion"])?.stringValue ?? "",
                          continueToken: next?.isEmpty == false ? next : nil)
    }

    public func watch(_ kind: ResourceKind, namespace: String?, options: WatchOptions) async throws -> WatchStream {
        var query: [(String, String)] = [("watch", "true")]
        if let s = options.labelSelector, !s.isEmpty { query.append(("labelSelector", s)) }
        if let s = options.fieldSelector, !s.isEmpty { query.append(("fieldSelector", s)) }
        if let rv = options.resourceVersion, !rv.isEmpty { query.append(("resourceVersion", rv)) }
        if options.allowBookmarks { query.append(("allowWatchBookmarks", "true")) }
        let timeout = options.timeoutSeconds ?? Int.random(in: self.options.watchTimeoutSeconds)
        query.append(("timeoutSeconds", String(timeout)))
        // An idle watch may see no byte for minutes (bookmarks are not guaranteed), so it goes through a
        // client without a read timeout; the deadline past `timeoutSeconds` still bounds it.
        let response = try await execute(.GET, kind.path(namespace: namespace), query: query, body: nil,
                                         contentType: nil, timeout: .seconds(Int64(timeout) + 30), client: Self.watchClient)
        guard (200..<300).contains(Int(response.status.code)) else {
            let body = try await response.body.collect(upTo: 1 << 20)
            throw KubeAPIError(code: Int(response.status.code), body: Data(buffer: body), retryAfter: Self.retryAfter(response.headers))
        }
        let (stream, continuation) = WatchStream.makeStream()
        let reader = Task {
            var pending = [UInt8]()
            do {
                for try await chunk in response.body {
                    pending += chunk.readableBytesView
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = Data(pending[..<newline])
                        pending.removeSubrange(...newline)
                        if line.isEmpty { continue }
                        try Self.deliver(line, to: continuation)
                    }
                }
                if !pending.isEmpty { try Self.deliver(Data(pending), to: continuation) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in reader.cancel() }
        return stream
    }

    static func deliver(_ line: Data, to continuation: WatchStream.Continuation) throws {
        let frame: JSONValue
        do { frame = try JSONParser.parse(line).value } catch {
            throw KubeAPIError(code: 500, reason: "InternalError", message: "undecodable watch event: \(error)")
        }
        let type = frame["type"]?.stringValue ?? ""
        let object = frame["object"] ?? .null
        if type == "ERROR" { throw KubeAPIError(status: object) }
        guard let kind = WatchEvent.Kind(rawValue: type) else {
            throw KubeAPIError(code: 500, reason: "InternalError", message: "unknown watch event type \"\(type)\"")
        }
        continuation.yield(WatchEvent(kind, object))
    }

    public func create(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> JSONValue {
        try await self.object(send(.POST, kind.path(namespace: namespace), body: object, idempotent: false))
    }

    public func update(_ kind: ResourceKind, namespace: String?, object: JSONValue, subresource: String?) async throws -> JSONValue {
        let name = object.value(at: ["metadata", "name"])?.stringValue ?? ""
        return try await self.object(send(.PUT, kind.path(namespace: namespace, name: name, subresource: subresource), body: object,
                                          idempotent: false))
    }

    public func patch(_ kind: ResourceKind, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> JSONValue {
        try await object(send(.PATCH, kind.path(namespace: namespace, name: name, subresource: subresource), body: patch.body,
                              contentType: patch.kind.rawValue, idempotent: false))
    }

    public func delete(_ kind: ResourceKind, namespace: String?, name: String, options: DeleteOptions) async throws -> JSONValue? {
        var body: JSONValue = ["kind": "DeleteOptions", "apiVersion": "v1"]
        if let p = options.propagationPolicy { body["propagationPolicy"] = .string(p.rawValue) }
        var preconditions = JSONObject()
        if let uid = options.preconditionUID { preconditions["uid"] = .string(uid) }
        if let rv = options.preconditionResourceVersion { preconditions["resourceVersion"] = .string(rv) }
        if !preconditions.isEmpty { body["preconditions"] = .object(preconditions) }
        let answer = try await object(send(.DELETE, kind.path(namespace: namespace, name: name), body: body, idempotent: false))
        // A Status means the object is gone; the object itself means finalizers still hold it.
        if answer["kind"]?.stringValue == "Status" { return nil }
        return answer.value(at: ["metadata", "deletionTimestamp"]) == nil && answer["kind"]?.stringValue == kind.kind
            && (answer.value(at: ["metadata", "finalizers"])?.arrayValue ?? []).isEmpty ? nil : answer
    }

    // MARK: Transport

    func object(_ data: Data) throws -> JSONValue {
        do { return try JSONParser.parse(data).value } catch {
            throw KubeAPIError(code: 500, reason: "InternalError", message: "undecodable response from \(config.server): \(error)")
        }
    }

    /// Percent-encodes a query component: only RFC 3986 unreserved characters stay as they are.
    static func encode(_ s: String) -> String {
        var out = ""
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    static func retryAfter(_ headers: HTTPHeaders) -> Int? {
        headers.first(name: "Retry-After").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// The HTTP client of watches: no read timeout (AsyncHTTPClient's shared client has 90 s, which ends
    /// an idle watch with `readTimeout`). Lives as long as the process.
    static let watchClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup,
                                        configuration: HTTPClient.Configuration(timeout: .init(connect: .seconds(10), read: nil)))

    func execute(_ method: HTTPMethod, _ path: String, query: [(String, String)], body: JSONValue?, contentType: String?,
                 timeout: TimeAmount, client: HTTPClient? = nil) async throws -> HTTPClientResponse {
        var url = config.server + path
        if !query.isEmpty { url += "?" + query.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&") }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.tlsConfiguration = tls
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: options.userAgent)
        if let header = try await auth.header() { request.headers.add(name: "Authorization", value: header) }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.data()))
        }
        await limiter.acquire()
        do {
            return try await (client ?? http).execute(request, timeout: timeout)
        } catch {
            throw KubeAPIError(code: 503, reason: "ServiceUnavailable", message: "cannot reach \(config.server): \(error)")
        }
    }

    func send(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil,
              contentType: String? = nil, idempotent: Bool = true) async throws -> Data {
        var attempt = 0
        var refreshedToken = false
        while true {
            attempt += 1
            let response: HTTPClientResponse
            do {
                response = try await execute(method, path, query: query, body: body, contentType: contentType,
                                             timeout: options.requestTimeout)
            } catch let error as KubeAPIError {
                if idempotent && attempt < options.maxAttempts {
                    try await Task.sleep(for: Self.backoff(attempt))
                    continue
                }
                throw error
            }
            let code = Int(response.status.code)
            let data = Data(buffer: try await response.body.collect(upTo: 512 << 20))
            if (200..<300).contains(code) { return data }
            if code == 401, !refreshedToken, await auth.canRefresh {
                refreshedToken = true
                await auth.invalidate()
                continue
            }
            let error = KubeAPIError(code: code, body: data, retryAfter: Self.retryAfter(response.headers))
            if attempt < options.maxAttempts && (code == 429 || (code >= 500 && idempotent)) {
                let delay = error.retryAfterSeconds.map { Duration.seconds(min($0, 30)) } ?? Self.backoff(attempt)
                logger.debug("retrying \(method) \(path) after \(code)", metadata: ["attempt": "\(attempt)"])
                try await Task.sleep(for: delay)
                continue
            }
            throw error
        }
    }

    static func backoff(_ attempt: Int) -> Duration {
        .milliseconds(min(200 << min(attempt - 1, 5), 5_000))
    }
}

extension KubeClient: PodLogSource {
    public func podLog(namespace: String, name: String, tailLines: Int) async throws -> String {
        let data = try await send(.GET, "/api/v1/namespaces/\(namespace)/pods/\(name)/log", query: [("tailLines", String(tailLines))])
        return String(decoding: data, as: UTF8.self)
    }
}
