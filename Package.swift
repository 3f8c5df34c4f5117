// swift-tools-version:6.1
import PackageDescription

// Targets follow the module table of DESIGN.md. Policy targets (BRModel, Cron) depend only on
// Foundation and KubeModel; mechanisms (YAML, argument parsing) are wired in by the executables.
let package = Package(
    name: "tidb-backup-operator",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tidb-backup-operator", targets: ["TidbBackupOperator"]),
        .executable(name: "tidb-backup-manager", targets: ["TidbBackupManager"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(name: "KubeModel", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "Cron", dependencies: ["KubeModel"]),
        .target(name: "BRModel", dependencies: ["KubeModel", "Cron"]),
        .target(name: "ManifestTools", dependencies: ["KubeModel", "BRModel"]),
        .executableTarget(
            name: "TidbBackupOperator",
            dependencies: [
                "KubeModel", "BRModel", "ManifestTools",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "TidbBackupManager",
            dependencies: [
                "KubeModel", "BRModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "KubeModelTests", dependencies: ["KubeModel"]),
        .testTarget(name: "CronTests", dependencies: ["Cron"]),
        .testTarget(name: "BRModelTests", dependencies: ["BRModel", "KubeModel", "ManifestTools"]),
    ],
    swiftLanguageModes: [.v6]
)
