/// A typed map over a byte-level ``/RCUBaseMaps/RawMap``: keys and values are Swift values of fixed
/// size, copied in and out, with the vocabulary of `Dictionary`.
///
/// The typed maps are ``BucketHashMap``, ``LockFreeHashMap``, ``LRUHashMap``, ``ArrayMap``
/// and ``CustomMap``. Each wraps one byte-level map (``raw``), reachable for eBPF-style and C
/// interoperation; the typed layer adds no state and no cost of its own (a typed lookup
/// compiles to the byte-level map's inlined lookup).
///
/// Errors are ``/RCUBaseMaps/MapError`` values carrying Linux's errno; the typed API turns the ones a
/// Swift user expects as answers into answers: an absent key is `nil`, an insert of a
/// present key is `false`.
///
/// Concurrency: every map is safe for any number of readers and writers on any threads.
/// Readers never take a lock (a reader of an ``ArrayMap`` value over 8 bytes that writers
/// made retry 16 times copies once holding the slot, for one copy; the batches of the
/// bucket-locked hashes take each chain's lock for the copy, as Linux's do). A value read out is one some update stored whole (never
/// torn by the map's own writes: `updateValue(_:forKey:)` and the
/// other whole-value writes). In-place writes are the caller's own stores: a value over
/// 8 bytes written through ``InPlaceKeyValueMap/withValue(forKey:_:)``, ``AtomicFields``
/// or `forEachInPlace(_:)` while another thread reads it can be read
/// half written, as a BPF program's stores through a looked-up pointer can on Linux. In-place access (``InPlaceKeyValueMap/withValue(forKey:_:)`` and friends) borrows the map's memory
/// for the duration of a closure inside an epoch section; the closure cannot let it escape.
///
/// Every typed map is a `Sequence` of `(key:, value:)` pairs (``KeyValueMapIterator``).
public protocol KeyValueMap<Key, Value>: AnyObject, Sendable {
    /// The key type: bytes with no padding (checked when the map is created).
    associatedtype Key: BitwiseCopyable & Sendable
    /// The value type: at most 8-byte aligned (checked when the map is created).
    associatedtype Value: BitwiseCopyable & Sendable
    /// The byte-level map underneath.
    associatedtype Raw: RawMap

    /// The byte-level map underneath: its key and value sizes are those of `Key` and `Value`.
    /// Use it for batch-style byte access and C interoperation; what it stores is what the
    /// typed map reads.
    var raw: Raw { get }
}

extension KeyValueMap {
    /// Entries in the map (for arrays, the number of slots). A snapshot under concurrent
    /// updates.
    @inlinable public var count: Int { raw.count }

    /// Most entries the map holds (`maxEntries`).
    @inlinable public var capacity: Int { raw.definition.maxEntries }

    /// Whether the map holds no entry.
    @inlinable public var isEmpty: Bool { raw.count == 0 }

    /// The value stored under `key`, copied out; `nil` when the key is absent.
    ///
    /// - Throws: only what a custom map's provider throws from its find callback; never
    ///   for a built-in map (whose typed subscript is therefore non-throwing).
    ///
    /// Concurrency: any thread; enters an epoch for the copy.
    @inlinable @inline(__always)
    public func value(forKey key: Key) throws(MapError) -> Value? {
        try withUnsafeBytes(of: key) { (keyBytes) throws(MapError) -> Value? in
            try withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { (value) throws(MapError) -> Value? in
                let bytes = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(value)[..<MemoryLayout<Value>.size])
                guard try raw.inlinedLookupIfPresent(key: keyBytes, into: bytes) else { return nil }
                // The map holds bytes that a `Value` was written as (or, for arrays, zeros).
                return UnsafeMutableRawPointer(value.baseAddress!).load(as: Value.self)
            }
        }
    }

    /// ``value(forKey:)`` for a pass over the map (iteration, `values`, `snapshot()`): not a
    /// use of the entry, so an ``LRUHashMap``'s recency is left as it is.
    @inlinable @inline(__always)
    func passValue(forKey key: Key) throws(MapError) -> Value? {
        try withUnsafeBytes(of: key) { (keyBytes) throws(MapError) -> Value? in
            try withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { (value) throws(MapError) -> Value? in
                let bytes = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(value)[..<MemoryLayout<Value>.size])
                guard try raw.inlinedPassLookupIfPresent(key: keyBytes, into: bytes) else { return nil }
                return UnsafeMutableRawPointer(value.baseAddress!).load(as: Value.self)
            }
        }
    }

    /// Stores `value` under `key`, replacing any value there (`BPF_ANY`).
    ///
    /// - Returns: The value replaced — exactly the one this update displaced, atomically —
    ///   or `nil` if the key was new.
    /// - Throws: ``/RCUBaseMaps/MapError/permissionDenied`` (EPERM) on a frozen map or one
    ///   created with `BPF_F_RDONLY`; ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) for a new
    ///   key in a full map (an ``LRUHashMap`` evicts instead) and for an ``ArrayMap`` index
    ///   beyond its capacity; ``/RCUBaseMaps/MapError/noMemory`` (the map is unchanged); a
    ///   custom map's provider errors.
    ///
    /// On a custom map whose provider's find callback refuses the value replaced, the new
    /// value is stored all the same: a refusal with ENOENT (the element hidden) returns
    /// `nil`, as for a new key; any other is thrown, its reason saying so.
    ///
    /// Concurrency: any thread. Readers see the old value or the new one, never a mix.
    @inlinable @discardableResult
    public func updateValue(_ value: Value, forKey key: Key) throws(MapError) -> Value? {
        try exchange(value, forKey: key, flags: .any)
    }

    /// Stores `value` under `key` only if the key holds a value already (`BPF_EXIST`).
    ///
    /// - Returns: The value replaced, or `nil` if the key was absent (nothing was stored) —
    ///   or, on a custom map, if the provider's find callback hid the value replaced (the
    ///   new value is stored; see ``updateValue(_:forKey:)``).
    /// - Throws: ``/RCUBaseMaps/MapError/permissionDenied`` (EPERM) on a frozen map or one
    ///   created with `BPF_F_RDONLY`; ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) for an
    ///   ``ArrayMap`` index beyond its capacity (thrown, not answered with `nil`);
    ///   ``/RCUBaseMaps/MapError/noMemory``; a custom map's provider errors.
    @inlinable @discardableResult
    public func replaceValue(_ value: Value, forKey key: Key) throws(MapError) -> Value? {
        do throws(MapError) {
            return try exchange(value, forKey: key, flags: .exist)
        } catch where error.isKeyAbsent {
            return nil
        }
    }

    /// The update under `flags`, reporting what it displaced.
    @inlinable
    func exchange(_ value: Value, forKey key: Key, flags: MapUpdateFlags) throws(MapError) -> Value? {
        try withUnsafeBytes(of: key) { (keyBytes) throws(MapError) -> Value? in
            try withUnsafeBytes(of: value) { (valueBytes) throws(MapError) -> Value? in
                try withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { (old) throws(MapError) -> Value? in
                    let replaced = try raw.exchange(key: keyBytes, value: valueBytes, flags: flags,
                                                    into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(old)[..<MemoryLayout<Value>.size]))
                    return replaced ? UnsafeMutableRawPointer(old.baseAddress!).load(as: Value.self) : nil
                }
            }
        }
    }

    /// A copy of every entry, as a dictionary. Not atomic: each entry is one some update
    /// stored, read at some moment of the pass (see ``makeIterator()``).
    ///
    /// The map tells keys apart by their bytes, the dictionary by `==`: keys that are equal
    /// with different bytes (`0.0` and `-0.0` as `Double`, or a type whose `==` ignores some
    /// fields) are two entries of the map and one of the dictionary, which keeps the value
    /// met last. Iterate the map itself (``makeIterator()``) to see every entry.
    public func snapshot() -> [Key: Value] where Key: Hashable {
        var result: [Key: Value] = [:]
        var entries = KeyValueMapIterator(self)
        while let (key, value) = entries.next() { result[key] = value }
        return result
    }
}

/// Maps whose keys can be inserted and removed: the hash maps and custom maps (an array's
/// slots always exist).
public protocol DynamicKeyValueMap<Key, Value>: KeyValueMap {}

extension DynamicKeyValueMap {
    /// Stores `value` under `key` only if the key is absent (`BPF_NOEXIST`).
    ///
    /// - Returns: `true` if it was stored; `false` if the key held a value (left as it was).
    /// - Throws: ``/RCUBaseMaps/MapError/permissionDenied`` (EPERM) on a frozen map or one
    ///   created with `BPF_F_RDONLY`; ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) when the
    ///   map is full (an ``LRUHashMap`` evicts instead); ``/RCUBaseMaps/MapError/noMemory``;
    ///   a custom map's provider errors.
    ///
    /// Concurrency: of several threads inserting one absent key, exactly one gets `true`.
    @inlinable @discardableResult
    public func insertIfAbsent(_ value: Value, forKey key: Key) throws(MapError) -> Bool {
        try withUnsafeBytes(of: key) { (keyBytes) throws(MapError) -> Bool in
            try withUnsafeBytes(of: value) { (valueBytes) throws(MapError) -> Bool in
                try raw.insertIfAbsent(key: keyBytes, value: valueBytes)
            }
        }
    }

    /// Removes `key` and returns the value it had, atomically (Linux's lookup-and-delete):
    /// of several threads removing one key, exactly one gets the value.
    ///
    /// - Returns: The value removed, or `nil` if the key was absent.
    /// - Throws: ``/RCUBaseMaps/MapError/permissionDenied`` (EPERM) once the map is frozen
    ///   (`raw.freeze()`) or when it was created with `BPF_F_RDONLY`, as Linux refuses
    ///   user-mode writes to such a map; a custom map's
    ///   provider errors (a refusing deletion callback, an array base).
    @inlinable @discardableResult
    public func removeValue(forKey key: Key) throws(MapError) -> Value? {
        try takeValue(forKey: key)
    }

    /// Lookup-and-delete of `key`: the removed value, or nil if absent.
    @inlinable
    func takeValue(forKey key: Key) throws(MapError) -> Value? {
        try withUnsafeBytes(of: key) { (keyBytes) throws(MapError) -> Value? in
            try withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { (value) throws(MapError) -> Value? in
                let bytes = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(value)[..<MemoryLayout<Value>.size])
                guard try raw.lookupAndDeleteIfPresent(key: keyBytes, into: bytes) else { return nil }
                return UnsafeMutableRawPointer(value.baseAddress!).load(as: Value.self)
            }
        }
    }
}

// MARK: - Shared construction

extension MapDefinition {
    /// The definition of a typed map of `Key` → `Value`, after checking their layouts.
    static func typed<Key, Value>(_ type: MapType, key: Key.Type, value: Value.Type, maxEntries: Int,
                                  flags: MapCreationFlags, name: String, numaNode: Int?,
                                  hashImplementation: HashImplementation = .lockFree,
                                  poolTag: PoolTag?) throws(MapError) -> MapDefinition {
        try TypedLayout.checkKey(Key.self)
        try TypedLayout.checkValue(Value.self)
        return MapDefinition(type: type, keySize: MemoryLayout<Key>.size, valueSize: MemoryLayout<Value>.size,
                             maxEntries: maxEntries, flags: flags, name: name, numaNode: numaNode,
                             hashImplementation: hashImplementation, poolTag: poolTag)
    }

    /// Checks that an existing byte-level map can be viewed as `Key` → `Value`.
    /// The checks of a typed view that writes values in place (``InPlaceKeyValueMap``:
    /// `withValue`, `upsert`, atomic fields), beyond ``checkTyped(_:key:value:)``'s: those
    /// writes go through helper-mode pointers, so a map whose program side may not write
    /// (`BPF_F_RDONLY_PROG`) would be written anyway, and a value written whole would
    /// overwrite a lock word (`bpf_spin_lock`) another thread may hold (found by review).
    static func checkInPlaceWrites(_ raw: any RawMap) throws(MapError) {
        let definition = raw.definition
        if definition.flags.contains(.readOnlyProgram) {
            throw MapError.invalidArgument.with(reason: "the map was created with BPF_F_RDONLY_PROG: a typed view "
                + "writes values in place from user code; use the byte-level map")
        }
        if definition.lockOffset != nil {
            throw MapError.invalidArgument.with(reason: "the map's values hold a lock word: a typed view writes "
                + "values whole in place, over the lock; use the byte-level map (BPF_F_LOCK)")
        }
    }

    static func checkTyped<Key, Value>(_ raw: any RawMap, key: Key.Type, value: Value.Type) throws(MapError) {
        try TypedLayout.checkKey(Key.self)
        try TypedLayout.checkValue(Value.self)
        let definition = raw.definition
        guard definition.keySize == MemoryLayout<Key>.size, definition.valueSize == MemoryLayout<Value>.size else {
            throw MapError.invalidArgument.with(reason: """
                the map stores \(definition.keySize)-byte keys and \(definition.valueSize)-byte values, \
                \(Key.self) is \(MemoryLayout<Key>.size) bytes and \(Value.self) is \(MemoryLayout<Value>.size)
                """)
        }
        // The typed calls that cannot throw (subscripts, lookups in place) read in user and
        // helper mode: a map that refuses either is used through its byte-level API. (Flags
        // that refuse writes are fine: the typed writes throw EPERM.)
        let readRefusals = definition.flags.intersection([.writeOnly, .writeOnlyProgram])
        guard readRefusals.isEmpty else {
            throw MapError.invalidArgument.with(reason: """
                the map was created with access flags that refuse reads (\(readRefusals)): a typed view reads \
                in user and helper mode without throwing; use the byte-level map
                """)
        }
    }
}

/// Stops the program: a map's stored values are not the size of the view's `Value` (an
/// in-place access would write out of bounds).
@usableFromInline @inline(never)
func typedValueSizeMismatch<Value>(_ size: Int, _: Value.Type) -> Never {
    _rcumapsTrap("a typed map's values are \(size) bytes, \(Value.self) is \(MemoryLayout<Value>.size): in-place access refused")
}

/// Stops the program: in-place access to values of a type aligned beyond the 8 bytes
/// every map stores values at.
@usableFromInline @inline(never)
func typedValueOverAligned<Value>(_: Value.Type) -> Never {
    _rcumapsTrap("\(Value.self) is \(MemoryLayout<Value>.alignment)-byte aligned; maps store values 8-byte aligned: in-place access refused")
}

/// Stops the program: a byte-level error that a typed map's own checks rule out happened.
@usableFromInline @inline(never)
func typedMapInvariantBroken(_ error: MapError, _ operation: StaticString) -> Never {
    _rcumapsTrap("\(operation) failed with \(error), which the typed map's layout checks rule out")
}
