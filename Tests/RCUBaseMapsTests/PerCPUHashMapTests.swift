import Foundation
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// `PERCPU_HASH` and `LRU_PERCPU_HASH` (RawPerCPUHashMap), errno for errno with Linux 6.18's
/// `kernel/bpf/hashtab.c`: creation refusals, the user-mode all-CPU value layout with its
/// padding, helper mode on the calling CPU's value (a new key zeroes the others, an update
/// keeps them), LRU eviction, and per-CPU slot isolation under concurrent writers.
@Suite("PERCPU_HASH and LRU_PERCPU_HASH")
struct PerCPUHashMapTests {
    final class Shared: Sendable {
        /// Bit `c`: the writer of CPU `c` was pinned. (An atomic, not a `Mutex`: the thread
        /// sanitizer does not see `Synchronization.Mutex`'s ordering and reported a race.)
        let pinned = Atomic<UInt64>(0)
        let wrong = Atomic<Int>(0)
        let writersDone = Atomic<Int>(0)
    }

    static func definition(_ type: MapType = .perCPUHash, valueSize: Int = 8, maxEntries: Int = 16,
                           flags: MapCreationFlags = [], numaNode: Int? = nil, lockOffset: Int? = nil) -> MapDefinition {
        MapDefinition(type: type, keySize: 8, valueSize: valueSize, maxEntries: maxEntries, flags: flags,
                      numaNode: numaNode, poolTag: uniqueTag(), lockOffset: lockOffset)
    }

    static func make(_ type: MapType = .perCPUHash, valueSize: Int = 8, maxEntries: Int = 16,
                     flags: MapCreationFlags = []) throws -> RawPerCPUHashMap {
        try MapRegistry.create(definition(type, valueSize: valueSize, maxEntries: maxEntries, flags: flags))
            as! RawPerCPUHashMap
    }

    func errno(_ body: () throws -> Void) -> Int32 {
        do { try body(); return 0 } catch let error as MapError { return error.code } catch { return -1 }
    }

    /// User-mode lookup of `key`: every CPU's value, as words.
    func words(_ map: RawPerCPUHashMap, _ key: UInt64) throws -> [UInt64] {
        var out = [UInt64](repeating: 0xEEEE, count: map.userValueSize / 8)
        try withUnsafeBytes(of: key) { k in try out.withUnsafeMutableBytes { try map.lookup(key: k, into: $0) } }
        return out
    }

    func putAll(_ map: RawPerCPUHashMap, _ key: UInt64, _ words: [UInt64], flags: MapUpdateFlags = .any) throws {
        try withUnsafeBytes(of: key) { k in try words.withUnsafeBytes { try map.update(key: k, value: $0, flags: flags) } }
    }

    /// Helper-mode update of the calling CPU's value.
    func putOwn(_ map: RawPerCPUHashMap, _ key: UInt64, _ value: UInt64, flags: MapUpdateFlags = .any) throws {
        try Epoch.withSection { section in
            try withUnsafeBytes(of: key) { k in
                try withUnsafeBytes(of: value) { try map.update(key: k, value: $0, flags: flags, in: section) }
            }
        }
    }

    /// LRU_PERCPU_HASH: a helper-mode update of an existing key writes the CPU's value in
    /// place and is a use, as Linux's `bpf_lru_node_set_ref` makes it: the key survives the
    /// hand's next pass (it was evicted as readily as an idle key).
    @Test func helperModeUpdatesRefreshAnLRUEntry() throws {
        let maxEntries = 1024
        let map = try Self.make(.lruPerCPUHash, maxEntries: maxEntries)
        let cpus = map.userValueSize / 8
        for key in 0..<UInt64(maxEntries) { try putAll(map, key, [UInt64](repeating: key, count: cpus)) }
        try putAll(map, UInt64(maxEntries), [UInt64](repeating: 0, count: cpus))  // a full sweep
        let survivors = try map.allKeys(as: UInt64.self).filter { $0 < UInt64(maxEntries) }
        let updated = Set(survivors.filter { $0 % 2 == 0 })
        for key in updated { try putOwn(map, key, key &+ 7, flags: .exist) }
        for key in UInt64(2 * maxEntries)..<UInt64(2 * maxEntries + maxEntries / 16) {
            try putAll(map, key, [UInt64](repeating: key, count: cpus))
        }
        let remaining = Set(try map.allKeys(as: UInt64.self))
        let evicted = updated.subtracting(remaining)
        #expect(evicted.count == 0, "\(evicted.count) of \(updated.count) updated keys evicted")
    }

    @Test func areServedAndNamed() {
        #expect(MapRegistry.supportedBuiltInTypes.contains(.perCPUHash))
        #expect(MapRegistry.supportedBuiltInTypes.contains(.lruPerCPUHash))
        #expect(MapType.perCPUHash.linuxTypeID == 5)
        #expect(MapType.lruPerCPUHash.linuxTypeID == 10)
    }

    @Test(arguments: [MapType.perCPUHash, .lruPerCPUHash])
    func creationRefusalsAsLinux(type: MapType) {
        func create(_ definition: MapDefinition) -> Int32 { errno { _ = try MapRegistry.create(definition) } }
        #expect(create(Self.definition(type, valueSize: 32768)) == 0)
        #expect(create(Self.definition(type, valueSize: 32769)) == E2BIG)   // round_up(·, 8) > PCPU_MIN_UNIT_SIZE
        #expect(create(Self.definition(type, valueSize: 0)) == EINVAL)
        #expect(create(Self.definition(type, maxEntries: 0)) == EINVAL)
        #expect(create(Self.definition(type, numaNode: 0)) == EINVAL)
        #expect(create(Self.definition(type, flags: .numaNode)) == EINVAL)
        #expect(create(Self.definition(type, lockOffset: 0)) == EOPNOTSUPP)
        #expect(create(Self.definition(type, flags: .mmapable)) == EINVAL)
        if type == .lruPerCPUHash {
            #expect(create(Self.definition(type, flags: .noPrealloc)) == 524)
            #expect(create(Self.definition(type, flags: .noCommonLRU)) == 0)
        } else {
            #expect(create(Self.definition(type, flags: .noPrealloc)) == 0)
            #expect(create(Self.definition(type, flags: .noCommonLRU)) == EINVAL)
        }
    }

    /// Linux bounds `keySize + valueSize` by one CPU's value: with 128 or 256 possible CPUs a
    /// value of 32,768 bytes is accepted, and works. The hash underneath, whose values hold
    /// every CPU's, checked that bound against all of them and answered E2BIG (found by
    /// review, 2026-12-07; machines with that many possible CPUs are common servers, so the
    /// count is given here).
    @Test(arguments: [MapType.perCPUHash, .lruPerCPUHash], [128, 256])
    func theBoundOnKeyPlusValueIsOneCPUsValue(type: MapType, cpus: Int) throws {
        let map = try RawPerCPUHashMap(Self.definition(type, valueSize: 32768, maxEntries: 1), possibleCPUs: cpus)
        #expect(map.possibleCPUCount == cpus && map.userValueSize == 32768 * cpus)
        var all = [UInt8](repeating: 0, count: map.userValueSize)
        for cpu in 0..<cpus { all[cpu * 32768] = UInt8(truncatingIfNeeded: cpu + 1) }
        let key: UInt64 = 42
        try withUnsafeBytes(of: key) { key in
            try all.withUnsafeBytes { try map.update(key: key, value: $0, flags: .any) }
            var back = [UInt8](repeating: 0xFF, count: map.userValueSize)
            try back.withUnsafeMutableBytes { try map.lookup(key: key, into: $0) }
            #expect(back == all)
        }
        // One CPU's value over PCPU_MIN_UNIT_SIZE is still refused, whatever the count.
        #expect(errno { _ = try RawPerCPUHashMap(Self.definition(type, valueSize: 32769), possibleCPUs: cpus) } == E2BIG)
    }

    @Test func userModeCopiesEveryCPUsValueWithItsPadding() throws {
        let map = try Self.make(valueSize: 4)
        #expect(map.paddedValueSize == 8)
        #expect(map.userValueSize == 8 * map.possibleCPUCount)
        // Each CPU's 8 bytes, padding included, come back as stored.
        let stored = (0..<map.possibleCPUCount).map { UInt64(0xA0A0_0000_0000_0000) | UInt64($0 + 1) }
        try putAll(map, 7, stored)
        #expect(try words(map, 7) == stored)
        // A buffer of one CPU's value is the wrong size for user mode.
        #expect(errno { try withUnsafeBytes(of: UInt64(7)) { k in
            try withUnsafeBytes(of: UInt32(1)) { try map.update(key: k, value: $0, flags: .any) } } } == EINVAL)
        #expect(errno { try putAll(map, 7, stored, flags: .noExist) } == EEXIST)
        #expect(errno { try putAll(map, 8, stored, flags: .exist) } == ENOENT)
        #expect(errno { try putAll(map, 7, stored, flags: MapUpdateFlags(rawValue: 4)) } == EINVAL)   // BPF_F_LOCK
        var out = [UInt8](repeating: 0, count: map.userValueSize)
        #expect(errno { try withUnsafeBytes(of: UInt64(7)) { k in
            try out.withUnsafeMutableBytes { try map.lookup(key: k, into: $0, flags: .lock) } } } == EINVAL)
        #expect(errno { try withUnsafeBytes(of: UInt64(7)) { k in
            try out.withUnsafeMutableBytes { try map.lookupAndDelete(key: k, into: $0) } } } == 0)
        #expect(out.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) } == stored)
        #expect(map.count == 0)
    }

    /// A helper-mode write copies the value's own bytes into the calling CPU's slot and
    /// leaves the padding after them as it was (Linux's `pcpu_copy_value` copies
    /// `value_size` bytes for one CPU); a user-mode write sets the padding, and a user-mode
    /// lookup returns it.
    @Test(arguments: [MapType.perCPUHash, .lruPerCPUHash])
    func helperModeWritesLeaveThePaddingAsItWas(type: MapType) throws {
        let map = try Self.make(type, valueSize: 4)
        let stored = (0..<map.possibleCPUCount).map { UInt64(0xA0A0_B0B0_0000_0000) | UInt64($0 + 1) }
        try putAll(map, 7, stored)
        try Epoch.withSection { section in
            try withUnsafeBytes(of: UInt64(7)) { k in
                try withUnsafeBytes(of: UInt32(0xC0DE)) { try map.update(key: k, value: $0, flags: .exist, in: section) }
            }
        }
        let after = try words(map, 7)
        // Every CPU's padding is as the user-mode write left it.
        #expect(after.allSatisfy { $0 >> 32 == 0xA0A0_B0B0 })
        // One CPU's value (the writer's, wherever it ran) is the new one; the others are kept.
        let changed = after.indices.filter { after[$0] != stored[$0] }
        #expect(changed.count == 1)
        #expect(changed.allSatisfy { after[$0] & 0xFFFF_FFFF == 0xC0DE })
    }

    @Test func aFullPerCPUHashRefusesAndTheLRUOneEvicts() throws {
        let plain = try Self.make(maxEntries: 4)
        let lru = try Self.make(.lruPerCPUHash, maxEntries: 4)
        let value = [UInt64](repeating: 1, count: plain.possibleCPUCount)
        for key in UInt64(0)..<4 {
            try putAll(plain, key, value)
            try putAll(lru, key, value)
        }
        #expect(errno { try putAll(plain, 99, value) } == E2BIG)
        for key in UInt64(100)..<200 {
            try putAll(lru, key, value)
            #expect(try words(lru, key) == value)
            // (A pass: `count` is clamped to `maxEntries`.)
            #expect(try lru.allKeys(as: UInt64.self).count <= 4)
        }
    }

    /// Pinned to each allowed CPU in turn, a helper-mode write lands in that CPU's value
    /// alone: a new key zeroes the other CPUs' values, a later update keeps them.
    @Test(arguments: [MapType.perCPUHash, .lruPerCPUHash])
    func helperModeTouchesTheCallingCPUsValueOnly(type: MapType) throws {
        let map = try Self.make(type)
        let shared = Shared()
        try putAll(map, 1, [UInt64](repeating: 5, count: map.possibleCPUCount))
        runOnThreads(1) { _ in
            for cpu in 0..<map.possibleCPUCount where RawPerCPUArrayMap.pinCurrentThread(toCPU: cpu) {
                try? self.putOwn(map, 1, UInt64(100 + cpu))
                try? self.putOwn(map, 2, UInt64(200 + cpu))
                try? Epoch.withSection { section in
                    let own = try withUnsafeBytes(of: UInt64(1)) { try map.lookupInPlace(key: $0, in: section) }
                    if own.count != 8 || own.load(as: UInt64.self) != UInt64(100 + cpu) {
                        shared.wrong.wrappingAdd(1, ordering: .relaxed)
                    }
                }
                if cpu < 64 { shared.pinned.bitwiseOr(1 << UInt64(cpu), ordering: .relaxed) }
            }
        }
        #expect(shared.wrong.load(ordering: .relaxed) == 0)
        let mask = shared.pinned.load(ordering: .relaxed)
        let pinned = Set((0..<Swift.min(map.possibleCPUCount, 64)).filter { mask & (1 << UInt64($0)) != 0 })
        // No CPU could be pinned (a restricted cpuset): nothing to check, said as a cancelled
        // test rather than a pass (found by review, 2026-12-05, eighteenth session).
        if pinned.isEmpty { try Test.cancel("no CPU could be pinned") }
        let key1 = try words(map, 1), key2 = try words(map, 2)
        for cpu in 0..<map.possibleCPUCount {
            #expect(key1[cpu] == (pinned.contains(cpu) ? UInt64(100 + cpu) : 5), "CPU \(cpu)")
            #expect(key2[cpu] == (pinned.contains(cpu) ? UInt64(200 + cpu) : 0), "CPU \(cpu)")
        }
        #expect(throws: MapError.alreadyExists) { try putOwn(map, 1, 0, flags: .noExist) }
        #expect(throws: MapError.keyNotFound) { try putOwn(map, 3, 0, flags: .exist) }
    }

    /// `bpf_map_lookup_percpu_elem` on the per-CPU hashes: a chosen CPU's value, in place —
    /// the bytes a user-mode lookup shows for that CPU, and the ones an in-place write
    /// changes; NULL (ENOENT) for a missing key or a CPU at or beyond `nr_cpu_ids`; EACCES
    /// with `BPF_F_WRONLY_PROG`; on an LRU map, a use that keeps the key through the hand's
    /// next pass, as Linux's reference bit does.
    @Test(arguments: [MapType.perCPUHash, .lruPerCPUHash])
    func aChosenCPUsValueIsLookedUpInPlace(type: MapType) throws {
        let map = try Self.make(type, valueSize: 4)
        let cpus = map.possibleCPUCount
        // 4-byte values, 8 bytes apart in the user-mode layout: CPU c's value is c + 10.
        try putAll(map, 7, (0..<cpus).map { UInt64($0 + 10) | 0xABCD_0000_0000 })
        try Epoch.withSection { section in
            for cpu in 0..<cpus {
                let value = try withUnsafeBytes(of: UInt64(7)) { try map.lookupInPlace(key: $0, cpu: cpu, in: section) }
                #expect(value.count == 4)
                #expect(value.load(as: UInt32.self) == UInt32(cpu + 10), "CPU \(cpu)")
                value.storeBytes(of: UInt32(cpu + 500), as: UInt32.self)
            }
            for cpu in [-1, RawPerCPUArrayMap.cpuIDLimit, Int.max] {
                #expect(throws: MapError.keyNotFound) {
                    try withUnsafeBytes(of: UInt64(7)) { _ = try map.lookupInPlace(key: $0, cpu: cpu, in: section) }
                }
            }
            #expect(throws: MapError.keyNotFound) {
                try withUnsafeBytes(of: UInt64(8)) { _ = try map.lookupInPlace(key: $0, cpu: 0, in: section) }
            }
        }
        // The in-place writes are each CPU's value; the padding after it is untouched.
        #expect(try words(map, 7) == (0..<cpus).map { UInt64($0 + 500) | 0xABCD_0000_0000 })

        let writeOnly = try MapRegistry.create(Self.definition(type, flags: .writeOnlyProgram)) as! RawPerCPUHashMap
        try putAll(writeOnly, 1, [UInt64](repeating: 1, count: cpus))
        // The access and the key's size come before the CPU, as PERCPU_ARRAY's form has them.
        for cpu in [0, -1] {
            #expect(throws: MapError.accessDenied) {
                try Epoch.withSection { section in
                    try withUnsafeBytes(of: UInt64(1)) { _ = try writeOnly.lookupInPlace(key: $0, cpu: cpu, in: section) }
                }
            }
            #expect(throws: MapError.invalidArgument) {
                try Epoch.withSection { section in
                    try withUnsafeBytes(of: UInt32(1)) { _ = try map.lookupInPlace(key: $0, cpu: cpu, in: section) }
                }
            }
        }

        guard type == .lruPerCPUHash else { return }
        // A full LRU map: keys looked up on a chosen CPU outlive the next sweep.
        let maxEntries = 1024
        let lru = try Self.make(.lruPerCPUHash, maxEntries: maxEntries)
        for key in 0..<UInt64(maxEntries) { try putAll(lru, key, [UInt64](repeating: key, count: cpus)) }
        try putAll(lru, UInt64(maxEntries), [UInt64](repeating: 0, count: cpus))  // a full sweep
        let survivors = try lru.allKeys(as: UInt64.self).filter { $0 < UInt64(maxEntries) }
        let used = Set(survivors.filter { $0 % 2 == 0 })
        try Epoch.withSection { section in
            for key in used {
                _ = try withUnsafeBytes(of: key) { try lru.lookupInPlace(key: $0, cpu: cpus - 1, in: section) }
            }
        }
        for key in UInt64(2 * maxEntries)..<UInt64(2 * maxEntries + maxEntries / 16) {
            try putAll(lru, key, [UInt64](repeating: key, count: cpus))
        }
        let evicted = used.subtracting(Set(try lru.allKeys(as: UInt64.self)))
        #expect(evicted.isEmpty, "\(evicted.count) of \(used.count) keys looked up were evicted")
    }

    /// One thread per CPU, pinned, each writing its own CPU's value of one shared key in
    /// helper mode (updates and atomic in-place increments), while user-mode readers check
    /// every snapshot: a CPU's value only ever holds what its own thread wrote. At the end,
    /// each CPU's value is its thread's last.
    @Test(arguments: [MapType.perCPUHash, .lruPerCPUHash])
    func concurrentWritersOfDifferentCPUsStayIsolated(type: MapType) throws {
        let map = try Self.make(type, maxEntries: 64)
        let cpus = map.possibleCPUCount
        try putAll(map, 9, (0..<cpus).map { UInt64($0) << 48 })
        let shared = Shared()
        let rounds = 2_000
        runOnThreads(cpus + 1) { thread in
            if thread == cpus {
                // Reader: CPU c's value always carries c in its top 16 bits.
                while shared.writersDone.load(ordering: .acquiring) < cpus {
                    guard let all = try? self.words(map, 9) else { shared.wrong.wrappingAdd(1, ordering: .relaxed); continue }
                    for cpu in 0..<cpus where all[cpu] >> 48 != UInt64(cpu) { shared.wrong.wrappingAdd(1, ordering: .relaxed) }
                }
                return
            }
            defer { shared.writersDone.wrappingAdd(1, ordering: .releasing) }
            guard RawPerCPUArrayMap.pinCurrentThread(toCPU: thread) else { return }
            if thread < 64 { shared.pinned.bitwiseOr(1 << UInt64(thread), ordering: .relaxed) }
            for round in 1...rounds {
                let mine = UInt64(thread) << 48 | UInt64(round) << 8
                if (try? self.putOwn(map, 9, mine, flags: .exist)) == nil { shared.wrong.wrappingAdd(1, ordering: .relaxed) }
                Epoch.withSection { section in
                    guard let own = try? withUnsafeBytes(of: UInt64(9), { try map.lookupInPlace(key: $0, in: section) })
                    else { return }
                    own.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.wrappingAdd(1, ordering: .relaxed)
                }
            }
        }
        #expect(shared.wrong.load(ordering: .relaxed) == 0)
        let final = try words(map, 9)
        let pinned = shared.pinned.load(ordering: .relaxed)
        // Isolation needs two writers on two CPUs: fewer pinned (a restricted cpuset) is a
        // cancelled test, not a pass (found by review, 2026-12-06, as row 164's tests).
        if pinned.nonzeroBitCount < 2 { try Test.cancel("fewer than two CPUs could be pinned") }
        for cpu in 0..<Swift.min(cpus, 64) where pinned & (1 << UInt64(cpu)) != 0 {
            #expect(final[cpu] == UInt64(cpu) << 48 | UInt64(rounds) << 8 | 1, "CPU \(cpu)")
        }
    }

    /// A helper-mode update of one CPU's value keeps every other CPU's value as it is at that
    /// moment, including increments their threads make in place meanwhile: CPU 0's thread
    /// adds 1 atomically, 20 000 times, through `lookupInPlace`, while CPU 1's thread keeps
    /// updating its own value; CPU 0 ends at exactly 20 000. (Updates used to build a new pair
    /// with the other CPUs' values copied, so increments made to the pair it retired were lost.)
    @Test(arguments: [MapType.perCPUHash, .lruPerCPUHash])
    func inPlaceIncrementsSurviveOtherCPUsUpdates(type: MapType) throws {
        let map = try Self.make(type, maxEntries: 16)
        let cpus = map.possibleCPUCount
        if cpus < 2 { try Test.cancel("one possible CPU") }
        try putAll(map, 9, [UInt64](repeating: 0, count: cpus))
        let increments = 20_000
        let pinned = Atomic<Int>(0)
        runOnThreads(2) { thread in
            guard RawPerCPUArrayMap.pinCurrentThread(toCPU: thread) else { return }
            pinned.wrappingAdd(1, ordering: .relaxed)
            if thread == 0 {
                for _ in 0..<increments {
                    Epoch.withSection { section in
                        guard let own = try? withUnsafeBytes(of: UInt64(9), { try map.lookupInPlace(key: $0, in: section) })
                        else { return }
                        own.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.wrappingAdd(1, ordering: .relaxed)
                    }
                }
            } else {
                for round in 0..<increments { try? self.putOwn(map, 9, UInt64(round), flags: .exist) }
            }
        }
        // Pinning can be refused (a restricted cpuset): then there is nothing to check.
        if pinned.load(ordering: .relaxed) != 2 { try Test.cancel("two CPUs could not be pinned") }
        let final = try words(map, 9)
        #expect(final[0] == UInt64(increments))
        #expect(final[1] == UInt64(increments - 1))
    }
}
