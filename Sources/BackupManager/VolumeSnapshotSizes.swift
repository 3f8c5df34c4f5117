import AWSCore
import BRModel
import Foundation

/// The sizes of a volume-snapshot backup (reference 7.4), from the EBS direct APIs: the full size is
/// every block each snapshot holds; the incremental size is the blocks changed since the volume's
/// previous completed snapshot (all of them for a volume's first snapshot). At most 40 volumes at once.
struct VolumeSnapshotSizes {
    struct Result: Sendable, Equatable {
        var full: Int64?
        var incremental: Int64?
    }

    let ec2: EC2Client
    let log: @Sendable (String) -> Void
    var workers = 40

    func calculate(_ meta: VolumeSnapshotDocument, level: CalcSizeLevel) async throws -> Result {
        let wantFull = level == .all || level == .full
        let wantIncremental = level == .all || level == .incremental
        let pairs = meta.snapshots
        let ec2 = self.ec2
        let perVolume: [(Int64, Int64)] = try await withThrowingTaskGroup(of: (Int64, Int64).self) { group in
            var next = 0
            var out: [(Int64, Int64)] = []
            func add(_ i: Int) {
                let (volume, snapshot) = pairs[i]
                group.addTask {
                    let full = wantFull ? try await ec2.snapshotSize(snapshot) : 0
                    guard wantIncremental else { return (full, 0) }
                    let history = try await ec2.describeSnapshots(filters: [("volume-id", [volume])])
                        .filter { $0.state == "completed" || $0.id == snapshot }
                        .sorted { ($0.startTime ?? .distantPast, $0.id) < ($1.startTime ?? .distantPast, $1.id) }
                    guard let index = history.firstIndex(where: { $0.id == snapshot }), index > 0 else { return (full, full) }
                    return (full, try await ec2.changedSize(from: history[index - 1].id, to: snapshot))
                }
            }
            while next < min(workers, pairs.count) { add(next); next += 1 }
            while let r = try await group.next() {
                out.append(r)
                if next < pairs.count { add(next); next += 1 }
            }
            return out
        }
        let full = perVolume.reduce(0) { $0 + $1.0 }
        let incremental = perVolume.reduce(0) { $0 + $1.1 }
        log("volume snapshot sizes: \(pairs.count) snapshots, full \(full) bytes, incremental \(incremental) bytes (level \(level.rawValue))")
        return Result(full: wantFull ? full : nil, incremental: wantIncremental ? incremental : nil)
    }
}
