import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// The operator's metrics, held and rendered by swift-prometheus (`PrometheusCollectorRegistry`).
/// Every series is named `tidb_backup_operator_<name>`; `describe` gives a family its help text, kind and
/// buckets once, and the call sites name a family and its labels.
///
/// `factory` is swift-metrics' factory over the same registry: `MetricsSystem.bootstrap(registry.factory)`
/// makes the metrics of libraries that use swift-metrics appear on the same `/metrics`. Our own series
/// go to the registry directly, because swift-metrics carries no help text.
public final class MetricsRegistry: Sendable {
    public enum Kind: String, Sendable { case counter, gauge, histogram }

    public static let prefix = "tidb_backup_operator_"
    public static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    public let prometheus: PrometheusCollectorRegistry
    public var factory: PrometheusMetricsFactory { PrometheusMetricsFactory(registry: prometheus) }

    struct Family {
        var help: String
        var kind: Kind
        var buckets: [Double]
    }

    struct Key: Hashable {
        var name: String
        var labels: [String: String]
    }

    private let families = Mutex<[String: Family]>([:])
    /// Counter and gauge values as written, for `value` (tests and the web view read them back).
    private let values = Mutex<[Key: Double]>([:])

    public init() { prometheus = PrometheusCollectorRegistry() }

    public func describe(_ name: String, _ kind: Kind, help: String, buckets: [Double] = MetricsRegistry.defaultBuckets) {
        families.withLock { f in
            if f[name] == nil { f[name] = Family(help: help, kind: kind, buckets: buckets) }
        }
    }

    func family(_ name: String, default kind: Kind) -> Family {
        families.withLock { f in
            if let family = f[name] { return family }
            let family = Family(help: "", kind: kind, buckets: Self.defaultBuckets)
            f[name] = family
            return family
        }
    }

    static func pairs(_ labels: [String: String]) -> [(String, String)] { labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    public func increment(_ name: String, _ labels: [String: String] = [:], by amount: Double = 1) {
        let f = family(name, default: .counter)
        let counter = labels.isEmpty ? prometheus.makeCounter(name: Self.prefix + name, help: f.help)
            : prometheus.makeCounter(name: Self.prefix + name, labels: Self.pairs(labels), help: f.help)
        counter.increment(by: amount)
        values.withLock { $0[Key(name: name, labels: labels), default: 0] += amount }
    }

    public func set(_ name: String, _ labels: [String: String] = [:], _ value: Double) {
        let f = family(name, default: .gauge)
        let gauge = labels.isEmpty ? prometheus.makeGauge(name: Self.prefix + name, help: f.help)
            : prometheus.makeGauge(name: Self.prefix + name, labels: Self.pairs(labels), help: f.help)
        gauge.set(to: value)
        values.withLock { $0[Key(name: name, labels: labels)] = value }
    }

    public func observe(_ name: String, _ labels: [String: String] = [:], _ value: Double) {
        let f = family(name, default: .histogram)
        let histogram = labels.isEmpty ? prometheus.makeValueHistogram(name: Self.prefix + name, buckets: f.buckets, help: f.help)
            : prometheus.makeValueHistogram(name: Self.prefix + name, labels: Self.pairs(labels), buckets: f.buckets, help: f.help)
        histogram.record(value)
    }

    /// A counter's or gauge's current value.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        values.withLock { $0[Key(name: name, labels: labels)] }
    }

    /// The names of the families described or written, without the prefix.
    public var names: [String] { families.withLock { Array($0.keys).sorted() } }

    /// The exposition text (Prometheus text format 0.0.4).
    public func exposition() -> String {
        var buffer: [UInt8] = []
        prometheus.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
