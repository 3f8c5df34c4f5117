import Foundation
import KubeAPI
import KubeModel

/// The `KubeAPI` of the standalone server's store, called in process: what the controllers use in
/// standalone mode. Same semantics as the HTTP API (it is the same `APIServerCore`), without the
/// encoding and TLS in between.
public struct StoreKubeAPI: KubeAPI {
    public let core: APIServerCore

    public init(core: APIServerCore) {
        self.core = core
    }

    func type(_ kind: ResourceKind) throws -> ResourceType {
        guard let type = core.registry.types.first(where: { $0.group == kind.group && $0.plural == kind.plural }) else {
            throw KubeAPIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource (\(kind.qualifiedName))")
        }
        return type
    }

    func translated<R>(_ body: () throws -> R) throws -> R {
        do { return try body() } catch let error as APIError {
            throw KubeAPIError(status: error.status, fallbackCode: error.code)
        }
    }

    /// A write: on the store's threads (it waits for its commit), errors translated.
    func written<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        do { return try await StoreThreads.run(body) } catch let error as APIError {
            throw KubeAPIError(status: error.status, fallbackCode: error.code)
        }
    }

    static func selector(_ text: String?) throws -> LabelSelector? {
        guard let text, !text.isEmpty else { return nil }
        do { return try LabelSelector(parsing: text) } catch { throw KubeAPIError(code: 400, reason: "BadRequest", message: error.description) }
    }

    static func fieldSelector(_ text: String?) throws -> FieldSelector? {
        guard let text, !text.isEmpty else { return nil }
        do { return try FieldSelector(parsing: text) } catch { throw KubeAPIError(code: 400, reason: "BadRequest", message: error.description) }
    }

    public func get(_ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue {
        try translated { try core.get(type(kind), namespace: namespace, name: name) }
    }

    public func list(_ kind: ResourceKind, namespace: String?, options: ListOptions) async throws -> ObjectList {
        try translated {
            let result = try core.list(type(kind), namespace: namespace, labelSelector: Self.selector(options.labelSelector),
                                       fieldSelector: Self.fieldSelector(options.fieldSelector), limit: options.limit,
                                       continueToken: options.continueToken)
            return ObjectList(items: result.items, resourceVersion: String(result.resourceVersion), continueToken: result.continueToken)
        }
    }

    public func watch(_ kind: ResourceKind, namespace: String?, options: WatchOptions) async throws -> WatchStream {
        let rvText = options.resourceVersion ?? ""
        var from: Int64?
        if !rvText.isEmpty && rvText != "0" {
            guard let v = Int64(rvText) else { throw KubeAPIError(code: 400, reason: "BadRequest", message: "invalid resourceVersion \"\(rvText)\"") }
            from = v
        }
        let (stream, continuation) = WatchStream.makeStream()
        let session: APIServerCore.WatchSession
        do {
            session = try translated {
                try core.openWatch(type(kind), namespace: namespace, labels: Self.selector(options.labelSelector),
                                   fields: Self.fieldSelector(options.fieldSelector), from: from)
            }
        } catch let error as KubeAPIError where error.isGone {
            continuation.finish(throwing: error)
            return stream
        }
        let forward = Task {
            var last = session.startRV
            for event in session.initial {
                continuation.yield(WatchEvent(WatchEvent.Kind(rawValue: event.kind.rawValue) ?? .modified, event.object))
                last = max(last, event.resourceVersion)
            }
            for await event in session.live where event.resourceVersion > last && session.matches(event.object) {
                continuation.yield(WatchEvent(WatchEvent.Kind(rawValue: event.kind.rawValue) ?? .modified, event.object))
                last = event.resourceVersion
            }
            continuation.finish()
        }
        let timer = options.timeoutSeconds.map { seconds in
            Task {
                try? await Task.sleep(for: .seconds(seconds))
                session.cancel()
            }
        }
        continuation.onTermination = { _ in
            session.cancel()
            forward.cancel()
            timer?.cancel()
        }
        return stream
    }

    public func create(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> JSONValue {
        try await written { [self] in
            var options = APIServerCore.WriteOptions()
            options.fieldValidation = .ignore
            return try core.create(type(kind), namespace: namespace, body: object, options: options).object
        }
    }

    public func update(_ kind: ResourceKind, namespace: String?, object: JSONValue, subresource: String?) async throws -> JSONValue {
        try await written { [self] in
            var options = APIServerCore.WriteOptions()
            options.fieldValidation = .ignore
            let name = object.value(at: ["metadata", "name"])?.stringValue ?? ""
            return try core.update(type(kind), namespace: namespace, name: name, body: object, subresource: subresource, options: options).object
        }
    }

    public func patch(_ kind: ResourceKind, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> JSONValue {
        try await written { [self] in
            let patchType: APIServerCore.PatchType = switch patch.kind {
            case .merge: .merge
            case .json: .json
            case .strategicMerge: .strategic
            }
            return try core.patch(type(kind), namespace: namespace, name: name, patchType: patchType, patch: patch.body,
                                  subresource: subresource).object
        }
    }

    public func delete(_ kind: ResourceKind, namespace: String?, name: String, options: DeleteOptions) async throws -> JSONValue? {
        try await written { [self] in
            var o = APIServerCore.DeleteOptions()
            o.propagationPolicy = options.propagationPolicy?.rawValue
            o.preconditionUID = options.preconditionUID
            o.preconditionResourceVersion = options.preconditionResourceVersion
            let (object, gone) = try core.delete(type(kind), namespace: namespace, name: name, options: o)
            return gone ? nil : object
        }
    }
}

extension StoreKubeAPI: PodLogSource {
    public func podLog(namespace: String, name: String, tailLines: Int) async throws -> String {
        let pod = try await get(.pods, namespace: namespace, name: name)
        guard let path = pod.value(at: ["metadata", "annotations", PodLogs.annotation])?.stringValue,
              let data = FileManager.default.contents(atPath: path) else { return "" }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        return lines.suffix(tailLines + 1).joined(separator: "\n")
    }
}
