import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who a pod's process is, kept on the pod so that a server started after a crash can find the job
/// processes of the run before it: the boot, the process group (the job process leads it) and the
/// leader's start time in clock ticks since boot. A pid alone could have been reused; a pid with the
/// same boot and a start no earlier than the recorded one belongs to that job.
struct ProcessRecord: Equatable, Sendable {
    static let annotation = "standalone.tidb-backup-operator/process"

    var boot: String
    var processGroup: pid_t
    var startTicks: UInt64

    /// `<boot id>/<process group>/<start ticks>`.
    var annotationValue: String { "\(boot)/\(processGroup)/\(startTicks)" }

    init(boot: String, processGroup: pid_t, startTicks: UInt64) {
        self.boot = boot
        self.processGroup = processGroup
        self.startTicks = startTicks
    }

    init?(annotationValue: String) {
        let parts = annotationValue.split(separator: "/").map(String.init)
        guard parts.count == 3, let group = pid_t(parts[1]), group > 1, let ticks = UInt64(parts[2]) else { return nil }
        self.init(boot: parts[0], processGroup: group, startTicks: ticks)
    }

    /// The record of a process this server just started (nil where /proc is not there).
    static func of(_ pid: pid_t) -> ProcessRecord? {
        guard let boot = ProcessTable.bootID, let entry = ProcessTable.entry(pid) else { return nil }
        return ProcessRecord(boot: boot, processGroup: entry.processGroup, startTicks: entry.startTicks)
    }

    /// The processes of this job that still exist: same boot, in its group, started no earlier than it.
    /// A group whose leader is alive but started at another time is not this job's: the number was
    /// given again after the job's processes were gone (pids wrap around at `pid_max`, 32768 by default).
    func livingMembers() -> [pid_t] {
        livingMembers(in: ProcessTable.all(), boot: ProcessTable.bootID)
    }

    func livingMembers(in table: [ProcessTable.Entry], boot current: String?) -> [pid_t] {
        guard boot == current else { return [] }
        if let leader = table.first(where: { $0.pid == processGroup }), leader.startTicks != startTicks { return [] }
        return table.filter { $0.processGroup == processGroup && $0.startTicks >= startTicks }.map(\.pid)
    }
}

/// What Linux's /proc says about processes.
enum ProcessTable {
    struct Entry: Equatable {
        var pid: pid_t
        var processGroup: pid_t
        var startTicks: UInt64
    }

    static var bootID: String? {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// One process's group and start time from `/proc/PID/stat`. The command name (field 2) may hold
    /// spaces and parentheses, so fields are counted from the last `)`.
    static func entry(_ pid: pid_t) -> Entry? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return parse(text)
    }

    static func parse(_ stat: String) -> Entry? {
        guard let close = stat.lastIndex(of: ")"), let pid = pid_t(stat.prefix(while: { $0 != " " })) else { return nil }
        // After ")": field 3 (state) is index 0, so field 5 (pgrp) is index 2 and field 22 (starttime) index 19.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let group = pid_t(fields[2]), let start = UInt64(fields[19]) else { return nil }
        // A zombie has exited: nothing to stop.
        if fields[0] == "Z" { return nil }
        return Entry(pid: pid, processGroup: group, startTicks: start)
    }

    static func all() -> [Entry] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { pid_t($0) }.compactMap(entry)
    }
}
