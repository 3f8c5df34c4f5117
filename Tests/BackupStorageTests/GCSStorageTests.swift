import AWSCore
import BRModel
import Crypto
import Foundation
import StorageHTTP
import Testing
import TestServers
import _CryptoExtras

@testable import BackupStorage

func gcsClient(_ gcs: TestServers.GCS) -> GCSClient {
    var client = GCSClient(base: URL(string: gcs.endpoint)!, tokens: nil)
    client.retry = RetryPolicy(attempts: 2, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50))
    return client
}

func freshGCSBucket(_ client: GCSClient, _ name: String) async throws -> String {
    let bucket = "\(name)-\(UInt32.random(in: 0...UInt32.max))"
    try await client.createBucket(bucket, project: "test-project", location: "US", storageClass: "STANDARD")
    return bucket
}

@Suite("GCS against gcp-storage-emulator", .serialized)
struct GCSStorageTests {
    @Test("write, read, size, list, delete; keys with slashes, spaces and unicode; the factory's STORAGE_EMULATOR_HOST")
    func roundTrip() async throws {
        let gcs = try await TestServers.gcs()
        let admin = gcsClient(gcs)
        let bucket = try await freshGCSBucket(admin, "rt")
        let factory = StorageFactory(environment: ["STORAGE_EMULATOR_HOST": String(gcs.endpoint.dropFirst("http://".count))])
        var spec = GCSStorageProvider(projectId: "test-project")
        spec.bucket = bucket + "/backups"
        spec.prefix = "/cluster-1/"
        spec.storageClass = "NEARLINE"
        spec.objectAcl = "private"
        let storage = try factory.make(StorageProvider(gcs: spec))
        #expect(storage.location == "gcs://\(bucket)/backups/cluster-1")
        try await storage.write("backupmeta", data: Data("meta".utf8))
        try await storage.write("dir with space/fïle+1.sst", data: Data("x".utf8))
        #expect(try await storage.read("backupmeta") == Data("meta".utf8))
        #expect(try await storage.size(of: "dir with space/fïle+1.sst") == 1)
        #expect(try await storage.size(of: "missing") == nil)
        #expect(try await admin.size(bucket: bucket, object: "backups/cluster-1/backupmeta") == 4)
        try await seed(storage, count: 25)
        let all = try await storage.listAll(pageSize: 7)
        #expect(all.count == 27)
        #expect(Set(all.map(\.key)).contains("dir with space/fïle+1.sst"))
        #expect(all.first { $0.key == "backupmeta" }?.size == 4)
        try await storage.delete("backupmeta")
        #expect(try await storage.size(of: "backupmeta") == nil)
        // Deleting what is already gone is not an error (a retried clean).
        try await storage.delete("backupmeta")
        let error = await #expect(throws: GCSError.self) { _ = try await storage.read("backupmeta") }
        #expect(String(describing: error!).contains("gs://\(bucket)/backups/cluster-1/backupmeta"))
    }

    @Test("resumable upload in chunks and a ranged parallel download give back the same bytes")
    func largeObjects() async throws {
        let gcs = try await TestServers.gcs()
        var client = gcsClient(gcs)
        client.chunkSize = 256 << 10
        let bucket = try await freshGCSBucket(client, "large")
        let storage = GCSStorage(client: client, bucket: bucket, prefix: "dump")
        let dir = NSTemporaryDirectory() + "gcs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var bytes = [UInt8](repeating: 0, count: (256 << 10) * 5 + 12_345)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/in"))
        try await storage.upload(file: dir + "/in", to: "archive.tar.gz")
        #expect(try await storage.size(of: "archive.tar.gz") == Int64(bytes.count))
        try await storage.download("archive.tar.gz", to: dir + "/out")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out")) == Data(bytes))
    }

    @Test("clean deletes in batch requests of 100; a neighbour prefix survives")
    func cleanInBatches() async throws {
        let gcs = try await TestServers.gcs()
        let client = gcsClient(gcs)
        let bucket = try await freshGCSBucket(client, "clean")
        let storage = GCSStorage(client: client, bucket: bucket, prefix: "bk")
        try await seed(storage, count: 250)
        try await client.write(bucket: bucket, object: "bk2/keep", data: Data("keep".utf8))
        let report = try await Cleaner(storage: storage).clean()
        #expect(report.listed == 250)
        #expect(report.deleted == 250)
        #expect(report.requests == 3)
        #expect(try await storage.listAll().isEmpty)
        #expect(try await client.size(bucket: bucket, object: "bk2/keep") == 4)
    }

    @Test("batch answers: a failed part is reported for its object; a 404 part counts as deleted")
    func batchStatuses() {
        let body = "--b1\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n--b1\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{}\r\n--b1\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\n\r\n--b1--"
        #expect(GCSClient.batchStatuses(Data(body.utf8), contentType: "multipart/mixed; boundary=b1") == [204, 403, 404])
        #expect(GCSClient.batchStatuses(Data(body.utf8), contentType: "multipart/mixed; boundary=\"b1\"") == [204, 403, 404])
    }
}

@Suite("Google credentials", .serialized)
struct GoogleCredentialTests {
    static func key(tokenURI: String) throws -> (json: String, publicKeyFile: String) {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let file = NSTemporaryDirectory() + "sa-\(UUID().uuidString).pem"
        try key.publicKey.pemRepresentation.write(toFile: file, atomically: true, encoding: .utf8)
        let doc: [String: String] = ["type": "service_account", "project_id": "p", "private_key_id": "k1", "private_key": key.pkcs8PEMRepresentation,
                                     "client_email": "br@p.iam.gserviceaccount.com", "token_uri": tokenURI]
        return (String(decoding: try JSONSerialization.data(withJSONObject: doc), as: UTF8.self), file)
    }

    @Test("a service-account key's RS256 assertion is accepted by a verifier (python cryptography); one fetch for concurrent callers")
    func serviceAccount() async throws {
        let port = TestServers.freePort()
        let tokenURI = "http://127.0.0.1:\(port)/token"
        let signed = try Self.key(tokenURI: tokenURI)
        _ = try TestServers.fakeMetadata(["--google-public-key", signed.publicKeyFile], port: port)
        let factory = StorageFactory(environment: ["GCS_SERVICE_ACCOUNT_JSON_KEY": signed.json])
        let client = try factory.gcsClient()
        let tokens = try #require(client.tokens)
        let got = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<10 { group.addTask { try await tokens.token().value } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(got.count == 1 && got.first?.hasPrefix("ya29.sa-") == true, "\(got)")
        #expect(await tokens.fetches == 1)
        #expect(tokens.sourceName == "service account key br@p.iam.gserviceaccount.com")

        // Another key with the same token URI: the verifier holds the first key's public half, so
        // it is rejected, and the message carries Google's error, not the assertion or the key.
        let other = try Self.key(tokenURI: tokenURI)
        let wrong = try StorageFactory(environment: ["GCS_SERVICE_ACCOUNT_JSON_KEY": other.json]).gcsClient()
        let error = await #expect(throws: TokenError.self) { _ = try await wrong.tokens!.token() }
        let text = String(describing: error!)
        #expect(text.contains("invalid_grant") && text.contains("Invalid JWT Signature"), "\(text)")
        #expect(!text.contains("PRIVATE KEY") && !text.contains("eyJ"))
    }

    @Test("without a key the metadata server's token is used, asked with Metadata-Flavor: Google")
    func metadataServer() async throws {
        let base = try TestServers.fakeMetadata([])
        let client = try StorageFactory(environment: ["GCE_METADATA_HOST": String(base.dropFirst("http://".count))]).gcsClient()
        let token = try await client.tokens!.token()
        #expect(token.value.hasPrefix("ya29.metadata-"))
        #expect(token.expires.map { $0.timeIntervalSinceNow > 3000 } == true)
        #expect(token.source.contains("metadata server"))
    }

    @Test("bad keys are refused with a message naming what is wrong")
    func badKeys() throws {
        #expect(throws: TokenError.self) { _ = try StorageFactory(environment: ["GCS_SERVICE_ACCOUNT_JSON_KEY": "not json"]).gcsClient() }
        #expect(throws: TokenError.self) {
            _ = try StorageFactory(environment: ["GCS_SERVICE_ACCOUNT_JSON_KEY": #"{"type":"authorized_user","client_email":"a","private_key":"b"}"#]).gcsClient()
        }
        let source = ServiceAccountTokenSource(key: GCSServiceAccountKey(type: "service_account", client_email: "a@b", private_key: "garbage"))
        #expect(throws: TokenError.self) { _ = try source.assertion(at: Date()) }
    }
}
