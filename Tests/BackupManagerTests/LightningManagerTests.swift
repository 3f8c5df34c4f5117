import BRModel
import BackupStorage
import Foundation
import KubeModel
import KubeTesting
import Testing

@testable import BackupManager

@Suite("tidb-backup-manager lightning: configuration, argv, output, rclone remotes, standalone mounts")
struct LightningManagerTests {
    static func spec(_ yaml: String) throws -> LightningSpec {
        try KubeCodec.decodeValue(LightningSpec.self, from: try KubeYAML.documents(yaml)[0].value)
    }

    @Test("the configuration: password and checkpoints in the data directory, merged into the user's tables; TLS paths; [tidb] tls = false for cluster TLS alone")
    func configuration() throws {
        let spec = try Self.spec("""
            dataSource: {local: {hostPath: /d}}
            tlsCluster: {enabled: true}
            config: |
              [tidb]
              sql-mode = ""
              [checkpoint]
              keep-after-success = true
            """)
        let text = try LightningConfigFile.text(spec: spec, password: "p\"w", dataDirectory: "/data/x", clusterTLS: "/tls/cluster", clientTLS: nil)
        let toml = try TOMLText(text)
        #expect(toml.value("tidb", "password") == #""p\"w""#)
        #expect(toml.value("tidb", "sql-mode") == #""""#)
        #expect(toml.value("tidb", "tls") == #""false""#)
        #expect(toml.value("checkpoint", "dsn") == #""/data/x/tidb_lightning_checkpoint.pb""#)
        #expect(toml.value("checkpoint", "keep-after-success") == "true", "the user's setting wins")
        #expect(toml.value("security", "ca-path") == #""/tls/cluster/ca.crt""#)
        #expect(!toml.sets("tidb.security", "ca-path"))

        let both = try LightningConfigFile.text(spec: try Self.spec("dataSource: {local: {hostPath: /d}}\ncheckpoint: {enabled: false}"),
                                                password: "x", dataDirectory: "/d", clusterTLS: "/c", clientTLS: "/t")
        let t2 = try TOMLText(both)
        #expect(!t2.sets("tidb", "tls") && t2.value("tidb.security", "key-path") == #""/t/tls.key""#)
        #expect(t2.value("checkpoint", "enable") == "false" && !t2.sets("checkpoint", "dsn"))
    }

    @Test("argv: backend, sorted KV and PD for local only, filters; never the password")
    func arguments() throws {
        let restore = try decode(Restore.self, """
            apiVersion: pingcap.com/v1alpha1
            kind: Restore
            metadata: {name: r, namespace: ns}
            spec:
              to: {host: h, port: 4001, user: u, secretName: s}
              tableFilter: ["shop.*"]
              lightning: {backend: local, cluster: basic, sortedKV: {storage: 1Gi}, dataSource: {local: {hostPath: /d}}}
            """)
        let endpoint = TiDBEndpoint(restore.spec.to!, environment: ["BACKUP_MANAGER_PASSWORD": "secret-pw"], clientTLS: false, skipClientCA: false)
        let argv = LightningConfigFile.arguments(restore, spec: restore.spec.lightning!, endpoint: endpoint, dataDirectory: "/d", configFile: "/c.toml",
                                                 sortedKV: "/kv", pd: "pd:2379", statusAddress: "127.0.0.1:0")
        #expect(argv == ["--status-addr=127.0.0.1:0", "--backend=local", "--server-mode=false", "--log-file=-", "--config=/c.toml", "--tidb-user=u",
                         "--tidb-host=h", "--tidb-port=4001", "--d=/d", "--sorted-kv-dir=/kv", "--pd-urls=pd:2379", "-f", "shop.*"])
        var tidb = restore.spec.lightning!
        tidb.backend = .tidb
        let plain = LightningConfigFile.arguments(restore, spec: tidb, endpoint: endpoint, dataDirectory: "/d", configFile: "/c.toml", sortedKV: "/kv", pd: "pd:2379")
        #expect(!plain.contains { $0.hasPrefix("--sorted-kv-dir") || $0.hasPrefix("--pd-urls") } && plain.contains("--backend=tidb"))
        #expect(!(argv + plain).joined().contains("secret-pw"))
    }

    @Test("Lightning's output: progress, the tables of error lines, and the checkpoint refusal with its recovery advice")
    func output() throws {
        #expect(LightningOutput.progress(#"[2026/11/30 00:00:00.000 +00:00] [INFO] [restore.go:1] [progress] [total=42.5%] [tables="2/5 (40.0%)"]"#) == 42.5)
        #expect(LightningOutput.progress("[INFO] [x] [\"restore table completed\"]") == nil)
        #expect(LightningOutput.tableNames("[table=`db`.`t 1`] and `a`.`b`, not `x`") == ["`db`.`t 1`", "`a`.`b`"])
        let out = LightningOutput()
        out.read(#"[2026/11/30] [INFO] [x] ["restore table completed"] [table=`db`.`t1`]"#)
        out.read(#"[2026/11/30] [ERROR] [x] ["restore table failed"] [table=`db`.`t3`] [error="boom"]"#)
        let plain = out.failure(summary: "boom", exit: "exit status 1", restore: "ns/r")
        #expect(plain.reason == "LoaderBackupDataFailed")
        #expect(plain.message.contains("tables: `db`.`t3`") && !plain.message.contains("`db`.`t1`"))
        #expect(plain.message.contains("\(LightningLayout.recoveryAnnotation)=destroy-error:`db`.`t3`"))
        out.read(#"[2026/11/30] [ERROR] [x] ["TiDB Lightning has failed last time. To prevent data loss, this run will stop now. Please resolve errors first"]"#)
        let refused = out.failure(summary: "s", exit: "exit status 1", restore: "ns/r")
        #expect(refused.reason == "LightningCheckpointError" && refused.message.contains("=ignore-error"))
    }

    @Test("rclone remotes: s3 (AWS, Ceph, env_auth), gcs, azureblob; a missing remote or credentials is named; secrets join the redactor")
    func rclone() throws {
        let conf = """
            # the chart's example
            [s3]
            type = s3
            provider = AWS
            env_auth = false
            access_key_id = AKIAEXAMPLE
            secret_access_key = very/secret+key
            region = us-east-1
            [ceph]
            type = s3
            provider = Ceph
            env_auth = true
            endpoint = http://ceph.local:7480
            [gcs]
            type = google cloud storage
            project_number = 12345
            service_account_credentials = {"type":"service_account","private_key":"-----BEGIN"}
            [az]
            type = azureblob
            account = acct
            key = azkey-secret
            [weird]
            type = ftp
            """
        let s3 = try RemoteSourceResolver.resolve("s3:bench/a/b.tgz", spec: StorageProvider(), rclone: conf)
        #expect(s3.provider.s3?.provider == "aws" && s3.provider.s3?.bucket == "bench" && s3.provider.s3?.region == "us-east-1")
        #expect(s3.environment == ["AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "very/secret+key"])
        #expect(s3.location.key == "a/b.tgz")
        let ceph = try RemoteSourceResolver.resolve("ceph:bucket/dir", spec: StorageProvider(), rclone: conf)
        #expect(ceph.provider.s3?.provider == "ceph" && ceph.provider.s3?.endpoint == "http://ceph.local:7480" && ceph.environment.isEmpty)
        let gcs = try RemoteSourceResolver.resolve("gcs:b/x.tar", spec: StorageProvider(), rclone: conf)
        #expect(gcs.provider.gcs?.projectId == "12345" && gcs.environment["GCS_SERVICE_ACCOUNT_JSON_KEY"]?.hasPrefix("{") == true)
        let az = try RemoteSourceResolver.resolve("az:container/x", spec: StorageProvider(), rclone: conf)
        #expect(az.provider.azblob?.container == "container" && az.environment["AZURE_STORAGE_KEY"] == "azkey-secret")
        for (location, message) in [("nope:b/x.tgz", "has no remote [nope]"), ("weird:b/x", "has type \"ftp\"")] {
            #expect(throws: (any Error).self) { _ = try RemoteSourceResolver.resolve(location, spec: StorageProvider(), rclone: conf) }
            do { _ = try RemoteSourceResolver.resolve(location, spec: StorageProvider(), rclone: conf) } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
        #expect(throws: (any Error).self) { _ = try RemoteSourceResolver.resolve("s3:b/x.tgz", spec: StorageProvider(), rclone: nil) }
        // A URL uses the Restore's settings with the URL's bucket.
        var spec = StorageProvider()
        spec.s3 = S3StorageProvider(provider: "minio", region: "r1", bucket: "other", prefix: "p")
        spec.s3?.endpoint = "http://minio:9000"
        let url = try RemoteSourceResolver.resolve("s3://data/exports/x.tgz", spec: spec, rclone: nil)
        #expect(url.provider.s3?.bucket == "data" && url.provider.s3?.prefix == nil && url.provider.s3?.endpoint == "http://minio:9000")
        #expect(url.provider.s3?.provider == "minio" && url.location.key == "exports/x.tgz")

        let manager = Manager(api: InMemoryKubeAPI(), environment: [LightningLayout.rcloneConfigEnv: conf])
        let redacted = manager.redactor("keys: very/secret+key azkey-secret")
        #expect(!redacted.contains("very/secret+key") && !redacted.contains("azkey-secret"), "\(redacted)")
    }

    @Test("standalone mounts: the longest mount path wins; paths outside every mount stay as they are")
    func mounts() {
        let m = Manager(api: InMemoryKubeAPI(), environment: ["STANDALONE_VOLUME_MOUNTS": "/var/lib/tidb-lightning=/srv/v/data\n/var/lib/tidb-lightning/x=/srv/x\n/var/lib/sorted-kv=/srv/kv"])
        #expect(m.localPath("/var/lib/tidb-lightning") == "/srv/v/data")
        #expect(m.localPath("/var/lib/tidb-lightning/day1/a.sql") == "/srv/v/data/day1/a.sql")
        #expect(m.localPath("/var/lib/tidb-lightning/x/y") == "/srv/x/y")
        #expect(m.localPath("/var/lib/tidb-lightningX") == "/var/lib/tidb-lightningX")
        #expect(m.localPath("/var/lib/sorted-kv") == "/srv/kv")
        #expect(Manager(api: InMemoryKubeAPI(), environment: [:]).localPath("/var/lib/sorted-kv") == "/var/lib/sorted-kv")
    }
}
