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
        var report = Report()
        for path in paths {
            if path == "-" {
                validate(text: String(decoding: standardInput(), as: UTF8.self), source: "<stdin>", into: &report)
                continue
            }
            for file in expand(path, into: &report) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    report.unreadable.append("\(file): cannot read file")
                    continue
                }
                guard let text = String(data: data, encoding: .utf8) else {
                    report.unreadable.append("\(file): not UTF-8 text")
                    continue
                }
                validate(text: text, source: file, into: &report)
            }
        }
        return report
    }

    private func expand(_ path: String, into report: inout Report) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            report.unreadable.append("\(path): no such file or directory")
            return []
        }
        guard isDirectory.boolValue else { return [path] }
        let entries = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []
        return entries.filter { [".yaml", ".yml", ".json"].contains(where: $0.hasSuffix) }.sorted()
            .map { (path as NSString).appendingPathComponent($0) }
    }

    public func validate(text: String, source: String, into report: inout Report) {
        let documents: [YAMLDocument]
        do {
            documents = try KubeYAML.documents(text)
        } catch {
            report.unreadable.append("\(source):\(error.line.map { "\($0):" } ?? "") \(error.message)")
            return
        }
        for doc in documents {
            for object in items(of: doc.value) {
                report.problems += problems(in: object, source: "\(source):\(doc.line)", checked: &report.checked)
            }
        }
    }

    /// A `List` (what `kubectl get -o yaml` prints) contributes its items.
    private func items(of value: JSONValue) -> [JSONValue] {
        if value["kind"]?.stringValue?.hasSuffix("List") == true, let items = value["items"]?.arrayValue { return items }
        return [value]
    }

    /// The problems of one object, each as `kind/namespace/name: field: message`.
    public func problems(in object: JSONValue, source: String, checked: inout Int) -> [String] {
        guard object.objectValue != nil else { return ["\(source): a manifest must be a mapping, found \(object.typeName)"] }
        let kind = object["kind"]?.stringValue ?? ""
        let apiVersion = object["apiVersion"]?.stringValue ?? ""
        let namespace = object.value(at: ["metadata", "namespace"])?.stringValue ?? "default"
        let name = object.value(at: ["metadata", "name"])?.stringValue ?? ""
        let label = "\(kind.isEmpty ? "<no kind>" : kind)/\(namespace)/\(name)"
        let group = apiVersion.split(separator: "/").first.map(String.init) ?? ""
        guard group == "pingcap.com" else {
            // Secrets, service accounts and the like sit beside our objects in users' files.
            return kind.isEmpty || apiVersion.isEmpty ? ["\(label): apiVersion and kind are required (\(source))"] : []
        }
        if kind == TidbCluster.kind { return [] }
        guard let info = BRKinds.info(forKind: kind) else {
            return ["\(label): kind: \(kind) is not a kind of pingcap.com served by this operator"]
        }
        guard apiVersion == "pingcap.com/v1alpha1" else {
            return ["\(label): apiVersion: \(apiVersion) is not served; use pingcap.com/v1alpha1"]
        }
        checked += 1
        var out: [String] = []
        if name.isEmpty && object.value(at: ["metadata", "generateName"]) == nil {
            out.append("\(label): metadata.name: Required value")
        }
        let schemaErrors = info.schema.validate(object)
        out += schemaErrors.map { "\(label): \($0.field): \($0.message)" }
        if !schemaErrors.isEmpty { return out }

        var defaulted = info.schema.applyDefaults(to: object)
        defaulted["metadata"]?["namespace"] = .string(namespace)
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
            return out + ["\(label): \(error.description)"]
        }
        return out + semantic.map { "\(label): \($0.field): \($0.message)" }
    }
}
