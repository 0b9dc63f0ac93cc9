@testable import RCUBaseMaps
import RCUMaps
import Testing

/// Iterating a typed map while removing the keys it returns (clearing or expiring entries
/// as a pass goes) resumes from each key's successor, fetched before the key was handed
/// out. On the lock-free HASH, resuming after a removed key walked the table's list from its
/// head: one walk per key, time quadratic in the map's size (found by review, 2026-12-05,
/// sixteenth session: 100,000 keys took about 30 s).
@Suite("Typed iteration with removal")
struct TypedIterationRemovalTests {
    struct WideKey: BitwiseCopyable, Hashable, Sendable {
        var high: UInt64
        var low: UInt64
    }

    static let keys = 2_000

    #if DEBUG
    @Test(arguments: [false, true])
    func removingEachKeyAsItComesNeverWalksFromTheHead(entries: Bool) throws {
        let map = try LockFreeHashMap<UInt64, UInt64>(maxEntries: 4_096)
        for key in 0..<UInt64(Self.keys) { try map.updateValue(key &* 7, forKey: key) }
        var seen = Set<UInt64>()
        if entries {
            for (key, value) in map {
                #expect(value == key &* 7)
                seen.insert(key)
                #expect(try map.removeValue(forKey: key) == key &* 7)
            }
        } else {
            for key in map.keys {
                seen.insert(key)
                #expect(try map.removeValue(forKey: key) == key &* 7)
            }
        }
        #expect(seen.count == Self.keys)
        #expect(map.count == 0)
        #expect(map.raw.walksFromTheHead.load(ordering: .relaxed) == 0)
    }

    #if DEBUG
    /// A removal hands on the value its entry had when it left the map: an in-place add
    /// (helper mode, no lock) that found the entry before the unlink is in the value
    /// returned. The bucket hash copied a one-word value before unlinking the entry, so an
    /// add in between was lost with the slot, and a batch copied each entry before
    /// unlinking it (found by review, 2026-12-06). The hook runs under the chain's lock,
    /// between the copy's old place and the unlink.
    @Test(arguments: [false, true])
    func anAddBeforeTheUnlinkIsInTheRemovedValue(batch: Bool) throws {
        let map = try BucketHashMap<UInt32, UInt64>(maxEntries: 16)
        try map.updateValue(10, forKey: 1)
        map.raw.beforeRemovalUnlinks = {
            let added = map.withAtomicFields(forKey: 1) { $0[\.self].wrappingAdd(1, ordering: .relaxed).newValue }
            #expect(added == 11)
        }
        defer { map.raw.beforeRemovalUnlinks = nil }
        if batch {
            let taken = try map.removeBatch(maxCount: 16)
            #expect(taken.entries.map(\.key) == [1])
            #expect(taken.entries.map(\.value) == [11])
        } else {
            #expect(try map.removeValue(forKey: 1) == 11)
        }
        #expect(map[1] == nil)
    }
    #endif

    /// `removingEachKeyAsItComesNeverWalksFromTheHead` with 16-byte keys (entries reached
    /// through the table's list, not in place).
    @Test func wideKeysToo() throws {
        let map = try LockFreeHashMap<WideKey, UInt64>(maxEntries: 4_096)
        for index in 0..<UInt64(Self.keys) { try map.updateValue(index, forKey: WideKey(high: index, low: ~index)) }
        var removed = 0
        for key in map.keys where try map.removeValue(forKey: key) != nil { removed += 1 }
        #expect(removed == Self.keys)
        #expect(map.raw.walksFromTheHead.load(ordering: .relaxed) == 0)
    }
    #endif
}
