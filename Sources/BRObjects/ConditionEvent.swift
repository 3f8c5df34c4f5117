import BRModel
import KubeEvents
import KubeModel

/// The Event that tells a condition change in `kubectl describe`: every condition a controller or the
/// job binary sets is recorded once, so the story of a Backup or Restore can be read from its Events.
/// The reason is the condition's own (TiDB Operator's reasons), else its type; failures are Warnings.
public struct ConditionEvent: Equatable, Sendable {
    public var type: EventRecorder.EventType
    public var reason: String
    public var message: String

    static let warningTypes: Set<String> = ["Failed", "RetryFailed", "CleanFailed", "Invalid", "VolumeBackupFailed",
                                            "VolumeBackupInitializeFailed", "PruneFailed"]

    init(kind: String, namespace: String, name: String, type conditionType: String, status: ConditionStatus?, reason: String?, message: String?) {
        let warning = Self.warningTypes.contains(conditionType) && status != .false
        type = warning ? .warning : .normal
        self.reason = (reason?.isEmpty == false) ? reason! : conditionType
        if let message, !message.isEmpty {
            self.message = message
        } else if status == .false {
            self.message = "\(kind) \(namespace)/\(name): \(conditionType) is in progress"
        } else {
            self.message = "\(kind) \(namespace)/\(name) is \(conditionType)"
        }
    }

    public init(_ backup: Backup, _ condition: BackupCondition) {
        self.init(kind: "backup", namespace: backup.namespace, name: backup.name, type: condition.type.rawValue,
                  status: condition.status, reason: condition.reason, message: condition.message)
    }

    public init(_ restore: Restore, _ condition: RestoreCondition) {
        self.init(kind: "restore", namespace: restore.namespace, name: restore.name, type: condition.type.rawValue,
                  status: condition.status, reason: condition.reason, message: condition.message)
    }
}

extension EventRecorder {
    public func record(_ object: JSONValue, _ event: ConditionEvent) async {
        await record(object, event.type, reason: event.reason, message: event.message)
    }

    public func record<T: KubeResource>(_ object: T, _ event: ConditionEvent) async {
        await record(object, event.type, reason: event.reason, message: event.message)
    }
}
