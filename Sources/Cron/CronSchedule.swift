import Foundation
import KubeModel

/// An error in a cron expression, worded as robfig/cron v1.2.0 words it (TiDB Operator surfaces these
/// messages unchanged).
public struct CronParseError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public var description: String { message }
}

/// A cron schedule with robfig/cron v1.2.0 `ParseStandard` semantics: five fields (minute, hour,
/// day of month, month, day of week; seconds fixed at 0), names, ranges, steps, the `@yearly` …
/// `@hourly` descriptors and `@every <duration>`.
public struct CronSchedule: Hashable, Sendable, CustomStringConvertible {
    enum Kind: Hashable, Sendable {
        case fields(FieldSet)
        /// Whole seconds between activations, at least one.
        case every(Int64)
    }

    struct FieldSet: Hashable, Sendable {
        var second: UInt64
        var minute: UInt64
        var hour: UInt64
        var dom: UInt64
        var month: UInt64
        var dow: UInt64
    }

    let kind: Kind
    public let expression: String

    public var description: String { expression }

    /// The fixed interval of an `@every` schedule.
    public var fixedInterval: Int64? {
        if case .every(let d) = kind { return d }
        return nil
    }

    static let starBit: UInt64 = 1 << 63

    struct Bounds {
        let min: UInt64
        let max: UInt64
        let names: [String: UInt64]
    }

    static let seconds = Bounds(min: 0, max: 59, names: [:])
    static let minutes = Bounds(min: 0, max: 59, names: [:])
    static let hours = Bounds(min: 0, max: 23, names: [:])
    static let dom = Bounds(min: 1, max: 31, names: [:])
    static let months = Bounds(min: 1, max: 12, names: [
        "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
        "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
    ])
    static let dow = Bounds(min: 0, max: 6, names: ["sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6])

    public init(parsing spec: String) throws(CronParseError) {
        expression = spec
        guard !spec.isEmpty else { throw CronParseError(message: "Empty spec string") }
        if spec.hasPrefix("@") {
            kind = try Self.descriptor(spec)
            return
        }
        let fields = spec.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\u{0B}" || $0 == "\u{0C}" })
        guard fields.count == 5 else {
            throw CronParseError(message: "Expected exactly 5 fields, found \(fields.count): \(spec)")
        }
        kind = .fields(FieldSet(
            second: 1 << Self.seconds.min,
            minute: try Self.field(fields[0], Self.minutes),
            hour: try Self.field(fields[1], Self.hours),
            dom: try Self.field(fields[2], Self.dom),
            month: try Self.field(fields[3], Self.months),
            dow: try Self.field(fields[4], Self.dow)))
    }

    private static func all(_ b: Bounds) -> UInt64 { bits(b.min, b.max, 1) | starBit }

    private static func bits(_ lo: UInt64, _ hi: UInt64, _ step: UInt64) -> UInt64 {
        if step == 1 { return ~(UInt64.max << (hi + 1)) & (UInt64.max << lo) }
        var out: UInt64 = 0
        var i = lo
        while i <= hi { out |= 1 << i; i += step }
        return out
    }

    private static func descriptor(_ spec: String) throws(CronParseError) -> Kind {
        let first = { (b: Bounds) in UInt64(1) << b.min }
        switch spec {
        case "@yearly", "@annually":
            return .fields(FieldSet(second: first(seconds), minute: first(minutes), hour: first(hours), dom: first(dom),
                                    month: first(months), dow: all(dow)))
        case "@monthly":
            return .fields(FieldSet(second: first(seconds), minute: first(minutes), hour: first(hours), dom: first(dom),
                                    month: all(months), dow: all(dow)))
        case "@weekly":
            return .fields(FieldSet(second: first(seconds), minute: first(minutes), hour: first(hours), dom: all(dom),
                                    month: all(months), dow: first(dow)))
        case "@daily", "@midnight":
            return .fields(FieldSet(second: first(seconds), minute: first(minutes), hour: first(hours), dom: all(dom),
                                    month: all(months), dow: all(dow)))
        case "@hourly":
            return .fields(FieldSet(second: first(seconds), minute: first(minutes), hour: all(hours), dom: all(dom),
                                    month: all(months), dow: all(dow)))
        default:
            break
        }
        let everyPrefix = "@every "
        if spec.hasPrefix(everyPrefix) {
            let text = String(spec.dropFirst(everyPrefix.count))
            let duration: GoDuration
            do {
                duration = try GoDuration(parsing: text)
            } catch {
                throw CronParseError(message: "Failed to parse duration \(spec): \(error)")
            }
            // robfig rounds the delay down to whole seconds and never goes below one second.
            return .every(max(1, duration.nanoseconds / 1_000_000_000))
        }
        throw CronParseError(message: "Unrecognized descriptor: \(spec)")
    }

    private static func field(_ text: Substring, _ b: Bounds) throws(CronParseError) -> UInt64 {
        var out: UInt64 = 0
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            out |= try range(String(part), b)
        }
        return out
    }

    private static func range(_ expr: String, _ b: Bounds) throws(CronParseError) -> UInt64 {
        let rangeAndStep = expr.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let lowAndHigh = rangeAndStep[0].split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        var start: UInt64
        var end: UInt64
        var extra: UInt64 = 0
        if lowAndHigh[0] == "*" || lowAndHigh[0] == "?" {
            start = b.min
            end = b.max
            extra = starBit
        } else {
            start = try intOrName(lowAndHigh[0], b.names)
            switch lowAndHigh.count {
            case 1: end = start
            case 2: end = try intOrName(lowAndHigh[1], b.names)
            default: throw CronParseError(message: "Too many hyphens: \(expr)")
            }
        }
        var step: UInt64 = 1
        switch rangeAndStep.count {
        case 1: break
        case 2:
            step = try number(rangeAndStep[1])
            // "N/step" means "N-max/step".
            if lowAndHigh.count == 1 { end = b.max }
        default:
            throw CronParseError(message: "Too many slashes: \(expr)")
        }
        if start < b.min { throw CronParseError(message: "Beginning of range (\(start)) below minimum (\(b.min)): \(expr)") }
        if end > b.max { throw CronParseError(message: "End of range (\(end)) above maximum (\(b.max)): \(expr)") }
        if start > end { throw CronParseError(message: "Beginning of range (\(start)) beyond end of range (\(end)): \(expr)") }
        if step == 0 { throw CronParseError(message: "Step of range should be a positive number: \(expr)") }
        return bits(start, end, step) | extra
    }

    private static func intOrName(_ s: String, _ names: [String: UInt64]) throws(CronParseError) -> UInt64 {
        if let v = names[s.lowercased()] { return v }
        return try number(s)
    }

    private static func number(_ s: String) throws(CronParseError) -> UInt64 {
        let digits = s.hasPrefix("+") ? String(s.dropFirst()) : s
        guard let v = Int64(digits), !digits.isEmpty, !digits.hasPrefix("+") else {
            throw CronParseError(message: "Failed to parse int from \(s): strconv.Atoi: parsing \"\(s)\": invalid syntax")
        }
        if v < 0 { throw CronParseError(message: "Negative number (\(v)) not allowed: \(s)") }
        return UInt64(v)
    }
}
