import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGINT and SIGTERM, caught whatever disposition and mask the process inherited. A shell starts a
/// background job (`nohup cmd &`, `cmd &` in a script) with SIGINT ignored, a parent may start us with
/// signals blocked, and Dispatch's signal sources on Linux see a signal only when it reaches them rather
/// than another thread, so a stop request could go unnoticed. Here a handler of our own, installed with
/// `sigaction` (which replaces an inherited "ignore"), writes the signal to a pipe; a thread of our own
/// that has both signals unblocked reads it, so there is always a thread the signal can be delivered
/// to. A second signal while stopping ends the process at once. Child processes get default
/// dispositions back when they exec.
enum StopSignals {
    nonisolated(unsafe) private static var pipeWrite: Int32 = -1
    nonisolated(unsafe) private static var received: Int32 = 0

    private enum State {
        case waiting([Int: CheckedContinuation<String?, Never>], next: Int)
        case stopped(String)
    }
    private static let state = Mutex<State>(.waiting([:], next: 0))
    private static let installed = Mutex(false)

    /// Installs the handlers and the reader thread; from then on a stop request is never lost.
    static func install() {
        guard installed.withLock({ done in defer { done = true }; return !done }) else { return }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        pipeWrite = fds[1]
        let readEnd = fds[0]
        for sig in [SIGINT, SIGTERM] {
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = StopSignals.handle
            #else
            action.__sigaction_u.__sa_handler = StopSignals.handle
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(sig, &action, nil)
        }
        Thread.detachNewThread {
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGINT)
            sigaddset(&set, SIGTERM)
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
            var byte: UInt8 = 0
            while read(readEnd, &byte, 1) < 0 && errno == EINTR {}
            let name = Int32(byte) == SIGINT ? "SIGINT" : "SIGTERM"
            let waiting = state.withLock { state -> [CheckedContinuation<String?, Never>] in
                guard case .waiting(let list, _) = state else { return [] }
                state = .stopped(name)
                return Array(list.values)
            }
            for continuation in waiting { continuation.resume(returning: name) }
        }
    }

    /// Only async-signal-safe calls: a counter, write(2) and _exit(2).
    private static let handle: @convention(c) (Int32) -> Void = { sig in
        StopSignals.received += 1
        if StopSignals.received > 1 { _exit(128 + sig) }
        var byte = UInt8(truncatingIfNeeded: sig)
        _ = write(StopSignals.pipeWrite, &byte, 1)
    }

    /// The first stop request's name (`SIGINT`, `SIGTERM`) once there is one; nil when the waiting
    /// task is cancelled first.
    static func next() async -> String? {
        let id = state.withLock { state -> Int in
            guard case .waiting(let list, let next) = state else { return -1 }
            state = .waiting(list, next: next + 1)
            return next
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
                let answer = state.withLock { state -> String?? in
                    switch state {
                    case .stopped(let name): return .some(name)
                    case .waiting(var list, let next):
                        if Task.isCancelled { return .some(nil) }
                        list[id] = continuation
                        state = .waiting(list, next: next)
                        return .none
                    }
                }
                if case .some(let now) = answer { continuation.resume(returning: now) }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<String?, Never>? in
                guard case .waiting(var list, let next) = state, let c = list.removeValue(forKey: id) else { return nil }
                state = .waiting(list, next: next)
                return c
            }
            continuation?.resume(returning: nil)
        }
    }
}
