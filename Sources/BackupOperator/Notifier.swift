import BRModel
import Crypto
import Foundation
import KubeModel
import Logging

/// Webhook notifications: a JSON POST when a backup fails, when a schedule becomes late, and when it
/// recovers. Sent to the global URL (`--notify-webhook`) and to a schedule's own
/// (`tidb-backup-operator.pingcap.com/notify-webhook` annotation), in the background, retried with
/// back-off (1 s doubling, 5 attempts) on a connection error or a 5xx/429 answer.
///
/// The body carries names, phases, reasons and the status message (which never holds a secret); no
/// header or URL of the request is logged. With `--notify-webhook-secret-file`, the body is signed:
/// `X-Tidb-Backup-Signature: sha256=<hex HMAC of the body>`.
public final class Notifier: Sendable {
    public struct Configuration: Sendable {
        public var url: String?
        public var signingKey: String?
        public var attempts = 5
        public var firstDelay: Duration = .seconds(1)
        public var timeout: Duration = .seconds(10)
        public init(url: String? = nil, signingKey: String? = nil) {
            self.url = url
            self.signingKey = signingKey
        }
    }

    public static let annotation = "tidb-backup-operator.pingcap.com/notify-webhook"

    /// What happened.
    public struct Message: Sendable, Equatable, Codable {
        public var type: String  // backup.failed, backup.verification_failed, schedule.late, schedule.recovered
        public var time: String
        public var namespace: String
        public var name: String
        public var schedule: String?
        public var cluster: String?
        public var phase: String?
        public var reason: String?
        public var message: String?
    }

    let configuration: Configuration
    let transport: any WebhookTransport
    let logger: Logger

    public init(configuration: Configuration, transport: any WebhookTransport, logger: Logger = Logger(label: "notifier")) {
        self.configuration = configuration
        self.transport = transport
        self.logger = logger
    }

    /// Sends `message` to the global URL and to `extra` (a schedule's), each once, in the background.
    func send(_ message: Message, extra: String?) {
        var urls: [String] = []
        if let u = configuration.url, !u.isEmpty { urls.append(u) }
        if let u = extra?.trimmingCharacters(in: .whitespaces), !u.isEmpty, !urls.contains(u) { urls.append(u) }
        guard !urls.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let body = try? encoder.encode(message) else { return }
        for url in urls {
            Task { await self.deliver(body, to: url, what: "\(message.type) \(message.namespace)/\(message.name)") }
        }
    }

    func signature(_ body: Data) -> String? {
        guard let key = configuration.signingKey, !key.isEmpty else { return nil }
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(key.utf8)))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    func deliver(_ body: Data, to url: String, what: String) async {
        var delay = configuration.firstDelay
        for attempt in 1...max(1, configuration.attempts) {
            var headers = [("Content-Type", "application/json"), ("User-Agent", "tidb-backup-operator")]
            if let s = signature(body) { headers.append(("X-Tidb-Backup-Signature", s)) }
            var problem: String
            do {
                let code = try await transport.post(body, to: url, headers: headers, timeout: configuration.timeout)
                if (200..<300).contains(code) { return }
                problem = "HTTP \(code)"
                if code < 500 && code != 429 {
                    logger.warning("webhook refused the notification; not retried", metadata: ["what": "\(what)", "answer": "\(problem)"])
                    return
                }
            } catch {
                problem = "\(type(of: error))"
            }
            if attempt == configuration.attempts {
                logger.warning("webhook notification not delivered", metadata: ["what": "\(what)", "attempts": "\(attempt)", "last": "\(problem)"])
                return
            }
            try? await Task.sleep(for: delay)
            delay = delay * 2
        }
    }
}

