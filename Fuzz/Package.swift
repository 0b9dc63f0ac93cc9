// swift-tools-version:6.1
//
// RCUMaps fuzz targets (libFuzzer). A nested package, so that a project depending on RCUMaps
// never sees them. docs/fuzzing.md explains the targets; scripts/fuzz.sh builds and runs them:
//
//   bash scripts/fuzz.sh 60                       # every target, 60 s each, release + debug
//   bash scripts/fuzz.sh 10 FuzzMapOperations     # one target
//
// A fuzzing build needs the sanitizer flags (scripts/fuzz.sh passes them):
//
//   cd Fuzz && swift build -c release -Xswiftc -sanitize=fuzzer,address
//
// A plain `swift build` works too: the targets then have no libFuzzer and only replay
// inputs (`FuzzMapOperations --replay Corpus/FuzzMapOperations Regressions/FuzzMapOperations`).
import PackageDescription

let swiftSettings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "RCUMapsFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named explicitly: a path dependency's identity is otherwise its folder's name.
        .package(name: "RCUMaps", path: "../"),
    ],
    targets: [
        // C glue: the libFuzzer driver hand-off (and the replay mode without libFuzzer), and
        // a custom map provider written against the C ABI (rcumaps_provider.h).
        .target(
            name: "CFuzzSupport",
            dependencies: [.product(name: "RCUMaps", package: "RCUMaps")]
        ),
        // The reference model, the input decoder and the map fixtures the targets share.
        .target(
            name: "FuzzSupport",
            dependencies: [
                "CFuzzSupport",
                .product(name: "RCUMaps", package: "RCUMaps"),
                .product(name: "ObjectMapProvider", package: "RCUMaps"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "FuzzMapOperations", dependencies: ["FuzzSupport"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzProviderABI", dependencies: ["FuzzSupport"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzMapDefinitions", dependencies: ["FuzzSupport"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzSpecializedMaps", dependencies: ["FuzzSupport"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzDictionary", dependencies: ["FuzzSupport"], swiftSettings: swiftSettings),
    ]
)
