import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The fallback of the arrays' sequenced reads (`RawArrayMap.copySequenced`,
/// `RawPerCPUArrayMap.copySlotOut`): a reader that writers of its slot made retry
/// ``patience`` times in a row copies the value holding the slot.
///
/// A seqlock reader succeeds only if no write overlaps its copy. Writers that rewrite one
/// slot back to back leave it free for a few nanoseconds between writes, less than a copy
/// of a large value takes (a 64 KiB value: microseconds), so without a fallback such a
/// reader retried as long as the writers ran (found by review, 2026-12-05). Holding the slot
/// bounds its wait by one write and one copy, and holds that slot's writers off for one copy.
enum SequencedReads {
    /// Failed tries before a reader holds the slot: enough that a reader meeting an
    /// occasional write never does.
    static let patience = 16

    /// Takes the slot as a writer does — its sequence word from an even value with none of
    /// `extraBits` set to that value with bit 0 and `extraBits` set, so that writers and
    /// other readers wait — runs `copy`, then puts the word back as it was: nothing was
    /// written, and readers that began before and end after still see the value they
    /// copied as consistent. Putting back the same value (not a write's `+ 2`) keeps the
    /// counter moving only on writes, so a writer that continues from a snapshot of it
    /// (a provider map's writer bit) never reuses a value.
    ///
    /// A slot whose word holds one of `extraBits` with bit 0 clear (a provider map's writer
    /// that holds the slot while its pre-deletion callback runs, before it writes) is not
    /// waited for: the value cannot change until bit 0 is set, so an optimistic copy is
    /// tried instead. Waiting could deadlock — the callback may wait for a lock this
    /// reader's caller holds (found by review of this fallback, 2026-12-05).
    static func copyHoldingSlot(_ sequence: UnsafeMutablePointer<Atomic<UInt64>>, extraBits: UInt64, copy: () -> Void) {
        var spins = 0
        while true {
            let current = sequence.pointee.load(ordering: .acquiring)
            if current & 1 == 0 {
                if current & extraBits == 0 {
                    if sequence.pointee.compareExchange(expected: current, desired: current | 1 | extraBits,
                                                        ordering: .acquiring).exchanged {
                        copy()
                        // Release: the copy's loads are done before writers may write again.
                        sequence.pointee.store(current, ordering: .releasing)
                        return
                    }
                } else {
                    copy()
                    atomicMemoryFence(ordering: .acquiring)
                    if sequence.pointee.load(ordering: .relaxed) == current { return }
                }
            }
            spins += 1
            if spins & 63 == 0 { sched_yield() }  // a writer of this slot was preempted
        }
    }
}
