#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A key of an ``LPMTrieMap``: a prefix of `8 × dataSize` bits, laid out as Linux's
/// `struct bpf_lpm_trie_key_u8` — the prefix length (`UInt32`, host order), then the data,
/// big-endian (the first bits in the first byte).
///
/// ``IPv4Prefix`` and ``IPv6Prefix`` are the two everyone needs; conform your own type for
/// other sizes (1...256 data bytes).
public protocol LPMTrieKey: Hashable, Sendable {
    /// Data bytes of the key (4 for IPv4, 16 for IPv6).
    static var dataSize: Int { get }
    /// Bits of the prefix, `0...8 * dataSize`.
    var prefixLength: Int { get }
    /// Calls `body` with the key's bytes: 4 bytes of prefix length, then ``dataSize`` bytes
    /// of data. The bytes are valid only during the call.
    func withKeyBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result
    /// A key from bytes laid out as ``withKeyBytes(_:)`` gives them.
    init(keyBytes: UnsafeRawBufferPointer)
}

/// An IPv4 prefix (`10.0.0.0/8`) or address (a `/32`), a key of ``LPMTrieMap``.
///
/// Bits beyond ``prefixLength`` are kept, as Linux keeps them: they do not change which
/// routes match, and an iteration returns the bits the last update of a prefix gave.
public struct IPv4Prefix: LPMTrieKey, CustomStringConvertible {
    /// The address as a number in host order (`10.1.2.3` is `0x0A01_0203`).
    public var address: UInt32
    /// Bits of the prefix, `0...32`.
    public var prefixLength: Int

    /// Four data bytes.
    public static var dataSize: Int { 4 }

    /// The prefix `address/prefixLength`; a `/32` (one address) by default.
    public init(address: UInt32, prefixLength: Int = 32) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// `a.b.c.d/prefixLength`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, prefixLength: Int = 32) {
        self.init(address: UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d), prefixLength: prefixLength)
    }

    /// Parses `"192.168.0.0/16"`, or an address alone (`"192.168.1.7"`, a `/32`); nil if
    /// malformed or the length exceeds 32.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return nil }
        var address = in_addr()
        guard inet_pton(AF_INET, String(parts[0]), &address) == 1 else { return nil }
        var length = 32
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...32).contains(parsed) else { return nil }
            length = parsed
        }
        self.init(address: UInt32(bigEndian: address.s_addr), prefixLength: length)
    }

    /// Calls `body` with the 8 key bytes (length, then the address big-endian). A length
    /// outside `0...UInt32.max` is written as `UInt32.max`, which every operation refuses
    /// as too long (not wrapped around to a shorter prefix).
    public func withKeyBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let key = (UInt32(exactly: prefixLength) ?? .max, address.bigEndian)
        return try withUnsafeBytes(of: key) { (bytes) throws(Failure) -> Result in try body(bytes) }
    }

    /// A key from 8 bytes laid out as ``withKeyBytes(_:)`` gives them.
    public init(keyBytes: UnsafeRawBufferPointer) {
        prefixLength = Int(keyBytes.loadUnaligned(as: UInt32.self))
        address = UInt32(bigEndian: keyBytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
    }

    /// `"10.0.0.0/8"`.
    public var description: String {
        "\(address >> 24).\(address >> 16 & 0xFF).\(address >> 8 & 0xFF).\(address & 0xFF)/\(prefixLength)"
    }
}

/// An IPv6 prefix (`2001:db8::/32`) or address (a `/128`), a key of ``LPMTrieMap``.
///
/// Bits beyond ``prefixLength`` are kept, as for ``IPv4Prefix``.
public struct IPv6Prefix: LPMTrieKey, CustomStringConvertible {
    /// The first 64 bits of the address, as a number in host order.
    public var high: UInt64
    /// The last 64 bits of the address, as a number in host order.
    public var low: UInt64
    /// Bits of the prefix, `0...128`.
    public var prefixLength: Int

    /// Sixteen data bytes.
    public static var dataSize: Int { 16 }

    /// The prefix `high:low/prefixLength`; a `/128` (one address) by default.
    public init(high: UInt64, low: UInt64, prefixLength: Int = 128) {
        self.high = high
        self.low = low
        self.prefixLength = prefixLength
    }

    /// Parses `"2001:db8::/32"`, or an address alone (`"2001:db8::1"`, a `/128`); nil if
    /// malformed or the length exceeds 128.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 16)
        guard inet_pton(AF_INET6, String(parts[0]), &bytes) == 1 else { return nil }
        var length = 128
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...128).contains(parsed) else { return nil }
            length = parsed
        }
        let words = bytes.withUnsafeBytes {
            (UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)), UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
        self.init(high: words.0, low: words.1, prefixLength: length)
    }

    /// Calls `body` with the 20 key bytes (length, then the address big-endian); a length
    /// out of range is written as `UInt32.max`, as for ``IPv4Prefix``.
    public func withKeyBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        // Five 4-byte words: no padding between the length and the address.
        let key = (UInt32(exactly: prefixLength) ?? .max,
                   UInt32(truncatingIfNeeded: high >> 32).bigEndian, UInt32(truncatingIfNeeded: high).bigEndian,
                   UInt32(truncatingIfNeeded: low >> 32).bigEndian, UInt32(truncatingIfNeeded: low).bigEndian)
        return try withUnsafeBytes(of: key) { (bytes) throws(Failure) -> Result in try body(bytes) }
    }

    /// A key from 20 bytes laid out as ``withKeyBytes(_:)`` gives them.
    public init(keyBytes: UnsafeRawBufferPointer) {
        prefixLength = Int(keyBytes.loadUnaligned(as: UInt32.self))
        high = UInt64(bigEndian: keyBytes.loadUnaligned(fromByteOffset: 4, as: UInt64.self))
        low = UInt64(bigEndian: keyBytes.loadUnaligned(fromByteOffset: 12, as: UInt64.self))
    }

    /// The address in the standard text form, then the length (`"2001:db8::/32"`).
    public var description: String {
        var bytes = (high.bigEndian, low.bigEndian)
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = withUnsafeBytes(of: &bytes) { inet_ntop(AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/\(prefixLength)"
    }
}

/// An `LPM_TRIE` map: routes from prefixes (``IPv4Prefix``, ``IPv6Prefix``, or your own
/// ``LPMTrieKey``) to values, answering longest-prefix-match lookups, as Linux's
/// `BPF_MAP_TYPE_LPM_TRIE`. Storage is ``/RCUBaseMaps/RawLPMTrieMap``.
///
/// ```swift
/// let routes = try LPMTrieMap<IPv4Prefix, UInt32>(capacity: 1024)
/// try routes.updateValue(7, forKey: IPv4Prefix("10.0.0.0/8")!)         // insert a route
/// let hop = routes.longestMatch(IPv4Prefix("10.1.2.3")!)             // 7
/// ```
///
/// Rules, as Linux: ``longestMatch(_:)`` returns the value of the longest stored prefix that
/// covers the query's first `prefixLength` bits (a query with a shorter length matches only
/// prefixes no longer than it); updates and removals are exact-prefix (bits beyond a
/// prefix's length do not matter); a new prefix in a full map is refused with
/// ``/RCUBaseMaps/MapError/noSpace`` (ENOSPC); a prefix longer than the key's data is
/// ``/RCUBaseMaps/MapError/invalidArgument``.
///
/// Concurrency: any number of readers and writers on any threads and tasks. Lookups take
/// no lock and never wait (except in a thread's first section, which registers the thread:
/// chiefly while another thread prepares a `fork()`, see ``/RCUEpoch/Epoch``): each runs
/// in an epoch section of its own and copies the value out
/// before the section ends, so nothing borrowed escapes; a value being replaced reads
/// whole, old or new. Writers serialise on the map's writer lock (short: a few node copies);
/// replaced memory is reclaimed after a grace period. Iteration (``snapshot()``) takes the
/// writer lock for each step. A signal handler may look up (on a thread that entered a section before the signal: a
/// thread's first section registers it, which is not reentrant), but must not write or iterate:
/// it would wait for ever for a writer lock its interrupted thread holds.
public final class LPMTrieMap<Key: LPMTrieKey, Value: BitwiseCopyable & Sendable>: Sendable {
    /// The byte-level map underneath.
    public let raw: RawLPMTrieMap

    /// An empty trie holding at most `capacity` prefixes.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for a capacity of 0, a
    ///   zero-sized `Value`, a key's `dataSize` outside 1...256 or a bad name;
    ///   ``/RCUBaseMaps/MapError/noMemory``.
    public init(capacity: Int, name: String = "", poolTag: PoolTag? = nil) throws(MapError) {
        guard MemoryLayout<Value>.alignment <= 8 else {
            throw MapError.invalidArgument.with(reason: "values aligned beyond 8 bytes are not supported")
        }
        raw = try RawLPMTrieMap(MapDefinition(type: .lpmTrie, keySize: try Self.keySize(), valueSize: MemoryLayout<Value>.size,
                                              maxEntries: capacity, flags: .noPrealloc, name: name, poolTag: poolTag))
    }

    /// `4 + Key.dataSize`, for a `dataSize` of 1 to 256 (Linux's `LPM_DATA_SIZE_MAX`); EINVAL
    /// otherwise — a conformance's `dataSize` near `Int.max` overflowed the sum and stopped
    /// the program (found by review, 2026-12-05).
    static func keySize() throws(MapError) -> Int {
        guard (1...256).contains(Key.dataSize) else {
            throw MapError.invalidArgument.with(reason: "\(Key.self).dataSize is \(Key.dataSize): 1 to 256 bytes")
        }
        return 4 + Key.dataSize
    }

    /// A typed view of an existing byte-level trie (both views see the same routes).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` when its key or value size is
    ///   not `Key`'s or `Value`'s, or when it was created `BPF_F_WRONLY` (the view's
    ///   lookups and `snapshot()` read in user mode without throwing).
    ///
    /// - Precondition: the map holds only valid values of the view's types (see
    ///   <doc:TypedMaps#Bytes-the-view-did-not-write>).
    public init(wrapping raw: RawLPMTrieMap) throws(MapError) {
        guard raw.definition.keySize == (try Self.keySize()), raw.definition.valueSize == MemoryLayout<Value>.size,
              MemoryLayout<Value>.alignment <= 8 else {
            throw MapError.invalidArgument.with(reason: "the trie's keys and values are not \(Key.self) and \(Value.self)")
        }
        // Its reads would answer "no route" for every address and list no route (the
        // refusal taken for an absence: found by review, 2026-12-05).
        guard !raw.definition.flags.contains(.writeOnly) else {
            throw MapError.invalidArgument.with(
                reason: "the trie was created BPF_F_WRONLY: a typed view reads in user mode without throwing; use the byte-level map")
        }
        self.raw = raw
    }

    /// Stored prefixes (a snapshot under concurrent updates).
    public var count: Int { raw.count }
    /// Most prefixes the trie holds.
    public var capacity: Int { raw.definition.maxEntries }
    /// Whether no prefix is stored.
    public var isEmpty: Bool { raw.count == 0 }

    /// The value of the longest stored prefix covering `query`'s first `prefixLength` bits,
    /// or nil when none does (or the query's length exceeds the key's bits).
    ///
    /// Concurrency: any thread; lock-free; the value is copied inside an epoch section.
    ///
    /// - Precondition: `Key.withKeyBytes` hands over `4 + Key.dataSize` bytes, as
    ///   ``LPMTrieKey`` requires (the lookup reads that many without a check of its own, so a
    ///   conformance that hands over another count stops the program here, where the writes
    ///   throw ``/RCUBaseMaps/MapError/invalidArgument``).
    public func longestMatch(_ query: Key) -> Value? {
        withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { buffer -> Value? in
            let slot = UnsafeMutableRawPointer(buffer.baseAddress!)
            let keySize = raw.definition.keySize
            let found = query.withKeyBytes { key -> Bool in
                // The unchecked lookup reads `keySize` bytes: a conformance that hands over
                // fewer would have it read beyond them.
                _rcumapsPrecondition(key.count == keySize && key.baseAddress != nil,
                                     "LPMTrieMap: \(Key.self).withKeyBytes gave \(key.count) bytes, the trie's keys are \(keySize)")
                // The length as the bytes carry it, as updates and removals see it.
                let length = Int(key.loadUnaligned(as: UInt32.self))
                return (try? raw.lookupUnchecked(data: key.baseAddress! + 4, prefixLength: length, into: slot)) ?? false
            }
            return found ? slot.load(as: Value.self) : nil
        }
    }

    /// Stores `value` for exactly `prefix` (`BPF_ANY`) and returns the value it replaced, or
    /// nil for a new prefix.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/noSpace`` (ENOSPC) for a new prefix in a full trie;
    ///   ``/RCUBaseMaps/MapError/invalidArgument`` for a prefix longer than the key's bits;
    ///   ``/RCUBaseMaps/MapError/permissionDenied`` on a frozen or `BPF_F_RDONLY` trie;
    ///   ``/RCUBaseMaps/MapError/noMemory`` (nothing changed).
    ///
    /// Concurrency: any thread; takes the writer lock. Lookups see the old value or the new.
    @discardableResult
    public func updateValue(_ value: Value, forKey prefix: Key) throws(MapError) -> Value? {
        try exchange(value, forKey: prefix, flags: .any)
    }

    /// Stores `value` for exactly `prefix` only if it is stored already (`BPF_EXIST`), and
    /// returns the value it replaced; nil (nothing stored) if the prefix was not stored.
    ///
    /// - Throws: as ``updateValue(_:forKey:)`` (never ENOSPC: a replaced prefix takes no room).
    ///
    /// Concurrency: any thread; takes the writer lock. Lookups see the old value or the new.
    @discardableResult
    public func replaceValue(_ value: Value, forKey prefix: Key) throws(MapError) -> Value? {
        do throws(MapError) {
            return try exchange(value, forKey: prefix, flags: .exist)
        } catch where error == .keyNotFound {
            return nil
        }
    }

    func exchange(_ value: Value, forKey prefix: Key, flags: MapUpdateFlags) throws(MapError) -> Value? {
        var value = value
        return try withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { (old) throws(MapError) -> Value? in
            let replaced = try prefix.withKeyBytes { (key) throws(MapError) -> Bool in
                try withUnsafeBytes(of: &value) { (bytes) throws(MapError) -> Bool in
                    // `Value`'s size, not its stride: the trie checks the buffer is one value.
                    try raw.exchange(key: key, value: bytes, flags: flags,
                                     into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(old)[..<MemoryLayout<Value>.size]))
                }
            }
            return replaced ? UnsafeMutableRawPointer(old.baseAddress!).load(as: Value.self) : nil
        }
    }

    /// Stores `value` for `prefix` only if it is not stored yet (`BPF_NOEXIST`); false if it was.
    ///
    /// - Throws: as ``updateValue(_:forKey:)``.
    ///
    /// Concurrency: any thread; takes the writer lock. Of two threads inserting one prefix,
    /// one gets `true`.
    @discardableResult
    public func insertIfAbsent(_ value: Value, forKey prefix: Key) throws(MapError) -> Bool {
        var value = value
        do throws(MapError) {
            try prefix.withKeyBytes { (key) throws(MapError) in
                try withUnsafeBytes(of: &value) { (bytes) throws(MapError) in try raw.update(key: key, value: bytes, flags: .noExist) }
            }
            return true
        } catch where error == .alreadyExists {
            return false
        }
    }

    /// Removes exactly `prefix` (bits beyond its length do not matter) and returns its value;
    /// nil if it was not stored — a prefix that only longer ones pass through is not stored.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for a prefix longer than the
    ///   key's bits; ``/RCUBaseMaps/MapError/permissionDenied`` on a frozen or `BPF_F_RDONLY`
    ///   trie; ``/RCUBaseMaps/MapError/noMemory`` when a node the removal rebuilds cannot be
    ///   allocated (the trie is unchanged).
    ///
    /// Concurrency: any thread; takes the writer lock, and copies the value under it: of
    /// several threads removing one prefix, exactly one gets its value. The entry's memory is
    /// reclaimed after a grace period. (Linux's trie has no lookup-and-delete; this is
    /// ``/RCUBaseMaps/RawLPMTrieMap/delete(key:copyingValueInto:)``.)
    @discardableResult
    public func removeValue(forKey prefix: Key) throws(MapError) -> Value? {
        try withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { (slot) throws(MapError) -> Value? in
            do throws(MapError) {
                try prefix.withKeyBytes { (key) throws(MapError) in
                    // `Value`'s size, not its stride: the trie checks the buffer is one value.
                    try raw.delete(key: key, copyingValueInto: UnsafeMutableRawBufferPointer(
                        rebasing: UnsafeMutableRawBufferPointer(slot)[..<MemoryLayout<Value>.size]))
                }
            } catch where error == .keyNotFound {
                return nil
            }
            return UnsafeMutableRawPointer(slot.baseAddress!).load(as: Value.self)
        }
    }

    /// Every stored prefix and its value, in Linux's iteration order (more specific prefixes
    /// before the ones that cover them). Prefixes as the last update gave them.
    ///
    /// Concurrency: any thread. Not one atomic picture: each step takes the writer lock; a
    /// prefix present for the whole call is listed once.
    public func snapshot() -> [(prefix: Key, value: Value)] { Array(self) }

    /// The entry after `prefix` in a pass (the first when nil), or nil at its end.
    func entry(after prefix: Key?) -> (prefix: Key, value: Value)? {
        var next = [UInt8](repeating: 0, count: 4 + Key.dataSize)
        return withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { buffer -> (prefix: Key, value: Value)? in
            let slot = UnsafeMutableRawPointer(buffer.baseAddress!)
            let moved = next.withUnsafeMutableBytes { next in
                if let prefix {
                    return prefix.withKeyBytes { cursor in
                        (try? raw.nextEntryInPass(after: cursor, into: next, value: slot)) != nil
                    }
                }
                return (try? raw.nextEntryInPass(after: nil, into: next, value: slot)) != nil
            }
            guard moved else { return nil }
            return (next.withUnsafeBytes { Key(keyBytes: $0) }, slot.load(as: Value.self))
        }
    }
}
