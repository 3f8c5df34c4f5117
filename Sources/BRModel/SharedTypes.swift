import KubeModel

/// `spec.from` of a Backup and `spec.to` of a Restore: how to reach TiDB over SQL.
public struct TiDBAccessConfig: Codable, Hashable, Sendable {
    public var host: String
    public var port: Int32?
    public var user: String?
    public var secretName: String
    public var tlsClientSecretName: String?

    public init(host: String, port: Int32? = nil, user: String? = nil, secretName: String,
                tlsClientSecretName: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.secretName = secretName
        self.tlsClientSecretName = tlsClientSecretName
    }

    /// The port after defaulting (4000 when unset or 0).
    public var effectivePort: Int32 { (port ?? 0) == 0 ? 4000 : port! }
    /// The user after defaulting (`root` when unset or empty).
    public var effectiveUser: String { (user ?? "").isEmpty ? "root" : user! }
}

/// `spec.br`: selects the BR path and carries BR's options. `cluster` is required by the CRD.
public struct BRConfig: Codable, Hashable, Sendable {
    public var cluster: String
    public var clusterNamespace: String?
    public var db: String?
    public var table: String?
    public var logLevel: String?
    public var statusAddr: String?
    public var concurrency: UInt32?
    public var rateLimit: UInt?
    public var timeAgo: String?
    public var checksum: Bool?
    public var checkRequirements: Bool?
    public var sendCredToTikv: Bool?
    public var onLine: Bool?
    public var options: [String]?

    public init(cluster: String, clusterNamespace: String? = nil) {
        self.cluster = cluster
        self.clusterNamespace = clusterNamespace
    }
}

/// `spec.dumpling` of a Backup.
public struct DumplingConfig: Codable, Hashable, Sendable {
    public var options: [String]?
    public var tableFilter: [String]?
    public init(options: [String]? = nil, tableFilter: [String]? = nil) {
        self.options = options
        self.tableFilter = tableFilter
    }
}

/// `spec.cleanOption` of a Backup (reference 1.2.5).
public struct CleanOption: Codable, Hashable, Sendable, SchemaAnnotated {
    public var pageSize: UInt64?
    public var retryCount: Int?
    public var backoffEnabled: Bool?
    public var disableBatchConcurrency: Bool?
    public var batchConcurrency: UInt32?
    public var routineConcurrency: UInt32?
    public var snapshotsDeleteRatio: Double?

    public init() {}

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        schema.modify(["retryCount"]) { $0.defaultValue = 5 }
        schema.modify(["snapshotsDeleteRatio"]) { $0.defaultValue = 1 }
    }
}

/// `spec.backoffRetryPolicy` of a Backup: always present on the wire (reference 1.2.6).
public struct BackoffRetryPolicy: Codable, Hashable, Sendable, EmptyInitializable, SchemaAnnotated {
    public var minRetryDuration: String?
    public var maxRetryTimes: Int?
    public var retryTimeout: String?

    public init() {}

    public init(minRetryDuration: String?, maxRetryTimes: Int?, retryTimeout: String?) {
        self.minRetryDuration = minRetryDuration
        self.maxRetryTimes = maxRetryTimes
        self.retryTimeout = retryTimeout
    }

    public static func annotateSchema(_ schema: inout OpenAPISchema) {
        schema.modify(["minRetryDuration"]) { $0.defaultValue = "300s" }
        schema.modify(["maxRetryTimes"]) { $0.defaultValue = 2 }
        schema.modify(["retryTimeout"]) { $0.defaultValue = "30m" }
    }
}

/// One entry of `status.progresses`.
public struct Progress: Codable, Hashable, Sendable {
    public var step: String?
    public var progress: Double?
    @EmitNull public var lastTransitionTime: Time?

    public init(step: String?, progress: Double?, lastTransitionTime: Time?) {
        self.step = step
        self.progress = progress
        self.lastTransitionTime = lastTransitionTime
    }
}

/// One entry of `status.brOperations`.
public struct BROperation: Codable, Hashable, Sendable {
    public var operationID: String?
    public var startedAt: Time?
    public var command: String?
    @EmitNull public var observedAt: Time?

    public init(operationID: String?, startedAt: Time?, command: String?, observedAt: Time?) {
        self.operationID = operationID
        self.startedAt = startedAt
        self.command = command
        self.observedAt = observedAt
    }
}

/// `core/v1.ResourceRequirements`; always present on the wire as `resources: {}`.
public struct ResourceRequirements: Codable, Hashable, Sendable, EmptyInitializable {
    public var limits: [String: IntOrString]?
    public var requests: [String: IntOrString]?
    public var claims: [JSONValue]?
    public init() {}
}

/// A Kubernetes quantity or port: an integer or a string.
public enum IntOrString: Codable, Hashable, Sendable, SchemaLeaf, CustomStringConvertible {
    case int(Int64)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int64.self) { self = .int(i) } else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let i): try c.encode(i)
        case .string(let s): try c.encode(s)
        }
    }

    public var description: String {
        switch self {
        case .int(let i): String(i)
        case .string(let s): s
        }
    }

    public static var leafSchema: OpenAPISchema {
        var s = OpenAPISchema(type: .any)
        s.intOrString = true
        return s
    }
    public static var schemaPlaceholder: IntOrString { .int(0) }
}
