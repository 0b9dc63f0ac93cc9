import RCUMaps
import RCUMapsTestSupport
import Testing

/// The typed maps' calls on a frozen map, and typed views of maps created with access flags
/// (found by review, 2026-12-03): a typed removal from a frozen hash stopped the program (its
/// EPERM was taken for a broken invariant), and so did a subscript on a typed view of a
/// `BPF_F_WRONLY` map.
@Suite("Typed maps: freeze and access flags")
struct TypedMapFreezeTests {
    @Test func removingFromAFrozenTypedHashThrowsEPERM() throws {
        let bucket = try BucketHashMap<UInt32, UInt64>(maxEntries: 8, poolTag: uniqueTag())
        let lockFree = try LockFreeHashMap<UInt32, UInt64>(maxEntries: 8, poolTag: uniqueTag())
        let lru = try LRUHashMap<UInt32, UInt64>(maxEntries: 8, poolTag: uniqueTag())
        let perCPU = try PerCPUHashMap<UInt32, UInt64>(maxEntries: 8, poolTag: uniqueTag())
        try bucket.updateValue(1, forKey: 1)
        try lockFree.updateValue(1, forKey: 1)
        try lru.updateValue(1, forKey: 1)
        try perCPU.setValue(1, forKey: 1)
        try bucket.raw.freeze()
        try lockFree.raw.freeze()
        try lru.raw.freeze()
        try perCPU.raw.freeze()
        #expect(throws: MapError.permissionDenied) { try bucket.removeValue(forKey: 1) }
        #expect(throws: MapError.permissionDenied) { try lockFree.removeValue(forKey: 1) }
        #expect(throws: MapError.permissionDenied) { try lru.removeValue(forKey: 1) }
        #expect(throws: MapError.permissionDenied) { try perCPU.removeValues(forKey: 1) }
        // Nothing was removed, and reads of a frozen map go on.
        #expect(bucket[1] == 1 && lockFree[1] == 1 && lru[1] == 1)
        #expect(perCPU[1] == Array(repeating: 1, count: perCPU.possibleCPUCount))
    }

    @Test func aTypedViewRefusesAMapThatRefusesReads() throws {
        for flags: MapCreationFlags in [.writeOnly, .writeOnlyProgram] {
            let raw = try RawBucketHashMap(MapDefinition(type: .hash, keySize: 4, valueSize: 8, maxEntries: 8, flags: flags,
                                                         hashImplementation: .bucketLocked, poolTag: uniqueTag()))
            do {
                _ = try BucketHashMap<UInt32, UInt64>(wrapping: raw)
                Issue.record("a typed view of a map with \(flags) was made")
            } catch {
                #expect(error == .invalidArgument)
                #expect(error.reason?.contains("refuse reads") == true, "\(error)")
            }
        }
        // A map programs may not write, one whose values hold a lock word, and an LRU_HASH are
        // refused too: the view writes values whole in place (found by review: over the lock
        // word, or through the program side's pointers), and an LRU map evicts where a
        // BucketHashMap answers E2BIG.
        let refused: [(MapDefinition, String)] = [
            (MapDefinition(type: .hash, keySize: 4, valueSize: 8, maxEntries: 8, flags: .readOnlyProgram,
                           hashImplementation: .bucketLocked, poolTag: uniqueTag()), "BPF_F_RDONLY_PROG"),
            (MapDefinition(type: .hash, keySize: 4, valueSize: 8, maxEntries: 8,
                           hashImplementation: .bucketLocked, poolTag: uniqueTag(), lockOffset: 0), "lock word"),
            (MapDefinition(type: .lruHash, keySize: 4, valueSize: 8, maxEntries: 8, poolTag: uniqueTag()), "LRUHashMap"),
        ]
        for (definition, reason) in refused {
            let raw = try RawBucketHashMap(definition)
            do {
                _ = try BucketHashMap<UInt32, UInt64>(wrapping: raw)
                Issue.record("a typed view of a map refusing it (\(reason)) was made")
            } catch {
                #expect(error == .invalidArgument && error.reason?.contains(reason) == true, "\(error)")
            }
        }
        // Flags that refuse writes are kept: the typed writes throw EPERM.
        let readOnly = try RawBucketHashMap(MapDefinition(type: .hash, keySize: 4, valueSize: 8, maxEntries: 8,
                                                          flags: .readOnly, hashImplementation: .bucketLocked,
                                                          poolTag: uniqueTag()))
        let readOnlyView = try BucketHashMap<UInt32, UInt64>(wrapping: readOnly)
        #expect(throws: MapError.permissionDenied) { try readOnlyView.updateValue(1, forKey: 1) }
        #expect(throws: MapError.permissionDenied) { try readOnlyView.removeValue(forKey: 1) }
        #expect(readOnlyView[1] == nil)
        // Without them, the same map is wrapped.
        let raw = try RawBucketHashMap(MapDefinition(type: .hash, keySize: 4, valueSize: 8, maxEntries: 8,
                                                     hashImplementation: .bucketLocked, poolTag: uniqueTag()))
        let view = try BucketHashMap<UInt32, UInt64>(wrapping: raw)
        try view.updateValue(3, forKey: 2)
        #expect(view[2] == 3)
    }
}
