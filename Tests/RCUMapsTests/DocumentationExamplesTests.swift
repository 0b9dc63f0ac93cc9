import Foundation
import ObjectMapProvider
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

// The code of the DocC articles in Sources/RCUMaps/RCUMaps.docc, compiled and run.
//
// Every ```swift block of an article must appear in this file line for line (indentation
// aside, blank lines ignored): `everyArticleSnippetIsCompiledHere` checks it, so an article
// cannot show code that does not compile. Blocks that start with `// Package.swift` are
// manifests, not checked. The `#expect`s around the snippets check what their comments say.

/// What the article code at file scope prints: its `print` calls land here (the tests' own
/// local `print`s shadow this one), so the tests can check them — `Percentages.removed`'s
/// lines went to standard output, and the comments naming them were not checked (found by
/// review, 2026-12-06, twenty-fifth session).
private let fileScopeOutput = Mutex<[String]>([])
private func print(_ items: Any...) {
    fileScopeOutput.withLock { $0.append(items.map { "\($0)" }.joined(separator: " ")) }
}

// MARK: - Types the CustomMaps article declares at file scope

/// Percentages: refuses negative values, caps them at 100, and logs what leaves the map.
struct Percentages: TypedMapProvider {
    typealias Key = UInt32
    typealias Value = Int32
    static var mode: TypedProviderMode { .validating }

    func validate(_ value: inout Int32, forKey key: UInt32, context: NoProviderContext) throws(MapError) {
        guard value >= 0 else { throw MapError.invalidArgument.with(reason: "\(value) is negative") }
        value = min(value, 100)
    }

    func removed(_ value: Int32, forKey key: UInt32, reason: RemovalReason, context: NoProviderContext) {
        print("key \(key): \(value) left the map (\(reason))")
    }
}

struct Cents: TypedMapProvider {
    typealias Key = UInt32
    typealias Value = Double                 // what users store and read: dollars
    typealias Stored = Int64                 // what the map holds: cents
    final class Context: Sendable {
        let rounded = Atomic<Int>(0)         // prices rounded in this map
    }
    static var mode: TypedProviderMode { .transforming }

    func makeContext(maxEntries: Int) throws(MapError) -> Context { Context() }

    func store(_ dollars: Double, forKey key: UInt32, context: Context) throws(MapError) -> Int64 {
        guard dollars >= 0, dollars < 1e12 else { throw MapError.invalidArgument.with(reason: "not a price: \(dollars)") }
        let cents = (dollars * 100).rounded()
        if cents != dollars * 100 { context.rounded.add(1, ordering: .relaxed) }
        return Int64(cents)
    }

    func load(_ cents: Int64, forKey key: UInt32, context: Context) throws(MapError) -> Double {
        Double(cents) / 100
    }
}

@Suite("Documentation examples")
struct DocumentationExamplesTests {
    // MARK: RCUMaps.md

    @Test func landingPage() throws {
        let flows = try BucketHashMap<UInt64, UInt64>(maxEntries: 1 << 16)
        try flows.updateValue(7, forKey: 42)          // any thread
        let packets = flows[42]                       // lock-free copy; nil when absent
        try flows.upsertAtomicFields(forKey: 43, default: 0) { $0[\.self].wrappingAdd(1, ordering: .relaxed) }
        #expect(packets == 7)
        #expect(flows[43] == 1)
    }

    // MARK: GettingStarted.md

    @Test func gettingStartedFirstMap() throws {
        var printed: [String] = []
        func print(_ items: Any...) { printed.append(items.map { "\($0)" }.joined(separator: " ")) }
        let stock = try BucketHashMap<UInt32, Int64>(maxEntries: 1024)   // at most 1024 items
        try stock.updateValue(12, forKey: 42)             // insert or replace; returns the old value
        let inserted = try stock.insertIfAbsent(5, forKey: 7)   // false if 7 was already there
        if let count = stock[42] { print("item 42: \(count) in stock") }   // a copy; nil if absent
        let sold = try stock.removeValue(forKey: 42)       // atomic: of two removers, one gets 12
        for (item, count) in stock { print(item, count) }  // never repeats a key
        #expect(inserted)
        #expect(sold == 12)
        #expect(printed == ["item 42: 12 in stock", "7 5"])
    }

    @Test func gettingStartedInPlaceFromTasks() async throws {
        var printed: [String] = []
        func print(_ item: Any) { printed.append("\(item)") }
        let hits = try BucketHashMap<UInt32, UInt64>(maxEntries: 256)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for page in UInt32(0)..<100 {
                        // Insert 0 if the page is new, then add 1 to the stored counter, atomically.
                        try hits.upsertAtomicFields(forKey: page, default: 0) { $0[\.self].wrappingAdd(1, ordering: .relaxed) }
                    }
                }
            }
            try await group.waitForAll()
        }
        print(hits[7] ?? 0)   // 4
        #expect(printed == ["4"])
        #expect(hits.count == 100 && hits.values.allSatisfy { $0 == 4 })
    }

    @Test func gettingStartedDictionary() {
        var printed: [String] = []
        func print(_ item: Any) { printed.append("\(item)") }
        struct Session: Sendable {
            var user: String
            var roles: [String]
        }
        let sessions = RCUDictionary<String, Session>()
        sessions["tok-1"] = Session(user: "alice", roles: ["admin"])
        if let session = sessions["tok-1"] { print(session.user) }
        let roleCount = sessions.withValue(forKey: "tok-1") { $0.roles.count }   // borrowed, not copied
        sessions.update(forKey: "tok-1") { old in old.map { Session(user: $0.user, roles: []) } }
        #expect(roleCount == 1)
        #expect(printed == ["alice"])
        #expect(sessions["tok-1"]?.roles == [])
    }

    // MARK: EpochModel.md

    @Test func epochModelSectionsAndCopies() throws {
        let counts = try BucketHashMap<UInt32, UInt64>(maxEntries: 64)
        try counts.updateValue(10, forKey: 1)
        try counts.updateValue(0, forKey: 2)
        Epoch.withSection { section in
            let first = counts.withValue(forKey: 1, in: section) { $0 } ?? 0
            counts.withValue(forKey: 2, in: section) { $0 += first }
        }
        #expect(counts[2] == 10)
    }

    @Test func epochModelGracePeriods() {
        let routes = RCUDictionary<String, String>()
        routes["10.0.0.0/8"] = "eth0"
        routes.removeValue(forKey: "10.0.0.0/8")
        Epoch.synchronize()   // no section that could have read "eth0" for 10.0.0.0/8 is still running
        Epoch.barrier()       // and the removed entry has been released
        #expect(routes.isEmpty)
    }

    @Test func epochModelAsync() async throws {
        let counts = try BucketHashMap<UInt32, UInt64>(maxEntries: 64)
        for key in UInt32(0)..<10 { try counts.updateValue(UInt64(key), forKey: key) }
        var reported: UInt64 = 0
        func report(_ key: UInt32, _ value: UInt64) async {
            await Task.yield()
            reported += value
        }
        for (key, value) in counts {   // each step is its own section
            await report(key, value)   // nothing is held across the await
        }
        #expect(reported == 45)

        let routes = RCUDictionary<String, String>()
        routes["192.168.0.0/16"] = "eth1"
        func withdraw(_ prefix: String) async {
            routes.removeValue(forKey: prefix)
            await Epoch.synchronize()     // suspends; no pool thread is blocked
        }
        await withdraw("192.168.0.0/16")
        await Epoch.barrier()
        #expect(routes["192.168.0.0/16"] == nil)
    }

    // MARK: TypedMaps.md

    @Test func typedMapsCreation() throws {
        let sessions = try LockFreeHashMap<UInt64, Int32>(maxEntries: 100_000)
        let counters = try ArrayMap<UInt64>(count: 256)               // indices 0..<256, all zero
        let colors = try ArrayMap<Int32>(count: 4, repeating: -1)      // every slot -1
        #expect(sessions.isEmpty && sessions.capacity == 100_000)
        #expect(counters.count == 256 && counters[255] == 0 && counters[256] == nil)
        #expect(colors.values.allSatisfy { $0 == -1 })
    }

    @Test func typedMapsLayout() throws {
        var printed: [String] = []
        func print(_ item: Any) { printed.append("\(item)") }
        struct FlowKey: BitwiseCopyable, Sendable {
            var source: UInt32
            var destination: UInt32
            var ports: UInt32                                  // source port << 16 | destination port
            var proto: UInt8
            var reserved: (UInt8, UInt8, UInt8) = (0, 0, 0)    // explicit: 16 bytes, all of them data
        }
        struct PaddedKey: BitwiseCopyable, Sendable {
            var tag: UInt8                                     // followed by 3 bytes of padding
            var value: UInt32
        }
        let flows = try BucketHashMap<FlowKey, UInt64>(maxEntries: 1024)   // accepted
        do {
            _ = try BucketHashMap<PaddedKey, UInt64>(maxEntries: 1024)
        } catch {
            print(error)   // EINVAL: key type PaddedKey has 3 bytes of interior padding (…)
        }
        #expect(MemoryLayout<FlowKey>.size == 16)
        #expect(flows.capacity == 1024)
        #expect(printed.count == 1)
        #expect(printed.first?.hasPrefix("EINVAL: key type PaddedKey has 3 bytes of interior padding") == true,
                "\(printed)")
    }

    /// The article's enum key written as explicit fields: the enum is refused, the struct
    /// accepted and found.
    @Test func typedMapsEnumKeysAsFields() throws {
        enum Endpoint: BitwiseCopyable, Sendable { case v4(UInt32), v6(UInt64, UInt64) }   // refused (EINVAL)
        struct EndpointKey: BitwiseCopyable, Sendable {
            var family: UInt64                                 // 4 or 6
            var high: UInt64                                   // IPv6's high half, 0 for IPv4
            var low: UInt64                                    // the IPv4 address, or IPv6's low half
        }
        let endpoints = try BucketHashMap<EndpointKey, UInt64>(maxEntries: 1024)
        try endpoints.updateValue(1, forKey: EndpointKey(family: 4, high: 0, low: 0x0A00_0001))
        #expect(throws: MapError.invalidArgument) { _ = try BucketHashMap<Endpoint, UInt64>(maxEntries: 1024) }
        #expect(endpoints[EndpointKey(family: 4, high: 0, low: 0x0A00_0001)] == 1)
        #expect(endpoints[EndpointKey(family: 6, high: 0, low: 0x0A00_0001)] == nil)
    }

    @Test func typedMapsInPlaceAndIteration() throws {
        var printed: [String] = []
        func print(_ items: Any...) { printed.append(items.map { "\($0)" }.joined(separator: " ")) }
        struct Counters: BitwiseCopyable, Sendable {
            var packets: UInt64 = 0
            var bytes: UInt64 = 0
        }
        let traffic = try LockFreeHashMap<UInt32, Counters>(maxEntries: 1024)

        // Insert a zero value if the key is absent, then change the stored value: plain writes,
        // for a value only this thread updates.
        try traffic.upsert(forKey: 1, default: Counters()) { $0.packets += 1; $0.bytes += 1500 }

        // The same with atomic fields, for a value several threads update.
        try traffic.upsertAtomicFields(forKey: 1, default: Counters()) {
            $0[\.packets].wrappingAdd(1, ordering: .relaxed)
            $0[\.bytes].wrappingAdd(1500, ordering: .relaxed)
        }

        // Read a field atomically, in place; nil when the key is absent.
        let packets = traffic.withAtomicFields(forKey: 1) { $0[\.packets].load(ordering: .relaxed) }
        #expect(packets == 2)
        #expect(traffic.withAtomicFields(forKey: 2) { $0[\.packets].load(ordering: .relaxed) } == nil)

        for key in UInt32(2)..<5 { try traffic.updateValue(Counters(packets: 200, bytes: UInt64(key)), forKey: key) }
        for (key, counters) in traffic where counters.packets > 100 { print(key, counters.bytes) }
        let keys = Array(traffic.keys)
        let totalBytes = traffic.values.reduce(0) { $0 + $1.bytes }
        let copy: [UInt32: Counters] = traffic.snapshot()
        traffic.forEachInPlace { _, counters in counters = Counters() }   // reset every value in place
        #expect(Set(printed) == ["2 2", "3 3", "4 4"])
        #expect(Set(keys) == [1, 2, 3, 4])
        #expect(totalBytes == 3000 + 2 + 3 + 4)
        #expect(copy[1]?.packets == 2)
        #expect(traffic.values.allSatisfy { $0.packets == 0 && $0.bytes == 0 })

        // Expiring idle entries (every value is 0 packets now).
        var reported: [UInt32] = []
        func report(_ flow: UInt32, _ last: Counters) { reported.append(flow) }
        for (flow, counters) in traffic where counters.packets == 0 {
            if let last = try traffic.removeValue(forKey: flow) { report(flow, last) }
        }
        #expect(Set(reported) == [1, 2, 3, 4])
        #expect(traffic.isEmpty)
    }

    @Test func typedMapsErrors() throws {
        var printed: [String] = []
        func print(_ item: Any) { printed.append("\(item)") }
        let tiny = try BucketHashMap<UInt64, UInt64>(maxEntries: 1)
        try tiny.updateValue(1, forKey: 1)
        do {
            try tiny.updateValue(2, forKey: 2)
        } catch MapError.outOfSpace {
            print("full")                                      // E2BIG: key 2 was not stored
        } catch {
            print("update failed: \(error)")                   // "EINVAL: …", with the reason
        }
        #expect(printed == ["full"])
        #expect(tiny[2] == nil)
    }

    // MARK: CustomMaps.md

    @Test func customMapsTypedProviders() throws {
        var printed: [String] = []
        func print(_ item: Any) { printed.append("\(item)") }
        let registry = MapProviderRegistry()                  // a registry of our own (see below)
        let percentages = try registry.register(Percentages(), type: MapType(rawValue: 4200), base: .hashBucketLocked)
        do {
            let load = try percentages.makeMap(maxEntries: 64)   // a CustomMap<UInt32, Int32>
            try load.updateValue(250, forKey: 1)                  // stored as 100
            print(try load[1] ?? 0)                               // 100
            try load.updateValue(40, forKey: 1)                   // "key 1: 100 left the map (replaced)"
            try load.withValue(forKey: 1) { $0 += 1 }             // in place: not validated
        }                                                         // "key 1: 41 left the map (teardown)"
        try percentages.unregister()                              // EBUSY while maps of the type exist
        // (The provider's lines, from the file-scope `print`; only this test logs "key 1:".)
        #expect(fileScopeOutput.withLock { $0.filter { $0.hasPrefix("key 1:") } }
                    == ["key 1: 100 left the map (replaced)", "key 1: 41 left the map (teardown)"])

        let cents = try registry.register(Cents(), type: MapType(rawValue: 4201), base: .hashLockFree)
        let prices = try cents.makeMap(maxEntries: 1024)
        try prices.updateValue(9.999, forKey: 7)
        print(try prices[7] ?? 0)                                          // 10.0
        let context = prices.raw.providerContext as? Cents.Context         // the map's context
        print(context?.rounded.load(ordering: .relaxed) ?? 0)              // 1
        #expect(printed == ["100", "10.0", "1"])
        #expect(try prices[7] == 10.0)
        #expect(context?.rounded.load(ordering: .relaxed) == 1)
        #expect(throws: MapError.notSupported) { try prices.withValue(forKey: 7) { $0 += 1 } }
        #expect(try prices.raw.get(UInt32(7), as: Double.self) == 10.0)   // user-mode byte lookups translate too
    }

    @Test func customMapsDispatchTable() throws {
        let auditRegistry = MapProviderRegistry()
        let audit = MapProviderDispatchTable(
            preprocessMapCreate: { request in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { _, _ in },
            postprocessElementDeletion: { deletion in print("a value left the map:", deletion.flags) })
        try auditRegistry.register(type: MapType(rawValue: 4300), base: .hashLockFree, dispatch: audit)
        let audited = try auditRegistry.createMap(MapDefinition(type: MapType(rawValue: 4300), keySize: 4, valueSize: 8,
                                                                maxEntries: 64))   // a RawCustomMap
        #expect(audited.baseKind == .hashLockFree)
        #expect(audited.definition.type == MapType(rawValue: 4300))
    }

    @Test func customMapsObjectMap() throws {
        var printed: [String] = []
        func print(_ item: Any) { printed.append("\(item)") }
        final class Connection: Sendable {
            let peer: String
            init(peer: String) { self.peer = peer }
        }
        let connections = try ObjectMap<Int32, Connection>(maxEntries: 1024)   // fd → connection
        try connections.updateValue(Connection(peer: "198.51.100.7:443"), forKey: 5)
        if let connection = connections[5] { print(connection.peer) }         // retained; lock-free
        try connections.removeValue(forKey: 5)     // the map's reference goes after a grace period
        Epoch.barrier()
        #expect(printed == ["198.51.100.7:443"])
        #expect(connections.count == 0)
    }

    // MARK: The articles and this file agree

    /// Every ```swift block of the catalog's articles appears in this file.
    @Test func everyArticleSnippetIsCompiledHere() throws {
        let thisFile = URL(fileURLWithPath: #filePath)
        let root = thisFile.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let catalog = root.appendingPathComponent("Sources/RCUMaps/RCUMaps.docc")
        let compiled = Self.codeLines(try String(contentsOf: thisFile, encoding: .utf8))
        let articles = try FileManager.default.contentsOfDirectory(atPath: catalog.path).filter { $0.hasSuffix(".md") }.sorted()
        #expect(articles.count >= 7, "\(articles)")
        var checked = 0
        for article in articles {
            let text = try String(contentsOf: catalog.appendingPathComponent(article), encoding: .utf8)
            for block in Self.swiftBlocks(in: text) where block.first?.hasPrefix("// Package.swift") != true {
                checked += 1
                let found = Self.contains(compiled, run: block)
                #expect(found, "\(article): this snippet is not in \(thisFile.lastPathComponent):\n\(block.joined(separator: "\n"))")
            }
        }
        #expect(checked >= 15)
    }

    /// The lines of each ```swift block, trimmed, blank lines dropped.
    static func swiftBlocks(in markdown: String) -> [[String]] {
        var blocks: [[String]] = []
        var current: [String]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil, trimmed == "```swift" {
                current = []
            } else if current != nil, trimmed == "```" {
                blocks.append(current!)
                current = nil
            } else if !trimmed.isEmpty {
                current?.append(trimmed)
            }
        }
        return blocks
    }

    static func codeLines(_ source: String) -> [String] {
        source.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Whether `lines` holds `run` as consecutive lines.
    static func contains(_ lines: [String], run: [String]) -> Bool {
        guard !run.isEmpty, run.count <= lines.count else { return run.isEmpty }
        return (0...(lines.count - run.count)).contains { start in lines[start..<start + run.count].elementsEqual(run) }
    }
}

// MARK: - Examples/

/// The example programs (Examples/*/main.swift) run and print what they should. `swift test`
/// builds every product of the package, so the binaries sit next to the test bundle.
@Suite("Example programs")
struct ExampleProgramTests {
    /// The directory of the built products: the test bundle's own.
    static let products = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                                  ?? CommandLine.arguments[0]).deletingLastPathComponent()

    static func run(_ name: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = products.appendingPathComponent(name)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    static var built: Bool {
        ["FlowTableExample", "RouteCacheExample", "CustomProviderExample"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: products.appendingPathComponent($0).path)
        }
    }

    @Test(.enabled(if: built, "the example products are not built next to the test bundle"))
    func flowTable() throws {
        let (status, output) = try Self.run("FlowTableExample")
        #expect(status == 0, "\(output)")
        #expect(output.contains("8 flows, 100000 packets counted of 100000 sent, 0 dropped"), "\(output)")
        #expect(output.contains("expired first flow after 12500 packets"), "\(output)")
        #expect(output.contains("expired 4 flows to port 8001 (50000 packets); 3 flows left"), "\(output)")
        #expect(output.contains("pool tag rcub: ") && output.contains(" kept for reuse"), "\(output)")
    }

    @Test(.enabled(if: built, "the example products are not built next to the test bundle"))
    func routeCache() throws {
        let (status, output) = try Self.run("RouteCacheExample")
        #expect(status == 0, "\(output)")
        #expect(output.contains("total: 400000 of 400000"), "\(output)")
        #expect(output.contains("withdrew 10.1.2.0/24 (via 192.0.2.3 on eth2)"), "\(output)")
        #expect(output.contains("10.1.2.7 now goes via eth1"), "\(output)")
        #expect(output.contains("replaced and removed routes released"), "\(output)")
    }

    @Test(.enabled(if: built, "the example products are not built next to the test bundle"))
    func customProvider() throws {
        let (status, output) = try Self.run("CustomProviderExample")
        #expect(status == 0, "\(output)")
        for line in ["port 443: 1000/s, burst 1000", "port 22 refused: EINVAL", "left the map (replaced)",
                     "left the map (deleted)", "left the map (teardown)", "[deinit] connection to 203.0.113.9:22 closed",
                     "[deinit] connection to 198.51.100.7:443 closed", "done"] {
            #expect(output.contains(line), "missing \(line):\n\(output)")
        }
    }
}
