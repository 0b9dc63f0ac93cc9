import Foundation
@testable import RCUBaseMaps
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// `freeze()` on an LPM trie waits for a user-mode write in flight: such a write checks the
/// freeze under the trie's writer lock, outside any epoch section, so the grace period
/// `freeze()` waits for does not wait for it.
@Suite("LPM_TRIE and freeze")
struct LPMFreezeTests {
    /// A thread holds the writer lock as a write that saw the map unfrozen does while it
    /// builds and publishes its blocks; `freeze()` returns only after it let go (before,
    /// it returned at once and the write then published into the frozen map).
    @Test func freezeWaitsForTheWriteInFlight() throws {
        let map = try LPMTrieMapTests.make()
        try LPMTrieMapTests.put(map, LPMTrieMapTests.ipv4(10, 0, 0, 0, 8), 1)
        let holding = Atomic<Bool>(false)
        let released = Atomic<Bool>(false)
        let sawTheFreeze = Atomic<Bool>(false)
        Thread {
            map.writerLock.withLock { _ in
                holding.store(true, ordering: .releasing)
                // Held until the freeze has begun (it sets the flag, then takes this lock),
                // and a little longer: a fixed nap could end before a loaded machine ran the
                // freeze at all, and the test then proved nothing (found by review,
                // 2026-12-06, twenty-sixth session).
                let deadline = ContinuousClock.now + .seconds(10)
                while !map.isFrozen, ContinuousClock.now < deadline { usleep(1_000) }
                sawTheFreeze.store(map.isFrozen, ordering: .relaxed)
                usleep(20_000)
                released.store(true, ordering: .releasing)
            }
        }.start()
        while !holding.load(ordering: .acquiring) { usleep(1_000) }
        try map.freeze()
        let writerDone = released.load(ordering: .acquiring)
        #expect(writerDone, "freeze() returned while a writer held the writer lock")
        let frozeWhileHeld = sawTheFreeze.load(ordering: .relaxed)
        #expect(frozeWhileHeld, "the freeze began only after the writer let go")
        #expect(LPMTrieMapTests.errno { try LPMTrieMapTests.put(map, LPMTrieMapTests.ipv4(11, 0, 0, 0, 8), 2) } == EPERM)
    }

    #if DEBUG
    /// A second `freeze()` answers "frozen already" only once an update that found the map
    /// unfrozen under the writer lock has landed, as the first freeze does (reliability.md
    /// row 302, whose LPM case had no test: this hook parks the update there).
    @Test func aSecondFreezeWaitsForAnUpdateHoldingTheWriterLock() throws {
        let map = try LPMTrieMapTests.make()
        try LPMTrieMapTests.put(map, LPMTrieMapTests.ipv4(10, 0, 0, 0, 8), 1)
        let parking = ParkingHook()
        map.afterFreezeCheck = parking.hook
        let second = secondFreezeWhileAWriteIsParked(
            on: parking, write: { _ = try? LPMTrieMapTests.put(map, LPMTrieMapTests.ipv4(10, 1, 0, 0, 16), 2) },
            freeze: { () throws(MapError) in try map.freeze() }, isFrozen: { map.isFrozen }, count: { map.count })
        map.afterFreezeCheck = nil
        #expect(!second.answeredEarly, "a second freeze() answered while an update held the writer lock")
        #expect(second.code == EPERM && second.count == 2, "\(second)")  // frozen already, with the update in
    }
    #endif
}
