import CRCUMapsShim
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An `ARRAY` map: `maxEntries` preallocated, zero-initialised values indexed by a
/// `UInt32` key, in one cache-aligned block (on the requested NUMA node when there is one).
///
/// Semantics follow Linux: every index always has a value, so ``count`` is `maxEntries`;
/// delete is EINVAL; lookup past the end is ENOENT; update past the end is E2BIG;
/// `.noExist` is EEXIST; lookup-and-delete is not supported.
///
/// Torn values: a value of at most 8 bytes is one atomic word. A larger value slot has a
/// sequence counter in front (a seqlock): writers of one slot exclude each other through
/// it, readers copy the value word by word with atomic loads and retry if a writer
/// overlapped — readers never take a lock and never block a writer. Helper-mode writes go
/// straight to memory, as in eBPF, and bypass the counter.
///
/// Concurrency: any number of readers and writers on any threads.
public final class RawArrayMap: ObservableBaseMap, FlaggedWrites, @unchecked Sendable {
    // @unchecked Sendable: `storage` is allocated once and only accessed through atomics
    // (user mode) or as borrowed memory (helper mode, caller's responsibility).

    /// The definition the map was created with. Immutable; any thread.
    public let definition: MapDefinition
    @usableFromInline let valueSize: Int
    @usableFromInline let maxEntries: Int
    /// Value bytes padded to 8 (Linux's `round_up(value_size, 8)`).
    let paddedValueSize: Int
    /// Bytes per slot: the padded value, plus an 8-byte sequence word when the value
    /// exceeds 8 bytes.
    @usableFromInline let slotStride: Int
    /// Offset of the value within a slot (0 or 8).
    @usableFromInline let valueOffset: Int
    let storageSize: Int
    let numaPlaced: Bool
    /// Invariant: `storageSize` bytes, 64-byte aligned, bound to `Atomic<UInt64>`.
    @usableFromInline let storage: UnsafeMutableRawPointer
    /// The provider layer's hooks, if this map is the base of a custom map. With hooks,
    /// every slot has a sequence word (writers need exclusion to see the displaced value).
    let observer: (any MapEntryObserver)?

    /// Creates an array with every value zero.
    ///
    /// - Throws: ``MapError/invalidArgument`` (key size not 4, zero sizes, flags),
    ///   ``MapError/outOfSpace`` (value size beyond the limit), ``MapError/noMemory``
    ///   (no memory, or the array would reach 4 GiB, as Linux).
    public convenience init(_ definition: MapDefinition) throws(MapError) {
        try self.init(definition, observer: nil)
    }

    /// Creates an array whose displaced values are reported to `observer` (provider layer).
    package init(_ definition: MapDefinition, observer: (any MapEntryObserver)?) throws(MapError) {
        guard definition.type == .array else {
            throw MapError.invalidArgument.with(reason: "RawArrayMap serves BPF_MAP_TYPE_ARRAY, not \(definition.type)")
        }
        try definition.validateArray()
        self.definition = definition
        valueSize = definition.valueSize
        maxEntries = definition.maxEntries
        paddedValueSize = roundUp8(valueSize)
        self.observer = observer
        valueOffset = valueSize <= 8 && observer == nil ? 0 : 8
        slotStride = paddedValueSize + valueOffset
        let (size, overflow) = maxEntries.multipliedReportingOverflow(by: slotStride)
        // Linux refuses arrays of 4 GiB and more with ENOMEM (array_map_alloc).
        guard !overflow, size <= EpochMemory.maxBlockSize else {
            throw MapError.noMemory.with(reason: "array of \(maxEntries) × \(slotStride) bytes exceeds 4 GiB")
        }
        storageSize = size
        if let node = definition.numaNode, NUMATopology.nodeCount > 1,
           let placed = rcumaps_numa_alloc_onnode(size, Int32(node)) {
            storage = placed
            numaPlaced = true
        } else {
            guard let block = EpochMemory.allocateCacheAligned(byteCount: size, tag: definition.effectivePoolTag) else {
                throw MapError.noMemory
            }
            storage = block
            numaPlaced = false
        }
        // Before the first touch: a big array on huge pages misses the TLB far less.
        if !numaPlaced { rcumaps_advise_huge_pages(storage, size) }
        // All-zero bytes are a valid `Atomic<UInt64>` of 0; bind once, access atomically after.
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        storage.bindMemory(to: Atomic<UInt64>.self, capacity: size / 8)
    }

    deinit {
        if let observer {
            for index in 0..<maxEntries {
                var key = UInt32(index)
                withUnsafeBytes(of: &key) { key in
                    let value = UnsafeRawBufferPointer(start: slot(index) + valueOffset, count: valueSize)
                    _ = observer.entryWillBeRemoved(key: key, value: value, flags: .mapCleanup)
                    observer.entryWasRemoved(key: key, value: value, flags: .mapCleanup)
                }
            }
        }
        if numaPlaced {
            // libnuma memory has no epoch header: free it after a grace period by work item.
            let address = UInt(bitPattern: storage)
            let size = storageSize
            let scheduled = Epoch.afterGracePeriod { rcumaps_numa_free(UnsafeMutableRawPointer(bitPattern: address), size) }
            if !scheduled {
                runWhereGracePeriodsMayBeAwaited {
                    Epoch.synchronize()
                    rcumaps_numa_free(UnsafeMutableRawPointer(bitPattern: address), size)
                }
            }
        } else {
            EpochMemory.freeCacheAligned(storage)
        }
    }

    /// Entries in the map: a snapshot under concurrent updates (arrays: `maxEntries`). Any thread.
    public var count: Int { maxEntries }

    // MARK: Slots

    @inlinable @inline(__always)
    func index(_ key: UnsafeRawBufferPointer) throws(MapError) -> Int {
        try checkKey(key, 4)
        return Int(key.baseAddress!.loadUnaligned(as: UInt32.self))
    }

    @inlinable @inline(__always)
    func slot(_ index: Int) -> UnsafeMutableRawPointer { storage + index * slotStride }

    @inlinable @inline(__always)
    func word(_ pointer: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        pointer.assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Copies a slot's value out word by word with relaxed atomic loads.
    @inlinable @inline(__always)
    func copyOut(_ value: UnsafeMutableRawPointer, from source: UnsafeMutableRawPointer) {
        if valueSize == 8 {
            value.storeBytes(of: word(source).pointee.load(ordering: .relaxed), as: UInt64.self)
            return
        }
        var offset = 0
        while offset + 8 <= valueSize {
            value.storeBytes(of: word(source + offset).pointee.load(ordering: .relaxed),
                             toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        if offset < valueSize {
            var last = word(source + offset).pointee.load(ordering: .relaxed)
            withUnsafeBytes(of: &last) { bytes in
                (value + offset).copyMemory(from: bytes.baseAddress!, byteCount: valueSize - offset)
            }
        }
    }

    /// Copies a value into a slot word by word with atomic stores (releasing ones when
    /// the slot has no sequence word to publish it).
    @inline(__always)
    func copyIn(_ destination: UnsafeMutableRawPointer, from value: UnsafeRawPointer, releasing: Bool) {
        var offset = 0
        while offset < valueSize {
            var bits: UInt64 = 0
            if offset + 8 <= valueSize {
                bits = value.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            } else {
                withUnsafeMutableBytes(of: &bits) { bytes in
                    bytes.baseAddress!.copyMemory(from: value + offset, byteCount: valueSize - offset)
                }
            }
            if releasing {
                word(destination + offset).pointee.store(bits, ordering: .releasing)
            } else {
                word(destination + offset).pointee.store(bits, ordering: .relaxed)
            }
            offset += 8
        }
    }

    // MARK: Lookup

    /// User-mode lookup. Contract: ``RawMap/lookup(key:into:)``.
    /// Inlinable: a one-word value compiles into the caller as a bounds check and a load.
    @inlinable @inline(__always)
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        let index = try self.index(key)
        try checkValue(value, valueSize)
        guard index < maxEntries else { throw MapError.keyNotFound }
        if valueOffset == 0 {
            copyOut(value.baseAddress!, from: slot(index))
        } else {
            copySequenced(value.baseAddress!, from: slot(index))
        }
    }

    /// Copies a value guarded by its slot's sequence word (a seqlock read): retries while a
    /// writer of the slot is active or overlapped the copy.
    @usableFromInline
    func copySequenced(_ value: UnsafeMutableRawPointer, from slot: UnsafeMutableRawPointer) {
        let sequence = word(slot)
        var spins = 0
        while true {
            let before = sequence.pointee.load(ordering: .acquiring)
            if before & 1 == 0 {
                copyOut(value, from: slot + 8)
                atomicMemoryFence(ordering: .acquiring)
                if sequence.pointee.load(ordering: .relaxed) == before { return }
            }
            spins += 1
            if spins & 63 == 0 { sched_yield() }  // a writer of this slot was preempted
        }
    }

    /// Helper-mode lookup, borrowed until `section` ends. Contract: ``RawMap/lookupInPlace(key:in:)``.
    @inlinable
    public func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        let index = try self.index(key)
        guard index < maxEntries else { throw MapError.keyNotFound }
        return UnsafeMutableRawBufferPointer(start: slot(index) + valueOffset, count: valueSize)
    }

    // MARK: Update

    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                operation: MapOperationFlags) throws(MapError) {
        try checkFlags(flags)
        let index = try self.index(key)
        try checkValue(value, valueSize)
        guard index < maxEntries else { throw MapError.outOfSpace }
        if flags == .noExist { throw MapError.alreadyExists }
        let slot = self.slot(index)
        if valueOffset == 0 {
            copyIn(slot, from: value.baseAddress!, releasing: true)
            return
        }
        let sequence = word(slot)
        if let observer {
            replaceReporting(to: observer, key: key, slot: slot, value: value.baseAddress!,
                             flags: operation.union(.update))
            return
        }
        var spins = 0
        while true {
            let current = sequence.pointee.load(ordering: .relaxed)
            if current & 1 == 0,
               sequence.pointee.compareExchange(expected: current, desired: current &+ 1,
                                                ordering: .acquiring).exchanged {
                atomicMemoryFence(ordering: .releasing)
                copyIn(slot + 8, from: value.baseAddress!, releasing: false)
                sequence.pointee.store(current &+ 2, ordering: .releasing)
                return
            }
            spins += 1
            if spins & 63 == 0 { sched_yield() }
        }
    }

    /// Bit 63 of a slot's sequence word: a writer of the slot holds it (provider maps only).
    /// Readers look only at bit 0 (a write in progress), so holding the slot while the
    /// provider's pre-deletion callback runs never makes a reader wait.
    static let writerBit: UInt64 = 1 << 63

    /// Writes `value` into `slot` on a map with an observer, reporting the displaced value:
    /// `entryWillBeRemoved` while this writer holds the slot (other writers wait, readers do
    /// not), `entryWasRemoved` after the write and the slot's release.
    func replaceReporting(to observer: any MapEntryObserver, key: UnsafeRawBufferPointer, slot: UnsafeMutableRawPointer,
                          value: UnsafeRawPointer, flags: MapOperationFlags) {
        let sequence = word(slot)
        var spins = 0
        var current: UInt64
        while true {  // take the slot's writer bit
            current = sequence.pointee.load(ordering: .relaxed)
            if current & Self.writerBit == 0,
               sequence.pointee.compareExchange(expected: current, desired: current | Self.writerBit,
                                                ordering: .acquiring).exchanged { break }
            spins += 1
            if spins & 63 == 0 { sched_yield() }
        }
        // Only the holder of the writer bit changes the value: it is stable while we read it.
        withUnsafeTemporaryAllocation(byteCount: paddedValueSize, alignment: 8) { displaced in
            copyOut(displaced.baseAddress!, from: slot + 8)
            let old = UnsafeRawBufferPointer(start: displaced.baseAddress!, count: valueSize)
            _ = observer.entryWillBeRemoved(key: key, value: old, flags: flags)
            sequence.pointee.store((current &+ 1) | Self.writerBit, ordering: .relaxed)  // odd: readers retry
            atomicMemoryFence(ordering: .releasing)
            copyIn(slot + 8, from: value, releasing: false)
            sequence.pointee.store(current &+ 2, ordering: .releasing)  // even, writer bit clear
            observer.entryWasRemoved(key: key, value: old, flags: flags)
        }
    }

    func delete(key: UnsafeRawBufferPointer, operation: MapOperationFlags) throws(MapError) {
        _ = try index(key)
        throw MapError.invalidArgument.with(reason: "array elements cannot be deleted")
    }

    /// Atomic removal with an inspection of the removed value first. Contract: ``ObservableBaseMap``.
    package func remove(key: UnsafeRawBufferPointer,
                        inspecting inspect: (UnsafeRawBufferPointer) throws(MapError) -> Void) throws(MapError) {
        _ = try index(key)
        throw MapError.notSupported.with(reason: "lookup-and-delete is not supported on arrays")
    }

    /// Atomic lookup-and-delete. Contract: ``RawMap/lookupAndDelete(key:into:)``.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        _ = try index(key)
        throw MapError.notSupported.with(reason: "lookup-and-delete is not supported on arrays")
    }

    // MARK: Iteration

    /// Get-next-key iteration. Contract: ``RawMap/nextKey(after:into:)``.
    public func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        guard nextKey.count == 4, nextKey.baseAddress != nil else {
            throw MapError.invalidArgument.with(reason: "key buffer is \(nextKey.count) bytes, array keys are 4")
        }
        let next: Int
        if let key {
            let index = try self.index(key)
            // As Linux: an out-of-range cursor restarts at 0; the last index ends the pass.
            if index >= maxEntries { next = 0 } else if index == maxEntries - 1 { throw MapError.keyNotFound } else { next = index + 1 }
        } else {
            next = 0
        }
        nextKey.baseAddress!.storeBytes(of: UInt32(next), as: UInt32.self)
    }
}
