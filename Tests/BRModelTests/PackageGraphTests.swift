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

    @Test("docs/ARCHITECTURE.md has a row for every target under Sources/, and names none that is gone")
    func architectureListsEveryTarget() throws {
        let doc = try String(contentsOfFile: Paths.repo("docs/ARCHITECTURE.md"), encoding: .utf8)
        let rows = Set(doc.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `"), let end = line.dropFirst(3).firstIndex(of: "`") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 3)..<end])
        })
        var isDirectory: ObjCBool = false
        let targets = Set(try FileManager.default.contentsOfDirectory(atPath: Paths.repo("Sources")).filter {
            FileManager.default.fileExists(atPath: Paths.repo("Sources/\($0)"), isDirectory: &isDirectory) && isDirectory.boolValue
        })
        #expect(targets.subtracting(rows).isEmpty, "targets without a row: \(targets.subtracting(rows).sorted())")
        #expect(rows.subtracting(targets).isEmpty, "rows without a target: \(rows.subtracting(targets).sorted())")
    }
}
