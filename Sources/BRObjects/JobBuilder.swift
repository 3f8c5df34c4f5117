import BRModel
import Foundation
import KubeAPI
import KubeModel

/// A Job (or its environment) could not be built: TiDB Operator's reason and message.
public struct JobBuildError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var message: String
    public var description: String { "\(reason): \(message)" }
    public init(_ reason: String, _ message: String) {
        self.reason = reason
        self.message = message
    }
}

/// What the operator process contributes to every Job.
public struct JobSettings: Sendable {
    /// The image whose entrypoint is `tidb-backup-manager` (standalone maps it to the local binary).
    public var backupManagerImage = BRDefaults.backupManagerImage
    /// The operator's own `TZ`, handed to jobs that do not set one (reference 3.6.1).
    public var timeZone: String? = ProcessInfo.processInfo.environment["TZ"]
    public init() {}
}

/// Builds the batch/v1 Jobs of reference 3.6 and 4.4: environment, volumes, init containers, labels,
/// annotations and owner reference. Secrets are read to check they exist and hold the keys the job
/// will need; their values never leave the Secret (the pod reads them through `secretKeyRef`).
public struct JobBuilder: Sendable {
    let api: any KubeAPI
    let settings: JobSettings

    public init(api: any KubeAPI, settings: JobSettings) {
        self.api = api
        self.settings = settings
    }

    // MARK: Environment (3.6.1)

    func secret(_ namespace: String, _ name: String, reason: String, what: String) async throws -> [String: JSONValue] {
        do {
            let s = try await api.get(.secrets, namespace: namespace, name: name)
            var keys: [String: JSONValue] = [:]
            for (k, v) in s["data"]?.objectValue ?? JSONObject() { keys[k] = v }
            for (k, v) in s["stringData"]?.objectValue ?? JSONObject() { keys[k] = v }
            return keys
        } catch let e as KubeAPIError {
            throw JobBuildError(reason, "\(what) get \(namespace == "" ? "" : namespace + "/")secret \(name) failed, err: \(e.message)")
        }
    }

    func passwordEnv(namespace: String, objectName: String, kind: String, access: TiDBAccessConfig, useKMS: Bool) async throws -> [EnvVar] {
        let keys = try await secret(namespace, access.secretName, reason: "GetTidbSecretFailed", what: "\(kind) \(namespace)/\(objectName)")
        guard keys["password"] != nil else {
            throw JobBuildError("KeyNotExist", "\(kind) \(namespace)/\(objectName) tidb secret \(access.secretName) missing password key password")
        }
        let name = useKMS ? "KMS_ENCRYPTED_BACKUP_MANAGER_PASSWORD" : "BACKUP_MANAGER_PASSWORD"
        return [.fromSecret(name, secret: access.secretName, key: "password")]
    }

    /// User variables replace generated ones of the same name in place; new names are appended; then TZ.
    func merged(_ generated: [EnvVar], user: [EnvVar]?) -> [EnvVar] {
        var env = generated
        for u in user ?? [] {
            if env.contains(where: { $0.name == u.name }) {
                env = env.map { $0.name == u.name ? u : $0 }
            } else {
                env.append(u)
            }
        }
        if let tz = settings.timeZone, !env.contains(where: { $0.name == "TZ" }) { env.append(EnvVar(name: "TZ", value: tz)) }
        return env
    }

    // MARK: Pieces

    static let brLogToTerm = EnvVar(name: "BR_LOG_TO_TERM", value: "\u{01}")

    static func tag(of image: String?) -> String {
        guard let image, let colon = image.lastIndex(of: ":") else { return "" }
        let tag = String(image[image.index(after: colon)...])
        return tag.contains("/") ? "" : tag
    }

    static func toolImage(_ toolImage: String?, default base: String, tikvTag: String) -> String {
        if let t = toolImage, !t.isEmpty { return t.contains(":") || tikvTag.isEmpty ? t : "\(t):\(tikvTag)" }
        return tikvTag.isEmpty ? base : "\(base):\(tikvTag)"
    }

    public static func ownerReference(apiVersion: String = "pingcap.com/v1alpha1", kind: String, metadata: ObjectMeta) -> JSONValue {
        ["apiVersion": .string(apiVersion), "kind": .string(kind), "name": .string(metadata.name ?? ""),
         "uid": .string(metadata.uid ?? ""), "controller": true, "blockOwnerDeletion": true]
    }

    public static func stringMap(_ m: [String: String]) -> JSONValue {
        .object(JSONObject(m.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
    }

    static func encode<T: Encodable>(_ v: T) -> JSONValue { KubeCodec.encodeValue(v) }

    struct PodParts {
        var env: [EnvVar]
        var args: [String]
        var volumes: [JSONValue] = []
        var mounts: [JSONValue] = []
        var initContainers: [JSONValue] = []
        var containerName: String
    }

    struct Common {
        var name: String
        var namespace: String
        var labels: [String: String]
        var annotations: [String: String]
        var owner: JSONValue
        var backoffLimit: Int
        var serviceAccount: String
        var automountToken: Bool?
        var resources: ResourceRequirements
        var tolerations: [Toleration]?
        var imagePullSecrets: [LocalObjectReference]?
        var affinity: JSONValue?
        var priorityClassName: String?
        var podSecurityContext: JSONValue?
        var terminationGracePeriodSeconds: Int?
    }

    func job(_ c: Common, _ p: PodParts) -> JSONValue {
        var mounts = p.mounts
        var volumes = p.volumes
        if c.automountToken == false {
            volumes.append(["name": "kube-api-access", "projected": ["defaultMode": 420, "sources": [
                ["serviceAccountToken": ["expirationSeconds": 3607, "path": "token"]],
                ["configMap": ["name": "kube-root-ca.crt", "items": [["key": "ca.crt", "path": "ca.crt"]]]],
                ["downwardAPI": ["items": [["path": "namespace", "fieldRef": ["apiVersion": "v1", "fieldPath": "metadata.namespace"]]]]],
            ]]])
            mounts.append(["name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true])
        }
        var container: JSONValue = [
            "name": .string(p.containerName), "image": .string(settings.backupManagerImage), "imagePullPolicy": "IfNotPresent",
            "args": .array(p.args.map { .string($0) }), "env": Self.encode(p.env), "resources": Self.encode(c.resources),
        ]
        if !mounts.isEmpty { container["volumeMounts"] = .array(mounts) }
        var podSpec: JSONValue = ["restartPolicy": "Never", "serviceAccountName": .string(c.serviceAccount),
                                  "containers": [container]]
        if !p.initContainers.isEmpty { podSpec["initContainers"] = .array(p.initContainers) }
        if !volumes.isEmpty { podSpec["volumes"] = .array(volumes) }
        if let a = c.automountToken { podSpec["automountServiceAccountToken"] = .bool(a) }
        if let t = c.tolerations, !t.isEmpty { podSpec["tolerations"] = Self.encode(t) }
        if let s = c.imagePullSecrets, !s.isEmpty { podSpec["imagePullSecrets"] = Self.encode(s) }
        if let a = c.affinity, !a.isNull { podSpec["affinity"] = a }
        if let p = c.priorityClassName, !p.isEmpty { podSpec["priorityClassName"] = .string(p) }
        if let s = c.podSecurityContext, !s.isNull { podSpec["securityContext"] = s }
        if let g = c.terminationGracePeriodSeconds { podSpec["terminationGracePeriodSeconds"] = .int(Int64(g)) }
        var templateMeta: JSONValue = ["labels": Self.stringMap(c.labels)]
        if !c.annotations.isEmpty { templateMeta["annotations"] = Self.stringMap(c.annotations) }
        var meta: JSONValue = ["name": .string(c.name), "namespace": .string(c.namespace), "labels": Self.stringMap(c.labels),
                               "ownerReferences": [c.owner]]
        var jobAnnotations = c.annotations
        jobAnnotations[BRLabels.jobBuilderAnnotation] = BRLabels.jobBuilder
        meta["annotations"] = Self.stringMap(jobAnnotations)
        return ["apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                "spec": ["backoffLimit": .int(Int64(c.backoffLimit)), "template": ["metadata": templateMeta, "spec": podSpec]]]
    }

    static func mount(_ name: String, _ path: String, readOnly: Bool = false) -> JSONValue {
        var m: JSONValue = ["name": .string(name), "mountPath": .string(path)]
        if readOnly { m["readOnly"] = true }
        return m
    }

    static func secretVolume(_ name: String, _ secret: String) -> JSONValue { ["name": .string(name), "secret": ["secretName": .string(secret)]] }
    static func emptyDir(_ name: String) -> JSONValue { ["name": .string(name), "emptyDir": .emptyObject] }

    static func copyInit(_ name: String, image: String, from: String, to dir: String, resources: ResourceRequirements,
                         volume: String? = nil) -> JSONValue {
        ["name": .string(name), "image": .string(image), "imagePullPolicy": "IfNotPresent",
         "command": ["/bin/sh", "-c"], "args": .array([.string("cp \(from) \(dir)/; echo '\(name) copy finished'")]),
         "volumeMounts": [mount(volume ?? (dir as NSString).lastPathComponent, dir)], "resources": encode(resources)]
    }

    /// A tool copied into the pod by an init container from its image: an emptyDir at `dir`, mounted
    /// in the main container, filled from `from` (`br`, `dumpling`, `tidb-lightning`).
    static func addBinaryCopy(_ tool: String, image: String, from: String, dir: String, resources: ResourceRequirements,
                              parts: inout PodParts) {
        let volume = (dir as NSString).lastPathComponent
        parts.volumes.append(emptyDir(volume))
        parts.mounts.append(mount(volume, dir))
        parts.initContainers.append(copyInit(tool, image: image, from: from, to: dir, resources: resources))
    }

    /// The TiDB client certificate of a Dumpling or Lightning job, when one is named.
    /// A cluster outside Kubernetes names its PD endpoints (`spec.pdAddresses`); the backup manager
    /// then uses them instead of the `<cluster>-pd.<namespace>:2379` service name.
    static func addPD(_ cluster: TidbCluster, _ parts: inout PodParts) {
        if let pds = cluster.spec.pdAddresses?.filter({ !$0.isEmpty }), !pds.isEmpty { parts.args.append("--pd=\(pds.joined(separator: ","))") }
    }

    static func addClientTLSSecret(_ secret: String?, parts: inout PodParts) {
        guard let secret, !secret.isEmpty else { return }
        parts.volumes.append(secretVolume("tidb-client-tls", secret))
        parts.mounts.append(mount("tidb-client-tls", "/var/lib/tidb-client-tls", readOnly: true))
    }

    /// The environment of a BR job: the TiDB password when the object names a TiDB, the storage
    /// credentials, and `BR_LOG_TO_TERM`.
    func brEnv(namespace: String, objectName: String, kind: String, access: TiDBAccessConfig?, storage: StorageProvider,
               useKMS: Bool) async throws -> [EnvVar] {
        var env: [EnvVar] = []
        if let access { env += try await passwordEnv(namespace: namespace, objectName: objectName, kind: kind, access: access, useKMS: useKMS) }
        env += try await storageEnv(namespace: namespace, storage: storage, useKMS: useKMS)
        env.append(Self.brLogToTerm)
        return env
    }

    /// TLS switches and volumes shared by BR backup and restore jobs (reference 3.6.2).
    func brTLS(cluster: TidbCluster, access: TiDBAccessConfig?, parts: inout PodParts) {
        let name = cluster.metadata.name ?? ""
        if cluster.spec.tlsClusterEnabled {
            parts.args.append("--cluster-tls=true")
            parts.volumes.append(Self.secretVolume("cluster-client-tls", "\(name)-cluster-client-secret"))
            parts.mounts.append(Self.mount("cluster-client-tls", "/var/lib/cluster-client-tls", readOnly: true))
        }
        let tidbTLS = cluster.spec.tidb?["tlsClient"]?["enabled"] == .bool(true)
        let skip = cluster.metadata.annotations?["tidb.tidb.pingcap.com/skip-tls-when-connect-tidb"] != nil
        if let access, tidbTLS, !skip {
            parts.args.append("--client-tls=true")
            if cluster.spec.tidb?["tlsClient"]?["skipInternalClientCA"] == .bool(true) { parts.args.append("--skipClientCA=true") }
            let secret = (access.tlsClientSecretName ?? "").isEmpty ? "\(name)-tidb-client-secret" : access.tlsClientSecretName!
            parts.volumes.append(Self.secretVolume("tidb-client-tls", secret))
            parts.mounts.append(Self.mount("tidb-client-tls", "/var/lib/tidb-client-tls", readOnly: true))
        }
    }

    func additional(_ volumes: [Volume]?, _ mounts: [VolumeMount]?, local: LocalStorageProvider?, parts: inout PodParts) {
        parts.volumes += (volumes ?? []).map { Self.encode($0) }
        parts.mounts += (mounts ?? []).map { Self.encode($0) }
        if let local {
            parts.volumes.append(Self.encode(local.volume))
            parts.mounts.append(Self.encode(local.volumeMount))
        }
    }

    func common(_ backup: Backup, name: String, component: String, backoffLimit: Int) -> Common {
        Common(name: name, namespace: backup.namespace, labels: BRLabels.backupJobLabels(backup, component: component),
               annotations: backup.metadata.annotations ?? [:], owner: Self.ownerReference(kind: "Backup", metadata: backup.metadata),
               backoffLimit: backoffLimit, serviceAccount: backup.spec.effectiveServiceAccount,
               automountToken: backup.spec.automountServiceAccountToken, resources: backup.spec.resources,
               tolerations: backup.spec.tolerations, imagePullSecrets: backup.spec.imagePullSecrets, affinity: backup.spec.affinity,
               priorityClassName: backup.spec.priorityClassName, podSecurityContext: backup.spec.podSecurityContext)
    }

    // MARK: Jobs

    /// `backup-<name>` running BR (snapshot mode).
    public func brBackupJob(_ backup: Backup, cluster: TidbCluster) async throws -> JSONValue {
        let parts = try await brBackupParts(backup, cluster: cluster, modeArgs: backup.flowJobs.first?.modeArguments ?? ["--mode=snapshot"])
        return job(common(backup, name: backup.jobName, component: "backup", backoffLimit: 0), parts)
    }

    /// `backup-<name>-result`: reads a snapshot backup's result from its metadata in storage.
    public func backupResultJob(_ backup: Backup, cluster: TidbCluster) async throws -> JSONValue {
        let flow = backup.resultJob
        let parts = try await brBackupParts(backup, cluster: cluster, modeArgs: flow.modeArguments)
        return job(common(backup, name: flow.name, component: "backup", backoffLimit: 0), parts)
    }

    /// The pod of a BR backup Job: `tidb-backup-manager backup … <modeArgs> [--pd]`, BR copied in, TLS,
    /// the storage environment and the spec's volumes.
    func brBackupParts(_ backup: Backup, cluster: TidbCluster, modeArgs: [String]) async throws -> PodParts {
        let ns = backup.namespace
        let env = try await brEnv(namespace: ns, objectName: backup.name, kind: "backup", access: backup.spec.from,
                                  storage: backup.spec.storage, useKMS: backup.spec.useKMS ?? false)
        let tag = Self.tag(of: cluster.tikvImage)
        var parts = PodParts(env: merged(env, user: backup.spec.env),
                             args: ["backup", "--namespace=\(ns)", "--backupName=\(backup.name)"], containerName: "backup")
        if !tag.isEmpty { parts.args.append("--tikvVersion=\(tag)") }
        parts.args += modeArgs
        Self.addPD(cluster, &parts)
        brTLS(cluster: cluster, access: backup.spec.from, parts: &parts)
        Self.addBinaryCopy("br", image: Self.toolImage(backup.spec.toolImage, default: "pingcap/br", tikvTag: tag), from: "/br",
                           dir: "/var/lib/br-bin", resources: backup.spec.resources, parts: &parts)
        additional(backup.spec.additionalVolumes, backup.spec.additionalVolumeMounts, local: backup.spec.local, parts: &parts)
        return parts
    }

    /// `backup-<name>` running Dumpling (reference 3.6.3).
    public func exportJob(_ backup: Backup) async throws -> JSONValue {
        let ns = backup.namespace
        guard let from = backup.spec.from else { throw JobBuildError("InvalidSpec", "spec.from is required for a Dumpling export") }
        let storage = backup.spec.storage
        let (bucket, type): (String, String)
        if let s3 = storage.s3 { (bucket, type) = (s3.bucket ?? "", "s3") } else if let gcs = storage.gcs { (bucket, type) = (gcs.bucket ?? "", "gcs") } else {
            throw JobBuildError("UnsupportedStorageType", "unsupported storage type \(storage.type.rawValue)")
        }
        var env = try await passwordEnv(namespace: ns, objectName: backup.name, kind: "backup", access: from, useKMS: backup.spec.useKMS ?? false)
        env += try await storageEnv(namespace: ns, storage: storage, useKMS: backup.spec.useKMS ?? false)
        try await ensurePVC(namespace: ns, name: backup.dumplingPVCName, size: backup.spec.effectiveStorageSize,
                            storageClassName: backup.spec.storageClassName, attributesClass: backup.spec.volumeAttributesClassName,
                            labels: [BRLabels.name: "backup", BRLabels.managedBy: "backup-operator",
                                     BRLabels.instance: BRLabels.backupJobLabels(backup)[BRLabels.instance] ?? backup.name],
                            owner: "\(ns)/\(backup.name)")
        var parts = PodParts(env: merged(env, user: backup.spec.env),
                             args: ["export", "--namespace=\(ns)", "--backupName=\(backup.name)", "--bucket=\(bucket)", "--storageType=\(type)"],
                             containerName: "backup")
        if let tls = from.tlsClientSecretName, !tls.isEmpty { parts.args.append("--client-tls=true") }
        parts.volumes.append(["name": "backup", "persistentVolumeClaim": ["claimName": .string(backup.dumplingPVCName)]])
        parts.mounts.append(Self.mount("backup", "/backup"))
        additional(backup.spec.additionalVolumes, backup.spec.additionalVolumeMounts, local: nil, parts: &parts)
        Self.addClientTLSSecret(from.tlsClientSecretName, parts: &parts)
        if let tool = backup.spec.toolImage, !tool.isEmpty {
            Self.addBinaryCopy("dumpling", image: tool, from: "/dumpling", dir: "/var/lib/dumpling-bin", resources: backup.spec.resources,
                               parts: &parts)
        }
        return job(common(backup, name: backup.jobName, component: "backup", backoffLimit: 0), parts)
    }

    /// `clean-<name>` (reference 3.6.4).
    public func cleanJob(_ backup: Backup) async throws -> JSONValue {
        let env = try await storageEnv(namespace: backup.namespace, storage: backup.spec.storage, useKMS: backup.spec.useKMS ?? false)
        var parts = PodParts(env: merged(env, user: backup.spec.env),
                             args: ["clean", "--namespace=\(backup.namespace)", "--backupName=\(backup.name)"], containerName: "backup")
        if let local = backup.spec.local {
            parts.volumes.append(Self.encode(local.volume))
            parts.mounts.append(Self.encode(local.volumeMount))
        }
        parts.volumes += (backup.spec.additionalVolumes ?? []).map { Self.encode($0) }
        parts.mounts += (backup.spec.additionalVolumeMounts ?? []).map { Self.encode($0) }
        return job(common(backup, name: backup.cleanJobName, component: "clean", backoffLimit: 6), parts)
    }

    func restoreCommon(_ restore: Restore, name: String) -> Common {
        var c = Common(name: name, namespace: restore.namespace, labels: BRLabels.restoreJobLabels(restore),
                       annotations: restore.metadata.annotations ?? [:], owner: Self.ownerReference(kind: "Restore", metadata: restore.metadata),
                       backoffLimit: Int(restore.spec.backoffLimit ?? 0), serviceAccount: restore.spec.effectiveServiceAccount,
                       automountToken: restore.spec.automountServiceAccountToken, resources: restore.spec.resources,
                       tolerations: restore.spec.tolerations, imagePullSecrets: restore.spec.imagePullSecrets, affinity: restore.spec.affinity,
                       priorityClassName: restore.spec.priorityClassName, podSecurityContext: restore.spec.podSecurityContext)
        c.terminationGracePeriodSeconds = 10
        return c
    }

    /// `restore-<name>` running BR (reference 4.4).
    public func brRestoreJob(_ restore: Restore, cluster: TidbCluster) async throws -> JSONValue {
        let parts = try await brRestoreParts(restore, cluster: cluster, modeArgs: restore.flowJobs.first?.modeArguments ?? ["--mode=snapshot"])
        return job(restoreCommon(restore, name: restore.jobName), parts)
    }

    /// The pod of a BR restore Job: `tidb-backup-manager restore … [--pd] <modeArgs>`, BR copied in, TLS,
    /// the storage environment and the spec's volumes.
    func brRestoreParts(_ restore: Restore, cluster: TidbCluster, modeArgs: [String]) async throws -> PodParts {
        let ns = restore.namespace
        let env = try await brEnv(namespace: ns, objectName: restore.name, kind: "restore", access: restore.spec.to,
                                  storage: restore.spec.storage, useKMS: restore.spec.useKMS ?? false)
        let tag = Self.tag(of: cluster.tikvImage)
        var parts = PodParts(env: merged(env, user: restore.spec.env),
                             args: ["restore", "--namespace=\(ns)", "--restoreName=\(restore.name)"], containerName: "restore")
        if !tag.isEmpty { parts.args.append("--tikvVersion=\(tag)") }
        Self.addPD(cluster, &parts)
        parts.args += modeArgs
        brTLS(cluster: cluster, access: restore.spec.to, parts: &parts)
        Self.addBinaryCopy("br", image: Self.toolImage(restore.spec.toolImage, default: "pingcap/br", tikvTag: tag), from: "/br",
                           dir: "/var/lib/br-bin", resources: restore.spec.resources, parts: &parts)
        additional(restore.spec.additionalVolumes, restore.spec.additionalVolumeMounts, local: restore.spec.local, parts: &parts)
        return parts
    }

    /// `restore-<name>` running Lightning (reference 4.4).
    public func importJob(_ restore: Restore) async throws -> JSONValue {
        let ns = restore.namespace
        guard let to = restore.spec.to else { throw JobBuildError("InvalidSpec", "spec.to is required for a Lightning import") }
        let storage = restore.spec.storage
        var path: String
        if let s3 = storage.s3 {
            path = s3.path ?? ""
            if !path.hasPrefix("s3://") { path = "s3://" + path }
        } else if let gcs = storage.gcs {
            path = gcs.path ?? ""
            if !path.hasPrefix("gcs://") { path = "gcs://" + path }
        } else {
            throw JobBuildError("UnsupportedStorageType", "unsupported storage type \(storage.type.rawValue)")
        }
        var env = try await passwordEnv(namespace: ns, objectName: restore.name, kind: "restore", access: to, useKMS: restore.spec.useKMS ?? false)
        env += try await storageEnv(namespace: ns, storage: storage, useKMS: restore.spec.useKMS ?? false)
        try await ensurePVC(namespace: ns, name: restore.lightningPVCName, size: restore.spec.effectiveStorageSize,
                            storageClassName: restore.spec.storageClassName, attributesClass: restore.spec.volumeAttributesClassName,
                            labels: [BRLabels.name: "restore", BRLabels.managedBy: "restore-operator",
                                     BRLabels.instance: BRLabels.restoreJobLabels(restore)[BRLabels.instance] ?? restore.name],
                            owner: "\(ns)/\(restore.name)")
        var parts = PodParts(env: merged(env, user: restore.spec.env),
                             args: ["import", "--namespace=\(ns)", "--restoreName=\(restore.name)", "--backupPath=\(path)"],
                             containerName: "restore")
        if let tls = to.tlsClientSecretName, !tls.isEmpty { parts.args.append("--client-tls=true") }
        parts.volumes.append(["name": "restore", "persistentVolumeClaim": ["claimName": .string(restore.lightningPVCName)]])
        parts.mounts.append(Self.mount("restore", "/backup"))
        additional(restore.spec.additionalVolumes, restore.spec.additionalVolumeMounts, local: nil, parts: &parts)
        Self.addClientTLSSecret(to.tlsClientSecretName, parts: &parts)
        if let tool = restore.spec.toolImage, !tool.isEmpty {
            Self.addBinaryCopy("lightning", image: tool, from: "/tidb-lightning", dir: "/var/lib/lightning-bin",
                               resources: restore.spec.resources, parts: &parts)
        }
        var c = restoreCommon(restore, name: restore.jobName)
        c.backoffLimit = 0
        return job(c, parts)
    }

    /// The shared Dumpling / Lightning PVC (reference 3.6.5).
    func ensurePVC(namespace: String, name: String, size: String, storageClassName: String?, attributesClass: String?,
                   labels: [String: String], owner: String, ownerReference: JSONValue? = nil) async throws {
        guard let wanted = Quantity.bytes(size) else {
            throw JobBuildError("ParseStorageSizeFailed", "\(owner) parse storage size \(size) failed")
        }
        if let existing = try? await api.get(.persistentVolumeClaims, namespace: namespace, name: name) {
            let have = existing.value(at: ["spec", "resources", "requests", "storage"])?.stringValue ?? ""
            if let haveBytes = Quantity.bytes(have), haveBytes < wanted {
                throw JobBuildError("PVCStorageSizeTooSmall",
                    "\(owner)'s backup pvc \(name)'s storage size \(have) is less than expected storage size \(size), please delete old pvc to continue")
            }
            return
        }
        var spec: JSONValue = ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": .string(size)]]]
        if let s = storageClassName, !s.isEmpty { spec["storageClassName"] = .string(s) }
        if let s = attributesClass, !s.isEmpty { spec["volumeAttributesClassName"] = .string(s) }
        var metadata: JSONValue = ["name": .string(name), "namespace": .string(namespace), "labels": Self.stringMap(labels)]
        if let ownerReference { metadata["ownerReferences"] = [ownerReference] }
        let pvc: JSONValue = ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec]
        do {
            _ = try await api.create(.persistentVolumeClaims, namespace: namespace, object: pvc)
        } catch let e as KubeAPIError where e.isAlreadyExists {
        } catch let e as KubeAPIError {
            throw JobBuildError("CreatePVCFailed", "\(owner) create backup pvc \(name) failed, err: \(e.message)")
        }
    }
}

/// Kubernetes resource quantities, as far as sizes go (`100Gi`, `500M`, `1e9`).
enum Quantity {
    static func bytes(_ text: String) -> Double? {
        let suffixes: [(String, Double)] = [("Ki", 0x1p10), ("Mi", 0x1p20), ("Gi", 0x1p30), ("Ti", 0x1p40), ("Pi", 0x1p50), ("Ei", 0x1p60),
                                            ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18)]
        let t = text.trimmingCharacters(in: .whitespaces)
        for (s, m) in suffixes where t.hasSuffix(s) {
            return Double(t.dropLast(s.count)).map { $0 * m }
        }
        return Double(t)
    }
}
