/// A `PERCPU_HASH` or `LRU_PERCPU_HASH` map of `Key` → one `Value` per possible CPU, as
/// Linux's `BPF_MAP_TYPE_PERCPU_HASH` / `BPF_MAP_TYPE_LRU_PERCPU_HASH`. Storage is
/// ``/RCUBaseMaps/RawPerCPUHashMap``.
///
/// ```swift
/// let perFlow = try PerCPUHashMap<FlowKey, UInt64>(maxEntries: 1 << 16)
/// try perFlow.updateCurrentCPUValue(1, forKey: flow)           // this CPU's value; others 0
/// perFlow.add(1, forKey: flow)                                // this CPU's counter, no atomic
/// let total = perFlow.sum(forKey: flow)                        // over all CPUs
/// ```
///
/// The two sides of the map, as on Linux:
/// - the *user-mode* side (``values(forKey:)``, ``setValues(_:forKey:flags:)``,
///   ``setValue(_:forKey:)``, ``removeValues(forKey:)``) reads or writes every CPU's value
///   of a key at once, one element per possible CPU (``possibleCPUCount``);
/// - the *helper-mode* side (``withAtomicFields(forKey:_:)``,
///   ``updateCurrentCPUValue(_:forKey:flags:)``) touches only the calling CPU's value.
///
/// Bounded: a new key in a full `PERCPU_HASH` is refused (E2BIG); with `lru: true`
/// (`LRU_PERCPU_HASH`) it evicts an entry not used recently instead.
///
/// Concurrency: any number of readers and writers on any threads; readers never lock
/// (batches take each chain's lock while they copy it, as the ``BucketHashMap``'s do). A user-mode writer that chains an overflow bucket while a thread's
/// section holds grace periods back, past the bound on overflow memory, waits up to 250 ms
/// (2 ms on a task's thread) for reclamation after its write (see <doc:EpochModel>). A
/// thread can migrate to another CPU in the middle of a helper-mode operation, so two
/// threads may share one CPU's value: change it in place only with `add(_:forKey:)`
/// (integer counters, a restartable sequence) or with atomics
/// (``withAtomicFields(forKey:_:)``), not both on one key; either stays exact — an increment made just after a
/// migration counts in the previous CPU's value, which a sum does not notice. A user-mode
/// write replaces every CPU's value at once (readers see all old or all new values); a
/// helper-mode write of the calling CPU's value keeps the other CPUs' values.
public final class PerCPUHashMap<Key: BitwiseCopyable & Sendable, Value: BitwiseCopyable & Sendable>: Sendable {
    /// The byte-level map underneath. Any thread.
    public let raw: RawPerCPUHashMap

    /// An empty map for at most `maxEntries` keys, every CPU's value of a new key starting
    /// as all-zero bytes where a write does not set it.
    ///
    /// - Parameters:
    ///   - maxEntries: the most keys the map holds.
    ///   - lru: `LRU_PERCPU_HASH`: a full map evicts instead of refusing.
    ///   - perCPULists: with `lru`, `BPF_F_NO_COMMON_LRU` (`maxEntries` rounded to a multiple
    ///     of the possible CPUs; the eviction is the common LRU's).
    ///   - name: at most 15 characters of `[A-Za-z0-9_.]`.
    ///   - poolTag: the pool tag the map's memory is accounted under.
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for a key type with padding, a
    ///   value type aligned beyond 8 bytes, or a bad definition;
    ///   ``/RCUBaseMaps/MapError/outOfSpace`` for `maxEntries` over 2^27, a `Value` over 32768 bytes, or a
    ///   key and one CPU's value of 4 MiB − 48 bytes or more, as Linux;
    ///   ``/RCUBaseMaps/MapError/noMemory`` when the table or its values do not fit in
    ///   memory (every slot has every possible CPU's value: `MemoryLayout<Value>.size`
    ///   rounded up to 8, times the possible CPUs, in per-CPU blocks; docs/map-types.md).
    ///
    /// Concurrency: any thread.
    public init(maxEntries: Int, lru: Bool = false, perCPULists: Bool = false, name: String = "",
                poolTag: PoolTag? = nil) throws(MapError) {
        raw = try RawPerCPUHashMap(.typed(lru ? .lruPerCPUHash : .perCPUHash, key: Key.self, value: Value.self,
                                          maxEntries: maxEntries, flags: perCPULists ? .noCommonLRU : [],
                                          name: name, numaNode: nil, poolTag: poolTag))
    }

    /// A typed view of an existing byte-level per-CPU hash (both views see the same values).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` if its key and value sizes are not
    ///   those of `Key` and `Value`. Concurrency: any thread.
    ///
    /// A map created with `BPF_F_WRONLY` or `BPF_F_WRONLY_PROG` is refused (EINVAL): the typed
    /// reads (subscripts, in-place closures) do not throw. So is one created with
    /// `BPF_F_RDONLY_PROG` (EINVAL): the view's in-place closures (`withAtomicFields`) write
    /// the calling CPU's value from user code, as every typed view's do. `BPF_F_RDONLY` is
    /// kept: the typed user-mode writes throw EPERM.
    ///
    /// - Precondition: the map holds only valid values of the view's types (see
    ///   <doc:TypedMaps#Bytes-the-view-did-not-write>).
    public init(wrapping raw: RawPerCPUHashMap) throws(MapError) {
        try MapDefinition.checkTyped(raw, key: Key.self, value: Value.self)
        // (Accepted until 2026-12-05: found by review, as rows 58 and 84 for the other views.)
        try MapDefinition.checkInPlaceWrites(raw)
        self.raw = raw
    }

    /// Keys in the map (a snapshot). Any thread.
    public var count: Int { raw.count }

    /// Values per key: the number of possible CPUs. Any thread.
    public var possibleCPUCount: Int { raw.possibleCPUCount }

    var layout: PerCPUValues<Value> { PerCPUValues(stride: raw.paddedValueSize, cpus: raw.possibleCPUCount) }

    // MARK: User mode: every CPU

    /// Every CPU's value of `key`, CPU 0 first; `nil` when absent.
    ///
    /// Concurrency: any thread; the values are those of one update, or helper-mode writes
    /// of single CPUs' values since. A CPU's value over 8 bytes being rewritten meanwhile by
    /// ``updateCurrentCPUValue(_:forKey:flags:)`` (in place, 8 bytes at a time, as Linux's helper
    /// update) or through atomic fields can be read half written.
    public func values(forKey key: Key) -> [Value]? {
        layout.read("lookup") { (buffer) throws(MapError) in
            try withUnsafeBytes(of: key) { (key) throws(MapError) in try raw.lookup(key: key, into: buffer) }
        }
    }

    /// ``values(forKey:)`` for a pass over the map: not a use (an LRU map's recency stays).
    func passValues(forKey key: Key) -> [Value]? {
        layout.read("lookup") { (buffer) throws(MapError) in
            let found = try withUnsafeBytes(of: key) { (key) throws(MapError) in
                try raw.lookupIfPresentWithoutUse(key: key, into: buffer)
            }
            if !found { throw MapError.keyNotFound }
        }
    }

    /// Every CPU's value of `key` (``values(forKey:)``). Any thread.
    public subscript(key: Key) -> [Value]? { values(forKey: key) }

    /// Stores `values[cpu]` as CPU `cpu`'s value of `key`, for every CPU at once (a
    /// user-mode update with `flags`).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` unless `values` holds one value
    ///   per possible CPU; ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) for a new key in a
    ///   full `PERCPU_HASH`; EEXIST / ENOENT for `.noExist` / `.exist`; EPERM once frozen.
    ///
    /// Concurrency: any thread; readers see every CPU's old value or every new one.
    public func setValues(_ values: [Value], forKey key: Key, flags: MapUpdateFlags = .any) throws(MapError) {
        try store(key, flags: flags) { (buffer) throws(MapError) in try layout.store(values, in: buffer) }
    }

    /// Stores `value` as every CPU's value of `key` (a user-mode update, `BPF_ANY`). Throws
    /// as ``setValues(_:forKey:flags:)``. Concurrency: as there.
    public func setValue(_ value: Value, forKey key: Key) throws(MapError) {
        try store(key, flags: .any) { buffer in layout.store(repeating: value, in: buffer) }
    }

    func store(_ key: Key, flags: MapUpdateFlags,
               _ fill: (UnsafeMutableRawBufferPointer) throws(MapError) -> Void) throws(MapError) {
        try layout.withBuffer { (buffer) throws(MapError) in
            try fill(buffer)
            try withUnsafeBytes(of: key) { (key) throws(MapError) in
                try raw.update(key: key, value: UnsafeRawBufferPointer(buffer), flags: flags)
            }
        }
    }

    /// Removes `key` and returns every CPU's value it had, atomically (lookup-and-delete);
    /// `nil` if absent. Concurrency: any thread; of several removers, exactly one gets them.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/permissionDenied`` (EPERM) once the map is frozen.
    @discardableResult
    public func removeValues(forKey key: Key) throws(MapError) -> [Value]? {
        try layout.withBuffer { (buffer) throws(MapError) -> [Value]? in
            do throws(MapError) {
                try withUnsafeBytes(of: key) { (key) throws(MapError) in try raw.lookupAndDelete(key: key, into: buffer) }
            } catch where error == .keyNotFound {
                return nil
            }
            return layout.values(in: buffer)
        }
    }

    // MARK: Helper mode: the calling CPU's value

    /// Runs `body` with an atomic view of the calling CPU's value of `key`, in place, inside
    /// a new epoch section; an LRU map marks the entry used.
    ///
    /// - Returns: What `body` returned, or `nil` when `key` is absent.
    ///
    /// Concurrency: any thread. Atomic operations through the view are exact even if the
    /// thread migrates meanwhile (see the type's notes).
    @inlinable @discardableResult
    public func withAtomicFields<Result, Failure: Error>(
        forKey key: Key, _ body: (borrowing AtomicFields<Value>) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        try Epoch.withSection { (section) throws(Failure) -> Result? in
            guard let stored = currentCPUValue(key, in: section) else { return nil }
            return try body(AtomicFields(stored.baseAddress!))
        }
    }

    /// The calling CPU's value of `key`, in place, for `section`; nil when `key` is absent.
    /// (This and the helper-mode calls above and below it are inlinable, so that they run
    /// specialised for the caller's key type, as `add(_:forKey:)`.)
    @inlinable @inline(__always)
    func currentCPUValue(_ key: Key, in section: borrowing EpochSection) -> UnsafeMutableRawBufferPointer? {
        withUnsafeBytes(of: key) { key in
            do throws(MapError) {
                return try raw.lookupInPlace(key: key, in: section)
            } catch where error == .keyNotFound {
                return nil
            } catch {
                typedMapInvariantBroken(error, "in-place lookup")
            }
        }
    }

    /// Runs `body` on the calling CPU's value of `key`, in place, with plain access, inside
    /// a new epoch section (as an eBPF program's `bpf_map_lookup_elem`); an LRU map marks
    /// the entry used. As ``PerCPUArrayMap``'s `withValue(at:_:)`.
    ///
    /// - Returns: What `body` returned, or `nil` when `key` is absent.
    ///
    /// Concurrency: another thread may be on the same CPU's value (after a migration): a
    /// plain read-modify-write here can lose its update or be torn. Use
    /// ``withAtomicFields(forKey:_:)`` or `add(_:forKey:)` for counters. The value is
    /// borrowed: it cannot leave `body`, which must not reach the same entry through the
    /// map (see ``InPlaceKeyValueMap``, "Reaching the same entry").
    @inlinable @discardableResult
    public func withValue<Result, Failure: Error>(
        forKey key: Key, _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        try Epoch.withSection { (section) throws(Failure) -> Result? in
            guard let stored = currentCPUValue(key, in: section) else { return nil }
            return try body(&stored.baseAddress!.assumingMemoryBound(to: Value.self).pointee)
        }
    }

    /// Stores `value` as the calling CPU's value of `key` (a helper-mode update with
    /// `flags`): a new key's other CPUs hold zeros, an existing key's keep their values.
    ///
    /// - Precondition: all-zero bytes are a valid `Value` (as for ``PerCPUArrayMap``): the
    ///   other CPUs' values of a new key are read back as `Value`s.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) for a new key in a full
    ///   `PERCPU_HASH`; EEXIST / ENOENT for `.noExist` / `.exist`.
    ///
    /// Concurrency: any thread; never undoes another CPU's concurrent write. A helper-mode
    /// write: on a full `lru: true` map a new key evicts inside the epoch section the call
    /// holds, as a program's write does, so every grace period of the process waits for
    /// that sweep: at most four laps of the hand (two plain, two forced) per attempt, but
    /// when all four find no entry to evict (every unit of room in flight with other
    /// writers), the write yields and sweeps again inside the section, until another writer
    /// publishes.
    @inlinable
    public func updateCurrentCPUValue(_ value: Value, forKey key: Key, flags: MapUpdateFlags = .any) throws(MapError) {
        try withUnsafeBytes(of: key) { (key) throws(MapError) in
            try withUnsafeBytes(of: value) { (bytes) throws(MapError) in
                try Epoch.withSection { (section) throws(MapError) in
                    try raw.update(key: key, value: bytes, flags: flags, in: section)
                }
            }
        }
    }
}

// MARK: Counters: adds without an atomic instruction

extension PerCPUHashMap {
    /// The per-CPU add of the 8-byte integer counters (`add(_:forKey:)`), in its own section.
    /// Inlinable, so that a caller's key type is known here: generic, `withUnsafeBytes(of:)`
    /// and the closures ran unspecialized, about 120 of an add's 349 instructions.
    @inlinable @inline(__always)
    func addWord(_ delta: UInt64, forKey key: Key) -> Bool {
        withUnsafeBytes(of: key) { key in
            Epoch.withSection { section in
                do {
                    return try raw.addToCurrentCPUWord(delta, key: key, in: section)
                } catch {
                    // (Unreachable: a map whose programs may not write, `BPF_F_RDONLY_PROG`,
                    // is refused by `init(wrapping:)`.)
                    return false
                }
            }
        }
    }
}

extension PerCPUHashMap where Value: FixedWidthInteger {
    /// `add` for a key that may be absent: inserts it first with every CPU's value 0,
    /// then adds. A new key raced by another inserter is added to once, by whichever insert
    /// won; a key deleted between the insert and the add is inserted again.
    @inlinable
    func addInsertingWord(_ delta: UInt64, forKey key: Key) throws(MapError) {
        while !addWord(delta, forKey: key) {
            do throws(MapError) {
                try updateCurrentCPUValue(0, forKey: key, flags: .noExist)
            } catch where error == .alreadyExists {
                // Another thread inserted it: add to that one.
            }
        }
    }
}

extension PerCPUHashMap where Value == UInt64 {
    /// Adds `delta` (wrapping) to the calling CPU's counter of `key`, inserting the key (every
    /// CPU's counter 0) if it is absent: the per-flow statistics idiom in one call.
    ///
    /// ```swift
    /// try perFlow.addInsertingIfAbsent(1, forKey: flow)   // a new flow starts at 0, then 1
    /// ```
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) for a new key in a full
    ///   `PERCPU_HASH` (an `lru: true` map evicts instead); ``/RCUBaseMaps/MapError/noMemory``.
    ///   Both the insert and the add are helper-mode writes, as a BPF program's: a frozen
    ///   map (or one created `BPF_F_RDONLY`) still takes new keys here, where `upsert`-style
    ///   user-mode inserts answer EPERM.
    ///
    /// Concurrency: any thread; as `add(_:forKey:)` (exact among adds), and as
    /// ``updateCurrentCPUValue(_:forKey:flags:)`` for the insert (`.noExist`, so it never
    /// overwrites another thread's counters).
    @inlinable
    public func addInsertingIfAbsent(_ delta: UInt64, forKey key: Key) throws(MapError) {
        try addInsertingWord(delta, forKey: key)
    }

    /// Adds `delta` (wrapping) to the calling CPU's counter of `key`, as an eBPF program's
    /// `*counter += delta`; an LRU map marks the entry used.
    ///
    /// ```swift
    /// perFlow.add(1, forKey: flow)             // this CPU's counter of an existing key
    /// ```
    ///
    /// - Returns: false when `key` is absent (add it first, with
    ///   ``updateCurrentCPUValue(_:forKey:flags:)``), or when the map refuses program writes.
    ///
    /// The CPU number and a plain add form one restartable sequence (rseq, x86-64 with glibc
    /// 2.35 or later), which the kernel restarts if the thread is preempted, migrated or
    /// signalled before the add; elsewhere the add is atomic. The key's lookup runs in an
    /// epoch section of its own.
    ///
    /// Concurrency: any thread. Exact as long as every helper-mode change of the key's
    /// counters goes through `add`: do not mix it with ``withAtomicFields(forKey:_:)`` on one
    /// key (an atomic add by a thread that migrated meanwhile can overlap a plain one). Where
    /// some threads add with rseq and others atomically (a thread whose rseq registration
    /// failed, say under a seccomp filter installed after start-up, or was undone), an atomic
    /// add can overlap a plain one on the same CPU's counter and one of the two be lost, as
    /// for `PerCPUArrayMap.add(_:at:)`. An add
    /// racing with a delete of the key can be lost, as on Linux; so can one racing a
    /// user-mode write (``setValues(_:forKey:flags:)``, ``setValue(_:forKey:)``) of an existing key,
    /// which here publishes a new copy of the entry (Linux writes its values in place, so
    /// the add survives there; see docs/linux-compatibility.md).
    @inlinable @discardableResult
    public func add(_ delta: UInt64, forKey key: Key) -> Bool { addWord(delta, forKey: key) }
}

extension PerCPUHashMap where Value == Int64 {
    /// Adds `delta` (wrapping) to the calling CPU's counter of `key`; see `add(_:forKey:)` on
    /// `UInt64` counters.
    @inlinable @discardableResult
    public func add(_ delta: Int64, forKey key: Key) -> Bool { addWord(UInt64(bitPattern: delta), forKey: key) }

    /// `add(_:forKey:)`, inserting the key first if absent; see `addInsertingIfAbsent(_:forKey:)`
    /// on `UInt64` counters.
    @inlinable
    public func addInsertingIfAbsent(_ delta: Int64, forKey key: Key) throws(MapError) {
        try addInsertingWord(UInt64(bitPattern: delta), forKey: key)
    }
}

extension PerCPUHashMap where Value == Int {
    /// Adds `delta` (wrapping) to the calling CPU's counter of `key`; see `add(_:forKey:)` on
    /// `UInt64` counters.
    @inlinable @discardableResult
    public func add(_ delta: Int, forKey key: Key) -> Bool { addWord(UInt64(UInt(bitPattern: delta)), forKey: key) }

    /// `add(_:forKey:)`, inserting the key first if absent; see `addInsertingIfAbsent(_:forKey:)`
    /// on `UInt64` counters.
    @inlinable
    public func addInsertingIfAbsent(_ delta: Int, forKey key: Key) throws(MapError) {
        try addInsertingWord(UInt64(UInt(bitPattern: delta)), forKey: key)
    }
}

extension PerCPUHashMap where Value: FixedWidthInteger {
    /// The sum over every CPU's value of `key` (wrapping on overflow); `nil` when absent.
    /// Concurrency: any thread; a snapshot of one update's values and later per-CPU writes.
    public func sum(forKey key: Key) -> Value? {
        values(forKey: key)?.reduce(0, &+)
    }
}
