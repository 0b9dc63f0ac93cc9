import CRCUMapsShim
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
/// makes its copy succeed once it has the slot, and holds that slot's writers off for one
/// copy; taking it, the reader competes with the waiting writers on equal terms (each
/// release goes to one of them), so with several writers it may wait a few of their writes,
/// not one (the docs said one: corrected by review, 2026-12-06).
enum SequencedReads {
    /// Copies a writer spoiled before a reader holds the slot: enough that a reader meeting
    /// an occasional write never does.
    static let patience = 16

    /// A seqlock read of the value `copy` copies, guarded by `sequence`: waits while the word
    /// is odd (a write in progress, or a reader holding the slot), copies, and tries again
    /// if the word moved meanwhile; after ``patience`` copies spoiled so, copies holding the
    /// slot (``copyHoldingSlot(_:extraBits:copy:)``).
    ///
    /// Only a spoiled copy is a try, or a wait through which a write ended and another began.
    /// When a look at an odd word was one too, a single write
    /// longer than sixteen loads (a value of a few hundred bytes) sent every reader that met
    /// it to hold the slot, and each reader holding it made the word odd for the readers
    /// arriving meanwhile, who held it in turn: two threads reading one large value took it
    /// one at a time for as long as they read, after one write (found by review,
    /// 2026-12-05). Waiting on an odd word instead, a reader takes the slot only from
    /// writers that keep spoiling its copies, and a reader that finds another one holding
    /// it copies optimistically once it is put back (the word's value unchanged).
    ///
    /// - Returns: whether it copied holding the slot (for tests).
    @inline(__always) @discardableResult
    static func copy(guardedBy sequence: UnsafeMutablePointer<Atomic<UInt64>>, extraBits: UInt64,
                     _ copy: () -> Void) -> Bool {
        var spoiled = 0
        var spins = 0
        var waitedOn: UInt64 = 0  // the odd value last seen (an even value: none)
        while spoiled < patience {
            let before = sequence.pointee.load(ordering: .acquiring)
            if before & 1 != 0 {
                // Another odd value than the last one seen: a write ended and the next began
                // while this reader waited — a try, or writers rewriting the slot back to
                // back, free for a few nanoseconds between writes, would starve it.
                if waitedOn & 1 != 0, before != waitedOn { spoiled += 1 }
                waitedOn = before
                spins &+= 1
                if spins & 63 == 0 { sched_yield() } else { rcumaps_cpu_relax() }  // the holder was preempted
                continue
            }
            waitedOn = before
            copy()
            atomicMemoryFence(ordering: .acquiring)
            if sequence.pointee.load(ordering: .relaxed) == before { return false }
            spoiled += 1
        }
        copyHoldingSlot(sequence, extraBits: extraBits, copy: copy)
        return true
    }

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
