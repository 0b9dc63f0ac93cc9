import Foundation
@testable import RCUBaseMaps
import RCUEpoch
import RCUMapsTestSupport
import Synchronization
import Testing

/// A bucket-hash insert that must chain an overflow bucket holds its unit of room in flight
/// while it allocates: an insert elsewhere that finds the map full meanwhile waits for it,
/// and gets the room if the allocation fails. Before, the unit was counted without being in
/// flight, so that insert was answered E2BIG for room that came back a moment later, and
/// the map ended with room though no insert had succeeded (found by review, 2026-12-05).
@Suite("Room held by a growing insert")
struct GrowingInsertRoomTests {
    /// Keys whose chain, in `map`, is `chain`.
    static func keys(of map: RawBucketHashMap, inChain chain: Int, count: Int, from start: UInt64 = 1) -> [UInt64] {
        var found: [UInt64] = []
        var key = start
        while found.count < count {
            var candidate = key
            let index = withUnsafeBytes(of: &candidate) { map.table.bucketIndex(map.hasher.hash($0.baseAddress!, count: 8)) }
            if index == chain { found.append(key) }
            key += 1
        }
        return found
    }

    @Test func anInsertElsewhereWaitsForTheRoomAFailedGrowthGivesBack() throws {
        let map = try RawBucketHashMap(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 4,
                                                     flags: .zeroSeed, hashImplementation: .bucketLocked,
                                                     poolTag: uniqueTag()),
                                       observer: nil, bucketCount: 2)
        #expect(map.table.slotsPerBucket == 3)
        let chainZero = Self.keys(of: map, inChain: 0, count: 4)
        let chainOne = Self.keys(of: map, inChain: 1, count: 1)
        for key in chainZero.prefix(3) { try map.put(key, key) }  // chain 0 full; room for one more
        final class Outcome: @unchecked Sendable {
            let started = Atomic<Bool>(false)
            let running = Atomic<Bool>(false), finished = Atomic<Bool>(false)
            let finishedWhileHeld = Atomic<Bool>(false)
            var other: Result<Bool, MapError>?  // written by the other thread, read after it ends
            let done = DispatchSemaphore(value: 0)
        }
        let outcome = Outcome()
        map.table.beforeAllocatingOverflowBucket = {
            guard !outcome.started.exchange(true, ordering: .relaxed) else { return }
            // While this insert holds the map's last unit for its new bucket: another chain's
            // insert, which must not be refused for room that may come back.
            Thread {
                outcome.running.store(true, ordering: .releasing)
                do {
                    let inserted = try withUnsafeBytes(of: chainOne[0]) { key in
                        try withUnsafeBytes(of: chainOne[0]) { try map.insertIfAbsent(key: key, value: $0) }
                    }
                    outcome.other = .success(inserted)
                } catch let error as MapError {
                    outcome.other = .failure(error)
                } catch {
                    outcome.other = .failure(.invalidArgument)
                }
                outcome.finished.store(true, ordering: .releasing)
                outcome.done.signal()
            }.start()
            // The other insert looks while the unit is held, and waits: it must not be over
            // while the unit is. (The hook slept 50 ms and returned: an insert that came
            // after the room was back succeeded, and the code before the fix passed.)
            while !outcome.running.load(ordering: .acquiring) { usleep(1_000) }
            usleep(100_000)
            outcome.finishedWhileHeld.store(outcome.finished.load(ordering: .acquiring), ordering: .relaxed)
        }
        defer { map.table.beforeAllocatingOverflowBucket = nil }
        let (growing, injected) = _FaultInjection.failingOneAllocation(after: 0) { () -> MapError? in
            do {
                _ = try withUnsafeBytes(of: chainZero[3]) { key in
                    try withUnsafeBytes(of: chainZero[3]) { try map.insertIfAbsent(key: key, value: $0) }
                }
                return nil
            } catch let error as MapError { return error } catch { return .invalidArgument }
        }
        outcome.done.wait()
        #expect(injected)
        #expect(growing == .noMemory)
        #expect(try outcome.other?.get() == true, "the other insert: \(String(describing: outcome.other))")
        let finishedWhileHeld = outcome.finishedWhileHeld.load(ordering: .relaxed)
        #expect(!finishedWhileHeld, "the other insert did not wait for the unit")
        #expect(map.count == 4)
        #expect(map.capacityChangesInFlight == 0)
    }
}
