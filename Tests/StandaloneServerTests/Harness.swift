import Foundation
import KubeModel
import Testing
import TestServers

@testable import StandaloneServer
import StandaloneTesting

/// A standalone server on a random loopback port in a temporary directory, and the real kubectl
/// pointed at it.
final class Harness: @unchecked Sendable {
    let directory: String
    let server: StandaloneAPIServer
    let task: Task<Void, any Error>
    let port: Int

    static func temporaryDirectory() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("standalone-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    init(directory: String = Harness.temporaryDirectory(), jobs: JobRunner.Configuration = JobRunner.Configuration()) async throws {
        self.directory = directory
        var config = StandaloneAPIServer.Configuration.product(dataDirectory: DataDirectory(directory), port: 0)
        config.bookmarkInterval = .seconds(1)
        config.jobs = jobs
        let server = try StandaloneAPIServer(configuration: config)
        self.server = server
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        task = Task { try await server.run { port in continuation.yield(port) } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw HarnessError(description: "server did not start") }
        self.port = port
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }

    var kubeconfig: String { DataDirectory(directory).kubeconfig }

    struct HarnessError: Error, CustomStringConvertible { var description: String }

    struct Output {
        var code: Int32
        var stdout: String
        var stderr: String
    }

    static var kubectlPath: String? {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
            .map { "\($0)/kubectl" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs kubectl with this server's kubeconfig; `input` is written to its standard input.
    ///
    /// The wait happens on a GCD thread: the server under test shares Swift's cooperative thread pool
    /// with the tests, and blocking that pool would starve it.
    @discardableResult
    func kubectl(_ args: [String], input: String? = nil, timeout: TimeInterval = 120) async throws -> Output {
        guard let path = Self.kubectlPath else { throw HarnessError(description: "kubectl is not installed (scripts/test installs it)") }
        let env = ["KUBECONFIG": kubeconfig, "HOME": directory]
        return try await Self.runAsync(path, args, environment: env, input: input, timeout: timeout)
    }

    static func runAsync(_ executable: String, _ args: [String], environment: [String: String] = [:], input: String? = nil,
                         timeout: TimeInterval = 30) async throws -> Output {
        // A thread of its own: blocking on Dispatch's global queue or the concurrency pool holds a
        // thread the other tests' tasks need (two on a 2-core machine).
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try run(executable, args, environment: environment, input: input, timeout: timeout) })
            }
        }
    }

    static func run(_ executable: String, _ args: [String], environment: [String: String] = [:], input: String? = nil,
                    timeout: TimeInterval = 30) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe()
        let err = Pipe()
        let inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
        try inp.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        // Read both pipes fully (a full pipe would block the child).
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        Thread.detachNewThread { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        Thread.detachNewThread { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning { p.terminate() }
        let code = TestServers.waitForExit(p, timeout: 60) ?? -1
        group.wait()
        return Output(code: code, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }
}


enum RepoPaths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func path(_ p: String) -> String { root.appendingPathComponent(p).path }
}
