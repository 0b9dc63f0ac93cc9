import RCUMaps

/// A typed map as the `typed-*` rows use it: `UInt64` values, keys built from bench indices.
///
/// Each typed map declares its subscript itself (``KeyValueMap`` has none), so this protocol
/// names it; the conformances below are the maps' own subscripts, which inline into the
/// worker loop once it is specialised for the map (the protocol is this module's, and not
/// typed-throws, so the call is devirtualized).
protocol TypedBenchMap: KeyValueMap where Value == UInt64 {
    /// The map's subscript: a user-mode lookup (a copy out); nil when the key is absent.
    subscript(key: Key) -> UInt64? { get }
    /// The key of bench index `index`: the byte-level row's key (``BenchKeys/hashKey(_:)``,
    /// or the index itself for an array).
    static func benchKey(_ index: Int) -> Key
    /// An empty map defined as its byte-level row's map is (``hashDefinition(entries:shape:implementation:)``,
    /// ``arrayDefinition(entries:)``), for `entries` prefilled keys.
    static func benchMap(entries: Int) throws(MapError) -> Self
}

extension LockFreeHashMap: TypedBenchMap where Key == UInt64, Value == UInt64 {
    @inline(__always)
    static func benchKey(_ index: Int) -> UInt64 { BenchKeys.hashKey(index) }

    static func benchMap(entries: Int) throws(MapError) -> LockFreeHashMap<UInt64, UInt64> {
        try LockFreeHashMap(maxEntries: entries * 2, name: "bench")
    }
}

extension BucketHashMap: TypedBenchMap where Key == UInt64, Value == UInt64 {
    @inline(__always)
    static func benchKey(_ index: Int) -> UInt64 { BenchKeys.hashKey(index) }

    static func benchMap(entries: Int) throws(MapError) -> BucketHashMap<UInt64, UInt64> {
        try BucketHashMap(maxEntries: entries * 2, name: "bench")
    }
}

extension ArrayMap: TypedBenchMap where Value == UInt64 {
    @inline(__always)
    static func benchKey(_ index: Int) -> UInt32 { UInt32(truncatingIfNeeded: index) }

    static func benchMap(entries: Int) throws(MapError) -> ArrayMap<UInt64> {
        try ArrayMap(count: entries, name: "bench")
    }
}

/// A typed map (`typed-lockfree`, `typed-bucket`, `typed-array`) with 8-byte keys (4-byte
/// indices for the array) and 8-byte values.
///
/// Lookups are the typed subscript (a copy out, as the byte-level rows in user mode,
/// ``UserModeLookup``, and `array`); updates are `updateValue(_:forKey:)` (which also
/// returns the value it displaced).
struct TypedTarget<Map: TypedBenchMap>: BenchTarget {
    let map: Map
    let entries: Int

    /// A new map (``TypedBenchMap/benchMap(entries:)``) with `entries` keys, checked by count.
    init(entries: Int) throws(MapError) {
        map = try Map.benchMap(entries: entries)
        self.entries = entries
        for index in 0..<entries {
            try map.updateValue(BenchKeys.initialValue(index), forKey: Map.benchKey(index))
        }
        guard map.count == entries else {
            throw MapError.invalidArgument.with(reason: "prefilled \(entries) keys but the map counts \(map.count)")
        }
    }

    @inline(__always)
    func lookup(index: Int) -> UInt64? {
        map[Map.benchKey(index)]
    }

    @inline(__always)
    func update(index: Int, value: UInt64) -> Bool {
        (try? map.updateValue(value, forKey: Map.benchKey(index))) != nil
    }
}
