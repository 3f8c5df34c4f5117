import Foundation
import Testing
import TestServers

@testable import AWSSigning

/// Requests signed here and sent with curl to moto's S3, which checks SigV4 signatures
/// (INITIAL_NO_AUTH_ACTION_COUNT lets only the four set-up actions through unsigned).
@Suite("SigV4 against a server that checks signatures", .serialized)
struct MotoSignatureTests {
    static func run(_ args: [String], environment: [String: String] = [:]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        return (TestServers.waitForExit(p) ?? -1, String(decoding: data, as: UTF8.self))
    }

    @Test("moto accepts our signatures for bucket creation, put, list and get, and rejects a wrong secret")
    func moto() async throws {
        let port = TestServers.freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)]
        var env = ProcessInfo.processInfo.environment
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"
        env["PATH"] = TestServers.childPATH
        env["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        server.environment = env
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        // SIGKILL: a child of the test process inherits its blocked signal mask and would ignore SIGTERM.
        defer {
            kill(server.processIdentifier, SIGKILL)
            TestServers.waitForExit(server, timeout: 60)
        }
        let endpoint = "http://127.0.0.1:\(port)"
        var ready = false
        for _ in 0..<100 where !ready {
            try await Task.sleep(for: .milliseconds(100))
            ready = (try? Self.run(["curl", "-s", "-o", "/dev/null", "\(endpoint)/moto-api/"]))?.0 == 0
        }
        try #require(ready, "moto server did not start (pip install 'moto[server]')")
        let keysScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors/moto_keys.py").path
        let (code, keyLine) = try Self.run(["python3", keysScript, endpoint])
        try #require(code == 0, "creating moto credentials failed")
        let parts = keyLine.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        try #require(parts.count == 2)
        let good = SigV4Signer(credentials: AWSCredentials(accessKeyID: parts[0], secretAccessKey: parts[1]), region: "us-east-1", service: "s3")

        func send(_ signer: SigV4Signer, _ method: String, _ path: String, body: String = "") throws -> (Int32, String) {
            let url = URL(string: endpoint + path)!
            let own: [(String, String)] = body.isEmpty ? [] : [("Content-Type", "application/octet-stream")]
            let headers = signer.signedHeaders(method: method, url: url, headers: own, payloadSHA256: SigV4Signer.sha256Hex(Data(body.utf8)), date: Date())
            var args = ["curl", "-s", "-w", "\n%{http_code}", "-X", method]
            for (k, v) in own + headers { args += ["-H", "\(k): \(v)"] }
            if !body.isEmpty { args += ["--data-binary", body] }
            return try Self.run(args + [url.absoluteString])
        }
        func status(_ r: (Int32, String)) -> String { String(r.1.split(separator: "\n").last ?? "") }

        let created = try send(good, "PUT", "/signed-bucket")
        #expect(status(created) == "200", "\(created.1)")
        #expect(created.0 == 0)
        #expect(status(try send(good, "PUT", "/signed-bucket/backups/my%20folder/backupmeta", body: "hello backup")) == "200")
        let list = try send(good, "GET", "/signed-bucket?list-type=2")
        #expect(status(list) == "200")
        #expect(list.1.contains("<Key>backups/my folder/backupmeta</Key>"))

        // Presigned URLs are checked against botocore's vectors only: with signature checks on, moto's
        // server answers 500 to any request without an Authorization header, boto3's own presigned
        // URLs included.
        let get = try send(good, "GET", "/signed-bucket/backups/my%20folder/backupmeta")
        #expect(get.1.hasPrefix("hello backup"), "\(get.1)")

        let wrong = SigV4Signer(credentials: AWSCredentials(accessKeyID: parts[0], secretAccessKey: "not-the-secret"), region: "us-east-1", service: "s3")
        let rejected = try send(wrong, "GET", "/signed-bucket?list-type=2")
        #expect(status(rejected) == "403")
        #expect(rejected.1.contains("SignatureDoesNotMatch"))
    }
}
