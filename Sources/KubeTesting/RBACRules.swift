import Foundation
import KubeModel

/// The rules of a Role or ClusterRole in a manifest file, to check recorded API calls against.
public struct RBACRules: Sendable {
    struct Rule: Sendable {
        var groups: Set<String>
        var resources: Set<String>
        var verbs: Set<String>
    }

    let rules: [Rule]

    public struct Missing: Error, CustomStringConvertible { public var description: String }

    /// The first object of `kind` (`Role`, `ClusterRole`) in the YAML file at `path`.
    public init(file path: String, kind: String) throws {
        let docs = try KubeYAML.documents(String(contentsOfFile: path, encoding: .utf8))
        guard let role = docs.first(where: { $0.value["kind"]?.stringValue == kind })?.value else {
            throw Missing(description: "no \(kind) in \(path)")
        }
        rules = (role["rules"]?.arrayValue ?? []).map { r in
            func set(_ k: String) -> Set<String> { Set(r[k]?.arrayValue?.compactMap(\.stringValue) ?? []) }
            return Rule(groups: set("apiGroups"), resources: set("resources"), verbs: set("verbs"))
        }
    }

    /// Whether a rule allows the call (`resource` as the recorder writes it: `plural[.group]`).
    public func allows(_ call: InMemoryKubeAPI.Call) -> Bool {
        let parts = call.resource.split(separator: ".", maxSplits: 1).map(String.init)
        let plural = parts[0], group = parts.count > 1 ? parts[1] : ""
        let resource = call.subresource.map { "\(plural)/\($0)" } ?? plural
        return rules.contains { $0.groups.contains(group) && $0.resources.contains(resource) && $0.verbs.contains(call.verb.rawValue) }
    }

    /// `verb resource[/subresource]` of each call the rules refuse, sorted.
    public func refused(_ calls: [InMemoryKubeAPI.Call]) -> [String] {
        Set(calls.filter { !allows($0) }.map { "\($0.verb.rawValue) \($0.resource)\($0.subresource.map { "/\($0)" } ?? "")" }).sorted()
    }
}
