import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process started with `posix_spawn`, in a process group of its own, with an empty signal
/// mask and default signal dispositions.
///
/// Foundation's `Process` hands the spawning thread's signal mask to the child; server threads block
/// SIGTERM, so such a child would ignore the termination request. Signalling the group reaches the
/// tools the job binary runs (br, dumpling) too.
final class LocalProcess: @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?

    struct SpawnError: Error, CustomStringConvertible { var description: String }

    /// Starts `executable` with `arguments`; stdout and stderr go to `logPath` (appended), stdin is empty.
    init(executable: String, arguments: [String], environment: [String: String], directory: String, logPath: String,
         onExit: @escaping @Sendable (Int32, Bool) -> Void) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of the server reaches the child: not its listening socket (an orphaned job would
        // keep the port after a crash), not the database, not client connections. Descriptors that
        // Foundation or NIO open without O_CLOEXEC would otherwise be inherited.
        try Self.closeFrom(3, &actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGQUIT, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        // posix_spawn has no portable chdir action; a shell changes directory and then replaces itself
        // with the program, which receives its arguments as positional parameters (no quoting involved).
        let argv = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory, executable] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var cArgs = argv.map { strdup($0) } + [nil]
        var cEnv = envp.map { strdup($0) } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, "/bin/sh", &actions, &attributes, &cArgs, &cEnv)
        guard rc == 0 else { throw SpawnError(description: "posix_spawn \(executable): \(String(cString: strerror(rc)))") }
        pid = child
        let me = self
        let waited = child
        // One thread per child waits for it; children are few (bounded by the runner's concurrency).
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(waited, &status, 0) == -1 && errno == EINTR {}
            let signaled = (status & 0x7F) != 0 && (status & 0x7F) != 0x7F
            let code = signaled ? (status & 0x7F) : ((status >> 8) & 0xFF)
            me.lock.lock()
            me.exitStatus = code
            me.lock.unlock()
            onExit(code, signaled)
        }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc module
    /// does not import; found at run time.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    private static func closeFrom(_ fd: Int32, _ actions: inout posix_spawn_file_actions_t) throws {
        guard let addCloseFrom else {
            throw SpawnError(description: "this C library has no posix_spawn_file_actions_addclosefrom_np (glibc 2.34 or later is needed)")
        }
        let rc = addCloseFrom(&actions, fd)
        guard rc == 0 else { throw SpawnError(description: "posix_spawn_file_actions_addclosefrom_np: \(String(cString: strerror(rc)))") }
    }

    var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return exitStatus == nil
    }

    /// Signals the whole process group.
    func signal(_ sig: Int32) {
        if isRunning { kill(-pid, sig) }
    }
}
