import BRModel
import Foundation
import KubeModel
import Testing

@testable import BackupManager

func decode<T: KubeResource>(_ type: T.Type, _ yaml: String) throws -> T {
    try KubeCodec.decode(T.self, from: try KubeYAML.documents(yaml)[0].value)
}

let bk1 = """
    apiVersion: pingcap.com/v1alpha1
    kind: Backup
    metadata: {name: bk1, namespace: tidb}
    spec:
      br: {cluster: basic, logLevel: info, concurrency: 4, checksum: true, sendCredToTikv: true, options: ["--lastbackupts=1"]}
      s3: {provider: aws, region: us-west-2, bucket: my-bucket, prefix: my-folder}
    """

@Suite("br / dumpling / lightning argv (reference 6.3.1, 6.4, 8.9–8.11)")
struct ArgumentTests {
    @Test("8.10: the snapshot backup argv, with commitTs, with cluster TLS")
    func backupArgv() throws {
        var b = try decode(Backup.self, bk1)
        let pd = ToolArguments.defaultPD(br: b.spec.br!, namespace: b.namespace)
        #expect(try ToolArguments.brBackup(b, pd: pd, clusterTLS: false) == [
            "backup", "full", "--pd=basic-pd.tidb:2379", "--log-level=info", "--send-credentials-to-tikv=true",
            "--storage=s3://my-bucket/my-folder", "--s3.region=us-west-2", "--s3.provider=aws", "--concurrency=4", "--checksum=true",
            "--lastbackupts=1",
        ])
        #expect(try ToolArguments.storagePath(b.spec.storage) == "s3://my-bucket/my-folder")
        let tls = try ToolArguments.brBackup(b, pd: pd, clusterTLS: true)
        #expect(Array(tls[2...5]) == ["--pd=basic-pd.tidb:2379", "--ca=/var/lib/cluster-client-tls/ca.crt",
                                      "--cert=/var/lib/cluster-client-tls/tls.crt", "--key=/var/lib/cluster-client-tls/tls.key"])
        b.spec.commitTs = "400036290571534337"
        #expect(Array(try ToolArguments.brBackup(b, pd: pd, clusterTLS: false).prefix(4)) ==
                ["backup", "full", "--backupts=400036290571534337", "--pd=basic-pd.tidb:2379"])
    }

    @Test("8.9: storage flags and paths for every provider")
    func storage() throws {
        var s3 = S3StorageProvider(provider: "aws", region: "us-west-2", bucket: "bk", prefix: "", endpoint: "https://s3.example.com")
        s3.sse = "aws:kms"
        s3.acl = "private"
        s3.storageClass = "STANDARD"
        s3.forcePathStyle = false
        #expect(try ToolArguments.storageArgs(StorageProvider(s3: s3)) == [
            "--storage=s3://bk?force-path-style=false", "--s3.region=us-west-2", "--s3.provider=aws", "--s3.endpoint=https://s3.example.com",
            "--s3.sse=aws:kms", "--s3.acl=private", "--s3.storage-class=STANDARD",
        ])
        #expect(try ToolArguments.storagePath(StorageProvider(s3: S3StorageProvider(provider: "aws", bucket: "bk/a", prefix: "/b/"))) == "s3://bk/a/b")
        #expect(try ToolArguments.storageArgs(StorageProvider(s3: S3StorageProvider(provider: "ceph", bucket: "test1-demo1", endpoint: "http://10.0.0.1"))) ==
                ["--storage=s3://test1-demo1", "--s3.provider=ceph", "--s3.endpoint=http://10.0.0.1"])
        var gcs = GCSStorageProvider(projectId: "p", bucket: "g", prefix: "p")
        gcs.storageClass = "NEARLINE"
        gcs.objectAcl = "private"
        #expect(try ToolArguments.storageArgs(StorageProvider(gcs: gcs)) == ["--storage=gcs://g/p/", "--gcs.storage-class=NEARLINE", "--gcs.predefined-acl=private"])
        #expect(try ToolArguments.storagePath(StorageProvider(gcs: gcs)) == "gcs://g/p/")
        var az = AzblobStorageProvider(container: "c", prefix: "p")
        az.storageAccount = "acct"
        az.sasToken = "sv=1&sig=x"
        az.accessTier = "Hot"
        #expect(try ToolArguments.storageArgs(StorageProvider(azblob: az)) == ["--storage=azure://c/p/?account-name=acct&sas-token=sv%3D1%26sig%3Dx", "--azblob.access-tier=Hot"])
        // The token is in BR's argv (TiDB Operator's contract) but never in a log line.
        let line = "running: br backup full --storage=azure://c/p/?account-name=acct&sas-token=sv%3D1%26sig%3Dx --azblob.access-tier=Hot"
        #expect(Redactor(secrets: [])(line) == "running: br backup full --storage=azure://c/p/?account-name=acct&sas-token=<redacted> --azblob.access-tier=Hot")
        let local = LocalStorageProvider(volume: Volume(name: "v"), volumeMount: VolumeMount(name: "v", mountPath: "/bk"), prefix: "x")
        #expect(try ToolArguments.storageArgs(StorageProvider(local: local)) == ["--storage=local:///bk/x"])
        #expect(try ToolArguments.storageArgs(StorageProvider(s3: S3StorageProvider(provider: "aws", bucket: "bk", prefix: "full")), flag: "full-backup-storage") ==
                ["--full-backup-storage=s3://bk/full"])
        #expect(throws: ArgumentError.self) { try ToolArguments.storageArgs(StorageProvider()) }
    }

    @Test("8.10: log start / truncate and PiTR restore argv")
    func logAndPitr() throws {
        var lb = try decode(Backup.self, bk1.replacingOccurrences(of: "name: bk1", with: "name: lb"))
        lb.spec.br?.options = nil
        lb.spec.commitTs = "443000000000000000"
        let start = try ToolArguments.brLog(lb, subcommand: "log-start", pd: "basic-pd.tidb:2379", clusterTLS: false)
        #expect(Array(start.prefix(5)) == ["log", "start", "--task-name=lb", "--start-ts=443000000000000000", "--pd=basic-pd.tidb:2379"])
        #expect(throws: ArgumentError.self) { try ToolArguments.brLog(lb, subcommand: "log-truncate", pd: "x", clusterTLS: false) }
        lb.spec.logTruncateUntil = "443100000000000000"
        #expect(Array(try ToolArguments.brLog(lb, subcommand: "log-truncate", pd: "basic-pd.tidb:2379", clusterTLS: false).prefix(4)) ==
                ["log", "truncate", "--until=443100000000000000", "--pd=basic-pd.tidb:2379"])
        let rt = try decode(Restore.self, """
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: rt, namespace: tidb}
            spec:
              restoreMode: pitr
              pitrRestoredTs: "443123456789"
              logRestoreStartTs: "443123456780"
              br: {cluster: basic}
              s3: {provider: aws, region: us-west-2, bucket: my-bucket, prefix: log}
            """)
        let argv = try ToolArguments.brRestore(rt, pd: "basic-pd.tidb:2379", clusterTLS: false, pitrRestoredTs: "443123456789")
        #expect(Array(argv.prefix(3)) == ["restore", "point", "--pd=basic-pd.tidb:2379"])
        #expect(Array(argv.suffix(2)) == ["--restored-ts=443123456789", "--start-ts=443123456780"])
        var noStart = rt
        noStart.spec.logRestoreStartTs = nil
        #expect(throws: ArgumentError.self) { try ToolArguments.brRestore(noStart, pd: "x", clusterTLS: false) }
    }

    @Test("8.11: Dumpling filters and options")
    func dumpling() throws {
        var b = try decode(Backup.self, bk1)
        b.spec.br = nil
        #expect(ToolArguments.dumplingOptions(b) == ToolArguments.defaultDumplingFilters + ["--threads=16", "--rows=10000"])
        b.spec.dumpling = DumplingConfig()
        b.spec.dumpling?.options = ["--consistency=snapshot"]
        #expect(ToolArguments.dumplingOptions(b) == ToolArguments.defaultDumplingFilters + ["--consistency=snapshot"])
        b.spec.dumpling?.tableFilter = ["mysql2.*"]
        #expect(ToolArguments.dumplingOptions(b) == ["--filter", "mysql2.*", "--consistency=snapshot"])
        b.spec.tableFilter = ["mysql.*"]
        b.spec.dumpling?.options = nil
        #expect(ToolArguments.dumplingOptions(b) == ["--filter", "mysql.*", "--threads=16", "--rows=10000"])
        #expect(dumplingCommitTs("Started dump at: 2020-11-10 10:40:19\nSHOW MASTER STATUS:\n\tLog: tidb-binlog\n\tPos: 409054741514944513\n\tGTID:\n\nFinished dump at: x\n") == "409054741514944513")
    }

    @Test("6.7: the Dumpling export argv (TLS with and without the CA) and Lightning's, whose password sits in its config file")
    func exportAndImportArgv() throws {
        var b = try decode(Backup.self, bk1)
        b.spec.br = nil
        let endpoint = TiDBEndpoint(host: "basic-tidb.tidb", port: 4000, user: "root", password: "pw")
        #expect(ToolArguments.dumplingExport(b, output: "/backup/my-bucket/my-folder/backup-x", endpoint: endpoint, clientTLS: false, skipClientCA: false)
                == ["--output=/backup/my-bucket/my-folder/backup-x", "--host=basic-tidb.tidb", "--port=4000", "--user=root", "--password=pw"]
                + ToolArguments.defaultDumplingFilters + ["--threads=16", "--rows=10000"])
        let tls = ToolArguments.dumplingExport(b, output: "/o", endpoint: endpoint, clientTLS: true, skipClientCA: false)
        #expect(Array(tls.suffix(3)) == ["--ca=/var/lib/tidb-client-tls/ca.crt", "--cert=/var/lib/tidb-client-tls/tls.crt", "--key=/var/lib/tidb-client-tls/tls.key"])
        let noCA = ToolArguments.dumplingExport(b, output: "/o", endpoint: endpoint, clientTLS: true, skipClientCA: true)
        #expect(Array(noCA.suffix(2)) == ["--cert=/var/lib/tidb-client-tls/tls.crt", "--key=/var/lib/tidb-client-tls/tls.key"])

        var r = try decode(Restore.self, """
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: rt, namespace: tidb}
            spec:
              to: {host: basic-tidb.tidb, secretName: s}
              s3: {provider: aws, path: "s3://b/p/backup-x.tgz"}
            """)
        r.spec.tableFilter = ["shop.*", "!shop.tmp"]
        #expect(ToolArguments.lightningImport(r, dataDirectory: "/backup/b/p/backup-x", endpoint: endpoint, configFile: "/tmp/l/c.toml",
                                              clientTLS: false, skipClientCA: false)
                == ["--status-addr=0.0.0.0:8289", "--backend=tidb", "--server-mode=false", "--log-file=-", "--config=/tmp/l/c.toml",
                    "--tidb-user=root", "--tidb-host=basic-tidb.tidb", "--d=/backup/b/p/backup-x", "--tidb-port=4000",
                    "-f", "shop.*", "-f", "!shop.tmp"])
        #expect(ToolArguments.lightningConfig(password: "a\"b\\c\nd") == "[tidb]\npassword = \"a\\\"b\\\\c\\nd\"\n")
        #expect(Manager.exportName(Date(timeIntervalSince1970: 1_709_622_489)) == "backup-2024-03-05T07:08:09Z")
    }

    @Test("8.11: BR output: error lines, progress lines, operation records")
    func brOutput() throws {
        #expect(BRLog.isErrorLine("2026-06-17 [ERROR] boom"))
        #expect(BRLog.isErrorLine("x [fatal] y"))
        #expect(!BRLog.isErrorLine("{\"level\":\"error\",\"message\":\"x\"}"))
        #expect(!BRLog.isErrorLine("plain warning"))
        #expect(BRLog.progress("abcdef, [progress] [step=\"Restore KV Files\"] [progress=10.9%] abcdefeg")! == ("Restore KV Files", "10.9"))
        #expect(BRLog.progress("… [step=\"Full Restore\"] [progress=%] …")! == ("Full Restore", ""))
        #expect(BRLog.progress("… [step=\"Restore KV Files\"] abcdefeg") == nil)
        let now = Time(unixSeconds: 0)
        let op = BRLog.operation("[2026/06/17 10:00:00.000 +00:00] [INFO] [context.go:122] [\"BR operation started\"] [operation_id=op-a] [operation_started_at=2026-06-17T10:00:00Z] [host=br-pod] [pid=123] [command=\"log truncate [manual]\"]", now: now)
        #expect(op?.operationID == "op-a")
        #expect(op?.command == "log truncate [manual]")
        #expect(op?.startedAt == Time(rfc3339: "2026-06-17T10:00:00Z"))
        #expect(op?.observedAt == Time(rfc3339: "2026-06-17T10:00:00Z"))
        #expect(BRLog.operation("{\"message\":\"BR operation started\",\"operation_id\":\"x\"}", now: now) == nil)
        #expect(BRLog.operation("[\"ordinary log\"] [detail=\"BR operation started\"] [operation_id=op-a]", now: now) == nil)
    }

    @Test("backupmeta: versions, declared size, inline files, split index")
    func backupMeta() throws {
        func varint(_ v: UInt64) -> [UInt8] {
            var v = v
            var out: [UInt8] = []
            repeat {
                var b = UInt8(v & 0x7F)
                v >>= 7
                if v != 0 { b |= 0x80 }
                out.append(b)
            } while v != 0
            return out
        }
        func f(_ n: UInt64, _ v: UInt64) -> [UInt8] { varint(n << 3) + varint(v) }
        func b(_ n: UInt64, _ bytes: [UInt8]) -> [UInt8] { varint(n << 3 | 2) + varint(UInt64(bytes.count)) + bytes }
        let file1 = b(1, Array("1.sst".utf8)) + f(11, 1000)
        let old = f(1, 7) + b(4, file1) + b(4, b(1, Array("2.sst".utf8)) + f(11, 500)) + f(5, 4_400_000) + f(6, 4_500_000)
        let m = try BackupMetaSummary.parse(Data(old))
        #expect(m.endVersion == 4_500_000)
        #expect(m.inlineFilesSize == 1500)
        #expect(m.backupSize == 0)
        let split = f(6, 9) + b(13, b(2, file1) + b(1, b(1, Array("backupmeta.datafile.000000001".utf8)))) + f(25, 123_456)
        let s = try BackupMetaSummary.parse(Data(split))
        #expect(s.backupSize == 123_456)
        #expect(s.indexedFilesSize == 1000)
        #expect(s.metaFileNames == ["backupmeta.datafile.000000001"])
        #expect(throws: ProtoError.self) { try BackupMetaSummary.parse(Data([0x0A, 0x05, 0x01])) }
    }

    @Test("tool location: in-pod path, then the configured command (a launcher such as tiup), then PATH")
    func toolLocation() throws {
        let podded = ToolLocator(environment: ["PATH": "/usr/bin"], fileExists: { $0 == "/var/lib/br-bin/br" || $0 == "/usr/bin/br" })
        #expect(try podded.locate(.br).executable == "/var/lib/br-bin/br")
        let tiup = ToolLocator(environment: ["PATH": "/opt/tiup/bin", "TIDB_BACKUP_MANAGER_BR": "tiup br:v8.5.0"], fileExists: { $0 == "/opt/tiup/bin/tiup" })
        let (exe, prefix) = try tiup.locate(.br)
        #expect(exe == "/opt/tiup/bin/tiup")
        #expect(prefix == ["br:v8.5.0"])
        let path = ToolLocator(environment: ["PATH": "/a:/b"], fileExists: { $0 == "/b/tidb-lightning" })
        #expect(try path.locate(.lightning).executable == "/b/tidb-lightning")
        #expect(throws: ArgumentError.self) { try ToolLocator(environment: ["PATH": "/a"], fileExists: { _ in false }).locate(.dumpling) }
    }
}
