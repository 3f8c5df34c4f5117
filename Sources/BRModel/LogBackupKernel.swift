import Foundation
import KubeModel

/// What TiKV and PD say about a log backup task, read from PD's etcd under `/tidb/br-stream/`
/// (reference 3.8, vectors 8.16).
public enum LogBackupKernel {
    /// The etcd keys of a task (exact keys: TiDB Operator's prefix reads also matched `<task>-other`).
    public static func checkpointKey(_ task: String) -> String { "/tidb/br-stream/checkpoint/\(task)" }
    public static func infoKey(_ task: String) -> String { "/tidb/br-stream/info/\(task)" }
    public static func pauseKey(_ task: String) -> String { "/tidb/br-stream/pause/\(task)" }
    public static func lastErrorKey(_ task: String) -> String { "/tidb/br-stream/last-error/\(task)" }

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

    /// Why a task is paused, from the pause key's value: `manual` (empty value, or severity MANUAL),
    /// the text of a `text/plain` payload, "Paused by error(store N): message" for BR's
    /// StreamBackupError payload, `unknown` when the value is not a JSON object, `error` when the payload
    /// cannot be read.
    public static func pauseReason(_ value: [UInt8]?) -> String {
        guard let value, !value.isEmpty else { return "manual" }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(value))) as? [String: Any] else { return "unknown" }
        var fields: [String: Any] = [:]
        for (k, v) in object { fields[k.lowercased().replacingOccurrences(of: "_", with: "")] = v }
        let severity = fields["severity"] as? String ?? ""
        if severity.uppercased() == "MANUAL" { return "manual" }
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
            guard parameters["messagetype"] == "brpb.StreamBackupError",
                  let error = (try? JSONSerialization.jsonObject(with: payload)) as? [String: Any] else { return "error" }
            let store = (error["store_id"] as? NSNumber)?.stringValue ?? "\(error["store_id"] ?? "")"
            return "Paused by error(store \(store)): \(error["error_message"] as? String ?? "")"
        default:
            return "error"
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
