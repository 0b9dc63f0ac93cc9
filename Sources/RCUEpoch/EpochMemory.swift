import CRCUMapsShim
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Memory whose release waits for a grace period.
///
/// Allocate with ``allocate(byteCount:tag:)`` or ``allocateCacheAligned(byteCount:tag:)``;
/// once the memory has been unpublished (no new reader can find it), retire it with
/// ``free(_:)`` / ``freeCacheAligned(_:)``. The memory stays readable by every section
/// that could have seen it, and is returned to the allocator after they end — by
/// liburcu's `call_rcu` worker, never by the caller, who never waits for a grace period
/// (a thread's first call may wait briefly to register it, or for a fork in progress).
///
/// Each block carries a hidden 24-byte header in front of it (the eBPF `header--` trick):
/// the `rcu_head` that queues it for reclamation, its tag, and its state. Freeing a block
/// twice before its reclamation, or with the wrong function for its kind, stops the program
/// with a message; a second free after the block went back to the allocator cannot be
/// detected (as with `free`, it is undefined).
/// Small blocks of one size (hash entries) can go without any header: an
/// ``EpochRetireList`` allocates them, keeps the size and tag for all of them, and retires
/// them in batches.
public enum EpochMemory {
    /// Bytes in front of every block.
    public static let headerSize = 24
    /// Alignment of ``allocateCacheAligned(byteCount:tag:)`` blocks (and their padding unit).
    public static let cacheLineSize = 64
    /// Alignment of ``allocate(byteCount:tag:)`` blocks.
    public static let alignment = 8

    /// Largest block: the header records sizes in 32 bits.
    public static let maxBlockSize = Int(UInt32.max) - 2 * cacheLineSize

    /// Allocates `byteCount` bytes under `tag`, 8-byte aligned, uninitialised.
    ///
    /// - Returns: The block, or `nil` when the allocator fails or `byteCount` is negative
    ///   or exceeds ``maxBlockSize`` (callers report ENOMEM).
    ///
    /// Concurrency: any thread, inside or outside a section; takes no lock of ours.
    public static func allocate(byteCount: Int, tag: PoolTag) -> UnsafeMutableRawPointer? {
        guard 0...maxBlockSize ~= byteCount else { return nil }
        if _FaultInjection.isActive, _FaultInjection.shouldFail(tag: tag) { return nil }
        guard let base = malloc(byteCount + headerSize) else { return nil }
        return finishAllocation(base: base, userOffset: headerSize, size: byteCount + headerSize, flags: 0, tag: tag)
    }

    /// Allocates `byteCount` bytes under `tag`, 64-byte aligned and padded to a whole
    /// number of cache lines, uninitialised.
    ///
    /// A block of 4 MiB or more (header line included) is a mapping of its
    /// own (`mmap`), given back with `munmap`: the bucket tables and arrays that ask for
    /// transparent huge pages (`rcumaps_advise_huge_pages`, which advises only ranges of
    /// that size) are such blocks, and advice given to a block from `malloc`'s heap stayed
    /// on the heap after the block was freed, for unrelated allocations (found by review,
    /// 2026-12-06: glibc serves blocks of several MiB from the heap once its mapping
    /// threshold has risen).
    ///
    /// - Returns: The block, or `nil` when the allocator fails or `byteCount` is negative
    ///   or exceeds ``maxBlockSize``.
    ///
    /// Concurrency: any thread.
    public static func allocateCacheAligned(byteCount: Int, tag: PoolTag) -> UnsafeMutableRawPointer? {
        guard 0...maxBlockSize ~= byteCount else { return nil }
        if _FaultInjection.isActive, _FaultInjection.shouldFail(tag: tag) { return nil }
        let lines = max(1, (byteCount + cacheLineSize - 1) / cacheLineSize)
        let total = (lines + 1) * cacheLineSize
        if total >= mappedBlockSize {
            guard let base = rcumaps_map_pages(total) else { return nil }
            mappedByteCount.wrappingAdd(total, ordering: .relaxed)
            return finishAllocation(base: base, userOffset: cacheLineSize, size: total,
                                    flags: Flags.cacheAligned | Flags.mapped, tag: tag)
        }
        guard let base = aligned_alloc(cacheLineSize, total) else { return nil }
        return finishAllocation(base: base, userOffset: cacheLineSize, size: total, flags: Flags.cacheAligned, tag: tag)
    }

    /// The size from which ``allocateCacheAligned(byteCount:tag:)`` maps a block of its own:
    /// 4 MiB, the least a range must span for `rcumaps_advise_huge_pages` to advise part
    /// of it (two huge pages, so that one aligned huge page always lies inside).
    package static let mappedBlockSize = 4 << 20

    /// Bytes in the mapped blocks of ``allocateCacheAligned(byteCount:tag:)`` now (a
    /// snapshot): memory the allocator's own figures (`mallinfo2`) do not see, which they saw
    /// when such blocks came from `malloc` (it maps large blocks itself and counts them in
    /// `hblkhd`). `rcumaps memory` adds it to its heap figure.
    package static var mappedBytes: Int { mappedByteCount.load(ordering: .relaxed) }
    static let mappedByteCount = Atomic<Int>(0)

    // MARK: Headerless blocks (EpochRetireList)

    /// Allocates `byteCount` bytes with no header, accounted to the tag whose counters are
    /// `slot` (an ``EpochRetireList`` keeps the size and tag its blocks share).
    /// 16-byte aligned (glibc `malloc`); `nil` when the allocator fails.
    static func allocateHeaderless(byteCount: Int, counters slot: UnsafeMutablePointer<TagCounters>,
                                   tag: PoolTag, injectable: Bool = true) -> UnsafeMutableRawPointer? {
        if injectable, _FaultInjection.isActive, _FaultInjection.shouldFail(tag: tag) { return nil }
        guard let block = malloc(byteCount) else { return nil }
        accountHeaderlessAllocated(byteCount: byteCount, counters: slot)
        return block
    }

    /// Accounts one headerless block of `byteCount` bytes in (allocated, or taken back from
    /// an ``EpochRetireList``'s recycled blocks).
    @inline(__always)
    static func accountHeaderlessAllocated(byteCount: Int, counters slot: UnsafeMutablePointer<TagCounters>) {
        slot.pointee.liveBytes.wrappingAdd(byteCount, ordering: .relaxed)
        slot.pointee.allocations.wrappingAdd(1, ordering: .relaxed)
        slot.pointee.liveAllocations.wrappingAdd(1, ordering: .relaxed)
    }

    /// Accounts `count` headerless blocks of `byteCount` bytes each out (the allocator has
    /// them back, or is about to): one update of each counter for a whole batch.
    static func accountHeaderlessReleased(count: Int, byteCount: Int, counters slot: UnsafeMutablePointer<TagCounters>,
                                          wasPending: Bool) {
        if wasPending { slot.pointee.pendingBytes.wrappingSubtract(count * byteCount, ordering: .relaxed) }
        slot.pointee.liveBytes.wrappingSubtract(count * byteCount, ordering: .relaxed)
        slot.pointee.liveAllocations.wrappingSubtract(count, ordering: .relaxed)
    }

    /// The table slot of `tag`'s counters.
    static func tagSlotIndex(_ tag: PoolTag) -> Int { tagTable.slotIndex(for: tag) }

    /// Queues a batch block (see ``EpochRetireList``) for after a grace period.
    static func scheduleRetireBatch(_ block: UnsafeMutableRawPointer) {
        _ = Header(block: block).state.pointee.bitwiseOr(Flags.retireBatch, ordering: .relaxed)
        retire(block, expectingCacheAligned: false)
    }

    /// Retires a block from ``allocate(byteCount:tag:)``: it is reclaimed after a grace period.
    ///
    /// - Precondition: the block is unpublished (no reader can newly find it) and has not
    ///   been freed before.
    ///
    /// Concurrency: any thread, inside or outside a section; never waits for a grace period
    /// (a thread's first call registers it, which waits for a fork in progress). Wraps
    /// `call_rcu`.
    public static func free(_ block: UnsafeMutableRawPointer) {
        retire(block, expectingCacheAligned: false)
    }

    /// Retires a block from ``allocateCacheAligned(byteCount:tag:)``.
    ///
    /// Same contract as ``free(_:)``.
    public static func freeCacheAligned(_ block: UnsafeMutableRawPointer) {
        retire(block, expectingCacheAligned: true)
    }

    /// Releases a block that was never published, at once, without a grace period.
    ///
    /// - Precondition: no other thread has ever been given the block's address.
    ///
    /// Concurrency: any thread. Use on error paths (a node built but not inserted).
    public static func freeUnpublished(_ block: UnsafeMutableRawPointer) {
        release(block)
    }

    /// Releases a block (from either allocator) at once, without a grace period, when no
    /// thread can reach it any more: its owner is being destroyed and every reader and
    /// work item that could hold its address has finished.
    ///
    /// - Precondition: nothing can reach the block; it has not been freed before;
    ///   `cacheAligned` says which allocator it came from.
    ///
    /// Concurrency: any thread, including the reclamation thread.
    public static func freeUnreachable(_ block: UnsafeMutableRawPointer, cacheAligned: Bool = false) {
        let flags = Header(block: block).state.pointee.load(ordering: .relaxed)
        _rcumapsPrecondition((flags & Flags.cacheAligned != 0) == cacheAligned,
                     cacheAligned ? "freeUnreachable(cacheAligned: true) of a block from allocate"
                                  : "freeUnreachable of a block from allocateCacheAligned")
        release(block)
    }

    /// Accounts a block out and gives it back to the allocator.
    private static func release(_ block: UnsafeMutableRawPointer) {
        let header = Header(block: block)
        let flags = header.state.pointee.bitwiseOr(Flags.retired, ordering: .relaxed).oldValue
        _rcumapsPrecondition(flags & Flags.retired == 0, "epoch memory freed twice")
        let slot = tagTable.counters(Header.slot(flags))
        slot.pointee.liveBytes.wrappingSubtract(header.size, ordering: .relaxed)
        slot.pointee.liveAllocations.wrappingSubtract(1, ordering: .relaxed)
        header.giveBack(flags: flags)
    }

    /// Accounting for one tag (zeros for a tag never used). Bytes count each block's
    /// requested size plus its header (and, for cache-aligned blocks, the padding).
    ///
    /// Concurrency: any thread; the figures are a racy snapshot while others allocate.
    /// ``EpochTagStatistics/recycledBytes`` takes the retire lists' registry lock and the
    /// lock of each recycling list's keeper of blocks, briefly.
    public static func statistics(for tag: PoolTag) -> EpochTagStatistics {
        var statistics = tagTable.existingSlotIndex(for: tag).map { tagTable.snapshot($0, tag: tag) }
            ?? EpochTagStatistics(tag: tag)
        statistics.recycledBytes = EpochRetireList.recycledBytes(tag: tag)
        return statistics
    }

    /// How many tags get counters of their own; later tags share one set (see
    /// ``EpochTagStatistics/isShared``).
    public static var maxTrackedTags: Int { TagTable.capacity - 1 }

    /// Accounting for every tag used so far (the shared overflow counters are not listed).
    public static func allStatistics() -> [EpochTagStatistics] {
        var result: [EpochTagStatistics] = []
        for index in 0..<TagTable.capacity {
            let key = tagTable.slots[index].key.load(ordering: .acquiring)
            guard key != 0 else { continue }
            result.append(tagTable.snapshot(index, tag: PoolTag(rawValue: UInt32(truncatingIfNeeded: key))))
        }
        let recycled = EpochRetireList.recycledBytesByTag()
        for index in result.indices { result[index].recycledBytes = recycled[result[index].tag] ?? 0 }
        return result
    }

    /// Whether the calling thread is liburcu's reclamation (call_rcu) thread, or the
    /// grace-period driver thread that runs `EpochWorkItem.scheduleOnGracePeriodDriver()`
    /// items.
    public static var isReclamationThread: Bool { _isReclamationThread }

    // MARK: - Internals

    enum Flags {
        static let cacheAligned: UInt32 = 1 << 0
        static let retired: UInt32 = 1 << 1
        static let workItem: UInt32 = 1 << 2
        /// A batch of retired headerless blocks (see `EpochRetireList`).
        static let retireBatch: UInt32 = 1 << 4
        /// A cache-aligned block that is a mapping of its own (see ``allocateCacheAligned(byteCount:tag:)``).
        static let mapped: UInt32 = 1 << 5
        /// Bits 8–17 of the state word: the tag's slot in the statistics table.
        static let slotShift: UInt32 = 8
        static let slotMask: UInt32 = 0x3FF
    }

    /// The hidden header in front of a block. Layout (24 bytes, 8-aligned):
    /// `rcu_head` (16) | accounted size (UInt32) | state (UInt32, atomic: flags in bits
    /// 0–7, tag slot in bits 8–17; only the flags change after allocation).
    struct Header {
        let raw: UnsafeMutableRawPointer

        init(block: UnsafeMutableRawPointer) { raw = block - EpochMemory.headerSize }
        init(rcuHead: UnsafeMutableRawPointer) { raw = rcuHead }

        var rcuHead: UnsafeMutablePointer<rcu_head> { raw.assumingMemoryBound(to: rcu_head.self) }
        var block: UnsafeMutableRawPointer { raw + EpochMemory.headerSize }
        /// Bytes accounted for the block (header and padding included).
        var size: Int {
            get { Int(raw.load(fromByteOffset: 16, as: UInt32.self)) }
            nonmutating set { raw.storeBytes(of: UInt32(newValue), toByteOffset: 16, as: UInt32.self) }
        }
        static func slot(_ state: UInt32) -> Int { Int((state >> Flags.slotShift) & Flags.slotMask) }
        /// Invariant: bound to `Atomic<UInt32>` once at allocation, only touched atomically after.
        var state: UnsafePointer<Atomic<UInt32>> {
            UnsafePointer((raw + 20).assumingMemoryBound(to: Atomic<UInt32>.self))
        }
        func base(flags: UInt32) -> UnsafeMutableRawPointer {
            flags & Flags.cacheAligned != 0 ? block - EpochMemory.cacheLineSize : raw
        }
        /// Gives the block's memory back to where it came from: its own mapping
        /// (``Flags/mapped``, `size` bytes from the base) or the heap.
        func giveBack(flags: UInt32) {
            if flags & Flags.mapped != 0 {
                EpochMemory.mappedByteCount.wrappingSubtract(size, ordering: .relaxed)
                rcumaps_unmap_pages(base(flags: flags), size)
            } else {
                Glibc.free(base(flags: flags))
            }
        }
    }

    static func finishAllocation(base: UnsafeMutableRawPointer, userOffset: Int, size: Int, flags: UInt32,
                                 tag: PoolTag) -> UnsafeMutableRawPointer {
        let block = base + userOffset
        let header = Header(block: block)
        header.rcuHead.initialize(to: rcu_head())
        let slotIndex = tagTable.slotIndex(for: tag)
        header.size = size
        (header.raw + 20).initializeMemory(as: Atomic<UInt32>.self,
                                           to: Atomic(flags | UInt32(slotIndex) << Flags.slotShift))
        let slot = tagTable.counters(slotIndex)
        slot.pointee.liveBytes.wrappingAdd(size, ordering: .relaxed)
        slot.pointee.allocations.wrappingAdd(1, ordering: .relaxed)
        slot.pointee.liveAllocations.wrappingAdd(1, ordering: .relaxed)
        return block
    }

    static func retire(_ block: UnsafeMutableRawPointer, expectingCacheAligned: Bool) {
        let header = Header(block: block)
        let flags = header.state.pointee.bitwiseOr(Flags.retired, ordering: .relaxed).oldValue
        _rcumapsPrecondition(flags & Flags.retired == 0, "epoch memory freed twice")
        _rcumapsPrecondition((flags & Flags.cacheAligned != 0) == expectingCacheAligned,
                     expectingCacheAligned ? "freeCacheAligned of a block from allocate"
                                           : "free of a block from allocateCacheAligned")
        let slot = tagTable.counters(Header.slot(flags))
        slot.pointee.pendingBytes.wrappingAdd(header.size, ordering: .relaxed)
        rcumaps_call_rcu(header.rcuHead, epochReclaim)
    }

    /// ``free(_:)`` through the grace-period driver: the block is freed there after a grace
    /// period, and the calling thread is never registered with liburcu (which a first
    /// `call_rcu` does, at the fork gate). For frees under a lock that sections may wait
    /// for (the bucket hash's chain locks), on a thread liburcu may not know yet. Not API.
    ///
    /// - Precondition: as ``free(_:)``, for a block from ``allocate(byteCount:tag:)``.
    package static func freeOnGracePeriodDriver(_ block: UnsafeMutableRawPointer) {
        let header = Header(block: block)
        let flags = header.state.pointee.bitwiseOr(Flags.retired, ordering: .relaxed).oldValue
        _rcumapsPrecondition(flags & Flags.retired == 0, "epoch memory freed twice")
        _rcumapsPrecondition(flags & Flags.cacheAligned == 0, "free of a block from allocateCacheAligned")
        tagTable.counters(Header.slot(flags)).pointee.pendingBytes.wrappingAdd(header.size, ordering: .relaxed)
        rcumaps_gp_driver_enqueue(header.rcuHead, epochReclaim)
    }

    /// Queues a work-item block (see ``EpochWorkItem``) for after a grace period: on
    /// liburcu's reclamation thread, or, with `onDriver`, on the grace-period driver thread
    /// (no 10 ms nap between grace periods; see `rcumaps_gp_driver_enqueue`).
    static func scheduleWork(_ block: UnsafeMutableRawPointer, onDriver: Bool = false) {
        let header = Header(block: block)
        _ = header.state.pointee.bitwiseOr(Flags.workItem, ordering: .relaxed)
        guard onDriver else {
            retire(block, expectingCacheAligned: false)
            return
        }
        let flags = header.state.pointee.bitwiseOr(Flags.retired, ordering: .relaxed).oldValue
        _rcumapsPrecondition(flags & Flags.retired == 0, "epoch memory freed twice")
        tagTable.counters(Header.slot(flags)).pointee.pendingBytes.wrappingAdd(header.size, ordering: .relaxed)
        // Same callback as liburcu's: it acquires the grace-period edge for ThreadSanitizer.
        rcumaps_gp_driver_enqueue(header.rcuHead, epochReclaim)
    }
}

/// liburcu's call_rcu worker or the grace-period driver: threads that run callbacks after
/// grace periods, where waiting for one (a barrier, a lock-free map's teardown) is forbidden.
var _isReclamationThread: Bool { rcumaps_thread_is_liburcu_worker() != 0 || rcumaps_thread_is_gp_driver() != 0 }

/// liburcu's reclaim callback for every epoch block. Runs on a call_rcu worker thread
/// after a grace period. Must be a nonisolated C function (a closure from an actor-isolated
/// context crashes on that thread).
private func epochReclaim(_ head: UnsafeMutablePointer<rcu_head>?) {
    guard let head else { return }
    rcumaps_mark_thread_registered()
    rcumaps_tsan_after_grace_period()
    let header = EpochMemory.Header(rcuHead: UnsafeMutableRawPointer(head))
    let flags = header.state.pointee.load(ordering: .relaxed)
    if flags & EpochMemory.Flags.workItem != 0 {
        EpochWorkItem.run(payload: header.block)
    }
    if flags & EpochMemory.Flags.retireBatch != 0 {
        EpochRetireList.release(batch: header.block)
    }
    // A work item or finalizer that left a section open would make this thread's next grace
    // period wait for itself: reclamation, and every barrier, would stop without a word
    // (found by review, 2026-12-05; the grace-period driver already stops so).
    _rcumapsPrecondition(!Epoch.isInsideAnyReadLock,
                         "an epoch work item or finalizer returned inside an epoch section (or a liburcu read lock)")
    let size = header.size
    let slot = tagTable.counters(EpochMemory.Header.slot(flags))
    slot.pointee.pendingBytes.wrappingSubtract(size, ordering: .relaxed)
    slot.pointee.liveBytes.wrappingSubtract(size, ordering: .relaxed)
    slot.pointee.liveAllocations.wrappingSubtract(1, ordering: .relaxed)
    header.giveBack(flags: flags)
}
