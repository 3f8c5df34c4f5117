import Crypto
import Foundation
import KubeModel
import SwiftASN1
import X509

/// The files the standalone server keeps in its data directory: the database, the TLS certificate and
/// key, the bearer token and the kubeconfig for clients.
public struct DataDirectory: Sendable {
    public let path: String

    public init(_ path: String) { self.path = (path as NSString).standardizingPath }

    public var database: String { file("store.sqlite") }
    public var certificate: String { file("tls.crt") }
    public var privateKey: String { file("tls.key") }
    public var tokenFile: String { file("token") }
    public var kubeconfig: String { file("kubeconfig") }
    public var jobsDirectory: String { file("jobs") }

    func file(_ name: String) -> String {
        let base = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return (base as NSString).appendingPathComponent(name)
    }

    public func create() throws {
        try FileManager.default.createDirectory(atPath: file(""), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileManager.default.createDirectory(atPath: jobsDirectory, withIntermediateDirectories: true)
    }

    /// The bearer token, created on first start (32 random bytes, hex) and kept with mode 0600.
    public func token() throws -> String {
        if let data = FileManager.default.contents(atPath: tokenFile),
           let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty {
            return text
        }
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let token = bytes.map { String(format: "%02x", $0) }.joined()
        try writePrivate(tokenFile, token + "\n")
        return token
    }

    func writePrivate(_ path: String, _ text: String) throws {
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }

    /// A self-signed ECDSA certificate for the listen address, localhost and 127.0.0.1, created once and
    /// reused, so clients keep trusting the same CA across restarts.
    public func tlsMaterial(hosts: [String]) throws -> (certificatePEM: String, keyPEM: String) {
        if let cert = FileManager.default.contents(atPath: certificate), let key = FileManager.default.contents(atPath: privateKey) {
            return (String(decoding: cert, as: UTF8.self), String(decoding: key, as: UTF8.self))
        }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("tidb-backup-operator standalone") }
        var names: [GeneralName] = [.dnsName("localhost")]
        for host in Set(hosts + ["127.0.0.1"]) {
            if let ip = Self.IPv4(host) { names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(ip)))) }
            else if host != "localhost" && !host.isEmpty && host != "0.0.0.0" { names.append(.dnsName(host)) }
        }
        let now = Date()
        let cert = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(key))
        let certPEM = try cert.serializeAsPEM().pemString + "\n"
        let keyPEM = key.pemRepresentation + "\n"
        try writePrivate(privateKey, keyPEM)
        try certPEM.write(toFile: certificate, atomically: true, encoding: .utf8)
        return (certPEM, keyPEM)
    }

    /// A kubeconfig pointing kubectl at this server. The CA certificate is in it (not a path), so the
    /// file works wherever it is read: copied to another account, or outside the container the server
    /// runs in (its data directory mounted elsewhere).
    public func writeKubeconfig(server: String, token: String) throws {
        let certificatePEM = try String(contentsOfFile: certificate, encoding: .utf8)
        let config: JSONValue = [
            "apiVersion": "v1", "kind": "Config", "current-context": "standalone",
            "clusters": [["name": "standalone", "cluster": ["server": .string(server),
                                                            "certificate-authority-data": .string(Data(certificatePEM.utf8).base64EncodedString())]]],
            "users": [["name": "standalone-admin", "user": ["token": .string(token)]]],
            "contexts": [["name": "standalone", "context": ["cluster": "standalone", "user": "standalone-admin", "namespace": "default"]]],
            "preferences": .emptyObject,
        ]
        try writePrivate(kubeconfig, KubeYAML.emit(config))
    }

    static func IPv4(_ s: String) -> [UInt8]? {
        let parts = s.split(separator: ".")
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }
}
