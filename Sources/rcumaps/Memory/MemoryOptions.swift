/// The maps `rcumaps memory` measures, by command-line name.
enum MemorySubject: String, CaseIterable, Sendable {
    /// `RawLockFreeHashMap` (liburcu `rculfhash`), keys and values of each shape.
    case hashLockFree = "hash-lockfree"
    /// `RawBucketHashMap` (per-bucket locks), keys and values of each shape.
    case hashBucket = "hash-bucket"
    /// Baseline: a Swift `Dictionary<UInt64, UInt64>` created with `minimumCapacity` = entries (8x8 only).
    case swiftDict = "swift-dict"
    /// Baseline: liburcu rculfhash driven from C, sized for the entries as the bench's is (8x8 only).
    case cRculfhash = "c-rculfhash"

    /// Whether this is a baseline (measured for comparison; the SPEC target is not applied).
    var isBaseline: Bool { self == .swiftDict || self == .cRculfhash }

    /// Whether this map is measured with keys and values of `shape` (baselines: 8x8 only).
    func supports(_ shape: BenchShape) -> Bool { !isBaseline || shape == .standard }

    /// One line for `rcumaps memory --help`.
    var summary: String {
        switch self {
        case .hashLockFree: "RawLockFreeHashMap (rculfhash), keys and values of each --shapes"
        case .hashBucket: "RawBucketHashMap (per-bucket locks), keys and values of each --shapes"
        case .swiftDict: "baseline: Dictionary<UInt64, UInt64>(minimumCapacity: entries), 8x8 only"
        case .cRculfhash: "baseline: liburcu rculfhash from C (48-byte malloc'd nodes), 8x8 only"
        }
    }
}

/// What `rcumaps memory` measures: the parsed command line (``MemoryCommand/options``), or
/// built directly by tests.
struct MemoryOptions: Equatable, Sendable {
    /// Key/value shapes, in order (the baselines run only 8x8).
    var shapes: [BenchShape] = [.standard, BenchShape(keyBytes: 16, valueBytes: 8), BenchShape(keyBytes: 8, valueBytes: 64)]
    /// Entry counts, in order: each map is created with `maxEntries` = N and filled with N keys.
    var entries: [Int] = [100_000]
    /// Maps to measure, in order.
    var maps: [MemorySubject] = MemorySubject.allCases
    /// Print a JSON array instead of the table.
    var json = false

    /// The SPEC §10 target: at most this many bytes per entry beyond its key and value.
    static let targetOverheadPerEntry = 48
}
