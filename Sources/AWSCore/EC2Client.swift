import AWSSigning
import AsyncHTTPClient
import Foundation
import StorageHTTP
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// What an EC2 or EBS direct call answered with when it failed: the operation, AWS's error code and
/// message, and where the credentials came from when the code is about them; never a secret.
public struct EC2Error: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var status: UInt
    public var code: String
    public var message: String
    public var credentialSource: String
    /// `EC2`, or `EBS` for the EBS direct APIs (which snapshot sizes come from).
    public var service = "EC2"

    public init(operation: String, status: UInt, code: String, message: String, credentialSource: String, service: String = "EC2") {
        self.operation = operation
        self.status = status
        self.code = code
        self.message = message
        self.credentialSource = credentialSource
        self.service = service
    }

    public var description: String {
        var text = "\(service) \(operation) failed: \(code)"
        if !message.isEmpty { text += ": \(message)" }
        text += " (HTTP \(status)"
        if ["AuthFailure", "SignatureDoesNotMatch", "InvalidClientTokenId", "UnauthorizedOperation", "AccessDeniedException",
            "ExpiredToken", "InvalidAccessKeyId"].contains(code) {
            text += "; credentials from \(credentialSource)"
        }
        return text + ")"
    }

    /// `InvalidSnapshot.NotFound`, `InvalidVolume.NotFound`, `ResourceNotFoundException`, HTTP 404.
    public var isNotFound: Bool { code.hasSuffix(".NotFound") || code == "ResourceNotFoundException" || status == 404 }

    /// Throttling as EC2 and the EBS direct APIs report it.
    public var isThrottling: Bool {
        RetryPolicy.isTransient(status: status)
            || ["RequestLimitExceeded", "Throttling", "ThrottlingException", "SnapshotCreationPerVolumeRateExceeded",
                "RequestThrottledException", "InternalError", "Unavailable", "ServiceUnavailable"].contains(code)
    }
}

public struct EC2Snapshot: Sendable, Hashable {
    public var id: String
    public var volumeID: String
    public var state: String
    public var progress: String
    public var startTime: Date?
    public var volumeSize: Int
    public var tags: [String: String]
}

public struct EC2Volume: Sendable, Hashable {
    public var id: String
    public var state: String
    public var availabilityZone: String
    public var size: Int
    public var snapshotID: String
    public var volumeType: String
    public var tags: [String: String]
}

/// What `CreateVolume` is asked for.
public struct EC2VolumeRequest: Sendable, Hashable {
    public var availabilityZone: String
    public var snapshotID: String?
    public var sizeGiB: Int?
    public var volumeType: String?
    public var iops: Int?
    public var throughput: Int?
    public var tags: [String: String]

    public init(availabilityZone: String, snapshotID: String? = nil, sizeGiB: Int? = nil, volumeType: String? = nil,
                iops: Int? = nil, throughput: Int? = nil, tags: [String: String] = [:]) {
        self.availabilityZone = availabilityZone
        self.snapshotID = snapshotID
        self.sizeGiB = sizeGiB
        self.volumeType = volumeType
        self.iops = iops
        self.throughput = throughput
        self.tags = tags
    }
}

/// One page of an EBS direct `ListSnapshotBlocks` / `ListChangedBlocks` answer.
public struct EBSBlockPage: Sendable, Hashable {
    /// Block indexes: in `ListChangedBlocks`, only those with a `SecondBlockToken` (the block exists in
    /// the second snapshot).
    public var blocks: [Int]
    public var blockSize: Int
    public var nextToken: String?
}

/// The EC2 (Query protocol) and EBS direct (REST/JSON) calls the volume-snapshot flows make, signed
/// with SigV4 through the shared credential chain. Throttling and server errors are retried with
/// exponential backoff and jitter.
public struct EC2Client: Sendable {
    public var region: String
    /// `https://ec2.<region>.amazonaws.com` unless `AWS_ENDPOINT_URL_EC2` / `AWS_ENDPOINT_URL` say otherwise.
    public var ec2Endpoint: URL
    /// `https://ebs.<region>.amazonaws.com` unless `AWS_ENDPOINT_URL_EBS` / `AWS_ENDPOINT_URL` say otherwise.
    public var ebsEndpoint: URL
    public var credentials: CredentialProvider
    public var http: HTTPClient
    public var retry: RetryPolicy

    public init(region: String, ec2Endpoint: URL? = nil, ebsEndpoint: URL? = nil, credentials: CredentialProvider,
                http: HTTPClient = .shared, retry: RetryPolicy = RetryPolicy(attempts: 8, baseDelay: .milliseconds(200), maxDelay: .seconds(10))) {
        self.region = region
        self.ec2Endpoint = ec2Endpoint ?? URL(string: "https://ec2.\(region).amazonaws.com")!
        self.ebsEndpoint = ebsEndpoint ?? URL(string: "https://ebs.\(region).amazonaws.com")!
        self.credentials = credentials
        self.http = http
        self.retry = retry
    }

    /// A client configured from the environment as the AWS CLI is: `AWS_REGION` / `AWS_DEFAULT_REGION`
    /// (else `fallbackRegion`), the endpoint variables, the default credential chain.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                       fallbackRegion: String? = nil, http: HTTPClient = .shared) throws -> EC2Client {
        guard let region = [environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"], fallbackRegion]
            .compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
            throw CredentialsError("no AWS region for EC2: set AWS_REGION (or spec.s3.region)")
        }
        func url(_ names: String...) throws -> URL? {
            for name in names {
                if let text = environment[name], !text.isEmpty {
                    guard let u = URL(string: text), u.host != nil else { throw CredentialsError("\(name) \(text) is not a URL") }
                    return u
                }
            }
            return nil
        }
        return EC2Client(region: region, ec2Endpoint: try url("AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"),
                         ebsEndpoint: try url("AWS_ENDPOINT_URL_EBS", "AWS_ENDPOINT_URL"),
                         credentials: CredentialProvider.defaultChain(environment: environment, http: http), http: http)
    }

    // MARK: - Transport

    static let apiVersion = "2016-11-15"

    static func formEncode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(SigV4Signer.uriEncode($0.0))=\(SigV4Signer.uriEncode($0.1))" }.joined(separator: "&")
    }

    func execute(_ operation: String, service: String, method: HTTPMethod, url: URL, body: Data?,
                 contentType: String?) async throws -> Data {
        do {
            return try await send(operation, service: service, method: method, url: url, body: body, contentType: contentType)
        } catch var error as EC2Error {
            error.service = service == "ebs" ? "EBS" : "EC2"
            throw error
        }
    }

    func send(_ operation: String, service: String, method: HTTPMethod, url: URL, body: Data?,
              contentType: String?) async throws -> Data {
        let payloadHash = SigV4Signer.sha256Hex(body ?? Data())
        var source = ""
        return try await HTTPTransport(http: http, retry: retry, timeout: .seconds(60), maxBody: 64 << 20).send(
            expect: { $0 / 100 == 2 },
            request: { _ in
                let creds = try await credentials.credentials()
                source = creds.source
                let signer = SigV4Signer(credentials: creds.credentials, region: region, service: service)
                return signer.request(method: method, url: url, headers: contentType.map { [("Content-Type", $0)] } ?? [],
                                      body: body, payloadSHA256: payloadHash)
            },
            failure: { response in
                let failure = Self.error(operation, status: response.status, body: response.body, source: source)
                if failure.code == "ExpiredToken" || failure.code == "RequestExpired" { await credentials.invalidate() }
                return (failure, failure.isThrottling || failure.code == "ExpiredToken")
            },
            unreachable: { error, attempts in
                EC2Error(operation: operation, status: 0, code: "RequestFailed",
                         message: "\(error) (to \(url.host ?? ""), after \(attempts) attempts)", credentialSource: source)
            },
            exhausted: { failure, attempts in
                var failure = failure
                failure.message += failure.message.isEmpty ? "after \(attempts) attempts" : " (after \(attempts) attempts)"
                return failure
            }).body
    }

    static func error(_ operation: String, status: UInt, body: Data, source: String) -> EC2Error {
        if let xml = try? XMLElement.parse(body) {
            let node = xml.path("Errors", "Error") ?? xml.child("Error") ?? xml
            if let code = node["Code"] {
                return EC2Error(operation: operation, status: status, code: code, message: node["Message"] ?? "", credentialSource: source)
            }
        }
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] {
            let code = (object["__type"] as? String ?? object["code"] as? String ?? object["Code"] as? String ?? "").split(separator: "#").last.map(String.init)
            let message = object["message"] as? String ?? object["Message"] as? String ?? ""
            if let code, !code.isEmpty { return EC2Error(operation: operation, status: status, code: code, message: message, credentialSource: source) }
        }
        let code = status == 404 ? "NotFound" : status == 403 ? "AccessDenied" : status == 429 ? "Throttling" : "HTTP\(status)"
        return EC2Error(operation: operation, status: status, code: code, message: "", credentialSource: source)
    }

    /// One EC2 Query call; the answer's root element.
    func query(_ action: String, _ parameters: [(String, String)]) async throws -> XMLElement {
        let body = Data(Self.formEncode([("Action", action), ("Version", Self.apiVersion)] + parameters).utf8)
        var url = ec2Endpoint
        if url.path.isEmpty { url = url.appendingPathComponent("") }
        let data = try await execute(action, service: "ec2", method: .POST, url: url, body: body,
                                     contentType: "application/x-www-form-urlencoded; charset=utf-8")
        do { return try XMLElement.parse(data) } catch {
            throw EC2Error(operation: action, status: 200, code: "MalformedResponse", message: "\(error)", credentialSource: "")
        }
    }

    static func tagParameters(_ resourceType: String, _ tags: [String: String], index: Int = 1) -> [(String, String)] {
        guard !tags.isEmpty else { return [] }
        var out = [("TagSpecification.\(index).ResourceType", resourceType)]
        for (i, (k, v)) in tags.sorted(by: { $0.key < $1.key }).enumerated() {
            out.append(("TagSpecification.\(index).Tag.\(i + 1).Key", k))
            out.append(("TagSpecification.\(index).Tag.\(i + 1).Value", v))
        }
        return out
    }

    static func tags(_ node: XMLElement?) -> [String: String] {
        var out: [String: String] = [:]
        for item in node?.child("tagSet")?.all("item") ?? [] {
            if let k = item["key"] { out[k] = item["value"] ?? "" }
        }
        return out
    }

    static func date(_ text: String?) -> Date? {
        guard let text else { return nil }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }

    static func snapshot(_ item: XMLElement) -> EC2Snapshot {
        EC2Snapshot(id: item["snapshotId"] ?? "", volumeID: item["volumeId"] ?? "", state: item["status"] ?? "",
                    progress: item["progress"] ?? "", startTime: date(item["startTime"]), volumeSize: Int(item["volumeSize"] ?? "") ?? 0,
                    tags: tags(item))
    }

    static func volume(_ item: XMLElement) -> EC2Volume {
        EC2Volume(id: item["volumeId"] ?? "", state: item["status"] ?? "", availabilityZone: item["availabilityZone"] ?? "",
                  size: Int(item["size"] ?? "") ?? 0, snapshotID: item["snapshotId"] ?? "", volumeType: item["volumeType"] ?? "",
                  tags: tags(item))
    }

    static func filterParameters(_ filters: [(String, [String])]) -> [(String, String)] {
        var out: [(String, String)] = []
        for (i, (name, values)) in filters.enumerated() {
            out.append(("Filter.\(i + 1).Name", name))
            for (j, v) in values.enumerated() { out.append(("Filter.\(i + 1).Value.\(j + 1)", v)) }
        }
        return out
    }

    // MARK: - EC2

    public func createSnapshot(volumeID: String, description: String = "", tags: [String: String] = [:]) async throws -> EC2Snapshot {
        var p = [("VolumeId", volumeID)]
        if !description.isEmpty { p.append(("Description", description)) }
        let root = try await query("CreateSnapshot", p + Self.tagParameters("snapshot", tags))
        return Self.snapshot(root)
    }

    /// Every snapshot matching the filters (all pages); `ownerSelf` adds `Owner.1=self`.
    public func describeSnapshots(ids: [String] = [], filters: [(String, [String])] = [], ownerSelf: Bool = true,
                                  pageSize: Int = 1000) async throws -> [EC2Snapshot] {
        var out: [EC2Snapshot] = []
        var token: String?
        repeat {
            var p: [(String, String)] = ids.enumerated().map { ("SnapshotId.\($0.offset + 1)", $0.element) }
            if ownerSelf { p.append(("Owner.1", "self")) }
            p += Self.filterParameters(filters)
            if ids.isEmpty { p.append(("MaxResults", String(pageSize))) }
            if let token { p.append(("NextToken", token)) }
            let root = try await query("DescribeSnapshots", p)
            out += (root.child("snapshotSet")?.all("item") ?? []).map(Self.snapshot)
            token = root["nextToken"].flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return out
    }

    /// Deletes a snapshot; `false` when it did not exist (`InvalidSnapshot.NotFound`).
    @discardableResult
    public func deleteSnapshot(_ id: String) async throws -> Bool {
        do {
            _ = try await query("DeleteSnapshot", [("SnapshotId", id)])
            return true
        } catch let e as EC2Error where e.isNotFound {
            return false
        }
    }

    public func createVolume(_ request: EC2VolumeRequest) async throws -> EC2Volume {
        var p = [("AvailabilityZone", request.availabilityZone)]
        if let s = request.snapshotID { p.append(("SnapshotId", s)) }
        if let s = request.sizeGiB { p.append(("Size", String(s))) }
        if let t = request.volumeType { p.append(("VolumeType", t)) }
        if let i = request.iops { p.append(("Iops", String(i))) }
        if let t = request.throughput { p.append(("Throughput", String(t))) }
        let root = try await query("CreateVolume", p + Self.tagParameters("volume", request.tags))
        return Self.volume(root)
    }

    public func describeVolumes(ids: [String] = [], filters: [(String, [String])] = []) async throws -> [EC2Volume] {
        var out: [EC2Volume] = []
        var token: String?
        repeat {
            var p: [(String, String)] = ids.enumerated().map { ("VolumeId.\($0.offset + 1)", $0.element) }
            p += Self.filterParameters(filters)
            if ids.isEmpty { p.append(("MaxResults", "500")) }
            if let token { p.append(("NextToken", token)) }
            let root = try await query("DescribeVolumes", p)
            out += (root.child("volumeSet")?.all("item") ?? []).map(Self.volume)
            token = root["nextToken"].flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return out
    }

    public func createTags(resources: [String], tags: [String: String]) async throws {
        guard !resources.isEmpty, !tags.isEmpty else { return }
        var p: [(String, String)] = resources.enumerated().map { ("ResourceId.\($0.offset + 1)", $0.element) }
        for (i, (k, v)) in tags.sorted(by: { $0.key < $1.key }).enumerated() {
            p.append(("Tag.\(i + 1).Key", k))
            p.append(("Tag.\(i + 1).Value", v))
        }
        _ = try await query("CreateTags", p)
    }

    /// Deletes a volume; `false` when it did not exist (`InvalidVolume.NotFound`).
    @discardableResult
    public func deleteVolume(_ id: String) async throws -> Bool {
        do {
            _ = try await query("DeleteVolume", [("VolumeId", id)])
            return true
        } catch let e as EC2Error where e.isNotFound {
            return false
        }
    }

    // MARK: - EBS direct APIs

    func ebsGet(_ operation: String, path: String, query: [(String, String)]) async throws -> [String: Any] {
        var components = URLComponents(url: ebsEndpoint, resolvingAgainstBaseURL: false)!
        let base = components.percentEncodedPath.hasSuffix("/") ? String(components.percentEncodedPath.dropLast()) : components.percentEncodedPath
        components.percentEncodedPath = base + path
        if !query.isEmpty { components.percentEncodedQuery = Self.formEncode(query.sorted { $0.0 < $1.0 }) }
        let data = try await execute(operation, service: "ebs", method: .GET, url: components.url!, body: nil, contentType: nil)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw EC2Error(operation: operation, status: 200, code: "MalformedResponse", message: "not a JSON object", credentialSource: "", service: "EBS")
        }
        return object
    }

    static func intValue(_ any: Any?) -> Int? {
        if let n = any as? NSNumber { return n.intValue }
        if let s = any as? String { return Int(s) }
        return nil
    }

    public func listSnapshotBlocks(_ snapshotID: String, nextToken: String? = nil, maxResults: Int = 10000) async throws -> EBSBlockPage {
        var q = [("maxResults", String(maxResults))]
        if let nextToken { q.append(("pageToken", nextToken)) }
        let o = try await ebsGet("ListSnapshotBlocks", path: "/snapshots/\(SigV4Signer.uriEncode(snapshotID))/blocks", query: q)
        let blocks = (o["Blocks"] as? [[String: Any]] ?? []).compactMap { Self.intValue($0["BlockIndex"]) }
        return EBSBlockPage(blocks: blocks, blockSize: Self.intValue(o["BlockSize"]) ?? 0,
                            nextToken: (o["NextToken"] as? String).flatMap { $0.isEmpty ? nil : $0 })
    }

    public func listChangedBlocks(first: String, second: String, nextToken: String? = nil, maxResults: Int = 10000) async throws -> EBSBlockPage {
        var q = [("firstSnapshotId", first), ("maxResults", String(maxResults))]
        if let nextToken { q.append(("pageToken", nextToken)) }
        let o = try await ebsGet("ListChangedBlocks", path: "/snapshots/\(SigV4Signer.uriEncode(second))/changedblocks", query: q)
        let blocks = (o["ChangedBlocks"] as? [[String: Any]] ?? []).compactMap { b -> Int? in
            guard let token = b["SecondBlockToken"] as? String, !token.isEmpty else { return nil }
            return Self.intValue(b["BlockIndex"])
        }
        return EBSBlockPage(blocks: blocks, blockSize: Self.intValue(o["BlockSize"]) ?? 0,
                            nextToken: (o["NextToken"] as? String).flatMap { $0.isEmpty ? nil : $0 })
    }

    /// Bytes held by a snapshot: every listed block times the block size (all pages).
    public func snapshotSize(_ snapshotID: String) async throws -> Int64 {
        var total: Int64 = 0
        var token: String?
        repeat {
            let page = try await listSnapshotBlocks(snapshotID, nextToken: token)
            total += Int64(page.blocks.count) * Int64(page.blockSize)
            token = page.nextToken
        } while token != nil
        return total
    }

    /// Bytes that changed from `previous` to `snapshot` and exist in `snapshot` (all pages).
    public func changedSize(from previous: String, to snapshot: String) async throws -> Int64 {
        var total: Int64 = 0
        var token: String?
        repeat {
            let page = try await listChangedBlocks(first: previous, second: snapshot, nextToken: token)
            total += Int64(page.blocks.count) * Int64(page.blockSize)
            token = page.nextToken
        } while token != nil
        return total
    }
}
