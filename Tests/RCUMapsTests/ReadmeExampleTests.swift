import Foundation
import RCUMaps
import Testing

/// The README's usage examples, kept compiling and correct (the lines between the markers
/// are the README's, word for word: `theBlocksAreTheREADMEs` checks it).
@Suite("README examples")
struct ReadmeExampleTests {
    /// Each block between a `README begin` and a `README end` marker of this file is in
    /// README.md, line for line (indentation aside). Nothing checked it, and a comment had
    /// drifted from the README's (found by review, 2026-12-05).
    @Test func theBlocksAreTheREADMEs() throws {
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let readmePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md").path
        let readme = try String(contentsOfFile: readmePath, encoding: .utf8)
        func trimmed(_ text: String) -> [String] {
            text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let readmeLines = trimmed(readme)
        var blocks: [[String]] = []
        var current: [String]?
        for line in trimmed(source) {
            if line == "// README" + " begin" { current = [] } else if line == "// README" + " end" {
                blocks.append(current ?? [])
                current = nil
            } else if current != nil {
                current!.append(line)
            }
        }
        #expect(blocks.count == 5)
        for block in blocks {
            let found = readmeLines.indices.contains { start in
                start + block.count <= readmeLines.count && Array(readmeLines[start ..< start + block.count]) == block
            }
            #expect(found, "not in README.md, line for line:\n\(block.joined(separator: "\n"))")
        }
        // The other way: every line of every Swift block of the README (but the package
        // manifest's) is compiled here. (The check above went one way only, and the README's
        // memory-statistics line was in no test: found by review, 2026-12-07.)
        // (Code lines only: a README line that appeared here only in a comment passed.)
        let compiled = Set(trimmed(source).filter { !$0.hasPrefix("//") })
        var inSwiftBlock = false
        var readmeBlockLines: [String] = []
        for line in readmeLines {
            if line == "```swift" { inSwiftBlock = true; readmeBlockLines.append("") } else if line == "```" {
                inSwiftBlock = false
            } else if inSwiftBlock {
                readmeBlockLines[readmeBlockLines.count - 1] += line + "\n"
            }
        }
        let examples = readmeBlockLines.filter { !$0.contains(".package(") }
        #expect(examples.count == 5, "the README's Swift blocks besides the manifest's: \(examples.count)")
        for example in examples {
            let missing = example.split(separator: "\n").map(String.init).filter { !$0.isEmpty && !compiled.contains($0) }
            #expect(missing.isEmpty, "README lines compiled in no test:\n\(missing.joined(separator: "\n"))")
        }
    }

    struct Flow: BitwiseCopyable, Hashable { var source: UInt32, destination: UInt32, ports: UInt32, proto: UInt32 }
    struct Counters: BitwiseCopyable { var packets: UInt64 = 0, bytes: UInt64 = 0 }

    @Test func typedMaps() throws {
        let flow = Flow(source: 0x0A00_0001, destination: 0x0A00_0002, ports: 0x0050_1F90, proto: 6)
        var printed = 0
        func print(_ flow: Flow, _ packets: UInt64) { printed += 1; #expect(packets == 1) }
        // README begin
        let flows = try BucketHashMap<Flow, Counters>(maxEntries: 1 << 16)
        try flows.updateValue(Counters(), forKey: flow)                  // insert or replace; returns the old value
        let counters = flows[flow]                                       // a copy, or nil
        try flows.upsertAtomicFields(forKey: flow, default: Counters()) { $0[\.packets].wrappingAdd(1, ordering: .relaxed) }
        for (flow, counters) in flows { print(flow, counters.packets) } // each step self-contained
        let removed = try flows.removeValue(forKey: flow)                // atomic lookup-and-delete
        // README end
        #expect(counters?.packets == 0)
        #expect(printed == 1)
        #expect(removed?.packets == 1)
        #expect(flows.isEmpty)
    }

    struct Route: Sendable, Equatable {
        var gateway: String
        var metric: Int
        func withMetric(_ metric: Int) -> Route { Route(gateway: gateway, metric: metric) }
    }

    @Test func rcuDictionary() {
        let route = Route(gateway: "192.168.1.1", metric: 1)
        var forwarded: Route?
        func forward(via route: Route) { forwarded = route }
        // README begin
        let routes = RCUDictionary<String, Route>()
        routes.reserveCapacity(100_000)                                    // room up front: one rebuild, not one a doubling
        routes["10.0.0.0/8"] = route
        if let route = routes["10.0.0.0/8"] { forward(via: route) }       // from any thread or task
        let metric = routes.withValue(forKey: "10.0.0.0/8") { $0.metric } // borrowed, not copied
        routes.update(forKey: "10.0.0.0/8") { $0?.withMetric(5) }         // may retry: keep it pure
        routes["10.0.0.0/8"]?.metric += 1                                  // one atomic step, as under a Mutex
        let expired = routes.removeValue(forKey: "10.0.0.0/8", ifCurrent: route) // false: changed since
        // README end
        #expect(metric == 1)
        #expect(forwarded == route)
        #expect(routes["10.0.0.0/8"]?.metric == 6)
        #expect(!expired)
    }

    @Test func queuesAndPerCPUCounters() throws {
        // README begin
        let events = try QueueMap<UInt64>(capacity: 1024)
        try events.push(42)                                              // any thread; E2BIG when full
        let next = try events.pop()                                      // the oldest, or nil when empty
        let hits = try PerCPUArrayMap<UInt64>(count: 16)
        hits.add(1, at: 3)                                               // this CPU's value (rseq on x86-64, glibc 2.35+)
        let total = hits.sum(at: 3)                                      // over every CPU
        // README end
        #expect(next == 42)
        #expect(try events.pop() == nil)
        #expect(total == 1)
    }

    @Test func lruPerCPUHashAndRoutes() throws {
        // README begin
        let recent = try LRUHashMap<UInt64, UInt64>(maxEntries: 1024)
        try recent.updateValue(7, forKey: 42)                            // a full cache evicts, never refuses
        let seen = recent[42]                                            // marks the entry recently used
        let perKey = try PerCPUHashMap<UInt64, UInt64>(maxEntries: 1024)
        try perKey.updateCurrentCPUValue(1, forKey: 42)                  // this CPU's value; the others 0
        try perKey.addInsertingIfAbsent(1, forKey: 43)                  // adds to this CPU's; absent: inserted first
        let sum = perKey.sum(forKey: 42)                                 // over every CPU
        let routes4 = try LPMTrieMap<IPv4Prefix, UInt32>(capacity: 1024)
        try routes4.updateValue(7, forKey: IPv4Prefix("10.0.0.0/8")!)       // exact prefix
        let hop = routes4.longestMatch(IPv4Prefix("10.1.2.3")!)          // the longest covering route
        // README end
        #expect(seen == 7)
        #expect(sum == 1)
        #expect(perKey.sum(forKey: 43) == 1)
        #expect(hop == 7)
    }

    @Test func memoryStatistics() throws {
        let flows = try BucketHashMap<Flow, Counters>(maxEntries: 1 << 16)
        try flows.updateValue(Counters(), forKey: Flow(source: 1, destination: 2, ports: 3, proto: 6))
        // README begin
        let memory = EpochMemory.statistics(for: flows.raw.definition.effectivePoolTag)  // liveBytes, pendingBytes, recycledBytes
        // README end
        #expect(memory.liveBytes > 0)
    }
}
