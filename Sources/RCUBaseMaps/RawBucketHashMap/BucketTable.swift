import CRCUMapsShim
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The bucket array of a ``RawBucketHashMap``: layout, slot access, publication, retirement
/// and the reclamation of retired slots.
///
/// Bucket layout (`bucketStride` bytes, a multiple of 8; one cache line for 8- and 16-byte
/// keys with 8-byte values, except a per-CPU hash's table with keys over 8 bytes, whose
/// slots are replaced by new ones: two lines of four):
///
///     offset 0   control  Atomic<UInt64>  bytes 0..<slotsPerBucket: slot tags (0x80 set:
///                                         live; 0: free; 1...127: the reclaim stamp of
///                                         a retired slot, see below)
///                                         bits 48..<48+slotsPerBucket: slot retired
///                                         bit 56: a slot published or written in
///                                         place since the eviction sweep last passed
///                                         (LRU maps only; see `insertedBit`)
///                                         bits 57..<57+slotsPerBucket: slot recently used
///                                         (LRU maps only; see `RecencyClock`)
///     offset 8   overflow Atomic<UInt>    bits 0..<56: address of the next bucket of the
///                                         chain, or 0
///                                         bit 62: the chain's lock is held (first-level
///                                         buckets only; see `lockChain(_:)`)
///                                         bit 63: a writer sleeps on that lock
///     offset 16  slots    slotsPerBucket × [key padded to 8 | value padded to 8]
///
/// A slot is *free* (tag 0, not retired), *live* (tag set) or *retired* (unlinked, waiting
/// for a grace period before it is free again). Control words and links change only under
/// the chain's lock and are published with release stores; readers load them acquiring.
///
/// The chain's lock lives in its first bucket's overflow word, so a writer's lock, its
/// walk and its update of a one-bucket chain touch one cache line (a lock array beside
/// the buckets cost a second cache miss per write at a million entries). Readers mask the
/// lock bits off the link (``overflow(_:)``); writers change a first-level link with atomic
/// read-modify-writes that keep them.
///
/// An overflow bucket left with no live slot is unlinked at once by the writer that retired
/// its last one (readers may still be walking through it; its retired slots go with it),
/// and kept in a pool of spares (``SpareBuckets``) for the next chain that overflows once
/// the generation after the unlinking has run, or, with the pool full, freed after a grace
/// period. The rest stay until the table is destroyed, when every bucket is retired
/// through the epoch (memory stays bounded by the most entries, live and retired, a chain
/// ever held, and the pool's fixed capacity).
///
/// A retired slot stays in its bucket, stamped with the table's reclaim generation
/// (``retire(_:chain:)``), and the chain's own writers reuse it once one generation has
/// completed since (`fillFreeSlot` asks a `ReuseClock`, the rule of `isReusable`): no work
/// item, no second visit of the bucket. A generation is one ``EpochWorkItem``, posted one
/// after another while writers ask for them (``requestGenerations(through:)``), run by the
/// epoch layer's grace-period driver (`EpochWorkItem.scheduleOnGracePeriodDriver()`:
/// liburcu's call_rcu worker naps 10 ms between batches, which held a retired slot for
/// 20 ms or more and filled chains with retired slots under churn); the
/// stamp is the count of items posted, `P`, read by the retiring writer after it unlinked
/// the slot (an atomic exchange of the control word, a full barrier, then the load). Item
/// `P + 1` is posted after that read, so after the unlinking, and its grace period waits
/// for every reader that could have seen the slot live. Hence a slot stamped `P` is
/// reusable once item `P + 1` has run.
/// Stamps are `P mod 127 + 1` (a tag byte without its live bit): a stamp more than 126
/// generations old reads as a younger one, which only delays its reuse, and writers that
/// find such a slot ask for more generations. Readers never consider a stamped slot: a
/// lookup's tag always has its high bit set, so the tag compare never matches a stamp.
///
/// Overflow buckets are stamped the same way. (Until 2026-12-03 their retired slots went
/// back to the free pool through a reclaim list, a batch of 64 buckets per grace period,
/// and the empty ones were unlinked there. A replace must put its new pair in the old
/// pair's bucket or a later one (see `fillFreeSlot`), so a key that once moved to an
/// overflow bucket stayed in overflow buckets, and every replace of it chained a new one
/// while the list's batch waited: with 16-byte values, replaces ran at 2 M a second
/// against 30 M for 8-byte values replaced in place.)
///
/// **Per-CPU values** (a ``RawPerCPUHashMap``'s table, `perCPU` given): a slot's value is
/// one word that locates the slot's values, one per possible CPU, each `round_up(valueSize,
/// 8)` bytes, kept apart from the slot and from the other CPUs' values as Linux's per-CPU
/// allocator keeps them (a CPU's helper-mode writes touch lines no other CPU writes):
/// - a first-level slot's values are in ``cellBlocks``, one block per CPU (NUMA-placed on
///   that CPU's node where there are several), at the slot's index in the bucket array;
/// - an overflow bucket's slots' values follow the bucket in its allocation, one 64-byte
///   aligned group per CPU (``overflowCellStride`` apart), marked by ``overflowCellsBit``.
/// The word is set when the bucket is initialised and never changes while the bucket is in
/// a chain (writes fill the values, not the word), so a slot and its values have one
/// lifetime: retired together, reused together after the slot's generation, freed together
/// (an overflow bucket) or with the table. Writers fill a free slot's values before they
/// publish it (``scatterCells(_:into:)``); readers copy them out word by word
/// (``gatherCells(of:into:)``); the per-CPU map's helper mode reaches one CPU's value
/// through ``cells(of:)``. A replace publishes a new slot with its own values and retires
/// the old one, so a user-mode reader sees one entry's values, old or new, never a mix of
/// two entries.
///
/// Concurrency: the table is shared by its map and by a pending generation item, which
/// holds it weakly.
@usableFromInline
final class BucketTable: @unchecked Sendable {
    // @unchecked Sendable: see the type's documentation for which memory is touched how.

    /// How ``copyValue(from:into:)`` and ``write(key:value:into:)`` treat a slot's value.
    @usableFromInline enum ValueCopy: UInt8 {
        /// An 8-byte value: one atomic word.
        case word
        /// A value under 8 bytes, in one atomic word.
        case partialWord
        /// A value over 8 bytes, inline in the slot.
        case bytes
        /// A per-CPU hash's values, one per CPU, outside the slot (its word locates them).
        case perCPUCells
    }

    /// At most 6 slots: 6 tag bytes, then the retired bits (byte 6).
    static let maxSlotsPerBucket = 6
    @usableFromInline static let headerSize = 16
    static let retiredShift: UInt64 = 48
    /// The first *referenced* bit (LRU maps): set by a lookup that finds the slot's bit clear,
    /// cleared by the eviction sweep. Readers set it with an atomic OR; a writer's plain store
    /// of the control word under the lock may drop one set concurrently — a lost hint of
    /// recency, never a lost entry (the bits only choose eviction victims).
    @usableFromInline static let referencedShift: UInt64 = 57
    /// Every slot's referenced bit.
    static let referencedMask: UInt64 = 0x3F << referencedShift
    /// Bit 56 (LRU maps): a write published a slot of this bucket since the eviction sweep
    /// last passed it. Set with the publication (in the same store), cleared by the sweep. A
    /// forced eviction (``forcedVictim(inChainOf:)``) passes such a bucket over, so an entry
    /// just written outlives it as it outlives a plain one: by a second pass of the hand.
    static let insertedBit: UInt64 = 1 << 56
    @usableFromInline static let byteOnes: UInt64 = 0x0101_0101_0101_0101
    /// Most first-level buckets (as the eBPF-for-Windows table's bound on its bucket count).
    static let maxBucketCount = 1 << 22

    let keyStride: Int
    /// Offset of the value in a slot (the padded key size).
    @usableFromInline let valueOffset: Int
    @usableFromInline let slotStride: Int
    let slotsPerBucket: Int
    @usableFromInline let bucketStride: Int
    @usableFromInline let bucketCount: Int
    /// `0x80` in the tag byte of every slot.
    @usableFromInline let liveTagBits: UInt64
    let keySize: Int
    @usableFromInline let valueSize: Int
    /// How a slot's value is copied out and written (see ``ValueCopy``).
    @usableFromInline let valueCopy: ValueCopy
    /// Whether values are one atomic word, replaced in place: at most 8 bytes, and not a
    /// per-CPU hash's (whose slot word locates its values).
    @usableFromInline let valueIsOneWord: Bool
    /// A per-CPU hash's first-level values (see "Per-CPU values" in the type's notes); nil
    /// for every other map.
    let cellBlocks: PerCPUBlocks?
    /// Per-CPU values: values per slot (the possible CPUs), bytes each (`round_up(valueSize,
    /// 8)` of the per-CPU map), and the bytes from one CPU's value of a slot to the next CPU's
    /// for a first-level slot (`cellBlocks`' stride) and for a slot of an overflow bucket.
    /// Zero for other maps.
    @usableFromInline let cellCPUs: Int
    @usableFromInline let cellWidth: Int
    @usableFromInline let cellStride: Int
    @usableFromInline let overflowCellStride: Int
    /// Bytes of an overflow bucket's allocation: the bucket, and for per-CPU values its
    /// slots' values (`cellCPUs` groups of `overflowCellStride` bytes, from the first 64-byte
    /// boundary after the bucket).
    let overflowAllocationSize: Int
    let tag: PoolTag
    /// Invariant: `bucketCount × bucketStride` bytes, 64-byte aligned; every bucket's header
    /// initialised as two atomics.
    @usableFromInline let base: UnsafeMutableRawPointer

    /// Allocates and clears the buckets for `maxEntries` entries (at two-thirds or three-quarters load).
    /// With `perCPU`, `valueSize` is ignored: each slot stores the word that locates its
    /// per-CPU values (see "Per-CPU values" in the type's notes).
    init(keySize: Int, valueSize: Int, maxEntries: Int, tag: PoolTag, bucketCount requested: Int? = nil,
         perCPU: PerCPUValueLayout? = nil) throws(MapError) {
        self.keySize = keySize
        let valueSize = perCPU == nil ? valueSize : 8
        self.valueSize = valueSize
        valueCopy = perCPU != nil ? .perCPUCells : valueSize == 8 ? .word : valueSize < 8 ? .partialWord : .bytes
        valueIsOneWord = perCPU == nil && valueSize <= 8
        self.tag = tag
        keyStride = roundUp8(keySize)
        valueOffset = keyStride
        slotStride = keyStride + roundUp8(valueSize)
        // As many slots as fill one cache line, at least 3 (small pairs), else 6 (several
        // lines). Two slots to a line are too few when a replace takes a new slot (values
        // over 8 bytes): a bucket whose two keys are live sends every replace of either to
        // an overflow bucket, and a key in an overflow bucket never comes back (see
        // `fillFreeSlot`). With 16-byte values, a third of the keys of a map at a third of
        // its capacity lived in overflow buckets, each replace of one chaining a cold
        // bucket; such pairs take two lines, four to a bucket, instead.
        let perLine = (64 - Self.headerSize) / slotStride
        // (A per-CPU hash's word is not replaced in place: every replace takes a new slot.)
        let oneLine = perLine >= 3 || (perLine == 2 && valueIsOneWord)
        slotsPerBucket = oneLine ? min(perLine, Self.maxSlotsPerBucket)
            : perLine == 2 ? (128 - Self.headerSize) / slotStride : Self.maxSlotsPerBucket
        bucketStride = oneLine ? 64 : perLine == 2 ? 128 : Self.headerSize + slotsPerBucket * slotStride
        // Load at maxEntries: 2/3 for pairs that share a cache line (lookups stay in one line),
        // 3/4 for larger pairs, whose empty slots would otherwise dominate the memory.
        let (loadNumerator, loadDenominator) = oneLine ? (2, 3) : (3, 4)
        let (scaled, overflow) = maxEntries.multipliedReportingOverflow(by: loadDenominator)
        let perBucket = loadNumerator * slotsPerBucket
        let wanted = overflow ? Self.maxBucketCount : (scaled + perBucket - 1) / perBucket
        bucketCount = max(1, min(requested ?? wanted, Self.maxBucketCount))
        var bits: UInt64 = 0
        for slot in 0..<slotsPerBucket { bits |= 0x80 << UInt64(8 * slot) }
        liveTagBits = bits
        if let perCPU {
            cellCPUs = perCPU.cpus
            cellWidth = perCPU.width
            // One block per CPU of every first-level slot's value, slot-major within it
            // (allocated first: a failure below frees it with its last reference).
            let (slots, overflow) = (bucketCount * slotsPerBucket).multipliedReportingOverflow(by: perCPU.width)
            guard !overflow else {
                throw MapError.noMemory.with(reason: "a per-CPU hash's values of \(perCPU.width) bytes do not fit in memory")
            }
            let cells = try PerCPUBlocks(blockBytes: slots, cpuCount: perCPU.cpus, placingOnNodes: perCPU.placingOnNodes,
                                         nodeOfCPU: perCPU.nodeOfCPU, maxRuns: perCPU.maxRuns, tag: tag,
                                         what: "a per-CPU hash's values")
            cellBlocks = cells
            cellStride = cells.cpuStride
            overflowCellStride = (slotsPerBucket * perCPU.width + 63) & ~63
            overflowAllocationSize = bucketStride + 63 + perCPU.cpus * overflowCellStride
        } else {
            cellBlocks = nil
            cellCPUs = 0
            cellWidth = 0
            cellStride = 0
            overflowCellStride = 0
            overflowAllocationSize = bucketStride
        }
        let size = bucketCount * bucketStride
        guard size <= EpochMemory.maxBlockSize,
              let block = EpochMemory.allocateCacheAligned(byteCount: size, tag: tag) else {
            throw MapError.noMemory.with(reason: "no memory for \(bucketCount) buckets of \(bucketStride) bytes")
        }
        // Before the first touch below: a big table on huge pages misses the TLB far less.
        rcumaps_advise_huge_pages(block, size)
        base = block
        // (A per-CPU hash's overflow buckets carry their values: its values count too.)
        overflowThrottleBytes = max(Self.overflowThrottleFloor, size + (cellBlocks?.size ?? 0))
        spares = SpareBuckets(bucketCount: bucketCount)
        for index in 0..<bucketCount {
            Self.initialize(base + index * bucketStride, size: bucketStride)
            if let cellBlocks { setCellWords(of: base + index * bucketStride, firstLevelIndex: index, blocks: cellBlocks) }
        }
    }

    deinit {
        // The map is gone, but a reader may still be reading a
        // value it looked up in place: the map's last reference can be dropped inside the
        // very section that holds such a pointer (on this thread or another). So the
        // buckets go back to the allocator only after a grace period, like every other
        // retired block. (Overflow buckets unlinked earlier were retired when unlinked, or
        // wait in the spares, whose deinit frees them the same way.)
        for index in 0..<bucketCount {
            var next = overflow(bucket(index))
            while let current = next {
                next = overflow(current)
                EpochMemory.free(current)
            }
        }
        EpochMemory.freeCacheAligned(base)
    }

    /// Clears a bucket: header atomics initialised to 0, slots zeroed.
    static func initialize(_ bucket: UnsafeMutableRawPointer, size: Int) {
        bucket.bindMemory(to: Atomic<UInt64>.self, capacity: 1).initialize(to: Atomic(0))
        (bucket + 8).bindMemory(to: Atomic<UInt>.self, capacity: 1).initialize(to: Atomic(0))
        (bucket + headerSize).initializeMemory(as: UInt8.self, repeating: 0, count: size - headerSize)
    }

    // MARK: Addressing

    /// The live tag for `hash`: its low 7 bits with the high bit set (never 0). The bucket
    /// index uses the high bits, so the tag adds 7 independent bits of filtering.
    @inlinable @inline(__always)
    static func tag(_ hash: UInt64) -> UInt64 { 0x80 | (hash & 0x7F) }

    /// Bucket index of `hash`: the high half of `hash × bucketCount` (no power of two needed).
    @inlinable @inline(__always)
    func bucketIndex(_ hash: UInt64) -> Int {
        Int(truncatingIfNeeded: hash.multipliedFullWidth(by: UInt64(truncatingIfNeeded: bucketCount)).high)
    }

    @inlinable @inline(__always)
    func bucket(_ index: Int) -> UnsafeMutableRawPointer { base + index &* bucketStride }

    @inlinable @inline(__always)
    func control(_ bucket: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        bucket.assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// A bucket's control word (acquiring: the slots it shows live are visible with it).
    @inlinable @inline(__always)
    func loadControl(_ bucket: UnsafeMutableRawPointer) -> UInt64 {
        control(bucket).pointee.load(ordering: .acquiring)
    }

    @inlinable @inline(__always)
    func overflowLink(_ bucket: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt>> {
        (bucket + 8).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// The address bits of an overflow word (user-space addresses fit in 56 bits, also
    /// with 5-level paging); the bits above hold the chain's lock.
    @usableFromInline static let linkAddressMask: UInt = 1 << 56 - 1

    /// The next bucket of the chain (acquiring: its contents are published with the link).
    @inlinable @inline(__always)
    func overflow(_ bucket: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: overflowLink(bucket).pointee.load(ordering: .acquiring) & Self.linkAddressMask)
    }

    @inlinable @inline(__always)
    func slot(_ bucket: UnsafeMutableRawPointer, _ slot: Int) -> UnsafeMutableRawPointer {
        bucket + Self.headerSize + slot &* slotStride
    }

    /// The value bytes of a place (borrowed: valid while its slot cannot be reused).
    func value(of place: RawBucketHashMap.Place, count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: slot(place.bucketPointer, place.slot) + valueOffset, count: count)
    }

    @inline(__always)
    static func tagByte(_ control: UInt64, _ slot: Int) -> UInt64 { (control &>> UInt64(8 * slot)) & 0xFF }

    @inline(__always)
    static func isLive(_ control: UInt64, _ slot: Int) -> Bool { tagByte(control, slot) & 0x80 != 0 }

    @inline(__always)
    static func isRetired(_ control: UInt64, _ slot: Int) -> Bool {
        control & (1 << (retiredShift + UInt64(slot))) != 0
    }

    /// The slots of a bucket whose tag may equal the tag repeated in every byte of `pattern`
    /// (``tag(_:)`` times ``byteOnes``), as a mask from which ``matchedSlot(_:)`` takes the
    /// lowest and `mask &= mask &- 1` drops it. Only live slots can match: free and retired
    /// ones, and bytes 6 and 7 of the control word, have their high bit clear, a tag set.
    ///
    /// On x86-64 the match is exact, one byte compare of all eight bytes at once (SSE2,
    /// `rcumaps_bucket_tag_matches`), bit `slot` per match: about 8 instructions fewer a
    /// lookup than the test below, which a million-entry lookup's speed follows (see
    /// docs/performance.md, 2026-12-06, thirtieth session). Elsewhere it is a SWAR zero-byte
    /// test on `control ^ pattern`, a byte's high bit per match: a borrow can flag a byte
    /// above a true match, but only a live one (a flagged byte's high bit equals the
    /// tag's), and the key compare rejects it.
    @inlinable @inline(__always)
    func tagMatches(_ control: UInt64, pattern: UInt64) -> UInt64 {
        #if arch(x86_64)
        return UInt64(rcumaps_bucket_tag_matches(control, pattern))
        #else
        let difference = control ^ pattern
        return (difference &- Self.byteOnes) & ~difference & liveTagBits
        #endif
    }

    /// The lowest slot of a nonzero ``tagMatches(_:pattern:)`` mask.
    @inlinable @inline(__always)
    static func matchedSlot(_ matches: UInt64) -> Int {
        #if arch(x86_64)
        return matches.trailingZeroBitCount
        #else
        return matches.trailingZeroBitCount &>> 3
        #endif
    }

    /// The lowest free slot of a bucket whose control word is `control` (tag byte 0 and
    /// not retired), or nil.
    @inline(__always)
    func firstFreeSlot(_ control: UInt64) -> Int? { Self.firstFreeSlot(control, liveTagBits: liveTagBits) }

    /// ``firstFreeSlot(_:)`` for a bucket whose slot bytes are those of `liveTagBits`.
    @inline(__always)
    static func firstFreeSlot(_ control: UInt64, liveTagBits: UInt64) -> Int? {
        // A byte's high bit is set exactly when the byte is 0 (no borrows: each byte's low
        // seven bits plus 0x7F cannot carry out of the byte).
        let low = byteOnes &* 0x7F
        var zero = ~(((control & low) &+ low) | control | low) & liveTagBits
        while zero != 0 {
            let slot = zero.trailingZeroBitCount &>> 3
            if control & (1 &<< (retiredShift &+ UInt64(slot))) == 0 { return slot }
            zero &= zero &- 1
        }
        return nil
    }

    /// One bit per retired slot (bit `slot`) of a bucket whose control word is `control`.
    @inline(__always)
    func retiredSlots(_ control: UInt64) -> UInt64 {
        (control &>> Self.retiredShift) & (1 &<< UInt64(slotsPerBucket) &- 1)
    }

    /// Whether the chain of first-level bucket `index` is one bucket with no live slot, read
    /// without its lock: a snapshot, true at the moment of the reads (a key in an overflow
    /// bucket keeps the link set, and a replace publishes its new slot before it retires the
    /// old one, so a key that is in the chain throughout always shows).
    @inline(__always)
    func isEmptySingleBucketChain(_ index: Int) -> Bool {
        let first = bucket(index)
        return loadControl(first) & liveTagBits == 0
            && overflowLink(first).pointee.load(ordering: .acquiring) & Self.linkAddressMask == 0
    }

    /// Calls `body` with each bucket of the chain starting at bucket `index`.
    @inline(__always)
    func forEachBucket(inChainOf index: Int, _ body: (UnsafeMutableRawPointer) -> Void) {
        var current: UnsafeMutableRawPointer? = bucket(index)
        while let bucket = current {
            body(bucket)
            current = overflow(bucket)
        }
    }

    // MARK: Chain locks

    /// The lock bit of a first-level bucket's overflow word.
    static let chainLockedBit: UInt = 1 << 62
    /// Set by a writer that sleeps on the lock; its holder's release then wakes one.
    static let chainWaitersBit: UInt = 1 << 63

    /// Runs `body` holding the lock of the chain of first-level bucket `index`.
    @inline(__always)
    func withChainLock<Result>(_ index: Int, _ body: () throws(Never) -> Result) -> Result {
        lockChain(index)
        defer { unlockChain(index) }
        return body()
    }

    /// Takes the lock of chain `index`: one atomic OR on the first bucket's overflow word
    /// when it is free (the line the writer reads next). As ``FutexLock``: a waiter spins a
    /// little, then sleeps on the futex of the word's upper half.
    /// Not reentrant; a holder must not wait for a grace period, nor register the thread
    /// with liburcu (a first section or epoch free): a registration waits at the fork gate,
    /// which a fork keeps closed while it waits for sections, some of which may wait for
    /// this lock — a deadlock (found by review, 2026-12-05; see ``unlinkOverflow``).
    @inline(__always)
    func lockChain(_ index: Int) {
        let word = overflowLink(bucket(index))
        if word.pointee.bitwiseOr(Self.chainLockedBit, ordering: .acquiring).oldValue & Self.chainLockedBit != 0 {
            lockChainContended(word)
        }
    }

    /// Takes the lock of chain `index` if it is free; `false` (nothing changed) if it is held.
    @inline(__always)
    func tryLockChain(_ index: Int) -> Bool {
        overflowLink(bucket(index)).pointee.bitwiseOr(Self.chainLockedBit, ordering: .acquiring).oldValue
            & Self.chainLockedBit == 0
    }

    /// Releases the lock of chain `index`, waking one sleeper if any marked itself.
    @inline(__always)
    func unlockChain(_ index: Int) {
        let word = overflowLink(bucket(index))
        let old = word.pointee.bitwiseAnd(~(Self.chainLockedBit | Self.chainWaitersBit), ordering: .releasing).oldValue
        if old & Self.chainWaitersBit != 0 { rcumaps_futex_wake(Self.futexHalf(word), 1) }
    }

    /// The upper 32 bits of an overflow word (little-endian: at byte offset 4), which hold
    /// the lock bits: the word a sleeper waits on.
    @inline(__always)
    static func futexHalf(_ word: UnsafeMutablePointer<Atomic<UInt>>) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(word) + 4
    }

    @inline(never)
    func lockChainContended(_ word: UnsafeMutablePointer<Atomic<UInt>>) {
        for _ in 0..<FutexLock.spins {
            if word.pointee.load(ordering: .relaxed) & Self.chainLockedBit == 0,
               word.pointee.bitwiseOr(Self.chainLockedBit, ordering: .acquiring).oldValue & Self.chainLockedBit == 0 {
                return
            }
            rcumaps_cpu_relax()
        }
        // Mark the lock contended and sleep until it is free; taking it here leaves the
        // waiters bit set, so its release wakes the next sleeper (at worst one spurious wake).
        while true {
            let old = word.pointee.bitwiseOr(Self.chainLockedBit | Self.chainWaitersBit, ordering: .acquiring).oldValue
            if old & Self.chainLockedBit == 0 { return }
            // Sleeps only while the upper half is unchanged (still locked, waiters marked).
            let upper = UInt32(truncatingIfNeeded: (old | Self.chainLockedBit | Self.chainWaitersBit) >> 32)
            rcumaps_futex_wait(Self.futexHalf(word), upper)
        }
    }

    // MARK: Values

    @inlinable @inline(__always)
    func valueWord(_ slot: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (slot + valueOffset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Copies the value of a live (or retired) slot out. A one-word value is loaded
    /// atomically (it may be replaced in place); a larger one is copied by
    /// ``copyValueBytes(_:into:)`` (written in place only by a `BPF_F_LOCK` update, under
    /// the value's lock word); a per-CPU hash's values are gathered by
    /// ``gatherCells(of:into:)`` (helper mode writes one CPU's value in place).
    @inlinable @inline(__always)
    func copyValue(from slot: UnsafeMutableRawPointer, into destination: UnsafeMutableRawPointer) {
        if valueCopy == .word {
            // Acquiring: a value replaced in place (an exchange) publishes what it points to.
            destination.storeBytes(of: valueWord(slot).pointee.load(ordering: .acquiring), as: UInt64.self)
        } else if valueCopy == .partialWord {
            var bits = valueWord(slot).pointee.load(ordering: .acquiring)
            withUnsafeBytes(of: &bits) { destination.copyMemory(from: $0.baseAddress!, byteCount: valueSize) }
        } else if valueCopy == .bytes {
            copyValueBytes(slot + valueOffset, into: destination)
        } else {
            gatherCells(of: slot, into: destination)
        }
    }

    /// Copies a value wider than a word (`valueSize` bytes at `source`, a slot's value) out
    /// with `memcpy`, as Linux's `copy_map_value` does: the map writes such values in place
    /// only under their lock word (`BPF_F_LOCK`), and a reader that does not take it may see
    /// a mix of the old and the new bytes, as on Linux. (Per-CPU values are gathered word by
    /// word instead: ``gatherCells(of:into:)``.)
    @inlinable @inline(__always)
    func copyValueBytes(_ source: UnsafeRawPointer, into destination: UnsafeMutableRawPointer) {
        destination.copyMemory(from: source, byteCount: valueSize)
    }

    // MARK: Per-CPU values

    /// Where a per-CPU hash's slot keeps its values: CPU slot `c`'s value is the `cellWidth`
    /// bytes at `base + c × cpuStride`. Read from the slot's word, set when its bucket was
    /// initialised and never changed while the bucket is in a chain (see "Per-CPU values"
    /// in the type's notes), so valid wherever the slot is: for a live or retired slot
    /// found in a section, until the section ends.
    @inlinable @inline(__always)
    func cells(of slot: UnsafeMutableRawPointer) -> (base: UnsafeMutableRawPointer, cpuStride: Int) {
        let word = (slot + valueOffset).load(as: UInt.self)
        let stride = word & Self.overflowCellsBit == 0 ? cellStride : overflowCellStride
        return (UnsafeMutableRawPointer(bitPattern: word & ~Self.overflowCellsBit).unsafelyUnwrapped, stride)
    }

    /// Byte 0 of CPU slot `cpu`'s value of a per-CPU slot, less `cpu × cellWidth`: the address
    /// of byte `offset` of the user-mode layout, for offsets within that CPU's value (the
    /// per-CPU hash's helper-mode write of one CPU's value). Not inlined, for the reason
    /// ``scatterCells(_:into:)`` gives.
    @inline(never)
    func cellBytes(of slot: UnsafeMutableRawPointer, cpu: Int) -> UnsafeMutableRawPointer {
        let (base, stride) = cells(of: slot)
        return base + cpu &* stride - cpu &* cellWidth
    }

    /// Set in a slot's per-CPU word when its values are an overflow bucket's (``overflowCellStride``
    /// apart); clear for a first-level slot's (``cellStride`` apart, in ``cellBlocks``).
    @usableFromInline static let overflowCellsBit: UInt = 1 << 63

    /// Copies a per-CPU slot's values out in the user-mode layout (CPU after CPU,
    /// `cellWidth` bytes each), 8 bytes at a time with atomic loads, as Linux's
    /// `bpf_long_memcpy` copies them: helper mode changes those words in place, and `memcpy`
    /// gives no word its atomicity (glibc copies large blocks with `rep movsb`), so a counter
    /// could be read torn (found by review, when the values were inline). Not inlined: the
    /// other maps' copies (``copyValue(from:into:)``) keep their code small.
    @usableFromInline @inline(never)
    func gatherCells(of slot: UnsafeMutableRawPointer, into destination: UnsafeMutableRawPointer) {
        let (base, stride) = cells(of: slot)
        var cpu = 0
        while cpu < cellCPUs {
            // Invariant: each value starts 8-byte aligned (blocks and groups are 64-aligned,
            // `cellWidth` a multiple of 8) and is whole words, bound to Atomic<UInt64>.
            let source = base + cpu &* stride, target = destination + cpu &* cellWidth
            var offset = 0
            while offset < cellWidth {
                let word = (source + offset).assumingMemoryBound(to: Atomic<UInt64>.self)
                target.storeBytes(of: word.pointee.load(ordering: .relaxed), toByteOffset: offset, as: UInt64.self)
                offset &+= 8
            }
            cpu &+= 1
        }
    }

    /// Writes a per-CPU slot's values from the user-mode layout. Caller holds the chain's
    /// lock, and the slot is free (not yet published: no reader can reach its values). Not
    /// inlined into ``write(key:value:into:)``: inlined, its loop cost the LRU hash's general
    /// update 16 instructions of register pressure.
    @inline(never)
    func scatterCells(_ value: UnsafeRawPointer, into slot: UnsafeMutableRawPointer) {
        let (base, stride) = cells(of: slot)
        for cpu in 0..<cellCPUs {
            (base + cpu &* stride).copyMemory(from: value + cpu &* cellWidth, byteCount: cellWidth)
        }
    }

    /// Points every slot of a bucket just initialised at its values: a first-level bucket's
    /// at its slots' places in `blocks`, an overflow bucket's at the groups that follow it in
    /// its allocation.
    func setCellWords(of bucket: UnsafeMutableRawPointer, firstLevelIndex: Int?, blocks: PerCPUBlocks?) {
        for slot in 0..<slotsPerBucket {
            let word: UInt
            if let firstLevelIndex, let blocks {
                word = UInt(bitPattern: blocks.base + (firstLevelIndex * slotsPerBucket + slot) * cellWidth)
            } else {
                let groups = UInt(bitPattern: bucket + bucketStride + 63) & ~63
                word = (groups + UInt(slot * cellWidth)) | Self.overflowCellsBit
            }
            (self.slot(bucket, slot) + valueOffset).storeBytes(of: word, as: UInt.self)
        }
    }

    /// Replaces a one-word value in place; returns the bits it displaced. The bits in
    /// `keeping` (a lock word's) keep their stored value.
    @inline(__always)
    func exchangeValue(at place: RawBucketHashMap.Place, with value: UnsafeRawPointer, keeping: UInt64 = 0) -> UInt64 {
        let bits = oneWord(value)
        let word = valueWord(slot(place.bucketPointer, place.slot))
        guard keeping != 0 else { return word.pointee.exchange(bits, ordering: .acquiringAndReleasing) }
        var old = word.pointee.load(ordering: .relaxed)
        while true {
            let (exchanged, original) = word.pointee.compareExchange(
                expected: old, desired: (bits & ~keeping) | (old & keeping), ordering: .acquiringAndReleasing)
            if exchanged { return old }
            old = original
        }
    }

    /// The bits of a one-word value outside the bytes `slice` (which lies in `0..<8`, in
    /// memory order).
    static func bitsOutside(_ slice: Range<Int>) -> UInt64 { ~WordBytes.mask(slice) }

    /// Whether a retired slot of the chain of bucket `index` still holds `key`: the key was
    /// deleted or replaced there within the last grace period or so (until the first
    /// generation item posted after it has run; an `Epoch.barrier()` usually waits for that
    /// item, but not when another writer had counted it posted and not yet queued it as the
    /// barrier began, so a test may not rely on it).
    ///
    /// Tries the chain's lock: a retired slot that has become reusable may be refilled by a
    /// writer at any moment, and its key bytes are only stable under that lock. It never
    /// waits for it (a provider callback that runs under this very lock may ask for the
    /// next key): a busy chain answers `false`, and the pass restarts, as Linux's does. An
    /// overflow bucket that lost its last live slot has left the chain with its retired
    /// slots: a key retired there answers `false` too.
    func recentlyRetired(_ key: UnsafeRawPointer, inChainOf index: Int) -> Bool {
        guard tryLockChain(index) else { return false }
        defer { unlockChain(index) }
        var found = false
        forEachBucket(inChainOf: index) { bucket in
            guard !found else { return }
            let control = loadControl(bucket)
            for slot in 0..<slotsPerBucket where Self.isRetired(control, slot)
                && !isReusable(control, slot: slot, generations: 1)
                && keysEqual(self.slot(bucket, slot), key, count: keySize) {
                found = true
                return
            }
        }
        return found
    }

    // MARK: Writers (caller holds the chain's lock)

    /// A value of at most 8 bytes as the word it is stored as (zero above its bytes); an
    /// 8-byte value is one unaligned load, not a call to `memcpy`.
    @inline(__always)
    func oneWord(_ value: UnsafeRawPointer) -> UInt64 {
        if valueSize == 8 { return value.loadUnaligned(as: UInt64.self) }
        var bits: UInt64 = 0
        withUnsafeMutableBytes(of: &bits) { $0.baseAddress!.copyMemory(from: value, byteCount: valueSize) }
        return bits
    }

    /// Writes a pair into a free slot (not yet visible to readers) and zeroes its padding.
    /// Inlined: called, its frame and stack guard were half its 36 instructions for an
    /// 8-byte pair.
    @inline(__always)
    func write(key: UnsafeRawPointer, value: UnsafeRawPointer, into slot: UnsafeMutableRawPointer) {
        if keySize == 8 {
            slot.storeBytes(of: key.loadUnaligned(as: UInt64.self), as: UInt64.self)
        } else {
            slot.copyMemory(from: key, byteCount: keySize)
            if keyStride > keySize { (slot + keySize).initializeMemory(as: UInt8.self, repeating: 0, count: keyStride - keySize) }
        }
        if valueIsOneWord {
            // The word readers load atomically and writers exchange in place.
            valueWord(slot).pointee.store(oneWord(value), ordering: .relaxed)
            return
        }
        if valueCopy == .perCPUCells { return scatterCells(value, into: slot) }
        let valueStart = slot + valueOffset
        valueStart.copyMemory(from: value, byteCount: valueSize)
        let padding = slotStride - valueOffset - valueSize
        if padding > 0 { (valueStart + valueSize).initializeMemory(as: UInt8.self, repeating: 0, count: padding) }
    }

    /// Makes a written slot live under `tag` (release: its pair is visible with it). An LRU
    /// map publishes it `referenced` (a new entry outlives the eviction hand's next pass),
    /// marking its bucket ``insertedBit`` (it outlives a forced eviction's next pass too); a
    /// stale referenced bit a late reader left on the reused slot is cleared otherwise. A
    /// reused retired slot loses its stamp and retired bit in the same store.
    ///
    /// Masking shifts (`&<<`) here and in ``retire(_:chain:)``: every shift is below 64
    /// (a slot is below `maxSlotsPerBucket`), and Swift's `<<` tested each for overshift
    /// (about 25 instructions a publish, 15 a retire). Inlined into every caller (the
    /// general update called it).
    @inline(__always)
    func publish(_ place: RawBucketHashMap.Place, tag: UInt64, referenced: Bool = false) {
        let word = control(place.bucketPointer)
        let slot = UInt64(truncatingIfNeeded: place.slot)
        let bit: UInt64 = 1 &<< (Self.referencedShift &+ slot)
        let clear = bit | 0xFF &<< (8 &* slot) | 1 &<< (Self.retiredShift &+ slot)
        let current = word.pointee.load(ordering: .acquiring) & ~clear
        word.pointee.store(current | tag &<< (8 &* slot) | (referenced ? bit | Self.insertedBit : 0), ordering: .releasing)
    }

    /// Unlinks a live slot of chain `index` and marks it retired. Caller holds the chain's
    /// lock (a section is not needed: the stamp is read after the unlinking).
    ///
    /// The slot stays in its bucket, stamped with the reclaim generation, for the chain's
    /// writers to reuse once the next generation has run. An overflow bucket left with no
    /// live slot is unlinked from the chain instead and kept as a spare, or freed after a
    /// grace period.
    ///
    /// - Parameter keepingEmptyBucket: an overflow bucket left with no live slot stays in
    ///   the chain (its slot stamped as any other) instead of leaving it. An LRU eviction from
    ///   the chain its writer is about to fill passes true, so that the free slot the writer
    ///   found before evicting stays in the chain; the writer then calls
    ///   ``unlinkIfEmpty(_:chain:)``.
    /// - Returns: whether the bucket was kept in the chain with no live slot.
    @inline(__always) @discardableResult
    func retire(_ place: RawBucketHashMap.Place, chain index: Int, keepingEmptyBucket: Bool = false) -> Bool {
        let word = control(place.bucketPointer)
        let current = word.pointee.load(ordering: .acquiring)
        let shift = 8 &* UInt64(truncatingIfNeeded: place.slot)
        // Unlink first (tag cleared, retired bit set), with a full barrier; only then read
        // the count of generations posted. An item posted after that read is posted after
        // the unlinking, so its grace period covers every reader that saw the slot live:
        // the slot is reusable once the next item has run. (Read before the unlinking, the
        // count could be one an item posted in between already included, and reuse had to
        // wait for two items.) No reader matches the unstamped tag byte meanwhile, and only
        // a holder of this lock reads the stamp.
        let unlinked = current & ~(0xFF &<< shift) | 1 &<< (Self.retiredShift &+ UInt64(truncatingIfNeeded: place.slot))
        _ = word.pointee.exchange(unlinked, ordering: .sequentiallyConsistent)
        let leftEmpty = unlinked & liveTagBits == 0 && !isFirstLevel(place.bucketPointer)
        if leftEmpty, !keepingEmptyBucket {
            // Nothing live is left: the bucket leaves the chain, and its retired slots with
            // it (freed a grace period from now, so no stamp is needed).
            unlinkOverflow(place.bucketPointer, chain: index)
            return false
        }
        let posted = generationsPosted.load(ordering: .sequentiallyConsistent)
        word.pointee.store(unlinked | Self.stamp(posted) &<< shift, ordering: .releasing)
        requestGenerations(through: posted &+ 1)
        return leftEmpty
    }

    /// Unlinks overflow bucket `bucket` of chain `index` if it has no live slot (see
    /// ``retire(_:chain:keepingEmptyBucket:)``). Caller holds the chain's lock.
    func unlinkIfEmpty(_ bucket: UnsafeMutableRawPointer, chain index: Int) {
        guard loadControl(bucket) & liveTagBits == 0 else { return }
        unlinkOverflow(bucket, chain: index)
    }

    /// Gives back an overflow bucket from ``allocateOverflowBucket()`` that was never
    /// linked: to the spares (no reader can have seen it; kept as posted with generation 0,
    /// so it is handed out again once any generation item has run), or freed.
    func discardUnlinkedOverflowBucket(_ bucket: UnsafeMutableRawPointer) {
        // Never linked, or a spare whose generation has run: no reader can reach it, and
        // it goes at once (an epoch free would register an unregistered thread here, under
        // a chain lock: see `lockChain`).
        if spares?.keep(bucket, posted: 0) != true {
            EpochMemory.freeUnreachable(bucket)
        }
    }

    /// Unlinks overflow bucket `empty` from chain `index`, keeps it as a spare or frees it
    /// after a grace period (readers may still be walking through it: its link stays as it
    /// was until it is reused, so they go on to the rest of the chain). Caller holds the
    /// chain's lock.
    private func unlinkOverflow(_ empty: UnsafeMutableRawPointer, chain index: Int) {
        var previous = bucket(index)
        while let next = overflow(previous) {
            if next == empty {
                // The address bits of `previous` are `empty`'s: an XOR turns them into the
                // next bucket's (or 0) and keeps the lock bits of a first-level bucket.
                // Release: `previous` is still published.
                // Sequentially consistent: a full barrier before the count of generations
                // is read below, as in `retire(_:chain:)`.
                let after = overflowLink(empty).pointee.load(ordering: .acquiring) & Self.linkAddressMask
                overflowLink(previous).pointee.bitwiseXor(UInt(bitPattern: empty) ^ after, ordering: .sequentiallyConsistent)
                // Kept for the next overflow bucket a chain needs, once the generation after
                // this count has run (see SpareBuckets); freed if the pool has no room.
                let posted = generationsPosted.load(ordering: .sequentiallyConsistent)
                // Optional chaining borrows the pool; `if let` retained and released it
                // around the call, writes to its header that every thread's unlinks shared.
                if spares?.keep(empty, posted: posted) == true {
                    requestGenerations(through: posted &+ 1)
                } else {
                    freeAfterGracePeriod(empty)
                }
                return
            }
            previous = next
        }
        preconditionFailure("an overflow bucket that is not in its chain")
    }

    /// Frees an unlinked overflow bucket after a grace period, from under a chain lock: an
    /// epoch free on a registered thread; on one liburcu does not know yet, through the
    /// grace-period driver (registered; no allocation) — an epoch free would register the
    /// thread here, at the fork gate, holding the lock, and a fork waiting for sections that
    /// wait for this lock never finished (found by review, 2026-12-05).
    private func freeAfterGracePeriod(_ empty: UnsafeMutableRawPointer) {
        if rcumaps_is_registered() != 0 {
            EpochMemory.free(empty)
        } else {
            EpochMemory.freeOnGracePeriodDriver(empty)
        }
    }

    /// A new, cleared overflow bucket: a spare whose generation has run, or a new block;
    /// nil when out of memory.
    func allocateOverflowBucket() -> UnsafeMutableRawPointer? {
        beforeAllocatingOverflowBucket?()
        let bucket: UnsafeMutableRawPointer
        if let spare = spares?.take(completed: generationsCompleted.load(ordering: .acquiring)) {
            bucket = spare
        } else {
            guard let block = EpochMemory.allocate(byteCount: overflowAllocationSize, tag: tag) else { return nil }
            bucket = block
            noteOverflowBlockAllocated()
        }
        Self.initialize(bucket, size: bucketStride)
        if cellCPUs != 0 { setCellWords(of: bucket, firstLevelIndex: nil, blocks: nil) }
        return bucket
    }

    // MARK: Growth while reclamation is held back

    /// Overflow blocks allocated while a reclaim generation was pending, since one last
    /// completed (spares reused not counted: they are no new memory): what the table grew
    /// while its retired slots and freed buckets waited for a grace period. Reset by each
    /// completed generation (racing increments may be lost: an approximation). It counted every live overflow
    /// block, so a map larger than its bucket array's cap (2^22 buckets), whose chains
    /// overflow because it is full, was throttled on every allocation whenever a generation
    /// was pending, with no section held anywhere (found by review, 2026-12-06,
    /// twenty-fourth session). (Not the tag's pending bytes either: default tags are per
    /// map type, so another map's freed bucket array made this one's writers wait: found by
    /// review, 2026-12-06.)
    let allocatedSinceGeneration = Atomic<Int>(0)
    /// How many times this table's writers waited in ``throttleIfGrowingBehind()``.
    let growthThrottles = Atomic<Int>(0)
    /// This table's number, from 1, never reused in the process: what a thread's record of
    /// having grown a table names (``noteOverflowBlockAllocated()``).
    let serial: UInt64 = BucketTable.serials.wrappingAdd(1, ordering: .relaxed).newValue
    static let serials = Atomic<UInt64>(0)
    /// Set when an overflow block is allocated past ``overflowThrottleBytes`` of them since
    /// the last completed generation, with a generation pending; cleared by the next
    /// completed generation. A hint: the writers that find it set wait only if their own
    /// thread's record names this table and a generation still pending
    /// (``throttleIfGrowingBehind()``). (Cleared also by a writer's wait, it let a thread
    /// that tripped inside a section go on unthrottled once another writer had waited:
    /// found by review, 2026-12-06.)
    let growingBehind = Atomic<Bool>(false)
    /// The overflow bytes allocated while a generation is pending past which the writer
    /// that allocates one more waits for reclamation: the bucket array's size (with a
    /// per-CPU hash's value blocks), at least ``overflowThrottleFloor``. (Settable by tests
    /// before the map is shared.)
    package nonisolated(unsafe) var overflowThrottleBytes: Int
    /// 16 MiB, the retire lists' threshold (`EpochRetireList.throttleThreshold`).
    static let overflowThrottleFloor = EpochRetireList.throttleThreshold

    /// Counts a new overflow block. Retired slots wait for a generation before their
    /// chain's writers reuse them, and a generation waits for a grace period: while a
    /// thread holds an epoch section (a program-style section, a long in-place pass, a
    /// preempted reader), every insert into a chain whose slots are all live or waiting
    /// chains a new block, and nothing pushed back — an LRU map's evicting inserts, a
    /// per-CPU hash's replaces and any churn grew about 40 bytes a write for as long as
    /// the section lasted (found by review, 2026-12-06, twenty-third session: 40 MB in a
    /// million evicting inserts into a map of 1,024 entries). Past the bound, the writer
    /// that allocated waits for reclamation, as the retire lists' writers do.
    private func noteOverflowBlockAllocated() {
        let posted = generationsPosted.load(ordering: .relaxed)
        guard generationsCompleted.load(ordering: .relaxed) < posted else { return }
        let blocks = allocatedSinceGeneration.wrappingAdd(1, ordering: .relaxed).newValue
        if blocks &* overflowAllocationSize > overflowThrottleBytes {
            // This writer waits, after its section: not whichever writer checks next (a
            // replace in place, a refused NOEXIST waited 250 ms while the thread that grew
            // the table, inside a section, never did; found by review, 2026-12-06). Its
            // record holds the generation pending now, so that it goes stale once that has
            // run.
            rcumaps_note_growth_tripped(serial, posted)
            growingBehind.store(true, ordering: .relaxed)
        }
    }

    /// After a write, with no lock held: if this thread's write took the overflow blocks past
    /// the bound while reclamation was behind, waits until a generation posted from now has
    /// run, for at most `EpochRetireList.throttleWaitLimit` (250 ms; `taskThrottleWaitLimit`,
    /// 2 ms, on a Swift task's thread), as a retire list's writers wait. Returns at once on
    /// other threads, inside a read-side section (the generation would wait for it; the
    /// thread waits after a later write outside one) and on the reclamation thread.
    @inline(__always)
    func throttleIfGrowingBehind() {
        if _slowPath(growingBehind.load(ordering: .relaxed)) { waitForAGeneration() }
    }

    /// ``throttleIfGrowingBehind()`` as a call, for the one-pass write's insert: inlined
    /// there, its slow path cost that function's replaces 6 instructions (callgrind).
    @inline(never)
    func throttleIfGrowingBehindAfterInsert() {
        if _slowPath(growingBehind.load(ordering: .relaxed)) { waitForAGeneration() }
    }

    @inline(never)
    private func waitForAGeneration() {
        let completed = generationsCompleted.load(ordering: .acquiring)
        // Nothing pending: a flag set by a writer preempted across the generation that
        // cleared it would otherwise stay, and send every write down this path (found by
        // review, 2026-12-06).
        if completed >= generationsPosted.load(ordering: .acquiring) { growingBehind.store(false, ordering: .relaxed) }
        guard !Epoch.isInsideAnyReadLock, !EpochMemory.isReclamationThread,
              rcumaps_take_growth_tripped(serial, completed) != 0 else { return }
        let onTask = withUnsafeCurrentTask(body: { $0 != nil })
        growthThrottles.wrappingAdd(1, ordering: .relaxed)
        let target = generationsPosted.load(ordering: .acquiring) &+ 1
        requestGenerations(through: target)
        let clock = ContinuousClock()
        let start = clock.now
        let limit = onTask ? EpochRetireList.taskThrottleWaitLimit : EpochRetireList.throttleWaitLimit
        while generationsCompleted.load(ordering: .acquiring) < target, clock.now - start < limit {
            usleep(200)
        }
        // After a wait that timed out the thread's record is gone: its next block allocated
        // while still behind records it again, so a writer goes on at one block a wait.
    }

    /// Tests only: runs before each overflow bucket is taken or allocated. Set before the
    /// map is shared.
    nonisolated(unsafe) var beforeAllocatingOverflowBucket: (@Sendable () -> Void)?

    /// Overflow buckets unlinked from their chains, for reuse (nil if there was no memory
    /// for the pool).
    let spares: SpareBuckets?

    /// Appends `overflow` to the chain after `last` (release: publishes its contents).
    /// `last` links nowhere yet: an OR sets the address and keeps the lock bits of a
    /// first-level bucket, which a waiting writer may change meanwhile.
    func link(_ overflow: UnsafeMutableRawPointer, after last: UnsafeMutableRawPointer) {
        let address = UInt(bitPattern: overflow)
        _rcumapsPrecondition(address & ~Self.linkAddressMask == 0, "bucket address beyond 56 bits")
        overflowLink(last).pointee.bitwiseOr(address, ordering: .releasing)
    }

    // MARK: Reclaim generations

    /// Generation work items posted so far (the stamp of a retirement is this count,
    /// read by the retiring writer under its chain's lock, after the unlink's full barrier).
    let generationsPosted = Atomic<UInt64>(0)
    /// The count of posted items that have run (items run one at a time, in order).
    let generationsCompleted = Atomic<UInt64>(0)
    /// The count writers need to reach; items are posted while `generationsCompleted` is
    /// below it.
    let generationsWanted = Atomic<UInt64>(0)
    /// Whether an item is posted and has not run yet (at most one is).
    let generationInFlight = Atomic<Bool>(false)

    /// Whether `bucket` is a first-level bucket (one of the table's, never freed; an
    /// overflow bucket can leave its chain).
    @inline(__always)
    func isFirstLevel(_ bucket: UnsafeMutableRawPointer) -> Bool {
        let offset = bucket - base
        return offset >= 0 && offset < bucketCount &* bucketStride
    }

    /// The stamp of a retirement while `posted` items have been posted: 1...127.
    @inline(__always)
    static func stamp(_ posted: UInt64) -> UInt64 { posted % 127 &+ 1 }

    /// The generation counts, read once, for deciding on several retired slots of a chain
    /// (the rule of ``isReusable(stamp:posted:completed:generations:)``, its modulo taken
    /// once).
    struct ReuseClock {
        /// `posted mod 127`.
        let postedResidue: UInt64
        /// Generations posted but not yet completed.
        let pending: UInt64

        /// Whether a slot stamped `stamp` may be written again: its age (generations posted
        /// since, read as the youngest count with that stamp) is at least `pending` plus
        /// `generations` — that is, `generations` have completed since it was retired.
        @inline(__always)
        func allowsReuse(stamp: UInt64, generations: UInt64 = 1) -> Bool {
            // (posted - (stamp - 1)) mod 127, from the residue: 1...253 before the reduction.
            var age = postedResidue &+ 128 &- stamp
            if age >= 127 { age &-= 127 }
            return age >= pending &+ generations
        }
    }

    /// The ``ReuseClock`` now. Completed is read first: a count posted later is only
    /// larger, which errs on the safe side.
    @inline(__always)
    func reuseClock() -> ReuseClock {
        let completed = generationsCompleted.load(ordering: .acquiring)
        let posted = generationsPosted.load(ordering: .acquiring)
        return ReuseClock(postedResidue: posted % 127, pending: posted &- completed)
    }

    /// Whether retired slot `slot` of a bucket, whose control word is
    /// `control`, may be written again: `generations` (one) have completed since its
    /// stamp. A stamp is read as the latest count at most `posted` with that stamp, so an
    /// old one may read as younger than it is (never as older).
    func isReusable(_ control: UInt64, slot: Int, generations: UInt64 = 1) -> Bool {
        reuseClock().allowsReuse(stamp: Self.tagByte(control, slot), generations: generations)
    }

    /// The rule of ``isReusable(_:slot:generations:)`` on its numbers: a slot stamped
    /// `stamp` (``stamp(_:)`` of the count `P` posted when it was retired, read as the
    /// latest count at most `posted` with that stamp) is reusable once `completed` reaches
    /// `P + generations`.
    static func isReusable(stamp: UInt64, posted: UInt64, completed: UInt64, generations: UInt64 = 1) -> Bool {
        ReuseClock(postedResidue: posted % 127, pending: posted &- completed).allowsReuse(stamp: stamp, generations: generations)
    }

    /// Asks for generation items to be posted until `target` of them have run. Cheap when
    /// another writer asked for as much already and an item is in flight (two loads).
    /// Never blocks.
    func requestGenerations(through target: UInt64) {
        var wanted = generationsWanted.load(ordering: .relaxed)
        guard wanted < target else {
            // Asked for already. Normally an item is in flight, or the one that asked posts
            // it; but if a post found no memory for its item, nothing is in flight and
            // nothing will be: post it now. An item in flight may be queued on a driver
            // whose thread could not be started: every request, not only the one that
            // raised `generationsWanted`, starts it then (one relaxed load otherwise), or
            // after one failed retry no write would try again and retired slots would
            // never become reusable.
            if !generationInFlight.load(ordering: .relaxed) {
                if generationsCompleted.load(ordering: .relaxed) < wanted { postGenerationIfIdle() }
            } else {
                EpochWorkItem.retryDriverStartIfItFailed()
            }
            return
        }
        while wanted < target {
            let (exchanged, original) = generationsWanted.compareExchange(
                expected: wanted, desired: target, ordering: .sequentiallyConsistent)
            if exchanged { break }
            wanted = original
        }
        postGenerationIfIdle()
    }

    /// Posts the next generation item unless one is in flight. Sequentially consistent
    /// against ``finishGeneration()``: a writer that raised `generationsWanted` and finds
    /// an item in flight is seen by that item's check, so no request is lost.
    func postGenerationIfIdle() {
        guard !generationInFlight.load(ordering: .sequentiallyConsistent),
              generationInFlight.compareExchange(expected: false, desired: true,
                                                 ordering: .sequentiallyConsistent).exchanged else {
            // The generation in flight may be queued on a driver that could not start.
            EpochWorkItem.retryDriverStartIfItFailed()
            return
        }
        // The item before the count: a count must never run ahead of a posted item. With
        // no memory for it, nothing is posted; the next request tries again.
        guard let item = EpochWorkItem({ [weak self] in self?.finishGeneration() }) else {
            generationInFlight.store(false, ordering: .sequentiallyConsistent)
            return
        }
        generationsPosted.wrappingAdd(1, ordering: .sequentiallyConsistent)
        // On the grace-period driver: liburcu's worker naps 10 ms between batches, so
        // generations (one per slot reuse) would advance one per 10 ms at best.
        item.scheduleOnGracePeriodDriver()
    }

    /// A generation item's callback (reclamation thread, after its grace period): counts
    /// it completed and posts the next if writers want more.
    func finishGeneration() {
        // Only the item in flight changes the posted count, so it is this item's number.
        let number = generationsPosted.load(ordering: .acquiring)
        allocatedSinceGeneration.store(0, ordering: .relaxed)
        growingBehind.store(false, ordering: .relaxed)
        generationsCompleted.store(number, ordering: .releasing)
        generationInFlight.store(false, ordering: .sequentiallyConsistent)
        if generationsWanted.load(ordering: .sequentiallyConsistent) > number { postGenerationIfIdle() }
    }
}

/// The per-CPU values of a ``RawPerCPUHashMap``'s table (see "Per-CPU values" in
/// `BucketTable`'s notes): `cpus` values per slot of `width` bytes (a multiple of 8), the
/// first-level ones placed on their CPUs' NUMA nodes when `placingOnNodes`
/// (`nodeOfCPU` and `maxRuns` as ``PerCPUBlocks`` takes them).
package struct PerCPUValueLayout {
    var cpus: Int
    var width: Int
    var placingOnNodes: Bool
    var nodeOfCPU: (Int) -> Int
    var maxRuns: Int
}
