import BRModel
import BackupStorage
import Foundation

/// rclone's configuration file (the chart's `rclone.conf` Secret): INI sections, one per remote.
/// Only the remotes our storage clients can serve are understood: `s3` (AWS, Ceph, MinIO and other
/// S3-compatible providers), `google cloud storage` / `gcs`, `azureblob`.
public struct RcloneConfig: Sendable {
    public var sections: [String: [String: String]] = [:]

    public init(_ text: String) {
        var current: String?
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                sections[current!] = sections[current!] ?? [:]
                continue
            }
            guard let current, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            sections[current]?[key] = value
        }
    }

    /// Values that must never be printed: credentials of every section.
    public var secrets: [String] {
        let names = ["secret_access_key", "session_token", "key", "sas_url", "service_account_credentials", "client_secret", "password", "token"]
        return sections.values.flatMap { s in names.compactMap { s[$0] } }.filter { $0.count >= 4 }
    }
}

/// A remote data source resolved to one of our storages: the provider settings and the extra
/// environment (credentials) its client needs.
struct ResolvedRemote {
    var provider: StorageProvider
    var environment: [String: String]
    var location: RemoteLocation
}

enum RemoteSourceResolver {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `spec` is the Restore's own storage settings (used for URL locations); `rclone` the text of the
    /// rclone configuration, when the Restore names its Secret.
    static func resolve(_ text: String, spec: StorageProvider, rclone: String?) throws -> ResolvedRemote {
        let location: RemoteLocation
        switch RemoteLocation.parse(text) {
        case .failure(let f): throw Failure(description: f.description)
        case .success(let l): location = l
        }
        if let remote = location.rcloneRemote {
            guard let rclone, !rclone.isEmpty else {
                throw Failure(description: "\(text) names rclone remote \(remote), but no rclone configuration reached the job (dataSource.remote.secretName)")
            }
            let config = RcloneConfig(rclone)
            guard let section = config.sections[remote] else {
                throw Failure(description: "the rclone configuration has no remote [\(remote)]; it defines \(config.sections.keys.sorted().joined(separator: ", "))")
            }
            return try fromRclone(section, remote: remote, location: location)
        }
        var provider = StorageProvider()
        switch location.scheme {
        case "s3":
            var s3 = spec.s3 ?? S3StorageProvider(provider: "aws")
            s3.bucket = location.bucket
            s3.prefix = nil
            s3.path = nil
            provider.s3 = s3
        case "gcs":
            var gcs = spec.gcs ?? GCSStorageProvider(projectId: "")
            gcs.bucket = location.bucket
            gcs.prefix = nil
            gcs.path = nil
            provider.gcs = gcs
        default:
            var az = spec.azblob ?? AzblobStorageProvider()
            az.container = location.bucket
            az.prefix = nil
            az.path = nil
            provider.azblob = az
        }
        return ResolvedRemote(provider: provider, environment: [:], location: location)
    }

    static func fromRclone(_ s: [String: String], remote: String, location: RemoteLocation) throws -> ResolvedRemote {
        var provider = StorageProvider()
        var env: [String: String] = [:]
        let type = (s["type"] ?? "").lowercased()
        switch type {
        case "s3":
            let name = (s["provider"] ?? "AWS").lowercased()
            var s3 = S3StorageProvider(provider: S3Provider(rawValue: name == "other" ? "aws" : name))
            s3.bucket = location.bucket
            s3.region = s["region"].flatMap { $0.isEmpty ? nil : $0 }
            s3.endpoint = s["endpoint"].flatMap { $0.isEmpty ? nil : $0 }
            if s["force_path_style"] == "true" { s3.forcePathStyle = true }
            if s["env_auth"] != "true" {
                guard let id = s["access_key_id"], let secret = s["secret_access_key"], !id.isEmpty, !secret.isEmpty else {
                    throw Failure(description: "rclone remote [\(remote)] sets neither env_auth = true nor access_key_id and secret_access_key")
                }
                env["AWS_ACCESS_KEY_ID"] = id
                env["AWS_SECRET_ACCESS_KEY"] = secret
                if let token = s["session_token"], !token.isEmpty { env["AWS_SESSION_TOKEN"] = token }
            }
            provider.s3 = s3
        case "google cloud storage", "gcs":
            var gcs = GCSStorageProvider(projectId: s["project_number"] ?? "")
            gcs.bucket = location.bucket
            if let json = s["service_account_credentials"], !json.isEmpty {
                env["GCS_SERVICE_ACCOUNT_JSON_KEY"] = json
            } else if let file = s["service_account_file"], !file.isEmpty {
                env["GOOGLE_APPLICATION_CREDENTIALS"] = file
            }
            provider.gcs = gcs
        case "azureblob":
            var az = AzblobStorageProvider()
            az.container = location.bucket
            if let account = s["account"], !account.isEmpty { env["AZURE_STORAGE_ACCOUNT"] = account }
            if let key = s["key"], !key.isEmpty { env["AZURE_STORAGE_KEY"] = key }
            provider.azblob = az
        default:
            throw Failure(description: "rclone remote [\(remote)] has type \"\(type)\"; the job reads s3, google cloud storage and azureblob remotes")
        }
        return ResolvedRemote(provider: provider, environment: env, location: location)
    }
}
