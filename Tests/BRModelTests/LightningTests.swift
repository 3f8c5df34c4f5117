import Foundation
import KubeModel
import ManifestTools
import Testing

@testable import BRModel

@Suite("spec.lightning: validation, TOML merging, recovery requests, remote locations, chart conversion")
struct LightningTests {
    static func restore(_ lightning: String, extra: String = "") throws -> Restore {
        let yaml = """
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: imp, namespace: ns}
            spec:
              to: {host: basic-tidb, port: 4000, user: root, secretName: tidb-secret}
            \(extra)
              lightning:
            \(lightning.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            """
        return try KubeCodec.decode(Restore.self, from: try KubeYAML.documents(yaml)[0].value)
    }

    static func problems(_ lightning: String, extra: String = "") throws -> [String] {
        BRValidation.validate(try restore(lightning, extra: extra)).map(\.description)
    }

    @Test("a minimal local-source import is valid; the tidb backend and failFast are the defaults")
    func minimal() throws {
        let r = try Self.restore("dataSource: {local: {hostPath: /data/export}}")
        #expect(BRValidation.validate(r).isEmpty)
        #expect(r.spec.lightning?.effectiveBackend == .tidb)
        #expect(r.spec.lightning?.effectiveFailFast == true)
        #expect(r.spec.lightning?.checkpointEnabled == true)
    }

    @Test("each rule names its field", arguments: [
        ("dataSource: {}", "spec.lightning.dataSource: set one of local, remote, adhoc"),
        ("dataSource: {local: {hostPath: /d}, adhoc: {pvcName: p, backupName: b}}", "spec.lightning.dataSource: local, remote and adhoc are exclusive, found local and adhoc"),
        ("dataSource: {local: {hostPath: data}}", "spec.lightning.dataSource.local.hostPath: data is not an absolute path"),
        ("backend: local\ndataSource: {local: {hostPath: /d}}", "spec.lightning.sortedKV: the local backend sorts key-value pairs"),
        ("backend: local\nsortedKV: {storage: 10Gi}\ndataSource: {local: {hostPath: /d}}", "spec.lightning.cluster: the local backend writes to TiKV through PD"),
        ("backend: importer\ndataSource: {local: {hostPath: /d}}", "spec.lightning.backend: the importer backend was removed in TiDB 5.3"),
        ("sortedKV: {storage: lots}\ndataSource: {local: {hostPath: /d}}", "spec.lightning.sortedKV.storage: lots is not a quantity"),
        ("dataSource: {remote: {}}", "spec.lightning.dataSource.remote: set path (a tarball) or directory"),
        ("dataSource: {remote: {path: s3://b/x.tgz, directory: s3://b/x}}", "spec.lightning.dataSource.remote: path (a tarball) and directory are exclusive"),
        ("dataSource: {remote: {path: s3://b/data.zip}}", "spec.lightning.dataSource.remote.path: s3://b/data.zip is not a tarball"),
        ("dataSource: {remote: {path: ftp://b/x.tgz}}", "spec.lightning.dataSource.remote.path: ftp://b/x.tgz: unsupported scheme ftp://"),
        ("dataSource: {remote: {path: 's3:bucket/x.tar.gz'}}", "spec.lightning.dataSource.remote.secretName: s3:bucket/x.tar.gz names rclone remote s3"),
        ("dataSource: {remote: {directory: 'gcs://'}}", "spec.lightning.dataSource.remote.directory: gcs:// names no bucket"),
        ("dataSource: {adhoc: {pvcName: '', backupName: a/b}}", "spec.lightning.dataSource.adhoc.pvcName: the PersistentVolumeClaim holding the data is required"),
        ("dataSource: {adhoc: {pvcName: p, backupName: a/b}}", "spec.lightning.dataSource.adhoc.backupName: a/b must be one directory name"),
        ("tlsClient: {enabled: true}\ndataSource: {local: {hostPath: /d}}", "spec.lightning.tlsClient.tlsClientSecretName: TLS is enabled but neither cluster nor tlsClientSecretName"),
        ("config: \"[tidb]\\npassword = 'x'\\n\"\ndataSource: {local: {hostPath: /d}}", "spec.lightning.config: [tidb] password must not be in the spec"),
        ("config: \"[tidb\\n\"\ndataSource: {local: {hostPath: /d}}", "spec.lightning.config: not valid TOML: line 1: a table header must end with ]"),
        ("config: \"[a]\\nx = 1\\n[a]\\n\"\ndataSource: {local: {hostPath: /d}}", "spec.lightning.config: not valid TOML: line 3: table [a] is defined twice"),
    ])
    func rules(_ lightning: String, _ expected: String) throws {
        let problems = try Self.problems(lightning)
        #expect(problems.contains { $0.hasPrefix(expected) }, "\(problems)")
    }

    @Test("br and lightning are exclusive; spec.to is still required")
    func exclusive() throws {
        #expect(try Self.problems("dataSource: {local: {hostPath: /d}}", extra: "  br: {cluster: basic}").contains {
            $0.hasPrefix("spec.br: spec.br and spec.lightning are exclusive")
        })
        var r = try Self.restore("dataSource: {local: {hostPath: /d}}")
        r.spec.to = nil
        #expect(BRValidation.validate(r).map(\.description).contains { $0.hasPrefix("spec.to: missing cluster config") })
    }

    @Test("TOML: multi-line strings and arrays are values, not lines; the merge adds keys into the user's tables without redefining them")
    func toml() throws {
        let text = """
            # comment
            [lightning]
            level = "info"
            files = [
              "a", # ]
              "b",
            ]
            note = \"\"\"
            [not a table]
            \"\"\"
            [tidb]
            tls = "false"  # no TLS to TiDB
            [checkpoint]
            driver = "file"
            """
        let t = try TOMLText(text)
        #expect(t.tables["lightning"] == ["level", "files", "note"])
        #expect(t.sets("tidb", "tls") && !t.sets("tidb", "password"))
        let merged = t.merged(with: [("tidb", "password", "\"p\""), ("tidb", "tls", "\"cluster\""), ("checkpoint", "enable", "true"),
                                     ("checkpoint", "driver", "\"mysql\""), ("security", "ca-path", "\"/ca\"")])
        let again = try TOMLText(merged)
        #expect(again.value("tidb", "tls") == "\"false\"")
        #expect(again.value("tidb", "password") == "\"p\"")
        #expect(again.value("checkpoint", "driver") == "\"file\"")
        #expect(again.value("checkpoint", "enable") == "true")
        #expect(again.value("security", "ca-path") == "\"/ca\"")
        #expect(TOMLText.quoted("a\"b\\c\nd\u{1}") == "\"a\\\"b\\\\c\\nd\\u0001\"")
        #expect(throws: TOMLText.Problem.self) { try TOMLText("x = [1, 2") }
        #expect(throws: TOMLText.Problem.self) { try TOMLText("just words") }
    }

    @Test("recovery requests: actions, tables in either spelling, the ctl argv, and clear errors")
    func recovery() throws {
        let r = try LightningRecovery.parse("destroy-error:shop.t3, `shop`.`t4`").get()
        #expect(r.action == .destroyError && r.tables == ["`shop`.`t3`", "`shop`.`t4`"])
        #expect(r.ctlArguments == [["--checkpoint-error-destroy=`shop`.`t3`"], ["--checkpoint-error-destroy=`shop`.`t4`"]])
        #expect(try LightningRecovery.parse("ignore-error").get().ctlArguments == [["--checkpoint-error-ignore=all"]])
        #expect(try LightningRecovery.parse("remove").get().ctlArguments == [["--checkpoint-remove=all"]])
        #expect(try LightningRecovery.parse("resume").get().ctlArguments.isEmpty)
        for bad in ["destroy", "resume:a.b", "ignore-error:nodot", "ignore-error:`a`"] {
            guard case .failure(let f) = LightningRecovery.parse(bad) else { Issue.record("\(bad) accepted"); continue }
            #expect(f.description.hasPrefix(LightningLayout.recoveryAnnotation))
        }
    }

    @Test("remote locations: URLs and rclone paths; backup names as the chart derives them")
    func locations() throws {
        #expect(try RemoteLocation.parse("s3://bucket/dir/x.tar.gz").get() == RemoteLocation(scheme: "s3", rcloneRemote: nil, bucket: "bucket", key: "dir/x.tar.gz"))
        #expect(try RemoteLocation.parse("gs://b").get() == RemoteLocation(scheme: "gcs", rcloneRemote: nil, bucket: "b", key: ""))
        #expect(try RemoteLocation.parse("ceph:bench/sysbench/").get() == RemoteLocation(scheme: nil, rcloneRemote: "ceph", bucket: "bench", key: "sysbench/"))
        #expect(LightningLayout.backupName(of: "s3:bench-data-us/sysbench/sbtest_16_1e7.tar.gz") == "sbtest_16_1e7")
        #expect(LightningLayout.backupName(of: "s3://b/backup-2020-12-17T10:12:51Z.tgz") == "backup-2020-12-17T10:12:51Z")
        #expect(LightningLayout.backupName(of: "gcs://b/exports/day1/") == "day1")
    }

    // MARK: chart conversion

    static let chartTarget = """
        targetTidbCluster:
          name: basic
          namespace: tidb
          user: root
          secretName: basic-tidb-secret
          secretUserKey: user
          secretPwdKey: password
        """
    static let chartConfig = """
        config: |
          [lightning]
          level = "info"
          file = "-"
          [checkpoint]
          enable = true
          driver = "file"
          dsn = "/var/lib/tidb-lightning/tidb_lightning_checkpoint.pb"
          keep-after-success = false
        """

    /// The seed's three modes with both backends.
    static let chartModes: [(String, String)] = [
        ("local", "dataSource:\n  local:\n    nodeName: kind-worker3\n    hostPath: /data/export-20190820"),
        ("remote", "dataSource:\n  remote:\n    rcloneImage: rclone/rclone:1.55.1\n    storageClassName: local-storage\n    storage: 100Gi\n    secretName: cloud-storage-secret\n    path: s3:bench-data-us/sysbench/sbtest_16_1e7.tar.gz"),
        ("remote-directory", "dataSource:\n  remote:\n    storageClassName: local-storage\n    storage: 100Gi\n    secretName: cloud-storage-secret\n    directory: s3:bench-data-us"),
        ("adhoc", "dataSource:\n  adhoc:\n    pvcName: tidb-cluster-scheduled-backup\n    backupName: scheduled-backup-20190822-041004"),
    ]
    static let chartBackends = ["backend: local\nsortedKV:\n  storageClassName: local-storage\n  storage: 100Gi", "backend: tidb"]

    @Test("the chart's values in all three modes and both backends convert to Restores that validate accepts")
    func convertSeedValues() throws {
        for (mode, source) in Self.chartModes {
            for backend in Self.chartBackends {
                let yaml = [source, backend, "failFast: true", Self.chartTarget, "tlsCluster: {}", "tlsClient: {}", Self.chartConfig].joined(separator: "\n")
                let values = try KubeYAML.documents(yaml)[0].value
                let result = LightningChartConverter(name: "imp-\(mode)", namespace: "tidb").convert(values)
                let elsewhere = LightningChartConverter(name: "imp", namespace: "default").convert(values).restore
                #expect(elsewhere?.value(at: ["spec", "to", "host"]) == "basic-tidb.tidb" && elsewhere?.value(at: ["spec", "lightning", "clusterNamespace"]) == "tidb")
                guard let restore = result.restore else { Issue.record("\(mode): \(result.problems)"); continue }
                let text = KubeYAML.emit(restore)
                var report = ManifestValidator.Report()
                ManifestValidator().validate(text: text, source: "converted", into: &report)
                #expect(report.problems.isEmpty && report.unreadable.isEmpty && report.checked == 1, "\(mode)/\(backend): \(report.problems)\n\(text)")
                let decoded = try KubeCodec.decode(Restore.self, from: restore)
                #expect(decoded.spec.lightning?.cluster == "basic" && decoded.spec.to?.host == "basic-tidb" && decoded.spec.lightning?.clusterNamespace == nil)
                #expect(decoded.spec.lightning?.checkpoint == LightningCheckpoint(enabled: true, keepAfterSuccess: false))
                #expect(decoded.spec.lightning?.config == "[lightning]\nlevel = \"info\"\nfile = \"-\"\n")
                #expect(result.notes.contains { $0.hasPrefix("config [checkpoint] dsn") })
            }
        }
    }

    @Test("keys that cannot be mapped are each named; nothing is printed then")
    func convertRefusals() throws {
        let yaml = """
            backend: importer
            nodeSelector: {disk: ssd}
            service: {type: NodePort}
            frobnicate: 1
            dataSource:
              local: {hostPath: /d}
              remote: {path: s3://b/x.tgz}
              floppy: {drive: a}
            targetTidbCluster: {name: basic, secretName: s, secretPwdKey: pw}
            config: |
              [tidb]
              password = "hunter2"
            """
        let result = LightningChartConverter().convert(try KubeYAML.documents(yaml)[0].value)
        #expect(result.restore == nil)
        for expected in ["backend: importer", "nodeSelector:", "service:", "frobnicate:", "dataSource.floppy:", "dataSource: local, remote are set",
                         "targetTidbCluster.secretPwdKey:", "config [tidb] password:"] {
            #expect(result.problems.contains { $0.hasPrefix(expected) }, "\(expected) missing from \(result.problems)")
        }
        #expect(!result.problems.joined().contains("hunter2"))
    }
}

@Suite("examples/lightning")
struct LightningExampleTests {
    @Test("the chart values example converts to a valid Restore equal to examples/lightning/import-remote-s3.yaml in its lightning block")
    func chartExample() throws {
        let text = try String(contentsOfFile: Paths.repo("examples/lightning/tidb-lightning-chart.values"), encoding: .utf8)
        let result = LightningChartConverter(name: "import-s3", namespace: "tidb").convert(try KubeYAML.documents(text)[0].value)
        let restore = try #require(result.restore, "\(result.problems)")
        let converted = try KubeCodec.decode(Restore.self, from: restore)
        let example = try KubeCodec.decode(Restore.self, from: try yamlObjects(Paths.repo("examples/lightning/import-remote-s3.yaml"))[0])
        #expect(converted.spec.lightning?.dataSource == example.spec.lightning?.dataSource)
        #expect(converted.spec.lightning?.sortedKV == example.spec.lightning?.sortedKV)
        #expect(converted.spec.to == example.spec.to)
        #expect(BRValidation.validate(converted).isEmpty)
    }
}
