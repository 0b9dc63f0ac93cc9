import CRCUMapsBaselines
import ObjectMapProvider
import RCUMaps
import Synchronization

/// Keys: the same scrambled 8-byte keys as `rcumaps bench`, visited in a scrambled order.
enum Keys {
    /// The step-th index into `0..<entries`, in an order that defeats the prefetcher.
    @inline(__always)
    static func index(_ step: Int, _ entries: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(truncatingIfNeeded: step) &* 0x9E37_79B9_7F4A_7C15) >> 20) % entries
    }
    /// A key that is in the map.
    @inline(__always)
    static func hit(_ step: Int, _ entries: Int) -> UInt64 { key(index(step, entries)) }
    /// A key that is not.
    @inline(__always)
    static func miss(_ step: Int, _ entries: Int) -> UInt64 { key(entries + index(step, entries)) }
    @inline(__always)
    static func key(_ index: Int) -> UInt64 { (UInt64(truncatingIfNeeded: index) &+ 1) &* 0x9E37_79B9_7F4A_7C15 }
}

/// Fixtures are built once per process and shared by the benchmarks that use them.
enum Fixtures {
    private static let cache = Mutex<[String: any AnyObject & Sendable]>([:])

    private static func cached<T: AnyObject & Sendable>(_ name: String, _ make: () -> T) -> T {
        if let found = cache.withLock({ $0[name] }) as? T { return found }
        let made = make()
        cache.withLock { $0[name] = made }
        return made
    }

    /// A prefilled hash map of the concrete type `Map` (the one `implementation` creates), so
    /// that benchmarks call it without existential dispatch, as a user holding the type does.
    static func hash<Map: RawMap>(_ implementation: HashImplementation, as _: Map.Type, entries: Int,
                                  keySize: Int = 8, valueSize: Int = 8) -> HashFixture<Map> {
        cached("hash-\(implementation)-\(entries)-\(keySize)-\(valueSize)") {
            HashFixture<Map>(implementation, entries: entries, keySize: keySize, valueSize: valueSize)
        }
    }
    static func array(entries: Int) -> ArrayFixture { cached("array-\(entries)") { ArrayFixture(entries: entries) } }
    static func cLfht(entries: Int) -> CLfhtFixture { cached("clfht-\(entries)") { CLfhtFixture(entries: entries) } }
    static func cOpenAddressing(entries: Int) -> COpenAddressingFixture {
        cached("coa-\(entries)") { COpenAddressingFixture(entries: entries) }
    }
    static func mutexDictionary(entries: Int) -> MutexDictionaryFixture {
        cached("mutex-\(entries)") { MutexDictionaryFixture(entries: entries) }
    }
    static func swiftArray(entries: Int) -> SwiftArrayFixture { cached("swift-array-\(entries)") { SwiftArrayFixture(entries: entries) } }
    static func objectMap(entries: Int) -> ObjectMapFixture { cached("object-\(entries)") { ObjectMapFixture(entries: entries) } }
    /// A peer map (CPeerMaps: ck_ht, libcuckoo, TBB) prefilled as the C baselines are.
    static func peer<Map: PeerMap>(_: Map.Type, entries: Int) -> Map {
        cached("peer-\(Map.name)-\(entries)") { Map(prefilledWith: entries) }
    }

    // The typed maps are views of the byte-level fixtures' maps (`init(wrapping:)`): a typed
    // benchmark reads the very table its byte-level counterpart reads.
    static func typedBucket(entries: Int) -> BucketHashMap<UInt64, UInt64> {
        cached("typed-bucket-\(entries)") {
            try! BucketHashMap(wrapping: hash(.bucketLocked, as: RawBucketHashMap.self, entries: entries).map)
        }
    }
    static func typedLockFree(entries: Int) -> LockFreeHashMap<UInt64, UInt64> {
        cached("typed-lockfree-\(entries)") {
            try! LockFreeHashMap(wrapping: hash(.lockFree, as: RawLockFreeHashMap.self, entries: entries).map)
        }
    }
    static func typedArray(entries: Int) -> ArrayMap<UInt64> {
        cached("typed-array-\(entries)") { try! ArrayMap(wrapping: array(entries: entries).map) }
    }

    static func objectDictionaries(entries: Int) -> DictionaryFixture<Int, BenchObject> {
        cached("dictionaries-object-\(entries)") {
            let objects = (0..<entries).map { BenchObject(id: UInt64($0)) }
            return DictionaryFixture(entries: entries, key: { Int(truncatingIfNeeded: Keys.key($0)) }, value: { objects[$0] })
        }
    }
    static func stringDictionaries(entries: Int) -> DictionaryFixture<String, Int> {
        cached("dictionaries-string-\(entries)") {
            DictionaryFixture(entries: entries, key: Keys.string, value: { $0 })
        }
    }
}

extension Keys {
    /// The string key of `index`, as `rcumaps bench`'s `rcu-dict-string` builds it: a prefix of
    /// 0 to 8 characters and the 16 hex digits of ``key(_:)`` (16 to 24 ASCII characters, too
    /// long for a small string), e.g. `session:0d2dd0b7bca50b29`.
    static func string(_ index: Int) -> String {
        let prefixes = ["", "k", "id", "key", "user", "flow:", "tenant", "account", "session:"]
        let hex = String(key(index), radix: 16)
        return prefixes[index % prefixes.count] + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Calls `body` with `count` (≤ 64) zeroed bytes on the stack, 8-byte aligned.
///
/// A fixed-size tuple, where `withUnsafeTemporaryAllocation(byteCount:)` with a run-time
/// size asks the runtime whether the stack can take it on every call: a cost the C
/// baselines, which take their keys by value, do not pay.
@inline(__always)
func withStackBytes<R>(_ count: Int, _ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
    precondition(count <= 64, "the benchmarks' keys and values are at most 64 bytes")
    var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    return withUnsafeMutableBytes(of: &words) { body(UnsafeMutableRawBufferPointer(rebasing: $0[0..<count])) }
}

/// A hash map (8-byte keys extended with zeros to `keySize`) prefilled with `entries` keys.
///
/// Lookups use `RawMap.inlinedLookupInPlace` / `inlinedLookup`, which compile to the concrete
/// map's inlinable code, as user code that names `RawBucketHashMap` or `RawLockFreeHashMap` gets:
/// Swift 6.3 does not devirtualize a typed-throws protocol requirement (all of `RawMap`'s)
/// called from another module, so through the plain requirement each lookup would pay a
/// metadata access and an indirect call.
final class HashFixture<Map: RawMap>: Sendable {
    let map: Map
    let keySize: Int
    let valueSize: Int

    init(_ implementation: HashImplementation, entries: Int, keySize: Int, valueSize: Int) {
        let created = try! MapRegistry.create(MapDefinition(type: .hash, keySize: keySize, valueSize: valueSize,
                                                            maxEntries: entries * 2, hashImplementation: implementation))
        map = created as! Map
        self.keySize = keySize
        self.valueSize = valueSize
        for index in 0..<entries { insert(Keys.key(index)) }
    }

    /// Calls `body` with `key` zero-extended to `keySize` bytes, on the stack.
    @inline(__always)
    func withKey<R>(_ key: UInt64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withStackBytes(keySize) { buffer in
            buffer.storeBytes(of: key, as: UInt64.self)
            return body(UnsafeRawBufferPointer(buffer))
        }
    }

    /// One helper-mode lookup (an epoch section and `lookupInPlace`); 0 on a miss.
    /// 8-byte keys are passed straight from the stack, as the C baselines pass theirs.
    @inline(__always)
    func helperLookup(_ key: UInt64) -> UInt64 {
        if keySize == 8 {
            var key = key
            return withUnsafeBytes(of: &key) { key in
                Epoch.withSection { section in (try? map.inlinedLookupInPlace(key: key, in: section))?.load(as: UInt64.self) ?? 0 }
            }
        }
        return withKey(key) { key in
            Epoch.withSection { section in (try? map.inlinedLookupInPlace(key: key, in: section))?.load(as: UInt64.self) ?? 0 }
        }
    }

    /// One user-mode lookup (a copy of the value); 0 on a miss. 8-byte keys and values are
    /// passed straight from the stack, as a typed map's subscript passes them.
    @inline(__always)
    func userLookup(_ key: UInt64) -> UInt64 {
        if keySize == 8 && valueSize == 8 {
            var key = key
            var value: UInt64 = 0
            return withUnsafeBytes(of: &key) { key in
                withUnsafeMutableBytes(of: &value) { out in (try? map.inlinedLookup(key: key, into: out)) != nil }
            } ? value : 0
        }
        return withKey(key) { key in
            withStackBytes(valueSize) { value in
                (try? map.inlinedLookup(key: key, into: value)) != nil ? value.load(as: UInt64.self) : 0
            }
        }
    }

    func update(_ key: UInt64, _ value: UInt64, flags: MapUpdateFlags = .any) {
        withKey(key) { key in
            withStackBytes(valueSize) { buffer in
                buffer.storeBytes(of: value, as: UInt64.self)
                _ = try? map.update(key: key, value: UnsafeRawBufferPointer(buffer), flags: flags)
            }
        }
    }

    func insert(_ key: UInt64) { update(key, key, flags: .noExist) }
    func delete(_ key: UInt64) { withKey(key) { key in _ = try? map.delete(key: key) } }

    /// One full get-next-key pass; returns the number of keys.
    func iterate() -> Int {
        var count = 0
        withUnsafeTemporaryAllocation(byteCount: keySize * 2, alignment: 8) { buffer in
            let current = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<keySize])
            let next = UnsafeMutableRawBufferPointer(rebasing: buffer[keySize...])
            var cursor: UnsafeRawBufferPointer? = nil
            while (try? map.nextKey(after: cursor, into: next)) != nil {
                current.copyMemory(from: UnsafeRawBufferPointer(next))
                cursor = UnsafeRawBufferPointer(current)
                count += 1
            }
        }
        return count
    }
}

// MARK: - Batches

/// Entries of the batch benchmarks' maps: exactly a million, so that `scalingFactor .mega`
/// turns one pass into per-element figures.
let batchPassEntries = 1_000_000

/// Elements per batch call (as `rcumaps bench --batch-size`'s default).
let batchSize = 1024

/// Key and value buffers for batch calls: `capacity` elements, each packed at its size, as
/// Linux's `batch.keys` / `batch.values`. Call ``deallocate()`` once.
struct BatchBuffers {
    let capacity: Int
    let keyBytes: Int
    let valueBytes: Int
    let keys: UnsafeMutableRawBufferPointer
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
}

extension RawMap {
    /// One `lookupBatch` pass over the whole map, `buffers.capacity` elements per call, every
    /// value (8 bytes) read into a checksum.
    ///
    /// - Precondition: the pass returns `entries` elements and ends with ENOENT (checked
    ///   after the pass: a wrong benchmark stops rather than reports).
    @inline(__always)
    func batchLookupPass(_ buffers: BatchBuffers, entries: Int) -> UInt64 {
        var cursor: MapBatchCursor?
        var elements = 0
        var checksum: UInt64 = 0
        while true {
            let result: MapBatchResult
            do {
                result = try lookupBatch(from: cursor, keys: buffers.keys, values: buffers.values,
                                         count: buffers.capacity, elementFlags: [], flags: 0)
            } catch {
                preconditionFailure("lookupBatch failed: \(error)")
            }
            for element in 0..<result.count {
                checksum &+= buffers.values.load(fromByteOffset: element * 8, as: UInt64.self)
            }
            elements += result.count
            if let error = result.error {
                precondition(error == .keyNotFound && elements == entries,
                             "a batch pass returned \(elements) of \(entries) elements, then \(error)")
                return checksum
            }
            cursor = result.cursor
        }
    }

    /// One `updateBatch` pass (`.any`) over keys `0..<entries` (`key(index)` writes key
    /// `index` at `at`), `buffers.capacity` per call, every value `value ^ index`; returns the
    /// elements stored.
    @inline(__always)
    func batchUpdatePass(_ buffers: BatchBuffers, entries: Int, value: UInt64,
                         key: (Int, UnsafeMutableRawPointer) -> Void) -> Int {
        var stored = 0
        var start = 0
        while start < entries {
            let count = Swift.min(buffers.capacity, entries - start)
            for element in 0..<count {
                key(start + element, buffers.keys.baseAddress! + element * buffers.keyBytes)
                buffers.values.storeBytes(of: value ^ UInt64(start + element), toByteOffset: element * 8, as: UInt64.self)
            }
            let result = try? updateBatch(keys: UnsafeRawBufferPointer(buffers.keys),
                                          values: UnsafeRawBufferPointer(buffers.values),
                                          count: count, elementFlags: [], flags: 0)
            stored += result?.count ?? 0
            start += count
        }
        return stored
    }
}

extension HashFixture {
    /// ``RawMap/batchLookupPass(_:entries:)`` on this fixture's map (8-byte keys and values).
    func batchLookupPass(_ buffers: BatchBuffers, entries: Int) -> UInt64 {
        map.batchLookupPass(buffers, entries: entries)
    }

    /// ``RawMap/batchUpdatePass(_:entries:value:key:)`` over the prefilled keys
    /// (``Keys/key(_:)`` of `0..<entries`).
    func batchUpdatePass(_ buffers: BatchBuffers, entries: Int, value: UInt64) -> Int {
        map.batchUpdatePass(buffers, entries: entries, value: value) { index, key in
            key.storeBytes(of: Keys.key(index), as: UInt64.self)
        }
    }
}

extension ArrayFixture {
    /// ``RawMap/batchLookupPass(_:entries:)`` on this fixture's map.
    func batchLookupPass(_ buffers: BatchBuffers, entries: Int) -> UInt64 {
        map.batchLookupPass(buffers, entries: entries)
    }

    /// ``RawMap/batchUpdatePass(_:entries:value:key:)`` over every index.
    func batchUpdatePass(_ buffers: BatchBuffers, entries: Int, value: UInt64) -> Int {
        map.batchUpdatePass(buffers, entries: entries, value: value) { index, key in
            key.storeBytes(of: UInt32(truncatingIfNeeded: index), as: UInt32.self)
        }
    }

    /// One user-mode `update(.any)` of index `index`.
    @inline(__always)
    func update(_ index: UInt32, _ value: UInt64) -> Bool {
        withUnsafeBytes(of: index) { key in
            withUnsafeBytes(of: value) { value in (try? map.update(key: key, value: value, flags: .any)) != nil }
        }
    }
}

final class ArrayFixture: Sendable {
    let map: RawArrayMap
    init(entries: Int) {
        map = try! RawArrayMap(MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: entries))
    }
    /// User-mode lookup (a copy): an array needs no epoch section, as `rcumaps bench` reads it.
    @inline(__always)
    func lookup(_ index: UInt32) -> UInt64? {
        withUnsafeBytes(of: index) { key in
            var value: UInt64 = 0
            let found = withUnsafeMutableBytes(of: &value) { (try? map.lookup(key: key, into: $0)) != nil }
            return found ? value : nil
        }
    }
}

final class CLfhtFixture: @unchecked Sendable {
    // @unchecked: rculfhash is safe for concurrent use; the pointer never changes.
    let table: UnsafeMutablePointer<rcumaps_baseline_lfht_t>
    init(entries: Int) {
        table = rcumaps_baseline_lfht_create(entries * 2)!
        for index in 0..<entries { _ = rcumaps_baseline_lfht_insert(table, Keys.key(index), UInt64(index)) }
    }
}

final class COpenAddressingFixture: @unchecked Sendable {
    // @unchecked: filled once, then only read.
    let table: UnsafeMutablePointer<rcumaps_baseline_oa_t>
    init(entries: Int) {
        table = rcumaps_baseline_oa_create(entries)!
        for index in 0..<entries { _ = rcumaps_baseline_oa_insert(table, Keys.key(index), UInt64(index)) }
    }
}

final class MutexDictionaryFixture: Sendable {
    let storage: Mutex<[UInt64: UInt64]>
    init(entries: Int) {
        var dictionary: [UInt64: UInt64] = [:]
        for index in 0..<entries { dictionary[Keys.key(index)] = UInt64(index) }
        storage = Mutex(dictionary)
    }
}

final class SwiftArrayFixture: Sendable {
    let values: [UInt64]
    init(entries: Int) { values = (0..<entries).map { UInt64($0) } }
}

final class ObjectMapFixture: Sendable {
    let map: RawCustomMap
    init(entries: Int) {
        let provider = try! ObjectMapProvider(type: MapType(rawValue: 4300), base: .hashBucketLocked)
        map = try! provider.makeMap(maxEntries: entries)
        let handles = (0..<64).map { _ in try! provider.makeObject() }
        for index in 0..<entries {
            var key = UInt32(index)
            var handle = handles[index % handles.count]
            withUnsafeBytes(of: &key) { key in
                withUnsafeBytes(of: &handle) { value in _ = try? map.update(key: key, value: value, flags: .any) }
            }
        }
    }
    @inline(__always)
    func lookup(_ index: UInt32) -> UInt32? {
        withUnsafeBytes(of: index) { key in
            var handle: UInt32 = 0
            let found = withUnsafeMutableBytes(of: &handle) { out in (try? map.lookup(key: key, into: out)) != nil }
            return found ? handle : nil
        }
    }
}

/// The class values of the `*-dict-object` benchmarks: a lookup returns one, retained.
final class BenchObject: Sendable {
    let id: UInt64
    init(id: UInt64) { self.id = id }
}

/// An `RCUDictionary` and a `Mutex<Dictionary>` with the same `entries` entries, and the keys
/// lookups use: copies built apart from the stored keys (for strings, separate buffers, so
/// that a comparison compares bytes, as for keys that come from outside), kept in a buffer
/// that lookups borrow from. (They were an array, whose subscript returns a copy: for
/// `String` keys a retain and a release of the key's buffer a lookup, on both sides, which
/// pulled the pair's ratio towards 1; `rcumaps bench` borrows its probe keys the same way.
/// Found by review, 2026-12-06.)
final class DictionaryFixture<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    let rcu: RCUDictionary<Key, Value>
    let mutex: Mutex<[Key: Value]>
    // Invariant: initialised for its whole count until deinit; never mutated.
    nonisolated(unsafe) let probes: UnsafeMutableBufferPointer<Key>

    init(entries: Int, key: (Int) -> Key, value: (Int) -> Value) {
        rcu = RCUDictionary(minimumCapacity: entries)
        var dictionary: [Key: Value] = [:]
        dictionary.reserveCapacity(entries)
        for index in 0..<entries {
            rcu[key(index)] = value(index)
            dictionary[key(index)] = value(index)
        }
        mutex = Mutex(dictionary)
        probes = .allocate(capacity: entries)
        _ = probes.initialize(from: (0..<entries).map(key))
    }

    deinit {
        probes.deinitialize()
        probes.deallocate()
    }
}
