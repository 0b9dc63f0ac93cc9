import Synchronization

// The per-CPU partial words are written with masks from `WordBytes`, right in either byte
// order. Other word layouts are not yet: stop a big-endian build rather than let it corrupt
// values or deadlock quietly.
#if _endian(big)
#error("""
    RCUMaps has been written for little-endian machines: the lock-word masks \
    (MapValueLock.lockBits, RawArrayMap.exchangeWordsKeepingLock) and the bucket chain lock's futex \
    half-word (BucketTable.futexHalf) take a word's high bits for its last bytes in memory. Make them \
    use WordBytes.mask (as the per-CPU partial words do) before building for a big-endian machine.
    """)
#endif

/// Masks of a 64-bit word's bytes by their place in memory, for writes of part of a word (a
/// per-CPU value whose size is not a multiple of 8, one CPU's slice of a one-word value).
/// Byte `i` of a word in memory is bits `8i..<8i+8` of the `UInt64` loaded from it on a
/// little-endian machine, bits `8(7-i)..<8(8-i)` on a big-endian one.
///
/// Concurrency: pure functions; any thread.
package enum WordBytes {
    /// Whether this machine stores a word's least significant byte first.
    package static var hostIsLittleEndian: Bool {
        #if _endian(big)
        false
        #else
        true
        #endif
    }

    /// The bits of a `UInt64` loaded from memory that hold its bytes `bytes` (in memory
    /// order, within `0..<8`), on a machine of the given byte order (this one's by default).
    @inline(__always)
    package static func mask(_ bytes: Range<Int>, littleEndian: Bool = hostIsLittleEndian) -> UInt64 {
        let width = UInt64(truncatingIfNeeded: 8 &* bytes.count)
        let inOrder: UInt64 = width >= 64 ? ~0 : ((1 &<< width) &- 1) &<< UInt64(truncatingIfNeeded: 8 &* bytes.lowerBound)
        return littleEndian ? inOrder : inOrder.byteSwapped
    }

    /// Stores the first `length` bytes (in memory) of `bits` into `cell`, keeping its other
    /// bytes (a value's padding, which another writer's word may share) with a
    /// compare-exchange; returns the word replaced. `length` in `1..<8`.
    package static func merge(_ bits: UInt64, length: Int, into cell: UnsafeMutablePointer<Atomic<UInt64>>) -> UInt64 {
        let keep = ~mask(0..<length)
        var old = cell.pointee.load(ordering: .relaxed)
        while true {
            let (exchanged, original) = cell.pointee.compareExchange(
                expected: old, desired: (old & keep) | (bits & ~keep), ordering: .acquiringAndReleasing)
            if exchanged { return old }
            old = original
        }
    }
}
