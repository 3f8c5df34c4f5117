import BRModel
import Foundation
import KubeAPI
import KubeModel
import KubeTesting
import Testing

/// TiDB Operator's reports of backups that stop without anyone noticing (#5968, #5499, #6090): a
/// Job whose pod never starts, on the standalone operator whose job runner keeps such pods Pending
/// with Kubernetes' reasons.
@Suite("End to end: a Job whose pod cannot start never leaves its Backup waiting for ever", .serialized)
struct StuckJobTests {
    /// A local-volume Backup (or schedule template lines) whose pod also mounts the claim `claim`.
    static func extraClaim(_ claim: String) -> [String] {
        ["additionalVolumes: [{name: extra, persistentVolumeClaim: {claimName: \(claim)}}]",
         "additionalVolumeMounts: [{name: extra, mountPath: /mnt/extra}]"]
    }

    static func backup(_ name: String, root: String, claim: String) -> String {
        localBackup(name, root: root).replacingOccurrences(of: "  cleanPolicy: Delete", with: (["cleanPolicy: Delete"] + extraClaim(claim)).map { "  " + $0 }.joined(separator: "\n"))
    }

    @Test("a pod waiting for a claim: an Event says why at once; after --job-start-timeout the Backup fails with the pod's reason and its Job goes; the claim appearing in time lets another complete; a Backup stuck in Scheduled is deleted at once (#5968); a schedule whose backups cannot start goes on (#6090)")
    func podThatCannotStart() async throws {
        let op = try await Operator(extraArguments: ["--job-start-timeout", "20s"])
        defer { op.stop() }
        let root = try op.localVolume()
        try await op.apply(cluster)
        try await op.apply(Self.backup("waits", root: root, claim: "never-made"))
        try await op.apply(Self.backup("appears", root: root, claim: "made-later"))
        try await op.apply(Self.backup("deleted", root: root, claim: "never-made"))
        try await op.apply(localSchedule("blocked", root: root, spec: ["maxBackups: 5"], template: Self.extraClaim("never-made")))

        // Why, long before the deadline: a Warning Event naming the pod's reason and the claim.
        let events = try await op.events(timeout: 30) { items in
            items.contains { $0.value(at: ["involvedObject", "name"]) == "waits" && $0["reason"] == "PodNotStarting" }
        }
        let why = try #require(events.first { $0.value(at: ["involvedObject", "name"]) == "waits" && $0["reason"] == "PodNotStarting" })
        #expect(why["type"] == "Warning")
        #expect(why["message"]?.stringValue?.contains("Unschedulable: persistentvolumeclaim \"never-made\" not found") == true, "\(why)")
        #expect(try await op.api.get(Backup.self, namespace: "default", name: "waits").status.phase == .scheduled)
        // The web view says it too, from what the server serves: on the backup's page.
        var page: JSONValue = .null
        _ = await eventually(10) {
            page = (try? await op.web("backups/default/waits")) ?? page
            return page.value(at: ["row", "waiting"]) != nil
        }
        #expect(page.value(at: ["row", "waiting"])?.stringValue?.contains("persistentvolumeclaim \"never-made\" not found") == true, "\(page)")
        #expect(page["logGone"] == nil, "no run happened: \(page)")

        // The claim of another appears before the deadline: that Backup's pod starts and it completes.
        _ = try await op.api.create(.persistentVolumeClaims, namespace: "default", object: [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": "made-later", "namespace": "default"],
            "spec": ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "1Gi"]]]])

        // #5968: a Backup stuck in Scheduled is deleted when asked, its Job and pod with it.
        _ = try await op.api.delete(.backups, namespace: "default", name: "deleted")
        try await op.gone("deleted", timeout: 30)
        #expect(try await op.api.getIfPresent(JSONValue.self, .jobs, namespace: "default", name: "backup-deleted") == nil)

        let appeared = try await op.backup("appears", reaches: ["Complete", "Failed"], timeout: 60)
        #expect(appeared.status.phase == .complete, "\(appeared.status)")

        // The other fails once the deadline has passed, with the pod's own reason; its Job is deleted.
        let failed = try await op.backup("waits", reaches: ["Failed"], timeout: 60)
        let condition = try #require(failed.status.conditions?.first { $0.type == .failed })
        #expect(condition.reason == "Unschedulable", "\(condition)")
        #expect(condition.message?.contains("did not start within 20s (--job-start-timeout): Unschedulable: persistentvolumeclaim \"never-made\" not found") == true,
                "\(condition)")
        #expect(await eventually(30) { (try? await op.api.getIfPresent(JSONValue.self, .jobs, namespace: "default", name: "backup-waits")) == .some(nil) })

        // The schedule is not blocked by a backup that cannot start: it fails, and the next slot gets a Backup.
        let selector = scheduleSelector("blocked")
        var made: [Backup] = []
        let goesOn = await eventually(60) {
            made = (try? await op.api.list(Backup.self, namespace: "default", labelSelector: selector)) ?? made
            return made.count >= 2 && made.contains { $0.status.phase == .failed }
        }
        #expect(goesOn, "\(made.map { "\($0.name): \($0.status.phase?.rawValue ?? "-")" }); log: \(op.tail())")
        #expect(made.filter { $0.status.phase == .failed }.allSatisfy { $0.status.conditions?.first { $0.type == .failed }?.reason == "Unschedulable" })
        // The schedule's page names why its waiting backup has not started.
        var waitingRow: JSONValue?
        _ = await eventually(40) {
            let rows = (try? await op.web("schedules/default/blocked"))?["backups"]?.arrayValue ?? []
            waitingRow = rows.first { $0["waiting"] != nil }
            return waitingRow != nil
        }
        #expect(waitingRow?["waiting"]?.stringValue?.contains("Unschedulable") == true, "\(String(describing: waitingRow))")
    }
}
