import BRModel
import BRObjects
import ControllerKit
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// A reconcile as an ordered list of named steps over one working state: each step either lets the
/// pass go on (nil) or ends it with an outcome. Adding a phase is adding a step here, in its place,
/// not another branch inside a step.
struct ReconcileSteps<State> {
    typealias Step = (name: String, run: (inout State) async throws -> ReconcileOutcome?)
    let steps: [Step]

    init(_ steps: [Step]) { self.steps = steps }

    /// Runs the steps, then `write` (the pass's status, once), also when a step throws.
    /// A status write refused because the object changed meanwhile (`StatusConflict`) ends the pass
    /// with an immediate requeue: the next pass decides again from what the object is now.
    func run(_ state: inout State, thenWrite write: (inout State) async throws -> Void) async throws -> ReconcileOutcome {
        do {
            let outcome: ReconcileOutcome
            do {
                outcome = try await run(&state).outcome
            } catch let conflict as StatusConflict {
                throw conflict
            } catch {
                try await write(&state)
                throw error
            }
            try await write(&state)
            return outcome
        } catch is StatusConflict {
            return .requeue(after: .zero)
        }
    }

    /// Runs the steps in order until one ends the pass; returns its outcome and its name.
    func run(_ state: inout State) async throws -> (outcome: ReconcileOutcome, step: String) {
        for step in steps {
            if let outcome = try await step.run(&state) { return (outcome, step.name) }
        }
        return (.done, "")
    }
}

/// One pass over a Backup or Restore: the status it will write (and the object as it sees it), and the
/// cluster it found.
struct ReconcilePass<Object: APIObject & Equatable & Sendable, Condition: Sendable> {
    var status: PendingStatus<Object, Condition>
    var lookup: ClusterLookup.Result = .notNeeded
    var cluster: TidbCluster? { lookup.cluster }

    init(_ object: Object, apply: @escaping @Sendable (inout Object, Condition, Time) -> Bool) {
        status = PendingStatus(object, apply: apply)
    }
}

/// The status changes of one pass over an object, kept until the pass ends and then written in one
/// status write, with an Event for each condition that changed something. Steps see their own
/// changes at once (`object`); a step that hands over to a flow writing on its own flushes first.
struct PendingStatus<Object: APIObject & Equatable & Sendable, Condition: Sendable> {
    /// The object with the pending changes applied.
    private(set) var object: Object
    /// The object as last read or written: what the write starts from.
    private(set) var stored: Object
    private(set) var edits: [@Sendable (inout Object) -> Void] = []
    private(set) var conditions: [Condition] = []
    let apply: @Sendable (inout Object, Condition, Time) -> Bool

    init(_ object: Object, apply: @escaping @Sendable (inout Object, Condition, Time) -> Bool) {
        self.object = object
        stored = object
        self.apply = apply
    }

    /// A condition to write (and to see at once).
    mutating func set(_ condition: Condition, now: Time) {
        _ = apply(&object, condition, now)
        conditions.append(condition)
    }

    /// Another status change to write (and to see at once).
    mutating func edit(_ change: @escaping @Sendable (inout Object) -> Void) {
        change(&object)
        edits.append(change)
    }

    var isEmpty: Bool { edits.isEmpty && conditions.isEmpty }

    /// Writes what is pending in one status write on the version it was decided on, records an Event
    /// per condition that changed something (`event`), and starts over from what was written. A
    /// conflict throws `StatusConflict` (nothing written, no Event): the pass is run again.
    mutating func flush(_ api: any KubeAPI, now: Time, events: EventRecorder,
                        event: (Object, Condition) -> ConditionEvent) async throws {
        guard !isEmpty else { return }
        let edits = self.edits, conditions = self.conditions, apply = self.apply
        var changed: [Int] = []
        let written = try await StatusWriter.updateDecided(api, Object.self, read: stored) { o in
            for e in edits { e(&o) }
            changed = conditions.indices.filter { apply(&o, conditions[$0], now) }
        }
        for i in changed { await events.record(written ?? object, event(stored, conditions[i])) }
        self.edits = []
        self.conditions = []
        if let written {
            object = written
            stored = written
        }
    }
}

/// The one way a Backup's or Restore's Job is created: idempotent by name. A Job already there is this
/// object's (made by a pass whose status write was lost) unless it is going away (an earlier object of
/// the same name), which is waited for; an Event says what happened.
struct JobStep {
    let api: any KubeAPI
    let events: EventRecorder

    enum Creation {
        case created, existed
        case wait(Duration)
        /// The create was refused: the message for the object's RetryFailed condition (Event recorded).
        case failed(String, KubeAPIError)
    }

    func create<Owner: APIObject>(_ job: JSONValue, for owner: Owner, namespace: String, name: String,
                                  created: String, failed: String) async throws -> Creation {
        do {
            _ = try await api.create(.jobs, namespace: namespace, object: job)
            await events.record(owner, .normal, reason: "SuccessfulCreate", message: created)
            return .created
        } catch let e as KubeAPIError where e.isAlreadyExists {
            let existing = try await api.jobState(namespace: namespace, name: name)
            return !existing.exists || existing.deleting ? .wait(.seconds(2)) : .existed
        } catch let e as KubeAPIError {
            let message = "\(failed), err: \(e.message)"
            await events.record(owner, .warning, reason: "FailedCreate", message: message)
            return .failed(message, e)
        }
    }
}
