// swift-tools-version:6.1
//
// RCUMaps benchmarks (ordo-one package-benchmark). A nested package, so that a project
// depending on RCUMaps never resolves or builds the benchmark toolchain.
//
//   cd Benchmarks && swift package benchmark            # run everything
//   swift package benchmark --filter "hash-bucket.*"    # a subset
//
// The C baselines (raw rculfhash, open addressing) come from the parent package's
// CRCUMapsBaselines target, measured in the same run as the maps. The peer maps (ConcurrencyKit
// ck_ht, libcuckoo, oneTBB concurrent_hash_map) are the CPeerMaps target below, built only here:
// RCUMaps' own package never links them. Install them first with ./install-peers.sh.
import PackageDescription

let package = Package(
    name: "RCUMapsBenchmarks",
    platforms: [.macOS(.v15)],
    products: [
        // The peers as a shared library for `rcumaps bench --peers-library` (the multi-threaded
        // runs of the root package's tool, which never links them):
        //   swift build -c release --product RCUMapsPeers   # .build/release/libRCUMapsPeers.so
        .library(name: "RCUMapsPeers", type: .dynamic, targets: ["CPeerMaps"]),
    ],
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
                "CPeerMaps",
            ],
            path: "Benchmarks/MapBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // C interface (include/CPeerMaps.h, plain C) over ck_ht (C) and libcuckoo and TBB (C++).
        .target(
            name: "CPeerMaps",
            path: "Sources/CPeerMaps",
            // Release builds of the peers as their users ship them: libcuckoo's asserts off.
            cSettings: [.define("NDEBUG")],
            cxxSettings: [.define("NDEBUG")],
            linkerSettings: [
                .linkedLibrary("ck"),   // libck-dev
                .linkedLibrary("tbb"),  // libtbb-dev; libcuckoo is header-only
            ]
        ),
    ],
    cxxLanguageStandard: .cxx17
)
