import Foundation

/// A directory on a mounted volume (`spec.local`: `<mountPath>/<prefix>`).
public struct LocalStorage: BackupStorage {
    public var root: String

    public init(root: String) { self.root = root }

    public var location: String { "local://" + root }

    func path(_ key: String) throws -> String {
        let parts = key.split(separator: "/", omittingEmptySubsequences: true)
        if parts.contains("..") { throw StorageError("key \(key) leaves \(location)") }
        return parts.isEmpty ? root : root + "/" + parts.joined(separator: "/")
    }

    public func listPage(prefix: String, token: String?, limit: Int) async throws -> StorageListPage {
        let all = try allObjects().filter { $0.key.hasPrefix(prefix) }
        var start = 0
        if let token {
            // The token is the last key handed out: resume strictly after it, so objects deleted in
            // between do not shift the listing.
            start = all.firstIndex { $0.key > token } ?? all.count
        }
        let page = Array(all[start..<min(all.count, start + limit)])
        let more = start + limit < all.count
        return StorageListPage(objects: page, next: more ? page.last?.key : nil)
    }

    func allObjects() throws -> [StoredObject] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else { return [] }
        var objects: [StoredObject] = []
        guard let walker = fm.enumerator(at: URL(fileURLWithPath: root), includingPropertiesForKeys: [.isRegularFileKey, .fileSizeKey]) else { return [] }
        let rootPath = URL(fileURLWithPath: root).standardizedFileURL.path
        for case let url as URL in walker {
            let values = try url.resourceValues(forKeys: [.isRegularFileKey, .fileSizeKey])
            guard values.isRegularFile == true else { continue }
            var rel = url.standardizedFileURL.path
            if rel.hasPrefix(rootPath) { rel.removeFirst(rootPath.count) }
            while rel.hasPrefix("/") { rel.removeFirst() }
            objects.append(StoredObject(key: rel, size: Int64(values.fileSize ?? 0)))
        }
        return objects.sorted { $0.key < $1.key }
    }

    public func read(_ key: String) async throws -> Data {
        let p = try path(key)
        guard let data = FileManager.default.contents(atPath: p) else { throw StorageError("\(location)/\(key) does not exist") }
        return data
    }

    public func size(of key: String) async throws -> Int64? {
        let p = try path(key)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: p), attributes[.type] as? FileAttributeType == .typeRegular else { return nil }
        return (attributes[.size] as? NSNumber)?.int64Value
    }

    public func write(_ key: String, data: Data) async throws {
        let p = try path(key)
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: p), options: .atomic)
    }

    public func upload(file: String, to key: String) async throws {
        let p = try path(key)
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if FileManager.default.fileExists(atPath: p) { try FileManager.default.removeItem(atPath: p) }
        try FileManager.default.copyItem(atPath: file, toPath: p)
    }

    public func download(_ key: String, to file: String) async throws {
        let p = try path(key)
        guard FileManager.default.fileExists(atPath: p) else { throw StorageError("\(location)/\(key) does not exist") }
        if FileManager.default.fileExists(atPath: file) { try FileManager.default.removeItem(atPath: file) }
        try FileManager.default.copyItem(atPath: p, toPath: file)
    }

    public func delete(_ key: String) async throws {
        let p = try path(key)
        do { try FileManager.default.removeItem(atPath: p) } catch CocoaError.fileNoSuchFile {} catch let e as NSError where e.code == NSFileNoSuchFileError {}
        // Remove directories left empty, up to the root.
        var dir = (p as NSString).deletingLastPathComponent
        while dir.count > root.count, (try? FileManager.default.contentsOfDirectory(atPath: dir))?.isEmpty == true {
            try? FileManager.default.removeItem(atPath: dir)
            dir = (dir as NSString).deletingLastPathComponent
        }
    }
}
