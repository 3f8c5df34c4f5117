import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Retries: attempts, first delay, cap, and an optional deadline for the whole call. Throttling, 5xx
/// answers a service calls transient, and lost connections are retried with exponential backoff and
/// full jitter; a `Retry-After` the service sends (seconds) is waited out when it is longer, up to the cap.
public struct RetryPolicy: Sendable {
    public var attempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// No retry starts once this much time has passed since the first attempt (nil: attempts alone bound it).
    public var deadline: Duration?

    public init(attempts: Int = 5, baseDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(5), deadline: Duration? = nil) {
        self.attempts = attempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.deadline = deadline
    }

    /// The wait after attempt `n` (1-based): random in [ceiling/2, ceiling], ceiling = base·2ⁿ capped.
    public func delay(afterAttempt n: Int) -> Duration {
        let ceiling = min(baseDelay * Int(1 << min(n, 20)), maxDelay)
        let ms = Self.milliseconds(ceiling)
        return .milliseconds(Int(Double.random(in: ms / 2...max(ms, 1))))
    }

    /// The wait after attempt `n` of an answer that said `Retry-After`.
    public func delay(afterAttempt n: Int, retryAfter: String?) -> Duration {
        let backoff = delay(afterAttempt: n)
        guard let text = retryAfter?.trimmingCharacters(in: .whitespaces), let seconds = Int(text), seconds > 0 else { return backoff }
        return max(backoff, min(.seconds(seconds), maxDelay))
    }

    /// The statuses every service here calls transient: a timeout, throttling, and the server's
    /// own failures (501 Not Implemented and 505 are not retried).
    public static func isTransient(status: UInt) -> Bool { [408, 429, 500, 502, 503, 504].contains(status) }

    static func milliseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }
}

/// One HTTP answer, read whole.
public struct HTTPResponse: Sendable {
    public var status: UInt
    public var headers: HTTPHeaders
    public var body: Data

    public init(status: UInt, headers: HTTPHeaders = HTTPHeaders(), body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// The one send-and-retry loop under the S3, EC2, GCS and Azure clients. Each client says how to build
/// (and sign, afresh each attempt) its request, which statuses it expects, and what an unexpected
/// answer means (its own error, and whether it is worth another attempt); the loop owns the attempts,
/// the backoff, `Retry-After`, the deadline, and the lost connections.
public struct HTTPTransport: Sendable {
    /// Sends one request and reads the answer (AsyncHTTPClient; tests hand in their own).
    public typealias Execute = @Sendable (HTTPClientRequest, _ timeout: Duration, _ readBody: Bool, _ maxBody: Int) async throws -> HTTPResponse

    public var retry: RetryPolicy
    /// Per attempt.
    public var timeout: Duration
    /// The largest answer read into memory.
    public var maxBody: Int
    let execute: Execute

    public init(http: HTTPClient = .shared, retry: RetryPolicy = RetryPolicy(), timeout: Duration = .seconds(300), maxBody: Int = 256 << 20) {
        self.init(retry: retry, timeout: timeout, maxBody: maxBody) { request, timeout, readBody, maxBody in
            let response = try await http.execute(request, timeout: .nanoseconds(Int64(RetryPolicy.milliseconds(timeout) * 1_000_000)))
            let body = readBody ? Data(buffer: try await response.body.collect(upTo: maxBody)) : Data()
            return HTTPResponse(status: response.status.code, headers: response.headers, body: body)
        }
    }

    public init(retry: RetryPolicy, timeout: Duration = .seconds(300), maxBody: Int = 256 << 20, execute: @escaping Execute) {
        self.retry = retry
        self.timeout = timeout
        self.maxBody = maxBody
        self.execute = execute
    }

    /// Sends until an answer `expect` accepts, which is returned.
    /// - `request`: builds the attempt's request (given the attempt number, from 1); its errors (no
    ///   credentials, say) end the call as they are.
    /// - `failure`: what an unexpected answer means: the service's error, and whether to try again.
    /// - `unreachable`: the error for a request that never got an answer, after `attempts` attempts.
    /// - `exhausted`: the error thrown when a retriable answer was the last attempt's (default: as is).
    public func send<Failure: Error>(readBody: Bool = true, expect: (UInt) -> Bool,
                                     request: (Int) async throws -> HTTPClientRequest,
                                     failure: (HTTPResponse) async -> (error: Failure, retry: Bool),
                                     unreachable: (any Error, _ attempts: Int) -> Failure,
                                     exhausted: (Failure, _ attempts: Int) -> Failure = { e, _ in e }) async throws -> HTTPResponse {
        let started = ContinuousClock.now
        var attempt = 0
        func mayRetry(after wait: Duration) -> Bool {
            guard attempt < retry.attempts else { return false }
            guard let deadline = retry.deadline else { return true }
            return ContinuousClock.now + wait < started + deadline
        }
        while true {
            attempt += 1
            let built = try await request(attempt)
            let response: HTTPResponse
            do {
                response = try await execute(built, timeout, readBody, maxBody)
            } catch {
                try Task.checkCancellation()
                let wait = retry.delay(afterAttempt: attempt)
                guard mayRetry(after: wait) else { throw unreachable(error, attempt) }
                try await Task.sleep(for: wait)
                continue
            }
            if expect(response.status) { return response }
            let (error, retriable) = await failure(response)
            guard retriable else { throw error }
            let wait = retry.delay(afterAttempt: attempt, retryAfter: response.headers.first(name: "Retry-After"))
            guard mayRetry(after: wait) else { throw exhausted(error, attempt) }
            try await Task.sleep(for: wait)
        }
    }
}
