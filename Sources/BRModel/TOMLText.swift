/// TOML text as far as a Lightning configuration needs it: which keys each table sets, a check that
/// every line is a table header, a key/value pair, a comment or blank (multi-line strings and arrays
/// included), and a merge that adds generated keys without redefining a table the user wrote.
///
/// It does not evaluate values; Lightning parses the result. It catches what would make the merged
/// file invalid or what the operator must refuse (a password in the spec).
public struct TOMLText: Sendable {
    public struct Problem: Error, Hashable, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    public let text: String
    /// Table name ("" for the root) → the keys it sets, as written (dotted keys kept whole).
    public private(set) var tables: [String: [String]] = [:]
    /// Table name → the index of its header line.
    var headerLines: [String: Int] = [:]
    let lines: [String]

    public init(_ text: String) throws(Problem) {
        self.text = text
        lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0).replacingCR() }
        var table = ""
        tables[""] = []
        var index = 0
        while index < lines.count {
            let number = index + 1
            let line = lines[index].trimmedTOML
            index += 1
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[[") {
                guard let end = line.range(of: "]]"), Self.onlyComment(after: line[end.upperBound...]) else {
                    throw Problem(line: number, message: "an array-of-tables header must end with ]]")
                }
                table = Self.normaliseName(String(line[line.index(line.startIndex, offsetBy: 2)..<end.lowerBound]))
                if tables[table] == nil { tables[table] = [] }
                continue
            }
            if line.hasPrefix("[") {
                guard let end = line.firstIndex(of: "]"), Self.onlyComment(after: line[line.index(after: end)...]) else {
                    throw Problem(line: number, message: "a table header must end with ]")
                }
                let name = Self.normaliseName(String(line[line.index(after: line.startIndex)..<end]))
                guard !name.isEmpty else { throw Problem(line: number, message: "a table header needs a name") }
                if headerLines[name] != nil { throw Problem(line: number, message: "table [\(name)] is defined twice") }
                headerLines[name] = index - 1
                table = name
                if tables[table] == nil { tables[table] = [] }
                continue
            }
            guard let eq = Self.assignment(line) else {
                throw Problem(line: number, message: "expected a table header or key = value, found \"\(line.prefix(40))\"")
            }
            let key = Self.normaliseName(String(line[..<eq]))
            guard !key.isEmpty else { throw Problem(line: number, message: "a key is missing before =") }
            if tables[table, default: []].contains(key) {
                throw Problem(line: number, message: "key \(key) is set twice in \(table.isEmpty ? "the root table" : "[\(table)]")")
            }
            tables[table, default: []].append(key)
            var value = String(line[line.index(after: eq)...]).trimmedTOML
            guard !value.isEmpty else { throw Problem(line: number, message: "key \(key) has no value") }
            // Values that continue on later lines: multi-line strings and arrays / inline tables.
            for quote in ["\"\"\"", "'''"] where value.hasPrefix(quote) {
                var rest = String(value.dropFirst(3))
                while !rest.contains(quote) {
                    guard index < lines.count else { throw Problem(line: number, message: "the multi-line string of \(key) never ends") }
                    rest = lines[index]
                    index += 1
                }
                value = ""
            }
            var depth = Self.depth(value)
            while depth > 0 {
                guard index < lines.count else { throw Problem(line: number, message: "the value of \(key) never closes its brackets") }
                depth += Self.depth(lines[index])
                index += 1
            }
            if depth < 0 { throw Problem(line: number, message: "the value of \(key) closes a bracket it never opened") }
        }
    }

    /// Whether `table` sets `key`.
    public func sets(_ table: String, _ key: String) -> Bool { tables[table]?.contains(key) ?? false }

    /// The text with `settings` (table, key, TOML value literal) added where the user did not set the
    /// key: inside the user's table when it exists, else in a new table at the end.
    public func merged(with settings: [(table: String, key: String, value: String)]) -> String {
        var out = lines
        var appended: [(String, [String])] = []
        var insertions: [Int: [String]] = [:]
        for (table, key, value) in settings where !sets(table, key) {
            let line = "\(key) = \(value)"
            if let header = headerLines[table] {
                insertions[header, default: []].append(line)
            } else if let i = appended.firstIndex(where: { $0.0 == table }) {
                appended[i].1.append(line)
            } else {
                appended.append((table, [line]))
            }
        }
        for header in insertions.keys.sorted(by: >) { out.insert(contentsOf: insertions[header]!, at: header + 1) }
        var text = out.joined(separator: "\n")
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        for (table, keys) in appended {
            text += "\n[\(table)]\n" + keys.joined(separator: "\n") + "\n"
        }
        return text
    }

    /// The value literal of a one-line `key = value` in `table`, comments stripped.
    public func value(_ table: String, _ key: String) -> String? {
        lineIndex(table, key).map { i in
            let line = lines[i]
            let eq = Self.assignment(line.trimmedTOML)!
            let trimmed = line.trimmedTOML
            var v = String(trimmed[trimmed.index(after: eq)...]).trimmedTOML
            if let q = v.first, q == "\"" || q == "'" {
                // Up to the closing quote (a basic string's escaped quotes skipped); a comment may follow.
                var escaped = false
                for i in v.indices.dropFirst() {
                    if escaped { escaped = false; continue }
                    if v[i] == "\\" && q == "\"" { escaped = true; continue }
                    if v[i] == q { return String(v[...i]) }
                }
                return v
            }
            if let hash = v.firstIndex(of: "#") { v = String(v[..<hash]).trimmedTOML }
            return v
        }
    }

    /// The text without the one-line `key = value` lines named; a table left empty keeps its header.
    public func removing(_ keys: [(table: String, key: String)]) -> String {
        var drop = Set(keys.compactMap { lineIndex($0.table, $0.key) })
        // A table whose every key goes loses its header too.
        for (table, header) in headerLines {
            let remaining = (tables[table] ?? []).filter { key in !keys.contains { $0.table == table && $0.key == key } }
            if remaining.isEmpty, !(tables[table] ?? []).isEmpty, !tables.keys.contains(where: { $0.hasPrefix(table + ".") }) {
                drop.insert(header)
            }
        }
        return lines.enumerated().filter { !drop.contains($0.offset) }.map(\.element).joined(separator: "\n")
    }

    func lineIndex(_ table: String, _ key: String) -> Int? {
        var current = ""
        for (i, raw) in lines.enumerated() {
            let line = raw.trimmedTOML
            if line.hasPrefix("[[") { current = "\u{0}"; continue }
            if line.hasPrefix("["), let end = line.firstIndex(of: "]") {
                current = Self.normaliseName(String(line[line.index(after: line.startIndex)..<end]))
                continue
            }
            if current == table, let eq = Self.assignment(line), Self.normaliseName(String(line[..<eq])) == key { return i }
        }
        return nil
    }

    /// A TOML basic string.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    // MARK: lexing helpers

    static func onlyComment(after rest: Substring) -> Bool {
        let t = String(rest).trimmedTOML
        return t.isEmpty || t.hasPrefix("#")
    }

    /// `a . "b"` → `a.b`; quotes are dropped so that `"tidb"` and `tidb` name the same table.
    static func normaliseName(_ raw: String) -> String {
        raw.split(separator: ".").map { part in
            var p = String(part).trimmedTOML
            if p.count >= 2, (p.hasPrefix("\"") && p.hasSuffix("\"")) || (p.hasPrefix("'") && p.hasSuffix("'")) {
                p = String(p.dropFirst().dropLast())
            }
            return p
        }.joined(separator: ".")
    }

    /// The `=` that separates key and value, outside quotes; nil when the line has none or the key
    /// holds characters a bare or quoted key cannot.
    static func assignment(_ line: String) -> String.Index? {
        var quote: Character?
        for i in line.indices {
            let c = line[i]
            if let q = quote {
                if c == q { quote = nil }
                continue
            }
            if c == "\"" || c == "'" { quote = c; continue }
            if c == "=" { return i }
            if !(c.isLetter || c.isNumber || c == "_" || c == "-" || c == "." || c == " " || c == "\t") { return nil }
        }
        return nil
    }

    /// Net bracket depth of a value fragment, ignoring brackets in strings and comments.
    static func depth(_ fragment: String) -> Int {
        var depth = 0
        var quote: Character?
        var escaped = false
        for c in fragment {
            if let q = quote {
                if escaped { escaped = false } else if c == "\\" && q == "\"" { escaped = true } else if c == q { quote = nil }
                continue
            }
            switch c {
            case "\"", "'": quote = c
            case "[", "{": depth += 1
            case "]", "}": depth -= 1
            case "#": return depth
            default: break
            }
        }
        return depth
    }
}

extension String {
    var trimmedTOML: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }

    func replacingCR() -> String { hasSuffix("\r") ? String(dropLast()) : self }
}
