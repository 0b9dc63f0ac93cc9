// swift-tools-version:6.1
//
// RCUMaps benchmarks (ordo-one package-benchmark). A nested package, so that a project
// depending on RCUMaps never resolves or builds the benchmark toolchain.
//
//   cd Benchmarks && swift package benchmark            # run everything
//   swift package benchmark --filter "hash-bucket.*"    # a subset
//
// The C baselines (raw rculfhash, open addressing) come from the parent package's
// CRCUMapsBaselines target, measured in the same run as the maps.
import PackageDescription

let package = Package(
    name: "RCUMapsBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named explicitly: a path dependency's identity is otherwise its folder's name,
        // which depends on where the repository was cloned.
        .package(name: "RCUMaps", path: "../"),
        // Only the malloc interposer: the runtime interposer is not needed for our metrics.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "MapBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "RCUMaps", package: "RCUMaps"),
                .product(name: "CRCUMapsBaselines", package: "RCUMaps"),
                .product(name: "ObjectMapProvider", package: "RCUMaps"),
            ],
            path: "Benchmarks/MapBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
