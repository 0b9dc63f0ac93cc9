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
