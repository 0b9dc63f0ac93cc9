import Foundation
@testable import rcumaps
import RCUMaps
import Testing

/// The `lpm` bench rows: our trie and the C Patricia trie hold the same prefixes and give the
/// same answer to every query the workload asks, and each query finds a match.
@Suite("rcumaps bench lpm rows")
struct LPMBenchTests {
    @Test(arguments: [LPMBenchRoutes.Family.ipv4, .ipv6])
    func bothTriesAnswerEveryQueryAlike(family: LPMBenchRoutes.Family) throws {
        let routes = LPMBenchRoutes(family, entries: 3000)
        let ours = try LPMTrieTarget(routes)
        let baseline = try CPatriciaTarget(routes)
        #expect(ours.map.count == 3000)
        var differences = 0
        for index in 0..<ours.entries {
            let answer = ours.lookup(index: index)
            if answer == nil || answer != baseline.lookup(index: index) { differences += 1 }
        }
        #expect(differences == 0)
        #expect(MapKind.lpmIPv4.supports(.lookup) && !MapKind.lpmIPv4.supports(.churn))
        #expect(MapKind.lpmIPv6.counterpart == .cPatriciaIPv6)
    }
}

/// Memory per prefix of the `lpm` rows' tries (docs/performance.md): the epoch memory a
/// `RawLPMTrieMap` holds (entries and published nodes, the pool tag's live bytes) after
/// the bench's 100 000 IPv4 or IPv6 prefixes, and the fill's time. Slow in a debug build:
/// runs only with `LPM_MEMORY_REPORT=1` in the environment, and prints its figures.
@Suite("LPM trie memory report")
struct LPMMemoryReport {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["LPM_MEMORY_REPORT"] != nil),
          arguments: [LPMBenchRoutes.Family.ipv4, .ipv6])
    func memoryPerPrefix(family: LPMBenchRoutes.Family) throws {
        let entries = 100_000
        let routes = LPMBenchRoutes(family, entries: entries)
        let tag = PoolTag(rawValue: family == .ipv4 ? 0x4C50_4D34 : 0x4C50_4D36)
        let map = try RawLPMTrieMap(MapDefinition(type: .lpmTrie, keySize: 4 + routes.dataSize, valueSize: 8,
                                                  maxEntries: entries, flags: .noPrealloc, poolTag: tag))
        var key = [UInt8](repeating: 0, count: 4 + routes.dataSize)
        let start = ContinuousClock.now
        for index in 0..<entries {
            withUnsafeBytes(of: routes.lengths[index]) { for byte in 0..<4 { key[byte] = $0[byte] } }
            for byte in 0..<routes.dataSize { key[4 + byte] = routes.data[index * routes.dataSize + byte] }
            var value = UInt64(index)
            try key.withUnsafeBytes { k in try withUnsafeBytes(of: &value) { try map.update(key: k, value: $0, flags: .any) } }
        }
        let fill = ContinuousClock.now - start
        Epoch.barrier()
        Epoch.barrier()
        let live = EpochMemory.statistics(for: tag).liveBytes
        let kinds = map.publishedNodeKinds
        print("LPM memory \(family): \(live / entries) bytes per prefix (\(live) live bytes), \(kinds.direct) direct-indexed and \(kinds.compressed) compressed nodes, fill \(fill)")
        #expect(map.count == entries)
    }
}
