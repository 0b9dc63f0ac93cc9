import CRCUMapsShim
import Foundation
@testable import RCUMaps
import RCUEpoch
import RCUMapsTestSupport
import Synchronization
import Testing

/// An RCUDictionary of constant size under churn keeps its memory: an overflow bucket a
/// delete empties is unlinked and freed. Before, overflow buckets stayed linked until the
/// table was rebuilt, which a dictionary of constant size never is: every chain that once
/// went past three entries kept its extra buckets (found by review, 2026-12-05; the
/// reviewer's model put the growth at over 10,000 buckets for this test's churn).
@Suite("RCUDictionary memory under churn")
struct RCUDictionaryChurnMemoryTests {
    @Test func overflowBucketsDoNotPileUpAtAConstantSize() {
        let dictionary = RCUDictionary<Int, Int>()
        let size = 24_576
        var live = Array(0..<size)
        for key in live { dictionary[key] = key }
        // Counted in the table itself: the pool tag's statistics are shared with every other
        // dictionary of the process, and tests run in parallel.
        let before = Epoch.withSection { _ in dictionary.currentTable.overflowBucketCount }
        let buckets = dictionary.currentTable.bucketCount
        var random = SystemRandomNumberGenerator()
        var next = size
        for _ in 0..<(20 * size) {
            let index = Int.random(in: 0..<live.count, using: &random)
            dictionary.removeValue(forKey: live[index])
            live[index] = next
            dictionary[next] = next
            next += 1
        }
        let after = Epoch.withSection { _ in dictionary.currentTable.overflowBucketCount }
        #expect(dictionary.count == size)
        #expect(dictionary.currentTable.bucketCount == buckets, "the table was rebuilt: the test proves nothing")
        #expect(after - before < 2_000, "\(after - before) more overflow buckets after the churn (before: \(before))")
    }

    /// Emptied overflow buckets go to reclamation through `EpochMemory`, not a retire list:
    /// a writer that keeps emptying and refilling one chain's fourth slot — an overflow
    /// bucket allocated and one freed each time — while another thread holds a section made
    /// the backlog grow and grow, and no write of a dictionary of integers ever paused
    /// (found by review, 2026-12-06, twenty-fourth session). Now, past 16 MiB of its own
    /// emptied buckets awaiting reclamation (the retire lists' bound), its writes wait as
    /// theirs do. The toggles run inside a section of the writer's own, where no write may wait:
    /// the flag stays set for its next write outside one (it was cleared there: found by
    /// review of the fix), which waits the whole limit (the section is still held).
    @Test func refilledOverflowBucketsMakeWritersWait() async throws {
        let unique = UInt32.random(in: 0x4000_0000..<0x7FFF_FFFF)
        let dictionary = RCUDictionary<Int, Int>(memoryTags: RCUDictionaryMemoryTags(
            table: PoolTag(rawValue: unique), nodes: PoolTag(rawValue: unique &+ 1), objects: PoolTag(rawValue: unique &+ 2)))
        let chain = Self.keysOfOneChain(dictionary, 4)
        for key in chain.prefix(3) { dictionary[key] = key }
        let holder = SectionHolder()
        // 16 MiB of overflow buckets is about 130,000 toggles.
        let toggles = Self.toggleInsideASectionUntilBehind(dictionary, chain[3])
        let flagged = dictionary.overflowBehind.load(ordering: .relaxed)
        let waitedInside = dictionary.overflowThrottles.load(ordering: .relaxed)
        // On a thread of its own (a task's thread waits 2 ms at most).
        let elapsedNanoseconds = Atomic<Int>(-1)
        let writer = Thread {
            let start = ContinuousClock.now
            dictionary[chain[0]] = 7
            let elapsed = ContinuousClock.now - start
            elapsedNanoseconds.store(Int(elapsed.components.seconds) * 1_000_000_000
                + Int(elapsed.components.attoseconds / 1_000_000_000), ordering: .releasing)
        }
        writer.start()
        while elapsedNanoseconds.load(ordering: .acquiring) < 0 { usleep(1_000) }
        let elapsed = Duration.nanoseconds(elapsedNanoseconds.load(ordering: .acquiring))
        let waited = dictionary.overflowThrottles.load(ordering: .relaxed)
        holder.release()
        // Once the section is gone, the work items take what they cover off the count: what
        // is left is less than one batch (a reset that subtracted nothing passed before).
        await Epoch.barrier()
        await Epoch.barrier()
        let left = dictionary.overflowFreed.load(ordering: .relaxed)
        #expect(left < RCUDictionary<Int, Int>.overflowResetBatch, "\(left) buckets still counted after two barriers")
        #expect(flagged, "\(toggles) toggles, the flag never set")
        #expect(waitedInside == 0)
        #expect(waited == 1, "the write outside a section did not go to wait")
        #expect(elapsed >= .milliseconds(200), "it waited \(elapsed), with the section still held")
        #expect(dictionary.count == 3)
    }

    /// The work items that take reclaimed overflow buckets off the count run on the
    /// grace-period driver: queued while its thread could not be started, they ran only at
    /// a later enqueue (16,384 frees later) or a barrier, and meanwhile every write outside
    /// a section waited its limit for a backlog already reclaimed. A write that finds the
    /// backlog now starts the driver (docs/reliability.md row 292).
    @Test func overflowResetsQueuedWhenTheDriverCouldNotStartRunOnceItCan() async {
        await #expect(processExitsWith: .success) {
            let drained = Self.overflowBacklogDrainsOnceTheDriverCanStart()
            // The dictionary is gone; a barrier runs any reset still queued, so that no work
            // item holds a weak reference to it at exit (LeakSanitizer cannot follow the
            // reference count's encoded pointer to a live object's side table, and reported
            // it as a leak).
            await Epoch.barrier()
            exit(drained ? 0 : 1)
        }
    }

    /// The body of ``overflowResetsQueuedWhenTheDriverCouldNotStartRunOnceItCan()`` (in a
    /// function of its own, so that its dictionary is released before the process exits):
    /// whether the count came back under the bound within 10 s; exits 2 if the backlog flag
    /// never set.
    static func overflowBacklogDrainsOnceTheDriverCanStart() -> Bool {
        let unique = UInt32.random(in: 0x4000_0000..<0x7FFF_FFFF)
        let dictionary = RCUDictionary<Int, Int>(memoryTags: RCUDictionaryMemoryTags(
            table: PoolTag(rawValue: unique), nodes: PoolTag(rawValue: unique &+ 1), objects: PoolTag(rawValue: unique &+ 2)))
        let chain = keysOfOneChain(dictionary, 4)
        for key in chain.prefix(3) { dictionary[key] = key }
        // (No barrier first: it would start the driver.)
        rcumaps_gp_test_fail_driver_starts(1)
        _ = toggleInsideASectionUntilBehind(dictionary, chain[3])
        guard dictionary.overflowBehind.load(ordering: .relaxed) else { exit(2) }
        rcumaps_gp_test_fail_driver_starts(0)
        usleep(20_000)  // a start is tried again 10 ms after a failure at the earliest
        dictionary[chain[0]] = 7  // outside a section: finds the backlog
        let deadline = ContinuousClock.now + .seconds(10)
        while dictionary.overflowFreed.load(ordering: .relaxed) > RCUDictionary<Int, Int>.overflowBehindBuckets,
              ContinuousClock.now < deadline {
            usleep(1_000)
        }
        return dictionary.overflowFreed.load(ordering: .relaxed) <= RCUDictionary<Int, Int>.overflowBehindBuckets
    }

    /// Inserts and removes `key` (the fourth key of a chain: an overflow bucket allocated
    /// and emptied each time) inside one section, where no write waits, until the
    /// dictionary's backlog flag is set or 400,000 toggles have run; returns the toggles.
    static func toggleInsideASectionUntilBehind(_ dictionary: RCUDictionary<Int, Int>, _ key: Int) -> Int {
        var toggles = 0
        Epoch.withSection { _ in
            while toggles < 400_000, !dictionary.overflowBehind.load(ordering: .relaxed) {
                dictionary[key] = toggles
                dictionary[key] = nil
                toggles += 1
            }
        }
        return toggles
    }

    /// The first `count` keys of `dictionary` in the chain of bucket 0.
    static func keysOfOneChain(_ dictionary: RCUDictionary<Int, Int>, _ count: Int) -> [Int] {
        let buckets = Epoch.withSection { _ in dictionary.currentTable.bucketCount }
        var chain: [Int] = []
        var candidate = 0
        while chain.count < count {
            if dictionary.hash(of: candidate) & (buckets - 1) == 0 { chain.append(candidate) }
            candidate += 1
        }
        return chain
    }

    /// The overflow buckets' back-pressure counts their own tag: another dictionary's bucket
    /// array retired while a section is held (a `removeAll` of a 24 MiB table) does not make
    /// this one's writers wait (under the bucket arrays' tag, shared by every dictionary, it
    /// did: found by review, 2026-12-06, twenty-fourth session).
    @Test func anotherDictionarysRetiredTableIsNotThisOnesBacklog() throws {
        let big = RCUDictionary<Int, Int>(minimumCapacity: 600_000)
        for key in 0..<600_000 { big[key] = key }
        let small = RCUDictionary<Int, Int>()
        let chain = Self.keysOfOneChain(small, 4)
        for key in chain.prefix(3) { small[key] = key }
        let holder = SectionHolder()
        big.removeAll()
        for round in 0..<200 {
            small[chain[3]] = round
            small[chain[3]] = nil
        }
        let waited = small.overflowThrottles.load(ordering: .relaxed)
        // The premise: the big table still waited for its grace period, past the throttle's
        // threshold (found unchecked by review, 2026-12-06, twenty-sixth session).
        let pending = EpochMemory.statistics(for: DictionaryTable.tag).pendingBytes
        holder.release()
        #expect(pending > EpochRetireList.throttleThreshold, "\(pending) bytes of bucket arrays pending")
        #expect(waited == 0, "the small dictionary's writers waited for the big one's table")
    }
}

/// Writers on a Swift task's thread are not put to sleep by the reclamation throttle, and
/// still throttled: a task that slept there (up to 250 ms a write while the backlog lasted)
/// put the cooperative pool to sleep with it, and every other task of the process waited
/// (found by review, 2026-12-06); one that did not wait at all let writer tasks outrun
/// reclamation without bound (found by review, 2026-12-06, twenty-second session). A thread
/// of its own holds a section, so nothing is reclaimed; the test's task replaces node values
/// until the dictionaries' backlog is past the throttle's threshold, then times more writes:
/// each waits the task's limit (2 ms), none the thread's (250 ms).
@Suite("RCUDictionary writers on tasks")
struct RCUDictionaryTaskWriterTests {
    final class Flags: Sendable {
        let inside = Atomic<Bool>(false)
        let leave = Atomic<Bool>(false)
    }

    /// A 4 KiB value.
    struct Page: Sendable {
        var words: (SIMD64<Int>, SIMD64<Int>, SIMD64<Int>, SIMD64<Int>, SIMD64<Int>, SIMD64<Int>, SIMD64<Int>, SIMD64<Int>)
        init(_ value: Int) {
            let word = SIMD64<Int>(repeating: value)
            words = (word, word, word, word, word, word, word, word)
        }
    }

    @Test func aWriterTaskIsThrottledBrieflyNotPutToSleep() async {
        // 4 KiB values, in nodes: each replace retires one, so a few thousand writes pass the
        // 16 MiB threshold (the section must stay short: other tests wait for grace periods,
        // some with a limit, and a TSan build writes slowly).
        let dictionary = RCUDictionary<Int, Page>()
        let flags = Flags()
        let reader = Thread {
            Epoch.withSection { _ in
                flags.inside.store(true, ordering: .releasing)
                while !flags.leave.load(ordering: .acquiring) { usleep(1_000) }
            }
        }
        reader.start()
        // No suspension from here until the reader leaves: a task that awaited while the
        // section held grace periods back could find every pool thread blocked in other
        // tests' `Epoch.barrier()`, which waits for that section, and never run again.
        while !flags.inside.load(ordering: .acquiring) { usleep(1_000) }
        defer { flags.leave.store(true, ordering: .releasing) }
        let tag = PoolTag("rcud")
        var written = 0
        while EpochMemory.statistics(for: tag).pendingBytes <= EpochRetireList.throttleThreshold + (1 << 20),
              written < 100_000 {
            dictionary[written & 1023] = Page(written)
            written += 1
        }
        #expect(EpochMemory.statistics(for: tag).pendingBytes > EpochRetireList.throttleThreshold)
        let clock = ContinuousClock()
        var longest = Duration.zero
        let throttled = EpochRetireList.throttledWrites
        let began = clock.now
        for step in 0..<50 {
            let start = clock.now
            dictionary[step & 1023] = Page(step)
            longest = max(longest, clock.now - start)
        }
        let total = clock.now - began
        #expect(longest < .milliseconds(100), "a write on the test's task took \(longest)")
        // Throttled: every write waited (the backlog cannot shrink while the section lasts).
        #expect(total >= EpochRetireList.taskThrottleWaitLimit * 50, "50 writes took \(total)")
        #expect(EpochRetireList.throttledWrites - throttled >= 50)
    }
}
