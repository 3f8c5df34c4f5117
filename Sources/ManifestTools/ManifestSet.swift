import Foundation
import KubeModel

/// Every object of the manifests a user names, read before anything looks at one: files, folders
/// (searched recursively for `.yaml`, `.yml`, `.json`) and `-` for standard input, as kubectl takes
/// them. `validate`, `plan` and `doctor` read their input through this one type, so they see the same
/// objects and can resolve references across files (a TidbCluster in one file, its Backup in another).
public struct ManifestSet: Sendable {
    public struct Object: Sendable {
        public var value: JSONValue
        /// `file:line` of the document the object came from.
        public var source: String

        public var kind: String { value["kind"]?.stringValue ?? "" }
        public var name: String { value.value(at: ["metadata", "name"])?.stringValue ?? "" }
        /// The object with `defaultNamespace` filled in when it names none, as `kubectl apply -n` sends it.
        public func value(defaultNamespace: String) -> JSONValue {
            var value = self.value
            if namespace == nil, value["metadata"]?.objectValue != nil { value["metadata"]?["namespace"] = .string(defaultNamespace) }
            return value
        }
        /// The namespace the manifest names, or nil when it names none.
        public var namespace: String? {
            value.value(at: ["metadata", "namespace"])?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        }
    }

    public var objects: [Object] = []
    /// Paths that could not be read or parsed, each with the reason (and the line where known).
    public var unreadable: [String] = []

    public init(objects: [Object] = [], unreadable: [String] = []) {
        self.objects = objects
        self.unreadable = unreadable
    }

    /// Reads every path in order; a path that cannot be read is noted and the rest are still read.
    public static func load(_ paths: [String], standardInput: () -> Data = { FileHandle.standardInput.readDataToEndOfFile() }) -> ManifestSet {
        var set = ManifestSet()
        for path in paths {
            if path == "-" {
                set.add(text: String(decoding: standardInput(), as: UTF8.self), source: "<stdin>")
                continue
            }
            for file in set.expand(path) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    set.unreadable.append("\(file): cannot read file")
                    continue
                }
                guard let text = String(data: data, encoding: .utf8) else {
                    set.unreadable.append("\(file): not UTF-8 text")
                    continue
                }
                set.add(text: text, source: file)
            }
        }
        return set
    }

    /// The objects of one text; a `List` (what `kubectl get -o yaml` prints) contributes its items.
    public mutating func add(text: String, source: String) {
        let documents: [YAMLDocument]
        do {
            documents = try KubeYAML.documents(text)
        } catch {
            unreadable.append("\(source):\(error.line.map { "\($0):" } ?? "") \(error.message)")
            return
        }
        for doc in documents {
            let value = doc.value
            let items = value["kind"]?.stringValue?.hasSuffix("List") == true ? value["items"]?.arrayValue : nil
            for item in items ?? [value] { objects.append(Object(value: item, source: "\(source):\(doc.line)")) }
        }
    }

    private mutating func expand(_ path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            unreadable.append("\(path): no such file or directory")
            return []
        }
        guard isDirectory.boolValue else { return [path] }
        let entries = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []
        return entries.filter { [".yaml", ".yml", ".json"].contains(where: $0.hasSuffix) }.sorted()
            .map { (path as NSString).appendingPathComponent($0) }
    }

    /// The object of `kind` named `name` in `namespace` (objects that name no namespace count as in
    /// `defaultNamespace`), if the manifests hold one.
    public func object(kind: String, namespace: String, name: String, defaultNamespace: String = "default") -> Object? {
        objects.first { $0.kind == kind && $0.name == name && ($0.namespace ?? defaultNamespace) == namespace }
    }
}
