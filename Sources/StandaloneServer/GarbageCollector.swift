import Foundation
import KubeModel

/// Garbage collection by owner references (background and foreground propagation), as the
/// Kubernetes garbage collector does it, over the store of `APIServerCore`.
extension APIServerCore {
    /// The garbage collector and namespace controller for the whole store: every object that needs
    /// one of them is found in one pass (after a restart, work a crash interrupted), then handled as
    /// after a deletion.
    public func collectGarbage() throws {
        var work: [GarbageWork] = []
        for type in registry.types {
            var after: (String, String)?
            while true {
                let page = try store.list(type.key, namespace: nil, after: after, limit: 500)
                for object in page.items {
                    let meta = object["metadata"] ?? .emptyObject
                    after = (meta["namespace"]?.stringValue ?? "", meta["name"]?.stringValue ?? "")
                    let owners = ObjectStore.ownerUIDs(object)
                    if meta["deletionTimestamp"] != nil {
                        work.append(.deleting(type, namespace: meta["namespace"]?.stringValue, name: meta["name"]?.stringValue ?? ""))
                    } else if !owners.isEmpty, try owners.allSatisfy({ try !store.exists(uid: $0) }) {
                        work.append(.gone(uid: owners[0], namespace: meta["namespace"]?.stringValue ?? "", owners: []))
                    }
                }
                if page.remaining == 0 { break }
            }
        }
        try drain(work)
    }

    /// Works through `initial` and everything it leads to, each object once per change: the cost is
    /// proportional to the objects deleted, found through the owner and namespace indexes (never a
    /// scan of the store, which made deleting a namespace of N objects cost N² and unbounded memory).
    func drain(_ initial: [GarbageWork]) throws {
        var queue = initial
        var next = 0
        var namespacesToCheck: [String] = []
        var terminating: [String: Bool] = [:]
        let namespaceType = registry.types.first { $0.kind == "Namespace" }
        func isTerminating(_ ns: String) -> Bool {
            if let known = terminating[ns] { return known }
            let value = ((try? namespaceType.map { try store.get($0.key, namespace: "", name: ns) }) ?? nil)?
                .value(at: ["metadata", "deletionTimestamp"]) != nil
            terminating[ns] = value
            return value
        }
        func type(_ key: String) -> ResourceType? { registry.types.first { $0.key == key } }
        func deleted(_ t: ResourceType, _ ns: String?, _ name: String, policy: String? = nil) {
            var o = DeleteOptions()
            o.propagationPolicy = policy
            guard let (object, gone, changed) = try? deleteOne(t, namespace: ns, name: name, options: o), changed else { return }
            queue.append(.after(t, object, gone: gone))
        }
        while true {
            while next < queue.count {
                let work = queue[next]
                next += 1
                switch work {
                case .gone(let uid, let ns, let owners):
                    // Dependents whose every owner is gone are deleted in the background.
                    for (key, dep) in try store.dependents(ofUID: uid) {
                        guard let t = type(key), dep.value(at: ["metadata", "deletionTimestamp"]) == nil else { continue }
                        if try ObjectStore.ownerUIDs(dep).allSatisfy({ try !store.exists(uid: $0) }) {
                            deleted(t, dep.value(at: ["metadata", "namespace"])?.stringValue, dep.value(at: ["metadata", "name"])?.stringValue ?? "")
                        }
                    }
                    // An owner waiting in the foreground for its dependents may go now.
                    for owner in owners {
                        guard let (key, object) = try store.object(uid: owner), let t = type(key),
                              object.value(at: ["metadata", "deletionTimestamp"]) != nil else { continue }
                        queue.append(.deleting(t, namespace: object.value(at: ["metadata", "namespace"])?.stringValue,
                                               name: object.value(at: ["metadata", "name"])?.stringValue ?? ""))
                    }
                    if !ns.isEmpty && isTerminating(ns) && !namespacesToCheck.contains(ns) { namespacesToCheck.append(ns) }
                case .deleting(let t, let ns, let name):
                    guard let object = try? get(t, namespace: ns, name: name) else { continue }
                    let meta = object["metadata"] ?? .emptyObject
                    guard meta["deletionTimestamp"] != nil else { continue }
                    let uid = meta["uid"]?.stringValue ?? ""
                    let finalizers = meta["finalizers"]?.arrayValue?.compactMap(\.stringValue) ?? []
                    if finalizers.contains("orphan") {
                        for (key, dep) in try store.dependents(ofUID: uid) {
                            guard let depType = type(key) else { continue }
                            var refs = dep.value(at: ["metadata", "ownerReferences"])?.arrayValue ?? []
                            refs.removeAll { $0["uid"]?.stringValue == uid }
                            _ = try patch(depType, namespace: dep.value(at: ["metadata", "namespace"])?.stringValue,
                                          name: dep.value(at: ["metadata", "name"])?.stringValue ?? "", patchType: .merge,
                                          patch: ["metadata": ["ownerReferences": refs.isEmpty ? .null : .array(refs)]])
                        }
                        try finalizerRemoved(t, ns, name, "orphan", &queue)
                    } else if finalizers.contains("foregroundDeletion") {
                        let dependents = try store.dependents(ofUID: uid)
                        if dependents.isEmpty {
                            try finalizerRemoved(t, ns, name, "foregroundDeletion", &queue)
                        } else {
                            for (key, dep) in dependents where dep.value(at: ["metadata", "deletionTimestamp"]) == nil {
                                guard let depType = type(key) else { continue }
                                deleted(depType, dep.value(at: ["metadata", "namespace"])?.stringValue,
                                        dep.value(at: ["metadata", "name"])?.stringValue ?? "", policy: "Foreground")
                            }
                        }
                    } else if t.kind == "Namespace" {
                        // Sweep once: every object in it is deleted, a page at a time.
                        terminating[name] = true
                        for nt in registry.types where nt.namespaced {
                            var after: (String, String)?
                            while true {
                                let page = try store.list(nt.key, namespace: name, after: after, limit: 500)
                                for item in page.items {
                                    after = (name, item.value(at: ["metadata", "name"])?.stringValue ?? "")
                                    if item.value(at: ["metadata", "deletionTimestamp"]) == nil { deleted(nt, name, after!.1) }
                                }
                                if page.remaining == 0 { break }
                            }
                        }
                        if !namespacesToCheck.contains(name) { namespacesToCheck.append(name) }
                    }
                }
            }
            // A terminating namespace goes once nothing is left in it (checked once per round, not per object).
            guard !namespacesToCheck.isEmpty else { return }
            let check = namespacesToCheck
            namespacesToCheck = []
            let namespaced = registry.types.filter(\.namespaced).map(\.key)
            for ns in check where try store.count(namespace: ns, resources: namespaced) == 0 {
                if let namespaceType { try finalizerRemoved(namespaceType, nil, ns, "kubernetes", &queue) }
            }
            if next >= queue.count { return }
        }
    }

    /// Removes a finalizer the collector handles and queues what follows (the object gone, or still
    /// deleting with other finalizers).
    private func finalizerRemoved(_ type: ResourceType, _ ns: String?, _ name: String, _ finalizer: String, _ queue: inout [GarbageWork]) throws {
        guard let result = try removeFinalizer(type, ns, name, finalizer) else { return }
        let gone = result.object.value(at: ["metadata", "finalizers"])?.arrayValue?.isEmpty ?? true
        queue.append(.after(type, result.object, gone: gone))
    }

    private func removeFinalizer(_ type: ResourceType, _ ns: String?, _ name: String, _ finalizer: String) throws -> Result? {
        guard let current = try? get(type, namespace: ns, name: name) else { return nil }
        var list = current.value(at: ["metadata", "finalizers"])?.arrayValue ?? []
        list.removeAll { $0.stringValue == finalizer }
        var next = current
        next["metadata"]?["finalizers"] = list.isEmpty ? nil : .array(list)
        do {
            return try update(type, namespace: ns, name: name, body: next, requireResourceVersion: false, collect: false)
        } catch let e as APIError where e.code == 404 {
            // Gone meanwhile (the job runner released a pod whose process ended): nothing left to do,
            // and the deletion that led here must not fail for it.
            return nil
        }
    }
}
