import Foundation

/// One problem found by schema validation, shaped like a Kubernetes `StatusCause`.
public struct FieldError: Hashable, Sendable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case required = "FieldValueRequired"
        case invalid = "FieldValueInvalid"
        case notSupported = "FieldValueNotSupported"
        case typeInvalid = "FieldValueTypeInvalid"
        case unknownField = "FieldValueUnknown"
        case forbidden = "FieldValueForbidden"
    }

    public var field: String
    public var reason: Reason
    public var message: String

    public init(field: String, reason: Reason, message: String) {
        self.field = field
        self.reason = reason
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

extension OpenAPISchema {
    /// Checks `value` against the schema as the API server does for custom resources: types, formats,
    /// enums, required members, nullability and — because clients may ask for strict field
    /// validation — members the schema does not know. The CEL rules are checked by their owners.
    public func validate(_ value: JSONValue, path: String = "") -> [FieldError] {
        var errors: [FieldError] = []
        check(value, path: path, into: &errors)
        return errors
    }

    private func label(_ path: String) -> String { path.isEmpty ? "<root>" : path }

    private func check(_ value: JSONValue, path: String, into errors: inout [FieldError]) {
        if value.isNull {
            if !nullable && type != .any {
                errors.append(FieldError(field: label(path), reason: .typeInvalid,
                    message: "Invalid value: \"null\": \(label(path)) in body must be of type \(type.rawValue): \"null\""))
            }
            return
        }
        if intOrString {
            switch value {
            case .int, .string: return
            default:
                errors.append(FieldError(field: label(path), reason: .typeInvalid,
                    message: "Invalid value: \"\(value.typeName)\": \(label(path)) in body must be of type integer or string"))
                return
            }
        }
        switch (type, value) {
        case (.any, _): return
        case (.string, .string(let s)):
            if let enumValues, !enumValues.contains(.string(s)) {
                let allowed = enumValues.compactMap(\.stringValue).map { "\"\($0)\"" }.joined(separator: ", ")
                errors.append(FieldError(field: label(path), reason: .notSupported,
                    message: "Unsupported value: \"\(s)\": supported values: \(allowed)"))
            }
            if format == "date-time", Time(rfc3339: s) == nil {
                errors.append(FieldError(field: label(path), reason: .invalid,
                    message: "Invalid value: \"\(s)\": \(label(path)) in body must be of type date-time: \"\(s)\""))
            }
        case (.integer, .int(let i)):
            if format == "int32", i < Int64(Int32.min) || i > Int64(Int32.max) {
                errors.append(FieldError(field: label(path), reason: .invalid,
                    message: "Invalid value: \(i): \(label(path)) in body must be of type int32"))
            }
            if let minimum, i < minimum {
                errors.append(FieldError(field: label(path), reason: .invalid,
                    message: "Invalid value: \(i): \(label(path)) in body should be greater than or equal to \(minimum)"))
            }
        case (.integer, .double(let d)) where d == d.rounded():
            // YAML and some encoders write whole numbers as floats; Kubernetes accepts them as integers.
            return
        case (.number, .int), (.number, .double), (.boolean, .bool):
            return
        case (.array, .array(let items)):
            if let item = self.items?.schema {
                for (i, element) in items.enumerated() { item.check(element, path: "\(path)[\(i)]", into: &errors) }
            }
        case (.object, .object(let object)):
            checkObject(object, path: path, into: &errors)
        default:
            errors.append(FieldError(field: label(path), reason: .typeInvalid,
                message: "Invalid value: \"\(value.typeName)\": \(label(path)) in body must be of type \(type.rawValue): \"\(value.typeName)\""))
        }
    }

    private func checkObject(_ object: JSONObject, path: String, into errors: inout [FieldError]) {
        let prefix = path.isEmpty ? "" : path + "."
        for name in required where object[name] == nil {
            errors.append(FieldError(field: prefix + name, reason: .required, message: "Required value"))
        }
        if let value = additionalProperties?.schema {
            for (key, member) in object { value.check(member, path: prefix + key, into: &errors) }
            return
        }
        for (key, member) in object {
            if let schema = property(key) {
                schema.check(member, path: prefix + key, into: &errors)
            } else if !preserveUnknownFields {
                errors.append(FieldError(field: prefix + key, reason: .unknownField, message: "unknown field \"\(prefix + key)\""))
            }
        }
    }

    /// Fills schema defaults the way the API server does on write: a member with a default is set
    /// when absent, recursively inside objects that are present (never creating missing parents).
    public func applyDefaults(to value: JSONValue) -> JSONValue {
        switch value {
        case .object(var object):
            if let valueSchema = additionalProperties?.schema {
                for key in object.keys { object[key] = valueSchema.applyDefaults(to: object[key]!) }
                return .object(object)
            }
            for (name, schema) in properties {
                if let member = object[name] {
                    if !member.isNull { object[name] = schema.applyDefaults(to: member) }
                } else if let d = schema.defaultValue {
                    object[name] = schema.applyDefaults(to: d)
                }
            }
            return .object(object)
        case .array(let items):
            guard let item = self.items?.schema else { return value }
            return .array(items.map { item.applyDefaults(to: $0) })
        default:
            return value
        }
    }

    /// Removes members the schema does not know (what the API server does unless a schema preserves
    /// unknown fields) and returns their paths.
    public func prune(_ value: JSONValue, path: String = "") -> (JSONValue, [String]) {
        var removed: [String] = []
        let result = pruned(value, path: path, removed: &removed)
        return (result, removed)
    }

    private func pruned(_ value: JSONValue, path: String, removed: inout [String]) -> JSONValue {
        if preserveUnknownFields && properties.isEmpty && additionalProperties == nil { return value }
        let prefix = path.isEmpty ? "" : path + "."
        switch value {
        case .object(var object):
            if let valueSchema = additionalProperties?.schema {
                for key in object.keys { object[key] = valueSchema.pruned(object[key]!, path: prefix + key, removed: &removed) }
                return .object(object)
            }
            for key in object.keys {
                if let schema = property(key) {
                    object[key] = schema.pruned(object[key]!, path: prefix + key, removed: &removed)
                } else if !preserveUnknownFields {
                    object[key] = nil
                    removed.append(prefix + key)
                }
            }
            return .object(object)
        case .array(let items):
            guard let item = self.items?.schema else { return value }
            return .array(items.enumerated().map { item.pruned($0.element, path: "\(path)[\($0.offset)]", removed: &removed) })
        default:
            return value
        }
    }

    /// Problems that make a schema non-structural in the sense of apiextensions.k8s.io/v1: every node
    /// needs a type unless it preserves unknown fields or is int-or-string; `properties` and
    /// `additionalProperties` are exclusive; defaults must validate against their schema.
    public func structuralProblems(path: String = "") -> [String] {
        var problems: [String] = []
        let here = path.isEmpty ? "<root>" : path
        if type == .any && !preserveUnknownFields && !intOrString { problems.append("\(here).type: Required value") }
        if !properties.isEmpty && additionalProperties != nil {
            problems.append("\(here): properties and additionalProperties are mutually exclusive")
        }
        if type == .array && items == nil { problems.append("\(here).items: Required value") }
        if let d = defaultValue {
            for e in validate(d, path: path) { problems.append("\(here).default: \(e.message)") }
        }
        for name in required where property(name) == nil && additionalProperties == nil && !preserveUnknownFields {
            problems.append("\(here).required: \(name) is not a property")
        }
        for (name, schema) in properties { problems += schema.structuralProblems(path: path.isEmpty ? name : "\(path).\(name)") }
        if let item = items?.schema { problems += item.structuralProblems(path: "\(path)[]") }
        if let value = additionalProperties?.schema { problems += value.structuralProblems(path: "\(path){}") }
        return problems
    }
}
