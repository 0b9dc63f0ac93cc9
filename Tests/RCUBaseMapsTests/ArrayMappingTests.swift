import Foundation
@testable import RCUBaseMaps
import RCUMaps
import Synchronization
import RCUMapsTestSupport
import Testing

/// `BPF_F_MMAPABLE` arrays mapped with `mapStorage(writable:)` (Linux's `mmap` of the map fd),
/// and the order of an ARRAY update's checks in helper mode, errno for errno with Linux 6.18
/// (`syscall.c` `bpf_map_mmap`, `arraymap.c` `array_map_mmap` and `array_map_update_elem`).
@Suite("ARRAY mappings and helper-mode check order")
struct ArrayMappingTests {
    static func array(flags: MapCreationFlags = [.mmapable], valueSize: Int = 8, lockOffset: Int? = nil) throws -> RawArrayMap {
        try #require(try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: valueSize, maxEntries: 4,
                                                          flags: flags, poolTag: uniqueTag(), lockOffset: lockOffset))
            as? RawArrayMap)
    }

    func errno(_ body: () throws -> Void) -> Int32 {
        do { try body(); return 0 } catch let error as MapError { return error.code } catch { return -1 }
    }

    /// The mapping shows value `i` at byte `i × round_up(valueSize, 8)`; what is written
    /// through a writable one is what lookups read; a writable mapping keeps the map from
    /// being frozen (EBUSY) until it is unmapped; a frozen map maps read-only only.
    /// `BPF_F_LOCK` lookups of slots without a sequence word (8-byte values, mmapable values)
    /// racing plain updates, which write the words with atomic stores and take no value
    /// lock: the copy's lock word is cleared and each 8-byte word of it is one update's (a
    /// wide mmapable value may mix updates word by word, as on Linux: a plain update does
    /// not take the value's lock). The copy was a
    /// plain `memcpy` under the value's lock: a data race (ThreadSanitizer reports it), and
    /// on wide mmapable values a word changed in place could tear (found by review,
    /// 2026-12-06, twenty-third session). Run under `--sanitize=thread` too.
    @Test(arguments: [(8, [] as MapCreationFlags), (24, MapCreationFlags.mmapable)])
    func lockedLookupsOfUnsequencedSlotsRaceNoPlainUpdate(valueSize: Int, flags: MapCreationFlags) throws {
        let map = try Self.array(flags: flags, valueSize: valueSize, lockOffset: 0)
        let stop = Atomic<Bool>(false)
        let torn = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        runOnThreads(2) { thread in
            if thread == 0 {
                var round: UInt32 = 1
                let deadline = ContinuousClock.now + .milliseconds(300)
                while ContinuousClock.now < deadline {
                    // Every 4-byte word after the lock word holds `round`.
                    let value = [UInt32](repeating: round, count: valueSize / 4)
                    _ = try? withUnsafeBytes(of: UInt32(1)) { key in
                        try value.withUnsafeBytes { bytes in try map.update(key: key, value: bytes, flags: .any) }
                    }
                    round &+= 1
                }
                stop.store(true, ordering: .releasing)
            } else {
                var out = [UInt32](repeating: 0, count: valueSize / 4)
                while !stop.load(ordering: .acquiring) {
                    _ = try? withUnsafeBytes(of: UInt32(1)) { key in
                        try out.withUnsafeMutableBytes { bytes in try map.lookup(key: key, into: bytes, flags: .lock) }
                    }
                    reads.add(1, ordering: .relaxed)
                    // The lock word comes back cleared; each later word is one update's.
                    if out[0] != 0 || stride(from: 2, to: out.count, by: 2).contains(where: { out[$0] != out[$0 + 1] }) {
                        torn.add(1, ordering: .relaxed)
                    }
                }
            }
        }
        #expect(reads.load(ordering: .relaxed) > 0)
        #expect(torn.load(ordering: .relaxed) == 0)
    }

    @Test func aMappingIsTheArraysStorage() throws {
        let map = try Self.array()
        for index in UInt32(0)..<4 { try map.put(index, UInt64(index) * 11) }
        let writable = try map.mapStorage(writable: true)
        #expect(writable.bytes.count >= 4 * 8)
        #expect((0..<4).map { writable.bytes.load(fromByteOffset: $0 * 8, as: UInt64.self) } == [0, 11, 22, 33])
        writable.bytes.storeBytes(of: 99, toByteOffset: 2 * 8, as: UInt64.self)
        #expect(try map.get(UInt32(2), as: UInt64.self) == 99)
        #expect(errno { try map.freeze() } == EBUSY)
        writable.unmap()
        try map.freeze()
        #expect(errno { _ = try map.mapStorage(writable: true) } == EPERM)
        let readOnly = try map.mapStorage(writable: false)
        #expect(readOnly.bytes.load(fromByteOffset: 2 * 8, as: UInt64.self) == 99)
    }

    #if DEBUG
    /// A writable mapping asked for while a freeze that claimed the map has yet to mark it (a
    /// freezer preempted there for 100 ms) waits for the mark and answers EPERM: it gave up
    /// after 100,000 yields, about 22 ms, with EBUSY, "being frozen", in the freezer's own
    /// process (found by review, 2026-12-06, thirtieth session).
    @Test func aWritableMappingWaitsForAFreezerPreemptedBeforeItsMark() throws {
        let map = try Self.array()
        let claimed = Atomic<Bool>(false)
        map.freezeState.afterClaim = {
            claimed.store(true, ordering: .releasing)
            usleep(100_000)
        }
        let froze = Atomic<Bool>(false)
        let freezer = Thread {
            _ = try? map.freeze()
            froze.store(true, ordering: .releasing)
        }
        freezer.start()
        while !claimed.load(ordering: .acquiring) { usleep(100) }
        #expect(errno { _ = try map.mapStorage(writable: true) } == EPERM)
        while !froze.load(ordering: .acquiring) { usleep(100) }
        map.freezeState.afterClaim = nil
    }
    #endif

    /// A writable mapping asked for while a freeze waits for writes in flight (a section
    /// held elsewhere keeps it waiting, with the map marked frozen) answers EPERM, as Linux's
    /// `bpf_map_mmap`, which waits for the freeze's mutex and finds the map frozen; it
    /// answered EBUSY, "the map is being frozen" (found by review, 2026-12-06, twenty-fifth
    /// session). A read-only mapping is still given.
    @Test func aWritableMappingDuringAFreezeIsRefusedAsFrozen() throws {
        let map = try Self.array()
        let holder = SectionHolder()
        let frozen = Atomic<Bool>(false)
        let freezer = Thread {
            _ = try? map.freeze()
            frozen.store(true, ordering: .releasing)
        }
        freezer.start()
        // The freeze marks the map before it waits for the holder's section.
        while !map.isFrozen { usleep(100) }
        let returned = frozen.load(ordering: .acquiring)
        #expect(!returned, "the freeze returned with a section held")
        #expect(errno { _ = try map.mapStorage(writable: true) } == EPERM)
        let readOnly = try map.mapStorage(writable: false)
        readOnly.unmap()
        holder.release()
        while !frozen.load(ordering: .acquiring) { usleep(100) }
    }

    /// The same, at the mapping's count itself (`mapStorage` checks the flag first, so only a
    /// mapping that passed that check before the freeze marked the map gets here): a freeze
    /// waiting for a section, the map marked, a new writable mapping is EPERM, not EBUSY.
    @Test func theMappingCountRefusesAsFrozenDuringAFreeze() throws {
        let state = MapFreezeState()
        let holder = SectionHolder()
        let returned = Atomic<Bool>(false)
        let freezer = Thread {
            _ = try? state.freeze(access: MapAccess([]), lockWord: false)
            returned.store(true, ordering: .releasing)
        }
        freezer.start()
        while !state.isFrozen { usleep(100) }
        #expect(errno { try state.addWritableMapping() } == EPERM)
        holder.release()
        while !returned.load(ordering: .acquiring) { usleep(100) }
        #expect(errno { try state.addWritableMapping() } == EPERM)
    }

    /// Linux checks the file's access mode (EACCES) before `bpf_map_mmap`, which refuses a
    /// map with a lock word (ENOTSUPP), then a writable mapping of a frozen map (EPERM) or of
    /// a `BPF_F_RDONLY_PROG` one (EACCES); only then does `array_map_mmap` refuse an array
    /// without `BPF_F_MMAPABLE` (EINVAL).
    @Test func mappingRefusalsComeInLinuxsOrder() throws {
        #expect(errno { _ = try Self.array(flags: [.mmapable, .writeOnly]).mapStorage(writable: false) } == EACCES)
        #expect(errno { _ = try Self.array(flags: [.mmapable, .readOnly]).mapStorage(writable: true) } == EACCES)
        #expect(errno { _ = try Self.array(flags: [.mmapable, .readOnly]).mapStorage(writable: false) } == 0)
        // A lock word: ENOTSUPP, mmapable or not.
        #expect(errno { _ = try Self.array(flags: [], valueSize: 16, lockOffset: 8).mapStorage(writable: false) } == 524)
        // Frozen, writable: EPERM before EINVAL (not mmapable) and before EACCES (RDONLY_PROG).
        let plain = try Self.array(flags: [])
        try plain.freeze()
        #expect(errno { _ = try plain.mapStorage(writable: true) } == EPERM)
        let readOnlyProgram = try Self.array(flags: [.mmapable, .readOnlyProgram])
        #expect(errno { _ = try readOnlyProgram.mapStorage(writable: true) } == EACCES)
        try readOnlyProgram.freeze()
        #expect(errno { _ = try readOnlyProgram.mapStorage(writable: true) } == EPERM)
        // Not mmapable, nothing else wrong: EINVAL.
        #expect(errno { _ = try Self.array(flags: []).mapStorage(writable: false) } == EINVAL)
    }

    /// An mmapable array's wider values have no sequence word and are copied word by word;
    /// exchanges of one slot from several threads still report each replaced value exactly
    /// once: the displaced values and the one left are the first and every one written.
    @Test(arguments: [nil, 8] as [Int?])
    func exchangesOfWideMappedValuesReportEachValueOnce(lockOffset: Int?) throws {
        let map = try Self.array(valueSize: 24, lockOffset: lockOffset)
        struct Wide: Equatable, Sendable { var a: UInt64; var b: UInt64; var c: UInt64 }
        // The lock word (if any) is at bytes 8..<12: values keep it zero there.
        @Sendable func wide(_ n: UInt64) -> Wide { Wide(a: n, b: 0, c: ~n) }
        try map.put(UInt32(0), wide(0))
        let displaced = ThreadLock<[UInt64]>([])
        let torn = Atomic<Int>(0)
        let threads = 3, rounds = 20_000
        runOnThreads(threads) { thread in
            var mine: [UInt64] = []
            for round in 0..<rounds {
                var value = wide(UInt64(thread + 1) << 32 | UInt64(round + 1))
                var old = Wide(a: 0, b: 0, c: 0)
                let replaced = (try? withUnsafeBytes(of: UInt32(0)) { key in
                    try withUnsafeBytes(of: &value) { new in
                        try withUnsafeMutableBytes(of: &old) { try map.exchange(key: key, value: new, flags: .any, into: $0) }
                    }
                }) ?? false
                if replaced {
                    if old.c != ~old.a { torn.wrappingAdd(1, ordering: .relaxed) }
                    mine.append(old.a)
                }
            }
            displaced.withLock { $0 += mine }
        }
        let final = try map.get(UInt32(0), as: Wide.self)
        let seen = displaced.withLock { $0 } + [final.a]
        var expected: [UInt64] = [0]
        for thread in 0..<threads { for round in 0..<rounds { expected.append(UInt64(thread + 1) << 32 | UInt64(round + 1)) } }
        let tornValues = torn.load(ordering: .relaxed)
        #expect(tornValues == 0)
        let missing = Set(expected).subtracting(seen).count
        let duplicated = seen.count - Set(seen).count
        #expect(missing == 0 && duplicated == 0 && seen.count == expected.count,
                "\(missing) values never reported, \(duplicated) reported twice")
    }

    /// A helper-mode update meets only `array_map_update_elem`'s checks: flags, the index
    /// (E2BIG), NOEXIST (EEXIST), and only then `BPF_F_LOCK` without a lock word (EINVAL);
    /// a user-mode update meets the syscall's lock check first.
    @Test func helperModeUpdatesCheckTheLockFlagLast() throws {
        let map = try Self.array(flags: [])
        func update(_ index: UInt32, _ flags: MapUpdateFlags, helper: Bool) -> Int32 {
            errno {
                try withUnsafeBytes(of: index) { key in
                    try withUnsafeBytes(of: UInt64(1)) { value in
                        if helper {
                            try Epoch.withSection { section in try map.update(key: key, value: value, flags: flags, in: section) }
                        } else {
                            try map.update(key: key, value: value, flags: flags)
                        }
                    }
                }
            }
        }
        let noExistLocked = MapUpdateFlags(rawValue: MapUpdateFlags.noExist.rawValue | MapUpdateFlags.lock.rawValue)
        #expect(update(0, noExistLocked, helper: true) == EEXIST)
        #expect(update(9, .lock, helper: true) == E2BIG)
        #expect(update(0, .lock, helper: true) == EINVAL)
        #expect(update(0, noExistLocked, helper: false) == EINVAL)
        #expect(update(9, .lock, helper: false) == EINVAL)
    }

    /// The bytes between an mmapable array's value and the next 8-byte boundary show in the
    /// mapping, and Linux's `copy_map_value` copies `value_size` bytes only: every write keeps
    /// them. They were stored as zero (found by review, 2026-12-05).
    @Test(arguments: [4, 12])
    func writesKeepAMappedValuesPadding(valueSize: Int) throws {
        let map = try Self.array(valueSize: valueSize)
        let mapping = try map.mapStorage(writable: true)
        defer { mapping.unmap() }
        let stride = (valueSize + 7) & ~7
        let paddingOffset = valueSize  // of element 0: 4 bytes of padding in both cases
        let value = [UInt8](repeating: 0x5A, count: valueSize)
        var displaced = [UInt8](repeating: 0, count: valueSize)
        let writes: [(String, () throws -> Void)] = [
            ("update", { try withUnsafeBytes(of: UInt32(0)) { k in try value.withUnsafeBytes { try map.update(key: k, value: $0, flags: .any) } } }),
            ("exchange", {
                _ = try withUnsafeBytes(of: UInt32(0)) { k in
                    try value.withUnsafeBytes { v in try displaced.withUnsafeMutableBytes { try map.exchange(key: k, value: v, flags: .any, into: $0) } }
                }
            }),
            ("helper update", {
                try Epoch.withSection { section in
                    try withUnsafeBytes(of: UInt32(0)) { k in try value.withUnsafeBytes { try map.update(key: k, value: $0, flags: .any, in: section) } }
                }
            }),
        ]
        for (name, write) in writes {
            mapping.bytes.storeBytes(of: 0xAABB_CCDD as UInt32, toByteOffset: paddingOffset, as: UInt32.self)
            try write()
            #expect(mapping.bytes.load(fromByteOffset: paddingOffset, as: UInt32.self) == 0xAABB_CCDD, "\(name)")
            #expect(Array(mapping.bytes[0..<valueSize]) == value, "\(name)")
            #expect(stride == valueSize + 4)
        }
    }

    /// An exchange of a value over 8 bytes swaps each word atomically: an increment a helper
    /// makes in place meanwhile (through `lookupInPlace`, which takes no lock) lands in the
    /// map or in the displaced value, never in neither. The exchange loaded the value and then
    /// stored the new one under the slot's sequence word, which in-place writers do not
    /// take (found by review, 2026-12-05: row 35's defect, which PERCPU_ARRAY had, on ARRAY).
    @Test(arguments: [(16, MapCreationFlags()), (24, MapCreationFlags()), (16, .mmapable), (12, .mmapable)])
    func exchangesLoseNoConcurrentInPlaceIncrement(valueSize: Int, flags: MapCreationFlags) throws {
        let map = try Self.array(flags: flags, valueSize: valueSize)
        let adds = 4_000_000
        let harvested = harvestIncrementsAtIndexZero(of: map, adds: adds, valueBytes: valueSize)
        #expect(harvested.total == UInt64(adds))
        #expect(harvested.raced, "the exchanges never met the adds")
    }

    /// The same with a `BPF_F_LOCK` lock word in the value (`lockOffset`): the exchange keeps
    /// the lock word's bits and swaps every other word atomically, under the slot's sequence
    /// word (not mmapable) or without one (mmapable).
    @Test(arguments: [(16, MapCreationFlags()), (24, MapCreationFlags()), (16, .mmapable)])
    func exchangesOfValuesWithALockWordLoseNoConcurrentInPlaceIncrement(valueSize: Int, flags: MapCreationFlags) throws {
        let map = try Self.array(flags: flags, valueSize: valueSize, lockOffset: 8)
        let adds = 4_000_000
        let harvested = harvestIncrementsAtIndexZero(of: map, adds: adds, valueBytes: valueSize)
        #expect(harvested.total == UInt64(adds))
        #expect(harvested.raced, "the exchanges never met the adds")
    }
}
