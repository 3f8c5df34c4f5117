import AWSCore
import BRModel
import Foundation
import Testing
import TestServers

@testable import BackupStorage

/// There is no Azure Blob emulator that installs from PyPI or apt (Azurite is an npm package), so
/// these run against `Tests/Fixtures/fake_azure_blob.py`: an in-memory service whose Shared Key
/// check is Microsoft's own signer from azure-storage-blob, applied to each request as received.
@Suite("Azure Blob against a fake service that checks signatures with Microsoft's signer", .serialized)
struct AzureBlobStorageTests {
    static let account = "tidbbackups"
    static let key = Data((0..<64).map { UInt8(($0 * 37 + 11) % 256) }).base64EncodedString()
    static let sas = "sv=2021-12-02&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00:00:00Z&sig=c2lnbmF0dXJl%2Bvalue%3D"

    struct Service {
        var base: String
        var env: [String: String]
    }

    static func start() throws -> Service {
        let base = try TestServers.fakeAzureBlob(account: account, key: key, sas: String(sas))
        return Service(base: base, env: ["AZURE_STORAGE_ACCOUNT": account, "AZURE_STORAGE_KEY": key, "AZURE_BLOB_ENDPOINT": "\(base)/\(account)"])
    }

    static func storage(_ service: Service, container: String, prefix: String, sasToken: String? = nil, env: [String: String]? = nil,
                        tier: String? = nil) async throws -> any BackupStorage {
        var spec = AzblobStorageProvider(container: container, prefix: prefix)
        spec.sasToken = sasToken
        spec.accessTier = tier
        return try StorageFactory(environment: env ?? service.env).make(StorageProvider(azblob: spec))
    }

    static func createContainer(_ service: Service) async throws -> String {
        let name = "c\(UInt32.random(in: 0...UInt32.max))"
        let client = try StorageFactory(environment: service.env).azureClient(AzblobStorageProvider(container: name))
        try await client.createContainer(name)
        return name
    }

    static func requests(_ service: Service) throws -> [[String: Any]] {
        try JSONSerialization.jsonObject(with: Data(TestServers.run(["curl", "-s", service.base + "/__requests"]).output.utf8)) as? [[String: Any]] ?? []
    }

    @Test("Shared Key: write, read, size, list with markers, delete; keys with spaces and unicode; the access tier on every write")
    func sharedKeyRoundTrip() async throws {
        let service = try Self.start()
        let container = try await Self.createContainer(service)
        let storage = try await Self.storage(service, container: container + "/backups", prefix: "/cluster-1/", tier: "Cool")
        #expect(storage.location == "azure://\(container)/backups/cluster-1")
        try await storage.write("backupmeta", data: Data("meta".utf8))
        try await storage.write("dir with space/fïle+1.sst", data: Data("x".utf8))
        #expect(try await storage.read("backupmeta") == Data("meta".utf8))
        #expect(try await storage.size(of: "dir with space/fïle+1.sst") == 1)
        #expect(try await storage.size(of: "missing") == nil)
        try await seed(storage, count: 25)
        let first = try await storage.listPage(prefix: "data/", token: nil, limit: 10)
        #expect(first.objects.count == 10 && first.next != nil)
        let all = try await storage.listAll(pageSize: 7)
        #expect(all.count == 27)
        #expect(Set(all.map(\.key)).contains("dir with space/fïle+1.sst"))
        try await storage.delete("backupmeta")
        try await storage.delete("backupmeta")
        #expect(try await storage.size(of: "backupmeta") == nil)
        let puts = try Self.requests(service).filter { $0["method"] as? String == "PUT" && ($0["path"] as? String)?.contains("/cluster-1/") == true }
        #expect(puts.count == 27 && puts.allSatisfy { $0["tier"] as? String == "Cool" && $0["auth"] as? String == "SharedKey" })
    }

    @Test("large files: blocks in parallel and a block list; ranged parallel download gives back the same bytes")
    func largeObjects() async throws {
        let service = try Self.start()
        let container = try await Self.createContainer(service)
        var client = try StorageFactory(environment: service.env).azureClient(AzblobStorageProvider(container: container))
        client.blockSize = 256 << 10
        let storage = AzureBlobStorage(client: client, container: container, prefix: "dump", accessTier: "Hot")
        let dir = NSTemporaryDirectory() + "az-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var bytes = [UInt8](repeating: 0, count: (256 << 10) * 4 + 777)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 11) }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/in"))
        try await storage.upload(file: dir + "/in", to: "archive.tar.gz")
        #expect(try await storage.size(of: "archive.tar.gz") == Int64(bytes.count))
        try await storage.download("archive.tar.gz", to: dir + "/out")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out")) == Data(bytes))
        let blocks = try Self.requests(service).filter { ($0["query"] as? [String: String])?["comp"] == "block" }
        #expect(blocks.count == 5)
    }

    @Test("clean deletes object by object, 100 at a time; a neighbour prefix survives")
    func clean() async throws {
        let service = try Self.start()
        let container = try await Self.createContainer(service)
        let storage = try await Self.storage(service, container: container, prefix: "bk")
        try await seed(storage, count: 150)
        let neighbour = try await Self.storage(service, container: container, prefix: "bk2")
        try await neighbour.write("keep", data: Data("keep".utf8))
        let report = try await Cleaner(storage: storage).clean()
        #expect(report.listed == 150 && report.deleted == 150 && report.requests == 150)
        #expect(try await storage.listAll().isEmpty)
        #expect(try await neighbour.size(of: "keep") == 4)
    }

    @Test("a wrong key fails naming the container and the credential source, never the key")
    func wrongKey() async throws {
        let service = try Self.start()
        let container = try await Self.createContainer(service)
        let wrongKey = Data(repeating: 7, count: 64).base64EncodedString()
        var env = service.env
        env["AZURE_STORAGE_KEY"] = wrongKey
        let storage = try await Self.storage(service, container: container, prefix: "p", env: env)
        let error = await #expect(throws: AzureError.self) { try await storage.write("x", data: Data()) }
        let text = String(describing: error!)
        #expect(text.contains("azure://\(container)/p/x") && text.contains("AuthenticationFailed") && text.contains("shared key of storage account tidbbackups"),
                "\(text)")
        #expect(!text.contains(wrongKey) && !text.contains(Self.key))
    }

    @Test("SAS token from the spec: appended to every request; a different signature is refused")
    func sasToken() async throws {
        let service = try Self.start()
        let container = try await Self.createContainer(service)
        let env = ["AZURE_BLOB_ENDPOINT": "\(service.base)/\(Self.account)"]
        var spec = AzblobStorageProvider(container: container, prefix: "sas")
        spec.storageAccount = Self.account
        spec.sasToken = Self.sas
        let storage = try StorageFactory(environment: env).make(StorageProvider(azblob: spec))
        try await storage.write("backupmeta", data: Data("via sas".utf8))
        #expect(try await storage.read("backupmeta") == Data("via sas".utf8))
        spec.sasToken = Self.sas.replacingOccurrences(of: "sig=c2ln", with: "sig=eDl4")
        let refused = try StorageFactory(environment: env).make(StorageProvider(azblob: spec))
        let error = await #expect(throws: AzureError.self) { _ = try await refused.read("backupmeta") }
        #expect(String(describing: error!).contains("SAS token"))
    }

    @Test("Azure AD client credentials: a token from the identity platform, sent as a bearer; a wrong secret is refused without echoing it")
    func azureAD() async throws {
        let service = try Self.start()
        let container = try await Self.createContainer(service)
        let secret = "aad-client-secret-value-42"
        let identity = try TestServers.fakeMetadata(["--azure-client-id", "app-1", "--azure-client-secret", secret])
        var env = ["AZURE_STORAGE_ACCOUNT": Self.account, "AZURE_BLOB_ENDPOINT": "\(service.base)/\(Self.account)", "AZURE_CLIENT_ID": "app-1",
                   "AZURE_CLIENT_SECRET": secret, "AZURE_TENANT_ID": "tenant-9", "AZURE_AUTHORITY_HOST": identity]
        let storage = try await Self.storage(service, container: container, prefix: "aad", env: env)
        try await storage.write("backupmeta", data: Data("via aad".utf8))
        #expect(try await storage.read("backupmeta") == Data("via aad".utf8))
        #expect(try Self.requests(service).last?["auth"] as? String == "Bearer")
        env["AZURE_CLIENT_SECRET"] = "not-the-secret-9"
        let refused = try await Self.storage(service, container: container, prefix: "aad", env: env)
        let error = await #expect(throws: TokenError.self) { _ = try await refused.read("backupmeta") }
        let text = String(describing: error!)
        #expect(text.contains("AADSTS7000215") && text.contains("app-1") && !text.contains("not-the-secret-9"), "\(text)")
    }

    @Test("credentials are chosen by TiDB Operator's precedence; missing ones are named")
    func precedence() throws {
        let spec = AzblobStorageProvider(container: "c", prefix: "p")
        let full = ["AZURE_STORAGE_ACCOUNT": "a", "AZURE_STORAGE_KEY": Self.key, "AZURE_CLIENT_ID": "i", "AZURE_CLIENT_SECRET": "s", "AZURE_TENANT_ID": "t"]
        #expect(try StorageFactory(environment: full).azureClient(spec).auth.name.contains("Azure AD"))
        var withSAS = spec
        withSAS.sasToken = "sv=1&sig=x"
        #expect(try StorageFactory(environment: full).azureClient(withSAS).auth.name.contains("SAS"))
        #expect(try StorageFactory(environment: ["AZURE_STORAGE_ACCOUNT": "a", "AZURE_STORAGE_KEY": Self.key]).azureClient(spec).auth.name.contains("shared key"))
        #expect(try StorageFactory(environment: ["AZURE_STORAGE_ACCOUNT": "a", "AZURE_STORAGE_KEY": Self.key]).azureClient(spec).base.absoluteString
                == "https://a.blob.core.windows.net")
        let noAccount = #expect(throws: StorageError.self) { _ = try StorageFactory(environment: [:]).azureClient(spec) }
        #expect(String(describing: noAccount!).contains("spec.azblob.storageAccount"))
        let noKey = #expect(throws: StorageError.self) { _ = try StorageFactory(environment: ["AZURE_STORAGE_ACCOUNT": "a"]).azureClient(spec) }
        #expect(String(describing: noKey!).contains("AZURE_STORAGE_KEY"))
        #expect(throws: StorageError.self) { _ = try StorageFactory(environment: ["AZURE_STORAGE_ACCOUNT": "a", "AZURE_STORAGE_KEY": "not base64!"]).azureClient(spec) }
    }

    @Test("Shared Key signature equals the one Microsoft's Python SDK computes for the same request (recorded)")
    func recordedSignature() {
        // Recorded with azure-storage-blob 12.31.1's SharedKeyCredentialPolicy: account "acct", key
        // base64("k" × 32), GET of this URL with these two headers.
        let url = URL(string: "http://127.0.0.1:1/acct/c?restype=container&comp=list&prefix=a%2Fb")!
        let headers = [("x-ms-date", "Mon, 23 Nov 2026 10:00:00 GMT"), ("x-ms-version", "2021-12-02")]
        let text = AzureBlobClient.stringToSign(method: "GET", url: url, headers: headers, account: "acct")
        #expect(text == "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Mon, 23 Nov 2026 10:00:00 GMT\nx-ms-version:2021-12-02\n/acct/acct/c\ncomp:list\nprefix:a/b\nrestype:container")
        #expect(AzureBlobClient.sharedKeySignature(text, key: Data(repeating: UInt8(ascii: "k"), count: 32)) == "U9ITqM4YNEbpfzqWoZJ+2wMY5Rj71+tnFDJ2X6Bxo6Q=")
    }
}
