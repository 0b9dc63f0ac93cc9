import RCUMaps
import Testing

/// The per-CPU maps and the LPM trie are sequences, as the other typed maps (a gap found by
/// review, 2026-12-05, sixteenth session): every entry once, and removing the entry just
/// returned does not disturb the pass.
@Suite("Per-CPU and LPM iteration")
struct TypedPerCPUAndLPMIterationTests {
    @Test(arguments: [false, true])
    func perCPUHashMapsIterateTheirKeysAndValues(lru: Bool) throws {
        let map = try PerCPUHashMap<UInt64, UInt64>(maxEntries: 256, lru: lru)
        let cpus = map.possibleCPUCount
        for key in UInt64(0)..<100 {
            #expect(try map.insertValues((0..<cpus).map { key &* 10 &+ UInt64($0) }, forKey: key))
        }
        #expect(try !map.insertValues([UInt64](repeating: 0, count: cpus), forKey: 7))
        #expect(map.values(forKey: 7)?.first == 70)
        #expect(map.capacity == 256 && !map.isEmpty)
        var seen: [UInt64: [UInt64]] = [:]
        for (key, values) in map { seen[key] = values }
        #expect(seen.count == 100)
        #expect(seen.allSatisfy { key, values in values == (0..<cpus).map { key &* 10 &+ UInt64($0) } })
        #expect(map.snapshot() == seen)
        #expect(Set(map.keys) == Set(0..<100))
        // Removing each key as it comes: every key once, the map empty at the end.
        var removed = 0
        for key in map.keys where try map.removeValues(forKey: key) != nil { removed += 1 }
        #expect(removed == 100 && map.isEmpty)
        #expect(Array(map).isEmpty)
    }

    @Test func perCPUArraysIterateEveryIndex() throws {
        let map = try PerCPUArrayMap<UInt32>(count: 5)
        try map.setValue(9, at: 3)
        let entries = Array(map)
        #expect(entries.map(\.index) == [0, 1, 2, 3, 4])
        #expect(entries[3].values == [UInt32](repeating: 9, count: map.possibleCPUCount))
        #expect(entries[0].values.allSatisfy { $0 == 0 })
        #expect(map.capacity == 5)
    }

    @Test func lpmTriesIterateInLinuxOrderAndSurviveRemoval() throws {
        let routes = try LPMTrieMap<IPv4Prefix, UInt32>(capacity: 64)
        let prefixes = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.168.0.0/16", "0.0.0.0/0"].compactMap(IPv4Prefix.init)
        for (number, prefix) in prefixes.enumerated() { try routes.updateValue(UInt32(number), forKey: prefix) }
        let listed = Array(routes)
        #expect(listed.count == prefixes.count)
        #expect(Set(listed.map(\.prefix)) == Set(prefixes))
        #expect(listed.allSatisfy { prefixes[Int($0.value)] == $0.prefix })
        #expect(routes.snapshot().map(\.prefix) == listed.map(\.prefix))
        // More specific before the prefixes that cover them.
        let order = listed.map(\.prefix.description)
        #expect(order.firstIndex(of: "10.1.2.0/24")! < order.firstIndex(of: "10.1.0.0/16")!)
        #expect(order.firstIndex(of: "10.1.0.0/16")! < order.firstIndex(of: "10.0.0.0/8")!)
        var removed = 0
        for (prefix, _) in routes where try routes.removeValue(forKey: prefix) != nil { removed += 1 }
        #expect(removed == prefixes.count && routes.isEmpty)
    }
}
