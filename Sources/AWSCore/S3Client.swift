import AWSSigning
import AsyncHTTPClient
import Crypto
import Foundation
import StorageHTTP
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// Where an S3-compatible service is and how buckets are addressed on it.
public struct S3Endpoint: Sendable, Hashable {
    /// `https://s3.us-west-2.amazonaws.com`, `http://10.0.0.1:9000`, … (no path).
    public var base: URL
    public var region: String
    /// `true`: `https://host/bucket/key`; `false`: `https://bucket.host/key`.
    public var pathStyle: Bool
    /// Connects to this host instead of the one in the URL (like curl's `--resolve`), keeping the
    /// URL's host in the Host header and the signature. For servers reached through an address the
    /// local resolver does not know, and for tests of virtual-host addressing on 127.0.0.1.
    public var connectHost: String?

    public init(base: URL, region: String, pathStyle: Bool, connectHost: String? = nil) {
        self.base = base
        self.region = region
        self.pathStyle = pathStyle
        self.connectHost = connectHost
    }
}

/// What an S3 call answered with when it failed. The description names the operation, the bucket
/// and key, the service's error code and message, and where the credentials came from; never a secret.
public struct S3Error: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var bucket: String
    public var key: String?
    public var status: UInt
    public var code: String
    public var message: String
    public var credentialSource: String

    public var description: String {
        let target = "s3://\(bucket)" + (key.map { "/\($0)" } ?? "")
        var text = "S3 \(operation) \(target) failed: \(code)"
        if !message.isEmpty { text += ": \(message)" }
        text += " (HTTP \(status)"
        if code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" || code == "AccessDenied" || code == "ExpiredToken" {
            text += "; credentials from \(credentialSource)"
        }
        return text + ")"
    }

    public var isNotFound: Bool { status == 404 || code == "NoSuchKey" || code == "NotFound" }
}

/// A local file the client reads or writes could not be used.
public struct LocalFileError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Settings applied to every object the client writes (`spec.s3.acl`, `storageClass`, `sse`).
public struct S3WriteOptions: Sendable, Hashable {
    public var acl: String?
    public var storageClass: String?
    /// `AES256` or `aws:kms` (with an optional key id in `sseKMSKeyID`).
    public var sse: String?
    public var sseKMSKeyID: String?

    public init(acl: String? = nil, storageClass: String? = nil, sse: String? = nil, sseKMSKeyID: String? = nil) {
        self.acl = acl
        self.storageClass = storageClass
        self.sse = sse
        self.sseKMSKeyID = sseKMSKeyID
    }

    var headers: [(String, String)] {
        var h: [(String, String)] = []
        if let acl, !acl.isEmpty { h.append(("x-amz-acl", acl)) }
        if let storageClass, !storageClass.isEmpty { h.append(("x-amz-storage-class", storageClass)) }
        if let sse, !sse.isEmpty { h.append(("x-amz-server-side-encryption", sse)) }
        if let sseKMSKeyID, !sseKMSKeyID.isEmpty { h.append(("x-amz-server-side-encryption-aws-kms-key-id", sseKMSKeyID)) }
        return h
    }
}

public struct S3Object: Sendable, Hashable {
    public var key: String
    public var size: Int64
}

public struct S3ListPage: Sendable {
    public var objects: [S3Object]
    public var nextContinuationToken: String?
}

/// One version of an object, or a delete marker, from ListObjectVersions.
public struct S3ObjectVersion: Sendable, Hashable {
    public var key: String
    public var versionID: String
    public var isDeleteMarker: Bool
}

public struct S3VersionPage: Sendable {
    public var versions: [S3ObjectVersion]
    /// The markers of the next page, nil after the last.
    public var next: (keyMarker: String, versionIDMarker: String)?
}

/// A failure of one key in a DeleteObjects call.
public struct S3DeleteFailure: Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var code: String
    public var message: String
    public var description: String { "\(key): code:\(code) msg:\(message)" }
}

/// The S3 operations the backup manager needs, signed with SigV4, over AsyncHTTPClient.
public struct S3Client: Sendable {
    public var endpoint: S3Endpoint
    public var credentials: CredentialProvider
    public var http: HTTPClient
    public var retry: RetryPolicy
    /// Part size for multipart uploads and ranged downloads.
    public var partSize: Int = 16 << 20
    /// Parts in flight at once for one upload or download.
    public var partConcurrency: Int = 4

    public init(endpoint: S3Endpoint, credentials: CredentialProvider, http: HTTPClient = .shared, retry: RetryPolicy = RetryPolicy()) {
        self.endpoint = endpoint
        self.credentials = credentials
        self.http = http
        self.retry = retry
    }

    // MARK: - Requests

    typealias Response = HTTPResponse

    /// The URL of a bucket (and key) under this endpoint's addressing style.
    public func url(bucket: String, key: String?, query: [(String, String)]) -> URL {
        var components = URLComponents(url: endpoint.base, resolvingAgainstBaseURL: false)!
        let encodedKey = key.map { "/" + SigV4Signer.uriEncode($0, keepSlash: true) } ?? ""
        let basePath = components.percentEncodedPath.hasSuffix("/") ? String(components.percentEncodedPath.dropLast()) : components.percentEncodedPath
        if endpoint.pathStyle || bucket.isEmpty {
            components.percentEncodedPath = basePath + (bucket.isEmpty ? "/" : "/" + SigV4Signer.uriEncode(bucket)) + encodedKey
        } else {
            components.host = bucket + "." + (components.host ?? "")
            components.percentEncodedPath = basePath + (encodedKey.isEmpty ? "/" : encodedKey)
        }
        if !query.isEmpty {
            components.percentEncodedQuery = query.map { "\(SigV4Signer.uriEncode($0.0))=\(SigV4Signer.uriEncode($0.1))" }.joined(separator: "&")
        }
        return components.url!
    }

    func send(_ operation: String, method: HTTPMethod, bucket: String, key: String? = nil, query: [(String, String)] = [],
              headers: [(String, String)] = [], body: Data? = nil, expect: Set<UInt> = [200, 204, 206],
              allowNotFound: Bool = false) async throws -> Response {
        let url = url(bucket: bucket, key: key, query: query)
        let payload = body ?? Data()
        let payloadHash = SigV4Signer.sha256Hex(payload)
        var source = ""
        return try await HTTPTransport(http: http, retry: retry).send(
            readBody: method != .HEAD,
            expect: { expect.contains($0) || (allowNotFound && $0 == 404) },
            request: { _ in
                let creds = try await credentials.credentials()
                source = creds.source
                let signer = SigV4Signer(credentials: creds.credentials, region: endpoint.region, service: "s3")
                var own = headers
                if body != nil { own.append(("Content-Length", String(payload.count))) }
                return signer.request(method: method, url: url, headers: own, body: body, payloadSHA256: payloadHash, connectHost: endpoint.connectHost)
            },
            failure: { response in
                let error = makeError(operation, bucket: bucket, key: key, status: response.status, body: response.body, source: source)
                if error.code == "ExpiredToken" || error.code == "TokenRefreshRequired" { await credentials.invalidate() }
                return (error, RetryPolicy.isTransient(status: response.status) || Self.transientCodes.contains(error.code))
            },
            unreachable: { error, attempts in
                S3Error(operation: operation, bucket: bucket, key: key, status: 0, code: "RequestFailed",
                        message: "\(error) (after \(attempts) attempts to \(endpoint.base.absoluteString))", credentialSource: "")
            })
    }

    /// S3's error codes worth another attempt whatever the status (throttling, a slow upload, a token
    /// that expired between signing and arriving, its own failures).
    static let transientCodes: Set = ["SlowDown", "RequestTimeout", "ExpiredToken", "InternalError"]

    func makeError(_ operation: String, bucket: String, key: String?, status: UInt, body: Data, source: String) -> S3Error {
        let xml = try? XMLElement.parse(body)
        let code = xml?["Code"] ?? (status == 404 ? "NotFound" : status == 403 ? "AccessDenied" : "HTTP\(status)")
        return S3Error(operation: operation, bucket: bucket, key: key, status: status, code: code, message: xml?["Message"] ?? "",
                       credentialSource: source)
    }

    // MARK: - Operations

    public func createBucket(_ bucket: String) async throws {
        var body: Data?
        if endpoint.region != "us-east-1" {
            body = Data("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(endpoint.region)</LocationConstraint></CreateBucketConfiguration>".utf8)
        }
        _ = try await send("CreateBucket", method: .PUT, bucket: bucket, body: body)
    }

    /// One page of ListObjectsV2 (at most `maxKeys`, the service caps it at 1,000).
    public func listObjects(bucket: String, prefix: String, continuationToken: String? = nil, maxKeys: Int = 1000) async throws -> S3ListPage {
        var query = [("list-type", "2"), ("max-keys", String(maxKeys))]
        if !prefix.isEmpty { query.append(("prefix", prefix)) }
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        let response = try await send("ListObjectsV2", method: .GET, bucket: bucket, query: query)
        let xml = try XMLElement.parse(response.body)
        let objects = xml.all("Contents").map { S3Object(key: $0["Key"] ?? "", size: Int64($0["Size"] ?? "0") ?? 0) }
        let truncated = xml["IsTruncated"] == "true"
        return S3ListPage(objects: objects, nextContinuationToken: truncated ? xml["NextContinuationToken"] : nil)
    }

    /// The object's size, or nil when it does not exist.
    public func headObject(bucket: String, key: String) async throws -> Int64? {
        let response = try await send("HeadObject", method: .HEAD, bucket: bucket, key: key, allowNotFound: true)
        if response.status == 404 { return nil }
        return response.headers.first(name: "Content-Length").flatMap { Int64($0) } ?? 0
    }

    public func getObject(bucket: String, key: String, range: ClosedRange<Int64>? = nil) async throws -> Data {
        var headers: [(String, String)] = []
        if let range { headers.append(("Range", "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        return try await send("GetObject", method: .GET, bucket: bucket, key: key, headers: headers).body
    }

    public func putObject(bucket: String, key: String, data: Data, options: S3WriteOptions = S3WriteOptions()) async throws {
        _ = try await send("PutObject", method: .PUT, bucket: bucket, key: key, headers: options.headers, body: data)
    }

    public func deleteObject(bucket: String, key: String) async throws {
        _ = try await send("DeleteObject", method: .DELETE, bucket: bucket, key: key, allowNotFound: true)
    }

    /// One page of ListObjectVersions: every version and delete marker under `prefix` (a versioned
    /// bucket keeps them after the current objects are deleted).
    public func listObjectVersions(bucket: String, prefix: String, keyMarker: String? = nil, versionIDMarker: String? = nil,
                                   maxKeys: Int = 1000) async throws -> S3VersionPage {
        var query = [("versions", ""), ("max-keys", String(maxKeys))]
        if !prefix.isEmpty { query.append(("prefix", prefix)) }
        if let keyMarker { query.append(("key-marker", keyMarker)) }
        if let versionIDMarker { query.append(("version-id-marker", versionIDMarker)) }
        let response = try await send("ListObjectVersions", method: .GET, bucket: bucket, query: query)
        let xml = try XMLElement.parse(response.body)
        let versions = xml.children.compactMap { node -> S3ObjectVersion? in
            guard node.localName == "Version" || node.localName == "DeleteMarker" else { return nil }
            return S3ObjectVersion(key: node["Key"] ?? "", versionID: node["VersionId"] ?? "null", isDeleteMarker: node.localName == "DeleteMarker")
        }
        let truncated = xml["IsTruncated"] == "true"
        return S3VersionPage(versions: versions,
                             next: truncated ? (xml["NextKeyMarker"] ?? "", xml["NextVersionIdMarker"] ?? "") : nil)
    }

    /// One DeleteObjects call (at most 1,000 keys); returns the keys the service could not delete.
    public func deleteObjects(bucket: String, keys: [String]) async throws -> [S3DeleteFailure] {
        try await deleteObjects(bucket: bucket, objects: keys.map { ($0, nil) })
    }

    /// One DeleteObjects call for keys, each at a version when one is given (a version or a delete
    /// marker goes for good).
    public func deleteObjects(bucket: String, objects: [(key: String, versionID: String?)]) async throws -> [S3DeleteFailure] {
        precondition(objects.count <= 1000, "DeleteObjects takes at most 1,000 keys")
        if objects.isEmpty { return [] }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
        for (key, version) in objects {
            xml += "<Object><Key>\(XMLElement.escape(key))</Key>"
            if let version { xml += "<VersionId>\(XMLElement.escape(version))</VersionId>" }
            xml += "</Object>"
        }
        xml += "</Delete>"
        let body = Data(xml.utf8)
        let md5 = Data(Insecure.MD5.hash(data: body)).base64EncodedString()
        let response = try await send("DeleteObjects", method: .POST, bucket: bucket, query: [("delete", "")],
                                      headers: [("Content-MD5", md5), ("Content-Type", "application/xml")], body: body)
        let result = try XMLElement.parse(response.body)
        return result.all("Error").map { S3DeleteFailure(key: $0["Key"] ?? "", code: $0["Code"] ?? "", message: $0["Message"] ?? "") }
    }

    // MARK: - Large objects

    /// Uploads a file: one PutObject when it fits in a part, otherwise a multipart upload with
    /// `partConcurrency` parts in flight, aborted when any part fails.
    public func uploadFile(_ path: String, bucket: String, key: String, options: S3WriteOptions = S3WriteOptions()) async throws {
        let size = try Transfer.fileSize(path)
        if size <= Int64(partSize) {
            try await putObject(bucket: bucket, key: key, data: try Transfer.readChunk(path, offset: 0, count: Int(size)), options: options)
            return
        }
        let created = try await send("CreateMultipartUpload", method: .POST, bucket: bucket, key: key, query: [("uploads", "")], headers: options.headers)
        guard let uploadID = try XMLElement.parse(created.body)["UploadId"] else {
            throw S3Error(operation: "CreateMultipartUpload", bucket: bucket, key: key, status: created.status, code: "NoUploadId", message: "", credentialSource: "")
        }
        let partCount = Int((size + Int64(partSize) - 1) / Int64(partSize))
        let partSize = self.partSize
        do {
            let etags = try await Transfer.forEachPart(partCount, concurrency: partConcurrency) { i in
                let offset = Int64(i) * Int64(partSize)
                let data = try Transfer.readChunk(path, offset: offset, count: Int(min(Int64(partSize), size - offset)))
                let response = try await send("UploadPart", method: .PUT, bucket: bucket, key: key,
                                              query: [("partNumber", String(i + 1)), ("uploadId", uploadID)], body: data)
                return response.headers.first(name: "ETag") ?? ""
            }
            var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            for (i, etag) in etags.enumerated() { xml += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(XMLElement.escape(etag))</ETag></Part>" }
            xml += "</CompleteMultipartUpload>"
            let done = try await send("CompleteMultipartUpload", method: .POST, bucket: bucket, key: key, query: [("uploadId", uploadID)],
                                      headers: [("Content-Type", "application/xml")], body: Data(xml.utf8))
            // CompleteMultipartUpload can fail with 200 and an Error document.
            if let doc = try? XMLElement.parse(done.body), doc.name == "Error" {
                throw S3Error(operation: "CompleteMultipartUpload", bucket: bucket, key: key, status: 200, code: doc["Code"] ?? "Error",
                              message: doc["Message"] ?? "", credentialSource: "")
            }
        } catch {
            _ = try? await send("AbortMultipartUpload", method: .DELETE, bucket: bucket, key: key, query: [("uploadId", uploadID)], allowNotFound: true)
            throw error
        }
    }

    /// Downloads an object into a file with ranged GETs, `partConcurrency` in flight.
    public func downloadFile(bucket: String, key: String, to path: String) async throws {
        guard let size = try await headObject(bucket: bucket, key: key) else {
            throw S3Error(operation: "GetObject", bucket: bucket, key: key, status: 404, code: "NoSuchKey", message: "The specified key does not exist.",
                          credentialSource: "")
        }
        try await Transfer.download(size: size, to: path, partSize: partSize, concurrency: partConcurrency) { range in
            try await getObject(bucket: bucket, key: key, range: range)
        }
    }
}

extension SigV4Signer {
    /// An AsyncHTTPClient request to `url`, carrying `headers` and the SigV4 headers over them. With
    /// `connectHost`, the connection goes there while the Host header and the signature keep the URL's
    /// host. Content-Length may be among the signed headers; the client sets it from the body.
    func request(method: HTTPMethod, url: URL, headers: [(String, String)], body: Data?, payloadSHA256: String,
                 connectHost: String? = nil) -> HTTPClientRequest {
        let signed = signedHeaders(method: method.rawValue, url: url, headers: headers, payloadSHA256: payloadSHA256, date: Date())
        var connectURL = url
        if let connectHost, var c = URLComponents(url: url, resolvingAgainstBaseURL: false) {
            c.host = connectHost
            connectURL = c.url!
        }
        var request = HTTPClientRequest(url: connectURL.absoluteString)
        request.method = method
        if connectHost != nil { request.headers.add(name: "Host", value: Self.hostHeader(url)) }
        for (name, value) in headers + signed where name != "Content-Length" { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(data: body)) }
        return request
    }
}
