import BRModel
import Foundation

/// The progress of a volume-snapshot run: BR writes it, as a percentage with two decimals, into
/// `progress.txt` in its working directory every half second while it creates snapshots or volumes,
/// and removes the file when it ends (it prints no progress lines in that mode). It is read every
/// second under the step TiDB Operator reports (`Full Backup`, `Volume Restore`, `Data Restore`), and
/// the step is set to 100 once BR has succeeded.
struct BRProgressFile: Sendable {
    static let name = "progress.txt"
    /// BR inherits the job's working directory.
    var path = FileManager.default.currentDirectoryPath + "/" + BRProgressFile.name
    let step: String
    var interval: Duration = .seconds(1)

    /// The percentage in the file's text (`42.50`, `42.50%`, surrounding space); nil when it is not one.
    static func parse(_ text: String) -> Double? {
        var t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if t.hasSuffix("%") { t.removeLast() }
        guard !t.isEmpty, let value = Double(t), value.isFinite else { return nil }
        return min(max(value, 0), 100)
    }

    /// Reads the file until cancelled, publishing each new value.
    func watch(_ progress: ProgressPublisher) -> Task<Void, Never> {
        let path = path, step = step, interval = interval
        return Task {
            var last: Double?
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let data = FileManager.default.contents(atPath: path),
                      let value = Self.parse(String(decoding: data, as: UTF8.self)), value != last else { continue }
                last = value
                progress.record(step: step, percent: value)
            }
        }
    }

    /// Removes a file an earlier run left behind, so that its value is not taken for this run's.
    func clear() { try? FileManager.default.removeItem(atPath: path) }
}
