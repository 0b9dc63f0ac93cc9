import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// A helper-mode pointer stays valid until its section ends, even when the map's last
/// reference is dropped inside that section (one thread removes the map from a registry
/// while another still reads a value it looked up in place). Every map type must free its
/// storage only after a grace period.
@Suite("Map lifetime")
struct MapLifetimeTests {
    /// Holds a map the way a user's registry would: the only strong reference.
    final class Holder: @unchecked Sendable {
        var map: (any RawMap)?
        init(_ map: any RawMap) { self.map = map }
    }

    static let definitions: [MapDefinition] = [
        MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 200_000, hashImplementation: .bucketLocked),
        MapDefinition(type: .hash, keySize: 8, valueSize: 64, maxEntries: 200_000, hashImplementation: .bucketLocked),
        MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 16, hashImplementation: .bucketLocked),
        MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 200_000, hashImplementation: .lockFree),
        MapDefinition(type: .hash, keySize: 8, valueSize: 64, maxEntries: 16, hashImplementation: .lockFree),
        MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: 200_000),
    ]

    /// Regression (bucket-locked HASH freed its buckets at once in `deinit`): the pointer a
    /// helper-mode lookup returned is read after the last reference to the map is gone,
    /// inside the same section. Before the fix: SIGSEGV at 200 000 entries,
    /// heap-use-after-free under ASan at 16.
    @Test(arguments: definitions)
    func inPlaceValueOutlivesTheMapUntilTheSectionEnds(_ definition: MapDefinition) throws {
        var definition = definition
        definition.poolTag = uniqueTag()
        let holder = Holder(try MapRegistry.create(definition))
        let keyCount = min(definition.maxEntries, 1_000)
        for index in 0..<keyCount {
            var value = [UInt8](repeating: 0, count: definition.valueSize)
            withUnsafeMutableBytes(of: &value[0]) { $0.storeBytes(of: UInt8(truncatingIfNeeded: index + 1), as: UInt8.self) }
            if definition.type == .array {
                try value.withUnsafeBytes { v in
                    try withUnsafeBytes(of: UInt32(index)) { k in try holder.map!.update(key: k, value: v, flags: .any) }
                }
            } else {
                try value.withUnsafeBytes { v in
                    try withUnsafeBytes(of: UInt64(index)) { k in try holder.map!.update(key: k, value: v, flags: .any) }
                }
            }
        }
        let probe = keyCount / 2
        let seen: UInt8 = try Epoch.withSection { section in
            let pointer: UnsafeMutableRawBufferPointer
            if definition.type == .array {
                pointer = try withUnsafeBytes(of: UInt32(probe)) { k in try holder.map!.lookupInPlace(key: k, in: section) }
            } else {
                pointer = try withUnsafeBytes(of: UInt64(probe)) { k in try holder.map!.lookupInPlace(key: k, in: section) }
            }
            holder.map = nil  // the last reference: the map is destroyed here
            return pointer.load(as: UInt8.self)
        }
        #expect(seen == UInt8(truncatingIfNeeded: probe + 1))
        let settled = settledStatistics(for: definition.poolTag!)
        #expect(settled.liveBytes == 0)
        #expect(settled.pendingBytes == 0)
    }

    /// Writers and readers on other threads while a map is dropped inside a section, many
    /// times: every read of a value looked up in place before the drop sees a whole value.
    @Test(arguments: [HashImplementation.bucketLocked, .lockFree])
    func droppingMapsUnderReadersNeverFreesUnderThem(_ implementation: HashImplementation) throws {
        let tag = uniqueTag()
        let rounds = 30
        for round in 0..<rounds {
            let holder = Holder(try MapRegistry.create(MapDefinition(
                type: .hash, keySize: 8, valueSize: 8, maxEntries: 4_096, hashImplementation: implementation, poolTag: tag)))
            for key in UInt64(0)..<512 { try holder.map!.put(key, key &* 3) }
            let map = ThreadLock<(any RawMap)?>(holder.map)
            holder.map = nil
            let bad = Atomic<Int>(0)
            runOnThreads(2) { thread in
                Epoch.withSection { section in
                    // Both threads look a value up, then the first drops the map while the
                    // other may still be reading.
                    let current = map.withLock { $0 }
                    guard let current else { return }
                    let key = UInt64(thread * 7 + round)
                    let pointer = try? withUnsafeBytes(of: key) { k in try current.lookupInPlace(key: k, in: section) }
                    if thread == 0 { map.withLock { $0 = nil } }
                    _ = consume current
                    for _ in 0..<1_000 {
                        if let pointer, pointer.load(as: UInt64.self) != key &* 3 { bad.add(1, ordering: .relaxed) }
                    }
                }
            }
            #expect(bad.load(ordering: .relaxed) == 0)
        }
        let settled = settledStatistics(for: tag)
        #expect(settled.liveBytes == 0)
    }
}
