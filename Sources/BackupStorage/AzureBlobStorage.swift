import AWSCore
import AsyncHTTPClient
import Crypto
import Foundation
import StorageHTTP
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// How requests to Azure Blob are authorised, in the order TiDB Operator prefers them: a SAS token
/// from the spec, Azure AD client credentials, then the account's shared key.
public enum AzureAuth: Sendable {
    case sas(String)
    case bearer(BearerTokenProvider)
    case sharedKey(account: String, key: Data)

    public var name: String {
        switch self {
        case .sas: "the SAS token of spec.azblob.sasToken"
        case .bearer(let p): p.sourceName
        case .sharedKey(let account, _): "the shared key of storage account \(account)"
        }
    }
}

/// Azure AD client-secret credentials: a client-credentials grant for `https://storage.azure.com/`.
public struct AzureClientSecretTokenSource: TokenSource {
    public var tenant: String
    public var clientID: String
    public var clientSecret: String
    public var authorityHost: String
    public var http: HTTPClient

    public init(tenant: String, clientID: String, clientSecret: String, authorityHost: String = "https://login.microsoftonline.com",
                http: HTTPClient = .shared) {
        self.tenant = tenant
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.authorityHost = authorityHost.hasSuffix("/") ? String(authorityHost.dropLast()) : authorityHost
        self.http = http
    }

    public var name: String { "Azure AD application \(clientID) of tenant \(tenant)" }

    public func fetch() async throws -> BearerToken {
        try await OAuth.requestToken(http, url: "\(authorityHost)/\(tenant)/oauth2/v2.0/token",
                                     form: [("grant_type", "client_credentials"), ("client_id", clientID), ("client_secret", clientSecret),
                                            ("scope", "https://storage.azure.com/.default")],
                                     source: name)
    }
}

public struct AzureError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var container: String
    public var blob: String?
    public var status: UInt
    public var code: String
    public var message: String
    public var credentialSource: String

    public var description: String {
        var text = "Azure \(operation) azure://\(container)" + (blob.map { "/\($0)" } ?? "") + " failed: "
        text += code.isEmpty ? "HTTP \(status)" : "\(code) (HTTP \(status))"
        if !message.isEmpty { text += ": \(message)" }
        if !credentialSource.isEmpty { text += " (credentials from \(credentialSource))" }
        return text
    }
}

/// The Blob service operations the backup manager needs, with Shared Key signing, a SAS token, or
/// an Azure AD bearer token.
public struct AzureBlobClient: Sendable {
    public static let version = "2021-12-02"
    /// `https://<account>.blob.core.windows.net`, or a path-style base such as
    /// `http://127.0.0.1:10000/<account>` (Azurite and other emulators).
    public var base: URL
    public var account: String
    public var auth: AzureAuth
    public var http: HTTPClient
    public var retry: RetryPolicy
    public var blockSize: Int = 16 << 20
    public var partConcurrency: Int = 4

    public init(account: String, auth: AzureAuth, base: URL? = nil, http: HTTPClient = .shared, retry: RetryPolicy = RetryPolicy()) {
        self.account = account
        self.auth = auth
        self.base = base ?? URL(string: "https://\(account).blob.core.windows.net")!
        self.http = http
        self.retry = retry
    }

    typealias Response = HTTPResponse

    static let pathAllowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~/")
        return set
    }()

    static func encode(_ s: String, keepSlash: Bool = false) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: keepSlash ? "-._~/" : "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed)!
    }

    func url(container: String, blob: String?, query: [(String, String)]) -> URL {
        var components = URLComponents(url: base, resolvingAgainstBaseURL: false)!
        let root = components.percentEncodedPath.hasSuffix("/") ? String(components.percentEncodedPath.dropLast()) : components.percentEncodedPath
        components.percentEncodedPath = root + "/" + Self.encode(container) + (blob.map { "/" + Self.encode($0, keepSlash: true) } ?? "")
        var pairs = query.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }
        if case .sas(let token) = auth { pairs.append(token.hasPrefix("?") ? String(token.dropFirst()) : token) }
        components.percentEncodedQuery = pairs.isEmpty ? nil : pairs.joined(separator: "&")
        return components.url!
    }

    /// The Shared Key string to sign (Blob service, version 2015-02-21 and later): the verb, the
    /// standard headers (an empty Content-Length for no body), the `x-ms-` headers sorted, and the
    /// resource — the account, the URL path as sent, and each query parameter decoded, sorted.
    public static func stringToSign(method: String, url: URL, headers: [(String, String)], account: String) -> String {
        var byName: [String: String] = [:]
        for (k, v) in headers { byName[k.lowercased()] = v }
        if byName["content-length"] == "0" { byName["content-length"] = nil }
        let standard = ["content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
                        "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range"]
        var text = method + "\n" + standard.map { byName[$0] ?? "" }.joined(separator: "\n") + "\n"
        for (name, value) in byName.filter({ $0.key.hasPrefix("x-ms-") }).sorted(by: { $0.key < $1.key }) {
            text += "\(name):\(value)\n"
        }
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        text += "/" + account + (components?.percentEncodedPath ?? "")
        var params: [String: [String]] = [:]
        for item in components?.queryItems ?? [] { params[item.name.lowercased(), default: []].append(item.value ?? "") }
        for name in params.keys.sorted() { text += "\n\(name):" + params[name]!.sorted().joined(separator: ",") }
        return text
    }

    public static func sharedKeySignature(_ stringToSign: String, key: Data) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: SymmetricKey(data: key))).base64EncodedString()
    }

    static func httpDate(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return f.string(from: date)
    }

    func send(_ operation: String, method: HTTPMethod, container: String, blob: String? = nil, query: [(String, String)] = [],
              headers: [(String, String)] = [], body: Data? = nil, expect: Set<UInt> = [200, 201, 202, 206],
              allowNotFound: Bool = false) async throws -> Response {
        let url = url(container: container, blob: blob, query: query)
        return try await HTTPTransport(http: http, retry: retry).send(
            readBody: method != .HEAD,
            expect: { expect.contains($0) || (allowNotFound && $0 == 404) },
            request: { _ in
                var own = headers + [("x-ms-date", Self.httpDate(Date())), ("x-ms-version", Self.version)]
                if body != nil || method == .PUT { own.append(("Content-Length", String(body?.count ?? 0))) }
                switch auth {
                case .sas: break
                case .bearer(let provider):
                    own.append(("Authorization", "Bearer " + (try await provider.token().value)))
                case .sharedKey(let account, let key):
                    let signature = Self.sharedKeySignature(Self.stringToSign(method: method.rawValue, url: url, headers: own, account: account), key: key)
                    own.append(("Authorization", "SharedKey \(account):\(signature)"))
                }
                var request = HTTPClientRequest(url: url.absoluteString)
                request.method = method
                for (k, v) in own where k != "Content-Length" { request.headers.add(name: k, value: v) }
                if let body { request.body = .bytes(ByteBuffer(data: body)) } else if method == .PUT { request.headers.add(name: "Content-Length", value: "0") }
                return request
            },
            failure: { response in
                let xml = try? XMLElement.parse(response.body)
                let code = xml?["Code"] ?? response.headers.first(name: "x-ms-error-code") ?? ""
                let error = AzureError(operation: operation, container: container, blob: blob, status: response.status, code: code,
                                       message: xml?["Message"].map { String($0.split(separator: "\n").first ?? "") } ?? "", credentialSource: auth.name)
                if case .bearer(let provider) = auth, response.status == 401 { await provider.invalidate() }
                return (error, RetryPolicy.isTransient(status: response.status))
            },
            unreachable: { error, attempts in
                AzureError(operation: operation, container: container, blob: blob, status: 0, code: "RequestFailed",
                           message: "\(error) (after \(attempts) attempts to \(base.absoluteString))", credentialSource: "")
            })
    }

    public func createContainer(_ container: String) async throws {
        _ = try await send("Create Container", method: .PUT, container: container, query: [("restype", "container")])
    }

    public struct ListPage: Sendable {
        public var objects: [StoredObject]
        public var nextMarker: String?
    }

    public func list(container: String, prefix: String, marker: String? = nil, maxResults: Int = 5000) async throws -> ListPage {
        var query = [("restype", "container"), ("comp", "list"), ("prefix", prefix), ("maxresults", String(maxResults))]
        if let marker { query.append(("marker", marker)) }
        let response = try await send("List Blobs", method: .GET, container: container, query: query)
        let doc = try XMLElement.parse(response.body)
        let blobs = doc.child("Blobs")?.all("Blob") ?? []
        let objects = blobs.map { blob in
            StoredObject(key: blob["Name"] ?? "", size: Int64(blob.child("Properties")?["Content-Length"] ?? "") ?? 0)
        }
        return ListPage(objects: objects, nextMarker: nonEmpty(doc["NextMarker"]))
    }

    public func size(container: String, blob: String) async throws -> Int64? {
        let response = try await send("Get Blob Properties", method: .HEAD, container: container, blob: blob, allowNotFound: true)
        if response.status == 404 { return nil }
        return Int64(response.headers.first(name: "Content-Length") ?? "") ?? 0
    }

    public func read(container: String, blob: String, range: ClosedRange<Int64>? = nil) async throws -> Data {
        let headers = range.map { [("x-ms-range", "bytes=\($0.lowerBound)-\($0.upperBound)")] } ?? []
        return try await send("Get Blob", method: .GET, container: container, blob: blob, headers: headers).body
    }

    public func write(container: String, blob: String, data: Data, accessTier: String?) async throws {
        var headers = [("x-ms-blob-type", "BlockBlob"), ("Content-Type", "application/octet-stream")]
        if let tier = nonEmpty(accessTier) { headers.append(("x-ms-access-tier", tier)) }
        _ = try await send("Put Blob", method: .PUT, container: container, blob: blob, headers: headers, body: data)
    }

    /// One Put Blob when the file fits in a block; otherwise blocks in parallel, then the block list.
    public func upload(file path: String, container: String, blob: String, accessTier: String?) async throws {
        let size = try Transfer.fileSize(path)
        if size <= Int64(blockSize) {
            try await write(container: container, blob: blob, data: try Transfer.readChunk(path, offset: 0, count: Int(size)), accessTier: accessTier)
            return
        }
        let count = Int((size + Int64(blockSize) - 1) / Int64(blockSize))
        let blockSize = self.blockSize
        // Block IDs: base64 of equal-length strings, as the service requires within one blob.
        let ids = (0..<count).map { Data(String(format: "block-%08d", $0).utf8).base64EncodedString() }
        _ = try await Transfer.forEachPart(count, concurrency: partConcurrency) { i in
            let offset = Int64(i) * Int64(blockSize)
            let data = try Transfer.readChunk(path, offset: offset, count: Int(min(Int64(blockSize), size - offset)))
            _ = try await send("Put Block", method: .PUT, container: container, blob: blob, query: [("comp", "block"), ("blockid", ids[i])], body: data)
        }
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>" + ids.map { "<Latest>\($0)</Latest>" }.joined() + "</BlockList>"
        var headers = [("Content-Type", "application/xml")]
        if let tier = nonEmpty(accessTier) { headers.append(("x-ms-access-tier", tier)) }
        _ = try await send("Put Block List", method: .PUT, container: container, blob: blob, query: [("comp", "blocklist")], headers: headers,
                           body: Data(xml.utf8))
    }

    public func download(container: String, blob: String, to path: String) async throws {
        guard let size = try await size(container: container, blob: blob) else {
            throw AzureError(operation: "Get Blob", container: container, blob: blob, status: 404, code: "BlobNotFound",
                             message: "The specified blob does not exist.", credentialSource: "")
        }
        try await Transfer.download(size: size, to: path, partSize: blockSize, concurrency: partConcurrency) { range in
            try await read(container: container, blob: blob, range: range)
        }
    }

    /// Deletes a blob; one already gone counts as deleted.
    public func delete(container: String, blob: String) async throws {
        _ = try await send("Delete Blob", method: .DELETE, container: container, blob: blob, allowNotFound: true)
    }
}

/// An Azure container and prefix.
public struct AzureBlobStorage: PrefixedObjectStore {
    public var client: AzureBlobClient
    public var container: String
    public var prefix: String
    public var accessTier: String?

    public init(client: AzureBlobClient, container: String, prefix: String, accessTier: String? = nil) {
        self.client = client
        self.container = container
        self.prefix = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        self.accessTier = accessTier
    }

    public var location: String { "azure://\(container)" + (prefix.isEmpty ? "" : "/\(prefix)") }

    public func listPage(prefix sub: String, token: String?, limit: Int) async throws -> StorageListPage {
        try await gatherPages(token: token, limit: limit, pageLimit: 5000) { next, max in
            let page = try await client.list(container: container, prefix: keyBase + sub, marker: next, maxResults: max)
            return (page.objects, page.nextMarker)
        }
    }

    public func read(_ key: String) async throws -> Data { try await client.read(container: container, blob: absolute(key)) }
    public func size(of key: String) async throws -> Int64? { try await client.size(container: container, blob: absolute(key)) }
    public func write(_ key: String, data: Data) async throws {
        try await client.write(container: container, blob: absolute(key), data: data, accessTier: accessTier)
    }
    public func upload(file: String, to key: String) async throws {
        try await client.upload(file: file, container: container, blob: absolute(key), accessTier: accessTier)
    }
    public func download(_ key: String, to file: String) async throws { try await client.download(container: container, blob: absolute(key), to: file) }
    public func delete(_ key: String) async throws { try await client.delete(container: container, blob: absolute(key)) }
}
