import CRCUMapsShim
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Where PERCPU_HASH and LRU_PERCPU_HASH keep their values: each CPU's values of every key
/// in memory of that CPU's (a block per CPU for the first-level slots, NUMA-placed where
/// there are several nodes; per-CPU groups after each overflow bucket), never on a cache
/// line another CPU's value shares — also for keys in overflow buckets, through their reuse
/// as spares — and the user-mode layout gathered from and scattered to them exactly.
@Suite("PERCPU_HASH value blocks")
struct PerCPUHashValueBlocksTests {
    static func definition(_ type: MapType, valueSize: Int, maxEntries: Int) -> MapDefinition {
        MapDefinition(type: type, keySize: 8, valueSize: valueSize, maxEntries: maxEntries, name: "blocks",
                      poolTag: uniqueTag())
    }

    /// The user-mode value of key `key` in round `round`: CPU `c`'s bytes all derived from
    /// (round, key, c, byte), so a value in the wrong CPU's place or from another key shows.
    static func userValue(_ map: RawPerCPUHashMap, key: UInt64, round: Int) -> [UInt8] {
        var value = [UInt8](repeating: 0, count: map.userValueSize)
        for cpu in 0..<map.possibleCPUCount {
            for byte in 0..<map.paddedValueSize {
                value[cpu * map.paddedValueSize + byte] =
                    UInt8(truncatingIfNeeded: Int(key) &* 13 &+ cpu &* 71 &+ byte &* 3 &+ round &* 101)
            }
        }
        return value
    }

    static func lookup(_ map: RawPerCPUHashMap, _ key: UInt64) throws -> [UInt8] {
        var out = [UInt8](repeating: 0xEE, count: map.userValueSize)
        try withUnsafeBytes(of: key) { k in try out.withUnsafeMutableBytes { try map.lookup(key: k, into: $0) } }
        return out
    }

    static func update(_ map: RawPerCPUHashMap, _ key: UInt64, _ value: [UInt8]) throws {
        try withUnsafeBytes(of: key) { k in try value.withUnsafeBytes { try map.update(key: k, value: $0, flags: .any) } }
    }

    /// CPU `cpu`'s value of `key` in helper mode: its address, and its bytes.
    static func helperValue(_ map: RawPerCPUHashMap, _ key: UInt64, cpu: Int) throws -> (UInt, [UInt8]) {
        try Epoch.withSection { section in
            let value = try withUnsafeBytes(of: key) { try map.lookupInPlace(key: $0, cpu: cpu, in: section) }
            return (UInt(bitPattern: value.baseAddress!), Array(value))
        }
    }

    /// With the table's sizing, and with one bucket (every key past the first few in
    /// overflow buckets): each CPU's values of all keys are on cache lines no other CPU's
    /// value touches, helper mode reads the bytes user mode wrote for that CPU, and a write
    /// through one CPU's value changes that CPU's part of the user-mode value alone.
    @Test(arguments: [(MapType.perCPUHash, 8, nil as Int?), (.perCPUHash, 8, 1), (.perCPUHash, 20, 1),
                      (.lruPerCPUHash, 16, nil), (.lruPerCPUHash, 8, 1)])
    func eachCPUsValuesAreOnLinesOfTheirOwn(type: MapType, valueSize: Int, bucketCount: Int?) throws {
        // CPU numbers `lookupInPlace(key:cpu:in:)` accepts are the machine's.
        let map = try RawPerCPUHashMap(Self.definition(type, valueSize: valueSize, maxEntries: 64),
                                       possibleCPUs: RawPerCPUArrayMap.possibleCPUs, bucketCount: bucketCount)
        let cpus = min(map.possibleCPUCount, RawPerCPUArrayMap.cpuIDLimit)
        let keys = (0..<40).map { UInt64($0) &* 0x9E37_79B9 }
        for key in keys { try Self.update(map, key, Self.userValue(map, key: key, round: 0)) }
        var linesOfCPU = [Set<UInt>](repeating: [], count: cpus)
        // The lines of the slots (keys, words, and the buckets' headers beside slot 0).
        var slotLines = Set<UInt>()
        for key in keys {
            let slot = try #require(withUnsafeBytes(of: key) { map.storage.slotBytes(forKey: $0) })
            for line in (slot.address / 64)...((slot.address + UInt(slot.count) - 1) / 64) { slotLines.insert(line) }
        }
        for key in keys {
            let expected = Self.userValue(map, key: key, round: 0)
            #expect(try Self.lookup(map, key) == expected, "key \(key)")
            for cpu in 0..<cpus {
                let (address, bytes) = try Self.helperValue(map, key, cpu: cpu)
                let start = cpu * map.paddedValueSize
                #expect(bytes == Array(expected[start..<(start + valueSize)]), "key \(key), CPU \(cpu)")
                #expect(address % 8 == 0, "key \(key), CPU \(cpu): a value starts on 8 bytes")
                for line in (address / 64)...((address + UInt(map.paddedValueSize) - 1) / 64) {
                    linesOfCPU[cpu].insert(line)
                }
            }
        }
        for a in 0..<cpus {
            #expect(linesOfCPU[a].isDisjoint(with: slotLines), "CPU \(a)'s values share a line with the slots")
            for b in (a + 1)..<max(a + 1, cpus) {
                #expect(linesOfCPU[a].isDisjoint(with: linesOfCPU[b]), "CPUs \(a) and \(b) share a cache line")
            }
        }
        // A helper-mode write through CPU `last`'s value of each key: only that CPU's part moves.
        let last = cpus - 1
        for key in keys {
            try Epoch.withSection { section in
                let value = try withUnsafeBytes(of: key) { try map.lookupInPlace(key: $0, cpu: last, in: section) }
                value.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.store(key ^ 0xABCD, ordering: .relaxed)
            }
            var expected = Self.userValue(map, key: key, round: 0)
            withUnsafeBytes(of: key ^ 0xABCD) { expected.replaceSubrange((last * map.paddedValueSize)..<(last * map.paddedValueSize + 8), with: $0) }
            #expect(try Self.lookup(map, key) == expected, "key \(key)")
        }
    }

    /// Overflow buckets' values through many rounds of filling a one-bucket map and emptying
    /// it: the buckets go to the spares and come back with their values' groups (the same
    /// value addresses recur), each CPU's values still on lines of their own. Every round's
    /// values read back exact, and lookup-and-delete and exchange hand back all CPUs' values.
    @Test(arguments: [MapType.perCPUHash, .lruPerCPUHash])
    func overflowBucketsKeepTheirValuesThroughReuse(type: MapType) throws {
        let map = try RawPerCPUHashMap(Self.definition(type, valueSize: 24, maxEntries: 64),
                                       possibleCPUs: RawPerCPUArrayMap.possibleCPUs, bucketCount: 1)
        let cpus = min(map.possibleCPUCount, RawPerCPUArrayMap.cpuIDLimit)
        let keys = (0..<30).map { UInt64($0) }
        let blocks = try #require(map.valueBlocks)
        var earlierAddresses = Set<UInt>()
        var recurred = 0
        var sparesBefore = 0
        for round in 0..<6 {
            for key in keys { try Self.update(map, key, Self.userValue(map, key: key, round: round)) }
            #expect(map.count == keys.count)
            // The chain's overflow buckets came from the spares the last round left.
            if round > 0 {
                #expect(map.storage.spareOverflowBuckets.count < sparesBefore, "round \(round): spares taken")
            }
            // Where each key's values are this round; each CPU's lines apart from the others'.
            var addresses = Set<UInt>()
            var linesOfCPU = [Set<UInt>](repeating: [], count: cpus)
            for key in keys {
                for cpu in 0..<cpus {
                    let (address, _) = try Self.helperValue(map, key, cpu: cpu)
                    // Overflow buckets' values only (outside the first-level blocks, whose
                    // addresses are fixed).
                    let offset = Int(bitPattern: address) - Int(bitPattern: blocks.base)
                    if cpu == 0, offset < 0 || offset >= blocks.size { addresses.insert(address) }
                    for line in (address / 64)...((address + UInt(map.paddedValueSize) - 1) / 64) {
                        linesOfCPU[cpu].insert(line)
                    }
                }
            }
            for a in 0..<cpus {
                for b in (a + 1)..<max(a + 1, cpus) {
                    #expect(linesOfCPU[a].isDisjoint(with: linesOfCPU[b]), "round \(round): CPUs \(a) and \(b) share a line")
                }
            }
            recurred += addresses.intersection(earlierAddresses).count
            earlierAddresses.formUnion(addresses)
            // Replaced once (a new slot in a later bucket of the chain), read back exact.
            for key in keys where key % 3 == 0 {
                var old = [UInt8](repeating: 0, count: map.userValueSize)
                let new = Self.userValue(map, key: key, round: round + 100)
                let replaced = try withUnsafeBytes(of: key) { k in
                    try new.withUnsafeBytes { v in
                        try old.withUnsafeMutableBytes { try map.exchange(key: k, value: v, flags: .exist, into: $0) }
                    }
                }
                #expect(replaced && old == Self.userValue(map, key: key, round: round), "round \(round), key \(key)")
            }
            for key in keys {
                let expected = Self.userValue(map, key: key, round: key % 3 == 0 ? round + 100 : round)
                #expect(try Self.lookup(map, key) == expected, "round \(round), key \(key)")
                if key % 2 == 0 {
                    var out = [UInt8](repeating: 0, count: map.userValueSize)
                    try withUnsafeBytes(of: key) { k in try out.withUnsafeMutableBytes { try map.lookupAndDelete(key: k, into: $0) } }
                    #expect(out == expected, "round \(round), key \(key): lookup-and-delete")
                } else {
                    try withUnsafeBytes(of: key) { try map.delete(key: $0) }
                }
            }
            #expect(map.count == 0)
            sparesBefore = map.storage.spareOverflowBuckets.count
            #expect(sparesBefore > 0, "round \(round): emptied overflow buckets kept as spares")
            // The retired slots' and emptied buckets' generation runs: the next round reuses them.
            map.storage.waitForReclaimGenerations()
        }
        // Later rounds put overflow keys' values at addresses earlier rounds' overflow buckets
        // used: the spares' groups, reused with their buckets.
        #expect(recurred > 0)
    }

    /// Helper-mode pointers held in a section while another thread deletes their keys and
    /// churns the map (retiring slots, emptying overflow buckets): writes through it land
    /// in the retired slot's values only, which no live key gets back before the section
    /// ends — no key ever reads the pointer's sentinel, and nothing is freed under it (the
    /// address sanitizer would report a write to freed memory).
    @Test func aValuePointerHeldAcrossChurnWritesNoLiveKey() throws {
        let map = try RawPerCPUHashMap(Self.definition(.perCPUHash, valueSize: 8, maxEntries: 64),
                                       possibleCPUs: RawPerCPUArrayMap.possibleCPUs, bucketCount: 1)
        let sentinel: UInt64 = 0x5E5E_5E5E_5E5E_5E5E
        let keys = (0..<24).map { UInt64($0) }
        let cpus = min(map.possibleCPUCount, RawPerCPUArrayMap.cpuIDLimit)
        for key in keys { try Self.update(map, key, [UInt8](repeating: 1, count: map.userValueSize)) }
        final class Flags: Sendable {
            let held = Atomic<Bool>(false), churned = Atomic<Bool>(false)
        }
        let flags = Flags(), failures = Failures()
        runOnThreads(2) { thread in
            if thread == 0 {
                Epoch.withSection { section in
                    // Every key's value of the last CPU: in first-level slots (reused in
                    // place once their generation runs) and in overflow buckets (unlinked
                    // when emptied, and spares once it runs).
                    var words: [UnsafeMutablePointer<Atomic<UInt64>>] = []
                    for key in keys {
                        guard let value = try? withUnsafeBytes(of: key, { try map.lookupInPlace(key: $0, cpu: cpus - 1, in: section) })
                        else {
                            failures.record("key \(key) absent")
                            continue
                        }
                        words.append(value.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self))
                    }
                    flags.held.store(true, ordering: .releasing)
                    repeat {
                        for word in words { word.pointee.store(sentinel, ordering: .relaxed) }
                        sched_yield()  // a loaded two-core machine: let the churn run
                    } while !flags.churned.load(ordering: .acquiring)
                    for word in words { word.pointee.store(sentinel, ordering: .relaxed) }
                }
                return
            }
            while !flags.held.load(ordering: .acquiring) { sched_yield() }
            // Churn while the section holds every generation back: deletes, then fresh keys.
            do {
                for round in 1...20 {
                    for key in keys { _ = try withUnsafeBytes(of: key) { try map.storage.deleteIfPresent(key: $0) } }
                    for key in keys {
                        try Self.update(map, key &+ UInt64(round * 100),
                                        [UInt8](repeating: UInt8(round), count: map.userValueSize))
                    }
                    for key in keys {
                        _ = try withUnsafeBytes(of: key &+ UInt64(round * 100)) { try map.storage.deleteIfPresent(key: $0) }
                    }
                }
                for key in keys { try Self.update(map, key, [UInt8](repeating: 2, count: map.userValueSize)) }
            } catch {
                failures.record("churn: \(error)")
            }
            flags.churned.store(true, ordering: .releasing)
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        for key in keys {
            let words = try Self.lookup(map, key).withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
            #expect(!words.contains(sentinel), "key \(key) reads the held pointer's writes")
            #expect(words == Array(repeating: 0x0202_0202_0202_0202, count: words.count), "key \(key)")
        }
    }

    /// Placed on NUMA nodes (forced: this machine may have one node): each CPU's block is
    /// asked for on that CPU's node, and the first-level keys' values of each CPU lie in
    /// that CPU's block, whose pages have that policy.
    @Test func valueBlocksArePlacedOnTheirCPUsNodes() throws {
        let map = try RawPerCPUHashMap(Self.definition(.perCPUHash, valueSize: 8, maxEntries: 1000),
                                       possibleCPUs: RawPerCPUArrayMap.possibleCPUs, placingBlocksOnNodes: true,
                                       maxRuns: .max)
        let plain = try RawPerCPUHashMap(Self.definition(.perCPUHash, valueSize: 8, maxEntries: 1000),
                                         possibleCPUs: RawPerCPUArrayMap.possibleCPUs)
        #expect(plain.cpuBlockNodes == nil)
        // The node of each CPU's block is the one `nodeOfCPU` gives (another machine's
        // numbering; asking for a node this machine lacks leaves the pages unplaced).
        let renumbered = try RawPerCPUHashMap(Self.definition(.perCPUHash, valueSize: 8, maxEntries: 8),
                                              possibleCPUs: 3, placingBlocksOnNodes: true, nodeOfCPU: { 5 - $0 },
                                              maxRuns: .max)
        #expect(renumbered.cpuBlockNodes == [5, 4, 3])
        let alternating = try RawPerCPUHashMap(Self.definition(.perCPUHash, valueSize: 8, maxEntries: 8),
                                               possibleCPUs: 3, placingBlocksOnNodes: true, nodeOfCPU: { $0 % 2 },
                                               maxRuns: 2)
        #expect(alternating.cpuBlockNodes == nil, "three runs of nodes over a cap of two: not placed")
        let cpus = min(map.possibleCPUCount, RawPerCPUArrayMap.cpuIDLimit)
        let nodes = try #require(map.cpuBlockNodes)
        #expect(nodes == (0..<map.possibleCPUCount).map { Int(rcumaps_numa_node_of_cpu(Int32($0))) })
        let blocks = try #require(map.valueBlocks)
        let page = sysconf(Int32(_SC_PAGESIZE))
        #expect(Int(bitPattern: blocks.base) % page == 0 && blocks.cpuStride % page == 0)
        let scratch = try #require(mmap(nil, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer { munmap(scratch, page) }
        let policiesWork = rcumaps_numa_prefer_node(scratch, page, 0) == 0
        var inBlocks = 0
        for key in UInt64(0)..<600 {
            let value = Self.userValue(map, key: key, round: 1)
            try Self.update(map, key, value)
            try Self.update(plain, key, value)
            #expect(try Self.lookup(map, key) == value && Self.lookup(plain, key) == value, "key \(key)")
            for cpu in 0..<cpus {
                let (address, _) = try Self.helperValue(map, key, cpu: cpu)
                let offset = Int(bitPattern: address) - Int(bitPattern: blocks.base)
                guard offset >= 0, offset < blocks.size else { continue }  // an overflow bucket's
                inBlocks += 1
                #expect(offset / blocks.cpuStride == cpu, "key \(key): CPU \(cpu)'s value in block \(offset / blocks.cpuStride)")
                let wanted = Int(rcumaps_numa_nearest_with_memory(Int32(nodes[cpu])))
                let expected = wanted >= 0 ? wanted : nodes[cpu]
                let pointer = UnsafeMutableRawPointer(bitPattern: address)!
                let preferred = Int(rcumaps_numa_preferred_node_of_address(pointer))
                #expect(preferred == expected || !policiesWork, "key \(key), CPU \(cpu): preferred node \(preferred), asked for \(expected)")
            }
        }
        // At two-thirds load nearly every key is in a first-level slot.
        #expect(inBlocks >= 500 * cpus)
    }
}
