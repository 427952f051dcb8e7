// swift-tools-version: 6.1
import PackageDescription

// One set of settings for every target: Swift 6 mode (strict concurrency), and imports
// that say what a module exposes (hummingbird's habit).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "valise",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "valise", targets: ["valise"]),
        .executable(name: "valised", targets: ["valised"]),
    ],
    // PostgreSQL support (issue 19) costs postgres-nio and a second BoringSSL, which triple a
    // cold build: only `swift build --traits Postgres` (scripts/test, scripts/bench and the
    // release build) pays for it. Without the trait, valised refuses `store.kind: postgres`.
    traits: [
        .trait(name: "Postgres", description: "valised can keep a relay's queue in PostgreSQL, shared by several nodes"),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        // The generated code in Sources/ValiseWire/Generated must match this version exactly
        // (scripts/gen-proto builds its plugin from it).
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // valised's configuration file. Read with Yams directly rather than through
        // swift-configuration, whose readers give the default for a value they cannot parse
        // and cannot list a file's keys: valised must refuse both (docs/CLI.md).
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // ML-KEM, X-Wing and HPKE (issue 16), BoringSSL-backed on Linux; for ValiseCrypto only.
        // Exact: the known-answer fixtures in Tests/ValiseCryptoTests were taken from this tag.
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
        // Latency percentiles in the load generator (scripts/bench).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // The relay's metrics (issue 18): the libraries record through swift-metrics' API
        // only; valised alone bootstraps the Prometheus backend.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // A relay's queue on PostgreSQL (issue 19), built only with the Postgres trait.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // TLS to PostgreSQL (verify-full), already a dependency of postgres-nio.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // libsodium 1.0.18 from the system (Debian: libsodium-dev).
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"]), .brew(["libsodium"])]
        ),
        // The only importer of CSodium and swift-crypto: typed keys, secrets, AEAD, KDFs,
        // signatures, the post-quantum KEMs and HPKE, byte formats.
        .target(
            name: "ValiseCrypto",
            dependencies: [
                "CSodium",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The admin-signed, hash-chained organisation directory: entries, verification, state.
        .target(
            name: "ValiseDirectory",
            dependencies: ["ValiseCrypto"],
            swiftSettings: swiftSettings
        ),
        // End-to-end sessions: X3DH and the Double Ratchet. Pure (no I/O).
        .target(
            name: "ValiseSession",
            dependencies: ["ValiseCrypto"],
            swiftSettings: swiftSettings
        ),
        // The wire: framing, the Noise state machine, relay messages. Pure (no I/O).
        .target(
            name: "ValiseWire",
            dependencies: [
                "ValiseCrypto",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        // Durable storage: secure atomic files now; the relay queue and client store later.
        .target(
            name: "ValiseStore",
            dependencies: [
                "ValiseCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for the queue's hot statements (BoundStatement).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The relay's queue on PostgreSQL, shared by several valised nodes: the same store
        // protocols as SQLite. Empty unless built with the Postgres trait.
        .target(
            name: "ValisePostgres",
            dependencies: [
                "ValiseCrypto",
                "ValiseStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["Postgres"])),
                .product(name: "NIOCore", package: "swift-nio", condition: .when(traits: ["Postgres"])),
                .product(name: "NIOPosix", package: "swift-nio", condition: .when(traits: ["Postgres"])),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["Postgres"])),
            ],
            swiftSettings: swiftSettings
        ),
        // Network failures in words (a refused connection, a name that does not resolve), for
        // the relay's links and the client alike: both connect with NIOPosix, which the pure
        // modules must not import.
        .target(
            name: "ValiseNetwork",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The relay: the directory it serves, admission, connections over SwiftNIO, limits.
        .target(
            name: "ValiseRelay",
            dependencies: [
                "ValiseCrypto",
                "ValiseDirectory",
                "ValiseSession",
                "ValiseStore",
                "ValiseWire",
                "ValiseNetwork",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The metrics endpoint's HTTP/1.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The client library: home directory, passphrases, the device keystore, messaging.
        .target(
            name: "ValiseClient",
            dependencies: [
                "ValiseCrypto",
                "ValiseDirectory",
                "ValiseSession",
                "ValiseStore",
                "ValiseWire",
                "ValiseNetwork",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "valise",
            dependencies: [
                "ValiseClient",
                "ValiseCrypto",
                "ValiseDirectory",
                "ValiseStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "valised",
            dependencies: [
                "ValiseClient",
                "ValiseCrypto",
                "ValiseDirectory",
                "ValiseRelay",
                "ValiseStore",
                "ValisePostgres",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Benchmarks for docs/PERFORMANCE.md (scripts/bench runs them in release mode). It
        // imports CSodium directly, to measure the bare libsodium calls beside Valise's own.
        // The parsers that face the network or the disk, as functions of arbitrary bytes, for
        // libFuzzer (valise-fuzz, built by scripts/fuzz) and the fuzz regression tests.
        .target(
            name: "ValiseFuzzTargets",
            dependencies: ["ValiseCrypto", "ValiseDirectory", "ValiseSession", "ValiseStore", "ValiseTestSupport", "ValiseWire"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "valise-fuzz",
            dependencies: ["ValiseFuzzTargets"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "valise-bench",
            dependencies: [
                "CSodium",
                .product(name: "Crypto", package: "swift-crypto"),
                "ValiseCrypto",
                "ValiseDirectory",
                "ValiseSession",
                "ValiseStore",
                "ValiseWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The relay protocol's load and test client (scripts/crash-test, scripts/bench).
        .executableTarget(
            name: "valise-load",
            dependencies: [
                "ValiseClient",
                "ValiseCrypto",
                "ValiseDirectory",
                "ValiseWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers shared by the test targets (temporary directories; later a manual clock and
        // an in-process relay). Never linked into the executables.
        .target(
            name: "ValiseTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ValiseCryptoTests",
            dependencies: ["ValiseCrypto"],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ValiseDirectoryTests",
            dependencies: [
                "ValiseDirectory",
                "ValiseCrypto",
                "ValiseTestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ValiseWireTests",
            dependencies: ["ValiseWire", "ValiseCrypto", "ValiseTestSupport", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ValiseSessionTests",
            dependencies: ["ValiseSession", "ValiseCrypto", "ValiseTestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ValiseStoreTests",
            dependencies: [
                "ValiseStore", "ValiseCrypto", "ValiseTestSupport", "ValisePostgres", .product(name: "GRDB", package: "GRDB.swift"),
                // The conformance suite checks a PostgreSQL store's usage rows with its own query.
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["Postgres"])),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ValiseRelayTests",
            dependencies: [
                "ValiseRelay", "ValiseCrypto", "ValiseDirectory", "ValiseStore", "ValiseWire", "ValiseTestSupport",
                // The shared-store tests talk to an in-process relay as the client library does.
                "ValiseClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ValiseClientTests",
            dependencies: [
                "ValiseClient", "ValiseCrypto", "ValiseDirectory", "ValiseSession", "ValiseStore", "ValiseTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ValiseNetworkTests",
            dependencies: [
                "ValiseNetwork",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Replays the fuzz targets' committed inputs (seeds, and every crash found, once fixed).
        .testTarget(
            name: "ValiseFuzzTargetsTests",
            dependencies: ["ValiseFuzzTargets", "ValiseStore", "ValiseTestSupport"],
            swiftSettings: swiftSettings
        ),
        // Runs the real executables; depending on them makes `swift test` build them first.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "valise",
                "valised",
                "valise-load",
                "ValiseClient",
                "ValiseCrypto",
                "ValiseDirectory",
                "ValiseSession",
                "ValiseStore",
                "ValiseWire",
                "ValiseTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                // LeadingOptionsTests parse with the valise command itself.
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
