import CRCUMapsShim
import RCUEpoch
import Synchronization

/// The bucket array of an ``RCUDictionary``: cache-line buckets of node pointers, with a
/// 7-bit hash tag per slot so a lookup compares keys only where the tag matches.
///
/// Layout: a 64-byte header (bucket count) followed by `bucketCount` 64-byte buckets:
///
///     offset 0   control  Atomic<UInt64>  bytes 0..<6: slot tags (0 = empty)
///     offset 8   overflow Atomic<UInt>    the next bucket of the chain, or 0
///     offset 16  slots    6 × Atomic<UInt> node addresses (0 = empty)
///
/// Nodes are immutable once published: an update swaps a slot's pointer to a new node, a
/// delete clears the tag, then the pointer. Readers load the control word, then each
/// matching slot's pointer, and compare the full key through the node: a slot reused for
/// another key between the two loads just fails the comparison, so reuse needs no grace
/// period. The buckets of chain `i` change only under the writer stripe `i mod stripes`.
///
/// A table is replaced whole when the dictionary grows or shrinks (the same node pointers,
/// rehashed into a new table, published with one release store); the old table and its
/// overflow buckets are retired through the epoch, so a reader still walking it is safe.
///
/// Concurrency: see ``RCUDictionary``.
@usableFromInline
struct DictionaryTable {
    /// Invariant: a cache-aligned epoch block: the header, then `bucketCount` buckets.
    @usableFromInline let base: UnsafeMutableRawPointer

    @usableFromInline static let headerSize = 64
    @usableFromInline static let bucketSize = 64
    @usableFromInline static let slotsPerBucket = 6
    @usableFromInline static let byteOnes: UInt64 = 0x0101_0101_0101_0101
    /// `0x80` in each of the six tag bytes.
    @usableFromInline static let liveTagBits: UInt64 = 0x0000_8080_8080_8080
    static let tag = PoolTag("rcdt")

    @inlinable init(_ base: UnsafeMutableRawPointer) { self.base = base }

    /// A new, empty table of `bucketCount` buckets (a power of two), or nil without memory.
    static func make(bucketCount: Int) -> DictionaryTable? {
        guard let block = EpochMemory.allocateCacheAligned(byteCount: headerSize + bucketCount * bucketSize, tag: tag) else {
            return nil
        }
        block.storeBytes(of: bucketCount, as: Int.self)
        for index in 0..<bucketCount { initializeBucket(block + headerSize + index * bucketSize) }
        rcumaps_advise_huge_pages(block, headerSize + bucketCount * bucketSize)
        return DictionaryTable(block)
    }

    static func initializeBucket(_ bucket: UnsafeMutableRawPointer) {
        bucket.initializeMemory(as: UInt8.self, repeating: 0, count: bucketSize)
        bucket.bindMemory(to: Atomic<UInt>.self, capacity: bucketSize / 8)
    }

    @inlinable var bucketCount: Int { base.load(as: Int.self) }

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

    @inlinable @inline(__always)
    static func slot(_ bucket: UnsafeMutableRawPointer, _ index: Int) -> UnsafeMutablePointer<Atomic<UInt>> {
        (bucket + (16 &+ index &* 8)).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// The tag of `hash`: its top 7 bits with the high bit set (the bucket uses the low bits).
    @inlinable @inline(__always)
    static func tag(_ hash: Int) -> UInt64 { 0x80 | (UInt64(bitPattern: Int64(hash)) >> 57) }

    /// Calls `body` with the node address of every live slot of chain `chain` whose tag
    /// matches `hash` (any live slot when `hash` is nil), until it returns `true`.
    @inlinable @inline(__always)
    func forEachCandidate(inChainOf hash: Int, _ body: (UInt) -> Bool) -> Bool {
        let pattern = Self.tag(hash) &* Self.byteOnes
        var bucket = self.bucket(hash)
        while true {
            let control = Self.control(bucket).pointee.load(ordering: .acquiring)
            let difference = control ^ pattern
            var candidates = (difference &- Self.byteOnes) & ~difference & Self.liveTagBits
            while candidates != 0 {
                let node = Self.slot(bucket, candidates.trailingZeroBitCount &>> 3).pointee.load(ordering: .acquiring)
                if node != 0, body(node) { return true }
                candidates &= candidates &- 1
            }
            guard let next = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(bucket).pointee.load(ordering: .acquiring))
            else { return false }
            bucket = next
        }
    }

    /// Calls `body` with every live node address in the table. Caller holds an epoch.
    func forEachNode(_ body: (UInt) -> Void) {
        for index in 0..<bucketCount {
            var bucket: UnsafeMutableRawPointer? = base + Self.headerSize + index * Self.bucketSize
            while let current = bucket {
                let control = Self.control(current).pointee.load(ordering: .acquiring)
                for slot in 0..<Self.slotsPerBucket where (control >> UInt64(8 * slot)) & 0xFF != 0 {
                    let node = Self.slot(current, slot).pointee.load(ordering: .acquiring)
                    if node != 0 { body(node) }
                }
                bucket = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(current).pointee.load(ordering: .acquiring))
            }
        }
    }

    // MARK: Writers (caller holds the chain's stripe lock, or every stripe)

    /// Where a node is stored: a bucket and a slot.
    @usableFromInline
    struct Place {
        @usableFromInline let bucket: UnsafeMutableRawPointer
        @usableFromInline let slot: Int

        @inlinable init(bucket: UnsafeMutableRawPointer, slot: Int) {
            self.bucket = bucket
            self.slot = slot
        }
    }

    /// The place of the node `matches` accepts in the chain of `hash`.
    @inlinable
    func locate(_ hash: Int, _ matches: (UInt) -> Bool) -> Place? {
        let tag = Self.tag(hash)
        var bucket: UnsafeMutableRawPointer? = self.bucket(hash)
        while let current = bucket {
            let control = Self.control(current).pointee.load(ordering: .relaxed)
            for slot in 0..<Self.slotsPerBucket where (control >> UInt64(8 * slot)) & 0xFF == tag {
                let node = Self.slot(current, slot).pointee.load(ordering: .relaxed)
                if node != 0, matches(node) { return Place(bucket: current, slot: slot) }
            }
            bucket = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(current).pointee.load(ordering: .relaxed))
        }
        return nil
    }

    /// Stores `node` (of `hash`) in a free slot of its chain, chaining a new overflow bucket
    /// if every slot is taken; false without memory for one.
    @usableFromInline
    func insert(_ node: UInt, hash: Int) -> Bool {
        var bucket = self.bucket(hash)
        while true {
            let control = Self.control(bucket).pointee.load(ordering: .relaxed)
            for slot in 0..<Self.slotsPerBucket where (control >> UInt64(8 * slot)) & 0xFF == 0 {
                // The pointer first, then the tag that makes readers look at it.
                Self.slot(bucket, slot).pointee.store(node, ordering: .releasing)
                Self.control(bucket).pointee.store(control | Self.tag(hash) << UInt64(8 * slot), ordering: .releasing)
                return true
            }
            if let next = UnsafeMutableRawPointer(bitPattern: Self.overflowLink(bucket).pointee.load(ordering: .relaxed)) {
                bucket = next
                continue
            }
            guard let overflow = EpochMemory.allocateCacheAligned(byteCount: Self.bucketSize, tag: Self.tag) else {
                return false
            }
            Self.initializeBucket(overflow)
            Self.slot(overflow, 0).pointee.store(node, ordering: .relaxed)
            Self.control(overflow).pointee.store(Self.tag(hash), ordering: .relaxed)
            // Publishing the link publishes the bucket's contents.
            Self.overflowLink(bucket).pointee.store(UInt(bitPattern: overflow), ordering: .releasing)
            return true
        }
    }

    /// Empties a place: the tag first (readers stop looking), then the pointer.
    @inlinable
    func clear(_ place: Place) {
        let control = Self.control(place.bucket)
        let current = control.pointee.load(ordering: .relaxed)
        control.pointee.store(current & ~(0xFF << UInt64(8 * place.slot)), ordering: .releasing)
        Self.slot(place.bucket, place.slot).pointee.store(0, ordering: .releasing)
    }

    /// Retires the table and its overflow buckets (after a grace period). The table must be
    /// unpublished. Caller holds every stripe (or is the dictionary's deinit).
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
