import Foundation
import KubeModel
import KubeTesting
import Testing

@testable import StandaloneServer

@Suite("kubectl against the standalone server", .serialized)
struct KubectlTests {
    @Test("apply, get with printer columns, -o wide, patch, re-apply, describe with events, delete")
    func backupLifecycle() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        #expect(try await h.kubectl(["create", "namespace", "test1"]).code == 0)
        let apply = try await h.kubectl(["apply", "-f", RepoPaths.path("examples/seeds")])
        #expect(apply.code == 0, "\(apply.stderr)")
        #expect(apply.stdout.contains("backup.pingcap.com/demo1-backup-s3 created"))
        #expect(apply.stdout.contains("backupschedule.pingcap.com/demo1-backup-schedule-s3 created"))

        let get = try await h.kubectl(["get", "bk,bks", "-n", "test1"])
        #expect(get.code == 0, "\(get.stderr)")
        let header = get.stdout.split(separator: "\n").first.map(String.init) ?? ""
        #expect(header.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            == ["NAME", "TYPE", "MODE", "STATUS", "BACKUPPATH", "BACKUPSIZE", "COMMITTS", "LOGTRUNCATEUNTIL", "TIMETAKEN", "AGE"])
        #expect(get.stdout.contains("demo1-backup-s3   full   snapshot"))
        #expect(get.stdout.contains("SCHEDULE"))
        #expect(get.stdout.contains("*/2 * * * *"))
        let wide = try await h.kubectl(["get", "bk", "-n", "test1", "-o", "wide"])
        #expect(wide.stdout.contains("INCREMENTALBACKUPSIZE") && wide.stdout.contains("STARTED") && wide.stdout.contains("COMPLETED"))
        #expect(try await h.kubectl(["get", "rt", "-n", "test1"]).stderr.contains("No resources found"))
        // Three seed manifests share the name demo1-backup-s3, so the object has changed already.
        let before = try JSONParser.parse(try await h.kubectl(["get", "bk", "demo1-backup-s3", "-n", "test1", "-o", "json"]).stdout)
        guard case .int(let generation)? = before.value(at: ["metadata", "generation"]) else {
            Issue.record("no generation")
            return
        }

        let patch = try await h.kubectl(["patch", "bk", "demo1-backup-s3", "-n", "test1", "--type=merge", "-p", #"{"spec":{"br":{"concurrency":8}}}"#])
        #expect(patch.code == 0, "\(patch.stderr)")
        let changed = try String(contentsOfFile: RepoPaths.path("examples/seeds/000-01-backup.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "prefix: my-folder", with: "prefix: my-folder-v2")
        let reapply = try await h.kubectl(["apply", "-f", "-"], input: changed)
        #expect(reapply.stdout.contains("configured"), "\(reapply.stderr)")
        let obj = try await h.kubectl(["get", "bk", "demo1-backup-s3", "-n", "test1", "-o", "json"])
        let json = try JSONParser.parse(obj.stdout)
        #expect(json.value(at: ["spec", "s3", "prefix"]) == "my-folder-v2")
        #expect(json.value(at: ["spec", "br", "concurrency"]) == 8)
        #expect(json.value(at: ["spec", "cleanPolicy"]) == "Retain", "CRD defaults are applied on create")
        #expect(json.value(at: ["metadata", "generation"]) == .int(generation + 2))

        // An Event about the Backup shows in describe.
        let uid = json.value(at: ["metadata", "uid"])?.stringValue ?? ""
        let event = """
            apiVersion: v1
            kind: Event
            metadata: {name: demo1-backup-s3.1, namespace: test1}
            involvedObject: {apiVersion: pingcap.com/v1alpha1, kind: Backup, name: demo1-backup-s3, namespace: test1, uid: \(uid)}
            reason: SuccessfulCreate
            message: create job test1/backup-demo1-backup-s3 successful
            type: Normal
            count: 1
            firstTimestamp: "\(Time(Date()).description)"
            lastTimestamp: "\(Time(Date()).description)"
            """
        #expect(try await h.kubectl(["apply", "-f", "-"], input: event).code == 0)
        let describe = try await h.kubectl(["describe", "bk", "demo1-backup-s3", "-n", "test1"])
        #expect(describe.code == 0, "\(describe.stderr)")
        #expect(describe.stdout.contains("SuccessfulCreate"))
        #expect(describe.stdout.contains("create job test1/backup-demo1-backup-s3 successful"))

        let delete = try await h.kubectl(["delete", "bk", "demo1-backup-s3", "-n", "test1"])
        #expect(delete.code == 0, "\(delete.stderr)")
        #expect(try await h.kubectl(["get", "bk", "demo1-backup-s3", "-n", "test1"]).code == 1)
    }

    @Test("kubectl get -w sees a change made by another client")
    func watch() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        #expect(try await h.kubectl(["apply", "-f", RepoPaths.path("examples/backup-local.yaml").replacingOccurrences(of: "test1", with: "test1")]).code != 0,
                "namespace test1 does not exist yet")
        #expect(try await h.kubectl(["create", "namespace", "test1"]).code == 0)
        #expect(try await h.kubectl(["apply", "-f", RepoPaths.path("examples/backup-local.yaml")]).code == 0)
        let backups = "pingcap.com/backups"
        let before = h.server.core.hub.watcherCount(backups)
        let watcher = Task { try await h.kubectl(["get", "bk", "-n", "test1", "-w", "--request-timeout=12s"], timeout: 20) }
        // Change the object only once kubectl is watching, so the change must arrive through the watch.
        #expect(await eventually(20) { h.server.core.hub.watcherCount(backups) > before })
        #expect(try await h.kubectl(["patch", "bk", "demo1-backup-local", "-n", "test1", "--type=merge", "--subresource=status",
                               "-p", #"{"status":{"phase":"Running"}}"#]).code == 0)
        #expect(try await h.kubectl(["patch", "bk", "demo1-backup-local", "-n", "test1", "--type=merge", "--subresource=status",
                               "-p", #"{"status":{"phase":"Complete"}}"#]).code == 0)
        let out = try await watcher.value
        let rows = out.stdout.split(separator: "\n").filter { $0.hasPrefix("demo1-backup-local") }
        #expect(rows.count >= 2, "\(out.stdout) \(out.stderr)")
        #expect(rows.last?.contains("Complete") == true)
    }

    @Test("kubectl create secret generic (protobuf body) and the job runner resolve secret env; logs are readable")
    func secretsJobsAndLogs() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        #expect(try await h.kubectl(["create", "namespace", "test1"]).code == 0)
        let secret = try await h.kubectl(["create", "secret", "generic", "s3-secret", "-n", "test1", "--from-literal=access_key=AKID", "--from-literal=secret_key=sekrit"])
        #expect(secret.code == 0, "\(secret.stderr)")
        #expect(try await h.kubectl(["get", "secret", "s3-secret", "-n", "test1", "-o", "jsonpath={.type} {.data.secret_key}"]).stdout == "Opaque c2Vrcml0")
        func job(_ name: String, exit code: Int) -> String {
            """
            apiVersion: batch/v1
            kind: Job
            metadata: {name: \(name), namespace: test1}
            spec:
              backoffLimit: 0
              template:
                spec:
                  restartPolicy: Never
                  containers:
                  - name: main
                    image: busybox
                    command: ["sh", "-c", "echo started $POD; echo key length ${#KEY}; exit \(code)"]
                    env:
                    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
                    - {name: KEY, valueFrom: {secretKeyRef: {name: s3-secret, key: secret_key}}}
            """
        }
        #expect(try await h.kubectl(["apply", "-f", "-"], input: job("ok", exit: 0)).code == 0)
        #expect(try await h.kubectl(["apply", "-f", "-"], input: job("bad", exit: 1)).code == 0)
        let jsonpath = "jsonpath={.status.conditions[0].type}/{.status.conditions[0].reason}"
        #expect(try await eventually { try await h.kubectl(["get", "job", "ok", "-n", "test1", "-o", jsonpath]).stdout == "Complete/" })
        #expect(try await eventually { try await h.kubectl(["get", "job", "bad", "-n", "test1", "-o", jsonpath]).stdout == "Failed/BackoffLimitExceeded" })
        let logs = try await h.kubectl(["logs", "job/ok", "-n", "test1"])
        #expect(logs.stdout.contains("started ok-"), "\(logs.stderr)")
        #expect(logs.stdout.contains("key length 6"))
        #expect(!logs.stdout.contains("sekrit"))
        #expect(try await h.kubectl(["logs", "job/bad", "-n", "test1"]).stdout.contains("started bad-"))
    }

    @Test("a finalizer keeps a deleted object visible; deleting an owner removes its Jobs, Pods and their processes")
    func finalizersAndGarbageCollection() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        #expect(try await h.kubectl(["create", "namespace", "test1"]).code == 0)
        #expect(try await h.kubectl(["apply", "-f", RepoPaths.path("examples/backup-local.yaml")]).code == 0)
        #expect(try await h.kubectl(["patch", "bk", "demo1-backup-local", "-n", "test1", "--type=merge",
                               "-p", #"{"metadata":{"finalizers":["tidb.pingcap.com/backup-protection"]}}"#]).code == 0)
        let held = try await h.kubectl(["delete", "bk", "demo1-backup-local", "-n", "test1", "--timeout=1s"])
        #expect(held.code == 1)
        let stamp = try await h.kubectl(["get", "bk", "demo1-backup-local", "-n", "test1", "-o", "jsonpath={.metadata.deletionTimestamp}"])
        #expect(!stamp.stdout.isEmpty)
        let addWhileDeleting = try await h.kubectl(["patch", "bk", "demo1-backup-local", "-n", "test1", "--type=merge",
                                              "-p", #"{"metadata":{"finalizers":["tidb.pingcap.com/backup-protection","x/y"]}}"#])
        #expect(addWhileDeleting.code == 1)
        #expect(addWhileDeleting.stderr.contains("no new finalizers can be added"))
        #expect(try await h.kubectl(["patch", "bk", "demo1-backup-local", "-n", "test1", "--type=json",
                               "-p", #"[{"op":"remove","path":"/metadata/finalizers"}]"#]).code == 0)
        #expect(try await h.kubectl(["get", "bk", "demo1-backup-local", "-n", "test1"]).code == 1)

        // Owner → Job → Pod → process.
        #expect(try await h.kubectl(["apply", "-f", RepoPaths.path("examples/backup-local.yaml")]).code == 0)
        let uid = try await h.kubectl(["get", "bk", "demo1-backup-local", "-n", "test1", "-o", "jsonpath={.metadata.uid}"]).stdout
        let marker = "sleep 3\(Int.random(in: 100...999)).25"
        let job = """
            apiVersion: batch/v1
            kind: Job
            metadata:
              name: backup-demo1-backup-local
              namespace: test1
              ownerReferences: [{apiVersion: pingcap.com/v1alpha1, kind: Backup, name: demo1-backup-local, uid: \(uid), controller: true, blockOwnerDeletion: true}]
            spec:
              template:
                spec:
                  containers: [{name: main, image: busybox, command: ["sleep", "\(marker.dropFirst(6))"]}]
            """
        #expect(try await h.kubectl(["apply", "-f", "-"], input: job).code == 0)
        func processAlive() async throws -> Bool { try await Harness.runAsync("/bin/sh", ["-c", "ps -eo args | grep -c '\(marker)$'"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) != "0" }
        #expect(try await eventually { try await processAlive() })
        #expect(try await h.kubectl(["get", "pods", "-n", "test1", "-l", "job-name=backup-demo1-backup-local", "-o", "name"]).stdout.contains("pod/"))
        #expect(try await h.kubectl(["delete", "bk", "demo1-backup-local", "-n", "test1"]).code == 0)
        #expect(try await eventually { try await h.kubectl(["get", "jobs,pods", "-n", "test1", "-o", "name"]).stdout.isEmpty })
        #expect(try await eventually(5) { try await !processAlive() })
    }
}
