import Foundation
import Spawn
#if canImport(Glibc)
import Glibc
#endif

public enum OutputStream: String, Sendable { case stdout, stderr }

/// The result of running a tool.
public struct ToolResult: Sendable {
    public var status: Int32
    /// Killed by this signal (0: exited normally).
    public var signal: Int32
    /// Every stderr line and the stdout lines at ERROR/FATAL/PANIC level (reference 6.2).
    public var errorSummary: [String]
    public var succeeded: Bool { status == 0 && signal == 0 }

    public var exitDescription: String { signal != 0 ? "signal: \(signalName(signal))" : "exit status \(status)" }

    /// TiDB Operator's message for a failed BR run of `namespace/name` (its wording kept).
    func brFailure(_ options: ManagerOptions) -> String {
        "cluster \(options.namespace)/\(options.name), wait br command failed, errMsg \(errorSummary.joined(separator: "\n")), err: \(exitDescription)"
    }
}

func signalName(_ s: Int32) -> String {
    switch s {
    case SIGKILL: "killed"
    case SIGTERM: "terminated"
    case SIGSEGV: "segmentation fault"
    case SIGABRT: "aborted"
    default: "signal \(s)"
    }
}

/// Replaces every secret value in a text with `<redacted>`.
public struct Redactor: Sendable {
    public var secrets: [String]
    public init(secrets: [String]) { self.secrets = secrets.filter { $0.count >= 1 } }
    public func callAsFunction(_ text: String) -> String {
        var out = text
        for s in secrets where out.contains(s) { out = out.replacingOccurrences(of: s, with: "<redacted>") }
        // An Azure SAS token rides in the storage URL BR is given (`spec.azblob.sasToken`, as TiDB
        // Operator passes it): its value never reaches a log line.
        if out.contains("sas-token=") {
            out = out.replacingOccurrences(of: #"sas-token=[^&\s"']+"#, with: "sas-token=<redacted>", options: .regularExpression)
        }
        return out
    }
}

/// Runs a tool, streams its stdout and stderr line by line into our log and to a handler, and
/// builds the error summary. A SIGTERM to the backup manager is passed on to the running tool.
public final class ToolRunner: @unchecked Sendable {
    public var log: @Sendable (String) -> Void
    public var redact: Redactor

    public init(redact: Redactor, log: @escaping @Sendable (String) -> Void = { writeLogLine($0) }) {
        self.redact = redact
        self.log = log
    }

    /// The child currently running (for signal forwarding).
    nonisolated(unsafe) static var currentChild: pid_t = 0

    public func run(_ executable: String, _ arguments: [String], environment: [String: String], workingDirectory: String? = nil,
                    onLine: @escaping @Sendable (OutputStream, String) -> Void = { _, _ in }) async throws -> ToolResult {
        log("running: \(redact(([executable] + arguments).joined(separator: " ")))")
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else { throw ArgumentError("cannot start \(executable): pipe: \(String(cString: strerror(errno)))") }
        let out = FileHandle(fileDescriptor: outPipe[0], closeOnDealloc: true)
        let err = FileHandle(fileDescriptor: errPipe[0], closeOnDealloc: true)
        let summary = LineCollector()
        let redact = self.redact
        let log = self.log
        func reader(_ handle: FileHandle, _ stream: OutputStream) -> Thread {
            Thread {
                var buffer = Data()
                func emit(_ raw: Data) {
                    var line = String(decoding: raw, as: UTF8.self)
                    while line.hasSuffix("\r") { line.removeLast() }
                    log("[\(stream.rawValue)] " + redact(line))
                    if stream == .stderr || BRLog.isErrorLine(line) { summary.add(redact(line)) }
                    onLine(stream, line)
                }
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                    while let nl = buffer.firstIndex(of: 0x0A) {
                        emit(buffer[buffer.startIndex..<nl])
                        buffer.removeSubrange(buffer.startIndex...nl)
                    }
                }
                if !buffer.isEmpty { emit(buffer) }
                summary.finishOne()
            }
        }
        // posix_spawn, not Foundation's Process: the tool must start with an empty signal mask (our
        // threads block SIGTERM, and BR would inherit that) and stay in our process group (so that a
        // signal to the job's group, or our death, reaches it).
        let pid: pid_t
        do {
            pid = try Spawn.start(executable, arguments, environment: environment, directory: workingDirectory,
                                  files: [.open(0, "/dev/null", O_RDONLY, 0), .dup2(from: outPipe[1], to: 1), .dup2(from: errPipe[1], to: 2)],
                                  newProcessGroup: false)
        } catch {
            close(outPipe[1])
            close(errPipe[1])
            throw ArgumentError("cannot start \(executable): \(error)")
        }
        close(outPipe[1])
        close(errPipe[1])
        Self.currentChild = pid
        let t1 = reader(out, .stdout)
        let t2 = reader(err, .stderr)
        t1.start()
        t2.start()
        let (code, signaled) = await withCheckedContinuation { (c: CheckedContinuation<(Int32, Bool), Never>) in
            Thread.detachNewThread {
                let result = Spawn.wait(pid)
                summary.waitForReaders(2)
                c.resume(returning: result)
            }
        }
        Self.currentChild = 0
        Self.toolsFinished += 1
        return ToolResult(status: signaled ? -1 : code, signal: signaled ? code : 0, errorSummary: summary.lines)
    }

    /// Installs handlers that pass SIGTERM and SIGINT on to the running tool (and remember that the
    /// manager was asked to stop).
    public static func forwardTerminationSignals() {
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                terminationRequested = true
                let child = currentChild
                if child > 0 {
                    print("got signal \(sig) to exit, passing it on to the running tool")
                    kill(child, sig)
                } else if toolsFinished > 0 {
                    // The tool has ended and its result is being written: exiting now would lose a
                    // backup that succeeded (the operator would retry it). Finish within the grace
                    // period the pod has before SIGKILL, and leave on our own at its end.
                    print("got signal \(sig) to exit after the tool has finished: writing its result first (at most \(Int(resultGrace)) s)")
                    DispatchQueue.global().asyncAfter(deadline: .now() + resultGrace) { exit(128 + sig) }
                } else {
                    print("got signal \(sig) to exit before any tool ran")
                    exit(128 + sig)
                }
            }
            source.resume()
            signalSources.append(source)
        }
    }

    /// How long a job whose tool has finished goes on after SIGTERM to write its result: under a pod's
    /// default grace period (30 s), and under the standalone server's.
    nonisolated(unsafe) public static var resultGrace: TimeInterval = 25
    /// Tool runs that have ended in this process.
    nonisolated(unsafe) static var toolsFinished = 0

    nonisolated(unsafe) static var signalSources: [any DispatchSourceSignal] = []
    nonisolated(unsafe) public static var terminationRequested = false
}

final class LineCollector: @unchecked Sendable {
    let lock = NSCondition()
    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
    var storage: [String] = []
    var finished = 0

    func add(_ line: String) {
        lock.lock()
        storage.append(line)
        lock.unlock()
    }

    func finishOne() {
        lock.lock()
        finished += 1
        lock.broadcast()
        lock.unlock()
    }

    func waitForReaders(_ n: Int) {
        lock.lock()
        while finished < n { lock.wait() }
        lock.unlock()
    }
}

/// Writes one line to standard output at once (the job log).
public func writeLogLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
