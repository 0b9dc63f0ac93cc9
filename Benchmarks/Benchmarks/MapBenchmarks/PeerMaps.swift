// The peer maps: the concurrent hash maps C and C++ programmers pick, measured in the same
// run, with the same keys (`Keys`) and workloads as RCUMaps' maps. They come from the
// CPeerMaps target of this package (Sources/CPeerMaps, a plain C interface), built only here:
//
//  - `ck-ht`: ConcurrencyKit's ck_ht (libck-dev), direct mode (8-byte keys and values in the
//    slots), lookups in ck_epoch sections; ck_ht is single-writer, multi-reader, so its
//    writers take a ck_spinlock per table, as ck_ht is meant to be used;
//  - `libcuckoo`: libcuckoo::cuckoohash_map<uint64_t, uint64_t> (libcuckoo-dev, header-only);
//  - `tbb-hash-map`: oneTBB's tbb::concurrent_hash_map<uint64_t, uint64_t> (libtbb-dev),
//    const_accessor lookups, accessor replacements.
//
// Every table is created with room for twice its entries (as the RCUMaps fixtures' maxEntries)
// and prefilled with keys `Keys.key(0..<entries)`, values the indices (as the C baselines).
// Each operation is one call into CPeerMaps (not inlined into Swift, unlike the C baselines'
// lookups; see CPeerMaps.h).
import Benchmark
import CPeerMaps

/// A peer map behind CPeerMaps' C interface. The maps are safe for concurrent use (see
/// CPeerMaps.h); each class holds its table for the life of the process (fixtures are cached).
protocol PeerMap: AnyObject, Sendable {
    /// The benchmarks' name prefix.
    static var name: String { get }
    /// A table with room for `capacity` entries; the process stops when it cannot be created.
    init(capacity: Int)
    /// 1 found (the value stored through `value`), 0 absent.
    func lookup(_ key: UInt64, _ value: inout UInt64) -> Int32
    /// Inserts or replaces: 0 done, -1 failed.
    func upsert(_ key: UInt64, _ value: UInt64) -> Int32
    /// Inserts if absent: 1 inserted, 0 present, -1 failed.
    func insert(_ key: UInt64, _ value: UInt64) -> Int32
    /// 1 removed, 0 absent.
    func remove(_ key: UInt64) -> Int32
    var count: Int { get }
}

extension PeerMap {
    /// Room for `2 × entries` and keys `Keys.key(0..<entries)` with their indices as values.
    init(prefilledWith entries: Int) {
        self.init(capacity: entries * 2)
        for index in 0..<entries {
            precondition(insert(Keys.key(index), UInt64(index)) == 1, "\(Self.name): prefill insert \(index) failed")
        }
        precondition(count == entries, "\(Self.name): \(count) entries after inserting \(entries)")
    }
}

final class CKHashTable: PeerMap, @unchecked Sendable {
    // @unchecked: ck_ht readers are concurrent, its writers serialised by the table's spinlock
    // (in CPeerMaps); the pointer never changes.
    static var name: String { "ck-ht" }
    let table: OpaquePointer
    init(capacity: Int) {
        guard let table = rcumaps_peer_ckht_create(capacity) else { fatalError("ck_ht: create(\(capacity)) failed") }
        self.table = table
    }
    deinit { rcumaps_peer_ckht_destroy(table) }
    @inline(__always) func lookup(_ key: UInt64, _ value: inout UInt64) -> Int32 { rcumaps_peer_ckht_lookup(table, key, &value) }
    @inline(__always) func upsert(_ key: UInt64, _ value: UInt64) -> Int32 { rcumaps_peer_ckht_upsert(table, key, value) }
    @inline(__always) func insert(_ key: UInt64, _ value: UInt64) -> Int32 { rcumaps_peer_ckht_insert(table, key, value) }
    @inline(__always) func remove(_ key: UInt64) -> Int32 { rcumaps_peer_ckht_remove(table, key) }
    var count: Int { rcumaps_peer_ckht_count(table) }
}

final class CuckooHashMap: PeerMap, @unchecked Sendable {
    // @unchecked: libcuckoo's map is safe for concurrent use; the pointer never changes.
    static var name: String { "libcuckoo" }
    let table: OpaquePointer
    init(capacity: Int) {
        guard let table = rcumaps_peer_cuckoo_create(capacity) else { fatalError("libcuckoo: create(\(capacity)) failed") }
        self.table = table
    }
    deinit { rcumaps_peer_cuckoo_destroy(table) }
    @inline(__always) func lookup(_ key: UInt64, _ value: inout UInt64) -> Int32 { rcumaps_peer_cuckoo_lookup(table, key, &value) }
    @inline(__always) func upsert(_ key: UInt64, _ value: UInt64) -> Int32 { rcumaps_peer_cuckoo_upsert(table, key, value) }
    @inline(__always) func insert(_ key: UInt64, _ value: UInt64) -> Int32 { rcumaps_peer_cuckoo_insert(table, key, value) }
    @inline(__always) func remove(_ key: UInt64) -> Int32 { rcumaps_peer_cuckoo_remove(table, key) }
    var count: Int { rcumaps_peer_cuckoo_count(table) }
}

final class TBBHashMap: PeerMap, @unchecked Sendable {
    // @unchecked: tbb::concurrent_hash_map is safe for concurrent use; the pointer never changes.
    static var name: String { "tbb-hash-map" }
    let table: OpaquePointer
    init(capacity: Int) {
        guard let table = rcumaps_peer_tbb_create(capacity) else { fatalError("TBB: create(\(capacity)) failed") }
        self.table = table
    }
    deinit { rcumaps_peer_tbb_destroy(table) }
    @inline(__always) func lookup(_ key: UInt64, _ value: inout UInt64) -> Int32 { rcumaps_peer_tbb_lookup(table, key, &value) }
    @inline(__always) func upsert(_ key: UInt64, _ value: UInt64) -> Int32 { rcumaps_peer_tbb_upsert(table, key, value) }
    @inline(__always) func insert(_ key: UInt64, _ value: UInt64) -> Int32 { rcumaps_peer_tbb_insert(table, key, value) }
    @inline(__always) func remove(_ key: UInt64) -> Int32 { rcumaps_peer_tbb_remove(table, key) }
    var count: Int { rcumaps_peer_tbb_count(table) }
}

/// Every peer's benchmarks at `entries` (16 K or 1 M): the workloads RCUMaps' hash maps run
/// at that size, each operation as theirs.
func peerBenchmarks(entries: Int, size: String, lookup: Benchmark.Configuration) {
    peerMapBenchmarks(CKHashTable.self, entries: entries, size: size, lookup: lookup)
    peerMapBenchmarks(CuckooHashMap.self, entries: entries, size: size, lookup: lookup)
    peerMapBenchmarks(TBBHashMap.self, entries: entries, size: size, lookup: lookup)
}

/// `lookup-hit`, `read-mostly-90-10` and `churn-50-50` on one peer, as `hash-*.lookup-hit.*`,
/// `hash-*.read-mostly-90-10.*` and `hash-*.churn-50-50.*` run on RCUMaps' maps.
func peerMapBenchmarks<Map: PeerMap>(_: Map.Type, entries: Int, size: String, lookup: Benchmark.Configuration) {
    let name = Map.name
    Benchmark("\(name).lookup-hit.\(size)", configuration: lookup) { benchmark in
        let map = Fixtures.peer(Map.self, entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations {
            var value: UInt64 = 0
            blackHole(map.lookup(Keys.hit(step, entries), &value))
            blackHole(value)
        }
    }
    // One replacement of an existing key in ten operations, lookups of existing keys otherwise.
    Benchmark("\(name).read-mostly-90-10.\(size)", configuration: .init(thresholds: Tolerance.writePath())) { benchmark in
        let map = Fixtures.peer(Map.self, entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations {
            if step % 10 == 0 {
                blackHole(map.upsert(Keys.hit(step, entries), UInt64(step)))
            } else {
                var value: UInt64 = 0
                blackHole(map.lookup(Keys.hit(step, entries), &value))
                blackHole(value)
            }
        }
    }
    Benchmark("\(name).churn-50-50.\(size)", configuration: .init(thresholds: Tolerance.writePath())) { benchmark in
        let map = Fixtures.peer(Map.self, entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations {
            // Delete a prefilled key, then put it back: the map's size stays the same.
            let key = Keys.hit(step / 2, entries)
            if step & 1 == 0 { blackHole(map.remove(key)) } else { blackHole(map.insert(key, key)) }
        }
    }
}
