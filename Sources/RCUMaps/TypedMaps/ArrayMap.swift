/// An `ARRAY` map: `count` preallocated values indexed by `UInt32`, as Linux's
/// `BPF_MAP_TYPE_ARRAY`. Storage is ``/RCUBaseMaps/RawArrayMap``.
///
/// ```swift
/// let counters = try ArrayMap<UInt64>(count: 256)
/// counters.withAtomicFields(forKey: 7) { $0[\.self].wrappingAdd(1, ordering: .relaxed) }
/// let total = counters.values.reduce(0, +)
/// ```
///
/// Every index always holds a value: ``count`` is the number of slots, an index beyond
/// them reads as `nil` and is refused by updates (``/RCUBaseMaps/MapError/outOfSpace``, E2BIG, as
/// Linux). Slots cannot be deleted.
///
/// Concurrency: any number of readers and writers on any threads. Values of at most
/// 8 bytes are single atomic words; larger ones are guarded by a per-slot sequence word,
/// so user-mode reads never see half of a whole-value write (`updateValue(_:forKey:)`,
/// `replaceValue(_:forKey:)`, batches). In-place writes (`withValue(forKey:_:)`,
/// `withAtomicFields(forKey:_:)`, `forEachInPlace(_:)`) bypass the sequence word: a
/// value over 8 bytes written there can be read half written. Reads need no epoch.
public final class ArrayMap<Value: BitwiseCopyable & Sendable>: InPlaceKeyValueMap, Sequence {
    /// Array indices, `0..<capacity`, as Linux's ARRAY keys.
    public typealias Key = UInt32

    /// The byte-level map underneath.
    public let raw: RawArrayMap

    /// `count` slots, each starting as all-zero bytes.
    ///
    /// - Precondition: all-zero bytes are a valid `Value` (integers, floating-point
    ///   numbers, and structs and tuples of them). For other types (a non-optional pointer
    ///   or `ObjectIdentifier`, or a struct holding one) use
    ///   ``init(count:repeating:name:numaNode:poolTag:)``.
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for a value type aligned beyond 8 bytes or a
    ///   bad definition; ``/RCUBaseMaps/MapError/noMemory`` when the storage cannot be allocated.
    public init(count: Int, name: String = "", numaNode: Int? = nil, poolTag: PoolTag? = nil) throws(MapError) {
        raw = try RawArrayMap(.typed(.array, key: UInt32.self, value: Value.self, maxEntries: count,
                                     flags: [], name: name, numaNode: numaNode, poolTag: poolTag))
    }

    /// `count` slots, each holding `initialValue`.
    public convenience init(count: Int, repeating initialValue: Value, name: String = "", numaNode: Int? = nil,
                            poolTag: PoolTag? = nil) throws(MapError) {
        try self.init(count: count, name: name, numaNode: numaNode, poolTag: poolTag)
        // Plain stores: `updateValue` reads each displaced value, the all-zero bytes this
        // initialiser exists to keep from ever being read as a `Value` (found by review,
        // 2026-12-05).
        try withUnsafeBytes(of: initialValue) { (value) throws(MapError) in
            for index in 0..<UInt32(count) {
                try withUnsafeBytes(of: index) { (key) throws(MapError) in try raw.update(key: key, value: value, flags: .any) }
            }
        }
    }

    /// A typed view of an existing byte-level array (both views see the same slots).
    ///
    /// A map created with `BPF_F_WRONLY` or `BPF_F_WRONLY_PROG` is refused (EINVAL): the typed
    /// reads (subscripts, in-place closures) do not throw. `BPF_F_RDONLY` is kept (the typed
    /// writes throw EPERM); `BPF_F_RDONLY_PROG` and a lock word are refused (EINVAL): the
    /// view's in-place closures write values whole, from user code. So is a
    /// `BPF_F_MMAPABLE` array of values over 8 bytes (EINVAL): as Linux's, it has no
    /// sequence word, so a read can see a concurrent write half done, and the view promises
    /// values stored whole.
    ///
    /// - Precondition: the map holds only valid values of the view's types (see
    ///   <doc:TypedMaps#Bytes-the-view-did-not-write>).
    public init(wrapping raw: RawArrayMap) throws(MapError) {
        try MapDefinition.checkTyped(raw, key: UInt32.self, value: Value.self)
        try MapDefinition.checkInPlaceWrites(raw)
        // (Accepted until 2026-12-05: its subscript could return a value no update stored,
        // or, for a multi-word enum, no valid value at all; found by review.)
        guard !(raw.definition.flags.contains(.mmapable) && MemoryLayout<Value>.size > 8) else {
            throw MapError.invalidArgument.with(reason: """
                the array is BPF_F_MMAPABLE with \(MemoryLayout<Value>.size)-byte values: its reads are not atomic \
                (a read can see a write half done); use the byte-level map
                """)
        }
        self.raw = raw
    }

    /// The value at `index`, copied out; `nil` beyond the last slot.
    ///
    /// Concurrency: any thread; no epoch needed (the slots live as long as the map).
    @inlinable
    public subscript(index: UInt32) -> Value? {
        do {
            return try value(forKey: index)
        } catch {
            typedMapInvariantBroken(error, "lookup")
        }
    }
}
