import BRModel
import Foundation
import KubeModel
import KubeTesting
import Testing

/// The direct `JSONValue` decoder and encoder (`JSONValueCoding`, used by `KubeCodec`) give what
/// Foundation's `JSONDecoder` / `JSONEncoder` over JSON text gave: the same typed values, the same
/// documents, and errors naming the same field.
@Suite("Typed coding straight from parsed JSON")
struct CodingEquivalenceTests {
    /// Decodes `doc` both ways as `T`; compares the values, their encodings, or the failing field.
    static func check<T: Decodable & Encodable & Equatable>(_ type: T.Type, _ doc: JSONValue, _ label: String) {
        let old: Result<T, KubeDecodingError> = Result { () throws(KubeDecodingError) -> T in
            try KubeCodec.decodeThroughText(T.self, from: doc)
        }
        let new: Result<T, KubeDecodingError> = Result { () throws(KubeDecodingError) -> T in try KubeCodec.decodeValue(T.self, from: doc) }
        switch (old, new) {
        case (.success(let a), .success(let b)):
            #expect(a == b, "\(label): decoded values differ")
            let textual = try? KubeCodec.encodeThroughText(a)
            // Foundation's encoder orders members as its dictionaries iterate; the direct one in
            // declaration order: the same documents up to member order.
            #expect(textual.map(canonical)?.serialized() == canonical(KubeCodec.encodeValue(b)).serialized(), "\(label): encodings differ")
        case (.failure(let a), .failure(let b)):
            // Foundation names no field for a number that does not fit (e.g. 2.5 for a port); this
            // decoder does: equal where Foundation names one.
            #expect(a.field.isEmpty || a.field == b.field, "\(label): \(a) vs \(b)")
            #expect(!b.field.isEmpty, "\(label): \(b)")
            if a.message.hasPrefix("expected") || a.message == "Required value" { #expect(a.message == b.message, "\(label): \(a) vs \(b)") }
        case (.success, .failure(let e)):
            Issue.record("\(label): the direct decoder rejected what JSONDecoder read: \(e)")
        case (.failure(let e), .success):
            Issue.record("\(label): the direct decoder read what JSONDecoder rejected: \(e)")
        }
    }

    static func checkAny(_ doc: JSONValue, _ label: String) {
        switch doc["kind"]?.stringValue {
        case "Backup": check(Backup.self, doc, label)
        case "Restore": check(Restore.self, doc, label)
        case "BackupSchedule": check(BackupSchedule.self, doc, label)
        case "CompactBackup": check(CompactBackup.self, doc, label)
        case "TidbCluster": check(TidbCluster.self, doc, label)
        default: break
        }
    }

    @Test("every example and seed manifest, and a Backup with a full status: same values, same documents")
    func manifests() throws {
        var checked = 0
        for text in try FuzzTests.manifests() {
            for doc in try KubeYAML.documents(text) where ["Backup", "Restore", "BackupSchedule", "CompactBackup", "TidbCluster"].contains(doc.value["kind"]?.stringValue ?? "") {
                Self.checkAny(doc.value, doc.value.value(at: ["metadata", "name"])?.stringValue ?? "?")
                checked += 1
            }
        }
        #expect(checked >= 10)
        let full = try KubeYAML.documents("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: full, namespace: ns, labels: {a: b}, annotations: {x: "y"}, resourceVersion: "12", generation: 3}
            spec:
              br: {cluster: c, concurrency: 4, rateLimit: 100, checksum: false, options: ["--ratelimit=1"]}
              s3: {provider: aws, bucket: b, prefix: p}
              env: [{name: A, value: "1"}, {name: B, valueFrom: {secretKeyRef: {name: s, key: k}}}]
              resources: {limits: {cpu: "2", memory: 4Gi}}
              tolerations: [{key: k, operator: Exists, effect: NoSchedule, tolerationSeconds: 30}]
            status:
              phase: Complete
              backupPath: s3://b/p
              backupSize: 123456789012
              backupSizeReadable: 115 GB
              commitTs: "451234567890123456"
              timeStarted: "2026-11-30T01:02:03Z"
              timeCompleted: "2026-11-30T02:03:04Z"
              progresses: [{step: Full Backup, progress: 37.5, lastTransitionTime: "2026-11-30T01:30:00Z"}, {step: Checksum, progress: 100}]
              conditions: [{type: Complete, status: "True", lastTransitionTime: "2026-11-30T02:03:04Z", reason: "", message: ""}]
            """)[0].value
        Self.checkAny(full, "full")
    }

    @Test("mutated documents: both read them or both reject them, naming the same field")
    func mutated() throws {
        var rng = SplitMix64(state: FuzzTests.seed &+ 7)
        let seeds = try FuzzTests.manifests().flatMap { try KubeYAML.documents($0).map(\.value) }
            .filter { ["Backup", "Restore", "BackupSchedule"].contains($0["kind"]?.stringValue ?? "") }
        #expect(!seeds.isEmpty)
        // Replace one value somewhere in the document by a value of another JSON type.
        let replacements: [JSONValue] = [.null, .bool(true), .int(7), .int(-1), .double(2.5), .string("x"), .string("12"), .array([.int(1)]), .emptyObject]
        func paths(_ v: JSONValue, _ prefix: [String]) -> [[String]] {
            guard case .object(let o) = v else { return [prefix] }
            return [prefix] + o.flatMap { paths($0.value, prefix + [$0.key]) }
        }
        for i in 0..<(FuzzTests.cases * 2) {
            var doc = seeds[i % seeds.count]
            let candidates = paths(doc, []).filter { $0.count > 1 && $0[0] != "kind" && $0[0] != "apiVersion" }
            guard let path = candidates.randomElement(using: &rng) else { continue }
            doc.set(path, to: replacements.randomElement(using: &rng)!)
            Self.checkAny(doc, "case \(i) at \(path.joined(separator: "."))")
        }
    }
}

/// Members sorted by key at every depth.
func canonical(_ v: JSONValue) -> JSONValue {
    switch v {
    case .object(let o): return .object(JSONObject(o.sorted { $0.key < $1.key }.map { ($0.key, canonical($0.value)) }))
    case .array(let a): return .array(a.map(canonical))
    default: return v
    }
}

extension JSONValue {
    fileprivate mutating func set(_ path: [String], to value: JSONValue) {
        guard let first = path.first else { self = value; return }
        guard case .object(var o) = self else { return }
        var child = o[first] ?? .null
        child.set(Array(path.dropFirst()), to: value)
        o[first] = child
        self = .object(o)
    }
}
