import Foundation
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// The Linux interface on custom maps: access flags and freeze refuse before any provider
/// callback runs; batches run the callbacks element by element, as single operations do.
@Suite("Custom maps: Linux interface")
struct CustomMapLinuxInterfaceTests {
    func makeMap(_ provider: RecordingProvider, base: ProviderBaseMap, flags: MapCreationFlags = [],
                 maxEntries: Int = 64) throws -> any RawMap {
        let registration = try provider.register(base: base)
        return try MapRegistry.create(MapDefinition(type: registration.type, keySize: 4, valueSize: 4,
                                                    maxEntries: maxEntries, flags: flags))
    }

    func errno(_ body: () throws -> Void) -> Int32 {
        do { try body(); return 0 } catch let error as MapError { return error.code } catch { return -1 }
    }

    @Test(arguments: [ProviderBaseMap.hashLockFree, .hashBucketLocked, .array])
    func refusalsComeBeforeCallbacks(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        let readOnly = try makeMap(provider, base: base, flags: .readOnly)
        provider.clear()
        #expect(errno { try readOnly.put(UInt32(1), UInt32(1)) } == EPERM)
        #expect(errno { try readOnly.remove(UInt32(1)) } == EPERM)
        #expect(provider.recorded(.addition).isEmpty && provider.recorded(.postDeletion).isEmpty)
        let writable = try makeMap(provider, base: base)
        try writable.put(UInt32(1), UInt32(7))
        try writable.freeze()
        provider.clear()
        #expect(errno { try writable.put(UInt32(1), UInt32(8)) } == EPERM)
        #expect(provider.recorded(.addition).isEmpty)
        #expect(try writable.get(UInt32(1), as: UInt32.self) == 7)
        // Lock words are not available on custom maps; BPF_F_LOCK is EINVAL.
        #expect(errno { try writable.put(UInt32(1), UInt32(8), flags: MapUpdateFlags.any.union(.lock)) } == EPERM)
        let open = try makeMap(provider, base: base)
        #expect(errno { try open.put(UInt32(1), UInt32(8), flags: MapUpdateFlags.any.union(.lock)) } == EINVAL)
    }

    /// A lookup-and-delete checks the freeze inside its section, against the base map's
    /// flag: a removal that passed the early check (this map's flag, set after the base's
    /// freeze returns) and entered its section once the base was frozen removed the entry
    /// after `freeze()` had returned (found by review, 2026-12-05). The base frozen alone is
    /// that state.
    @Test(arguments: [ProviderBaseMap.hashLockFree, .hashBucketLocked])
    func aLookupAndDeleteChecksTheBasesFreezeInItsSection(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        let map = try #require(try makeMap(provider, base: base) as? RawCustomMap)
        try map.put(UInt32(1), UInt32(7))
        try map.baseMapForTests.freeze()
        provider.clear()
        var out = UInt32(0)
        #expect(errno { try withUnsafeBytes(of: UInt32(1)) { k in try withUnsafeMutableBytes(of: &out) { try map.lookupAndDelete(key: k, into: $0) } } } == EPERM)
        #expect(provider.recorded(.postDeletion).isEmpty)
        #expect(try map.get(UInt32(1), as: UInt32.self) == 7)
    }

    @Test(arguments: [ProviderBaseMap.hashLockFree, .hashBucketLocked])
    func batchesRunTheCallbacksPerElement(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        let map = try makeMap(provider, base: base)
        var keys: [UInt32] = Array(0..<10)
        var values: [UInt32] = keys.map { $0 + 100 }
        let stored = try keys.withUnsafeBytes { k in try values.withUnsafeBytes { v in
            try map.updateBatch(keys: k, values: v, count: 10, elementFlags: [], flags: 0) } }
        #expect(stored.count == 10 && stored.error == nil)
        #expect(provider.recorded(.addition).count == 10)
        provider.clear()
        var outKeys = [UInt32](repeating: 0, count: 16)
        var outValues = [UInt32](repeating: 0, count: 16)
        let drained = try outKeys.withUnsafeMutableBytes { k in try outValues.withUnsafeMutableBytes { v in
            try map.lookupAndDeleteBatch(from: nil, keys: k, values: v, count: 16, elementFlags: [], flags: 0) } }
        #expect(drained.count == 10 && drained.error == .keyNotFound)
        // Translated back by the find callback, and each deletion reported exactly once.
        #expect(Dictionary(uniqueKeysWithValues: zip(outKeys.prefix(10), outValues.prefix(10))) ==
                Dictionary(uniqueKeysWithValues: zip(keys, values)))
        #expect(provider.recorded(.postDeletion).compactMap(\.key).sorted() == keys)
        #expect(map.count == 0)
        keys = []
        values = []
    }

    /// A lookup-and-delete batch that meets an element the provider refuses after removing
    /// others stops there, hands back what it removed (count = those) and resumes after the
    /// refused element: nothing leaves the map unreturned (found by FuzzMapOperations: the
    /// call answered count 0, and the elements it had removed were lost).
    @Test(arguments: [ProviderBaseMap.hashLockFree, .hashBucketLocked])
    func aRefusalInALookupAndDeleteBatchLosesNothing(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        let map = try makeMap(provider, base: base)
        for key in UInt32(0)..<16 { try map.put(key, key + 100) }
        // Refuse the element in the middle of the walk, so that others come before it.
        let order: [UInt32] = try map.allKeys()
        let refused = order[8]
        provider.refusedFindKey.store(refused, ordering: .relaxed)
        var keys = [UInt32](repeating: 0xEEEE, count: 16)
        var values = [UInt32](repeating: 0xEEEE, count: 16)
        let first = try keys.withUnsafeMutableBytes { k in try values.withUnsafeMutableBytes { v in
            try map.lookupAndDeleteBatch(from: nil, keys: k, values: v, count: 16, elementFlags: [], flags: 0) } }
        #expect(first.error == .permissionDenied && first.count == 8)
        #expect(Array(keys.prefix(8)) == Array(order.prefix(8)) && values.prefix(8).elementsEqual(order.prefix(8).map { $0 + 100 }))
        // Nothing past the count: the refused key is not in the buffers (Linux copies an
        // element out only once it was looked up).
        #expect(keys.suffix(8).allSatisfy { $0 == 0xEEEE } && values.suffix(8).allSatisfy { $0 == 0xEEEE })
        #expect(map.count == 8)
        let cursor = try #require(first.cursor)
        let rest = try keys.withUnsafeMutableBytes { k in try values.withUnsafeMutableBytes { v in
            try map.lookupAndDeleteBatch(from: cursor, keys: k, values: v, count: 16, elementFlags: [], flags: 0) } }
        #expect(rest.error == .keyNotFound && rest.count == 7)
        #expect(Set(keys.prefix(7)) == Set(order.suffix(7)))
        #expect(map.count == 1)
        provider.refusedFindKey.store(0xFFFF_FFFF, ordering: .relaxed)
        #expect(try map.get(refused, as: UInt32.self) == refused + 100)
        // A plain lookup batch keeps Linux's rule: a failing element fails the call, count 0.
        provider.refusedFindKey.store(refused, ordering: .relaxed)
        try map.put(refused &+ 1_000, UInt32(1))
        let lookup = try keys.withUnsafeMutableBytes { k in try values.withUnsafeMutableBytes { v in
            try map.lookupBatch(from: nil, keys: k, values: v, count: 16, elementFlags: [], flags: 0) } }
        #expect(lookup.error == .permissionDenied && lookup.count == 0 && lookup.cursor == nil)
    }

    /// A removing batch whose first element is refused still hands back a cursor past it:
    /// a drain in batches of one gets past the element (found by review, 2026-12-05: the
    /// call answered count 0 and no cursor, so every later call met the element first again,
    /// and a typed `removeBatch(maxCount: 1)` loop threw forever).
    @Test(arguments: [ProviderBaseMap.hashLockFree, .hashBucketLocked])
    func aRefusalOfARemovingBatchsFirstElementIsPassed(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        let raw = try #require(try makeMap(provider, base: base) as? RawCustomMap)
        for key in UInt32(0)..<3 { try raw.put(key, key + 100) }
        let order: [UInt32] = try raw.allKeys()
        provider.refusedFindKey.store(order[1], ordering: .relaxed)
        var key: UInt32 = 0xEEEE, value: UInt32 = 0xEEEE
        func drainOne(from cursor: MapBatchCursor?) throws -> MapBatchResult {
            try withUnsafeMutableBytes(of: &key) { k in try withUnsafeMutableBytes(of: &value) { v in
                try raw.lookupAndDeleteBatch(from: cursor, keys: k, values: v, count: 1, elementFlags: [], flags: 0) } }
        }
        let first = try drainOne(from: nil)
        #expect(first.count == 1 && key == order[0])
        let refused = try drainOne(from: first.cursor)
        #expect(refused.count == 0 && refused.error == .permissionDenied)
        let past = try #require(refused.cursor)
        let third = try drainOne(from: past)
        #expect(third.count == 1 && key == order[2] && value == order[2] + 100)
        #expect(raw.count == 1)

        // Typed: a drain in batches of one ends, with the refused entry left.
        let typed = try CustomMap<UInt32, UInt32>(wrapping: raw)
        for key in UInt32(10)..<14 { try typed.updateValue(key + 100, forKey: key) }
        var failures = 0, removed = 0, calls = 0
        var batch = try typed.removeBatch(maxCount: 1)
        while calls < 100 {
            calls += 1
            removed += batch.entries.count
            if batch.failure != nil { failures += 1 }
            if batch.isComplete { break }
            batch = try typed.removeBatch(from: batch.cursor, maxCount: 1)
        }
        #expect(calls < 100 && batch.isComplete)
        #expect(removed == 4 && failures == 1 && typed.count == 1)
    }

    /// The typed removing batch on a custom map: a provider's refusal midway must not lose
    /// the entries the call already removed (found by review, 2026-12-03: the typed layer
    /// threw, and the 8 entries removed before the refusal were gone from the map and from
    /// the answer).
    @Test(arguments: [(ProviderBaseMap.hashLockFree, false), (.hashBucketLocked, false), (.hashLockFree, true),
                      (.hashBucketLocked, true)])
    func aTypedRemoveBatchHandsBackWhatItRemovedBeforeARefusal(_ base: ProviderBaseMap, noSpace: Bool) throws {
        let provider = RecordingProvider()
        // ENOSPC too: the typed batch took it for a bucket larger than its room, retried
        // (losing the 8 removed entries) and then doubled the room forever.
        provider.refusalIsNoSpace.store(noSpace, ordering: .relaxed)
        let raw = try #require(try makeMap(provider, base: base) as? RawCustomMap)
        let map = try CustomMap<UInt32, UInt32>(wrapping: raw)
        for key in UInt32(0)..<16 { try map.updateValue(key + 100, forKey: key) }
        let order: [UInt32] = try raw.allKeys()
        provider.refusedFindKey.store(order[8], ordering: .relaxed)
        let first = try map.removeBatch(maxCount: 16)
        #expect(first.entries.map(\.key) == Array(order.prefix(8)))
        #expect(first.entries.allSatisfy { $0.value == $0.key + 100 })
        #expect(!first.isComplete && first.failure == (noSpace ? .noSpace : .permissionDenied))
        #expect(map.count == 8)
        // The refused element stays; the next call continues after it.
        let rest = try map.removeBatch(from: first.cursor, maxCount: 16)
        #expect(rest.isComplete && rest.failure == nil && rest.entries.count == 7)
        #expect(Set(first.entries.map(\.key) + rest.entries.map(\.key)) == Set(0..<16).subtracting([order[8]]))
        #expect(map.count == 1)
        provider.refusedFindKey.store(0xFFFF_FFFF, ordering: .relaxed)
        #expect(try map.removeValue(forKey: order[8]) == order[8] + 100)
    }

    /// A provider's ENOSPC on the first element of a typed batch is its refusal, not the
    /// bucket-locked hash's "bucket larger than the buffers": the typed batch throws it at
    /// once (found by review, 2026-12-04: it asked again with doubled buffers up to the
    /// capacity, running the find callback for the refused element each time — 11 times in
    /// a map of 1,024). A genuine bucket larger than the room still grows the buffers.
    @Test(arguments: [ProviderBaseMap.hashLockFree, .hashBucketLocked])
    func aTypedBatchThrowsAProvidersNoSpaceOnTheFirstElementAtOnce(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        provider.refusalIsNoSpace.store(true, ordering: .relaxed)
        let raw = try #require(try makeMap(provider, base: base, maxEntries: 1_024) as? RawCustomMap)
        let map = try CustomMap<UInt32, UInt32>(wrapping: raw)
        for key in UInt32(0)..<4 { try map.updateValue(key + 100, forKey: key) }
        let keys: [UInt32] = try raw.allKeys()
        let first = try #require(keys.first)
        provider.refusedFindKey.store(first, ordering: .relaxed)
        for removing in [true, false] {
            provider.clear()
            if removing {
                // A removing batch hands the refusal back with a cursor past the element.
                let batch = try map.removeBatch(maxCount: 1)
                #expect(batch.entries.isEmpty && batch.failure == .noSpace && batch.cursor != nil && !batch.isComplete)
            } else {
                do throws(MapError) {
                    _ = try map.lookupBatch(maxCount: 1)
                    Issue.record("the refusal was not thrown")
                } catch {
                    #expect(error == .noSpace && error.elementsProcessed == 0)
                }
            }
            #expect(provider.recorded(.find).filter { $0.key == first }.count == 1, "removing: \(removing)")
        }
        #expect(map.count == 4)

        // The bucket-locked hash's own ENOSPC: one entry a call asked, whole buckets returned.
        let hash = try BucketHashMap<UInt32, UInt32>(maxEntries: 64)
        for key in UInt32(0)..<48 { try hash.updateValue(key, forKey: key) }
        var drained: [UInt32] = []
        var largest = 0
        var batch = try hash.removeBatch(maxCount: 1)
        while true {
            drained += batch.entries.map(\.key)
            largest = Swift.max(largest, batch.entries.count)
            if batch.isComplete { break }
            batch = try hash.removeBatch(from: batch.cursor, maxCount: 1)
        }
        #expect(drained.sorted() == Array(0..<48) && largest > 1 && hash.count == 0)
    }

    /// A helper-mode update with `BPF_F_LOCK` of a custom map on an array base meets
    /// `array_map_update_elem`'s order — the index (E2BIG) and NOEXIST (EEXIST) before the
    /// missing lock word (EINVAL) — and no callback runs; user mode and hash bases check
    /// the flag first, as the syscall does. Found by review, 2026-12-04 (the provider layer
    /// checked the flag first in both modes).
    @Test(arguments: [ProviderBaseMap.array, .hashBucketLocked, .hashLockFree])
    func aHelperModeLockedArrayUpdateChecksTheIndexFirst(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider(updatesOriginalValue: false)  // helper mode is allowed
        let map = try makeMap(provider, base: base, maxEntries: 8)
        provider.clear()
        func helperPut(_ key: UInt32, _ flags: MapUpdateFlags) -> Int32 {
            errno {
                try withUnsafeBytes(of: key) { k in
                    try withUnsafeBytes(of: UInt32(1)) { v in
                        try Epoch.withSection { (section) throws(MapError) in
                            try map.update(key: k, value: v, flags: flags, in: section)
                        }
                    }
                }
            }
        }
        let array = base == .array
        #expect(helperPut(8, MapUpdateFlags.any.union(.lock)) == (array ? E2BIG : EINVAL))
        #expect(helperPut(1, MapUpdateFlags.noExist.union(.lock)) == (array ? EEXIST : EINVAL))
        #expect(helperPut(1, MapUpdateFlags.exist.union(.lock)) == EINVAL)
        #expect(helperPut(1, MapUpdateFlags(rawValue: 3 | MapUpdateFlags.lock.rawValue)) == EINVAL)
        #expect(errno { try map.put(UInt32(8), UInt32(1), flags: MapUpdateFlags.any.union(.lock)) } == EINVAL)
        #expect(provider.recorded(.addition).isEmpty)
    }

    @Test func arrayBasesLackTheDeletingBatches() throws {
        let map = try makeMap(RecordingProvider(), base: .array)
        var keys = [UInt32](repeating: 0, count: 4)
        var values = [UInt32](repeating: 0, count: 4)
        #expect(errno { _ = try keys.withUnsafeMutableBytes { k in try values.withUnsafeMutableBytes { v in
            try map.lookupAndDeleteBatch(from: nil, keys: k, values: v, count: 4, elementFlags: [], flags: 0) } } } == 524)
        #expect(errno { _ = try keys.withUnsafeBytes { try map.deleteBatch(keys: $0, count: 1, elementFlags: [], flags: 0) } } == 524)
    }
}
