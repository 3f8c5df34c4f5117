import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starting a child with `posix_spawn`: an empty signal mask and default dispositions for the
/// termination signals, only the descriptors it is given, optionally a process group of its own.
///
/// Foundation's `Process` hands the spawning thread's signal mask to the child, and the threads of a
/// Swift program (libdispatch's, the concurrency pool's) block SIGTERM and SIGINT; such a child never
/// sees a termination request. A Go program such as BR keeps an inherited block on SIGTERM, so BR would
/// never resume GC when its init Job is deleted. `Process` also puts the child in a new process group,
/// so a signal to the parent's group misses it, and a killed parent leaves it running.
public enum Spawn {
    public enum FileAction: Sendable {
        /// Opens `path` with `flags` (and `mode`) as descriptor `fd`.
        case open(Int32, String, Int32, mode_t)
        /// Makes `to` a copy of `from`.
        case dup2(from: Int32, to: Int32)
    }

    public struct SpawnError: Error, CustomStringConvertible, Sendable { public var description: String }

    /// Starts `executable` (a path) with `arguments`. Descriptors 0, 1 and 2 come from `files`; every
    /// other descriptor of this process is closed in the child. With `directory`, the child starts there.
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String], directory: String? = nil,
                             files: [FileAction], newProcessGroup: Bool) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for f in files {
            switch f {
            case .open(let fd, let path, let flags, let mode): posix_spawn_file_actions_addopen(&actions, fd, path, flags, mode)
            case .dup2(let from, let to): posix_spawn_file_actions_adddup2(&actions, from, to)
            }
        }
        // Nothing else reaches the child: not a listening socket, not a database, not the other end of
        // its own pipes. Descriptors that Foundation or NIO open without O_CLOEXEC would be inherited.
        guard let addCloseFrom else {
            throw SpawnError(description: "this C library has no posix_spawn_file_actions_addclosefrom_np (glibc 2.34 or later is needed)")
        }
        let closed = addCloseFrom(&actions, 3)
        guard closed == 0 else { throw SpawnError(description: "posix_spawn_file_actions_addclosefrom_np: \(String(cString: strerror(closed)))") }

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
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        // The working directory: glibc's chdir action (2.29 and later) for a program named by its path;
        // otherwise a shell changes directory and then replaces itself with the program (found on
        // PATH), which receives its arguments as positional parameters (no quoting involved).
        var argv = [executable] + arguments
        if let directory {
            if executable.contains("/"), let addChdir {
                let failed = addChdir(&actions, directory)
                guard failed == 0 else { throw SpawnError(description: "posix_spawn_file_actions_addchdir_np: \(String(cString: strerror(failed)))") }
            } else {
                argv = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory, executable] + arguments
            }
        }
        var environment = environment
        // As a shell's `cd` would leave it: the child's PWD is its working directory.
        if let directory { environment["PWD"] = directory }
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var cArgs = argv.map { strdup($0) } + [nil]
        var cEnv = envp.map { strdup($0) } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, argv[0], &actions, &attributes, &cArgs, &cEnv)
        guard rc == 0 else { throw SpawnError(description: "posix_spawn \(executable): \(String(cString: strerror(rc)))") }
        return child
    }

    /// Blocks until `pid` has exited, without reaping it: until `wait` is called its pid (and, for a
    /// group leader, its process group id) stays taken, so a signal sent to it or to its group in the
    /// meantime cannot reach an unrelated process that was given the number again.
    public static func waitUntilExited(_ pid: pid_t) {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
    }

    /// Blocks until `pid` exits and reaps it: its exit code, or the signal that ended it.
    public static func wait(_ pid: pid_t) -> (code: Int32, signaled: Bool) {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let signaled = (status & 0x7F) != 0 && (status & 0x7F) != 0x7F
        return (signaled ? (status & 0x7F) : ((status >> 8) & 0xFF), signaled)
    }

    /// glibc's `posix_spawn_file_actions_addchdir_np` (2.29 and later), found at run time like the one below.
    private static let addChdir: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32).self)
    }()

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc module
    /// does not import; found at run time.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()
}
