import CRCUMapsShim
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Overflow buckets that their chains gave up, kept for the next overflow bucket a chain
/// needs instead of going back to the allocator (`BucketTable.unlinkOverflow`,
/// `BucketTable.allocateOverflowBucket()`).
///
/// Under churn a chain that overflows gets an overflow bucket, and the writer that retires
/// its last live slot unlinks it at once; without this pool every such bucket was a
/// `malloc`, a `call_rcu` and a `free` (about 200 instructions, and a bucket of cold memory),
/// half the inserts of a full LRU map.
///
/// A bucket unlinked while `P` reclaim generations had been posted (the count read after
/// the unlinking, as for a retired slot: see `BucketTable`) may be written again once
/// generation `P + 1` has completed: its grace period covers every reader that could have
/// reached the bucket through its chain. A bucket is handed out only then; the others wait
/// in the pool, in the order they came.
///
/// One pool per thread stripe (`rcumaps_thread_stripe`), each a ring of up to `capacity`
/// entries behind a try-lock, the ring allocated when the stripe first keeps a bucket (a
/// map whose chains never overflow pays 64 bytes a stripe): a writer that finds its
/// stripe's lock taken, its ring full, or no bucket ready, uses the allocator as before, so
/// no writer ever waits here. At most `stripeCount × capacity` buckets are held; the
/// table's deinit frees them.
///
/// Invariant: `stripes` holds `stripeCount` stripes of 64 bytes, 64-byte aligned: word 0
/// the lock (`Atomic<Int>`, 0 free), word 1 the ring's head, word 2 its count, word 3 the
/// ring (nil until the first bucket is kept): `capacity` entries of (bucket address,
/// generations posted at its unlinking). Words 1 to 3 and the ring are touched only with
/// the lock held.
final class SpareBuckets: @unchecked Sendable {
    // @unchecked Sendable: the stripes are touched only under their locks (see above).
    private let stripes: UnsafeMutableRawPointer
    private let stripeCount: Int
    /// Entries per stripe.
    let capacity: Int

    /// Pools for a table of `bucketCount` first-level buckets: up to a quarter of that,
    /// shared among the stripes, from 8 to 4,096 entries a stripe (16 bytes each, and the
    /// buckets they hold). Nil without memory for the stripes (the table then allocates
    /// every overflow bucket).
    init?(bucketCount: Int) {
        let cpus = max(1, min(16, sysconf(Int32(_SC_NPROCESSORS_CONF))))
        stripeCount = 1 << (Int.bitWidth - (cpus - 1).leadingZeroBitCount)  // next power of two
        capacity = min(4096, max(8, bucketCount / 4 / stripeCount))
        guard let memory = aligned_alloc(64, stripeCount * 64) else { return nil }
        stripes = memory
        for stripe in 0..<stripeCount {
            let base = stripes + stripe * 64
            base.initializeMemory(as: Atomic<Int>.self, to: Atomic(0))
            (base + 8).initializeMemory(as: Int.self, repeating: 0, count: 3)
        }
    }

    deinit {
        // A bucket still waiting for its generation may be read by a section that walked
        // into it before it was unlinked: back to the allocator after a grace period.
        for stripe in 0..<stripeCount {
            let base = stripes + stripe * 64
            if let ring = UnsafeMutableRawPointer(bitPattern: base.load(fromByteOffset: 24, as: Int.self)) {
                let head = base.load(fromByteOffset: 8, as: Int.self), count = base.load(fromByteOffset: 16, as: Int.self)
                for offset in 0..<count {
                    EpochMemory.free((ring + 16 * ((head + offset) % capacity)).load(as: UnsafeMutableRawPointer.self))
                }
                free(ring)
            }
            base.assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: 1)
        }
        free(stripes)
    }

    /// Runs `body` on the calling thread's stripe if its lock is free at once; nil if not.
    @inline(__always)
    private func withOwnStripe<T>(_ body: (UnsafeMutableRawPointer) -> T) -> T? {
        let base = stripes + (Int(rcumaps_thread_stripe()) & (stripeCount &- 1)) &* 64
        let lock = base.assumingMemoryBound(to: Atomic<Int>.self)
        guard lock.pointee.exchange(1, ordering: .acquiring) == 0 else { return nil }
        defer { lock.pointee.store(0, ordering: .releasing) }
        return body(base)
    }

    /// Keeps `bucket`, unlinked from its chain while `posted` generations had been posted
    /// (read after the unlinking). False if the calling thread's pool is full or busy, or
    /// there is no memory for its ring: the caller frees the bucket as before.
    func keep(_ bucket: UnsafeMutableRawPointer, posted: UInt64) -> Bool {
        withOwnStripe { base in
            let head = base.load(fromByteOffset: 8, as: Int.self), count = base.load(fromByteOffset: 16, as: Int.self)
            guard count < capacity else { return false }
            var ring = UnsafeMutableRawPointer(bitPattern: base.load(fromByteOffset: 24, as: Int.self))
            if ring == nil {
                guard let made = malloc(16 * capacity) else { return false }
                base.storeBytes(of: Int(bitPattern: made), toByteOffset: 24, as: Int.self)
                ring = made
            }
            let entry = ring.unsafelyUnwrapped + 16 &* ((head &+ count) % capacity)
            entry.storeBytes(of: bucket, as: UnsafeMutableRawPointer.self)
            entry.storeBytes(of: posted, toByteOffset: 8, as: UInt64.self)
            base.storeBytes(of: count &+ 1, toByteOffset: 16, as: Int.self)
            return true
        } ?? false
    }

    /// The calling thread's oldest kept bucket if a generation has completed since it was
    /// unlinked (`completed > posted`), else nil. Its contents are as they were; the caller
    /// clears it.
    func take(completed: UInt64) -> UnsafeMutableRawPointer? {
        withOwnStripe { base -> UnsafeMutableRawPointer? in
            let head = base.load(fromByteOffset: 8, as: Int.self), count = base.load(fromByteOffset: 16, as: Int.self)
            guard count > 0 else { return nil }
            // A count above 0 means the ring was made.
            let entry = UnsafeMutableRawPointer(bitPattern: base.load(fromByteOffset: 24, as: Int.self)).unsafelyUnwrapped
                + 16 &* head
            guard completed > entry.load(fromByteOffset: 8, as: UInt64.self) else { return nil }
            base.storeBytes(of: (head &+ 1) % capacity, toByteOffset: 8, as: Int.self)
            base.storeBytes(of: count &- 1, toByteOffset: 16, as: Int.self)
            return entry.load(as: UnsafeMutableRawPointer.self)
        } ?? nil
    }

    /// Buckets held, in all stripes (a snapshot, for tests and memory reports).
    var count: Int {
        var total = 0
        for stripe in 0..<stripeCount {
            total += withStripe(stripe) { $0.load(fromByteOffset: 16, as: Int.self) }
        }
        return total
    }

    /// Runs `body` on stripe `stripe`, waiting for its lock.
    private func withStripe<T>(_ stripe: Int, _ body: (UnsafeMutableRawPointer) -> T) -> T {
        let base = stripes + stripe * 64
        let lock = base.assumingMemoryBound(to: Atomic<Int>.self)
        while lock.pointee.exchange(1, ordering: .acquiring) != 0 { sched_yield() }
        defer { lock.pointee.store(0, ordering: .releasing) }
        return body(base)
    }
}
