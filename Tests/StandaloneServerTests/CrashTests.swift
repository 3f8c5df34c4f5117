import Foundation
import KubeModel
import KubeTesting
import Testing
import TestServers

@testable import StandaloneServer
import StandaloneTesting

/// The real `tidb-backup-operator standalone` process, killed with SIGKILL during a burst of writes.
@Suite("Durability of the standalone server", .serialized)
struct CrashTests {
    static let binary = RepoPaths.path(".build/debug/tidb-backup-operator")

    /// Starts the server binary and returns it with the port it printed.
    func start(_ dir: String) async throws -> (Process, Int) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["standalone", "--data-dir", dir, "--listen", "127.0.0.1:0"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let port: Int = try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                var text = ""
                let deadline = Date().addingTimeInterval(30)
                while Date() < deadline {
                    let chunk = out.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    text += String(decoding: chunk, as: UTF8.self)
                    if let r = text.range(of: #"serving https://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                        let port = Int(text[r].split(separator: ":").last!)!
                        continuation.resume(returning: port)
                        return
                    }
                }
                continuation.resume(throwing: Harness.HarnessError(description: "server did not print its address: \(text)"))
            }
        }
        return (p, port)
    }

    @Test("kill -9 during a burst of creates loses no acknowledged object, and resourceVersions keep growing")
    func killDuringBurst() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            Issue.record("\(Self.binary) is not built (scripts/test runs swift build --build-tests first)")
            return
        }
        let dir = Harness.temporaryDirectory()
        let (server, port) = try await start(dir)
        let token = try DataDirectory(dir).token()
        let acked = dir + "/acked"
        // Three writers, each its own process (a shell started from the test process inherits blocked
        // signals, so background jobs and `wait` inside one shell are not reliable here).
        func writer(_ w: Int) -> String {
            """
            i=0; while [ $i -lt 400 ]; do i=$((i+1)); n="burst-\(w)-$i"
              code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "\(dir)/tls.crt" \
                -H "Authorization: Bearer \(token)" -H 'Content-Type: application/json' \
                -d "{\\"apiVersion\\":\\"pingcap.com/v1alpha1\\",\\"kind\\":\\"Backup\\",\\"metadata\\":{\\"name\\":\\"$n\\"},\\"spec\\":{\\"br\\":{\\"cluster\\":\\"c\\"},\\"s3\\":{\\"provider\\":\\"aws\\",\\"bucket\\":\\"b\\"}}}" \
                https://127.0.0.1:\(port)/apis/pingcap.com/v1alpha1/namespaces/default/backups) || code=000
              if [ "$code" = 201 ]; then echo "$n" >> "\(acked).\(w)"; fi
              if [ "$code" = 000 ]; then break; fi
            done
            """
        }
        let writers = (1...3).map { w in Task { try await Harness.runAsync("/bin/sh", ["-c", writer(w)], timeout: 120) } }
        // Let some writes land, then kill the server without warning.
        _ = await eventually(30) {
            (try? String(contentsOfFile: acked + ".1", encoding: .utf8))?.split(separator: "\n").count ?? 0 >= 40
        }
        kill(server.processIdentifier, SIGKILL)
        TestServers.waitForExit(server, timeout: 60)
        for w in writers { _ = try await w.value }
        let acknowledged = (1...3).flatMap { w in
            ((try? String(contentsOfFile: "\(acked).\(w)", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        #expect(acknowledged.count >= 40)

        let h = try await Harness(directory: dir)
        defer { Task { await h.stop() } }
        let backups = ResourceRegistry.product.find(group: "pingcap.com", version: "v1alpha1", plural: "backups")!
        let stored = Set(try h.server.core.list(backups, namespace: "default").items.compactMap { $0.value(at: ["metadata", "name"])?.stringValue })
        let lost = acknowledged.filter { !stored.contains($0) }
        #expect(lost.isEmpty, "acknowledged but lost after kill -9: \(lost.prefix(10))")
        let maxRV = try h.server.core.list(backups, namespace: "default").items
            .compactMap { Int64($0.value(at: ["metadata", "resourceVersion"])?.stringValue ?? "") }.max() ?? 0
        let after = try h.server.core.create(backups, namespace: "default", body: [
            "apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "metadata": ["name": "after-restart"],
            "spec": ["br": ["cluster": "c"], "s3": ["provider": "aws", "bucket": "b"]],
        ]).object
        #expect((Int64(after.value(at: ["metadata", "resourceVersion"])?.stringValue ?? "") ?? 0) > maxRV)
    }
}
