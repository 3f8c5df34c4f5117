import BRModel
import Foundation
import KubeAPI
import KubeClient
import KubeModel
import Testing
import TestServers

/// The web view in a real browser (headless Chromium through the DevTools protocol), served by the
/// standalone server. The controllers are off, so the objects stay exactly as the test writes them.
@Suite("End to end: the web view in headless Chromium", .serialized)
struct WebViewTests {
    static let output = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/test-output").path

    /// A schedule `name` (every minute) with more spec and status, owning the Backups the test adds.
    func schedule(_ op: Operator, _ name: String, status: JSONValue = .emptyObject) async throws -> JSONValue {
        let object = try KubeYAML.documents("""
            apiVersion: pingcap.com/v1alpha1
            kind: BackupSchedule
            metadata: {name: \(name), namespace: default}
            spec:
              schedule: "@every 1m"
              maxBackups: 5
              backupTemplate: {br: {cluster: basic}, s3: {provider: aws, bucket: b, prefix: \(name)}}
            """)[0].value
        var created = try await op.api.create(.backupSchedules, namespace: "default", object: object)
        if status != .emptyObject {
            created["status"] = status
            created = try await op.api.update(.backupSchedules, namespace: "default", object: created, subresource: "status")
        }
        return created
    }

    /// A Backup of `schedule` in `phase`, started `startedAgo` seconds ago and (when finished) completed `took` later.
    func backup(_ op: Operator, _ name: String, schedule: JSONValue, phase: String, startedAgo: Int64, took: Int64? = nil,
                size: Int64? = nil, failure: String? = nil) async throws {
        let scheduleName = schedule.value(at: ["metadata", "name"])?.stringValue ?? ""
        var labels = JSONObject()
        for (k, v) in BRLabels.scheduleLabels(scheduleName: scheduleName).sorted(by: { $0.key < $1.key }) { labels[k] = .string(v) }
        let object: JSONValue = [
            "apiVersion": "pingcap.com/v1alpha1", "kind": "Backup",
            "metadata": ["name": .string(name), "namespace": "default", "labels": .object(labels),
                         "ownerReferences": [["apiVersion": "pingcap.com/v1alpha1", "kind": "BackupSchedule", "name": .string(scheduleName),
                                              "uid": schedule.value(at: ["metadata", "uid"]) ?? "", "controller": true]]],
            "spec": ["br": ["cluster": "basic"], "s3": ["provider": "aws", "bucket": "b", "prefix": .string(name)]],
        ]
        var created = try await op.api.create(.backups, namespace: "default", object: object)
        let now = Int64(Date().timeIntervalSince1970)
        let started = Time(unixSeconds: now - startedAgo)
        var status: JSONValue = ["phase": .string(phase), "timeStarted": .string(started.description),
                                 "conditions": [["type": .string(phase), "status": "True", "lastTransitionTime": .string(started.description)]]]
        if let took {
            status["timeCompleted"] = .string(started.adding(seconds: took).description)
            status["commitTs"] = .string(String(TSO.fromUnixSeconds(now - startedAgo)))
        }
        if let size {
            status["backupSize"] = .int(size)
            status["backupSizeReadable"] = .string("\(size / 1_048_576) MiB")
        }
        if let failure {
            status["conditions"] = [["type": "Failed", "status": "True", "reason": "BackupFailed", "message": .string(failure),
                                     "lastTransitionTime": .string(started.adding(seconds: took ?? 0).description)]]
        }
        created["status"] = status
        _ = try await op.api.update(.backups, namespace: "default", object: created, subresource: "status")
    }

    func browse(_ steps: [JSONValue], in directory: String) async throws -> (Int32, JSONValue) {
        let file = directory + "/scenario-\(UUID().uuidString).json"
        try JSONValue.array(steps).serialized().write(toFile: file, atomically: true, encoding: .utf8)
        let (status, output) = try await TestServers.run(["python3", TestServers.fixtures + "/browser.py", file])
        let last = output.split(separator: "\n").last.map(String.init) ?? ""
        return (status, (try? JSONParser.parse(last)) ?? ["raw": .string(output)])
    }

    func loginSteps(_ op: Operator) throws -> [JSONValue] {
        let token = try String(contentsOfFile: op.directory + "/data/token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let base = "https://127.0.0.1:\(op.port)"
        return [["goto": .string(base + "/ui/login")],
                ["eval": .string("document.getElementById('token').value = \(JSONValue.string(token).serialized()); document.getElementById('login').submit(); true")],
                ["wait": "document.body && document.body.dataset.rendered", "timeout": 15]]
    }

    @Test("overview badges (late, failing), the schedule's timeline bars and the error text of a failed backup, in the DOM; a screenshot under .build/test-output")
    func pages() async throws {
        let op = try await Operator(extraArguments: ["--no-controllers"])
        defer { op.stop() }
        let late = try await schedule(op, "late-one")
        try await backup(op, "late-one-1", schedule: late, phase: "Complete", startedAgo: 1200, took: 60, size: 1 << 30)
        try await backup(op, "late-one-2", schedule: late, phase: "Running", startedAgo: 30)
        let failing = try await schedule(op, "failing-one", status: ["conditions": [[
            "type": "BackupsFailing", "status": "True", "reason": "BackupsFailing", "message": "the last 1 backup(s) failed"]]])
        try await backup(op, "failing-one-1", schedule: failing, phase: "Complete", startedAgo: 300, took: 40, size: 512 << 20)
        try await backup(op, "failing-one-2", schedule: failing, phase: "Failed", startedAgo: 100, took: 5,
                         failure: "br exited 1: [BR:KV:ErrKVStorage]disk full on store 4 <script>alert(1)</script>")
        try FileManager.default.createDirectory(atPath: Self.output, withIntermediateDirectories: true)
        let base = "https://127.0.0.1:\(op.port)"
        let (status, result) = try await browse(try loginSteps(op) + [
            ["wait": "document.querySelectorAll('tr[data-schedule]').length === 2", "timeout": 10],
            ["eval": "document.querySelector('tr[data-schedule=\"default/late-one\"]').dataset.health", "as": "lateHealth"],
            ["eval": "document.querySelector('tr[data-schedule=\"default/late-one\"] [data-badge]').textContent", "as": "lateBadge"],
            ["eval": "document.querySelector('tr[data-schedule=\"default/failing-one\"]').dataset.health", "as": "failingHealth"],
            ["eval": "document.querySelector('[data-row=\"Backup/default/failing-one-2\"] .error-text').textContent", "as": "overviewError"],
            ["screenshot": .string(Self.output + "/web-view-overview.png")],
            ["goto": .string(base + "/ui/#/schedule/default/failing-one")],
            ["wait": "document.querySelectorAll('#timeline rect.bar').length === 2", "timeout": 10],
            ["eval": "[...document.querySelectorAll('#timeline rect.bar')].map(b => b.dataset.backup + ':' + b.getAttribute('class')).sort().join(',')", "as": "bars"],
            ["eval": "document.querySelectorAll('#size-chart circle.dot').length", "as": "sizePoints"],
            ["eval": "document.querySelector('#timeline rect[data-backup=\"failing-one-2\"]').dispatchEvent(new MouseEvent('click', {bubbles: true})); true"],
            ["wait": "document.getElementById('error')", "timeout": 10],
            ["eval": "document.getElementById('error').textContent", "as": "error"],
            ["eval": "document.querySelectorAll('script').length", "as": "scripts"],
            ["eval": "location.hash", "as": "hash"],
            ["screenshot": .string(Self.output + "/web-view.png")],
        ], in: op.directory)
        #expect(status == 0, "\(result)")
        #expect(result["lateHealth"] == "late" && result["lateBadge"] == "late", "\(result)")
        #expect(result["failingHealth"] == "failing", "\(result)")
        #expect(result["overviewError"]?.stringValue?.contains("disk full on store 4") == true, "\(result)")
        #expect(result["bars"] == "failing-one-1:bar Complete,failing-one-2:bar Failed", "\(result)")
        #expect(result["sizePoints"] == .int(1), "\(result)")
        #expect(result["hash"] == "#/backup/default/failing-one-2", "\(result)")
        #expect(result["error"]?.stringValue == "BackupFailed: br exited 1: [BR:KV:ErrKVStorage]disk full on store 4 <script>alert(1)</script>", "\(result)")
        #expect(result["scripts"] == .int(1), "the message's markup stayed text: \(result)")
        #expect(FileManager.default.fileExists(atPath: Self.output + "/web-view.png"))
    }

    @Test("a Backup that changes shows its new phase within 2 s, without a reload; without the token the API answers 401 and the page sends to the login")
    func liveUpdates() async throws {
        let op = try await Operator(extraArguments: ["--no-controllers"])
        defer { op.stop() }
        let s = try await schedule(op, "live")
        try await backup(op, "live-1", schedule: s, phase: "Running", startedAgo: 10)
        let ready = op.directory + "/ready", changed = op.directory + "/changed"
        let base = "https://127.0.0.1:\(op.port)"
        let steps = try loginSteps(op) + [
            ["goto": .string(base + "/ui/#/backup/default/live-1")],
            ["wait": "document.querySelector('h1 [data-badge=\"Running\"]') && document.getElementById('live').textContent === 'live'", "timeout": 10],
            ["eval": "window.__sameDocument = 42; true"],
            ["touch": .string(ready)],
            ["await_file": .string(changed), "timeout": 30],
            ["wait": "document.querySelector('h1 [data-badge=\"Complete\"]')", "timeout": 2, "as": "seconds"],
            ["eval": "window.__sameDocument", "as": "same"],
        ]
        let browser = Task.detached { try await self.browse(steps, in: op.directory) }
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: ready) && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        var b = try await op.api.get(.backups, namespace: "default", name: "live-1")
        b["status"]?["phase"] = "Complete"
        b["status"]?["timeCompleted"] = .string(Time(Date()).description)
        _ = try await op.api.update(.backups, namespace: "default", object: b, subresource: "status")
        FileManager.default.createFile(atPath: changed, contents: nil)
        let (status, result) = try await browser.value
        #expect(status == 0, "\(result)")
        let seconds = result["seconds"].flatMap { $0.intValue.map(Double.init) ?? Double($0.serialized()) } ?? 99
        #expect(seconds <= 2, "\(result)")
        #expect(result["same"] == .int(42), "the page was not reloaded: \(result)")

        let (code, _) = try await TestServers.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", base + "/ui/api/overview"])
        #expect(code == 0)
        let (_, answer) = try await TestServers.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", base + "/ui/api/overview", base + "/ui/"])
        #expect(answer.hasPrefix("401") && answer.contains("/ui/login"), "\(answer)")
    }

    @Test("a backup's page shows the tail of its Job's log (the job binary's and BR's lines)")
    func logTail() async throws {
        let op = try await Operator()
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(LogBackupTests.etcdCluster(pd: "http://127.0.0.1:1"))
        try await op.apply("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: tailed, namespace: default}
            spec:
              br: {cluster: basic}
              local: {prefix: tailed, volume: {name: backups, hostPath: {path: \(root)}}, volumeMount: {name: backups, mountPath: \(root)}}
            """)
        _ = try await op.backup("tailed", reaches: ["Complete", "Failed"])
        let base = "https://127.0.0.1:\(op.port)"
        let (status, result) = try await browse(try loginSteps(op) + [
            ["goto": .string(base + "/ui/#/backup/default/tailed")],
            ["wait": "document.getElementById('log') && document.getElementById('log').textContent.includes('running:')", "timeout": 15],
            ["eval": "document.getElementById('log').textContent", "as": "log"],
            ["eval": "document.querySelector('h2:nth-of-type(3)') ? [...document.querySelectorAll('h2')].map(h => h.textContent).join('|') : ''", "as": "headings"],
        ], in: op.directory)
        #expect(status == 0, "\(result)")
        let log = result["log"]?.stringValue ?? ""
        #expect(log.contains("running:") && log.contains("br"), "\(log)")
        #expect(result["headings"]?.stringValue?.contains("(Job backup-tailed)") == true, "\(result)")
    }
}
