import AsyncHTTPClient
import BackupOperator
import Foundation
import NIOCore
import NIOFoundationCompat

/// Webhook notifications over HTTP(S) with AsyncHTTPClient: one POST, the answer's status code.
public struct HTTPWebhookTransport: WebhookTransport {
    let http: HTTPClient

    public init(http: HTTPClient = .shared) { self.http = http }

    public func post(_ body: Data, to url: String, headers: [(String, String)], timeout: Duration) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(data: body))
        let seconds = timeout.components.seconds
        let response = try await http.execute(request, timeout: .seconds(max(1, seconds)))
        _ = try? await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }
}
