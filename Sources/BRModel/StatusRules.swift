import Foundation
import KubeModel

extension BackupStatus {
    /// Applies a condition with the rules of reference 1.9 and returns whether anything changed.
    ///
    /// The phase follows the condition's type, except for `Restart`, which never becomes the phase.
    /// Conditions stay unique by type, in first-insertion order. When the phase changes the entry is
    /// rewritten with the new time; when it does not, the old time is kept if the status is unchanged
    /// and "changed" is reported only if status, reason, message or time differ.
    @discardableResult
    public mutating func apply(_ incoming: BackupCondition, now: Time) -> Bool {
        var condition = incoming
        condition.message = condition.message.map { StatusText.bounded($0) }
        condition.lastTransitionTime = now
        let phaseDiffers = phase != condition.type
        if phaseDiffers && condition.type != .restart { phase = condition.type }
        var list = conditions ?? []
        guard let i = list.firstIndex(where: { $0.type == condition.type }) else {
            list.append(condition)
            conditions = list
            return true
        }
        if phaseDiffers {
            list[i] = condition
            conditions = list
            return true
        }
        let old = list[i]
        if old.status == condition.status { condition.lastTransitionTime = old.lastTransitionTime }
        list[i] = condition
        conditions = list
        return old.status != condition.status || old.reason != condition.reason || old.message != condition.message
            || old.lastTransitionTime != condition.lastTransitionTime
    }

    /// Whether a condition of `type` holds (status True).
    public func has(_ type: BackupConditionType) -> Bool {
        conditions?.contains { $0.type == type && $0.status == .true } ?? false
    }

    /// Records a step of progress (reference 6.5): a new step closes the previous one at 100%; an
    /// existing step only moves forward.
    public mutating func recordProgress(step: String, percent: Double, now: Time) {
        BRStatusMath.record(&progresses, step: step, percent: percent, now: now)
    }

    /// Records a BR operation (reference 6.5): newest first, unique by id, at most 10; empty ids ignored.
    /// Returns whether the list changed.
    @discardableResult
    public mutating func recordOperation(_ op: BROperation) -> Bool { BRStatusMath.record(&brOperations, op) }

    /// Sets the completion time and recomputes `timeTaken` from the start time.
    public mutating func complete(at time: Time) {
        timeCompleted = time
        if let start = timeStarted { timeTaken = BRStatusMath.timeTaken(from: start, to: time) }
    }
}

extension RestoreStatus {
    /// Records a BR operation, as for Backups.
    @discardableResult
    public mutating func recordOperation(_ op: BROperation) -> Bool { BRStatusMath.record(&brOperations, op) }

    /// Records a step of progress, as for Backups.
    public mutating func recordProgress(step: String, percent: Double, now: Time) {
        BRStatusMath.record(&progresses, step: step, percent: percent, now: now)
    }

    /// Applies a condition with the Restore rules of reference 1.9: the phase always follows the type
    /// (even for status False); conditions are unique by type; the old time is kept when the status is
    /// unchanged. Returns whether anything changed.
    @discardableResult
    public mutating func apply(_ incoming: RestoreCondition, now: Time) -> Bool {
        var condition = incoming
        condition.message = condition.message.map { StatusText.bounded($0) }
        condition.lastTransitionTime = now
        let phaseChanged = phase != condition.type
        phase = condition.type
        var list = conditions ?? []
        guard let i = list.firstIndex(where: { $0.type == condition.type }) else {
            list.append(condition)
            conditions = list
            return true
        }
        let old = list[i]
        if old.status == condition.status { condition.lastTransitionTime = old.lastTransitionTime }
        list[i] = condition
        conditions = list
        return phaseChanged || old.status != condition.status || old.reason != condition.reason || old.message != condition.message
            || old.lastTransitionTime != condition.lastTransitionTime
    }
}

/// Figures written into status (reference 8.12).
public enum BRStatusMath {
    /// Newest first, unique by id, at most 10; empty ids ignored (reference 6.5). Returns whether the
    /// list changed.
    public static func record(_ operations: inout [BROperation]?, _ op: BROperation) -> Bool {
        guard let id = op.operationID, !id.isEmpty else { return false }
        var list = operations ?? []
        list.removeAll { $0.operationID == id }
        list.insert(op, at: 0)
        operations = Array(list.prefix(10))
        return true
    }

    /// A new step closes the previous one at 100%; an existing step only moves forward (reference 6.5).
    public static func record(_ progresses: inout [Progress]?, step: String, percent: Double, now: Time) {
        var list = progresses ?? []
        if let i = list.firstIndex(where: { $0.step == step }) {
            if percent > (list[i].progress ?? 0) {
                list[i].progress = percent
                list[i].lastTransitionTime = now
            }
        } else {
            if !list.isEmpty, (list[list.count - 1].progress ?? 0) < 100 {
                list[list.count - 1].progress = 100
                list[list.count - 1].lastTransitionTime = now
            }
            list.append(Progress(step: step, progress: percent, lastTransitionTime: now))
        }
        progresses = list
    }

    /// `timeCompleted - timeStarted` as Go prints durations (`4m0s`, `1h2m3s`, `45s`).
    public static func timeTaken(from start: Time, to end: Time) -> String {
        GoDuration(seconds: end.unixSeconds - start.unixSeconds).description
    }

    /// go-humanize's SI byte sizes: `0 B` … `999 B`, `1.0 kB`, `124 kB`, `83 MB`, `1.5 GB`.
    public static func readableSize(_ bytes: Int64) -> String {
        if bytes < 10 { return "\(bytes) B" }
        let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
        let e = min(Int((log(Double(bytes)) / log(1000.0)).rounded(.down)), units.count - 1)
        let value = Double(bytes) / pow(1000.0, Double(e))
        // Rounded half up to one decimal, as go-humanize does before formatting.
        let rounded = (value * 10 + 0.5).rounded(.down) / 10
        return rounded < 10 ? String(format: "%.1f %@", rounded, units[e]) : String(format: "%.0f %@", rounded, units[e])
    }
}
