import BRModel
import Foundation
import KubeModel

/// What we read of BR's `backupmeta` (kvproto `backup.BackupMeta`): the versions, the declared size,
/// and the data files, either inline (`files`, field 4) or in the split format (`file_index`, field 13,
/// whose `meta_files` name further MetaFile objects in storage).
public struct BackupMetaSummary: Sendable, Equatable {
    public var startVersion: UInt64 = 0
    public var endVersion: UInt64 = 0
    /// `backup_size` (field 25), written by newer BR.
    public var backupSize: UInt64 = 0
    /// Sum of `size` of the inline files.
    public var inlineFilesSize: UInt64 = 0
    /// Sum of `size` of the data files listed in `file_index`.
    public var indexedFilesSize: UInt64 = 0
    /// Names of further MetaFile objects (split format).
    public var metaFileNames: [String] = []
    public var encodedSize: Int = 0
    public var clusterVersion: String = ""
    /// Databases of the inline schemas (`schemas`, field 7, and those inline in `schema_index`, field 14).
    public var databases: [String] = []
    /// Names of the MetaFile objects in storage that hold further schemas (`schema_index.meta_files`).
    public var schemaMetaFileNames: [String] = []

    public init() {}

    public static func parse(_ data: Data) throws -> BackupMetaSummary {
        var summary = BackupMetaSummary()
        summary.encodedSize = data.count
        var r = ProtoReader(data)
        while !r.atEnd {
            let f = try r.field()
            switch f.number {
            case 2: summary.clusterVersion = String(decoding: f.bytes ?? [], as: UTF8.self)
            case 4: summary.inlineFilesSize += try fileSize(f.bytes ?? [])
            case 5: summary.startVersion = f.varint ?? 0
            case 6: summary.endVersion = f.varint ?? 0
            case 13:
                let (size, names) = try metaFile(f.bytes ?? [])
                summary.indexedFilesSize += size
                summary.metaFileNames += names
            case 25: summary.backupSize = f.varint ?? 0
            case 7: if let db = try database(ofSchema: f.bytes ?? []) { summary.databases.append(db) }
            case 14:
                let (dbs, names) = try schemaMetaFile(f.bytes ?? [])
                summary.databases += dbs
                summary.schemaMetaFileNames += names
            default: break
            }
        }
        return summary
    }

    /// `File.size` (field 11) and `File.name` (field 1).
    static func file(_ bytes: ArraySlice<UInt8>) throws -> (name: String, size: UInt64) {
        var r = ProtoReader(bytes)
        var name = ""
        var size: UInt64 = 0
        while !r.atEnd {
            let f = try r.field()
            if f.number == 1 { name = String(decoding: f.bytes ?? [], as: UTF8.self) }
            if f.number == 11 { size = f.varint ?? 0 }
        }
        return (name, size)
    }

    static func fileSize(_ bytes: ArraySlice<UInt8>) throws -> UInt64 { try file(bytes).size }

    /// A MetaFile's schemas (field 3): their databases, and the names of nested meta files (field 1).
    public static func schemaMetaFile(_ bytes: ArraySlice<UInt8>) throws -> (databases: [String], metaFiles: [String]) {
        var r = ProtoReader(bytes)
        var databases: [String] = []
        var names: [String] = []
        while !r.atEnd {
            let f = try r.field()
            if f.number == 1 { names.append(try file(f.bytes ?? []).name) }
            if f.number == 3, let db = try database(ofSchema: f.bytes ?? []) { databases.append(db) }
        }
        return (databases, names)
    }

    /// `Schema.db` (field 1): TiDB's DBInfo as JSON, whose `db_name.O` is the database's name.
    static func database(ofSchema bytes: ArraySlice<UInt8>) throws -> String? {
        var r = ProtoReader(bytes)
        while !r.atEnd {
            let f = try r.field()
            if f.number == 1, let json = f.bytes, let info = try? JSONParser.parse(String(decoding: json, as: UTF8.self)) {
                return info.value(at: ["db_name", "O"])?.stringValue ?? info.value(at: ["db_name", "L"])?.stringValue
            }
        }
        return nil
    }

    /// A MetaFile: data file sizes (field 2) and the names of nested meta files (field 1).
    public static func metaFile(_ bytes: ArraySlice<UInt8>) throws -> (dataSize: UInt64, metaFiles: [String]) {
        var r = ProtoReader(bytes)
        var size: UInt64 = 0
        var names: [String] = []
        while !r.atEnd {
            let f = try r.field()
            if f.number == 1 { names.append(try file(f.bytes ?? []).name) }
            if f.number == 2 { size += try fileSize(f.bytes ?? []) }
        }
        return (size, names)
    }
}

/// Dumpling's `metadata` file: the `Pos:` line holds the snapshot TSO (reference 6.5).
public func dumplingCommitTs(_ metadata: String) -> String? {
    for line in metadata.split(whereSeparator: \.isNewline) where line.contains("Pos") {
        let parts = line.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 2 { return parts[1].trimmingCharacters(in: .whitespaces) }
    }
    return nil
}
