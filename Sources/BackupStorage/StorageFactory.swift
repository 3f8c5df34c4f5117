import AWSCore
import AsyncHTTPClient
import BRModel
import Foundation

/// Builds the storage a Backup or Restore spec names, with credentials from the process environment
/// (the Job's env: keys from the Secret, or the pod's identity).
public struct StorageFactory: Sendable {
    public var environment: [String: String]
    public var http: HTTPClient

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, http: HTTPClient = .shared) {
        self.environment = environment
        self.http = http
    }

    /// The bucket and prefix after TiDB Operator's normalisation (reference 6.4.1): sub-paths of the
    /// bucket move into the prefix.
    public static func normalise(bucket: String, prefix: String) -> (bucket: String, prefix: String) {
        let trim = CharacterSet(charactersIn: "/")
        let joined = bucket.trimmingCharacters(in: trim) + "/" + prefix.trimmingCharacters(in: trim)
        guard let slash = joined.firstIndex(of: "/") else { return (joined, "") }
        return (String(joined[..<slash]), String(joined[joined.index(after: slash)...]).trimmingCharacters(in: trim))
    }

    /// The endpoint of an S3 provider (seed 000's list) when the spec gives none.
    public static func defaultEndpoint(provider: String, region: String) -> String? {
        switch provider {
        case "aws", "": region == "us-east-1" ? "https://s3.amazonaws.com" : "https://s3.\(region).amazonaws.com"
        case "alibaba": "https://oss-\(region).aliyuncs.com"
        case "digitalocean": "https://\(region).digitaloceanspaces.com"
        case "dreamhost": "https://objects-us-east-1.dream.io"
        case "ibmcos": "https://s3.\(region).cloud-object-storage.appdomain.cloud"
        case "netease": "https://nos-\(region).126.net"
        case "wasabi": region == "us-east-1" ? "https://s3.wasabisys.com" : "https://s3.\(region).wasabisys.com"
        default: nil
        }
    }

    /// Path-style unless the provider is one that only serves virtual-host addressing;
    /// `forcePathStyle` wins (reference 6.4.1).
    public static func pathStyle(provider: String, forcePathStyle: Bool?) -> Bool {
        forcePathStyle ?? !(provider == "alibaba" || provider == "netease")
    }

    public func s3Endpoint(_ s3: S3StorageProvider) throws -> S3Endpoint {
        let region = nonEmpty(s3.region) ?? nonEmpty(environment["AWS_REGION"]) ?? "us-east-1"
        let provider = s3.provider.rawValue
        let text: String
        if let endpoint = nonEmpty(s3.endpoint) {
            text = endpoint
        } else if let fallback = Self.defaultEndpoint(provider: provider, region: region) {
            text = fallback
        } else {
            throw StorageError("spec.s3.endpoint is required for provider \(provider)")
        }
        guard let url = URL(string: text), let scheme = url.scheme, scheme == "http" || scheme == "https", url.host != nil else {
            throw StorageError("spec.s3.endpoint \(text) is not an http(s) URL with a host")
        }
        return S3Endpoint(base: url, region: region, pathStyle: Self.pathStyle(provider: provider, forcePathStyle: s3.forcePathStyle))
    }

    /// The GCS client for this environment: the emulator named by `STORAGE_EMULATOR_HOST` (no
    /// credentials), else a service-account key (`GCS_SERVICE_ACCOUNT_JSON_KEY`, which the Job
    /// takes from the Secret's `credentials`, or the file `GOOGLE_APPLICATION_CREDENTIALS` names),
    /// else the metadata server (the VM's or Workload Identity's service account).
    public func gcsClient() throws -> GCSClient {
        if let emulator = nonEmpty(environment["STORAGE_EMULATOR_HOST"]) {
            let text = emulator.contains("://") ? emulator : "http://" + emulator
            guard let url = URL(string: text), url.host != nil else { throw StorageError("STORAGE_EMULATOR_HOST \(emulator) is not a host or URL") }
            return GCSClient(base: url, tokens: nil, http: http)
        }
        let source: any TokenSource
        if let json = nonEmpty(environment["GCS_SERVICE_ACCOUNT_JSON_KEY"]) {
            source = ServiceAccountTokenSource(key: try GCSServiceAccountKey.parse(Data(json.utf8)), http: http)
        } else if let file = nonEmpty(environment["GOOGLE_APPLICATION_CREDENTIALS"]) {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw StorageError("GOOGLE_APPLICATION_CREDENTIALS names \(file), which cannot be read")
            }
            source = ServiceAccountTokenSource(key: try GCSServiceAccountKey.parse(data), http: http)
        } else {
            source = GCEMetadataTokenSource(host: nonEmpty(environment["GCE_METADATA_HOST"]) ?? "metadata.google.internal", http: http)
        }
        return GCSClient(tokens: BearerTokenProvider(source: source), http: http)
    }

    /// The Azure client: the account from `spec.azblob.storageAccount` or `AZURE_STORAGE_ACCOUNT`;
    /// credentials by TiDB Operator's precedence — the spec's SAS token, then Azure AD client
    /// credentials (`AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_TENANT_ID`; `AZURE_AUTHORITY_HOST`
    /// for sovereign clouds), then the shared key `AZURE_STORAGE_KEY`. `AZURE_BLOB_ENDPOINT` replaces
    /// `https://<account>.blob.core.windows.net` (for Azurite-style emulators, path-style with the
    /// account as the first segment).
    public func azureClient(_ az: AzblobStorageProvider) throws -> AzureBlobClient {
        guard let account = nonEmpty(az.storageAccount) ?? nonEmpty(environment["AZURE_STORAGE_ACCOUNT"]) else {
            throw StorageError("no Azure storage account: set spec.azblob.storageAccount or AZURE_STORAGE_ACCOUNT in spec.azblob.secretName")
        }
        let auth: AzureAuth
        if let sas = nonEmpty(az.sasToken) {
            auth = .sas(sas)
        } else if let id = nonEmpty(environment["AZURE_CLIENT_ID"]), let secret = nonEmpty(environment["AZURE_CLIENT_SECRET"]),
                  let tenant = nonEmpty(environment["AZURE_TENANT_ID"]) {
            let source = AzureClientSecretTokenSource(tenant: tenant, clientID: id, clientSecret: secret,
                                                      authorityHost: nonEmpty(environment["AZURE_AUTHORITY_HOST"]) ?? "https://login.microsoftonline.com",
                                                      http: http)
            auth = .bearer(BearerTokenProvider(source: source))
        } else if let key = nonEmpty(environment["AZURE_STORAGE_KEY"]) {
            guard let decoded = Data(base64Encoded: key), !decoded.isEmpty else {
                throw StorageError("AZURE_STORAGE_KEY of storage account \(account) is not base64 (copy the key as the portal shows it)")
            }
            auth = .sharedKey(account: account, key: decoded)
        } else {
            throw StorageError("missing Azure credentials for storage account \(account): set spec.azblob.sasToken, or AZURE_CLIENT_ID, "
                               + "AZURE_CLIENT_SECRET and AZURE_TENANT_ID, or AZURE_STORAGE_KEY in spec.azblob.secretName")
        }
        var base: URL?
        if let endpoint = nonEmpty(environment["AZURE_BLOB_ENDPOINT"]) {
            guard let url = URL(string: endpoint), url.host != nil else { throw StorageError("AZURE_BLOB_ENDPOINT \(endpoint) is not a URL") }
            base = url
        }
        return AzureBlobClient(account: account, auth: auth, base: base, http: http)
    }

    /// The storage for a spec; `prefix` overrides the spec's prefix when given.
    public func make(_ spec: StorageProvider, credentials: CredentialProvider? = nil) throws -> any BackupStorage {
        switch spec.type {
        case .s3:
            let s3 = spec.s3!
            let (bucket, prefix) = Self.normalise(bucket: s3.bucket ?? "", prefix: s3.prefix ?? "")
            guard !bucket.isEmpty else { throw StorageError("spec.s3.bucket is empty") }
            let client = S3Client(endpoint: try s3Endpoint(s3), credentials: credentials ?? CredentialProvider.defaultChain(environment: environment, http: http),
                                  http: http)
            let options = S3WriteOptions(acl: nonEmpty(s3.acl), storageClass: nonEmpty(s3.storageClass), sse: nonEmpty(s3.sse))
            return S3Storage(client: client, bucket: bucket, prefix: prefix, writeOptions: options)
        case .local:
            let local = spec.local!
            return LocalStorage(root: cleanPath(local.volumeMount.mountPath + "/" + (local.prefix ?? "")))
        case .gcs:
            let gcs = spec.gcs!
            let (bucket, prefix) = Self.normalise(bucket: gcs.bucket ?? "", prefix: gcs.prefix ?? "")
            guard !bucket.isEmpty else { throw StorageError("spec.gcs.bucket is empty") }
            let options = GCSWriteOptions(storageClass: nonEmpty(gcs.storageClass), predefinedAcl: nonEmpty(gcs.objectAcl))
            return GCSStorage(client: try gcsClient(), bucket: bucket, prefix: prefix, options: options)
        case .azblob:
            let az = spec.azblob!
            let (container, prefix) = Self.normalise(bucket: az.container ?? "", prefix: az.prefix ?? "")
            guard !container.isEmpty else { throw StorageError("spec.azblob.container is empty") }
            let tier = nonEmpty(az.accessTier) ?? nonEmpty(environment["AZURE_ACCESS_TIER"])
            return AzureBlobStorage(client: try azureClient(az), container: container, prefix: prefix, accessTier: tier)
        case .unknown:
            throw StorageError("no storage given: set one of spec.s3, spec.gcs, spec.azblob, spec.local")
        }
    }
}

func nonEmpty(_ s: String?) -> String? { s.flatMap { $0.isEmpty ? nil : $0 } }

/// `path.Clean` for absolute and relative paths: no empty or `.` segments, `..` resolved.
func cleanPath(_ p: String) -> String {
    let absolute = p.hasPrefix("/")
    var parts: [Substring] = []
    for part in p.split(separator: "/") {
        if part == "." { continue }
        if part == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
        if part == "..", absolute { continue }
        parts.append(part)
    }
    let joined = parts.joined(separator: "/")
    return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
}
