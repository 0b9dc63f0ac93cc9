import CRCUMapsShim
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Memory accounting for one ``PoolTag``.
///
/// Bytes are what was asked of the allocator for the tag: each block's size with its hidden
/// header (or the cache-line total for cache-aligned blocks). The allocator's own rounding
/// is not counted (a 40-byte request takes a 48-byte glibc chunk).
public struct EpochTagStatistics: Hashable, Sendable {
    /// The tag these figures belong to.
    public var tag: PoolTag
    /// Bytes allocated and not yet reclaimed (live plus awaiting reclamation).
    public var liveBytes: Int
    /// The bytes freed by their owner and waiting for a grace period: part of
    /// ``liveBytes`` for blocks. A retire list of references
    /// (``EpochRetireList/init(referencesWithTag:finalizer:flushesWhenIdle:)``: an
    /// `RCUDictionary`'s released values, the object map's references) counts 8 bytes here
    /// for each reference waiting, which ``liveBytes`` does not count (the list allocated
    /// nothing), so under such a tag `pendingBytes` may exceed `liveBytes`.
    public var pendingBytes: Int
    /// Allocations made under the tag since the process started.
    public var allocationCount: Int
    /// Allocations not yet reclaimed.
    public var liveAllocations: Int
    /// Bytes of blocks whose grace period is over that the tag's retire lists keep for their
    /// next allocations instead of freeing them
    /// (``EpochRetireList/init(blockSize:tag:finalizer:recycling:flushesWhenIdle:)``). Not part of
    /// ``liveBytes`` (they were reclaimed), but the process still holds them, until a list
    /// hands them out again or goes. Always the tag's own, also when ``isShared``.
    public var recycledBytes: Int = 0
    /// `true` when more than ``EpochMemory/maxTrackedTags`` tags are in use and this one
    /// shares the overflow counters with the other late tags: the figures are then totals
    /// of all of them. (Once 256 late tags are in use, a tag never used reads those totals
    /// too: the process no longer records which tags share them.)
    public var isShared: Bool = false

    /// Figures for `tag` as given (``EpochMemory/statistics(for:)`` makes the real ones;
    /// this is for comparing with them, say in tests).
    ///
    /// Concurrency: a plain value; any thread.
    public init(tag: PoolTag, liveBytes: Int = 0, pendingBytes: Int = 0,
                allocationCount: Int = 0, liveAllocations: Int = 0, recycledBytes: Int = 0) {
        self.tag = tag
        self.liveBytes = liveBytes
        self.pendingBytes = pendingBytes
        self.allocationCount = allocationCount
        self.liveAllocations = liveAllocations
        self.recycledBytes = recycledBytes
    }
}

/// One tag's counters; 64 bytes so that tags do not share cache lines.
struct TagCounters: ~Copyable {
    /// 0 when free, else `1 << 32 | tag`.
    let key = Atomic<UInt64>(0)
    let liveBytes = Atomic<Int>(0)
    let pendingBytes = Atomic<Int>(0)
    let allocations = Atomic<Int>(0)
    let liveAllocations = Atomic<Int>(0)
    let padding = (0 as UInt64, 0 as UInt64, 0 as UInt64)
}

/// The process-wide table of per-tag counters: open addressing, insert-only, lock-free.
/// The last slot collects every tag that finds the table full.
///
/// Each tag's counters come in ``stripes`` copies, one per thread stripe
/// (`rcumaps_thread_stripe`), so that threads allocating and retiring under one tag (every
/// writer of a map) do not all write one cache line: a writer updates its stripe's copy, a
/// reader of the figures sums the copies (a copy alone may go negative: a block allocated
/// by one thread is reclaimed by another). The tag's key lives in stripe 0.
final class TagTable: @unchecked Sendable {
    // @unchecked: `slots` is allocated once, never freed or moved, and every field in
    // it is an atomic.
    static let capacity = 1024
    /// Copies of the table (a power of two: the CPU count, at most 16).
    let stripes: Int
    /// Invariant: `capacity × stripes` counters, stripe-major (stripe `s` of slot `i` at
    /// `s × capacity + i`), zero-filled by `calloc` — all-zero bytes are a valid
    /// `TagCounters` (every field an atomic integer at 0), so pages of stripes no thread
    /// uses are never touched.
    let slots: UnsafeMutablePointer<TagCounters>
    /// The tags that found every slot taken and use the overflow slot, so that the
    /// statistics of a tag never used are zeros, not the overflow slot's (which they were
    /// once the table was full: found by review, 2026-12-05). An insert-only open-addressed
    /// set of ``overflowCapacity`` keys (`1 << 32 | tag`, 0 empty), lock-free: a lock taken
    /// on every such allocation was not safe across a fork. Tags past its capacity are not
    /// recorded, and read as never used.
    let overflowed: UnsafeMutablePointer<Atomic<UInt64>>
    static let overflowCapacity = 256
    /// Set once a tag could not be recorded among the overflowed ones (all 256 taken): from
    /// then on a tag not found is taken for one of those sharing the overflow slot.
    let overflowListFull = Atomic<Bool>(false)

    init() {
        let cpus = max(1, min(16, sysconf(Int32(_SC_NPROCESSORS_CONF))))
        stripes = 1 << (Int.bitWidth - (cpus - 1).leadingZeroBitCount)  // next power of two
        guard let memory = calloc(Self.capacity * stripes, MemoryLayout<TagCounters>.stride) else {
            _rcumapsTrap("RCUEpoch: out of memory for the statistics table")
        }
        slots = memory.bindMemory(to: TagCounters.self, capacity: Self.capacity * stripes)
        guard let keys = calloc(Self.overflowCapacity, MemoryLayout<Atomic<UInt64>>.stride) else {
            _rcumapsTrap("RCUEpoch: out of memory for the statistics table")
        }
        overflowed = keys.bindMemory(to: Atomic<UInt64>.self, capacity: Self.overflowCapacity)
    }

    /// Records `tag` among the overflowed tags (already there: one load).
    func noteOverflow(_ tag: PoolTag) {
        let key = UInt64(1) << 32 | UInt64(tag.rawValue)
        var index = Int(truncatingIfNeeded: (tag.rawValue &* 0x9E37_79B1) >> 16) % Self.overflowCapacity
        for _ in 0..<Self.overflowCapacity {
            let current = overflowed[index].load(ordering: .acquiring)
            if current == key { return }
            if current == 0 {
                let (exchanged, original) = overflowed[index].compareExchange(
                    expected: 0, desired: key, ordering: .acquiringAndReleasing)
                if exchanged || original == key { return }
            }
            index = (index + 1) % Self.overflowCapacity
        }
        overflowListFull.store(true, ordering: .releasing)
    }

    /// Whether `tag` was recorded by ``noteOverflow(_:)``.
    func hasOverflowed(_ tag: PoolTag) -> Bool {
        let key = UInt64(1) << 32 | UInt64(tag.rawValue)
        var index = Int(truncatingIfNeeded: (tag.rawValue &* 0x9E37_79B1) >> 16) % Self.overflowCapacity
        for _ in 0..<Self.overflowCapacity {
            let current = overflowed[index].load(ordering: .acquiring)
            if current == key { return true }
            if current == 0 { return false }
            index = (index + 1) % Self.overflowCapacity
        }
        return false
    }

    /// The counters of slot `index` the calling thread updates (its stripe's copy).
    @inline(__always)
    func counters(_ index: Int) -> UnsafeMutablePointer<TagCounters> {
        Self.counters(slots + index, stripes: stripes)
    }

    /// The calling thread's copy of the counters whose stripe-0 copy is `first`.
    @inline(__always)
    static func counters(_ first: UnsafeMutablePointer<TagCounters>, stripes: Int) -> UnsafeMutablePointer<TagCounters> {
        counters(first, stripes: stripes, threadStripe: Int(rcumaps_thread_stripe()))
    }

    /// The copy of thread stripe `threadStripe` (a caller that has the number already).
    @inline(__always)
    static func counters(_ first: UnsafeMutablePointer<TagCounters>, stripes: Int,
                         threadStripe: Int) -> UnsafeMutablePointer<TagCounters> {
        first + (threadStripe & (stripes &- 1)) &* capacity
    }

    /// The slot of `tag`, claiming a free one on first use.
    func slotIndex(for tag: PoolTag) -> Int {
        let key = UInt64(1) << 32 | UInt64(tag.rawValue)
        let probed = Self.capacity - 1  // slot `capacity - 1` is the overflow slot
        var index = Int(truncatingIfNeeded: (tag.rawValue &* 0x9E37_79B1) >> 16) % probed
        for _ in 0..<probed {
            let current = slots[index].key.load(ordering: .acquiring)
            if current == key { return index }
            if current == 0 {
                let (exchanged, original) = slots[index].key.compareExchange(
                    expected: 0, desired: key, ordering: .acquiringAndReleasing)
                if exchanged || original == key { return index }
            }
            index = index + 1 == probed ? 0 : index + 1
        }
        noteOverflow(tag)
        return Self.capacity - 1
    }



    /// The slot of `tag` without claiming one: nil for a tag never used (its probe reaches
    /// a free slot first; slots are never given back), the overflow slot for a tag used
    /// after every slot was taken — and for every tag not found once 256 such tags are
    /// recorded (the record is full: which tags share the slot is no longer known). For readers of statistics: claiming a slot for each tag
    /// asked about pushed the tags actually used into the shared counters (found by review).
    func existingSlotIndex(for tag: PoolTag) -> Int? {
        let key = UInt64(1) << 32 | UInt64(tag.rawValue)
        let probed = Self.capacity - 1
        var index = Int(truncatingIfNeeded: (tag.rawValue &* 0x9E37_79B1) >> 16) % probed
        for _ in 0..<probed {
            let current = slots[index].key.load(ordering: .acquiring)
            if current == key { return index }
            if current == 0 { return nil }
            index = index + 1 == probed ? 0 : index + 1
        }
        // Past 256 overflowed tags a tag's use is no longer recorded: one not found may be
        // one of them, and reads as sharing the overflow slot (it read as never used: zeros,
        // not shared; found by review, 2026-12-06, twenty-fourth session).
        return hasOverflowed(tag) || overflowListFull.load(ordering: .acquiring) ? Self.capacity - 1 : nil
    }

    /// The bytes awaiting reclamation under slot `index`: the sum of its copies.
    func pendingBytes(_ index: Int) -> Int {
        var total = 0
        for stripe in 0..<stripes { total &+= slots[stripe * Self.capacity + index].pendingBytes.load(ordering: .relaxed) }
        return total
    }

    func snapshot(_ index: Int, tag: PoolTag) -> EpochTagStatistics {
        var statistics = EpochTagStatistics(tag: tag)
        for stripe in 0..<stripes {
            let slot = slots + stripe * Self.capacity + index
            statistics.liveBytes &+= slot.pointee.liveBytes.load(ordering: .relaxed)
            statistics.pendingBytes &+= slot.pointee.pendingBytes.load(ordering: .relaxed)
            statistics.allocationCount &+= slot.pointee.allocations.load(ordering: .relaxed)
            statistics.liveAllocations &+= slot.pointee.liveAllocations.load(ordering: .relaxed)
        }
        statistics.isShared = index == Self.capacity - 1
        return statistics
    }
}

let tagTable = TagTable()
