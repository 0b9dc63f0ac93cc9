#if canImport(Glibc)
import Glibc
#endif
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// Concurrent histories of the key/value maps, checked for linearizability: threads share
/// three keys and mix every single-key operation in both modes; the history must be one
/// that a sequential map would give in an order that respects real time
/// (`RCUMapsTestSupport/Linearizability.swift`). `RCUMAPS_LONG_TESTS=<seconds>` runs longer
/// histories.
@Suite("Linearizable histories")
struct LinearizabilityTests {
    enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case hashBucket8, hashBucket16, hashLockFree8, hashLockFree16, array8, array16, lruHash8, lruHash16
        /// 1,024 keys instead of 3: fewer operations meet on one key, but writes land next to
        /// one another everywhere in the table — in one chain of the bucket hash, or as
        /// neighbours in the lock-free hash's ordered list, where an insert beside a node
        /// being removed is the classic way for a lock-free list to lose a write.
        case hashBucketManyKeys, hashLockFreeManyKeys
        /// One key for all three threads: every operation meets the others' (two inserts of
        /// one absent key, an insert and a delete, most often).
        case hashBucketOneKey, hashLockFreeOneKey
        var testDescription: String { rawValue }

        /// Keys the threads share.
        var keys: Int {
            switch self {
            case .hashBucketManyKeys, .hashLockFreeManyKeys: 1_024
            case .hashBucketOneKey, .hashLockFreeOneKey: 1
            default: 3
            }
        }

        func makeMap() throws -> any RawMap {
            let valueSize = rawValue.hasSuffix("16") ? 16 : 8
            let maxEntries = max(64, 2 * keys)
            switch self {
            case .hashBucket8, .hashBucket16, .hashBucketManyKeys, .hashBucketOneKey:
                return try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: valueSize,
                                                            maxEntries: maxEntries, hashImplementation: .bucketLocked,
                                                            poolTag: uniqueTag()))
            case .hashLockFree8, .hashLockFree16, .hashLockFreeManyKeys, .hashLockFreeOneKey:
                return try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: valueSize,
                                                            maxEntries: maxEntries, hashImplementation: .lockFree,
                                                            poolTag: uniqueTag()))
            case .array8, .array16:
                return try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: valueSize, maxEntries: 4,
                                                            poolTag: uniqueTag()))
            case .lruHash8, .lruHash16:
                // Room for every key: nothing is evicted, so the LRU hash answers as a hash.
                return try MapRegistry.create(MapDefinition(type: .lruHash, keySize: 8, valueSize: valueSize,
                                                            maxEntries: maxEntries, poolTag: uniqueTag()))
            }
        }

        var isArray: Bool { self == .array8 || self == .array16 }
    }

    @Test(arguments: Kind.allCases)
    func historiesAreLinearizable(_ kind: Kind) throws {
        let map = try kind.makeMap()
        var workload = LinearizabilityWorkload.scaled
        workload.keysCanBeAbsent = !kind.isArray
        workload.keys = kind.keys
        if kind.keys > 3 { workload.operationsPerThread *= 4 }
        workload.inPlaceReadsMayTear = kind == .array16
        for problem in try linearizabilityProblems(of: map, workload, rounds: 5) { Issue.record("\(problem)") }
    }
}

extension LinearizabilityTests {
    /// LRU_HASH with fewer entries than keys, so that inserts evict all the time: a key may
    /// vanish between any two operations (another key's insert evicted it), and the history
    /// must be linearizable with that allowed — a value never comes back once replaced or
    /// removed, a write is never lost to a concurrent one, a displaced value is reported as
    /// the value the write replaced. Vanishing keys would also explain a map that lost
    /// entries or evicted too many, so each round ends with quiescent checks the history
    /// cannot excuse: the keys found present are exactly `count`, at most `maxEntries`, and
    /// the capacity gate is within its bound with nothing in flight; then, emptied,
    /// the map takes `maxEntries` fresh keys one by one and keeps every one of them.
    @Test(arguments: [(8, false), (16, false), (8, true)])
    func evictingLRUHistoriesAreLinearizable(valueSize: Int, perCPULists: Bool) throws {
        let map = try #require(try MapRegistry.create(MapDefinition(type: .lruHash, keySize: 8, valueSize: valueSize,
                                                                    maxEntries: 8, flags: perCPULists ? .noCommonLRU : [],
                                                                    poolTag: uniqueTag())) as? RawBucketHashMap)
        let maxEntries = map.definition.maxEntries
        var workload = LinearizabilityWorkload.scaled
        workload.keys = 16
        var evicted = false
        /// The keys of `keys` present, by lookup (a copy of the whole value).
        func present(_ keys: Range<UInt64>) -> [UInt64] {
            keys.filter { key in
                withUnsafeBytes(of: key) { keyBytes in
                    withUnsafeTemporaryAllocation(byteCount: valueSize, alignment: 8) { value in
                        (try? map.lookup(key: keyBytes, into: value)) != nil
                    }
                }
            }
        }
        for round in 1...5 {
            for key in 0..<UInt64(workload.keys) { _ = try? map.remove(key) }
            let run = runLinearizabilityHistory(on: map, workload, seed: UInt64(round))
            #expect(run.failures.isEmpty, "\(run.failures.joined(separator: "\n"))")
            if let violation = checkLinearizable(run.events, initial: { _ in nil }, keysMayVanish: true) {
                Issue.record("round \(round): \(violation)")
            }
            // The run must have evicted: some history is not linearizable without vanishing keys.
            if checkLinearizable(run.events, initial: { _ in nil }) != nil { evicted = true }
            // Quiescent: what is present is what is counted.
            let live = present(0..<UInt64(workload.keys))
            #expect(live.count <= maxEntries && live.count == map.count,
                    "round \(round): \(live.count) keys present, count \(map.count), maxEntries \(maxEntries)")
            // (Units in use are the entries plus credits parked in the gate's stripes.)
            #expect(map.capacityUnitsInUse <= maxEntries && map.capacityChangesInFlight == 0,
                    "round \(round): \(map.capacityUnitsInUse) capacity units in use, \(map.capacityChangesInFlight) in flight, \(live.count) keys")
            // Emptied, the map keeps `maxEntries` fresh keys written one by one.
            for key in 0..<UInt64(workload.keys) { _ = try? map.remove(key) }
            let fresh = UInt64(1_000)..<UInt64(1_000 + maxEntries)
            for key in fresh { try map.put(bytes: withUnsafeBytes(of: key) { Array($0) }, [UInt8](repeating: 1, count: valueSize)) }
            #expect(present(fresh).count == maxEntries, "round \(round): fresh keys lost")
            for key in fresh { _ = try? map.remove(key) }
        }
        #expect(evicted, "no round needed an eviction to explain it: the map never evicted")
    }
}

/// The checker itself, on histories whose answer is known.
@Suite("Linearizability checker")
struct LinearizabilityCheckerTests {
    /// An event of thread `thread` on key 0, called at `called` and returned at `returned`.
    func event(_ thread: Int, _ called: UInt64, _ returned: UInt64, _ operation: KeyOperation,
               _ outcome: KeyOutcome) -> HistoryEvent {
        HistoryEvent(thread: thread, key: 0, operation: operation, outcome: outcome, called: called, returned: returned)
    }

    @Test func sequentialHistoryIsLinearizable() {
        let history = [
            event(0, 0, 1, .update(7, .ifAbsent), .done),
            event(1, 2, 3, .lookup, .value(7)),
            event(0, 4, 5, .exchange(8, .any), .value(7)),
            event(1, 6, 7, .lookupAndDelete, .value(8)),
            event(0, 8, 9, .delete, .refused),
            event(1, 10, 11, .compareAndReplace(expected: 1, new: 2), .refused),
        ]
        #expect(checkLinearizable(history, initial: { _ in nil }) == nil)
    }

    @Test func overlappingOperationsMayTakeEitherOrder() {
        // The lookup overlaps the write: it may see the old value or the new one.
        let old = [event(0, 0, 3, .update(5, .any), .done), event(1, 1, 2, .lookup, .value(nil))]
        let new = [event(0, 0, 3, .update(5, .any), .done), event(1, 1, 2, .lookup, .value(5))]
        #expect(checkLinearizable(old, initial: { _ in nil }) == nil)
        #expect(checkLinearizable(new, initial: { _ in nil }) == nil)
        // Two overlapping inserts of one absent key: exactly one may win, whichever.
        let first = [event(0, 0, 3, .update(1, .ifAbsent), .done), event(1, 1, 2, .update(2, .ifAbsent), .refused),
                     event(0, 4, 5, .lookup, .value(1))]
        #expect(checkLinearizable(first, initial: { _ in nil }) == nil)
    }

    @Test func staleReadIsCaught() {
        // The write returned before the lookup was called, yet the lookup saw the old value.
        let history = [event(0, 0, 1, .update(5, .any), .done), event(1, 2, 3, .lookup, .value(nil))]
        let violation = checkLinearizable(history, initial: { _ in nil })
        #expect(violation != nil)
        #expect(violation?.stuck.count == 1)
    }

    @Test func twoWinnersAreCaught() {
        // Two inserts of an absent key both succeed with no delete between them.
        let history = [event(0, 0, 3, .update(1, .ifAbsent), .done), event(1, 1, 2, .update(2, .ifAbsent), .done)]
        #expect(checkLinearizable(history, initial: { _ in nil }) != nil)
        // Two lookup-and-deletes both get the value.
        let taken = [event(0, 0, 3, .lookupAndDelete, .value(9)), event(1, 1, 2, .lookupAndDelete, .value(9))]
        #expect(checkLinearizable(taken, initial: { _ in 9 }) != nil)
    }

    @Test func lostUpdateIsCaught() {
        // Two exchanges that overlap both report the initial value: one of them lost the other's write.
        let history = [event(0, 0, 3, .exchange(1, .any), .value(0)), event(1, 1, 2, .exchange(2, .any), .value(0))]
        #expect(checkLinearizable(history, initial: { _ in 0 }) != nil)
    }

    @Test func vanishingKeysExplainMissesButNotResurrections() {
        // A miss after a completed write: only an eviction explains it.
        let miss = [event(0, 0, 1, .update(5, .any), .done), event(1, 2, 3, .lookup, .value(nil))]
        #expect(checkLinearizable(miss, initial: { _ in nil }) != nil)
        #expect(checkLinearizable(miss, initial: { _ in nil }, keysMayVanish: true) == nil)
        // A replaced value read again: no eviction explains it.
        let back = [event(0, 0, 1, .update(5, .any), .done), event(0, 2, 3, .update(6, .any), .done),
                    event(1, 4, 5, .lookup, .value(5))]
        #expect(checkLinearizable(back, initial: { _ in nil }, keysMayVanish: true) != nil)
        // Two exchanges that both displaced the same value: one lost the other's write.
        let lost = [event(0, 0, 1, .update(1, .any), .done), event(0, 2, 5, .exchange(2, .any), .value(1)),
                    event(1, 3, 4, .exchange(3, .any), .value(1))]
        #expect(checkLinearizable(lost, initial: { _ in nil }, keysMayVanish: true) != nil)
    }

    @Test func valueFromNowhereIsCaught() {
        let history = [event(0, 0, 1, .update(1, .any), .done), event(1, 2, 3, .lookup, .value(2))]
        #expect(checkLinearizable(history, initial: { _ in nil }) != nil)
    }

    /// A map with a planted race — its exchange reads and writes under two separate locks,
    /// yielding the processor between them — run through the same recorder: the checker must
    /// find the lost updates. (The yield makes the threads interleave even when the machine
    /// is loaded and each thread would otherwise run its whole history in one time slice.)
    @Test func plantedRaceIsCaught() {
        final class RacyMap: Sendable {
            // (A pthread mutex: ThreadSanitizer does not see `Synchronization.Mutex`'s hand-offs.)
            let values = ThreadLock<[Int: UInt64]>([:])
            func lookup(_ key: Int) -> UInt64? { values.withLock { $0[key] } }
            func exchange(_ key: Int, _ value: UInt64) -> UInt64? {
                let old = values.withLock { $0[key] }
                sched_yield()
                values.withLock { $0[key] = value }
                return old
            }
        }
        let map = RacyMap()
        var workload = LinearizabilityWorkload()
        workload.operationsPerThread = 3_000
        var caught = false
        for seed in 1...20 where !caught {
            let run = recordHistory(workload, seed: UInt64(seed)) { _, _ in
                { recorder, key, roll, word in
                    if roll < 30 {
                        recorder.record(key: key, .lookup) { .value(map.lookup(key)) }
                    } else {
                        recorder.record(key: key, .exchange(word, .any)) { .value(map.exchange(key, word)) }
                    }
                }
            }
            caught = checkLinearizable(run.events, initial: { _ in nil }) != nil
            map.values.withLock { $0 = [:] }
        }
        #expect(caught, "twenty runs of a map whose exchange loses writes all passed the checker")
    }
}

