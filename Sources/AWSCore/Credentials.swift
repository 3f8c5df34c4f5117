import AWSSigning
import AsyncHTTPClient
import Foundation
import StorageHTTP
import NIOCore
import NIOFoundationCompat

/// Credentials with the time they stop working (nil: never) and where they came from.
public struct ResolvedCredentials: Sendable {
    public var credentials: AWSCredentials
    public var expiration: Date?
    /// Says where the credentials came from, for error messages ("environment variables
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"). Never contains a secret.
    public var source: String

    public init(credentials: AWSCredentials, expiration: Date? = nil, source: String) {
        self.credentials = credentials
        self.expiration = expiration
        self.source = source
    }
}

public struct CredentialsError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One way of obtaining credentials. `nil` means "not configured here, try the next source";
/// a throw means "configured but failed", which stops the chain with that error.
public protocol CredentialSource: Sendable {
    var name: String { get }
    func resolve() async throws -> ResolvedCredentials?
}

/// Fixed keys, for example read from a Secret's `access_key` / `secret_key`.
public struct StaticCredentialSource: CredentialSource {
    public var credentials: AWSCredentials
    public var name: String

    public init(_ credentials: AWSCredentials, name: String = "static keys") {
        self.credentials = credentials
        self.name = name
    }

    public func resolve() async throws -> ResolvedCredentials? { ResolvedCredentials(credentials: credentials, source: name) }
}

/// `AWS_ACCESS_KEY_ID` with `AWS_SECRET_ACCESS_KEY` (or its older name `AWS_SECRET_KEY`) and an
/// optional `AWS_SESSION_TOKEN`.
public struct EnvironmentCredentialSource: CredentialSource {
    public var environment: [String: String]
    public var name: String { "environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY" }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) { self.environment = environment }

    public func resolve() async throws -> ResolvedCredentials? {
        guard let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty else { return nil }
        guard let secret = [environment["AWS_SECRET_ACCESS_KEY"], environment["AWS_SECRET_KEY"]].compactMap({ $0 }).first(where: { !$0.isEmpty })
        else { throw CredentialsError("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not") }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return ResolvedCredentials(credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token), source: name)
    }
}

/// IAM role on a ServiceAccount (IRSA): `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE` exchanged
/// with STS `AssumeRoleWithWebIdentity` (an unsigned call). The STS endpoint is the regional one,
/// or `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL` when set.
public struct WebIdentityCredentialSource: CredentialSource {
    public var environment: [String: String]
    public var http: HTTPClient
    public var name: String { "web identity (AWS_ROLE_ARN \(environment["AWS_ROLE_ARN"] ?? ""))" }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, http: HTTPClient = .shared) {
        self.environment = environment
        self.http = http
    }

    public func resolve() async throws -> ResolvedCredentials? {
        guard let role = environment["AWS_ROLE_ARN"], !role.isEmpty,
              let tokenFile = environment["AWS_WEB_IDENTITY_TOKEN_FILE"], !tokenFile.isEmpty
        else { return nil }
        let token: String
        do {
            token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw CredentialsError("web identity: cannot read AWS_WEB_IDENTITY_TOKEN_FILE \(tokenFile): \(error.localizedDescription)")
        }
        let region: String? = nonEmpty(environment["AWS_REGION"]) ?? nonEmpty(environment["AWS_DEFAULT_REGION"])
        let regional: String = region.map { "https://sts.\($0).amazonaws.com" } ?? "https://sts.amazonaws.com"
        let endpoint: String = nonEmpty(environment["AWS_ENDPOINT_URL_STS"]) ?? nonEmpty(environment["AWS_ENDPOINT_URL"]) ?? regional
        let session: String = nonEmpty(environment["AWS_ROLE_SESSION_NAME"]) ?? "tidb-backup-manager-\(Int(Date().timeIntervalSince1970))"
        let pairs: [(String, String)] = [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", role),
                                         ("RoleSessionName", session), ("WebIdentityToken", token)]
        let form: String = pairs.map { "\($0.0)=\(SigV4Signer.uriEncode($0.1))" }.joined(separator: "&")
        var request = HTTPClientRequest(url: endpoint.hasSuffix("/") ? endpoint : endpoint + "/")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: form))
        // STS throttles and has bad moments like any service: the same retries as the storage calls.
        let response = try await HTTPTransport(http: http, retry: RetryPolicy(attempts: 4), timeout: .seconds(30), maxBody: 1 << 20).send(
            expect: { $0 == 200 },
            request: { _ in request },
            failure: { response in
                let xml = try? XMLElement.parse(response.body)
                let code = xml?.path("Error", "Code")?.text ?? "HTTP \(response.status)"
                let message = xml?.path("Error", "Message")?.text ?? ""
                return (CredentialsError("web identity: STS AssumeRoleWithWebIdentity for \(role) failed: \(code) \(message)"),
                        RetryPolicy.isTransient(status: response.status) || code == "Throttling" || code == "IDPCommunicationError")
            },
            unreachable: { error, attempts in CredentialsError("web identity: STS at \(endpoint) did not answer (\(attempts) attempts): \(error)") })
        let xml = try? XMLElement.parse(response.body)
        guard let creds = xml?.path("AssumeRoleWithWebIdentityResult", "Credentials"), let id = creds["AccessKeyId"], let secret = creds["SecretAccessKey"] else {
            throw CredentialsError("web identity: STS AssumeRoleWithWebIdentity for \(role) answered without credentials")
        }
        let expiration = creds["Expiration"].flatMap(parseISO8601)
        return ResolvedCredentials(credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: creds["SessionToken"]),
                                   expiration: expiration, source: name)
    }
}

/// Instance metadata (IMDSv2 with a session token, falling back to IMDSv1 when the token call is
/// refused, as kube2iam and older proxies do). `AWS_EC2_METADATA_SERVICE_ENDPOINT` moves it;
/// `AWS_EC2_METADATA_DISABLED=true` turns it off.
public struct InstanceMetadataCredentialSource: CredentialSource {
    public var endpoint: String
    public var disabled: Bool
    public var http: HTTPClient
    public var name: String { "instance metadata \(endpoint)" }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, http: HTTPClient = .shared) {
        var e = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://169.254.169.254"
        while e.hasSuffix("/") { e.removeLast() }
        endpoint = e
        disabled = environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true"
        self.http = http
    }

    public func resolve() async throws -> ResolvedCredentials? {
        if disabled { return nil }
        var token: String?
        do {
            var put = HTTPClientRequest(url: endpoint + "/latest/api/token")
            put.method = .PUT
            put.headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "21600")
            let response = try await http.execute(put, timeout: .seconds(2))
            let body = try await response.body.collect(upTo: 64 << 10)
            if response.status == .ok { token = String(buffer: body) }
        } catch {
            // No metadata service at all: this source is not configured here.
            return nil
        }
        func get(_ path: String) async throws -> (UInt, String) {
            var request = HTTPClientRequest(url: endpoint + path)
            if let token { request.headers.add(name: "X-aws-ec2-metadata-token", value: token) }
            let response = try await http.execute(request, timeout: .seconds(5))
            return (response.status.code, String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }
        let (code, roles) = try await get("/latest/meta-data/iam/security-credentials/")
        guard code == 200, let role = roles.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
            if code == 404 { return nil }
            throw CredentialsError("instance metadata: listing IAM roles answered HTTP \(code)")
        }
        let (credCode, json) = try await get("/latest/meta-data/iam/security-credentials/\(role)")
        struct Doc: Decodable {
            var AccessKeyId: String
            var SecretAccessKey: String
            var Token: String?
            var Expiration: String?
        }
        guard credCode == 200, let doc = try? JSONDecoder().decode(Doc.self, from: Data(json.utf8)) else {
            throw CredentialsError("instance metadata: credentials of role \(role) answered HTTP \(credCode)")
        }
        return ResolvedCredentials(credentials: AWSCredentials(accessKeyID: doc.AccessKeyId, secretAccessKey: doc.SecretAccessKey, sessionToken: doc.Token),
                                   expiration: doc.Expiration.flatMap(parseISO8601), source: "\(name) (role \(role))")
    }
}

func nonEmpty(_ s: String?) -> String? {
    guard let s, !s.isEmpty else { return nil }
    return s
}

func parseISO8601(_ s: String) -> Date? {
    let f = ISO8601DateFormatter()
    if let d = f.date(from: s) { return d }
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.date(from: s)
}

/// The SDKs' default chain (static keys first when given, then environment, web identity, instance
/// metadata), cached until five minutes before expiry, with one refresh in flight at a time.
public actor CredentialProvider {
    let sources: [any CredentialSource]
    let refreshMargin: TimeInterval
    let now: @Sendable () -> Date
    var cached: ResolvedCredentials?
    var refreshing: Task<ResolvedCredentials, Error>?
    /// How many times a source chain was walked (for tests of the one-refresh-in-flight rule).
    public private(set) var resolutions = 0

    public init(sources: [any CredentialSource], refreshMargin: TimeInterval = 300, now: @escaping @Sendable () -> Date = Date.init) {
        self.sources = sources
        self.refreshMargin = refreshMargin
        self.now = now
    }

    /// The default chain for a process with this environment.
    public static func defaultChain(environment: [String: String] = ProcessInfo.processInfo.environment,
                                    http: HTTPClient = .shared) -> CredentialProvider {
        CredentialProvider(sources: [
            EnvironmentCredentialSource(environment: environment),
            WebIdentityCredentialSource(environment: environment, http: http),
            InstanceMetadataCredentialSource(environment: environment, http: http),
        ])
    }

    public static func fixed(_ credentials: AWSCredentials, name: String = "static keys") -> CredentialProvider {
        CredentialProvider(sources: [StaticCredentialSource(credentials, name: name)])
    }

    public func credentials() async throws -> ResolvedCredentials {
        if let cached, cached.expiration.map({ $0.timeIntervalSince(now()) > refreshMargin }) ?? true { return cached }
        if let refreshing { return try await refreshing.value }
        let sources = self.sources
        let task = Task { () throws -> ResolvedCredentials in
            for source in sources {
                if let found = try await source.resolve() { return found }
            }
            throw CredentialsError("no AWS credentials found: tried " + sources.map(\.name).joined(separator: ", "))
        }
        refreshing = task
        resolutions += 1
        defer { refreshing = nil }
        let result = try await task.value
        cached = result
        return result
    }

    /// Forgets the cached credentials (after the server rejected them as expired).
    public func invalidate() { cached = nil }
}
