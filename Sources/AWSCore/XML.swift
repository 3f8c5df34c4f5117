import Foundation

/// A small XML element tree, enough for the answers of S3, STS and Azure Blob (no DTDs, no namespaces
/// beyond keeping prefixes in names). Text is entity-decoded; CDATA sections are kept as text.
public struct XMLElement: Sendable, Equatable {
    public var name: String
    public var text: String
    public var children: [XMLElement]

    public init(name: String, text: String = "", children: [XMLElement] = []) {
        self.name = name
        self.text = text
        self.children = children
    }

    /// The first child with this local name (a namespace prefix is ignored).
    public func child(_ name: String) -> XMLElement? { children.first { $0.localName == name } }
    public func all(_ name: String) -> [XMLElement] { children.filter { $0.localName == name } }
    /// The text of the first child with this name.
    public subscript(_ name: String) -> String? { child(name)?.text }
    /// Follows a path of child names.
    public func path(_ names: String...) -> XMLElement? {
        var node: XMLElement? = self
        for n in names { node = node?.child(n) }
        return node
    }

    var localName: Substring {
        if let colon = name.lastIndex(of: ":") { return name[name.index(after: colon)...] }
        return name[...]
    }

    public static func parse(_ data: Data) throws -> XMLElement {
        var parser = MiniXMLParser(bytes: Array(data))
        return try parser.document()
    }

    public static func parse(_ text: String) throws -> XMLElement { try parse(Data(text.utf8)) }

    /// `&`, `<`, `>`, `"` and `'` escaped for element text and attribute values.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }
}

public struct XMLParseError: Error, CustomStringConvertible {
    public var description: String
}

struct MiniXMLParser {
    let bytes: [UInt8]
    var i = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func document() throws -> XMLElement {
        while true {
            skipSpace()
            guard i < bytes.count else { throw XMLParseError(description: "XML document has no root element") }
            if starts("<?") { try skip(past: "?>") } else if starts("<!--") { try skip(past: "-->") } else if starts("<!") {
                try skip(past: ">")
            } else if bytes[i] == UInt8(ascii: "<") {
                return try element(depth: 1)
            } else {
                throw XMLParseError(description: "unexpected text before the root element")
            }
        }
    }

    /// Whether the input at `at` (default: here) reads `s`; compares in place (an answer of 1,000 keys is
    /// some 300 KB, looked at byte by byte).
    func starts(_ s: StaticString, at position: Int? = nil) -> Bool {
        let at = position ?? i
        let count = s.utf8CodeUnitCount
        guard at + count <= bytes.count else { return false }
        return s.withUTF8Buffer { u in
            for k in 0..<count where bytes[at + k] != u[k] { return false }
            return true
        }
    }

    mutating func skip(past s: StaticString) throws {
        while i + s.utf8CodeUnitCount <= bytes.count {
            if starts(s) {
                i += s.utf8CodeUnitCount
                return
            }
            i += 1
        }
        throw XMLParseError(description: "unterminated construct, expected \(s)")
    }

    /// Elements nest at most this deep (the answers read here nest four or five levels); deeper input
    /// is refused rather than followed down the stack.
    static let maxDepth = 64

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    mutating func name() -> String {
        let start = i
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 || b == UInt8(ascii: ">") || b == UInt8(ascii: "/") || b == UInt8(ascii: "=") { break }
            i += 1
        }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    mutating func element(depth: Int) throws -> XMLElement {
        guard depth <= Self.maxDepth else { throw XMLParseError(description: "XML nested deeper than \(Self.maxDepth) elements") }
        i += 1  // <
        var node = XMLElement(name: name())
        // attributes are skipped: none of the answers we read carries data in them
        while true {
            skipSpace()
            guard i < bytes.count else { throw XMLParseError(description: "unterminated start tag <\(node.name)>") }
            if bytes[i] == UInt8(ascii: "/") {
                i += 1
                guard i < bytes.count, bytes[i] == UInt8(ascii: ">") else { throw XMLParseError(description: "bad empty tag <\(node.name)/>") }
                i += 1
                return node
            }
            if bytes[i] == UInt8(ascii: ">") {
                i += 1
                break
            }
            _ = name()
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "=") {
                i += 1
                skipSpace()
                guard i < bytes.count else { break }
                let quote = bytes[i]
                i += 1
                while i < bytes.count, bytes[i] != quote { i += 1 }
                i += 1
            }
        }
        var text = [UInt8]()
        while i < bytes.count {
            if starts("</") {
                i += 2
                let closing = name()
                guard closing == node.name else { throw XMLParseError(description: "</\(closing)> closes <\(node.name)>") }
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ">") else { throw XMLParseError(description: "bad end tag </\(closing)") }
                i += 1
                node.text = Self.decodeEntities(String(decoding: text, as: UTF8.self))
                if !node.children.isEmpty { node.text = node.text.trimmingCharacters(in: .whitespacesAndNewlines) }
                return node
            } else if starts("<![CDATA[") {
                i += 9
                let start = i
                try skip(past: "]]>")
                // CDATA is literal: protect it from entity decoding by escaping its ampersands.
                text += Array(String(decoding: bytes[start..<(i - 3)], as: UTF8.self).replacingOccurrences(of: "&", with: "&amp;").utf8)
            } else if starts("<!--") {
                try skip(past: "-->")
            } else if starts("<?") {
                try skip(past: "?>")
            } else if bytes[i] == UInt8(ascii: "<") {
                node.children.append(try element(depth: depth + 1))
            } else {
                text.append(bytes[i])
                i += 1
            }
        }
        throw XMLParseError(description: "unterminated element <\(node.name)>")
    }

    static func decodeEntities(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var rest = Substring(s)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";"), rest.distance(from: amp, to: semi) <= 10 else {
                out += "&"
                rest = rest[rest.index(after: amp)...]
                continue
            }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                var scalar: Unicode.Scalar?
                if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                    scalar = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init)
                } else if entity.hasPrefix("#") {
                    scalar = UInt32(entity.dropFirst()).flatMap(Unicode.Scalar.init)
                }
                if let scalar { out.unicodeScalars.append(scalar) } else { out += rest[amp...semi] }
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }
}
