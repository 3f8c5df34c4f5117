import Foundation

/// The three patch formats of the Kubernetes API.
public enum JSONPatching {
    public struct PatchError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces.
    public static func mergePatch(_ target: JSONValue, with patch: JSONValue) -> JSONValue {
        guard case .object(let p) = patch else { return patch }
        var result = target.objectValue ?? JSONObject()
        for (key, value) in p {
            if value.isNull {
                result[key] = nil
            } else {
                result[key] = mergePatch(result[key] ?? .null, with: value)
            }
        }
        return .object(result)
    }

    /// A strategic merge patch as kubectl sends it for built-in kinds. Lists of objects that carry a
    /// `name` (containers, env, volumes) merge by name; other lists are replaced; `$patch: delete` and
    /// `$patch: replace` are honoured; ordering directives are dropped.
    public static func strategicMergePatch(_ target: JSONValue, with patch: JSONValue) -> JSONValue {
        guard case .object(var p) = patch else { return patch }
        if p["$patch"] == "replace" {
            p["$patch"] = nil
            return .object(p)
        }
        var result = target.objectValue ?? JSONObject()
        for (key, value) in p {
            if key.hasPrefix("$") { continue }
            if key.hasPrefix("$setElementOrder/") || key.hasPrefix("$deleteFromPrimitiveList/") { continue }
            if value.isNull { result[key] = nil; continue }
            if value["$patch"] == "delete" { result[key] = nil; continue }
            switch (result[key], value) {
            case (.array(let old)?, .array(let new)) where new.allSatisfy({ $0["name"]?.stringValue != nil })
                && old.allSatisfy({ $0["name"]?.stringValue != nil }):
                var merged = old
                for item in new {
                    let name = item["name"]!
                    if let i = merged.firstIndex(where: { $0["name"] == name }) {
                        if item["$patch"] == "delete" { merged.remove(at: i) } else { merged[i] = strategicMergePatch(merged[i], with: item) }
                    } else if item["$patch"] != "delete" {
                        merged.append(strategicMergePatch(.emptyObject, with: item))
                    }
                }
                result[key] = .array(merged)
            default:
                result[key] = strategicMergePatch(result[key] ?? .null, with: value)
            }
        }
        return .object(result)
    }

    /// RFC 6902 JSON patch.
    public static func jsonPatch(_ target: JSONValue, with operations: JSONValue) throws(PatchError) -> JSONValue {
        guard case .array(let ops) = operations else { throw PatchError(description: "a JSON patch must be an array of operations") }
        var doc = target
        for op in ops {
            guard let name = op["op"]?.stringValue, let path = op["path"]?.stringValue else {
                throw PatchError(description: "each JSON patch operation needs op and path")
            }
            let pointer = try parsePointer(path)
            switch name {
            case "add": doc = try set(doc, pointer, try require(op["value"]), insert: true)
            case "replace":
                guard get(doc, pointer) != nil else { throw PatchError(description: "replace operation does not apply: doc is missing key: \(path)") }
                doc = try set(doc, pointer, try require(op["value"]), insert: false)
            case "remove":
                guard get(doc, pointer) != nil else { throw PatchError(description: "remove operation does not apply: doc is missing path: \(path)") }
                doc = try remove(doc, pointer)
            case "test":
                guard get(doc, pointer) == op["value"] else { throw PatchError(description: "testing value \(path) failed: test failed") }
            case "move", "copy":
                guard let from = op["from"]?.stringValue, let v = get(doc, try parsePointer(from)) else {
                    throw PatchError(description: "\(name) operation does not apply: missing from")
                }
                if name == "move" { doc = try remove(doc, try parsePointer(from)) }
                doc = try set(doc, pointer, v, insert: true)
            default:
                throw PatchError(description: "Unexpected kind: \(name)")
            }
        }
        return doc
    }

    private static func require(_ v: JSONValue?) throws(PatchError) -> JSONValue {
        guard let v else { throw PatchError(description: "missing value") }
        return v
    }

    static func parsePointer(_ path: String) throws(PatchError) -> [String] {
        if path.isEmpty { return [] }
        guard path.hasPrefix("/") else { throw PatchError(description: "invalid JSON pointer \(path)") }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    static func get(_ doc: JSONValue, _ pointer: [String]) -> JSONValue? {
        var current: JSONValue? = doc
        for token in pointer {
            switch current {
            case .object(let o)?: current = o[token]
            case .array(let a)?: current = Int(token).flatMap { $0 >= 0 && $0 < a.count ? a[$0] : nil }
            default: return nil
            }
        }
        return current
    }

    static func set(_ doc: JSONValue, _ pointer: [String], _ value: JSONValue, insert: Bool) throws(PatchError) -> JSONValue {
        guard let token = pointer.first else { return value }
        let rest = Array(pointer.dropFirst())
        switch doc {
        case .object(var o):
            if rest.isEmpty { o[token] = value } else {
                guard let child = o[token] else { throw PatchError(description: "missing path element \(token)") }
                o[token] = try set(child, rest, value, insert: insert)
            }
            return .object(o)
        case .array(var a):
            if rest.isEmpty {
                if token == "-" { a.append(value); return .array(a) }
                guard let i = Int(token), i >= 0, i <= a.count else { throw PatchError(description: "index out of range: \(token)") }
                if insert { a.insert(value, at: i) } else {
                    guard i < a.count else { throw PatchError(description: "index out of range: \(token)") }
                    a[i] = value
                }
            } else {
                guard let i = Int(token), i >= 0, i < a.count else { throw PatchError(description: "index out of range: \(token)") }
                a[i] = try set(a[i], rest, value, insert: insert)
            }
            return .array(a)
        default:
            throw PatchError(description: "cannot apply a patch below a scalar at \(token)")
        }
    }

    static func remove(_ doc: JSONValue, _ pointer: [String]) throws(PatchError) -> JSONValue {
        guard let token = pointer.first else { return .null }
        let rest = Array(pointer.dropFirst())
        switch doc {
        case .object(var o):
            if rest.isEmpty { o[token] = nil } else if let child = o[token] { o[token] = try remove(child, rest) }
            return .object(o)
        case .array(var a):
            guard let i = Int(token), i >= 0, i < a.count else { throw PatchError(description: "index out of range: \(token)") }
            if rest.isEmpty { a.remove(at: i) } else { a[i] = try remove(a[i], rest) }
            return .array(a)
        default:
            throw PatchError(description: "cannot remove below a scalar")
        }
    }
}
