import BRModel
import Foundation
import KubeModel

/// Reading BR's log lines (reference 6.2, 6.5, 8.11).
public enum BRLog {
    /// A text-format line with a bracketed `ERROR`, `FATAL` or `PANIC` level; JSON lines never count.
    public static func isErrorLine(_ line: String) -> Bool {
        if line.trimmingCharacters(in: .whitespaces).hasPrefix("{") { return false }
        for level in ["[ERROR]", "[FATAL]", "[PANIC]"] where line.range(of: level, options: .caseInsensitive) != nil { return true }
        return false
    }

    /// `[progress] [step="S"] [progress=P%]` → (S, P). `P` may be empty or unparsable.
    public static func progress(_ line: String) -> (step: String, progress: String)? {
        guard let stepStart = line.range(of: "[step=\""), let progressTag = line.range(of: "[progress=", range: stepStart.upperBound..<line.endIndex)
        else { return nil }
        guard let stepEnd = line.range(of: "\"]", range: stepStart.upperBound..<progressTag.lowerBound) else { return nil }
        guard let percent = line.range(of: "%]", range: progressTag.upperBound..<line.endIndex) else { return nil }
        return (String(line[stepStart.upperBound..<stepEnd.lowerBound]), String(line[progressTag.upperBound..<percent.lowerBound]))
    }

    /// The bracketed tokens of a text log line, quotes removed (brackets inside quotes kept).
    static func tokens(_ line: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        var depth = 0
        var quoted = false
        var escaped = false
        for c in line {
            if depth > 0 {
                if escaped { current.append(c); escaped = false; continue }
                if c == "\\" && quoted { escaped = true; continue }
                if c == "\"" { quoted.toggle(); continue }
                if c == "]" && !quoted {
                    depth = 0
                    tokens.append(current)
                    current = ""
                    continue
                }
                current.append(c)
            } else if c == "[" {
                depth = 1
            }
        }
        return tokens
    }

    /// The `BR operation started` record (reference 6.2), from a text-format line only.
    public static func operation(_ line: String, now: Time) -> BROperation? {
        if line.trimmingCharacters(in: .whitespaces).hasPrefix("{") { return nil }
        let toks = tokens(line)
        guard toks.contains("BR operation started") else { return nil }
        var fields: [String: String] = [:]
        for t in toks {
            if let eq = t.firstIndex(of: "=") { fields[String(t[..<eq])] = String(t[t.index(after: eq)...]) }
        }
        guard let id = fields["operation_id"], !id.isEmpty else { return nil }
        return BROperation(operationID: id, startedAt: fields["operation_started_at"].flatMap { Time(rfc3339: $0) },
                           command: fields["command"], observedAt: toks.lazy.compactMap(parseLogTime).first ?? now)
    }

    /// The value of a `[key=value]` field of a text-format line.
    public static func value(of key: String, in line: String) -> String? {
        for t in tokens(line) where t.hasPrefix(key + "=") { return String(t.dropFirst(key.count + 1)) }
        return nil
    }

    static func parseLogTime(_ s: String) -> Time? {
        if let t = Time(rfc3339: s) { return t }
        // 2006/01/02 15:04:05.000 -07:00
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy/MM/dd HH:mm:ss.SSS xxx"
        return f.date(from: s).map(Time.init)
    }
}
