/// The maps `rcumaps bench` can measure, by command-line name.
enum MapKind: String, CaseIterable, Sendable {
    /// `RawLockFreeHashMap` (liburcu `rculfhash`), keys and values of each `--shapes` (8x8 by default).
    case hashLockFree = "hash-lockfree"
    /// `RawBucketHashMap` (per-bucket locks, eBPF-for-Windows design), keys and values of each
    /// `--shapes` (8x8 by default).
    case hashBucket = "hash-bucket"
    /// `RawArrayMap` with `UInt32` index keys `0..<entries` and `UInt64` values.
    case array = "array"
    /// Baseline: Swift `Synchronization.Mutex<[UInt64: UInt64]>`.
    case mutexDict = "mutex-dict"
    /// Baseline: a Swift dictionary behind a `pthread_rwlock_t` (readers share the lock).
    case rwlockDict = "rwlock-dict"
    /// Baseline: liburcu rculfhash driven from C (read lock + `cds_lfht_lookup` per operation).
    case cRculfhash = "c-rculfhash"
    /// Baseline: an unsynchronised open-addressing table in C, the floor of any hash lookup.
    case cOpenAddressing = "c-open-addressing"
    /// Baseline: a plain load from a Swift `[UInt64]`, the floor of any array lookup.
    case swiftArray = "swift-array"
    /// The sample provider's object map (a custom type on the bucket-locked hash): user-mode
    /// lookups translate stored object pointers back into handles.
    case objectMap = "object-map"
    /// No map: each operation is one empty epoch section (enter + exit), the floor under
    /// every helper-mode lookup.
    case epoch = "epoch"

    /// The baselines the report has a ratio column for, in column order.
    static let baselines: [MapKind] = [.mutexDict, .rwlockDict, .cRculfhash, .cOpenAddressing, .swiftArray]

    /// Whether this kind can run `workload` (unsynchronised baselines cannot take writers;
    /// arrays have no inserts or deletes; the epoch row has no map at all).
    func supports(_ workload: Workload) -> Bool {
        switch (self, workload) {
        case (.cOpenAddressing, .readMostly), (.cOpenAddressing, .churn),
             (.swiftArray, .readMostly), (.swiftArray, .churn),
             (.array, .churn), (.epoch, .churn), (.epoch, .lookupMiss):
            false
        default:
            true
        }
    }

    /// Whether this kind runs every key/value shape (`--shapes`): only our hash maps do;
    /// the baselines, the array, the object map and the epoch row are 8x8 only.
    var runsEveryShape: Bool { self == .hashLockFree || self == .hashBucket }

    /// Whether this kind can run keys and values of `shape`.
    func supports(_ shape: BenchShape) -> Bool { runsEveryShape || shape == .standard }

    /// One line for `--help`.
    var summary: String {
        switch self {
        case .hashLockFree: "RawLockFreeHashMap (rculfhash), keys and values of each --shapes"
        case .hashBucket: "RawBucketHashMap (per-bucket locks), keys and values of each --shapes"
        case .array: "RawArrayMap, UInt32 index keys 0..<entries, UInt64 values"
        case .mutexDict: "baseline: Mutex<[UInt64: UInt64]>"
        case .rwlockDict: "baseline: [UInt64: UInt64] behind a pthread reader-writer lock"
        case .cRculfhash: "baseline: liburcu rculfhash from C (read lock + lookup per op)"
        case .cOpenAddressing: "baseline: unsynchronised open addressing in C (readers only)"
        case .swiftArray: "baseline: plain [UInt64] load (readers only)"
        case .objectMap: "custom type (sample object map provider), UInt32 keys, handle values"
        case .epoch: "no map: one empty Epoch.withSection (enter + exit) per operation"
        }
    }
}

/// The operation mixes `rcumaps bench` can run, by command-line name.
enum Workload: String, CaseIterable, Sendable {
    /// Lookups only, every one a hit on the prefilled keys.
    case lookup = "lookup"
    /// Lookups only, every one a miss (keys that were never inserted).
    case lookupMiss = "lookup-miss"
    /// 90% lookups, 10% updates (`.any`) of existing keys.
    case readMostly = "read-mostly"
    /// 50% inserts of new keys, 50% deletes, over twice the prefilled key space.
    case churn = "churn"

    /// One line for `--help`.
    var summary: String {
        switch self {
        case .lookup: "100% lookups, all hits on the prefilled keys"
        case .lookupMiss: "100% lookups, all misses (keys never inserted)"
        case .readMostly: "90% lookups / 10% updates (.any) of existing keys"
        case .churn: "50% inserts (.noExist) / 50% deletes over 2x the prefilled key space"
        }
    }

    /// Out of 65536, how many operations are updates (10% for `read-mostly`).
    var updatesPer65536: UInt64 {
        switch self {
        case .lookup, .lookupMiss, .churn: 0
        case .readMostly: 6554
        }
    }
}
