import BRModel
import Foundation
import KubeModel

#if canImport(Glibc)
import Glibc
#endif

public struct TiDBError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// MariaDB Connector/C (Debian's `libmariadb3`), loaded when a TiDB connection is first needed, so
/// the build and every job that does not talk to TiDB go without it.
final class MariaDBLibrary: @unchecked Sendable {
    typealias InitFn = @convention(c) (OpaquePointer?) -> OpaquePointer?
    typealias OptionsFn = @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer?) -> Int32
    typealias SSLSetFn = @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?,
                                         UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> CChar
    typealias ConnectFn = @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?,
                                          UnsafePointer<CChar>?, UInt32, UnsafePointer<CChar>?, UInt) -> OpaquePointer?
    typealias QueryFn = @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    typealias StoreFn = @convention(c) (OpaquePointer?) -> OpaquePointer?
    typealias FetchRowFn = @convention(c) (OpaquePointer?) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    typealias NumFieldsFn = @convention(c) (OpaquePointer?) -> UInt32
    typealias FreeFn = @convention(c) (OpaquePointer?) -> Void
    typealias ErrorFn = @convention(c) (OpaquePointer?) -> UnsafePointer<CChar>?
    typealias EscapeFn = @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, UnsafePointer<CChar>?, UInt) -> UInt

    let initialize: InitFn, options: OptionsFn, sslSet: SSLSetFn, connect: ConnectFn, query: QueryFn, storeResult: StoreFn
    let fetchRow: FetchRowFn, numFields: NumFieldsFn, freeResult: FreeFn, error: ErrorFn, close: FreeFn, escape: EscapeFn

    static let candidates = ["libmariadb.so.3", "/usr/lib/x86_64-linux-gnu/libmariadb.so.3", "/usr/lib/aarch64-linux-gnu/libmariadb.so.3",
                             "libmariadb.so"]
    nonisolated(unsafe) static var loaded: MariaDBLibrary?
    static let lock = NSLock()

    static func shared(environment: [String: String]) throws -> MariaDBLibrary {
        lock.lock()
        defer { lock.unlock() }
        if let loaded { return loaded }
        let library = try load(paths: (environment["TIDB_BACKUP_MANAGER_LIBMARIADB"].map { [$0] } ?? []) + candidates)
        loaded = library
        return library
    }

    /// Opens the first of `paths` that loads and resolves the functions used here.
    static func load(paths: [String]) throws -> MariaDBLibrary {
        guard let handle = paths.lazy.compactMap({ dlopen($0, RTLD_NOW) }).first else {
            throw TiDBError("connecting to TiDB needs MariaDB Connector/C: install the libmariadb3 package (apt-get install libmariadb3), "
                            + "or name the library in TIDB_BACKUP_MANAGER_LIBMARIADB")
        }
        func symbol<T>(_ name: String, _: T.Type) throws -> T {
            guard let p = dlsym(handle, name) else { throw TiDBError("libmariadb has no \(name); is it MariaDB Connector/C 3?") }
            return unsafeBitCast(p, to: T.self)
        }
        return MariaDBLibrary(
            initialize: try symbol("mysql_init", InitFn.self), options: try symbol("mysql_options", OptionsFn.self),
            sslSet: try symbol("mysql_ssl_set", SSLSetFn.self), connect: try symbol("mysql_real_connect", ConnectFn.self),
            query: try symbol("mysql_query", QueryFn.self), storeResult: try symbol("mysql_store_result", StoreFn.self),
            fetchRow: try symbol("mysql_fetch_row", FetchRowFn.self), numFields: try symbol("mysql_num_fields", NumFieldsFn.self),
            freeResult: try symbol("mysql_free_result", FreeFn.self), error: try symbol("mysql_error", ErrorFn.self),
            close: try symbol("mysql_close", FreeFn.self), escape: try symbol("mysql_real_escape_string", EscapeFn.self))
    }

    init(initialize: InitFn, options: OptionsFn, sslSet: SSLSetFn, connect: ConnectFn, query: QueryFn, storeResult: StoreFn, fetchRow: FetchRowFn,
         numFields: NumFieldsFn, freeResult: FreeFn, error: ErrorFn, close: FreeFn, escape: EscapeFn) {
        self.initialize = initialize
        self.options = options
        self.sslSet = sslSet
        self.connect = connect
        self.query = query
        self.storeResult = storeResult
        self.fetchRow = fetchRow
        self.numFields = numFields
        self.freeResult = freeResult
        self.error = error
        self.close = close
        self.escape = escape
    }
}

/// Where and how to reach TiDB: `spec.from` / `spec.to`, the password from `BACKUP_MANAGER_PASSWORD`
/// and, with client TLS, the certificates mounted at `/var/lib/tidb-client-tls` (reference 6.2).
public struct TiDBEndpoint: Sendable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var tlsDirectory: String?
    public var verifyServer: Bool

    public init(host: String, port: Int = 4000, user: String = "root", password: String, tlsDirectory: String? = nil, verifyServer: Bool = true) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.tlsDirectory = tlsDirectory
        self.verifyServer = verifyServer
    }

    public init(_ config: TiDBAccessConfig, environment: [String: String], clientTLS: Bool, skipClientCA: Bool) {
        self.init(host: config.host, port: Int(config.port ?? 4000), user: (config.user ?? "").isEmpty ? "root" : config.user!,
                  password: environment["BACKUP_MANAGER_PASSWORD"] ?? "",
                  tlsDirectory: clientTLS ? (environment["TIDB_CLIENT_TLS_DIR"] ?? "/var/lib/tidb-client-tls") : nil,
                  verifyServer: !skipClientCA)
    }

    public var address: String { "\(user)@\(host):\(port)" }
}

/// One connection to TiDB through MariaDB Connector/C. Calls block their thread, so they run on a
/// dedicated dispatch queue, never on the cooperative pool.
public final class TiDBConnection: @unchecked Sendable {
    let library: MariaDBLibrary
    let handle: OpaquePointer
    let queue = DispatchQueue(label: "tidb-connection")
    public let endpoint: TiDBEndpoint

    /// Connects, retrying every `retryEvery` until `deadline` passes (TiDB Operator: 5 s for 30 min).
    public static func connect(_ endpoint: TiDBEndpoint, environment: [String: String], deadline: Date,
                               retryEvery: Duration = .seconds(5), log: @Sendable (String) -> Void = { _ in }) async throws -> TiDBConnection {
        let library = try MariaDBLibrary.shared(environment: environment)
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withCheckedThrowingContinuation { continuation in
                    DispatchQueue.global().async {
                        continuation.resume(with: Result { try TiDBConnection(library: library, endpoint: endpoint) })
                    }
                }
            } catch {
                if Date().addingTimeInterval(Double(retryEvery.components.seconds)) >= deadline { throw error }
                log("connecting to TiDB \(endpoint.address) failed (attempt \(attempt)): \(error); retrying")
                try await Task.sleep(for: retryEvery)
            }
        }
    }

    init(library: MariaDBLibrary, endpoint: TiDBEndpoint) throws {
        self.library = library
        self.endpoint = endpoint
        guard let handle = library.initialize(nil) else { throw TiDBError("mysql_init failed: out of memory") }
        var timeout: UInt32 = 10
        _ = library.options(handle, 0, &timeout)  // MYSQL_OPT_CONNECT_TIMEOUT
        var ioTimeout: UInt32 = 60
        _ = library.options(handle, 11, &ioTimeout)  // MYSQL_OPT_READ_TIMEOUT
        _ = library.options(handle, 12, &ioTimeout)  // MYSQL_OPT_WRITE_TIMEOUT
        _ = library.options(handle, 7, "utf8mb4")  // MYSQL_SET_CHARSET_NAME
        if let dir = endpoint.tlsDirectory {
            let ca = endpoint.verifyServer ? dir + "/ca.crt" : nil
            _ = library.sslSet(handle, dir + "/tls.key", dir + "/tls.crt", ca, nil, nil)
            var verify: CChar = endpoint.verifyServer ? 1 : 0
            _ = library.options(handle, 21, &verify)  // MYSQL_OPT_SSL_VERIFY_SERVER_CERT
        }
        guard library.connect(handle, endpoint.host, endpoint.user, endpoint.password, nil, UInt32(endpoint.port), nil, 0) != nil else {
            let message = library.error(handle).map { String(cString: $0) } ?? "unknown error"
            library.close(handle)
            // The connector's messages name the user and host, never the password.
            throw TiDBError("cannot connect to TiDB \(endpoint.address): \(message)")
        }
        self.handle = handle
    }

    deinit { library.close(handle) }

    /// A string literal for SQL, escaped by the connector for the connection's character set.
    public func quote(_ s: String) -> String {
        let bytes = Array(s.utf8CString)
        var out = [CChar](repeating: 0, count: bytes.count * 2 + 1)
        let n = library.escape(handle, &out, bytes, UInt(bytes.count - 1))
        return "'" + String(decoding: out.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self) + "'"
    }

    /// Runs a statement; answers the rows of a result set (NULL as nil), empty for statements without one.
    public func execute(_ sql: String) async throws -> [[String?]] {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.executeBlocking(sql) })
            }
        }
    }

    func executeBlocking(_ sql: String) throws -> [[String?]] {
        guard library.query(handle, sql) == 0 else {
            throw TiDBError(library.error(handle).map { String(cString: $0) } ?? "query failed")
        }
        guard let result = library.storeResult(handle) else { return [] }
        defer { library.freeResult(result) }
        let columns = Int(library.numFields(result))
        var rows: [[String?]] = []
        while let row = library.fetchRow(result) {
            rows.append((0..<columns).map { row[$0].map { String(cString: $0) } })
        }
        return rows
    }
}

/// The GC life-time guard of reference 6.2: while a backup, export or restore runs, TiDB's
/// `tikv_gc_life_time` is at least the spec's `tikvGCLifeTime` (default 72h); afterwards the old value
/// is put back, also when the tool failed.
public struct GCLifeTimeGuard: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var reason: String
        public var description: String
    }

    public var connection: TiDBConnection
    public var target: String?
    public var log: @Sendable (String) -> Void
    /// Where the original value is kept while it is raised (an annotation on the object): read at the
    /// start, in case a run before this one was killed with the life time raised, and cleared after
    /// the reset.
    public var recall: @Sendable () async -> String?
    public var remember: @Sendable (String?) async throws -> Void

    public init(connection: TiDBConnection, target: String?, log: @escaping @Sendable (String) -> Void,
                recall: @escaping @Sendable () async -> String? = { nil }, remember: @escaping @Sendable (String?) async throws -> Void = { _ in }) {
        self.connection = connection
        self.target = target
        self.log = log
        self.recall = recall
        self.remember = remember
    }

    static let select = "SELECT variable_value FROM mysql.tidb WHERE variable_name = 'tikv_gc_life_time'"

    public func current() async throws -> String {
        let rows: [[String?]]
        do { rows = try await connection.execute(Self.select) } catch {
            throw Failure(reason: "GetTikvGCLifeTimeFailed", description: "get tikv_gc_life_time from mysql.tidb failed: \(error)")
        }
        guard let value = rows.first?.first ?? nil else {
            throw Failure(reason: "GetTikvGCLifeTimeFailed", description: "mysql.tidb has no tikv_gc_life_time row")
        }
        return value
    }

    func set(_ value: String) async throws {
        _ = try await connection.execute("UPDATE mysql.tidb SET variable_value = \(connection.quote(value)) WHERE variable_name = 'tikv_gc_life_time'")
    }

    /// Runs `body` with the life time raised when it is shorter than the target.
    public func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let remembered = await recall()
        let found = try await current()
        if let remembered, remembered != found {
            log("tikv_gc_life_time is \(found), raised by an earlier run that did not finish; \(remembered) will be put back")
        }
        let oldText = remembered ?? found
        guard let old = try? GoDuration(parsing: oldText) else {
            throw Failure(reason: "ParseOldTikvGCLifeTimeFailed", description: "parse tikv_gc_life_time \(oldText) failed")
        }
        let wantedText = (target ?? "").isEmpty ? "72h" : target!
        guard let wanted = try? GoDuration(parsing: wantedText) else {
            throw Failure(reason: (target ?? "").isEmpty ? "ParseDefaultTikvGCLifeTimeFailed" : "ParseConfiguredTikvGCLifeTimeFailed",
                          description: "parse tikvGCLifeTime \(wantedText) failed")
        }
        guard old.nanoseconds < wanted.nanoseconds else { return try await body() }
        do { try await remember(oldText) } catch {
            throw Failure(reason: "SetTikvGCLifeTimeFailed", description: "record the original tikv_gc_life_time \(oldText) failed: \(error)")
        }
        do { try await set(wantedText) } catch {
            throw Failure(reason: "SetTikvGCLifeTimeFailed", description: "set tikv_gc_life_time to \(wantedText) failed: \(error)")
        }
        log("tikv_gc_life_time raised from \(oldText) to \(wantedText) for the run")
        let outcome: Result<T, Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        do {
            try await set(oldText)
            log("tikv_gc_life_time reset to \(oldText)")
            try? await remember(nil)
        } catch {
            if case .failure(let first) = outcome {
                log("reset tikv_gc_life_time to \(oldText) failed: \(error)")
                throw first
            }
            throw Failure(reason: "ResetTikvGCLifeTimeFailed", description: "reset tikv_gc_life_time to \(oldText) failed: \(error)")
        }
        return try outcome.get()
    }
}
