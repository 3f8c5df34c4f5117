import Foundation

/// How much of a message a condition or an Event holds (for every kind: Backup and Restore conditions,
/// Events). A tool's whole stderr (a 6 KB traceback) made
/// `kubectl describe`, the web view and every Event unreadable and heavy; the whole output stays in the
/// Job's log. A longer message keeps its beginning (the reason, the command) and its end (the tool's
/// last error lines), cut in the middle at line boundaries where it can be.
public enum StatusText {
    /// Condition messages (status) and Event messages.
    public static let conditionLimit = 2048
    /// What Kubernetes' own event recorder keeps of a message.
    public static let eventLimit = 1024

    public static func bounded(_ text: String, limit: Int = conditionLimit) -> String {
        let bytes = Array(text.utf8)
        guard bytes.count > limit else { return text }
        let marker = "\n… (\(bytes.count) bytes in all; the whole output is in the Job's log) …\n"
        let room = max(0, limit - marker.utf8.count)
        let headRoom = room / 4
        var head = String(decoding: bytes.prefix(headRoom), as: UTF8.self)
        var tail = String(decoding: bytes.suffix(room - headRoom), as: UTF8.self)
        // Whole lines where there are some; a cut multi-byte character decodes as U+FFFD, dropped here.
        if let cut = head.lastIndex(of: "\n"), head.distance(from: head.startIndex, to: cut) > headRoom / 2 { head = String(head[..<cut]) }
        if let cut = tail.firstIndex(of: "\n"), tail.distance(from: cut, to: tail.endIndex) > (room - headRoom) / 2 { tail = String(tail[tail.index(after: cut)...]) }
        head = head.replacingOccurrences(of: "\u{FFFD}", with: "")
        tail = tail.replacingOccurrences(of: "\u{FFFD}", with: "")
        return head + marker + tail
    }
}
