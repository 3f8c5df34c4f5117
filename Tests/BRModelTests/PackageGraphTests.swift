import Foundation
import Testing

/// The walls between the modules, read from the sources' imports (what the compiler will link): the
/// job binary free of the operator's machinery, policy free of HTTP, the standalone server free of the
/// product.
@Suite("Package graph")
struct PackageGraphTests {
    /// The modules the Swift files of a target import.
    static func imports(of target: String) throws -> Set<String> {
        let dir = Paths.repo("Sources/\(target)")
        var out: Set<String> = []
        for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasSuffix(".swift") {
            let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                if let i = words.firstIndex(of: "import"), i + 1 < words.count, words[..<i].allSatisfy({ $0.hasPrefix("@") }) {
                    out.insert(String(words[i + 1]))
                }
            }
        }
        return out
    }

    @Test("the job binary imports neither the operator nor the controller kit; policy imports no HTTP; the standalone server no product module")
    func walls() throws {
        for target in ["BackupManager", "BackupTools", "TidbBackupManager", "BRObjects", "BackupStorage", "AWSCore", "StorageHTTP"] {
            let found = try Self.imports(of: target)
            #expect(found.isDisjoint(with: ["BackupOperator", "ControllerKit", "WebView", "StandaloneServer"]), "\(target): \(found.sorted())")
        }
        for target in ["BackupOperator", "BRModel", "BRObjects", "Cron", "KubeModel"] {
            let found = try Self.imports(of: target)
            #expect(found.isDisjoint(with: ["AsyncHTTPClient", "NIOCore", "NIOHTTP1", "NIOPosix", "Hummingbird"]), "\(target): \(found.sorted())")
        }
        let server = try Self.imports(of: "StandaloneServer")
        #expect(server.isDisjoint(with: ["BRModel", "BRObjects", "BackupOperator", "BackupManager"]), "\(server.sorted())")
        #expect(try Self.imports(of: "BackupManager").contains("BRObjects"), "the reader sees imports at all")
    }
}
