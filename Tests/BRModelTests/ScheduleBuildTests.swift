import KubeModel
import Testing

@testable import BRModel

@Suite("Building a scheduled Backup (reference 5.7, vectors 8.2)")
struct ScheduleBuildTests {
    let slot = Time(rfc3339: "2024-03-05T07:08:09Z")!

    func schedule(_ template: BackupSpec, namespace: String = "tidb") -> BackupSchedule {
        var s = BackupSchedule(name: "bsname", namespace: namespace, spec: BackupScheduleSpec(schedule: "@daily", backupTemplate: template))
        s.metadata.uid = "uid-bs"
        return s
    }

    @Test("a Dumpling template gets 100Gi, the schedule labels and an owner reference")
    func dumplingDefaults() {
        let b = schedule(BackupSpec()).makeBackup(slot: slot)
        #expect(b.spec.storageSize == "100Gi")
        #expect(b.metadata.name == "bsname-2024-03-05t07-08-09")
        #expect(b.metadata.labels == BRLabels.scheduleLabels(scheduleName: "bsname"))
        #expect(b.metadata.ownerReferences == [OwnerReference(apiVersion: "pingcap.com/v1alpha1", kind: "BackupSchedule",
                                                              name: "bsname", uid: "uid-bs")])
    }

    @Test("a Dumpling template takes the schedule's size and volume attributes class")
    func dumplingFromSchedule() {
        var s = schedule(BackupSpec())
        s.spec.storageSize = "9527G"
        s.spec.volumeAttributesClassName = "gold"
        let b = s.makeBackup(slot: slot)
        #expect(b.spec.storageSize == "9527G")
        #expect(b.spec.volumeAttributesClassName == "gold")
    }

    @Test("a BR template keeps its own volume attributes class and gets no size")
    func brKeeps() {
        var t = BackupSpec()
        t.br = BRConfig(cluster: "")
        t.volumeAttributesClassName = "silver"
        let b = schedule(t).makeBackup(slot: slot)
        #expect(b.spec.storageSize == nil)
        #expect(b.spec.volumeAttributesClassName == "silver")
    }

    @Test("a BR template's prefix gets the PD address and the slot time", arguments: [
        ("backups", "", "backups/basic-pd.tidb-2379-2024-03-05t07-08-09"),
        ("", "", "basic-pd.tidb-2379-2024-03-05t07-08-09"),
        ("backups", "other", "backups/basic-pd.other-2379-2024-03-05t07-08-09"),
        ("a//b/", "", "a/b/basic-pd.tidb-2379-2024-03-05t07-08-09"),
    ])
    func prefix(_ prefix: String, _ clusterNamespace: String, _ expected: String) {
        var t = BackupSpec()
        t.br = BRConfig(cluster: "basic", clusterNamespace: clusterNamespace)
        t.s3 = S3StorageProvider(provider: "aws", bucket: "b", prefix: prefix)
        #expect(schedule(t).makeBackup(slot: slot).spec.s3?.prefix == expected)
    }

    @Test("schedule labels win over the schedule's own; annotations are copied except kubectl's record")
    func metadata() {
        var s = schedule(BackupSpec())
        s.metadata.labels = [BRLabels.instance: "x", "team": "db"]
        s.metadata.annotations = ["iam.amazonaws.com/role": "arn:aws:iam::123456789012:role/user",
                                  "kubectl.kubernetes.io/last-applied-configuration": "{}"]
        s.spec.serviceAccount = "tidb-backup-manager"
        s.spec.imagePullSecrets = [LocalObjectReference(name: "pull")]
        let b = s.makeBackup(slot: slot)
        #expect(b.metadata.labels?[BRLabels.instance] == "bsname")
        #expect(b.metadata.labels?["team"] == "db")
        #expect(b.metadata.annotations == ["iam.amazonaws.com/role": "arn:aws:iam::123456789012:role/user"])
        #expect(b.spec.serviceAccount == "tidb-backup-manager")
        #expect(b.spec.imagePullSecrets == [LocalObjectReference(name: "pull")])
    }
}
