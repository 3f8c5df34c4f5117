import KubeModel

/// An error answered as a Kubernetes `Status`.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var code: Int
    public var reason: String
    public var message: String
    public var details: JSONValue?
    /// A plain-text answer instead of a Status (unknown paths answer `404 page not found`).
    public var plainText = false

    public var description: String { "\(code) \(reason): \(message)" }

    public static func notFound(_ type: ResourceType, _ name: String) -> APIError {
        APIError(code: 404, reason: "NotFound", message: "\(type.qualifiedName) \"\(name)\" not found",
                 details: ["name": .string(name), "group": .string(type.group), "kind": .string(type.plural)])
    }

    public static func alreadyExists(_ type: ResourceType, _ name: String) -> APIError {
        APIError(code: 409, reason: "AlreadyExists", message: "\(type.qualifiedName) \"\(name)\" already exists",
                 details: ["name": .string(name), "group": .string(type.group), "kind": .string(type.plural)])
    }

    public static func conflict(_ type: ResourceType, _ name: String) -> APIError {
        APIError(code: 409, reason: "Conflict",
                 message: "Operation cannot be fulfilled on \(type.qualifiedName) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again",
                 details: ["name": .string(name), "group": .string(type.group), "kind": .string(type.plural)])
    }

    public static func invalid(_ type: ResourceType, _ name: String, _ causes: [FieldError]) -> APIError {
        let summary = causes.map { "\($0.field): \($0.message)" }
        let message = "\(type.qualifiedKind) \"\(name)\" is invalid: "
            + (summary.count == 1 ? summary[0] : "[" + summary.joined(separator: ", ") + "]")
        return APIError(code: 422, reason: "Invalid", message: message, details: [
            "name": .string(name), "group": .string(type.group), "kind": .string(type.kind),
            "causes": .array(causes.map { ["reason": .string($0.reason.rawValue), "message": .string($0.message), "field": .string($0.field)] }),
        ])
    }

    public static func badRequest(_ message: String) -> APIError { APIError(code: 400, reason: "BadRequest", message: message) }
    public static func pageNotFound() -> APIError { APIError(code: 404, reason: "NotFound", message: "404 page not found", plainText: true) }
    public static func methodNotAllowed() -> APIError {
        APIError(code: 405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
    }
    public static func gone(_ message: String) -> APIError { APIError(code: 410, reason: "Expired", message: message) }

    public var status: JSONValue {
        var o: JSONObject = JSONObject([("kind", "Status"), ("apiVersion", "v1"), ("metadata", .emptyObject), ("status", "Failure"),
                                        ("message", .string(message)), ("reason", .string(reason))])
        if let details { o["details"] = details }
        o["code"] = .int(Int64(code))
        return .object(o)
    }
}
