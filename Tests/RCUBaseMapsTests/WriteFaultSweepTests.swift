import Foundation
@testable import RCUBaseMaps
import RCUEpoch
import RCUMapsTestSupport
import Synchronization
import Testing

/// Random writes to small, full maps with every allocation point failed in turn: a write
/// that fails with ENOMEM leaves the map exactly as it was — no entry evicted, no unit of
/// capacity in flight — and so does any other refusal. Two reader situations alternate:
/// a reader on another thread holding a section (retired slots wait, chains must grow), and
/// none.
@Suite("Writes under failing allocations")
struct WriteFaultSweepTests {
    /// A reader thread that holds an epoch section between `hold()` and `release()`.
    final class SectionHolder: @unchecked Sendable {
        private let entered = DispatchSemaphore(value: 0)
        private let released = DispatchSemaphore(value: 0)
        func hold() {
            Thread { [self] in
                Epoch.withSection { _ in
                    entered.signal()
                    released.wait()
                }
            }.start()
            entered.wait()
        }
        func release() { released.signal() }
    }

    /// What ``sweepRandomWrites(rounds:steps:keys:seed:maxEntries:bucketMap:snapshot:write:)`` saw.
    struct SweepCounts {
        /// Writes of a new key into a full map that went in (evicting, for an LRU map).
        var writesIntoAFullMap = 0
        /// Of those writes' attempts, the ones that failed with ENOMEM.
        var failuresIntoAFullMap = 0
        /// Attempts that failed with ENOMEM, all writes.
        var failures = 0
    }

    /// Runs `rounds × steps` random writes (`write(key, kind, version)`; keys below
    /// `keys`, kinds below 4), each first with its first allocation failing, then its second, …
    /// until one attempt is not ENOMEM, and checks every refused attempt left `snapshot()`
    /// as it was and, for a bucket-locked `bucketMap`, no unit of capacity in flight.
    func sweepRandomWrites(rounds: Int = 4, steps: Int = 60, keys: UInt64 = 40, seed: UInt64, maxEntries: Int,
                           bucketMap: RawBucketHashMap?,
                           snapshot: () throws -> [[UInt8]: [UInt8]],
                           write: (UInt64, UInt64, UInt64) throws -> Void) throws -> SweepCounts {
        var random = XorShift(seed: seed)
        var counts = SweepCounts()
        let holder = SectionHolder()
        for round in 0..<rounds {
            let holding = round % 2 == 0
            if holding { holder.hold() }
            for step in 0..<steps {
                let key = random.next() % keys, kind = random.next() % 4, version = random.next()
                let before = try snapshot()
                let fullAndNew = before.count == maxEntries && before[withUnsafeBytes(of: key) { Array($0) }] == nil
                var failing = 0
                while true {
                    let context = "seed \(seed), round \(round), step \(step), key \(key), kind \(kind), failing allocation \(failing)"
                    let attempt = _FaultInjection.failingOneAllocation(after: failing) { () -> (any Error)? in
                        do { try write(key, kind, version) } catch { return error }
                        return nil
                    }
                    guard let error = attempt.result else {
                        if fullAndNew { counts.writesIntoAFullMap += 1 }
                        #expect(try snapshot().count <= maxEntries, "\(context)")
                        break
                    }
                    // A refusal, or ENOMEM: nothing changed, nothing left in flight.
                    #expect(try snapshot() == before, "\(error) changed the map: \(context)")
                    #expect(bucketMap?.capacityChangesInFlight ?? 0 == 0, "\(context)")
                    guard error as? MapError == .noMemory else { break }
                    #expect(attempt.injected, "ENOMEM with no failure injected: \(context)")
                    counts.failures += 1
                    if fullAndNew { counts.failuresIntoAFullMap += 1 }
                    failing += 1
                }
            }
            if holding {
                holder.release()
                if let bucketMap { bucketMap.waitForReclaimGenerations() } else { Epoch.synchronize() }
            }
        }
        #expect(bucketMap?.capacityChangesInFlight ?? 0 == 0)
        return counts
    }

    /// The fourth kind of write of ``write(to:key:kind:version:fourth:)``.
    enum FourthWrite { case noExistUpdate, delete }

    /// One random write of an 8-byte key: kind 0 `insertIfAbsent` (EEXIST if present), 1
    /// `update` with `BPF_ANY`, 2 `exchange`, 3 `fourth`; the value's bytes follow from the
    /// key and `version`.
    func write(to map: any RawMap, key: UInt64, kind: UInt64, version: UInt64, fourth: FourthWrite) throws {
        let valueSize = map.definition.valueSize
        let bytes = (0..<valueSize).map { UInt8(truncatingIfNeeded: key &* 31 &+ version &+ UInt64($0)) }
        try withUnsafeBytes(of: key) { k in
            try bytes.withUnsafeBytes { v in
                switch kind {
                case 0: if try !map.insertIfAbsent(key: k, value: v) { throw MapError.alreadyExists }
                case 1: try map.update(key: k, value: v, flags: .any)
                case 2:
                    var old = [UInt8](repeating: 0, count: valueSize)
                    _ = try old.withUnsafeMutableBytes { try map.exchange(key: k, value: v, flags: .any, into: $0) }
                default:
                    switch fourth {
                    case .noExistUpdate: try map.update(key: k, value: v, flags: .noExist)
                    case .delete: try map.delete(key: k)
                    }
                }
            }
        }
    }

    struct Shape: Sendable, CustomTestStringConvertible {
        var valueSize: Int
        var bucketCount: Int
        var flags: MapCreationFlags
        var testDescription: String { "\(valueSize)-byte values, \(bucketCount) chains\(flags.isEmpty ? "" : ", per-CPU lists")" }
    }

    static let shapes = [
        Shape(valueSize: 8, bucketCount: 1, flags: []),
        Shape(valueSize: 8, bucketCount: 4, flags: []),
        Shape(valueSize: 40, bucketCount: 1, flags: []),
        Shape(valueSize: 40, bucketCount: 3, flags: []),
        Shape(valueSize: 16, bucketCount: 4, flags: .noCommonLRU),
    ]

    /// LRU_HASH: every evicting path (the one-pass insert, the general update under the
    /// chain's lock and with no lock held, exchanges). Fails on the code before the fix of
    /// docs/reliability.md row 70 (ENOMEM with the victim gone).
    @Test(arguments: shapes)
    func aFailedLRUWriteEvictsNoOne(_ shape: Shape) throws {
        let definition = MapDefinition(type: .lruHash, keySize: 8, valueSize: shape.valueSize, maxEntries: 6,
                                       flags: shape.flags, poolTag: uniqueTag())
        let map = try RawBucketHashMap(definition, observer: nil, bucketCount: shape.bucketCount)
        var seeds = SystemRandomNumberGenerator()
        let counts = try sweepRandomWrites(seed: seeds.next(), maxEntries: map.definition.maxEntries, bucketMap: map,
                                           snapshot: { try RCUMapsTestSupport.snapshot(of: map) }) { key, kind, version in
            try write(to: map, key: key, kind: kind, version: version, fourth: .noExistUpdate)
        }
        // The sweep reached the evicting paths and their failures (in 15 runs of the five
        // shapes: 183 to 212 evicting writes, 11 to 117 failed ones).
        #expect(counts.writesIntoAFullMap >= 100)
        #expect(counts.failuresIntoAFullMap >= 5)
    }

    /// PERCPU_HASH and LRU_PERCPU_HASH, user mode: updates and exchanges publish a new slot
    /// with every CPU's values (12 bytes each, padded to 16), deletes retire one.
    @Test(arguments: [MapType.perCPUHash, .lruPerCPUHash])
    func aFailedPerCPUWriteChangesNothing(_ type: MapType) throws {
        let map = try RawPerCPUHashMap(MapDefinition(type: type, keySize: 8, valueSize: 12, maxEntries: 6,
                                                     poolTag: uniqueTag()))
        let width = map.userValueSize
        var seeds = SystemRandomNumberGenerator()
        // Few keys, so that most writes replace (a new slot each, which waits while the
        // reader holds its section) and chains grow.
        let counts = try sweepRandomWrites(steps: 120, keys: type == .perCPUHash ? 8 : 40, seed: seeds.next(),
                                           maxEntries: map.definition.maxEntries, bucketMap: map.storage,
                                           snapshot: { try RCUMapsTestSupport.snapshot(of: map, valueBytes: width) }) { key, kind, version in
            // Each CPU's 12 bytes, then 4 bytes of padding.
            let bytes = (0..<width).map { $0 % 16 < 12 ? UInt8(truncatingIfNeeded: key &* 7 &+ version &+ UInt64($0)) : 0 }
            try withUnsafeBytes(of: key) { k in
                try bytes.withUnsafeBytes { v in
                    switch kind {
                    case 0: try map.update(key: k, value: v, flags: .noExist)
                    case 1: try map.update(key: k, value: v, flags: .any)
                    case 2:
                        var old = [UInt8](repeating: 0, count: width)
                        _ = try old.withUnsafeMutableBytes { try map.exchange(key: k, value: v, flags: .any, into: $0) }
                    default: try map.delete(key: k)
                    }
                }
            }
        }
        // ENOMEM was reached (PERCPU_HASH: 3 to 10 failed attempts in 13 runs of 240 writes,
        // so 480 here).
        #expect(counts.failures >= 2)
        // A new key of a full PERCPU_HASH is refused E2BIG, never ENOMEM.
        if type == .perCPUHash { #expect(counts.failuresIntoAFullMap == 0) }
        if type == .lruPerCPUHash {
            #expect(counts.writesIntoAFullMap >= 20)
            #expect(counts.failuresIntoAFullMap >= 1)
        }
    }

    struct HashCase: Sendable, CustomTestStringConvertible {
        var implementation: HashImplementation
        var valueSize: Int
        var testDescription: String { "\(implementation), \(valueSize)-byte values" }
    }

    /// HASH, both implementations: a full map refuses new keys (E2BIG, unchanged); replaces
    /// and inserts after deletes allocate (new slots while a reader holds its section,
    /// lock-free entries).
    @Test(arguments: [HashCase(implementation: .bucketLocked, valueSize: 8),
                      HashCase(implementation: .bucketLocked, valueSize: 40),
                      HashCase(implementation: .lockFree, valueSize: 8),
                      HashCase(implementation: .lockFree, valueSize: 40)])
    func aFailedHashWriteChangesNothing(_ hash: HashCase) throws {
        let definition = MapDefinition(type: .hash, keySize: 8, valueSize: hash.valueSize, maxEntries: 6,
                                       hashImplementation: hash.implementation, poolTag: uniqueTag())
        let map = try MapRegistry.create(definition)
        var seeds = SystemRandomNumberGenerator()
        let counts = try sweepRandomWrites(steps: 120, keys: 10, seed: seeds.next(), maxEntries: 6,
                                           bucketMap: map as? RawBucketHashMap,
                                           snapshot: { try RCUMapsTestSupport.snapshot(of: map) }) { key, kind, version in
            try write(to: map, key: key, kind: kind, version: version, fourth: .delete)
        }
        // A new key of a full map is refused E2BIG before anything is allocated, as on
        // Linux: never ENOMEM (the lock-free hash answered ENOMEM before 2026-12-05).
        #expect(counts.failuresIntoAFullMap == 0)
        // ENOMEM was reached (bucket-locked, 40-byte values: 10 to 15 failed attempts in
        // three runs; lock-free: 140 to 321; bucket-locked 8-byte values replace in place
        // and allocate nothing here).
        if hash.implementation == .lockFree || hash.valueSize > 8 { #expect(counts.failures >= 2) }
    }

    /// With no memory at all, each write gets the answer Linux gives it before allocating:
    /// ENOENT for `BPF_EXIST` on an absent key, E2BIG for a new key of a full map, EEXIST
    /// for `BPF_NOEXIST` on a present key; only a write that needs memory (a replace, a new
    /// key with room) answers ENOMEM. Both hash implementations, one-word and wider values.
    @Test(arguments: [HashCase(implementation: .bucketLocked, valueSize: 8),
                      HashCase(implementation: .bucketLocked, valueSize: 40),
                      HashCase(implementation: .lockFree, valueSize: 8),
                      HashCase(implementation: .lockFree, valueSize: 40)])
    func aHashWriteWithoutMemoryAnswersAsLinux(_ hash: HashCase) throws {
        let tag = uniqueTag()
        let map = try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: hash.valueSize, maxEntries: 4,
                                                       hashImplementation: hash.implementation, poolTag: tag))
        let value = [UInt8](repeating: 7, count: hash.valueSize)
        func write(_ key: UInt64, _ flags: MapUpdateFlags) throws {
            try withUnsafeBytes(of: key) { k in try value.withUnsafeBytes { try map.update(key: k, value: $0, flags: flags) } }
        }
        for key in UInt64(1)...3 { try write(key, .any) }
        _FaultInjection.failAllocations(tag: tag)
        defer { _FaultInjection.disarm(tag: tag) }
        #expect(throws: MapError.keyNotFound) { try write(9, .exist) }
        #expect(throws: MapError.alreadyExists) { try write(1, .noExist) }
        if hash.implementation == .lockFree {
            // Room for a new key, no memory for its entry; a replace of a value over 8 bytes
            // needs a new entry (one of 8 bytes is stored in place).
            #expect(throws: MapError.noMemory) { try write(9, .any) }
            #expect(throws: MapError.noMemory) { try write(9, .noExist) }
            if hash.valueSize > 8 { #expect(throws: MapError.noMemory) { try write(1, .any) } }
        }
        _FaultInjection.disarm(tag: tag)
        try write(4, .any)
        _FaultInjection.failAllocations(tag: tag)
        // Full: a new key is refused before anything is allocated.
        #expect(throws: MapError.outOfSpace) { try write(9, .any) }
        #expect(throws: MapError.outOfSpace) { try write(9, .noExist) }
        #expect(throws: MapError.keyNotFound) { try write(9, .exist) }
        #expect(try RCUMapsTestSupport.snapshot(of: map).count == 4)
    }

    /// Runs `write` with its entry's allocation failing, after another thread has run
    /// `insert` (once, just before that allocation): the window between a write's look for
    /// its key and its allocation. Answers the write's error (nil: it succeeded) and whether
    /// the failure was injected.
    static func writeWithoutMemoryWhileKeyTurnsUp(_ map: RawLockFreeHashMap, insert: @escaping @Sendable () -> Void,
                                                  write: () throws -> Void) -> (MapError?, Bool) {
        let fired = Atomic<Bool>(false)
        map.beforeAllocatingForWrite = {
            guard !fired.exchange(true, ordering: .relaxed) else { return }
            let inserted = DispatchSemaphore(value: 0)
            Thread {
                insert()
                inserted.signal()
            }.start()
            inserted.wait()
        }
        defer { map.beforeAllocatingForWrite = nil }  // it holds the map: a cycle otherwise (a leak)
        return _FaultInjection.failingOneAllocation(after: 0) { () -> MapError? in
            do { try write(); return nil } catch let error as MapError { return error } catch { return .invalidArgument }
        }
    }

    /// A lock-free HASH `BPF_NOEXIST` write finds its key absent, another thread inserts
    /// it, and the write's allocation fails: EEXIST, as Linux answers (its flags are checked
    /// under the bucket lock before it allocates), not ENOMEM (found by review, 2026-12-05).
    @Test func aNoExistWriteWhoseKeyTurnsUpAnswersEEXISTWithoutMemory() throws {
        let map = try #require(try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 8,
                                                                    hashImplementation: .lockFree, poolTag: uniqueTag()))
            as? RawLockFreeHashMap)
        try map.put(UInt64(1), UInt64(1))  // the map's first allocations made
        let key = UInt64(42)
        let (outcome, injected) = Self.writeWithoutMemoryWhileKeyTurnsUp(
            map, insert: { try? map.put(key, UInt64(7), flags: .noExist) },
            write: { try map.put(key, UInt64(9), flags: .noExist) })
        #expect(injected)
        #expect(outcome == .alreadyExists)
        #expect(try map.get(key, as: UInt64.self) == 7)
        #expect(map.count == 2)
    }

    /// A `BPF_ANY` write that finds its key absent, then cannot allocate the new entry while
    /// another thread inserts that key, writes in place: it needs no entry any more. (It
    /// answered ENOMEM, which Linux never answers for an existing element: found by review,
    /// 2026-12-05.) Both paths: a value written in place (8 bytes) and `BPF_F_LOCK` on a
    /// value with a lock word.
    @Test(arguments: [false, true])
    func anAnyWriteWhoseKeyTurnsUpWritesInPlaceWithoutMemory(locked: Bool) throws {
        let valueSize = locked ? 16 : 8
        let map = try #require(try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: valueSize, maxEntries: 8,
                                                                    hashImplementation: .lockFree, poolTag: uniqueTag(),
                                                                    lockOffset: locked ? 0 : nil))
            as? RawLockFreeHashMap)
        @Sendable func value(_ number: UInt64) -> [UInt64] { locked ? [0, number] : [number] }
        @Sendable func put(_ key: UInt64, _ number: UInt64, flags: MapUpdateFlags) throws {
            try withUnsafeBytes(of: key) { k in try value(number).withUnsafeBytes { try map.update(key: k, value: $0, flags: flags) } }
        }
        try put(1, 1, flags: .any)  // the map's first allocations made
        let key = UInt64(42)
        let (outcome, injected) = Self.writeWithoutMemoryWhileKeyTurnsUp(
            map, insert: { try? put(key, 7, flags: .noExist) }, write: { try put(key, 9, flags: locked ? .lock : .any) })
        #expect(injected)
        #expect(outcome == nil, "\(outcome.map { "\($0)" } ?? "")")
        var stored = [UInt64](repeating: 0, count: valueSize / 8)
        try withUnsafeBytes(of: key) { k in try stored.withUnsafeMutableBytes { try map.lookup(key: k, into: $0) } }
        #expect(stored.last == 9)
        #expect(map.count == 2)
    }

    /// The same window on the lock-free HASH's second allocation: a write of an 8-byte pair
    /// needs an entry slot, and the slot needs a new chunk of slots, which cannot be made,
    /// after another thread inserted the key (taking the last slot of the chunk there is).
    /// NOEXIST answers EEXIST and ANY stores into the key's entry; both answered ENOMEM
    /// (found by review, 2026-12-05, sixteenth session).
    @Test(arguments: [MapUpdateFlags.noExist, .any])
    func aWriteWhoseKeyTurnsUpNeedsNoNewSlotChunk(flags: MapUpdateFlags) throws {
        // 4,100 entries (and the margin): slot chunks of 4,096; the first is filled up to
        // its last slot, which the other thread's insert takes.
        let map = try #require(try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 4_100,
                                                                    hashImplementation: .lockFree, poolTag: uniqueTag()))
            as? RawLockFreeHashMap)
        let slots = try #require(map.slots)
        for key in UInt64(0)..<4_095 { try map.put(key, key) }
        let key = UInt64(1_000_000)
        let fired = Atomic<Bool>(false)
        map.beforeAllocatingForWrite = {
            guard !fired.exchange(true, ordering: .relaxed) else { return }
            let inserted = DispatchSemaphore(value: 0)
            Thread {
                try? map.put(key, UInt64(7), flags: .noExist)
                inserted.signal()
            }.start()
            inserted.wait()
            slots.refusesNewChunks.store(true, ordering: .relaxed)
        }
        defer { map.beforeAllocatingForWrite = nil }  // it holds the map: a cycle otherwise (a leak)
        var outcome: MapError?
        do { try map.put(key, UInt64(9), flags: flags) } catch let error as MapError { outcome = error }
        let hookRan = fired.load(ordering: .relaxed)
        #expect(hookRan)
        #expect(outcome == (flags == .noExist ? .alreadyExists : nil))
        #expect(try map.get(key, as: UInt64.self) == (flags == .noExist ? 7 : 9))
        #expect(map.count == 4_096)
        // With no chunk to be had and the key absent, a new key is still ENOMEM.
        #expect(throws: MapError.noMemory) { try map.put(UInt64(2_000_000), UInt64(1), flags: flags) }
        slots.refusesNewChunks.store(false, ordering: .relaxed)
        try map.put(UInt64(2_000_000), UInt64(1), flags: flags)
    }

    /// LPM_TRIE (IPv4 keys): an insert allocates its entry and, in the writer's tree,
    /// nodes; a delete rebuilds nodes too. Random prefixes of a few addresses, so that
    /// inserts split and deletes merge nodes.
    @Test func aFailedLPMWriteChangesNothing() throws {
        let map = try MapRegistry.create(MapDefinition(type: .lpmTrie, keySize: 8, valueSize: 8, maxEntries: 6,
                                                       flags: .noPrealloc, poolTag: uniqueTag()))
        var seeds = SystemRandomNumberGenerator()
        let counts = try sweepRandomWrites(steps: 120, keys: 64, seed: seeds.next(), maxEntries: 6, bucketMap: nil,
                                           snapshot: { try RCUMapsTestSupport.snapshot(of: map) }) { key, kind, version in
            // 8 prefix lengths of 8 addresses (10.0.0.0/8 … 10.7.x.x): nested and sibling
            // prefixes (the host bits past a prefix stay in the key as written).
            let prefixLength = UInt32([0, 8, 12, 16, 20, 24, 28, 32][Int(key % 8)])
            let address: [UInt8] = [10, UInt8(key / 8), UInt8(truncatingIfNeeded: key &* 37), 1]
            let bytes = withUnsafeBytes(of: prefixLength.littleEndian) { Array($0) } + address
            try bytes.withUnsafeBytes { k in
                try withUnsafeBytes(of: version) { v in
                    switch kind {
                    case 0: try map.update(key: k, value: v, flags: .noExist)
                    case 1: try map.update(key: k, value: v, flags: .any)
                    case 2: try map.update(key: k, value: v, flags: .exist)
                    default: try map.delete(key: k)
                    }
                }
            }
        }
        // ENOMEM was reached (445 to 457 failed attempts in four runs). The sweep's "new key"
        // counts do not apply: the map keeps a key's bytes as written, and the test's keys
        // carry host bits past their prefixes.
        #expect(counts.failures >= 2)
    }
}
