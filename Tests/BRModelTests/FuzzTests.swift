import BRModel
import Cron
import Foundation
import KubeClient
import KubeModel
import KubeTesting
@testable import ManifestTools
import Testing

/// Mutations of valid inputs toward what users and their tools hand us: cut, repeated, spliced and
/// sprinkled with the characters that matter to YAML, JSON, cron and Go durations.
enum Mutator {
    static let tokens: [String] = [
        ":", ": ", "-", "- ", "{", "}", "[", "]", "\"", "'", "\n", "  ", "\t", "#", "&a ", "*a", "!!binary ", "|", ">", "---\n", "...",
        "@every ", "*/", "/", ",", "0x1F", "1e999", "-1", "99999999999999999999", "\u{0}", "\u{FEFF}", "é", "🦀", "null", "~", "true",
        "{{", "%", "\\", "\\u", "h", "ms", "µs", ".", "<<: ", "? ", "=", "TZ=", "CRON_TZ=Mars/Base ", "L", "W", "?", "2147483648",
    ]

    static func mutate(_ text: String, _ rng: inout SplitMix64) -> String {
        var scalars = Array(text.unicodeScalars)
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let at = scalars.isEmpty ? 0 : Int.random(in: 0...scalars.count, using: &rng)
            switch Int.random(in: 0..<5, using: &rng) {
            case 0 where !scalars.isEmpty:
                let end = min(scalars.count, at + Int.random(in: 1...8, using: &rng))
                if at < end { scalars.removeSubrange(at..<end) }
            case 1:
                scalars.insert(contentsOf: tokens.randomElement(using: &rng)!.unicodeScalars, at: at)
            case 2 where !scalars.isEmpty:
                let start = Int.random(in: 0..<scalars.count, using: &rng)
                let slice = scalars[start..<min(scalars.count, start + Int.random(in: 1...24, using: &rng))]
                scalars.insert(contentsOf: slice, at: at)
            case 3 where at < scalars.count:
                scalars[at] = Unicode.Scalar(UInt8.random(in: 0...127, using: &rng))
            default:
                scalars.insert(contentsOf: String(repeating: "9", count: Int.random(in: 1...30, using: &rng)).unicodeScalars, at: at)
            }
        }
        var out = ""
        out.unicodeScalars.append(contentsOf: scalars)
        return out
    }
}

/// Property tests over generated inputs for everything a user hands us: no input crashes the process
/// (a crash ends the test run), and every rejection is an error with a message. The number of cases
/// is fixed, so CI's time is bounded; `FUZZ_SEED` and `FUZZ_CASES` make a longer or another run.
@Suite("Fuzzing what users hand us")
struct FuzzTests {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["FUZZ_SEED"].flatMap { UInt64($0) } ?? 20_261_129
    static let cases = ProcessInfo.processInfo.environment["FUZZ_CASES"].flatMap { Int($0) } ?? 300

    static var root: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    /// Every example and seed manifest, as text.
    static func manifests() throws -> [String] {
        var out: [String] = []
        let examples = root.appendingPathComponent("examples")
        let walker = FileManager.default.enumerator(atPath: examples.path)
        while let rel = walker?.nextObject() as? String {
            guard rel.hasSuffix(".yaml") else { continue }
            out.append(try String(contentsOf: examples.appendingPathComponent(rel), encoding: .utf8))
        }
        return out.sorted()
    }

    @Test("mutated manifests: the YAML and JSON readers and `validate` reject with messages, never crash")
    func manifests() throws {
        var rng = SplitMix64(state: Self.seed)
        let seeds = try Self.manifests()
        #expect(seeds.count >= 10)
        let validator = ManifestValidator()
        var rejected = 0, accepted = 0
        for i in 0..<(Self.cases * 4) {
            let text = Mutator.mutate(seeds[i % seeds.count], &rng)
            do {
                let docs = try KubeYAML.documents(text)
                accepted += 1
                // The same documents as JSON, mutated again, through the JSON parser.
                for doc in docs {
                    let json = Mutator.mutate(String(decoding: doc.value.data(), as: UTF8.self), &rng)
                    do { _ = try JSONParser.parse(json) } catch { #expect(!"\(error)".isEmpty) }
                }
            } catch {
                rejected += 1
                #expect(!"\(error)".isEmpty, "a YAML rejection without a message (seed \(Self.seed), case \(i))")
            }
            var report = ManifestValidator.Report()
            validator.validate(text: text, source: "case-\(i).yaml", into: &report)
            for line in report.problems { #expect(line.contains(": "), "problem line without a field and message: \(line)") }
            for line in report.unreadable { #expect(line.contains("case-\(i).yaml"), "unreadable line without the file: \(line)") }
        }
        #expect(rejected > 0 && accepted > 0, "the mutations exercised both paths: \(accepted) read, \(rejected) rejected")
    }

    @Test("mutated cron specs parse or are rejected with a message; the next slot of every accepted one is found")
    func cron() throws {
        var rng = SplitMix64(state: Self.seed &+ 1)
        let seeds = ["*/5 * * * *", "@every 2s", "0 0 * * 0", "@daily", "CRON_TZ=UTC 0 1 * * *", "1-5/2 1,2 * JAN-MAR MON-FRI",
                     "@every 1h30m", "0 */6 1,15 * *", "59 23 31 12 *", "@hourly"]
        let now = Date(timeIntervalSince1970: 1_764_000_000)
        for i in 0..<(Self.cases * 4) {
            let spec = Mutator.mutate(seeds[i % seeds.count], &rng)
            do {
                let schedule = try CronSchedule(parsing: spec)
                if let next = schedule.next(after: now, in: TimeZone(identifier: "UTC")!) { #expect(next > now, "\(spec)") }
            } catch {
                #expect(!"\(error)".isEmpty, "cron rejection without a message for \(spec.debugDescription)")
            }
        }
    }

    @Test("mutated Go durations parse to a value or are rejected with a message")
    func durations() {
        var rng = SplitMix64(state: Self.seed &+ 2)
        let seeds = ["72h", "1h30m", "300ms", "-1.5h", "2h45m0.5s", "1µs", "0", "10m0s"]
        for i in 0..<(Self.cases * 4) {
            let text = Mutator.mutate(seeds[i % seeds.count], &rng)
            do { _ = try GoDuration(parsing: text) } catch {
                #expect(!"\(error)".isEmpty, "duration rejection without a message for \(text.debugDescription)")
            }
        }
    }

    @Test("mutated kubeconfigs load or are rejected with a message")
    func kubeconfigs() throws {
        var rng = SplitMix64(state: Self.seed &+ 3)
        let seed = """
            apiVersion: v1
            kind: Config
            current-context: a
            clusters:
            - name: c
              cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
            users:
            - name: u
              user: {token: abc}
            - name: e
              user:
                exec: {apiVersion: client.authentication.k8s.io/v1, command: aws, args: [eks, get-token], env: [{name: A, value: b}]}
            contexts:
            - name: a
              context: {cluster: c, user: u, namespace: ns}
            - name: b
              context: {cluster: c, user: e}
            """
        let dir = FileManager.default.temporaryDirectory.path
        for i in 0..<(Self.cases * 2) {
            let text = Mutator.mutate(seed, &rng)
            guard let doc = try? KubeYAML.documents(text).first else { continue }
            do { _ = try KubeConfig.parse(doc.value, directory: dir, source: "case-\(i)") } catch {
                #expect(!"\(error)".isEmpty, "kubeconfig rejection without a message")
            }
        }
    }
}
