import Foundation
import Yams

/// One document of a (possibly multi-document) YAML stream.
public struct YAMLDocument: Sendable {
    public var value: JSONValue
    /// 1-based line where the document starts.
    public var line: Int
}

public struct YAMLError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var line: Int?
    public var description: String { line.map { "line \($0): \(message)" } ?? message }
}

/// YAML as Kubernetes reads it: YAML 1.2 core scalars, mappings with string keys, and `---` separated
/// documents; empty documents are skipped.
public enum KubeYAML {
    public static func documents(_ text: String) throws(YAMLError) -> [YAMLDocument] {
        do {
            var out: [YAMLDocument] = []
            // Yams' lazy compose_all stops silently at a syntax error; the parser loop throws it.
            let parser = try Parser(yaml: text)
            while let node = try parser.nextRoot() {
                let line = node.mark.map { $0.line } ?? 1
                let value = try convert(node)
                if value.isNull { continue }
                out.append(YAMLDocument(value: value, line: line))
            }
            return out
        } catch let error as YAMLError {
            throw error
        } catch let error as YamlError {
            throw YAMLError(message: "\(error)", line: Self.line(of: error))
        } catch {
            throw YAMLError(message: "\(error)", line: nil)
        }
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    static func convert(_ node: Node) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            return scalarValue(scalar, tag: node.tag)
        case .sequence(let seq):
            return .array(try seq.map { try convert($0) })
        case .mapping(let map):
            var o = JSONObject()
            for (k, v) in map {
                guard case .scalar(let key) = k else {
                    throw YAMLError(message: "mapping keys must be strings", line: k.mark?.line)
                }
                if k.tag.description.hasSuffix(":merge") || key.string == "<<" {
                    if case .object(let merged) = try convert(v) { for (mk, mv) in merged where o[mk] == nil { o[mk] = mv } }
                    continue
                }
                o[key.string] = try convert(v)
            }
            return .object(o)
        case .alias:
            throw YAMLError(message: "unresolved alias", line: node.mark?.line)
        }
    }

    static func scalarValue(_ scalar: Node.Scalar, tag: Tag) -> JSONValue {
        let s = scalar.string
        switch tag.description.split(separator: ":").last.map(String.init) ?? "" {
        case "str": return .string(s)
        case "null": return .null
        case "bool": return .bool(["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"].contains(s))
        case "int":
            if let i = Int64(s.replacingOccurrences(of: "_", with: "")) { return .int(i) }
            if s.hasPrefix("0x"), let i = Int64(s.dropFirst(2), radix: 16) { return .int(i) }
            if s.hasPrefix("0o"), let i = Int64(s.dropFirst(2), radix: 8) { return .int(i) }
            return .string(s)
        case "float":
            let lower = s.lowercased()
            if [".inf", "+.inf"].contains(lower) { return .double(.infinity) }
            if lower == "-.inf" { return .double(-.infinity) }
            if lower == ".nan" { return .double(.nan) }
            return Double(s).map { .double($0) } ?? .string(s)
        default:
            return .string(s)
        }
    }

    /// YAML for a JSON value, block style, keys in their order; strings quoted when YAML would read
    /// them as something else.
    public static func emit(_ value: JSONValue) -> String {
        var out = ""
        emit(value, indent: 0, into: &out, inSequence: false)
        return out
    }

    private static func emit(_ value: JSONValue, indent: Int, into out: inout String, inSequence: Bool) {
        let pad = String(repeating: "  ", count: indent)
        switch value {
        case .object(let o) where !o.isEmpty:
            var first = true
            for (k, v) in o {
                let prefix = (inSequence && first) ? "" : pad
                first = false
                out += prefix + scalarText(k) + ":"
                emitMember(v, indent: indent, into: &out)
            }
        case .array(let a) where !a.isEmpty:
            for item in a {
                out += pad + "- "
                switch item {
                case .object(let o) where !o.isEmpty:
                    emit(item, indent: indent + 1, into: &out, inSequence: true)
                case .array(let inner) where !inner.isEmpty:
                    out += "\n"
                    emit(item, indent: indent + 1, into: &out, inSequence: false)
                default:
                    out += inline(item) + "\n"
                }
            }
        default:
            out += pad + inline(value) + "\n"
        }
    }

    private static func emitMember(_ v: JSONValue, indent: Int, into out: inout String) {
        switch v {
        case .object(let o) where !o.isEmpty:
            out += "\n"
            emit(v, indent: indent + 1, into: &out, inSequence: false)
        case .array(let a) where !a.isEmpty:
            out += "\n"
            // Sequences inside a mapping are written at the mapping's indentation, as kubectl does.
            emit(v, indent: indent, into: &out, inSequence: false)
        default:
            out += " " + inline(v) + "\n"
        }
    }

    private static func inline(_ v: JSONValue) -> String {
        switch v {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): String(i)
        case .double(let d): JSONValue.format(d)
        case .string(let s): scalarText(s)
        case .array: "[]"
        case .object: "{}"
        }
    }

    /// A string as a plain scalar when that reads back as the same string, otherwise double-quoted.
    static func scalarText(_ s: String) -> String {
        if s.isEmpty { return "''" }
        let reserved = ["true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"]
        let needsQuotes =
            reserved.contains(s.lowercased()) || Int64(s) != nil || Double(s) != nil
            || s.first.map { "-?:,[]{}#&*!|>'\"%@` ".contains($0) } == true || s.last == " " || s.contains(": ")
            || s.contains(" #") || s.contains("\n") || s.contains("\t") || s.hasPrefix("0x") || s.hasPrefix("0o")
            || s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
        if !needsQuotes { return s }
        var q: [UInt8] = []
        JSONValue.writeString(s, into: &q)
        return String(decoding: q, as: UTF8.self)
    }
}
