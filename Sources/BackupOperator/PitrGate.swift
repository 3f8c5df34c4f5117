import BRModel
import Foundation
import KubeAPI
import KubeModel

/// Before a point-in-time restore runs, TiKV must not compact away the MVCC versions it replays into:
/// TiDB Operator's TiKV member manager sets `gc.ratio-threshold = -1` in the TiKV configuration while a
/// PiTR Restore of the cluster is unfinished, and the restore waits until the configuration says so
/// (reference 4.5). A cluster that is not managed by TiDB Operator (`spec.pdAddresses`: TiUP, or the
/// standalone server) has no such ConfigMap; its operator sets the option, and nothing is awaited.
struct PitrGate {
    let api: any KubeAPI

    /// Nil when the restore may run; else what it waits for.
    func wait(_ restore: Restore, cluster: TidbCluster) async throws -> String? {
        if let pds = cluster.spec.pdAddresses, !pds.isEmpty { return nil }
        let name = cluster.metadata.name ?? ""
        let selector = "\(BRLabels.component)=tikv,\(BRLabels.instance)=\(name)"
        let maps = try await api.listAll(.configMaps, namespace: restore.clusterNamespace, labelSelector: selector).items
            .filter { ($0.value(at: ["metadata", "name"])?.stringValue ?? "").hasPrefix("\(name)-tikv") }
        guard !maps.isEmpty else { return "no TiKV ConfigMap of TidbCluster \(restore.clusterNamespace)/\(name) yet, keep polling" }
        var theirs = "none"
        for map in maps {
            guard let text = map.value(at: ["data", "config-file"])?.stringValue, let toml = try? TOMLText(text),
                  let value = toml.value("gc", "ratio-threshold") else { continue }
            if Double(value) == -1 { return nil }
            theirs = value
        }
        return "config reset, waiting for configmap updated(wants = -1.0, theirs = \(theirs)), keep polling"
    }
}
