import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Servers the tests run against (moto for S3/STS/EC2, a GCS emulator), started on 127.0.0.1 once
/// per test process and killed when it exits.
public enum TestServers {
    /// `Tests/Fixtures` of this package.
    public static let fixtures: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/Fixtures").path
    }()

    /// PATH for the servers the tests start: the pinned `.test-venv/bin` (scripts/test-env) first, so
    /// `python3` has the pinned moto even when `swift test` runs without scripts/test (a machine's own
    /// python3 may carry another moto: 5.2.1 signs from the decoded URL and refuses correct signatures).
    public static let childPATH: String = {
        let bin = URL(fileURLWithPath: fixtures).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".test-venv/bin").path
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return FileManager.default.isExecutableFile(atPath: bin + "/python3") ? bin + ":" + path : path
    }()

    public struct Moto: Sendable {
        public var endpoint: String
        public var port: Int
        public var accessKeyID: String
        public var secretAccessKey: String
        public var roleArn: String
    }

    public struct GCS: Sendable {
        public var endpoint: String
    }

    static let motoTask = Task { try await offPool(startMoto) }
    static let gcsTask = Task { try await offPool(startGCS) }

    /// Runs blocking work (a server's start: processes waited for, polls with usleep) on a thread of
    /// its own: on Swift's cooperative pool (two threads on a 2-core machine) it would hold a thread
    /// every other test's tasks need, and a parallel run starves (an Event queue not drained in 30 s).
    public static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    /// The shared moto server, with signature checks on after its set-up actions.
    public static func moto() async throws -> Moto { try await motoTask.value }
    public static func gcs() async throws -> GCS { try await gcsTask.value }

    nonisolated(unsafe) static var children: [pid_t] = []
    static let lock = NSLock()

    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Starts a long-running child; it is SIGKILLed when the test process exits.
    static func spawn(_ args: [String], environment: [String: String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = childPATH
        for (k, v) in environment { env[k] = v }
        p.environment = env
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        lock.lock()
        children.append(p.processIdentifier)
        let first = children.count == 1
        lock.unlock()
        if first {
            atexit {
                TestServers.lock.lock()
                for pid in TestServers.children { kill(pid, SIGKILL) }
                TestServers.lock.unlock()
            }
        }
        return p
    }

    /// Waits for `process` to end and returns its exit code (or the signal that ended it), without
    /// Foundation's `waitUntilExit`: on Linux a child that exits the moment it starts can be missed by
    /// Foundation's SIGCHLD watch, which then never reaps it, and `waitUntilExit` (a run loop on the
    /// calling thread, in a test often one of the two threads of the concurrency pool) waits for ever,
    /// seen as a hung test run beside a defunct `tidb-backup-operator`. Whether the child has ended is
    /// asked of the kernel without reaping it (`waitid` with `WNOWAIT`), so Foundation's own bookkeeping
    /// is left alone. Nil when it still runs after `timeout` seconds.
    @discardableResult
    public static func waitForExit(_ process: Process, timeout: TimeInterval = 120) -> Int32? {
        let pid = process.processIdentifier
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning { return process.terminationStatus }
            var info = siginfo_t()
            let r = waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT | WNOHANG)
            if r == 0 && info._sifields._sigchld.si_pid == pid { return info._sifields._sigchld.si_status }
            usleep(20_000)
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    public static func run(_ args: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = childPATH
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let status = waitForExit(p) ?? -1
        return (status, String(decoding: data, as: UTF8.self))
    }

    /// `run` from async code: the child is waited for on a thread of its own, never on one of Swift's
    /// cooperative threads (two on this machine), which a waiting test would take from every other.
    public static func run(_ args: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        try await offPool { try run(args, environment: environment) as (status: Int32, output: String) }
    }

    static func waitForHTTP(_ url: String, process: Process, name: String) throws {
        for _ in 0..<300 {
            if !process.isRunning { throw ServerError("\(name) exited at start") }
            if (try? run(["curl", "-s", "-o", "/dev/null", url]))?.status == 0 { return }
            usleep(100_000)
        }
        throw ServerError("\(name) did not answer at \(url) within 30 s")
    }

    /// A fresh `fake_metadata.py` (Google token endpoint, GCE metadata, AWS IMDS, Microsoft
    /// identity platform) on a free port; answers its base URL. Stopped when the test process exits.
    public static func fakeMetadata(_ arguments: [String], port: Int? = nil) throws -> String {
        let port = port ?? freePort()
        let process = try spawn(["python3", fixtures + "/fake_metadata.py", "--port", String(port)] + arguments, environment: [:],
                                log: NSTemporaryDirectory() + "fake-metadata-\(port).log")
        let base = "http://127.0.0.1:\(port)"
        try waitForHTTP(base + "/requests", process: process, name: "fake_metadata.py (pip install cryptography)")
        return base
    }

    /// A fresh webhook receiver (`webhook_receiver.py`): POST /hook is kept (after `failFirst` 500s),
    /// GET /received lists what was kept. Answers its base URL.
    public static func webhookReceiver(failFirst: Int = 0) throws -> String {
        let port = freePort()
        let process = try spawn(["python3", fixtures + "/webhook_receiver.py", "--port", String(port), "--fail-first", String(failFirst)],
                                environment: [:], log: NSTemporaryDirectory() + "webhook-\(port).log")
        let base = "http://127.0.0.1:\(port)"
        try waitForHTTP(base + "/received", process: process, name: "webhook_receiver.py")
        return base
    }

    /// A fresh in-memory Azure Blob service (`fake_azure_blob.py`, Shared Key checked by Microsoft's
    /// own signer) for one account; answers its base URL (path-style: base/<account>/<container>).
    public static func fakeAzureBlob(account: String, key: String, sas: String = "") throws -> String {
        let port = freePort()
        let process = try spawn(["python3", fixtures + "/fake_azure_blob.py", "--port", String(port), "--account", account, "--key", key, "--sas", sas],
                                environment: [:], log: NSTemporaryDirectory() + "fake-azure-\(port).log")
        let base = "http://127.0.0.1:\(port)"
        try waitForHTTP(base + "/__requests", process: process, name: "fake_azure_blob.py (pip install azure-storage-blob)")
        return base
    }

    /// A MariaDB server on 127.0.0.1 for the MySQL-protocol parts (the TiDB connection), with a user
    /// `backup` that has a password; `sql` runs statements as root over the socket.
    public struct MariaDB: Sendable {
        public var port: Int
        public var socket: String
        public var user = "backup"
        public var password = "s3cr3t-Pa55word!"

        public func sql(_ statements: String) throws -> String {
            let (status, output) = try run(["mariadb", "--no-defaults", "--socket=\(socket)", "-uroot", "-N", "-B", "-e", statements])
            guard status == 0 else { throw ServerError("mariadb: \(output)") }
            return output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// `sql` from async code, off Swift's cooperative threads.
        public func sql(_ statements: String) async throws -> String {
            let db = self
            return try await offPool { try db.sql(statements) as String }
        }
    }

    static let mariaDBTask = Task { try await offPool(startMariaDB) }
    /// The shared instance.
    public static func mariaDB() async throws -> MariaDB { try await mariaDBTask.value }

    /// A server of one's own, for a test whose `mysql.tidb` must not be touched by others.
    public static func startMariaDB() throws -> MariaDB {
        removeStaleMariaDBDirectories()
        let dir = NSTemporaryDirectory() + "mariadb-\(UUID().uuidString.prefix(8))"
        // Creating the system tables runs a bootstrap server; on a loaded machine with several
        // servers starting at once it has been seen to fail once and then succeed. It is retried in a
        // fresh directory; the error keeps the start of the output, where the cause is printed.
        var failures: [String] = []
        for attempt in 1...3 {
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let (status, output) = try run(["mariadb-install-db", "--no-defaults", "--datadir=\(dir)/data", "--user=\(NSUserName())",
                                            "--auth-root-authentication-method=socket", "--skip-test-db"])
            if status == 0 { break }
            failures.append("attempt \(attempt), exit \(status): \(output.prefix(1200))")
            FileHandle.standardError.write(Data("mariadb-install-db failed (attempt \(attempt)): \(output.prefix(1200))\n".utf8))
            guard attempt < 3 else {
                throw ServerError("mariadb-install-db failed (apt-get install mariadb-server): \(failures.joined(separator: "\n"))")
            }
        }
        let port = freePort()
        let socket = dir + "/mysqld.sock"
        let process = try spawn(["mariadbd", "--no-defaults", "--datadir=\(dir)/data", "--socket=\(socket)", "--port=\(port)", "--bind-address=127.0.0.1",
                                 "--user=\(NSUserName())", "--skip-log-bin", "--innodb-buffer-pool-size=16M", "--pid-file=\(dir)/mysqld.pid"],
                                environment: [:], log: dir + "/mariadbd.log")
        let server = MariaDB(port: port, socket: socket)
        for _ in 0..<300 {
            if !process.isRunning { throw ServerError("mariadbd exited at start; see \(dir)/mariadbd.log") }
            if (try? server.sql("SELECT 1")) == "1" {
                _ = try server.sql("""
                    CREATE USER '\(server.user)'@'127.0.0.1' IDENTIFIED BY '\(server.password)';
                    CREATE USER '\(server.user)'@'localhost' IDENTIFIED BY '\(server.password)';
                    GRANT ALL ON *.* TO '\(server.user)'@'127.0.0.1'; GRANT ALL ON *.* TO '\(server.user)'@'localhost';
                    CREATE TABLE mysql.tidb (VARIABLE_NAME VARCHAR(64) NOT NULL PRIMARY KEY, VARIABLE_VALUE VARCHAR(1024), COMMENT VARCHAR(1024));
                    INSERT INTO mysql.tidb VALUES ('tikv_gc_life_time', '10m0s', 'All versions within life time will not be collected by GC');
                    """)
                return server
            }
            usleep(100_000)
        }
        throw ServerError("mariadbd did not answer within 30 s; see \(dir)/mariadbd.log")
    }

    /// Data directories of earlier runs (each 70-150 MB; a server lives until its test process ends,
    /// so none removes its own): those over ten minutes old whose mariadbd is gone.
    static func removeStaleMariaDBDirectories() {
        let temp = NSTemporaryDirectory()
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: temp)) ?? [] where name.hasPrefix("mariadb-") {
            let dir = temp + name
            let modified = (try? fm.attributesOfItem(atPath: dir))?[.modificationDate] as? Date ?? Date()
            guard Date().timeIntervalSince(modified) > 600 else { continue }
            let pid = (try? String(contentsOfFile: dir + "/mysqld.pid", encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if let pid, kill(pid, 0) == 0 { continue }
            try? fm.removeItem(atPath: dir)
        }
    }

    public struct ServerError: Error, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    static func startMoto() throws -> Moto {
        let port = freePort()
        let endpoint = "http://127.0.0.1:\(port)"
        // The six set-up actions (IAM) go through unsigned; everything after is signature-checked.
        let process = try spawn(["python3", fixtures + "/moto_server.py", "-H", "127.0.0.1", "-p", String(port)],
                                environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "6", "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"],
                                log: NSTemporaryDirectory() + "moto-\(port).log")
        try waitForHTTP("\(endpoint)/moto-api/", process: process, name: "moto (pip install 'moto[server]')")
        let (status, output) = try run(["python3", fixtures + "/moto_setup.py", endpoint])
        guard status == 0, let line = output.split(separator: "\n").last,
              let doc = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String],
              let id = doc["accessKeyId"], let secret = doc["secretAccessKey"], let role = doc["roleArn"]
        else { throw ServerError("moto set-up failed: \(output)") }
        return Moto(endpoint: endpoint, port: port, accessKeyID: id, secretAccessKey: secret, roleArn: role)
    }

    /// A fresh etcd (Debian's etcd-server) standing for PD's embedded etcd: its client URL is what a
    /// TidbCluster's `pdAddresses` names. Stopped when the test process exits.
    public static func etcd() throws -> String {
        let dir = NSTemporaryDirectory() + "etcd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let client = freePort(), peer = freePort()
        let endpoint = "http://127.0.0.1:\(client)"
        let binary = ["/usr/bin/etcd", "/usr/local/bin/etcd"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "etcd"
        let process = try spawn([binary, "--name", "pd", "--data-dir", dir + "/data", "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
                                 "--listen-peer-urls", "http://127.0.0.1:\(peer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peer)",
                                 "--initial-cluster", "pd=http://127.0.0.1:\(peer)", "--log-level", "warn"],
                                environment: ["ETCD_UNSUPPORTED_ARCH": "arm64"], log: dir + "/etcd.log")
        try waitForHTTP("\(endpoint)/health", process: process, name: "etcd (apt-get install etcd-server)")
        return endpoint
    }

    static func startGCS() throws -> GCS {
        let port = freePort()
        let endpoint = "http://127.0.0.1:\(port)"
        let process = try spawn(["gcp-storage-emulator", "start", "--host", "127.0.0.1", "--port", String(port), "--in-memory"],
                                environment: [:], log: NSTemporaryDirectory() + "gcs-\(port).log")
        try waitForHTTP("\(endpoint)/", process: process, name: "GCS emulator (pip install gcp-storage-emulator)")
        return GCS(endpoint: endpoint)
    }
}
