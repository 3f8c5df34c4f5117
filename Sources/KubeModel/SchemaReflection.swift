import Foundation

/// A type whose schema is stated rather than derived (a time, an opaque Kubernetes object).
public protocol SchemaLeaf {
    static var leafSchema: OpenAPISchema { get }
    /// Any valid value; reflection needs one to continue past a required member.
    static var schemaPlaceholder: Self { get }
}

/// A type that adjusts the schema derived from its `Decodable` conformance: defaults, descriptions,
/// enums and rules that the Swift type alone cannot express.
public protocol SchemaAnnotated {
    static func annotateSchema(_ schema: inout OpenAPISchema)
}

protocol ArraySchemaMarker { static var elementType: Any.Type { get } }
protocol DictionarySchemaMarker { static var valueType: Any.Type { get } }
protocol NullableSchemaMarker { static var wrappedType: Any.Type { get } }
protocol OptionalSchemaMarker { static var wrappedType: Any.Type { get } }

extension Array: ArraySchemaMarker { static var elementType: Any.Type { Element.self } }
extension Dictionary: DictionarySchemaMarker where Key == String { static var valueType: Any.Type { Value.self } }
extension EmitNull: NullableSchemaMarker { static var wrappedType: Any.Type { Value.self } }
extension Optional: OptionalSchemaMarker { static var wrappedType: Any.Type { Wrapped.self } }

extension Time: SchemaLeaf {
    public static var leafSchema: OpenAPISchema {
        var s = OpenAPISchema(type: .string, format: "date-time")
        s.nullable = true
        return s
    }
    public static var schemaPlaceholder: Time { Time(unixSeconds: 0) }
}

extension JSONValue: SchemaLeaf {
    public static var leafSchema: OpenAPISchema { .opaqueObject }
    public static var schemaPlaceholder: JSONValue { .emptyObject }
}

/// Derives OpenAPI schemas from `Decodable` types by running their decoders against a recording decoder.
///
/// The Swift types are the single source of truth for the API: the CRDs, the standalone server's
/// validation and the lossless merge all read the schema this produces, so a field added to a struct
/// appears everywhere at once. Optional members become optional properties, non-optional ones required,
/// `EmitNull` members nullable, `OpenEnum` members strings (with `enum` when the schema enforces them).
public enum SchemaReflection {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [ObjectIdentifier: OpenAPISchema] = [:]

    public static func schema<T: Decodable>(for type: T.Type) -> OpenAPISchema {
        schema(forAny: type)
    }

    static func schema(forAny type: Any.Type) -> OpenAPISchema {
        let key = ObjectIdentifier(type)
        lock.lock()
        if let cached = cache[key] { lock.unlock(); return cached }
        lock.unlock()
        let result = derive(type)
        lock.lock()
        cache[key] = result
        lock.unlock()
        return result
    }

    private static func derive(_ type: Any.Type) -> OpenAPISchema {
        if let leaf = type as? any SchemaLeaf.Type { return leaf.leafSchema }
        switch type {
        case is String.Type: return OpenAPISchema(type: .string)
        case is Bool.Type: return OpenAPISchema(type: .boolean)
        case is Int.Type, is UInt.Type: return OpenAPISchema(type: .integer)
        case is Int32.Type, is UInt32.Type: return OpenAPISchema(type: .integer, format: "int32")
        case is Int64.Type, is UInt64.Type: return OpenAPISchema(type: .integer, format: "int64")
        case is Double.Type, is Float.Type: return OpenAPISchema(type: .number)
        default: break
        }
        if let e = type as? any OpenEnum.Type {
            var s = OpenAPISchema(type: .string)
            if e.enforcedBySchema { s.enumValues = e.knownRawValues.map { .string($0) } }
            return s
        }
        if let n = type as? any NullableSchemaMarker.Type {
            var s = schema(forAny: n.wrappedType)
            s.nullable = true
            return s
        }
        if let o = type as? any OptionalSchemaMarker.Type { return schema(forAny: o.wrappedType) }
        if let a = type as? any ArraySchemaMarker.Type { return .array(of: schema(forAny: a.elementType)) }
        if let d = type as? any DictionarySchemaMarker.Type { return .map(of: schema(forAny: d.valueType)) }
        guard let decodable = type as? any Decodable.Type else { return .opaqueObject }
        let recorder = Recorder()
        _ = try? decodable.init(from: RecordingDecoder(recorder: recorder))
        var s = OpenAPISchema.object(recorder.properties, required: recorder.required)
        if let annotated = type as? any SchemaAnnotated.Type { annotated.annotateSchema(&s) }
        return s
    }

    /// A value of `type` built by reflection (placeholders throughout), used to continue past required members.
    static func placeholder<T: Decodable>(_ type: T.Type) throws -> T {
        if let leaf = type as? any SchemaLeaf.Type { return leaf.schemaPlaceholder as! T }
        return try T(from: RecordingDecoder(recorder: Recorder()))
    }

    final class Recorder {
        var properties: [(String, OpenAPISchema)] = []
        var required: [String] = []

        func record(_ key: String, _ type: Any.Type, required isRequired: Bool) {
            guard !properties.contains(where: { $0.0 == key }) else { return }
            properties.append((key, SchemaReflection.schema(forAny: type)))
            if isRequired { required.append(key) }
        }
    }

    struct RecordingDecoder: Decoder {
        let recorder: Recorder
        var codingPath: [any CodingKey] = []
        var userInfo: [CodingUserInfoKey: Any] = [:]

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            KeyedDecodingContainer(KeyedRecorder<Key>(recorder: recorder))
        }
        func unkeyedContainer() throws -> any UnkeyedDecodingContainer { EmptyUnkeyed() }
        func singleValueContainer() throws -> any SingleValueDecodingContainer { PlaceholderValue() }
    }

    struct KeyedRecorder<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let recorder: Recorder
        var codingPath: [any CodingKey] = []
        var allKeys: [Key] { [] }
        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool { false }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            recorder.record(key.stringValue, type, required: true)
            return try SchemaReflection.placeholder(type)
        }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { optional(key, type) }
        // The standard library gives the primitive overloads default implementations that would call
        // `decode` and record the member as required; these keep them optional.
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { optional(key, type) }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { optional(key, type) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { optional(key, type) }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { optional(key, type) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { optional(key, type) }
        func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { optional(key, type) }
        func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { optional(key, type) }
        func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { optional(key, type) }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { optional(key, type) }
        func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { optional(key, type) }
        func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { optional(key, type) }
        func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { optional(key, type) }
        func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { optional(key, type) }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { optional(key, type) }
        private func optional<T>(_ key: Key, _ type: T.Type) -> T? {
            recorder.record(key.stringValue, type, required: false)
            return nil
        }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> {
            KeyedDecodingContainer(KeyedRecorder<N>(recorder: Recorder()))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { EmptyUnkeyed() }
        func superDecoder() throws -> any Decoder { RecordingDecoder(recorder: Recorder()) }
        func superDecoder(forKey key: Key) throws -> any Decoder { RecordingDecoder(recorder: Recorder()) }
    }

    struct EmptyUnkeyed: UnkeyedDecodingContainer {
        var codingPath: [any CodingKey] = []
        var count: Int? { 0 }
        var isAtEnd: Bool { true }
        var currentIndex: Int { 0 }
        mutating func decodeNil() throws -> Bool { true }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try SchemaReflection.placeholder(type) }
        mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> {
            KeyedDecodingContainer(KeyedRecorder<N>(recorder: Recorder()))
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { EmptyUnkeyed() }
        mutating func superDecoder() throws -> any Decoder { RecordingDecoder(recorder: Recorder()) }
    }

    struct PlaceholderValue: SingleValueDecodingContainer {
        var codingPath: [any CodingKey] = []
        func decodeNil() -> Bool { true }
        func decode(_ type: Bool.Type) throws -> Bool { false }
        func decode(_ type: String.Type) throws -> String { "" }
        func decode(_ type: Double.Type) throws -> Double { 0 }
        func decode(_ type: Float.Type) throws -> Float { 0 }
        func decode(_ type: Int.Type) throws -> Int { 0 }
        func decode(_ type: Int8.Type) throws -> Int8 { 0 }
        func decode(_ type: Int16.Type) throws -> Int16 { 0 }
        func decode(_ type: Int32.Type) throws -> Int32 { 0 }
        func decode(_ type: Int64.Type) throws -> Int64 { 0 }
        func decode(_ type: UInt.Type) throws -> UInt { 0 }
        func decode(_ type: UInt8.Type) throws -> UInt8 { 0 }
        func decode(_ type: UInt16.Type) throws -> UInt16 { 0 }
        func decode(_ type: UInt32.Type) throws -> UInt32 { 0 }
        func decode(_ type: UInt64.Type) throws -> UInt64 { 0 }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try SchemaReflection.placeholder(type) }
    }
}

extension OpenEnum {
    static var knownRawValues: [String] { knownValues.map(\.rawValue) }
}
