import CRCUMapsShim
import Foundation
import RCUBaseMaps
import RCUEpoch
import RCUMapsTestSupport
import Synchronization
import Testing

@Suite("Epoch sections")
struct EpochSectionTests {
    @Test func sectionsNestAndReportDepth() {
        #expect(!Epoch.isActive)
        let depths = Epoch.withSection { _ in
            let outer = Epoch.nesting
            let inner = Epoch.withSection { _ in Epoch.nesting }
            return (outer, inner, Epoch.nesting)
        }
        #expect(depths == (1, 2, 1))
        #expect(Epoch.nesting == 0)
        Epoch.enter()
        Epoch.enter()
        #expect(Epoch.nesting == 2)
        Epoch.exit()
        Epoch.exit()
        #expect(!Epoch.isActive)
    }

    @Test func aThrowingBodyLeavesTheSection() {
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try Epoch.withSection { _ throws(Boom) in throw Boom() }
        }
        #expect(!Epoch.isActive)
    }

    @Test func worksOnManyShortLivedThreadsWithoutRegistration() {
        // Each thread registers lazily and unregisters at exit; if a dead thread stayed
        // registered, the grace periods below would hang or crash.
        let total = Atomic<Int>(0)
        for _ in 0..<4 {
            runOnThreads(16) { _ in
                Epoch.withSection { _ in _ = total.wrappingAdd(1, ordering: .relaxed) }
            }
            Epoch.synchronize()
        }
        let totalValue = total.load(ordering: .relaxed)
        #expect(totalValue == 64)
    }

    @Test func worksFromSwiftConcurrencyTasks() async {
        let sum = await withTaskGroup(of: Int.self) { group in
            for index in 0..<200 {
                group.addTask { Epoch.withSection { _ in Epoch.nesting + index } }
            }
            return await group.reduce(0, +)
        }
        #expect(sum == 200 + (0..<200).reduce(0, +))
        await Epoch.synchronize()
    }

    /// The async grace period waits for a section that was active when it started, without
    /// blocking a thread: other tasks keep running on the pool meanwhile.
    @Test func asyncSynchronizeWaitsForActiveReaders() async {
        let readerInside = Atomic<Bool>(false)
        let readerDone = Atomic<Bool>(false)
        let reader = Thread {
            Epoch.withSection { _ in
                readerInside.store(true, ordering: .releasing)
                usleep(100_000)
                readerDone.store(true, ordering: .releasing)
            }
        }
        reader.start()
        while !readerInside.load(ordering: .acquiring) { await Task.yield() }
        await Epoch.synchronize()
        let doneBeforeGrace = readerDone.load(ordering: .acquiring)
        #expect(doneBeforeGrace)
    }

    /// More tasks awaiting a grace period (or a barrier) than the pool has threads, while a
    /// reader holds the section they wait for until another task releases it: that task
    /// runs, so the awaits hold no pool thread (a blocking form would park every thread of
    /// the pool, and the reader would wait out its 10 s limit). No test could tell before
    /// (found by review, 2026-12-06, twenty-sixth session). In a process of its own: in the
    /// test run, other suites' tasks that block pool threads can hold the releasing task
    /// back as long.
    @Test func awaitingAGracePeriodLeavesThePoolFree() async {
        await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            await Self.awaitWhileAReaderWaitsForATask(barrier: false)
        }
    }

    /// The same for `await Epoch.barrier()` (a free queued first, so that the barrier waits
    /// for a grace period, and so for the reader).
    @Test func awaitingABarrierLeavesThePoolFree() async {
        await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            await Self.awaitWhileAReaderWaitsForATask(barrier: true)
        }
    }

    /// Tasks that await a barrier while one runs share one barrier thread: they wait for its
    /// next barrier, which starts after they arrived and so covers the work item each
    /// scheduled just before (before, each call started a thread of its own: 65 here). In a
    /// process of its own, so that no other suite's barriers count.
    @Test func concurrentAwaitedBarriersShareOneThread() async {
        await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            await Self.awaitManyBarriersWhileOneRuns()
        }
    }

    static func awaitManyBarriersWhileOneRuns() async {
        alarm(60)
        final class Shared: Sendable {
            let release = Atomic<Bool>(false)
            let readerInside = Atomic<Bool>(false)
            let barriersStarted = Atomic<Int>(0)
            let itemsRun = ThreadLock<Set<Int>>([])
            let unseen = ThreadLock<[Int]>([])
        }
        let shared = Shared()
        Epoch._setBeforeAsyncBarrier { shared.barriersStarted.add(1, ordering: .relaxed) }
        let reader = Thread {
            Epoch.withSection { _ in
                shared.readerInside.store(true, ordering: .releasing)
                let deadline = ContinuousClock.now + .seconds(20)
                while !shared.release.load(ordering: .acquiring), ContinuousClock.now < deadline { usleep(1_000) }
            }
        }
        reader.start()
        while !shared.readerInside.load(ordering: .acquiring) { await Task.yield() }
        // The first barrier waits for an item, so for a grace period, so for the reader.
        Epoch.afterGracePeriod {}
        let tasks = 64
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await Epoch.barrier() }
            while shared.barriersStarted.load(ordering: .relaxed) < 1 { await Task.yield() }
            for index in 0..<tasks {
                group.addTask {
                    Epoch.afterGracePeriod { shared.itemsRun.withLock { _ = $0.insert(index) } }
                    await Epoch.barrier()
                    if !shared.itemsRun.withLock({ $0.contains(index) }) { shared.unseen.withLock { $0.append(index) } }
                }
            }
            // All queued behind the first barrier (waited for at most 10 s: with a thread
            // per call none would queue).
            let deadline = ContinuousClock.now + .seconds(10)
            while Epoch.asyncBarrierWaiters < tasks, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(1))
            }
            shared.release.store(true, ordering: .releasing)
        }
        let unseen = shared.unseen.withLock { $0 }
        let runners = Epoch.asyncBarrierRunners.load(ordering: .relaxed)
        let barriers = shared.barriersStarted.load(ordering: .relaxed)
        if !unseen.isEmpty || runners != 1 || barriers != 2 {
            FileHandle.standardError.write(Data(
                "items not run when their barrier returned: \(unseen); barrier threads: \(runners); barriers: \(barriers)\n".utf8))
            exit(1)
        }
    }

    static func awaitWhileAReaderWaitsForATask(barrier: Bool) async {
        final class Shared: Sendable {
            let release = Atomic<Bool>(false)
            let readerInside = Atomic<Bool>(false)
            let readerDone = Atomic<Bool>(false)
            let releasedInTime = Atomic<Bool>(false)
            let started = Atomic<Int>(0)
        }
        let shared = Shared()
        let reader = Thread {
            Epoch.withSection { _ in
                shared.readerInside.store(true, ordering: .releasing)
                let deadline = ContinuousClock.now + .seconds(10)
                while !shared.release.load(ordering: .acquiring), ContinuousClock.now < deadline { usleep(1_000) }
                shared.releasedInTime.store(shared.release.load(ordering: .acquiring), ordering: .releasing)
            }
            shared.readerDone.store(true, ordering: .releasing)
        }
        reader.start()
        while !shared.readerInside.load(ordering: .acquiring) { await Task.yield() }
        if barrier, let block = EpochMemory.allocate(byteCount: 64, tag: uniqueTag()) { EpochMemory.free(block) }
        let waiters = 2 * ProcessInfo.processInfo.activeProcessorCount + 2
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<waiters {
                group.addTask {
                    shared.started.add(1, ordering: .relaxed)
                    if barrier { await Epoch.barrier() } else { await Epoch.synchronize() }
                }
            }
            group.addTask {
                while shared.started.load(ordering: .relaxed) < waiters { await Task.yield() }
                try? await Task.sleep(for: .milliseconds(20))
                shared.release.store(true, ordering: .releasing)
            }
        }
        while !shared.readerDone.load(ordering: .acquiring) { try? await Task.sleep(for: .milliseconds(1)) }
        if !shared.releasedInTime.load(ordering: .acquiring) {
            FileHandle.standardError.write(Data("the releasing task did not run while \(waiters) tasks awaited\n".utf8))
            exit(1)
        }
    }

    /// The async barrier runs every deferred free queued before it.
    @Test func asyncBarrierRunsDeferredFrees() async throws {
        let tag = uniqueTag()
        for _ in 0..<100 {
            let block = try #require(EpochMemory.allocate(byteCount: 64, tag: tag))
            EpochMemory.free(block)
        }
        await Epoch.barrier()
        #expect(EpochMemory.statistics(for: tag).liveBytes == 0)
    }

    /// Asking about a tag never used reads zeros and claims no counters: it claimed a slot
    /// of the tag table, and 1,023 questions pushed the tags actually used into the shared
    /// overflow counters (found by review).
    @Test func statisticsOfAnUnusedTagClaimNoCounters() {
        let asked = (0..<20).map { _ in uniqueTag() }
        for tag in asked {
            let statistics = EpochMemory.statistics(for: tag)
            #expect(statistics.liveBytes == 0 && statistics.allocationCount == 0 && !statistics.isShared)
        }
        let tracked = Set(EpochMemory.allStatistics().map(\.tag.rawValue))
        #expect(asked.allSatisfy { !tracked.contains($0.rawValue) }, "a tag only asked about got counters")
    }

    /// Once every slot of the tag table is taken, a tag never used still reads zeros, and a
    /// tag that uses the shared overflow counters reads them (a tag never used read the
    /// overflow counters, marked shared: found by review, 2026-12-05). An exit test: it
    /// fills the process's table.
    @Test func statisticsOfAnUnusedTagAreZerosOnceTheTableIsFull() async {
        await #expect(processExitsWith: .success) {
            for index in 0...EpochMemory.maxTrackedTags {
                if let block = EpochMemory.allocate(byteCount: 8, tag: PoolTag(rawValue: 0x7000_0000 | UInt32(index))) {
                    EpochMemory.free(block)
                }
            }
            let late = PoolTag(rawValue: 0x7100_0000)
            guard let kept = EpochMemory.allocate(byteCount: 64, tag: late) else { exit(3) }
            let never = EpochMemory.statistics(for: PoolTag(rawValue: 0x7200_0001))
            guard never.liveBytes == 0, never.allocationCount == 0, !never.isShared else { exit(1) }
            let shared = EpochMemory.statistics(for: late)
            guard shared.isShared, shared.liveBytes >= 64 else { exit(2) }
            EpochMemory.free(kept)
        }
    }

    /// Past the 256 late tags the table records by name, a late tag still reads the shared
    /// overflow counters, marked shared (it read zeros, not shared, and the back-pressure on
    /// its pending bytes saw nothing: found by review, 2026-12-06, twenty-fourth session).
    /// Once that record is full a tag never used reads them too: which tags used the shared
    /// slot is no longer known. An exit test: it fills the process's table.
    @Test func aLateTagPastTheRecordedOnesReadsTheSharedCounters() async {
        await #expect(processExitsWith: .success) {
            for index in 0...(EpochMemory.maxTrackedTags + 300) {
                if let block = EpochMemory.allocate(byteCount: 8, tag: PoolTag(rawValue: 0x7000_0000 | UInt32(index))) {
                    EpochMemory.free(block)
                }
            }
            let late = PoolTag(rawValue: 0x7100_0000)
            guard let kept = EpochMemory.allocate(byteCount: 64, tag: late) else { exit(3) }
            let shared = EpochMemory.statistics(for: late)
            guard shared.isShared, shared.liveBytes >= 64 else { exit(2) }
            EpochMemory.free(kept)
        }
    }

    @Test func synchronizeWaitsForActiveReaders() throws {
        // A reader holds a section and a pointer to a block; another thread retires the block
        // and waits for a grace period. It cannot finish while the reader is inside, and the
        // block must stay intact until then.
        let tag = uniqueTag()
        let block = try #require(EpochMemory.allocate(byteCount: 64, tag: tag))
        block.initializeMemory(as: UInt64.self, repeating: 0xFEED, count: 8)
        let address = UInt(bitPattern: block)
        let readerInside = Atomic<Bool>(false)
        let readerDone = Atomic<Bool>(false)
        let graceElapsed = Atomic<Bool>(false)
        let sawEarlyGrace = Atomic<Bool>(false)
        let sawCorruption = Atomic<Bool>(false)
        runOnThreads(2) { thread in
            if thread == 0 {
                Epoch.withSection { _ in
                    readerInside.store(true, ordering: .releasing)
                    let pointer = UnsafeRawPointer(bitPattern: address)!
                    for _ in 0..<50 {
                        usleep(2000)
                        if graceElapsed.load(ordering: .acquiring) { sawEarlyGrace.store(true, ordering: .relaxed) }
                        for word in 0..<8 where pointer.load(fromByteOffset: word * 8, as: UInt64.self) != 0xFEED {
                            sawCorruption.store(true, ordering: .relaxed)
                        }
                    }
                    readerDone.store(true, ordering: .releasing)
                }
            } else {
                while !readerInside.load(ordering: .acquiring) { sched_yield() }
                EpochMemory.free(UnsafeMutableRawPointer(bitPattern: address)!)
                Epoch.synchronize()
                graceElapsed.store(true, ordering: .releasing)
                if !readerDone.load(ordering: .acquiring) { sawEarlyGrace.store(true, ordering: .relaxed) }
            }
        }
        let sawEarlyGraceValue = sawEarlyGrace.load(ordering: .relaxed)
        #expect(!sawEarlyGraceValue)
        let sawCorruptionValue = sawCorruption.load(ordering: .relaxed)
        #expect(!sawCorruptionValue)
        #expect(settledStatistics(for: tag).liveBytes == 0)
    }
}

extension EpochSectionTests {
    /// A grace period that sleeps waiting for a reader is woken by that reader's exit, while
    /// the exits of sections that began after the grace period's phase flip (which it does
    /// not wait for) leave it asleep (inline_read_side.c). Each round one thread holds a
    /// section for 10 ms, a second waits for a grace period, and two more enter and leave
    /// short sections all the while: the wait must last until the long section ends (it
    /// began before the grace period) and must end then. A lost wake-up would hang, so the
    /// rounds run in an exit test with a watchdog (`alarm`), as the process-life tests do.
    @Test func aSleepingGracePeriodIsWokenByTheReaderItWaitsFor() async {
        await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            alarm(120)  // watchdog: a grace period no reader wakes would hang
            // Rounds whose grace period began while the long section still ran: only those
            // test the wake (on a loaded machine a round's grace period can start after the
            // 10 ms section ended; found by review, 2026-12-06, twenty-sixth session).
            var roundsThatWaited = 0
            for round in 0..<20 {
                let readerInside = Atomic<Bool>(false)
                let readerDone = Atomic<Bool>(false)
                let graceDone = Atomic<Bool>(false)
                let early = Atomic<Bool>(false)
                let startedInside = Atomic<Bool>(false)
                let shortSections = Atomic<Int>(0)
                runOnThreads(4) { thread in
                    switch thread {
                    case 0:
                        Epoch.withSection { _ in
                            readerInside.store(true, ordering: .releasing)
                            usleep(10_000)
                            readerDone.store(true, ordering: .releasing)
                        }
                    case 1:
                        // Once the short sections run too (on a loaded machine their threads
                        // could start only after the grace period had ended).
                        while !readerInside.load(ordering: .acquiring) || shortSections.load(ordering: .relaxed) == 0 {
                            sched_yield()
                        }
                        startedInside.store(!readerDone.load(ordering: .acquiring), ordering: .relaxed)
                        Epoch.synchronize()
                        if !readerDone.load(ordering: .acquiring) { early.store(true, ordering: .relaxed) }
                        graceDone.store(true, ordering: .releasing)
                    default:
                        while !graceDone.load(ordering: .acquiring) {
                            Epoch.withSection { _ in _ = shortSections.wrappingAdd(1, ordering: .relaxed) }
                        }
                    }
                }
                if early.load(ordering: .relaxed) || shortSections.load(ordering: .relaxed) == 0 {
                    FileHandle.standardError.write(Data("round \(round): the grace period ended inside the section it waited for\n".utf8))
                    exit(1)
                }
                if startedInside.load(ordering: .relaxed) { roundsThatWaited += 1 }
            }
            if roundsThatWaited == 0 {
                FileHandle.standardError.write(Data("no round's grace period began inside the long section\n".utf8))
                exit(1)
            }
        }
    }
}

/// The read side's fast path (CRCUMapsInlineReadSide) writes liburcu's reader counter
/// itself; a liburcu read lock the caller takes directly (a C library's, or the
/// application's own after `Epoch.adoptRegisteredThread()`) must nest with it either way.
@Suite("Epoch sections and direct liburcu read locks")
struct EpochDirectReadLockTests {
    @Test func aSectionInsideADirectReadLockLeavesItHeld() {
        Epoch.withSection { _ in }  // registers the thread with liburcu
        #expect(urcu_memb_read_ongoing() == 0)
        Epoch.withSection { _ in #expect(urcu_memb_read_ongoing() != 0) }
        #expect(urcu_memb_read_ongoing() == 0)

        urcu_memb_read_lock()
        Epoch.withSection { _ in Epoch.withSection { _ in } }
        Epoch.enter()
        Epoch.exit()
        #expect(urcu_memb_read_ongoing() != 0)
        // A grace period that starts now still waits for the direct lock.
        let graceElapsed = Atomic<Bool>(false)
        let updater = Thread {
            Epoch.synchronize()
            graceElapsed.store(true, ordering: .releasing)
        }
        updater.start()
        usleep(50_000)
        let elapsedWhileHeld = graceElapsed.load(ordering: .acquiring)
        urcu_memb_read_unlock()
        #expect(urcu_memb_read_ongoing() == 0)
        let deadline = Date().addingTimeInterval(30)
        while !graceElapsed.load(ordering: .acquiring), Date() < deadline { usleep(1000) }
        #expect(!elapsedWhileHeld)
        let elapsed = graceElapsed.load(ordering: .acquiring)
        #expect(elapsed)
    }

    /// An adopted thread released before the application unregisters it from liburcu:
    /// its next section registers it anew, and a grace period waits for that section. (An
    /// adopted thread kept the fast path after the application unregistered it, and its
    /// sections marked a reader grace periods no longer waited for: found by review.)
    @Test func aReleasedAdoptedThreadIsProtectedAgainAfterItsUnregistration() {
        final class Result: Sendable {
            let graceEndedInside = Atomic<Bool>(true)
            let done = Atomic<Bool>(false)
        }
        let result = Result()
        Thread {
            urcu_memb_register_thread()
            Epoch.adoptRegisteredThread()
            Epoch.withSection { _ in }      // the fast path is on for this thread
            Epoch.releaseAdoptedThread()
            urcu_memb_unregister_thread()   // the application's own unregistration
            let graceEnded = Atomic<Bool>(false)
            Epoch.withSection { _ in
                let updater = Thread {
                    Epoch.synchronize()
                    graceEnded.store(true, ordering: .releasing)
                }
                updater.start()
                usleep(50_000)
                result.graceEndedInside.store(graceEnded.load(ordering: .acquiring), ordering: .relaxed)
            }
            while !graceEnded.load(ordering: .acquiring) { usleep(1_000) }
            result.done.store(true, ordering: .releasing)
        }.start()
        let deadline = Date().addingTimeInterval(30)
        while !result.done.load(ordering: .acquiring), Date() < deadline { usleep(1_000) }
        let finished = result.done.load(ordering: .acquiring)
        let endedInside = result.graceEndedInside.load(ordering: .relaxed)
        #expect(finished)
        #expect(!endedInside, "a grace period ended during the released thread's section")
    }

    /// Adopting a thread liburcu does not know stops the program with a message. It was
    /// adopted silently, and its sections marked a reader grace periods never scan: nothing
    /// read in them was protected (found by review, 2026-12-05, nineteenth session).
    @Test func adoptingAThreadLiburcuDoesNotKnowStops() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let thread = Thread { Epoch.adoptRegisteredThread() }
            thread.start()
            sleep(30)  // the adoption stops the process first
        }.map { expectStandardError(of: $0, toContain: "is not registered with liburcu-memb") }
    }

    /// A freeze inside a liburcu read lock the thread took itself is EBUSY, as inside a
    /// section: it waited for a grace period that waited for that read lock, forever (found
    /// by review, 2026-12-05, nineteenth session). Outside it, the freeze goes through.
    @Test func aFreezeInsideADirectReadLockIsBusy() async {
        await #expect(processExitsWith: .success) {
            alarm(30)
            DirectReadLockCalls.freezeInsideAndOutside()
        }
    }

    /// `Epoch.synchronize()` and `barrier()` inside a liburcu read lock the thread took
    /// itself stop with a message, as inside a section (they waited for themselves).
    @Test func synchronizeInsideADirectReadLockStops() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            alarm(30)
            DirectReadLockCalls.waitForGracePeriodInside(barrier: false)
        }.map { expectStandardError(of: $0, toContain: "or a liburcu read lock) would deadlock") }
    }

    @Test func barrierInsideADirectReadLockStops() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            alarm(30)
            DirectReadLockCalls.waitForGracePeriodInside(barrier: true)
        }.map { expectStandardError(of: $0, toContain: "or a liburcu read lock) would deadlock") }
    }

    /// The async waits too: a task that awaited a barrier inside a liburcu read lock its
    /// thread holds gave the thread back to the pool holding it, and no grace period ended
    /// again (found by review of the session's diff, 2026-12-05, nineteenth session).
    @Test func awaitingABarrierInsideADirectReadLockStops() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            alarm(30)
            DirectReadLockCalls.enterDirectReadLock()
            await Epoch.barrier()
        }.map { expectStandardError(of: $0, toContain: "await Epoch.barrier() inside an epoch section (or a liburcu read lock)") }
    }

    /// Adopting or releasing a thread inside a liburcu read lock it holds stops with a
    /// message: both wait at the fork gate, which a fork closes while it waits for grace
    /// periods that wait for that read lock (found by review, 2026-12-05, nineteenth
    /// session).
    @Test func adoptingInsideADirectReadLockStops() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            DirectReadLockCalls.adoptOrReleaseInside(release: false)
        }.map { expectStandardError(of: $0, toContain: "inside a liburcu read lock") }
    }

    @Test func releasingInsideADirectReadLockStops() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            DirectReadLockCalls.adoptOrReleaseInside(release: true)
        }.map { expectStandardError(of: $0, toContain: "or a liburcu read lock") }
    }

    /// A released thread that makes a section before the application unregisters it from
    /// liburcu stops the program with a message that says so (the docs promised a fresh
    /// registration there, and the message said to adopt the thread); adopted again, it
    /// goes on.
    @Test func aSectionBetweenReleaseAndUnregistrationStopsWithAMessage() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let thread = Thread {
                urcu_memb_register_thread()
                Epoch.adoptRegisteredThread()
                Epoch.releaseAdoptedThread()
                Epoch.withSection { _ in }
            }
            thread.start()
            sleep(30)
        }.map { expectStandardError(of: $0, toContain: "released by Epoch.releaseAdoptedThread()") }
        await #expect(processExitsWith: .success) {
            let done = DispatchSemaphore(value: 0)
            Thread {
                urcu_memb_register_thread()
                Epoch.adoptRegisteredThread()
                Epoch.releaseAdoptedThread()
                Epoch.adoptRegisteredThread()
                Epoch.withSection { _ in }
                Epoch.releaseAdoptedThread()
                urcu_memb_unregister_thread()
                Epoch.withSection { _ in }  // RCUMaps' own registration now
                done.signal()
            }.start()
            done.wait()
        }
    }

    /// An adopted thread released, as the docs ask, from the application's own thread-exit
    /// key destructor, which runs after RCUMaps' own (a key created later runs later): the
    /// release finds the thread's record unlinked already and leaves it. (It unlinked it a
    /// second time and followed a NULL link: found by review, 2026-12-05.)
    @Test func anAdoptedThreadReleasedAfterRCUMapsExitHandlerExitsCleanly() async {
        await #expect(processExitsWith: .success) {
            Epoch.withSection { _ in }  // creates RCUMaps' exit key, before the one below
            let key = UnsafeMutablePointer<pthread_key_t>.allocate(capacity: 1)
            guard pthread_key_create(key, { _ in
                Epoch.releaseAdoptedThread()
                urcu_memb_unregister_thread()
            }) == 0 else { exit(2) }
            guard runAdoptedThread(settingKey: key) else { exit(3) }
            await Epoch.synchronize()  // the registry is intact
            exit(0)
        }
    }

    /// An adopted thread that retires memory from a thread-exit destructor that runs after
    /// RCUMaps' own (its record is unlinked then, so a fork would not wait for its enqueue):
    /// the retirement goes through the fork gate, and is reclaimed. Before, it was enqueued
    /// with no record a fork could see, and a fork between liburcu's two stores of the
    /// enqueue cut the child's queue (found by review, 2026-12-05; the race itself needs a
    /// fork at one instruction, so this exercises the gated path and checks it was taken).
    @Test func anAdoptedThreadRetiringAfterRCUMapsExitHandlerGoesThroughTheGate() async {
        await #expect(processExitsWith: .success) {
            Epoch.withSection { _ in }  // creates RCUMaps' exit key, before the one below
            let tag = PoolTag("late")
            let key = UnsafeMutablePointer<pthread_key_t>.allocate(capacity: 1)
            guard pthread_key_create(key, { _ in
                let before = rcumaps_unlinked_retirement_count()
                EpochMemory.free(EpochMemory.allocate(byteCount: 8, tag: PoolTag("late"))!)
                if rcumaps_unlinked_retirement_count() != before + 1 { exit(4) }
                Epoch.releaseAdoptedThread()
                urcu_memb_unregister_thread()
            }) == 0 else { exit(2) }
            guard runAdoptedThread(settingKey: key) else { exit(3) }
            await Epoch.barrier()  // the retirement was queued and runs
            if EpochMemory.statistics(for: tag).liveBytes != 0 { exit(5) }
            exit(0)
        }
    }

    /// A thread the application registered with liburcu and did not adopt: its first
    /// section stops the program with a message saying what to do. (liburcu's own
    /// assertion aborted without a word; a liburcu built without assertions would have
    /// linked the thread into its registry twice. Found by review, 2026-12-05.)
    @Test func anUnadoptedRegisteredThreadStopsWithAMessage() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Thread {
                urcu_memb_register_thread()
                Epoch.withSection { _ in }
            }.start()
            sleep(20)  // the thread stops the process long before
        }.map { expectStandardError(of: $0, toContain: "already registered with liburcu-memb") }
    }

    /// An application's own `call_rcu` callback that uses RCUMaps on liburcu's worker
    /// thread before any RCUMaps callback has run there: the worker is liburcu's, not a
    /// thread registered by other code. It was recognised only once one of RCUMaps' reclaim
    /// callbacks had marked it, so this section stopped the process with "already
    /// registered", and the adoption that message advised made the worker an application
    /// thread for good (found by review, 2026-12-06, twenty-third session). A fresh process,
    /// where no RCUMaps callback has run yet.
    @Test func liburcusWorkerIsRecognisedBeforeOurFirstCallback() async {
        await #expect(processExitsWith: .success) {
            let head = UnsafeMutablePointer<rcu_head>.allocate(capacity: 1)
            urcu_memb_register_thread()
            urcu_memb_call_rcu(head) { _ in
                Epoch.withSection { _ in }
                // A reclamation thread, as RCUMaps' own callbacks find it.
                if !EpochMemory.isReclamationThread { exit(3) }
                let block = EpochMemory.allocate(byteCount: 64, tag: PoolTag("test"))
                if let block { EpochMemory.free(block) }
            }
            urcu_memb_barrier()
            urcu_memb_unregister_thread()
            await Epoch.barrier()
        }
    }

    /// An application thread that set call_rcu data of its own is not liburcu's worker: it
    /// is adopted as the docs ask, and is no reclamation thread (the first version of the
    /// worker's recognition took any thread with call_rcu data for one: found by review).
    @Test func aThreadWithItsOwnCallRCUDataIsAdoptedAsTheApplicationsThread() async {
        await #expect(processExitsWith: .success) {
            // (A synchronous function: the adoption is for the calling thread.)
            func adoptAndRelease() {
                urcu_memb_register_thread()
                guard let data = urcu_memb_create_call_rcu_data(0, -1) else { exit(2) }
                urcu_memb_set_thread_call_rcu_data(data)
                Epoch.adoptRegisteredThread()
                if EpochMemory.isReclamationThread { exit(3) }
                Epoch.withSection { _ in }
                Epoch.releaseAdoptedThread()
                urcu_memb_set_thread_call_rcu_data(nil)
                urcu_memb_unregister_thread()
            }
            adoptAndRelease()
        }
    }

    /// A process that cannot start the grace-period driver's thread (at its thread limit)
    /// goes on: the driver's items wait, and `Epoch.barrier()` runs them itself; once a
    /// thread can be started, the next item enqueued 10 ms or more after the last failed
    /// start starts the driver. The first item aborted the process (found by review,
    /// 2026-12-06, twenty-third session). A fresh process, whose driver is not running yet.
    @Test func aDriverThatCannotStartLeavesItsItemsToTheBarrier() async {
        await #expect(processExitsWith: .success) {
            rcumaps_gp_test_fail_driver_starts(1)
            let ran = Atomic<Int>(0)
            for _ in 0..<3 {
                guard let item = EpochWorkItem({ ran.add(1, ordering: .relaxed) }) else { exit(2) }
                item.scheduleOnGracePeriodDriver()
            }
            await Epoch.barrier()
            if ran.load(ordering: .relaxed) != 3 { exit(3) }
            rcumaps_gp_test_fail_driver_starts(0)
            usleep(20_000)  // a start is tried again 10 ms after a failure at the earliest
            guard let item = EpochWorkItem({ ran.add(1, ordering: .relaxed) }) else { exit(2) }
            item.scheduleOnGracePeriodDriver()  // starts the driver now
            let deadline = ContinuousClock.now + .seconds(20)
            while ran.load(ordering: .relaxed) != 4, ContinuousClock.now < deadline { usleep(1_000) }
            if ran.load(ordering: .relaxed) != 4 { exit(4) }
        }
    }

    @Test func aDirectReadLockInsideASectionEndsWithIt() {
        Epoch.withSection { _ in
            urcu_memb_read_lock()
            #expect(urcu_memb_read_ongoing() != 0)
            urcu_memb_read_unlock()
            #expect(urcu_memb_read_ongoing() != 0)
        }
        #expect(urcu_memb_read_ongoing() == 0)
        // And the next sections take the fast path again: a grace period does not wait
        // for this thread between them.
        for _ in 0..<3 {
            Epoch.withSection { _ in }
            Epoch.synchronize()
        }
        #expect(urcu_memb_read_ongoing() == 0)
    }

    /// A section entered by a signal handler that interrupts the thread's own outermost
    /// enter holds a read lock of its own (the depth was raised before the reader counter
    /// was set: a handler in between read depth 1, took no lock, and grace periods did not
    /// wait for it; found by review, 2026-12-06, thirtieth session). Another thread signals
    /// this one thousands of times while it enters and leaves sections in a loop: Swift's
    /// sections (the inline read side) and the C client table's `epoch_enter` / `epoch_exit`
    /// (the shim's read side), each in the loop and the handler alike. Serialized: the cases
    /// share the handler and its counters.
    @Test(.serialized, arguments: [false, true])
    func aSectionInASignalHandlerHoldsAReadLockWhereverItInterrupts(viaClientTable: Bool) {
        Epoch.withSection { _ in }  // registered, on the fast path
        // Statics initialised before any signal.
        SignalProbe.handled.store(0, ordering: .relaxed)
        SignalProbe.unlocked.store(0, ordering: .relaxed)
        SignalProbe.viaClientTable.store(viaClientTable, ordering: .relaxed)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            if SignalProbe.viaClientTable.load(ordering: .relaxed) {
                rcumaps_epoch_enter()
                if urcu_memb_read_ongoing() == 0 { SignalProbe.unlocked.add(1, ordering: .relaxed) }
                rcumaps_epoch_exit()
            } else {
                Epoch.withSection { _ in
                    if urcu_memb_read_ongoing() == 0 { SignalProbe.unlocked.add(1, ordering: .relaxed) }
                }
            }
            SignalProbe.handled.add(1, ordering: .relaxed)
        }
        action.sa_flags = SA_RESTART
        var previous = sigaction()
        #expect(sigaction(SIGPROF, &action, &previous) == 0)
        let target = pthread_self()
        let stop = Atomic<Bool>(false)
        let finished = Atomic<Bool>(false)
        let sender = Thread {
            while !stop.load(ordering: .relaxed) {
                pthread_kill(target, SIGPROF)
                usleep(20)
            }
            finished.store(true, ordering: .releasing)
        }
        sender.start()
        let deadline = ContinuousClock.now + .seconds(5)
        var sections = 0
        while SignalProbe.handled.load(ordering: .relaxed) < 3_000, ContinuousClock.now < deadline {
            if viaClientTable {
                for _ in 0..<64 { rcumaps_epoch_enter(); rcumaps_epoch_exit() }
            } else {
                for _ in 0..<64 { Epoch.withSection { _ in } }
            }
            sections += 64
        }
        stop.store(true, ordering: .relaxed)
        // The sender's last signal sent (it may be preempted between its check and the send)
        // and handled, before the handler goes: SIGPROF's default action ends the process.
        while !finished.load(ordering: .acquiring) { usleep(1_000) }
        usleep(20_000)
        sigaction(SIGPROF, &previous, nil)
        let handled = SignalProbe.handled.load(ordering: .relaxed)
        #expect(SignalProbe.unlocked.load(ordering: .relaxed) == 0,
                "\(SignalProbe.unlocked.load(ordering: .relaxed)) of \(handled) handler sections held no read lock")
        // ThreadSanitizer defers a signal to its next intercepted call, which this loop may
        // never make: there, no handler need run.
        if rcumaps_tsan_enabled == 0 { #expect(handled > 100, "\(handled) signals handled in \(sections) sections") }
    }

    /// Many threads in short sections while grace periods run back to back: each grace
    /// period must wait for every section that began before it (a reader that sees a block
    /// freed meanwhile is a broken section), and none may wait forever.
    @Test func shortSectionsOnManyThreadsAgainstBackToBackGracePeriods() {
        let stop = Atomic<Bool>(false)
        let current = Atomic<UInt>(0)
        let corrupted = Atomic<Int>(0)
        let tag = uniqueTag()
        guard let first = EpochMemory.allocate(byteCount: 64, tag: tag) else {
            Issue.record("no memory")
            return
        }
        first.initializeMemory(as: UInt64.self, repeating: 0xC0FFEE, count: 8)
        current.store(UInt(bitPattern: first), ordering: .releasing)
        runOnThreads(4) { thread in
            if thread == 0 {
                for _ in 0..<300 {
                    guard let next = EpochMemory.allocate(byteCount: 64, tag: tag) else { continue }
                    next.initializeMemory(as: UInt64.self, repeating: 0xC0FFEE, count: 8)
                    let old = current.exchange(UInt(bitPattern: next), ordering: .acquiringAndReleasing)
                    let block = UnsafeMutableRawPointer(bitPattern: old)!
                    Epoch.synchronize()
                    // No section that could see `old` is still running: poison it, then free.
                    block.initializeMemory(as: UInt64.self, repeating: 0xDEAD, count: 8)
                    EpochMemory.free(block)
                }
                stop.store(true, ordering: .releasing)
            } else {
                while !stop.load(ordering: .acquiring) {
                    Epoch.withSection { _ in
                        let block = UnsafeRawPointer(bitPattern: current.load(ordering: .acquiring))!
                        for word in 0..<8 where block.load(fromByteOffset: word * 8, as: UInt64.self) != 0xC0FFEE {
                            corrupted.wrappingAdd(1, ordering: .relaxed)
                        }
                    }
                }
            }
        }
        EpochMemory.free(UnsafeMutableRawPointer(bitPattern: current.load(ordering: .acquiring))!)
        let corruptedValue = corrupted.load(ordering: .relaxed)
        #expect(corruptedValue == 0)
    }
}

@Suite("Epoch memory")
struct EpochMemoryTests {
    @Test func allocationsAreAccountedPerTagAndReclaimedAfterABarrier() throws {
        let tag = uniqueTag()
        var blocks: [UnsafeMutableRawPointer] = []
        for size in [1, 8, 100, 4000] {
            blocks.append(try #require(EpochMemory.allocate(byteCount: size, tag: tag)))
        }
        let live = EpochMemory.statistics(for: tag)
        #expect(live.liveAllocations == 4)
        #expect(live.allocationCount == 4)
        #expect(live.liveBytes >= 1 + 8 + 100 + 4000 + 4 * EpochMemory.headerSize)
        #expect(live.pendingBytes == 0)
        for block in blocks { EpochMemory.free(block) }
        let settled = settledStatistics(for: tag)
        #expect(settled.liveBytes == 0)
        #expect(settled.pendingBytes == 0)
        #expect(settled.liveAllocations == 0)
        #expect(settled.allocationCount == 4)
        #expect(EpochMemory.allStatistics().contains { $0.tag == tag })
    }

    @Test func blocksAreAligned() throws {
        let tag = uniqueTag()
        for size in [1, 63, 64, 65, 1000] {
            let plain = try #require(EpochMemory.allocate(byteCount: size, tag: tag))
            #expect(Int(bitPattern: plain) % EpochMemory.alignment == 0)
            let aligned = try #require(EpochMemory.allocateCacheAligned(byteCount: size, tag: tag))
            #expect(Int(bitPattern: aligned) % 64 == 0)
            aligned.initializeMemory(as: UInt8.self, repeating: 0xCC, count: (size + 63) / 64 * 64)
            EpochMemory.free(plain)
            EpochMemory.freeCacheAligned(aligned)
        }
        #expect(settledStatistics(for: tag).liveBytes == 0)
    }

    @Test func unpublishedBlocksAreReleasedAtOnce() throws {
        let tag = uniqueTag()
        let block = try #require(EpochMemory.allocate(byteCount: 32, tag: tag))
        EpochMemory.freeUnpublished(block)
        let stats = EpochMemory.statistics(for: tag)
        #expect(stats.liveBytes == 0 && stats.pendingBytes == 0 && stats.liveAllocations == 0)
    }

    @Test func injectedAllocationFailureReturnsNil() throws {
        let tag = uniqueTag()
        _FaultInjection.failAllocations(tag: tag, after: 1)
        defer { _FaultInjection.disarm(tag: tag) }
        let first = try #require(EpochMemory.allocate(byteCount: 8, tag: tag))
        #expect(EpochMemory.allocate(byteCount: 8, tag: tag) == nil)
        #expect(EpochMemory.allocateCacheAligned(byteCount: 8, tag: tag) == nil)
        // Other tags are unaffected.
        let other = try #require(EpochMemory.allocate(byteCount: 8, tag: uniqueTag()))
        EpochMemory.freeUnpublished(other)
        EpochMemory.freeUnpublished(first)
    }

    /// A thread's own fault plan leaves the tag plans in force on that thread: an
    /// allocation under a failing tag fails there too, and counts against the tag's
    /// successes (the thread's plan returned first, and such allocations succeeded: found
    /// by review, 2026-12-06, reliability.md row 289).
    @Test func aThreadsOwnFaultPlanLeavesTheTagPlansInForce() {
        let tag = uniqueTag()
        _FaultInjection.failAllocations(tag: tag, after: 1)
        defer { _FaultInjection.disarm(tag: tag) }
        let (blocks, injected) = _FaultInjection.failingOneAllocation(after: 5) {
            (EpochMemory.allocate(byteCount: 8, tag: tag), EpochMemory.allocate(byteCount: 8, tag: tag))
        }
        #expect(!injected)
        #expect(blocks.0 != nil)  // the tag's one success
        #expect(blocks.1 == nil)  // then the tag's plan fails it
        if let first = blocks.0 { EpochMemory.freeUnpublished(first) }
        if let second = blocks.1 { EpochMemory.freeUnpublished(second) }
    }

    /// Huge-page advice on a large cache-aligned block leaves no mapping of the process
    /// advised once the block is freed: the block is a mapping of its own. It came from
    /// glibc's heap once glibc's mapping threshold had risen (a large block freed before),
    /// and the advice stayed on the heap for whatever was allocated there next (found by
    /// review, 2026-12-06, reliability.md row 285). A fresh process: nothing else advises.
    @Test func hugePageAdviceLeavesNoMappingAdvisedOnceTheBlockIsFreed() async throws {
        // Where the advice cannot be seen — a kernel without transparent huge pages (the
        // advice fails), `smaps` without `VmFlags` (some sandboxes) — there is nothing to test.
        let probe = try #require(mmap(nil, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        let advisable = madvise(probe, 4 << 20, MADV_HUGEPAGE) == 0 && Self.advisedMappings() >= 1
        munmap(probe, 4 << 20)
        guard advisable else { try Test.cancel("huge-page advice is not available or not visible in /proc/self/smaps") }
        await #expect(processExitsWith: .success) {
            // On a thread of its own, whose allocations come from one of glibc's thread
            // arenas (the main thread's large block may be mapped anyway).
            runOnThreads(1) { _ in
                // Freeing a mapped chunk raises glibc's threshold past its size.
                let raise = malloc(8 << 20)
                _ = write(-1, raise, 1)  // used, so that the pair is not optimised away
                free(raise)
                let size = 6 << 20
                guard let block = EpochMemory.allocateCacheAligned(byteCount: size, tag: .general) else { exit(2) }
                rcumaps_advise_huge_pages(block, size)
                block.initializeMemory(as: UInt8.self, repeating: 1, count: size)
                // The advice took (else the check below proves nothing).
                if EpochMemoryTests.advisedMappings() < 1 { exit(3) }
                EpochMemory.freeUnpublished(block)
            }
            exit(EpochMemoryTests.advisedMappings() == 0 ? 0 : 1)
        }
    }

    /// The mappings of the process advised for huge pages (`hg` in their `VmFlags`), or -1.
    /// Read with stdio: `String(contentsOfFile:)` read only the first part of the file.
    static func advisedMappings() -> Int {
        guard let file = fopen("/proc/self/smaps", "r") else { return -1 }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        var count = 0
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            if text.hasPrefix("VmFlags:"), text.split(whereSeparator: \.isWhitespace).contains("hg") { count += 1 }
        }
        return count
    }

    @Test func retiringTwiceStopsTheProgram() async {
        await #expect(processExitsWith: .failure) {
            let block = EpochMemory.allocate(byteCount: 8, tag: .general)!
            EpochMemory.free(block)
            EpochMemory.free(block)
        }
    }

    @Test func freeingWithTheWrongFunctionStopsTheProgram() async {
        await #expect(processExitsWith: .failure) {
            let block = EpochMemory.allocate(byteCount: 8, tag: .general)!
            EpochMemory.freeCacheAligned(block)
        }
    }

    @Test func synchronizeInsideASectionStopsTheProgram() async {
        await #expect(processExitsWith: .failure) {
            Epoch.withSection { _ in Epoch.synchronize() }
        }
    }

    /// An `exit()` inside `withSection` with no `enter()` of its own ends the section early;
    /// `withSection` stops the program instead of wrapping the thread's depth around (which
    /// left every later section of the thread without a read lock).
    static func enterOutsideExitInside() {
        Epoch.enter()
        Epoch.withSection { _ in Epoch.exit() }
    }

    @Test func anUnbalancedExitInsideWithSectionStopsTheProgram() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Epoch.withSection { _ in Epoch.exit() }
        }
        // Balanced again by a later `enter()` — the habit of dropping a read lock to block
        // and taking it again — the depth never reached 0 and nothing stopped, while the
        // body's borrowed pointers went on without a read lock (found by review, 2026-12-06,
        // twenty-sixth session): the `exit()` itself stops the program now, also inside an
        // outer section.
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Epoch.withSection { _ in
                Epoch.exit()
                Epoch.enter()
            }
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("no Epoch.enter() of its own open"), "\(message)")
        await #expect(processExitsWith: .failure) {
            Epoch.withSection { _ in
                Epoch.withSection { _ in
                    Epoch.exit()
                    Epoch.enter()
                }
            }
        }
        // An `enter()` outside and its `exit()` inside a section are still a pair.
        Self.enterOutsideExitInside()
        #expect(!Epoch.isActive)
        // Balanced pairs inside a section are fine.
        Epoch.withSection { _ in
            Epoch.enter()
            Epoch.exit()
        }
        #expect(!Epoch.isActive)
    }

    /// A thread that exits inside its own `enter()`: the exit handler ends the section, and
    /// with it the count of unscoped sections `exit()` may end. It kept that count, so a
    /// later thread-exit destructor on the thread could drop its own `withSection`'s read
    /// lock with a stray `exit()` (balanced by an `enter()`), and nothing stopped (found by
    /// review, 2026-12-06, twenty-seventh session).
    @Test func aStrayExitInADestructorAfterAnExitInsideASectionStopsTheProgram() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Self.exitInsideEnterThenStrayExitInADestructor()
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("exited inside an epoch section"), "\(message)")
        #expect(message.contains("no Epoch.enter() of its own open"), "\(message)")
    }

    static func exitInsideEnterThenStrayExitInADestructor() {
        Epoch.withSection { _ in }  // creates RCUMaps' exit key, before the one below
        let key = UnsafeMutablePointer<pthread_key_t>.allocate(capacity: 1)
        guard pthread_key_create(key, { _ in
            Epoch.withSection { _ in
                Epoch.exit()
                Epoch.enter()
            }
        }) == 0 else { exit(2) }
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { argument in
            pthread_setspecific(argument!.assumingMemoryBound(to: pthread_key_t.self).pointee, UnsafeRawPointer(bitPattern: 1))
            Epoch.enter()
            return nil  // exits inside the section
        }, key) == 0 else { exit(3) }
        pthread_join(thread, nil)
        exit(0)
    }

    @Test func manyThreadsAllocateAndFreeConcurrently() {
        let tag = uniqueTag()
        runOnThreads(4) { thread in
            var held: [UnsafeMutableRawPointer] = []
            for index in 0..<5000 {
                if let block = EpochMemory.allocate(byteCount: 16 + (index % 64), tag: tag) {
                    block.storeBytes(of: UInt64(thread), as: UInt64.self)
                    held.append(block)
                }
                if held.count > 32 { EpochMemory.free(held.removeFirst()) }
            }
            for block in held { EpochMemory.free(block) }
        }
        let settled = settledStatistics(for: tag)
        #expect(settled.liveBytes == 0)
        #expect(settled.allocationCount == 20_000)
    }
}

@Suite("Deferred work")
struct EpochWorkItemTests {
    @Test func workRunsAfterAGracePeriodExactlyOnce() throws {
        let runs = Atomic<Int>(0)
        let item = try #require(EpochWorkItem { runs.wrappingAdd(1, ordering: .relaxed) })
        #expect(item.schedule())
        #expect(!item.schedule())
        #expect(!item.cancel())
        Epoch.barrier()
        let runsValue = runs.load(ordering: .relaxed)
        #expect(runsValue == 1)
    }

    @Test func workWaitsForReadersThatWereActive() {
        let ran = Atomic<Bool>(false)
        let ranWhileReaderInside = Atomic<Bool>(false)
        Epoch.withSection { _ in
            Epoch.afterGracePeriod { ran.store(true, ordering: .releasing) }
            usleep(20_000)
            if ran.load(ordering: .acquiring) { ranWhileReaderInside.store(true, ordering: .relaxed) }
        }
        Epoch.barrier()
        let ranValue = ran.load(ordering: .acquiring)
        #expect(ranValue)
        let ranWhileReaderInsideValue = ranWhileReaderInside.load(ordering: .relaxed)
        #expect(!ranWhileReaderInsideValue)
    }

    @Test func cancelledWorkNeverRunsAndItsMemoryIsReleased() throws {
        let tag = uniqueTag()
        let runs = Atomic<Int>(0)
        do {
            let item = try #require(EpochWorkItem(tag: tag) { runs.wrappingAdd(1, ordering: .relaxed) })
            #expect(EpochMemory.statistics(for: tag).liveAllocations == 1)
            #expect(item.cancel())
            #expect(!item.schedule())
        }
        Epoch.barrier()
        let runsValue = runs.load(ordering: .relaxed)
        #expect(runsValue == 0)
        #expect(settledStatistics(for: tag).liveBytes == 0)
    }

    @Test func workItemsMayFreeEpochMemory() throws {
        let tag = uniqueTag()
        let block = try #require(EpochMemory.allocate(byteCount: 128, tag: tag))
        let address = UInt(bitPattern: block)
        Epoch.afterGracePeriod(tag: tag) { EpochMemory.free(UnsafeMutableRawPointer(bitPattern: address)!) }
        let settled = settledStatistics(for: tag)
        #expect(settled.liveBytes == 0)
        #expect(settled.allocationCount == 2)
    }

    @Test func workItemsFailCleanlyWhenMemoryRunsOut() {
        let tag = uniqueTag()
        _FaultInjection.failAllocations(tag: tag)
        defer { _FaultInjection.disarm(tag: tag) }
        #expect(EpochWorkItem(tag: tag) {} == nil)
        #expect(!Epoch.afterGracePeriod(tag: tag) {})
    }

    /// A barrier waits for work that the work it waited for queued in turn, three deep: it
    /// waited for the first item only, as liburcu's barrier does not wait for a callback
    /// queued behind its own (a released object whose deinit drops a map of objects; found
    /// by review, 2026-12-05, nineteenth session: the inner item had not run after the
    /// barrier in 20 rounds of 20).
    @Test func aBarrierWaitsForWorkThatWorkQueued() {
        final class Count: Sendable { let value = Atomic<Int>(0) }
        for round in 0..<20 {
            let count = Count()
            Epoch.afterGracePeriod {
                count.value.add(1, ordering: .relaxed)
                Epoch.afterGracePeriod {
                    count.value.add(1, ordering: .relaxed)
                    Epoch.afterGracePeriod { count.value.add(1, ordering: .relaxed) }
                }
            }
            Epoch.barrier()
            #expect(count.value.load(ordering: .relaxed) == 3, "round \(round)")
        }
    }
}

@Suite("NUMA topology")
struct NUMATopologyTests {
    @Test func reportsAtLeastOneNodeAndAValidCurrentNode() {
        #expect(NUMATopology.nodeCount >= 1)
        #expect((0..<NUMATopology.nodeCount).contains(NUMATopology.currentNode))
        #expect(NUMATopology.currentCPU >= 0)
    }

    /// Memory preferred for a node without memory (online, with CPUs) goes to the node with
    /// memory nearest it, as Linux's map memory does: the kernel refuses a preference for
    /// such a node, and the pages went wherever they were first touched (found by review,
    /// 2026-12-06, reliability.md row 290). The choice, on machines this one is not (it has
    /// one node).
    @Test func aNodeWithoutMemoryPrefersTheNearestNodeWithMemory() {
        func nearest(_ node: Int32, _ hasMemory: [UInt8], _ distances: [Int32]) -> Int32 {
            rcumaps_numa_nearest_node_with_memory(node, Int32(hasMemory.count), hasMemory, distances)
        }
        let distances: [Int32] = [10, 20, 30, 40,
                                  20, 10, 15, 15,
                                  30, 15, 10, 25,
                                  40, 15, 25, 10]
        #expect(nearest(1, [1, 0, 1, 1], distances) == 2)  // 15 to nodes 2 and 3: the lower
        #expect(nearest(1, [1, 0, 0, 1], distances) == 3)
        #expect(nearest(2, [1, 1, 1, 1], distances) == 2)  // with memory: itself
        #expect(nearest(0, [0, 0, 0, 0], distances) == -1)
        #expect(nearest(4, [1, 1, 1, 1], distances) == -1)  // no such node
        #expect(nearest(1, [1, 0, 1, 1], [10, 20, 30, 40, 0, 10, -1, 15, 30, 15, 10, 25, 40, 15, 25, 10]) == 3)
    }
}

@Suite("Headerless blocks and retire lists")
struct EpochRetireListTests {
    /// A list of references has no blocks: `allocate()` and `freeUnpublished(_:)` on one
    /// stop with a message. The docs said so but nothing checked: `freeUnpublished` freed an
    /// object's memory while references to it remained, and `allocate()`'s `malloc(0)`,
    /// once retired, reached the finalizer as an object (found by review, 2026-12-06).
    @Test func aListOfReferencesRefusesBlockCalls() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = ReferenceListCalls.list().allocate()
        }.map { expectStandardError(of: $0, toContain: "allocate() on a list of references") }
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let object = Unmanaged.passRetained(ReferenceListCalls.Object()).toOpaque()
            ReferenceListCalls.list().freeUnpublished(object)
        }.map { expectStandardError(of: $0, toContain: "freeUnpublished(_:) on a list of references") }
    }

    @Test func blocksAreAccountedWithoutHeadersAndFreedInBatches() throws {
        let tag = uniqueTag()
        let list = EpochRetireList(blockSize: 32, tag: tag)
        let count = EpochRetireList.batchSize * 2 + 5
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<count {
            let block = try #require(list.allocate())
            #expect(Int(bitPattern: block) % EpochMemory.alignment == 0)
            block.initializeMemory(as: UInt8.self, repeating: 0xAB, count: 32)
            blocks.append(block)
        }
        let live = EpochMemory.statistics(for: tag)
        #expect(live.liveAllocations == count)
        #expect(live.liveBytes == count * 32)
        // Inside a section, so that the two full batches that go out on their own cannot
        // finish their grace period before the figure is read (on a loaded machine the
        // reclamation thread could free the first one in between).
        Epoch.withSection { _ in
            for block in blocks { list.retire(block) }
            #expect(EpochMemory.statistics(for: tag).pendingBytes == count * 32)
        }
        // Two full batches went out on their own; the last 5 wait for a flush, which
        // Epoch.barrier() performs.
        let settled = settledStatistics(for: tag)
        #expect(settled.liveBytes == 0)
        #expect(settled.pendingBytes == 0)
        #expect(settled.liveAllocations == 0)
        #expect(settled.allocationCount == count)
    }

    @Test func aRetiredBlockOutlivesTheSectionsThatCouldSeeIt() throws {
        let tag = uniqueTag()
        let list = EpochRetireList(blockSize: 8, tag: tag)
        let block = try #require(list.allocate())
        block.storeBytes(of: UInt64(42), as: UInt64.self)
        let entered = Atomic<Bool>(false)
        let release = Atomic<Bool>(false)
        let readBack = Atomic<UInt64>(0)
        let address = UInt(bitPattern: block)
        let reader = Thread {
            Epoch.withSection { _ in
                entered.store(true, ordering: .releasing)
                while !release.load(ordering: .acquiring) { usleep(1000) }
                readBack.store(UnsafeRawPointer(bitPattern: address)!.load(as: UInt64.self), ordering: .relaxed)
            }
        }
        reader.start()
        while !entered.load(ordering: .acquiring) { usleep(1000) }
        list.retire(block)
        list.flush()
        usleep(50_000)
        // The reader is still inside: the block must not have been reclaimed.
        #expect(EpochMemory.statistics(for: tag).liveAllocations == 1)
        release.store(true, ordering: .releasing)
        while readBack.load(ordering: .relaxed) == 0 { usleep(1000) }
        #expect(readBack.load(ordering: .relaxed) == 42)
        #expect(settledStatistics(for: tag).liveAllocations == 0)
    }

    @Test func unpublishedBlocksAreReleasedAtOnce() throws {
        let tag = uniqueTag()
        let list = EpochRetireList(blockSize: 24, tag: tag)
        let block = try #require(list.allocate())
        #expect(EpochMemory.statistics(for: tag).liveBytes == 24)
        list.freeUnpublished(block)
        let stats = EpochMemory.statistics(for: tag)
        #expect(stats.liveBytes == 0 && stats.pendingBytes == 0 && stats.liveAllocations == 0)
    }

    @Test func batchesOutliveTheirList() throws {
        // The batch carries its blocks' size and tag: the reclaim callback, after the grace
        // period, must not need the list that submitted it.
        let tag = uniqueTag()
        do {
            let list = EpochRetireList(blockSize: 40, tag: tag)
            for _ in 0..<10 { list.retire(try #require(list.allocate())) }
            #expect(EpochMemory.statistics(for: tag).pendingBytes == 400)
        }  // deinit submits the 10 blocks
        let settled = settledStatistics(for: tag)
        #expect(settled.liveBytes == 0 && settled.pendingBytes == 0 && settled.liveAllocations == 0)
        #expect(settled.allocationCount == 10)
    }

    /// Blocks kept because their batch block could not be allocated go out with the list's
    /// next full batch, without a flush or a barrier (found by review, 2026-12-03: they
    /// waited for `flush()`, which a busy list's writers never call). In a process of its
    /// own: another test's barrier, which flushes every list, hid the defect in the
    /// parallel suite (found by review, 2026-12-05). Exit status 2: nothing was injected;
    /// 3: not kept; 4: not reclaimed.
    @Test func blocksKeptWithoutMemoryGoWithTheNextBatch() async {
        await #expect(processExitsWith: .success) {
            alarm(60)
            let batch = EpochRetireList.batchSize
            let tag = uniqueTag()
            let list = EpochRetireList(blockSize: 16, tag: tag)
            var blocks: [UnsafeMutableRawPointer] = []
            for _ in 0..<(2 * batch) { blocks.append(list.allocate()!) }
            // The first full batch's submission (this thread's stripe fills on its 64th
            // retire) finds no memory for its batch block: kept.
            let (_, injected) = _FaultInjection.failingOneAllocation(after: 0) {
                for block in blocks[..<batch] { list.retire(block) }
            }
            if !injected { exit(2) }
            if EpochMemory.statistics(for: tag).pendingBytes != 16 * batch { exit(3) }
            // The second full batch takes the first along. No barrier: it flushes, which
            // would hide the defect.
            for block in blocks[batch...] { list.retire(block) }
            let deadline = ContinuousClock.now + .seconds(30)
            while EpochMemory.statistics(for: tag).liveAllocations != 0 {
                if ContinuousClock.now > deadline { exit(4) }
                await Epoch.synchronize()
                usleep(2_000)
            }
            withExtendedLifetime(list) {}
            exit(0)
        }
    }

    /// `Epoch.barrier()` waits for a list whose last reference is gone but whose `deinit`
    /// has not flushed its stripes yet (its weak reference in the registry already reads
    /// nil): before (found by review, 2026-12-05), the barrier passed it over and returned
    /// with the list's blocks still pending.
    @Test func aBarrierWaitsForAListBeingDeinitialised() {
        final class Holder: @unchecked Sendable {
            // Written by the thread that drops it; nothing else reads it.
            var list: EpochRetireList?
        }
        let tag = uniqueTag()
        let paused = DispatchSemaphore(value: 0), resume = DispatchSemaphore(value: 0)
        let holder = Holder()
        do {
            let list = EpochRetireList(blockSize: 64, tag: tag)
            list.retire(list.allocate()!)  // stays in this thread's stripe
            list.beforeDeinitFlush = { paused.signal(); resume.wait() }
            holder.list = list
        }
        Thread { holder.list = nil }.start()  // the deinit runs there, and pauses
        paused.wait()
        let pendingAtReturn = Atomic<Int>(-1)
        let returned = DispatchSemaphore(value: 0)
        Thread {
            Epoch.barrier()
            pendingAtReturn.store(EpochMemory.statistics(for: tag).pendingBytes, ordering: .releasing)
            returned.signal()
        }.start()
        let returnedWhilePaused = returned.wait(timeout: .now() + 0.2) == .success
        resume.signal()
        if !returnedWhilePaused { returned.wait() }
        #expect(!returnedWhilePaused, "the barrier returned before the list's deinit flushed")
        #expect(pendingAtReturn.load(ordering: .acquiring) == 0)
    }

    /// A throttled writer waits at most the throttle's limit, also while another list is
    /// being deinitialised: its flush of every list used to wait, without bound, for that
    /// deinit (and for other threads' submissions), whatever they waited for — with a fork
    /// in the picture, a callback that wants a lock the writer holds (row 39's deadlock,
    /// back through row 77's flush; found by review, 2026-12-05, eighteenth session).
    @Test func aThrottledWriterDoesNotWaitForAListBeingDeinitialised() {
        final class Holder: @unchecked Sendable {
            // Written by the thread that drops it; nothing else reads it.
            var list: EpochRetireList?
        }
        let paused = DispatchSemaphore(value: 0), resume = DispatchSemaphore(value: 0)
        let holder = Holder()
        do {
            let list = EpochRetireList(blockSize: 64, tag: uniqueTag())
            list.retire(list.allocate()!)
            list.beforeDeinitFlush = { paused.signal(); resume.wait() }
            holder.list = list
        }
        Thread { holder.list = nil }.start()  // the deinit runs there, and pauses
        paused.wait()
        // A reader holds back every grace period until the writer has returned (5 s at most),
        // so that its backlog stays over the threshold and it flushes every list.
        let inSection = DispatchSemaphore(value: 0), readerDone = DispatchSemaphore(value: 0)
        let returned = DispatchSemaphore(value: 0), readerMayLeave = DispatchSemaphore(value: 0)
        Thread {
            Epoch.withSection { _ in
                inSection.signal()
                _ = readerMayLeave.wait(timeout: .now() + 5)
            }
            readerDone.signal()
        }.start()
        inSection.wait()
        let list = EpochRetireList(blockSize: 1 << 20, tag: uniqueTag())
        let elapsed = Atomic<Int>(-1)
        let throttled = EpochRetireList.throttledWrites
        let flushesOfEveryList = EpochRetireList.throttleFlushesOfEveryList.load(ordering: .relaxed)
        Thread {
            // 64 MiB retired: one full batch, over the 16 MiB threshold. (Another test's
            // barrier may flush the list between the retirements, so that no batch fills and
            // nothing is measured: then another 64 MiB, up to 8 rounds.)
            for _ in 0..<8 {
                for _ in 0..<EpochRetireList.batchSize { list.retire(list.allocate()!) }
                let throttledBefore = EpochRetireList.throttledWrites
                let start = ContinuousClock.now
                list.throttleIfBehind()
                let waited = ContinuousClock.now - start
                if EpochRetireList.throttledWrites > throttledBefore {
                    elapsed.store(Int(waited.components.seconds * 1000 + waited.components.attoseconds / 1_000_000_000_000_000),
                                  ordering: .releasing)
                    break
                }
            }
            returned.signal()
        }.start()
        let returnedWhilePaused = returned.wait(timeout: .now() + 5) == .success
        readerMayLeave.signal()
        resume.signal()
        if !returnedWhilePaused { returned.wait() }
        readerDone.wait()
        #expect(returnedWhilePaused, "the throttled writer waited for the deinit")
        let waited = elapsed.load(ordering: .acquiring)
        #expect(waited >= 0 && waited < 2_000, "waited \(waited) ms")
        // The case under test happened: the writer was throttled and flushed every list.
        #expect(EpochRetireList.throttledWrites > throttled)
        #expect(EpochRetireList.throttleFlushesOfEveryList.load(ordering: .relaxed) > flushesOfEveryList)
        Epoch.barrier()
    }

    @Test func anInjectedFaultFailsAllocation() {
        let tag = uniqueTag()
        let list = EpochRetireList(blockSize: 16, tag: tag)
        _FaultInjection.failAllocations(tag: tag, after: 0)
        defer { _FaultInjection.disarm(tag: tag) }
        #expect(list.allocate() == nil)
        #expect(EpochMemory.statistics(for: tag).liveAllocations == 0)
    }

    /// More threads than stripes, so threads share a stripe's lock: every block retired is
    /// finalized exactly once (none lost or doubled by the stripes' buffers), and all of them
    /// are reclaimed.
    @Test func manyThreadsRetireThroughOneList() {
        let tag = uniqueTag()
        let seen = FinalizedValues()
        let list = EpochRetireList(blockSize: 48, tag: tag, finalizer: seen)
        #expect(list.stripeCount.nonzeroBitCount == 1 && list.stripeCount <= 16)
        let threads = 2 * list.stripeCount + 1
        runOnThreads(threads) { thread in
            for index in 0..<5000 {
                guard let block = list.allocate() else { continue }
                block.storeBytes(of: UInt64(thread * 5000 + index), as: UInt64.self)
                Epoch.withSection { _ in list.retire(block) }
            }
        }
        let settled = settledStatistics(for: tag)
        #expect(settled.liveBytes == 0)
        #expect(settled.pendingBytes == 0)
        #expect(settled.allocationCount == threads * 5000)
        let counts = seen.counts.withLock { $0 }
        #expect(counts.count == threads * 5000)
        #expect(counts.values.allSatisfy { $0 == 1 })
    }
}

/// The lists here recycle even under AddressSanitizer (which public lists do not), so that
/// the sanitizer checks recycling's own bookkeeping.
@Suite("Recycled blocks of retire lists")
struct EpochRetireListRecyclingTests {
    /// Public lists recycle except under AddressSanitizer.
    @Test func recyclingIsOffOnlyUnderAddressSanitizer() throws {
        let tag = uniqueTag()
        let list = EpochRetireList(blockSize: 16, tag: tag, recycling: 64)
        list.retire(try #require(list.allocate()))
        Epoch.barrier()
        #expect((list.recycledBlockCount == 1) == EpochRetireList.recyclingIsAvailable)
        #expect(EpochMemory.statistics(for: tag).recycledBytes == (EpochRetireList.recyclingIsAvailable ? 16 : 0))
    }

    /// Blocks whose grace period is over come back from `allocate()`: the same addresses,
    /// accounted as allocated again, with the statistics as without recycling.
    @Test func blocksComeBackAfterTheirGracePeriod() throws {
        let tag = uniqueTag()
        let batch = EpochRetireList.batchSize
        let list = EpochRetireList.recyclingEvenUnderSanitizers(blockSize: 48, tag: tag, recycling: 4 * batch)
        // Every block allocated before any is retired: allocated in turns with the
        // retirements, the later ones could take blocks of the first batch, whose grace period
        // may already be over (then fewer than 2 × batch distinct blocks came back; seen
        // about once in seven runs of this suite under AddressSanitizer).
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<(2 * batch) { blocks.append(try #require(list.allocate())) }
        let retired = Set(blocks.map { UInt(bitPattern: $0) })
        for block in blocks { list.retire(block) }
        // Both full batches went out; after the barrier their blocks wait in the list.
        let settled = settledStatistics(for: tag)
        #expect(settled.liveAllocations == 0 && settled.liveBytes == 0 && settled.pendingBytes == 0)
        #expect(list.recycledBlockCount == 2 * batch)
        // Kept, they are not live but still the process's: the statistics say how much.
        #expect(settled.recycledBytes == 2 * batch * 48)
        #expect(EpochMemory.allStatistics().first { $0.tag == tag }?.recycledBytes == 2 * batch * 48)
        var again = Set<UInt>()
        for _ in 0..<(2 * batch) {
            let block = try #require(list.allocate())
            again.insert(UInt(bitPattern: block))
        }
        #expect(again == retired)
        let live = EpochMemory.statistics(for: tag)
        #expect(live.liveAllocations == 2 * batch && live.liveBytes == 2 * batch * 48)
        #expect(live.recycledBytes == 0)
        #expect(live.allocationCount == 4 * batch)
        // The next one is new memory.
        let fresh = try #require(list.allocate())
        #expect(!retired.contains(UInt(bitPattern: fresh)))
        for address in again { list.retire(UnsafeMutableRawPointer(bitPattern: address)!) }
        list.retire(fresh)
        let end = settledStatistics(for: tag)
        #expect(end.liveAllocations == 0)
        #expect(end.recycledBytes == (2 * batch + 1) * 48)
    }

    /// At most `recycling` blocks wait; the rest of a batch is freed as without recycling.
    @Test func theListKeepsNoMoreThanItsLimit() throws {
        let tag = uniqueTag()
        let batch = EpochRetireList.batchSize
        let list = EpochRetireList.recyclingEvenUnderSanitizers(blockSize: 32, tag: tag, recycling: 10)
        var retired = Set<UInt>()
        for _ in 0..<batch {
            let block = try #require(list.allocate())
            retired.insert(UInt(bitPattern: block))
            list.retire(block)
        }
        #expect(settledStatistics(for: tag).recycledBytes == 10 * 32)
        #expect(list.recycledBlockCount == 10)
        var taken: [UnsafeMutableRawPointer] = []
        for _ in 0..<10 {
            let block = try #require(list.allocate())
            #expect(retired.contains(UInt(bitPattern: block)))
            taken.append(block)
        }
        #expect(list.recycledBlockCount == 0)
        for block in taken { list.retire(block) }
        #expect(settledStatistics(for: tag).liveAllocations == 0)
    }

    /// An injected allocation failure fails a recycled allocation as well.
    @Test func anInjectedFaultFailsARecycledAllocation() throws {
        let tag = uniqueTag()
        let list = EpochRetireList.recyclingEvenUnderSanitizers(blockSize: 16, tag: tag, recycling: 256)
        for _ in 0..<EpochRetireList.batchSize { list.retire(try #require(list.allocate())) }
        _ = settledStatistics(for: tag)
        try #require(list.recycledBlockCount == EpochRetireList.batchSize)
        _FaultInjection.failAllocations(tag: tag, after: 0)
        #expect(list.allocate() == nil)
        _FaultInjection.disarm(tag: tag)
        #expect(EpochMemory.statistics(for: tag).liveAllocations == 0)
        // The kept blocks were there all along: disarmed, the next allocation takes one.
        let block = try #require(list.allocate())
        #expect(list.recycledBlockCount == EpochRetireList.batchSize - 1)
        list.retire(block)
    }

    /// A dropped list stays in the registry (whose lists the fork handlers lock) until its
    /// keeper of recycled blocks has closed: a fork meanwhile waits for the keeper's lock
    /// instead of copying it, held, into the child, where a batch still in flight would wait
    /// for it forever when its grace period ends.
    @Test func aListLeavesTheRegistryAfterItsKeeperCloses() throws {
        let tag = uniqueTag()
        let registeredWhenClosed = Mutex<Bool?>(nil)
        do {
            let list = EpochRetireList.recyclingEvenUnderSanitizers(blockSize: 16, tag: tag, recycling: 256)
            let id = ObjectIdentifier(list)
            #expect(EpochRetireList.isRegistered(id))
            list.whenRecycledBlocksClose { registeredWhenClosed.withLock { $0 = EpochRetireList.isRegistered(id) } }
            for _ in 0..<(EpochRetireList.batchSize + 3) { list.retire(try #require(list.allocate())) }
        }
        // The keeper closes once the last batch holding it has been reclaimed, which a
        // barrier alone did not always wait for under AddressSanitizer (read at once, the
        // flag was sometimes still unset): wait for it, up to 10 s.
        for _ in 0..<10_000 where registeredWhenClosed.withLock({ $0 }) == nil {
            Epoch.barrier()
            usleep(1_000)
        }
        #expect(registeredWhenClosed.withLock { $0 } == true)
        let settled = settledStatistics(for: tag)
        #expect(settled.liveAllocations == 0 && settled.recycledBytes == 0)
    }

    /// Threads allocating and retiring through one recycling list, more of them than
    /// stripes: every block retired is finalized exactly once per retirement, none is handed
    /// to two owners at once (each writes its own mark and finds it unchanged), and a list
    /// dropped with batches still in flight leaks nothing (the sanitizers' leak check).
    @Test func manyThreadsRecycleThroughOneList() {
        let tag = uniqueTag()
        let seen = FinalizedValues()
        do {
            let list = EpochRetireList.recyclingEvenUnderSanitizers(blockSize: 48, tag: tag, finalizer: seen, recycling: 512)
            let threads = 2 * list.stripeCount + 1
            let clashes = Atomic<Int>(0)
            runOnThreads(threads) { thread in
                for index in 0..<5000 {
                    guard let block = list.allocate() else { continue }
                    let mark = UInt64(thread * 5000 + index)
                    block.storeBytes(of: mark, as: UInt64.self)
                    sched_yield()  // let another owner of the block, if there were one, write
                    if block.load(as: UInt64.self) != mark { clashes.wrappingAdd(1, ordering: .relaxed) }
                    Epoch.withSection { _ in list.retire(block) }
                }
            }
            #expect(clashes.load(ordering: .relaxed) == 0)
            // Blocks were kept after their grace period (and so handed out again above).
            Epoch.barrier()
            #expect(list.recycledBlockCount > 0)
            // And the list goes with batches in flight.
            for _ in 0..<(EpochRetireList.batchSize + 7) {
                guard let block = list.allocate() else { continue }
                block.storeBytes(of: UInt64.max, as: UInt64.self)
                list.retire(block)
            }
        }
        let settled = settledStatistics(for: tag)
        #expect(settled.liveBytes == 0 && settled.pendingBytes == 0)
        let counts = seen.counts.withLock { $0 }
        #expect(counts.count == (2 * EpochRetireListRecyclingTests.stripes + 1) * 5000 + 1)
        #expect(counts.filter { $0.key != UInt64.max }.values.allSatisfy { $0 == 1 })
        #expect(counts[UInt64.max] == EpochRetireList.batchSize + 7)
    }

    static var stripes: Int { EpochRetireList(blockSize: 8, tag: uniqueTag()).stripeCount }
}

/// Counts the first word of every block it finalizes.
private final class FinalizedValues: EpochBlockFinalizer {
    let counts = Mutex<[UInt64: Int]>([:])

    func finalize(_ block: UnsafeMutableRawPointer) {
        let value = block.load(as: UInt64.self)
        counts.withLock { $0[value, default: 0] += 1 }
    }
}

/// Runs and joins a thread that registers itself with liburcu, is adopted by RCUMaps, sets
/// `key` (whose destructor then runs at the thread's exit, after RCUMaps' exit handler when
/// the key was created after RCUMaps' first registration) and makes one section. `false`
/// if the thread could not be started.
func runAdoptedThread(settingKey key: UnsafeMutablePointer<pthread_key_t>) -> Bool {
    var thread = pthread_t()
    guard pthread_create(&thread, nil, { argument in
        urcu_memb_register_thread()
        Epoch.adoptRegisteredThread()
        pthread_setspecific(argument!.assumingMemoryBound(to: pthread_key_t.self).pointee, UnsafeRawPointer(bitPattern: 1))
        Epoch.withSection { _ in }
        return nil
    }, key) == 0 else { return false }
    pthread_join(thread, nil)
    return true
}

/// The bodies of the direct-read-lock exit tests (an exit test captures nothing, and its
/// body is async: these block).
enum DirectReadLockCalls {
    static func freezeInsideAndOutside() {
        let map = try! RawArrayMap(MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: 4))
        Epoch.withSection { _ in }  // registered by RCUMaps
        urcu_memb_read_lock()
        let inside: MapError?
        do throws(MapError) { try map.freeze(); inside = nil } catch { inside = error }
        urcu_memb_read_unlock()
        precondition(inside == .busy, "inside the read lock: \(String(describing: inside))")
        precondition(!map.isFrozen)
        try! map.freeze()
        precondition(map.isFrozen)
    }

    static func enterDirectReadLock() {
        Epoch.withSection { _ in }
        urcu_memb_read_lock()
    }

    static func waitForGracePeriodInside(barrier: Bool) {
        Epoch.withSection { _ in }
        urcu_memb_read_lock()
        if barrier { Epoch.barrier() } else { Epoch.synchronize() }
    }

    static func adoptOrReleaseInside(release: Bool) {
        let thread = Thread {
            urcu_memb_register_thread()
            if release { Epoch.adoptRegisteredThread() }
            urcu_memb_read_lock()
            if release { Epoch.releaseAdoptedThread() } else { Epoch.adoptRegisteredThread() }
            urcu_memb_read_unlock()
            urcu_memb_unregister_thread()
        }
        thread.start()
        sleep(30)
    }
}

/// Expects an exit test's standard error to contain `text` (shown whole when it does not).
func expectStandardError(of result: ExitTest.Result, toContain text: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    let output = String(decoding: result.standardErrorContent, as: UTF8.self)
    #expect(output.contains(text), "\(output)", sourceLocation: sourceLocation)
}

/// What ``EpochRetireListTests/aListOfReferencesRefusesBlockCalls()`` needs in its exit tests
/// (which cannot capture values).
enum ReferenceListCalls {
    final class Object: Sendable {}
    final class Releaser: EpochBlockFinalizer {
        func finalize(_ block: UnsafeMutableRawPointer) { Unmanaged<AnyObject>.fromOpaque(block).release() }
    }
    static func list() -> EpochRetireList { EpochRetireList(referencesWithTag: PoolTag("refs"), finalizer: Releaser()) }
}

/// Counters of ``EpochDirectReadLockTests/aSectionInASignalHandlerHoldsAReadLockWhereverItInterrupts(viaClientTable:)``'s
/// signal handler (statics: a C handler captures nothing).
enum SignalProbe {
    static let handled = Atomic<Int>(0)
    static let unlocked = Atomic<Int>(0)
    static let viaClientTable = Atomic<Bool>(false)
}
