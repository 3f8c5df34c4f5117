import Foundation
import KubeModel

enum Paths {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let shared = repository.deletingLastPathComponent().appendingPathComponent("shared")
    static func repo(_ p: String) -> String { repository.appendingPathComponent(p).path }
}

func yamlObjects(_ path: String) throws -> [JSONValue] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return try KubeYAML.documents(text).map(\.value)
}

func exampleFiles() -> [String] {
    let root = Paths.repo("examples")
    let all = (FileManager.default.enumerator(atPath: root)?.allObjects as? [String]) ?? []
    return all.filter { $0.hasSuffix(".yaml") }.sorted().map { root + "/" + $0 }
}
