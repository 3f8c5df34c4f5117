import KubeModel

/// What the API needs to know about one of our kinds: names, printer columns and schema.
public struct KindInfo: Sendable {
    public var kind: String
    public var plural: String
    public var singular: String
    public var shortNames: [String]
    public var printerColumns: [PrinterColumn]
    public var schema: OpenAPISchema
    /// Whether status is a subresource (TiDB Operator's TidbCluster, served by standalone, has none).
    public var statusSubresource = true
    public var group: String { "pingcap.com" }
    public var version: String { "v1alpha1" }
    public var crdName: String { "\(plural).\(group)" }

    /// The schema as the CRD declares it: `metadata` is validated by the API server itself, so the CRD
    /// declares it as a bare object.
    public var crdSchema: OpenAPISchema {
        var s = schema
        s.setProperty("metadata", OpenAPISchema(type: .object))
        return s
    }
}

/// The pingcap.com/v1alpha1 kinds this product serves (reference 1.1), and their CRDs.
public enum BRKinds {
    public static let backup = KindInfo(
        kind: "Backup", plural: "backups", singular: "backup", shortNames: ["bk"],
        printerColumns: [
            PrinterColumn("Type", "string", ".spec.backupType"),
            PrinterColumn("Mode", "string", ".spec.backupMode"),
            PrinterColumn("Status", "string", ".status.phase"),
            PrinterColumn("BackupPath", "string", ".status.backupPath"),
            PrinterColumn("BackupSize", "string", ".status.backupSizeReadable"),
            PrinterColumn("IncrementalBackupSize", "string", ".status.incrementalBackupSizeReadable", priority: 10),
            PrinterColumn("CommitTS", "string", ".status.commitTs"),
            PrinterColumn("LogTruncateUntil", "string", ".status.logSuccessTruncateUntil"),
            PrinterColumn("Started", "date", ".status.timeStarted", priority: 1),
            PrinterColumn("Completed", "date", ".status.timeCompleted", priority: 1),
            PrinterColumn("TimeTaken", "string", ".status.timeTaken"),
            PrinterColumn("Verified", "string", ".status.verification.phase", priority: 1),
            PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
        ],
        schema: topLevelSchema(Backup.self))

    public static let backupSchedule = KindInfo(
        kind: "BackupSchedule", plural: "backupschedules", singular: "backupschedule", shortNames: ["bks"],
        printerColumns: [
            PrinterColumn("Schedule", "string", ".spec.schedule"),
            PrinterColumn("MaxBackups", "integer", ".spec.maxBackups"),
            PrinterColumn("MaxReservedTime", "string", ".spec.maxReservedTime"),
            PrinterColumn("Status", "string", ".status.health"),
            PrinterColumn("LastBackup", "string", ".status.lastBackup", priority: 1),
            PrinterColumn("LastBackupTime", "date", ".status.lastBackupTime", priority: 1),
            PrinterColumn("EarliestRestorable", "date", ".status.earliestRestorable"),
            PrinterColumn("LatestRestorable", "date", ".status.latestRestorable"),
            PrinterColumn("PITR", "boolean", ".status.restorableContinuous", priority: 1),
            PrinterColumn("LastVerified", "date", ".status.lastVerifiedTime", priority: 1),
            PrinterColumn("ProvenRestorable", "date", ".status.provenRestorable", priority: 1),
            PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
        ],
        schema: topLevelSchema(BackupSchedule.self))

    public static let restore = KindInfo(
        kind: "Restore", plural: "restores", singular: "restore", shortNames: ["rt"],
        printerColumns: [
            PrinterColumn("Status", "string", ".status.phase"),
            PrinterColumn("Started", "date", ".status.timeStarted", priority: 1),
            PrinterColumn("Completed", "date", ".status.timeCompleted", priority: 1),
            PrinterColumn("TimeTaken", "string", ".status.timeTaken"),
            PrinterColumn("CommitTS", "string", ".status.commitTs"),
            PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
        ],
        schema: topLevelSchema(Restore.self))

    public static let compactBackup = KindInfo(
        kind: "CompactBackup", plural: "compactbackups", singular: "compactbackup", shortNames: ["cpbk"],
        printerColumns: [
            PrinterColumn("Status", "string", ".status.state"),
            PrinterColumn("EndTs", "string", ".status.endTs"),
            PrinterColumn("Progress", "string", ".status.progress"),
            PrinterColumn("Message", "string", ".status.message"),
        ],
        schema: topLevelSchema(CompactBackup.self))

    /// The kinds whose CRDs this product owns, in the order `manifests crds` prints them.
    public static let all: [KindInfo] = [backup, backupSchedule, compactBackup, restore]

    /// TiDB Operator's TidbCluster as far as this product reads it (PD addresses, version, TLS, its
    /// Ready condition): the standalone server serves it for clusters outside Kubernetes.
    public static let tidbCluster: KindInfo = {
        var info = KindInfo(kind: "TidbCluster", plural: "tidbclusters", singular: "tidbcluster", shortNames: ["tc"],
                            printerColumns: [PrinterColumn("Version", "string", ".spec.version")],
                            schema: SchemaReflection.schema(for: TidbCluster.self))
        info.statusSubresource = false
        return info
    }()

    /// What each CEL rule of these CRDs (`x-kubernetes-validations`) means, evaluated natively on the
    /// value at the rule's place, for an API server without CEL (standalone). Keyed by the rule's text,
    /// so a rule changed in a schema and not here is noticed (a test checks every rule has one).
    public static let ruleEvaluators: [String: @Sendable (JSONValue) -> Bool] = {
        let logStopExclusive: @Sendable (JSONValue) -> Bool = { spec in spec["logStop"] == nil || spec["logSubcommand"] == nil }
        var rules: [String: @Sendable (JSONValue) -> Bool] = [:]
        for (rule, _) in backup.schema.property("spec")?.validations ?? [] { rules[rule] = logStopExclusive }
        // The verification target is not the cluster the schedule backs up (namespaces compared as
        // written; the controller also compares them resolved).
        rules[BackupScheduleSpec.verificationTargetRule] = { spec in
            guard let target = spec.value(at: ["verification", "target"]), let source = spec.value(at: ["backupTemplate", "br"]) else { return true }
            return target["cluster"]?.stringValue != source["cluster"]?.stringValue
                || (target["clusterNamespace"]?.stringValue ?? "") != (source["clusterNamespace"]?.stringValue ?? "")
        }
        // pointInTime needs the schedule's log backup.
        rules[BackupScheduleSpec.pointInTimeRule] = { spec in
            // A spec the schema let through decodes; the model says what the rule means.
            guard let decoded = try? KubeCodec.decodeValue(BackupScheduleSpec.self, from: spec) else { return true }
            return !Verification.lacksLogBackup(decoded)
        }
        return rules
    }()

    /// The CRDs the standalone server is started with: this product's and TidbCluster's.
    public static var standaloneCRDs: [JSONValue] { (all + [tidbCluster]).map(crd) }

    public static func info(forKind kind: String) -> KindInfo? { all.first { $0.kind == kind } }

    public static func schema(forKind kind: String) -> OpenAPISchema? { info(forKind: kind)?.schema }

    /// The schema of a whole object, `metadata` included as ObjectMeta (used for validation and
    /// lossless writes).
    static func topLevelSchema<T: KubeResource>(_ type: T.Type) -> OpenAPISchema {
        var s = SchemaReflection.schema(for: type)
        s.required = ["metadata", "spec"]
        return s
    }

    /// The apiextensions.k8s.io/v1 CustomResourceDefinition of a kind, with a status subresource.
    public static func crd(_ info: KindInfo) -> JSONValue {
        let columns: [JSONValue] = info.printerColumns.map { c in
            var o = JSONObject()
            o["jsonPath"] = .string(c.jsonPath)
            o["name"] = .string(c.name)
            if c.priority != 0 { o["priority"] = .int(Int64(c.priority)) }
            o["type"] = .string(c.type)
            return .object(o)
        }
        var version: JSONValue = [
            "name": .string(info.version),
            "served": true,
            "storage": true,
            "additionalPrinterColumns": .array(columns),
            "schema": ["openAPIV3Schema": info.crdSchema.jsonValue],
        ]
        if info.statusSubresource { version["subresources"] = ["status": JSONValue.emptyObject] }
        return [
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": [
                "name": .string(info.crdName),
                "labels": ["app.kubernetes.io/name": "tidb-backup-operator"],
            ],
            "spec": [
                "group": .string(info.group),
                "names": [
                    "kind": .string(info.kind),
                    "listKind": .string(info.kind + "List"),
                    "plural": .string(info.plural),
                    "singular": .string(info.singular),
                    "shortNames": .array(info.shortNames.map { .string($0) }),
                ],
                "scope": "Namespaced",
                "versions": [version],
            ],
        ]
    }

    /// All CRDs as one multi-document YAML stream.
    public static func crdsYAML() -> String {
        all.map { "---\n" + KubeYAML.emit(crd($0)) }.joined()
    }
}
