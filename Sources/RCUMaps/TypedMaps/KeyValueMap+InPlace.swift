/// Typed maps whose values can be read and written where they are stored (helper mode):
/// the built-in ``BucketHashMap``, ``LockFreeHashMap``, ``LRUHashMap`` and ``ArrayMap``. (A ``CustomMap``
/// has its own forms, which can fail when the provider blocks helper mode.)
///
/// ## Borrowed memory
/// In-place access happens inside a closure that runs in an epoch section: the value is
/// passed `inout` (or as a borrowed ``AtomicFields`` view), so it cannot leave the closure,
/// and the map keeps its memory valid until the section ends — even if another thread
/// removes the entry or drops the map meanwhile.
///
/// ## Alignment
/// Values are stored 8-byte aligned in every map (types needing more are refused at
/// creation), so a field of up to 8 bytes at a naturally aligned offset can be used
/// atomically through ``AtomicFields``.
///
/// ## Writes that race with replacement or deletion
/// An in-place write changes the stored entry it was given. What happens when another
/// thread replaces or deletes that entry meanwhile depends on the map:
///
/// | map | value ≤ 8 bytes | larger value |
/// |---|---|---|
/// | ``BucketHashMap`` | replaced in place (an atomic exchange of the same word): a write lands in whichever value is current | a replace publishes a new copy; writes to the old one after that are lost |
/// | ``LockFreeHashMap`` (keys ≤ 8 bytes) | replaced in place by compare-and-swap: a write lands in the current value; after a delete (the entry is sealed) it is lost | a replace publishes a new entry; writes to the old one after that are lost |
/// | ``LRUHashMap`` | as ``BucketHashMap``; an eviction is a delete | as ``BucketHashMap`` |
/// | ``ArrayMap`` | slots are never replaced: every write lands; a user-mode update overwrites it | the same |
///
/// A delete always loses later writes to the deleted entry (it is gone); the memory stays
/// valid until the section ends.
///
/// ## Reaching the same entry from inside the closure
/// The value is passed `inout`, which Swift treats as exclusive while the closure runs: the
/// optimiser may keep it in a register. So the closure must not read or write the *same*
/// entry through the map (an `updateValue`, a nested `withValue` of its key, a removal and
/// re-insert): a release build may then store its stale copy over what the map just wrote,
/// or miss it. Other keys are fine, and so is removing the closure's own key in
/// ``forEachInPlace(_:)`` once the closure no longer writes the value (found by review,
/// 2026-12-07).
public protocol InPlaceKeyValueMap<Key, Value>: KeyValueMap {}

extension InPlaceKeyValueMap {
    /// Runs `body` on the value stored under `key`, in place, inside a new epoch section.
    ///
    /// - Returns: What `body` returned, or `nil` if the key is absent (`body` does not run).
    ///
    /// Writes through `value` are plain stores, visible to other threads with no ordering:
    /// for data several threads update, use ``withAtomicFields(forKey:_:)``. See
    /// ``InPlaceKeyValueMap`` for what a concurrent replace or delete does to them.
    ///
    /// Concurrency: any thread. Keep `body` short: the section holds back reclamation.
    @inlinable @discardableResult
    public func withValue<Result, Failure: Error>(
        forKey key: Key, _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        try Epoch.withSection { (section) throws(Failure) -> Result? in
            try withValue(forKey: key, in: section, body)
        }
    }

    /// ``withValue(forKey:_:)`` inside a section the caller already holds (helper mode, as
    /// an eBPF program's `bpf_map_lookup_elem`).
    @inlinable @discardableResult
    public func withValue<Result, Failure: Error>(
        forKey key: Key, in section: borrowing EpochSection, _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        guard let stored = inPlace(key, in: section) else { return nil }
        return try body(&stored.assumingMemoryBound(to: Value.self).pointee)
    }

    /// Runs `body` with an atomic view of the value stored under `key`, in place, inside a
    /// new epoch section.
    ///
    /// ```swift
    /// flows.withAtomicFields(forKey: flow) { $0[\.packets].wrappingAdd(1, ordering: .relaxed) }
    /// ```
    ///
    /// - Returns: What `body` returned, or `nil` if the key is absent.
    @inlinable @discardableResult
    public func withAtomicFields<Result, Failure: Error>(
        forKey key: Key, _ body: (borrowing AtomicFields<Value>) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        try Epoch.withSection { (section) throws(Failure) -> Result? in
            try withAtomicFields(forKey: key, in: section, body)
        }
    }

    /// ``withAtomicFields(forKey:_:)`` inside a section the caller already holds.
    @inlinable @discardableResult
    public func withAtomicFields<Result, Failure: Error>(
        forKey key: Key, in section: borrowing EpochSection, _ body: (borrowing AtomicFields<Value>) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        guard let stored = inPlace(key, in: section) else { return nil }
        return try body(AtomicFields(stored))
    }

    /// Calls `body` with every entry, in place, inside one epoch section for the whole pass
    /// (cheaper than iterating, and values can be changed where they are).
    ///
    /// The pass is get-next-key iteration: it never repeats a key, and returns every key
    /// present for the whole pass, with iteration's one exception on a ``LockFreeHashMap``
    /// (see ``KeyValueMapIterator``: when the key the pass fetched to come next is deleted
    /// before its step, by `body` or another thread, another key with exactly its 64-bit
    /// hash can be skipped, or returned twice). `body` must not block: the section holds
    /// back reclamation for the whole pass. A pass is not a use: an LRU map's recency is left
    /// as it is (as its iteration leaves it).
    @inlinable
    public func forEachInPlace<Failure: Error>(_ body: (Key, inout Value) throws(Failure) -> Void) throws(Failure) {
        try Epoch.withSection { (section) throws(Failure) in
            // Each key's successor fetched before `body` runs: `body` may remove the key.
            var pass = KeyValueMapPass(self)
            while let key = pass.next() {
                if let stored = inPlace(key, in: section, asUse: false) {
                    try body(key, &stored.assumingMemoryBound(to: Value.self).pointee)
                }
            }
        }
    }

    /// The stored value of `key` in place, or nil. Built-in maps' lookups fail only with
    /// ENOENT once the layout is checked. `asUse: false` (a pass over the map) leaves an LRU
    /// map's recency as it is.
    @inlinable @inline(__always)
    func inPlace(_ key: Key, in section: borrowing EpochSection, asUse: Bool = true) -> UnsafeMutableRawPointer? {
        withUnsafeBytes(of: key) { (keyBytes) -> UnsafeMutableRawPointer? in
            do throws(MapError) {
                // (A miss of a use is `nil`, not a thrown ENOENT: no error built on a miss.)
                guard let stored = asUse ? try raw.inlinedLookupInPlaceIfPresent(key: keyBytes, in: section)
                    : try raw.inlinedPassLookupInPlace(key: keyBytes, in: section) else { return nil }
                // The bytes are bound to `Value` and written whole: a map whose values are
                // not `Value`'s size (a conformance of your own that skipped the layout
                // checks of the built-in initialisers) would be written out of bounds.
                if _slowPath(stored.count != MemoryLayout<Value>.size) { typedValueSizeMismatch(stored.count, Value.self) }
                // Values are stored 8-byte aligned: a `Value` aligned beyond that (a
                // `SIMD4<Float>`, in a conformance of your own) would be accessed with
                // instructions that fault on the stored address (found by review, 2026-12-07).
                if _slowPath(MemoryLayout<Value>.alignment > 8) { typedValueOverAligned(Value.self) }
                return stored.baseAddress
            } catch where error == .keyNotFound {
                return nil
            } catch {
                typedMapInvariantBroken(error, "lookupInPlace")
            }
        }
    }
}

/// A map with in-place access and dynamic keys — ``BucketHashMap``, ``LockFreeHashMap``,
/// ``LRUHashMap`` — the maps ``InPlaceKeyValueMap/upsert(forKey:default:_:)`` and
/// ``InPlaceKeyValueMap/upsertAtomicFields(forKey:default:_:)`` serve, as one type: write
/// `any UpsertableKeyValueMap<Key, Value>` to run the same code on each. (The composition
/// `any InPlaceKeyValueMap<K, V> & DynamicKeyValueMap<K, V>` stops the Swift 6.3.1 compiler
/// while it mangles the type: found by a user's walkthrough, 2026-12-05.)
public protocol UpsertableKeyValueMap<Key, Value>: InPlaceKeyValueMap, DynamicKeyValueMap {}

extension BucketHashMap: UpsertableKeyValueMap {}
extension LockFreeHashMap: UpsertableKeyValueMap {}
extension LRUHashMap: UpsertableKeyValueMap {}

extension InPlaceKeyValueMap where Self: DynamicKeyValueMap {
    /// Inserts `defaultValue` if `key` is absent, then runs `body` on the stored value in
    /// place: the flow-table idiom, in one call.
    ///
    /// ```swift
    /// try flows.upsert(forKey: flow, default: Counters()) { $0.packets += 1 }
    /// ```
    ///
    /// If another thread deletes the key between the insert and `body`, it inserts again:
    /// `body` runs exactly once, on a value that was in the map when it ran. Writes are
    /// plain stores; use ``upsertAtomicFields(forKey:default:_:)`` when several threads
    /// update the same value.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/outOfSpace`` when the key is absent and the map is full
    ///   (an ``LRUHashMap`` evicts instead); ``/RCUBaseMaps/MapError/noMemory``;
    ///   ``/RCUBaseMaps/MapError/permissionDenied`` when the key is absent and the map is
    ///   frozen. A present key's value is written in place even on a frozen map, as a BPF
    ///   program's write through a looked-up pointer is: the freeze stops user-mode updates,
    ///   not in-place access.
    @inlinable @discardableResult
    public func upsert<Result>(forKey key: Key, default defaultValue: @autoclosure () -> Value,
                               _ body: (inout Value) -> Result) throws(MapError) -> Result {
        while true {
            if let result = withValue(forKey: key, body) { return result }
            _ = try insertIfAbsent(defaultValue(), forKey: key)
        }
    }

    /// ``upsert(forKey:default:_:)`` with an atomic view of the stored value.
    ///
    /// ```swift
    /// try flows.upsertAtomicFields(forKey: flow, default: Counters()) {
    ///     $0[\.packets].wrappingAdd(1, ordering: .relaxed)
    ///     $0[\.bytes].wrappingAdd(UInt64(length), ordering: .relaxed)
    /// }
    /// ```
    @inlinable @discardableResult
    public func upsertAtomicFields<Result>(forKey key: Key, default defaultValue: @autoclosure () -> Value,
                                           _ body: (borrowing AtomicFields<Value>) -> Result) throws(MapError) -> Result {
        while true {
            if let result = withAtomicFields(forKey: key, body) { return result }
            _ = try insertIfAbsent(defaultValue(), forKey: key)
        }
    }
}
