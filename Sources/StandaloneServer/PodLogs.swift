/// Where the local job runner keeps a pod's output: the pod carries the log file's path in this
/// annotation, and `pods/<name>/log` serves the file.
enum PodLogs {
    static let annotation = "standalone.tidb-backup-operator/log-path"
}
