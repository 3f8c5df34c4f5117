import Foundation
import KubeModel

/// Admission of a write, before it is stored: the body's kind, the schema of its CRD (pruning unknown
/// fields, types, required members, defaults), the CRD's CEL rules as the executable evaluates them,
/// and the defaults the API server gives the built-in kinds.
public struct Admission: Sendable {
    /// What each CEL rule (`x-kubernetes-validations`) of the CRDs means, keyed by its text and
    /// evaluated on the value at the rule's place: this server has no CEL interpreter, so whoever hands
    /// in a CRD hands in its rules. A rule without an evaluator is not enforced here.
    public typealias RuleEvaluators = [String: @Sendable (JSONValue) -> Bool]

    public var rules: RuleEvaluators

    public init(rules: RuleEvaluators = [:]) { self.rules = rules }

    /// Schema checks of a body: unknown fields per `fieldValidation`, then types and required members.
    func admit(_ type: ResourceType, _ body: JSONValue, name: String, options: APIServerCore.WriteOptions) throws -> (JSONValue, [String]) {
        guard let schema = type.schema else { return (body, []) }
        var warnings: [String] = []
        let (pruned, unknown) = schema.prune(body)
        if !unknown.isEmpty {
            switch options.fieldValidation {
            case .strict:
                throw APIError.badRequest(".\(unknown.map { "unknown field \"\($0)\"" }.joined(separator: ", "))")
            case .warn: warnings += unknown.map { "unknown field \"\($0)\"" }
            case .ignore: break
            }
        }
        var errors = schema.validate(pruned).filter { $0.reason != .unknownField && !$0.field.hasPrefix("metadata.") }
        let defaulted = schema.applyDefaults(to: pruned)
        // CEL rules see the object defaulted, as a Kubernetes API server's do.
        if errors.isEmpty { errors += ruleProblems(type, defaulted) }
        if !errors.isEmpty { throw APIError.invalid(type, name, errors) }
        return (defaulted, warnings)
    }

    /// The CEL rules whose native evaluation says no, each at its place (`spec`, `spec.backupTemplate`),
    /// once per message. Only the places where the CRD has rules are visited (`ResourceType.ruleSites`).
    func ruleProblems(_ type: ResourceType, _ object: JSONValue) -> [FieldError] {
        var out: [FieldError] = []
        for site in type.ruleSites {
            for (value, path) in site.values(in: object) {
                for (rule, message) in site.validations {
                    guard let holds = rules[rule], !holds(value) else { continue }
                    let problem = FieldError(field: path, reason: .invalid, message: "Invalid value: \"object\": \(message)")
                    if !out.contains(where: { $0.field == problem.field && $0.message == problem.message }) { out.append(problem) }
                }
            }
        }
        return out
    }

    func checkKind(_ type: ResourceType, _ body: JSONValue, name: String) throws {
        guard body.objectValue != nil else { throw APIError.badRequest("the body of the request must be a JSON object") }
        let kind = body["kind"]?.stringValue ?? ""
        let apiVersion = body["apiVersion"]?.stringValue ?? ""
        if !kind.isEmpty && kind != type.kind {
            throw APIError.invalid(type, name, [FieldError(field: "kind", reason: .invalid, message: "Invalid value: \"\(kind)\": must be \(type.kind)")])
        }
        if !apiVersion.isEmpty && apiVersion != type.groupVersion {
            throw APIError.invalid(type, name, [FieldError(field: "apiVersion", reason: .invalid,
                                                           message: "Invalid value: \"\(apiVersion)\": must be \(type.groupVersion)")])
        }
    }

    /// What the API server adds to the built-in kinds this product creates.
    func builtinDefaults(_ type: ResourceType, _ input: JSONValue) throws -> JSONValue {
        var object = input
        switch type.kind {
        case "Secret":
            var data = object["data"]?.objectValue ?? JSONObject()
            for (k, v) in data {
                guard let s = v.stringValue, Data(base64Encoded: s) != nil else {
                    throw APIError.badRequest("Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in data.\(k)")
                }
            }
            for (k, v) in object["stringData"]?.objectValue ?? JSONObject() {
                data[k] = .string(Data((v.stringValue ?? "").utf8).base64EncodedString())
            }
            object["stringData"] = nil
            if !data.isEmpty { object["data"] = .object(data) }
            if object["type"] == nil { object["type"] = "Opaque" }
        case "Namespace":
            if object["spec"] == nil { object["spec"] = ["finalizers": ["kubernetes"]] }
            object["status"] = ["phase": "Active"]
        case "Job":
            let uid = object.value(at: ["metadata", "uid"])?.stringValue ?? ""
            let name = object.value(at: ["metadata", "name"])?.stringValue ?? ""
            if object.value(at: ["spec", "selector"]) == nil {
                object["spec"]?["selector"] = ["matchLabels": ["batch.kubernetes.io/controller-uid": .string(uid)]]
                object["spec"]?["manualSelector"] = false
            }
            var labels = object.value(at: ["spec", "template", "metadata", "labels"])?.objectValue ?? JSONObject()
            for (k, v) in [("batch.kubernetes.io/controller-uid", uid), ("batch.kubernetes.io/job-name", name),
                           ("controller-uid", uid), ("job-name", name)] where labels[k] == nil { labels[k] = .string(v) }
            if object.value(at: ["spec", "template", "metadata"]) == nil { object["spec"]?["template"]?["metadata"] = .emptyObject }
            object["spec"]?["template"]?["metadata"]?["labels"] = .object(labels)
            if object.value(at: ["spec", "backoffLimit"]) == nil { object["spec"]?["backoffLimit"] = 6 }
            if object.value(at: ["spec", "completionMode"]) == nil { object["spec"]?["completionMode"] = "NonIndexed" }
            if object["status"] == nil { object["status"] = .emptyObject }
        case "Pod":
            if object["status"] == nil { object["status"] = ["phase": "Pending"] }
        case "Event":
            if let ns = object.value(at: ["involvedObject", "namespace"])?.stringValue, !ns.isEmpty,
               ns != object.value(at: ["metadata", "namespace"])?.stringValue {
                throw APIError.invalid(type, object.value(at: ["metadata", "name"])?.stringValue ?? "", [
                    FieldError(field: "involvedObject.namespace", reason: .invalid,
                               message: "Invalid value: \"\(ns)\": does not match event.namespace")])
            }
            if object["source"] == nil { object["source"] = .emptyObject }
        default: break
        }
        return object
    }

}

/// A place in a kind's schema that carries CEL rules (`x-kubernetes-validations`), found once when the
/// kind is registered, so that a write visits only those places.
public struct RuleSite: Sendable {
    enum Step: Sendable, Equatable {
        case property(String)
        case items
        case values
    }

    var steps: [Step]
    public var validations: [(rule: String, message: String)]

    /// The places of `schema` with rules (metadata aside), to `depth` levels.
    static func sites(in schema: OpenAPISchema, steps: [Step] = [], depth: Int = 32) -> [RuleSite] {
        guard depth > 0 else { return [] }
        var out = schema.validations.isEmpty ? [] : [RuleSite(steps: steps, validations: schema.validations)]
        for (name, member) in schema.properties where !(steps.isEmpty && name == "metadata") {
            out += sites(in: member, steps: steps + [.property(name)], depth: depth - 1)
        }
        if let item = schema.items?.schema { out += sites(in: item, steps: steps + [.items], depth: depth - 1) }
        if let value = schema.additionalProperties?.schema { out += sites(in: value, steps: steps + [.values], depth: depth - 1) }
        return out
    }

    /// The values at this place in an object, with their field paths (`spec.backupTemplate`, `a[2]`).
    func values(in object: JSONValue) -> [(JSONValue, String)] {
        var current: [(JSONValue, String)] = [(object, "")]
        for step in steps {
            var next: [(JSONValue, String)] = []
            for (value, path) in current {
                switch step {
                case .property(let name):
                    if let v = value.objectValue?[name] { next.append((v, path.isEmpty ? name : "\(path).\(name)")) }
                case .items:
                    for (i, v) in (value.arrayValue ?? []).enumerated() { next.append((v, "\(path)[\(i)]")) }
                case .values:
                    for (k, v) in value.objectValue ?? JSONObject() { next.append((v, "\(path)[\(k)]")) }
                }
            }
            current = next
        }
        return current
    }
}
