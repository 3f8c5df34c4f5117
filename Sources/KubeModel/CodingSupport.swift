import Foundation

/// Marks a property whose absence is written as JSON `null`, like a non-pointer `metav1.Time` in Go
/// (reference 1.12: `timeStarted`, `timeCompleted` and condition times are always emitted).
@propertyWrapper
public struct EmitNull<Value: Codable & Hashable & Sendable>: Codable, Hashable, Sendable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        wrappedValue = c.decodeNil() ? nil : try c.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let wrappedValue { try c.encode(wrappedValue) } else { try c.encodeNil() }
    }
}

/// A value with an empty form that Go always serialises (a non-pointer struct such as
/// `backoffRetryPolicy: {}`); when the key is missing on input the empty form is used.
public protocol EmptyInitializable {
    init()
}

extension KeyedDecodingContainer {
    public func decode<T>(_ type: EmitNull<T>.Type, forKey key: Key) throws -> EmitNull<T> {
        try decodeIfPresent(type, forKey: key) ?? EmitNull(wrappedValue: nil)
    }

    public func decode<T: Decodable & EmptyInitializable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decodeIfPresent(type, forKey: key) ?? T()
    }
}

/// A string enumeration whose unknown values survive decoding.
///
/// Most enum-like fields of the pingcap.com API are free strings at the API level (reference 2.1), so a
/// value this version does not know must be kept and reported by validation, not rejected by the decoder.
public protocol OpenEnum: RawRepresentable, Codable, Hashable, Sendable, CustomStringConvertible,
    ExpressibleByStringLiteral where RawValue == String
{
    init(rawValue: String)
    /// The values this version knows, in documentation order.
    static var knownValues: [Self] { get }
    /// Whether the CRD schema restricts the field to `knownValues` (TiDB Operator does for a few fields).
    static var enforcedBySchema: Bool { get }
}

extension OpenEnum {
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
    public var description: String { rawValue }
    public var isKnown: Bool { Self.knownValues.contains(self) }
    public static var enforcedBySchema: Bool { false }
}
