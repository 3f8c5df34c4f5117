import BRModel
import Foundation
import Testing
import TestServers

@testable import BackupManager

@Suite("TiDB connection through MariaDB Connector/C, and the GC life-time guard (reference 6.2)", .serialized)
struct TiDBConnectionTests {
    static func connect(_ db: TestServers.MariaDB, password: String? = nil) async throws -> TiDBConnection {
        try await TiDBConnection.connect(TiDBEndpoint(host: "127.0.0.1", port: db.port, user: db.user, password: password ?? db.password),
                                         environment: [:], deadline: Date())
    }

    static func lifeTime(_ db: TestServers.MariaDB) throws -> String {
        try db.sql("SELECT variable_value FROM mysql.tidb WHERE variable_name = 'tikv_gc_life_time'")
    }

    @Test("queries return rows; quoting escapes quotes and backslashes")
    func queries() async throws {
        let db = try await TestServers.mariaDB()
        let c = try await Self.connect(db)
        #expect(try await c.execute("SELECT 1, NULL, 'x'") == [["1", nil, "x"]])
        let tricky = "it's a \\ \"test\"; DROP TABLE x; --"
        #expect(try await c.execute("SELECT \(c.quote(tricky))") == [[tricky]])
        await #expect(throws: TiDBError.self) { _ = try await c.execute("SELEC nonsense") }
    }

    @Test("a wrong password fails naming the user and host, never the password")
    func wrongPassword() async throws {
        let db = try await TestServers.mariaDB()
        let wrong = "not-the-password-77"
        let error = await #expect(throws: TiDBError.self) { _ = try await Self.connect(db, password: wrong) }
        let text = String(describing: error!)
        #expect(text.contains("backup@127.0.0.1:\(db.port)") && text.contains("Access denied"), "\(text)")
        #expect(!text.contains(wrong))
    }

    @Test("the guard raises a shorter life time to 72h for the run and puts the old value back, also when the run fails")
    func guardRaisesAndResets() async throws {
        let db = try await TestServers.mariaDB()
        _ = try await db.sql("UPDATE mysql.tidb SET variable_value = '10m0s' WHERE variable_name = 'tikv_gc_life_time'")
        let c = try await Self.connect(db)
        let lines = LockedLines()
        let guarded = GCLifeTimeGuard(connection: c, target: nil, log: { lines.append($0) })
        let during = try await guarded.run { try Self.lifeTime(db) }
        #expect(during == "72h")
        #expect(try Self.lifeTime(db) == "10m0s")
        #expect(lines.all.contains { $0.contains("raised from 10m0s to 72h") })

        struct ToolFailed: Error {}
        await #expect(throws: ToolFailed.self) {
            _ = try await GCLifeTimeGuard(connection: c, target: "100h", log: { _ in }).run { () async throws -> Int in
                #expect(try Self.lifeTime(db) == "100h")
                throw ToolFailed()
            }
        }
        #expect(try Self.lifeTime(db) == "10m0s")
    }

    @Test("the original value is recorded before raising and cleared after the reset; a run after one killed mid-way puts the recorded value back, not the raised one it finds")
    func guardRemembersTheOriginal() async throws {
        let db = try await TestServers.mariaDB()
        _ = try await db.sql("UPDATE mysql.tidb SET variable_value = '10m0s' WHERE variable_name = 'tikv_gc_life_time'")
        let c = try await Self.connect(db)
        let memo = LockedLines()
        func guarded(_ recalled: String?) -> GCLifeTimeGuard {
            GCLifeTimeGuard(connection: c, target: nil, log: { _ in }, recall: { recalled }, remember: { memo.append($0 ?? "<cleared>") })
        }
        // A normal run: recorded while raised, cleared after.
        _ = try await guarded(nil).run { () async throws -> Int in
            #expect(memo.all == ["10m0s"])
            return 0
        }
        #expect(memo.all == ["10m0s", "<cleared>"])
        // The state a run killed with SIGKILL leaves: the life time raised, the original recorded.
        _ = try await db.sql("UPDATE mysql.tidb SET variable_value = '72h' WHERE variable_name = 'tikv_gc_life_time'")
        _ = try await guarded("10m0s").run { try Self.lifeTime(db) }
        #expect(try Self.lifeTime(db) == "10m0s", "the retry put the original back")
    }

    @Test("a life time already longer than the target is left alone; bad values fail with TiDB Operator's reasons")
    func guardEdges() async throws {
        let db = try await TestServers.mariaDB()
        let c = try await Self.connect(db)
        _ = try await db.sql("UPDATE mysql.tidb SET variable_value = '100h' WHERE variable_name = 'tikv_gc_life_time'")
        #expect(try await GCLifeTimeGuard(connection: c, target: "72h", log: { _ in }).run { try Self.lifeTime(db) } == "100h")
        let configured = await #expect(throws: GCLifeTimeGuard.Failure.self) {
            _ = try await GCLifeTimeGuard(connection: c, target: "three days", log: { _ in }).run { 0 }
        }
        #expect(configured?.reason == "ParseConfiguredTikvGCLifeTimeFailed")
        _ = try await db.sql("UPDATE mysql.tidb SET variable_value = 'forever' WHERE variable_name = 'tikv_gc_life_time'")
        let old = await #expect(throws: GCLifeTimeGuard.Failure.self) { _ = try await GCLifeTimeGuard(connection: c, target: nil, log: { _ in }).run { 0 } }
        #expect(old?.reason == "ParseOldTikvGCLifeTimeFailed")
        _ = try await db.sql("UPDATE mysql.tidb SET variable_value = '10m0s' WHERE variable_name = 'tikv_gc_life_time'")
    }

    @Test("connecting keeps retrying until the deadline, then reports the last error")
    func connectRetries() async throws {
        let port = TestServers.freePort()
        let started = Date()
        let error = await #expect(throws: TiDBError.self) {
            _ = try await TiDBConnection.connect(TiDBEndpoint(host: "127.0.0.1", port: port, password: "x"), environment: [:],
                                                 deadline: Date().addingTimeInterval(1.5), retryEvery: .milliseconds(500))
        }
        #expect(Date().timeIntervalSince(started) >= 1.0)
        #expect(String(describing: error!).contains("root@127.0.0.1:\(port)"))
    }

    @Test("without the library the error names the package to install; a library without the functions is named too")
    func missingLibrary() throws {
        let missing = #expect(throws: TiDBError.self) { _ = try MariaDBLibrary.load(paths: ["/nonexistent/libmariadb.so.3"]) }
        #expect(String(describing: missing!).contains("apt-get install libmariadb3"))
        let wrong = #expect(throws: TiDBError.self) { _ = try MariaDBLibrary.load(paths: ["libz.so.1"]) }
        #expect(String(describing: wrong!).contains("mysql_init"))
        #expect(throws: Never.self) { _ = try MariaDBLibrary.load(paths: MariaDBLibrary.candidates) }
    }
}

final class LockedLines: @unchecked Sendable {
    private var lines: [String] = []
    private let lock = NSLock()
    func append(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}
