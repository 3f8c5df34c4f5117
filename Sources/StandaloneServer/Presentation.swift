import Foundation
import KubeModel

/// Discovery documents, OpenAPI v3 and server-side Table printing.
struct Presentation {
    let registry: ResourceRegistry
    let serverAddress: String

    static let verbs: JSONValue = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

    func apiVersions() -> JSONValue {
        ["kind": "APIVersions", "versions": ["v1"],
         "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(serverAddress)]]]
    }

    func apiGroup(_ group: String) -> JSONValue? {
        let versions = registry.groupVersions.filter { $0.group == group && !group.isEmpty }
        guard let first = versions.first else { return nil }
        let list: [JSONValue] = versions.map { ["groupVersion": .string("\(group)/\($0.version)"), "version": .string($0.version)] }
        return ["kind": "APIGroup", "apiVersion": "v1", "name": .string(group), "versions": .array(list),
                "preferredVersion": ["groupVersion": .string("\(group)/\(first.version)"), "version": .string(first.version)]]
    }

    func apiGroupList() -> JSONValue {
        var groups: [JSONValue] = []
        var seen = Set<String>()
        for gv in registry.groupVersions where !gv.group.isEmpty && !seen.contains(gv.group) {
            seen.insert(gv.group)
            var g = apiGroup(gv.group)!
            g["kind"] = nil
            g["apiVersion"] = nil
            groups.append(g)
        }
        return ["kind": "APIGroupList", "apiVersion": "v1", "groups": .array(groups)]
    }

    func resourceList(group: String, version: String) -> JSONValue? {
        let types = registry.types.filter { $0.group == group && $0.version == version }
        guard !types.isEmpty else { return nil }
        var resources: [JSONValue] = []
        for t in types {
            var r: JSONObject = ["name": .string(t.plural), "singularName": .string(t.singular), "namespaced": .bool(t.namespaced),
                                 "kind": .string(t.kind), "verbs": Self.verbs]
            if !t.shortNames.isEmpty { r["shortNames"] = .array(t.shortNames.map { .string($0) }) }
            resources.append(.object(r))
            if t.hasStatusSubresource {
                resources.append(["name": .string("\(t.plural)/status"), "singularName": "", "namespaced": .bool(t.namespaced),
                                  "kind": .string(t.kind), "verbs": ["get", "patch", "update"]])
            }
            if t.kind == "Pod" {
                resources.append(["name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]])
            }
        }
        return ["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(group.isEmpty ? version : "\(group)/\(version)"),
                "resources": .array(resources)]
    }

    // MARK: OpenAPI v3

    static func openAPIPath(_ group: String, _ version: String) -> String { group.isEmpty ? "api/\(version)" : "apis/\(group)/\(version)" }

    func openAPIIndex() -> JSONValue {
        var paths = JSONObject()
        for gv in registry.groupVersions {
            let p = Self.openAPIPath(gv.group, gv.version)
            paths[p] = ["serverRelativeURL": .string("/openapi/v3/\(p)?hash=\(hash(openAPIDocument(group: gv.group, version: gv.version)!))")]
        }
        return ["paths": .object(paths)]
    }

    func hash(_ v: JSONValue) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in v.serialized().utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(format: "%016llX", h)
    }

    static func schemaName(_ t: ResourceType) -> String {
        if t.group.isEmpty { return "io.k8s.api.core.v1.\(t.kind)" }
        let reversed = t.group.split(separator: ".").reversed().joined(separator: ".")
        return t.isCustom ? "\(reversed).\(t.version).\(t.kind)" : "io.k8s.api.\(t.group.split(separator: ".").first!).\(t.version).\(t.kind)"
    }

    /// One group version's OpenAPI v3 document: the schemas (ours for custom kinds, open ones for the
    /// built-in kinds) and operations that declare the query parameters kubectl looks for.
    func openAPIDocument(group: String, version: String) -> JSONValue? {
        let types = registry.types.filter { $0.group == group && $0.version == version }
        guard !types.isEmpty else { return nil }
        var schemas = JSONObject()
        var paths = JSONObject()
        schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"] = SchemaReflection.schema(for: ObjectMeta.self).jsonValue
        for t in types {
            let name = Self.schemaName(t)
            let gvk: JSONValue = ["group": .string(t.group), "version": .string(t.version), "kind": .string(t.kind)]
            var schema: JSONValue
            if var s = t.schema {
                s.setProperty("metadata", OpenAPISchema(type: .object))
                schema = s.jsonValue
                schema["properties"]?["metadata"] = ["allOf": [["$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]]]
            } else {
                schema = ["type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": [
                    "apiVersion": ["type": "string"], "kind": ["type": "string"],
                    "metadata": ["allOf": [["$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]]],
                ]]
            }
            schema["x-kubernetes-group-version-kind"] = [gvk]
            schemas[name] = schema
            schemas[name + "List"] = ["type": "object", "x-kubernetes-group-version-kind": [["group": .string(t.group), "version": .string(t.version), "kind": .string(t.kind + "List")]],
                                      "properties": ["items": ["type": "array", "items": ["$ref": .string("#/components/schemas/\(name)")]]]]
            let base = "/" + Self.openAPIPath(group, version) + (t.namespaced ? "/namespaces/{namespace}" : "") + "/\(t.plural)"
            let ref: JSONValue = ["$ref": .string("#/components/schemas/\(name)")]
            let body: JSONValue = ["content": ["application/json": ["schema": ref]]]
            let ok: JSONValue = ["200": ["description": "OK", "content": ["application/json": ["schema": ref]]]]
            func op(_ action: String, _ extra: [(String, JSONValue)] = []) -> JSONValue {
                var o: JSONObject = ["x-kubernetes-action": .string(action), "x-kubernetes-group-version-kind": gvk, "responses": ok,
                                     "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation")]]
                for (k, v) in extra { o[k] = v }
                return .object(o)
            }
            paths[base] = ["get": op("list"), "post": op("post", [("requestBody", body)])]
            paths[base + "/{name}"] = ["get": op("get"), "put": op("put", [("requestBody", body)]),
                                       "patch": op("patch", [("requestBody", ["content": ["application/merge-patch+json": ["schema": ["type": "object"]]]])]),
                                       "delete": op("delete")]
        }
        return ["openapi": "3.0.0", "info": ["title": "tidb-backup-operator standalone", "version": "v1"],
                "paths": .object(paths), "components": ["schemas": .object(schemas)]]
    }

    func param(_ name: String) -> JSONValue {
        ["name": .string(name), "in": "query", "schema": ["type": "string", "uniqueItems": true]]
    }

    // MARK: Tables

    func columnDefinitions(_ t: ResourceType) -> [JSONValue] {
        var cols: [JSONValue] = [[
            "name": "Name", "type": "string", "format": "name",
            "description": "Name must be unique within a namespace.", "priority": 0,
        ]]
        for c in t.printerColumns {
            cols.append(["name": .string(c.name), "type": .string(c.type), "format": "",
                         "description": .string("Custom resource definition column (in JSONPath format): \(c.jsonPath)"),
                         "priority": .int(Int64(c.priority))])
        }
        if !t.printerColumns.contains(where: { $0.name == "Age" }) {
            cols.append(["name": "Age", "type": "date", "format": "",
                         "description": "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp", "priority": 0])
        }
        return cols
    }

    func row(_ t: ResourceType, _ object: JSONValue, includeObject: String, now: Date) -> JSONValue {
        var cells: [JSONValue] = [object.value(at: ["metadata", "name"]) ?? ""]
        var columns = t.printerColumns
        if !columns.contains(where: { $0.name == "Age" }) { columns.append(PrinterColumn("Age", "date", ".metadata.creationTimestamp")) }
        for c in columns {
            let value = object.value(at: c.jsonPath.split(separator: ".").map(String.init))
            if c.type == "date", let s = value?.stringValue, let time = Time(rfc3339: s) {
                cells.append(.string(Self.humanDuration(Int64(now.timeIntervalSince1970) - time.unixSeconds)))
            } else {
                switch value {
                case nil, .null?, .object?, .array?: cells.append(.null)
                case let v?: cells.append(v)
                }
            }
        }
        var r: JSONObject = ["cells": .array(cells)]
        switch includeObject {
        case "None": r["object"] = .null
        case "Object": r["object"] = object
        default:
            r["object"] = ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"] ?? .emptyObject]
        }
        return .object(r)
    }

    func table(_ t: ResourceType, _ objects: [JSONValue], resourceVersion: String, continueToken: String? = nil,
               includeObject: String, withColumns: Bool = true, now: Date) -> JSONValue {
        var meta: JSONObject = ["resourceVersion": .string(resourceVersion)]
        if let continueToken { meta["continue"] = .string(continueToken) }
        var o: JSONObject = ["kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": .object(meta)]
        o["columnDefinitions"] = withColumns ? .array(columnDefinitions(t)) : .null
        o["rows"] = .array(objects.map { row(t, $0, includeObject: includeObject, now: now) })
        return .object(o)
    }

    /// Kubernetes' `duration.HumanDuration`.
    static func humanDuration(_ seconds: Int64) -> String {
        if seconds < -1 { return "<invalid>" }
        if seconds < 0 { return "0s" }
        if seconds < 120 { return "\(seconds)s" }
        let minutes = seconds / 60
        if minutes < 10 { return seconds % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(seconds % 60)s" }
        if minutes < 180 { return "\(minutes)m" }
        let hours = minutes / 60
        if hours < 8 { return minutes % 60 == 0 ? "\(hours)h" : "\(hours)h\(minutes % 60)m" }
        if hours < 48 { return "\(hours)h" }
        if hours < 192 { return hours % 24 == 0 ? "\(hours / 24)d" : "\(hours / 24)d\(hours % 24)h" }
        if hours < 24 * 365 * 2 { return "\(hours / 24)d" }
        let days = hours / 24
        if hours < 24 * 365 * 8 { return days % 365 == 0 ? "\(days / 365)y" : "\(days / 365)y\(days % 365)d" }
        return "\(days / 365)y"
    }
}
