import Foundation
import KubeModel

extension CronSchedule {
    /// The first activation strictly after `date`, evaluated on the wall clock of `zone`; `nil` when
    /// there is none within five years (an impossible date such as 30 February).
    ///
    /// This follows robfig/cron v1.2.0 step by step, including how Go's `time.Date` resolves wall-clock
    /// readings that a daylight-saving change skips or repeats, so that schedules fire at the same
    /// instants as under TiDB Operator.
    public func next(after date: Date, in zone: TimeZone = TimeZone(identifier: "UTC")!) -> Date? {
        // Round up to the next whole second, as robfig does.
        let start = Int64(date.timeIntervalSince1970.rounded(.down)) + 1
        switch kind {
        case .every(let delay):
            return Date(timeIntervalSince1970: TimeInterval(start - 1 + delay))
        case .fields(let f):
            return nextSlot(f, from: start, zone: WallClock(zone)).map { Date(timeIntervalSince1970: TimeInterval($0)) }
        }
    }

    /// The first activation strictly after `date` on the schedule's own grid: for `@every`, the grid of
    /// `anchor` (a slot that was due), so that one late run does not shift every later slot; for field
    /// schedules, which are absolute, the same as `next(after:)`.
    public func next(after date: Date, onGridOf anchor: Date?, in zone: TimeZone = TimeZone(identifier: "UTC")!) -> Date? {
        guard case .every(let delay) = kind, let anchor else { return next(after: date, in: zone) }
        let a = Int64(anchor.timeIntervalSince1970.rounded(.down))
        let t = Int64(date.timeIntervalSince1970.rounded(.down))
        guard t >= a else { return Date(timeIntervalSince1970: TimeInterval(a + delay)) }
        return Date(timeIntervalSince1970: TimeInterval(a + ((t - a) / delay + 1) * delay))
    }

    /// The time between the next two activations after `date` (what "every" means for alerts and the
    /// web view's health), or nil when there are not two.
    public func interval(after date: Date, in zone: TimeZone = TimeZone(identifier: "UTC")!) -> TimeInterval? {
        guard let a = next(after: date, in: zone), let b = next(after: a, in: zone) else { return nil }
        return b.timeIntervalSince(a)
    }

    /// The latest activation at or before `date`, or `nil` if there is none in the five years before it.
    /// For `@every` schedules, which have no fixed phase, activations are counted from `anchor`.
    public func mostRecent(atOrBefore date: Date, anchor: Date? = nil,
                           in zone: TimeZone = TimeZone(identifier: "UTC")!) -> Date? {
        let t = Int64(date.timeIntervalSince1970.rounded(.down))
        if case .every(let delay) = kind {
            guard let anchor else { return nil }
            let a = Int64(anchor.timeIntervalSince1970.rounded(.down))
            guard t >= a + delay else { return nil }
            return Date(timeIntervalSince1970: TimeInterval(a + (t - a) / delay * delay))
        }
        // Look back through widening windows: the first window that contains an activation gives the
        // latest one by walking forward inside it.
        var window: Int64 = 3600
        while window <= 6 * 366 * 86400 {
            if let first = next(after: Date(timeIntervalSince1970: TimeInterval(t - window)), in: zone),
                Int64(first.timeIntervalSince1970) <= t
            {
                var latest = first
                while let n = next(after: latest, in: zone), Int64(n.timeIntervalSince1970) <= t { latest = n }
                return latest
            }
            window *= 4
        }
        return nil
    }

    /// Activations after `earliest` and at or before `now`: how many (counting stops at `limit + 1`)
    /// and the latest. The latest is found directly, so a schedule paused for years costs no more than
    /// one that missed a single slot.
    public func missedSlots(after earliest: Date, through now: Date, limit: Int = 1000,
                            in zone: TimeZone = TimeZone(identifier: "UTC")!) -> MissedSlots {
        guard earliest <= now else { return MissedSlots(count: 0, latest: nil, exceedsLimit: false) }
        var count = 0
        var t = earliest
        while count <= limit, let n = next(after: t, in: zone), n <= now {
            count += 1
            t = n
        }
        let exceeds = count > limit
        let latest = exceeds ? mostRecent(atOrBefore: now, anchor: earliest, in: zone) : (count > 0 ? t : nil)
        return MissedSlots(count: count, latest: latest, exceedsLimit: exceeds)
    }

    /// Whether `date` (whole second) is an activation on the wall clock of `zone`.
    public func matches(_ date: Date, in zone: TimeZone = TimeZone(identifier: "UTC")!) -> Bool {
        guard case .fields(let f) = kind else { return false }
        let c = WallClock(zone).civil(Int64(date.timeIntervalSince1970.rounded(.down)))
        return f.second & (1 << UInt64(c.second)) != 0 && f.minute & (1 << UInt64(c.minute)) != 0
            && f.hour & (1 << UInt64(c.hour)) != 0 && f.month & (1 << UInt64(c.month)) != 0 && dayMatches(f, c)
    }

    private func dayMatches(_ f: FieldSet, _ c: CivilTime) -> Bool {
        let domMatch = f.dom & (1 << UInt64(c.day)) != 0
        let dowMatch = f.dow & (1 << UInt64(c.weekday)) != 0
        if f.dom & Self.starBit != 0 || f.dow & Self.starBit != 0 { return domMatch && dowMatch }
        return domMatch || dowMatch
    }

    private func nextSlot(_ f: FieldSet, from start: Int64, zone: WallClock) -> Int64? {
        var t = start
        var added = false
        let yearLimit = zone.civil(t).year + 5
        wrap: while true {
            var c = zone.civil(t)
            if c.year > yearLimit { return nil }
            while f.month & (1 << UInt64(c.month)) == 0 {
                if !added {
                    added = true
                    t = zone.date(CivilTime(year: c.year, month: c.month, day: 1))
                    c = zone.civil(t)
                }
                t = zone.date(CivilTime(year: c.year, month: c.month + 1, day: c.day, hour: c.hour, minute: c.minute, second: c.second))
                c = zone.civil(t)
                if c.month == 1 { continue wrap }
            }
            while !dayMatches(f, c) {
                if !added {
                    added = true
                    t = zone.date(CivilTime(year: c.year, month: c.month, day: c.day))
                    c = zone.civil(t)
                }
                t = zone.date(CivilTime(year: c.year, month: c.month, day: c.day + 1, hour: c.hour, minute: c.minute, second: c.second))
                c = zone.civil(t)
                if c.day == 1 { continue wrap }
            }
            while f.hour & (1 << UInt64(c.hour)) == 0 {
                if !added {
                    added = true
                    t = zone.date(CivilTime(year: c.year, month: c.month, day: c.day, hour: c.hour))
                }
                t += 3600
                c = zone.civil(t)
                if c.hour == 0 { continue wrap }
            }
            while f.minute & (1 << UInt64(c.minute)) == 0 {
                if !added {
                    added = true
                    t -= Self.floorMod(t, 60)
                }
                t += 60
                c = zone.civil(t)
                if c.minute == 0 { continue wrap }
            }
            while f.second & (1 << UInt64(c.second)) == 0 {
                if !added {
                    added = true
                }
                t += 1
                c = zone.civil(t)
                if c.second == 0 { continue wrap }
            }
            return t
        }
    }

    static func floorMod(_ a: Int64, _ b: Int64) -> Int64 { ((a % b) + b) % b }
}

/// The result of `CronSchedule.missedSlots`.
public struct MissedSlots: Hashable, Sendable {
    /// Activations counted, at most `limit + 1`.
    public var count: Int
    /// The latest activation at or before `now`, if any.
    public var latest: Date?
    /// More than `limit` activations were missed.
    public var exceedsLimit: Bool
}

/// Conversions between instants and wall-clock readings in one zone, with Go's rules.
struct WallClock {
    let zone: TimeZone
    let isUTC: Bool

    init(_ zone: TimeZone) {
        self.zone = zone
        isUTC = zone.secondsFromGMT() == 0 && (zone.identifier == "UTC" || zone.identifier == "GMT")
    }

    func offset(_ unix: Int64) -> Int64 {
        isUTC ? 0 : Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(unix))))
    }

    func civil(_ unix: Int64) -> CivilTime { CivilTime(unixSeconds: unix + offset(unix)) }

    /// Go's `time.Date`: fields are normalised; the offset is the one in force at the reading taken as
    /// UTC, unless the resulting instant falls outside that offset's period, in which case the offset in
    /// force at that instant is used. A reading skipped by a change therefore lands one offset-difference
    /// earlier, and a repeated reading resolves to its first occurrence.
    func date(_ c: CivilTime) -> Int64 {
        let unix = c.unixSeconds
        var off = offset(unix)
        if off != 0 {
            let utc = unix - off
            let there = offset(utc)
            if there != off { off = there }
        }
        return unix - off
    }
}
