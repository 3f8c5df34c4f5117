import KubeModel

/// Fields a log sub-command reports with its condition (reference 6.3.3).
public struct LogCommandFields: Sendable, Equatable {
    public var timeStarted: Time?
    public var timeCompleted: Time?
    public var commitTs: String?
    public var backupPath: String?
    public var logSuccessTruncateUntil: String?
    public var logTruncatingUntil: String?

    public init(timeStarted: Time? = nil, timeCompleted: Time? = nil, commitTs: String? = nil, backupPath: String? = nil,
                logSuccessTruncateUntil: String? = nil, logTruncatingUntil: String? = nil) {
        self.timeStarted = timeStarted
        self.timeCompleted = timeCompleted
        self.commitTs = commitTs
        self.backupPath = backupPath
        self.logSuccessTruncateUntil = logSuccessTruncateUntil
        self.logTruncatingUntil = logTruncatingUntil
    }
}

extension BackupStatus {
    /// Applies what a log sub-command reports (reference 3.8): the command's own entry in
    /// `logSubCommandStatuses` takes the condition, its times and `logTruncatingUntil`; the whole status
    /// takes only what the translation table lets through:
    ///
    /// | command | condition to the whole status | fields to the whole status |
    /// |---|---|---|
    /// | log-start | every type but Complete | all; `timeCompleted` not with Complete |
    /// | log-stop | Complete, as Stopped | on Complete, without `timeStarted` |
    /// | log-pause | Complete, as Paused | on Complete, without times |
    /// | log-resume | Complete, as Running | on Complete, without times |
    /// | log-truncate | none | on Complete, without times |
    ///
    /// When a pause (resume) completes, an existing resume (pause) entry becomes `Repeatable`, so the
    /// same request can be made again. Returns whether anything changed.
    @discardableResult
    public mutating func applyLog(_ command: LogSubCommand, _ condition: BackupCondition, fields: LogCommandFields = LogCommandFields(),
                                  now: Time) -> Bool {
        let before = self
        var condition = condition
        condition.command = command
        condition.message = condition.message.map { StatusText.bounded($0) }
        var entry = logSubCommandStatuses?[command.rawValue] ?? LogSubCommandStatus(command: command)
        entry.apply(condition, now: now)
        if let t = fields.timeStarted { entry.timeStarted = t }
        if let t = fields.timeCompleted { entry.timeCompleted = t }
        if let u = fields.logTruncatingUntil { entry.logTruncatingUntil = u }
        var all = logSubCommandStatuses ?? [:]
        all[command.rawValue] = entry

        let complete = condition.type == .complete && condition.status == .true
        var whole: BackupCondition?
        var copy = fields
        switch command {
        case .start:
            if condition.type != .complete { whole = condition }
            if complete { copy.timeCompleted = nil }
        case .stop:
            if complete { whole = BackupCondition(type: .stopped, reason: condition.reason, message: condition.message, command: command) }
            copy.timeStarted = nil
        case .pause:
            if complete { whole = BackupCondition(type: .paused, reason: condition.reason, message: condition.message, command: command) }
            copy.timeStarted = nil
            copy.timeCompleted = nil
        case .resume:
            if complete { whole = BackupCondition(type: .running, reason: condition.reason, message: condition.message, command: command) }
            copy.timeStarted = nil
            copy.timeCompleted = nil
        default:
            copy.timeStarted = nil
            copy.timeCompleted = nil
        }
        if complete && (command == .pause || command == .resume) {
            let other = command == .pause ? LogSubCommand.resume : .pause
            if var o = all[other.rawValue] {
                o.phase = .repeatable
                all[other.rawValue] = o
            }
        }
        logSubCommandStatuses = all
        if command == .start || complete {
            if let t = copy.timeStarted { timeStarted = t }
            if let t = copy.timeCompleted {
                timeCompleted = t
                if let start = timeStarted { timeTaken = BRStatusMath.timeTaken(from: start, to: t) }
            }
            if let v = copy.commitTs { commitTs = v }
            if let v = copy.backupPath { backupPath = v }
            if let v = copy.logSuccessTruncateUntil { logSuccessTruncateUntil = v }
        }
        if let whole { _ = apply(whole, now: now) }
        return self != before
    }
}

extension LogSubCommandStatus {
    public init(command: LogSubCommand) {
        self.init()
        self.command = command
    }

    /// Conditions unique by type; the phase follows the newest.
    mutating func apply(_ condition: BackupCondition, now: Time) {
        var condition = condition
        var list = conditions ?? []
        if let i = list.firstIndex(where: { $0.type == condition.type }) {
            let old = list[i]
            condition.lastTransitionTime = old.status == condition.status && phase == condition.type ? old.lastTransitionTime : now
            list[i] = condition
        } else {
            condition.lastTransitionTime = now
            list.append(condition)
        }
        conditions = list
        phase = condition.type
    }
}
