import Foundation
import KubeModel

/// Supplies the `Authorization` header: a fixed token, a token file re-read as it rotates, or a
/// credential plugin run again before its token expires. One refresh at a time.
actor AuthorizationSource {
    let credentials: KubeConfig.Credentials
    private var cached: (header: String, expires: Date?)?
    private var readAt: Date?
    private var refreshing: Task<(String, Date?), any Error>?
    /// client-go re-reads token files every minute.
    static let fileRefreshInterval: TimeInterval = 60

    init(_ credentials: KubeConfig.Credentials) {
        self.credentials = credentials
    }

    var canRefresh: Bool {
        switch credentials {
        case .tokenFile, .exec: true
        default: false
        }
    }

    /// Forgets the cached token (after a 401) so the next request reads a fresh one.
    func invalidate() {
        cached = nil
    }

    func header() async throws -> String? {
        switch credentials {
        case .none: return nil
        case .token(let token): return "Bearer \(token)"
        case .basic(let user, let password): return "Basic \(Data("\(user):\(password)".utf8).base64EncodedString())"
        case .tokenFile(let path):
            if let cached, let readAt, Date().timeIntervalSince(readAt) < Self.fileRefreshInterval { return cached.header }
            let token: String
            do {
                token = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                if let cached { return cached.header }
                throw KubeConfig.ConfigError("cannot read token file \(path)")
            }
            cached = ("Bearer \(token)", nil)
            readAt = Date()
            return cached!.header
        case .exec(let exec):
            if let cached, cached.expires.map({ $0.timeIntervalSinceNow > 30 }) ?? true { return cached.header }
            if let refreshing { return try await refreshing.value.0 }
            let task = Task { try await Self.runPlugin(exec) }
            refreshing = task
            defer { refreshing = nil }
            let (header, expires) = try await task.value
            cached = (header, expires)
            return header
        }
    }

    /// Runs a client.authentication.k8s.io plugin and reads `status.token` from its ExecCredential.
    static func runPlugin(_ exec: KubeConfig.ExecConfig) async throws -> (String, Date?) {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                    process.arguments = [exec.command] + exec.args
                    var environment = ProcessInfo.processInfo.environment
                    for (k, v) in exec.env { environment[k] = v }
                    let info: JSONValue = ["apiVersion": .string(exec.apiVersion), "kind": "ExecCredential",
                                           "spec": ["interactive": false]]
                    environment["KUBERNETES_EXEC_INFO"] = info.serialized()
                    process.environment = environment
                    let out = Pipe()
                    process.standardOutput = out
                    process.standardError = FileHandle.nullDevice
                    process.standardInput = FileHandle.nullDevice
                    try process.run()
                    let data = out.fileHandleForReading.readDataToEndOfFile()
                    process.waitUntilExit()
                    guard process.terminationStatus == 0 else {
                        throw KubeConfig.ConfigError("credential plugin \(exec.command) exited with status \(process.terminationStatus)")
                    }
                    guard let credential = try? JSONParser.parse(data).value,
                          let token = credential.value(at: ["status", "token"])?.stringValue, !token.isEmpty else {
                        throw KubeConfig.ConfigError("credential plugin \(exec.command) did not print an ExecCredential with status.token")
                    }
                    let expires = credential.value(at: ["status", "expirationTimestamp"])?.stringValue.flatMap { Time(rfc3339: $0)?.date }
                    continuation.resume(returning: ("Bearer \(token)", expires))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}

/// A token bucket: `qps` requests per second on average, `burst` at once.
actor RateLimiter {
    let qps: Double
    let burst: Double
    private var tokens: Double
    private var last = ContinuousClock.now

    init(qps: Double, burst: Int) {
        self.qps = max(qps, 0.001)
        self.burst = Double(max(burst, 1))
        tokens = Double(max(burst, 1))
    }

    func acquire() async {
        let now = ContinuousClock.now
        let elapsed = last.duration(to: now)
        last = now
        tokens = min(burst, tokens + (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * qps)
        tokens -= 1
        if tokens < 0 {
            // The reservation is taken before sleeping, so concurrent callers queue up fairly.
            try? await Task.sleep(for: .seconds(-tokens / qps))
        }
    }
}
