import Foundation

/// A structural OpenAPI v3 schema as CustomResourceDefinitions use it (`JSONSchemaProps`), reduced to the
/// keywords this project generates and enforces.
public struct OpenAPISchema: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case object, array, string, integer, number, boolean
        /// No `type`: only valid with `x-kubernetes-preserve-unknown-fields` or `x-kubernetes-int-or-string`.
        case any
    }

    public var type: Kind
    public var format: String?
    public var description: String?
    /// Object members in declaration order.
    public var properties: [(name: String, schema: OpenAPISchema)] = []
    public var required: [String] = []
    public var items: Box?
    public var additionalProperties: Box?
    public var enumValues: [JSONValue]?
    public var defaultValue: JSONValue?
    public var nullable = false
    public var preserveUnknownFields = false
    public var intOrString = false
    public var minimum: Int64?
    /// CEL rules as `(rule, message)`. The standalone server evaluates the ones it knows natively.
    public var validations: [(rule: String, message: String)] = []

    /// Indirection for recursive members.
    public final class Box: Hashable, @unchecked Sendable {
        public let schema: OpenAPISchema
        public init(_ schema: OpenAPISchema) { self.schema = schema }
        public static func == (a: Box, b: Box) -> Bool { a.schema == b.schema }
        public func hash(into h: inout Hasher) { h.combine(schema) }
    }

    public init(type: Kind, format: String? = nil) {
        self.type = type
        self.format = format
    }

    public static func object(_ properties: [(String, OpenAPISchema)], required: [String] = []) -> OpenAPISchema {
        var s = OpenAPISchema(type: .object)
        s.properties = properties.map { (name: $0.0, schema: $0.1) }
        s.required = required
        return s
    }

    public static func array(of item: OpenAPISchema) -> OpenAPISchema {
        var s = OpenAPISchema(type: .array)
        s.items = Box(item)
        return s
    }

    public static func map(of value: OpenAPISchema) -> OpenAPISchema {
        var s = OpenAPISchema(type: .object)
        s.additionalProperties = Box(value)
        return s
    }

    /// An object kept as it is (`x-kubernetes-preserve-unknown-fields`).
    public static var opaqueObject: OpenAPISchema {
        var s = OpenAPISchema(type: .object)
        s.preserveUnknownFields = true
        return s
    }

    public func property(_ name: String) -> OpenAPISchema? {
        properties.first { $0.name == name }?.schema
    }

    public mutating func setProperty(_ name: String, _ schema: OpenAPISchema) {
        if let i = properties.firstIndex(where: { $0.name == name }) {
            properties[i].schema = schema
        } else {
            properties.append((name: name, schema: schema))
        }
    }

    /// Applies `change` to the member at a dotted path (`spec.br`), creating nothing.
    public mutating func modify(_ path: [String], _ change: (inout OpenAPISchema) -> Void) {
        guard let first = path.first else { change(&self); return }
        if first == "[]", let item = items?.schema {
            var copy = item
            copy.modify(Array(path.dropFirst()), change)
            items = Box(copy)
        } else if first == "{}", let value = additionalProperties?.schema {
            var copy = value
            copy.modify(Array(path.dropFirst()), change)
            additionalProperties = Box(copy)
        } else if let i = properties.firstIndex(where: { $0.name == first }) {
            properties[i].schema.modify(Array(path.dropFirst()), change)
        }
    }

    public static func == (a: OpenAPISchema, b: OpenAPISchema) -> Bool {
        a.type == b.type && a.format == b.format && a.description == b.description
            && a.properties.map(\.name) == b.properties.map(\.name)
            && a.properties.map(\.schema) == b.properties.map(\.schema) && a.required == b.required
            && a.items == b.items && a.additionalProperties == b.additionalProperties && a.enumValues == b.enumValues
            && a.defaultValue == b.defaultValue && a.nullable == b.nullable
            && a.preserveUnknownFields == b.preserveUnknownFields && a.intOrString == b.intOrString
            && a.minimum == b.minimum && a.validations.map(\.rule) == b.validations.map(\.rule)
            && a.validations.map(\.message) == b.validations.map(\.message)
    }

    public func hash(into h: inout Hasher) {
        h.combine(type)
        h.combine(format)
        h.combine(properties.map(\.name))
    }

    /// The schema as it appears in a CRD (`openAPIV3Schema`), keys in a stable, conventional order.
    public var jsonValue: JSONValue {
        var o = JSONObject()
        if let description { o["description"] = .string(description) }
        if let defaultValue { o["default"] = defaultValue }
        if let enumValues { o["enum"] = .array(enumValues) }
        if let format { o["format"] = .string(format) }
        if let item = items?.schema { o["items"] = item.jsonValue }
        if let value = additionalProperties?.schema { o["additionalProperties"] = value.jsonValue }
        if let minimum { o["minimum"] = .int(minimum) }
        if nullable { o["nullable"] = .bool(true) }
        if !properties.isEmpty {
            o["properties"] = .object(JSONObject(properties.map { ($0.name, $0.schema.jsonValue) }))
        }
        if !required.isEmpty { o["required"] = .array(required.map { .string($0) }) }
        if type != .any { o["type"] = .string(type.rawValue) }
        if intOrString {
            o["anyOf"] = [["type": "integer"], ["type": "string"]]
            o["x-kubernetes-int-or-string"] = true
        }
        if preserveUnknownFields { o["x-kubernetes-preserve-unknown-fields"] = true }
        if !validations.isEmpty {
            o["x-kubernetes-validations"] = .array(validations.map { ["message": .string($0.message), "rule": .string($0.rule)] })
        }
        return .object(o)
    }
}

extension OpenAPISchema {
    /// Marks members that Go writes as `null` when empty (slices without `omitempty`).
    public mutating func markNullable(_ names: String...) {
        for name in names { modify([name]) { $0.nullable = true } }
    }
}

extension OpenAPISchema {
    /// A schema read from its CRD form (`openAPIV3Schema`), the inverse of `jsonValue`: the keywords this
    /// project generates and enforces; others are ignored. Throws on a member of the wrong shape,
    /// naming its path.
    public init(json: JSONValue, path: String = "openAPIV3Schema") throws {
        guard let o = json.objectValue else { throw SchemaReadError(path: path, problem: "is not an object") }
        func string(_ key: String) throws -> String? {
            guard let v = o[key] else { return nil }
            guard let s = v.stringValue else { throw SchemaReadError(path: "\(path).\(key)", problem: "is not a string") }
            return s
        }
        let typeName = try string("type")
        guard let kind = typeName.map({ Kind(rawValue: $0) }) ?? .any else {
            throw SchemaReadError(path: "\(path).type", problem: "\"\(typeName ?? "")\" is not an OpenAPI type")
        }
        self.init(type: kind, format: try string("format"))
        description = try string("description")
        if let props = o["properties"] {
            guard let members = props.objectValue else { throw SchemaReadError(path: "\(path).properties", problem: "is not an object") }
            properties = try members.map { (name: $0.key, schema: try OpenAPISchema(json: $0.value, path: "\(path).properties.\($0.key)")) }
        }
        required = (o["required"]?.arrayValue ?? []).compactMap(\.stringValue)
        if let item = o["items"] { items = Box(try OpenAPISchema(json: item, path: "\(path).items")) }
        if let value = o["additionalProperties"], value.objectValue != nil {
            additionalProperties = Box(try OpenAPISchema(json: value, path: "\(path).additionalProperties"))
        }
        enumValues = o["enum"]?.arrayValue
        defaultValue = o["default"]
        minimum = o["minimum"]?.intValue
        nullable = o["nullable"] == .bool(true)
        preserveUnknownFields = o["x-kubernetes-preserve-unknown-fields"] == .bool(true)
        intOrString = o["x-kubernetes-int-or-string"] == .bool(true)
        validations = (o["x-kubernetes-validations"]?.arrayValue ?? []).compactMap { v in
            v["rule"]?.stringValue.map { (rule: $0, message: v["message"]?.stringValue ?? "failed rule: \($0)") }
        }
    }
}

public struct SchemaReadError: Error, CustomStringConvertible {
    public var path: String
    public var problem: String
    public var description: String { "\(path) \(problem)" }
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }
}
