import AWSCore
import AsyncHTTPClient
import Crypto
import Foundation
import StorageHTTP
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import _CryptoExtras

// MARK: - Credentials

/// A service-account key file (`"type": "service_account"`), as Google issues it.
public struct GCSServiceAccountKey: Decodable, Sendable {
    public var type: String?
    public var client_email: String
    public var private_key: String
    public var private_key_id: String?
    public var token_uri: String?

    public static func parse(_ data: Data) throws -> GCSServiceAccountKey {
        guard let key = try? JSONDecoder().decode(GCSServiceAccountKey.self, from: data) else {
            throw TokenError("the GCS credentials are not a service-account key (JSON with client_email and private_key)")
        }
        if let type = key.type, type != "service_account" {
            throw TokenError("the GCS credentials are of type \(type); only service_account keys are supported")
        }
        return key
    }
}

/// A service-account key signs a JWT (RS256) and trades it at the key's token URI for an access token.
public struct ServiceAccountTokenSource: TokenSource {
    public var key: GCSServiceAccountKey
    public var scope: String
    public var http: HTTPClient
    public var now: @Sendable () -> Date

    public init(key: GCSServiceAccountKey, scope: String = "https://www.googleapis.com/auth/devstorage.read_write",
                http: HTTPClient = .shared, now: @escaping @Sendable () -> Date = Date.init) {
        self.key = key
        self.scope = scope
        self.http = http
        self.now = now
    }

    public var name: String { "service account key \(key.client_email)" }
    var tokenURI: String { nonEmpty(key.token_uri) ?? "https://oauth2.googleapis.com/token" }

    /// The signed assertion `header.claims.signature`, each part base64url without padding.
    public func assertion(at time: Date) throws -> String {
        let signer: _RSA.Signing.PrivateKey
        do { signer = try _RSA.Signing.PrivateKey(pemRepresentation: key.private_key) } catch {
            throw TokenError("\(name): private_key is not a PEM RSA key")
        }
        var header: [String: String] = ["alg": "RS256", "typ": "JWT"]
        if let kid = nonEmpty(key.private_key_id) { header["kid"] = kid }
        let iat = Int(time.timeIntervalSince1970)
        let claims: [String: Any] = ["iss": key.client_email, "scope": scope, "aud": tokenURI, "iat": iat, "exp": iat + 3600]
        let signingInput = try Self.base64url(JSONSerialization.data(withJSONObject: header, options: .sortedKeys)) + "."
            + Self.base64url(JSONSerialization.data(withJSONObject: claims, options: .sortedKeys))
        let signature = try signer.signature(for: Data(signingInput.utf8), padding: .insecurePKCS1v1_5)
        return signingInput + "." + Self.base64url(signature.rawRepresentation)
    }

    public func fetch() async throws -> BearerToken {
        let time = now()
        return try await OAuth.requestToken(http, url: tokenURI,
                                            form: [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", try assertion(at: time))],
                                            source: name, now: time)
    }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// The token of the service account attached to the VM or, with Workload Identity, to the pod's
/// Kubernetes ServiceAccount: the metadata server (`GCE_METADATA_HOST` overrides its address).
public struct GCEMetadataTokenSource: TokenSource {
    public var host: String
    public var http: HTTPClient

    public init(host: String = "metadata.google.internal", http: HTTPClient = .shared) {
        self.host = host
        self.http = http
    }

    public var name: String { "the metadata server at \(host)" }

    public func fetch() async throws -> BearerToken {
        let url = "http://\(host)/computeMetadata/v1/instance/service-accounts/default/token"
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Metadata-Flavor", value: "Google")
        return try await OAuth.execute(http, request, url: url, source: name)
    }
}

// MARK: - Client

public struct GCSError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var bucket: String
    public var object: String?
    public var status: UInt
    public var message: String
    public var credentialSource: String

    public var description: String {
        var text = "GCS \(operation) gs://\(bucket)" + (object.map { "/\($0)" } ?? "") + " failed: HTTP \(status)"
        if !message.isEmpty { text += ": \(message)" }
        if !credentialSource.isEmpty { text += " (credentials from \(credentialSource))" }
        return text
    }
}

/// Object options for writes: `storageClass` and `objectAcl` (a predefined ACL such as `private`).
public struct GCSWriteOptions: Sendable, Hashable {
    public var storageClass: String?
    public var predefinedAcl: String?
    public init(storageClass: String? = nil, predefinedAcl: String? = nil) {
        self.storageClass = storageClass
        self.predefinedAcl = predefinedAcl
    }
}

/// The JSON API operations the backup manager needs, with a bearer token when one is configured
/// (an emulator takes none).
public struct GCSClient: Sendable {
    public var base: URL
    public var tokens: BearerTokenProvider?
    public var http: HTTPClient
    public var retry: RetryPolicy
    /// Resumable-upload chunk and ranged-download part size (a multiple of 256 KiB).
    public var chunkSize: Int = 16 << 20
    public var partConcurrency: Int = 4

    public init(base: URL = URL(string: "https://storage.googleapis.com")!, tokens: BearerTokenProvider?, http: HTTPClient = .shared,
                retry: RetryPolicy = RetryPolicy()) {
        self.base = base
        self.tokens = tokens
        self.http = http
        self.retry = retry
    }

    typealias Response = HTTPResponse

    static let unreserved: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~")
        return set
    }()

    static func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: unreserved)! }

    func url(_ path: String, _ query: [(String, String)] = []) -> String {
        let root = base.absoluteString.hasSuffix("/") ? String(base.absoluteString.dropLast()) : base.absoluteString
        return root + path + (query.isEmpty ? "" : "?" + query.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&"))
    }

    func objectPath(_ bucket: String, _ object: String) -> String { "/storage/v1/b/\(Self.encode(bucket))/o/\(Self.encode(object))" }

    func send(_ operation: String, method: HTTPMethod, url: String, bucket: String, object: String? = nil, headers: [(String, String)] = [],
              body: Data? = nil, expect: Set<UInt> = [200, 204, 206], allowNotFound: Bool = false) async throws -> Response {
        var source = ""
        return try await HTTPTransport(http: http, retry: retry).send(
            readBody: method != .HEAD,
            expect: { expect.contains($0) || (allowNotFound && $0 == 404) },
            request: { _ in
                var request = HTTPClientRequest(url: url)
                request.method = method
                if let tokens {
                    let token = try await tokens.token()
                    source = token.source
                    request.headers.add(name: "Authorization", value: "Bearer \(token.value)")
                }
                for (k, v) in headers { request.headers.add(name: k, value: v) }
                if let body { request.body = .bytes(ByteBuffer(data: body)) } else if method == .POST || method == .PUT {
                    request.headers.add(name: "Content-Length", value: "0")
                }
                return request
            },
            failure: { response in
                // A 401 is a token that expired: a fresh one is fetched for the next attempt.
                if response.status == 401 { await tokens?.invalidate() }
                let doc = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
                let message = ((doc?["error"] as? [String: Any])?["message"] as? String) ?? String(decoding: response.body.prefix(200), as: UTF8.self)
                return (GCSError(operation: operation, bucket: bucket, object: object, status: response.status, message: message, credentialSource: source),
                        response.status == 401 || RetryPolicy.isTransient(status: response.status))
            },
            unreachable: { error, attempts in
                GCSError(operation: operation, bucket: bucket, object: object, status: 0,
                         message: "\(error) (after \(attempts) attempts to \(base.absoluteString))", credentialSource: source)
            })
    }

    public func createBucket(_ bucket: String, project: String, location: String? = nil, storageClass: String? = nil,
                             predefinedAcl: String? = nil) async throws {
        var query = [("project", project)]
        if let acl = nonEmpty(predefinedAcl) { query.append(("predefinedAcl", acl)) }
        var body: [String: String] = ["name": bucket]
        if let location = nonEmpty(location) { body["location"] = location }
        if let sc = nonEmpty(storageClass) { body["storageClass"] = sc }
        _ = try await send("buckets.insert", method: .POST, url: url("/storage/v1/b", query), bucket: bucket,
                           headers: [("Content-Type", "application/json")], body: try JSONSerialization.data(withJSONObject: body))
    }

    public struct ListPage: Sendable {
        public var objects: [StoredObject]
        public var nextPageToken: String?
    }

    public func list(bucket: String, prefix: String, pageToken: String? = nil, maxResults: Int = 1000) async throws -> ListPage {
        var query = [("prefix", prefix), ("maxResults", String(maxResults)), ("fields", "items(name,size),nextPageToken")]
        if let pageToken { query.append(("pageToken", pageToken)) }
        let response = try await send("objects.list", method: .GET, url: url("/storage/v1/b/\(Self.encode(bucket))/o", query), bucket: bucket)
        let doc = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
        let items = (doc["items"] as? [[String: Any]] ?? []).compactMap { item -> StoredObject? in
            guard let name = item["name"] as? String else { return nil }
            let size = (item["size"] as? String).flatMap { Int64($0) } ?? (item["size"] as? NSNumber)?.int64Value ?? 0
            return StoredObject(key: name, size: size)
        }
        return ListPage(objects: items, nextPageToken: nonEmpty(doc["nextPageToken"] as? String))
    }

    /// The object's size, or nil when it does not exist.
    public func size(bucket: String, object: String) async throws -> Int64? {
        let response = try await send("objects.get", method: .GET, url: url(objectPath(bucket, object), [("fields", "size")]), bucket: bucket,
                                      object: object, allowNotFound: true)
        if response.status == 404 { return nil }
        let doc = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
        return (doc?["size"] as? String).flatMap { Int64($0) } ?? 0
    }

    public func read(bucket: String, object: String, range: ClosedRange<Int64>? = nil) async throws -> Data {
        let headers = range.map { [("Range", "bytes=\($0.lowerBound)-\($0.upperBound)")] } ?? []
        return try await send("objects.get", method: .GET, url: url(objectPath(bucket, object), [("alt", "media")]), bucket: bucket, object: object,
                              headers: headers).body
    }

    /// A multipart upload (metadata and bytes in one request) for objects that fit in memory.
    public func write(bucket: String, object: String, data: Data, options: GCSWriteOptions = GCSWriteOptions()) async throws {
        let boundary = "tbo-" + UUID().uuidString
        var metadata: [String: String] = ["name": object]
        if let sc = nonEmpty(options.storageClass) { metadata["storageClass"] = sc }
        var body = Data("--\(boundary)\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".utf8)
        body += try JSONSerialization.data(withJSONObject: metadata)
        body += Data("\r\n--\(boundary)\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
        body += data
        body += Data("\r\n--\(boundary)--\r\n".utf8)
        var query = [("uploadType", "multipart")]
        if let acl = nonEmpty(options.predefinedAcl) { query.append(("predefinedAcl", acl)) }
        _ = try await send("objects.insert", method: .POST, url: url("/upload/storage/v1/b/\(Self.encode(bucket))/o", query), bucket: bucket,
                           object: object, headers: [("Content-Type", "multipart/related; boundary=\(boundary)")], body: body)
    }

    /// A resumable upload in `chunkSize` pieces (the protocol is sequential: each chunk's offset
    /// follows the last one the server acknowledged).
    public func upload(file path: String, bucket: String, object: String, options: GCSWriteOptions = GCSWriteOptions()) async throws {
        let size = try Transfer.fileSize(path)
        if size <= Int64(chunkSize) {
            try await write(bucket: bucket, object: object, data: try Transfer.readChunk(path, offset: 0, count: Int(size)), options: options)
            return
        }
        var metadata: [String: String] = ["name": object]
        if let sc = nonEmpty(options.storageClass) { metadata["storageClass"] = sc }
        var query = [("uploadType", "resumable"), ("name", object)]
        if let acl = nonEmpty(options.predefinedAcl) { query.append(("predefinedAcl", acl)) }
        let started = try await send("objects.insert", method: .POST, url: url("/upload/storage/v1/b/\(Self.encode(bucket))/o", query), bucket: bucket,
                                     object: object, headers: [("Content-Type", "application/json; charset=UTF-8"), ("X-Upload-Content-Length", String(size))],
                                     body: try JSONSerialization.data(withJSONObject: metadata))
        guard let session = started.headers.first(name: "Location") else {
            throw GCSError(operation: "objects.insert", bucket: bucket, object: object, status: started.status,
                           message: "the resumable upload answer has no Location", credentialSource: "")
        }
        var offset: Int64 = 0
        while offset < size {
            let count = Int(min(Int64(chunkSize), size - offset))
            let chunk = try Transfer.readChunk(path, offset: offset, count: count)
            let last = offset + Int64(count) == size
            let response = try await send("objects.insert (chunk)", method: .PUT, url: session, bucket: bucket, object: object,
                                          headers: [("Content-Range", "bytes \(offset)-\(offset + Int64(count) - 1)/\(last ? String(size) : "*")")],
                                          body: chunk, expect: [200, 201, 308])
            if response.status == 308 {
                // The server says how much it has; carry on from there.
                if let range = response.headers.first(name: "Range"), let end = range.split(separator: "-").last.flatMap({ Int64($0) }) {
                    offset = end + 1
                } else {
                    offset = 0
                }
            } else {
                offset = size
            }
        }
    }

    public func download(bucket: String, object: String, to path: String) async throws {
        guard let size = try await size(bucket: bucket, object: object) else {
            throw GCSError(operation: "objects.get", bucket: bucket, object: object, status: 404, message: "No such object", credentialSource: "")
        }
        try await Transfer.download(size: size, to: path, partSize: chunkSize, concurrency: partConcurrency) { range in
            try await read(bucket: bucket, object: object, range: range)
        }
    }

    /// Deletes one object; one that is already gone counts as deleted.
    public func delete(bucket: String, object: String) async throws {
        _ = try await send("objects.delete", method: .DELETE, url: url(objectPath(bucket, object)), bucket: bucket, object: object, allowNotFound: true)
    }

    /// Up to 100 deletes in one batch request (`multipart/mixed`); answers the objects that failed.
    public func delete(bucket: String, objects: [String]) async throws -> [DeleteFailure] {
        guard !objects.isEmpty else { return [] }
        let boundary = "tbo-" + UUID().uuidString
        var body = ""
        for (i, object) in objects.enumerated() {
            body += "--\(boundary)\r\nContent-Type: application/http\r\nContent-ID: <item\(i)>\r\n\r\n"
            body += "DELETE \(objectPath(bucket, object)) HTTP/1.1\r\n\r\n"
        }
        body += "--\(boundary)--\r\n"
        let response = try await send("objects.delete (batch)", method: .POST, url: url("/batch/storage/v1"), bucket: bucket,
                                      headers: [("Content-Type", "multipart/mixed; boundary=\(boundary)")], body: Data(body.utf8))
        let statuses = Self.batchStatuses(response.body, contentType: response.headers.first(name: "Content-Type") ?? "")
        guard statuses.count == objects.count else {
            throw GCSError(operation: "objects.delete (batch)", bucket: bucket, object: nil, status: response.status,
                           message: "the batch answer has \(statuses.count) parts for \(objects.count) requests", credentialSource: "")
        }
        return zip(objects, statuses).compactMap { object, status in
            status < 300 || status == 404 ? nil : DeleteFailure(key: object, message: "HTTP \(status)")
        }
    }

    /// The status code of each part of a `multipart/mixed` batch answer, in order.
    static func batchStatuses(_ body: Data, contentType: String) -> [UInt] {
        guard let range = contentType.range(of: "boundary=") else { return [] }
        let boundary = contentType[range.upperBound...].split(separator: ";")[0].trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        let text = String(decoding: body, as: UTF8.self)
        return text.components(separatedBy: "--" + boundary).dropFirst().compactMap { part -> UInt? in
            guard let line = part.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("HTTP/") }) else { return nil }
            let fields = line.split(separator: " ")
            return fields.count >= 2 ? UInt(fields[1]) : nil
        }
    }
}

// MARK: - Storage

/// A GCS bucket and prefix.
public struct GCSStorage: PrefixedObjectStore {
    public var client: GCSClient
    public var bucket: String
    public var prefix: String
    public var options: GCSWriteOptions

    public init(client: GCSClient, bucket: String, prefix: String, options: GCSWriteOptions = GCSWriteOptions()) {
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        self.options = options
    }

    public var location: String { "gcs://\(bucket)" + (prefix.isEmpty ? "" : "/\(prefix)") }
    public var batchDeleteSize: Int? { 100 }

    public func listPage(prefix sub: String, token: String?, limit: Int) async throws -> StorageListPage {
        try await gatherPages(token: token, limit: limit, pageLimit: 1000) { next, max in
            let page = try await client.list(bucket: bucket, prefix: keyBase + sub, pageToken: next, maxResults: max)
            return (page.objects, page.nextPageToken)
        }
    }

    public func read(_ key: String) async throws -> Data { try await client.read(bucket: bucket, object: absolute(key)) }
    public func size(of key: String) async throws -> Int64? { try await client.size(bucket: bucket, object: absolute(key)) }
    public func write(_ key: String, data: Data) async throws { try await client.write(bucket: bucket, object: absolute(key), data: data, options: options) }
    public func upload(file: String, to key: String) async throws {
        try await client.upload(file: file, bucket: bucket, object: absolute(key), options: options)
    }
    public func download(_ key: String, to file: String) async throws { try await client.download(bucket: bucket, object: absolute(key), to: file) }
    public func delete(_ key: String) async throws { try await client.delete(bucket: bucket, object: absolute(key)) }
    public func deleteBatch(_ keys: [String]) async throws -> [DeleteFailure] {
        try await client.delete(bucket: bucket, objects: keys.map(absolute)).map {
            DeleteFailure(key: relative($0.key), message: $0.message)
        }
    }
}
