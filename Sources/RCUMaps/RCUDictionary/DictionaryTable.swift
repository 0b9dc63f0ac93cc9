import CRCUMapsShim
import RCUEpoch
import Synchronization

/// The bucket array of an ``RCUDictionary``: cache-line buckets of three two-word slots,
/// with a 7-bit hash tag per slot so a lookup looks only at slots whose tag matches.
///
/// Layout: a 64-byte header (bucket count) followed by `bucketCount` 64-byte buckets:
///
///     offset 0   control  Atomic<UInt64>  bytes 0..<3: slot tags (0 = empty);
///                                         bits 24..<64: the bucket's change count
///     offset 8   overflow Atomic<UInt>    the next bucket of the chain, or 0
///     offset 16  slots    3 × (key word, value word), each an Atomic<UInt>
///
/// What the words hold depends on the dictionary (``RCUDictionary/SlotLayout``): the key
/// word is the key's own bits (integer keys) or the address of an immutable node holding
/// the key (and, for values that are not one word, the value); the value word is the value's
/// bits (one-word values) or the stamp of the write that stored the node
/// (``RCUDictionary/SlotLayout/node``).
///
/// A writer fills a slot's value word, then its key word, then its tag (each a release
/// store); a delete clears the tag, then the key word. Both add one to the bucket's change
/// count in the same store of the control word. A reader loads the control word, then the
/// key word and value word of each slot whose tag matches, then loads the control word
/// again: if it is unchanged, no slot of the bucket was emptied or filled in between, so the
/// two words it read belong together. (Comparing the tag and the key word alone is not
/// enough for integer keys, whose key word is the key itself: between the reader's loads the
/// slot could be emptied, filled with another key of the same tag, emptied and filled with
/// the first key again, and the value read would be the other key's.) A value word replaced
/// in place (one-word values) and a node replaced in place (``RCUDictionary/SlotLayout/node``)
/// leave the count alone: the slot still holds the same key. The buckets of chain `i` change
/// only under the writer stripe `i mod stripes`.
///
/// A table is replaced whole when the dictionary grows or shrinks (the same slot words,
/// rehashed into a new table, published with one release store); the old table and its
/// overflow buckets are retired through the epoch, so a reader still walking it is safe.
/// An overflow bucket emptied by a delete is unlinked and retired at once.
///
/// Concurrency: see ``RCUDictionary``.
@usableFromInline
struct DictionaryTable {
    /// Invariant: a cache-aligned epoch block: the header, then `bucketCount` buckets.
    @usableFromInline let base: UnsafeMutableRawPointer

    @usableFromInline static let headerSize = 64
    @usableFromInline static let bucketSize = 64
    @usableFromInline static let slotsPerBucket = 3
    /// The most buckets a table has: the largest power of two whose table (header included)
    /// fits one epoch block, `EpochMemory.maxBlockSize` (4 GiB less two cache lines) —
    /// 2^25, a 2 GiB table (a test checks both bounds).
    @inlinable static var maxBucketCount: Int { 1 << 25 }
    @usableFromInline static let byteOnes: UInt64 = 0x0101_0101_0101_0101
    /// `0x80` in each of the three tag bytes.
    @usableFromInline static let liveTagBits: UInt64 = 0x0000_0000_0080_8080
    /// The pool tag of a dictionary's bucket arrays unless it was made with others
    /// (``RCUDictionaryMemoryTags``). A table keeps its own in its header (word 1), for
    /// the overflow buckets it allocates.
    static let tag = PoolTag("rcdt")
    /// One change of a bucket's change count (the control word's bits 24 and up, which wrap
    /// around after 2^40 changes).
    @usableFromInline static let changeUnit: UInt64 = 1 << 24

    @inlinable init(_ base: UnsafeMutableRawPointer) { self.base = base }

    /// A new, empty table of `bucketCount` buckets (a power of two), its memory and its
    /// overflow buckets' under `tag`, or nil without memory.
    static func make(bucketCount: Int, tag: PoolTag) -> DictionaryTable? {
        guard let block = EpochMemory.allocateCacheAligned(byteCount: headerSize + bucketCount * bucketSize, tag: tag) else {
            return nil
        }
        // Before the first touch below: advice given after it left the pages the zeroing
        // faulted in at 4 KiB until khugepaged collapsed them, if ever (found by review,
        // 2026-12-06; the bucket tables and arrays advised first).
        rcumaps_advise_huge_pages(block, headerSize + bucketCount * bucketSize)
        block.storeBytes(of: bucketCount, as: Int.self)
        block.storeBytes(of: tag.rawValue, toByteOffset: 8, as: UInt32.self)
        for index in 0..<bucketCount { initializeBucket(block + headerSize + index * bucketSize) }
        return DictionaryTable(block)
    }

    static func initializeBucket(_ bucket: UnsafeMutableRawPointer) {
        bucket.initializeMemory(as: UInt8.self, repeating: 0, count: bucketSize)
        bucket.bindMemory(to: Atomic<UInt>.self, capacity: bucketSize / 8)
    }

    @inlinable var bucketCount: Int { base.load(as: Int.self) }

    /// The pool tag the table was made with (``make(bucketCount:tag:)``).
    var poolTag: PoolTag { PoolTag(rawValue: base.load(fromByteOffset: 8, as: UInt32.self)) }

    @inlinable @inline(__always)
    func bucket(_ hash: Int) -> UnsafeMutableRawPointer {
        base + Self.headerSize + (hash & (bucketCount &- 1)) &* Self.bucketSize
    }

    @inlinable @inline(__always)
    static func control(_ bucket: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        bucket.assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    @inlinable @inline(__always)
    static func overflowLink(_ bucket: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt>> {
        (bucket + 8).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// The key word of slot `index` of `bucket`.
    @inlinable @inline(__always)
    static func keyWord(_ bucket: UnsafeMutableRawPointer, _ index: Int) -> UnsafeMutablePointer<Atomic<UInt>> {
        (bucket + (16 &+ index &* 16)).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// The value word of slot `index` of `bucket`.
    @inlinable @inline(__always)
    static func valueWord(_ bucket: UnsafeMutableRawPointer, _ index: Int) -> UnsafeMutablePointer<Atomic<UInt>> {
        (bucket + (24 &+ index &* 16)).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// The tag of `hash`: its top 7 bits with the high bit set (the bucket uses the low bits).
    @inlinable @inline(__always)
    static func tag(_ hash: Int) -> UInt64 { 0x80 | (UInt64(bitPattern: Int64(hash)) >> 57) }

    /// Whether `bucket`'s control word is still `control`, the one loaded before a slot's
    /// words were (with acquiring loads): no slot of the bucket was emptied or filled since,
    /// so the words read from the slot belong together.
    @inlinable @inline(__always)
    static func unchanged(_ bucket: UnsafeMutableRawPointer, since control: UInt64) -> Bool {
        Self.control(bucket).pointee.load(ordering: .acquiring) == control
    }

    /// Calls `body` with the bucket, slot index and the bucket's control word (as loaded
    /// before the call) of every slot of chain `hash` whose tag matches, until it returns
    /// `true`. Caller holds an epoch section.
    @inlinable @inline(__always)
    func forEachCandidate(inChainOf hash: Int, _ body: (UnsafeMutableRawPointer, Int, UInt64) -> Bool) -> Bool {
        let pattern = Self.tag(hash) &* Self.byteOnes
        var bucket = self.bucket(hash)
        while true {
            let control = Self.control(bucket).pointee.load(ordering: .acquiring)
            let difference = control ^ pattern
            var candidates = (difference &- Self.byteOnes) & ~difference & Self.liveTagBits
            while candidates != 0 {
                if body(bucket, candidates.trailingZeroBitCount &>> 3, control) { return true }
                candidates &= candidates &- 1
            }
            guard let next = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(bucket).pointee.load(ordering: .acquiring))
            else { return false }
            bucket = next
        }
    }

    /// Calls `body` with the bucket, slot index and the bucket's control word (as loaded
    /// before the call) of every live slot in the table. Caller holds an epoch section (or
    /// every stripe).
    func forEachSlot(_ body: (UnsafeMutableRawPointer, Int, UInt64) -> Void) {
        for index in 0..<bucketCount {
            var bucket: UnsafeMutableRawPointer? = base + Self.headerSize + index * Self.bucketSize
            while let current = bucket {
                let control = Self.control(current).pointee.load(ordering: .acquiring)
                for slot in 0..<Self.slotsPerBucket {
                    let tag = (control >> UInt64(8 * slot)) & 0xFF
                    if tag != 0 { body(current, slot, control) }
                }
                bucket = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(current).pointee.load(ordering: .acquiring))
            }
        }
    }

    // MARK: Writers (caller holds the chain's stripe lock, or every stripe)

    /// Where an entry is stored: a bucket and a slot.
    @usableFromInline
    struct Place {
        @usableFromInline let bucket: UnsafeMutableRawPointer
        @usableFromInline let slot: Int

        @inlinable init(bucket: UnsafeMutableRawPointer, slot: Int) {
            self.bucket = bucket
            self.slot = slot
        }

        /// The slot's key word.
        @inlinable var keyWord: UnsafeMutablePointer<Atomic<UInt>> { DictionaryTable.keyWord(bucket, slot) }
        /// The slot's value word.
        @inlinable var valueWord: UnsafeMutablePointer<Atomic<UInt>> { DictionaryTable.valueWord(bucket, slot) }
    }

    /// The place of the entry whose key word `matches` accepts in the chain of `hash`.
    @inlinable
    func locate(_ hash: Int, _ matches: (UInt) -> Bool) -> Place? {
        let tag = Self.tag(hash)
        var bucket: UnsafeMutableRawPointer? = self.bucket(hash)
        while let current = bucket {
            let control = Self.control(current).pointee.load(ordering: .relaxed)
            for slot in 0..<Self.slotsPerBucket where (control >> UInt64(8 * slot)) & 0xFF == tag {
                if matches(Self.keyWord(current, slot).pointee.load(ordering: .relaxed)) {
                    return Place(bucket: current, slot: slot)
                }
            }
            bucket = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(current).pointee.load(ordering: .relaxed))
        }
        return nil
    }

    /// Stores an entry (its key word and value word, of `hash`) in a free slot of its chain,
    /// chaining a new overflow bucket if every slot is taken; false without memory for one.
    @usableFromInline
    func insert(key: UInt, value: UInt, hash: Int) -> Bool {
        var bucket = self.bucket(hash)
        while true {
            let control = Self.control(bucket).pointee.load(ordering: .relaxed)
            for slot in 0..<Self.slotsPerBucket where (control >> UInt64(8 * slot)) & 0xFF == 0 {
                // The words first, then the tag that makes readers look at them.
                Self.valueWord(bucket, slot).pointee.store(value, ordering: .releasing)
                Self.keyWord(bucket, slot).pointee.store(key, ordering: .releasing)
                Self.control(bucket).pointee.store((control | Self.tag(hash) << UInt64(8 * slot)) &+ Self.changeUnit,
                                                   ordering: .releasing)
                return true
            }
            if let next = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(bucket).pointee.load(ordering: .relaxed)) {
                bucket = next
                continue
            }
            guard let overflow = EpochMemory.allocateCacheAligned(byteCount: Self.bucketSize, tag: poolTag) else {
                return false
            }
            Self.initializeBucket(overflow)
            Self.valueWord(overflow, 0).pointee.store(value, ordering: .relaxed)
            Self.keyWord(overflow, 0).pointee.store(key, ordering: .relaxed)
            Self.control(overflow).pointee.store(Self.tag(hash), ordering: .relaxed)
            // Publishing the link publishes the bucket's contents.
            Self.overflowLink(bucket).pointee.store(UInt(bitPattern: overflow), ordering: .releasing)
            return true
        }
    }

    /// Empties a place of the chain of `hash`: the tag first, with a change of the bucket's
    /// change count (readers stop looking, and a reader that read the slot before sees the
    /// change when it loads the control word again), then the key word. The value word keeps
    /// its bits, which the slot no longer owns. An overflow bucket left with no live slot is
    /// unlinked (``unlinkEmptyOverflow(_:hash:)``).
    /// Returns whether an overflow bucket was unlinked (and freed after a grace period).
    @inlinable @discardableResult
    func clear(_ place: Place, hash: Int) -> Bool {
        let control = Self.control(place.bucket)
        let current = control.pointee.load(ordering: .relaxed)
        let cleared = (current & ~(0xFF << UInt64(8 * place.slot))) &+ Self.changeUnit
        control.pointee.store(cleared, ordering: .releasing)
        place.keyWord.pointee.store(0, ordering: .releasing)
        return cleared & 0xFF_FFFF == 0 && unlinkEmptyOverflow(place.bucket, hash: hash)
    }

    /// Unlinks `empty`, a bucket of the chain of `hash` with no live slot, if it is an
    /// overflow bucket, and frees it after a grace period (caller holds the chain's stripe,
    /// inside a section). Its predecessor's link skips it with one release store; a reader
    /// standing in it still follows its own link, unchanged, to the rest of the chain.
    ///
    /// Before, an overflow bucket stayed linked until the whole table was rebuilt, which a
    /// dictionary of constant size never is: under churn every chain that once went past
    /// three entries kept its extra buckets, about 3.3 times the table's memory after 40
    /// turnovers at 1.5 entries a bucket, and every miss walked them (found by review,
    /// 2026-12-05).
    @usableFromInline
    func unlinkEmptyOverflow(_ empty: UnsafeMutableRawPointer, hash: Int) -> Bool {
        var previous = bucket(hash)
        guard previous != empty else { return false }  // a first-level bucket stays
        while let next = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(previous).pointee.load(ordering: .relaxed)) {
            if next == empty {
                Self.overflowLink(previous).pointee.store(Self.overflowLink(empty).pointee.load(ordering: .relaxed),
                                                          ordering: .releasing)
                EpochMemory.freeCacheAligned(empty)
                return true
            }
            previous = next
        }
        return false
    }

    /// Overflow buckets linked in the table now (a snapshot; caller holds a section, or
    /// writers are quiet). For tests.
    var overflowBucketCount: Int {
        var count = 0
        for index in 0..<bucketCount {
            var next = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(base + Self.headerSize + index * Self.bucketSize)
                .pointee.load(ordering: .acquiring))
            while let overflow = next {
                count += 1
                next = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(overflow).pointee.load(ordering: .acquiring))
            }
        }
        return count
    }

    /// Retires the table and its overflow buckets (after a grace period). The table must be
    /// unpublished, so that no writer reaches it any more (a resize or `removeAll` that
    /// replaced it, after releasing the stripes; or the dictionary's deinit).
    func retire() {
        for index in 0..<bucketCount {
            var next = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(base + Self.headerSize + index * Self.bucketSize)
                .pointee.load(ordering: .relaxed))
            while let overflow = next {
                next = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(overflow).pointee.load(ordering: .relaxed))
                EpochMemory.freeCacheAligned(overflow)
            }
        }
        EpochMemory.freeCacheAligned(base)
    }
}
