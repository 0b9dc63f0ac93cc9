import Foundation
@testable import RCUBaseMaps
import RCUEpoch
import RCUMapsTestSupport
import Synchronization
import Testing

/// What a full LRU map's update holds while it sweeps for a victim.
@Suite("LRU eviction and grace periods")
struct LRUEvictionSectionTests {
    /// An exchange of a new key into a full LRU map whose values are wider than a word holds
    /// an epoch section for what it reads after its lock (the displaced slot), but not while
    /// it sweeps for a victim: the test holds every other chain's lock, so the sweep waits
    /// for one, and a grace period meanwhile ends. The sweep ran inside the section, and
    /// every grace period in the process (and every freeze) waited for it (found by review).
    @Test func anEvictingUpdateSweepsOutsideItsSection() throws {
        final class Progress: Sendable {
            let writerStarted = Atomic<Bool>(false)
            let writerDone = Atomic<Bool>(false)
        }
        // A zero seed: with a random one, the 8 keys filled all 6 chains of the table in
        // about one run in nine (1 - 6(5/6)^8 + 15(4/6)^8 - ... = 0.114), and no new key with
        // an empty chain was found.
        let map = try #require(try MapRegistry.create(MapDefinition(type: .lruHash, keySize: 8, valueSize: 16, maxEntries: 8,
                                                                    flags: .zeroSeed))
            as? RawBucketHashMap)
        for key in UInt64(1)...8 { try map.put(key, (key, key)) }
        let table = map.table
        func chain(of key: UInt64) -> Int {
            withUnsafeBytes(of: key) { table.bucketIndex(map.hasher.hash($0.baseAddress!, count: 8)) }
        }
        // A new key whose chain holds nothing: the writer's own chain yields no victim, so
        // it must sweep the others.
        let isEmpty = { (index: Int) in
            table.loadControl(table.bucket(index)) & table.liveTagBits == 0 && table.overflow(table.bucket(index)) == nil
        }
        let newKey = try #require((UInt64(100)..<UInt64(10_000)).first { isEmpty(chain(of: $0)) })
        let own = chain(of: newKey)
        let others = (0..<table.bucketCount).filter { $0 != own }
        try #require(!others.isEmpty)
        for index in others { table.lockChain(index) }
        let progress = Progress()
        Thread {
            progress.writerStarted.store(true, ordering: .releasing)
            var displaced: [UInt64] = [0, 0]
            let value: [UInt64] = [newKey, newKey]
            _ = try? withUnsafeBytes(of: newKey) { key in
                try value.withUnsafeBytes { value in
                    try displaced.withUnsafeMutableBytes { try map.exchange(key: key, value: value, flags: .any, into: $0) }
                }
            }
            progress.writerDone.store(true, ordering: .releasing)
        }.start()
        while !progress.writerStarted.load(ordering: .acquiring) { sched_yield() }
        usleep(50_000)  // the writer is sweeping, waiting for a chain the test holds
        let writerWaits = !progress.writerDone.load(ordering: .acquiring)
        #expect(writerWaits)
        let grace = GracePeriodProbe()
        #expect(grace.ends(within: 10), "a grace period waited for an update sweeping for a victim")
        for index in others { table.unlockChain(index) }
        grace.waitUntilEnded()
        while !progress.writerDone.load(ordering: .acquiring) { usleep(1_000) }
        let stored = try map.get(newKey, as: (UInt64, UInt64).self)
        #expect(stored.0 == newKey && stored.1 == newKey)
        #expect(map.count == 8)
    }
}
