@testable import RCUMaps
import RCUMapsTestSupport
import Foundation
import Synchronization
import Testing

/// A value of two words: an `RCUDictionary` keeps it in a node (``RCUDictionary/SlotLayout/node``).
struct TwoWords: Equatable, Sendable {
    var count: UInt64
    var check: UInt64
}

/// `minimumCapacity` is a floor for the bucket array (found by review, 2026-12-03: the first
/// write shrank a table sized for 100,000 entries back to one chain per stripe, and filling it
/// then rehashed about twelve times).
@Suite("RCUDictionary capacity")
struct RCUDictionaryCapacityTests {
    /// A key whose `hashValue` the test filters: only those in one stripe are used.
    struct Crowded: Hashable, Sendable { var id: Int }

    /// Keys whose hashes all fall in one stripe, growing it far over its share while the
    /// table is not over its size: the writes count every stripe's entries to decide on a
    /// resize once in several writes, not on each (found by review, 2026-12-04: every write
    /// of the crowded stripe summed all stripes' counts and found nothing to do). Shrinking
    /// back (the stripe then under its share) is amortised the same way; every key stays
    /// readable.
    @Test func aCrowdedStripeDoesNotCountEveryStripeOnEachWrite() {
        let dictionary = RCUDictionary<Crowded, Int>()
        let keys = (0..<200_000).lazy.map(Crowded.init).filter { $0.hashValue & dictionary.stripeMask == 0 }.prefix(4_000)
        for key in keys { dictionary[key] = key.id }
        let growing = dictionary.resizeChecks.load(ordering: .relaxed)
        #expect(dictionary.count == 4_000)
        #expect(growing < 4_000 / 4, "\(growing) resize checks for 4,000 writes")
        for key in keys { #expect(dictionary[key] == key.id) }
        for key in keys { dictionary.removeValue(forKey: key) }
        let shrinking = dictionary.resizeChecks.load(ordering: .relaxed) - growing
        #expect(dictionary.count == 0)
        #expect(shrinking < 4_000 / 4, "\(shrinking) resize checks for 4,000 removals")
    }

    /// Emptied, a dictionary shrinks back to its minimum, also after every stripe noted a
    /// count under half its share while the whole table was not due to shrink: such a note
    /// kept the stripe's later shrink checks from ever being due at that size, so once
    /// every stripe had one, deleting every key left the grown table in place (found by
    /// review, 2026-12-05, eighteenth session; 64 buckets against 16 before).
    @Test(arguments: [1, 0])
    func anEmptiedDictionaryShrinksAfterEveryStripeNotedItsShare(keptInRotation: Int) {
        let dictionary = RCUDictionary<Int, Int>()
        let byStripe = Self.keys(perStripe: 8, of: dictionary)
        // Six keys in every stripe, then two more in stripe 0: over its share, it grows.
        for keys in byStripe { for key in keys.prefix(6) { dictionary[key] = key } }
        for key in byStripe[0][6..<8] { dictionary[key] = key }
        let grown = Epoch.withSection { _ in dictionary.currentTable.bucketCount }
        #expect(grown > dictionary.minimumBuckets)
        // Each stripe in turn down to one key, or to none (a shrink check the whole count
        // turns down, noted), then back to six. (Down to none, the first fix's rule, halving
        // from the note, never checked again: 64 buckets left; found by review of that fix.)
        for keys in byStripe {
            for key in keys[keptInRotation..<6] { dictionary.removeValue(forKey: key) }
            for key in keys[keptInRotation..<6] { dictionary[key] = key }
        }
        #expect(Epoch.withSection { _ in dictionary.currentTable.bucketCount } == grown)
        for keys in byStripe { for key in keys { dictionary.removeValue(forKey: key) } }
        #expect(dictionary.count == 0)
        #expect(Epoch.withSection { _ in dictionary.currentTable.bucketCount } == dictionary.minimumBuckets)
    }

    /// The halving rule of row 170 does not bring back a check on every write: a stripe that
    /// noted 0 entries, toggled (one key inserted and removed, and removals of absent keys)
    /// while the table stays grown, does not count every stripe on each write (found by
    /// review of that fix: it did, about once a write).
    @Test func anEmptyStripeToggledDoesNotCountEveryStripeOnEachWrite() {
        let dictionary = RCUDictionary<Int, Int>()
        let byStripe = Self.keys(perStripe: 40, of: dictionary)
        // Grow the table with every stripe but 1 well filled, then empty stripe 1.
        for (stripe, keys) in byStripe.enumerated() where stripe != 1 { for key in keys { dictionary[key] = key } }
        for key in byStripe[1].prefix(2) { dictionary[key] = key }
        for key in byStripe[1].prefix(2) { dictionary.removeValue(forKey: key) }
        let grown = Epoch.withSection { _ in dictionary.currentTable.bucketCount }
        let checks = dictionary.resizeChecks.load(ordering: .relaxed)
        let toggled = byStripe[1][5]
        for _ in 0..<1_000 {
            dictionary[toggled] = 1
            dictionary.removeValue(forKey: toggled)
            dictionary.removeValue(forKey: byStripe[1][6])  // absent
        }
        let made = dictionary.resizeChecks.load(ordering: .relaxed) - checks
        #expect(made < 250, "\(made) resize checks for 3,000 writes")
        #expect(Epoch.withSection { _ in dictionary.currentTable.bucketCount } == grown)
    }

    /// `count` integer keys for each writer stripe of `dictionary`, by stripe.
    static func keys(perStripe count: Int, of dictionary: RCUDictionary<Int, Int>) -> [[Int]] {
        var byStripe = [[Int]](repeating: [], count: dictionary.stripeMask + 1)
        var candidate = 0
        while byStripe.contains(where: { $0.count < count }) {
            let stripe = dictionary.hash(of: candidate) & dictionary.stripeMask
            if byStripe[stripe].count < count { byStripe[stripe].append(candidate) }
            candidate += 1
        }
        return byStripe
    }

    @Test func theMinimumCapacityOutlivesTheFirstWrites() {
        let dictionary = RCUDictionary<Int, Int>(minimumCapacity: 100_000)
        let before = dictionary.currentTable.bucketCount
        #expect(before >= 32_768)
        dictionary[1] = 1
        dictionary[2] = 2
        #expect(dictionary.currentTable.bucketCount == before)
        dictionary.removeValue(forKey: 1)
        dictionary.removeValue(forKey: 2)
        #expect(dictionary.currentTable.bucketCount == before)
        // Growing past it still works, and shrinking stops at it.
        for key in 0..<300_000 { dictionary[key] = key }
        #expect(dictionary.currentTable.bucketCount > before)
        for key in 0..<300_000 { dictionary.removeValue(forKey: key) }
        #expect(dictionary.currentTable.bucketCount == before)
        #expect(dictionary.count == 0)
    }

    /// `reserveCapacity` grows the array once, at once, to what `init(minimumCapacity:)`
    /// would have made; a bulk load within it rebuilds nothing; the array never shrinks below
    /// it; a smaller request changes nothing. Entries already in are kept.
    @Test func reserveCapacityGrowsOnceAndHoldsTheFloor() {
        let dictionary = RCUDictionary<Int, Int>()
        for key in 0..<100 { dictionary[key] = key }
        let made = RCUDictionary<Int, Int>(minimumCapacity: 50_000)
        dictionary.reserveCapacity(50_000)
        let reserved = Epoch.withSection { _ in dictionary.currentTable.bucketCount }
        #expect(reserved == Epoch.withSection { _ in made.currentTable.bucketCount })
        #expect(dictionary.minimumBuckets == reserved)
        #expect((0..<100).allSatisfy { dictionary[$0] == $0 })
        let checks = dictionary.resizeChecks.load(ordering: .relaxed)
        for key in 100..<50_000 { dictionary[key] = key }
        #expect(Epoch.withSection { _ in dictionary.currentTable.bucketCount } == reserved)
        #expect(dictionary.resizeChecks.load(ordering: .relaxed) == checks, "the bulk load rebuilt the array")
        dictionary.reserveCapacity(10)
        #expect(dictionary.minimumBuckets == reserved)
        for key in 0..<50_000 { dictionary.removeValue(forKey: key) }
        #expect(dictionary.count == 0)
        #expect(Epoch.withSection { _ in dictionary.currentTable.bucketCount } == reserved)
    }

    /// A reservation while `removeAll` holds every stripe, having read the old floor: the
    /// array is at least the new floor once both return. The reservation did not wait for
    /// the removal, found the old, large array, and returned; the removal then published
    /// its empty table of the old floor (found by review, 2026-12-05, nineteenth session).
    @Test func aReservationDuringRemoveAllHoldsItsFloor() {
        let dictionary = RCUDictionary<Int, Int>()
        for key in 0..<100_000 { dictionary[key] = key }
        let checked = DispatchSemaphore(value: 0), go = DispatchSemaphore(value: 0)
        let reserved = DispatchSemaphore(value: 0), removed = DispatchSemaphore(value: 0)
        dictionary.afterRemoveAllCheckedTheFloor = { checked.signal(); go.wait() }
        Thread { dictionary.removeAll(); removed.signal() }.start()
        checked.wait()
        let wanted = RCUDictionary<Int, Int>.minimumBuckets(for: 60_000, stripes: dictionary.stripeMask + 1)
        Thread { dictionary.reserveCapacity(60_000); reserved.signal() }.start()
        while dictionary.minimumBuckets < wanted { usleep(1_000) }
        usleep(50_000)  // the reservation's look at the array, if it does not wait
        go.signal()
        reserved.wait()
        removed.wait()
        dictionary.afterRemoveAllCheckedTheFloor = nil
        #expect(Epoch.withSection { _ in dictionary.currentTable.bucketCount } >= wanted)
        #expect(dictionary.count == 0)
    }

    /// Readers find every key present throughout, with its value, while a writer grows the
    /// table many times over and shrinks it back, twice. A resize rehashes under every
    /// stripe lock and then publishes the new table, and readers take no lock: a table
    /// published before its copy was complete, or without releasing it to them, would hide
    /// keys from readers alone, which the writers' own checks cannot see (found missing by
    /// review, 2026-12-06).
    @Test func readersFindEveryStableKeyWhileTheTableGrowsAndShrinks() {
        let dictionary = RCUDictionary<Int, Int>()
        let stable = 0..<512
        for key in stable { dictionary[key] = key &* 3 }
        let bucketsAtStart = Epoch.withSection { _ in dictionary.currentTable.bucketCount }
        let writerDone = Atomic<Bool>(false)
        let wrong = Atomic<Int>(0)
        let passes = Atomic<Int>(0)
        let mostBuckets = Atomic<Int>(0)
        runOnThreads(3) { thread in
            if thread == 0 {
                defer { writerDone.store(true, ordering: .releasing) }
                for _ in 0..<2 {
                    for key in 1_000..<60_000 { dictionary[key] = key }
                    let buckets = Epoch.withSection { _ in dictionary.currentTable.bucketCount }
                    mostBuckets.store(Swift.max(buckets, mostBuckets.load(ordering: .relaxed)), ordering: .relaxed)
                    for key in 1_000..<60_000 { dictionary.removeValue(forKey: key) }
                }
                return
            }
            var misses = 0
            var rounds = 0
            while !writerDone.load(ordering: .acquiring) {
                for key in stable where dictionary[key] != key &* 3 { misses += 1 }
                rounds += 1
            }
            wrong.wrappingAdd(misses, ordering: .relaxed)
            passes.wrappingAdd(rounds, ordering: .relaxed)
        }
        let misses = wrong.load(ordering: .relaxed)
        let readerPasses = passes.load(ordering: .relaxed)
        let most = mostBuckets.load(ordering: .relaxed)
        let bucketsAtEnd = Epoch.withSection { _ in dictionary.currentTable.bucketCount }
        #expect(misses == 0)
        #expect(readerPasses > 0)
        #expect(most > 8 * bucketsAtStart)  // it grew several times
        #expect(bucketsAtEnd < most)        // and shrank
        #expect(dictionary.count == stable.count)
    }

    /// Writers and a reservation at once: nothing is lost, and the array ends at least as
    /// large as reserved.
    @Test func reserveCapacityWhileWritersWrite() {
        let dictionary = RCUDictionary<Int, Int>()
        runOnThreads(3) { thread in
            if thread == 2 {
                dictionary.reserveCapacity(40_000)
                return
            }
            for index in 0..<20_000 { dictionary[thread * 20_000 + index] = index }
        }
        #expect(dictionary.count == 40_000)
        #expect((0..<40_000).allSatisfy { dictionary[$0] == $0 % 20_000 })
        #expect(Epoch.withSection { _ in dictionary.currentTable.bucketCount }
                    >= RCUDictionary<Int, Int>.minimumBuckets(for: 40_000, stripes: dictionary.stripeMask + 1))
    }
}

/// The table's size bound and the nodes' layout for `String` keys.
@Suite("RCUDictionary layout")
struct RCUDictionaryLayoutTests {
    /// The largest table is the largest power of two of buckets that fits one epoch block:
    /// twice as many would not (writes past it stop asking for a resize, which could only fail).
    @Test func theLargestTableFitsOneBlock() {
        let bytes = DictionaryTable.headerSize + DictionaryTable.maxBucketCount * DictionaryTable.bucketSize
        #expect(bytes <= EpochMemory.maxBlockSize)
        #expect(DictionaryTable.headerSize + 2 * DictionaryTable.maxBucketCount * DictionaryTable.bucketSize > EpochMemory.maxBlockSize)
    }

    /// A `String` key's node keeps the key's bytes in what is left of its last cache line, at
    /// least 16 bytes: a small value in the node no longer doubles it to 128 bytes (found by
    /// review). Keys just within and just beyond the bytes kept round-trip either way.
    @Test func stringKeyNodesFillTheirLastLine() {
        #expect(RCUDictionary<String, Int>().nodeLayout.size == 64)           // value in the slot
        #expect(RCUDictionary<String, Int>().nodeLayout.keyBytesCapacity == 32)
        #expect(RCUDictionary<String, [Int]>().nodeLayout.size == 64)         // 8-byte value in the node
        #expect(RCUDictionary<String, [Int]>().nodeLayout.keyBytesCapacity == 24)
        #expect(RCUDictionary<String, Bool>().nodeLayout.size == 64)
        #expect(RCUDictionary<String, TwoWords>().nodeLayout.keyBytesCapacity >= 16)
        let table = RCUDictionary<String, [Int]>()
        let keys = (20...30).map { String(repeating: "k", count: $0) }
        for (index, key) in keys.enumerated() { table[key] = [index] }
        for (index, key) in keys.enumerated() {
            #expect(table[key] == [index] && table[String(key.dropLast()) + "j"] == nil, "\(key.utf8.count) bytes")
        }
    }
}

/// Writers and grace periods.
@Suite("RCUDictionary writers")
struct RCUDictionaryWriterTests {
    /// A writer waiting for its stripe (behind a resize, here behind the test holding the
    /// stripe's lock) waits outside any epoch section: a grace period meanwhile ends. It took
    /// the lock inside its section, and every grace period in the process waited for the
    /// stripe (found by review).
    @Test func aWriterWaitsForItsStripeOutsideAnySection() {
        final class Progress: Sendable {
            let writerStarted = Atomic<Bool>(false)
            let writerDone = Atomic<Bool>(false)
        }
        let dictionary = RCUDictionary<Int, Int>()
        let progress = Progress()
        let key = 12_345
        let stripe = dictionary.hash(of: key) & dictionary.stripeMask
        dictionary.locks.lock(stripe)
        Thread {
            progress.writerStarted.store(true, ordering: .releasing)
            dictionary[key] = 1
            progress.writerDone.store(true, ordering: .releasing)
        }.start()
        while !progress.writerStarted.load(ordering: .acquiring) { sched_yield() }
        // The writer sleeps on the stripe's lock (its word says so). A sleep stood in for
        // this, and a writer that had not reached the lock passed the grace-period check
        // below anyway (found by review, 2026-12-05).
        let deadline = ContinuousClock.now + .seconds(10)
        while !dictionary.locks.hasSleepers(stripe), ContinuousClock.now < deadline { usleep(1_000) }
        let waiting = dictionary.locks.hasSleepers(stripe)
        #expect(waiting, "the writer never waited for its stripe")
        let writerWaits = !progress.writerDone.load(ordering: .acquiring)
        #expect(writerWaits)
        let grace = GracePeriodProbe()
        #expect(grace.ends(within: 10), "a grace period waited for a writer waiting for its stripe")
        dictionary.locks.unlock(stripe)
        grace.waitUntilEnded()
        while !progress.writerDone.load(ordering: .acquiring) { usleep(1_000) }
        #expect(dictionary[key] == 1)
    }
}

/// What a reader relies on when it reads a slot's two words without a lock, and what
/// `update(forKey:)` relies on when it commits: the words it read belong together, and a
/// write it did not see shows.
@Suite("RCUDictionary consistency")
struct RCUDictionaryConsistencyTests {
    /// Key 1 and another key of its bucket and tag in `table` (one pair in about 2^11 for
    /// 16 buckets).
    static func twoKeysOfOneBucketAndTag(_ table: RCUDictionary<Int, Int>) throws -> (first: Int, other: Int) {
        let bucketCount = table.currentTable.bucketCount
        func place(_ key: Int) -> (bucket: Int, tag: UInt64) {
            let hash = table.hash(of: key)
            return (hash & (bucketCount - 1), DictionaryTable.tag(hash))
        }
        let other = try #require((2..<1_000_000).first { place($0) == place(1) })
        return (1, other)
    }

    /// Integer keys are their own key words, so a reader's second look at the tag and the
    /// key word cannot tell that the slot was emptied, filled with another key of the same
    /// tag, emptied and filled with the first key again between its loads. The bucket's
    /// change count can: every fill and every emptying changes the control word.
    @Test func anEmptiedAndRefilledSlotShowsInTheControlWord() throws {
        let table = RCUDictionary<Int, Int>()
        let (first, other) = try Self.twoKeysOfOneBucketAndTag(table)
        table[first] = 10
        let bucket = table.currentTable.bucket(table.hash(of: first))
        let control = DictionaryTable.control(bucket).pointee.load(ordering: .acquiring)
        let keyWord = DictionaryTable.keyWord(bucket, 0).pointee.load(ordering: .acquiring)
        #expect(keyWord == table.encode(first))
        #expect(DictionaryTable.unchanged(bucket, since: control))
        table.removeValue(forKey: first)
        table[other] = 20
        #expect(DictionaryTable.keyWord(bucket, 0).pointee.load(ordering: .acquiring) == table.encode(other))
        table.removeValue(forKey: other)
        table[first] = 30
        // The same key word in the same slot, with the same tag: only the count tells.
        #expect(DictionaryTable.keyWord(bucket, 0).pointee.load(ordering: .acquiring) == keyWord)
        let now = DictionaryTable.control(bucket).pointee.load(ordering: .acquiring)
        #expect(now & 0xFF_FFFF == control & 0xFF_FFFF)
        #expect(!DictionaryTable.unchanged(bucket, since: control))
        // A value replaced in place keeps the count: the slot holds the same key.
        let settled = now
        table[first] = 40
        #expect(DictionaryTable.unchanged(bucket, since: settled))
        #expect(table[first] == 40)
    }

    /// The reader's side of the test above (row 10 of reliability.md): between its load of
    /// a slot's key word and of its value word, the slot is emptied and filled with another
    /// key of the same tag (value 20); after the value word, emptied and filled with the
    /// first key again (value 30). The key word reads the same before and after; only the
    /// control word's change count tells the reader that its value word was the other
    /// key's, and it reads again. (The test above checked the count, not that `find` looks
    /// at it: found by review, 2026-12-05.)
    #if DEBUG  // the hook is in debug builds only
    @Test func aReaderNeverReturnsAnotherKeysValue() throws {
        let table = RCUDictionary<Int, Int>()
        let (first, other) = try Self.twoKeysOfOneBucketAndTag(table)
        table[first] = 10
        let phases = Mutex<[Int]>([])
        table.findReadAWord = { phase in
            phases.withLock { $0.append(phase) }
            switch phase {
            case 0:
                table.removeValue(forKey: first)
                table[other] = 20
            default:
                table.findReadAWord = nil  // the reader's second look runs undisturbed
                table.removeValue(forKey: other)
                table[first] = 30
            }
        }
        #expect(table[first] == 30)
        #expect(phases.withLock { $0 } == [0, 1])
    }
    #endif

    /// Eight bytes of plain data of any alignment live in the slot, replaced in place: a pair
    /// of `UInt32`s or of `Float`s went in nodes, one allocation a write, though the docs
    /// promised none (found by review, 2026-12-05, nineteenth session).
    @Test func fourAlignedWordsLiveInTheSlot() {
        struct Pair: Equatable, Sendable { var low: UInt32, high: UInt32 }
        let pairs = RCUDictionary<Int, Pair>()
        #expect(pairs.layout == .inline && pairs.storage == .plainWord)
        #expect(RCUDictionary<Int, SIMD2<Float>>().storage == .plainWord)
        #expect(RCUDictionary<Int, (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)>().storage == .plainWord)
        #expect(RCUDictionary<Int, TwoWords>().storage == .node)
        for key in 0..<1_000 { pairs[key] = Pair(low: UInt32(key), high: ~UInt32(key)) }
        for key in 0..<1_000 where key % 2 == 0 { pairs[key] = Pair(low: ~UInt32(key), high: UInt32(key)) }
        #expect((0..<1_000).allSatisfy { key in
            pairs[key] == (key % 2 == 0 ? Pair(low: ~UInt32(key), high: UInt32(key)) : Pair(low: UInt32(key), high: ~UInt32(key)))
        })
        #expect(pairs.withValue(forKey: 3) { $0.high } == ~UInt32(3))
        #expect(pairs.removeValue(forKey: 5) == Pair(low: 5, high: ~5))
        #expect(pairs.count == 999)
    }

    /// `update(forKey:)` runs its closure outside any section, so the node it read from may
    /// be freed and its address given to a newer node of the same key before it commits.
    /// Node values therefore commit against the slot's stamp too: no increment is lost.
    @Test func updatesOfNodeValuesLoseNoIncrement() {
        let counts = RCUDictionary<String, TwoWords>()
        #expect(counts.layout == .node)
        let threads = 4, rounds = 20_000
        runOnThreads(threads) { _ in
            for _ in 0..<rounds {
                counts.update(forKey: "hits") { old in
                    let count = (old?.count ?? 0) + 1
                    return TwoWords(count: count, check: ~count)
                }
            }
        }
        let final = counts["hits"]
        #expect(final?.count == UInt64(threads * rounds))
        #expect(final.map { $0.check == ~$0.count } == true)
    }

    /// The interleaving above, made to happen: the first run of the closure replaces the
    /// key's node until a new node gets the address of the node the closure was given (freed
    /// after a grace period, its memory comes back from the allocator). Comparing addresses
    /// alone, the commit would then go through on top of the newer value; with the stamp it
    /// fails and the closure runs again on the newer value.
    @Test func anUpdateSeesANodeAddressThatCameBack() throws {
        let table = RCUDictionary<String, TwoWords>()
        // Nodes are freed on the reclamation thread, whose first frees of a size stay in its
        // own allocation cache (glibc's tcache): churn first, so that later frees go back
        // to the arena, where this thread's allocations find them.
        for round in 0..<300 { table["k"] = TwoWords(count: UInt64(round), check: 0) }
        Epoch.barrier()
        table["k"] = TwoWords(count: 0, check: ~0)
        let hash = table.hash(of: "k")
        func nodeAddress() -> UInt? { Epoch.withSection { _ in table.find("k", hash: hash)?.key } }
        let original = try #require(nodeAddress())
        var runs = 0
        var reused = false
        table.update(forKey: "k") { old in
            runs += 1
            if runs == 1 {
                for _ in 0..<500 where !reused {
                    table["k"] = TwoWords(count: 100, check: ~100)
                    Epoch.barrier()  // the replaced nodes are freed
                    reused = nodeAddress() == original
                }
            }
            let count = (old?.count ?? 0) + 1
            return TwoWords(count: count, check: ~count)
        }
        // An allocator that never hands the address back leaves nothing to check: the
        // sanitizers' quarantine, or, in the parallel suite, another thread's allocation or
        // the reclamation thread's cache keeping it. Said as a cancelled test rather than a
        // pass (before, it passed silently: found by review, 2026-12-05, eighteenth session).
        if !reused { try Test.cancel("the node's address never came back in 500 replacements") }
        #expect(runs == 2)
        #expect(table["k"] == TwoWords(count: 101, check: ~101))
    }

    /// A node replaced in its slot while a snapshot passes is still the same key: the
    /// snapshot lists it (before, it compared the slot's node with the one it had read and
    /// skipped the key when the node had been replaced in between). And a slot whose bucket
    /// changes around it (integer keys: other keys of the bucket come and go) is read again,
    /// not skipped.
    @Test func snapshotsListKeysPresentForTheWholePass() {
        let strings = RCUDictionary<String, String>()
        strings["hot"] = "0"
        let integers = RCUDictionary<Int, Int>()
        integers[0] = 0
        let stop = Atomic<Bool>(false)
        let missing = Atomic<Int>(0)
        runOnThreads(2) { thread in
            if thread == 0 {
                var round = 0
                while !stop.load(ordering: .relaxed) {
                    round += 1
                    strings["hot"] = String(round)
                    // Neighbours of key 0 fill and empty slots of the same buckets.
                    let neighbour = 1 + round % 64
                    if round & 1 == 0 { integers[neighbour] = round } else { integers.removeValue(forKey: neighbour) }
                }
            } else {
                for _ in 0..<100_000 {
                    if !strings.snapshot().contains(where: { $0.key == "hot" }) { missing.add(1, ordering: .relaxed) }
                    if !integers.snapshot().contains(where: { $0.key == 0 }) { missing.add(1, ordering: .relaxed) }
                }
                stop.store(true, ordering: .relaxed)
            }
        }
        #expect(missing.load(ordering: .relaxed) == 0)
    }
}
