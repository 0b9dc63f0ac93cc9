import CRCUMapsShim
import RCUEpoch
import Synchronization

/// A `PERCPU_HASH` or `LRU_PERCPU_HASH` map (Linux `BPF_MAP_TYPE_PERCPU_HASH`, type 5, and
/// `BPF_MAP_TYPE_LRU_PERCPU_HASH`, type 10): a hash whose every key holds one value per
/// *possible* CPU (``RawPerCPUArrayMap/possibleCPUs``).
///
/// Storage is a ``RawBucketHashMap`` (a `HASH`, or an `LRU_HASH` for the LRU type, with its
/// eviction, `BPF_F_NO_COMMON_LRU` included) whose values are the user-mode layout: for each
/// CPU in turn, its value rounded up to 8 bytes. So everything user mode does is that map's
/// operation on ``userValueSize``-byte values, and this type adds helper mode on top.
/// The values are not in the entries: as Linux's per-CPU allocator keeps them, each CPU's
/// values of every key are in a block of that CPU's (one 64-byte aligned block per CPU,
/// NUMA-placed on that CPU's node on a machine with several; a key in an overflow bucket
/// has its values in 64-byte aligned per-CPU groups after that bucket), and an entry holds
/// the word that locates them. So helper-mode writers on different CPUs write different
/// cache lines, also for one key, and their counters scale with the CPUs.
/// - **User mode** (the syscall side) sees all CPUs at once: lookups, updates, batches and
///   lookup-and-delete copy ``userValueSize`` bytes — `round_up(valueSize, 8)` per CPU, CPU
///   by CPU — in and out. Padding bytes are stored as the update gave them and read back
///   as stored, as Linux copies `round_up(valueSize, 8)` bytes per CPU both ways. An update
///   replaces every CPU's value at once: readers see the old values or the new, never a mix.
/// - **Helper mode** (the program side) sees the calling CPU's value only:
///   ``lookupInPlace(key:in:)`` returns it in place (`valueSize` bytes, borrowed for the
///   section), and ``update(key:value:flags:in:)`` writes it alone: a new key gets zeroes on
///   every other CPU (as Linux), an existing key's value for the calling CPU is written in
///   place under the bucket lock, 8 bytes at a time with atomic stores, as Linux's
///   `pcpu_copy_value`: the other CPUs' values are not touched, so neither a concurrent
///   helper-mode update of another CPU's value nor an atomic increment made in place is
///   ever undone (a user-mode reader may see one CPU's value of more than 8 bytes half
///   written, as on Linux).
///
/// Errors are the base hash's, errno for errno with Linux 6.18's `kernel/bpf/hashtab.c`:
/// creation as ``MapDefinition`` documents for the hash family (`round_up(valueSize, 8)`
/// over 32768 → E2BIG, a NUMA node → EINVAL, a lock word → EOPNOTSUPP); `BPF_F_LOCK` on an
/// element command → EINVAL (no lock word); flags beyond `BPF_EXIST` → EINVAL.
///
/// **Thread migration.** Linux runs a program with migration disabled, so one CPU's value
/// has one writer at a time. A userspace thread can move to another CPU between reading its
/// CPU number and using the slot, so two threads may write one CPU's value at once. That
/// stays safe: a CPU's value is memory of the entry's slot like any other (in that CPU's
/// block, valid for the section whatever CPU the thread is on), an update of a CPU's value is made under the bucket lock
/// (two such updates are ordered, the later wins, as on one CPU; each 8-byte word is one
/// atomic store, so an update racing an in-place increment of the same word leaves one of
/// them, as on Linux), and read-modify-write
/// through the in-place pointer must use atomics (the typed layer's `AtomicFields`), so no
/// increment is lost to another increment — a migrated thread merely counts into the slot
/// of the CPU it ran on before, and a sum over the CPUs is the same.
///
/// **User-mode writes of an existing key** (`update`, `exchange`) publish a new slot with
/// every CPU's value and retire the old one, so a reader sees all old or all new values.
/// An in-place increment through a pointer to the old slot that lands after the copy is
/// lost: it is neither in the map nor in `exchange`'s displaced values. (Linux overwrites
/// the values in place, where an increment just before the write is overwritten.) Harvest
/// counters without loss with PERCPU_ARRAY, whose `exchange` swaps each word atomically —
/// exact against atomic in-place adds only: the restartable-sequence add
/// (`PerCPUArrayMap.add(_:at:)`) is a plain add, whose store can land after the exchange
/// and put back the value the exchange already reported (counted twice). (This holds with
/// one possible CPU and 8-byte values too: until 2026-12-07 such an entry's one word was
/// exchanged in place.)
///
/// Memory per slot (the table has room for more slots than entries: see `BucketTable`):
/// the base hash's slot, key rounded up to 8 plus an 8-byte word, and ``userValueSize``
/// bytes of values in the CPUs' blocks (each CPU's block rounded up to 64 bytes, or to
/// pages when placed on NUMA nodes); an overflow bucket's slots, the same in per-CPU groups
/// rounded up to 64 bytes. (Linux refuses a NUMA node for the per-CPU types, and so does
/// this map; its per-CPU allocator places each CPU's copy on that CPU's node, as the blocks
/// here are placed.)
///
/// Concurrency: any number of readers and writers on any threads, as the base hash.
public final class RawPerCPUHashMap: RawMap {
    /// The definition the map was created with (`valueSize` as one CPU's value; `maxEntries`
    /// rounded for per-CPU LRU lists). Immutable; any thread.
    public let definition: MapDefinition
    /// The hash underneath, with ``userValueSize``-byte values kept per CPU. Its user-mode
    /// operations are this map's; its helper-mode in-place lookups are not to be used (the
    /// values are not in its slots: this map's helper mode reaches them). Any thread.
    package let storage: RawBucketHashMap
    /// `round_up(valueSize, 8)`: the bytes per CPU in a user-mode value.
    public let paddedValueSize: Int
    /// Values per key: the number of possible CPUs.
    public let possibleCPUCount: Int
    let valueSize: Int
    /// Whether adds run as restartable sequences: the possible CPUs are dense (read once
    /// here; the static property's lazy initialiser was a `swift_once` call every add).
    let restartableAdds: Bool

    /// Creates an empty per-CPU hash.
    ///
    /// - Throws: as ``MapDefinition`` documents for the hash family: EINVAL, E2BIG,
    ///   ENOTSUPP (`LRU_PERCPU_HASH` with `BPF_F_NO_PREALLOC`), EOPNOTSUPP (a lock word);
    ///   ``MapError/noMemory``.
    public convenience init(_ definition: MapDefinition) throws(MapError) {
        try self.init(definition, possibleCPUs: RawPerCPUArrayMap.possibleCPUs,
                      placingBlocksOnNodes: NUMATopology.nodeCount > 1)
    }

    /// Creates an empty per-CPU hash with one value slot for each of `possibleCPUs` CPUs
    /// (tests: a machine's count of possible CPUs is its own), each CPU's block of values
    /// placed on its NUMA node when `placingBlocksOnNodes` (the public initializer does so
    /// where there are several nodes; tests force it). `nodeOfCPU` and `maxRuns` are
    /// ``RawPerCPUArrayMap``'s, for tests; `bucketCount` overrides the table's sizing (tests
    /// use one bucket to build long chains of overflow buckets).
    package init(_ definition: MapDefinition, possibleCPUs: Int, placingBlocksOnNodes: Bool = false,
                 nodeOfCPU: @escaping (Int) -> Int = { Int(rcumaps_numa_node_of_cpu(Int32($0))) },
                 maxRuns: Int = RawPerCPUArrayMap.maxPlacementRuns, bucketCount: Int? = nil) throws(MapError) {
        guard definition.type == .perCPUHash || definition.type == .lruPerCPUHash else {
            throw MapError.invalidArgument.with(
                reason: "RawPerCPUHashMap serves BPF_MAP_TYPE_PERCPU_HASH and BPF_MAP_TYPE_LRU_PERCPU_HASH, not \(definition.type)")
        }
        try definition.validateHash()
        possibleCPUCount = possibleCPUs
        restartableAdds = RawPerCPUArrayMap.possibleCPUsAreDense
        paddedValueSize = roundUp8(definition.valueSize)
        valueSize = definition.valueSize
        var base = definition
        base.type = definition.type == .lruPerCPUHash ? .lruHash : .hash
        base.hashImplementation = .bucketLocked
        base.valueSize = paddedValueSize * possibleCPUCount
        base.poolTag = definition.effectivePoolTag
        base.lockOffset = nil  // refused below, for this type (the base's HASH would allow one)
        storage = try RawBucketHashMap(base, observer: nil, bucketCount: bucketCount, perCPU: PerCPUValueLayout(
            cpus: possibleCPUs, width: paddedValueSize, placingOnNodes: placingBlocksOnNodes, nodeOfCPU: nodeOfCPU,
            maxRuns: maxRuns))
        var shown = definition
        shown.maxEntries = storage.definition.maxEntries
        self.definition = shown
        try definition.validateAfterAllocation()  // as Linux, after the allocation (deinit frees it)
    }

    /// Bytes of a user-mode value: `round_up(valueSize, 8) × possibleCPUCount`.
    public var userValueSize: Int { paddedValueSize * possibleCPUCount }

    /// Entries in the map (a snapshot). Any thread.
    public var count: Int { storage.count }

    /// What user and helper mode may do (the access flags). Any thread.
    public var access: MapAccess { storage.access }

    /// Whether the map is frozen. Any thread.
    public var isFrozen: Bool { storage.isFrozen }

    /// The NUMA node each CPU's block of first-level values was placed on (the kernel was
    /// asked to put its pages there), by CPU slot; nil when the blocks were not placed (one
    /// NUMA node, or CPU numbers that alternate between nodes: see ``RawPerCPUArrayMap``).
    package var cpuBlockNodes: [Int]? { storage.table.cellBlocks?.nodes }

    /// The CPU blocks of the first-level slots' values (CPU slot `c`'s block at `base + c ×
    /// cpuStride`, `size` bytes in all): for tests and diagnostics. Values of keys in
    /// overflow buckets are outside it, in per-CPU groups after their bucket.
    package var valueBlocks: (base: UnsafeRawPointer, cpuStride: Int, size: Int)? {
        storage.table.cellBlocks.map { (UnsafeRawPointer($0.base), $0.cpuStride, $0.size) }
    }

    /// The calling CPU's value in an entry's all-CPU value: bytes `cpu × padded ..< + valueSize`.
    @inline(__always)
    var currentCPUBytes: Range<Int> {
        let start = RawPerCPUArrayMap.currentCPUSlot(of: possibleCPUCount) * paddedValueSize
        return start..<(start + valueSize)
    }

    // MARK: Helper mode: the calling CPU's value

    /// Helper-mode lookup: the calling CPU's value (`valueSize` bytes), borrowed until
    /// `section` ends; an LRU map marks the entry used. See the type's notes on thread
    /// migration: modify it with atomics. Contract: ``RawMap/lookupInPlace(key:in:)``.
    public func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        guard let values = try storage.perCPUValuesIfPresent(key: key, in: section) else { throw MapError.keyNotFound }
        // Invariant: CPU slot s's value is the `valueSize` bytes at `base + s × cpuStride`,
        // valid until `section` ends.
        let cpu = RawPerCPUArrayMap.currentCPUSlot(of: possibleCPUCount)
        return UnsafeMutableRawBufferPointer(start: values.base + cpu * values.cpuStride, count: valueSize)
    }

    /// The value of `key` on CPU number `cpu` (`valueSize` bytes), borrowed until `section`
    /// ends: helper mode on a chosen CPU's value, as Linux's `bpf_map_lookup_percpu_elem`
    /// (`htab_percpu_map_lookup_percpu_elem`). The bytes are the ones helper mode on that
    /// CPU reads and writes (a CPU number beyond the slots, where the possible CPUs have
    /// gaps, wraps around as there); an LRU map marks the entry used, as Linux's
    /// `htab_lru_percpu_map_lookup_percpu_elem` sets its reference bit. Another thread may
    /// write that CPU's value meanwhile (see the type's notes on thread migration): read it
    /// with atomics where that matters.
    ///
    /// Concurrency: any thread, inside `section`.
    ///
    /// - Throws: ``MapError/accessDenied`` (EACCES) with `BPF_F_WRONLY_PROG`, then
    ///   ``MapError/invalidArgument`` for a key of the wrong size, then
    ///   ``MapError/keyNotFound`` (ENOENT, Linux's NULL) when `cpu` is negative or at least
    ///   ``RawPerCPUArrayMap/cpuIDLimit`` (`nr_cpu_ids`), before the lookup, or when `key`
    ///   is absent.
    public func lookupInPlace(key: UnsafeRawBufferPointer, cpu: Int, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        // The access and the key's size first (Linux's verifier checks them before a program
        // runs; PERCPU_ARRAY's form answers them first too), then the CPU, as Linux: a CPU
        // out of range finds nothing and marks no LRU entry used.
        try access.checkProgramRead()
        try checkKey(key, definition.keySize)
        guard cpu >= 0, cpu < RawPerCPUArrayMap.cpuIDLimit else { throw MapError.keyNotFound }
        guard let values = try storage.perCPUValuesIfPresent(key: key, in: section) else { throw MapError.keyNotFound }
        // Invariant: CPU slot s's value is the `valueSize` bytes at `base + s × cpuStride`,
        // valid until `section` ends.
        let slot = RawPerCPUArrayMap.slot(ofCPU: cpu, slots: possibleCPUCount)
        return UnsafeMutableRawBufferPointer(start: values.base + slot * values.cpuStride, count: valueSize)
    }

    /// Adds `delta` to the calling CPU's value of `key`, an 8-byte word, inside `section`
    /// (helper mode, as an eBPF program's `*value += delta`; an LRU map marks the entry
    /// used). Returns false when `key` is absent.
    ///
    /// The CPU number and a plain add form one restartable sequence where rseq is available
    /// (see ``RawPerCPUArrayMap/addToCurrentCPUWord(_:at:)``), an atomic add elsewhere.
    /// Concurrency: any thread. Exact as long as every helper-mode change of the key's
    /// values goes through this method (an atomic add through ``lookupInPlace(key:in:)``'s
    /// pointer from a thread that migrated meanwhile can overlap a plain add); an add racing
    /// with a user-mode write or a delete of the key can be lost, as a Linux program's can.
    ///
    /// - Throws: ``MapError/accessDenied`` (EACCES) when programs may not write the map;
    ///   ``MapError/invalidArgument`` for values not of 8 bytes or a key of the wrong size.
    @usableFromInline
    package func addToCurrentCPUWord(_ delta: UInt64, key: UnsafeRawBufferPointer,
                                     in section: borrowing EpochSection) throws(MapError) -> Bool {
        try access.checkProgramWrite()
        guard valueSize == 8 else {
            throw MapError.invalidArgument.with(reason: "per-CPU adds need 8-byte values, this map's are \(valueSize)")
        }
        guard let values = try storage.perCPUValuesIfPresent(key: key, in: section) else { return false }
        // Invariant: CPU slot c's value is the 8 bytes at `base + c × cpuStride` (8-aligned:
        // blocks and groups start on 64 bytes), valid until `section` ends.
        if restartableAdds,
           rcumaps_rseq_add_u64(values.base, values.cpuStride, delta, UInt32(truncatingIfNeeded: possibleCPUCount)) == 0 {
            return true
        }
        let cpu = RawPerCPUArrayMap.currentCPUSlot(of: possibleCPUCount)
        (values.base + cpu * values.cpuStride).assumingMemoryBound(to: Atomic<UInt64>.self).pointee
            .wrappingAdd(delta, ordering: .relaxed)
        return true
    }

    /// Helper-mode update of the calling CPU's value (`valueSize` bytes): see the type's
    /// documentation for the other CPUs' values. Contract: ``RawMap/update(key:value:flags:in:)``.
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                       in section: borrowing EpochSection) throws(MapError) {
        try access.checkProgramWrite()
        try checkValue(value, valueSize)
        let own = currentCPUBytes
        // The all-CPU value of a new key: zeroes, and this CPU's value (its padding zero too).
        try withUnsafeTemporaryAllocation(byteCount: userValueSize, alignment: 8) { (whole) throws(MapError) in
            whole.initializeMemory(as: UInt8.self, repeating: 0)
            whole.baseAddress!.advanced(by: own.lowerBound).copyMemory(from: value.baseAddress!, byteCount: valueSize)
            _ = try storage.update(key: key, value: UnsafeRawBufferPointer(whole), flags: flags, operation: .helper,
                                   displaced: nil, writing: own).replacedOrThrow(flags)
        }
    }

    /// Helper-mode delete (`bpf_map_delete_elem`). Contract: ``RawMap/delete(key:in:)``.
    public func delete(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError) {
        try storage.delete(key: key, in: section)
    }

    // MARK: User mode: every CPU's value (the base hash's operations)

    /// Copies every CPU's value (``userValueSize`` bytes). Contract: ``RawMap/lookup(key:into:)``.
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try storage.lookup(key: key, into: value)
    }

    /// ``lookup(key:into:)`` that is not a use of the entry (an LRU_PERCPU_HASH's recency
    /// is left as it is, as Linux's syscall lookups leave it); `false` when absent. For
    /// passes over the map (the typed iteration and `snapshot()`).
    package func lookupIfPresentWithoutUse(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer)
        throws(MapError) -> Bool
    {
        try storage.lookupIfPresentWithoutUse(key: key, into: value)
    }

    /// ``lookup(key:into:)`` with flags (`BPF_F_LOCK` is EINVAL: no lock word).
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                       flags: MapElementFlags) throws(MapError) {
        try storage.lookup(key: key, into: value, flags: flags)
    }

    /// Stores every CPU's value (``userValueSize`` bytes). Contract: ``RawMap/update(key:value:flags:)``.
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        try storage.update(key: key, value: value, flags: flags)
    }

    /// Stores every CPU's value and reports the ones replaced. Contract: ``RawMap/exchange(key:value:flags:into:)``.
    public func exchange(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                         into displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        try storage.exchange(key: key, value: value, flags: flags, into: displaced)
    }

    /// Removes `key`. Contract: ``RawMap/delete(key:)``.
    public func delete(key: UnsafeRawBufferPointer) throws(MapError) {
        try storage.delete(key: key)
    }

    /// ``delete(key:)`` with flags (any flag is EINVAL). Contract: ``RawMap/delete(key:flags:)``.
    public func delete(key: UnsafeRawBufferPointer, flags: MapElementFlags) throws(MapError) {
        try storage.delete(key: key, flags: flags)
    }

    /// Atomic removal, copying every CPU's value out. Contract: ``RawMap/lookupAndDelete(key:into:)``.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try storage.lookupAndDelete(key: key, into: value)
    }

    /// ``lookupAndDelete(key:into:)`` with flags. Contract: ``RawMap/lookupAndDelete(key:into:flags:)``.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                                flags: MapElementFlags) throws(MapError) {
        try storage.lookupAndDelete(key: key, into: value, flags: flags)
    }

    /// Get-next-key, as the base hash. Contract: ``RawMap/nextKey(after:into:)``.
    public func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try storage.nextKey(after: key, into: nextKey)
    }

    /// Get-next-key within a pass. Contract: ``RawMap/nextKeyInPass(after:into:)``.
    public func nextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try storage.nextKeyInPass(after: key, into: nextKey)
    }

    /// Freezes user-mode writes. Contract: ``RawMap/freeze()``.
    @available(*, noasync, message: "waits for a grace period: call it from a thread of your own, or use `await map.freezeAsync()`")
    public func freeze() throws(MapError) {
        try storage.freeze()
    }

    /// `BPF_MAP_LOOKUP_BATCH`, values in the all-CPU layout. Contract:
    /// ``RawMap/lookupBatch(from:keys:values:count:elementFlags:flags:)``.
    public func lookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                            values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try storage.lookupBatch(from: cursor, keys: keys, values: values, count: count, elementFlags: elementFlags,
                                flags: flags)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`, values in the all-CPU layout. Contract:
    /// ``RawMap/lookupAndDeleteBatch(from:keys:values:count:elementFlags:flags:)``.
    public func lookupAndDeleteBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                                     values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                                     flags: UInt64) throws(MapError) -> MapBatchResult {
        try storage.lookupAndDeleteBatch(from: cursor, keys: keys, values: values, count: count,
                                         elementFlags: elementFlags, flags: flags)
    }

    /// `BPF_MAP_UPDATE_BATCH`, values in the all-CPU layout. Contract:
    /// ``RawMap/updateBatch(keys:values:count:elementFlags:flags:)``.
    public func updateBatch(keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, count: Int,
                            elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult {
        try storage.updateBatch(keys: keys, values: values, count: count, elementFlags: elementFlags, flags: flags)
    }

    /// `BPF_MAP_DELETE_BATCH`. Contract: ``RawMap/deleteBatch(keys:count:elementFlags:flags:)``.
    public func deleteBatch(keys: UnsafeRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try storage.deleteBatch(keys: keys, count: count, elementFlags: elementFlags, flags: flags)
    }
}
