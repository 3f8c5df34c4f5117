import BRModel
import Foundation

/// Where the tools are: TiDB Operator's in-pod paths first, then a configured command (which may be
/// a launcher such as `tiup br:v8.5.0`), then `PATH`.
public struct ToolLocator: Sendable {
    public var environment: [String: String]
    public var fileExists: @Sendable (String) -> Bool

    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                fileExists: @escaping @Sendable (String) -> Bool = { FileManager.default.isExecutableFile(atPath: $0) }) {
        self.environment = environment
        self.fileExists = fileExists
    }

    public enum Tool: String, Sendable {
        case br, dumpling, lightning = "tidb-lightning", lightningCtl = "tidb-lightning-ctl", tikvCtl = "tikv-ctl"
        var inPodPaths: [String] {
            switch self {
            case .br: ["/var/lib/br-bin/br"]
            case .dumpling: ["/var/lib/dumpling-bin/dumpling", "/dumpling"]
            case .lightning: ["/var/lib/lightning-bin/tidb-lightning", "/tidb-lightning"]
            case .lightningCtl: ["/var/lib/lightning-bin/tidb-lightning-ctl", "/tidb-lightning-ctl"]
            case .tikvCtl: ["/var/lib/kvctl-bin/tikv-ctl"]
            }
        }
        public var configVariable: String {
            switch self {
            case .br: "TIDB_BACKUP_MANAGER_BR"
            case .dumpling: "TIDB_BACKUP_MANAGER_DUMPLING"
            case .lightning: "TIDB_BACKUP_MANAGER_LIGHTNING"
            case .lightningCtl: "TIDB_BACKUP_MANAGER_LIGHTNING_CTL"
            case .tikvCtl: "TIDB_BACKUP_MANAGER_TIKV_CTL"
            }
        }
    }

    /// The executable and the arguments that come before the tool's own.
    public func locate(_ tool: Tool) throws -> (executable: String, prefix: [String]) {
        for path in tool.inPodPaths where fileExists(path) { return (path, []) }
        if let configured = environment[tool.configVariable], !configured.isEmpty {
            let words = configured.split(separator: " ").map(String.init)
            return (try resolve(words[0], tool: tool), Array(words.dropFirst()))
        }
        return (try resolve(tool.rawValue, tool: tool), [])
    }

    func resolve(_ name: String, tool: Tool) throws -> String {
        if name.contains("/") {
            guard fileExists(name) else { throw ArgumentError("\(tool.configVariable) names \(name), which is not an executable file") }
            return name
        }
        for dir in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") where fileExists("\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        throw ArgumentError("\(tool.rawValue) not found: looked in \(tool.inPodPaths.joined(separator: ", ")), \(tool.configVariable) and PATH")
    }
}
