import BRModel
import Foundation
import KubeAPI
import KubeModel

extension JobBuilder {
    /// The storage credentials of a Job's pod as TiDB Operator passes them (reference 3.6.1): S3, GCS and
    /// Azure keys from the storage Secret, or nothing where the pod's own identity or a local volume serves.
    func storageEnv(namespace: String, storage: StorageProvider, useKMS: Bool) async throws -> [EnvVar] {
        if let s3 = storage.s3 {
            var endpoint = s3.endpoint ?? ""
            if s3.provider.rawValue == "ceph" {
                if !endpoint.contains("://") && !endpoint.isEmpty {
                    endpoint = "http://" + endpoint
                } else if endpoint.contains("://") && !endpoint.hasPrefix("http://") {
                    throw JobBuildError("InvalidS3Endpoint", "ceph endpoint URI \(endpoint) must start with http://")
                }
            }
            var storageClass = s3.storageClass ?? ""
            var acl = s3.acl ?? ""
            if s3.provider.rawValue == "aws" {
                if storageClass.isEmpty { storageClass = BRDefaults.s3StorageClass }
                if acl.isEmpty { acl = BRDefaults.s3ACL }
            }
            var env: [EnvVar] = [
                EnvVar(name: "S3_PROVIDER", value: s3.provider.rawValue), EnvVar(name: "S3_ENDPOINT", value: endpoint),
                EnvVar(name: "AWS_REGION", value: s3.region ?? ""), EnvVar(name: "AWS_ACL", value: acl),
                EnvVar(name: "AWS_STORAGE_CLASS", value: storageClass),
            ]
            if useKMS { env.append(EnvVar(name: "AWS_DEFAULT_REGION", value: s3.region ?? "")) }
            if let secretName = s3.secretName, !secretName.isEmpty {
                let keys = try await secret(namespace, secretName, reason: "GetS3SecretFailed", what: "s3")
                let missing = ["access_key", "secret_key"].filter { keys[$0] == nil }
                if !missing.isEmpty {
                    throw JobBuildError("s3KeyNotExist", "s3 secret \(namespace)/\(secretName) missing some keys \(missing)")
                }
                env.append(.fromSecret("AWS_ACCESS_KEY_ID", secret: secretName, key: "access_key"))
                env.append(.fromSecret("AWS_SECRET_ACCESS_KEY", secret: secretName, key: "secret_key"))
            }
            return env
        }
        if let gcs = storage.gcs {
            guard !gcs.projectId.isEmpty else { throw JobBuildError("ProjectIdIsEmpty", "the project id is not set") }
            var env: [EnvVar] = [
                EnvVar(name: "GCS_PROJECT_ID", value: gcs.projectId), EnvVar(name: "GCS_OBJECT_ACL", value: gcs.objectAcl ?? ""),
                EnvVar(name: "GCS_BUCKET_ACL", value: gcs.bucketAcl ?? ""), EnvVar(name: "GCS_LOCATION", value: gcs.location ?? ""),
                EnvVar(name: "GCS_STORAGE_CLASS", value: gcs.storageClass ?? ""),
            ]
            if let secretName = gcs.secretName, !secretName.isEmpty {
                let keys = try await secret(namespace, secretName, reason: "GetGcsSecretFailed", what: "gcs")
                guard keys["credentials"] != nil else {
                    throw JobBuildError("gcsKeyNotExist", "secret \(namespace)/\(secretName) missing some keys [credentials]")
                }
                env.append(.fromSecret("GCS_SERVICE_ACCOUNT_JSON_KEY", secret: secretName, key: "credentials"))
            }
            return env
        }
        if let az = storage.azblob {
            var env = [EnvVar(name: "AZURE_ACCESS_TIER", value: (az.accessTier ?? "").isEmpty ? BRDefaults.azureAccessTier : az.accessTier!)]
            let secretName = az.secretName ?? ""
            var keys: [String: JSONValue] = [:]
            if !secretName.isEmpty { keys = try await secret(namespace, secretName, reason: "GetAzblobSecretFailed", what: "azblob") }
            if let account = az.storageAccount, !account.isEmpty {
                env.append(EnvVar(name: "AZURE_STORAGE_ACCOUNT", value: account))
            } else if keys["AZURE_STORAGE_ACCOUNT"] != nil {
                env.append(.fromSecret("AZURE_STORAGE_ACCOUNT", secret: secretName, key: "AZURE_STORAGE_ACCOUNT"))
            } else {
                // TiDB Operator dereferences a missing secret here (reference 9.3.9); we name the fields.
                throw JobBuildError("azblobAccountNotExist",
                                    "azblob storage account is not set: set spec.azblob.storageAccount or AZURE_STORAGE_ACCOUNT in spec.azblob.secretName")
            }
            if (az.sasToken ?? "").isEmpty {
                let aad = ["AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"]
                if aad.allSatisfy({ keys[$0] != nil }) {
                    env += aad.map { .fromSecret($0, secret: secretName, key: $0) }
                } else if keys["AZURE_STORAGE_KEY"] != nil {
                    env.append(.fromSecret("AZURE_STORAGE_KEY", secret: secretName, key: "AZURE_STORAGE_KEY"))
                } else {
                    throw JobBuildError("azblobKeyOrAADMissing", "secret \(namespace)/\(secretName) missing some keys")
                }
            }
            return env
        }
        if storage.local != nil { return [] }
        throw JobBuildError("UnsupportedStorageType", "unsupported storage type \(storage.type.rawValue)")
    }
}
