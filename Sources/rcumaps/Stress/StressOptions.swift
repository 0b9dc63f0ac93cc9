/// The maps `rcumaps stress` can exercise, by command-line name.
enum StressMapKind: String, CaseIterable, Sendable {
    /// `RawLockFreeHashMap`: 8-byte keys, 32-byte values.
    case hashLockFree = "hash-lockfree"
    /// `RawBucketHashMap`: 8-byte keys, 32-byte values.
    case hashBucket = "hash-bucket"
    /// `RawLockFreeHashMap`: 8-byte keys, 8-byte values (updated in place, sealed on delete).
    case hashLockFreeWord = "hash-lockfree-8"
    /// `RawBucketHashMap`: 8-byte keys, 8-byte values (exchanged in place).
    case hashBucketWord = "hash-bucket-8"
    /// `RawArrayMap`: `UInt32` index keys, 32-byte values (seqlocked slots).
    case array = "array"
    /// The sample provider's object map (custom type 4200 on the bucket-locked hash):
    /// `UInt32` keys, object-handle values, reference-counted objects.
    case objectMap = "object-map"
    /// The object map on the lock-free hash (custom type 4210): as `object-map`, where a
    /// lookup-and-delete runs the find callback again when the key is replaced meanwhile.
    case objectMapLockFree = "object-map-lockfree"
    /// A custom map type on an ARRAY whose provider changes nothing (type 4103): checked as
    /// `array` is, so the provider layer must be invisible on that base.
    case customArray = "custom-array"
    /// `RawQueueStackMap` QUEUE: 32-byte values, `--keys` elements at most.
    case queue = "queue"
    /// `RawQueueStackMap` STACK: 32-byte values, `--keys` elements at most.
    case stack = "stack"
    /// `RawBucketHashMap` as LRU_HASH: 8-byte keys and values, `max(16, --keys / 4)` entries, fresh
    /// keys (nearly every insert evicts).
    case lruHash = "lru-hash"
    /// `RawPerCPUArrayMap` PERCPU_ARRAY: `UInt32` index keys, an 8-byte value per CPU,
    /// `--keys` entries (helper-mode counters and owned indices).
    case perCPUArray = "percpu-array"
    /// `RawPerCPUHashMap` as PERCPU_HASH: 8-byte keys, an 8-byte value per CPU, `--keys`
    /// entries (at least one per thread).
    case perCPUHash = "percpu-hash"
    /// `RawPerCPUHashMap` as LRU_PERCPU_HASH: as `lru-hash`, a value per CPU.
    case lruPerCPUHash = "lru-percpu-hash"
    /// `RawLPMTrieMap` LPM_TRIE: IPv4 prefixes, `--keys` routes (half stable, half coming
    /// and going), 8-byte values.
    case lpmTrie = "lpm-trie"
    /// `RCUDictionary<Int, class>`: keys and object references in the slots.
    case dictionary = "dictionary"
    /// `RCUDictionary<String, class>`: keys in nodes, object references in the slots.
    case dictionaryString = "dictionary-string"
    /// `RCUDictionary<Int, two-word struct>`: keys and values in nodes.
    case dictionaryNode = "dictionary-node"

    /// One line for `rcumaps stress --help`.
    var summary: String {
        switch self {
        case .hashLockFree: "RawLockFreeHashMap (rculfhash), 8-byte keys, 32-byte values"
        case .hashBucket: "RawBucketHashMap (per-bucket locks), 8-byte keys, 32-byte values"
        case .hashLockFreeWord: "RawLockFreeHashMap, 8-byte keys, 8-byte values (updated in place)"
        case .hashBucketWord: "RawBucketHashMap, 8-byte keys, 8-byte values (exchanged in place)"
        case .array: "RawArrayMap, UInt32 index keys, 32-byte values"
        case .objectMap: "sample object map provider (type \(StressObjects.mapType.rawValue), bucket-locked base), handle values"
        case .objectMapLockFree: "the same provider on the lock-free hash (type \(StressObjects.lockFreeMapType.rawValue)), handle values"
        case .customArray: "custom map type \(PassThroughProvider.arrayType.rawValue) on an ARRAY, callbacks that change nothing, checked as array"
        case .queue: "RawQueueStackMap QUEUE, 32-byte values, at most --keys elements (producers and consumers)"
        case .stack: "RawQueueStackMap STACK, 32-byte values, at most --keys elements (producers and consumers)"
        case .lruHash: "RawBucketHashMap LRU_HASH, 8-byte keys and values, max(16, --keys / 4) entries, evicting writers"
        case .perCPUArray: "RawPerCPUArrayMap PERCPU_ARRAY, an 8-byte value per CPU, helper-mode counters summed exactly"
        case .perCPUHash: "RawPerCPUHashMap PERCPU_HASH, an 8-byte value per CPU, --keys entries (at least --threads), user- and helper-mode writers"
        case .lruPerCPUHash: "RawPerCPUHashMap LRU_PERCPU_HASH, an 8-byte value per CPU, max(16, --keys / 4) entries, evicting writers"
        case .lpmTrie: "RawLPMTrieMap LPM_TRIE, IPv4, --keys routes (half stable), lookups checked by brute force"
        case .dictionary: "RCUDictionary<Int, class>, --keys keys, object values whose lives are counted"
        case .dictionaryString: "RCUDictionary<String, class>, as dictionary (keys in nodes)"
        case .dictionaryNode: "RCUDictionary<Int, struct of two words>, as dictionary (values in nodes)"
        }
    }

    /// Whether the map is an array (no inserts or deletes; every index always has a value):
    /// the ARRAY, or the custom type on one.
    var isArray: Bool { self == .array || self == .customArray }
    /// Whether values are one 8-byte word: the token itself, replaced in place by the map.
    var hasWordValues: Bool { self == .hashLockFreeWord || self == .hashBucketWord }
    /// Whether the map is a queue or a stack (no keys: push, pop, peek; its own workers and checks).
    var isQueueStack: Bool { self == .queue || self == .stack }
    /// Whether the map is an LRU or per-CPU hash (its own workers and checks: ``exerciseEvictingHash``).
    var isEvictingOrPerCPUHash: Bool { self == .lruHash || self == .perCPUHash || self == .lruPerCPUHash }
    /// Whether the map is an `RCUDictionary` (its own workers and checks: ``exerciseDictionary``).
    var isDictionary: Bool { self == .dictionary || self == .dictionaryString || self == .dictionaryNode }
}

/// What `rcumaps stress` runs: the parsed command line (``StressCommand/options``), or built
/// directly by tests.
struct StressOptions: Equatable, Sendable {
    /// Maps to stress, one after the other.
    var maps: [StressMapKind] = StressMapKind.allCases
    /// Seconds per map.
    var duration: Double = 5
    /// Worker threads per map.
    var threads = 4
    /// Seed of the workers' random streams; `nil`: chosen from the clock (and printed).
    var seed: UInt64?
    /// Size of the key space (array maps have exactly this many slots; queues and stacks
    /// hold at most this many elements).
    var keys = 1024
    /// Where to write the memory samples (CSV); `nil`: none are written.
    var samples: String?

    /// Largest `--threads` (writer IDs are 8 bits, 0 is the prefill).
    static let maxThreads = 255
    /// Smallest `--keys`.
    static let minKeys = 16
    /// Largest `--keys` (keys and foreign keys fit the 20-bit key field of a value).
    static let maxKeys = 1 << 19
}
