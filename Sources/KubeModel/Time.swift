import Foundation

/// A Kubernetes `metav1.Time`: an instant with second precision, written as RFC 3339 in UTC
/// (`2024-03-05T07:08:09Z`).
///
/// Sub-second parts are dropped on creation so that a value compared before and after a round trip
/// through the API server is equal (reference 1.12).
public struct Time: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Whole seconds since the Unix epoch.
    public var unixSeconds: Int64

    public init(unixSeconds: Int64) { self.unixSeconds = unixSeconds }

    public init(_ date: Date) {
        unixSeconds = Int64(date.timeIntervalSince1970.rounded(.down))
    }

    public var date: Date { Date(timeIntervalSince1970: TimeInterval(unixSeconds)) }

    public static func < (lhs: Time, rhs: Time) -> Bool { lhs.unixSeconds < rhs.unixSeconds }

    public func adding(seconds: Int64) -> Time { Time(unixSeconds: unixSeconds + seconds) }

    /// RFC 3339 in UTC with second precision.
    public var description: String {
        let c = CivilTime(unixSeconds: unixSeconds)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year, c.month, c.day, c.hour, c.minute, c.second)
    }

    /// Parses RFC 3339 (`2024-03-05T07:08:09Z`, `2024-03-05T15:08:09.123+08:00`); fractions are dropped.
    public init?(rfc3339 text: String) {
        let s = Array(text.utf8)
        func num(_ r: Range<Int>) -> Int? {
            guard r.upperBound <= s.count else { return nil }
            var v = 0
            for i in r {
                guard (48...57).contains(s[i]) else { return nil }
                v = v * 10 + Int(s[i] - 48)
            }
            return v
        }
        guard s.count >= 20, let y = num(0..<4), s[4] == 45, let mo = num(5..<7), s[7] == 45, let d = num(8..<10),
            s[10] == 84 || s[10] == 116 || s[10] == 32, let h = num(11..<13), s[13] == 58, let mi = num(14..<16),
            s[16] == 58, let se = num(17..<19)
        else { return nil }
        guard (1...12).contains(mo), (1...CivilTime.daysInMonth(year: y, month: mo)).contains(d), h < 24, mi < 60, se < 61
        else { return nil }
        var i = 19
        if i < s.count, s[i] == 46 {
            i += 1
            let start = i
            while i < s.count, (48...57).contains(s[i]) { i += 1 }
            if i == start { return nil }
        }
        guard i < s.count else { return nil }
        var offset = 0
        if s[i] == 90 || s[i] == 122 {
            i += 1
        } else if s[i] == 43 || s[i] == 45 {
            guard let oh = num(i + 1..<i + 3), s.count > i + 3, s[i + 3] == 58, let om = num(i + 4..<i + 6) else { return nil }
            offset = (oh * 3600 + om * 60) * (s[i] == 43 ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == s.count else { return nil }
        let civil = CivilTime(year: y, month: mo, day: d, hour: h, minute: mi, second: min(se, 59))
        unixSeconds = civil.unixSeconds - Int64(offset)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let t = Time(rfc3339: text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "invalid RFC 3339 time \"\(text)\"")
        }
        self = t
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A proleptic Gregorian date and time of day without a zone, with exact conversion to Unix seconds.
public struct CivilTime: Hashable, Sendable {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int

    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    /// Interprets `unixSeconds` as a wall-clock reading (UTC, or local time when an offset was added).
    public init(unixSeconds: Int64) {
        let days = Int64((Double(unixSeconds) / 86400).rounded(.down))
        var rem = unixSeconds - days * 86400
        if rem < 0 { rem += 86400 }
        let (y, m, d) = CivilTime.civil(fromDays: days)
        self.init(year: y, month: m, day: d, hour: Int(rem / 3600), minute: Int(rem % 3600 / 60), second: Int(rem % 60))
    }

    /// Seconds since the epoch of this reading taken as UTC. Out-of-range fields are normalised
    /// (month 13 is January of the next year, day 0 the last day of the previous month), like Go's time.Date.
    public var unixSeconds: Int64 {
        var y = year
        var m = month - 1
        y += m >= 0 ? m / 12 : -((-m + 11) / 12)
        m = ((m % 12) + 12) % 12
        let days = CivilTime.days(fromYear: y, month: m + 1, day: 1) + Int64(day - 1)
        return days * 86400 + Int64(hour) * 3600 + Int64(minute) * 60 + Int64(second)
    }

    /// 0 = Sunday … 6 = Saturday.
    public var weekday: Int {
        let days = CivilTime.days(fromYear: year, month: month, day: day)
        return Int(((days % 7) + 11) % 7)  // 1970-01-01 was a Thursday (4).
    }

    public static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a Gregorian date (era-based computation, valid for all years).
    static func days(fromYear year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((month + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civil(fromDays z0: Int64) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }
}
