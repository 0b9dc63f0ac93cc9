import Synchronization

/// A `PERCPU_ARRAY` map: `count` indices, each holding one `Value` per possible CPU, as
/// Linux's `BPF_MAP_TYPE_PERCPU_ARRAY`. Storage is ``/RCUBaseMaps/RawPerCPUArrayMap``.
///
/// ```swift
/// let packets = try PerCPUArrayMap<UInt64>(count: 16)
/// packets.add(1, at: 3)                    // this CPU's counter (rseq where available: no atomic)
/// let total = packets.sum(at: 3)           // over all CPUs
/// ```
///
/// The two sides of the map, as on Linux:
/// - the *user-mode* side (``values(at:)``, ``setValues(_:at:)``, ``setValue(_:at:)``)
///   reads or writes every CPU's value of an index at once, one element per possible CPU
///   (``possibleCPUCount``);
/// - the *helper-mode* side (`add(_:at:)` for integer counters,
///   ``withAtomicFields(at:_:)``, ``withValue(at:_:)``, ``updateCurrentCPUValue(_:at:)``)
///   touches only the calling CPU's value, in place: no other CPU writes that cache line, so
///   counters scale with threads.
///
/// Every index always exists: an index beyond the last reads as `nil` and is refused by
/// writes (``/RCUBaseMaps/MapError/outOfSpace``, E2BIG, as Linux). Indices cannot be deleted.
///
/// Concurrency: any number of readers and writers on any threads. A thread can migrate to
/// another CPU in the middle of a helper-mode operation, so two threads may share one CPU's
/// value: change it in place only with `add(_:at:)` (integer counters: a restartable
/// sequence the kernel restarts on migration) or with atomics (``withAtomicFields(at:_:)``),
/// not both on one index (an atomic add from a migrated thread can overlap a plain one). Atomic
/// read-modify-writes stay exact — none is lost; one made just after a migration counts in
/// the previous CPU's value, which a sum over CPUs does not notice. Values of at most 8
/// bytes are single atomic words; larger ones have a per-slot sequence word, so user-mode
/// reads never see half of a whole-value write (in-place writes bypass it: see below). ``withValue(at:_:)`` hands out the value
/// with plain (non-atomic) access: use it only where no other thread can run on that CPU's
/// value (or for reads that tolerate a torn value).
///
/// Signal handlers: `add(_:at:)` may run in one. A whole-value read or write of a value over
/// 8 bytes waits while a writer of the same slot is mid-write (its sequence word), so a
/// handler that interrupted such a write on its own thread would wait for ever: from a
/// handler, read only values of at most 8 bytes, and write only through `add`.
public final class PerCPUArrayMap<Value: BitwiseCopyable & Sendable>: Sendable {
    /// Array indices, `0..<count`, as Linux's PERCPU_ARRAY keys.
    public typealias Key = UInt32

    /// The byte-level map underneath.
    public let raw: RawPerCPUArrayMap

    /// `count` indices, every CPU's value starting as all-zero bytes.
    ///
    /// - Precondition: all-zero bytes are a valid `Value` (integers, floating-point numbers,
    ///   structs and tuples of them). For other types use ``init(count:repeating:name:poolTag:)``.
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for a value type aligned beyond
    ///   8 bytes or a bad definition; ``/RCUBaseMaps/MapError/outOfSpace`` for a `Value`
    ///   over 32768 bytes; ``/RCUBaseMaps/MapError/noMemory``.
    public init(count: Int, name: String = "", poolTag: PoolTag? = nil) throws(MapError) {
        raw = try RawPerCPUArrayMap(.typed(.perCPUArray, key: UInt32.self, value: Value.self, maxEntries: count,
                                           flags: [], name: name, numaNode: nil, poolTag: poolTag))
    }

    /// `count` indices, every CPU's value at each starting as `initialValue`: for a `Value`
    /// of which all-zero bytes are not a valid instance (as ``ArrayMap``'s
    /// `init(count:repeating:)`). Throws as ``init(count:name:poolTag:)``.
    ///
    /// Concurrency: the map is not shared until this returns.
    public convenience init(count: Int, repeating initialValue: Value, name: String = "",
                            poolTag: PoolTag? = nil) throws(MapError) {
        try self.init(count: count, name: name, poolTag: poolTag)
        // Plain stores, which read no displaced value (the zeros are never read as `Value`).
        for index in 0..<UInt32(count) { try setValue(initialValue, at: index) }
    }

    /// A typed view of an existing byte-level per-CPU array (both views see the same values).
    ///
    /// A map created with `BPF_F_WRONLY` or `BPF_F_WRONLY_PROG` is refused (EINVAL): the typed
    /// reads (subscripts, in-place closures) do not throw. So is one created with
    /// `BPF_F_RDONLY_PROG` (EINVAL): the view's in-place closures (`withValue`, atomic
    /// fields) write the calling CPU's value from user code, as every typed view's do.
    /// `BPF_F_RDONLY` is kept: the typed user-mode writes throw EPERM.
    ///
    /// - Precondition: the map holds only valid values of the view's types (see
    ///   <doc:TypedMaps#Bytes-the-view-did-not-write>).
    public init(wrapping raw: RawPerCPUArrayMap) throws(MapError) {
        try MapDefinition.checkTyped(raw, key: UInt32.self, value: Value.self)
        // (Accepted until 2026-12-05, with a warning in this comment: found by review, as
        // rows 58 and 84 of reliability.md for the other views.)
        try MapDefinition.checkInPlaceWrites(raw)
        self.raw = raw
    }

    /// The number of indices (`maxEntries`).
    @inlinable public var count: Int { raw.count }

    /// Values per index: the number of possible CPUs.
    @inlinable public var possibleCPUCount: Int { raw.possibleCPUCount }

    // MARK: User mode: every CPU

    /// Every CPU's value at `index`, CPU 0 first; `nil` beyond the last index.
    ///
    /// Concurrency: any thread; each CPU's value is one some whole-value write stored whole
    /// (a value over 8 bytes being written in place, through ``withValue(at:_:)`` or atomic
    /// fields, can be read half written).
    public func values(at index: UInt32) -> [Value]? {
        // Each CPU's bytes are those of a `Value` some write stored (or zeros).
        layout.read("lookup") { (buffer) throws(MapError) in
            try withUnsafeBytes(of: index) { (key) throws(MapError) in try raw.lookup(key: key, into: buffer) }
        }
    }

    /// Every CPU's value at `index` (``values(at:)``).
    public subscript(index: UInt32) -> [Value]? { values(at: index) }

    /// Stores `values[cpu]` as CPU `cpu`'s value at `index`, for every CPU (a user-mode
    /// update, `BPF_ANY`).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` when `values` does not hold
    ///   ``possibleCPUCount`` elements; ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) for an
    ///   index beyond the last; ``/RCUBaseMaps/MapError/permissionDenied`` once frozen.
    ///
    /// Concurrency: any thread; each CPU's value is replaced whole (the CPUs one after another).
    public func setValues(_ values: [Value], at index: UInt32) throws(MapError) {
        try store(at: index) { (buffer) throws(MapError) in try layout.store(values, in: buffer) }
    }

    /// Stores `value` as every CPU's value at `index` (a user-mode update, `BPF_ANY`).
    /// Throws as ``setValues(_:at:)``.
    public func setValue(_ value: Value, at index: UInt32) throws(MapError) {
        try store(at: index) { buffer in layout.store(repeating: value, in: buffer) }
    }

    /// The user-mode layout of an index's values.
    var layout: PerCPUValues<Value> { PerCPUValues(stride: raw.paddedValueSize, cpus: raw.possibleCPUCount) }

    func store(at index: UInt32, _ fill: (UnsafeMutableRawBufferPointer) throws(MapError) -> Void) throws(MapError) {
        try layout.withBuffer { (buffer) throws(MapError) in
            try fill(buffer)
            try withUnsafeBytes(of: index) { (key) throws(MapError) in
                try raw.update(key: key, value: UnsafeRawBufferPointer(buffer), flags: .any)
            }
        }
    }

    // MARK: Helper mode: the calling CPU's value

    /// Runs `body` with an atomic view of the calling CPU's value at `index`, in place,
    /// inside a new epoch section.
    ///
    /// - Returns: What `body` returned, or `nil` beyond the last index.
    ///
    /// Concurrency: any thread. Atomic operations through the view are exact even if the
    /// thread migrates meanwhile (see the type's notes).
    @inlinable @discardableResult
    public func withAtomicFields<Result, Failure: Error>(
        at index: UInt32, _ body: (borrowing AtomicFields<Value>) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        try Epoch.withSection { (section) throws(Failure) -> Result? in
            try withAtomicFields(at: index, in: section, body)
        }
    }

    /// ``withAtomicFields(at:_:)`` inside a section the caller already holds (helper mode).
    @inlinable @discardableResult
    public func withAtomicFields<Result, Failure: Error>(
        at index: UInt32, in section: borrowing EpochSection, _ body: (borrowing AtomicFields<Value>) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        guard let stored = currentCPUValue(index, in: section) else { return nil }
        return try body(AtomicFields(stored))
    }

    /// Runs `body` on the calling CPU's value at `index`, in place, with plain access,
    /// inside a new epoch section (as an eBPF program's `bpf_map_lookup_elem`).
    ///
    /// - Returns: What `body` returned, or `nil` beyond the last index.
    ///
    /// Concurrency: another thread may be on the same CPU's value (after a migration): a
    /// plain read-modify-write here can lose its update or be torn. Use
    /// ``withAtomicFields(at:_:)`` for counters. `body` must not reach the same index
    /// through the map (see ``InPlaceKeyValueMap``, "Reaching the same entry").
    @inlinable @discardableResult
    public func withValue<Result, Failure: Error>(
        at index: UInt32, _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        try Epoch.withSection { (section) throws(Failure) -> Result? in
            guard let stored = currentCPUValue(index, in: section) else { return nil }
            return try body(&stored.assumingMemoryBound(to: Value.self).pointee)
        }
    }

    /// Replaces the calling CPU's value at `index` whole (a helper-mode update, `BPF_ANY`):
    /// other CPUs' values are untouched.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) beyond the last index.
    ///
    /// Concurrency: any thread; never torn for readers (one word, or under the slot's sequence word).
    public func updateCurrentCPUValue(_ value: Value, at index: UInt32) throws(MapError) {
        try withUnsafeBytes(of: index) { (key) throws(MapError) in
            try withUnsafeBytes(of: value) { (bytes) throws(MapError) in
                try Epoch.withSection { (section) throws(MapError) in
                    try raw.update(key: key, value: bytes, flags: .any, in: section)
                }
            }
        }
    }

    @inlinable @inline(__always)
    func currentCPUValue(_ index: UInt32, in section: borrowing EpochSection) -> UnsafeMutableRawPointer? {
        do {
            return try raw.currentCPUValue(at: index, in: section)
        } catch {
            typedMapInvariantBroken(error, "in-place lookup")
        }
    }
}

// MARK: Counters: adds without an atomic instruction

extension PerCPUArrayMap {
    /// The restartable per-CPU add of the 8-byte integer counters (`add(_:at:)`).
    @inlinable @inline(__always)
    func addWord(_ delta: UInt64, at index: UInt32) -> Bool {
        do {
            return try raw.addToCurrentCPUWord(delta, at: index)
        } catch {
            // (Unreachable: a map whose programs may not write, `BPF_F_RDONLY_PROG`, is
            // refused by `init(wrapping:)`.)
            return false
        }
    }
}

extension PerCPUArrayMap where Value == UInt64 {
    /// Adds `delta` (wrapping) to the calling CPU's counter at `index`, as an eBPF program's
    /// `*counter += delta`: the fastest way to count per CPU.
    ///
    /// ```swift
    /// let packets = try PerCPUArrayMap<UInt64>(count: 16)
    /// packets.add(1, at: 3)                    // this CPU's counter
    /// let total = packets.sum(at: 3)           // over all CPUs
    /// ```
    ///
    /// - Returns: false beyond the last index.
    ///
    /// No epoch section and, on x86-64 with glibc 2.35 or later, no atomic instruction: the
    /// CPU number and a plain add form one restartable sequence (rseq), which the kernel
    /// restarts if the thread is preempted, migrated or signalled before the add, so each
    /// add runs on the CPU whose counter it changes. Elsewhere it adds atomically — also on
    /// a thread whose rseq registration failed (a seccomp filter installed after start-up,
    /// say): if some threads of the process add with rseq and others atomically, an atomic
    /// add can overlap a plain one on the same CPU's counter and one of the two be lost.
    ///
    /// Concurrency: any thread. Exact as long as every helper-mode change of the index's
    /// counters goes through `add`: an atomic add through ``withAtomicFields(at:_:)`` by a
    /// thread that migrated meanwhile can overlap a plain add and one of the two be lost —
    /// use one or the other for an index. User-mode writes (``setValues(_:at:)``, and the
    /// byte-level map's `exchange`) race with adds as Linux's syscall writes race with
    /// programs' increments: an add's store can land after the write and undo it, so
    /// harvesting counters by exchanging them with zeros is exact only for atomic adds.
    @inlinable @inline(__always) @discardableResult
    public func add(_ delta: UInt64, at index: UInt32) -> Bool { addWord(delta, at: index) }
}

extension PerCPUArrayMap where Value == Int64 {
    /// Adds `delta` (wrapping) to the calling CPU's counter at `index`; see
    /// `add(_:at:)` on `UInt64` counters.
    @inlinable @inline(__always) @discardableResult
    public func add(_ delta: Int64, at index: UInt32) -> Bool { addWord(UInt64(bitPattern: delta), at: index) }
}

extension PerCPUArrayMap where Value == Int {
    /// Adds `delta` (wrapping) to the calling CPU's counter at `index`; see
    /// `add(_:at:)` on `UInt64` counters.
    @inlinable @inline(__always) @discardableResult
    public func add(_ delta: Int, at index: UInt32) -> Bool {
        addWord(UInt64(UInt(bitPattern: delta)), at: index)
    }
}

extension PerCPUArrayMap where Value: FixedWidthInteger {
    /// The sum over every CPU's value at `index` (wrapping on overflow); `nil` beyond the
    /// last index. A snapshot: CPUs are read one after another.
    public func sum(at index: UInt32) -> Value? {
        values(at: index)?.reduce(0, &+)
    }
}
