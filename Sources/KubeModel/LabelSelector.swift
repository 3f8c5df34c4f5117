import Foundation

/// A label selector in Kubernetes' string form (`app=x,tier!=db,env in (a,b),!legacy`).
public struct LabelSelector: Hashable, Sendable, CustomStringConvertible {
    public enum Requirement: Hashable, Sendable {
        case equals(String, String)
        case notEquals(String, String)
        case `in`(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case doesNotExist(String)
    }

    public var requirements: [Requirement]
    public let description: String

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public init(equalTo labels: [String: String]) {
        requirements = labels.sorted { $0.key < $1.key }.map { .equals($0.key, $0.value) }
        description = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    public init(parsing text: String) throws(ParseError) {
        description = text
        requirements = []
        var terms: [String] = []
        var depth = 0
        var current = ""
        for c in text {
            if c == "(" { depth += 1 } else if c == ")" { depth -= 1 }
            if c == "," && depth == 0 {
                terms.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        terms.append(current)
        for raw in terms {
            let term = raw.trimmingCharacters(in: .whitespaces)
            if term.isEmpty {
                if text.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                throw ParseError(description: "unable to parse requirement: empty term in \"\(text)\"")
            }
            requirements.append(try Self.requirement(term))
        }
    }

    private static func requirement(_ term: String) throws(ParseError) -> Requirement {
        if term.hasPrefix("!") {
            return .doesNotExist(try key(String(term.dropFirst()).trimmingCharacters(in: .whitespaces)))
        }
        if let r = term.range(of: "!=") {
            return .notEquals(try key(String(term[..<r.lowerBound])), try value(String(term[r.upperBound...])))
        }
        if let r = term.range(of: "==") {
            return .equals(try key(String(term[..<r.lowerBound])), try value(String(term[r.upperBound...])))
        }
        if let r = term.range(of: "=") {
            return .equals(try key(String(term[..<r.lowerBound])), try value(String(term[r.upperBound...])))
        }
        for (word, isIn) in [(" notin ", false), (" in ", true)] {
            if let r = term.range(of: word) {
                let k = try key(String(term[..<r.lowerBound]))
                var set = term[r.upperBound...].trimmingCharacters(in: .whitespaces)
                guard set.hasPrefix("("), set.hasSuffix(")") else {
                    throw ParseError(description: "unable to parse requirement: expected a parenthesised set in \"\(term)\"")
                }
                set = String(set.dropFirst().dropLast())
                var values = Set<String>()
                for item in set.split(separator: ",") { values.insert(try value(String(item))) }
                return isIn ? .in(k, values) : .notIn(k, values)
            }
        }
        return .exists(try key(term))
    }

    private static func key(_ s: String) throws(ParseError) -> String {
        let k = s.trimmingCharacters(in: .whitespaces)
        guard !k.isEmpty, k.allSatisfy({ $0.isLetter || $0.isNumber || "-_./".contains($0) }) else {
            throw ParseError(description: "invalid label key \"\(k)\"")
        }
        return k
    }

    private static func value(_ s: String) throws(ParseError) -> String {
        let v = s.trimmingCharacters(in: .whitespaces)
        guard v.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ParseError(description: "invalid label value \"\(v)\"")
        }
        return v
    }

    public func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { r in
            switch r {
            case .equals(let k, let v): labels[k] == v
            case .notEquals(let k, let v): labels[k] != v
            case .in(let k, let vs): labels[k].map(vs.contains) ?? false
            case .notIn(let k, let vs): !(labels[k].map(vs.contains) ?? false)
            case .exists(let k): labels[k] != nil
            case .doesNotExist(let k): labels[k] == nil
            }
        }
    }
}

/// A field selector (`metadata.name=x,involvedObject.kind!=Pod`): equality terms on dotted paths.
public struct FieldSelector: Hashable, Sendable {
    public struct Term: Hashable, Sendable {
        public var path: String
        public var value: String
        public var negated: Bool
    }

    public var terms: [Term]

    public init(parsing text: String) throws(LabelSelector.ParseError) {
        terms = []
        for raw in text.split(separator: ",") {
            let term = String(raw)
            if let r = term.range(of: "!=") {
                terms.append(Term(path: String(term[..<r.lowerBound]), value: String(term[r.upperBound...]), negated: true))
            } else if let r = term.range(of: "==") ?? term.range(of: "=") {
                terms.append(Term(path: String(term[..<r.lowerBound]), value: String(term[r.upperBound...]), negated: false))
            } else {
                throw LabelSelector.ParseError(description: "invalid field selector term \"\(term)\"")
            }
        }
    }

    public func matches(_ object: JSONValue) -> Bool {
        terms.allSatisfy { t in
            let actual: String
            switch object.value(at: t.path.split(separator: ".").map(String.init)) {
            case .string(let s)?: actual = s
            case .int(let i)?: actual = String(i)
            case .bool(let b)?: actual = b ? "true" : "false"
            default: actual = ""
            }
            return (actual == t.value) != t.negated
        }
    }
}
