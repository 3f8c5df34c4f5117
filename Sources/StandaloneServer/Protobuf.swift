import Foundation
import KubeModel

/// Just enough of Kubernetes' protobuf encoding to accept what kubectl sends as protobuf: the
/// `k8s\0` envelope (`runtime.Unknown`) around a core/v1 Secret or ConfigMap
/// (`kubectl create secret generic`, `kubectl create configmap`), and the metadata of a Namespace or
/// ServiceAccount (`kubectl create namespace`).
enum KubeProtobuf {
    struct DecodeError: Error, CustomStringConvertible { var description: String }

    struct Reader {
        let bytes: [UInt8]
        var i = 0
        var atEnd: Bool { i >= bytes.count }

        mutating func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < bytes.count, shift < 64 else { throw DecodeError(description: "truncated varint") }
                let b = bytes[i]
                i += 1
                result |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return result }
                shift += 7
            }
        }

        /// The next field: number, wire type, and the bytes of a length-delimited value.
        mutating func field() throws -> (Int, Int, [UInt8]?, UInt64) {
            let key = try varint()
            let number = Int(key >> 3)
            let wire = Int(key & 7)
            switch wire {
            case 0: return (number, wire, nil, try varint())
            case 2:
                let n = Int(try varint())
                guard i + n <= bytes.count else { throw DecodeError(description: "truncated field") }
                defer { i += n }
                return (number, wire, Array(bytes[i..<i + n]), 0)
            case 1: i += 8; return (number, wire, nil, 0)
            case 5: i += 4; return (number, wire, nil, 0)
            default: throw DecodeError(description: "unsupported wire type \(wire)")
            }
        }
    }

    static func string(_ b: [UInt8]?) -> String { String(decoding: b ?? [], as: UTF8.self) }

    /// Decodes the envelope and the object inside it into the JSON form.
    static func decode(_ data: Data) throws -> JSONValue {
        let bytes = Array(data)
        guard bytes.count >= 4, bytes[0...3] == [0x6B, 0x38, 0x73, 0x00] else { throw DecodeError(description: "missing k8s protobuf prefix") }
        var r = Reader(bytes: Array(bytes[4...]))
        var apiVersion = ""
        var kind = ""
        var raw: [UInt8] = []
        while !r.atEnd {
            let (n, _, b, _) = try r.field()
            if n == 1 {
                var t = Reader(bytes: b ?? [])
                while !t.atEnd {
                    let (tn, _, tb, _) = try t.field()
                    if tn == 1 { apiVersion = string(tb) } else if tn == 2 { kind = string(tb) }
                }
            } else if n == 2 {
                raw = b ?? []
            }
        }
        guard ["Secret", "ConfigMap", "Namespace", "ServiceAccount"].contains(kind) else {
            throw DecodeError(description: "protobuf bodies are accepted for Secret, ConfigMap, Namespace and ServiceAccount only, got \(kind)")
        }
        var object = JSONObject([("apiVersion", .string(apiVersion)), ("kind", .string(kind))])
        var body = Reader(bytes: raw)
        var data = JSONObject()
        var stringData = JSONObject()
        while !body.atEnd {
            let (n, _, b, v) = try body.field()
            switch (kind, n) {
            case (_, 1): object["metadata"] = try metadata(b ?? [])
            case ("Secret", 2): let (k, val) = try mapEntry(b ?? []); data[k] = .string(Data(val).base64EncodedString())
            case ("Secret", 3): if !(b ?? []).isEmpty { object["type"] = .string(string(b)) }
            case ("Secret", 4): let (k, val) = try mapEntry(b ?? []); stringData[k] = .string(string(val))
            case ("Secret", 5), ("ConfigMap", 3): object["immutable"] = .bool(v != 0)
            case ("ConfigMap", 2): let (k, val) = try mapEntry(b ?? []); data[k] = .string(string(val))
            default: break
            }
        }
        if !data.isEmpty { object["data"] = .object(data) }
        if !stringData.isEmpty { object["stringData"] = .object(stringData) }
        return .object(object)
    }

    static func mapEntry(_ bytes: [UInt8]) throws -> (String, [UInt8]) {
        var r = Reader(bytes: bytes)
        var key = ""
        var value: [UInt8] = []
        while !r.atEnd {
            let (n, _, b, _) = try r.field()
            if n == 1 { key = string(b) } else if n == 2 { value = b ?? [] }
        }
        return (key, value)
    }

    static func metadata(_ bytes: [UInt8]) throws -> JSONValue {
        var r = Reader(bytes: bytes)
        var meta = JSONObject()
        var labels = JSONObject()
        var annotations = JSONObject()
        while !r.atEnd {
            let (n, _, b, _) = try r.field()
            switch n {
            // proto2 writes empty optional strings; an empty string means unset.
            case 1 where !(b ?? []).isEmpty: meta["name"] = .string(string(b))
            case 2 where !(b ?? []).isEmpty: meta["generateName"] = .string(string(b))
            case 3 where !(b ?? []).isEmpty: meta["namespace"] = .string(string(b))
            case 11: let (k, v) = try mapEntry(b ?? []); labels[k] = .string(string(v))
            case 12: let (k, v) = try mapEntry(b ?? []); annotations[k] = .string(string(v))
            default: break
            }
        }
        if !labels.isEmpty { meta["labels"] = .object(labels) }
        if !annotations.isEmpty { meta["annotations"] = .object(annotations) }
        return .object(meta)
    }
}
