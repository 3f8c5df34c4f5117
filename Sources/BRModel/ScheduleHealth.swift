import Foundation

/// A schedule's health in one word, as `kubectl get bks` shows it (`status.health`) and the web view
/// draws it: decided here once, from what the schedule's status and backups say.
public enum ScheduleHealth: String, Codable, Sendable, CaseIterable {
    case healthy = "Healthy"
    case late = "Late"
    case failing = "Failing"
    case paused = "Paused"
    case pending = "Pending"
    case invalid = "Invalid"

    /// Late: no successful backup (since the schedule was made) for three intervals — two missed
    /// slots and the time one run may take.
    public static func isLate(lastSuccess: Date?, created: Date, interval: TimeInterval, now: Date) -> Bool {
        now.timeIntervalSince(lastSuccess ?? created) > 3 * interval
    }

    /// The first that holds: invalid (the Invalid condition, or a cron without an interval), paused,
    /// failing (the newest finished backups failed), late, pending (nothing has succeeded yet), healthy.
    public static func of(invalid: Bool, paused: Bool, failing: Bool, interval: TimeInterval?, lastSuccess: Date?, created: Date,
                          now: Date) -> ScheduleHealth {
        if invalid { return .invalid }
        if paused { return .paused }
        if failing { return .failing }
        guard let interval else { return .invalid }
        if isLate(lastSuccess: lastSuccess, created: created, interval: interval, now: now) { return .late }
        return lastSuccess == nil ? .pending : .healthy
    }
}
