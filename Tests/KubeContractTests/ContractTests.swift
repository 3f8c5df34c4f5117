import Foundation
import KubeAPI
import KubeModel
import Testing

/// The `KubeAPI` contract: what the controllers rely on, checked against every implementation (and a
/// real API server when `KUBE_CONTRACT_KUBECONFIG` names one). Nothing here assumes a garbage
/// collector or a Job controller exists.
@Suite struct ContractTests {
    static func configMap(_ name: String, labels: [String: String] = [:], finalizers: [String] = []) -> JSONValue {
        var meta: JSONValue = ["name": .string(name)]
        if !labels.isEmpty { meta["labels"] = .object(JSONObject(labels.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })) }
        if !finalizers.isEmpty { meta["finalizers"] = .array(finalizers.map { .string($0) }) }
        return ["apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": ["k": "v"]]
    }

    static func backup(_ name: String) -> JSONValue {
        ["apiVersion": "pingcap.com/v1alpha1", "kind": "Backup", "metadata": ["name": .string(name)],
         "spec": ["br": ["cluster": "basic"], "s3": ["provider": "aws", "bucket": "b"]]]
    }

    static func rv(_ object: JSONValue) -> Int64 { Int64(object.value(at: ["metadata", "resourceVersion"])?.stringValue ?? "") ?? -1 }
    static func generation(_ object: JSONValue) -> Int64? {
        if case .int(let g)? = object.value(at: ["metadata", "generation"]) { return g }
        return nil
    }

    static func expectError(_ check: (KubeAPIError) -> Bool, _ body: () async throws -> Void,
                            sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            try await body()
            Issue.record("expected an error", sourceLocation: sourceLocation)
        } catch let error as KubeAPIError {
            #expect(check(error), "unexpected \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected a KubeAPIError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: Implementation.available)
    func createSetsServerFieldsAndGetReturnsTheSameObject(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            let created = try await f.api.create(.backups, namespace: f.namespace, object: Self.backup("b1"))
            #expect(created.value(at: ["metadata", "uid"])?.stringValue?.isEmpty == false)
            #expect(created.value(at: ["metadata", "creationTimestamp"])?.stringValue != nil)
            #expect(created.value(at: ["metadata", "namespace"])?.stringValue == f.namespace)
            #expect(Self.generation(created) == 1)
            #expect(Self.rv(created) > 0)
            #expect(created["kind"]?.stringValue == "Backup")
            #expect(created.value(at: ["spec", "br", "cluster"])?.stringValue == "basic")
            let read = try await f.api.get(.backups, namespace: f.namespace, name: "b1")
            #expect(Self.rv(read) == Self.rv(created))
            #expect(read.value(at: ["metadata", "uid"]) == created.value(at: ["metadata", "uid"]))
        }
    }

    @Test(arguments: Implementation.available)
    func errorsCarryTheirReason(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            await Self.expectError({ $0.isNotFound }) { _ = try await f.api.get(.configMaps, namespace: f.namespace, name: "missing") }
            let first = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("c1"))
            await Self.expectError({ $0.isAlreadyExists }) {
                _ = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("c1"))
            }
            var changed = first
            changed["data"] = ["k": "v2"]
            let second = try await f.api.update(.configMaps, namespace: f.namespace, object: changed)
            #expect(Self.rv(second) > Self.rv(first))
            // Writing from the stale copy conflicts.
            var stale = first
            stale["data"] = ["k": "v3"]
            await Self.expectError({ $0.isConflict }) { _ = try await f.api.update(.configMaps, namespace: f.namespace, object: stale) }
            await Self.expectError({ $0.isInvalid && $0.causes.contains { $0.field == "metadata.name" } }) {
                _ = try await f.api.create(.configMaps, namespace: f.namespace, object: ["metadata": .emptyObject, "data": ["k": "v"]])
            }
            await Self.expectError({ $0.isNotFound }) {
                _ = try await f.api.delete(.configMaps, namespace: f.namespace, name: "missing")
            }
        }
    }

    @Test(arguments: Implementation.available)
    func generationCountsSpecChangesAndStatusHasItsOwnSubresource(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            var b = try await f.api.create(.backups, namespace: f.namespace, object: Self.backup("gen"))
            #expect(b["status"] == nil || b["status"] == .emptyObject || b["status"]?.isNull == true)
            b["metadata"]?["labels"] = ["team": "dba"]
            b = try await f.api.update(.backups, namespace: f.namespace, object: b)
            #expect(Self.generation(b) == 1, "a label change is not a spec change")
            b["spec"]?["br"]?["cluster"] = "other"
            b = try await f.api.update(.backups, namespace: f.namespace, object: b)
            #expect(Self.generation(b) == 2)

            // The main resource ignores status; the subresource writes only status.
            var withStatus = b
            withStatus["status"] = ["phase": "Running"]
            let afterMain = try await f.api.update(.backups, namespace: f.namespace, object: withStatus)
            #expect(afterMain.value(at: ["status", "phase"]) == nil)
            withStatus = afterMain
            withStatus["status"] = ["phase": "Running"]
            withStatus["spec"]?["br"]?["cluster"] = "ignored"
            let afterStatus = try await f.api.updateStatus(.backups, namespace: f.namespace, object: withStatus)
            #expect(afterStatus.value(at: ["status", "phase"])?.stringValue == "Running")
            #expect(afterStatus.value(at: ["spec", "br", "cluster"])?.stringValue == "other")
            #expect(Self.generation(afterStatus) == 2)

            // Status patches go through the subresource too.
            let patched = try await f.api.patch(.backups, namespace: f.namespace, name: "gen",
                                                patch: .merge(["status": ["phase": "Complete"]]), subresource: "status")
            #expect(patched.value(at: ["status", "phase"])?.stringValue == "Complete")
        }
    }

    @Test(arguments: Implementation.available)
    func finalizersHoldADeletedObjectUntilRemoved(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            _ = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("held", finalizers: ["example.com/hold"]))
            let deleting = try await f.api.delete(.configMaps, namespace: f.namespace, name: "held")
            #expect(deleting?.value(at: ["metadata", "deletionTimestamp"])?.stringValue != nil)
            var current = try await f.api.get(.configMaps, namespace: f.namespace, name: "held")
            #expect(current.value(at: ["metadata", "deletionTimestamp"]) != nil)
            // Deleting again changes nothing; adding a finalizer now is refused.
            _ = try await f.api.delete(.configMaps, namespace: f.namespace, name: "held")
            var more = current
            more["metadata"]?["finalizers"] = ["example.com/hold", "example.com/another"]
            await Self.expectError({ $0.isInvalid }) { _ = try await f.api.update(.configMaps, namespace: f.namespace, object: more) }
            current = try await f.api.get(.configMaps, namespace: f.namespace, name: "held")
            current["metadata"]?["finalizers"] = .array([])
            _ = try await f.api.update(.configMaps, namespace: f.namespace, object: current)
            try await waitGone(f, .configMaps, "held")

            // Without finalizers a delete is immediate.
            _ = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("plain"))
            let gone = try await f.api.delete(.configMaps, namespace: f.namespace, name: "plain")
            #expect(gone == nil)
            try await waitGone(f, .configMaps, "plain")
        }
    }

    func waitGone(_ f: ContractFixture, _ kind: ResourceKind, _ name: String) async throws {
        for _ in 0..<50 {
            do { _ = try await f.api.get(kind, namespace: f.namespace, name: name) } catch let e as KubeAPIError where e.isNotFound { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("\(name) still exists")
    }

    @Test(arguments: Implementation.available)
    func deletePreconditionsAreChecked(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            let created = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("pre"))
            await Self.expectError({ $0.code == 409 }) {
                _ = try await f.api.delete(.configMaps, namespace: f.namespace, name: "pre",
                                           options: DeleteOptions(preconditionUID: "00000000-0000-0000-0000-000000000000"))
            }
            let uid = created.value(at: ["metadata", "uid"])?.stringValue
            _ = try await f.api.delete(.configMaps, namespace: f.namespace, name: "pre", options: DeleteOptions(preconditionUID: uid))
            try await waitGone(f, .configMaps, "pre")
        }
    }

    @Test(arguments: Implementation.available)
    func labelSelectorsFilterListsAndWatches(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            for (name, app) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")] {
                _ = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap(name, labels: ["app": app]))
            }
            func names(_ selector: String) async throws -> [String] {
                try await f.api.list(.configMaps, namespace: f.namespace, options: ListOptions(labelSelector: selector))
                    .items.map { $0.objectKey.name }.filter { $0 != "kube-root-ca.crt" }.sorted()
            }
            #expect(try await names("app=a") == ["a1", "a2"])
            #expect(try await names("app in (a,b)") == ["a1", "a2", "b1"])
            #expect(try await names("app,app!=a") == ["b1", "c1"])
            #expect(try await names("app=zzz") == [])

            let stream = try await f.api.watch(.configMaps, namespace: f.namespace, options: WatchOptions(labelSelector: "app=b", timeoutSeconds: 20))
            var iterator = stream.makeAsyncIterator()
            let initial = try await nextNonBookmark(&iterator)
            #expect(initial?.type == .added && initial?.object.objectKey.name == "b1")
            _ = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("a3", labels: ["app": "a"]))
            _ = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("b2", labels: ["app": "b"]))
            let next = try await nextNonBookmark(&iterator)
            #expect(next?.type == .added && next?.object.objectKey.name == "b2", "a3 does not match and must not be seen")
        }
    }

    @Test(arguments: Implementation.available)
    func paginationReturnsEveryObjectOnce(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            for i in 0..<7 {
                _ = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("p\(i)", labels: ["page": "yes"]))
            }
            var seen: [String] = []
            var options = ListOptions(labelSelector: "page=yes", limit: 3)
            var pages = 0
            repeat {
                let page = try await f.api.list(.configMaps, namespace: f.namespace, options: options)
                #expect(page.items.count <= 3)
                seen += page.items.map { $0.objectKey.name }
                options.continueToken = page.continueToken
                pages += 1
            } while options.continueToken != nil && pages < 10
            #expect(pages == 3)
            #expect(seen.sorted() == (0..<7).map { "p\($0)" })
            let all = try await f.api.listAll(.configMaps, namespace: f.namespace, labelSelector: "page=yes", pageSize: 2)
            #expect(all.items.count == 7)
            #expect(!all.resourceVersion.isEmpty)
        }
    }

    func nextNonBookmark(_ iterator: inout WatchStream.AsyncIterator) async throws -> WatchEvent? {
        while let event = try await iterator.next() {
            if event.type != .bookmark { return event }
        }
        return nil
    }

    @Test(arguments: Implementation.available)
    func watchDeliversChangesInOrderAndResumes(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            _ = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("existing", labels: ["w": "1"]))
            let listed = try await f.api.list(.configMaps, namespace: f.namespace, options: ListOptions(labelSelector: "w=1"))
            let stream = try await f.api.watch(.configMaps, namespace: f.namespace,
                                               options: WatchOptions(labelSelector: "w=1", resourceVersion: listed.resourceVersion, timeoutSeconds: 20))
            var created = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("w1", labels: ["w": "1"]))
            created["data"] = ["k": "changed"]
            let updated = try await f.api.update(.configMaps, namespace: f.namespace, object: created)
            _ = try await f.api.delete(.configMaps, namespace: f.namespace, name: "w1")
            var iterator = stream.makeAsyncIterator()
            var events: [WatchEvent] = []
            while events.count < 3, let e = try await nextNonBookmark(&iterator) { events.append(e) }
            #expect(events.map(\.type) == [.added, .modified, .deleted])
            #expect(events.allSatisfy { $0.object.objectKey.name == "w1" })
            let versions = events.map { Self.rv($0.object) }
            #expect(versions == versions.sorted() && Set(versions).count == 3)

            // Resuming after the update sees only the deletion.
            let resumed = try await f.api.watch(.configMaps, namespace: f.namespace,
                                                options: WatchOptions(labelSelector: "w=1", resourceVersion: String(Self.rv(updated)), timeoutSeconds: 20))
            var it2 = resumed.makeAsyncIterator()
            let only = try await nextNonBookmark(&it2)
            #expect(only?.type == .deleted && only?.object.objectKey.name == "w1")

            // Without a resource version the current objects come first as ADDED.
            let fresh = try await f.api.watch(.configMaps, namespace: f.namespace, options: WatchOptions(labelSelector: "w=1", timeoutSeconds: 20))
            var it3 = fresh.makeAsyncIterator()
            let first = try await nextNonBookmark(&it3)
            #expect(first?.type == .added && first?.object.objectKey.name == "existing")
        }
    }

    @Test(arguments: Implementation.available)
    func aWatchEndsAtItsTimeoutWithoutError(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            let listed = try await f.api.list(.configMaps, namespace: f.namespace)
            let stream = try await f.api.watch(.configMaps, namespace: f.namespace,
                                               options: WatchOptions(resourceVersion: listed.resourceVersion, timeoutSeconds: 1))
            var events = 0
            for try await event in stream where event.type != .bookmark { events += 1 }
            #expect(events == 0, "nothing changed, and the stream ended without an error")
        }
    }

    @Test(arguments: Implementation.available.filter(\.canExpireHistory))
    func resumingFromExpiredHistoryIsGone(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            let expire = try #require(f.expireHistory)
            let old = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("old"))
            try await expire()
            let stream = try await f.api.watch(.configMaps, namespace: f.namespace,
                                               options: WatchOptions(resourceVersion: String(Self.rv(old)), timeoutSeconds: 10))
            await Self.expectError({ $0.isGone }) { for try await _ in stream {} }
        }
    }

    @Test(arguments: Implementation.available)
    func patchesAndOwnerReferences(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            let owner = try await f.api.create(.configMaps, namespace: f.namespace, object: Self.configMap("owner"))
            var dependent = Self.configMap("dependent")
            dependent["metadata"]?["ownerReferences"] = [["apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                                          "uid": owner.value(at: ["metadata", "uid"]) ?? "", "controller": true]]
            _ = try await f.api.create(.configMaps, namespace: f.namespace, object: dependent)
            let merged = try await f.api.patch(.configMaps, namespace: f.namespace, name: "dependent",
                                               patch: .merge(["metadata": ["labels": ["x": "1"]], "data": ["k": .null, "n": "2"]]))
            #expect(merged.value(at: ["metadata", "labels", "x"])?.stringValue == "1")
            #expect(merged.value(at: ["data", "k"]) == nil)
            #expect(merged.value(at: ["data", "n"])?.stringValue == "2")
            #expect(merged.value(at: ["metadata", "ownerReferences"])?.arrayValue?.first?["name"]?.stringValue == "owner")
            let jsonPatched = try await f.api.patch(.configMaps, namespace: f.namespace, name: "dependent",
                                                    patch: .json([["op": "add", "path": "/metadata/annotations", "value": ["a": "b"]]]))
            #expect(jsonPatched.value(at: ["metadata", "annotations", "a"])?.stringValue == "b")
            await Self.expectError({ $0.code == 422 || $0.code == 500 }) {
                _ = try await f.api.patch(.configMaps, namespace: f.namespace, name: "dependent",
                                          patch: .json([["op": "test", "path": "/data/n", "value": "nope"]]))
            }
        }
    }

    @Test(arguments: Implementation.available)
    func generateNameMakesDistinctNames(_ impl: Implementation) async throws {
        try await withFixture(impl) { f in
            var names = Set<String>()
            for _ in 0..<3 {
                let o = try await f.api.create(.configMaps, namespace: f.namespace,
                                               object: ["metadata": ["generateName": "gen-"], "data": ["k": "v"]])
                let name = o.objectKey.name
                #expect(name.hasPrefix("gen-") && name.count > 4)
                names.insert(name)
            }
            #expect(names.count == 3)
        }
    }
}
