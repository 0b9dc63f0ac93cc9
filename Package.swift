// swift-tools-version:6.2
//
// RCUMaps — concurrent eBPF-style maps with RCU semantics, on liburcu.
//
// Layers, each its own target (see docs/architecture.md):
//   CURCU         system library: liburcu + libnuma, found by pkg-config, installed from apt
//   CRCUMapsShim  C shims for what Swift cannot import (macros, static inline fast paths, TLS)
//   RCUEpoch      epoch (RCU) layer: read sections, epoch memory, deferred work, statistics
//   RCUBaseMaps   byte-level base maps (lock-free hash, bucket-locked hash, array) and the registry
//   RCUMaps       the library product users import; re-exports the layers below
//   rcumaps       the benchmark / stress tool
import PackageDescription

/// Settings shared by every Swift target (swift-nio style).
let swiftSettings: [SwiftSetting] = [
    // Swift 6 language mode: complete strict-concurrency checking is on.
    .swiftLanguageMode(.v6),
    // The `InlineReadSide` trait (default) inlines liburcu's read lock and unlock into the
    // caller (see README, "Licence and the read-side trait").
    .define("RCUMAPS_INLINE_READ_SIDE", .when(traits: ["InlineReadSide"])),
    // Uncomment to compile the internal consistency checks (`_invariantCheck()`) into release builds;
    // debug builds always have them.
    // .define("RCUMAPS_INTERNAL_CHECKS"),
]

let package = Package(
    name: "RCUMaps",
    // Linux only (liburcu, libnuma, futexes); no Apple platform is declared.
    products: [
        .library(name: "RCUMaps", targets: ["RCUMaps"]),
        .library(name: "RCUEpoch", targets: ["RCUEpoch"]),
        .executable(name: "rcumaps", targets: ["rcumaps"]),
        // The sample provider and the C baselines, for the Benchmarks package.
        .library(name: "ObjectMapProvider", targets: ["ObjectMapProvider"]),
        .library(name: "CRCUMapsBaselines", targets: ["CRCUMapsBaselines"]),
    ],
    traits: [
        .trait(
            name: "InlineReadSide",
            description: """
                Inline liburcu's read lock and unlock (each under ten lines, which liburcu marks as \
                usable by non-LGPL code) instead of calling them in liburcu-memb.so: epoch enter+exit \
                drops from about 12 ns to 3 ns. Disable default traits for the call-only read side.
                """
        ),
        .default(enabledTraits: ["InlineReadSide"]),
    ],
    dependencies: [
        // `swift package generate-documentation` (the DocC catalog, Sources/RCUMaps/RCUMaps.docc).
        // A plugin only: nothing of it is linked into RCUMaps.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // The rcumaps tool's command line (subcommands, options, help, errors).
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // The rcumaps tool's write-latency percentiles (`rcumaps bench --latency`).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // The rcumaps tool's `mutex-deque` baseline (`Mutex<Deque<UInt64>>`, against QUEUE and
        // STACK). The tool's dependency only: no library target depends on it.
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CURCU",
            pkgConfig: "liburcu-memb",
            providers: [.apt(["liburcu-dev", "libnuma-dev"])]
        ),
        .target(
            name: "CRCUMapsShim",
            dependencies: ["CURCU"],
            linkerSettings: [
                .linkedLibrary("urcu-memb"),
                .linkedLibrary("urcu-cds"),
                .linkedLibrary("urcu-common"),
                .linkedLibrary("numa"),
            ]
        ),
        .target(
            name: "CRCUMapsInlineReadSide",
            dependencies: ["CRCUMapsShim"]
        ),
        .target(
            name: "RCUEpoch",
            dependencies: [
                "CRCUMapsShim",
                .target(name: "CRCUMapsInlineReadSide", condition: .when(traits: ["InlineReadSide"])),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RCUBaseMaps",
            dependencies: ["RCUEpoch", "CRCUMapsShim"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CRCUMapProviderABI"
        ),
        .target(
            name: "RCUMapProviders",
            dependencies: ["RCUEpoch", "RCUBaseMaps", "CRCUMapProviderABI", "CRCUMapsShim"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RCUMaps",
            dependencies: ["RCUEpoch", "RCUBaseMaps", "RCUMapProviders", "CRCUMapsShim"],
            swiftSettings: swiftSettings
        ),
        // The sample provider (an XSKMAP-style object map): an example target, used by the
        // tests, the bench and docs/custom-maps.md.
        .target(
            name: "ObjectMapProvider",
            // Every layer it uses, named (see RCUMapsTestSupport below).
            dependencies: ["RCUEpoch", "RCUBaseMaps", "RCUMapProviders", "RCUMaps"],
            swiftSettings: swiftSettings
        ),
        // C baselines for the benchmarks (raw rculfhash, open addressing, liburcu's wfcqueue and
        // lfstack); not in the RCUMaps library product.
        .target(
            name: "CRCUMapsBaselines",
            dependencies: ["CRCUMapsShim", "CRCUMapsInlineReadSide"]
        ),
        .executableTarget(
            name: "rcumaps",
            dependencies: ["CRCUMapsShim", "RCUEpoch", "RCUBaseMaps", "RCUMapProviders", "RCUMaps", "ObjectMapProvider",
                           "CRCUMapsBaselines",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Histogram", package: "hdrhistogram-swift"),
                           .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: swiftSettings
        ),
        // Examples (Examples/*/main.swift): `swift run FlowTableExample`, `RouteCacheExample`,
        // `CustomProviderExample`. `swift test` builds and runs them (DocumentationExamplesTests,
        // which skip an example whose binary is not in the build directory).
        .executableTarget(name: "FlowTableExample", dependencies: ["RCUMaps"], path: "Examples/FlowTable",
                          swiftSettings: swiftSettings),
        .executableTarget(name: "RouteCacheExample", dependencies: ["RCUMaps"], path: "Examples/RouteCache",
                          swiftSettings: swiftSettings),
        .executableTarget(name: "CustomProviderExample", dependencies: ["RCUMaps", "ObjectMapProvider"],
                          path: "Examples/CustomProvider", swiftSettings: swiftSettings),
        .target(
            name: "RCUMapsTestSupport",
            // Name every layer it uses: a dependency reached only through RCUMaps'
            // @_exported imports is not always rebuilt when its layout changes.
            dependencies: ["RCUEpoch", "RCUBaseMaps", "RCUMaps"],
            path: "Tests/RCUMapsTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RCUEpochTests",
            dependencies: ["RCUEpoch", "CRCUMapsShim", "RCUMapsTestSupport"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CTestProvider",
            dependencies: ["CRCUMapProviderABI"],
            path: "Tests/CTestProvider"
        ),
        .testTarget(
            name: "RCUMapProvidersTests",
            dependencies: ["RCUEpoch", "RCUBaseMaps", "RCUMapProviders", "RCUMaps", "ObjectMapProvider", "CTestProvider",
                           "RCUMapsTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RCUMapsToolTests",
            dependencies: ["rcumaps", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RCUMapsTests",
            dependencies: ["RCUEpoch", "RCUBaseMaps", "RCUMapProviders", "RCUMaps", "ObjectMapProvider",
                           "RCUMapsTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RCUBaseMapsTests",
            dependencies: ["RCUBaseMaps", "RCUMaps", "RCUMapsTestSupport", "CRCUMapsShim"],
            swiftSettings: swiftSettings
        ),
    ]
)
