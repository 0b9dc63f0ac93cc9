import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Foundation
import Testing

@Suite("Provider-backed map semantics")
struct ProviderSemanticsTests {
    static let hashBases: [ProviderBaseMap] = [.hashLockFree, .hashBucketLocked]

    @Test(arguments: ProviderBaseMap.allCases)
    func storedValuesAreTranslatedBothWays(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        let registration = try provider.register(base: base)
        let map = try #require(try registration.makeMap(maxEntries: 16) as? RawCustomMap)
        #expect(map.storedValueSize == 8)
        #expect(map.definition.valueSize == 4)
        try map.put(UInt32(3), UInt32(77))
        #expect(try map.get(UInt32(3), as: UInt32.self) == 77)
        // The base map holds the transformed form.
        let stored = try Epoch.withSection { (section) throws(MapError) -> UInt64 in
            try withUnsafeBytes(of: UInt32(3)) { (key) throws(MapError) -> UInt64 in
                try registration.client.findElement(in: map, key: key, in: section).loadUnaligned(as: UInt64.self)
            }
        }
        #expect(stored == UInt64(77) | UInt64(77 ^ 0xA5A5_A5A5) << 32)
        #expect(provider.recorded(.addition).map(\.value) == [77])
        // User-facing sizes are checked before any callback runs.
        provider.clear()
        #expect(throws: MapError.invalidArgument) { try map.put(UInt32(3), UInt64(1)) }
        #expect(throws: MapError.invalidArgument) { try map.get(UInt32(3), as: UInt64.self) }
        #expect(throws: MapError.invalidArgument) { try map.put(UInt64(3), UInt32(1)) }
        #expect(throws: MapError.invalidArgument) { try map.put(UInt32(3), UInt32(1), flags: MapUpdateFlags(rawValue: 9)) }
        #expect(provider.recorded(.addition).isEmpty)
    }

    /// A transforming provider whose stored value is `storedSize` bytes (each 4-byte lane the
    /// user value XOR its lane's index): a user-mode lookup must hand the find callback every
    /// byte of the stored value, whatever the size (up to 64 bytes the layer's buffer has a
    /// fixed size, beyond it the stored value's own, and neither is zeroed for a lookup).
    @Test(arguments: ProviderBaseMap.allCases, [12, 64, 100])
    func wholeStoredValuesReachTheFindCallback(_ base: ProviderBaseMap, storedSize: Int) throws {
        let dispatch = MapProviderDispatchTable(
            preprocessMapCreate: { _ in MapCreateResult(actualValueSize: storedSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { _, _ in },
            postprocessFindElement: { (call) throws(MapError) in
                guard let out = call.outValue else { return }
                let value = call.inValue.loadUnaligned(as: UInt32.self)
                for lane in 0..<(storedSize / 4) where call.inValue.loadUnaligned(fromByteOffset: 4 * lane, as: UInt32.self)
                    != value ^ UInt32(lane) {
                    throw MapError.invalidArgument
                }
                out.storeBytes(of: value, as: UInt32.self)
            },
            preprocessElementAddition: { (call) throws(MapError) in
                guard let out = call.outValue else { return }
                let value = call.inValue.loadUnaligned(as: UInt32.self)
                for lane in 0..<(storedSize / 4) { out.storeBytes(of: value ^ UInt32(lane), toByteOffset: 4 * lane, as: UInt32.self) }
            },
            postprocessElementDeletion: { _ in })
        let registration = try MapProviderRegistry.shared.register(
            type: uniqueCustomType(), base: base, properties: MapProviderProperties(updatesOriginalValue: true),
            dispatch: dispatch)
        let map = try #require(try registration.makeMap(maxEntries: 32) as? RawCustomMap)
        #expect(map.storedValueSize == storedSize)
        for key in UInt32(0)..<20 { try map.put(key, 1000 + key * 7) }
        for key in UInt32(0)..<20 { #expect(try map.get(key, as: UInt32.self) == 1000 + key * 7) }
        try map.put(UInt32(4), UInt32(0xFFFF_0000))
        #expect(try map.get(UInt32(4), as: UInt32.self) == 0xFFFF_0000)
        if base != .array { #expect(throws: MapError.keyNotFound) { try map.get(UInt32(25), as: UInt32.self) } }
    }

    /// A map of a translating provider (`updatesOriginalValue`) on `base` whose addition
    /// stores the user's value as it is and whose find callback is `find`.
    func translatingMap(base: ProviderBaseMap, maxEntries: Int,
                        find: @escaping @Sendable (MapElementCall) throws(MapError) -> Void) throws -> RawCustomMap {
        let dispatch = MapProviderDispatchTable(
            preprocessMapCreate: { request in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { _, _ in },
            postprocessFindElement: find,
            preprocessElementAddition: { (call) throws(MapError) in
                if let out = call.outValue { out.copyMemory(from: call.inValue) }
            },
            postprocessElementDeletion: { _ in })
        let registration = try MapProviderRegistry.shared.register(
            type: uniqueCustomType(), base: base, properties: MapProviderProperties(updatesOriginalValue: true),
            dispatch: dispatch)
        return try #require(try registration.makeMap(maxEntries: maxEntries) as? RawCustomMap)
    }

    /// A translating find callback that writes part of its answer and then refuses leaves the
    /// caller's buffer of a lookup-and-delete as it was, and the entry in the map: the answer
    /// goes to a copy first, handed over only once the entry is removed (found by review: on
    /// the lock-free base an answer for an entry not removed could reach the caller). A
    /// lookup's callback writes into the caller's buffer directly, as eBPF-for-Windows'.
    @Test(arguments: ProviderBaseMap.allCases)
    func aRefusingTranslationLeavesALookupAndDeleteUntouched(_ base: ProviderBaseMap) throws {
        let map = try translatingMap(base: base, maxEntries: 16) { (call) throws(MapError) in
            guard let out = call.outValue else { return }
            out.copyMemory(from: call.inValue)
            // Key 7's value is refused after the answer is written.
            if call.key.loadUnaligned(as: UInt32.self) == 7 { throw MapError.permissionDenied }
        }
        try map.put(UInt32(7), UInt32(0x1111_2222))
        var buffer: UInt32 = 0xAAAA_AAAA
        guard base != .array else { return }  // arrays have no lookup-and-delete
        _ = withUnsafeBytes(of: UInt32(7)) { key in
            withUnsafeMutableBytes(of: &buffer) { value in
                #expect(throws: MapError.permissionDenied) { try map.lookupAndDelete(key: key, into: value) }
            }
        }
        #expect(buffer == 0xAAAA_AAAA)
        #expect(map.count == 1)
    }

    /// A translating find callback that writes only part of its answer: the bytes it leaves
    /// are zero in what a lookup-and-delete and the batches hand back, never bytes of another
    /// element's answer or of whatever their buffer held (found by review, 2026-12-06: they
    /// answered into uninitialised scratch). Odd keys' answers fill every byte with 0x5A,
    /// even keys' write only byte 0.
    @Test(arguments: ProviderBaseMap.allCases)
    func aPartialTranslationLeavesZeroesNotOtherBytes(_ base: ProviderBaseMap) throws {
        let map = try translatingMap(base: base, maxEntries: 64) { (call) throws(MapError) in
            guard let out = call.outValue else { return }
            if call.key.loadUnaligned(as: UInt32.self) & 1 == 1 {
                out.initializeMemory(as: UInt8.self, repeating: 0x5A)
            } else {
                out.storeBytes(of: UInt8(1), as: UInt8.self)
            }
        }
        for key in UInt32(0)..<64 { try map.put(key, key) }
        // A lookup and an update's displaced value too, into a buffer that held other bytes,
        // and the typed map's subscript and updateValue, whose temporary last held an odd
        // key's answer (they kept those bytes: 0xAAAAAA01, 0x5A5A5A01; found by review,
        // 2026-12-06, twenty-fourth session).
        for key in UInt32(0)..<4 {
            var buffer: UInt32 = 0xAAAA_AAAA
            try withUnsafeBytes(of: key) { k in try withUnsafeMutableBytes(of: &buffer) { v in try map.lookup(key: k, into: v) } }
            #expect(buffer == (key & 1 == 1 ? 0x5A5A_5A5A : 1), "lookup of key \(key)")
            buffer = 0xAAAA_AAAA
            let replaced = try withUnsafeBytes(of: key) { k in try withUnsafeBytes(of: key) { new in
                try withUnsafeMutableBytes(of: &buffer) { v in try map.exchange(key: k, value: new, flags: .any, into: v) } } }
            #expect(replaced)
            #expect(buffer == (key & 1 == 1 ? 0x5A5A_5A5A : 1), "the value an update of key \(key) displaced")
        }
        let typed = try CustomMap<UInt32, UInt32>(wrapping: map)
        for key in UInt32(0)..<4 {
            _ = try typed[key | 1]
            #expect(try typed[key & ~1] == 1, "typed lookup of key \(key & ~1)")
            _ = try typed.updateValue(key | 1, forKey: key | 1)
            #expect(try typed.updateValue(key & ~1, forKey: key & ~1) == 1, "typed update of key \(key & ~1)")
        }
        var keys = [UInt32](repeating: 0, count: 64)
        var values = [UInt32](repeating: 0, count: 64)
        let batch = try keys.withUnsafeMutableBytes { k in try values.withUnsafeMutableBytes { v in
            try map.lookupBatch(from: nil, keys: k, values: v, count: 64, elementFlags: [], flags: 0) } }
        #expect(batch.count == 64)
        for (key, value) in zip(keys, values) { #expect(value == (key & 1 == 1 ? 0x5A5A_5A5A : 1), "key \(key)") }
        guard base != .array else { return }  // arrays have no lookup-and-delete
        for key in UInt32(0)..<8 {
            var buffer: UInt32 = 0xAAAA_AAAA
            try withUnsafeBytes(of: key) { k in try withUnsafeMutableBytes(of: &buffer) { v in try map.lookupAndDelete(key: k, into: v) } }
            #expect(buffer == (key & 1 == 1 ? 0x5A5A_5A5A : 1), "key \(key)")
        }
        let removing = try keys.withUnsafeMutableBytes { k in try values.withUnsafeMutableBytes { v in
            try map.lookupAndDeleteBatch(from: nil, keys: k, values: v, count: 64, elementFlags: [], flags: 0) } }
        #expect(removing.count == 56)
        for (key, value) in zip(keys.prefix(56), values) { #expect(value == (key & 1 == 1 ? 0x5A5A_5A5A : 1), "key \(key)") }
    }

    /// The lock-free base runs a lookup-and-delete's find callback again on the entry that
    /// replaced one it failed to unlink: the answer handed back is that second run's alone,
    /// its unwritten bytes zero. The answer was zeroed once, so a second run that wrote only
    /// byte 0 handed back the first run's bytes around it: 0x5A5A5A22 (found by review,
    /// 2026-12-06, twenty-fourth session).
    @Test func aRetriedLookupAndDeleteAnswersOnlyTheEntryItRemoved() throws {
        // 1: the first run of the callback waits; 2: the replace is done.
        let first = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 1)
        first.initialize(to: Atomic(0))
        defer { first.deinitialize(count: 1); first.deallocate() }
        nonisolated(unsafe) let shared = first
        let map = try translatingMap(base: .hashLockFree, maxEntries: 16) { (call) throws(MapError) in
            guard let out = call.outValue else { return }
            let stored = call.inValue.loadUnaligned(as: UInt32.self)
            if stored == 0x11 {
                out.initializeMemory(as: UInt8.self, repeating: 0x5A)
                if shared.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged {
                    while shared.pointee.load(ordering: .acquiring) != 2 { sched_yield() }
                }
            } else {
                out.storeBytes(of: UInt8(truncatingIfNeeded: stored), as: UInt8.self)
            }
        }
        try map.put(UInt32(1), UInt32(0x11))
        let answer = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: 1)
        answer.initialize(to: Atomic(0))
        defer { answer.deinitialize(count: 1); answer.deallocate() }
        nonisolated(unsafe) let result = answer
        runOnThreads(2) { index in
            if index == 0 {
                var buffer: UInt32 = 0xAAAA_AAAA
                try? withUnsafeBytes(of: UInt32(1)) { k in try withUnsafeMutableBytes(of: &buffer) { v in
                    try map.lookupAndDelete(key: k, into: v) } }
                result.pointee.store(buffer, ordering: .releasing)
            } else {
                while shared.pointee.load(ordering: .acquiring) != 1 { sched_yield() }
                try? map.put(UInt32(1), UInt32(0x22))
                shared.pointee.store(2, ordering: .releasing)
            }
        }
        #expect(result.pointee.load(ordering: .acquiring) == 0x22)
        #expect(map.count == 0)
    }

    @Test(arguments: ProviderBaseMap.allCases)
    func helperModeIsBlockedWhenTheProviderUpdatesTheOriginalValue(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        let map = try provider.register(base: base).makeMap()
        try map.put(UInt32(1), UInt32(10))
        withUnsafeBytes(of: UInt32(1)) { key in
            withUnsafeBytes(of: UInt32(11)) { value in
                Epoch.withSection { section in
                    #expect(throws: MapError.notSupported) { try map.lookupInPlace(key: key, in: section) }
                    #expect(throws: MapError.notSupported) { try map.update(key: key, value: value, flags: .any, in: section) }
                    #expect(throws: MapError.notSupported) { try map.delete(key: key, in: section) }
                }
            }
        }
        #expect(try map.get(UInt32(1), as: UInt32.self) == 10)
    }

    @Test(arguments: hashBases)
    func helperModeCallbacksCarryTheHelperFlag(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider(updatesOriginalValue: false)
        let map = try provider.register(base: base).makeMap()
        try withUnsafeBytes(of: UInt32(5)) { key in
            try withUnsafeBytes(of: UInt32(50)) { value in
                try Epoch.withSection { (section) throws(MapError) in
                    try map.update(key: key, value: value, flags: .noExist, in: section)
                    let stored = try map.lookupInPlace(key: key, in: section)
                    #expect(stored.load(as: UInt32.self) == 50)
                    try map.update(key: key, value: value, flags: .exist, in: section)
                    try map.delete(key: key, in: section)
                }
            }
        }
        #expect(provider.recorded(.addition).map(\.flags) == [.helper, .helper])
        #expect(provider.recorded(.find).map(\.flags) == [.helper])
        #expect(provider.recorded(.postDeletion).map(\.flags) == [[.helper, .update], .helper])
    }

    @Test(arguments: hashBases)
    func replaceDeleteAndTeardownCallTheDeletionCallbackWithTheRightFlags(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        do {
            let map = try provider.register(base: base).makeMap()
            try map.put(UInt32(1), UInt32(100))
            try map.put(UInt32(1), UInt32(101))            // displaces 100: UPDATE
            try map.put(UInt32(2), UInt32(200))
            try map.remove(UInt32(2))                        // explicit: no flags
            #expect(try map.take(UInt32(1), as: UInt32.self) == 101)  // explicit, translated after
            try map.put(UInt32(3), UInt32(300))
            try map.put(UInt32(4), UInt32(400))
            #expect(provider.recorded(.postDeletion) == [
                .init(kind: .postDeletion, flags: .update, key: 1, value: 100),
                .init(kind: .postDeletion, flags: [], key: 2, value: 200),
                .init(kind: .postDeletion, flags: [], key: 1, value: 101),
            ])
            provider.clear()
        }
        // Teardown: every remaining entry with MAP_CLEANUP, then postprocessMapDelete, last.
        let events = provider.recorded
        let allInEpoch = events.allSatisfy { $0.inEpoch }
        #expect(allInEpoch, "a callback ran outside an epoch")
        #expect(events.count == 3)
        #expect(Set(events.prefix(2).compactMap(\.key)) == [3, 4])
        #expect(events.prefix(2).allSatisfy { $0.kind == .postDeletion && $0.flags == .mapCleanup })
        #expect(events.last?.kind == .mapDelete)
    }

    @Test func arrayBaseReportsDisplacedValuesAndEverySlotAtTeardown() throws {
        let provider = RecordingProvider()
        do {
            let map = try provider.register(base: .array).makeMap(maxEntries: 3)
            // An untouched slot holds zero bytes; what they mean is the provider's call (this one
            // refuses them as not-a-stored-value; the object map answers ENOENT).
            #expect(throws: MapError.invalidArgument) { try map.get(UInt32(0), as: UInt32.self) }
            try map.put(UInt32(0), UInt32(5))
            try map.put(UInt32(0), UInt32(6))
            #expect(throws: MapError.invalidArgument) { try map.remove(UInt32(0)) }
            #expect(throws: MapError.unsupportedByMapType) { try map.take(UInt32(0), as: UInt32.self) }
            #expect(throws: MapError.outOfSpace) { try map.put(UInt32(3), UInt32(1)) }  // past the end: rolled back
            let deletions = provider.recorded(.postDeletion)
            #expect(deletions.map(\.flags) == [.update, .update, [.update, .rollback]])
            #expect(deletions.map(\.value) == [0, 5, 1])  // initial zeros, then 5, then the rollback of 1
            provider.clear()
        }
        let cleanup = provider.recorded(.postDeletion)
        let cleanupInEpoch = cleanup.allSatisfy { $0.inEpoch }
        #expect(cleanupInEpoch, "a callback ran outside an epoch")
        #expect(cleanup.count == 3)
        #expect(cleanup.allSatisfy { $0.flags == .mapCleanup })
        #expect(provider.recorded.last?.kind == .mapDelete)
    }

    @Test(arguments: ProviderBaseMap.allCases)
    func aFailedAdditionLeavesTheMapUnchanged(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        let tag = uniqueTag()
        let map = try provider.register(base: base).makeMap(tag: tag)
        try map.put(UInt32(1), UInt32(10))
        provider.clear()  // (on an array, that put displaced the slot's initial zeros)
        let before = EpochMemory.statistics(for: tag).liveAllocations
        #expect(throws: MapError.invalidArgument) { try map.put(UInt32(1), UInt32(0xDEAD)) }
        #expect(throws: MapError.invalidArgument) { try map.put(UInt32(2), UInt32(0xDEAD)) }
        #expect(try map.get(UInt32(1), as: UInt32.self) == 10)
        if base != .array {
            #expect(throws: MapError.keyNotFound) { try map.get(UInt32(2), as: UInt32.self) }
            #expect(map.count == 1)
        }
        #expect(provider.recorded(.postDeletion).isEmpty)  // nothing to undo: the addition itself failed
        #expect(settledStatistics(for: tag).liveAllocations == before)
    }

    @Test(arguments: hashBases)
    func aBaseUpdateThatFailsAfterTheAdditionIsRolledBack(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        let map = try provider.register(base: base).makeMap(maxEntries: 1)
        try map.put(UInt32(1), UInt32(10))
        provider.clear()
        #expect(throws: MapError.outOfSpace) { try map.put(UInt32(2), UInt32(20)) }          // full
        #expect(throws: MapError.alreadyExists) { try map.put(UInt32(1), UInt32(30), flags: .noExist) }
        #expect(throws: MapError.keyNotFound) { try map.put(UInt32(9), UInt32(40), flags: .exist) }
        #expect(provider.recorded(.addition).map(\.value) == [20, 30, 40])
        #expect(provider.recorded(.postDeletion) == [
            .init(kind: .postDeletion, flags: [.update, .rollback], key: 2, value: 20),
            .init(kind: .postDeletion, flags: [.update, .rollback], key: 1, value: 30),
            .init(kind: .postDeletion, flags: [.update, .rollback], key: 9, value: 40),
        ])
        #expect(try map.get(UInt32(1), as: UInt32.self) == 10)
    }

    /// The refusal-returning forms roll a refused addition back exactly as the throwing
    /// forms do, and report a delete of an absent key as `false` with no callback.
    @Test(arguments: hashBases)
    func refusalsReturnedAreRolledBackToo(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        let map = try provider.register(base: base).makeMap(maxEntries: 4)
        try map.put(UInt32(1), UInt32(10))
        provider.clear()
        func insert(_ key: UInt32, _ value: UInt32) throws -> Bool {
            try withUnsafeBytes(of: key) { key in
                try withUnsafeBytes(of: value) { value in try map.insertIfAbsent(key: key, value: value) }
            }
        }
        func delete(_ key: UInt32) throws -> Bool {
            try withUnsafeBytes(of: key) { key in try map.deleteIfPresent(key: key) }
        }
        #expect(try insert(1, 30) == false)
        #expect(try insert(2, 20) == true)
        #expect(provider.recorded(.addition).map(\.value) == [30, 20])
        #expect(provider.recorded(.postDeletion) == [
            .init(kind: .postDeletion, flags: [.update, .rollback], key: 1, value: 30),
        ])
        #expect(try map.get(UInt32(1), as: UInt32.self) == 10)
        provider.clear()
        #expect(try delete(9) == false)
        #expect(provider.recorded(.postDeletion).isEmpty)
        #expect(try delete(2) == true)
        #expect(provider.recorded(.postDeletion).map(\.key) == [2])
        #expect(try delete(2) == false)
        #expect(map.count == 1)
    }

    @Test func theDeprecatedDeletionCallbackIsRefusedOnTheLockFreeBase() {
        let provider = RecordingProvider(usesDeprecatedDeletion: true)
        do {
            _ = try provider.register(base: .hashLockFree)
            Issue.record("registered a deprecated-deletion provider on the lock-free base")
        } catch {
            #expect((error as? MapError) == .invalidArgument)
            #expect((error as? MapError)?.reason?.contains("locked base") == true)
        }
    }

    @Test func theDeprecatedDeletionCallbackNeverMakesArrayReadersWait() throws {
        // The callback runs while its writer holds the slot, and looks the same slot up.
        // Readers only wait for the copy itself, so this returns.
        let provider = RecordingProvider(usesDeprecatedDeletion: true)
        let map = try provider.register(base: .array).makeMap(maxEntries: 2)
        provider.lookupFromPreDeletion.withLock { $0 = map }
        defer { provider.lookupFromPreDeletion.withLock { $0 = nil } }
        try map.put(UInt32(1), UInt32(10))
        try map.put(UInt32(1), UInt32(11))
        #expect(try map.get(UInt32(1), as: UInt32.self) == 11)
        #expect(provider.recorded(.preDeletion).map(\.flags) == [.update, .update])
    }

    /// Get-next-key from a callback that runs under its chain's lock, on a cursor that is
    /// absent and last in that chain: the bucket hash then asks whether the cursor was just
    /// deleted, a check that briefly took the chain's lock (2026-12-03, found by review of
    /// that day's fix) and so waited for itself. It only tries the lock now, and restarts.
    @Test func getNextKeyFromACallbackUnderTheChainLockReturns() async {
        await #expect(processExitsWith: .success) {
            alarm(60)  // watchdog: the deadlock hangs
            let provider = RecordingProvider(usesDeprecatedDeletion: true)
            let map = try! provider.register(base: .hashBucketLocked).makeMap(maxEntries: 2)  // one chain
            try! map.put(UInt32(1), UInt32(10))
            try! map.put(UInt32(2), UInt32(20))
            provider.nextKeyFromPreDeletion.withLock { $0 = map }
            try! map.remove(UInt32(1))
            let seen = provider.nextKeysSeen.withLock { $0 }
            precondition(seen.count == 1 && (seen[0] == 1 || seen[0] == 2), "next keys \(seen)")
        }
    }

    /// Unregistering by type, with the registration object dropped, releases the provider's
    /// closures after the registry's lock: a capture whose `deinit` calls the registry used
    /// to re-lock the lock its thread held, and hung (found by review, 2026-12-05,
    /// eighteenth session).
    @Test func unregisteringByTypeReleasesTheProviderOutsideTheLock() async {
        await #expect(processExitsWith: .success) {
            alarm(60)  // watchdog: the deadlock hangs
            final class Probe: Sendable {
                let registry: MapProviderRegistry
                init(_ registry: MapProviderRegistry) { self.registry = registry }
                deinit { _ = registry.isRegistered(MapType(rawValue: 65000)) }
            }
            let registry = MapProviderRegistry()
            let type = MapType(rawValue: 5000)
            do {
                let probe = Probe(registry)
                _ = try! registry.register(type: type, base: .hashBucketLocked, dispatch: MapProviderDispatchTable(
                    preprocessMapCreate: { (request) throws(MapError) in MapCreateResult(actualValueSize: request.valueSize) },
                    postprocessMapDelete: { _ in _ = probe },
                    preprocessAssociateProgramType: { (_, _) throws(MapError) in },
                    postprocessElementDeletion: { _ in }))
            }
            try! registry.unregister(type: type)
            precondition(!registry.isRegistered(type))
        }
    }

    @Test(arguments: hashBases)
    func aRefusedTranslationLeavesLookupAndDeleteWithoutEffect(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider()
        let map = try provider.register(base: base).makeMap()
        try map.put(UInt32(1), UInt32(10))
        provider.clear()
        provider.failFind.store(true, ordering: .relaxed)
        #expect(throws: MapError.permissionDenied) { try map.take(UInt32(1), as: UInt32.self) }
        #expect(throws: MapError.permissionDenied) { try map.get(UInt32(1), as: UInt32.self) }
        provider.failFind.store(false, ordering: .relaxed)
        #expect(map.count == 1)
        #expect(provider.recorded(.postDeletion).isEmpty)
        #expect(try map.take(UInt32(1), as: UInt32.self) == 10)
        // The find ran on the entry before it left; the deletion callback after.
        #expect(provider.recorded.filter { $0.kind != .find || $0.key == 1 }.suffix(2).map(\.kind) == [.find, .postDeletion])
    }

    @Test(arguments: [ProviderBaseMap.hashBucketLocked])
    func theDeprecatedDeletionCallbackMayRefuseAnExplicitDeleteOnly(_ base: ProviderBaseMap) throws {
        let provider = RecordingProvider(usesDeprecatedDeletion: true, protectedKey: 7)
        let tag = uniqueTag()
        do {
            let map = try provider.register(base: base).makeMap(tag: tag)
            try map.put(UInt32(7), UInt32(70))
            #expect(throws: MapError.permissionDenied) { try map.remove(UInt32(7)) }
            #expect(throws: MapError.permissionDenied) { try map.take(UInt32(7), as: UInt32.self) }
            #expect(try map.get(UInt32(7), as: UInt32.self) == 70)
            #expect(map.count == 1)
            // A replace of the protected key cannot be refused (UPDATE), nor can teardown.
            try map.put(UInt32(7), UInt32(71))
            #expect(try map.get(UInt32(7), as: UInt32.self) == 71)
            try map.put(UInt32(8), UInt32(80))
            try map.remove(UInt32(8))
        }
        let deletions = provider.recorded(.preDeletion)
        #expect(deletions.map(\.flags) == [[], [], .update, [], .mapCleanup])
        #expect(deletions.last?.value == 71)
        #expect(settledStatistics(for: tag).liveBytes == 0)
    }

    @Test(arguments: hashBases)
    func thePostprocessDeletionRunsAfterTheBucketLockIsReleased(_ base: ProviderBaseMap) throws {
        // The callback writes to the same key — the same bucket. Were the bucket lock still
        // held, this would deadlock.
        let reentered = Atomic<Int>(0)
        let mapBox = ThreadLock<(any RawMap)?>(nil)
        let dispatch = MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { (_, _) throws(MapError) in },
            postprocessElementDeletion: { call in
                guard call.flags.isEmpty, let map = mapBox.withLock({ $0 }) else { return }
                try? map.put(call.key.loadUnaligned(as: UInt32.self), UInt32(99))
                reentered.wrappingAdd(1, ordering: .relaxed)
            })
        let registration = try MapProviderRegistry.shared.register(type: uniqueCustomType(), base: base, dispatch: dispatch)
        let map = try registration.makeMap()
        mapBox.withLock { $0 = map }
        try map.put(UInt32(4), UInt32(1))
        try map.remove(UInt32(4))
        #expect(reentered.load(ordering: .relaxed) == 1)
        #expect(try map.get(UInt32(4), as: UInt32.self) == 99)
        mapBox.withLock { $0 = nil }
    }

    @Test(arguments: hashBases)
    func callbacksForDifferentKeysRunConcurrently(_ base: ProviderBaseMap) throws {
        // Two threads delete different keys; each deletion callback waits until both have
        // started. If callbacks were serialised, neither could see the other.
        let started = Atomic<Int>(0)
        let sawTheOther = Atomic<Int>(0)
        let dispatch = MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { (_, _) throws(MapError) in },
            postprocessElementDeletion: { call in
                guard call.flags.isEmpty else { return }
                started.wrappingAdd(1, ordering: .acquiringAndReleasing)
                let deadline = ContinuousClock.now + .seconds(10)
                while started.load(ordering: .acquiring) < 2 && ContinuousClock.now < deadline { sched_yield() }
                if started.load(ordering: .acquiring) >= 2 { sawTheOther.wrappingAdd(1, ordering: .relaxed) }
            })
        let map = try MapProviderRegistry.shared.register(type: uniqueCustomType(), base: base, dispatch: dispatch)
            .makeMap(maxEntries: 1024)
        try map.put(UInt32(1), UInt32(1))
        try map.put(UInt32(2), UInt32(2))
        runOnThreads(2) { thread in try? map.remove(UInt32(thread + 1)) }
        #expect(sawTheOther.load(ordering: .relaxed) == 2)
    }

    @Test func programTypesAreAssociatedThroughTheProvider() throws {
        let provider = RecordingProvider()
        let map = try #require(try provider.register(base: .hashLockFree).makeMap() as? RawCustomMap)
        let accepted = try #require(ProgramType("608c517c-6c52-4a26-b677-bb1c34425adf"))
        let refused = try #require(ProgramType("ff000000-0000-0000-0000-000000000000"))
        try map.associate(programType: accepted)
        try map.associate(programType: accepted)  // again: no second callback
        #expect(throws: MapError.permissionDenied) { try map.associate(programType: refused) }
        #expect(map.associatedProgramTypes == [accepted])
        #expect(provider.recorded(.associate).count == 2)
        #expect(accepted.description == "608c517c-6c52-4a26-b677-bb1c34425adf")
        #expect(ProgramType("not-a-guid") == nil)
        #expect(ProgramType(bytes: [1, 2, 3]) == nil)
    }

    /// A bucket-hash custom map whose provider answers each association with `associate`,
    /// which gets the map (once it is made) and the type asked about.
    func associationMap(_ associate: @escaping @Sendable (RawCustomMap, ProgramType) throws(MapError) -> Void)
        throws -> RawCustomMap
    {
        // Weak: the map holds the provider's callbacks, which must not hold the map (a cycle
        // the leak sanitizer would report).
        final class Made: @unchecked Sendable {
            // @unchecked: set once, before any association; weak loads are atomic.
            weak var map: RawCustomMap?
        }
        let made = Made()
        let dispatch = MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { (_, type) throws(MapError) in
                guard let map = made.map else { return }
                try associate(map, type)
            },
            postprocessElementDeletion: { _ in })
        let map = try #require(try MapProviderRegistry.shared.register(type: uniqueCustomType(), base: .hashBucketLocked,
                                                                       dispatch: dispatch)
            .makeMap(maxEntries: 16) as? RawCustomMap)
        made.map = map
        return map
    }

    /// Runs `body` on `threads` threads, themselves on a thread of their own so that a hang
    /// stops that thread and not the test; false if they did not all return within 20 s.
    func allReturn(threads: Int, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
        let finished = Atomic<Int>(0)
        Thread {
            runOnThreads(threads, body)
            finished.store(1, ordering: .releasing)
        }.start()
        let deadline = ContinuousClock.now + .seconds(20)
        while finished.load(ordering: .acquiring) == 0 && ContinuousClock.now < deadline { usleep(1_000) }
        return finished.load(ordering: .acquiring) == 1
    }

    /// The provider's association callback runs with no lock of the map held: it can read
    /// the map's associated types and associate other types; associating the very type it
    /// is being asked about fails with EDEADLK instead of waiting on itself forever. Threads
    /// associating one new type at once ask the provider once.
    @Test func theAssociationCallbackMayUseItsMap() throws {
        final class Record: Sendable {
            let calls = Atomic<Int>(0)
            let seen = ThreadLock<[[ProgramType]]>([])
            let reentry = ThreadLock<MapError?>(nil)
        }
        let record = Record()
        let first = try #require(ProgramType("11111111-0000-0000-0000-000000000001"))
        let second = try #require(ProgramType("11111111-0000-0000-0000-000000000002"))
        let map = try associationMap { (map, type) throws(MapError) in
            record.calls.wrappingAdd(1, ordering: .relaxed)
            guard type == first else { return }
            record.seen.withLock { $0.append(map.associatedProgramTypes) }
            do throws(MapError) { try map.associate(programType: first) } catch {
                record.reentry.withLock { $0 = error }
            }
            try map.associate(programType: second)
        }
        try #require(allReturn(threads: 3) { _ in try? map.associate(programType: first) },
                     "association from inside the callback hung")
        #expect(record.reentry.withLock { $0 } == .wouldDeadlock)
        #expect(record.seen.withLock { $0 } == [[]])
        #expect(Set(map.associatedProgramTypes) == [first, second])
        #expect(record.calls.load(ordering: .relaxed) == 2)   // `first` once, `second` once
    }

    /// Two threads inside the association callbacks of two types, each associating the
    /// other's type: waiting would hang both (each waits for the other's answer). The second
    /// association fails with EDEADLK instead, and both calls return.
    @Test func crossedAssociationsFailInsteadOfWaitingForEachOther() throws {
        final class Record: Sendable {
            let inside = Atomic<Int>(0)
            let innerErrors = ThreadLock<[MapError]>([])
        }
        let record = Record()
        let first = try #require(ProgramType("22222222-0000-0000-0000-000000000001"))
        let second = try #require(ProgramType("22222222-0000-0000-0000-000000000002"))
        let map = try associationMap { (map, type) throws(MapError) in
            // Both threads inside a callback before either goes on.
            record.inside.wrappingAdd(1, ordering: .acquiringAndReleasing)
            let deadline = ContinuousClock.now + .seconds(5)
            while record.inside.load(ordering: .acquiring) < 2 && ContinuousClock.now < deadline { sched_yield() }
            do throws(MapError) { try map.associate(programType: type == first ? second : first) } catch {
                record.innerErrors.withLock { $0.append(error) }
            }
        }
        try #require(allReturn(threads: 2) { thread in try? map.associate(programType: thread == 0 ? first : second) },
                     "two crossed associations waited for each other")
        let errors = record.innerErrors.withLock { $0 }
        #expect(!errors.isEmpty && errors.allSatisfy { $0 == .wouldDeadlock })
        #expect(Set(map.associatedProgramTypes) == [first, second])
    }

    /// The same across two maps: a thread inside the first map's callback associates a type
    /// with the second map while another thread, inside the second map's callback, associates
    /// one with the first. Each waited for the other's answer forever (found by review: only
    /// the map's own pending types were looked at); now the inner associations fail with
    /// EDEADLK, and both calls return.
    @Test func associationsCrossingTwoMapsFailInsteadOfWaitingForEachOther() throws {
        final class Record: @unchecked Sendable {
            // @unchecked: `maps` is set once, before any association.
            let inside = Atomic<Int>(0)
            let innerErrors = ThreadLock<[MapError]>([])
            weak var first: RawCustomMap?
            weak var second: RawCustomMap?
        }
        let record = Record()
        let first = try #require(ProgramType("33333333-0000-0000-0000-000000000001"))
        let second = try #require(ProgramType("33333333-0000-0000-0000-000000000002"))
        // Each map's callback, asked about its own type, associates the other type with the other map.
        let callback: @Sendable (RawCustomMap, ProgramType) throws(MapError) -> Void = { (map, type) throws(MapError) in
            record.inside.wrappingAdd(1, ordering: .acquiringAndReleasing)
            let deadline = ContinuousClock.now + .seconds(5)
            while record.inside.load(ordering: .acquiring) < 2 && ContinuousClock.now < deadline { sched_yield() }
            guard let other = map === record.first ? record.second : record.first else { return }
            do throws(MapError) { try other.associate(programType: type == first ? second : first) } catch {
                record.innerErrors.withLock { $0.append(error) }
            }
        }
        let firstMap = try associationMap(callback)
        let secondMap = try associationMap(callback)
        record.first = firstMap
        record.second = secondMap
        try #require(allReturn(threads: 2) { thread in
            if thread == 0 { try? firstMap.associate(programType: first) } else { try? secondMap.associate(programType: second) }
        }, "two associations crossing two maps waited for each other")
        let errors = record.innerErrors.withLock { $0 }
        #expect(!errors.isEmpty && errors.allSatisfy { $0 == .wouldDeadlock })
        #expect(firstMap.associatedProgramTypes.contains(first) && secondMap.associatedProgramTypes.contains(second))
    }

    /// A thread inside an epoch section that associates a type another thread's callback is
    /// being asked about fails with EDEADLK instead of waiting: that callback may wait for a
    /// grace period (a `freeze()` of a map), which the section holds up (found by review,
    /// 2026-12-06). Here the callback waits (at most 5 s) for the inner call to return: it
    /// returned only once the callback gave up, with the type associated, before the fix.
    @Test func anAssociationFromInsideASectionFailsInsteadOfWaiting() throws {
        final class Record: @unchecked Sendable {
            let asking = Atomic<Bool>(false)
            let innerDone = Atomic<Bool>(false)
        }
        let record = Record()
        let type = try #require(ProgramType("55555555-0000-0000-0000-000000000001"))
        let map = try associationMap { (_, _) throws(MapError) in
            record.asking.store(true, ordering: .releasing)
            let deadline = ContinuousClock.now + .seconds(5)
            while !record.innerDone.load(ordering: .acquiring) && ContinuousClock.now < deadline { sched_yield() }
        }
        let inner = ThreadLock<MapError?>(nil)
        try #require(allReturn(threads: 2) { thread in
            if thread == 0 {
                try? map.associate(programType: type)
            } else {
                while !record.asking.load(ordering: .acquiring) { sched_yield() }
                // A short section: it ends as soon as the call returns.
                Epoch.withSection { _ in
                    do throws(MapError) { try map.associate(programType: type) } catch { inner.withLock { $0 = error } }
                }
                record.innerDone.store(true, ordering: .releasing)
            }
        }, "an association from inside a section waited")
        #expect(inner.withLock { $0 } == .wouldDeadlock)
        #expect(map.associatedProgramTypes == [type])
    }

    /// A thread inside a callback that holds the map's chain lock (the pre-deletion
    /// callback) associates a type whose association callback, on another thread, writes to
    /// that chain: waiting for that answer waited for its own lock, and both threads hung
    /// (found by review, 2026-12-05, sixteenth session). The association from under the
    /// lock fails with EDEADLK instead; both calls return and the write lands.
    @Test func anAssociationFromUnderTheMapsLockFailsInsteadOfWaiting() throws {
        final class Record: @unchecked Sendable {
            // @unchecked: `map` is set once, before either thread starts.
            let inAssociation = Atomic<Int>(0)
            let inDeletion = Atomic<Int>(0)
            let innerErrors = ThreadLock<[MapError]>([])
            weak var map: RawCustomMap?
        }
        let record = Record()
        let type = try #require(ProgramType("44444444-0000-0000-0000-000000000001"))
        /// Waits, up to 5 s, for `flag` to be set by the other thread.
        @Sendable func waitFor(_ flag: borrowing Atomic<Int>) {
            let deadline = ContinuousClock.now + .seconds(5)
            while flag.load(ordering: .acquiring) == 0 && ContinuousClock.now < deadline { sched_yield() }
        }
        let dispatch = MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { (_, _) throws(MapError) in
                // Asked on the first thread: once the second holds key 1's chain lock,
                // write to that chain (this waits until the second releases it).
                record.inAssociation.store(1, ordering: .releasing)
                waitFor(record.inDeletion)
                guard let map = record.map else { return }
                do { try map.put(UInt32(1), UInt32(11)) } catch {
                    record.innerErrors.withLock { $0.append(error as? MapError ?? .invalidArgument) }
                }
            },
            preprocessElementDeletion: { (deletion) throws(MapError) in
                guard !deletion.flags.contains(.mapCleanup), let map = record.map else { return }
                record.inDeletion.store(1, ordering: .releasing)
                waitFor(record.inAssociation)
                do throws(MapError) { try map.associate(programType: type) } catch {
                    record.innerErrors.withLock { $0.append(error) }
                }
            })
        let map = try #require(try MapProviderRegistry.shared.register(type: uniqueCustomType(), base: .hashBucketLocked,
                                                                       dispatch: dispatch)
            .makeMap(maxEntries: 16) as? RawCustomMap)
        try map.put(UInt32(1), UInt32(10))
        record.map = map
        try #require(allReturn(threads: 2) { thread in
            if thread == 0 { try? map.associate(programType: type) } else { try? map.remove(UInt32(1)) }
        }, "an association from under the map's lock waited for a callback waiting for that lock")
        #expect(record.innerErrors.withLock { $0 } == [.wouldDeadlock])
        #expect(map.associatedProgramTypes == [type])
        #expect(try map.get(UInt32(1), as: UInt32.self) == 11)
    }

    /// `CustomMap.upsert` on a key whose stored entry the provider's find callback hides
    /// (ENOENT, as the dispatch table allows): the insert finds the key present and the
    /// lookup does not, round after round; it spun forever (found by review, 2026-12-05,
    /// sixteenth session), and now throws ENOENT.
    @Test func upsertOfAKeyTheProviderHidesReturns() throws {
        let dispatch = MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { (_, _) throws(MapError) in },
            postprocessFindElement: { (call) throws(MapError) in
                if call.key.loadUnaligned(as: UInt32.self) == 1 { throw MapError.keyNotFound }
            },
            postprocessElementDeletion: { _ in })
        let registry = MapProviderRegistry()
        let type = uniqueCustomType()
        let registration = try registry.register(type: type, base: .hashBucketLocked, dispatch: dispatch)
        do {
            let map = try CustomMap<UInt32, UInt64>(type: type, maxEntries: 8, registry: registry)
            try map.updateValue(5, forKey: 1)
            let outcome = ThreadLock<MapError?>(nil)
            try #require(allReturn(threads: 1) { _ in
                do { try map.upsert(forKey: 1, default: 0) { $0 += 1 } } catch {
                    outcome.withLock { $0 = error as? MapError }
                }
            }, "upsert of a hidden key did not return")
            #expect(outcome.withLock { $0 } == .keyNotFound)
            #expect(try map.upsert(forKey: 2, default: 7) { (value: inout UInt64) -> UInt64 in value += 1; return value } == 8)
        }
        // The thread that ran the upsert may hold the map a moment after it returned (its
        // closure is released after it signals): EBUSY until then (seen under TSan).
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let error: MapError? = {
                do { try registration.unregister(); return nil } catch { return error as? MapError ?? .invalidArgument }
            }()
            guard let error else { break }
            guard error == .busy, ContinuousClock.now < deadline else { throw error }
            usleep(1_000)
        }
    }

    /// A Swift provider's `epochExit()` with no `epochEnter()` of its own — inside a callback,
    /// whose section the library entered; here inside a section the test entered — stops the
    /// program, as `Epoch.exit()` does (it went through the library's unchecked exit, ended
    /// that section and, balanced by an `epochEnter()`, went on: found by review, 2026-12-06,
    /// twenty-sixth session).
    @Test func aClientsStrayEpochExitStopsTheProgram() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            guard let client = try? RecordingProvider().register(base: .hashBucketLocked).client else { exit(0) }
            Epoch.withSection { _ in
                client.epochExit()
                client.epochEnter()
            }
        }
    }

    @Test func theClientServicesReachTheContextAndEpochMemory() throws {
        let provider = RecordingProvider()
        let registration = try provider.register(base: .hashBucketLocked)
        let map = try #require(try registration.makeMap() as? RawCustomMap)
        let client = registration.client
        let context = try #require(client.mapContext(of: map) as? RecordingProvider.Context)
        #expect(context === map.providerContext as? RecordingProvider.Context)
        let tag = uniqueTag()
        client.epochEnter()
        let block = try #require(client.allocate(byteCount: 40, tag: tag))
        let aligned = try #require(client.allocateCacheAligned(byteCount: 40, tag: tag))
        #expect(Int(bitPattern: aligned) % 64 == 0)
        client.free(block)
        client.freeCacheAligned(aligned)
        client.epochExit()
        #expect(settledStatistics(for: tag).liveBytes == 0)
        _ = withUnsafeBytes(of: UInt32(1)) { key in
            Epoch.withSection { section in
                #expect(throws: MapError.keyNotFound) { _ = try client.findElement(in: map, key: key, in: section) }
            }
        }
    }

    /// A custom map on the ARRAY base exchanges a value over 8 bytes word by word atomically,
    /// as the ARRAY does (reliability.md row 82): an increment a helper makes in place
    /// meanwhile lands in the map or in the displaced value, never in neither.
    @Test(arguments: [16, 24])
    func exchangesOnAnArrayBaseLoseNoConcurrentInPlaceIncrement(valueSize: Int) throws {
        let registration = try registerPlainProvider(base: .array)
        let map = try MapRegistry.create(MapDefinition(type: registration.type, keySize: 4, valueSize: valueSize,
                                                       maxEntries: 2, poolTag: uniqueTag()))
        let adds = 4_000_000
        let harvested = harvestIncrementsAtIndexZero(of: map, adds: adds, valueBytes: valueSize)
        #expect(harvested.total == UInt64(adds))
        #expect(harvested.raced, "the exchanges never met the adds")
    }
}

/// `exchange` (the typed `updateValue`, `replaceValue`) on a custom map whose find callback
/// refuses the value it displaced: the new value is stored all the same, and the refusal is
/// thrown, not read as "the key was absent"; a provider that does not translate values is
/// asked too, as its lookups ask it (found by review, 2026-12-05: every refusal read as
/// "absent", and a non-translating provider's was never asked).
@Suite("Custom maps: exchange and the find callback")
struct CustomExchangeFindTests {
    @Test(arguments: ProviderBaseMap.allCases, [true, false])
    func aRefusedDisplacedValueIsThrownAfterTheStore(base: ProviderBaseMap, translating: Bool) throws {
        let provider = RecordingProvider(updatesOriginalValue: translating)
        let map = try provider.register(base: base).makeMap(maxEntries: 4)
        try map.put(UInt32(1), UInt32(5))
        provider.failFind.store(true, ordering: .relaxed)
        var displaced: UInt32 = 0
        do {
            _ = try withUnsafeBytes(of: UInt32(1)) { key in
                try withUnsafeBytes(of: UInt32(6)) { value in
                    try withUnsafeMutableBytes(of: &displaced) { try map.exchange(key: key, value: value, flags: .any, into: $0) }
                }
            }
            Issue.record("the refusal of the displaced value was not thrown")
        } catch let error as MapError {
            #expect(error == .permissionDenied)
            #expect(error.reason?.contains("the new value was stored") == true, "\(error)")
        }
        provider.failFind.store(false, ordering: .relaxed)
        #expect(try map.get(UInt32(1), as: UInt32.self) == 6)
        // Accepted, the displaced value is reported as before.
        let replaced = try withUnsafeBytes(of: UInt32(1)) { key in
            try withUnsafeBytes(of: UInt32(7)) { value in
                try withUnsafeMutableBytes(of: &displaced) { try map.exchange(key: key, value: value, flags: .any, into: $0) }
            }
        }
        #expect(replaced && displaced == 6)
    }
}

/// A custom map answers bad input with the errno its base map gives, in the base's order
/// (found by review, 2026-12-05: a lookup-and-delete on an array base answered ENOTSUPP
/// before a wrong key size's EINVAL; a helper-mode delete checked the key size before
/// `BPF_F_RDONLY_PROG`'s EACCES).
@Suite("Custom maps: the base map's check order")
struct CustomMapCheckOrderTests {
    func errno(_ body: () throws -> Void) -> Int32 {
        do { try body(); return 0 } catch let error as MapError { return error.code } catch { return -1 }
    }

    @Test(arguments: ProviderBaseMap.allCases)
    func customMapChecksInTheBasesOrder(base: ProviderBaseMap) throws {
        let registration = try registerPlainProvider(base: base)
        defer { try? registration.unregister() }
        func definition(_ type: MapType, flags: MapCreationFlags) -> MapDefinition {
            var definition = MapDefinition(type: type, keySize: 4, valueSize: 8, maxEntries: 4, flags: flags,
                                           poolTag: uniqueTag())
            if base == .hashBucketLocked { definition.hashImplementation = .bucketLocked }
            return definition
        }
        let baseType: MapType = base == .array ? .array : .hash
        for flags: MapCreationFlags in [[], .readOnlyProgram] {
            let custom = try MapRegistry.create(definition(registration.type, flags: flags))
            let plain = try MapRegistry.create(definition(baseType, flags: flags))
            let short: UInt16 = 0  // a 2-byte key for maps of 4-byte keys
            var value = UInt64(0)
            let answers = [custom, plain].map { map in
                withUnsafeBytes(of: short) { shortKey in
                    (errno { _ = try withUnsafeMutableBytes(of: &value) { try map.lookupAndDelete(key: shortKey, into: $0) } },
                     errno { try Epoch.withSection { section in try map.delete(key: shortKey, in: section) } })
                }
            }
            #expect(answers[0].0 == answers[1].0, "\(base) \(flags): lookup-and-delete, custom \(answers[0].0), base \(answers[1].0)")
            #expect(answers[0].1 == answers[1].1, "\(base) \(flags): helper delete, custom \(answers[0].1), base \(answers[1].1)")
        }
    }
}

/// A rollback (the addition callback ran, the base update failed) holds no lock, so its
/// deprecated pre-deletion callback may write the map: it was marked as under the map's
/// lock and refused EDEADLK, and a provider's undo was silently lost (found by review,
/// 2026-12-05).
@Suite("Custom maps: a rollback's pre-deletion callback")
struct RollbackPreDeletionTests {
    final class Box: @unchecked Sendable {
        // @unchecked: set before the writes below, read by the callback on the same thread.
        var map: (any RawMap)?
        var answer: Int32 = -1
    }

    @Test(arguments: [ProviderBaseMap.hashBucketLocked, .array])
    func aRollbacksCallbackMayWriteItsMap(base: ProviderBaseMap) throws {
        let box = Box()
        let registration = try registerPlainProvider(base: base, preDeletion: { (call) throws(MapError) in
            guard call.flags.contains(.rollback), let map = box.map else { return }
            // The undo writes the map: key 2 gets a marker value.
            box.answer = (try? map.put(UInt32(2), UInt32(0xAB))) == nil ? EDEADLK : 0
        })
        defer { try? registration.unregister() }
        let map = try MapRegistry.create(MapDefinition(type: registration.type, keySize: 4, valueSize: 4, maxEntries: 4,
                                                       hashImplementation: .bucketLocked, poolTag: uniqueTag()))
        box.map = map
        try map.put(UInt32(1), UInt32(7))
        // A present key (hash) or an index (array) inserted with NOEXIST: EEXIST after the
        // addition callback, so the addition is rolled back.
        #expect(throws: MapError.alreadyExists) { try map.put(UInt32(1), UInt32(8), flags: .noExist) }
        box.map = nil
        #expect(box.answer == 0)
        #expect(try map.get(UInt32(2), as: UInt32.self) == 0xAB)
    }
}

/// Registers, for a fresh custom type on `base`, a provider that stores user values as they
/// are and whose callbacks do nothing: an addition callback that accepts, and a deletion
/// callback — the preferred one, or `preDeletion` as the deprecated one.
func registerPlainProvider(base: ProviderBaseMap,
                           preDeletion: (@Sendable (MapElementDeletion) throws(MapError) -> Void)? = nil)
    throws -> MapProviderRegistration {
    try MapProviderRegistry.shared.register(
        type: uniqueCustomType(), base: base, properties: MapProviderProperties(updatesOriginalValue: false),
        dispatch: MapProviderDispatchTable(
            preprocessMapCreate: { request in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { _, _ in },
            preprocessElementAddition: { _ in },
            preprocessElementDeletion: preDeletion,
            postprocessElementDeletion: preDeletion == nil ? ({ _ in } as @Sendable (MapElementDeletion) -> Void) : nil))
}
