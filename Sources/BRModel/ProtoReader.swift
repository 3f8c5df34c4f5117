import Foundation

public struct ProtoError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The protobuf wire format, read only (varints, fixed 32/64, length-delimited): BR's `backupmeta` and
/// the task records BR and TiKV keep in PD's etcd are read with it.
public struct ProtoReader: Sendable {
    public let bytes: [UInt8]
    public var i = 0

    public init(_ data: Data) { bytes = Array(data) }
    public init(_ bytes: ArraySlice<UInt8>) { self.bytes = Array(bytes) }

    public var atEnd: Bool { i >= bytes.count }

    public mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while i < bytes.count {
            let b = bytes[i]
            i += 1
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw ProtoError("protobuf: varint too long") }
        }
        throw ProtoError("protobuf: truncated varint")
    }

    /// The next field: (number, wire type, varint value or nil, bytes or nil).
    public mutating func field() throws -> (number: UInt64, varint: UInt64?, bytes: ArraySlice<UInt8>?) {
        let key = try varint()
        let number = key >> 3
        switch key & 7 {
        case 0: return (number, try varint(), nil)
        case 1:
            guard i + 8 <= bytes.count else { throw ProtoError("protobuf: truncated fixed64") }
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
            i += 8
            return (number, v, nil)
        case 2:
            let n = Int(try varint())
            guard n >= 0, i + n <= bytes.count else { throw ProtoError("protobuf: truncated field \(number)") }
            defer { i += n }
            return (number, nil, bytes[i..<i + n])
        case 5:
            guard i + 4 <= bytes.count else { throw ProtoError("protobuf: truncated fixed32") }
            var v: UInt64 = 0
            for k in 0..<4 { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
            i += 4
            return (number, v, nil)
        default:
            throw ProtoError("protobuf: unsupported wire type \(key & 7) for field \(number)")
        }
    }
}


/// The protobuf wire format, written: what BR and TiKV put into PD's etcd, for the tests' stand-ins and
/// fixtures. Proto3: a zero varint and an empty string are not written.
public struct ProtoWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    mutating func raw(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    public mutating func varint(_ field: UInt64, _ value: UInt64) {
        guard value != 0 else { return }
        raw(field << 3)
        raw(value)
    }

    public mutating func bytes(_ field: UInt64, _ value: [UInt8]) {
        guard !value.isEmpty else { return }
        raw(field << 3 | 2)
        raw(UInt64(value.count))
        bytes += value
    }

    public mutating func string(_ field: UInt64, _ value: String) { bytes(field, Array(value.utf8)) }
}
