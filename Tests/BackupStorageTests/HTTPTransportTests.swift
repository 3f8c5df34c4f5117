import AsyncHTTPClient
import Foundation
import NIOHTTP1
import StorageHTTP
import Testing

/// The one send-and-retry loop under the storage and EC2 clients, driven with scripted answers.
@Suite("HTTPTransport: attempts, backoff, Retry-After, deadline")
struct HTTPTransportTests {
    struct Failed: Error, Equatable {
        var what: String
        var attempts = 0
    }

    /// Plays the answers in order (an Error entry is a lost connection) and records what was sent.
    final class Script: @unchecked Sendable {
        let lock = NSLock()
        var answers: [Result<HTTPResponse, any Error>]
        var sent: [String] = []
        init(_ answers: [Result<HTTPResponse, any Error>]) { self.answers = answers }
        func next(_ request: HTTPClientRequest) throws -> HTTPResponse {
            try lock.withLock {
                sent.append(request.headers.first(name: "x-attempt") ?? "")
                return try answers.removeFirst().get()
            }
        }
    }

    static func transport(_ script: Script, attempts: Int = 4, deadline: Duration? = nil) -> HTTPTransport {
        HTTPTransport(retry: RetryPolicy(attempts: attempts, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5), deadline: deadline)) { request, _, _, _ in
            try script.next(request)
        }
    }

    static func send(_ t: HTTPTransport) async throws -> HTTPResponse {
        try await t.send(
            expect: { $0 == 200 },
            request: { attempt in
                var r = HTTPClientRequest(url: "http://127.0.0.1:9/x")
                r.headers.add(name: "x-attempt", value: String(attempt))
                return r
            },
            failure: { response in (Failed(what: "HTTP \(response.status)"), RetryPolicy.isTransient(status: response.status)) },
            unreachable: { _, attempts in Failed(what: "unreachable", attempts: attempts) },
            exhausted: { e, attempts in Failed(what: e.what, attempts: attempts) })
    }

    struct Lost: Error {}

    @Test("transient answers and lost connections are retried, each attempt built afresh, until the expected answer")
    func retriesUntilExpected() async throws {
        let script = Script([.success(HTTPResponse(status: 503)), .failure(Lost()), .success(HTTPResponse(status: 429)),
                             .success(HTTPResponse(status: 200, body: Data("ok".utf8)))])
        let response = try await Self.send(Self.transport(script))
        #expect(response.status == 200 && response.body == Data("ok".utf8))
        #expect(script.sent == ["1", "2", "3", "4"])
    }

    @Test("an answer the service calls final is thrown at once; a retriable one on the last attempt goes through exhausted; connections through unreachable")
    func failures() async throws {
        var script = Script([.success(HTTPResponse(status: 403)), .success(HTTPResponse(status: 200))])
        await #expect(throws: Failed(what: "HTTP 403")) { try await Self.send(Self.transport(script)) }
        #expect(script.sent == ["1"])
        script = Script(Array(repeating: .success(HTTPResponse(status: 500)), count: 3))
        await #expect(throws: Failed(what: "HTTP 500", attempts: 3)) { try await Self.send(Self.transport(script, attempts: 3)) }
        script = Script(Array(repeating: .failure(Lost()), count: 2))
        await #expect(throws: Failed(what: "unreachable", attempts: 2)) { try await Self.send(Self.transport(script, attempts: 2)) }
        // 501 Not Implemented and 505 are not transient; 408 is.
        #expect(!RetryPolicy.isTransient(status: 501) && !RetryPolicy.isTransient(status: 505) && RetryPolicy.isTransient(status: 408))
    }

    @Test("the backoff grows with full jitter under its cap; Retry-After lengthens a wait up to the cap; the deadline ends retries early")
    func timing() async throws {
        let policy = RetryPolicy(attempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(5))
        for n in 1...8 {
            let ceiling = min(Duration.milliseconds(100) * (1 << n), .seconds(5))
            for _ in 0..<20 {
                let d = policy.delay(afterAttempt: n)
                #expect(d >= ceiling / 2 && d <= ceiling, "attempt \(n): \(d)")
            }
        }
        #expect(policy.delay(afterAttempt: 1, retryAfter: "3") == .seconds(3))
        #expect(policy.delay(afterAttempt: 1, retryAfter: "120") == .seconds(5), "capped")
        #expect(policy.delay(afterAttempt: 1, retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT") <= .milliseconds(200), "a date is not waited for")

        // 20 ms of deadline with 10-50 ms waits: far fewer than the 50 attempts allowed.
        let script = Script(Array(repeating: .success(HTTPResponse(status: 503)), count: 50))
        let slow = HTTPTransport(retry: RetryPolicy(attempts: 50, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50), deadline: .milliseconds(20))) { r, _, _, _ in
            try script.next(r)
        }
        do {
            _ = try await Self.send(slow)
            Issue.record("a 503 every time succeeded")
        } catch let e as Failed {
            #expect(e.what == "HTTP 503" && e.attempts >= 1 && e.attempts < 5, "\(e)")
        }
    }
}
