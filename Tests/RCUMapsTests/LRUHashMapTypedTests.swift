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
            #expect(cache.count <= 64)
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
