import Foundation
import KubeModel

/// The Kubernetes API as the operator and the job binary use it. Implemented by `KubeClient` (HTTP to
/// a real API server or to the standalone server), by the standalone server's store directly, and by
/// `KubeTesting`'s in-memory API. Objects travel as JSON documents so that fields this version does not
/// model survive every round trip; the typed helpers below decode them.
public protocol KubeAPI: Sendable {
    func get(_ kind: ResourceKind, namespace: String?, name: String) async throws -> JSONValue
    func list(_ kind: ResourceKind, namespace: String?, options: ListOptions) async throws -> ObjectList
    /// Changes after `options.resourceVersion` (or the current state as ADDED events when it is empty).
    /// A resource version too old to resume from ends the stream with a `KubeAPIError` whose code is 410.
    func watch(_ kind: ResourceKind, namespace: String?, options: WatchOptions) async throws -> WatchStream
    func create(_ kind: ResourceKind, namespace: String?, object: JSONValue) async throws -> JSONValue
    /// A whole-object update (`subresource: "status"` writes only the status).
    func update(_ kind: ResourceKind, namespace: String?, object: JSONValue, subresource: String?) async throws -> JSONValue
    func patch(_ kind: ResourceKind, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> JSONValue
    /// Returns the object as it is after the call: still present (finalizers pending) or `nil` when gone.
    func delete(_ kind: ResourceKind, namespace: String?, name: String, options: DeleteOptions) async throws -> JSONValue?
}

public struct ListOptions: Sendable, Hashable {
    public var labelSelector: String?
    public var fieldSelector: String?
    public var limit: Int?
    public var continueToken: String?
    public init(labelSelector: String? = nil, fieldSelector: String? = nil, limit: Int? = nil, continueToken: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.limit = limit
        self.continueToken = continueToken
    }
}

public struct WatchOptions: Sendable, Hashable {
    public var labelSelector: String?
    public var fieldSelector: String?
    public var resourceVersion: String?
    public var allowBookmarks: Bool
    public var timeoutSeconds: Int?
    public init(labelSelector: String? = nil, fieldSelector: String? = nil, resourceVersion: String? = nil,
                allowBookmarks: Bool = true, timeoutSeconds: Int? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.resourceVersion = resourceVersion
        self.allowBookmarks = allowBookmarks
        self.timeoutSeconds = timeoutSeconds
    }
}

public struct DeleteOptions: Sendable, Hashable {
    public enum Propagation: String, Sendable { case orphan = "Orphan", background = "Background", foreground = "Foreground" }
    public var propagationPolicy: Propagation?
    public var preconditionUID: String?
    public var preconditionResourceVersion: String?
    public init(propagationPolicy: Propagation? = nil, preconditionUID: String? = nil, preconditionResourceVersion: String? = nil) {
        self.propagationPolicy = propagationPolicy
        self.preconditionUID = preconditionUID
        self.preconditionResourceVersion = preconditionResourceVersion
    }
}

public struct Patch: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case merge = "application/merge-patch+json"
        case json = "application/json-patch+json"
        case strategicMerge = "application/strategic-merge-patch+json"
    }
    public var kind: Kind
    public var body: JSONValue
    public init(_ kind: Kind, _ body: JSONValue) {
        self.kind = kind
        self.body = body
    }
    public static func merge(_ body: JSONValue) -> Patch { Patch(.merge, body) }
    public static func json(_ operations: JSONValue) -> Patch { Patch(.json, operations) }
}

public struct ObjectList: Sendable {
    public var items: [JSONValue]
    public var resourceVersion: String
    public var continueToken: String?
    public init(items: [JSONValue], resourceVersion: String, continueToken: String?) {
        self.items = items
        self.resourceVersion = resourceVersion
        self.continueToken = continueToken
    }
}

public struct WatchEvent: Sendable {
    public enum Kind: String, Sendable { case added = "ADDED", modified = "MODIFIED", deleted = "DELETED", bookmark = "BOOKMARK" }
    public var type: Kind
    public var object: JSONValue
    public init(_ type: Kind, _ object: JSONValue) {
        self.type = type
        self.object = object
    }
    public var resourceVersion: String? { object.value(at: ["metadata", "resourceVersion"])?.stringValue }
}

public typealias WatchStream = AsyncThrowingStream<WatchEvent, any Error>

/// An error answered by the API server, built from its `Status` object.
public struct KubeAPIError: Error, Sendable, CustomStringConvertible, Equatable {
    public var code: Int
    public var reason: String
    public var message: String
    /// `details.causes[].field` and `.message` of a 422.
    public var causes: [FieldCause]
    /// Seconds from `Retry-After` (or `details.retryAfterSeconds`).
    public var retryAfterSeconds: Int?

    public struct FieldCause: Sendable, Equatable {
        public var field: String
        public var message: String
        public init(field: String, message: String) {
            self.field = field
            self.message = message
        }
    }

    public init(code: Int, reason: String, message: String, causes: [FieldCause] = [], retryAfterSeconds: Int? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.causes = causes
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// From a `Status` document; other bodies (a plain-text 404) become the message.
    public init(code: Int, body: Data, retryAfter: Int? = nil) {
        if let status = try? JSONParser.parse(body).value, status["kind"]?.stringValue == "Status" {
            self.init(status: status, fallbackCode: code)
            if retryAfterSeconds == nil { retryAfterSeconds = retryAfter }
        } else {
            let text = String(decoding: body.prefix(512), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            self.init(code: code, reason: Self.reason(for: code), message: text.isEmpty ? "HTTP \(code)" : text,
                      retryAfterSeconds: retryAfter)
        }
    }

    public init(status: JSONValue, fallbackCode: Int = 500) {
        let code: Int
        if case .int(let c)? = status["code"] { code = Int(c) } else { code = fallbackCode }
        let causes = status.value(at: ["details", "causes"])?.arrayValue?.map {
            FieldCause(field: $0["field"]?.stringValue ?? "", message: $0["message"]?.stringValue ?? "")
        } ?? []
        var retry: Int?
        if case .int(let r)? = status.value(at: ["details", "retryAfterSeconds"]) { retry = Int(r) }
        self.init(code: code, reason: status["reason"]?.stringValue ?? Self.reason(for: code),
                  message: status["message"]?.stringValue ?? "", causes: causes, retryAfterSeconds: retry)
    }

    static func reason(for code: Int) -> String {
        switch code {
        case 400: "BadRequest"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "NotFound"
        case 405: "MethodNotAllowed"
        case 409: "Conflict"
        case 410: "Expired"
        case 422: "Invalid"
        case 429: "TooManyRequests"
        case 503: "ServiceUnavailable"
        default: code >= 500 ? "InternalError" : "Unknown"
        }
    }

    public var description: String { "\(code) \(reason): \(message)" }

    public var isNotFound: Bool { code == 404 }
    public var isAlreadyExists: Bool { code == 409 && reason == "AlreadyExists" }
    public var isConflict: Bool { code == 409 && reason != "AlreadyExists" }
    public var isGone: Bool { code == 410 }
    public var isInvalid: Bool { code == 422 }
    public var isForbidden: Bool { code == 403 }
    /// Worth retrying unchanged: throttling and server-side failures.
    public var isTransient: Bool { code == 429 || code >= 500 }

    /// The Status document a server answers with.
    public var status: JSONValue {
        var status: JSONValue = ["kind": "Status", "apiVersion": "v1", "metadata": .emptyObject, "status": "Failure",
                                 "message": .string(message), "reason": .string(reason), "code": .int(Int64(code))]
        if !causes.isEmpty {
            status["details"] = ["causes": .array(causes.map { ["field": .string($0.field), "message": .string($0.message)] })]
        }
        return status
    }
}

public extension KubeAPIError {
    static func notFound(_ kind: ResourceKind, _ name: String) -> KubeAPIError {
        KubeAPIError(code: 404, reason: "NotFound", message: "\(kind.qualifiedName) \"\(name)\" not found")
    }
}

/// An API that can read a pod's log (`GET …/pods/NAME/log`), as the web view shows a Job's output.
public protocol PodLogSource: Sendable {
    /// The last `tailLines` lines of the pod's log; empty when it has none yet.
    func podLog(namespace: String, name: String, tailLines: Int) async throws -> String
}
