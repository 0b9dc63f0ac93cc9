import RCUMaps
import RCUMapsTestSupport
import Testing

/// The typed `LRU_HASH` facade: a full cache evicts instead of refusing, the key just
/// written is there, lookups through the subscript keep entries alive, and the wrapping
/// initialiser refuses a map of another type.
@Suite("LRUHashMap (typed)")
struct LRUHashMapTypedTests {
    @Test func aFullCacheEvictsAndKeepsWhatWasJustWritten() throws {
        let cache = try LRUHashMap<UInt64, UInt64>(maxEntries: 64, poolTag: uniqueTag())
        for key in UInt64(0)..<1000 {
            _ = try cache.updateValue(key * 2, forKey: key)
            #expect(cache[key] == key * 2)
            // (A pass: `count` is clamped to `maxEntries`.)
            #expect(Array(cache.keys).count <= 64)
        }
        #expect(cache.count == 64)
        #expect(Array(cache).count == 64)
    }

    @Test func subscriptLookupsKeepEntriesAlive() throws {
        let cache = try LRUHashMap<UInt64, UInt64>(maxEntries: 512, poolTag: uniqueTag())
        for key in UInt64(0)..<512 { _ = try cache.updateValue(key, forKey: key) }
        _ = try cache.updateValue(0, forKey: 10_000)  // one sweep clears every referenced bit
        let hot = (UInt64(0)..<512).filter { $0 % 4 == 0 && cache[$0] != nil }
        for key in UInt64(20_000)..<UInt64(20_016) { _ = try cache.updateValue(key, forKey: key) }
        for key in hot { #expect(cache[key] == key) }
    }

    /// A pass over the cache (its iteration, `values`, `snapshot()`) is not a use: it leaves
    /// recency as it was, as Linux's syscall lookups do. Each step's lookup set the entry's
    /// referenced bit, so an export pass made every entry look just used and the next
    /// inserts evicted hot entries as readily as cold ones (found by review, 2026-12-06,
    /// twenty-third session).
    @Test func passesOverTheCacheAreNotUses() throws {
        let cache = try LRUHashMap<UInt64, UInt64>(maxEntries: 512, poolTag: uniqueTag())
        for key in UInt64(0)..<512 { _ = try cache.updateValue(key, forKey: key) }
        _ = try cache.updateValue(0, forKey: 10_000)  // one sweep clears every referenced bit
        let hot = (UInt64(0)..<512).filter { $0 % 4 == 0 && cache[$0] != nil }
        #expect(cache.snapshot().count == 512)
        #expect(Array(cache.values).count == 512)
        for (key, value) in cache { #expect(key == value || key == 10_000) }
        // `forEachInPlace` too (it marked every entry: found by review, 2026-12-06,
        // twenty-fifth session).
        var visited = 0
        cache.forEachInPlace { _, _ in visited += 1 }
        #expect(visited == 512)
        for key in UInt64(20_000)..<UInt64(20_064) { _ = try cache.updateValue(key, forKey: key) }
        let evictedHot = hot.filter { cache[$0] == nil }
        #expect(evictedHot.isEmpty, "\(evictedHot.count) of \(hot.count) entries looked up were evicted after a pass")
    }

    /// The same for LRU_PERCPU_HASH through ``PerCPUHashMap``'s iteration and `snapshot()`.
    @Test func passesOverAPerCPUCacheAreNotUses() throws {
        let cache = try PerCPUHashMap<UInt64, UInt64>(maxEntries: 512, lru: true, poolTag: uniqueTag())
        let cpus = cache.possibleCPUCount
        for key in UInt64(0)..<512 { try cache.setValues(Array(repeating: key, count: cpus), forKey: key) }
        try cache.setValues(Array(repeating: 0, count: cpus), forKey: 10_000)  // one sweep clears every referenced bit
        let hot = (UInt64(0)..<512).filter { $0 % 4 == 0 && cache[$0] != nil }
        #expect(cache.snapshot().count == 512)
        for key in UInt64(20_000)..<UInt64(20_064) { try cache.setValues(Array(repeating: key, count: cpus), forKey: key) }
        let evictedHot = hot.filter { cache[$0] == nil }
        #expect(evictedHot.isEmpty, "\(evictedHot.count) of \(hot.count) entries looked up were evicted after a pass")
    }

    @Test func wrappingRefusesOtherTypes() throws {
        let hash = try RawBucketHashMap(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 4,
                                                      hashImplementation: .bucketLocked))
        #expect(throws: MapError.invalidArgument) { try LRUHashMap<UInt64, UInt64>(wrapping: hash) }
        let lru = try RawBucketHashMap(MapDefinition(type: .lruHash, keySize: 8, valueSize: 8, maxEntries: 4))
        let typed = try LRUHashMap<UInt64, UInt64>(wrapping: lru)
        _ = try typed.updateValue(7, forKey: 1)
        #expect(typed[1] == 7)
    }
}
