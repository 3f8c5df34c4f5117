import BRModel
import Foundation
import Testing

@Suite("A schedule's health in one word")
struct ScheduleHealthTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let hour: TimeInterval = 3600

    @Test("the first that holds decides: invalid, paused, failing, late, pending, healthy", arguments: [
        (true, true, true, 1.0, nil as Double?, ScheduleHealth.invalid),
        (false, true, true, 1.0, nil, .paused),
        (false, false, true, 1.0, 0.5, .failing),
        (false, false, false, 1.0, 3.5, .late),
        (false, false, false, 1.0, 2.5, .healthy),
        (false, false, false, 1.0, nil, .pending),
        (false, false, false, 0.0, 0.5, .invalid),
    ])
    func order(invalid: Bool, paused: Bool, failing: Bool, intervalHours: Double, successAgeHours: Double?, expected: ScheduleHealth) {
        let interval = intervalHours > 0 ? intervalHours * Self.hour : nil
        let success = successAgeHours.map { Self.now.addingTimeInterval(-$0 * Self.hour) }
        let created = Self.now.addingTimeInterval(-2 * Self.hour)
        #expect(ScheduleHealth.of(invalid: invalid, paused: paused, failing: failing, interval: interval, lastSuccess: success,
                                  created: created, now: Self.now) == expected)
    }

    @Test("with no success yet, lateness counts from the schedule's creation")
    func lateSinceCreation() {
        let created = Self.now.addingTimeInterval(-4 * Self.hour)
        #expect(ScheduleHealth.of(invalid: false, paused: false, failing: false, interval: Self.hour, lastSuccess: nil, created: created,
                                  now: Self.now) == .late)
    }
}
