import AWSCore
import Foundation

/// An object under a storage's prefix. `key` is relative to the prefix.
public struct StoredObject: Sendable, Hashable {
    public var key: String
    public var size: Int64

    public init(key: String, size: Int64) {
        self.key = key
        self.size = size
    }
}

public struct StorageListPage: Sendable {
    public var objects: [StoredObject]
    /// nil when the listing is complete.
    public var next: String?

    public init(objects: [StoredObject], next: String?) {
        self.objects = objects
        self.next = next
    }
}

public struct DeleteFailure: Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var message: String

    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}

public struct StorageError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }

    /// Whether an error says the bucket or container itself does not exist (S3 `NoSuchBucket`, Azure
    /// `ContainerNotFound`, a GCS 404 on the bucket): there is nothing under any prefix of it.
    public static func isMissingContainer(_ error: any Error) -> Bool {
        switch error {
        case let e as S3Error: return e.code == "NoSuchBucket"
        case let e as AzureError: return e.code == "ContainerNotFound"
        case let e as GCSError: return e.status == 404 && e.object == nil
        default: return false
        }
    }
}

/// One place where backups live: an S3 bucket and prefix, a GCS bucket and prefix, an Azure
/// container and prefix, or a directory. Keys are relative to the prefix and use `/`.
public protocol BackupStorage: Sendable {
    /// `s3://bucket/prefix` and so on, for messages.
    var location: String { get }
    /// Whether `deleteBatch` sends one request per batch (S3 DeleteObjects) rather than one per key.
    var batchDeleteSize: Int? { get }

    /// Up to `limit` objects whose keys start with `prefix`, in key order, from the position `token`.
    func listPage(prefix: String, token: String?, limit: Int) async throws -> StorageListPage
    /// The object's bytes; throws when it does not exist.
    func read(_ key: String) async throws -> Data
    /// The object's size, or nil when it does not exist.
    func size(of key: String) async throws -> Int64?
    func write(_ key: String, data: Data) async throws
    /// Streams a local file up (multipart where the service has it).
    func upload(file: String, to key: String) async throws
    /// Streams an object down into a local file.
    func download(_ key: String, to file: String) async throws
    func delete(_ key: String) async throws
    /// Deletes up to `batchDeleteSize` keys in one request; answers the keys that failed.
    func deleteBatch(_ keys: [String]) async throws -> [DeleteFailure]
}

/// A store that keeps old versions of objects (an S3 bucket with versioning): deleting the current
/// objects leaves every earlier version and a delete marker per key, which cost as much as the backup.
public protocol VersionedObjectStore: BackupStorage {
    /// Deletes every version and delete marker under the prefix for good.
    func purgeVersions() async throws -> (deleted: Int, failures: [DeleteFailure])
}

extension BackupStorage {
    public var batchDeleteSize: Int? { nil }

    public func deleteBatch(_ keys: [String]) async throws -> [DeleteFailure] {
        var failures: [DeleteFailure] = []
        for key in keys {
            do { try await delete(key) } catch { failures.append(DeleteFailure(key: key, message: "\(error)")) }
        }
        return failures
    }

    /// Every object under `prefix`.
    public func listAll(prefix: String = "", pageSize: Int = 1000) async throws -> [StoredObject] {
        var all: [StoredObject] = []
        var token: String?
        repeat {
            let page = try await listPage(prefix: prefix, token: token, limit: pageSize)
            all += page.objects
            token = page.next
        } while token != nil
        return all
    }

    /// The count and total bytes of the objects under `prefix`.
    public func measure(prefix: String = "") async throws -> (objects: Int, bytes: Int64) {
        var count = 0
        var bytes: Int64 = 0
        var token: String?
        repeat {
            let page = try await listPage(prefix: prefix, token: token, limit: 1000)
            count += page.objects.count
            bytes += page.objects.reduce(0) { $0 + $1.size }
            token = page.next
        } while token != nil
        return (count, bytes)
    }

    public func exists(_ key: String) async throws -> Bool { try await size(of: key) != nil }
}

/// Joins a storage prefix and a relative key the way TiDB Operator's prefixed bucket does:
/// the prefix trimmed of `/` and suffixed with one, unless it is empty.
public func joinKey(_ prefix: String, _ key: String) -> String {
    let p = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    return p.isEmpty ? key : p + "/" + key
}

/// An object store addressed as a bucket (or container) and a key prefix: S3, GCS, Azure Blob.
protocol PrefixedObjectStore: BackupStorage {
    /// Trimmed of `/`.
    var prefix: String { get }
}

extension PrefixedObjectStore {
    var keyBase: String { prefix.isEmpty ? "" : prefix + "/" }
    func absolute(_ key: String) -> String { joinKey(prefix, key) }
    func relative(_ key: String) -> String { String(key.dropFirst(keyBase.count)) }

    /// Reads the service's pages (of at most `pageLimit` objects, absolute keys) from `token` until
    /// `limit` objects are gathered or the listing ends; keys come back relative to the prefix.
    func gatherPages(token: String?, limit: Int, pageLimit: Int,
                     _ fetch: (_ token: String?, _ max: Int) async throws -> (objects: [StoredObject], next: String?)) async throws -> StorageListPage {
        var objects: [StoredObject] = []
        var next = token
        repeat {
            let page = try await fetch(next, min(pageLimit, limit - objects.count))
            objects += page.objects.map { StoredObject(key: relative($0.key), size: $0.size) }
            next = page.next
        } while next != nil && objects.count < limit
        return StorageListPage(objects: objects, next: next)
    }
}
