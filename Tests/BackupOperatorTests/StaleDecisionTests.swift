import BRModel
import BRObjects
import BackupOperator
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

/// The cause of the two "running" backups of one schedule seen once in a loaded run of the #4220
/// end-to-end test, reproduced deterministically: the job binary on standalone starts the moment its
/// Job exists, and can write Complete before the pass that created the Job writes Scheduled. That
/// write, refused (409) because the Backup had changed, used to be retried by re-applying Scheduled to
/// the fresh Backup, which moved a finished Backup's phase back to Scheduled: the schedule, which also
/// reads the Complete condition, went on to its next backup while the older one showed Scheduled.
@Suite("A pass's status decided on an older read is never written over a newer one")
struct StaleDecisionTests {
    @Test("the job binary writes Complete while the pass that created the Job is still to write Scheduled: the Backup stays Complete and no Event says Scheduled")
    func aFinishedBackupIsNeverMovedBack() async throws {
        let w = World()
        try await w.seedCluster()
        _ = try await w.apply(.backups, World.brBackup("race"))
        let api = w.api, clock = w.clock
        // As the operator creates the Job, its pod runs at once and reports every step to the end.
        w.operatorAPI.afterCreate { kind, object in
            guard kind == .jobs, object.objectKey.name == "backup-race" else { return }
            for type in [BackupConditionType.prepare, .running, .complete] {
                var b = try await api.get(Backup.self, namespace: "ns", name: "race")
                b.status.apply(BackupCondition(type: type), now: Time(clock.now()))
                _ = try await api.updateStatus(b)
            }
        }
        try await w.settleBackup("race")
        w.operatorAPI.afterCreate(nil)
        let b = try await w.getBackup("race")
        #expect(b.status.phase == .complete, "\(b.status)")
        #expect(b.status.conditions?.map(\.type) == [.prepare, .running, .complete], "\(b.status.conditions ?? [])")
        let events = try await api.list(.events, namespace: "ns").items.compactMap { $0["reason"]?.stringValue }
        #expect(!events.contains("Scheduled"), "\(events)")
        #expect(w.job("backup-race") != nil, "the Job it created stays")
    }
}
