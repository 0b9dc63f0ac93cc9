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

    // The comparison kinds below run only when named (``runsByDefault``); each of the
    // typed and dictionary rows has a ``counterpart`` measured the same way.

    /// `RawLockFreeHashMap` with user-mode lookups (`lookupIfPresent(key:into:)`, a copy): the
    /// byte-level operation under `typed-lockfree`'s subscript.
    case hashLockFreeUser = "hash-lockfree-user"
    /// `LockFreeHashMap<UInt64, UInt64>`: typed subscript lookups, `updateValue` updates.
    case typedLockFree = "typed-lockfree"
    /// `RawBucketHashMap` with user-mode lookups (`lookupIfPresent(key:into:)`, a copy): the
    /// byte-level operation under `typed-bucket`'s subscript.
    case hashBucketUser = "hash-bucket-user"
    /// `BucketHashMap<UInt64, UInt64>`: typed subscript lookups, `updateValue` updates.
    case typedBucket = "typed-bucket"
    /// `ArrayMap<UInt64>`: typed subscript lookups (its byte-level counterpart is `array`,
    /// whose lookups are user mode already).
    case typedArray = "typed-array"
    /// `RCUDictionary<Int, BenchObject>` (a final class): lookups return the object, retained.
    case rcuDictObject = "rcu-dict-object"
    /// Baseline for `rcu-dict-object`: `Mutex<[Int: BenchObject]>`, same keys and objects.
    case mutexDictObject = "mutex-dict-object"
    /// `RCUDictionary<Int, BenchObject>`, lookups that read the object's field through
    /// `withValue(forKey:)`, borrowed (no retain); updates, inserts, deletes as `rcu-dict-object`.
    case rcuDictObjectField = "rcu-dict-object-field"
    /// Baseline for `rcu-dict-object-field`: `Mutex<[Int: BenchObject]>`, reading the field
    /// inside `withLock`.
    case mutexDictObjectField = "mutex-dict-object-field"
    /// `RCUDictionary<String, Int>`, keys of 16 to 24 characters.
    case rcuDictString = "rcu-dict-string"
    /// Baseline for `rcu-dict-string`: `Mutex<[String: Int]>`, same keys.
    case mutexDictString = "mutex-dict-string"
    /// A custom map on the bucket-locked hash whose provider's callbacks change nothing:
    /// the provider layer's own cost against its base (`hash-bucket`, helper-mode lookups).
    case passThrough = "pass-through"
    /// `RawQueueStackMap` QUEUE: user-mode `push` and `pop` of one `UInt64` (push-pop only).
    case queue = "queue"
    /// Baseline for `queue`: liburcu's wfcqueue from C (malloc'd nodes).
    case cWfcqueue = "c-wfcqueue"
    /// `RawQueueStackMap` STACK: user-mode `push` and `pop` of one `UInt64` (push-pop only).
    case stack = "stack"
    /// Baseline for `stack`: liburcu's lfstack from C (malloc'd nodes, pops under its mutex).
    case cLfstack = "c-lfstack"
    /// Baseline for `queue` and `stack`: a swift-collections `Deque<UInt64>` behind a `Mutex`.
    case mutexDeque = "mutex-deque"
    /// `PerCPUArrayMap<UInt64>` (PERCPU_ARRAY): helper-mode increments of the calling CPU's
    /// counter, through `add(_:at:)` (a restartable sequence; increment only).
    case perCPUArray = "percpu-array"
    /// Baseline for `percpu-array`: a plain counter array owned by each thread, incremented
    /// without atomics (increment only).
    case threadLocalCounter = "thread-local"
    /// `RawBucketHashMap` serving `LRU_HASH`, 8x8, `maxEntries` = `--entries`: full once
    /// prefilled. Helper-mode lookups (each sets its entry's referenced bit if clear), as
    /// `hash-bucket`; `insert-full` inserts evict (vs `hash-bucket`'s `update` replaces).
    case lruHash = "lru-hash"
    /// `PerCPUHashMap<UInt64, UInt64>` (PERCPU_HASH) with keys `0..<entries`: helper-mode
    /// increments of the calling CPU's value of a key, through `add(_:forKey:)`
    /// (increment only; vs `thread-local`).
    case perCPUHash = "percpu-hash"
    /// `RawLPMTrieMap` (LPM_TRIE) of `entries` random IPv4 prefixes: longest-prefix lookups
    /// of addresses inside them, copying the value out, through the path the typed
    /// `LPMTrieMap` calls (its key laid out already: no size checks, as the C trie makes
    /// none) (lookup only).
    case lpmIPv4 = "lpm-ipv4"
    /// Baseline for `lpm-ipv4`: a binary Patricia trie in C (Linux's algorithm), same prefixes.
    case cPatriciaIPv4 = "c-patricia-ipv4"
    /// `RawLPMTrieMap` of `entries` random IPv6 prefixes (/16 to /64), as `lpm-ipv4`.
    case lpmIPv6 = "lpm-ipv6"
    /// Baseline for `lpm-ipv6`: the C Patricia trie with the same prefixes.
    case cPatriciaIPv6 = "c-patricia-ipv6"

    // The peer maps (only when named, and with `--peers-library`: ``PeerFunctions``), 8x8.

    /// Peer: ConcurrencyKit's `ck_ht` (direct mode, lookups in `ck_epoch` sections, writers
    /// serialised by a `ck_spinlock`: ck_ht is single-writer).
    case ckHT = "ck-ht"
    /// Peer: libcuckoo's `cuckoohash_map<uint64_t, uint64_t>`.
    case libcuckoo = "libcuckoo"
    /// Peer: oneTBB's `concurrent_hash_map<uint64_t, uint64_t>`.
    case tbbHashMap = "tbb-hash-map"
    /// Peer: open addressing in C (linear probing, backward-shift deletes) behind one
    /// pthread reader-writer lock. Built into the tool: needs no `--peers-library`.
    case cRWLockOpenAddressing = "c-rwlock-oa"

    /// The baselines the report has a ratio column for, in column order.
    static let baselines: [MapKind] = [.mutexDict, .rwlockDict, .cRculfhash, .cOpenAddressing, .swiftArray, .mutexDeque,
                                       .libcuckoo]

    /// What `rcumaps bench` runs when `--maps` is not given: every kind but the comparison
    /// kinds (``runsByDefault``).
    static let defaults: [MapKind] = allCases.filter(\.runsByDefault)

    /// Whether this kind's cells get a `vs <baseline>` ratio: a queue or stack against
    /// `mutex-deque` only, and only the maps of 8-byte integer keys against the key-value
    /// baselines (`mutex-dict`, `rwlock-dict`, `c-rculfhash`, `c-open-addressing`,
    /// `swift-array`, `libcuckoo`), the object map among them (its lookups translate values,
    /// and the SPEC's targets compare it with the Mutex dictionary). The LPM tries, the
    /// dictionaries keyed by strings or holding objects, the per-CPU counters and the
    /// `epoch` row (no map) do other work under the same workload names; their comparison is
    /// their counterpart's column (found by review, 2026-12-05: an LPM lookup got a ratio to
    /// a hash lookup).
    func comparesWith(_ baseline: MapKind) -> Bool {
        switch self {
        case .queue, .cWfcqueue, .stack, .cLfstack, .mutexDeque:
            baseline == .mutexDeque
        case .rcuDictObject, .mutexDictObject, .rcuDictObjectField, .mutexDictObjectField, .rcuDictString,
             .mutexDictString, .perCPUArray, .threadLocalCounter, .perCPUHash, .lpmIPv4, .cPatriciaIPv4, .lpmIPv6,
             .cPatriciaIPv6, .epoch:
            false
        default:
            baseline != .mutexDeque
        }
    }

    /// Whether this kind runs without being named in `--maps`: the comparison kinds (typed
    /// maps, user-mode byte-level rows, dictionaries) run only when asked for.
    var runsByDefault: Bool {
        switch self {
        case .hashLockFree, .hashBucket, .array, .mutexDict, .rwlockDict, .cRculfhash, .cOpenAddressing, .swiftArray,
             .objectMap, .epoch:
            true
        case .hashLockFreeUser, .typedLockFree, .hashBucketUser, .typedBucket, .typedArray,
             .rcuDictObject, .mutexDictObject, .rcuDictObjectField, .mutexDictObjectField, .rcuDictString,
             .mutexDictString, .passThrough,
             .queue, .cWfcqueue, .stack, .cLfstack, .mutexDeque, .perCPUArray, .threadLocalCounter, .lruHash,
             .perCPUHash, .lpmIPv4, .cPatriciaIPv4, .lpmIPv6, .cPatriciaIPv6, .ckHT, .libcuckoo, .tbbHashMap,
             .cRWLockOpenAddressing:
            false
        }
    }

    /// For a peer map, the prefix of its functions in the RCUMapsPeers library
    /// (`<prefix>_create`, ...; ``PeerFunctions``); nil for every other kind.
    var peerSymbolPrefix: String? {
        switch self {
        case .ckHT: "rcumaps_peer_ckht"
        case .libcuckoo: "rcumaps_peer_cuckoo"
        case .tbbHashMap: "rcumaps_peer_tbb"
        default: nil
        }
    }

    /// The one workload this kind runs, if it runs only one (``Workload/isDedicated``):
    /// push-pop for queues and stacks, increment for per-CPU counters.
    var dedicatedWorkload: Workload? {
        switch self {
        case .queue, .cWfcqueue, .stack, .cLfstack, .mutexDeque: .pushPop
        case .perCPUArray, .perCPUHash, .threadLocalCounter: .increment
        case .lpmIPv4, .cPatriciaIPv4, .lpmIPv6, .cPatriciaIPv6: .lookup
        default: nil
        }
    }

    /// Whether this kind is a queue or a stack: it runs the push-pop workload, and only that.
    var runsPushPop: Bool { dedicatedWorkload == .pushPop }

    /// The kind this one is compared with in the report's `vs counterpart` column: the same
    /// operation one layer down (a typed map against its byte-level map in user mode), the
    /// `Mutex` dictionary holding the same keys and values, or liburcu's own structure of
    /// the kind (`queue` against wfcqueue, `stack` against lfstack).
    var counterpart: MapKind? {
        switch self {
        case .typedLockFree: .hashLockFreeUser
        case .typedBucket: .hashBucketUser
        case .typedArray: .array
        case .rcuDictObject: .mutexDictObject
        case .rcuDictObjectField: .mutexDictObjectField
        case .rcuDictString: .mutexDictString
        case .passThrough: .hashBucket
        case .queue: .cWfcqueue
        case .stack: .cLfstack
        case .perCPUArray, .perCPUHash: .threadLocalCounter
        case .lruHash: .hashBucket
        case .lpmIPv4: .cPatriciaIPv4
        case .lpmIPv6: .cPatriciaIPv6
        default: nil
        }
    }

    /// Whether this kind can run `workload` (unsynchronised baselines cannot take writers;
    /// arrays have no inserts or deletes; the epoch row has no map at all).
    func supports(_ workload: Workload) -> Bool {
        // The batch workloads run on the byte-level maps that have batch operations of their
        // own (their single-operation counterparts: ``counterpart(in:)``).
        if workload.isBatch { return runsBatches }
        // Only an LRU map inserts into a full map (every insert evicts); it runs no batches.
        if workload == .insertFull { return self == .lruHash }
        // Queues and stacks run push-pop, per-CPU counters increment, and nothing else runs them.
        if dedicatedWorkload != nil || workload.isDedicated { return dedicatedWorkload == workload }
        return switch (self, workload) {
        case (.cOpenAddressing, .readMostly), (.cOpenAddressing, .churn),
             (.swiftArray, .readMostly), (.swiftArray, .churn),
             (.array, .churn), (.epoch, .churn), (.epoch, .lookupMiss):
            false
        // Updates only: nothing to update on the read-only baselines, and the epoch row's
        // "update" is its lookup again.
        case (.cOpenAddressing, .update), (.swiftArray, .update), (.epoch, .update):
            false
        // The typed rows and their user-mode counterparts compare lookups: their churn and
        // their updates would repeat the byte-level maps' own rows.
        case (.hashLockFreeUser, .churn), (.typedLockFree, .churn), (.hashBucketUser, .churn),
             (.typedBucket, .churn), (.typedArray, .churn),
             (.hashLockFreeUser, .update), (.typedLockFree, .update), (.hashBucketUser, .update),
             (.typedBucket, .update), (.typedArray, .update):
            false
        default:
            true
        }
    }

    /// Whether this kind runs the batch workloads (``Workload/isBatch``): the byte-level
    /// maps whose batch operations are their own (`lookupBatch`, `updateBatch`).
    var runsBatches: Bool {
        switch self {
        case .hashLockFree, .hashBucket, .array: true
        default: false
        }
    }

    /// The cell a row of this kind running `workload` is compared with in the report's
    /// `vs counterpart` column: the same workload on ``counterpart``, or, for a batch
    /// workload, the same elements one operation at a time — `batch-lookup` against the
    /// user-mode lookups of the same map (`hash-bucket-user`, `hash-lockfree-user`, `array`;
    /// a batch copies values out, as they do), `batch-update` against `update` on the same map.
    func counterpart(in workload: Workload) -> BenchCounterpart? {
        // An LRU insert that evicts against the base hash's replace of an existing key.
        if workload == .insertFull { return BenchCounterpart(map: .hashBucket, workload: .update) }
        guard let single = workload.singleOperation else {
            return counterpart.map { BenchCounterpart(map: $0, workload: workload) }
        }
        guard runsBatches else { return nil }
        switch (self, single) {
        case (.hashLockFree, .lookup): return BenchCounterpart(map: .hashLockFreeUser, workload: single)
        case (.hashBucket, .lookup): return BenchCounterpart(map: .hashBucketUser, workload: single)
        default: return BenchCounterpart(map: self, workload: single)
        }
    }

    /// Whether this kind runs every key/value shape (`--shapes`): only our hash maps do
    /// (helper and user mode); the baselines, the array, the typed maps, the dictionaries,
    /// the object map and the epoch row are 8x8 only.
    var runsEveryShape: Bool {
        switch self {
        case .hashLockFree, .hashBucket, .hashLockFreeUser, .hashBucketUser: true
        default: false
        }
    }

    /// Whether this kind can run keys and values of `shape`.
    func supports(_ shape: BenchShape) -> Bool { runsEveryShape || shape == .standard }

    /// The key and value bytes a row of this kind reports, where its types are not those of
    /// the standard 8x8 shape its cells run at (`--shapes` applies to the hash maps only): a
    /// nil part is no byte size (`String` keys, an index into a Swift array rather than a
    /// stored key, no map at all). Nil: the cell's shape. Before, every such row reported
    /// 8x8 (found by review, 2026-12-05).
    var ownLayout: (keyBytes: Int?, valueBytes: Int?)? {
        switch self {
        case .array, .typedArray, .perCPUArray: (4, 8)
        case .objectMap: (4, 4)
        case .lpmIPv6, .cPatriciaIPv6: (20, 8)
        case .queue, .stack, .cWfcqueue, .cLfstack, .mutexDeque: (0, 8)
        case .rcuDictString, .mutexDictString, .swiftArray, .threadLocalCounter: (nil, 8)
        case .epoch: (nil, nil)
        default: nil
        }
    }

    /// The shape column of a cell of this kind run at `shape`: `<key>x<value>`, `-` for a
    /// part that is no byte size (see ``ownLayout``), `-` alone for no map.
    func shapeLabel(at shape: BenchShape) -> String {
        guard let layout = ownLayout else { return shape.description }
        if layout.keyBytes == nil, layout.valueBytes == nil { return "-" }
        return "\(layout.keyBytes.map(String.init) ?? "-")x\(layout.valueBytes.map(String.init) ?? "-")"
    }

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
        case .cRWLockOpenAddressing: "peer: open addressing in C behind one pthread reader-writer lock"
        case .swiftArray: "baseline: plain [UInt64] load (readers only)"
        case .objectMap: "custom type (sample object map provider), UInt32 keys, handle values"
        case .epoch: "no map: one empty Epoch.withSection (enter + exit) per operation"
        case .hashLockFreeUser: "RawLockFreeHashMap, user-mode lookups (a copy), keys and values of each --shapes"
        case .typedLockFree: "LockFreeHashMap<UInt64, UInt64>, subscript lookups (vs hash-lockfree-user)"
        case .hashBucketUser: "RawBucketHashMap, user-mode lookups (a copy), keys and values of each --shapes"
        case .typedBucket: "BucketHashMap<UInt64, UInt64>, subscript lookups (vs hash-bucket-user)"
        case .typedArray: "ArrayMap<UInt64>, subscript lookups (vs array)"
        case .rcuDictObject: "RCUDictionary<Int, BenchObject>, lookups return the object (vs mutex-dict-object)"
        case .mutexDictObject: "baseline: Mutex<[Int: BenchObject]>"
        case .rcuDictObjectField: "RCUDictionary<Int, BenchObject>, lookups read a field, borrowed (vs mutex-dict-object-field)"
        case .mutexDictObjectField: "baseline: Mutex<[Int: BenchObject]>, the field read inside withLock"
        case .rcuDictString: "RCUDictionary<String, Int>, 16- to 24-character keys (vs mutex-dict-string)"
        case .mutexDictString: "baseline: Mutex<[String: Int]>"
        case .passThrough: "custom type on hash-bucket whose callbacks change nothing (vs hash-bucket)"
        case .queue: "RawQueueStackMap QUEUE, user-mode push + pop of UInt64 (vs c-wfcqueue)"
        case .cWfcqueue: "baseline: liburcu wfcqueue from C (malloc'd node per push, dequeue mutex)"
        case .stack: "RawQueueStackMap STACK, user-mode push + pop of UInt64 (vs c-lfstack)"
        case .cLfstack: "baseline: liburcu lfstack from C (malloc'd node per push, pop mutex)"
        case .mutexDeque: "baseline: Mutex<Deque<UInt64>> (swift-collections), append + popFirst"
        case .perCPUArray: "PerCPUArrayMap<UInt64>, add(1, at:) to this CPU's counter, rseq (vs thread-local)"
        case .threadLocalCounter: "baseline: a counter array per thread, plain increments"
        case .lruHash: "RawBucketHashMap as LRU_HASH, full (maxEntries = --entries), helper-mode lookups (vs hash-bucket)"
        case .perCPUHash: "PerCPUHashMap<UInt64, UInt64>, add(1, forKey:) to this CPU's value of a key, rseq (vs thread-local)"
        case .lpmIPv4: "RawLPMTrieMap, longest-prefix lookups on --entries random IPv4 prefixes (vs c-patricia-ipv4)"
        case .cPatriciaIPv4: "baseline: binary Patricia trie in C (Linux's lpm_trie algorithm), same IPv4 prefixes"
        case .lpmIPv6: "RawLPMTrieMap, longest-prefix lookups on --entries random IPv6 prefixes (vs c-patricia-ipv6)"
        case .cPatriciaIPv6: "baseline: binary Patricia trie in C (Linux's lpm_trie algorithm), same IPv6 prefixes"
        case .ckHT: "peer: ConcurrencyKit ck_ht, one writer at a time (needs --peers-library)"
        case .libcuckoo: "peer: libcuckoo cuckoohash_map (needs --peers-library)"
        case .tbbHashMap: "peer: oneTBB concurrent_hash_map (needs --peers-library)"
        }
    }
}

/// A cell a row is compared with (``MapKind/counterpart(in:)``): a map kind and a workload,
/// at the row's shape and thread count.
struct BenchCounterpart: Equatable, Sendable {
    let map: MapKind
    let workload: Workload
}

/// Names `--maps` takes for several kinds at once.
enum MapGroup: String, CaseIterable, Sendable {
    /// What runs without `--maps` (``MapKind/defaults``).
    case standard = "default"
    /// The typed maps, each after its byte-level counterpart in user mode.
    case typed = "typed"
    /// The `RCUDictionary` rows, each before its `Mutex` dictionary baseline.
    case dictionary = "dictionary"
    /// The maps of the batch workloads, each hash map after its user-mode row (the batch
    /// rows' single-lookup counterparts; `array`'s lookups are user mode already).
    case batch = "batch"
    /// The provider layer: its base map, a pass-through custom map on it, the object map.
    case custom = "custom"
    /// QUEUE and STACK, each before its liburcu counterpart, and the `Mutex<Deque>` baseline.
    case queues = "queues"
    /// PERCPU_ARRAY and PERCPU_HASH counters, before the thread-local counter baseline.
    case perCPU = "percpu"
    /// LRU_HASH after the bucket-locked hash it is built on (its comparison rows).
    case lru = "lru"
    /// LPM_TRIE lookups on IPv4 and IPv6 prefixes, each before its C Patricia trie baseline.
    case lpm = "lpm"
    /// The field: both RCUMaps hashes, raw rculfhash, the Mutex dictionary, open addressing
    /// behind a reader-writer lock and the three library peers (which need `--peers-library`).
    case peers = "peers"
    /// Every kind but the library peers (which need `--peers-library`; group `peers`).
    case all = "all"

    /// The kinds of the group, in table order.
    var kinds: [MapKind] {
        switch self {
        case .standard: MapKind.defaults
        case .typed: [.hashLockFreeUser, .typedLockFree, .hashBucketUser, .typedBucket, .array, .typedArray]
        case .dictionary: [.rcuDictObject, .mutexDictObject, .rcuDictObjectField, .mutexDictObjectField, .rcuDictString,
                           .mutexDictString]
        case .batch: [.hashLockFreeUser, .hashLockFree, .hashBucketUser, .hashBucket, .array]
        case .custom: [.hashBucket, .passThrough, .objectMap]
        case .queues: [.queue, .cWfcqueue, .stack, .cLfstack, .mutexDeque]
        case .perCPU: [.perCPUArray, .perCPUHash, .threadLocalCounter]
        case .lru: [.hashBucket, .lruHash]
        case .lpm: [.lpmIPv4, .cPatriciaIPv4, .lpmIPv6, .cPatriciaIPv6]
        case .peers: [.hashBucket, .hashLockFree, .cRculfhash, .mutexDict, .cRWLockOpenAddressing, .ckHT, .libcuckoo,
                      .tbbHashMap]
        case .all: MapKind.allCases.filter { $0.peerSymbolPrefix == nil }
        }
    }

    /// One line for `--help`.
    var summary: String {
        switch self {
        case .standard: "what runs without --maps: every kind above the comparison kinds"
        case .typed: MapGroup.typed.kinds.map(\.rawValue).joined(separator: ", ")
        case .dictionary: MapGroup.dictionary.kinds.map(\.rawValue).joined(separator: ", ")
        case .batch: MapGroup.batch.kinds.map(\.rawValue).joined(separator: ", ")
        case .custom: MapGroup.custom.kinds.map(\.rawValue).joined(separator: ", ")
        case .queues: MapGroup.queues.kinds.map(\.rawValue).joined(separator: ", ")
        case .perCPU: MapGroup.perCPU.kinds.map(\.rawValue).joined(separator: ", ")
        case .lru: MapGroup.lru.kinds.map(\.rawValue).joined(separator: ", ")
        case .lpm: MapGroup.lpm.kinds.map(\.rawValue).joined(separator: ", ")
        case .peers: MapGroup.peers.kinds.map(\.rawValue).joined(separator: ", ")
        case .all: "every kind but ck-ht, libcuckoo and tbb-hash-map (they need --peers-library: group peers)"
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
    /// Queues and stacks only (``MapKind/runsPushPop``): each operation pushes one 8-byte
    /// value, then pops one; an operation is the *pair*. The queue or stack holds the
    /// prefilled values throughout, so pops never find it empty. Runs by default, but no
    /// default map runs it: `--maps queues` is enough to run it.
    case pushPop = "push-pop"
    /// Per-CPU counters only (``MapKind/dedicatedWorkload``): each operation adds 1 to the
    /// counter of a random index, in place. Runs by default, but no default map runs it:
    /// `--maps percpu` is enough to run it.
    case increment = "increment"

    // The workloads below run only when named (``runsByDefault``).

    /// Updates only (`.any`), of random existing keys: one `update` per operation, the
    /// single-operation counterpart of `batch-update`.
    case update = "update"
    /// Whole passes over the map: `lookupBatch` of `--batch-size` elements per call, from
    /// the start of the map to its end, then again; every element's value is read.
    /// Counted per element.
    case batchLookup = "batch-lookup"
    /// `updateBatch` of `--batch-size` random existing keys (`.any`) per call. Counted per
    /// element.
    case batchUpdate = "batch-update"
    /// LRU maps only: inserts (`insertIfAbsent`, `BPF_NOEXIST`) of keys never inserted
    /// before into the full map, so every one evicts an entry. Compared with `update` on
    /// `hash-bucket` (replaces).
    case insertFull = "insert-full"

    /// What `rcumaps bench` runs when `--workloads` is not given.
    static let defaults: [Workload] = allCases.filter(\.runsByDefault)

    /// Whether this workload runs without being named in `--workloads`: the update and
    /// batch workloads run only when asked for.
    var runsByDefault: Bool {
        switch self {
        case .lookup, .lookupMiss, .readMostly, .churn, .pushPop, .increment: true
        case .update, .batchLookup, .batchUpdate, .insertFull: false
        }
    }

    /// Whether operations are batch calls, counted per element (`--batch-size` elements per call).
    var isBatch: Bool { singleOperation != nil }

    /// Whether only the kinds made for it run this workload: push-pop and increment
    /// (``MapKind/dedicatedWorkload``: those kinds run nothing else) and insert-full (LRU
    /// maps, which run the hash workloads too).
    var isDedicated: Bool { self == .pushPop || self == .increment || self == .insertFull }

    /// For a batch workload, the workload doing the same elements one operation at a time
    /// (``MapKind/counterpart(in:)`` names the map); nil for the others.
    var singleOperation: Workload? {
        switch self {
        case .batchLookup: .lookup
        case .batchUpdate: .update
        case .lookup, .lookupMiss, .readMostly, .churn, .update, .pushPop, .increment, .insertFull: nil
        }
    }

    /// One line for `--help`.
    var summary: String {
        switch self {
        case .lookup: "100% lookups, all hits on the prefilled keys"
        case .lookupMiss: "100% lookups, all misses (keys never inserted)"
        case .readMostly: "90% lookups / 10% updates (.any) of existing keys"
        case .churn: "50% inserts (.noExist) / 50% deletes over 2x the prefilled key space"
        case .pushPop: "push one UInt64, then pop one (queues and stacks only; an operation is the pair)"
        case .increment: "add 1 to the counter of a random index, in place (per-CPU counters only)"
        case .update: "100% updates (.any) of existing keys, one per operation"
        case .batchLookup: "whole passes of lookupBatch, --batch-size elements a call (per element; vs lookup)"
        case .batchUpdate: "updateBatch of --batch-size existing keys a call (per element; vs update)"
        case .insertFull: "inserts of new keys into a full LRU map, each evicting (lru-hash only; vs hash-bucket update)"
        }
    }

    /// Out of 65536, how many operations are updates (10% for `read-mostly`, all for `update`).
    var updatesPer65536: UInt64 {
        switch self {
        case .lookup, .lookupMiss, .churn, .batchLookup, .batchUpdate, .pushPop, .increment, .insertFull: 0
        case .readMostly: 6554
        case .update: 65536
        }
    }
}

/// Names `--workloads` takes for several workloads at once.
enum WorkloadGroup: String, CaseIterable, Sendable {
    /// What runs without `--workloads` (``Workload/defaults``).
    case standard = "default"
    /// Each batch workload after its single-operation counterpart.
    case batch = "batch"
    /// Every workload.
    case all = "all"

    /// The workloads of the group, in table order.
    var workloads: [Workload] {
        switch self {
        case .standard: Workload.defaults
        case .batch: [.lookup, .batchLookup, .update, .batchUpdate]
        case .all: Workload.allCases
        }
    }

    /// One line for `--help`.
    var summary: String {
        switch self {
        case .standard: Workload.defaults.map(\.rawValue).joined(separator: ", ")
        case .batch: WorkloadGroup.batch.workloads.map(\.rawValue).joined(separator: ", ")
        case .all: "every workload"
        }
    }
}
