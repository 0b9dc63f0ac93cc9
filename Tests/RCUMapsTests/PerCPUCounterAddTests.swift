import CRCUMapsShim
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `PerCPUArrayMap.add(_:at:)`: a per-CPU counter add in a restartable sequence (no atomic
/// instruction), or an atomic add where rseq is unavailable. Many threads that keep moving
/// between CPUs must still sum exactly; each add must land in the calling CPU's value.
@Suite("PerCPUArrayMap add")
struct PerCPUCounterAddTests {

    /// `threads` threads add to random indices, each re-pinning itself to another CPU every
    /// 257 adds (forced migrations) or yielding (preemptions); the sums over the CPUs must
    /// equal the adds made, index by index.
    static func addFromMigratingThreads(_ map: PerCPUArrayMap<UInt64>, threads: Int, adds: Int) -> (sums: [UInt64], made: [UInt64]) {
        let indices = map.count
        let tallies = Mutex<[UInt64]>([UInt64](repeating: 0, count: indices))
        let cpus = map.possibleCPUCount
        runOnThreads(threads) { thread in
            var random = UInt64(thread) &* 0x9E37_79B9_7F4A_7C15 | 1
            var made = [UInt64](repeating: 0, count: indices)
            for step in 0..<adds {
                random ^= random << 13; random ^= random >> 7; random ^= random << 17
                let index = Int(random % UInt64(indices))
                let delta = random >> 60 + 1
                #expect(map.add(delta, at: UInt32(index)))
                made[index] &+= delta
                if step % 257 == 0 {
                    if thread % 2 == 0 {
                        _ = RawPerCPUArrayMap.pinCurrentThread(toCPU: Int(random >> 32) % cpus)
                    } else {
                        sched_yield()
                    }
                }
            }
            tallies.withLock { for index in 0..<indices { $0[index] &+= made[index] } }
        }
        let sums = (0..<indices).map { map.sum(at: UInt32($0))! }
        return (sums, tallies.withLock { $0 })
    }

    @Test func addsFromMigratingThreadsSumExactly() throws {
        let map = try PerCPUArrayMap<UInt64>(count: 5, poolTag: uniqueTag())
        let (sums, made) = Self.addFromMigratingThreads(map, threads: 6, adds: 100_000)
        #expect(sums == made)
    }

    @Test func theAtomicPathSumsExactlyToo() throws {
        let raw = try RawPerCPUArrayMap(MapDefinition(type: .perCPUArray, keySize: 4, valueSize: 8, maxEntries: 5,
                                                      name: "atomic", poolTag: uniqueTag()),
                                        placingBlocksOnNodes: false, restartableAdds: false)
        let map = try PerCPUArrayMap<UInt64>(wrapping: raw)
        let (sums, made) = Self.addFromMigratingThreads(map, threads: 4, adds: 50_000)
        #expect(sums == made)
    }

    /// On this kind of machine (x86-64, glibc 2.35 or later) the sequence runs; where rseq
    /// is unavailable it reports so and the map adds atomically.
    @Test func theRestartableSequenceRunsWhereRseqIsRegistered() {
        // One word per CPU the kernel may number (a fixed 16 failed on correct code on a
        // machine with more CPUs, where a thread on CPU 16 or above is refused: found by
        // review, 2026-12-06, twenty-sixth session).
        let cpus = RawPerCPUArrayMap.cpuIDLimit
        var words = [UInt64](repeating: 0, count: cpus)
        let cpu = Int(rcumaps_current_cpu())
        let done = words.withUnsafeMutableBytes { bytes in
            rcumaps_rseq_add_u64(bytes.baseAddress!, 8, 5, UInt32(cpus))
        }
        if rcumaps_rseq_available() != 0 {
            #expect(done == 0)
            // Added to the word of the CPU it ran on (the thread may have moved since
            // `cpu` was read, so look for the one word that changed).
            #expect(words.filter { $0 != 0 } == [5])
            #expect(cpu < cpus)
        } else {
            #expect(done == -1)
            #expect(words.allSatisfy { $0 == 0 })
        }
        // A CPU number beyond `cpus` is refused, not written.
        let refused = words.withUnsafeMutableBytes { bytes in rcumaps_rseq_add_u64(bytes.baseAddress!, 8, 1, 0) }
        #expect(refused == -1)
    }

    @Test func anAddGoesToTheCallingCPUsValue() throws {
        let map = try PerCPUArrayMap<Int>(count: 2, poolTag: uniqueTag())
        let cpus = map.possibleCPUCount
        let pinnedCPUs = Mutex<[Int]>([])
        runOnThreads(1) { _ in
            for cpu in 0..<cpus where RawPerCPUArrayMap.pinCurrentThread(toCPU: cpu) {
                #expect(map.add(cpu + 1, at: 1))
                #expect(map.add(-1, at: 1))
                pinnedCPUs.withLock { $0.append(cpu) }
            }
        }
        let pinned = pinnedCPUs.withLock { $0 }
        #expect(!pinned.isEmpty)
        let values = try #require(map.values(at: 1))
        for cpu in 0..<cpus { #expect(values[cpu] == (pinned.contains(cpu) ? cpu : 0), "CPU \(cpu)") }
        #expect(map.values(at: 0) == [Int](repeating: 0, count: cpus))
        #expect(!map.add(1, at: 2))
        let signed = try PerCPUArrayMap<Int64>(count: 1, poolTag: uniqueTag())
        #expect(signed.add(-7, at: 0) && signed.add(2, at: 0))
        #expect(signed.sum(at: 0) == -5)
    }

    /// A map programs may not write: the map's own add refuses (EACCES), and the typed
    /// views refuse to wrap it, since their in-place closures write from user code (they were
    /// accepted, with a warning in a comment, until 2026-12-05: found by review).
    @Test func aMapProgramsMayNotWriteRefusesAdds() throws {
        let raw = try RawPerCPUArrayMap(MapDefinition(type: .perCPUArray, keySize: 4, valueSize: 8, maxEntries: 1,
                                                      flags: .readOnlyProgram, name: "ro", poolTag: uniqueTag()))
        #expect(throws: MapError.accessDenied) { _ = try raw.addToCurrentCPUWord(1, at: 0) }
        #expect(throws: MapError.invalidArgument) { _ = try PerCPUArrayMap<UInt64>(wrapping: raw) }
        let hash = try RawPerCPUHashMap(MapDefinition(type: .perCPUHash, keySize: 8, valueSize: 8, maxEntries: 4,
                                                      flags: .readOnlyProgram, name: "ro", poolTag: uniqueTag()))
        #expect(throws: MapError.invalidArgument) { _ = try PerCPUHashMap<UInt64, UInt64>(wrapping: hash) }
    }

    /// `addInsertingIfAbsent`: threads racing to add to keys none of them inserted count
    /// every add exactly: an insert that lost the race never overwrites the winner's
    /// counters with its 0 (the idiom a user wrote as a retry loop: found by review,
    /// 2026-12-05). Each round, every thread adds to the same fresh key at once, after a
    /// barrier, so the inserts race every round (a first version raced only on its first
    /// four calls: an insert with `.any` instead of `.noExist` passed it).
    @Test(arguments: [false, true])
    func addInsertingIfAbsentCountsEveryAdd(lru: Bool) throws {
        let rounds = 400, threads = 4
        let map = try PerCPUHashMap<UInt64, UInt64>(maxEntries: 2 * rounds, lru: lru, poolTag: uniqueTag())
        let arrived = Atomic<Int>(0)
        runOnThreads(threads) { _ in
            for round in 0..<rounds {
                arrived.add(1, ordering: .acquiringAndReleasing)
                while arrived.load(ordering: .acquiring) < (round + 1) * threads { sched_yield() }
                #expect(throws: Never.self) { try map.addInsertingIfAbsent(1, forKey: UInt64(1_000 + round)) }
            }
        }
        let wrong = (0..<rounds).filter { map.sum(forKey: UInt64(1_000 + $0)) != UInt64(threads) }
        #expect(wrong.isEmpty, "rounds whose key does not sum to \(threads): \(wrong.prefix(10))")
        // Absent keys start at 0; the signed forms too.
        try map.addInsertingIfAbsent(5, forKey: 99)
        #expect(map.sum(forKey: 99) == 5)
        let signed = try PerCPUHashMap<UInt32, Int>(maxEntries: 2, poolTag: uniqueTag())
        try signed.addInsertingIfAbsent(-3, forKey: 1)
        #expect(signed.sum(forKey: 1) == -3)
        // Helper-mode writes, as a program's: a frozen map still takes a new key.
        let frozen = try PerCPUHashMap<UInt64, UInt64>(maxEntries: 4, lru: lru, poolTag: uniqueTag())
        try frozen.raw.freeze()
        try frozen.addInsertingIfAbsent(2, forKey: 1)
        #expect(frozen.sum(forKey: 1) == 2)
        // A full PERCPU_HASH refuses a new key (an LRU map evicts).
        let full = try PerCPUHashMap<UInt64, UInt64>(maxEntries: 1, lru: lru, poolTag: uniqueTag())
        try full.addInsertingIfAbsent(1, forKey: 1)
        if lru {
            try full.addInsertingIfAbsent(1, forKey: 2)
            #expect(full.sum(forKey: 2) == 1)
        } else {
            #expect(throws: MapError.outOfSpace) { try full.addInsertingIfAbsent(1, forKey: 2) }
        }
    }

    /// PERCPU_HASH and LRU_PERCPU_HASH: the same migrating adds to a few keys sum exactly;
    /// an absent key is not added to.
    @Test(arguments: [false, true])
    func perCPUHashAddsFromMigratingThreadsSumExactly(lru: Bool) throws {
        let map = try PerCPUHashMap<UInt64, UInt64>(maxEntries: 16, lru: lru, poolTag: uniqueTag())
        let keys: [UInt64] = [3, 7, 11]
        for key in keys { try map.updateCurrentCPUValue(0, forKey: key) }
        let cpus = map.possibleCPUCount
        let tallies = Mutex<[UInt64]>([0, 0, 0])
        runOnThreads(4) { thread in
            var random = UInt64(thread + 1) &* 0x9E37_79B9_7F4A_7C15
            var made: [UInt64] = [0, 0, 0]
            for step in 0..<50_000 {
                random ^= random << 13; random ^= random >> 7; random ^= random << 17
                let which = Int(random % 3)
                #expect(map.add(1, forKey: keys[which]))
                made[which] &+= 1
                if step % 257 == 0 {
                    if thread % 2 == 0 {
                        _ = RawPerCPUArrayMap.pinCurrentThread(toCPU: Int(random >> 32) % cpus)
                    } else {
                        sched_yield()
                    }
                }
            }
            tallies.withLock { for index in 0..<3 { $0[index] &+= made[index] } }
        }
        #expect(keys.map { map.sum(forKey: $0)! } == tallies.withLock { $0 })
        #expect(!map.add(1, forKey: 99))
        #expect(map.values(forKey: 99) == nil)
        let signed = try PerCPUHashMap<UInt32, Int64>(maxEntries: 2, poolTag: uniqueTag())
        try signed.updateCurrentCPUValue(10, forKey: 1)
        #expect(signed.add(-15, forKey: 1))
        #expect(signed.sum(forKey: 1) == -5)
    }

    @Test(arguments: [("0-3", true), ("0", true), ("0-1\n", true), ("0,1,2", true), ("0,2-5", false),
                      ("1-3", false), ("0-3,8", false), ("", false), ("x", false)])
    func denseCPUListsAreRecognised(_ list: String, _ dense: Bool) {
        #expect(RawPerCPUArrayMap.cpuListIsDense(list) == dense)
    }
}
