import KubeModel

extension BackupSchedule {
    /// The Backup this schedule creates for the slot at `slot` (reference 5.7), named after the slot
    /// time so that a retried reconcile can never create two Backups for one slot.
    public func makeBackup(slot: Time) -> Backup {
        let stamp = BRNames.scheduleTimestamp(slot)
        var spec = self.spec.backupTemplate
        if let br = spec.br {
            let clusterNamespace = (br.clusterNamespace ?? "").isEmpty ? (metadata.namespace ?? "") : br.clusterNamespace!
            let pd = "\(br.cluster)-pd.\(clusterNamespace):2379"
            let suffix = pd.replacingOccurrences(of: ":", with: "-") + "-" + stamp
            var storage = spec.storage
            if storage.type != .unknown {
                storage.prefix = Self.joinPath(storage.prefix ?? "", suffix)
                spec.storage = storage
            }
        } else {
            if (spec.storageClassName ?? "").isEmpty, let sc = self.spec.storageClassName { spec.storageClassName = sc }
            if (spec.volumeAttributesClassName ?? "").isEmpty, let vac = self.spec.volumeAttributesClassName {
                spec.volumeAttributesClassName = vac
            }
            if (spec.storageSize ?? "").isEmpty {
                spec.storageSize = (self.spec.storageSize ?? "").isEmpty ? BRDefaults.storageSize : self.spec.storageSize
            }
        }
        if let secrets = self.spec.imagePullSecrets { spec.imagePullSecrets = secrets }
        if (spec.serviceAccount ?? "").isEmpty, let sa = self.spec.serviceAccount, !sa.isEmpty { spec.serviceAccount = sa }

        let scheduleName = metadata.name ?? ""
        var labels = BRLabels.scheduleLabels(scheduleName: scheduleName)
        for (k, v) in metadata.labels ?? [:] where labels[k] == nil { labels[k] = v }
        var backup = Backup(name: BRNames.scheduledBackupName(schedule: scheduleName, slot: slot),
                            namespace: metadata.namespace ?? "", spec: spec)
        backup.metadata.labels = labels
        // kubectl's record of the schedule's own manifest would be wrong on the Backup (reference 9.5 item 10).
        var annotations = metadata.annotations ?? [:]
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = nil
        backup.metadata.annotations = annotations.isEmpty ? nil : annotations
        backup.metadata.ownerReferences = [controllerReference]
        return backup
    }

    /// The schedule's log backup (reference 5.8): `log-<schedule>`, the log template with its storage
    /// prefix suffixed `log-<UTC now>`, the schedule's labels and owner.
    public func makeLogBackup(now: Time) -> Backup? {
        guard var spec = self.spec.logBackupTemplate else { return nil }
        spec.backupMode = .log
        inherit(into: &spec, prefixSuffix: "log-\(BRNames.scheduleTimestamp(now))")
        let scheduleName = metadata.name ?? ""
        var backup = Backup(name: BRNames.scheduleLogBackupName(schedule: scheduleName), namespace: metadata.namespace ?? "", spec: spec)
        var labels = BRLabels.scheduleLabels(scheduleName: scheduleName)
        for (k, v) in metadata.labels ?? [:] where labels[k] == nil { labels[k] = v }
        backup.metadata.labels = labels
        backup.metadata.ownerReferences = [controllerReference]
        return backup
    }

    /// What every template the schedule copies gets from it: the storage prefix suffixed (Go's
    /// `path.Join`), the schedule's pull secrets, and its service account when the template names none.
    func inherit<Spec: ScheduledTemplate>(into spec: inout Spec, prefixSuffix: String) {
        var storage = spec.storage
        if storage.type != .unknown {
            storage.prefix = Self.joinPath(storage.prefix ?? "", prefixSuffix)
            spec.storage = storage
        }
        if let secrets = self.spec.imagePullSecrets { spec.imagePullSecrets = secrets }
        if (spec.serviceAccount ?? "").isEmpty, let sa = self.spec.serviceAccount, !sa.isEmpty { spec.serviceAccount = sa }
    }

    /// Go's `path.Join`: non-empty elements joined with `/`, then cleaned.
    static func joinPath(_ elements: String...) -> String {
        let joined = elements.filter { !$0.isEmpty }.joined(separator: "/")
        guard !joined.isEmpty else { return "" }
        var parts: [Substring] = []
        for part in joined.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
            parts.append(part)
        }
        let body = parts.joined(separator: "/")
        return joined.hasPrefix("/") ? "/" + body : (body.isEmpty ? "." : body)
    }
}


/// A spec a schedule copies into the objects it creates (Backup and CompactBackup templates).
public protocol ScheduledTemplate: HasStorage {
    var imagePullSecrets: [LocalObjectReference]? { get set }
    var serviceAccount: String? { get set }
}

extension BackupSpec: ScheduledTemplate {}
extension CompactSpec: ScheduledTemplate {}
