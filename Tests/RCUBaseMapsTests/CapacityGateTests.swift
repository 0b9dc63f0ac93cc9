@testable import RCUBaseMaps
import RCUMapsTestSupport
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
}
