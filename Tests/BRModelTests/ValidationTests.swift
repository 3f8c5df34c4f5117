import Foundation
import KubeModel
import ManifestTools
import Testing

@testable import BRModel

@Suite("Validation (reference section 2, vectors 8.8)")
struct ValidationTests {
    enum Step: Sendable { case fromHost, fromSecret, storageSize, br, clusterAndBadType, typeDB, dbAndTypeTable, tableAndS3,
                          bucketAndBadEndpoint, endpointPath, endpointNoHost, endpointOK }

    static let steps: [(Step, String?)] = [
        (.fromHost, "missing tidbSecretName config in spec"),
        (.fromSecret, "missing StorageSize config in spec of"),
        (.storageSize, nil),
        (.br, "cluster should be configured for BR in spec"),
        (.clusterAndBadType, "invalid backup type"),
        (.typeDB, "DB should be configured for BR with backup type"),
        (.dbAndTypeTable, "table should be configured for BR with backup type table in spec of"),
        (.tableAndS3, "bucket should be configured for BR in spec of"),
        (.bucketAndBadEndpoint, "invalid endpoint"),
        (.endpointPath, "scheme not found in endpoint"),
        (.endpointNoHost, "host not found in endpoint"),
        (.endpointOK, nil),
    ]

    static func apply(_ step: Step, _ s: inout BackupSpec) {
        switch step {
        case .fromHost: s.from = TiDBAccessConfig(host: "localhost", secretName: "")
        case .fromSecret: s.from?.secretName = "secretName"
        case .storageSize: s.storageSize = "1m"
        case .br: s.br = BRConfig(cluster: "")
        case .clusterAndBadType: s.br?.cluster = "tidb"; s.backupType = "invalid"
        case .typeDB: s.backupType = .db
        case .dbAndTypeTable: s.br?.db = "dbName"; s.backupType = .table
        case .tableAndS3: s.br?.table = "tableName"; s.s3 = S3StorageProvider(provider: "")
        case .bucketAndBadEndpoint: s.s3?.bucket = "bucket"; s.s3?.endpoint = "#$@$#^%**##"
        case .endpointPath: s.s3?.endpoint = "/path"
        case .endpointNoHost: s.s3?.endpoint = "s3:///"
        case .endpointOK: s.s3?.endpoint = "s3://localhost:80"
        }
    }

    @Test("the cumulative Backup vectors give TiDB Operator's first message; valid steps give none")
    func backupVectors() {
        var spec = BackupSpec()
        let empty = BRValidation.validate(Backup(name: "b", namespace: "ns", spec: spec), tikvImage: "pingcap/tikv:v4.0.8")
        #expect(empty.first?.message == "missing cluster config in spec of ns/b")
        #expect(empty.first?.field == "spec.from")
        for (step, expected) in Self.steps {
            Self.apply(step, &spec)
            let problems = BRValidation.validate(Backup(name: "b", namespace: "ns", spec: spec), tikvImage: "pingcap/tikv:v4.0.8")
            if let expected {
                #expect(problems.first?.message.contains(expected) == true, "\(step): \(problems)")
            } else {
                #expect(problems.isEmpty, "\(step): \(problems)")
            }
        }
    }

    @Test("each problem names its field", arguments: [
        (Step.fromHost, "spec.from.secretName"), (.fromSecret, "spec.storageSize"), (.br, "spec.br.cluster"),
        (.clusterAndBadType, "spec.backupType"), (.typeDB, "spec.br.db"), (.dbAndTypeTable, "spec.br.table"),
        (.tableAndS3, "spec.s3.bucket"), (.bucketAndBadEndpoint, "spec.s3.endpoint"),
    ])
    func fields(_ upTo: Step, _ field: String) {
        var spec = BackupSpec()
        for (step, _) in Self.steps {
            Self.apply(step, &spec)
            if step == upTo { break }
        }
        let problems = BRValidation.validate(Backup(name: "b", namespace: "ns", spec: spec), tikvImage: "pingcap/tikv:v4.0.8")
        #expect(problems.first?.field == field)
    }

    @Test("from is required for BR only below TiKV v4.0.8; unparsable tags count as new")
    func versionGate() {
        var spec = BackupSpec()
        spec.br = BRConfig(cluster: "c")
        spec.s3 = S3StorageProvider(provider: "aws", bucket: "b")
        let b = Backup(name: "b", namespace: "ns", spec: spec)
        #expect(BRValidation.validate(b, tikvImage: "pingcap/tikv:v4.0.7").first?.message == "missing cluster config in spec of ns/b")
        #expect(BRValidation.validate(b, tikvImage: "pingcap/tikv:v4.0.8").isEmpty)
        #expect(BRValidation.validate(b, tikvImage: "pingcap/tikv:latest").isEmpty)
        #expect(BRValidation.validate(b, tikvImage: "registry:5000/tikv").isEmpty)
    }

    @Test("Restore vectors use 'restore type'; PiTR needs exactly one of full backup or start TS")
    func restore() {
        var spec = RestoreSpec()
        #expect(BRValidation.validate(Restore(name: "r", namespace: "ns", spec: spec)).first?.message == "missing cluster config in spec of ns/r")
        spec.br = BRConfig(cluster: "c")
        spec.backupType = .table
        spec.br?.db = "d"
        #expect(BRValidation.validate(Restore(name: "r", namespace: "ns", spec: spec)).first?.message
            == "table should be configured for BR with restore type table in spec of ns/r")
        spec.br?.table = "t"
        spec.s3 = S3StorageProvider(provider: "aws", bucket: "b")
        #expect(BRValidation.validate(Restore(name: "r", namespace: "ns", spec: spec)).isEmpty)
        spec.restoreMode = .pitr
        #expect(BRValidation.validate(Restore(name: "r", namespace: "ns", spec: spec)).first?.message
            == "either pitrFullBackupStorageProvider or logRestoreStartTs option needs to be passed in pitr mode")
        spec.logRestoreStartTs = "1"
        #expect(BRValidation.validate(Restore(name: "r", namespace: "ns", spec: spec)).isEmpty)
        spec.pitrFullBackupStorageProvider.s3 = S3StorageProvider(provider: "aws", bucket: "full")
        #expect(BRValidation.validate(Restore(name: "r", namespace: "ns", spec: spec)).first?.message
            == "pitrFullBackupStorageProvider and logRestoreStartTs option can not co-exists in pitr mode")
    }

    @Test("local storage checks")
    func local() {
        var spec = BackupSpec()
        spec.br = BRConfig(cluster: "c")
        spec.local = LocalStorageProvider(volume: Volume(name: "a"), volumeMount: VolumeMount(name: "b", mountPath: "/x:y"))
        let messages = BRValidation.validate(Backup(name: "b", namespace: "ns", spec: spec)).map(\.message)
        #expect(messages == [
            "Spec.Local.Volume.Name != Spec.Local.VolumeMount.Name is configured for BR in spec of ns/b",
            "Spec.Local.VolumeMount.MountPath cannot contain ':' configured for BR in spec of ns/b",
        ])
    }

    @Test("log backups check their timestamps and sub-command; retry durations must parse")
    func logAndDurations() {
        var spec = BackupSpec()
        spec.br = BRConfig(cluster: "c")
        spec.s3 = S3StorageProvider(provider: "aws", bucket: "b")
        spec.backupMode = .log
        spec.commitTs = "yesterday"
        spec.backoffRetryPolicy.minRetryDuration = "5 minutes"
        let problems = BRValidation.validate(Backup(name: "b", namespace: "ns", spec: spec), tikvImage: "pingcap/tikv:v6.0.0")
        #expect(problems.map(\.field) == ["spec.backupMode", "spec.commitTs", "spec.backoffRetryPolicy.minRetryDuration"])
        #expect(problems[0].message == "tikv pingcap/tikv:v6.0.0 doesn't support log backup in spec of ns/b, the first version is v6.1.0")
        #expect(problems[1].message.hasPrefix("cannot parse ts string yesterday"))
        #expect(problems[2].message.hasPrefix("fail to parse minRetryDuration 5 minutes of backup ns/b"))
    }

    @Test("schedules: cron, durations, time zone, and the template as a Backup")
    func schedule() {
        var template = BackupSpec()
        template.br = BRConfig(cluster: "c")
        template.s3 = S3StorageProvider(provider: "aws")
        var spec = BackupScheduleSpec(schedule: "61 * * * *", backupTemplate: template)
        spec.maxReservedTime = "3 days"
        spec.timeZone = "Mars/Olympus"
        let problems = BRValidation.validate(BackupSchedule(name: "s", namespace: "ns", spec: spec))
        #expect(problems.map(\.field) == ["spec.schedule", "spec.maxReservedTime", "spec.timeZone", "spec.backupTemplate.s3.bucket"])
        #expect(problems[0].message == "parse backup schedule ns/s cron format 61 * * * * failed, err: End of range (61) above maximum (59): 61")
    }

    @Test("verification: never into the cluster the schedule backs up (namespaces resolved), a BR snapshot template, a valid cron, keep at least 1")
    func verification() {
        var template = BackupSpec()
        template.br = BRConfig(cluster: "prod")
        template.s3 = S3StorageProvider(provider: "aws")
        template.s3?.bucket = "b"
        var spec = BackupScheduleSpec(schedule: "0 2 * * *", backupTemplate: template)
        spec.verification = VerificationSpec(target: VerificationTarget(cluster: "prod", clusterNamespace: "ns"))
        let own = BackupSchedule(name: "s", namespace: "ns", spec: spec)
        #expect(Verification.targetsProduction(own))
        #expect(BRValidation.validate(own).map(\.field).contains("spec.verification.target"))
        // The same name in another namespace is another cluster.
        spec.verification = VerificationSpec(target: VerificationTarget(cluster: "prod", clusterNamespace: "verify"))
        #expect(BRValidation.validate(BackupSchedule(name: "s", namespace: "ns", spec: spec)).filter { $0.field.hasPrefix("spec.verification") }.isEmpty)
        var v = VerificationSpec(target: VerificationTarget(cluster: "scratch"))
        v.schedule = "every day"
        v.keep = 0
        spec.verification = v
        spec.backupTemplate.backupMode = .log
        let problems = BRValidation.validate(BackupSchedule(name: "s", namespace: "ns", spec: spec)).filter { $0.field.hasPrefix("spec.verification") }
        #expect(problems.map(\.field) == ["spec.verification", "spec.verification.schedule", "spec.verification.keep"], "\(problems)")
        // cleanup: drop needs the scratch TiDB; an unknown cleanup is named.
        spec.backupTemplate.backupMode = .snapshot
        var drop = VerificationSpec(target: VerificationTarget(cluster: "scratch"))
        drop.cleanup = "drop"
        spec.verification = drop
        #expect(BRValidation.validate(BackupSchedule(name: "s", namespace: "ns", spec: spec)).map(\.field).contains("spec.verification.target.tidb"))
        drop.cleanup = "sometimes"
        spec.verification = drop
        #expect(BRValidation.validate(BackupSchedule(name: "s", namespace: "ns", spec: spec)).map(\.field).contains("spec.verification.cleanup"))
        drop.cleanup = nil
        drop.checks = VerificationChecks(queries: [VerificationQuery(sql: " ")])
        spec.verification = drop
        #expect(BRValidation.validate(BackupSchedule(name: "s", namespace: "ns", spec: spec)).map(\.field).filter { $0.hasPrefix("spec.verification") }
                    == ["spec.verification.target.tidb", "spec.verification.checks.queries[0].sql"])
        drop.target.tidb = TiDBAccessConfig(host: "scratch-tidb", secretName: "pw")
        #expect(drop.effectiveCleanup == "drop" && VerificationSpec(target: VerificationTarget(cluster: "x")).effectiveCleanup == "none")
    }

    @Test("pointInTime: refused without the schedule's log backup; the point is the log's checkpoint, at most now, and only past the snapshot; the point step's checks carry its name")
    func verificationPointInTime() throws {
        var template = BackupSpec()
        template.br = BRConfig(cluster: "prod")
        template.local = LocalStorageProvider(volume: Volume(name: "v", source: ["hostPath": ["path": "/b"]]), volumeMount: VolumeMount(name: "v", mountPath: "/b"), prefix: "full")
        var spec = BackupScheduleSpec(schedule: "0 2 * * *", backupTemplate: template)
        var v = VerificationSpec(target: VerificationTarget(cluster: "scratch"))
        v.pointInTime = true
        spec.verification = v
        let problems = BRValidation.validate(BackupSchedule(name: "s", namespace: "ns", spec: spec)).filter { $0.field.hasPrefix("spec.verification") }
        #expect(problems.map(\.field) == ["spec.verification.pointInTime"] && problems.first?.message.contains("logBackupTemplate") == true, "\(problems)")
        var log = BackupSpec()
        log.br = BRConfig(cluster: "prod")
        log.local = LocalStorageProvider(volume: Volume(name: "v", source: ["hostPath": ["path": "/b"]]), volumeMount: VolumeMount(name: "v", mountPath: "/b"), prefix: "log")
        spec.logBackupTemplate = log
        #expect(BRValidation.validate(BackupSchedule(name: "s", namespace: "ns", spec: spec)).filter { $0.field.hasPrefix("spec.verification") }.isEmpty)
        #expect(Verification.steps(v) == [.snapshot, .pointInTime] && Verification.steps(VerificationSpec(target: v.target)) == [.snapshot])

        // The point: the checkpoint when it is past the snapshot and not ahead of the clock.
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let nowTs = TSO.fromUnixSeconds(1_800_000_000)
        let commit = TSO.fromUnixSeconds(1_799_999_000)
        #expect(Verification.pointInTime(snapshotCommitTs: commit, logCheckpointTs: nil, now: now) == nil)
        #expect(Verification.pointInTime(snapshotCommitTs: commit, logCheckpointTs: commit, now: now) == nil)
        #expect(Verification.pointInTime(snapshotCommitTs: commit, logCheckpointTs: commit - 5, now: now) == nil)
        #expect(Verification.pointInTime(snapshotCommitTs: commit, logCheckpointTs: commit + 7, now: now) == commit + 7)
        #expect(Verification.pointInTime(snapshotCommitTs: commit, logCheckpointTs: nowTs + 99_999, now: now) == nowTs)

        // The point step's Restore: the log's storage, the backup as its full backup, the point; its checks named for it.
        var backup = Backup(name: "b1", namespace: "ns", spec: template)
        backup.metadata.uid = "u1"
        let logBackup = Backup(name: "log-s", namespace: "ns", spec: log)
        var restore = Verification.makePointRestore(of: backup, log: logBackup, restoredTs: commit + 7, spec: v, schedule: nil)
        #expect(restore.name == "verify-b1-pitr" && restore.spec.restoreMode == .pitr && restore.spec.pitrRestoredTs == String(commit + 7))
        #expect(restore.spec.local?.prefix == "log" && restore.spec.pitrFullBackupStorageProvider.local?.prefix == "full")
        #expect(restore.spec.snapshotStorage.local?.prefix == "full" && VerificationStep(of: restore) == .pointInTime)
        restore.status.phase = .failed
        restore.status.conditions = [RestoreCondition(type: .failed, status: .true, reason: "RestoreDataFromRemoteFailed",
                                                      message: "[BR:Restore:ErrRestoreChecksumMismatch]restore checksum mismatch")]
        #expect(Verification.checks(of: restore, checksum: true).map { "\($0.name)=\($0.passed)" } == ["point-in-time=true", "point-in-time checksum=false"])
        restore.status.conditions = [RestoreCondition(type: .failed, status: .true, reason: "RestoreDataFromRemoteFailed", message: "the log does not hold it")]
        #expect(Verification.checks(of: restore, checksum: true).map { "\($0.name)=\($0.passed)" } == ["point-in-time=false"])
    }

    @Test("the on-demand verification annotation: NAMESPACE/CLUSTER or CLUSTER; anything else is refused")
    func verifyAnnotation() {
        #expect(Verification.target(annotation: "verify/scratch") == VerificationTarget(cluster: "scratch", clusterNamespace: "verify"))
        #expect(Verification.target(annotation: "scratch") == VerificationTarget(cluster: "scratch"))
        for bad in ["", "a/b/c", "/scratch", "verify/", "Scratch", "scratch cluster"] {
            #expect(Verification.target(annotation: bad) == nil, "\(bad)")
        }
    }

    @Test("compact backups (reference 2.5)")
    func compact() {
        var spec = CompactSpec()
        spec.concurrency = 0
        spec.maxRetryTimes = -1
        #expect(BRValidation.validate(CompactBackup(name: "c", namespace: "ns", spec: spec)).map(\.message) == [
            "start-ts must be set", "end-ts must be set", "concurrency must be greater than 0",
            "maxRetryTimes must be greater than or equal to 0",
        ])
    }
}

@Suite("Offline validate command")
struct ManifestValidatorTests {
    func run(_ text: String) -> ManifestValidator.Report {
        ManifestValidator().validate(paths: ["-"], standardInput: { Data(text.utf8) })
    }

    @Test("every example and seed manifest is valid")
    func examples() {
        let report = ManifestValidator().validate(paths: [Paths.repo("examples")])
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.unreadable.isEmpty)
        #expect(report.checked >= 10)
        #expect(report.exitCode == 0)
    }

    @Test("validate refuses a verification into the schedule's own cluster, named as the API server would not (namespace written out)")
    func verificationIntoProduction() {
        let report = run("""
            apiVersion: pingcap.com/v1alpha1
            kind: BackupSchedule
            metadata: {name: nightly, namespace: tidb}
            spec:
              schedule: "0 2 * * *"
              backupTemplate:
                br: {cluster: basic}
                s3: {provider: aws, region: us-west-1, bucket: b}
              verification:
                target: {cluster: basic, clusterNamespace: tidb}
            """)
        #expect(report.exitCode == 1)
        #expect(report.problems == ["BackupSchedule/tidb/nightly: spec.verification.target: \(Verification.productionMessage)"], "\(report.problems)")
    }

    @Test("a missing bucket, a bad cron field and an unknown backup type each name their field; exit 1")
    func acceptance() {
        let report = run("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: no-bucket, namespace: test1}
            spec:
              br: {cluster: demo1}
              s3: {provider: aws, region: us-west-1}
            ---
            apiVersion: pingcap.com/v1alpha1
            kind: BackupSchedule
            metadata: {name: bad-cron, namespace: test1}
            spec:
              schedule: "61 * * * *"
              backupTemplate:
                br: {cluster: demo1}
                s3: {provider: aws, bucket: b}
            ---
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: bad-type, namespace: test1}
            spec:
              backupType: everything
              br: {cluster: demo1}
              s3: {provider: aws, bucket: b}
            ---
            apiVersion: v1
            kind: Secret
            metadata: {name: s3-secret}
            """)
        #expect(report.exitCode == 1)
        #expect(report.problems == [
            "Backup/test1/no-bucket: spec.s3.bucket: bucket should be configured for BR in spec of test1/no-bucket",
            "BackupSchedule/test1/bad-cron: spec.schedule: parse backup schedule test1/bad-cron cron format 61 * * * * failed, err: End of range (61) above maximum (59): 61",
            "Backup/test1/bad-type: spec.backupType: invalid backup type everything for BR in spec of test1/bad-type",
        ])
    }

    @Test("schema problems: unknown fields, wrong types, CRD enums and required members")
    func schema() {
        let report = run("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: b}
            spec:
              cleanPolicy: Sometimes
              backupTyp: full
              br: {concurrency: four}
              s3: {bucket: b}
            """)
        #expect(report.exitCode == 1)
        #expect(Set(report.problems) == [
            "Backup/default/b: spec.cleanPolicy: Unsupported value: \"Sometimes\": supported values: \"Retain\", \"OnFailure\", \"Delete\"",
            "Backup/default/b: spec.backupTyp: unknown field \"spec.backupTyp\"",
            "Backup/default/b: spec.br.cluster: Required value",
            "Backup/default/b: spec.br.concurrency: Invalid value: \"string\": spec.br.concurrency in body must be of type integer: \"string\"",
            "Backup/default/b: spec.s3.provider: Required value",
        ])
    }

    @Test("logStop together with logSubcommand breaks the CEL rule")
    func celRule() {
        let report = run("""
            apiVersion: pingcap.com/v1alpha1
            kind: Backup
            metadata: {name: lb}
            spec: {backupMode: log, logStop: true, logSubcommand: log-stop, br: {cluster: c}, s3: {provider: aws, bucket: b}}
            """)
        #expect(report.problems == ["Backup/default/lb: spec.logStop: Field `logStop` is the old version field, please use `logSubcommand` instead"])
    }

    @Test("unparsable YAML and missing files exit 2 with the file and line")
    func unreadable() throws {
        let bad = run("apiVersion: pingcap.com/v1alpha1\nkind: Backup\nspec: [oops\n")
        #expect(bad.exitCode == 2)
        #expect(bad.unreadable.first?.hasPrefix("<stdin>:") == true)
        let missing = ManifestValidator().validate(paths: ["/nonexistent/file.yaml"])
        #expect(missing.exitCode == 2)
        #expect(missing.unreadable == ["/nonexistent/file.yaml: no such file or directory"])
    }

    @Test("the wrong apiVersion or an unknown pingcap.com kind is reported")
    func kinds() {
        let report = run("""
            apiVersion: pingcap.com/v1
            kind: Backup
            metadata: {name: b}
            spec: {}
            ---
            apiVersion: pingcap.com/v1alpha1
            kind: Snapshot
            metadata: {name: s}
            """)
        #expect(report.problems == [
            "Backup/default/b: apiVersion: pingcap.com/v1 is not served; use pingcap.com/v1alpha1",
            "Snapshot/default/s: kind: Snapshot is not a kind of pingcap.com served by this operator",
        ])
    }
}
