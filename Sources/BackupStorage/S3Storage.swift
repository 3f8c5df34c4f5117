import AWSCore
import Foundation

/// An S3 bucket and prefix.
public struct S3Storage: PrefixedObjectStore {
    public var client: S3Client
    public var bucket: String
    public var prefix: String
    public var writeOptions: S3WriteOptions

    public init(client: S3Client, bucket: String, prefix: String, writeOptions: S3WriteOptions = S3WriteOptions()) {
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        self.writeOptions = writeOptions
    }

    public var location: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/\(prefix)") }
    public var batchDeleteSize: Int? { 1000 }


    public func listPage(prefix sub: String, token: String?, limit: Int) async throws -> StorageListPage {
        try await gatherPages(token: token, limit: limit, pageLimit: 1000) { next, max in
            let page = try await client.listObjects(bucket: bucket, prefix: keyBase + sub, continuationToken: next, maxKeys: max)
            return (page.objects.map { StoredObject(key: $0.key, size: $0.size) }, page.nextContinuationToken)
        }
    }

    public func read(_ key: String) async throws -> Data { try await client.getObject(bucket: bucket, key: absolute(key)) }
    public func size(of key: String) async throws -> Int64? { try await client.headObject(bucket: bucket, key: absolute(key)) }
    public func write(_ key: String, data: Data) async throws {
        try await client.putObject(bucket: bucket, key: absolute(key), data: data, options: writeOptions)
    }
    public func upload(file: String, to key: String) async throws {
        try await client.uploadFile(file, bucket: bucket, key: absolute(key), options: writeOptions)
    }
    public func download(_ key: String, to file: String) async throws {
        try await client.downloadFile(bucket: bucket, key: absolute(key), to: file)
    }
    public func delete(_ key: String) async throws { try await client.deleteObject(bucket: bucket, key: absolute(key)) }

    public func deleteBatch(_ keys: [String]) async throws -> [DeleteFailure] {
        let failures = try await client.deleteObjects(bucket: bucket, keys: keys.map(absolute))
        return failures.map { DeleteFailure(key: relative($0.key), message: "code:\($0.code) msg:\($0.message)") }
    }
}

extension S3Storage: VersionedObjectStore {
    /// Every version and delete marker left under the prefix, deleted for good, 1,000 a request.
    public func purgeVersions() async throws -> (deleted: Int, failures: [DeleteFailure]) {
        var deleted = 0
        var failures: [DeleteFailure] = []
        var marker: (keyMarker: String, versionIDMarker: String)?
        repeat {
            let page: S3VersionPage
            do {
                page = try await client.listObjectVersions(bucket: bucket, prefix: keyBase, keyMarker: marker?.keyMarker,
                                                           versionIDMarker: marker?.versionIDMarker)
            } catch let e as S3Error where marker == nil && [403, 405, 501].contains(e.status) || e.code == "NotImplemented" {
                // Credentials without s3:ListBucketVersions, or an S3-compatible service without
                // versions: there is nothing this clean can see, as before.
                return (0, [])
            }
            marker = page.next
            if page.versions.isEmpty { continue }
            let failed = try await client.deleteObjects(bucket: bucket, objects: page.versions.map { ($0.key, $0.versionID) })
            deleted += page.versions.count - failed.count
            failures += failed.map { DeleteFailure(key: relative($0.key), message: "code:\($0.code) msg:\($0.message)") }
        } while marker != nil
        return (deleted, failures)
    }
}
