import Foundation
import Testing

@testable import AWSSigning

struct Vector: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    var service: String
    var region: String
    var method: String
    var url: String
    var headers: [String: String]
    var body: String
    var sessionToken: String?
    var authorization: String
    var payloadSHA256: String?
    var presigned: String?
    var testDescription: String { name }
}

/// Vectors computed by botocore (an independent SigV4 implementation) at 2015-08-30T12:36:00Z;
/// `Vectors/generate.py` writes them.
let vectors: [Vector] = {
    guard let url = Bundle.module.url(forResource: "sigv4", withExtension: "json", subdirectory: "Vectors"),
          let data = try? Data(contentsOf: url) else { return [] }
    return (try? JSONDecoder().decode([Vector].self, from: data)) ?? []
}()

let fixedDate = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z
let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

@Suite("SigV4 signing")
struct SigV4Tests {
    @Test("the vectors are present")
    func loaded() { #expect(vectors.count == 7) }

    @Test("Authorization headers equal botocore's", arguments: vectors)
    func headers(_ v: Vector) throws {
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: secret, sessionToken: v.sessionToken),
                                 region: v.region, service: v.service)
        let payload = v.payloadSHA256 ?? SigV4Signer.sha256Hex(Data(v.body.utf8))
        let signed = signer.signedHeaders(method: v.method, url: try #require(URL(string: v.url)),
                                          headers: v.headers.map { ($0.key, $0.value) }, payloadSHA256: payload, date: fixedDate)
        #expect(signed.first { $0.0 == "Authorization" }?.1 == v.authorization)
        #expect(signed.first { $0.0 == "X-Amz-Date" }?.1 == "20150830T123600Z")
        if let token = v.sessionToken { #expect(signed.first { $0.0 == "X-Amz-Security-Token" }?.1 == token) }
    }

    @Test("AWS's published get-vanilla vector")
    func published() throws {
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: secret), region: "us-east-1",
                                 service: "service")
        let signed = signer.signedHeaders(method: "GET", url: try #require(URL(string: "https://example.amazonaws.com/")),
                                          payloadSHA256: SigV4Signer.sha256Hex(Data()), date: fixedDate)
        #expect(signed.first { $0.0 == "Authorization" }?.1 == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test("presigned URLs carry botocore's signature")
    func presigned() throws {
        for v in vectors where v.presigned != nil {
            let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: secret, sessionToken: v.sessionToken),
                                     region: v.region, service: v.service)
            let url = signer.presignedURL(method: "GET", url: try #require(URL(string: v.url)), expires: 3600, date: fixedDate)
            func signature(_ s: String) -> String? {
                URLComponents(string: s)?.queryItems?.first { $0.name == "X-Amz-Signature" }?.value
            }
            #expect(signature(url.absoluteString) != nil)
            #expect(signature(url.absoluteString) == signature(v.presigned!), "\(url)")
        }
    }

    @Test("the secret never appears in descriptions")
    func redaction() {
        let c = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: secret)
        #expect(!"\(c)".contains(secret))
        #expect("\(c)".contains("AKIDEXAMPLE"))
    }

    @Test("URI encoding keeps only unreserved characters")
    func encoding() {
        #expect(SigV4Signer.uriEncode("a b/c~d*e+f=", keepSlash: true) == "a%20b/c~d%2Ae%2Bf%3D")
        #expect(SigV4Signer.uriEncode("a/b") == "a%2Fb")
        #expect(SigV4Signer.uriEncode("é") == "%C3%A9")
    }
}
