import Foundation
import KubeAPI
import KubeModel
import Testing
import TestServers

/// README's quick start, run as written wherever that is possible here: the commands of its `sh`
/// blocks go to bash in a copy of `examples/quickstart`, against the standalone server. What needs
/// TiUP stands in: `tiup playground` lines are skipped (a fake PD answers instead), and `tiup br:v8.5.0`
/// is the br stand-in, which follows BR's command line.
@Suite("End to end: README's quick start", .serialized)
struct QuickStartTests {
    static var root: String { URL(fileURLWithPath: Operator.buildDirectory).deletingLastPathComponent().deletingLastPathComponent().path }

    /// The `sh` blocks between the quick-start markers.
    static func blocks(_ readme: String) throws -> [String] {
        guard let begin = readme.range(of: "<!-- quickstart:begin -->"), let end = readme.range(of: "<!-- quickstart:end -->") else {
            throw Operator.Failure("README.md has no quickstart markers")
        }
        let section = readme[begin.upperBound..<end.lowerBound]
        return section.components(separatedBy: "```sh\n").dropFirst().map { String($0.components(separatedBy: "```")[0]) }
    }

    @Test("the quick start's commands end with a Complete backup, its Events and log, and a Complete restore")
    func quickStart() async throws {
        let readme = try String(contentsOfFile: Self.root + "/README.md", encoding: .utf8)
        let blocks = try Self.blocks(readme)
        #expect(blocks.count >= 4, "\(blocks)")
        let standIn = TestServers.fixtures + "/tools/br"
        let pd = try FakePD()
        defer { pd.stop() }
        try await pd.waitUntilServing()
        let op = try await Operator(environment: ["TIDB_BACKUP_MANAGER_BR": standIn])
        defer { op.stop() }

        // The working directory: the examples with this test's paths, and the data directory where README expects it.
        let work = op.directory + "/work"
        let backups = op.directory + "/backups"
        let substitutions = [("/tmp/tidb-backups", backups), ("http://127.0.0.1:2379", pd.address), ("tiup br:v8.5.0", standIn),
                             ("swift run tidb-backup-manager", Operator.buildDirectory + "/tidb-backup-manager")]
        func substitute(_ text: String) -> String { substitutions.reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) } }
        try FileManager.default.createDirectory(atPath: work + "/examples/quickstart", withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: Self.root + "/examples/quickstart") {
            let text = try String(contentsOfFile: Self.root + "/examples/quickstart/" + file, encoding: .utf8)
            try substitute(text).write(toFile: work + "/examples/quickstart/" + file, atomically: true, encoding: .utf8)
        }
        try FileManager.default.createSymbolicLink(atPath: work + "/.tidb-backup", withDestinationPath: op.directory + "/data")

        var transcript = ""
        // A block that says "again" goes on in a terminal used before: what that terminal exported holds.
        var exported: [String] = []
        for block in blocks {
            if block.contains("swift run tidb-backup-operator standalone") {
                // The server the harness started, with the same environment.
                #expect(block.contains("export TIDB_BACKUP_MANAGER_BR=\"tiup br:v8.5.0\""))
                continue
            }
            let lines = block.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("tiup ") }
            guard lines.contains(where: { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else { continue }
            let script = "set -euo pipefail\ncd '\(work)'\n" + substitute((exported + lines).joined(separator: "\n"))
            exported += lines.filter { $0.hasPrefix("export ") }
            let (status, output) = try await TestServers.run(["bash", "-c", script],
                                                       environment: ["PATH": TestServers.fixtures + "/tools:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")])
            transcript += output
            #expect(status == 0, "this block failed:\n\(script)\n--- output:\n\(output)\n--- operator log:\n\(op.tail())")
            if status != 0 { return }
        }
        #expect(transcript.contains("checks passed"), "doctor ran and passed:\n\(transcript)")
        #expect(transcript.contains("first-backup") && transcript.contains("Complete"), "\(transcript)")
        // describe shows the story as Events; the job log is br's output.
        #expect(transcript.contains("Scheduled") && transcript.contains("Running"), "\(transcript)")
        #expect(transcript.contains("Full Backup success summary"), "\(transcript)")
        let backup = try await op.api.get(.backups, namespace: "quickstart", name: "first-backup")
        #expect(backup.value(at: ["status", "phase"]) == "Complete")
        let restore = try await op.api.get(.restores, namespace: "quickstart", name: "first-restore")
        #expect(restore.value(at: ["status", "phase"]) == "Complete")
        #expect(FileManager.default.fileExists(atPath: backups + "/first-backup/backupmeta"))
    }
}
