import Foundation
import ObjectMapProvider
import RCUMaps
import RCUMapProviders
import RCUMapsTestSupport
import Synchronization
import CTestProvider
import CRCUMapProviderABI
import Testing

@Suite("Sample object map provider")
struct ObjectMapTests {
    @Test(arguments: ProviderBaseMap.allCases)
    func mapsHoldOneReferencePerEntry(_ base: ProviderBaseMap) throws {
        let tag = uniqueTag()
        let objects = try ObjectMapProvider(type: uniqueCustomType(), base: base, objectTag: tag)
        let first = try objects.makeObject()
        let second = try objects.makeObject()
        do {
            let map = try objects.makeMap(maxEntries: base == .array ? 8 : 3)
            #expect(map.storedValueSize == 8)
            try map.put(UInt32(0), first)
            try map.put(UInt32(1), first)
            #expect(objects.referenceCount(of: first) == 3)
            #expect(try map.get(UInt32(1), as: UInt32.self) == first)
            try map.put(UInt32(1), second)                    // replace releases `first` once
            #expect(objects.referenceCount(of: first) == 2)
            #expect(objects.referenceCount(of: second) == 2)
            if base != .array {
                #expect(try map.take(UInt32(1), as: UInt32.self) == second)
                #expect(objects.referenceCount(of: second) == 1)
                try map.remove(UInt32(0))
                #expect(objects.referenceCount(of: first) == 1)
                try map.put(UInt32(5), second)
                try map.put(UInt32(6), first)
                try map.put(UInt32(7), first)   // full: 3 of 3
            } else {
                #expect(throws: MapError.keyNotFound) { try map.get(UInt32(7), as: UInt32.self) }  // empty slot
            }
            // An unknown handle is refused and changes nothing.
            #expect(throws: MapError.invalidArgument) { try map.put(UInt32(2), UInt32(999_999)) }
            // A base update that fails after the addition took a reference gives it back.
            let before = objects.referenceCount(of: second)
            #expect(throws: MapError.outOfSpace) { try map.put(UInt32(100), second) }   // array: index past the end
            if base != .array {
                #expect(throws: MapError.alreadyExists) { try map.put(UInt32(5), second, flags: .noExist) }
            }
            #expect(objects.referenceCount(of: second) == before)
            #expect(objects.liveMaps == 1)
        }
        // Teardown released every reference the map held.
        #expect(objects.referenceCount(of: first) == 1)
        #expect(objects.referenceCount(of: second) == 1)
        #expect(objects.liveMaps == 0)
        #expect(objects.close(first))
        #expect(objects.close(second))
        #expect(!objects.close(second))
        #expect(settledStatistics(for: tag).liveBytes == 0)
        try objects.registration.unregister()
    }

    /// One buffer for the key and the answer — Linux's `bpf_map_lookup_elem(fd, &x, &x)` —
    /// on a translating custom map: the lookup finds its key, and an exchange reports the
    /// value its key held. The answer buffer was zeroed (and written) before the key was
    /// read, so the map looked key 0 up, and the find callback translated the displaced value
    /// with key 0 (found by review, 2026-12-06, twenty-ninth session; reliability.md row 297).
    /// Key 0 holds another object here, so a zeroed key answers with the wrong one.
    @Test(arguments: ProviderBaseMap.allCases)
    func aLookupThroughOneBufferForKeyAndValueFindsItsKey(_ base: ProviderBaseMap) throws {
        let objects = try ObjectMapProvider(type: uniqueCustomType(), base: base, objectTag: uniqueTag())
        let first = try objects.makeObject()
        let second = try objects.makeObject()
        let third = try objects.makeObject()
        do {
            let map = try objects.makeMap(maxEntries: 8)
            try map.put(UInt32(0), first)
            try map.put(UInt32(7), second)
            var shared = UInt32(7)
            try withUnsafeMutableBytes(of: &shared) { bytes in
                try map.lookup(key: UnsafeRawBufferPointer(bytes), into: bytes)
            }
            #expect(shared == second)
            shared = 7
            let value = third
            let replaced = try withUnsafeBytes(of: value) { newValue in
                try withUnsafeMutableBytes(of: &shared) { bytes in
                    try map.exchange(key: UnsafeRawBufferPointer(bytes), value: newValue, flags: .any, into: bytes)
                }
            }
            #expect(replaced)
            #expect(shared == second)
            #expect(try map.get(UInt32(7), as: UInt32.self) == third)
            #expect(try map.get(UInt32(0), as: UInt32.self) == first)
        }
        for handle in [first, second, third] { #expect(objects.close(handle)) }
        try objects.registration.unregister()
    }

    /// A reader inside an epoch section translates a pointer; another thread then deletes
    /// the entry and closes the object: the object's memory is not freed while the reader is
    /// inside (its bytes are live or pending), and is once it leaves. (The reader and the
    /// closer ran at once, unordered, and the reader's answer was discarded: a close that
    /// freed at once passed. Found by review, 2026-12-05.)
    @Test func objectsStayReadableForReadersWhileTheyAreReleased() throws {
        let tag = uniqueTag()
        let objects = try ObjectMapProvider(type: uniqueCustomType(), base: .hashLockFree, objectTag: tag)
        let map = try objects.makeMap(maxEntries: 4)
        for round in 0..<20 {
            let handle = try objects.makeObject()
            try map.put(UInt32(0), handle)
            let inside = DispatchSemaphore(value: 0), closed = DispatchSemaphore(value: 0)
            let read = Atomic<Int>(-1), heldWhileInside = Atomic<Int>(-1)
            runOnThreads(2) { thread in
                if thread == 0 {
                    Epoch.enter()
                    read.store((try? map.get(UInt32(0), as: UInt32.self)).map(Int.init) ?? -2, ordering: .relaxed)
                    inside.signal()
                    closed.wait()
                    Epoch.exit()
                } else {
                    inside.wait()
                    try? map.remove(UInt32(0))
                    objects.close(handle)
                    let figures = EpochMemory.statistics(for: tag)
                    heldWhileInside.store(figures.liveBytes + figures.pendingBytes, ordering: .relaxed)
                    closed.signal()
                }
            }
            #expect(read.load(ordering: .relaxed) == Int(handle), "round \(round)")
            #expect(heldWhileInside.load(ordering: .relaxed) > 0, "round \(round): freed while a reader was inside")
            #expect(objects.referenceCount(of: handle) == nil, "round \(round)")
        }
        #expect(settledStatistics(for: tag).liveBytes == 0)
    }

    /// Many threads replace, delete and look up a small key set for a bounded time; at the
    /// end every object's reference count is exactly 1 (ours) + the entries that hold it.
    @Test(arguments: ProviderBaseMap.allCases)
    func concurrentChurnNeverLeaksOrDoubleReleasesAReference(_ base: ProviderBaseMap) throws {
        let tag = uniqueTag()
        let objects = try ObjectMapProvider(type: uniqueCustomType(), base: base, objectTag: tag)
        let handles = try (0..<6).map { _ in try objects.makeObject() }
        let keys: UInt32 = 8
        let failures = Failures()
        do {
            let map = try objects.makeMap(maxEntries: Int(keys))
            let deadline = Deadline(after: stressDuration)
            runOnThreads(4) { thread in
                var random = XorShift(seed: UInt64(thread) &+ 0xABCD)
                while !deadline.hasPassed {
                    let key = UInt32(random.next() % UInt64(keys))
                    let handle = handles[Int(random.next() % UInt64(handles.count))]
                    do {
                        switch random.next() % 10 {
                        case 0..<4: try map.put(key, handle)
                        case 4: try map.put(key, handle, flags: .noExist)
                        case 5: try map.put(key, handle, flags: .exist)
                        case 6: try map.remove(key)
                        case 7:
                            let taken: UInt32 = try map.take(key)
                            if !handles.contains(taken) { failures.record("took unknown handle \(taken)") }
                        default:
                            let seen: UInt32 = try map.get(key)
                            if !handles.contains(seen) { failures.record("read unknown handle \(seen)") }
                        }
                    } catch MapError.keyNotFound {
                    } catch MapError.alreadyExists {
                    } catch MapError.invalidArgument where base == .array {   // array delete
                    } catch MapError.unsupportedByMapType where base == .array {   // array lookup-and-delete (ENOTSUPP)
                    } catch {
                        failures.record("unexpected \(error)")
                    }
                }
            }
            #expect(failures.all.isEmpty, "\(failures.all)")
            var held: [UInt32: Int] = [:]
            for key in 0..<keys {
                if let handle = try? map.get(key, as: UInt32.self) { held[handle, default: 0] += 1 }
            }
            for handle in handles {
                #expect(objects.referenceCount(of: handle) == 1 + held[handle, default: 0], "handle \(handle)")
            }
        }
        for handle in handles {
            #expect(objects.referenceCount(of: handle) == 1)
            objects.close(handle)
        }
        #expect(settledStatistics(for: tag).liveBytes == 0)
        try objects.registration.unregister()
    }

    @Test func theObjectMapRefusesWrongValueSizesAndSomeProgramTypes() throws {
        let objects = try ObjectMapProvider(type: uniqueCustomType(), base: .hashBucketLocked, objectTag: uniqueTag())
        #expect(throws: MapError.invalidArgument) {
            try MapRegistry.create(MapDefinition(type: objects.registration.type, keySize: 4, valueSize: 8, maxEntries: 4))
        }
        #expect(objects.liveMaps == 0)
        let map = try objects.makeMap(maxEntries: 4)
        #expect(throws: MapError.permissionDenied) { try map.associate(programType: ObjectMapProvider.refusedProgramType) }
        try map.associate(programType: try #require(ProgramType("11111111-2222-3333-4444-555555555555")))
        #expect(map.associatedProgramTypes.count == 1)
    }
}

/// Serialized: the C provider's counters are process-wide, and each test compares them
/// before and after (other suites that use the C provider can only make a check pass that
/// should fail, never the reverse).
@Suite("C providers", .serialized)
struct CProviderTests {
    @Test(arguments: [RCUMAPS_BASE_MAP_HASH_LOCK_FREE, RCUMAPS_BASE_MAP_HASH_BUCKET_LOCKED, RCUMAPS_BASE_MAP_ARRAY])
    func aProviderWrittenInCServesMaps(_ base: UInt32) throws {
        let type = uniqueCustomType()
        let cleanups = ctest_provider_count(Int32(CTEST_DELETIONS_CLEANUP.rawValue))
        let replaces = ctest_provider_count(Int32(CTEST_DELETIONS_UPDATE.rawValue))
        #expect(ctest_provider_register(type.rawValue, base) == 0)
        #expect(ctest_provider_register(type.rawValue, base) == EEXIST)
        let creates = ctest_provider_count(Int32(CTEST_CREATES.rawValue))
        let tag = uniqueTag()
        do {
            let map = try #require(try MapRegistry.create(MapDefinition(type: type, keySize: 4, valueSize: 4, maxEntries: 8,
                                                                        poolTag: tag)) as? RawCustomMap)
            #expect(ctest_provider_count(Int32(CTEST_CREATES.rawValue)) >= creates + 1)
            #expect(map.storedValueSize == 8)
            try map.put(UInt32(3), UInt32(0x1234))
            #expect(try map.get(UInt32(3), as: UInt32.self) == 0x1234)
            try map.put(UInt32(3), UInt32(0x5678))
            #expect(throws: MapError.invalidArgument) { try map.put(UInt32(4), UInt32(0xDEAD_BEEF)) }
            // The client table: find-element sees the stored form, map_context the C context.
            var stored: UInt64 = 0
            #expect(ctest_provider_find_via_client(map.cHandle, 3, &stored) == 0)
            #expect(stored == UInt64(0x5678) | UInt64(~UInt32(0x5678)) << 32)
            #expect(ctest_provider_find_via_client(map.cHandle, 6, &stored) == (base == RCUMAPS_BASE_MAP_ARRAY ? 0 : ENOENT))
            #expect(ctest_provider_context_magic(map.cHandle) == 0xC0FFEE)
            #expect(ctest_provider_find_without_epoch(map.cHandle, 3) == EINVAL)
            #expect(ctest_provider_allocate_via_client(tag.rawValue) == 0)
            // Program types: the C callback refuses GUIDs starting with 0xFF.
            try map.associate(programType: try #require(ProgramType("01020304-0506-0708-090a-0b0c0d0e0f10")))
            #expect(throws: MapError.permissionDenied) {
                try map.associate(programType: try #require(ProgramType("ff020304-0506-0708-090a-0b0c0d0e0f10")))
            }
            #expect(ctest_provider_unregister(type.rawValue) == EBUSY)
        }
        #expect(ctest_provider_unregister(type.rawValue) == 0)
        #expect(ctest_provider_unregister(type.rawValue) == ENOENT)
        #expect(settledStatistics(for: tag).liveBytes == 0)
        // The replace of key 3 and the teardown of its entry (totals were checked before:
        // any earlier map in the process passed them; found by review, 2026-12-06).
        #expect(ctest_provider_count(Int32(CTEST_DELETIONS_CLEANUP.rawValue)) >= cleanups + 1)
        #expect(ctest_provider_count(Int32(CTEST_DELETIONS_UPDATE.rawValue)) >= replaces + 1)
    }

    #if DEBUG
    /// The client table is in the provider's variable by the time its type can be used: a
    /// map created on another thread the moment the registration takes effect has callbacks
    /// that may read it (it was written only after, found by review, 2026-12-06). A failed
    /// registration may write the table too (one constant of the process), never anything
    /// else: putting back what the variable held let a registration that failed with EEXIST
    /// write NULL over the table a concurrent one had written.
    @Test func theClientTableIsWrittenBeforeTheTypeIsUsable() throws {
        let type = uniqueCustomType()
        let variable = UnsafeMutablePointer<UnsafePointer<rcumaps_client_dispatch_table_t>?>.allocate(capacity: 1)
        defer { variable.deallocate() }
        variable.initialize(to: nil)
        let sawTable = Mutex<Bool?>(nil)
        CProviderRegistrationHooks.afterRegistering = {
            // The type is usable now: a create here is what another thread could do.
            sawTable.withLock { $0 = variable.pointee != nil }
        }
        defer { CProviderRegistrationHooks.afterRegistering = nil }
        #expect(ctest_provider_register_into(type.rawValue, RCUMAPS_BASE_MAP_HASH_BUCKET_LOCKED, variable) == 0)
        #expect(sawTable.withLock { $0 } == true)
        let table = variable.pointee
        #expect(table != nil)
        // EEXIST: the variable holds the table still (a failure never writes NULL).
        #expect(ctest_provider_register_into(type.rawValue, RCUMAPS_BASE_MAP_HASH_BUCKET_LOCKED, variable) == EEXIST)
        #expect(variable.pointee == table)
        variable.pointee = nil
        #expect(ctest_provider_register_into(type.rawValue, RCUMAPS_BASE_MAP_HASH_BUCKET_LOCKED, variable) == EEXIST)
        #expect(variable.pointee == nil || variable.pointee == table)
        #expect(ctest_provider_unregister(type.rawValue) == 0)
    }
    #endif

    /// A teardown's deletion callbacks run while the map is destroyed, and its
    /// postprocess_map_delete after its base map is gone: the client table's find_element
    /// and map_context, given that map's handle there, refuse (EINVAL, NULL) instead of
    /// reaching a map half torn down, or freed (found by review; postprocess_map_delete's
    /// find read the freed base map, 2026-12-05).
    /// (One test for both bases: the probe's state is the C provider's, process-wide.)
    @Test func theClientTableRefusesAMapBeingTornDown() throws {
        for base in [RCUMAPS_BASE_MAP_HASH_BUCKET_LOCKED, RCUMAPS_BASE_MAP_HASH_LOCK_FREE] {
            let type = uniqueCustomType()
            #expect(ctest_provider_register(type.rawValue, base) == 0)
            defer { _ = ctest_provider_unregister(type.rawValue) }
            do {
                let map = try #require(try MapRegistry.create(MapDefinition(type: type, keySize: 4, valueSize: 4, maxEntries: 8))
                    as? RawCustomMap)
                try map.put(UInt32(3), UInt32(0x1234))
                ctest_provider_probe_teardown(map.cHandle)
                #expect(ctest_provider_probe_context_result() == -1)  // not torn down yet
            }
            #expect(ctest_provider_probe_find_result() == EINVAL, "base \(base)")
            #expect(ctest_provider_probe_context_result() == 0, "base \(base)")
            #expect(ctest_provider_probe_delete_find_result() == EINVAL, "base \(base)")
            #expect(ctest_provider_probe_delete_context_result() == 0, "base \(base)")
        }
    }

    /// The dispatch table and the registration are read while registering only (the header
    /// said the table must stay valid until unregistered): registered from the stack and
    /// overwritten as soon as the call returned, the provider still serves its maps.
    @Test func aRegistrationIsCopiedWhileRegistering() throws {
        let type = uniqueCustomType()
        #expect(ctest_provider_register_from_stack(type.rawValue, RCUMAPS_BASE_MAP_HASH_BUCKET_LOCKED) == 0)
        do {
            let map = try #require(try MapRegistry.create(MapDefinition(type: type, keySize: 4, valueSize: 4, maxEntries: 8))
                as? RawCustomMap)
            try map.put(UInt32(3), UInt32(0x1234))
            #expect(try map.get(UInt32(3), as: UInt32.self) == 0x1234)
            try map.remove(UInt32(3))
        }
        #expect(ctest_provider_unregister(type.rawValue) == 0)
    }

    @Test func malformedCRegistrationsAreRefused() {
        // 7–9: table versions this library does not know (a later one was read as version 1
        // in C while Swift refused it: found by review, 2026-12-05).
        // 10–11: a translating provider needs its find and addition callbacks (the header
        // did not say so: found by review, 2026-12-07).
        for variant: Int32 in 0...11 {
            #expect(ctest_provider_register_malformed(variant, uniqueCustomType().rawValue) == EINVAL, "variant \(variant)")
        }
        // Out of the custom range.
        #expect(ctest_provider_register(4095, RCUMAPS_BASE_MAP_ARRAY) == EINVAL)
        // A callback returning INT_MIN is an error, not a crash.
        let type = uniqueCustomType()
        #expect(ctest_provider_register_int_min(type.rawValue) == 0)
        #expect(throws: MapError.invalidArgument) {
            try MapRegistry.create(MapDefinition(type: type, keySize: 4, valueSize: 4, maxEntries: 4))
        }
        #expect(ctest_provider_unregister(type.rawValue) == 0)
        // Results that are not errnos are EINVAL, whatever their sign; errnos of either sign
        // are kept (-100000 was thrown as "errno 100000": found by review, 2026-12-06,
        // twenty-seventh session).
        for (result, expected) in [(Int32(-100_000), EINVAL), (-0x7FFF_FFFF, EINVAL), (100_000, EINVAL), (4096, EINVAL),
                                   (-ENOSPC, ENOSPC), (ENOSPC, ENOSPC), (-4095, 4095)] {
            let type = uniqueCustomType()
            #expect(ctest_provider_register_create_result(type.rawValue, result) == 0)
            var thrown: Int32?
            do { _ = try MapRegistry.create(MapDefinition(type: type, keySize: 4, valueSize: 4, maxEntries: 4)) } catch {
                thrown = error.code
            }
            #expect(thrown == expected, "create callback returned \(result)")
            #expect(ctest_provider_unregister(type.rawValue) == 0)
        }
    }

    /// A registration whose client-table variable already holds the table does not store to
    /// it: the provider's callbacks of its other types read the variable meanwhile, and a
    /// plain store, even of the same value, raced with them (found by review, 2026-12-06,
    /// twenty-seventh session). Shown by a variable on a page made read-only after the first
    /// registration: a second registration's store would stop the process.
    @Test func aRegistrationLeavesAClientVariableThatHoldsTheTable() async {
        await #expect(processExitsWith: .success) { Self.registerTwiceIntoAReadOnlyVariable() }
    }

    static func registerTwiceIntoAReadOnlyVariable() {
        let page = sysconf(Int32(_SC_PAGESIZE))
        guard let raw = mmap(nil, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else { exit(2) }
        let variable = raw.bindMemory(to: UnsafePointer<rcumaps_client_dispatch_table_t>?.self, capacity: 1)
        variable.initialize(to: nil)
        let first = uniqueCustomType(), second = uniqueCustomType()
        guard ctest_provider_register_into(first.rawValue, RCUMAPS_BASE_MAP_ARRAY, variable) == 0, variable.pointee != nil else { exit(3) }
        guard mprotect(raw, page, PROT_READ) == 0 else { exit(4) }
        guard ctest_provider_register_into(second.rawValue, RCUMAPS_BASE_MAP_ARRAY, variable) == 0 else { exit(5) }
        // An EEXIST registration too.
        guard ctest_provider_register_into(second.rawValue, RCUMAPS_BASE_MAP_ARRAY, variable) == EEXIST else { exit(6) }
        exit(0)
    }
}
