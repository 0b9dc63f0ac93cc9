@testable import rcumaps
import RCUMaps
import Testing

/// The stress checkers' owners read what a write replaces before they trust it (found by
/// review of the checkers, 2026-12-07): each of these states was adopted, or overwritten,
/// by the owner's next write without a report.
@Suite("rcumaps stress: owners check what their writes replace", .serialized)
struct OwnWriteStressTests {
    /// PERCPU_ARRAY, in both modes: an owned index one CPU's value of which was zeroed
    /// since the owner's last write is reported by its next write.
    @Test(arguments: [false, true])
    func aPerCPUArrayOwnersWriteSeesAZeroedSlot(helper: Bool) throws {
        let (map, recorder, owner) = try PerCPUStressGenerationTests.perCPUArrayWorker("zeroed")
        owner.writeOwned(helper: false, bits: 0)  // index 4, generation 1, every CPU
        #expect(recorder.violations == 0, "\(recorder.descriptions)")
        var values = [UInt64](repeating: PerCPUArrayStressWorker.mark(4, 1), count: map.possibleCPUCount)
        values[0] = 0
        try PerCPUStressGenerationTests.store(map, 4, values)
        owner.writeOwned(helper: helper, bits: 0)
        #expect(recorder.byKind.map(\.0) == [.ownKey], "\(recorder.descriptions)")
    }

    /// A PERCPU_HASH worker with one own key (`maxEntries` 1, one thread).
    static func perCPUHashWorker(_ type: MapType, cpus: Int? = nil)
        throws -> (map: RawPerCPUHashMap, recorder: StressRecorder, worker: EvictingStressWorker)
    {
        let definition = MapDefinition(type: type, keySize: 8, valueSize: 8, maxEntries: 1, name: "ownwrite",
                                       hashImplementation: .bucketLocked)
        let map = try RawPerCPUHashMap(definition, possibleCPUs: cpus ?? RawPerCPUArrayMap.possibleCPUs)
        let target = EvictingStressTarget(map: map, storage: map.storage, cpus: map.possibleCPUCount, threads: 1)
        let recorder = StressRecorder(label: "ownwrite", echo: false)
        let worker = EvictingStressWorker(target: target, index: 0, threads: 1, seed: 1, control: StressControl(threads: 1),
                                          recorder: recorder)
        return (map, recorder, worker)
    }

    /// PERCPU_HASH: a user-mode write of an own key the map lost re-created it unseen (only
    /// helper writes compared the key's presence with the owner's record).
    @Test func aPerCPUHashUserWriteSeesALostKey() throws {
        let (map, recorder, worker) = try Self.perCPUHashWorker(.perCPUHash)
        #expect(worker.ownRange == 1)
        worker.writeAndCheck(helper: false)
        #expect(recorder.violations == 0, "\(recorder.descriptions)")
        try withUnsafeBytes(of: UInt64(0)) { try map.delete(key: $0) }  // the map "loses" own key 0
        worker.writeAndCheck(helper: false)
        #expect(recorder.byKind.map(\.0) == [.ownKey], "\(recorder.descriptions)")
    }

    /// PERCPU_HASH, in both modes: one CPU's value of an own key changed since the owner's
    /// last write (here to zero) is reported by the owner's next write, which adopted it
    /// (helper mode) or overwrote it (user mode).
    @Test(arguments: [false, true])
    func aPerCPUHashOwnersWriteSeesAChangedValue(helper: Bool) throws {
        let (map, recorder, worker) = try Self.perCPUHashWorker(.perCPUHash)
        worker.writeAndCheck(helper: false)
        var values = [UInt64](repeating: 0, count: map.possibleCPUCount)
        try withUnsafeBytes(of: UInt64(0)) { k in try values.withUnsafeMutableBytes { try map.lookup(key: k, into: $0) } }
        values[values.count - 1] = 0
        try withUnsafeBytes(of: UInt64(0)) { k in try values.withUnsafeBytes { try map.update(key: k, value: $0, flags: .exist) } }
        worker.writeAndCheck(helper: helper)
        #expect(recorder.byKind.map(\.0) == [.ownKey], "\(recorder.descriptions)")
    }

    /// LRU_PERCPU_HASH with two possible CPUs: a key written in user mode that holds its
    /// mark on one CPU only fails the value check, which took it for a helper-mode write.
    @Test func anLRUPerCPUKeyWrittenInUserModeHoldsItsMarkOnBothCPUs() throws {
        let (map, recorder, worker) = try Self.perCPUHashWorker(.lruPerCPUHash, cpus: 2)
        worker.writeAndCheck(helper: false)  // key 0, generation 1, both CPUs
        #expect(recorder.violations == 0, "\(recorder.descriptions)")
        let key = UInt64(0)
        let mark = EvictingStressTarget.mark(key, generation: 1)
        try withUnsafeBytes(of: key) { k in try [mark, 0].withUnsafeBytes { try map.update(key: k, value: $0, flags: .exist) } }
        worker.target.quiescentCheck("final pass", recorder: recorder)
        #expect(recorder.byKind.map(\.0) == [.value], "\(recorder.descriptions)")
    }

    /// Key-value maps: an own key's `.any` write, in user mode, says what it displaced, and
    /// in helper mode reads the key first. An own key the map lost (key 6: worker 0's,
    /// prefilled) was re-created by either unseen.
    @Test(arguments: [false, true])
    func anOwnKeysAnyWriteSeesALostKey(helper: Bool) throws {
        let map = try RawBucketHashMap(MapDefinition(type: .hash, keySize: 8, valueSize: 32, maxEntries: 512,
                                                     hashImplementation: .bucketLocked))
        let recorder = StressRecorder(label: "ownany", echo: false)
        let harness = StressHarness(kind: .hashBucket, map: map, keys: 256, threads: 2, seed: 1, objects: nil,
                                    recorder: recorder)
        harness.prefill()
        let worker = StressWorker(harness: harness, index: 0)
        #expect(harness.owner(6) == 0 && harness.isPrefilled(6) && !harness.isBalanced(6))
        worker.update(6, flags: .any, helper: helper, bits: 0)
        #expect(recorder.violations == 0, "\(recorder.descriptions)")
        try map.delete(key: worker.keyBytes(6))  // the map "loses" it
        worker.update(6, flags: .any, helper: helper, bits: 0)
        #expect(recorder.byKind.map(\.0) == [.ownKey], "\(recorder.descriptions)")
    }
}

/// LPM_TRIE: an owner's replace of its own stable route reads or displaces the route and
/// compares it with its record: a route changed since the owner's last replace was
/// overwritten unseen (found by review of the checkers, 2026-12-07). Several replaces, so
/// that both modes (chosen at random) run.
@Suite struct OwnRouteReplaceStressTests {
    @Test func anOwnersReplaceSeesAChangedRoute() throws {
        let routes = LPMStressRoutes(count: 64, seed: 1)
        let map = try RawLPMTrieMap(MapDefinition(type: .lpmTrie, keySize: 8, valueSize: 8, maxEntries: routes.lengths.count,
                                                  flags: .noPrealloc))
        let recorder = StressRecorder(label: "ownroute", echo: false)
        let shared = LPMStressShared(map: map, routes: routes, threads: 1, recorder: recorder)
        for index in 0..<routes.stableCount {
            try shared.store(index, token: StressToken.make(key: index, writer: 0, version: StressToken.prefillVersion),
                             flags: .noExist)
        }
        let worker = LPMStressWorker(shared: shared, worker: 0, seed: 1)
        #expect(worker.ownedCount > 0 && worker.expected[1] != StressToken.absent)
        for round in 1...8 {
            worker.replaceStable(1 << 40)  // own route 1
            #expect(recorder.violations == round - 1, "\(recorder.descriptions)")
            // Route 1 changed behind its owner's back: the prefill's value again.
            try shared.store(1, token: StressToken.make(key: 1, writer: 0, version: StressToken.prefillVersion), flags: .exist)
            worker.replaceStable(1 << 40)
            #expect(recorder.violations == round, "\(recorder.descriptions)")
            #expect(recorder.byKind.map(\.0) == [.ownKey], "\(recorder.descriptions)")
        }
    }
}
