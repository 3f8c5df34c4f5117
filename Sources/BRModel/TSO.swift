import Foundation
import KubeModel

/// TiDB timestamp-oracle values and the timestamp strings the API accepts (reference 6.4.4).
public enum TSO {
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var input: String
        public var description: String {
            "cannot parse ts string \(input), err: expected a TSO or a time as 'YYYY-MM-DD HH:MM:SS' or RFC 3339"
        }
    }

    /// `physical_ms << 18`.
    public static func fromUnixMilliseconds(_ ms: Int64) -> UInt64 { UInt64(ms) << 18 }
    public static func unixMilliseconds(_ tso: UInt64) -> Int64 { Int64(tso >> 18) }
    /// The second-granularity form used by schedule retention: `(sec << 18) * 1000`.
    public static func fromUnixSeconds(_ s: Int64) -> UInt64 { (UInt64(s) << 18) * 1000 }

    /// Empty → 0; a decimal number → TSO; `YYYY-MM-DD HH:MM:SS` in `zone`; RFC 3339.
    public static func parse(_ s: String, zone: TimeZone = .current) throws(ParseError) -> UInt64 {
        if s.isEmpty { return 0 }
        if s.allSatisfy(\.isASCII), s.allSatisfy(\.isNumber), let v = UInt64(s) { return v }
        if let t = parseDateTime(s, zone: zone) { return fromUnixMilliseconds(t * 1000) }
        if let t = Time(rfc3339: s) { return fromUnixMilliseconds(t.unixSeconds * 1000) }
        throw ParseError(input: s)
    }

    static func parseDateTime(_ s: String, zone: TimeZone) -> Int64? {
        let parts = s.split(separator: " ")
        guard parts.count == 2 else { return nil }
        let d = parts[0].split(separator: "-").compactMap { Int($0) }
        let t = parts[1].split(separator: ":").compactMap { Int($0) }
        guard d.count == 3, t.count == 3, parts[0].count == 10, parts[1].count == 8, (1...12).contains(d[1]),
            (1...CivilTime.daysInMonth(year: d[0], month: d[1])).contains(d[2]), t[0] < 24, t[1] < 60, t[2] < 60
        else { return nil }
        let local = CivilTime(year: d[0], month: d[1], day: d[2], hour: t[0], minute: t[1], second: t[2]).unixSeconds
        let offset = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(local))))
        return local - offset
    }
}
