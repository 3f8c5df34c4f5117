import AsyncHTTPClient
import Foundation
import StorageHTTP
import NIOCore
import NIOFoundationCompat

/// An OAuth access token and when it stops working.
public struct BearerToken: Sendable {
    public var value: String
    public var expires: Date?
    /// Where it came from, for error messages ("service account key sa@p.iam.gserviceaccount.com").
    public var source: String

    public init(value: String, expires: Date?, source: String) {
        self.value = value
        self.expires = expires
        self.source = source
    }
}

public struct TokenError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Fetches tokens: a service-account key's signed assertion, a metadata server, a client secret.
public protocol TokenSource: Sendable {
    var name: String { get }
    func fetch() async throws -> BearerToken
}

/// Caches a source's token until a minute before it expires, with one fetch in flight however many
/// requests want a token at once.
public actor BearerTokenProvider {
    let source: any TokenSource
    let margin: TimeInterval
    let now: @Sendable () -> Date
    var cached: BearerToken?
    var fetching: Task<BearerToken, Error>?
    public private(set) var fetches = 0

    public init(source: any TokenSource, margin: TimeInterval = 60, now: @escaping @Sendable () -> Date = Date.init) {
        self.source = source
        self.margin = margin
        self.now = now
    }

    public nonisolated var sourceName: String { source.name }

    public func token() async throws -> BearerToken {
        if let cached, cached.expires.map({ $0.timeIntervalSince(now()) > margin }) ?? true { return cached }
        if let fetching { return try await fetching.value }
        let source = self.source
        let task = Task { try await source.fetch() }
        fetching = task
        fetches += 1
        defer { fetching = nil }
        let token = try await task.value
        cached = token
        return token
    }

    public func invalidate() { cached = nil }
}

/// The OAuth token endpoint answer shared by Google and Microsoft: `access_token` and `expires_in`.
struct OAuthTokenResponse: Decodable {
    var access_token: String
    var expires_in: Double?
}

enum OAuth {
    /// POSTs a form and reads an OAuth token answer. Error bodies are summarised by their
    /// `error` / `error_description` fields only, so nothing echoed back (an assertion, a secret)
    /// reaches a message.
    static func requestToken(_ http: HTTPClient, url: String, form: [(String, String)], headers: [(String, String)] = [],
                             source: String, now: Date = Date()) async throws -> BearerToken {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        request.body = .bytes(ByteBuffer(string: formEncode(form)))
        return try await execute(http, request, url: url, source: source, now: now)
    }

    static func execute(_ http: HTTPClient, _ request: HTTPClientRequest, url: String, source: String, now: Date = Date()) async throws -> BearerToken {
        // A token endpoint throttles and fails now and then like the storage it opens: the same retries.
        let body = try await HTTPTransport(http: http, retry: RetryPolicy(attempts: 4), timeout: .seconds(30), maxBody: 1 << 20).send(
            expect: { $0 == 200 },
            request: { _ in request },
            failure: { response in
                let doc = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
                let summary = [doc?["error"] as? String, doc?["error_description"] as? String].compactMap { $0 }.joined(separator: ": ")
                return (TokenError("\(source): token request to \(url) failed with HTTP \(response.status)" + (summary.isEmpty ? "" : ": \(summary)")),
                        RetryPolicy.isTransient(status: response.status))
            },
            unreachable: { error, _ in TokenError("\(source): cannot reach \(url): \(error)") }).body
        guard let token = try? JSONDecoder().decode(OAuthTokenResponse.self, from: body) else {
            throw TokenError("\(source): the token answer from \(url) has no access_token")
        }
        return BearerToken(value: token.access_token, expires: token.expires_in.map { now.addingTimeInterval($0) }, source: source)
    }

    static func formEncode(_ form: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return form.map { "\($0.0.addingPercentEncoding(withAllowedCharacters: allowed)!)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }
            .joined(separator: "&")
    }
}
