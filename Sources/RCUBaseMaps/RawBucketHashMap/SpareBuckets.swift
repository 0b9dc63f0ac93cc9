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
/// for one evicting insert in ten into a full LRU map (one-thread bench, 16 K entries).
///
/// A bucket unlinked while `P` reclaim generations had been posted (the count read after
/// the unlinking, as for a retired slot: see `BucketTable`) may be written again once
/// generation `P + 1` has completed: its grace period covers every reader that could have
/// reached the bucket through its chain. A bucket is handed out only then; the others wait
/// in the pool, in the order they came.
///
/// One pool per thread stripe (``TryLockedStripes``), each a ring of up to `capacity`
/// entries, allocated when the stripe first keeps a bucket (a map whose chains never
/// overflow pays 64 bytes a stripe): a writer that finds its stripe's lock taken, its ring
/// full, or no bucket ready, uses the allocator as before, so no writer ever waits here. At
/// most `stripes.count × capacity` buckets are held; the table's deinit frees them.
///
/// Invariant: a stripe's word 0 is the ring's head, word 1 its count, word 2 the ring (0
/// until the stripe first keeps a bucket): `capacity` entries of (bucket address,
/// generations posted at its unlinking).
final class SpareBuckets: @unchecked Sendable {
    // @unchecked Sendable: the stripes' words and rings are touched only under their locks.
    private let stripes: TryLockedStripes
    /// Entries per stripe.
    let capacity: Int

    /// Pools for a table of `bucketCount` first-level buckets: up to a quarter of that,
    /// shared among the stripes, from 8 to 4,096 entries a stripe (16 bytes each, and the
    /// buckets they hold). Nil without memory for the stripes (the table then allocates
    /// every overflow bucket).
    init?(bucketCount: Int) {
        guard let stripes = TryLockedStripes() else { return nil }
        self.stripes = stripes
        capacity = min(4096, max(8, bucketCount / 4 / stripes.count))
    }

    deinit {
        // A bucket still waiting for its generation may be read by a section that walked
        // into it before it was unlinked: back to the allocator after a grace period.
        for stripe in 0..<stripes.count {
            stripes.withStripe(stripe) { words in
                guard let ring = UnsafeMutableRawPointer(bitPattern: words.load(fromByteOffset: 16, as: Int.self)) else { return }
                let head = words.load(as: Int.self), count = words.load(fromByteOffset: 8, as: Int.self)
                for offset in 0..<count {
                    EpochMemory.free((ring + 16 * ((head + offset) % capacity)).load(as: UnsafeMutableRawPointer.self))
                }
                free(ring)
            }
        }
    }

    /// Keeps `bucket`, unlinked from its chain while `posted` generations had been posted
    /// (read after the unlinking). False if the calling thread's pool is full or busy, or
    /// there is no memory for its ring: the caller frees the bucket as before.
    func keep(_ bucket: UnsafeMutableRawPointer, posted: UInt64) -> Bool {
        stripes.withOwnStripeIfFree { words in
            let head = words.load(as: Int.self), count = words.load(fromByteOffset: 8, as: Int.self)
            guard count < capacity else { return false }
            var ring = UnsafeMutableRawPointer(bitPattern: words.load(fromByteOffset: 16, as: Int.self))
            if ring == nil {
                guard let made = malloc(16 * capacity) else { return false }
                words.storeBytes(of: Int(bitPattern: made), toByteOffset: 16, as: Int.self)
                ring = made
            }
            let entry = ring.unsafelyUnwrapped + 16 &* ((head &+ count) % capacity)
            entry.storeBytes(of: bucket, as: UnsafeMutableRawPointer.self)
            entry.storeBytes(of: posted, toByteOffset: 8, as: UInt64.self)
            words.storeBytes(of: count &+ 1, toByteOffset: 8, as: Int.self)
            return true
        } ?? false
    }

    /// The calling thread's oldest kept bucket if a generation has completed since it was
    /// unlinked (`completed > posted`), else nil. Its contents are as they were; the caller
    /// clears it.
    func take(completed: UInt64) -> UnsafeMutableRawPointer? {
        stripes.withOwnStripeIfFree { words -> UnsafeMutableRawPointer? in
            let head = words.load(as: Int.self), count = words.load(fromByteOffset: 8, as: Int.self)
            guard count > 0 else { return nil }
            // A count above 0 means the ring was made.
            let entry = UnsafeMutableRawPointer(bitPattern: words.load(fromByteOffset: 16, as: Int.self)).unsafelyUnwrapped
                + 16 &* head
            guard completed > entry.load(fromByteOffset: 8, as: UInt64.self) else { return nil }
            words.storeBytes(of: (head &+ 1) % capacity, as: Int.self)
            words.storeBytes(of: count &- 1, toByteOffset: 8, as: Int.self)
            return entry.load(as: UnsafeMutableRawPointer.self)
        } ?? nil
    }

    /// Buckets held, in all stripes (a snapshot, for tests and memory reports).
    var count: Int {
        (0..<stripes.count).reduce(0) { total, stripe in
            total + stripes.withStripe(stripe) { $0.load(fromByteOffset: 8, as: Int.self) }
        }
    }
}
