import BackupOperator
import ControllerKit
import Foundation
import KubeModel
import KubeTesting
import Testing
import TestServers

/// deploy/monitoring/: every metric the alerts and the dashboard use is one the operator exports;
/// `promtool check rules` accepts the rules; the dashboard passes a schema check of Grafana's model.
@Suite("Ready-made monitoring", .serialized)
struct MonitoringTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let rules = root.appendingPathComponent("deploy/monitoring/prometheusrule.yaml").path
    static let dashboard = root.appendingPathComponent("deploy/monitoring/grafana-dashboard.json").path

    /// The families a running operator describes: the controllers, the manager, the reconcilers.
    static func exported() -> Set<String> {
        let metrics = MetricsRegistry()
        _ = ControllerManager(metrics: metrics)
        _ = OperatorSetup(api: InMemoryKubeAPI(), options: OperatorSetup.Options(), metrics: metrics)
        return Set(metrics.names)
    }

    static func referenced(_ text: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: "tidb_backup_operator_([a-z0-9_]+)")
        var out = Set<String>()
        for m in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            var name = String(text[Range(m.range(at: 1), in: text)!])
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
            out.insert(name)
        }
        return out
    }

    func run(_ args: [String]) async throws -> (Int32, String) { try await TestServers.run(args) }

    @Test("every metric an alert or a panel uses is exported by the operator")
    func metricsExist() throws {
        let exported = Self.exported()
        let rules = try String(contentsOfFile: Self.rules, encoding: .utf8)
        let panels = try String(contentsOfFile: Self.dashboard, encoding: .utf8)
        let used = Self.referenced(rules).union(Self.referenced(panels))
        #expect(used.count >= 10, "\(used.sorted())")
        #expect(used.subtracting(exported).isEmpty, "used but not exported: \(used.subtracting(exported).sorted()); exported: \(exported.sorted())")
        // Each alert says what to do.
        let doc = try KubeYAML.documents(rules)[0].value
        let alerts = (doc.value(at: ["spec", "groups"])?.arrayValue ?? []).flatMap { $0["rules"]?.arrayValue ?? [] }
        #expect(alerts.count >= 5)
        for alert in alerts {
            let runbook = alert.value(at: ["annotations", "runbook"])?.stringValue ?? ""
            #expect(runbook.count > 20, "\(alert["alert"]?.stringValue ?? "") has no runbook line")
        }
    }

    @Test("promtool check rules accepts the PrometheusRule's groups")
    func promtool() async throws {
        let doc = try KubeYAML.documents(try String(contentsOfFile: Self.rules, encoding: .utf8))[0].value
        let groups: JSONValue = ["groups": doc.value(at: ["spec", "groups"]) ?? .null]
        let file = NSTemporaryDirectory() + "rules-\(UUID().uuidString).yaml"
        try KubeYAML.emit(groups).write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let (status, output) = try await run(["promtool", "check", "rules", file])
        #expect(status == 0, "\(output)")
        #expect(output.contains("SUCCESS: 7 rules found"), "\(output)")
    }

    @Test("the dashboard loads and passes the schema of Grafana's dashboard model")
    func dashboardSchema() async throws {
        let schema = Self.root.appendingPathComponent("Tests/Fixtures/grafana-dashboard.schema.json").path
        let script = "import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); print('valid')"
        let (status, output) = try await run(["python3", "-c", script, Self.dashboard, schema])
        #expect(status == 0 && output.contains("valid"), "\(output)")
        // And the check can fail: a panel without targets is refused.
        let broken = NSTemporaryDirectory() + "dashboard-\(UUID().uuidString).json"
        var doc = try JSONParser.parse(try String(contentsOfFile: Self.dashboard, encoding: .utf8))
        var panels = doc["panels"]?.arrayValue ?? []
        panels[0]["targets"] = []
        doc["panels"] = .array(panels)
        try doc.serialized().write(toFile: broken, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: broken) }
        let (refused, _) = try await run(["python3", "-c", script, broken, schema])
        #expect(refused != 0)
    }
}
