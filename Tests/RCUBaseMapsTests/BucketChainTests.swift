#if canImport(Glibc)
import Glibc
#endif
import CRCUMapsShim
import RCUEpoch
import RCUBaseMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// `RawBucketHashMap` with every key in one chain of buckets (one first-level bucket), so
/// overflow buckets, slot retirement and reclamation are exercised on every operation.
@Suite("Bucket hash chains")
struct BucketChainTests {
    /// A 16-byte value (four slots per bucket, replaced by a new slot, not in place): the
    /// key and a version in both words, so a reader can tell whole values from torn ones.
    struct Pair: BitwiseCopyable, Equatable {
        var first: UInt64
        var second: UInt64
        init(_ word: UInt64) { first = word; second = word }
    }

    static func oneChain(maxEntries: Int, valueSize: Int = 16, tag: PoolTag = uniqueTag()) throws -> RawBucketHashMap {
        try RawBucketHashMap(MapDefinition(type: .hash, keySize: 8, valueSize: valueSize, maxEntries: maxEntries,
                                        hashImplementation: .bucketLocked, poolTag: tag),
                          observer: nil, bucketCount: 1)
    }

    /// Puts keys `1...slotsPerBucket` (values `Pair(key)`): the chain's first bucket is full.
    /// Returns the first key that does not fit.
    static func fillFirstBucket(_ map: RawBucketHashMap) throws -> UInt64 {
        let slots = UInt64(map.slotsPerBucket)
        for key in 1...slots { try map.put(key, Pair(key)) }
        #expect(map.overflowBucketCount == 0)
        return slots + 1
    }

    /// A one-chain map whose first bucket is full and whose key `late` sits alone in an
    /// overflow bucket; then every allocation under `tag` fails (the caller disarms it).
    static func overflowingChain(maxEntries: Int) throws -> (map: RawBucketHashMap, late: UInt64, tag: PoolTag) {
        let tag = uniqueTag()
        let map = try oneChain(maxEntries: maxEntries, tag: tag)
        let late = try fillFirstBucket(map)  // every slot of the first bucket is live
        try map.put(late, Pair(late))  // an overflow bucket
        #expect(map.overflowBucketCount == 1)
        _FaultInjection.failAllocations(tag: tag)
        return (map, late, tag)
    }

    /// Get-next-key of a cursor deleted from an overflow bucket long ago restarts the pass,
    /// as Linux does. Found by review, 2026-12-03: the overflow slot stayed marked retired
    /// until its reclaim batch (64 buckets) was submitted, so the key counted as "deleted
    /// during this pass" through any number of grace periods, and the pass ended (ENOENT).
    /// A writer liburcu does not know yet never registers under a chain lock: an overflow
    /// bucket it unlinks when the spare pool is full is freed by a work item on the
    /// grace-period driver. An epoch free there registered the thread at the fork gate with
    /// the lock held, while a fork waited for sections waiting for that lock (found by
    /// review, 2026-12-05). The pool fills while a reader holds grace periods back.
    @Test func aWriterFreesUnderAChainLockWithoutRegistering() throws {
        let tag = uniqueTag()
        let map = try Self.oneChain(maxEntries: 64, tag: tag)
        let first = try Self.fillFirstBucket(map)
        let liveWhileHeld = Atomic<Int>(0)
        let readerInside = Atomic<Bool>(false), readerGo = Atomic<Bool>(false)
        let registration = Atomic<UInt64>(.max)
        let keptAll = Atomic<Bool>(false)
        runOnThreads(2) { thread in
            if thread == 0 {
                Epoch.withSection { _ in
                    readerInside.store(true, ordering: .releasing)
                    while !readerGo.load(ordering: .acquiring) { usleep(200) }
                }
                return
            }
            while !readerInside.load(ordering: .acquiring) { usleep(200) }
            precondition(Epoch._registrationID == 0, "a fresh thread starts unregistered")
            let pool = map.spareOverflowBuckets.perStripe
            // Each round links an overflow bucket and unlinks it again: kept while the pool
            // has room (no generation completes under the reader), then freed.
            for _ in 0..<(pool + 3) {
                try? map.put(first, Pair(first))
                try? map.remove(first)
            }
            keptAll.store(map.spareOverflowBuckets.count >= pool, ordering: .relaxed)
            registration.store(Epoch._registrationID, ordering: .releasing)
            // The three buckets the pool refused are still allocated: a grace period is due.
            liveWhileHeld.store(EpochMemory.statistics(for: tag).liveAllocations, ordering: .relaxed)
            readerGo.store(true, ordering: .releasing)
        }
        let filled = keptAll.load(ordering: .relaxed)
        let registered = registration.load(ordering: .acquiring)
        #expect(filled, "the spare pool did not fill")
        #expect(registered == 0, "the writer registered")
        Epoch.barrier()  // the driver frees what the writer unlinked, after the grace period
        #expect(map.overflowBucketCount == 0)
        let freedLater = liveWhileHeld.load(ordering: .relaxed) - EpochMemory.statistics(for: tag).liveAllocations
        #expect(freedLater == 3, "buckets freed after the reader left: \(freedLater)")
    }

    @Test func aCursorDeletedFromAnOverflowBucketLongAgoRestartsThePass() throws {
        let map = try Self.oneChain(maxEntries: 8)
        let late = try Self.fillFirstBucket(map)
        try map.put(late, Pair(late))  // an overflow bucket
        try map.remove(late)
        for _ in 0..<3 { Epoch.synchronize() }  // long ago
        var next = UInt64(0)
        try withUnsafeBytes(of: late) { cursor in
            try withUnsafeMutableBytes(of: &next) { try map.nextKey(after: cursor, into: $0) }
        }
        #expect((1..<late).contains(next))
    }

    /// A new key in a full map is refused E2BIG before the chain grows, on the one-pass write
    /// (8-byte values: `update` and `insertIfAbsent`), as on the general one: no empty
    /// overflow bucket is left linked, and with no memory the answer is still E2BIG, as
    /// Linux's (which checks the count before it allocates). Found by review, 2026-12-05: the
    /// one-pass write filled a slot of a new bucket first and counted the key after, so each
    /// chain kept one empty bucket after a refusal (until the map was destroyed), and a
    /// refusal under memory pressure was ENOMEM.
    @Test func aFullMapRefusesANewKeyBeforeItsChainGrows() throws {
        let tag = uniqueTag()
        let probe = try Self.oneChain(maxEntries: 1, valueSize: 8)
        let capacity = 4 * probe.slotsPerBucket  // four whole buckets
        let map = try Self.oneChain(maxEntries: capacity, valueSize: 8, tag: tag)
        for key in 1...UInt64(capacity) { try map.put(key, key) }
        let buckets = map.overflowBucketCount
        #expect(buckets == 3)
        let fresh = UInt64(capacity + 1)
        #expect(throws: MapError.outOfSpace) { try map.put(fresh, fresh) }
        #expect(throws: MapError.outOfSpace) { try map.put(fresh, fresh, flags: .noExist) }
        #expect(map.overflowBucketCount == buckets)
        _FaultInjection.failAllocations(tag: tag)
        #expect(throws: MapError.outOfSpace) { try map.put(fresh, fresh) }
        #expect(throws: MapError.outOfSpace) { try map.put(fresh, fresh, flags: .noExist) }
        _FaultInjection.disarm(tag: tag)
        for key in 1...UInt64(capacity) { try map.remove(key) }
        #expect(map.count == 0)
        #expect(map.overflowBucketCount == 0)
    }

    /// A new key that was counted but found no memory for its chain's new bucket gives its
    /// unit of room back: once memory is back, the map still takes `maxEntries` keys.
    @Test func aNewKeyWithoutMemoryForItsBucketGivesItsRoomBack() throws {
        let tag = uniqueTag()
        let probe = try Self.oneChain(maxEntries: 1, valueSize: 8)
        let slots = probe.slotsPerBucket
        let map = try Self.oneChain(maxEntries: 2 * slots, valueSize: 8, tag: tag)
        for key in 1...UInt64(slots) { try map.put(key, key) }  // the first bucket is full
        _FaultInjection.failAllocations(tag: tag)
        for _ in 0..<(4 * slots) {
            #expect(throws: MapError.noMemory) { try map.put(UInt64(100), UInt64(100)) }
            #expect(throws: MapError.noMemory) { try map.put(UInt64(100), UInt64(100), flags: .noExist) }
        }
        _FaultInjection.disarm(tag: tag)
        #expect(map.count == slots)
        for key in UInt64(slots + 1)...UInt64(2 * slots) { try map.put(key, key) }
        #expect(map.count == 2 * slots)
        #expect(throws: MapError.outOfSpace) { try map.put(UInt64(1_000), UInt64(1)) }
    }

    /// Memory is needed only for an overflow bucket (and a reclaim work item): a full chain
    /// with no memory refuses new keys and replacements with ENOMEM, unchanged.
    @Test func aFullChainWithoutMemoryIsENOMEMAndUnchanged() throws {
        let tag = uniqueTag()
        let map = try Self.oneChain(maxEntries: 8, tag: tag)
        let late = try Self.fillFirstBucket(map)  // every slot of the first bucket is live
        let full = map.count
        _FaultInjection.failAllocations(tag: tag)
        defer { _FaultInjection.disarm(tag: tag) }
        #expect(throws: MapError.noMemory) { try map.put(late, Pair(late)) }
        #expect(throws: MapError.noMemory) { try map.put(UInt64(1), Pair(10)) }
        #expect(map.count == full)
        #expect(try map.get(UInt64(1), as: Pair.self) == Pair(1))
        #expect(throws: MapError.keyNotFound) { try map.get(late, as: Pair.self) }
        // Delete needs no memory.
        try map.remove(UInt64(2))
        #expect(map.count == full - 1)
        _FaultInjection.disarm(tag: tag)
        try map.put(late, Pair(late))
        try map.put(UInt64(1), Pair(10))
        #expect(try map.get(UInt64(1), as: Pair.self) == Pair(10))
        #expect(try map.get(late, as: Pair.self) == Pair(late))
    }

    @Test func aFullChainHoldsEveryKeyAndShrinksBackAfterDeletes() throws {
        let map = try Self.oneChain(maxEntries: 40)
        for key: UInt64 in 0..<40 { try map.put(key, Pair(key)) }
        let slots = map.slotsPerBucket
        #expect(map.overflowBucketCount >= (40 - slots + slots - 1) / slots)  // 40 keys in full buckets
        for key: UInt64 in 0..<40 { #expect(try map.get(key, as: Pair.self) == Pair(key)) }
        #expect(throws: MapError.outOfSpace) { try map.put(UInt64(40), Pair(40)) }
        for key: UInt64 in 0..<40 { try map.remove(key) }
        #expect(map.count == 0)
        // The delete that empties an overflow bucket unlinks it at once (it is freed after
        // a grace period). Until 2026-12-03 a reclaim batch unlinked it, after two barriers.
        #expect(map.overflowBucketCount == 0)
        for key: UInt64 in 100..<140 { try map.put(key, Pair(key)) }
        for key: UInt64 in 100..<140 { #expect(try map.get(key, as: Pair.self) == Pair(key)) }
    }

    @Test func retiredSlotsAreNotReusedWhileAReaderMayHoldThem() throws {
        let map = try Self.oneChain(maxEntries: 8)
        try map.put(UInt64(1), Pair(11))
        try Epoch.withSection { section in
            let held = try withUnsafeBytes(of: UInt64(1)) { try map.lookupInPlace(key: $0, in: section) }
            try map.remove(UInt64(1))
            // Fill the chain again while the section still holds key 1's retired slot.
            for key: UInt64 in 2..<9 { try map.put(key, Pair(key &* 10)) }
            #expect(held.load(as: Pair.self) == Pair(11))
        }
        for key: UInt64 in 2..<9 { #expect(try map.get(key, as: Pair.self) == Pair(key &* 10)) }
    }

    /// A slot retired in a first-level bucket is reused by the chain's writers once the
    /// reclaim generation posted after its unlinking has run (no reclaim work item visits
    /// it): new keys then take the retired slots instead of chaining an overflow bucket.
    /// The later deletes' stamp is 1 (item 1 was posted by the first), so they need item 2;
    /// one barrier waits for item 1 and then for item 2, which item 1 posts when it runs.
    /// (Before the stamp was read after the unlinking, reuse waited for item 3, and one
    /// barrier left the last fresh key chaining an overflow bucket.)
    @Test func retiredFirstLevelSlotsAreReusedAfterTheirGenerations() throws {
        let map = try Self.oneChain(maxEntries: 16)
        let late = try Self.fillFirstBucket(map)  // every slot of the first bucket is live
        try Epoch.withSection { section in
            // A section open since before the removes: the generation that frees their slots
            // cannot complete while it lasts (however fast grace periods come), so the
            // retired slots are not reused and one more key chains.
            for key in 1..<late { try map.remove(key) }
            try map.put(UInt64(100), Pair(100))
            #expect(map.overflowBucketCount == 1)
            try map.remove(UInt64(100))
            _ = section
        }
        Epoch.barrier()
        let fresh = Array(200..<(200 + late - 1))
        for key in fresh { try map.put(key, Pair(key)) }
        #expect(map.overflowBucketCount == 0)
        for key in fresh { #expect(try map.get(key, as: Pair.self) == Pair(key)) }
        // A key deleted a generation ago no longer counts as deleted during a pass.
        #expect(try map.allKeys(as: UInt64.self).sorted() == fresh)
    }

    /// A key replaced again and again in an overflow bucket reuses that bucket's retired
    /// slots once their generation has run, as a first-level bucket does: no replace
    /// allocates (allocations fail here). Until 2026-12-03 an overflow bucket's retired
    /// slots waited for a reclaim batch of 64 buckets (flushed by `Epoch.barrier()`, which
    /// this test does not call), so each replace of such a key chained a new overflow
    /// bucket: 16-byte values were replaced at 2 M a second. Generations alone now make
    /// the slots reusable.
    @Test func aKeyInAnOverflowBucketIsReplacedInPlaceOfItsRetiredSlots() throws {
        let (map, late, tag) = try Self.overflowingChain(maxEntries: 8)
        defer { _FaultInjection.disarm(tag: tag) }
        for version: UInt64 in 1...40 {
            map.waitForReclaimGenerations()
            try map.put(late, Pair(version))
            #expect(map.overflowBucketCount == 1)
            #expect(try map.get(late, as: Pair.self) == Pair(version))
        }
        #expect(try map.get(UInt64(1), as: Pair.self) == Pair(1))
        #expect(map.count == Int(late))
    }

    /// An emptied overflow bucket, unlinked at once, is kept and becomes the chain's next
    /// overflow bucket once the generation posted after its unlinking has run — not
    /// before, while a reader that may have walked into it is still in its section.
    /// Allocations fail throughout: the first overflow after the delete is ENOMEM, the
    /// second takes the spare. (Until 2026-12-03 each such bucket went back to the
    /// allocator through `call_rcu`, and the next overflow allocated a new one: one evicting
    /// insert in ten into a full LRU map.)
    @Test func anEmptiedOverflowBucketIsReusedOnceItsGenerationHasRun() throws {
        let (map, late, tag) = try Self.overflowingChain(maxEntries: 16)
        defer { _FaultInjection.disarm(tag: tag) }
        try Epoch.withSection { section in
            // A section open since before the delete: the generation the spare waits for
            // cannot complete while it lasts.
            try map.remove(late)
            #expect(map.overflowBucketCount == 0)
            #expect(map.spareOverflowBuckets.count == 1)
            #expect(throws: MapError.noMemory) { try map.put(late + 1, Pair(late + 1)) }
            _ = section
        }
        map.waitForReclaimGenerations()
        try map.put(late + 1, Pair(late + 1))
        #expect(map.overflowBucketCount == 1)
        #expect(map.spareOverflowBuckets.count == 0)
        #expect(try map.get(late + 1, as: Pair.self) == Pair(late + 1))
        #expect(throws: MapError.keyNotFound) { try map.get(late, as: Pair.self) }
        for key in 1..<late { #expect(try map.get(key, as: Pair.self) == Pair(key)) }
    }

    /// A reclaim generation queued while the grace-period driver's thread could not be
    /// started runs once the start can succeed and a later delete asks for a generation —
    /// also when an earlier request already asked for the next generation (each delete asks
    /// for the same generation then: the retry was made only by the request that raised
    /// the count wanted, so after one failed retry none came, and retired slots were never
    /// reusable again; docs/reliability.md row 282). Reads the counts without asking for
    /// generations, as `waitForReclaimGenerations()` would.
    @Test func aGenerationQueuedWhenTheDriverCouldNotStartRunsAfterALaterDelete() async {
        await #expect(processExitsWith: .success) {
            let map = try! BucketChainTests.oneChain(maxEntries: 16)
            for key: UInt64 in 1...4 { try! map.put(key, Pair(key)) }
            // (No barrier first: it would start the driver. Nothing before this has queued a
            // driver item in this process.)
            rcumaps_gp_test_fail_driver_starts(1)
            try! map.remove(UInt64(1))  // posts generation 1 on a driver that cannot start
            try! map.remove(UInt64(2))  // asks for generation 2 (a retry within 10 ms: not tried)
            rcumaps_gp_test_fail_driver_starts(0)
            usleep(20_000)  // a start is tried again 10 ms after a failure at the earliest
            try! map.remove(UInt64(3))  // asks for generation 2 again
            let deadline = ContinuousClock.now + .seconds(10)
            while map.reclaimGenerations.completed < 1, ContinuousClock.now < deadline { usleep(1_000) }
            exit(map.reclaimGenerations.completed >= 1 ? 0 : 1)
        }
    }

    /// The spares are bounded: a chain of many overflow buckets emptied at once keeps at
    /// most a stripe's share and frees the rest, and the map's next keys reuse them.
    @Test func sparesAreBoundedAndReused() throws {
        let map = try Self.oneChain(maxEntries: 200)
        for key: UInt64 in 0..<200 { try map.put(key, Pair(key)) }
        let overflowing = map.overflowBucketCount
        let (_, perStripe) = map.spareOverflowBuckets
        #expect(overflowing > perStripe)
        for key: UInt64 in 0..<200 { try map.remove(key) }
        #expect(map.overflowBucketCount == 0)
        #expect(map.spareOverflowBuckets.count == perStripe)  // one thread: one stripe
        map.waitForReclaimGenerations()
        for key: UInt64 in 1000..<1200 { try map.put(key, Pair(key)) }
        #expect(map.spareOverflowBuckets.count == 0)
        for key: UInt64 in 1000..<1200 { #expect(try map.get(key, as: Pair.self) == Pair(key)) }
    }

    /// The reuse rule on its numbers: a slot retired while `P` generation items had been
    /// posted (the count read after its unlinking) is reusable once item `P + 1` has run,
    /// not before, also across the stamps' wrap at 127 and long after its stamp. Whether one
    /// generation is enough for readers that saw the slot live is what
    /// ``heldPointersKeepTheirKeysBytesUnderChurn()`` checks.
    @Test(arguments: [0, 5, 126, 127, 1000] as [UInt64])
    func aRetiredSlotIsReusableAfterTheNextGeneration(retiredAt: UInt64) {
        for posted in retiredAt...(retiredAt + 3) {
            #expect(!RawBucketHashMap.retiredSlotIsReusable(retiredAt: retiredAt, posted: posted, completed: retiredAt))
            #expect(RawBucketHashMap.retiredSlotIsReusable(retiredAt: retiredAt, posted: posted, completed: retiredAt + 1),
                    "posted \(posted)")
        }
        // 126 generations later the stamp still reads as its own count.
        #expect(RawBucketHashMap.retiredSlotIsReusable(retiredAt: retiredAt, posted: retiredAt + 126,
                                                       completed: retiredAt + 125))
    }

    /// The reuse rule against its definition, over every stamp a count can leave: a slot
    /// retired at count P is reusable exactly when `completed` > P, as long as fewer than
    /// 127 items have been posted since (its stamp then reads as its own count).
    @Test func theReuseRuleIsItsDefinitionForEveryRecentRetirement() {
        var mismatches: [String] = []
        for retiredAt in UInt64(0)..<300 {
            for posted in retiredAt...(retiredAt + 126) {
                for completed in (posted >= 130 ? posted - 130 : 0)...posted {
                    let reusable = RawBucketHashMap.retiredSlotIsReusable(retiredAt: retiredAt, posted: posted,
                                                                          completed: completed)
                    if reusable != (completed > retiredAt), mismatches.count < 5 {
                        mismatches.append("retired at \(retiredAt), posted \(posted), completed \(completed)")
                    }
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    /// The one-step free-slot test against the slot-by-slot definition (tag byte 0 and
    /// retired bit clear), on control words whose slot bytes are free, stamped (1...127) or
    /// live (0x80...0xFF), with random retired, scheduled and referenced bits.
    @Test(arguments: [2, 3, 6])
    func theFirstFreeSlotIsTheLowestEmptyUnretiredOne(slotsPerBucket: Int) {
        var random = XorShift(seed: UInt64(slotsPerBucket))
        var mismatches: [String] = []
        for _ in 0..<200_000 {
            var control: UInt64 = 0
            for slot in 0..<slotsPerBucket {
                let byte: UInt64 = switch random.next() % 4 {
                case 0, 1: 0
                case 2: 1 + random.next() % 127
                default: 0x80 | random.next() % 128
                }
                control |= byte << UInt64(8 * slot)
            }
            control |= (random.next() & 0x1FF) << 48  // retired bits (and three unused ones)
            control |= (random.next() & 0x7F) << 57  // referenced bits
            let expected = (0..<slotsPerBucket).first { slot in
                (control >> UInt64(8 * slot)) & 0xFF == 0 && control & (1 << (48 + UInt64(slot))) == 0
            }
            let found = RawBucketHashMap.firstFreeSlot(control: control, slotsPerBucket: slotsPerBucket)
            if found != expected, mismatches.count < 5 {
                mismatches.append(String(control, radix: 16) + ": \(String(describing: found)) for \(String(describing: expected))")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    /// Readers hold helper-mode pointers into a few chains while writers delete, insert
    /// and replace (16-byte values: every replace takes a new slot) the same keys as fast
    /// as they can: a retired slot must not be written again while a section that may hold
    /// it lasts, so the bytes behind a pointer stay its key's until the section ends.
    @Test func heldPointersKeepTheirKeysBytesUnderChurn() throws {
        let map = try RawBucketHashMap(
            MapDefinition(type: .hash, keySize: 8, valueSize: 16, maxEntries: 32, hashImplementation: .bucketLocked,
                          poolTag: uniqueTag()),
            observer: nil, bucketCount: 2)
        let keys: [UInt64] = Array(0..<12)
        let failures = Failures()
        let deadline = Deadline(after: stressDuration)
        runOnThreads(4) { thread in
            var random = XorShift(seed: UInt64(thread + 1))
            while !deadline.hasPassed {
                let key = keys[Int(random.next() % UInt64(keys.count))]
                if thread < 2 {
                    // Writers: delete, insert or replace, always with the key's own pair.
                    switch random.next() % 3 {
                    case 0: try? map.remove(key)
                    case 1: try? map.put(key, Pair(key), flags: .noExist)
                    default: try? map.put(key, Pair(key), flags: .exist)
                    }
                    continue
                }
                // Readers: hold a pointer for a while, re-reading it.
                Epoch.withSection { section in
                    guard let held = try? withUnsafeBytes(of: key, { try map.lookupInPlace(key: $0, in: section) }) else {
                        return
                    }
                    for _ in 0..<200 {
                        let value = held.load(as: Pair.self)
                        if value != Pair(key) {
                            failures.record("key \(key): held bytes became \(value) within the section")
                            return
                        }
                    }
                }
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all.prefix(5))")
    }

    /// Replacing a key that lives late in the chain while earlier slots free up: a reader
    /// must always find the key (the new pair is never placed ahead of the old one).
    @Test func readersNeverMissAKeyBeingReplaced() throws {
        let map = try Self.oneChain(maxEntries: 24)
        let stable: [UInt64] = Array(0..<8)
        let churn: [UInt64] = Array(100..<116)
        for key in churn { try map.put(key, Pair(key)) }  // occupy the front of the chain
        for key in stable { try map.put(key, Pair(key << 32)) }  // the stable keys sit behind them
        let failures = Failures()
        let deadline = Deadline(after: stressDuration)
        runOnThreads(4) { thread in
            var version: UInt64 = 1
            var random = XorShift(seed: UInt64(thread + 7))
            while !deadline.hasPassed {
                switch thread {
                case 0:
                    // Replace stable keys.
                    let key = stable[Int(random.next() % UInt64(stable.count))]
                    version &+= 1
                    do { try map.put(key, Pair(key << 32 | (version & 0xFFFF_FFFF)), flags: .exist) } catch {
                        failures.record("replace of \(key) failed: \(error)")
                    }
                case 1:
                    // Free and refill slots in front of them.
                    let key = churn[Int(random.next() % UInt64(churn.count))]
                    if (try? map.remove(key)) == nil { try? map.put(key, Pair(key), flags: .noExist) }
                default:
                    for key in stable {
                        guard let value = try? map.get(key, as: Pair.self) else {
                            failures.record("lookup of \(key) missed")
                            continue
                        }
                        if value.first != value.second || value.first >> 32 != key {
                            failures.record("lookup of \(key) returned \(value)")
                        }
                    }
                }
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all.prefix(5))")
        #expect(map.count == stable.count + (try map.allKeys(as: UInt64.self).filter { $0 >= 100 }.count))
    }

    @Test func oneWordValuesAreReplacedInPlace() throws {
        let map = try Self.oneChain(maxEntries: 4, valueSize: 8)
        try map.put(UInt64(5), UInt64(50))
        try Epoch.withSection { section in
            let held = try withUnsafeBytes(of: UInt64(5)) { try map.lookupInPlace(key: $0, in: section) }
            try map.put(UInt64(5), UInt64(51))
            // The helper-mode pointer reads the live word.
            #expect(held.load(as: UInt64.self) == 51)
        }
        #expect(map.overflowBucketCount == 0)
    }
}

#if DEBUG
/// A plain update of a value of 8 bytes with a lock word replaces it by a new pair (row 211)
/// and copies the old value out of its retired slot after the chain's lock: inside a
/// section, so that the slot is not reused under the copy. (The section was held only for
/// values over 8 bytes: between the lock and the copy, a grace period could pass and another
/// write of the chain reuse the slot, and `exchange` returned that write's value; found by
/// review, 2026-12-06.) The hook runs between the two, and another thread waits for a grace
/// period and fills the chain meanwhile: with the section held, its wait outlasts the hook's
/// (half a second), and the copy is the old value.
@Suite("Bucket hash: a replaced lock-word value copied out")
struct LockWordReplaceCopyTests {
    @Test func theDisplacedValueIsTheOldOne() throws {
        let map = try RawBucketHashMap(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 64,
                                                     hashImplementation: .bucketLocked, poolTag: uniqueTag(), lockOffset: 0),
                                       observer: nil, bucketCount: 1)
        try map.put(UInt64(1), UInt64(1) << 32)
        final class Flags: Sendable {
            let inHook = Atomic<Bool>(false)
            let filled = Atomic<Bool>(false)
        }
        let flags = Flags()
        map.afterReplacingByANewPair = {
            flags.inHook.store(true, ordering: .releasing)
            let deadline = ContinuousClock.now + .milliseconds(500)
            while !flags.filled.load(ordering: .acquiring), ContinuousClock.now < deadline { usleep(1_000) }
        }
        let displaced = Mutex<UInt64?>(nil)
        runOnThreads(2) { thread in
            if thread == 0 {
                var old: UInt64 = 0
                let done: Void? = try? withUnsafeBytes(of: UInt64(1)) { key in
                    try withUnsafeBytes(of: UInt64(2) << 32) { value in
                        try withUnsafeMutableBytes(of: &old) { out in
                            _ = try map.exchange(key: key, value: value, flags: .any, into: out)
                        }
                    }
                }
                if done != nil { displaced.withLock { $0 = old } }
            } else {
                while !flags.inHook.load(ordering: .acquiring) { usleep(100) }
                // A generation later the retired slot may be reused: fill the chain.
                Epoch.barrier()
                for key in UInt64(100)..<UInt64(110) { try? map.put(key, UInt64(0xBBBB) << 32) }
                flags.filled.store(true, ordering: .releasing)
            }
        }
        map.afterReplacingByANewPair = nil
        #expect(displaced.withLock { $0 } == UInt64(1) << 32)
        #expect(try map.get(UInt64(1), as: UInt64.self) == UInt64(2) << 32)
    }
}
#endif
