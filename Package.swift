// swift-tools-version:6.1
import PackageDescription

// Targets follow docs/ARCHITECTURE.md (the package-graph test keeps the two in step). Policy targets (BRModel, Cron) depend only on
// Foundation and KubeModel; mechanisms (YAML, argument parsing) are wired in by the executables.
let package = Package(
    name: "tidb-backup-operator",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tidb-backup-operator", targets: ["TidbBackupOperator"]),
        .executable(name: "tidb-backup-manager", targets: ["TidbBackupManager"]),
        .executable(name: "storage-bench", targets: ["StorageBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(name: "KubeModel", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "Cron", dependencies: ["KubeModel"]),
        .target(name: "BRModel", dependencies: ["KubeModel", "Cron"]),
        .target(name: "ManifestTools", dependencies: ["KubeModel", "BRModel"]),
        .target(name: "KubeAPI", dependencies: ["KubeModel"]),
        .target(
            name: "KubeClient",
            dependencies: [
                "KubeAPI", "KubeModel",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Events and the clock, for the operator and the job binary alike.
        .target(name: "KubeEvents", dependencies: ["KubeAPI", "KubeModel", .product(name: "Logging", package: "swift-log")]),
        // The model's objects over the API: typed access, the status writer, condition Events, the Jobs'
        // shapes. Both the operator and the job binary use it; it holds no controller.
        .target(name: "BRObjects", dependencies: ["BRModel", "KubeAPI", "KubeModel", "KubeEvents"]),
        .target(
            name: "ControllerKit",
            dependencies: [
                "KubeAPI", "KubeModel", "KubeEvents",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "BackupOperator",
            dependencies: ["BRModel", "BRObjects", "KubeEvents", "Cron", "KubeAPI", "KubeModel", "ControllerKit", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The HTTP mechanisms the operator's policy reaches through protocols: PD's etcd, webhooks.
        .target(
            name: "OperatorHTTP",
            dependencies: ["BackupOperator", "KubeModel", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOFoundationCompat", package: "swift-nio")]
        ),
        .target(
            name: "WebView",
            dependencies: ["BRModel", "Cron", "KubeAPI", "KubeModel", "ControllerKit", "KubeEvents", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(name: "KubeTesting", dependencies: ["KubeAPI", "KubeModel"]),
        .target(name: "AWSSigning", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // The one send-and-retry loop under the S3, EC2, GCS and Azure clients.
        .target(
            name: "StorageHTTP",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        .target(
            name: "AWSCore",
            dependencies: [
                "AWSSigning", "StorageHTTP",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        .target(
            name: "BackupStorage",
            dependencies: [
                "AWSCore", "AWSSigning", "BRModel", "StorageHTTP",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        .target(name: "TestServers"),
        // The standalone server as the product starts it, for tests that make one in-process.
        .target(name: "StandaloneTesting", dependencies: ["StandaloneServer", "BRModel"]),
        .target(name: "Spawn"),
        .executableTarget(name: "StorageBench", dependencies: ["AWSCore", "BackupStorage"]),
        .target(name: "BackupManager", dependencies: ["Spawn", "AWSCore", "BRModel", "BRObjects", "KubeEvents", "BackupStorage", "KubeAPI", "KubeModel", .product(name: "AsyncHTTPClient", package: "async-http-client")]),
        // The user's tools around the job binary: `plan` and `doctor`, reading manifests as `validate` does.
        .target(name: "BackupTools", dependencies: ["BackupManager", "BackupStorage", "BRModel", "BRObjects", "Cron", "KubeAPI", "KubeModel", "ManifestTools",
                                                    .product(name: "AsyncHTTPClient", package: "async-http-client")]),
        .target(
            name: "StandaloneServer",
            dependencies: [
                "Spawn", "KubeModel", "KubeAPI",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "TidbBackupOperator",
            dependencies: [
                "KubeModel", "BRModel", "ManifestTools", "StandaloneServer", "KubeAPI", "KubeClient", "ControllerKit", "KubeEvents", "BRObjects", "BackupOperator", "OperatorHTTP", "WebView",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "TidbBackupManager",
            dependencies: [
                "KubeModel", "BRModel", "BackupManager", "BackupTools", "ManifestTools", "KubeAPI", "KubeClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "KubeModelTests", dependencies: ["KubeModel"]),
        .testTarget(name: "CronTests", dependencies: ["Cron", "KubeTesting"]),
        .testTarget(name: "BRModelTests", dependencies: ["BRModel", "Cron", "KubeClient", "KubeModel", "KubeTesting", "ManifestTools"]),
        .testTarget(name: "AWSSigningTests", dependencies: ["AWSSigning", "TestServers"], resources: [.copy("Vectors")]),
        .testTarget(name: "KubeContractTests", dependencies: ["StandaloneTesting", "KubeAPI", "KubeClient", "KubeTesting", "KubeModel", "StandaloneServer"]),
        .testTarget(name: "ControllerKitTests", dependencies: ["StandaloneTesting", "ControllerKit", "KubeEvents", "KubeAPI", "KubeClient", "KubeTesting", "KubeModel", "StandaloneServer"]),
        .testTarget(name: "BackupOperatorTests", dependencies: ["BackupOperator", "BRModel", "BRObjects", "KubeEvents", "ControllerKit", "KubeAPI", "KubeModel", "KubeTesting", "TestServers"]),
        .testTarget(
            name: "KubeClientTests",
            dependencies: ["StandaloneTesting", "KubeClient", "KubeAPI", "KubeModel", "StandaloneServer", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
        .testTarget(name: "BackupStorageTests", dependencies: ["BackupStorage", "AWSCore", "AWSSigning", "StorageHTTP", "BRModel", "KubeModel", "KubeTesting", "TestServers"]),
        .testTarget(name: "BackupManagerTests", dependencies: ["BackupManager", "BRModel", "BRObjects", "KubeEvents", "KubeModel", "KubeTesting", "KubeAPI", "BackupStorage"]),
        .testTarget(name: "EndToEndTests", dependencies: ["BackupOperator", "BRObjects", "AWSCore", "AWSSigning", "BackupStorage", "BRModel", "KubeAPI", "KubeClient", "KubeModel", "KubeTesting", "TestServers"]),
        .testTarget(name: "WebViewUnitTests", dependencies: ["WebView", "BRModel", "KubeModel"]),
        .testTarget(name: "StandaloneServerTests", dependencies: ["StandaloneTesting", "StandaloneServer", "BRModel", "KubeModel", "KubeTesting", "TestServers"]),
    ],
    swiftLanguageModes: [.v6]
)
