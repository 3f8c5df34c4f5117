import Foundation

/// `core/v1.EnvVar`. `valueFrom` stays a JSON value: the operator copies it, the job runner resolves it.
public struct EnvVar: Codable, Hashable, Sendable {
    public var name: String
    public var value: String?
    public var valueFrom: JSONValue?

    public init(name: String, value: String? = nil, valueFrom: JSONValue? = nil) {
        self.name = name
        self.value = value
        self.valueFrom = valueFrom
    }

    /// An variable read from a key of a Secret (`secretKeyRef`), the way credentials reach job pods.
    public static func fromSecret(_ name: String, secret: String, key: String, optional: Bool? = nil) -> EnvVar {
        var ref = JSONObject([("name", .string(secret)), ("key", .string(key))])
        if let optional { ref["optional"] = .bool(optional) }
        return EnvVar(name: name, valueFrom: .object(JSONObject([("secretKeyRef", .object(ref))])))
    }
}

/// `core/v1.VolumeMount`.
public struct VolumeMount: Codable, Hashable, Sendable {
    public var name: String
    public var mountPath: String
    public var readOnly: Bool?
    public var subPath: String?
    public var subPathExpr: String?
    public var mountPropagation: String?

    public init(name: String, mountPath: String, readOnly: Bool? = nil, subPath: String? = nil) {
        self.name = name
        self.mountPath = mountPath
        self.readOnly = readOnly
        self.subPath = subPath
    }
}

/// `core/v1.Volume`: the name is typed, the source (hostPath, persistentVolumeClaim, …) is kept as JSON.
public struct Volume: Codable, Hashable, Sendable, SchemaAnnotated {
    public var name: String
    public var source: JSONObject

    public init(name: String, source: JSONObject = JSONObject()) {
        self.name = name
        self.source = source
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        name = try c.decode(String.self, forKey: AnyCodingKey("name"))
        var source = JSONObject()
        for key in c.allKeys where key.stringValue != "name" {
            source[key.stringValue] = try c.decode(JSONValue.self, forKey: key)
        }
        self.source = JSONObject(source.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(name, forKey: AnyCodingKey("name"))
        for (k, v) in source { try c.encode(v, forKey: AnyCodingKey(k)) }
    }

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        // The volume source is one of some thirty Kubernetes types; the API server of the cluster that
        // runs the Job validates it, so the CRD keeps it open.
        schema.preserveUnknownFields = true
    }
}

/// `core/v1.LocalObjectReference`.
public struct LocalObjectReference: Codable, Hashable, Sendable {
    public var name: String?
    public init(name: String?) { self.name = name }
}

/// `core/v1.Toleration`.
public struct Toleration: Codable, Hashable, Sendable {
    public var key: String?
    public var `operator`: String?
    public var value: String?
    public var effect: String?
    public var tolerationSeconds: Int64?
}
