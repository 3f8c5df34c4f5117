import AWSCore
import AWSSigning
import BRModel
import Foundation
import StorageHTTP
import Testing
import TestServers

@testable import BackupStorage

func motoClient(_ moto: TestServers.Moto, pathStyle: Bool = true, secret: String? = nil) -> S3Client {
    let creds = AWSCredentials(accessKeyID: moto.accessKeyID, secretAccessKey: secret ?? moto.secretAccessKey)
    var client = S3Client(endpoint: S3Endpoint(base: URL(string: pathStyle ? moto.endpoint : "http://localhost:\(moto.port)")!, region: "us-east-1",
                                               pathStyle: pathStyle, connectHost: pathStyle ? nil : "127.0.0.1"),
                          credentials: .fixed(creds, name: "Secret s3-secret (access_key / secret_key)"))
    client.retry = RetryPolicy(attempts: 2, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50))
    return client
}

func freshBucket(_ client: S3Client, _ name: String) async throws -> String {
    let bucket = "\(name)-\(UInt32.random(in: 0...UInt32.max))"
    try await client.createBucket(bucket)
    return bucket
}

/// Writes `count` small objects, 32 at a time.
func seed(_ storage: any BackupStorage, count: Int, prefix: String = "data/") async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        var next = 0
        func add(_ i: Int) { group.addTask { try await storage.write("\(prefix)\(String(format: "%06d", i)).sst", data: Data("object \(i)".utf8)) } }
        while next < min(32, count) { add(next); next += 1 }
        while try await group.next() != nil {
            if next < count { add(next); next += 1 }
        }
    }
}

@Suite("S3 against moto with signature checks", .serialized)
struct S3StorageTests {
    @Test("path-style: write, read, size, list with pagination, delete; keys with spaces and unicode")
    func pathStyleRoundTrip() async throws {
        let moto = try await TestServers.moto()
        let client = motoClient(moto)
        let bucket = try await freshBucket(client, "path")
        let storage = S3Storage(client: client, bucket: bucket, prefix: "/backups/cluster-1/", writeOptions: S3WriteOptions(storageClass: "STANDARD_IA"))
        #expect(storage.location == "s3://\(bucket)/backups/cluster-1")
        try await storage.write("backupmeta", data: Data("meta".utf8))
        try await storage.write("dir with space/fïle+1.sst", data: Data("x".utf8))
        #expect(try await storage.read("backupmeta") == Data("meta".utf8))
        #expect(try await storage.size(of: "dir with space/fïle+1.sst") == 1)
        #expect(try await storage.size(of: "missing") == nil)
        try await seed(storage, count: 25)
        // The absolute key carries the normalised prefix.
        #expect(try await client.headObject(bucket: bucket, key: "backups/cluster-1/backupmeta") == 4)
        let first = try await storage.listPage(prefix: "data/", token: nil, limit: 10)
        #expect(first.objects.count == 10)
        #expect(first.objects.first?.key == "data/000000.sst")
        #expect(first.next != nil)
        let all = try await storage.listAll(pageSize: 7)
        #expect(all.count == 27)
        #expect(Set(all.map(\.key)).contains("dir with space/fïle+1.sst"))
        let measured = try await storage.measure()
        #expect(measured.objects == 27)
        #expect(measured.bytes == all.reduce(0) { $0 + $1.size })
        try await storage.delete("backupmeta")
        #expect(try await storage.exists("backupmeta") == false)
    }

    @Test("virtual-host addressing sends the bucket in the Host header and is signed for it")
    func virtualHost() async throws {
        let moto = try await TestServers.moto()
        let pathClient = motoClient(moto)
        let bucket = try await freshBucket(pathClient, "vhost")
        let vhost = motoClient(moto, pathStyle: false)
        #expect(vhost.url(bucket: bucket, key: "a/b", query: []).absoluteString == "http://\(bucket).localhost:\(moto.port)/a/b")
        let storage = S3Storage(client: vhost, bucket: bucket, prefix: "p")
        try await storage.write("a/b", data: Data("virtual".utf8))
        // Read back through path-style addressing: the same object.
        #expect(try await pathClient.getObject(bucket: bucket, key: "p/a/b") == Data("virtual".utf8))
        #expect(try await storage.listAll().map(\.key) == ["a/b"])
    }

    @Test("multipart upload with parallel parts and a ranged parallel download give back the same bytes")
    func multipart() async throws {
        let moto = try await TestServers.moto()
        var client = motoClient(moto)
        client.partSize = 5 << 20
        client.partConcurrency = 3
        let bucket = try await freshBucket(client, "multipart")
        let dir = NSTemporaryDirectory() + "mp-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var bytes = [UInt8](repeating: 0, count: 17 << 20 + 12345)
        for i in stride(from: 0, to: bytes.count, by: 4096) { bytes[i] = UInt8(truncatingIfNeeded: i / 4096 &* 31) }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/archive.tgz"))
        let storage = S3Storage(client: client, bucket: bucket, prefix: "dump")
        try await storage.upload(file: dir + "/archive.tgz", to: "backup-1.tgz")
        #expect(try await storage.size(of: "backup-1.tgz") == Int64(bytes.count))
        try await storage.download("backup-1.tgz", to: dir + "/back.tgz")
        let back = try Data(contentsOf: URL(fileURLWithPath: dir + "/back.tgz"))
        #expect(back == Data(bytes))
    }

    @Test("clean deletes several pages of 1,000-key batches with one DeleteObjects call per batch")
    func cleanInBatches() async throws {
        let moto = try await TestServers.moto()
        let client = motoClient(moto)
        let bucket = try await freshBucket(client, "clean")
        // BR's layout: a backup under a path of the bucket.
        let storage = S3Storage(client: client, bucket: bucket, prefix: "cluster-1/bk")
        try await seed(storage, count: 3500)
        // A neighbour that shares the prefix string but not the directory must survive.
        try await client.putObject(bucket: bucket, key: "cluster-1/bk2/keep", data: Data("keep".utf8))
        var settings = CleanSettings()
        settings.pageSize = 1500
        let report = try await Cleaner(storage: storage, settings: settings).clean()
        #expect(report.listed == 3500)
        #expect(report.deleted == 3500)
        // Pages of 1500, 1500, 500 → batches of 1000+500, 1000+500, 500.
        #expect(report.requests == 5)
        #expect(try await storage.listAll().isEmpty)
        #expect(try await client.headObject(bucket: bucket, key: "cluster-1/bk2/keep") == 4)
    }

    @Test("clean where the bucket does not exist is a successful clean of nothing, in one request, not a failure retried")
    func cleanOfAMissingBucket() async throws {
        let moto = try await TestServers.moto()
        let client = motoClient(moto)
        let storage = S3Storage(client: client, bucket: "never-created-\(UInt32.random(in: 0...UInt32.max))", prefix: "cluster-1/bk")
        let report = try await Cleaner(storage: storage).clean()
        #expect(report.containerMissing)
        #expect(report.deleted == 0)
        #expect(report.rounds == 1)
    }

    @Test("a wrong secret key fails naming the bucket and the credential source, never the secret")
    func wrongSecret() async throws {
        let moto = try await TestServers.moto()
        let good = motoClient(moto)
        let bucket = try await freshBucket(good, "wrong")
        let secret = "definitely-not-the-secret-1234"
        let bad = motoClient(moto, secret: secret)
        let error = await #expect(throws: S3Error.self) { try await bad.listObjects(bucket: bucket, prefix: "x/") }
        let text = String(describing: error!)
        #expect(text.contains(bucket))
        #expect(text.contains("SignatureDoesNotMatch"))
        #expect(text.contains("Secret s3-secret"))
        #expect(!text.contains(secret))
        #expect(!text.contains(moto.secretAccessKey))
    }

    @Test("IAM role on a ServiceAccount: STS AssumeRoleWithWebIdentity, then S3 with the session credentials")
    func webIdentity() async throws {
        let moto = try await TestServers.moto()
        let dir = NSTemporaryDirectory() + "wi-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dGlkYjpiciJ9.c2ln".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        let env = ["AWS_ROLE_ARN": moto.roleArn, "AWS_WEB_IDENTITY_TOKEN_FILE": dir + "/token", "AWS_ENDPOINT_URL_STS": moto.endpoint,
                   "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"]
        let chain = CredentialProvider.defaultChain(environment: env)
        let resolved = try await chain.credentials()
        #expect(resolved.source.contains("web identity"))
        #expect(resolved.credentials.sessionToken != nil)
        #expect(resolved.expiration != nil)
        let factory = StorageFactory(environment: env)
        var spec = S3StorageProvider(provider: "aws", region: "us-east-1", bucket: "", prefix: "irsa", endpoint: moto.endpoint)
        let admin = motoClient(moto)
        spec.bucket = try await freshBucket(admin, "irsa")
        let storage = try factory.make(StorageProvider(s3: spec), credentials: chain)
        try await storage.write("backupmeta", data: Data("via role".utf8))
        #expect(try await admin.getObject(bucket: spec.bucket!, key: "irsa/backupmeta") == Data("via role".utf8))
    }

    @Test("IAM role on the pod (kube2iam / EC2): IMDSv2 token, role listing, role credentials, then S3")
    func instanceMetadata() async throws {
        let moto = try await TestServers.moto()
        let imds = try TestServers.fakeMetadata(["--aws-access-key-id", moto.accessKeyID, "--aws-secret-access-key", moto.secretAccessKey,
                                                 "--aws-role", "tidb-backup", "--imds-v2-only"])
        let env = ["AWS_EC2_METADATA_SERVICE_ENDPOINT": imds + "/"]
        let chain = CredentialProvider.defaultChain(environment: env)
        let resolved = try await chain.credentials()
        #expect(resolved.source.contains("instance metadata") && resolved.source.contains("tidb-backup"), "\(resolved.source)")
        #expect(resolved.expiration.map { $0.timeIntervalSinceNow > 3000 } == true)
        let admin = motoClient(moto)
        let bucket = try await freshBucket(admin, "imds")
        let storage = try StorageFactory(environment: env).make(
            StorageProvider(s3: S3StorageProvider(provider: "aws", region: "us-east-1", bucket: bucket, prefix: "pod-role", endpoint: moto.endpoint)),
            credentials: chain)
        try await storage.write("backupmeta", data: Data("via imds".utf8))
        #expect(try await admin.getObject(bucket: bucket, key: "pod-role/backupmeta") == Data("via imds".utf8))
        // Every metadata read carried the session token (the fake refuses v1 requests here).
        let requests = try await TestServers.run(["curl", "-s", imds + "/requests"]).output
        let log = try JSONSerialization.jsonObject(with: Data(requests.utf8)) as? [[String: Any]] ?? []
        let reads = log.filter { ($0["path"] as? String)?.hasPrefix("/latest/meta-data/") == true }
        #expect(reads.count == 2)
        #expect(reads.allSatisfy { $0["imdsToken"] as? Bool == true })
    }
}
