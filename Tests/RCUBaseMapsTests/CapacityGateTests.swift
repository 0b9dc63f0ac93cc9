#if canImport(Glibc)
import Glibc
#endif
@testable import RCUBaseMaps
import RCUEpoch
import RCUMapsTestSupport
import Synchronization
import Testing

/// `CapacityGate`, the maxEntries bound of the hash maps, under interleavings that
/// threads produce only rarely, replayed deterministically.
@Suite("Capacity gate")
struct CapacityGateTests {
    @Test func aFullMapRefusesANewKeyAndReportsAnExistingOne() {
        let gate = CapacityGate(maxEntries: 1)
        #expect(gate.reserve(keyExists: { false }) == .reserved)
        gate.resolve(published: true)
        #expect(gate.reserve(keyExists: { false }) == .full)
        #expect(gate.reserve(keyExists: { true }) == .exists)
        #expect(gate.entries == 1)
    }

    /// A racing insert of the same key publishes (and resolves) between this insert's first
    /// look for the key and its in-flight check: the map is full *with that key*, so the
    /// answer is "exists" (the caller then replaces it), never a spurious E2BIG.
    @Test func aKeyPublishedDuringTheFullCheckIsReportedAsExisting() {
        let gate = CapacityGate(maxEntries: 1)
        #expect(gate.reserve(keyExists: { false }) == .reserved)
        gate.resolve(published: true)
        var looks = 0
        let outcome = gate.reserve(keyExists: {
            looks += 1
            return looks > 1  // absent at the first look, present at the next
        })
        #expect(outcome == .exists)
    }

    @Test func aReservationThatIsNotPublishedIsReturned() {
        let gate = CapacityGate(maxEntries: 1)
        #expect(gate.reserve(keyExists: { false }) == .reserved)
        gate.resolve(published: false)
        #expect(gate.entries == 0)
        #expect(gate.reserve(keyExists: { false }) == .reserved)
        gate.resolve(published: true)
        gate.beginRemoval()
        gate.endRemoval(removed: true)
        #expect(gate.entries == 0)
    }

    /// Credits one thread parked (the rest of a batch it took, the units of its removals)
    /// are room for another: a thread that finds the map full as counted takes them back, so
    /// the map still fills to exactly maxEntries, and no further.
    @Test func creditsParkedByOneThreadAreRoomForAnother() {
        final class Shared: @unchecked Sendable {
            let gate = CapacityGate(maxEntries: 1000)
        }
        let shared = Shared()
        #expect(shared.gate.batch > 1, "a map this size takes credits in batches")
        // Each run is a new thread, hence (round-robin) another stripe than the last one.
        runOnThreads(1) { _ in
            for _ in 0..<5 {
                #expect(shared.gate.reserve(keyExists: { false }) == .reserved)
                shared.gate.resolve(published: true)
            }
            for _ in 0..<2 {
                shared.gate.beginRemoval()
                shared.gate.endRemoval(removed: true)
            }
            #expect(shared.gate.entries == 3)
        }
        runOnThreads(1) { _ in
            var reserved = 0
            while shared.gate.reserve(keyExists: { false }) == .reserved {
                shared.gate.resolve(published: true)
                reserved += 1
            }
            #expect(reserved == 997)
            #expect(shared.gate.entries == 1000)
        }
        runOnThreads(1) { _ in
            #expect(shared.gate.reserve(keyExists: { false }) == .full)
            #expect(shared.gate.count.load(ordering: .relaxed) == 1000)
        }
    }

    /// A drain that has taken a stripe's credits but not yet returned them to `count` is a
    /// change in flight: a reservation meanwhile waits for it, and gets its room. Found by
    /// review, 2026-12-03: the credits were in neither place for that moment, and a
    /// reservation on a map with room reported E2BIG. Replayed with the drainer paused in
    /// that window (threads whose stripes differ: the round-robin stripes are retried until
    /// they do).
    @Test func aReservationWaitsForADrainInProgress() throws {
        final class Scenario: @unchecked Sendable {
            // @unchecked: the gate is shared as every map shares its own, through atomics.
            let gate: CapacityGate
            let stripes = ThreadLock<[Int]>([-1, -1])
            let parked = Atomic<Bool>(false)
            let open = Atomic<Bool>(false)
            let waiterReserving = Atomic<Bool>(false)
            let abandoned = Atomic<Bool>(false)
            let waiterOutcome = ThreadLock<CapacityGate.Outcome?>(nil)
            init(pause: @escaping @Sendable () -> Void) { gate = CapacityGate(maxEntries: 2, drainPause: pause) }
        }
        for _ in 0..<16 {
            // Weak: the scenario holds the gate, which holds the pause closure, which holds the box.
            final class Box: @unchecked Sendable { weak var scenario: Scenario? }
            let box = Box()
            let scenario = Scenario(pause: {
                // The window: the waiter reserves in it (it decides within microseconds with
                // the old code; with the fix it waits for the drain to end).
                guard let scenario = box.scenario else { return }
                scenario.open.store(true, ordering: .releasing)
                while !scenario.waiterReserving.load(ordering: .acquiring) {
                    if scenario.abandoned.load(ordering: .acquiring) { return }
                    sched_yield()
                }
                usleep(50_000)
            })
            box.scenario = scenario
            for _ in 0..<2 {
                #expect(scenario.gate.reserve(keyExists: { false }) == .reserved)
                scenario.gate.resolve(published: true)
            }
            runOnThreads(2) { thread in
                let stripe = scenario.gate.ownStripe
                scenario.stripes.withLock { $0[thread] = stripe }
                if thread == 1 {
                    // The waiter: two removals park two credits in its stripe.
                    for _ in 0..<2 {
                        scenario.gate.beginRemoval()
                        scenario.gate.endRemoval(removed: true)
                    }
                    scenario.parked.store(true, ordering: .releasing)
                    while !scenario.open.load(ordering: .acquiring) {
                        if scenario.abandoned.load(ordering: .acquiring) { return }
                        sched_yield()
                    }
                    scenario.waiterReserving.store(true, ordering: .releasing)
                    let outcome = scenario.gate.reserve(keyExists: { false })
                    scenario.waiterOutcome.withLock { $0 = outcome }
                    if outcome == .reserved { scenario.gate.resolve(published: true) }
                } else {
                    // The drainer: finds the map full in its own stripe and drains the waiter's.
                    while !scenario.parked.load(ordering: .acquiring) { sched_yield() }
                    let stripes = scenario.stripes.withLock { $0 }
                    guard stripes[0] != stripes[1] else {
                        scenario.abandoned.store(true, ordering: .releasing)
                        return
                    }
                    #expect(scenario.gate.reserve(keyExists: { false }) == .reserved)
                    scenario.gate.resolve(published: true)
                }
            }
            if scenario.abandoned.load(ordering: .acquiring) { continue }
            #expect(scenario.waiterOutcome.withLock { $0 } == .reserved)
            #expect(scenario.gate.entries == 2)
            return
        }
        Issue.record("no two threads with different stripes in 16 tries")
    }

    /// The same window when a removal parks a credit in a stripe that holds more than two
    /// batches, which gives one batch back to the count: a reservation made meanwhile, by a
    /// thread that drained the stripe's other credits and filled the map to its last unit,
    /// reported E2BIG with a unit still on its way back (defect 41 in docs/reliability.md).
    @Test func aReservationWaitsForACreditBatchOnItsWayBack() throws {
        final class Scenario: @unchecked Sendable {
            // @unchecked: the gate is shared as every map shares its own, through atomics.
            let gate: CapacityGate
            let stripes = ThreadLock<[Int]>([-1, -1])
            let open = Atomic<Bool>(false)
            let waiterReserving = Atomic<Bool>(false)
            let abandoned = Atomic<Bool>(false)
            let outcomes = ThreadLock<[CapacityGate.Outcome]>([])
            init(pause: @escaping @Sendable () -> Void) { gate = CapacityGate(maxEntries: 3, givebackPause: pause) }
        }
        for _ in 0..<16 {
            // Weak: the scenario holds the gate, which holds the pause closure, which holds the box.
            final class Box: @unchecked Sendable { weak var scenario: Scenario? }
            let box = Box()
            let scenario = Scenario(pause: {
                guard let scenario = box.scenario else { return }
                scenario.open.store(true, ordering: .releasing)
                while !scenario.waiterReserving.load(ordering: .acquiring) {
                    if scenario.abandoned.load(ordering: .acquiring) { return }
                    sched_yield()
                }
                usleep(50_000)
            })
            box.scenario = scenario
            #expect(scenario.gate.batch == 1)
            for _ in 0..<3 {
                #expect(scenario.gate.reserve(keyExists: { false }) == .reserved)
                scenario.gate.resolve(published: true)
            }
            runOnThreads(2) { thread in
                let stripe = scenario.gate.ownStripe
                scenario.stripes.withLock { $0[thread] = stripe }
                if thread == 0 {
                    // The giver: three removals park three credits in its stripe; the third
                    // gives one back to the count, and pauses on the way.
                    while scenario.stripes.withLock({ $0[1] }) < 0 { sched_yield() }
                    guard scenario.stripes.withLock({ $0[0] != $0[1] }) else {
                        scenario.abandoned.store(true, ordering: .releasing)
                        return
                    }
                    for _ in 0..<3 {
                        scenario.gate.beginRemoval()
                        scenario.gate.endRemoval(removed: true)
                    }
                } else {
                    // The waiter, in the window: drains the giver's two other credits and
                    // fills the map with them, then asks for the last unit.
                    while !scenario.open.load(ordering: .acquiring) {
                        if scenario.abandoned.load(ordering: .acquiring) { return }
                        sched_yield()
                    }
                    for attempt in 0..<3 {
                        if attempt == 2 { scenario.waiterReserving.store(true, ordering: .releasing) }
                        let outcome = scenario.gate.reserve(keyExists: { false })
                        scenario.outcomes.withLock { $0.append(outcome) }
                        if outcome == .reserved { scenario.gate.resolve(published: true) }
                    }
                }
            }
            if scenario.abandoned.load(ordering: .acquiring) { continue }
            #expect(scenario.outcomes.withLock { $0 } == [.reserved, .reserved, .reserved])
            #expect(scenario.gate.entries == 3)
            #expect(scenario.gate.changesInFlight() == 0)
            return
        }
        Issue.record("no two threads with different stripes in 16 tries")
    }
}
