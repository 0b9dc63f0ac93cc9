import RCUMaps
import RCUMapsTestSupport
import Testing

/// The typed LPM trie: IPv4 and IPv6 prefixes, one-line routes and lookups, round trips of
/// the key types through their bytes and text, and the errors of the byte-level map.
@Suite("Typed LPM_TRIE")
struct TypedLPMTrieTests {
    /// Iteration hands out each prefix with its value at that step: a prefix the loop body
    /// removed is skipped, one it changed comes with the new value. The successor was read
    /// a step early, value included, and came back as it was (found by review, 2026-12-05,
    /// nineteenth session). `BucketHashMap` iteration behaves the same way.
    @Test func iterationSeesWhatTheLoopBodyChanged() throws {
        for removes in [true, false] {
            let routes = try LPMTrieMap<IPv4Prefix, UInt32>(capacity: 8)
            try routes.updateValue(1, forKey: IPv4Prefix("10.0.0.0/8")!)
            try routes.updateValue(2, forKey: IPv4Prefix("10.1.0.0/16")!)
            var seen: [(IPv4Prefix, UInt32)] = []
            for (prefix, value) in routes {
                seen.append((prefix, value))
                guard prefix.prefixLength == 16 else { continue }
                if removes { try routes.removeValue(forKey: IPv4Prefix("10.0.0.0/8")!) } else { try routes.updateValue(9, forKey: IPv4Prefix("10.0.0.0/8")!) }
            }
            #expect(seen.map(\.0) == (removes ? [IPv4Prefix("10.1.0.0/16")!] : [IPv4Prefix("10.1.0.0/16")!, IPv4Prefix("10.0.0.0/8")!]))
            #expect(seen.map(\.1) == (removes ? [2] : [2, 9]))
        }
    }

    @Test func ipv4RoutesAndLookups() throws {
        let routes = try LPMTrieMap<IPv4Prefix, UInt32>(capacity: 8, poolTag: uniqueTag())
        #expect(routes.longestMatch(IPv4Prefix("10.1.2.3")!) == nil)
        #expect(try routes.updateValue(1, forKey: IPv4Prefix("10.0.0.0/8")!) == nil)
        try routes.updateValue(2, forKey: IPv4Prefix("10.1.0.0/16")!)
        try routes.updateValue(3, forKey: IPv4Prefix("0.0.0.0/0")!)
        #expect(routes.longestMatch(IPv4Prefix("10.1.2.3")!) == 2)
        #expect(routes.longestMatch(IPv4Prefix("10.2.2.3")!) == 1)
        #expect(routes.longestMatch(IPv4Prefix("11.2.2.3")!) == 3)
        // A shorter query reaches only prefixes no longer than it.
        #expect(routes.longestMatch(IPv4Prefix("10.1.2.3/12")!) == 1)
        #expect(try routes.updateValue(4, forKey: IPv4Prefix(10, 1, 99, 99, prefixLength: 16)) == 2)
        #expect(try routes.insertIfAbsent(5, forKey: IPv4Prefix("10.1.0.0/16")!) == false)
        #expect(try routes.insertIfAbsent(5, forKey: IPv4Prefix("10.1.2.0/24")!) == true)
        #expect(routes.count == 4)
        #expect(routes.snapshot().map(\.prefix.description) == ["10.1.2.0/24", "10.1.99.99/16", "10.0.0.0/8", "0.0.0.0/0"])
        #expect(routes.snapshot().map(\.value) == [5, 4, 1, 3])
        #expect(try routes.replaceValue(6, forKey: IPv4Prefix("10.1.2.0/24")!) == 5)
        #expect(try routes.replaceValue(6, forKey: IPv4Prefix("10.9.0.0/16")!) == nil)   // absent: nothing stored
        #expect(routes.count == 4 && routes.longestMatch(IPv4Prefix("10.9.1.1")!) == 1)
        #expect(try routes.removeValue(forKey: IPv4Prefix("10.1.0.0/16")!) == 4)
        #expect(try routes.removeValue(forKey: IPv4Prefix("10.1.0.0/16")!) == nil)
        #expect(routes.longestMatch(IPv4Prefix("10.1.3.3")!) == 1)
        do {
            _ = try routes.updateValue(1, forKey: IPv4Prefix(address: 0, prefixLength: 33))
            Issue.record("a /33 was stored")
        } catch {
            #expect(error == .invalidArgument)
        }
    }

    /// A length beyond `UInt32` is refused as too long, not wrapped around to a short prefix
    /// (1 << 32 | 8 used to store a /8, and 1 << 32 a default route matching everything).
    @Test(arguments: [1 << 32, 1 << 32 | 8, -1])
    func outOfRangeLengthsAreRefusedNotWrapped(length: Int) throws {
        let routes = try LPMTrieMap<IPv4Prefix, UInt32>(capacity: 4, poolTag: uniqueTag())
        #expect(throws: MapError.invalidArgument) { try routes.updateValue(1, forKey: IPv4Prefix(address: 0x0A00_0000, prefixLength: length)) }
        #expect(throws: MapError.invalidArgument) { try routes.insertIfAbsent(1, forKey: IPv4Prefix(address: 0x0A00_0000, prefixLength: length)) }
        #expect(routes.count == 0)
        #expect(routes.longestMatch(IPv4Prefix(address: 0x0A01_0203, prefixLength: length)) == nil)
        let routes6 = try LPMTrieMap<IPv6Prefix, UInt32>(capacity: 4, poolTag: uniqueTag())
        #expect(throws: MapError.invalidArgument) { try routes6.updateValue(1, forKey: IPv6Prefix(high: 1, low: 0, prefixLength: length)) }
        #expect(routes6.count == 0)
    }

    /// `removeValue(forKey:)` copies the value under the writer lock: of threads removing
    /// the same prefixes while others store them again, each stored value comes out at most
    /// once, and every value stored is either taken out exactly once or still there.
    @Test func removalsHandOutEachValueOnce() throws {
        let routes = try LPMTrieMap<IPv4Prefix, UInt64>(capacity: 64)
        let prefixes = (0..<4).map { IPv4Prefix(address: UInt32(10 << 24 | $0 << 16), prefixLength: 16) }
        let stored = ThreadLock<[UInt64]>([])
        let taken = ThreadLock<[UInt64]>([])
        runOnThreads(4) { thread in
            var mine: (stored: [UInt64], taken: [UInt64]) = ([], [])
            for round in 0..<400 {
                // Each thread both stores and takes out, so removals race whatever the
                // scheduler does with the threads.
                let value = UInt64(thread << 32 | round)
                if (try? routes.insertIfAbsent(value, forKey: prefixes[(round &+ thread) % prefixes.count])) == true {
                    mine.stored.append(value)
                }
                if let value = try? routes.removeValue(forKey: prefixes[(round &* 3 &+ thread &+ 1) % prefixes.count]) {
                    mine.taken.append(value)
                }
            }
            stored.withLock { $0.append(contentsOf: mine.stored) }
            taken.withLock { $0.append(contentsOf: mine.taken) }
        }
        let out = taken.withLock { $0 } + routes.snapshot().map(\.value)
        let all = stored.withLock { $0 }
        let sameValues = out.sorted() == all.sorted()
        #expect(sameValues, "\(all.count) stored, \(out.count) taken out or still there")
        #expect(taken.withLock { $0.count } > 100)
    }

    /// A value type whose size is less than its stride (here 9 bytes in 16) round-trips
    /// through every write: the displaced value's buffer is one value, not one stride.
    @Test func valuesShorterThanTheirStrideRoundTrip() throws {
        struct Route: BitwiseCopyable, Equatable { var nextHop: UInt64; var metric: UInt8 }
        #expect(MemoryLayout<Route>.size < MemoryLayout<Route>.stride)
        let routes = try LPMTrieMap<IPv4Prefix, Route>(capacity: 4, poolTag: uniqueTag())
        let prefix = IPv4Prefix("10.0.0.0/8")!
        #expect(try routes.updateValue(Route(nextHop: 1, metric: 2), forKey: prefix) == nil)
        #expect(try routes.updateValue(Route(nextHop: 3, metric: 4), forKey: prefix) == Route(nextHop: 1, metric: 2))
        #expect(try routes.insertIfAbsent(Route(nextHop: 5, metric: 6), forKey: IPv4Prefix("10.1.0.0/16")!))
        #expect(routes.longestMatch(IPv4Prefix("10.1.2.3")!) == Route(nextHop: 5, metric: 6))
        #expect(routes.longestMatch(IPv4Prefix("10.2.2.3")!) == Route(nextHop: 3, metric: 4))
        #expect(routes.snapshot().map(\.value) == [Route(nextHop: 5, metric: 6), Route(nextHop: 3, metric: 4)])
    }

    @Test func fullTrieRefusesNewPrefixesWithENOSPC() throws {
        let routes = try LPMTrieMap<IPv4Prefix, UInt64>(capacity: 1, poolTag: uniqueTag())
        try routes.updateValue(1, forKey: IPv4Prefix("10.0.0.0/8")!)
        do {
            try routes.updateValue(2, forKey: IPv4Prefix("11.0.0.0/8")!)
            Issue.record("a full trie took a new prefix")
        } catch {
            #expect(error == .noSpace)
        }
        #expect(try routes.updateValue(3, forKey: IPv4Prefix("10.0.0.0/8")!) == 1)
    }

    @Test func ipv6RoutesAndLookups() throws {
        let routes = try LPMTrieMap<IPv6Prefix, UInt64>(capacity: 8, poolTag: uniqueTag())
        try routes.updateValue(32, forKey: IPv6Prefix("2001:db8::/32")!)
        try routes.updateValue(48, forKey: IPv6Prefix("2001:db8:1::/48")!)
        try routes.updateValue(128, forKey: IPv6Prefix("2001:db8:1::7")!)
        #expect(routes.longestMatch(IPv6Prefix("2001:db8:1::7")!) == 128)
        #expect(routes.longestMatch(IPv6Prefix("2001:db8:1::8")!) == 48)
        #expect(routes.longestMatch(IPv6Prefix("2001:db8:2::8")!) == 32)
        #expect(routes.longestMatch(IPv6Prefix("2001:db9::1")!) == nil)
        #expect(routes.snapshot().map(\.prefix.description) == ["2001:db8:1::7/128", "2001:db8:1::/48", "2001:db8::/32"])
    }

    @Test func keysRoundTripThroughBytesAndText() throws {
        let v4 = try #require(IPv4Prefix("192.168.7.1/23"))
        #expect(v4.address == 0xC0A8_0701 && v4.prefixLength == 23 && v4.description == "192.168.7.1/23")
        #expect(v4.withKeyBytes { Array($0) } == [23, 0, 0, 0, 192, 168, 7, 1])
        #expect(v4.withKeyBytes { IPv4Prefix(keyBytes: $0) } == v4)
        #expect(IPv4Prefix("1.2.3.4/33") == nil && IPv4Prefix("1.2.3") == nil && IPv4Prefix("1.2.3.4/8/8") == nil)
        let v6 = try #require(IPv6Prefix("2001:db8::ff00:42:8329/64"))
        #expect(v6.high == 0x2001_0DB8_0000_0000 && v6.low == 0x0000_FF00_0042_8329 && v6.prefixLength == 64)
        #expect(v6.withKeyBytes { Array($0) } == [64, 0, 0, 0, 0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0xFF, 0, 0, 0x42, 0x83, 0x29])
        #expect(v6.withKeyBytes { IPv6Prefix(keyBytes: $0) } == v6)
        #expect(v6.description == "2001:db8::ff00:42:8329/64")
        #expect(IPv6Prefix("2001:db8::/129") == nil && IPv6Prefix("not an address") == nil)
        // The typed view and the byte-level map see the same routes.
        let routes = try LPMTrieMap<IPv6Prefix, UInt64>(capacity: 4, poolTag: uniqueTag())
        try routes.updateValue(9, forKey: v6)
        let view = try LPMTrieMap<IPv6Prefix, UInt64>(wrapping: routes.raw)
        #expect(view.longestMatch(IPv6Prefix(high: v6.high, low: 1)) == 9)
        #expect(throws: MapError.invalidArgument) { _ = try LPMTrieMap<IPv4Prefix, UInt64>(wrapping: routes.raw) }
    }

    /// A write-only trie is refused: the view's lookups read in user mode and cannot throw,
    /// so every one answered "no route" (found by review, 2026-12-05). Write-only for
    /// programs is fine: the view never reads in helper mode.
    @Test func aWriteOnlyTrieIsRefused() throws {
        func trie(_ flags: MapCreationFlags) throws -> RawLPMTrieMap {
            try RawLPMTrieMap(MapDefinition(type: .lpmTrie, keySize: 8, valueSize: 8, maxEntries: 4,
                                            flags: flags.union(.noPrealloc), poolTag: uniqueTag()))
        }
        #expect(throws: MapError.invalidArgument) { _ = try LPMTrieMap<IPv4Prefix, UInt64>(wrapping: try trie(.writeOnly)) }
        let view = try LPMTrieMap<IPv4Prefix, UInt64>(wrapping: try trie(.writeOnlyProgram))
        let prefix = try #require(IPv4Prefix("10.0.0.0/8"))
        try view.updateValue(7, forKey: prefix)
        #expect(view.longestMatch(try #require(IPv4Prefix("10.1.2.3"))) == 7)
    }

    /// A key type whose `dataSize` is outside Linux's 1...256 is refused with EINVAL: one
    /// near `Int.max` overflowed `4 + dataSize` and stopped the program (found by review,
    /// 2026-12-05).
    @Test func aKeyTypeOfImpossibleSizeIsRefused() throws {
        struct OddKey: LPMTrieKey {
            nonisolated(unsafe) static var size = 0
            static var dataSize: Int { size }
            var prefixLength: Int { 0 }
            func withKeyBytes<Result, Failure: Error>(
                _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
            ) throws(Failure) -> Result {
                try withUnsafeBytes(of: UInt64(0)) { bytes throws(Failure) in try body(bytes) }
            }
            init(keyBytes: UnsafeRawBufferPointer) {}
            init() {}
        }
        let raw = try RawLPMTrieMap(MapDefinition(type: .lpmTrie, keySize: 8, valueSize: 8, maxEntries: 4,
                                                  flags: .noPrealloc, poolTag: uniqueTag()))
        // One after another: the size is the type's (a static), shared by every case.
        for size in [Int.max, Int.max - 3, 257, 0, -1] {
            OddKey.size = size
            #expect(throws: MapError.invalidArgument, "dataSize \(size)") { _ = try LPMTrieMap<OddKey, UInt64>(capacity: 1) }
            #expect(throws: MapError.invalidArgument, "dataSize \(size)") { _ = try LPMTrieMap<OddKey, UInt64>(wrapping: raw) }
        }
    }
}
