import AWSCore
import AWSSigning
import BRModel
import KubeModel
import KubeTesting
import Foundation
import Testing

@testable import BackupStorage

/// An in-memory storage whose batch deletes can fail, silently skip, or whose objects come back.
actor FakeObjects {
    var keys: [String: Int64] = [:]
    var batchCalls = 0
    func set(_ k: [String: Int64]) { keys = k }
    func remove(_ k: [String]) { for key in k { keys[key] = nil } }
    func sorted() -> [StoredObject] { keys.keys.sorted().map { StoredObject(key: $0, size: keys[$0]!) } }
    func call() -> Int {
        batchCalls += 1
        return batchCalls
    }
}

struct FakeStorage: BackupStorage {
    enum Fault: Sendable { case none, failEveryOtherBatch, silentEveryOtherBatch, neverDeletes }
    let objects = FakeObjects()
    var fault: Fault = .none
    var location: String { "fake://bucket/prefix" }
    var batchDeleteSize: Int? { 1000 }

    func listPage(prefix: String, token: String?, limit: Int) async throws -> StorageListPage {
        let all = await objects.sorted().filter { $0.key.hasPrefix(prefix) }
        let start = token.flatMap { t in all.firstIndex { $0.key > t } } ?? (token == nil ? 0 : all.count)
        let page = Array(all[start..<min(all.count, start + limit)])
        return StorageListPage(objects: page, next: start + limit < all.count ? page.last?.key : nil)
    }
    func read(_ key: String) async throws -> Data { Data() }
    func size(of key: String) async throws -> Int64? { await objects.keys[key] }
    func write(_ key: String, data: Data) async throws {}
    func upload(file: String, to key: String) async throws {}
    func download(_ key: String, to file: String) async throws {}
    func delete(_ key: String) async throws { await objects.remove([key]) }
    func deleteBatch(_ keys: [String]) async throws -> [DeleteFailure] {
        let n = await objects.call()
        switch fault {
        case .none: await objects.remove(keys)
        case .failEveryOtherBatch:
            if n % 2 == 0 { return keys.map { DeleteFailure(key: $0, message: "code:InternalError msg:try again") } }
            await objects.remove(keys)
        case .silentEveryOtherBatch:
            if n % 2 == 1 { await objects.remove(keys) }
        case .neverDeletes: break
        }
        return []
    }
}

actor SleepLog {
    var slept: [Duration] = []
    func add(_ d: Duration) { slept.append(d) }
}

@Suite("Clean algorithm (reference 6.8.1, 8.13) and local volumes")
struct CleanerTests {
    func filled(_ fault: FakeStorage.Fault, count: Int = 12345) async -> FakeStorage {
        let s = FakeStorage(fault: fault)
        var keys: [String: Int64] = [:]
        for i in 0..<count { keys[String(format: "k%06d", i)] = 1 }
        await s.objects.set(keys)
        return s
    }

    @Test("every batch deleted: ok, no backoff, one request per 1,000 keys")
    func allDeleted() async throws {
        let storage = await filled(.none)
        let log = SleepLog()
        var settings = CleanSettings()
        settings.backoffEnabled = true
        let report = try await Cleaner(storage: storage, settings: settings, sleep: { await log.add($0) }).clean()
        #expect(report.deleted == 12345)
        #expect(report.requests == 10 + 3)  // pages of 10000 and 2345
        #expect(await log.slept.isEmpty)
    }

    @Test("reported failures: 'some objects failed to be deleted', with backoff 100, 200, 400 ms … capped at 1 s")
    func reportedFailures() async throws {
        let storage = await filled(.failEveryOtherBatch)
        let log = SleepLog()
        var settings = CleanSettings()
        settings.backoffEnabled = true
        settings.retryCount = 1
        settings.pageSize = 2000  // each page: one batch fails, one is deleted
        let error = await #expect(throws: StorageError.self) { try await Cleaner(storage: storage, settings: settings, sleep: { await log.add($0) }).clean() }
        #expect(error?.description.contains("some objects failed to be deleted") == true)
        #expect(error?.description.contains("code:InternalError") == true)
        let slept = await log.slept
        #expect(Array(slept.prefix(5)) == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1)])
    }

    @Test("retried rounds finish a clean that failed the first time")
    func retriedRounds() async throws {
        let storage = await filled(.failEveryOtherBatch, count: 5000)
        var settings = CleanSettings()
        settings.pageSize = 1000
        let report = try await Cleaner(storage: storage, settings: settings, sleep: { _ in }).clean()
        #expect(report.rounds > 1)
        #expect(try await storage.listAll().isEmpty)
    }

    @Test("objects reported deleted but still listed: 'some objects are missing to be deleted'; no sleep without backoff")
    func leftovers() async throws {
        let storage = await filled(.neverDeletes, count: 2500)
        let log = SleepLog()
        var settings = CleanSettings()
        settings.retryCount = 2
        let error = await #expect(throws: StorageError.self) { try await Cleaner(storage: storage, settings: settings, sleep: { await log.add($0) }).clean() }
        #expect(error?.description.contains("some objects are missing to be deleted") == true)
        #expect(await log.slept.isEmpty)
    }

    @Test("disableBatchConcurrency deletes object by object")
    func perObject() async throws {
        let storage = await filled(.none, count: 300)
        var settings = CleanSettings()
        settings.disableBatchConcurrency = true
        let report = try await Cleaner(storage: storage, settings: settings).clean()
        #expect(report.requests == 300)
        #expect(await storage.objects.batchCalls == 0)
    }

    @Test("local volume: write, list, upload, download, clean removes files and empty directories, keys cannot escape")
    func local() async throws {
        let root = NSTemporaryDirectory() + "local-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var spec = LocalStorageProvider(volume: Volume(name: "bk"), volumeMount: VolumeMount(name: "bk", mountPath: root), prefix: "/cluster-1//snap/")
        spec.prefix = "/cluster-1//snap/"
        let storage = try StorageFactory(environment: [:]).make(StorageProvider(local: spec))
        #expect(storage.location == "local://\(root)/cluster-1/snap")
        try await storage.write("backupmeta", data: Data("m".utf8))
        try await seed(storage, count: 30, prefix: "1/")
        try "archive".write(toFile: root + "/a.tgz", atomically: true, encoding: .utf8)
        try await storage.upload(file: root + "/a.tgz", to: "dump/a.tgz")
        try await storage.download("dump/a.tgz", to: root + "/b.tgz")
        #expect(try String(contentsOfFile: root + "/b.tgz", encoding: .utf8) == "archive")
        #expect(try await storage.listAll(pageSize: 7).count == 32)
        await #expect(throws: StorageError.self) { try await storage.write("../../escape", data: Data()) }
        let report = try await Cleaner(storage: storage).clean()
        #expect(report.deleted == 32)
        #expect(!FileManager.default.fileExists(atPath: root + "/cluster-1/snap/1"))
        #expect(FileManager.default.fileExists(atPath: root + "/a.tgz"))
    }
}

@Suite("Storage addressing from the spec (reference 6.4, 8.9)")
struct StorageFactoryTests {
    @Test("bucket and prefix normalisation", arguments: [
        ("s3-bucket", "s3-prefix", "s3-bucket", "s3-prefix"),
        ("s3-bucket/a/b", "s3-prefix/c/d", "s3-bucket", "a/b/s3-prefix/c/d"),
        ("bk/a", "/b/", "bk", "a/b"),
        ("bk", "", "bk", ""),
    ])
    func normalise(_ bucket: String, _ prefix: String, _ wantBucket: String, _ wantPrefix: String) {
        let (b, p) = StorageFactory.normalise(bucket: bucket, prefix: prefix)
        #expect(b == wantBucket)
        #expect(p == wantPrefix)
    }

    @Test("endpoints and addressing per provider")
    func endpoints() throws {
        let f = StorageFactory(environment: [:])
        #expect(try f.s3Endpoint(S3StorageProvider(provider: "aws", region: "us-west-2")).base.absoluteString == "https://s3.us-west-2.amazonaws.com")
        #expect(try f.s3Endpoint(S3StorageProvider(provider: "aws")).base.absoluteString == "https://s3.amazonaws.com")
        let oss = try f.s3Endpoint(S3StorageProvider(provider: "alibaba", region: "cn-hangzhou"))
        #expect(oss.base.absoluteString == "https://oss-cn-hangzhou.aliyuncs.com")
        #expect(oss.pathStyle == false)
        var forced = S3StorageProvider(provider: "netease", region: "r", endpoint: "http://nos.local:8080")
        forced.forcePathStyle = true
        #expect(try f.s3Endpoint(forced).pathStyle == true)
        #expect(try f.s3Endpoint(S3StorageProvider(provider: "ceph", endpoint: "http://10.0.0.1")).pathStyle == true)
        #expect(throws: StorageError.self) { try f.s3Endpoint(S3StorageProvider(provider: "minio")) }
        #expect(throws: StorageError.self) { try f.s3Endpoint(S3StorageProvider(provider: "ceph", endpoint: "://host:80")) }
        #expect(throws: StorageError.self) { try f.make(StorageProvider()) }
    }

    @Test("XML answers: entities, CDATA, namespaces, empty elements")
    func xml() throws {
        let doc = try AWSCore.XMLElement.parse("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>false</IsTruncated>
            <Contents><Key>a&amp;b &lt;c&gt; &#x263A;</Key><Size>12</Size></Contents><Contents><Key><![CDATA[x&y]]></Key><Size/></Contents></ListBucketResult>
            """)
        #expect(doc.name == "ListBucketResult")
        #expect(doc.all("Contents").map { $0["Key"] } == ["a&b <c> ☺", "x&y"])
        #expect(doc.all("Contents")[1]["Size"] == "")
        #expect(throws: XMLParseError.self) { try AWSCore.XMLElement.parse("<a><b></a>") }
    }

    @Test("XML from the network: any mutation of a real answer parses or throws, never traps; nesting past the limit is refused")
    func xmlHostileInput() throws {
        let answer = Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated>
            <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
            <Contents><Key>backup/&quot;x&quot;.sst</Key><LastModified>2026-12-06T10:00:00.000Z</LastModified><Size>42</Size></Contents>
            <!-- a comment --><Contents><Key><![CDATA[a]]b]]></Key><Size/></Contents></ListBucketResult>
            """.utf8)
        var rng = SplitMix64(state: 28)
        var parsed = 0
        for _ in 0..<3000 {
            var bytes = answer
            for _ in 0..<Int(rng.next() % 6 + 1) {
                let at = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 4 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(Array("<>/&;![]\"=".utf8)[Int(rng.next() % 10)], at: at)
                default: bytes = Array(bytes[..<at])
                }
                if bytes.isEmpty { break }
            }
            if (try? AWSCore.XMLElement.parse(Data(bytes))) != nil { parsed += 1 }
        }
        #expect(parsed > 0, "some mutations leave a well-formed answer")
        let deep = String(repeating: "<a>", count: 100_000) + String(repeating: "</a>", count: 100_000)
        #expect(throws: XMLParseError.self) { try AWSCore.XMLElement.parse(deep) }
        let fine = String(repeating: "<a>", count: 64) + "x" + String(repeating: "</a>", count: 64)
        #expect(try AWSCore.XMLElement.parse(fine).name == "a")
    }
}

@Suite("Credential chain")
struct CredentialTests {
    struct Counting: CredentialSource {
        let counter: FakeObjects
        var name: String { "counting" }
        func resolve() async throws -> ResolvedCredentials? {
            _ = await counter.call()
            try await Task.sleep(for: .milliseconds(50))
            return ResolvedCredentials(credentials: AWSCredentials(accessKeyID: "AKIDTEMP", secretAccessKey: "s"), expiration: Date().addingTimeInterval(200), source: name)
        }
    }

    @Test("one refresh in flight for concurrent callers; credentials close to expiry are refreshed")
    func oneRefresh() async throws {
        let counter = FakeObjects()
        let provider = CredentialProvider(sources: [Counting(counter: counter)], refreshMargin: 60)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { _ = try await provider.credentials() } }
            try await group.waitForAll()
        }
        #expect(await counter.batchCalls == 1)
        // 200 s left > 60 s margin: cached.
        _ = try await provider.credentials()
        #expect(await counter.batchCalls == 1)
        let soon = CredentialProvider(sources: [Counting(counter: counter)], refreshMargin: 300)
        _ = try await soon.credentials()
        _ = try await soon.credentials()
        #expect(await counter.batchCalls == 3)
    }

    @Test("environment source: keys, the older AWS_SECRET_KEY name, a half-configured environment is an error; the chain says what it tried")
    func environment() async throws {
        let env = try await EnvironmentCredentialSource(environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_KEY": "sek", "AWS_SESSION_TOKEN": "tok"]).resolve()
        #expect(env?.credentials.secretAccessKey == "sek")
        #expect(env?.credentials.sessionToken == "tok")
        #expect(String(describing: env!.credentials).contains("sek") == false)
        await #expect(throws: CredentialsError.self) { try await EnvironmentCredentialSource(environment: ["AWS_ACCESS_KEY_ID": "AKID"]).resolve() }
        let chain = CredentialProvider.defaultChain(environment: ["AWS_EC2_METADATA_DISABLED": "true"])
        let error = await #expect(throws: CredentialsError.self) { try await chain.credentials() }
        #expect(error?.description.contains("environment variables") == true)
        #expect(error?.description.contains("web identity") == true)
    }
}
