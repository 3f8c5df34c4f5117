import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import KubeModel
import NIOCore

/// The read-only web view at `/ui/`: the page (HTML, CSS and JS served from the binary, no external
/// asset), its JSON API under `/ui/api/`, and server-sent events for live updates.
///
/// Access needs the server's token: `Authorization: Bearer <token>`, or the session cookie that
/// `POST /ui/login` sets for a correct token (an HMAC of the token, never the token itself;
/// `HttpOnly`, `SameSite=Strict`, `Secure` over TLS).
public struct WebUI: Sendable {
    let store: WebStore
    let token: String
    let secureCookie: Bool
    let now: @Sendable () -> Date
    /// How often an idle event stream sends a comment, so proxies keep it open.
    var keepAlive: Duration = .seconds(15)

    public init(store: WebStore, token: String, secureCookie: Bool, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.token = token
        self.secureCookie = secureCookie
        self.now = now
    }

    public static func handles(_ path: String) -> Bool { path == "/ui" || path.hasPrefix("/ui/") }

    static let cookieName = "tbo_session"

    var sessionValue: String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("tidb-backup-operator web view".utf8), using: SymmetricKey(data: Data(token.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined()
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    func authorized(_ request: Request) -> Bool {
        if let header = request.headers[.authorization], header.hasPrefix("Bearer "),
           Self.constantTimeEqual(String(header.dropFirst(7)), token) { return true }
        for cookie in (request.headers[.cookie] ?? "").split(separator: ";") {
            let parts = cookie.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == Self.cookieName, Self.constantTimeEqual(String(parts[1]), sessionValue) { return true }
        }
        return false
    }

    // MARK: Routing

    public func respond(_ request: inout Request) async -> Response {
        let path = request.uri.path
        switch (request.method, path) {
        case (.get, "/ui"): return redirect("/ui/")
        case (.get, "/ui/app.css"): return asset(WebAssets.css, "text/css; charset=utf-8")
        case (.get, "/ui/app.js"): return asset(WebAssets.js, "text/javascript; charset=utf-8")
        case (.get, "/ui/login"): return page(WebAssets.login(failed: false))
        case (.post, "/ui/login"): return await login(&request)
        case (.post, "/ui/logout"):
            var r = redirect("/ui/login")
            r.headers[.setCookie] = "\(Self.cookieName)=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict" + (secureCookie ? "; Secure" : "")
            return r
        default: break
        }
        guard authorized(request) else {
            if path.hasPrefix("/ui/api/") { return json(["error": "unauthorized: log in at /ui/login or send Authorization: Bearer <token>"], status: .unauthorized) }
            return redirect("/ui/login")
        }
        await store.activate()
        if path == "/ui/" { return page(WebAssets.index) }
        let parts = path.split(separator: "/").map(String.init)  // ["ui", "api", …]
        guard parts.count >= 3, parts[1] == "api", request.method == .get else { return json(["error": "not found"], status: .notFound) }
        let current = now()
        switch parts[2] {
        case "overview" where parts.count == 3:
            return encoded(store.overview(now: current))
        case "schedules" where parts.count == 5:
            guard let d = store.scheduleDetail(namespace: parts[3], name: parts[4], now: current) else { return notFound("backupschedule", parts) }
            return encoded(d)
        case "backups" where parts.count == 5, "restores" where parts.count == 5:
            guard let d = await store.detail(kind: parts[2] == "backups" ? "Backup" : "Restore", namespace: parts[3], name: parts[4]) else {
                return notFound(String(parts[2].dropLast()), parts)
            }
            return encoded(d)
        case "stream" where parts.count == 3:
            return stream()
        default:
            return json(["error": "not found"], status: .notFound)
        }
    }

    func notFound(_ what: String, _ parts: [String]) -> Response {
        json(["error": .string("\(what) \(parts[3])/\(parts[4]) not found")], status: .notFound)
    }

    func login(_ request: inout Request) async -> Response {
        let body = (try? await request.body.collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
        var presented = ""
        for pair in body.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == "token" {
                presented = String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
        }
        guard Self.constantTimeEqual(presented.trimmingCharacters(in: .whitespacesAndNewlines), token) else {
            var r = page(WebAssets.login(failed: true))
            r.status = .unauthorized
            return r
        }
        var r = redirect("/ui/")
        r.headers[.setCookie] = "\(Self.cookieName)=\(sessionValue); Path=/ui; HttpOnly; SameSite=Strict" + (secureCookie ? "; Secure" : "")
        return r
    }

    // MARK: Responses

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff", .cacheControl: "no-store",
    ]

    func page(_ html: String) -> Response {
        var h = Self.securityHeaders
        h[.contentType] = "text/html; charset=utf-8"
        return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    func asset(_ text: String, _ type: String) -> Response {
        var h = Self.securityHeaders
        h[.contentType] = type
        return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    func redirect(_ to: String) -> Response {
        var h = Self.securityHeaders
        h[.location] = to
        return Response(status: .seeOther, headers: h)
    }

    func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var h = Self.securityHeaders
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized())))
    }

    func encoded<T: Encodable>(_ value: T) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var h = Self.securityHeaders
        h[.contentType] = "application/json"
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
    }

    /// Server-sent events: one `change` event per object that changed, a comment every `keepAlive`.
    func stream() -> Response {
        var h = Self.securityHeaders
        h[.contentType] = "text/event-stream"
        let store = self.store
        let keepAlive = self.keepAlive
        let body = ResponseBody { writer in
            let (changes, end) = store.subscribe()
            enum Signal: Sendable { case change(String), tick }
            let (signals, continuation) = AsyncStream<Signal>.makeStream()
            let forward = Task {
                for await c in changes { continuation.yield(.change(c)) }
                continuation.finish()
            }
            let ticker = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: keepAlive)
                    continuation.yield(.tick)
                }
            }
            defer {
                end()
                forward.cancel()
                ticker.cancel()
            }
            try await writer.write(ByteBuffer(string: "retry: 2000\n: connected\n\n"))
            for await signal in signals {
                switch signal {
                case .change(let text): try await writer.write(ByteBuffer(string: "event: change\ndata: \(text)\n\n"))
                case .tick: try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: h, body: body)
    }
}
