import Foundation
import KubeModel
import Testing

@testable import BRModel

@Suite("Generated CRDs")
struct CRDTests {
    @Test("deploy/crds/crds.yaml is exactly what `manifests crds` prints")
    func committed() throws {
        let committed = try String(contentsOfFile: Paths.repo("deploy/crds/crds.yaml"), encoding: .utf8)
        #expect(committed == BRKinds.crdsYAML() + "\n" || committed == BRKinds.crdsYAML(),
                "regenerate with: swift run tidb-backup-operator manifests crds > deploy/crds/crds.yaml")
    }

    @Test("a CRD read back (as the standalone server reads what it is handed) gives the schema it was made from; every CEL rule has a native evaluator")
    func readBack() throws {
        for info in BRKinds.all + [BRKinds.tidbCluster] {
            let crd = BRKinds.crd(info)
            let schema = try OpenAPISchema(json: try #require(crd.value(at: ["spec", "versions", "0", "schema", "openAPIV3Schema"])
                ?? crd.value(at: ["spec", "versions"])?.arrayValue?.first?.value(at: ["schema", "openAPIV3Schema"])))
            #expect(schema == info.crdSchema, "\(info.kind)")
            #expect(schema.jsonValue == info.crdSchema.jsonValue, "\(info.kind)")
        }
        func rules(_ s: OpenAPISchema) -> [String] {
            s.validations.map(\.rule) + s.properties.flatMap { rules($0.schema) } + (s.items.map { rules($0.schema) } ?? [])
                + (s.additionalProperties.map { rules($0.schema) } ?? [])
        }
        let all = Set((BRKinds.all + [BRKinds.tidbCluster]).flatMap { rules($0.schema) })
        #expect(all.count >= 4, "\(all)")
        #expect(all.subtracting(BRKinds.ruleEvaluators.keys).isEmpty, "rules without an evaluator: \(all.subtracting(BRKinds.ruleEvaluators.keys))")
    }

    @Test("every schema is structural and every default validates against its schema", arguments: BRKinds.all.map(\.kind))
    func structural(_ kind: String) throws {
        let info = try #require(BRKinds.info(forKind: kind))
        #expect(info.crdSchema.structuralProblems() == [])
        #expect(info.crdSchema.property("metadata") == OpenAPISchema(type: .object))
    }

    @Test("names, short names, printer columns and the status subresource (reference 1.1)")
    func names() throws {
        let crds = try KubeYAML.documents(BRKinds.crdsYAML()).map(\.value)
        #expect(crds.map { $0.value(at: ["metadata", "name"]) } == [
            "backups.pingcap.com", "backupschedules.pingcap.com", "compactbackups.pingcap.com", "restores.pingcap.com",
        ])
        #expect(crds.map { $0.value(at: ["spec", "names", "shortNames"]) } == [["bk"], ["bks"], ["cpbk"], ["rt"]])
        let backupVersion = try #require(crds[0].value(at: ["spec", "versions"])?.arrayValue?.first)
        #expect(backupVersion["subresources"] == ["status": [:]])
        let columns = backupVersion["additionalPrinterColumns"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
        #expect(columns == ["Type", "Mode", "Status", "BackupPath", "BackupSize", "IncrementalBackupSize", "CommitTS",
                            "LogTruncateUntil", "Started", "Completed", "TimeTaken", "Verified", "Age"])
    }

    /// Compares our schema with TiDB Operator's release-1.6 CRD: every member TiDB Operator declares
    /// must exist with the same type, format, default, enum and required list; differences we chose are
    /// listed and nothing else may differ.
    @Test("schemas accept what TiDB Operator's CRDs declare", arguments: [
        ("Backup", "pingcap.com_backups.yaml"), ("BackupSchedule", "pingcap.com_backupschedules.yaml"),
        ("Restore", "pingcap.com_restores.yaml"), ("CompactBackup", "pingcap.com_compactbackups.yaml"),
    ])
    func upstreamCompatibility(_ kind: String, _ file: String) throws {
        let path = Paths.shared.appendingPathComponent("reference/upstream-crd-schemas/\(file)").path
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("upstream schema not found at \(path)")
            return
        }
        let upstream = try #require(try yamlObjects(path).first?.value(at: ["spec", "versions"])?.arrayValue?.first?
            .value(at: ["schema", "openAPIV3Schema"]))
        let ours = try #require(BRKinds.info(forKind: kind)).crdSchema.jsonValue
        var differences: [String] = []
        compare(upstream, ours, path: "", into: &differences)
        let openOnPurpose = ["volume", "additionalVolumes[]", "affinity", "podSecurityContext", "valueFrom", "claims[]"]
        let accepted = differences.filter { d in
            // Kubernetes sub-objects kept open on purpose; extra nullable times accept more; schedule additions.
            openOnPurpose.contains { d.hasSuffix("\($0): kept open") }
                || d.contains(": nullable added") || d == "spec: added serviceAccount, startingDeadlineSeconds, timeZone, verification"
                || d == "spec.logBackupTemplate.backupMode: default snapshot -> log"
                || d == "status: added conditions, earliestRestorable, health, lastVerificationStart, lastVerifiedBackup, lastVerifiedTime, latestRestorable, nextScheduledTime, provenRestorable, restorableContinuous"
                || (kind == "Backup" && d == "status: added verification")
                || (kind == "Restore" && d == "spec: added lightning")
        }
        #expect(differences.filter { !accepted.contains($0) } == [])
    }

    func compare(_ a: JSONValue, _ b: JSONValue, path: String, into out: inout [String]) {
        let open = b["x-kubernetes-preserve-unknown-fields"] == true && a["x-kubernetes-preserve-unknown-fields"] != true
        if open && a["properties"] != nil { out.append("\(path): kept open") }
        for key in ["type", "format", "enum"] where a[key] != b[key] && !(key == "type" && b["x-kubernetes-int-or-string"] == true) {
            out.append("\(path): \(key) \(a[key]?.serialized() ?? "-") -> \(b[key]?.serialized() ?? "-")")
        }
        if a["default"] != b["default"] {
            out.append("\(path): default \(a["default"]?.stringValue ?? a["default"]?.serialized() ?? "-") -> \(b["default"]?.stringValue ?? b["default"]?.serialized() ?? "-")")
        }
        if a["nullable"] != b["nullable"] { out.append(b["nullable"] == true ? "\(path): nullable added" : "\(path): nullable removed") }
        let req = { (v: JSONValue) in Set(v["required"]?.arrayValue?.compactMap(\.stringValue) ?? []) }
        if req(a) != req(b) && !(open && req(b).isSubset(of: req(a))) { out.append("\(path): required \(req(a).sorted()) -> \(req(b).sorted())") }
        let ap = a["properties"]?.objectValue
        let bp = b["properties"]?.objectValue
        if let ap, path != "metadata" {
            let missing = ap.keys.filter { bp?[$0] == nil }
            let added = (bp?.keys ?? []).filter { ap[$0] == nil }
            if !missing.isEmpty && !open { out.append("\(path): missing \(missing.sorted().joined(separator: ", "))") }
            if !added.isEmpty { out.append("\(path.isEmpty ? "<root>" : path): added \(added.sorted().joined(separator: ", "))") }
            for (k, v) in ap { if let w = bp?[k] { compare(v, w, path: path.isEmpty ? k : "\(path).\(k)", into: &out) } }
        }
        if let ai = a["items"], let bi = b["items"] { compare(ai, bi, path: path + "[]", into: &out) }
        if let aa = a["additionalProperties"], let ba = b["additionalProperties"], aa.objectValue != nil {
            compare(aa, ba, path: path + "{}", into: &out)
        }
    }
}
