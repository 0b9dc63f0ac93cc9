import CRCUMapProviderABI
import CRCUMapsShim
import CTestProvider
import Foundation
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// Misuse of the client dispatch table by a C provider is refused, never a crash and never
/// a corrupted epoch.
@Suite("C client table misuse", .serialized)
struct ClientTableReliabilityTests {
    /// Registers the C test provider once so that its client table pointer is set.
    static let registered: Bool = {
        ctest_provider_register(uniqueCustomType().rawValue, RCUMAPS_BASE_MAP_HASH_BUCKET_LOCKED) == 0
    }()

    /// Regression: `epoch_allocate_with_tag((size_t)-1, tag)` (and any size ≥ 2^63)
    /// stopped the process ("negative allocation size") instead of returning NULL.
    @Test(arguments: [UInt.max, UInt(1) << 63, (UInt(1) << 63) + 1, UInt(Int.max), UInt(1) << 40, UInt(UInt32.max)])
    func absurdSizesAreRefusedWithNull(_ size: UInt) throws {
        try #require(Self.registered)
        let tag = uniqueTag()
        #expect(ctest_provider_allocate_huge_via_client(Int(bitPattern: size), tag.rawValue) == 0)
        #expect(EpochMemory.statistics(for: tag).liveBytes == 0)
    }

    /// The Swift entry points promise `nil` for a negative size too.
    @Test func negativeSwiftSizesReturnNil() {
        for size in [-1, Int.min, Int.max, EpochMemory.maxBlockSize + 1] {
            #expect(EpochMemory.allocate(byteCount: size, tag: .general) == nil)
            #expect(EpochMemory.allocateCacheAligned(byteCount: size, tag: .general) == nil)
        }
        let tag = uniqueTag()
        #expect(MapClientServices().allocate(byteCount: -1, tag: tag) == nil)
        #expect(MapClientServices().allocateCacheAligned(byteCount: -5, tag: tag) == nil)
    }

    /// Regression: an `epoch_exit()` with no `epoch_enter()` wrapped the thread's nesting
    /// counter to 4 294 967 295: its later sections held no read lock, so grace periods
    /// completed while it was inside one. Now the exit is refused and counted, and the
    /// thread's next section holds back grace periods as it must.
    @Test func anUnbalancedExitIsRefusedAndLaterSectionsStillHoldGracePeriods() throws {
        try #require(Self.registered)
        let before = rcumaps_unbalanced_exit_count()
        let readerInside = Atomic<Bool>(false)
        let readerLeaving = Atomic<Bool>(false)
        let graceBeforeLeaving = Atomic<Int>(0)
        let nestingAfterBadExit = Atomic<Int>(-1)
        runOnThreads(2) { thread in
            if thread == 0 {
                _ = ctest_provider_exit_without_enter()
                nestingAfterBadExit.store(Epoch.nesting, ordering: .relaxed)
                _ = ctest_provider_epoch_enter()
                readerInside.store(true, ordering: .releasing)
                usleep(100_000)
                readerLeaving.store(true, ordering: .releasing)
                _ = ctest_provider_exit_without_enter()  // now balanced: leaves the section
            } else {
                while !readerInside.load(ordering: .acquiring) { sched_yield() }
                for _ in 0..<3 {
                    Epoch.synchronize()
                    if !readerLeaving.load(ordering: .acquiring) { graceBeforeLeaving.add(1, ordering: .relaxed) }
                }
            }
        }
        #expect(nestingAfterBadExit.load(ordering: .relaxed) == 0)
        #expect(graceBeforeLeaving.load(ordering: .relaxed) == 0)
        #expect(rcumaps_unbalanced_exit_count() == before + 1)
        // The thread that misbehaved can still wait for grace periods afterwards.
        _ = ctest_provider_exit_without_enter()
        Epoch.synchronize()
        #expect(Epoch.nesting == 0)
    }

    /// Inside a section the provider did not enter (every callback runs in one the library
    /// entered), an `epoch_exit()` with no `epoch_enter()` of the provider's is refused too:
    /// the host's section stays (before, it ended it early, and the host went on unprotected).
    @Test func anUnbalancedExitInsideTheHostsSectionIsRefused() throws {
        try #require(Self.registered)
        let before = rcumaps_unbalanced_exit_count()
        let depth = Epoch.withSection { _ in
            _ = ctest_provider_exit_without_enter()
            return Epoch.nesting
        }
        #expect(depth == 1)
        #expect(rcumaps_unbalanced_exit_count() == before + 1)
        #expect(Epoch.nesting == 0)
        // A balanced pair inside the host's section is not refused.
        Epoch.withSection { _ in
            _ = ctest_provider_epoch_enter()
            _ = ctest_provider_exit_without_enter()
        }
        #expect(rcumaps_unbalanced_exit_count() == before + 1)
    }

    /// A thread that exits inside a provider's `epoch_enter()`: the exit handler ends the
    /// section and the provider's count with it. It kept the count, so a later thread-exit
    /// destructor's stray `epoch_exit()` inside a host section ended the host's section
    /// (found by review, 2026-12-06, twenty-seventh session). In a process of its own.
    @Test func aStrayClientExitInADestructorAfterAnExitInsideItsSectionIsRefused() async {
        await #expect(processExitsWith: .success) {
            Self.exitInsideClientEnterThenStrayClientExitInADestructor()
        }
    }

    static func exitInsideClientEnterThenStrayClientExitInADestructor() {
        Epoch.withSection { _ in }  // creates RCUMaps' exit key, before the one below
        let key = UnsafeMutablePointer<pthread_key_t>.allocate(capacity: 1)
        guard pthread_key_create(key, { _ in
            let before = rcumaps_unbalanced_exit_count()
            let depth = Epoch.withSection { _ in
                rcumaps_epoch_exit()  // no epoch_enter() of its own on this thread: refused
                return Epoch.nesting
            }
            if depth != 1 || rcumaps_unbalanced_exit_count() != before + 1 { exit(4) }
        }) == 0 else { exit(2) }
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { argument in
            pthread_setspecific(argument!.assumingMemoryBound(to: pthread_key_t.self).pointee, UnsafeRawPointer(bitPattern: 1))
            rcumaps_epoch_enter()
            return nil  // exits inside the provider's section
        }, key) == 0 else { exit(3) }
        pthread_join(thread, nil)
        exit(0)
    }

    /// Swift's `Epoch.exit()` without `enter()` stops the program with a message, in every
    /// build configuration (it used to corrupt the counter in release builds).
    @Test func anUnbalancedSwiftExitStopsWithAMessage() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            exitWithoutEnter()
        }.map { result in
            let text = String(decoding: result.standardErrorContent, as: UTF8.self)
            #expect(text.contains("Epoch.exit() called outside an epoch"))
        }
    }

    /// The documented traps say why they stop the program.
    @Test func documentedTrapsCarryTheirMessage() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Epoch.withSection { _ in Epoch.barrier() }
        }.map { result in
            #expect(String(decoding: result.standardErrorContent, as: UTF8.self).contains("would deadlock"))
        }
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let block = EpochMemory.allocate(byteCount: 8, tag: .general)!
            EpochMemory.free(block)
            EpochMemory.free(block)
        }.map { result in
            #expect(String(decoding: result.standardErrorContent, as: UTF8.self).contains("epoch memory freed twice"))
        }
    }
}

/// `Epoch.exit()` with no `enter()`, from synchronous code (exit-test bodies are async).
func exitWithoutEnter() { Epoch.exit() }
