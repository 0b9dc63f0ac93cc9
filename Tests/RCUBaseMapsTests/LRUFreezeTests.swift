import Foundation
import Synchronization
@testable import RCUBaseMaps
import RCUMaps
import RCUMapsTestSupport
import Testing

/// `freeze()` and LRU eviction: once `freeze()` has returned, a user-mode write changes
/// nothing — not even by evicting room for itself — while program-mode writes, which a
/// frozen map still takes, go on evicting.
@Suite("LRU_HASH and freeze")
struct LRUFreezeTests {
    /// A user-mode insert into a full map finds no room, releases its chain's lock and
    /// evicts. If `freeze()` ran in between, that eviction came after `freeze()` had
    /// returned (and the insert then failed with EPERM: an entry lost to a refused write).
    /// The eviction a user write asks for now checks the freeze under each victim chain's
    /// lock; here it is asked for after the freeze, as in that interleaving.
    @Test func noEvictionForAUserWriteOnceFrozen() throws {
        let map = try MapRegistry.create(LRUHashMapTests.definition(maxEntries: 4)) as! RawBucketHashMap
        for key in UInt64(1)...4 { try map.put(key, key * 10) }
        try map.freeze()
        // Twice round the clock: the first pass clears the referenced bits of new entries.
        // (An eviction would hand its unit of capacity to this caller: none happens.)
        for _ in 0..<3 { #expect(!map.evictLeastRecentlyUsed(forUserWrite: true)) }
        #expect(map.capacityChangesInFlight == 0)
        #expect(map.count == 4)
        #expect(Set(try map.allKeys(as: UInt64.self)) == [1, 2, 3, 4])
        #expect(throws: MapError.permissionDenied) { try map.put(UInt64(5), UInt64(50)) }
        #expect(Set(try map.allKeys(as: UInt64.self)) == [1, 2, 3, 4])
        // Program-mode writes still evict to make room.
        var key: UInt64 = 6, value: UInt64 = 60
        try withUnsafeBytes(of: &key) { key in
            try withUnsafeBytes(of: &value) { value in
                try Epoch.withSection { section in try map.update(key: key, value: value, flags: .any, in: section) }
            }
        }
        #expect(map.count == 4)
        #expect(try map.get(UInt64(6), as: UInt64.self) == 60)
    }

    #if DEBUG
    /// A second `freeze()` answers "frozen already" only once a delete that found the map
    /// unfrozen under its chain's lock has finished, as the first freeze does (it passes
    /// every chain's lock). It answered once the first's grace period was over, while the
    /// delete was still to land (found by review, 2026-12-06, thirtieth session).
    @Test(arguments: [MapType.hash, .lruHash])
    func aSecondFreezeWaitsForADeleteHoldingItsChainsLock(_ type: MapType) throws {
        let map = try RawBucketHashMap(MapDefinition(type: type, keySize: 8, valueSize: 8, maxEntries: 4, flags: [.zeroSeed],
                                                     poolTag: uniqueTag()))
        for key in UInt64(1)...4 { try map.put(key, key * 10) }
        let parking = ParkingHook()
        map.beforeRemovalUnlinks = parking.hook
        let second = secondFreezeWhileAWriteIsParked(
            on: parking, write: { _ = withUnsafeBytes(of: UInt64(1)) { try? map.delete(key: $0) } },
            freeze: { () throws(MapError) in try map.freeze() }, isFrozen: { map.isFrozen }, count: { map.count })
        map.beforeRemovalUnlinks = nil
        #expect(!second.answeredEarly, "a second freeze() answered while a delete held its chain's lock")
        #expect(second.code == EPERM && second.count == 3, "\(second)")  // frozen already, with the delete done
    }
    #endif
}
