import Foundation
import KubeModel
import Testing

@testable import StandaloneServer
import StandaloneTesting

@Suite("API semantics of the standalone server")
struct APIServerCoreTests {
    func makeCore(historyLimit: Int = 20_000) throws -> APIServerCore {
        let dir = Harness.temporaryDirectory()
        return try APIServerCore.product(store: ObjectStore(path: dir + "/s.sqlite", historyLimit: historyLimit))
    }

    var backups: ResourceType { ResourceRegistry.product.find(group: "pingcap.com", version: "v1alpha1", plural: "backups")! }
    var namespaces: ResourceType { ResourceRegistry.product.find(group: "", version: "v1", plural: "namespaces")! }

    func backup(_ name: String, labels: JSONValue = .emptyObject) -> JSONValue {
        ["apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "metadata": ["name": .string(name), "labels": labels],
         "spec": ["br": ["cluster": "c"], "s3": ["provider": "aws", "bucket": "b"]]]
    }

    @Test("create fills uid, creationTimestamp, generation 1, resourceVersion and CRD defaults; status is dropped")
    func create() throws {
        let core = try makeCore()
        var body = backup("b1")
        body["status"] = ["phase": "Complete"]
        let created = try core.create(backups, namespace: "default", body: body).object
        #expect(created.value(at: ["metadata", "uid"])?.stringValue?.count == 36)
        #expect(created.value(at: ["metadata", "generation"]) == 1)
        #expect(created.value(at: ["metadata", "resourceVersion"]) != nil)
        #expect(created.value(at: ["spec", "backupMode"]) == "snapshot")
        #expect(created.value(at: ["spec", "volumeBackupInitJobMaxActiveSeconds"]) == 600)
        #expect(created["status"] == nil)
        #expect(throws: APIError.self) { try core.create(backups, namespace: "default", body: backup("b1")) }
        do { _ = try core.create(backups, namespace: "nope", body: backup("b2")) } catch let e as APIError {
            #expect(e.code == 404)
            #expect(e.message == "namespaces \"nope\" not found")
        }
    }

    @Test("bad input: invalid name 422, namespace mismatch 400, wrong kind 422, schema errors 422 with causes")
    func badInput() throws {
        let core = try makeCore()
        func code(_ body: JSONValue, namespace: String = "default") -> Int? {
            do { _ = try core.create(backups, namespace: namespace, body: body); return nil } catch let e as APIError { return e.code } catch { return -1 }
        }
        #expect(code(backup("Bad_Name")) == 422)
        var other = backup("b")
        other["metadata"]?["namespace"] = "test1"
        #expect(code(other) == 400)
        var wrongKind = backup("b")
        wrongKind["kind"] = "Restore"
        #expect(code(wrongKind) == 422)
        var invalid = backup("b")
        invalid["spec"]?["br"] = ["concurrency": "four"]
        invalid["spec"]?["cleanPolicy"] = "Sometimes"
        do { _ = try core.create(backups, namespace: "default", body: invalid); Issue.record("expected 422") } catch let e as APIError {
            #expect(e.code == 422)
            let fields = e.details?["causes"]?.arrayValue?.compactMap { $0["field"]?.stringValue } ?? []
            #expect(Set(fields) == ["spec.br.cluster", "spec.br.concurrency", "spec.cleanPolicy"])
            #expect(e.message.hasPrefix("Backup.pingcap.com \"b\" is invalid: "))
        }
        var both = backup("b")
        both["spec"]?["logStop"] = true
        both["spec"]?["logSubcommand"] = "log-stop"
        do { _ = try core.create(backups, namespace: "default", body: both); Issue.record("expected 422") } catch let e as APIError {
            // Two rules say the same: one cause, at the rule's place.
            let causes = e.details?["causes"]?.arrayValue ?? []
            #expect(e.code == 422 && causes.count == 1 && causes.first?["field"] == "spec", "\(e)")
            #expect(e.message.contains("Field `logStop` is the old version field"))
        }
    }

    @Test("the kinds come from the CRDs handed in: a CRD of another group is served and validated; its CEL rules hold where an evaluator is given, and are not enforced where none is")
    func crdsHandedIn() throws {
        let crd: JSONValue = [
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": ["name": "widgets.example.com"],
            "spec": ["group": "example.com", "scope": "Namespaced",
                     "names": ["kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]],
                     "versions": [["name": "v1", "served": true, "storage": true,
                                   "additionalPrinterColumns": [["name": "Size", "type": "integer", "jsonPath": ".spec.size"]],
                                   "schema": ["openAPIV3Schema": ["type": "object", "properties": [
                                       "spec": ["type": "object", "required": ["size"],
                                                "x-kubernetes-validations": [["rule": "self.size <= self.max", "message": "size must not exceed max"],
                                                                             ["rule": "self.size != 13", "message": "unlucky"]],
                                                "properties": ["size": ["type": "integer", "minimum": 1], "max": ["type": "integer", "default": 10]]],
                                   ]]]]]],
        ]
        let registry = try ResourceRegistry(customResources: [crd])
        let widgets = try #require(registry.find(group: "example.com", version: "v1", plural: "widgets"))
        #expect(widgets.shortNames == ["wd"] && !widgets.hasStatusSubresource && widgets.printerColumns.map(\.name) == ["Size"])
        #expect(widgets.ruleSites.map(\.validations.count) == [2], "the one place with rules, found once")
        let schedules = try #require(ResourceRegistry.product.find(group: "pingcap.com", version: "v1alpha1", plural: "backupschedules"))
        #expect(schedules.ruleSites.count == 3, "spec, spec.backupTemplate, spec.logBackupTemplate: \(schedules.ruleSites.map(\.validations.count))")
        #expect(registry.find(group: "pingcap.com", version: "v1alpha1", plural: "backups") == nil, "only what was handed in")
        let core = try APIServerCore(store: ObjectStore(path: Harness.temporaryDirectory() + "/w.sqlite"), registry: registry,
                                     rules: ["self.size <= self.max": { spec in (spec["size"]?.intValue ?? 0) <= (spec["max"]?.intValue ?? 0) }])
        func widget(_ name: String, _ spec: JSONValue) -> JSONValue {
            ["apiVersion": "example.com/v1", "kind": "Widget", "metadata": ["name": .string(name), "labels": ["a": "b"]], "spec": spec]
        }
        let made = try core.create(widgets, namespace: "default", body: widget("w1", ["size": 3])).object
        #expect(made.value(at: ["spec", "max"]) == 10, "the CRD's default")
        #expect(made.value(at: ["metadata", "labels", "a"]) == "b", "metadata kept whatever the CRD says of it")
        for (name, spec, field) in [("w2", ["size": 0] as JSONValue, "spec.size"), ("w3", ["size": 11], "spec")] {
            do { _ = try core.create(widgets, namespace: "default", body: widget(name, spec)); Issue.record("\(name) accepted") } catch let e as APIError {
                #expect(e.code == 422 && e.details?["causes"]?.arrayValue?.first?["field"]?.stringValue == field, "\(e)")
            }
        }
        // The rule without an evaluator is not enforced.
        #expect(try core.create(widgets, namespace: "default", body: widget("w4", ["size": 13, "max": 20])).object.value(at: ["spec", "size"]) == 13)
        #expect(throws: SchemaReadError.self) { try ResourceRegistry(customResources: [["kind": "CustomResourceDefinition", "spec": ["group": "x"]]]) }
    }

    @Test("unknown fields: Strict rejects with 400, Warn prunes and warns, Ignore prunes silently")
    func fieldValidation() throws {
        let core = try makeCore()
        var body = backup("b")
        body["spec"]?["notAField"] = 1
        var strict = APIServerCore.WriteOptions()
        strict.fieldValidation = .strict
        do { _ = try core.create(backups, namespace: "default", body: body, options: strict); Issue.record("expected 400") } catch let e as APIError {
            #expect(e.code == 400)
            #expect(e.message.contains("unknown field \"spec.notAField\""))
        }
        let warned = try core.create(backups, namespace: "default", body: body)
        #expect(warned.warnings == ["unknown field \"spec.notAField\""])
        #expect(warned.object.value(at: ["spec", "notAField"]) == nil)
        var ignore = APIServerCore.WriteOptions()
        ignore.fieldValidation = .ignore
        body["metadata"]?["name"] = "b2"
        #expect(try core.create(backups, namespace: "default", body: body, options: ignore).warnings.isEmpty)
    }

    @Test("updates need a resourceVersion, a stale one conflicts, and only spec changes bump generation")
    func updates() throws {
        let core = try makeCore()
        let created = try core.create(backups, namespace: "default", body: backup("b")).object
        var noRV = created
        noRV["metadata"]?["resourceVersion"] = nil
        #expect(throws: APIError.self) { try core.update(backups, namespace: "default", name: "b", body: noRV) }
        var changed = created
        changed["spec"]?["backupType"] = "db"
        let updated = try core.update(backups, namespace: "default", name: "b", body: changed).object
        #expect(updated.value(at: ["metadata", "generation"]) == 2)
        do { _ = try core.update(backups, namespace: "default", name: "b", body: changed); Issue.record("expected 409") } catch let e as APIError {
            #expect(e.code == 409)
            #expect(e.reason == "Conflict")
        }
        let status = try core.patch(backups, namespace: "default", name: "b", patchType: .merge, patch: ["status": ["phase": "Running"]],
                                    subresource: "status").object
        #expect(status.value(at: ["status", "phase"]) == "Running")
        #expect(status.value(at: ["metadata", "generation"]) == 2)
        // The main resource ignores status; the status subresource ignores spec.
        let ignored = try core.patch(backups, namespace: "default", name: "b", patchType: .merge, patch: ["status": ["phase": "Failed"]]).object
        #expect(ignored.value(at: ["status", "phase"]) == "Running")
        #expect(throws: APIError.self) {
            try core.patch(backups, namespace: "default", name: "b", patchType: .strategic, patch: ["spec": .emptyObject])
        }
    }

    @Test("a label selector's equalities go down to SQLite as byte tests, and what looks like a match elsewhere in the document is still filtered out")
    func labelBytesPrefilter() throws {
        let core = try makeCore()
        #expect(APIServerCore.necessaryBytes(try LabelSelector(parsing: "a=b,c in (d),e,f!=g,h in (i,j)")).map { String(decoding: $0, as: UTF8.self) }
                == [#""a":"b""#, #""c":"d""#, #""e":"#])
        _ = try core.create(backups, namespace: "default", body: backup("match", labels: ["tidb.pingcap.com/backup-schedule": "s1", "q": "v1.2_x-y"]))
        var lookalike = backup("lookalike", labels: ["other": "x"])
        lookalike["metadata"]?["annotations"] = ["tidb.pingcap.com/backup-schedule": "s1"]
        _ = try core.create(backups, namespace: "default", body: lookalike)
        _ = try core.create(backups, namespace: "default", body: backup("other", labels: ["tidb.pingcap.com/backup-schedule": "s2"]))
        func names(_ selector: String) throws -> [String] {
            try core.list(backups, namespace: "default", labelSelector: LabelSelector(parsing: selector)).items
                .compactMap { $0.value(at: ["metadata", "name"])?.stringValue }
        }
        #expect(try names("tidb.pingcap.com/backup-schedule=s1") == ["match"])
        #expect(try names("tidb.pingcap.com/backup-schedule in (s2)") == ["other"])
        #expect(try names("tidb.pingcap.com/backup-schedule") == ["match", "other"])
        #expect(try names("other") == ["lookalike"])
        #expect(try names("q=v1.2_x-y") == ["match"])
        #expect(try names("q=v1.2").isEmpty)
        #expect(try names("tidb.pingcap.com/backup-schedule=s3").isEmpty)
    }

    @Test("checkpoints run beside the writes: the WAL's pages reach the database file without a write doing it")
    func backgroundCheckpoints() async throws {
        let dir = Harness.temporaryDirectory()
        let core = try APIServerCore.product(store: ObjectStore(path: dir + "/s.sqlite"))
        func size(_ file: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: dir + "/" + file))?[.size] as? Int) ?? 0 }
        // Wait for the checkpoint of the migrations, then write ~2 MiB: under the 40 MiB at which a
        // write would checkpoint itself.
        try await Task.sleep(for: .seconds(1))
        let before = size("s.sqlite")
        var big = backup("b0")
        big["metadata"]?["annotations"] = ["note": .string(String(repeating: "x", count: 4000))]
        for i in 0..<400 {
            big["metadata"]?["name"] = .string("b\(i)")
            _ = try core.create(backups, namespace: "default", body: big)
        }
        #expect(size("s.sqlite-wal") > 1_000_000)
        var grown = false
        for _ in 0..<40 where !grown {
            try await Task.sleep(for: .milliseconds(100))
            grown = size("s.sqlite") > before + 1_000_000
        }
        #expect(grown, "the database file is \(size("s.sqlite")) bytes, was \(before)")
    }

    @Test("lists filter by label and field selectors and paginate with continue tokens")
    func lists() throws {
        let core = try makeCore()
        for i in 0..<25 {
            _ = try core.create(backups, namespace: "default", body: backup(String(format: "b%02d", i), labels: ["parity": .string(i % 2 == 0 ? "even" : "odd")]))
        }
        #expect(try core.list(backups, namespace: "default", labelSelector: LabelSelector(parsing: "parity=even")).items.count == 13)
        #expect(try core.list(backups, namespace: "default", labelSelector: LabelSelector(parsing: "parity in (odd),!missing")).items.count == 12)
        #expect(try core.list(backups, namespace: "default", fieldSelector: FieldSelector(parsing: "metadata.name=b07")).items.count == 1)
        var names: [String] = []
        var token: String?
        repeat {
            let page = try core.list(backups, namespace: "default", limit: 10, continueToken: token)
            names += page.items.compactMap { $0.value(at: ["metadata", "name"])?.stringValue }
            token = page.continueToken
        } while token != nil
        #expect(names == (0..<25).map { String(format: "b%02d", $0) })
    }

    @Test("deleting a namespace deletes what it contains, then the namespace")
    func namespaceDeletion() throws {
        let core = try makeCore()
        _ = try core.create(namespaces, namespace: nil, body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "gone"]])
        _ = try core.create(backups, namespace: "gone", body: backup("b"))
        _ = try core.delete(namespaces, namespace: nil, name: "gone")
        #expect(try core.list(backups, namespace: "gone").items.isEmpty)
        #expect(throws: APIError.self) { try core.get(namespaces, namespace: nil, name: "gone") }
    }

    @Test("deleting a namespace of owner chains (Backup → Job → Pod) removes them all through the owner index; a finalizer holds the namespace until it is released")
    func namespaceDeletionWithOwners() throws {
        let core = try makeCore()
        let jobs = ResourceRegistry.product.find(group: "batch", version: "v1", plural: "jobs")!
        let pods = ResourceRegistry.product.find(group: "", version: "v1", plural: "pods")!
        _ = try core.create(namespaces, namespace: nil, body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "big"]])
        for i in 0..<200 {
            let b = try core.create(backups, namespace: "big", body: backup("b\(i)")).object
            let job = try core.create(jobs, namespace: "big", body: [
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": ["name": .string("backup-b\(i)"), "ownerReferences": [["apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "name": .string("b\(i)"),
                                                                                     "uid": b.value(at: ["metadata", "uid"]) ?? "", "controller": true]]],
                "spec": ["template": ["spec": ["containers": [["name": "main", "image": "x"]]]]],
            ]).object
            _ = try core.create(pods, namespace: "big", body: [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": .string("backup-b\(i)-abcde"), "ownerReferences": [["apiVersion": "batch/v1", "kind": "Job", "name": .string("backup-b\(i)"),
                                                                                         "uid": job.value(at: ["metadata", "uid"]) ?? "", "controller": true]]],
                "spec": ["containers": [["name": "main", "image": "x"]]],
            ])
        }
        var held = backup("held")
        held["metadata"]?["finalizers"] = ["example.com/keep"]
        _ = try core.create(backups, namespace: "big", body: held)
        // A Job outside the namespace owned by nothing in it is untouched.
        _ = try core.create(jobs, namespace: "default", body: ["apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": "other"],
                                                               "spec": ["template": ["spec": ["containers": [["name": "main", "image": "x"]]]]]])
        _ = try core.delete(namespaces, namespace: nil, name: "big")
        #expect(try core.list(jobs, namespace: "big").items.isEmpty)
        #expect(try core.list(pods, namespace: "big").items.isEmpty)
        #expect(try core.list(backups, namespace: "big").items.map { $0.value(at: ["metadata", "name"]) } == ["held"])
        #expect(try core.get(namespaces, namespace: nil, name: "big").value(at: ["status", "phase"]) == "Terminating")
        // Releasing the last finalizer lets the namespace go.
        _ = try core.patch(backups, namespace: "big", name: "held", patchType: .merge, patch: ["metadata": ["finalizers": .null]])
        #expect(throws: APIError.self) { try core.get(namespaces, namespace: nil, name: "big") }
        #expect(try core.list(jobs, namespace: "default").items.count == 1)
    }

    @Test("after a restart, the collector finishes what a crash interrupted: dependents of a vanished owner go")
    func garbageAfterRestart() throws {
        let dir = Harness.temporaryDirectory()
        let jobs = ResourceRegistry.product.find(group: "batch", version: "v1", plural: "jobs")!
        do {
            let store = try ObjectStore(path: dir + "/s.sqlite")
            // A Job whose owner was deleted but which the crash left behind.
            try store.write(jobs.key, namespace: "default", name: "orphaned") { _ in
                ["apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": "orphaned", "namespace": "default", "uid": "job-uid",
                                                                       "ownerReferences": [["apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "name": "gone", "uid": "vanished-uid"]]]]
            }
        }
        let core = try APIServerCore.product(store: ObjectStore(path: dir + "/s.sqlite"))
        #expect(try core.list(jobs, namespace: "default").items.count == 1)
        try core.collectGarbage()
        #expect(try core.list(jobs, namespace: "default").items.isEmpty)
    }

    @Test("the resourceVersion never goes backwards across a reopen, and old history is trimmed")
    func resourceVersions() throws {
        let dir = Harness.temporaryDirectory()
        var last: Int64 = 0
        do {
            let core = try APIServerCore.product(store: ObjectStore(path: dir + "/s.sqlite", historyLimit: 10))
            for i in 0..<1_005 { _ = try core.create(backups, namespace: "default", body: backup("b\(i)")) }
            last = try core.store.currentResourceVersion
            #expect(try core.store.oldestWatchableResourceVersion > 900)
        }
        let reopened = try APIServerCore.product(store: ObjectStore(path: dir + "/s.sqlite"))
        let created = try reopened.create(backups, namespace: "default", body: backup("after")).object
        #expect(Int64(created.value(at: ["metadata", "resourceVersion"])?.stringValue ?? "") ?? 0 > last)
    }

    @Test("the store's cache of recent writes answers as the database does: updates, deletes, evictions, and a failed write leaves no trace")
    func recentObjectsCache() throws {
        let dir = Harness.temporaryDirectory()
        let store = try ObjectStore(path: dir + "/s.sqlite", recentCapacity: 4)
        func object(_ name: String, _ n: Int) -> JSONValue { ["metadata": ["name": .string(name)], "data": ["n": .int(Int64(n))]] }
        for i in 0..<10 { try store.write("configmaps", namespace: "ns", name: "o\(i)") { _ in object("o\(i)", i) } }
        #expect(store.recent.withLock { $0.entries.count } <= 4)
        for i in 0..<10 { #expect(try store.get("configmaps", namespace: "ns", name: "o\(i)")?.value(at: ["data", "n"]) == .int(Int64(i))) }
        try store.write("configmaps", namespace: "ns", name: "o9") { _ in object("o9", 99) }
        #expect(try store.get("configmaps", namespace: "ns", name: "o9")?.value(at: ["data", "n"]) == 99)
        try store.write("configmaps", namespace: "ns", name: "o9") { _ in nil }
        #expect(try store.get("configmaps", namespace: "ns", name: "o9") == nil)
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try store.write("configmaps", namespace: "ns", name: "o8") { _ in throw Refused() }
        }
        #expect(try store.get("configmaps", namespace: "ns", name: "o8")?.value(at: ["data", "n"]) == 8)
        // What the cache answers is what a fresh store reading only the database answers.
        let fresh = try ObjectStore(path: dir + "/s.sqlite", recentCapacity: 0)
        for i in 0..<9 {
            #expect(try fresh.get("configmaps", namespace: "ns", name: "o\(i)") == store.get("configmaps", namespace: "ns", name: "o\(i)"))
        }
    }

    @Test("a foreground deletion waits for a dependent's own finalizer, and completes when it is removed (owner and dependent gone)")
    func foregroundWaitsForDependentFinalizer() throws {
        let core = try makeCore()
        let jobs = ResourceRegistry.product.find(group: "batch", version: "v1", plural: "jobs")!
        let pods = ResourceRegistry.product.find(group: "", version: "v1", plural: "pods")!
        let job = try core.create(jobs, namespace: "default", body: ["apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": "j"],
                                                                     "spec": ["template": ["spec": ["containers": [["name": "c", "image": "i"]]]]]]).object
        _ = try core.create(pods, namespace: "default", body: [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": "j-1", "finalizers": ["tidb-backup-operator.pingcap.com/local-process"],
                         "ownerReferences": [["apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": job.value(at: ["metadata", "uid"]) ?? "",
                                              "controller": true, "blockOwnerDeletion": true]]],
            "spec": ["containers": [["name": "c", "image": "i"]]]])
        var options = APIServerCore.DeleteOptions()
        options.propagationPolicy = "Foreground"
        _ = try core.delete(jobs, namespace: "default", name: "j", options: options)
        let pod = try core.get(pods, namespace: "default", name: "j-1")
        #expect(pod.value(at: ["metadata", "deletionTimestamp"]) != nil, "the dependent is being deleted")
        #expect((try? core.get(jobs, namespace: "default", name: "j")) != nil, "the owner waits for it")

        _ = try core.patch(pods, namespace: "default", name: "j-1", patchType: .merge,
                           patch: ["metadata": ["finalizers": .array((pod.value(at: ["metadata", "finalizers"])?.arrayValue ?? [])
                                                                     .filter { $0 != "tidb-backup-operator.pingcap.com/local-process" })]])
        #expect((try? core.get(pods, namespace: "default", name: "j-1")) == nil, "the dependent is gone")
        #expect((try? core.get(jobs, namespace: "default", name: "j")) == nil, "and so is the owner")
    }
}
