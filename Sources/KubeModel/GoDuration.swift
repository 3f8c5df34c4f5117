import Foundation

/// A duration written as Go's `time.ParseDuration` accepts it (`72h`, `1h30m`, `300s`, `1.5h`, `-2m`),
/// the format of `maxReservedTime`, `minRetryDuration`, `retryTimeout` and `@every`.
public struct GoDuration: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    public init(seconds: Int64) { nanoseconds = seconds * 1_000_000_000 }

    public var seconds: Double { Double(nanoseconds) / 1e9 }
    public var wholeSeconds: Int64 { nanoseconds / 1_000_000_000 }

    public static func < (a: GoDuration, b: GoDuration) -> Bool { a.nanoseconds < b.nanoseconds }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var input: String
        public var reason: String
        public var description: String { "time: \(reason) \"\(input)\"" }
    }

    private static let units: [(String, Double)] = [
        ("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
    ]

    public init(parsing text: String) throws(ParseError) {
        var s = Substring(text)
        var negative = false
        if let f = s.first, f == "-" || f == "+" {
            negative = f == "-"
            s = s.dropFirst()
        }
        if s == "0" { nanoseconds = 0; return }
        if s.isEmpty { throw ParseError(input: text, reason: "invalid duration") }
        var total = 0.0
        while !s.isEmpty {
            let numberEnd = s.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? s.endIndex
            let numberText = s[s.startIndex..<numberEnd]
            guard !numberText.isEmpty, numberText != ".", numberText.filter({ $0 == "." }).count <= 1,
                let value = Double(numberText.hasPrefix(".") ? "0" + numberText : String(numberText))
            else { throw ParseError(input: text, reason: "invalid duration") }
            s = s[numberEnd...]
            let unitEnd = s.firstIndex { $0.isASCII && ($0.isNumber || $0 == ".") } ?? s.endIndex
            let unit = String(s[s.startIndex..<unitEnd])
            if unit.isEmpty { throw ParseError(input: text, reason: "missing unit in duration") }
            guard let factor = Self.units.first(where: { $0.0 == unit })?.1 else {
                throw ParseError(input: text, reason: "unknown unit \"\(unit)\" in duration")
            }
            total += value * factor
            s = s[unitEnd...]
        }
        guard total < 9.3e18 else { throw ParseError(input: text, reason: "invalid duration") }
        nanoseconds = Int64(total.rounded()) * (negative ? -1 : 1)
    }

    /// Go's `Duration.String()`: `72h0m0s`, `1m30s`, `45s`, `1.5s`, `0s`.
    public var description: String {
        if nanoseconds == 0 { return "0s" }
        let negative = nanoseconds < 0
        let n = nanoseconds.magnitude
        var out: String
        if n < 1_000_000_000 {
            if n < 1_000 { out = "\(n)ns" }
            else if n < 1_000_000 { out = Self.fraction(n, 1_000) + "µs" }
            else { out = Self.fraction(n, 1_000_000) + "ms" }
        } else {
            let totalSeconds = n / 1_000_000_000
            let h = totalSeconds / 3600
            let m = totalSeconds % 3600 / 60
            let sec = Self.fraction(n % 60_000_000_000, 1_000_000_000)
            if h > 0 { out = "\(h)h\(m)m\(sec)s" } else if m > 0 { out = "\(m)m\(sec)s" } else { out = "\(sec)s" }
        }
        return negative ? "-" + out : out
    }

    private static func fraction(_ v: UInt64, _ unit: UInt64) -> String {
        let whole = v / unit
        var frac = v % unit
        if frac == 0 { return "\(whole)" }
        var digits = String(frac)
        let width = String(unit).count - 1
        digits = String(repeating: "0", count: width - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        frac = 0
        return "\(whole).\(digits)"
    }
}
