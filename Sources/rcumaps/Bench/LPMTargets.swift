import CRCUMapsBaselines
import RCUMaps

// The LPM rows (`--maps lpm`): longest-prefix lookups on `entries` random prefixes, our
// LPM_TRIE against a binary Patricia trie in C (Linux's algorithm), both filled with the
// same prefixes and asked the same addresses. They run the `lookup` workload only.

/// The prefixes and query addresses of an LPM row: deterministic, so that both rows of a
/// comparison hold the same trie and ask the same questions.
///
/// IPv4: lengths uniform in 8...32; IPv6: lengths uniform in 16...64 (where routed IPv6
/// prefixes live), the bits random. Query `index` is an address inside prefix `index`,
/// its host bits random, so every lookup finds a match (the longest one may be another,
/// more specific prefix).
struct LPMBenchRoutes: Sendable {
    enum Family: Sendable { case ipv4, ipv6 }
    let family: Family
    let dataSize: Int
    /// `entries` prefixes: lengths, and data packed `dataSize` bytes each.
    let lengths: [UInt32]
    let data: [UInt8]
    /// `entries` addresses, packed.
    let addresses: [UInt8]

    init(_ family: Family, entries: Int) {
        self.family = family
        dataSize = family == .ipv4 ? 4 : 16
        let (shortest, longest) = family == .ipv4 ? (8, 32) : (16, 64)
        var random = XorShiftRandom(stream: family == .ipv4 ? 4 : 6)
        var seen = Set<[UInt8]>()
        var lengths: [UInt32] = []
        var data: [UInt8] = []
        var addresses: [UInt8] = []
        while lengths.count < entries {
            let length = shortest + Int(random.next() % UInt64(longest - shortest + 1))
            var bytes = (0..<dataSize).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            var address = bytes
            for index in 0..<dataSize {
                let kept = max(0, min(8, length - 8 * index))
                bytes[index] &= kept == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF00 >> kept)
                address[index] = bytes[index] | (address[index] & ~(kept == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF00 >> kept)))
            }
            guard seen.insert(bytes + [UInt8(length)]).inserted else { continue }
            lengths.append(UInt32(length))
            data += bytes
            addresses += address
        }
        self.lengths = lengths
        self.data = data
        self.addresses = addresses
    }
}

/// `lpm-ipv4`, `lpm-ipv6`: a `RawLPMTrieMap` (lookups through the path the typed
/// `LPMTrieMap` calls, `lookupUnchecked`: one epoch section, the longest match's 8-byte value
/// copied out; the key laid out once, no size checks, as the C trie makes none).
final class LPMTrieTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: `addresses` is written once, before any worker starts.
    let map: RawLPMTrieMap
    let entries: Int
    let dataSize: Int
    let addresses: UnsafeMutableRawPointer

    init(_ routes: LPMBenchRoutes) throws(MapError) {
        entries = routes.lengths.count
        dataSize = routes.dataSize
        let map = try RawLPMTrieMap(MapDefinition(type: .lpmTrie, keySize: 4 + dataSize, valueSize: 8,
                                                  maxEntries: max(1, entries), flags: .noPrealloc, name: "bench"))
        self.map = map
        let key = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 + dataSize, alignment: 8)
        defer { key.deallocate() }
        var value: UInt64 = 0
        for index in 0..<entries {
            key.storeBytes(of: routes.lengths[index], as: UInt32.self)
            for byte in 0..<dataSize { key[4 + byte] = routes.data[index * dataSize + byte] }
            value = UInt64(index)
            try withUnsafeBytes(of: &value) { (bytes) throws(MapError) in
                try map.update(key: UnsafeRawBufferPointer(key), value: bytes, flags: .any)
            }
        }
        addresses = UnsafeMutableRawPointer.allocate(byteCount: max(1, routes.addresses.count), alignment: 64)
        routes.addresses.withUnsafeBytes { addresses.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    deinit { addresses.deallocate() }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        var value: UInt64 = 0
        let found = (try? map.lookupUnchecked(data: addresses + index &* dataSize, prefixLength: dataSize &* 8,
                                              into: &value)) ?? false
        return found ? value : nil
    }

    func update(index: Int, value: UInt64) -> Bool { false }
}

/// `c-patricia-ipv4`, `c-patricia-ipv6`: the same prefixes in the C Patricia trie
/// (`rcumaps_baseline_lpm_*`).
final class CPatriciaTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: the trie and `addresses` are written before any worker starts;
    // workers only read them.
    let trie: OpaquePointer
    let entries: Int
    let dataSize: Int
    let addresses: UnsafeMutablePointer<UInt8>

    init(_ routes: LPMBenchRoutes) throws(MapError) {
        entries = routes.lengths.count
        dataSize = routes.dataSize
        guard let trie = rcumaps_baseline_lpm_create(dataSize) else { throw MapError.noMemory }
        self.trie = trie
        addresses = .allocate(capacity: max(1, routes.addresses.count))
        routes.addresses.withUnsafeBufferPointer { _ = UnsafeMutableBufferPointer(start: addresses, count: $0.count).initialize(from: $0) }
        for index in 0..<entries {
            let stored = routes.data.withUnsafeBufferPointer {
                rcumaps_baseline_lpm_insert(trie, routes.lengths[index], $0.baseAddress! + index * dataSize, UInt64(index))
            }
            guard stored == 0 else { throw MapError.noMemory }
        }
    }

    deinit {
        rcumaps_baseline_lpm_destroy(trie)
        addresses.deallocate()
    }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        var value: UInt64 = 0
        return rcumaps_baseline_lpm_lookup(trie, addresses + index &* dataSize, &value) != 0 ? value : nil
    }

    func update(index: Int, value: UInt64) -> Bool { false }
}
