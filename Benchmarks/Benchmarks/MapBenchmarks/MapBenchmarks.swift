// RCUMaps benchmarks: every base map and access mode against the baselines, and the hash maps
// against the peer maps (ck_ht, libcuckoo, TBB: PeerMaps.swift), single-threaded, measured by
// package-benchmark (wall clock, throughput, mallocs). Multi-threaded scaling is `rcumaps
// bench`'s job. Each benchmark iteration does 1,000 operations (scalingFactor .kilo), so "ns"
// per iteration / 1,000 = ns per operation. `benchmark.scaledIterations` is `0..<1000` in every
// iteration, so an iteration visits the same 1,000 keys (`Keys.hit(0..<1000, entries)`) as
// the one before: at 1M entries the table is large but the keys probed stay in the caches.
//
// Names are `map.workload.size`, without spaces or slashes: package-benchmark 1.38.1 writes
// threshold files under a name with those replaced by `_` but looks them up under the raw name
// (ordo-one/benchmark issues #301, #373), so such a benchmark would never be checked.
//
// Thresholds (see Tolerances.swift and ../../Thresholds): every benchmark is a read path that
// must not allocate unless it says otherwise; the write paths say so.
import Benchmark
import CRCUMapsBaselines
import ObjectMapProvider
import RCUMaps
import Synchronization

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 100_000,
        thresholds: Tolerance.readPath)

    Benchmark("epoch.enter+exit") { benchmark in
        for _ in benchmark.scaledIterations { Epoch.withSection { _ in blackHole(0) } }
    }

    for entries in [16_384, 1 << 20] {
        let size = entries == 16_384 ? "16K" : "1M"
        // 1M-entry tables: a wider wall-clock tolerance (Tolerances.swift). Their 1,000 keys per
        // iteration are the same in every iteration (see the top of this file).
        let sized = Benchmark.Configuration(thresholds: entries == 16_384 ? Tolerance.readPath : Tolerance.memoryBoundReadPath)
        hashLookupBenchmarks("hash-lockfree", .lockFree, RawLockFreeHashMap.self, entries: entries, size: size, sized)
        hashLookupBenchmarks("hash-bucket", .bucketLocked, RawBucketHashMap.self, entries: entries, size: size, sized)
        Benchmark("c-rculfhash.lookup-hit.\(size)", configuration: sized) { benchmark in
            let fixture = Fixtures.cLfht(entries: entries)
            benchmark.startMeasurement()
            for step in benchmark.scaledIterations {
                var value: UInt64 = 0
                blackHole(rcumaps_baseline_lfht_lookup(fixture.table, Keys.hit(step, entries), &value))
                blackHole(value)
            }
        }
        Benchmark("c-open-addressing.lookup-hit.\(size)", configuration: sized) { benchmark in
            let fixture = Fixtures.cOpenAddressing(entries: entries)
            benchmark.startMeasurement()
            for step in benchmark.scaledIterations {
                var value: UInt64 = 0
                blackHole(rcumaps_baseline_oa_lookup(fixture.table, Keys.hit(step, entries), &value))
                blackHole(value)
            }
        }
        // Updates of existing keys and deletes and re-inserts, on RCUMaps' hash maps, raw
        // rculfhash and the peer maps (PeerMaps.swift), the same operations at either size.
        hashWriteBenchmarks("hash-lockfree", .lockFree, RawLockFreeHashMap.self, entries: entries, size: size)
        hashWriteBenchmarks("hash-bucket", .bucketLocked, RawBucketHashMap.self, entries: entries, size: size)
        cLfhtWriteBenchmarks(entries: entries, size: size)
        peerBenchmarks(entries: entries, size: size, lookup: sized)
        Benchmark("mutex-dict.lookup-hit.\(size)", configuration: sized) { benchmark in
            let fixture = Fixtures.mutexDictionary(entries: entries)
            benchmark.startMeasurement()
            for step in benchmark.scaledIterations {
                let key = Keys.hit(step, entries)
                blackHole(fixture.storage.withLock { $0[key] })
            }
        }
        Benchmark("array.lookup.\(size)", configuration: sized) { benchmark in
            let fixture = Fixtures.array(entries: entries)
            benchmark.startMeasurement()
            for step in benchmark.scaledIterations { blackHole(fixture.lookup(UInt32(Keys.index(step, entries)))) }
        }
        typedLookupBenchmarks(entries: entries, size: size, sized)
        Benchmark("swift-array.load.\(size)", configuration: sized) { benchmark in
            let fixture = Fixtures.swiftArray(entries: entries)
            benchmark.startMeasurement()
            for step in benchmark.scaledIterations { blackHole(fixture.values[Keys.index(step, entries)]) }
        }
    }

    let entries = 16_384
    hashMapBenchmarks("hash-lockfree", .lockFree, RawLockFreeHashMap.self, entries: entries)
    hashMapBenchmarks("hash-bucket", .bucketLocked, RawBucketHashMap.self, entries: entries)
    Benchmark("mutex-dict.read-mostly-90-10.16K", configuration: .init(thresholds: Tolerance.writePath())) { benchmark in
        let fixture = Fixtures.mutexDictionary(entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations {
            let key = Keys.hit(step, entries)
            if step % 10 == 0 { fixture.storage.withLock { $0[key] = UInt64(step) } } else {
                blackHole(fixture.storage.withLock { $0[key] })
            }
        }
    }
    Benchmark("object-map.user-mode-lookup.16K") { benchmark in
        let fixture = Fixtures.objectMap(entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations { blackHole(fixture.lookup(UInt32(Keys.index(step, entries)))) }
    }
    dictionaryLookupBenchmarks(entries: entries)
    batchBenchmarks()
}

/// Batch operations against the same elements one operation at a time, per element, on maps
/// of exactly 1,000,000 entries (8-byte keys and values; hash maps with `maxEntries` twice
/// that, as the 1M lookup fixtures): one iteration is one pass over every key, and
/// `scalingFactor .mega` makes the printed figures per element (the stored thresholds, as
/// always, per iteration: per pass).
///
/// - `*.batch-lookup-pass.1M`: `lookupBatch` of ``batchSize`` elements per call from the start
///   of the map to its end (every value read into a checksum), against
///   `*.user-mode-lookup-pass.1M` (`array.lookup-pass.1M`): a user-mode lookup (a copy) of
///   every key, in key-index order.
/// - `*.batch-update-pass.1M`: `updateBatch` of ``batchSize`` keys per call over every key, in
///   key-index order, against `*.update-pass.1M`: one `update(.any)` per key, same order.
func batchBenchmarks() {
    let entries = batchPassEntries
    // A pass takes milliseconds (tens to hundreds on a table that misses the caches): more time
    // than the default second, for enough iterations to give a p90.
    let read = Benchmark.Configuration(scalingFactor: .mega, maxDuration: .seconds(2),
                                       thresholds: Tolerance.memoryBoundReadPath)
    // `lookupBatch` keeps cursors of up to 16 bytes inline (every cursor here: an index, or
    // an 8-byte key and a marker byte): a pass allocates nothing, and is gated as a read path
    // (it allocated an array per call until 2026-12-02; the thresholds kept that count until
    // 2026-12-06).
    let batchRead = read
    let write = Benchmark.Configuration(scalingFactor: .mega, maxDuration: .seconds(2),
                                        thresholds: Tolerance.writePath())
    hashBatchBenchmarks("hash-lockfree", .lockFree, RawLockFreeHashMap.self, entries: entries,
                        read: read, batchRead: batchRead, write: write)
    hashBatchBenchmarks("hash-bucket", .bucketLocked, RawBucketHashMap.self, entries: entries,
                        read: read, batchRead: batchRead, write: write)
    Benchmark("array.batch-lookup-pass.1M", configuration: batchRead) { benchmark in
        let fixture = Fixtures.array(entries: entries)
        let buffers = BatchBuffers(capacity: batchSize, keyBytes: 4, valueBytes: 8)
        defer { buffers.deallocate() }
        benchmark.startMeasurement()
        blackHole(fixture.batchLookupPass(buffers, entries: entries))
    }
    Benchmark("array.lookup-pass.1M", configuration: read) { benchmark in
        let fixture = Fixtures.array(entries: entries)
        benchmark.startMeasurement()
        var checksum: UInt64 = 0
        for index in 0..<entries { checksum &+= fixture.lookup(UInt32(index)) ?? 0 }
        blackHole(checksum)
    }
    Benchmark("array.batch-update-pass.1M", configuration: write) { benchmark in
        let fixture = Fixtures.array(entries: entries)
        let buffers = BatchBuffers(capacity: batchSize, keyBytes: 4, valueBytes: 8)
        defer { buffers.deallocate() }
        benchmark.startMeasurement()
        blackHole(fixture.batchUpdatePass(buffers, entries: entries, value: 1))
    }
    Benchmark("array.update-pass.1M", configuration: write) { benchmark in
        let fixture = Fixtures.array(entries: entries)
        benchmark.startMeasurement()
        var stored = 0
        for index in 0..<entries { stored &+= fixture.update(UInt32(index), UInt64(index)) ? 1 : 0 }
        blackHole(stored)
    }
}

/// ``batchBenchmarks()`` for a hash map of concrete type `Map`.
func hashBatchBenchmarks<Map: RawMap>(_ name: String, _ implementation: HashImplementation, _: Map.Type, entries: Int,
                                      read: Benchmark.Configuration, batchRead: Benchmark.Configuration,
                                      write: Benchmark.Configuration) {
    Benchmark("\(name).batch-lookup-pass.1M", configuration: batchRead) { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries)
        let buffers = BatchBuffers(capacity: batchSize, keyBytes: 8, valueBytes: 8)
        defer { buffers.deallocate() }
        benchmark.startMeasurement()
        blackHole(fixture.batchLookupPass(buffers, entries: entries))
    }
    Benchmark("\(name).user-mode-lookup-pass.1M", configuration: read) { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries)
        benchmark.startMeasurement()
        var checksum: UInt64 = 0
        for index in 0..<entries { checksum &+= fixture.userLookup(Keys.key(index)) }
        blackHole(checksum)
    }
    Benchmark("\(name).batch-update-pass.1M", configuration: write) { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries)
        let buffers = BatchBuffers(capacity: batchSize, keyBytes: 8, valueBytes: 8)
        defer { buffers.deallocate() }
        benchmark.startMeasurement()
        blackHole(fixture.batchUpdatePass(buffers, entries: entries, value: 1))
    }
    Benchmark("\(name).update-pass.1M", configuration: write) { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries)
        benchmark.startMeasurement()
        for index in 0..<entries { fixture.update(Keys.key(index), UInt64(index)) }
    }
}

/// The typed maps' subscripts (a copy out: user mode), each beside its byte-level
/// counterpart (`hash-*.user-mode-lookup.*`, `array.lookup.*`), on the same table.
func typedLookupBenchmarks(entries: Int, size: String, _ configuration: Benchmark.Configuration) {
    Benchmark("typed-lockfree.user-mode-lookup.\(size)", configuration: configuration) { benchmark in
        let map = Fixtures.typedLockFree(entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations { blackHole(map[Keys.hit(step, entries)]) }
    }
    Benchmark("typed-bucket.user-mode-lookup.\(size)", configuration: configuration) { benchmark in
        let map = Fixtures.typedBucket(entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations { blackHole(map[Keys.hit(step, entries)]) }
    }
    Benchmark("typed-array.lookup.\(size)", configuration: configuration) { benchmark in
        let map = Fixtures.typedArray(entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations { blackHole(map[UInt32(Keys.index(step, entries))]) }
    }
}

/// `RCUDictionary` against `Mutex<Dictionary>`, one thread, lookups that hit: `Int` keys with
/// class values (the object is returned, retained) and 16- to 24-character `String` keys.
func dictionaryLookupBenchmarks(entries: Int) {
    Benchmark("rcu-dict-object.lookup-hit.16K") { benchmark in
        let fixture = Fixtures.objectDictionaries(entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations { blackHole(fixture.rcu[Int(truncatingIfNeeded: Keys.hit(step, entries))]) }
    }
    Benchmark("mutex-dict-object.lookup-hit.16K") { benchmark in
        let fixture = Fixtures.objectDictionaries(entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations {
            let key = Int(truncatingIfNeeded: Keys.hit(step, entries))
            blackHole(fixture.mutex.withLock { $0[key] })
        }
    }
    Benchmark("rcu-dict-string.lookup-hit.16K") { benchmark in
        let fixture = Fixtures.stringDictionaries(entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations { blackHole(fixture.rcu[fixture.probes[Keys.index(step, entries)]]) }
    }
    Benchmark("mutex-dict-string.lookup-hit.16K") { benchmark in
        let fixture = Fixtures.stringDictionaries(entries: entries)
        benchmark.startMeasurement()
        // The key borrowed from the buffer inside the lock, as the RCU side borrows it: bound
        // to a `let` outside, it was copied (a retain and a release of its storage).
        for step in benchmark.scaledIterations {
            let index = Keys.index(step, entries)
            blackHole(fixture.mutex.withLock { $0[fixture.probes[index]] })
        }
    }
}

/// Lookup hits and misses (helper mode) and user-mode lookups on a hash map of concrete type
/// `Map`, `entries` keys.
func hashLookupBenchmarks<Map: RawMap>(_ name: String, _ implementation: HashImplementation, _: Map.Type,
                                       entries: Int, size: String, _ configuration: Benchmark.Configuration) {
    Benchmark("\(name).lookup-hit.\(size)", configuration: configuration) { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations { blackHole(fixture.helperLookup(Keys.hit(step, entries))) }
    }
    Benchmark("\(name).lookup-miss.\(size)", configuration: configuration) { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations { blackHole(fixture.helperLookup(Keys.miss(step, entries))) }
    }
    Benchmark("\(name).user-mode-lookup.\(size)", configuration: configuration) { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations { blackHole(fixture.userLookup(Keys.hit(step, entries))) }
    }
}

/// Writes on a hash map of concrete type `Map`, `entries` keys: `read-mostly-90-10` (one update
/// of an existing key in ten operations, helper-mode lookups otherwise) and `churn-50-50`
/// (delete a prefilled key, then insert it again). The peer maps (PeerMaps.swift) and raw
/// rculfhash run the same operations on the same keys.
func hashWriteBenchmarks<Map: RawMap>(_ name: String, _ implementation: HashImplementation, _: Map.Type,
                                      entries: Int, size: String) {
    // Updates of existing keys (8-byte values, replaced in place: no allocation in either map).
    Benchmark("\(name).read-mostly-90-10.\(size)", configuration: .init(thresholds: Tolerance.writePath())) { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations {
            if step % 10 == 0 { fixture.update(Keys.hit(step, entries), UInt64(step)) } else {
                blackHole(fixture.helperLookup(Keys.hit(step, entries)))
            }
        }
    }
    // The lock-free hash allocates an element per insert; the bucket hash allocates in bursts.
    let churnAllocations = implementation == .lockFree ? Tolerance.writeAllocations : Tolerance.burstyWriteAllocations
    let churn = Benchmark.Configuration(thresholds: Tolerance.writePath(allocations: churnAllocations))
    Benchmark("\(name).churn-50-50.\(size)", configuration: churn) { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations {
            // Delete a prefilled key, then put it back: the map's size stays the same.
            let key = Keys.hit(step / 2, entries)
            if step & 1 == 0 { fixture.delete(key) } else { fixture.insert(key) }
        }
    }
}

/// ``hashWriteBenchmarks(_:_:_:entries:size:)``'s workloads on raw rculfhash (CRCUMapsBaselines):
/// `cds_lfht_add_replace` (a new node per update, the old one freed after a grace period),
/// `cds_lfht_del` and `cds_lfht_add_unique`.
func cLfhtWriteBenchmarks(entries: Int, size: String) {
    Benchmark("c-rculfhash.read-mostly-90-10.\(size)", configuration: .init(thresholds: Tolerance.writePath())) { benchmark in
        let fixture = Fixtures.cLfht(entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations {
            if step % 10 == 0 {
                blackHole(rcumaps_baseline_lfht_update(fixture.table, Keys.hit(step, entries), UInt64(step)))
            } else {
                var value: UInt64 = 0
                blackHole(rcumaps_baseline_lfht_lookup(fixture.table, Keys.hit(step, entries), &value))
            }
        }
    }
    Benchmark("c-rculfhash.churn-50-50.\(size)", configuration: .init(thresholds: Tolerance.writePath())) { benchmark in
        let fixture = Fixtures.cLfht(entries: entries)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations {
            // Delete a prefilled key, then put it back: the map's size stays the same.
            let key = Keys.hit(step / 2, entries)
            if step & 1 == 0 {
                blackHole(rcumaps_baseline_lfht_delete(fixture.table, key))
            } else {
                blackHole(rcumaps_baseline_lfht_insert_unique(fixture.table, key, key))
            }
        }
    }
}

/// The other access modes, shapes and workloads on a hash map of concrete type `Map`.
func hashMapBenchmarks<Map: RawMap>(_ name: String, _ implementation: HashImplementation, _: Map.Type, entries: Int) {
    Benchmark("\(name).16-byte-key-lookup.16K") { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries, keySize: 16)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations { blackHole(fixture.helperLookup(Keys.hit(step, entries))) }
    }
    Benchmark("\(name).64-byte-value-user-mode-lookup.16K") { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries, valueSize: 64)
        benchmark.startMeasurement()
        for step in benchmark.scaledIterations { blackHole(fixture.userLookup(Keys.hit(step, entries))) }
    }
    Benchmark("\(name).iteration.16K", configuration: .init(scalingFactor: .one, maxIterations: 200)) { benchmark in
        let fixture = Fixtures.hash(implementation, as: Map.self, entries: entries)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(fixture.iterate()) }
    }
}
