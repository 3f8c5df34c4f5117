import BRModel
import BRObjects
import Foundation
import KubeAPI
import KubeEvents
import KubeModel

/// `tidb-backup-manager compact` (reference 6.9): compaction of a log backup's range into SST files.
///
/// Steps: read the range → `br operator base64ify` encodes the storage (its output may hold
/// credentials, so it is never logged and is redacted from everything written) → `Running` →
/// `tikv-ctl compact-log-backup`, whose JSON log lines on stderr give the progress
/// ("Finishing compaction."), the compacted inputs ("Spawning compaction.") and a failure
/// ("Compaction aborted.") → `Complete` with `endTs` = the end of the range compacted.
/// A failure writes the message and exits non-zero; the controller records the attempt and retries.
public struct CompactJob: Sendable {
    let manager: Manager
    let options: ManagerOptions
    /// How often the progress is written at most (TiDB Operator: 3 s).
    var progressInterval: Duration = .seconds(3)

    func run() async throws {
        let compact = try await manager.object(CompactBackup.self, options)
        let range: (from: UInt64, until: UInt64)
        do { range = try compact.range() } catch {
            try await write(message: "\(error)")
            throw ManagerError("compact \(options.namespace)/\(options.name): \(error)")
        }
        let planned: [ToolRun]
        do { planned = try RunPlan.compact(compact, storage: Self.storagePlaceholder) } catch {
            try await write(message: "\(error)")
            throw error
        }
        let encodeArgv = planned[0].argv
        if options.dryRun {
            for run in planned { manager.log(Manager.Plan(tool: run.tool, argv: run.argv, environment: manager.environmentNames()).render()) }
            return
        }
        let encoded = try await base64ify(encodeArgv)
        let redact = Redactor(secrets: manager.redactor.secrets + [encoded])
        try await write(state: .running, message: "")
        await manager.events.record(compact, .normal, reason: "Started", message: "The compaction process has started successfully.")

        let latest = Locked<CompactProgress?>(nil)
        let spawnedMax = Locked<UInt64>(0)
        let aborted = Locked<String?>(nil)
        let (exe, prefix) = try manager.tools.locate(.tikvCtl)
        let runner = ToolRunner(redact: redact, log: manager.log)
        let publisher = Task { await publishProgress(latest) }
        let result = try await runner.run(exe, prefix + (try RunPlan.compact(compact, storage: encoded))[1].argv,
                                          environment: manager.toolEnvironment()) { stream, line in
            guard stream == .stderr, let event = CompactLogLine(line) else { return }
            switch event {
            case .progress(let p): latest.mutate { $0 = p }
            case .spawned(let maxTs): spawnedMax.mutate { $0 = max($0, maxTs) }
            case .aborted(let err): aborted.mutate { $0 = $0 ?? err }
            }
        }
        publisher.cancel()
        await publisher.value
        let failure: String? = aborted.value.map { "compaction aborted: \(redact($0))" }
            ?? (result.succeeded ? nil : "tikv-ctl compact-log-backup failed, errMsg \(result.errorSummary.suffix(5).joined(separator: "\n")), err: \(result.exitDescription)")
        if let failure {
            try await write(message: failure, progress: latest.value)
            await manager.events.record(compact, .warning, reason: "Failed", message: failure)
            throw ManagerError(failure)
        }
        manager.log("compact \(options.namespace)/\(options.name): compacted \(range.from)..\(range.until); inputs reached \(spawnedMax.value)")
        try await write(state: .complete, message: "", progress: latest.value, endTs: String(range.until))
        await manager.events.record(compact, .normal, reason: "Finished", message: "The compaction process has finished successfully.")
    }

    /// What a dry run and `plan` show in place of the storage BR encodes (it may hold credentials).
    public static let storagePlaceholder = "<base64 of the storage, from br>"

    /// tikv-ctl's argv (reference 6.9), in TiDB Operator's order.
    public static func compactArgv(storage: String, range: (from: UInt64, until: UInt64), concurrency: Int) -> [String] {
        ["--log-level", "INFO", "--log-format", "json", "compact-log-backup", "--storage-base64", storage,
         "--from", String(range.from), "--until", String(range.until), "-N", String(concurrency)]
    }

    /// `br operator base64ify …`: one line of base64 on stdout. Its stdout is never logged.
    func base64ify(_ argv: [String]) async throws -> String {
        let (exe, prefix) = try manager.tools.locate(.br)
        let out = Locked<[String]>([])
        let log = manager.log
        let runner = ToolRunner(redact: manager.redactor, log: { line in if !line.hasPrefix("[stdout]") { log(line) } })
        let result = try await runner.run(exe, prefix + argv, environment: manager.toolEnvironment()) { stream, line in
            if stream == .stdout { out.mutate { $0.append(line) } }
        }
        let encoded = out.value.map { $0.trimmingCharacters(in: .whitespaces) }.last { !$0.isEmpty } ?? ""
        guard result.succeeded, !encoded.isEmpty, Data(base64Encoded: encoded) != nil else {
            let message = result.succeeded ? "br operator base64ify printed no storage" :
                "br operator base64ify failed, errMsg \(result.errorSummary.suffix(5).joined(separator: "\n")), err: \(result.exitDescription)"
            try await write(message: message)
            throw ManagerError(message)
        }
        return encoded
    }

    /// Writes the newest progress every `progressInterval` until cancelled.
    func publishProgress(_ latest: Locked<CompactProgress?>) async {
        var written: CompactProgress?
        while !Task.isCancelled {
            try? await Task.sleep(for: progressInterval)
            guard let p = latest.value, p != written else { continue }
            written = p
            try? await write(progress: p)
        }
    }

    func write(state: CompactState? = nil, message: String? = nil, progress: CompactProgress? = nil, endTs: String? = nil) async throws {
        let redact = manager.redactor
        try await manager.update(CompactBackup.self, options) { c in
            if let state { c.status.state = state.rawValue }
            if let message { c.status.message = message.isEmpty ? nil : redact(message) }
            if let progress { c.status.progress = progress.text }
            if let endTs { c.status.endTs = endTs }
        }
    }
}

/// One line of tikv-ctl's JSON log that the compaction follows.
enum CompactLogLine: Equatable {
    case progress(CompactProgress)
    case spawned(maxTs: UInt64)
    case aborted(String)

    init?(_ line: String) {
        guard line.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        let message = (object["message"] ?? object["Message"] ?? object["msg"]) as? String
        func number(_ key: String) -> UInt64 {
            if let n = object[key] as? NSNumber { return n.uint64Value }
            if let s = object[key] as? String { return UInt64(s) ?? 0 }
            return 0
        }
        switch message {
        case "Finishing compaction.":
            self = .progress(CompactProgress(metaCompleted: number("meta_completed"), metaTotal: number("meta_total"),
                                             bytesToCompact: number("bytes_to_compact"), bytesCompacted: number("bytes_compacted")))
        case "Spawning compaction.":
            self = .spawned(maxTs: number("input_max_ts"))
        case "Compaction aborted.":
            self = .aborted((object["err"] as? String) ?? "unknown error")
        default:
            return nil
        }
    }
}

extension Manager {
    /// The `compact` sub-command: one attempt at a CompactBackup.
    public func compact(_ options: ManagerOptions) async throws {
        try await CompactJob(manager: self, options: options).run()
    }
}
