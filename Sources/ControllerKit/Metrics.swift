import Foundation
import Synchronization

/// Counters, gauges and histograms in the Prometheus text format (`/metrics`). Small on purpose: the
/// operator exports a few dozen series.
public final class MetricsRegistry: Sendable {
    public enum Kind: String, Sendable { case counter, gauge, histogram }

    struct Family {
        var help: String
        var kind: Kind
        var buckets: [Double]
        var values: [[String: String]: Double] = [:]
        var histograms: [[String: String]: (counts: [UInt64], sum: Double, count: UInt64)] = [:]
    }

    private let families = Mutex<[String: Family]>([:])

    public init() {}

    public static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    public func describe(_ name: String, _ kind: Kind, help: String, buckets: [Double] = MetricsRegistry.defaultBuckets) {
        families.withLock { f in
            if f[name] == nil { f[name] = Family(help: help, kind: kind, buckets: buckets) }
        }
    }

    public func increment(_ name: String, _ labels: [String: String] = [:], by amount: Double = 1) {
        families.withLock { f in f[name, default: Family(help: name, kind: .counter, buckets: [])].values[labels, default: 0] += amount }
    }

    public func set(_ name: String, _ labels: [String: String] = [:], _ value: Double) {
        families.withLock { f in f[name, default: Family(help: name, kind: .gauge, buckets: [])].values[labels] = value }
    }

    public func observe(_ name: String, _ labels: [String: String] = [:], _ value: Double) {
        families.withLock { f in
            var family = f[name] ?? Family(help: name, kind: .histogram, buckets: Self.defaultBuckets)
            var h = family.histograms[labels] ?? (Array(repeating: 0, count: family.buckets.count), 0, 0)
            for (i, bound) in family.buckets.enumerated() where value <= bound { h.counts[i] += 1 }
            h.sum += value
            h.count += 1
            family.histograms[labels] = h
            f[name] = family
        }
    }

    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        families.withLock { $0[name]?.values[labels] }
    }

    static func render(_ labels: [String: String], extra: (String, String)? = nil) -> String {
        var pairs = labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if let extra { pairs.append(extra) }
        if pairs.isEmpty { return "" }
        let body = pairs.map { k, v in
            "\(k)=\"\(v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n"))\""
        }
        return "{" + body.joined(separator: ",") + "}"
    }

    static func number(_ v: Double) -> String {
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        return v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    /// The exposition text, families sorted by name.
    public func exposition() -> String {
        families.withLock { f in
            var out = ""
            for (name, family) in f.sorted(by: { $0.key < $1.key }) {
                out += "# HELP \(name) \(family.help)\n# TYPE \(name) \(family.kind.rawValue)\n"
                if family.kind == .histogram {
                    for (labels, h) in family.histograms.sorted(by: { Self.render($0.key) < Self.render($1.key) }) {
                        for (i, bound) in family.buckets.enumerated() {
                            out += "\(name)_bucket\(Self.render(labels, extra: ("le", Self.number(bound)))) \(h.counts[i])\n"
                        }
                        out += "\(name)_bucket\(Self.render(labels, extra: ("le", "+Inf"))) \(h.count)\n"
                        out += "\(name)_sum\(Self.render(labels)) \(h.sum)\n\(name)_count\(Self.render(labels)) \(h.count)\n"
                    }
                } else {
                    for (labels, v) in family.values.sorted(by: { Self.render($0.key) < Self.render($1.key) }) {
                        out += "\(name)\(Self.render(labels)) \(Self.number(v))\n"
                    }
                }
            }
            return out
        }
    }
}
