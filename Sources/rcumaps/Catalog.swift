/// The maps `rcumaps bench` can measure, by command-line name.
enum MapKind: String, CaseIterable, Sendable {
    /// `LockFreeHashMap` (liburcu `rculfhash`), 8-byte keys and values.
    case hashLockFree = "hash-lockfree"
    /// `BucketHashMap` (per-bucket locks, eBPF-for-Windows design), 8-byte keys and values.
    case hashBucket = "hash-bucket"
    /// `ArrayMap` with `UInt32` index keys `0..<entries` and `UInt64` values.
    case array = "array"
    /// The baseline: Swift `Synchronization.Mutex<[UInt64: UInt64]>`.
    case mutexDict = "mutex-dict"
    /// The sample provider's object map (a custom type on the bucket-locked hash): user-mode
    /// lookups translate stored object pointers back into handles.
    case objectMap = "object-map"
    /// No map: each operation is one empty epoch section (enter + exit), the floor under
    /// every helper-mode lookup.
    case epoch = "epoch"

    /// The map every ratio is computed against.
    static let baseline = MapKind.mutexDict

    /// One line for `--help`.
    var summary: String {
        switch self {
        case .hashLockFree: "LockFreeHashMap (rculfhash), UInt64 keys and values"
        case .hashBucket: "BucketHashMap (per-bucket locks), UInt64 keys and values"
        case .array: "ArrayMap, UInt32 index keys 0..<entries, UInt64 values"
        case .mutexDict: "baseline: Mutex<[UInt64: UInt64]>"
        case .objectMap: "custom type (sample object map provider), UInt32 keys, handle values"
        case .epoch: "no map: one empty Epoch.withSection (enter + exit) per operation"
        }
    }
}

/// The operation mixes `rcumaps bench` can run, by command-line name.
enum Workload: String, CaseIterable, Sendable {
    /// Lookups only, every one a hit on the prefilled keys.
    case lookup = "lookup"
    /// 90% lookups, 10% updates (`.any`) of existing keys.
    case readMostly = "read-mostly"

    /// One line for `--help`.
    var summary: String {
        switch self {
        case .lookup: "100% lookups, all hits on the prefilled keys"
        case .readMostly: "90% lookups / 10% updates (.any) of existing keys"
        }
    }

    /// Out of 65536, how many operations are updates (10% for `read-mostly`).
    var updatesPer65536: UInt64 {
        switch self {
        case .lookup: 0
        case .readMostly: 6554
        }
    }
}
