import Foundation
import KubeModel
import KubeTesting
import Testing

@testable import Cron

func utc(_ s: String) -> Date {
    // Accepts "2024-01-03T12:00:00" (UTC) with optional fraction.
    let parts = s.split(separator: ".")
    var t = Time(rfc3339: String(parts[0]) + "Z")!.date
    if parts.count == 2 { t += Double("0." + parts[1])! }
    return t
}

func iso(_ d: Date?) -> String? { d.map { Time($0).description } }

@Suite("Cron: robfig/cron v1.2.0 ParseStandard semantics")
struct CronScheduleTests {
    struct Vector: CustomTestStringConvertible, Sendable {
        var spec: String
        var earliest: String
        var now: String
        var expected: String?
        var testDescription: String { "\(spec) from \(earliest) to \(now)" }
    }

    // Reference 8.3 [derived]: the latest missed activation between earliest and now (UTC).
    static let vectors: [Vector] = [
        Vector(spec: "0 0 * * *", earliest: "2024-01-01T00:00:00", now: "2024-01-03T12:00:00", expected: "2024-01-03T00:00:00Z"),
        Vector(spec: "0 0 * * *", earliest: "2024-01-03T00:00:00", now: "2024-01-03T23:59:59", expected: nil),
        Vector(spec: "0 0 * * *", earliest: "2024-01-03T00:00:00", now: "2024-01-04T00:00:00", expected: "2024-01-04T00:00:00Z"),
        Vector(spec: "*/30 * * * *", earliest: "2024-01-01T10:00:00", now: "2024-01-01T10:29:59", expected: nil),
        Vector(spec: "*/30 * * * *", earliest: "2024-01-01T10:00:00", now: "2024-01-01T10:30:00", expected: "2024-01-01T10:30:00Z"),
        Vector(spec: "*/30 * * * *", earliest: "2024-01-01T10:00:00.5", now: "2024-01-01T11:45:00", expected: "2024-01-01T11:30:00Z"),
        Vector(spec: "0 2 * * 1", earliest: "2024-01-01T03:00:00", now: "2024-01-15T02:00:00", expected: "2024-01-15T02:00:00Z"),
        Vector(spec: "0 0 1 * 1", earliest: "2024-01-01T00:00:00", now: "2024-01-10T00:00:00", expected: "2024-01-08T00:00:00Z"),
        Vector(spec: "0 0 */2 * 1", earliest: "2024-01-01T00:00:00", now: "2024-01-10T00:00:00", expected: nil),
        Vector(spec: "* * * * *", earliest: "2024-01-01T00:00:00", now: "2024-01-01T16:40:00", expected: "2024-01-01T16:40:00Z"),
        Vector(spec: "@daily", earliest: "2024-01-01T00:00:00", now: "2024-01-01T23:00:00", expected: nil),
        Vector(spec: "@hourly", earliest: "2024-01-01T00:30:00", now: "2024-01-01T02:15:00", expected: "2024-01-01T02:00:00Z"),
        Vector(spec: "0 0 * * *", earliest: "2024-01-05T00:00:00", now: "2024-01-04T00:00:00", expected: nil),
        Vector(spec: "0 0 * * *", earliest: "2024-01-01T12:00:00", now: "2024-01-02T00:00:00", expected: "2024-01-02T00:00:00Z"),
    ]

    @Test("latest missed slot matches reference 8.3", arguments: vectors)
    func latestMissed(_ v: Vector) throws {
        let s = try CronSchedule(parsing: v.spec)
        let missed = s.missedSlots(after: utc(v.earliest), through: utc(v.now))
        #expect(iso(missed.latest) == v.expected)
    }

    @Test("exactly 1000 missed slots is within the limit; 1001 exceeds it and still gives the latest")
    func missedLimit() throws {
        let s = try CronSchedule(parsing: "* * * * *")
        let within = s.missedSlots(after: utc("2024-01-01T00:00:00"), through: utc("2024-01-01T16:40:00"))
        #expect(within.count == 1000)
        #expect(!within.exceedsLimit)
        let over = s.missedSlots(after: utc("2024-01-01T00:00:00"), through: utc("2024-01-01T16:41:00"))
        #expect(over.exceedsLimit)
        #expect(iso(over.latest) == "2024-01-01T16:41:00Z")
    }

    @Test("a schedule paused for ten years finds its latest slot without walking every slot")
    func longPause() throws {
        let s = try CronSchedule(parsing: "*/5 * * * *")
        let missed = s.missedSlots(after: utc("2014-01-01T00:00:00"), through: utc("2024-06-01T10:07:00"))
        #expect(missed.exceedsLimit)
        #expect(missed.count == 1001)
        #expect(iso(missed.latest) == "2024-06-01T10:05:00Z")
    }

    @Test("every 2s adds the delay to the whole second, as robfig's constant delay does")
    func every() throws {
        let s = try CronSchedule(parsing: "@every 2s")
        #expect(iso(s.next(after: utc("2024-01-01T00:00:00.7"))) == "2024-01-01T00:00:02Z")
        #expect(s.fixedInterval == 2)
        let sub = try CronSchedule(parsing: "@every 500ms")
        #expect(sub.fixedInterval == 1)
        let m = s.missedSlots(after: utc("2024-01-01T00:00:00"), through: utc("2024-01-01T00:00:07"))
        #expect(m.count == 3)
        #expect(iso(m.latest) == "2024-01-01T00:00:06Z")
        #expect(iso(s.mostRecent(atOrBefore: utc("2024-01-01T01:00:01"), anchor: utc("2024-01-01T00:00:00"))) == "2024-01-01T01:00:00Z")
    }

    @Test("descriptors fire where robfig fires them")
    func descriptors() throws {
        let t = utc("2024-03-05T07:08:09")
        #expect(iso(try CronSchedule(parsing: "@yearly").next(after: t)) == "2025-01-01T00:00:00Z")
        #expect(iso(try CronSchedule(parsing: "@annually").next(after: t)) == "2025-01-01T00:00:00Z")
        #expect(iso(try CronSchedule(parsing: "@monthly").next(after: t)) == "2024-04-01T00:00:00Z")
        #expect(iso(try CronSchedule(parsing: "@weekly").next(after: t)) == "2024-03-10T00:00:00Z")  // Sunday
        #expect(iso(try CronSchedule(parsing: "@midnight").next(after: t)) == "2024-03-06T00:00:00Z")
        #expect(iso(try CronSchedule(parsing: "@hourly").next(after: t)) == "2024-03-05T08:00:00Z")
    }

    @Test("names, ranges, steps and lists")
    func syntax() throws {
        let t = utc("2024-03-05T07:08:09")  // a Tuesday
        #expect(iso(try CronSchedule(parsing: "0 9 * * MON-fri").next(after: t)) == "2024-03-05T09:00:00Z")
        #expect(iso(try CronSchedule(parsing: "15,45 */6 * * *").next(after: t)) == "2024-03-05T12:15:00Z")
        #expect(iso(try CronSchedule(parsing: "5/20 * * * *").next(after: t)) == "2024-03-05T07:25:00Z")
        #expect(iso(try CronSchedule(parsing: "0 0 1 jan,Jul ?").next(after: t)) == "2024-07-01T00:00:00Z")
        #expect(iso(try CronSchedule(parsing: "0 0 29 2 *").next(after: t)) == "2028-02-29T00:00:00Z")
        #expect(try CronSchedule(parsing: "0 0 30 2 *").next(after: t) == nil)
    }

    @Test("bad expressions fail with robfig's messages", arguments: [
        ("61 * * * *", "End of range (61) above maximum (59): 61"),
        ("* * * *", "Expected exactly 5 fields, found 4: * * * *"),
        ("0 0 * * * *", "Expected exactly 5 fields, found 6: 0 0 * * * *"),
        ("0 0 * * 7", "End of range (7) above maximum (6): 7"),
        ("0 0 0 * *", "Beginning of range (0) below minimum (1): 0"),
        ("*/0 * * * *", "Step of range should be a positive number: */0"),
        ("5-3 * * * *", "Beginning of range (5) beyond end of range (3): 5-3"),
        ("1-2-3 * * * *", "Too many hyphens: 1-2-3"),
        ("1/2/3 * * * *", "Too many slashes: 1/2/3"),
        ("@fortnightly", "Unrecognized descriptor: @fortnightly"),
        ("", "Empty spec string"),
        ("x * * * *", "Failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"),
        ("-1 * * * *", "Failed to parse int from : strconv.Atoi: parsing \"\": invalid syntax"),
    ])
    func errors(_ spec: String, _ message: String) {
        #expect(throws: CronParseError(message: message)) { try CronSchedule(parsing: spec) }
    }

    @Test("an unparsable @every duration is an error naming it")
    func everyError() {
        #expect(throws: CronParseError.self) { try CronSchedule(parsing: "@every fortnight") }
    }
}

@Suite("Cron in a named time zone")
struct CronTimeZoneTests {
    let newYork = TimeZone(identifier: "America/New_York")!

    @Test("a wall-clock time skipped by spring-forward does not fire that day (as robfig)")
    func springForward() throws {
        let s = try CronSchedule(parsing: "30 2 * * *")
        // 2024-03-10: clocks jump from 02:00 EST to 03:00 EDT.
        #expect(iso(s.next(after: utc("2024-03-09T12:00:00"), in: newYork)) == "2024-03-11T06:30:00Z")
    }

    @Test("a wall-clock time repeated by fall-back fires on both occurrences (as robfig)")
    func fallBack() throws {
        let s = try CronSchedule(parsing: "30 1 * * *")
        // 2024-11-03: clocks go back from 02:00 EDT to 01:00 EST.
        let first = s.next(after: utc("2024-11-02T16:00:00"), in: newYork)
        #expect(iso(first) == "2024-11-03T05:30:00Z")
        #expect(iso(s.next(after: first!, in: newYork)) == "2024-11-03T06:30:00Z")
        #expect(iso(s.next(after: utc("2024-11-03T06:30:00"), in: newYork)) == "2024-11-04T06:30:00Z")
    }

    @Test("daily slots follow the zone's offset across the change")
    func dailyAcrossChange() throws {
        let s = try CronSchedule(parsing: "0 9 * * *")
        #expect(iso(s.next(after: utc("2024-03-09T15:00:00"), in: newYork)) == "2024-03-10T13:00:00Z")
        #expect(iso(s.next(after: utc("2024-03-08T15:00:00"), in: newYork)) == "2024-03-09T14:00:00Z")
        let shanghai = TimeZone(identifier: "Asia/Shanghai")!
        #expect(iso(s.next(after: utc("2024-03-05T07:08:09"), in: shanghai)) == "2024-03-06T01:00:00Z")
    }

    @Test("the most recent slot in a zone is the slot before the next one")
    func mostRecentInZone() throws {
        let s = try CronSchedule(parsing: "0 2 * * *")
        let shanghai = TimeZone(identifier: "Asia/Shanghai")!
        #expect(iso(s.mostRecent(atOrBefore: utc("2024-03-05T07:08:09"), in: shanghai)) == "2024-03-04T18:00:00Z")
    }
}


@Suite("Cron properties over generated expressions and times")
struct CronPropertyTests {
    static func field(_ r: inout SplitMix64, min: Int, max: Int) -> String {
        switch Int.random(in: 0..<6, using: &r) {
        case 0: return "*"
        case 1: return String(Int.random(in: min...max, using: &r))
        case 2:
            let a = Int.random(in: min...max, using: &r)
            return "\(a)-\(Int.random(in: a...max, using: &r))"
        case 3: return "*/\(Int.random(in: 1...Swift.max(1, (max - min) / 2), using: &r))"
        case 4: return "\(Int.random(in: min...max, using: &r)),\(Int.random(in: min...max, using: &r))"
        default:
            let a = Int.random(in: min...max, using: &r)
            return "\(a)/\(Int.random(in: 1...5, using: &r))"
        }
    }

    static func expression(_ r: inout SplitMix64) -> String {
        [field(&r, min: 0, max: 59), field(&r, min: 0, max: 23), field(&r, min: 1, max: 31), field(&r, min: 1, max: 12),
         field(&r, min: 0, max: 6)].joined(separator: " ")
    }

    @Test("next is strictly later, matches, and skips no matching minute; mostRecent brackets the time")
    func properties() throws {
        var r = SplitMix64(state: 20_261_123)
        var checked = 0
        for _ in 0..<400 {
            let spec = Self.expression(&r)
            let s = try CronSchedule(parsing: spec)
            for _ in 0..<5 {
                let t = Date(timeIntervalSince1970: Double(Int64.random(in: 946_684_800...2_000_000_000, using: &r)) + Double.random(in: 0..<1, using: &r))
                guard let n = s.next(after: t) else { continue }
                checked += 1
                #expect(n > t, "\(spec): next(\(t)) = \(n) is not later")
                #expect(s.matches(n), "\(spec): next \(n) does not match the fields")
                // No activation lies between t and next(t): check every minute start when the gap is short.
                if n.timeIntervalSince(t) < 86400 {
                    var m = (t.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60
                    while m < n.timeIntervalSince1970 {
                        #expect(!s.matches(Date(timeIntervalSince1970: m)), "\(spec): \(Time(Date(timeIntervalSince1970: m))) skipped")
                        m += 60
                    }
                }
                let p = try #require(s.mostRecent(atOrBefore: n), "\(spec): no most recent slot at \(n)")
                #expect(p == n, "\(spec): mostRecent(next(t)) != next(t)")
                if let before = s.mostRecent(atOrBefore: t) {
                    #expect(before <= t)
                    #expect(s.next(after: before).map { $0 > t } ?? false, "\(spec): a slot lies between mostRecent(t) and t")
                }
            }
        }
        #expect(checked > 1000)
    }
}
