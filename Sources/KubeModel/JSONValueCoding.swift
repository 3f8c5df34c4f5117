import Foundation

/// Decodes `Decodable` values straight from a parsed `JSONValue`, and encodes `Encodable` values
/// straight into one: the typed objects the controllers read and write go to and from the API's
/// parsed documents without printing JSON text and parsing it again (what `JSONDecoder` and
/// `JSONEncoder` over `Data` would do). Errors are `DecodingError`s with the coding path, as
/// `JSONDecoder` throws them, so `KubeDecodingError` names the field the same way.
enum JSONValueCoding {
    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        if T.self == JSONValue.self { return value as! T }
        return try T(from: ValueDecoder(value: value, codingPath: []))
    }

    static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        if let v = value as? JSONValue { return v }
        let root = ValueEncoder.Box(codingPath: [])
        try value.encode(to: ValueEncoder(box: root))
        return root.resolved
    }
}

// MARK: Decoding

private struct IndexKey: CodingKey {
    var stringValue: String { "Index \(index)" }
    var intValue: Int? { index }
    let index: Int
    init(_ index: Int) { self.index = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { index = intValue }
}

private struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        switch value {
        case .object(let object): return KeyedDecodingContainer(Keyed<Key>(object: object, codingPath: codingPath))
        case .null:
            throw DecodingError.valueNotFound([String: JSONValue].self, .init(codingPath: codingPath, debugDescription: "Cannot get keyed decoding container -- found null value instead"))
        default:
            throw DecodingError.typeMismatch([String: JSONValue].self, .init(codingPath: codingPath, debugDescription: "Expected to decode Dictionary<String, Any> but found \(value.kindName) instead."))
        }
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        switch value {
        case .array(let items): return Unkeyed(items: items, codingPath: codingPath)
        case .null:
            throw DecodingError.valueNotFound([JSONValue].self, .init(codingPath: codingPath, debugDescription: "Cannot get unkeyed decoding container -- found null value instead"))
        default:
            throw DecodingError.typeMismatch([JSONValue].self, .init(codingPath: codingPath, debugDescription: "Expected to decode Array<Any> but found \(value.kindName) instead."))
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(value: value, codingPath: codingPath) }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let object: JSONObject
        let codingPath: [any CodingKey]
        var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }
        func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

        func value(_ key: Key) throws -> JSONValue {
            guard let v = object[key.stringValue] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "No value associated with key \(key.stringValue)."))
            }
            return v
        }

        func decodeNil(forKey key: Key) throws -> Bool { try value(key) == .null }

        // Each primitive spelled out: the standard library's defaults for these call one another.
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try Single(value: value(key), codingPath: codingPath + [key]).decode(type) }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try Single(value: value(key), codingPath: codingPath + [key]).decode(type)
        }

        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            guard let v = object[key.stringValue], v != .null else { return nil }
            return try Single(value: v, codingPath: codingPath + [key]).decode(type)
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try ValueDecoder(value: value(key), codingPath: codingPath + [key]).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try ValueDecoder(value: value(key), codingPath: codingPath + [key]).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder {
            ValueDecoder(value: object["super"] ?? .null, codingPath: codingPath + [AnyCodingKey("super")])
        }

        func superDecoder(forKey key: Key) throws -> any Decoder {
            ValueDecoder(value: object[key.stringValue] ?? .null, codingPath: codingPath + [key])
        }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let items: [JSONValue]
        let codingPath: [any CodingKey]
        var currentIndex = 0
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        init(items: [JSONValue], codingPath: [any CodingKey]) {
            self.items = items
            self.codingPath = codingPath
        }

        mutating func next<T>(_ type: T.Type) throws -> (JSONValue, [any CodingKey]) {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [IndexKey(currentIndex)], debugDescription: "Unkeyed container is at end."))
            }
            defer { currentIndex += 1 }
            return (items[currentIndex], codingPath + [IndexKey(currentIndex)])
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(JSONValue.self, .init(codingPath: codingPath + [IndexKey(currentIndex)], debugDescription: "Unkeyed container is at end."))
            }
            if items[currentIndex] == .null {
                currentIndex += 1
                return true
            }
            return false
        }

        mutating func decode(_ type: Bool.Type) throws -> Bool {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: String.Type) throws -> String {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: Double.Type) throws -> Double {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: Float.Type) throws -> Float {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: Int.Type) throws -> Int {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: Int8.Type) throws -> Int8 {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: Int16.Type) throws -> Int16 {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: Int32.Type) throws -> Int32 {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: Int64.Type) throws -> Int64 {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: UInt.Type) throws -> UInt {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: UInt8.Type) throws -> UInt8 {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: UInt16.Type) throws -> UInt16 {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: UInt32.Type) throws -> UInt32 {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }
        mutating func decode(_ type: UInt64.Type) throws -> UInt64 {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let (v, path) = try next(type)
            return try Single(value: v, codingPath: path).decode(type)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            let (v, path) = try next(JSONObject.self)
            return try ValueDecoder(value: v, codingPath: path).container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            let (v, path) = try next([JSONValue].self)
            return try ValueDecoder(value: v, codingPath: path).unkeyedContainer()
        }

        mutating func superDecoder() throws -> any Decoder {
            let (v, path) = try next(JSONValue.self)
            return ValueDecoder(value: v, codingPath: path)
        }
    }

    struct Single: SingleValueDecodingContainer {
        let value: JSONValue
        let codingPath: [any CodingKey]

        func decodeNil() -> Bool { value == .null }

        func mismatch<T>(_ type: T.Type) -> DecodingError {
            if value == .null {
                return .valueNotFound(type, .init(codingPath: codingPath, debugDescription: "Cannot get value of type \(type) -- found null value instead"))
            }
            return .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "Expected to decode \(type) but found \(value.kindName) instead."))
        }

        func decode(_ type: Bool.Type) throws -> Bool {
            guard case .bool(let b) = value else { throw mismatch(type) }
            return b
        }

        func decode(_ type: String.Type) throws -> String {
            guard case .string(let s) = value else { throw mismatch(type) }
            return s
        }

        func decode(_ type: Double.Type) throws -> Double {
            switch value {
            case .double(let d): return d
            case .int(let i): return Double(i)
            default: throw mismatch(type)
            }
        }

        func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

        func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
            switch value {
            case .int(let i):
                guard let v = T(exactly: i) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "Number \(i) is not representable in Swift."))
                }
                return v
            case .double(let d):
                guard let v = T(exactly: d) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "Number \(d) is not representable in Swift."))
                }
                return v
            default: throw mismatch(type)
            }
        }

        func decode(_ type: Int.Type) throws -> Int { try integer(type) }
        func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
        func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
        func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
        func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
        func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            switch type {
            case is JSONValue.Type: return value as! T
            case is String.Type: return try decode(String.self) as! T
            case is Bool.Type: return try decode(Bool.self) as! T
            case is Int.Type: return try decode(Int.self) as! T
            case is Int64.Type: return try decode(Int64.self) as! T
            case is Int32.Type: return try decode(Int32.self) as! T
            case is Double.Type: return try decode(Double.self) as! T
            default: return try T(from: ValueDecoder(value: value, codingPath: codingPath))
            }
        }
    }
}

extension JSONValue {
    /// How `JSONDecoder` names a JSON value's type in its messages.
    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "bool"
        case .int, .double: "number"
        case .string: "a string"
        case .array: "an array"
        case .object: "a dictionary"
        }
    }
}

// MARK: Encoding

private struct ValueEncoder: Encoder {
    /// Where an encoded value lands: a slot that a parent container reads back when it finishes.
    final class Box {
        var value: JSONValue?
        /// Set when this box holds an object or array that nested containers write into.
        var object: JSONObject?
        var items: [Box]?
        var members: [(String, Box)]?
        let codingPath: [any CodingKey]
        init(codingPath: [any CodingKey]) { self.codingPath = codingPath }

        /// The finished value: members and items read from their boxes.
        var resolved: JSONValue {
            if let members {
                var o = JSONObject()
                for (k, b) in members { if let v = b.resolvedIfSet { o[k] = v } }
                return .object(o)
            }
            if let items { return .array(items.map { $0.resolvedIfSet ?? .null }) }
            return value ?? .emptyObject
        }

        var resolvedIfSet: JSONValue? { members != nil || items != nil || value != nil ? resolved : nil }
    }

    let box: Box
    var codingPath: [any CodingKey] { box.codingPath }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if box.members == nil { box.members = [] }
        return KeyedEncodingContainer(Keyed<Key>(box: box))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if box.items == nil { box.items = [] }
        return Unkeyed(box: box)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(box: box) }

    static func encodeInto<T: Encodable>(_ value: T, box: Box) throws {
        switch value {
        case let v as JSONValue: box.value = v
        case let v as String: box.value = .string(v)
        case let v as Bool: box.value = .bool(v)
        case let v as Int: box.value = .int(Int64(v))
        case let v as Int64: box.value = .int(v)
        case let v as Int32: box.value = .int(Int64(v))
        case let v as Double: box.value = ValueEncoder.number(v)
        // Every other primitive here too: their own `encode(to:)` asks a single-value container to
        // encode them, which would come back to this function.
        case let v as Float: box.value = ValueEncoder.number(Double(v))
        case let v as any FixedWidthInteger: box.value = Int64(exactly: v).map(JSONValue.int) ?? .double(Double(v))
        default: try value.encode(to: ValueEncoder(box: box))
        }
    }

    /// As `JSONEncoder` prints a Double and the parser reads it back: whole numbers as integers.
    static func number(_ d: Double) -> JSONValue {
        if d == d.rounded(), abs(d) < 9.0e15 { return .int(Int64(d)) }
        return .double(d)
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let box: Box
        var codingPath: [any CodingKey] { box.codingPath }

        func child(_ key: Key) -> Box {
            let b = Box(codingPath: codingPath + [key])
            if let i = box.members!.firstIndex(where: { $0.0 == key.stringValue }) {
                box.members![i].1 = b
            } else {
                box.members!.append((key.stringValue, b))
            }
            return b
        }

        mutating func encodeNil(forKey key: Key) throws { child(key).value = .null }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try ValueEncoder.encodeInto(value, box: child(key)) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            ValueEncoder(box: child(key)).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            ValueEncoder(box: child(key)).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder { ValueEncoder(box: child(Key(stringValue: "super")!)) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { ValueEncoder(box: child(key)) }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let box: Box
        var codingPath: [any CodingKey] { box.codingPath }
        var count: Int { box.items!.count }

        func child() -> Box {
            let b = Box(codingPath: codingPath + [IndexKey(box.items!.count)])
            box.items!.append(b)
            return b
        }

        mutating func encodeNil() throws { child().value = .null }
        mutating func encode<T: Encodable>(_ value: T) throws { try ValueEncoder.encodeInto(value, box: child()) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            ValueEncoder(box: child()).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { ValueEncoder(box: child()).unkeyedContainer() }
        mutating func superEncoder() -> any Encoder { ValueEncoder(box: child()) }
    }

    struct Single: SingleValueEncodingContainer {
        let box: Box
        var codingPath: [any CodingKey] { box.codingPath }
        mutating func encodeNil() throws { box.value = .null }
        mutating func encode<T: Encodable>(_ value: T) throws { try ValueEncoder.encodeInto(value, box: box) }
    }
}
