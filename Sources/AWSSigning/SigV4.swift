import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// AWS access keys. The secret is never printed: `description` shows the key id only.
public struct AWSCredentials: Sendable, Hashable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>)" }
}

/// AWS Signature Version 4 for request headers and presigned URLs.
public struct SigV4Signer: Sendable {
    public var credentials: AWSCredentials
    public var region: String
    public var service: String
    /// S3 signs the path as sent; every other service encodes it a second time.
    public var doubleEncodePath: Bool

    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
        doubleEncodePath = service != "s3"
    }

    public static func sha256Hex(_ data: some DataProtocol) -> String { hex(SHA256.hash(data: data)) }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters (and `/` when asked).
    public static func uriEncode(_ s: String, keepSlash: Bool = false) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    /// `20150830T123600Z` and `20150830` in UTC.
    static func timestamps(_ date: Date) -> (amzDate: String, day: String) {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        let day = String(format: "%04d%02d%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
        return (day + String(format: "T%02d%02d%02dZ", Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec)), day)
    }

    /// The path part of the canonical request: each segment encoded (twice for non-S3 services).
    func canonicalPath(_ url: URL) -> String {
        let raw = url.path(percentEncoded: true)
        let path = raw.isEmpty ? "/" : raw
        let decoded = path.removingPercentEncoding ?? path
        let once = Self.uriEncode(decoded, keepSlash: true)
        return doubleEncodePath ? Self.uriEncode(once, keepSlash: true) : once
    }

    /// Query parameters encoded and sorted by name, then value.
    static func canonicalQuery(_ items: [(String, String)]) -> String {
        let encoded: [(name: String, value: String)] = items.map { (uriEncode($0.0), uriEncode($0.1)) }
        let sorted = encoded.sorted { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        return sorted.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
    }

    static func queryItems(_ url: URL) -> [(String, String)] {
        guard let query = url.query(percentEncoded: true), !query.isEmpty else { return [] }
        return query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            return (name, value)
        }
    }

    public static func hostHeader(_ url: URL) -> String {
        let host: String = url.host(percentEncoded: false) ?? ""
        guard let port = url.port else { return host }
        let scheme: String = url.scheme ?? ""
        let isDefault: Bool = (scheme == "https" && port == 443) || (scheme == "http" && port == 80)
        return isDefault ? host : "\(host):\(port)"
    }

    func signingKey(day: String) -> SymmetricKey {
        func hmac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key))
        }
        let kDate = hmac(SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8)), day)
        return hmac(hmac(hmac(kDate, region), service), "aws4_request")
    }

    func signature(canonicalRequest: String, amzDate: String, day: String) -> String {
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(Self.sha256Hex(Data(canonicalRequest.utf8)))"
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: signingKey(day: day)))
    }

    /// The headers to add to a request: `Authorization`, `X-Amz-Date`, `X-Amz-Content-Sha256` (for
    /// S3) and `X-Amz-Security-Token` when the credentials carry one. `headers` are the request's own
    /// headers to sign (Host is added from the URL).
    public func signedHeaders(method: String, url: URL, headers: [(String, String)] = [], payloadSHA256: String,
                              date: Date) -> [(String, String)] {
        let (amzDate, day) = Self.timestamps(date)
        var added: [(String, String)] = [("X-Amz-Date", amzDate)]
        if service == "s3" { added.append(("X-Amz-Content-Sha256", payloadSHA256)) }
        if let token = credentials.sessionToken { added.append(("X-Amz-Security-Token", token)) }
        var canonical: [String: String] = ["host": Self.hostHeader(url)]
        for (name, value) in headers + added {
            let key = name.lowercased()
            let trimmed = value.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            canonical[key] = canonical[key].map { "\($0),\(trimmed)" } ?? trimmed
        }
        let names = canonical.keys.sorted()
        let signedNames = names.joined(separator: ";")
        let canonicalRequest = [
            method.uppercased(), canonicalPath(url), Self.canonicalQuery(Self.queryItems(url)),
            names.map { "\($0):\(canonical[$0]!)\n" }.joined(), signedNames, payloadSHA256,
        ].joined(separator: "\n")
        let sig = signature(canonicalRequest: canonicalRequest, amzDate: amzDate, day: day)
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(day)/\(region)/\(service)/aws4_request, "
            + "SignedHeaders=\(signedNames), Signature=\(sig)"
        return [("Authorization", authorization)] + added
    }

    /// A presigned URL (query-string authentication) valid for `expires` seconds.
    public func presignedURL(method: String, url: URL, expires: Int, date: Date) -> URL {
        let (amzDate, day) = Self.timestamps(date)
        var items = Self.queryItems(url)
        items += [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", "\(credentials.accessKeyID)/\(day)/\(region)/\(service)/aws4_request"),
            ("X-Amz-Date", amzDate),
            ("X-Amz-Expires", String(expires)),
            ("X-Amz-SignedHeaders", "host"),
        ]
        if let token = credentials.sessionToken { items.append(("X-Amz-Security-Token", token)) }
        let query = Self.canonicalQuery(items)
        let canonicalRequest = [method.uppercased(), canonicalPath(url), query, "host:\(Self.hostHeader(url))\n", "host",
                                service == "s3" ? Self.unsignedPayload : Self.sha256Hex(Data())].joined(separator: "\n")
        let sig = signature(canonicalRequest: canonicalRequest, amzDate: amzDate, day: day)
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)!
        components.percentEncodedQuery = query + "&X-Amz-Signature=\(sig)"
        return components.url!
    }
}
