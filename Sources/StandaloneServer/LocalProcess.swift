import Foundation
import Spawn
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process started with `Spawn` (an empty signal mask, default dispositions), in a process
/// group of its own that also holds the tools the job binary runs (br, dumpling).
final class LocalProcess: @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?

    struct SpawnError: Error, CustomStringConvertible { var description: String }

    /// Starts `executable` with `arguments`; stdout and stderr go to `logPath` (appended), stdin is empty.
    init(executable: String, arguments: [String], environment: [String: String], directory: String, logPath: String,
         onExit: @escaping @Sendable (Int32, Bool) -> Void) throws {
        let child: pid_t
        do {
            child = try Spawn.start(executable, arguments, environment: environment, directory: directory,
                                    files: [.open(0, "/dev/null", O_RDONLY, 0), .open(1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644),
                                            .dup2(from: 1, to: 2)],
                                    newProcessGroup: true)
        } catch let e as Spawn.SpawnError {
            throw SpawnError(description: e.description)
        }
        pid = child
        let me = self
        // One thread per child waits for it; children are few (bounded by the runner's concurrency).
        Thread.detachNewThread {
            // A container ends with its main process: whatever it started and left behind (a tool
            // still running after the job binary was killed) goes too, as with a PID namespace. The
            // group is killed before the main process is reaped: until then its number cannot have
            // been given to another process, whose group this would otherwise hit.
            Spawn.waitUntilExited(child)
            kill(-child, SIGKILL)
            me.lock.lock()
            let (code, signaled) = Spawn.wait(child)
            me.exitStatus = code
            me.lock.unlock()
            onExit(code, signaled)
        }
    }

    var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return exitStatus == nil
    }

    /// As a kubelet stops a container: SIGTERM to the main process only (the job binary passes it on
    /// to the tool it runs, once), SIGKILL to the whole process group (the container's end takes every
    /// process in it).
    func signal(_ sig: Int32) {
        // Under the lock the process is not reaped yet (at most a zombie), so its pid is still its own.
        lock.lock()
        defer { lock.unlock() }
        guard exitStatus == nil else { return }
        kill(sig == SIGKILL ? -pid : pid, sig)
    }
}
