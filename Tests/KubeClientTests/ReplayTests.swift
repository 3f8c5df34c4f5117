import Foundation
import Hummingbird
import KubeAPI
import KubeClient
import KubeModel
import Synchronization
import Testing

/// The client against what a real API server (v1.36) answered, recorded in
/// `shared/fixtures/kube-apiserver-1.36/http/`: a tiny server plays each recorded response back, and
/// checks that our client asked as curl did (method, path, query), so the client is held to the real
/// server's shapes, not to our own server's.
@Suite("KubeClient replayed against recorded kube-apiserver 1.36 exchanges", .serialized)
struct KubeClientReplayTests {
    static let directory: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/fixtures/kube-apiserver-1.36/http").path
    }()

    struct Exchange: Sendable {
        var method: String
        var path: String
        var query: [String: String]
        var status: Int
        var contentType: String
        var body: Data
    }

    static func exchange(_ name: String) throws -> Exchange {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name + ".json"))
        let doc = try JSONParser.parse(data).value
        let request = doc["request"] ?? .null, response = doc["response"] ?? .null
        let full = request["path"]?.stringValue ?? ""
        let parts = full.split(separator: "?", maxSplits: 1).map(String.init)
        var body = Data()
        if let b = response["body"] {
            body = b.stringValue.map { Data($0.utf8) } ?? Data(b.bytes())
        }
        return Exchange(method: request["method"]?.stringValue ?? "", path: parts[0], query: parts.count > 1 ? Self.query(parts[1]) : [:],
                        status: response["status"]?.intValue.map(Int.init) ?? 0,
                        contentType: response.value(at: ["headers", "Content-Type"])?.stringValue ?? "application/json", body: body)
    }

    static func query(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            out[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        return out
    }

    /// Serves the exchange set before each call; notes what was asked.
    final class Replayer: Sendable {
        let next = Mutex<Exchange?>(nil)
        let asked = Mutex<[(method: String, path: String, query: [String: String])]>([])
    }

    func withReplay(_ body: (KubeClient, Replayer) async throws -> Void) async throws {
        let replayer = Replayer()
        let router = Router()
        router.on("**", method: .get) { request, _ in try Self.answer(request, replayer) }
        router.on("**", method: .post) { request, _ in try Self.answer(request, replayer) }
        router.on("**", method: .put) { request, _ in try Self.answer(request, replayer) }
        router.on("**", method: .patch) { request, _ in try Self.answer(request, replayer) }
        router.on("**", method: .delete) { request, _ in try Self.answer(request, replayer) }
        let (port, task) = try await serving(router)
        defer { task.cancel() }
        try await body(try KubeClient(config: KubeConfig(server: "http://127.0.0.1:\(port)")), replayer)
    }

    static func answer(_ request: Request, _ replayer: Replayer) throws -> Response {
        replayer.asked.withLock { $0.append((request.method.rawValue, request.uri.path, Self.query(request.uri.query ?? ""))) }
        guard let e = replayer.next.withLock({ $0 }) else { return Response(status: .internalServerError) }
        return Response(status: HTTPResponse.Status(code: e.status), headers: [.contentType: e.contentType],
                        body: .init(byteBuffer: ByteBuffer(bytes: e.body)))
    }

    /// Plays `name` back for one call, and checks that the client asked what was recorded.
    func play<T>(_ name: String, _ replayer: Replayer, _ call: () async throws -> T) async throws -> Result<T, any Error> {
        let e = try Self.exchange(name)
        replayer.next.withLock { $0 = e }
        replayer.asked.withLock { $0 = [] }
        let result: Result<T, any Error>
        do { result = .success(try await call()) } catch { result = .failure(error) }
        let asked = replayer.asked.withLock { $0 }
        #expect(asked.count == 1, "\(name): \(asked.count) requests")
        #expect(asked.first?.method == e.method && asked.first?.path == e.path, "\(name): asked \(String(describing: asked.first)), recorded \(e.method) \(e.path)")
        for (k, v) in e.query where k != "fieldManager" { #expect(asked.first?.query[k] == v, "\(name): query \(k)") }
        return result
    }

    func apiError<T>(_ result: Result<T, any Error>) -> KubeAPIError? {
        if case .failure(let e) = result { return e as? KubeAPIError }
        return nil
    }

    @Test("reads, errors and their Status fields as the real server answers them")
    func replay() async throws {
        try await withReplay { client, r in
            let got = try await play("backup-get-200", r) { try await client.get(.backups, namespace: "test1", name: "demo1-backup-s3") }
            #expect(try got.get().value(at: ["metadata", "name"]) == "demo1-backup-s3")

            let missing = apiError(try await play("backup-get-missing-404", r) { try await client.get(.backups, namespace: "test1", name: "does-not-exist") })
            #expect(missing?.isNotFound == true && missing?.message == "backups.pingcap.com \"does-not-exist\" not found")

            let object: JSONValue = ["apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "metadata": ["name": "demo1-backup-s3", "namespace": "test1"], "spec": [:]]
            let duplicate = apiError(try await play("backup-create-duplicate-409", r) { try await client.create(.backups, namespace: "test1", object: object) })
            #expect(duplicate?.isAlreadyExists == true && duplicate?.isConflict == false, "\(String(describing: duplicate))")

            let created = try await play("backup-create-201", r) { try await client.create(.backups, namespace: "test1", object: object) }
            #expect((try? created.get())?.value(at: ["metadata", "uid"]) != nil)

            let invalid = apiError(try await play("backup-create-invalid-name-422", r) { try await client.create(.backups, namespace: "test1", object: object) })
            #expect(invalid?.isInvalid == true && invalid?.causes.first?.field == "metadata.name", "\(String(describing: invalid))")

            let stale = apiError(try await play("backup-update-stale-rv-409", r) {
                try await client.update(.backups, namespace: "test1", object: ["apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
                                                                               "metadata": ["name": "page-bk-1", "namespace": "test1", "resourceVersion": "1"]])
            })
            #expect(stale?.isConflict == true, "\(String(describing: stale))")

            // Pages: the continue token the server hands out is sent back as it came.
            let page1 = try await play("backup-list-limit2-page1", r) { try await client.list(.backups, namespace: "test1", options: ListOptions(limit: 2)) }.get()
            #expect(page1.items.count == 2 && page1.continueToken != nil)
            let page2 = try await play("backup-list-limit2-page2", r) {
                try await client.list(.backups, namespace: "test1", options: ListOptions(limit: 2, continueToken: page1.continueToken))
            }.get()
            #expect(page2.items.count == 2)
            let page3 = try await play("backup-list-limit2-page3", r) {
                try await client.list(.backups, namespace: "test1", options: ListOptions(limit: 2, continueToken: page2.continueToken))
            }.get()
            #expect(page3.continueToken == nil)
            let expired = apiError(try await play("backup-list-continue-after-compaction-410", r) {
                try await client.list(.backups, namespace: "test1", options: ListOptions(limit: 2, continueToken: page1.continueToken))
            })
            #expect(expired?.isGone == true && expired?.reason == "Expired", "\(String(describing: expired))")

            let unauthorized = apiError(try await play("auth-bad-token-401", r) { try await client.list(.backups, namespace: "test1", options: ListOptions()) })
            #expect(unauthorized?.code == 401, "\(String(describing: unauthorized))")
        }
    }
}
