import Foundation
import KubeModel

/// What TiKV and PD say about a log backup task, read from PD's etcd under `/tidb/br-stream/`
/// (reference 3.8, vectors 8.16).
public enum LogBackupKernel {
    /// The etcd keys of a task, as BR lays them out (`br/pkg/streamhelper`): the task info (a protobuf
    /// `StreamBackupTaskInfo`), the global checkpoint the advancer writes (`…/checkpoint/<task>/central_global`,
    /// 8 bytes big-endian), the store checkpoints of older TiKV under the same prefix, the pause record and
    /// the last errors. Exact keys and prefixes end with the task's name and a `/`, so task `lb` never reads
    /// the keys of `lb-2` (TiDB Operator's prefix reads did).
    public static func infoKey(_ task: String) -> String { "/tidb/br-stream/info/\(task)" }
    public static func globalCheckpointKey(_ task: String) -> String { "/tidb/br-stream/checkpoint/\(task)/central_global" }
    public static func checkpointPrefix(_ task: String) -> String { "/tidb/br-stream/checkpoint/\(task)/" }
    public static func pauseKey(_ task: String) -> String { "/tidb/br-stream/pause/\(task)" }
    public static func lastErrorPrefix(_ task: String) -> String { "/tidb/br-stream/last-error/\(task)/" }

    /// What the operator reads of a task's info: kvproto `backup.StreamBackupTaskInfo` (storage 1,
    /// start_ts 2, end_ts 3, name 4, table_filter 5).
    public struct TaskInfo: Sendable, Equatable {
        public var name = ""
        public var startTs: UInt64 = 0
        public var endTs: UInt64 = 0
        public var tableFilter: [String] = []
        public init(name: String = "", startTs: UInt64 = 0, endTs: UInt64 = 0, tableFilter: [String] = []) {
            self.name = name
            self.startTs = startTs
            self.endTs = endTs
            self.tableFilter = tableFilter
        }

        public init(protobuf bytes: [UInt8]) throws {
            var r = ProtoReader(bytes[...])
            while !r.atEnd {
                let f = try r.field()
                switch f.number {
                case 2: startTs = f.varint ?? 0
                case 3: endTs = f.varint ?? 0
                case 4: name = String(decoding: f.bytes ?? [], as: UTF8.self)
                case 5: tableFilter.append(String(decoding: f.bytes ?? [], as: UTF8.self))
                default: break
                }
            }
        }

        /// The protobuf bytes, as BR writes them (the fields read above; the storage is left out).
        public var protobuf: [UInt8] {
            var w = ProtoWriter()
            w.varint(2, startTs)
            w.varint(3, endTs)
            w.string(4, name)
            for f in tableFilter { w.string(5, f) }
            return w.bytes
        }
    }

    /// The task's checkpoint from what PD's etcd holds: the global checkpoint when the advancer has
    /// written one; else the smallest store checkpoint under the task's prefix (TiKV before the central
    /// advancer kept one per store, and the task is only as far as its slowest store); else the task's
    /// start TS, since a task nothing has advanced yet stands at its start. 0 when none is known.
    public static func taskCheckpoint(global: [UInt8]?, underPrefix: [(key: String, value: [UInt8])], info: TaskInfo?) -> UInt64 {
        let g = checkpoint(global)
        if g > 0 { return g }
        let stores = underPrefix.filter { !$0.key.hasSuffix("/central_global") && !$0.key.contains("/region/") }.map { checkpoint($0.value) }.filter { $0 > 0 }
        if let least = stores.min() { return least }
        return info?.startTs ?? 0
    }

    /// An 8-byte big-endian checkpoint; anything else is 0.
    public static func checkpoint(_ bytes: [UInt8]?) -> UInt64 {
        guard let bytes, bytes.count == 8 else { return 0 }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    public static func encodeCheckpoint(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
    }

    public enum State: String, Sendable { case running, paused }

    /// The kernel's state: paused when the pause key exists.
    public static func state(paused: Bool) -> State { paused ? .paused : .running }

    /// Whether the kernel's state is the one the sub-command asked for.
    public static func consistent(_ state: State, with command: LogSubCommand) -> Bool {
        switch state {
        case .running: return command == .start || command == .resume
        case .paused: return command == .pause
        }
    }

    /// Why a task is paused, from the pause key's value (BR's `PauseV2` JSON): `manual` for a pause a
    /// person made (an empty value as older BR wrote it, severity `REGULAR_OPERATION` as `br log pause`
    /// writes it, or `MANUAL`); otherwise the text of a `text/plain` payload, "Paused by error(store N):
    /// message" for TiKV's `brpb.StreamBackupError` payload (protobuf as TiKV writes it; JSON as TiDB
    /// Operator's tests write it is read too), `unknown` when the value is not a JSON object, `error`
    /// when the payload cannot be read.
    public static func pauseReason(_ value: [UInt8]?) -> String {
        guard let value, !value.isEmpty else { return "manual" }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(value))) as? [String: Any] else { return "unknown" }
        var fields: [String: Any] = [:]
        for (k, v) in object { fields[k.lowercased().replacingOccurrences(of: "_", with: "")] = v }
        let severity = (fields["severity"] as? String ?? "").uppercased()
        if severity == "MANUAL" || severity == "REGULAROPERATION" || severity == "REGULAR_OPERATION" { return "manual" }
        let payloadType = fields["payloadtype"] as? String ?? ""
        var payload = Data()
        if let text = fields["payload"] as? String {
            guard let decoded = Data(base64Encoded: text) else { return "error" }
            payload = decoded
        }
        guard let (mime, parameters) = parseMIME(payloadType) else { return "error" }
        switch mime {
        case "text/plain":
            return String(decoding: payload, as: UTF8.self)
        case "application/x-protobuf":
            guard parameters["messagetype"] == "brpb.StreamBackupError", let error = StreamBackupError(payload: Array(payload)) else { return "error" }
            return "Paused by error(store \(error.storeID)): \(error.message)"
        default:
            return "error"
        }
    }

    /// kvproto `backup.StreamBackupError`: happen_at 1, error_code 2, error_message 3, store_id 4.
    public struct StreamBackupError: Sendable, Equatable {
        public var happenAt: UInt64 = 0
        public var code = ""
        public var message = ""
        public var storeID: UInt64 = 0
        public init(happenAt: UInt64 = 0, code: String = "", message: String = "", storeID: UInt64 = 0) {
            self.happenAt = happenAt
            self.code = code
            self.message = message
            self.storeID = storeID
        }

        /// From protobuf; failing that, from the JSON form TiDB Operator reads; nil when neither.
        public init?(payload: [UInt8]) {
            if let decoded = try? Self.protobuf(payload), decoded.code != "" || decoded.message != "" || decoded.storeID != 0 {
                self = decoded
                return
            }
            guard let json = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] else { return nil }
            storeID = (json["store_id"] as? NSNumber)?.uint64Value ?? UInt64("\(json["store_id"] ?? "")") ?? 0
            message = json["error_message"] as? String ?? ""
            code = json["error_code"] as? String ?? ""
            happenAt = (json["happen_at"] as? NSNumber)?.uint64Value ?? 0
        }

        static func protobuf(_ bytes: [UInt8]) throws -> StreamBackupError {
            var out = StreamBackupError()
            var r = ProtoReader(bytes[...])
            while !r.atEnd {
                let f = try r.field()
                switch f.number {
                case 1: out.happenAt = f.varint ?? 0
                case 2: out.code = String(decoding: f.bytes ?? [], as: UTF8.self)
                case 3: out.message = String(decoding: f.bytes ?? [], as: UTF8.self)
                case 4: out.storeID = f.varint ?? 0
                default: break
                }
            }
            return out
        }

        /// The protobuf bytes, as TiKV writes them.
        public var protobuf: [UInt8] {
            var w = ProtoWriter()
            w.varint(1, happenAt)
            w.string(2, code)
            w.string(3, message)
            w.varint(4, storeID)
            return w.bytes
        }
    }

    /// `type/subtype; key=value; …` → (lower-cased type, parameters); nil when malformed.
    static func parseMIME(_ text: String) -> (String, [String: String])? {
        let parts = text.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let type = parts.first, type.split(separator: "/").count == 2, !type.contains(" ") else { return nil }
        var parameters: [String: String] = [:]
        for p in parts.dropFirst() where !p.isEmpty {
            guard let eq = p.firstIndex(of: "=") else { return nil }
            parameters[p[..<eq].lowercased()] = String(p[p.index(after: eq)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return (type.lowercased(), parameters)
    }
}
