import CRCUMapsBaselines
import ObjectMapProvider
#if canImport(Glibc)
import Glibc
#endif
import RCUMaps

/// A prefilled map under measurement, addressed by key index `0..<entries`.
///
/// Implementations turn an index into the map's key (``BenchKeys``) and perform one
/// operation. They are used from several threads at once, so they are `Sendable`.
protocol BenchTarget: Sendable {
    /// Number of prefilled keys: valid indices are `0..<entries`.
    var entries: Int { get }
    /// Looks up the key at `index`; `nil` on a miss.
    func lookup(index: Int) -> UInt64?
    /// Stores `value` under the key at `index` (`.any`); `false` if the map refused.
    func update(index: Int, value: UInt64) -> Bool
    /// Inserts the key at `index` if absent (`.noExist`): `.refused` if it was present,
    /// `.failed` on any other error (no memory, no room: the run reports it).
    func insert(index: Int) -> WriteOutcome
    /// Deletes the key at `index`: `.refused` if it was absent, `.failed` on any other error.
    func remove(index: Int) -> WriteOutcome

    // Batch workloads (``Workload/isBatch``): only targets of ``MapKind/runsBatches`` kinds.

    /// The sizes of one key and one value in the batch buffers; nil if the target has no
    /// batch operations.
    var batchElementBytes: (key: Int, value: Int)? { get }
    /// One `lookupBatch` call resuming at `cursor` (nil: the start of the map), for up to
    /// `buffers.capacity` elements; nil if the map threw.
    func lookupBatch(from cursor: MapBatchCursor?, into buffers: BatchBuffers) -> MapBatchResult?
    /// The value at element `element` of `buffers`, folded (every word of it read).
    func foldBatchValue(_ buffers: BatchBuffers, at element: Int) -> UInt64
    /// Writes the key at `index` and the value made from `seed` at element `element` of `buffers`.
    func storeBatchElement(index: Int, seed: UInt64, at element: Int, in buffers: BatchBuffers)
    /// One `updateBatch` call (`.any`) of the first `count` elements of `buffers`; nil if
    /// the map threw.
    func updateBatch(_ buffers: BatchBuffers, count: Int) -> MapBatchResult?

    // The push-pop workload (``Workload/pushPop``): only targets of ``MapKind/runsPushPop`` kinds.

    /// Pushes `value`; `false` if the queue or stack refused it.
    func push(_ value: UInt64) -> Bool
    /// Pops one value; nil if the queue or stack was empty.
    func pop() -> UInt64?

    // The increment workload (``Workload/increment``): only per-CPU counter targets.

    /// Adds 1 to the calling thread's (or CPU's) counter at `index`; `false` if the map refused.
    func increment(index: Int) -> Bool

    /// What the worker thread of random stream `stream` operates on, made before the cell
    /// starts: the target itself, or (the `String`-keyed dictionary rows) a copy holding that
    /// thread's own copies of the probe keys.
    func forWorker(stream: Int) -> Self
}

/// What one insert or delete of churn (or insert-full) did. The refusals are part of churn
/// (present keys inserted, absent ones deleted); a failure is not, and fails the run.
enum WriteOutcome {
    case changed, refused, failed

    /// A C baseline's or peer's status: 1 changed, 0 refused, anything else (-1) failed.
    @inline(__always)
    init(status: Int32) { self = status == 1 ? .changed : status == 0 ? .refused : .failed }

    /// A map's answer: true changed, false refused, nil (it threw) failed.
    @inline(__always)
    init(_ answer: Bool?) { self = answer.map { $0 ? .changed : .refused } ?? .failed }
}

extension BenchTarget {
    // Targets that cannot run churn never get these calls (MapKind.supports).
    func insert(index: Int) -> WriteOutcome { .failed }
    func remove(index: Int) -> WriteOutcome { .failed }

    // Nor do targets without batch operations get these.
    var batchElementBytes: (key: Int, value: Int)? { nil }
    func lookupBatch(from cursor: MapBatchCursor?, into buffers: BatchBuffers) -> MapBatchResult? { nil }
    func foldBatchValue(_ buffers: BatchBuffers, at element: Int) -> UInt64 { 0 }
    func storeBatchElement(index: Int, seed: UInt64, at element: Int, in buffers: BatchBuffers) {}
    func updateBatch(_ buffers: BatchBuffers, count: Int) -> MapBatchResult? { nil }

    // Nor do targets other than queues and stacks get these.
    func push(_ value: UInt64) -> Bool { false }
    func pop() -> UInt64? { nil }

    // Nor do targets other than per-CPU counters get this.
    func increment(index: Int) -> Bool { false }

    func forWorker(stream: Int) -> Self { self }
}

/// One worker thread's buffers for the batch workloads: `capacity` keys and as many values,
/// each packed at its size, as Linux's `batch.keys` / `batch.values`. Call ``deallocate()``
/// once.
struct BatchBuffers {
    /// Elements the buffers hold: the `count` of every batch call.
    let capacity: Int
    /// Bytes of one key.
    let keyBytes: Int
    /// Bytes of one value.
    let valueBytes: Int
    /// `capacity` keys.
    let keys: UnsafeMutableRawBufferPointer
    /// `capacity` values.
    let values: UnsafeMutableRawBufferPointer

    init(capacity: Int, keyBytes: Int, valueBytes: Int) {
        self.capacity = capacity
        self.keyBytes = keyBytes
        self.valueBytes = valueBytes
        keys = .allocate(byteCount: capacity * keyBytes, alignment: 64)
        values = .allocate(byteCount: capacity * valueBytes, alignment: 64)
        keys.initializeMemory(as: UInt8.self, repeating: 0)
        values.initializeMemory(as: UInt8.self, repeating: 0)
    }

    func deallocate() {
        keys.deallocate()
        values.deallocate()
    }

    /// Where the key of element `element` is.
    @inline(__always)
    func key(at element: Int) -> UnsafeMutableRawPointer { keys.baseAddress.unsafelyUnwrapped + element * keyBytes }

    /// Where the value of element `element` is.
    @inline(__always)
    func value(at element: Int) -> UnsafeMutableRawPointer { values.baseAddress.unsafelyUnwrapped + element * valueBytes }
}

/// One user-mode `update(.any)`; `false` if the map refused it.
@inline(__always)
func userUpdate<Map: RawMap, Key: BitwiseCopyable>(_ map: Map, key: Key, value: UInt64) -> Bool {
    var key = key
    var value = value
    return withUnsafeBytes(of: &key) { key in
        withUnsafeBytes(of: &value) { value in
            (try? map.update(key: key, value: value, flags: .any)) != nil
        }
    }
}

/// How a ``HashTarget`` looks a key up.
protocol HashLookupMode: Sendable {
    /// Looks `key` up in `map` and returns the value found, folded (``BenchValueMaker/fold(_:)``:
    /// every word of it is read); nil on a miss.
    static func lookup<Map: RawMap, Values: BenchValueMaker>(
        _ map: Map, key: UnsafeRawBufferPointer, values: Values) -> UInt64?
}

/// Helper mode (`hash-lockfree`, `hash-bucket`): one epoch section and one `lookupInPlaceIfPresent`
/// per operation, reading the value where the map stores it.
enum HelperModeLookup: HashLookupMode {
    @inline(__always)
    static func lookup<Map: RawMap, Values: BenchValueMaker>(
        _ map: Map, key: UnsafeRawBufferPointer, values: Values
    ) -> UInt64? {
        Epoch.withSection { section in
            // A custom map is called by its concrete type, as code that names it does: its
            // helper-mode lookup is inlinable (RCUBaseMaps' `inlinedLookupInPlace` cannot know
            // it, the provider layer being above the base maps). Invariant of the downcast:
            // `Map` is exactly `RawCustomMap`.
            if Map.self == RawCustomMap.self {
                guard let stored = try? unsafeDowncast(map, to: RawCustomMap.self).lookupInPlace(key: key, in: section)
                else { return nil }
                return values.fold(UnsafeRawPointer(stored.baseAddress!))
            }
            // Inlined: a call through `RawMap` would not be (see `RawMap.inlinedLookupInPlace`).
            guard let stored = try? map.inlinedLookupInPlaceIfPresent(key: key, in: section) else { return nil }
            return values.fold(UnsafeRawPointer(stored.baseAddress!))
        }
    }
}

/// User mode (`hash-lockfree-user`, `hash-bucket-user`): `lookupIfPresent(key:into:)` copies the value
/// into a stack buffer (the map enters and leaves its own epoch section): the byte-level
/// operation a typed map's subscript performs.
enum UserModeLookup: HashLookupMode {
    @inline(__always)
    static func lookup<Map: RawMap, Values: BenchValueMaker>(
        _ map: Map, key: UnsafeRawBufferPointer, values: Values
    ) -> UInt64? {
        values.withOutput { value in
            // Inlined, as above (`RawMap.inlinedLookupIfPresent`): the concrete map's
            // `lookupIfPresent(key:into:)`, a miss `false` (no error built), as the subscript.
            guard (try? map.inlinedLookupIfPresent(key: key, into: value)) == true else { return nil }
            return values.fold(UnsafeRawPointer(value.baseAddress!))
        }
    }
}

/// A hash map (either implementation) with keys and values of one shape (``BenchShape``).
///
/// `Keys` and `Values` build the keys and values (``BenchKeyMaker``, ``BenchValueMaker``);
/// with ``Key8`` and ``Value8`` this is the 8x8 benchmark every baseline runs too.
/// Lookups are `Mode`'s: helper mode (``HelperModeLookup``) or user mode (``UserModeLookup``);
/// either reads the whole stored value (``BenchValueMaker/fold(_:)``).
struct HashTarget<Map: RawMap, Keys: BenchKeyMaker, Values: BenchValueMaker, Mode: HashLookupMode>: BenchTarget {
    let map: Map
    let entries: Int
    let keys: Keys
    let values: Values

    /// Prefills `map` with `entries` keys (`.noExist`) and checks its count.
    ///
    /// - Precondition: `map`'s key and value sizes are those of `keys` and `values`.
    init(map: Map, entries: Int, keys: Keys, values: Values, mode _: Mode.Type) throws(MapError) {
        _rcumapsPrecondition(map.definition.keySize == keys.byteCount && map.definition.valueSize == values.byteCount,
                     "the map's key and value sizes differ from the bench shape")
        self.map = map
        self.entries = entries
        self.keys = keys
        self.values = values
        for index in 0..<entries {
            try keys.withKey(index) { (key) throws(MapError) in
                try values.withValue(BenchKeys.initialValue(index)) { (value) throws(MapError) in
                    try map.update(key: key, value: value, flags: .noExist)
                }
            }
        }
        guard map.count == entries else {
            throw MapError.invalidArgument.with(reason: "prefilled \(entries) keys but the map counts \(map.count)")
        }
    }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        keys.withKey(index) { key in Mode.lookup(map, key: key, values: values) }
    }

    @inline(__always)
    func update(index: Int, value: UInt64) -> Bool {
        keys.withKey(index) { key in
            values.withValue(value) { value in (try? map.update(key: key, value: value, flags: .any)) != nil }
        }
    }

    // Churn's inserts and deletes are refused half the time (present keys inserted, absent
    // ones deleted): the forms that return the refusal, as the C peers return a status.
    @inline(__always)
    func insert(index: Int) -> WriteOutcome {
        keys.withKey(index) { key in
            values.withValue(BenchKeys.initialValue(index)) { value in
                WriteOutcome(try? map.insertIfAbsent(key: key, value: value))
            }
        }
    }

    @inline(__always)
    func remove(index: Int) -> WriteOutcome {
        keys.withKey(index) { key in WriteOutcome(try? map.deleteIfPresent(key: key)) }
    }

    var batchElementBytes: (key: Int, value: Int)? { (keys.byteCount, values.byteCount) }

    // One call through `RawMap` per batch (a witness-table call, once per `--batch-size`
    // elements): the batch operations have no inlinable form.
    @inline(__always)
    func lookupBatch(from cursor: MapBatchCursor?, into buffers: BatchBuffers) -> MapBatchResult? {
        try? map.lookupBatch(from: cursor, keys: buffers.keys, values: buffers.values, count: buffers.capacity,
                             elementFlags: [], flags: 0)
    }

    @inline(__always)
    func foldBatchValue(_ buffers: BatchBuffers, at element: Int) -> UInt64 {
        values.fold(UnsafeRawPointer(buffers.value(at: element)))
    }

    @inline(__always)
    func storeBatchElement(index: Int, seed: UInt64, at element: Int, in buffers: BatchBuffers) {
        keys.withKey(index) { key in buffers.key(at: element).copyMemory(from: key.baseAddress!, byteCount: key.count) }
        values.withValue(seed) { value in
            buffers.value(at: element).copyMemory(from: value.baseAddress!, byteCount: value.count)
        }
    }

    @inline(__always)
    func updateBatch(_ buffers: BatchBuffers, count: Int) -> MapBatchResult? {
        try? map.updateBatch(keys: UnsafeRawBufferPointer(buffers.keys), values: UnsafeRawBufferPointer(buffers.values),
                             count: count, elementFlags: [], flags: 0)
    }
}

/// An `RawArrayMap` with `UInt32` index keys and `UInt64` values.
///
/// Lookups are user mode (`lookup(key:into:)`, a copy of the value): an array's storage
/// lives as long as the map, so it needs no epoch section — the array a Swift user reads.
struct ArrayTarget: BenchTarget {
    let map: RawArrayMap
    let entries: Int

    /// Sets every slot of `map` (which has `entries` slots) to its initial value.
    init(map: RawArrayMap, entries: Int) throws(MapError) {
        self.map = map
        self.entries = entries
        for index in 0..<entries {
            guard update(index: index, value: BenchKeys.initialValue(index)) else {
                throw MapError.invalidArgument.with(reason: "could not set array index \(index)")
            }
        }
    }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        var key = UInt32(truncatingIfNeeded: index)
        var value: UInt64 = 0
        let found = withUnsafeBytes(of: &key) { key in
            withUnsafeMutableBytes(of: &value) { value in (try? map.lookup(key: key, into: value)) != nil }
        }
        return found ? value : nil
    }

    @inline(__always)
    func update(index: Int, value: UInt64) -> Bool {
        userUpdate(map, key: UInt32(truncatingIfNeeded: index), value: value)
    }

    var batchElementBytes: (key: Int, value: Int)? { (4, 8) }

    @inline(__always)
    func lookupBatch(from cursor: MapBatchCursor?, into buffers: BatchBuffers) -> MapBatchResult? {
        try? map.lookupBatch(from: cursor, keys: buffers.keys, values: buffers.values, count: buffers.capacity,
                             elementFlags: [], flags: 0)
    }

    @inline(__always)
    func foldBatchValue(_ buffers: BatchBuffers, at element: Int) -> UInt64 {
        buffers.value(at: element).loadUnaligned(as: UInt64.self)
    }

    @inline(__always)
    func storeBatchElement(index: Int, seed: UInt64, at element: Int, in buffers: BatchBuffers) {
        buffers.key(at: element).storeBytes(of: UInt32(truncatingIfNeeded: index), as: UInt32.self)
        buffers.value(at: element).storeBytes(of: seed, as: UInt64.self)
    }

    @inline(__always)
    func updateBatch(_ buffers: BatchBuffers, count: Int) -> MapBatchResult? {
        try? map.updateBatch(keys: UnsafeRawBufferPointer(buffers.keys), values: UnsafeRawBufferPointer(buffers.values),
                             count: count, elementFlags: [], flags: 0)
    }
}

/// Baseline: a Swift dictionary behind a `pthread_rwlock_t`: lookups share the lock.
final class RWLockDictTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: `dictionary` is only touched with `lock` held (shared to read).
    // Exclusivity unchecked: the lock orders the accesses, and the dynamic check cost every
    // operation two runtime calls that `mutex-dict` (a `Mutex`) does not make (found by
    // review, 2026-12-05, eighteenth session).
    @exclusivity(unchecked) private var dictionary: [UInt64: UInt64]
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    let entries: Int

    init(entries: Int) {
        dictionary = [:]
        dictionary.reserveCapacity(entries * 2)
        for index in 0..<entries { dictionary[BenchKeys.hashKey(index)] = BenchKeys.initialValue(index) }
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        _rcumapsPrecondition(pthread_rwlock_init(lock, nil) == 0, "pthread_rwlock_init failed")
        self.entries = entries
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return dictionary[BenchKeys.hashKey(index)]
    }

    @inline(__always)
    func update(index: Int, value: UInt64) -> Bool {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        dictionary[BenchKeys.hashKey(index)] = value
        return true
    }

    @inline(__always)
    func insert(index: Int) -> WriteOutcome {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return insertIfAbsent(&dictionary, BenchKeys.hashKey(index), BenchKeys.initialValue(index)) ? .changed : .refused
    }

    @inline(__always)
    func remove(index: Int) -> WriteOutcome {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return dictionary.removeValue(forKey: BenchKeys.hashKey(index)) != nil ? .changed : .refused
    }
}

/// Baseline: liburcu rculfhash driven from C, same keys as the hash maps.
final class CRculfhashTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: the C table is rculfhash, safe for concurrent use.
    let table: UnsafeMutablePointer<rcumaps_baseline_lfht_t>
    let entries: Int

    init(entries: Int) throws(MapError) {
        guard let table = rcumaps_baseline_lfht_create(entries * 2) else { throw MapError.noMemory }
        self.table = table
        self.entries = entries
        for index in 0..<entries {
            guard rcumaps_baseline_lfht_insert(table, BenchKeys.hashKey(index), BenchKeys.initialValue(index)) == 0
            else { throw MapError.noMemory }
        }
    }

    deinit { rcumaps_baseline_lfht_destroy(table) }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        var value: UInt64 = 0
        return rcumaps_baseline_lfht_lookup(table, BenchKeys.hashKey(index), &value) != 0 ? value : nil
    }

    @inline(__always)
    func update(index: Int, value: UInt64) -> Bool {
        rcumaps_baseline_lfht_update(table, BenchKeys.hashKey(index), value) == 0
    }

    @inline(__always)
    func insert(index: Int) -> WriteOutcome {
        WriteOutcome(status: rcumaps_baseline_lfht_insert_unique(table, BenchKeys.hashKey(index), BenchKeys.initialValue(index)))
    }

    @inline(__always)
    func remove(index: Int) -> WriteOutcome {
        WriteOutcome(status: rcumaps_baseline_lfht_delete(table, BenchKeys.hashKey(index)))
    }
}

/// Baseline: unsynchronised open addressing in C (lookups only).
final class COpenAddressingTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: filled before the threads start, then only read.
    let table: UnsafeMutablePointer<rcumaps_baseline_oa_t>
    let entries: Int

    init(entries: Int) throws(MapError) {
        guard let table = rcumaps_baseline_oa_create(entries) else { throw MapError.noMemory }
        self.table = table
        self.entries = entries
        for index in 0..<entries {
            guard rcumaps_baseline_oa_insert(table, BenchKeys.hashKey(index), BenchKeys.initialValue(index)) == 0
            else { throw MapError.noMemory }
        }
    }

    deinit { rcumaps_baseline_oa_destroy(table) }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        var value: UInt64 = 0
        return rcumaps_baseline_oa_lookup(table, BenchKeys.hashKey(index), &value) != 0 ? value : nil
    }

    func update(index: Int, value: UInt64) -> Bool { false }
}

/// Peer: open addressing in C behind one pthread reader-writer lock, with writers (issue
/// 13's single-lock open-addressing table).
final class CRWLockOpenAddressingTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: the C table takes its reader-writer lock around every operation.
    let table: UnsafeMutablePointer<rcumaps_baseline_rwoa_t>
    let entries: Int

    init(entries: Int) throws(MapError) {
        // Room for every churn key (twice the prefilled set), as the hash maps have.
        guard let table = rcumaps_baseline_rwoa_create(entries * 2) else { throw MapError.noMemory }
        self.table = table
        self.entries = entries
        for index in 0..<entries {
            guard rcumaps_baseline_rwoa_insert_unique(table, BenchKeys.hashKey(index), BenchKeys.initialValue(index)) == 1
            else { throw MapError.noMemory }
        }
    }

    deinit { rcumaps_baseline_rwoa_destroy(table) }

    /// Keys in the table.
    var count: Int { rcumaps_baseline_rwoa_count(table) }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        var value: UInt64 = 0
        return rcumaps_baseline_rwoa_lookup(table, BenchKeys.hashKey(index), &value) != 0 ? value : nil
    }

    @inline(__always)
    func update(index: Int, value: UInt64) -> Bool {
        rcumaps_baseline_rwoa_update(table, BenchKeys.hashKey(index), value) == 0
    }

    @inline(__always)
    func insert(index: Int) -> WriteOutcome {
        WriteOutcome(status: rcumaps_baseline_rwoa_insert_unique(table, BenchKeys.hashKey(index), BenchKeys.initialValue(index)))
    }

    @inline(__always)
    func remove(index: Int) -> WriteOutcome {
        WriteOutcome(status: rcumaps_baseline_rwoa_delete(table, BenchKeys.hashKey(index)))
    }
}

/// Baseline: a plain Swift `[UInt64]` (lookups only), indices as for the array map.
final class SwiftArrayTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: filled before the threads start, then only read.
    let storage: [UInt64]
    let entries: Int

    init(entries: Int) {
        storage = (0..<entries).map { BenchKeys.initialValue($0) }
        self.entries = entries
    }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        index < storage.count ? storage[index] : nil
    }

    func update(index: Int, value: UInt64) -> Bool { false }
}

/// A hash map definition for the benchmark: keys and values of `shape`, room for twice the
/// prefilled entries (churn inserts into a key space twice as large).
func hashDefinition(entries: Int, shape: BenchShape = .standard, implementation: HashImplementation) -> MapDefinition {
    MapDefinition(type: .hash, keySize: shape.keyBytes, valueSize: shape.valueBytes, maxEntries: entries * 2,
                  name: "bench", hashImplementation: implementation)
}

/// An array map definition for the benchmark: `UInt32` keys, `UInt64` values, `entries` slots.
func arrayDefinition(entries: Int) -> MapDefinition {
    MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: entries, name: "bench")
}

/// No map: every operation, lookup or update, is one empty epoch section.
struct EpochTarget: BenchTarget {
    let entries: Int

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        Epoch.withSection { _ in UInt64(truncatingIfNeeded: index) }
    }

    @inline(__always)
    func update(index: Int, value: UInt64) -> Bool {
        Epoch.withSection { _ in true }
    }
}

/// The sample object map: keys are indices, values are handles of a small pool of objects.
///
/// Lookups are user mode (the provider updates the original value, so helper mode is
/// blocked): base lookup, then the provider's find callback turns the stored pointer into
/// the handle. Updates take a reference on the new object and release the displaced one.
struct ObjectMapTarget: BenchTarget {
    let map: RawCustomMap
    let handles: [ObjectMapProvider.Handle]
    let entries: Int
    /// Closes the objects when the last copy of the target goes (before, every object-map
    /// cell left its 64 objects open in the process-wide provider: found by review,
    /// 2026-12-05, eighteenth session).
    let closer: HandleCloser

    /// Closes its handles in the provider when released.
    final class HandleCloser: Sendable {
        let provider: ObjectMapProvider
        let handles: [ObjectMapProvider.Handle]

        init(provider: ObjectMapProvider, handles: [ObjectMapProvider.Handle]) {
            self.provider = provider
            self.handles = handles
        }

        deinit { for handle in handles { provider.close(handle) } }
    }

    /// The provider, registered once per process (type 4100).
    static let provider: Result<ObjectMapProvider, MapError> = Result { () throws(MapError) in try ObjectMapProvider() }

    init(entries: Int) throws(MapError) {
        let provider = try Self.provider.get()
        map = try provider.makeMap(maxEntries: entries * 2, name: "bench")
        handles = try (0..<64).map { (_) throws(MapError) in try provider.makeObject() }
        closer = HandleCloser(provider: provider, handles: handles)
        self.entries = entries
        for index in 0..<entries {
            guard update(index: index, value: UInt64(index)) else {
                throw MapError.invalidArgument.with(reason: "could not prefill object map index \(index)")
            }
        }
    }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        var key = UInt32(truncatingIfNeeded: index)
        var handle: UInt32 = 0
        let found = withUnsafeBytes(of: &key) { key in
            withUnsafeMutableBytes(of: &handle) { out in (try? map.lookup(key: key, into: out)) != nil }
        }
        return found ? UInt64(handle) : nil
    }

    @inline(__always)
    func update(index: Int, value: UInt64) -> Bool {
        userUpdate(map, key: UInt32(truncatingIfNeeded: index), handle: handles[Int(value % UInt64(handles.count))])
    }

    @inline(__always)
    func insert(index: Int) -> WriteOutcome {
        var key = UInt32(truncatingIfNeeded: index)
        var handle = handles[index % handles.count]
        return withUnsafeBytes(of: &key) { key in
            withUnsafeBytes(of: &handle) { value in WriteOutcome(try? map.insertIfAbsent(key: key, value: value)) }
        }
    }

    @inline(__always)
    func remove(index: Int) -> WriteOutcome {
        var key = UInt32(truncatingIfNeeded: index)
        return withUnsafeBytes(of: &key) { key in WriteOutcome(try? map.deleteIfPresent(key: key)) }
    }
}

/// One user-mode `update(.any)` storing a 4-byte handle.
@inline(__always)
func userUpdate<Map: RawMap>(_ map: Map, key: UInt32, handle: UInt32) -> Bool {
    var key = key
    var handle = handle
    return withUnsafeBytes(of: &key) { key in
        withUnsafeBytes(of: &handle) { value in (try? map.update(key: key, value: value, flags: .any)) != nil }
    }
}
