import Foundation

/// A top-level Kubernetes object that keeps the document it was read from, so that fields this version
/// does not model are written back unchanged (the operator updates whole objects).
public protocol KubeResource: Codable, Sendable {
    static var apiVersion: String { get }
    static var kind: String { get }
    var metadata: ObjectMeta { get set }
    /// The document this value was decoded from; `nil` for objects built in code.
    var retainedDocument: JSONValue? { get set }
}

/// An error decoding an object, naming the field (`spec.br.concurrency: expected integer`).
public struct KubeDecodingError: Error, CustomStringConvertible, Sendable {
    public var field: String
    public var message: String
    public var description: String { field.isEmpty ? message : "\(field): \(message)" }

    init(_ error: any Error) {
        guard let error = error as? DecodingError else {
            field = ""
            message = "\(error)"
            return
        }
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for k in keys {
                if let i = k.intValue, k.stringValue == "Index \(i)" || k.stringValue == String(i) {
                    out += "[\(i)]"
                } else {
                    out += out.isEmpty ? k.stringValue : ".\(k.stringValue)"
                }
            }
            return out
        }
        switch error {
        case .typeMismatch(let type, let ctx):
            field = path(ctx.codingPath)
            message = "expected \(KubeDecodingError.jsonTypeName(type))"
        case .valueNotFound(let type, let ctx):
            field = path(ctx.codingPath)
            message = "expected \(KubeDecodingError.jsonTypeName(type)), found null"
        case .keyNotFound(let key, let ctx):
            field = path(ctx.codingPath + [key])
            message = "Required value"
        case .dataCorrupted(let ctx):
            field = path(ctx.codingPath)
            message = ctx.debugDescription
        @unknown default:
            field = ""
            message = "\(error)"
        }
    }

    static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "string"
        case is Bool.Type: "boolean"
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt.Type, is UInt32.Type, is UInt64.Type: "integer"
        case is Double.Type: "number"
        case is any ArraySchemaMarker.Type: "array"
        default: "object"
        }
    }
}

/// Reads and writes Kubernetes objects losslessly.
///
/// Decoding keeps the source document; encoding writes the typed value and then carries over every
/// member of the source document that the type's schema does not declare, at any depth (inside list
/// elements too, when the list kept its length). Known members always come from the typed value, so
/// clearing a field in Swift removes it from the output.
public enum KubeCodec {
    /// The same conversions through Foundation's `JSONDecoder` / `JSONEncoder` and JSON text, as
    /// before `JSONValueCoding`; kept for the tests that check both give the same results.
    public static func decodeThroughText<T: Decodable>(_ type: T.Type, from value: JSONValue) throws(KubeDecodingError) -> T {
        do { return try JSONDecoder().decode(T.self, from: value.data()) } catch { throw KubeDecodingError(error) }
    }

    public static func encodeThroughText<T: Encodable>(_ value: T) throws -> JSONValue {
        try JSONParser.parse(JSONEncoder().encode(value)).value
    }

    public static func decode<T: KubeResource>(_ type: T.Type, from value: JSONValue) throws(KubeDecodingError) -> T {
        do {
            var object = try JSONValueCoding.decode(T.self, from: value)
            object.retainedDocument = value
            return object
        } catch {
            throw KubeDecodingError(error)
        }
    }

    public static func decode<T: KubeResource>(_ type: T.Type, from data: Data) throws -> T {
        try decode(type, from: JSONParser.parse(data).value)
    }

    /// Decodes a plain `Decodable` member type (not a whole object) from a JSON value.
    public static func decodeValue<T: Decodable>(_ type: T.Type, from value: JSONValue) throws(KubeDecodingError) -> T {
        do { return try JSONValueCoding.decode(T.self, from: value) } catch { throw KubeDecodingError(error) }
    }

    public static func encodeValue<T: Encodable>(_ value: T) -> JSONValue {
        do {
            return try JSONValueCoding.encode(value)
        } catch {
            // Encoding our own model types cannot fail: they hold only strings, numbers and JSONValue.
            preconditionFailure("encoding \(T.self) failed: \(error)")
        }
    }

    public static func encode<T: KubeResource>(_ object: T) -> JSONValue {
        var typed = encodeValue(object)
        typed["apiVersion"] = .string(T.apiVersion)
        typed["kind"] = .string(T.kind)
        guard let original = object.retainedDocument else { return ordered(typed) }
        return merge(original: original, typed: typed, schema: SchemaReflection.schema(for: T.self))
    }

    public static func encodeData<T: KubeResource>(_ object: T, pretty: Bool = false) -> Data {
        encode(object).data(pretty: pretty)
    }

    /// Puts `apiVersion`, `kind`, `metadata`, `spec`, `status` first, as Kubernetes prints objects.
    static func ordered(_ value: JSONValue) -> JSONValue {
        guard case .object(let o) = value else { return value }
        var out = JSONObject()
        for key in ["apiVersion", "kind", "metadata", "spec", "status"] where o[key] != nil { out[key] = o[key] }
        for (k, v) in o where out[k] == nil { out[k] = v }
        return .object(out)
    }

    static func merge(original: JSONValue, typed: JSONValue, schema: OpenAPISchema) -> JSONValue {
        switch (original, typed) {
        case (.object(let old), .object(let new)):
            if schema.preserveUnknownFields && schema.properties.isEmpty { return typed }
            var out = JSONObject()
            // Keep the original member order, then append members that are new.
            for (key, oldValue) in old {
                if let newValue = new[key] {
                    let child = schema.additionalProperties?.schema ?? schema.property(key)
                    out[key] = child.map { merge(original: oldValue, typed: newValue, schema: $0) } ?? newValue
                } else if schema.additionalProperties == nil && schema.property(key) == nil {
                    out[key] = oldValue  // unknown to this version: carried over
                }
            }
            for (key, newValue) in new where out[key] == nil { out[key] = newValue }
            return .object(out)
        case (.array(let old), .array(let new)):
            guard old.count == new.count, let item = schema.items?.schema else { return typed }
            return .array(zip(old, new).map { merge(original: $0, typed: $1, schema: item) })
        default:
            return typed
        }
    }
}
