import BRModel
import Foundation
import KubeModel

/// Offline validation of manifests: the CRD schema (as the API server would apply it with strict field
/// validation), the schema defaults, then the semantic rules the controllers enforce.
public struct ManifestValidator {
    public struct Report: Sendable {
        /// `kind/namespace/name: field.path: message`, one per problem.
        public var problems: [String] = []
        /// Files that could not be read or parsed, with the file and line.
        public var unreadable: [String] = []
        /// Objects checked (of our kinds).
        public var checked = 0

        /// 0 when everything is valid, 1 when any object is invalid, 2 when a file cannot be read or parsed.
        public var exitCode: Int32 { !unreadable.isEmpty ? 2 : (problems.isEmpty ? 0 : 1) }

        public init() {}
    }

    public init() {}

    /// Validates files, directories (recursively: `.yaml`, `.yml`, `.json`) and `-` for standard input.
    public func validate(paths: [String], standardInput: () -> Data = { FileHandle.standardInput.readDataToEndOfFile() }) -> Report {
        validate(ManifestSet.load(paths, standardInput: standardInput))
    }

    /// Validates every object of a set read before.
    public func validate(_ set: ManifestSet) -> Report {
        var report = Report()
        report.unreadable = set.unreadable
        for object in set.objects {
            report.problems += problems(in: object.value, source: object.source, checked: &report.checked)
        }
        return report
    }

    public func validate(text: String, source: String, into report: inout Report) {
        var set = ManifestSet()
        set.add(text: text, source: source)
        report.unreadable += set.unreadable
        for object in set.objects {
            report.problems += problems(in: object.value, source: object.source, checked: &report.checked)
        }
    }

    /// One problem of one object: the object (`Kind/namespace/name`), the field at fault when one is, and
    /// the message, as `validate` prints it and `doctor` and `plan` report it.
    public struct Finding: Sendable, Equatable, CustomStringConvertible {
        public var object: String
        public var field: String?
        public var message: String

        public var description: String { field.map { "\(object): \($0): \(message)" } ?? "\(object): \(message)" }
    }

    /// The problems of one object, each as `kind/namespace/name: field: message`.
    public func problems(in object: JSONValue, source: String, checked: inout Int) -> [String] {
        let result = findings(in: object, source: source)
        if result.checked { checked += 1 }
        return result.findings.map(\.description)
    }

    /// The problems of one object, and whether it is one of ours (checked at all).
    public func findings(in object: JSONValue, source: String) -> (checked: Bool, findings: [Finding]) {
        guard object.objectValue != nil else { return (false, [Finding(object: source, message: "a manifest must be a mapping, found \(object.typeName)")]) }
        let kind = object["kind"]?.stringValue ?? ""
        let apiVersion = object["apiVersion"]?.stringValue ?? ""
        let namespace = object.value(at: ["metadata", "namespace"])?.stringValue ?? "default"
        let name = object.value(at: ["metadata", "name"])?.stringValue ?? ""
        let label = "\(kind.isEmpty ? "<no kind>" : kind)/\(namespace)/\(name)"
        let group = apiVersion.split(separator: "/").first.map(String.init) ?? ""
        guard group == "pingcap.com" else {
            // Secrets, service accounts and the like sit beside our objects in users' files.
            return (false, kind.isEmpty || apiVersion.isEmpty ? [Finding(object: label, message: "apiVersion and kind are required (\(source))")] : [])
        }
        if kind == TidbCluster.kind { return (false, []) }
        guard let info = BRKinds.info(forKind: kind) else {
            return (false, [Finding(object: label, field: "kind", message: "\(kind) is not a kind of pingcap.com served by this operator")])
        }
        guard apiVersion == "pingcap.com/v1alpha1" else {
            return (false, [Finding(object: label, field: "apiVersion", message: "\(apiVersion) is not served; use pingcap.com/v1alpha1")])
        }
        var out: [Finding] = []
        if name.isEmpty && object.value(at: ["metadata", "generateName"]) == nil {
            out.append(Finding(object: label, field: "metadata.name", message: "Required value"))
        }
        let schemaErrors = info.schema.validate(object)
        out += schemaErrors.map { Finding(object: label, field: $0.field, message: $0.message) }
        if !schemaErrors.isEmpty { return (true, out) }

        let defaulted = Self.defaulted(object, info: info, namespace: namespace)
        let semantic: [ValidationProblem]
        do {
            switch kind {
            case Backup.kind: semantic = BRValidation.validate(try KubeCodec.decode(Backup.self, from: defaulted))
            case Restore.kind: semantic = BRValidation.validate(try KubeCodec.decode(Restore.self, from: defaulted))
            case BackupSchedule.kind: semantic = BRValidation.validate(try KubeCodec.decode(BackupSchedule.self, from: defaulted))
            case CompactBackup.kind: semantic = BRValidation.validate(try KubeCodec.decode(CompactBackup.self, from: defaulted))
            default: semantic = []
            }
        } catch {
            return (true, out + [Finding(object: label, message: error.description)])
        }
        return (true, out + semantic.map { Finding(object: label, field: $0.field, message: $0.message) })
    }

    /// The object as the API server stores it: the schema's defaults applied, in `namespace`.
    static func defaulted(_ object: JSONValue, info: KindInfo, namespace: String) -> JSONValue {
        var defaulted = info.schema.applyDefaults(to: object)
        defaulted["metadata"]?["namespace"] = .string(namespace)
        return defaulted
    }

    /// The object as the API server would store it (schema defaults applied, the namespace set), for
    /// tools that read an object the way the operator will; objects not of our kinds come back as given.
    public static func stored(_ object: JSONValue, defaultNamespace: String) -> JSONValue {
        var object = object
        let namespace = object.value(at: ["metadata", "namespace"])?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? defaultNamespace
        if object["metadata"]?.objectValue != nil { object["metadata"]?["namespace"] = .string(namespace) }
        guard object["apiVersion"]?.stringValue == "pingcap.com/v1alpha1", let kind = object["kind"]?.stringValue,
              kind != TidbCluster.kind, let info = BRKinds.info(forKind: kind) else { return object }
        return defaulted(object, info: info, namespace: namespace)
    }
}
