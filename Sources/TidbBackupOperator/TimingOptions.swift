import ArgumentParser
import BackupOperator
import KubeModel

/// The deadlines and intervals `run` and `standalone` share: one set of flags, read into one
/// `OperatorTimeouts`, so the two places the operator runs cannot drift apart.
struct TimingOptions: ParsableArguments {
    @Option(name: .customLong("job-start-timeout"),
            help: "Fail a Backup/Restore whose Job's pod has not started (unschedulable, image, Secret, claim) or not reported after this Go duration, with the pod's own reason.")
    var jobStartTimeout = "10m"

    @Option(name: .customLong("pod-start-timeout"), help: ArgumentHelp("The former name of --job-start-timeout.", visibility: .hidden))
    var podStartTimeout: String?

    @Option(name: .customLong("run-timeout"), help: "Fail a Backup/Restore still running after this Go duration.")
    var runTimeout = "72h"

    @Option(name: .customLong("log-sync-interval"), help: "How often a log backup's checkpoint and state are read from PD's etcd (Go duration).")
    var logSyncInterval = "60s"

    func validate() throws { _ = try timeouts() }

    /// The flags as the controllers' timeouts; a bad value is named with its flag.
    func timeouts() throws -> OperatorTimeouts {
        func positive(_ flag: String, _ value: String) throws -> GoDuration {
            guard let d = try? GoDuration(parsing: value), d.nanoseconds > 0 else {
                throw ValidationError("\(flag) must be a positive Go duration such as 10m, got \(value)")
            }
            return d
        }
        var t = OperatorTimeouts()
        let start = podStartTimeout.map { ("--pod-start-timeout", $0) } ?? ("--job-start-timeout", jobStartTimeout)
        t.podStart = .seconds(max(1, try positive(start.0, start.1).wholeSeconds))
        t.run = .seconds(max(1, try positive("--run-timeout", runTimeout).wholeSeconds))
        t.logSync = .milliseconds(try positive("--log-sync-interval", logSyncInterval).nanoseconds / 1_000_000)
        return t
    }
}
