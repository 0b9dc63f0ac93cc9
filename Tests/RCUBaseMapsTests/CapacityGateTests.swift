@testable import RCUBaseMaps
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
}
