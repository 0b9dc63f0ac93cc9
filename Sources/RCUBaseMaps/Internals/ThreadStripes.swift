import CRCUMapsShim
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How many stripes per-thread striped state has (capacity counters, free-slot stacks,
/// spare buckets, LRU hand claims): the configured CPUs rounded up to a power of two, at
/// most 16. A thread's stripe is `rcumaps_thread_stripe()` masked to that count, so a few
/// writer threads use distinct stripes.
enum ThreadStripes {
    /// The stripe count for a new striped structure (read when the structure is made; hot
    /// paths keep their own mask).
    static func count() -> Int {
        let cpus = max(1, min(16, sysconf(Int32(_SC_NPROCESSORS_CONF))))
        return 1 << (Int.bitWidth - (cpus - 1).leadingZeroBitCount)  // next power of two
    }
}

/// One 64-byte line per thread stripe, each behind a try-lock, for state a thread mostly
/// keeps to itself (`SpareBuckets`, `RecencyClock`'s claims). A thread that finds its
/// stripe's lock taken (another thread shares its stripe) does without: nothing waits,
/// except ``withStripe(_:_:)``, for tests and reports.
///
/// Invariant: `count` lines, 64-byte aligned; word 0 of each is the lock (`Atomic<Int>`, 0
/// free), words 1 to 7 are the stripe's (zero at first), touched only with its lock held.
final class TryLockedStripes: @unchecked Sendable {
    // @unchecked Sendable: each line's words are touched only under its lock.
    /// Stripes (a power of two).
    let count: Int
    private let mask: Int
    private let lines: UnsafeMutableRawPointer

    /// Words of a stripe after its lock.
    static let words = 7

    /// Zeroed stripes, one per ``ThreadStripes/count()``; nil without memory.
    init?() {
        count = ThreadStripes.count()
        mask = count - 1
        guard let memory = aligned_alloc(64, count * 64) else { return nil }
        lines = memory
        for stripe in 0..<count {
            (lines + stripe * 64).initializeMemory(as: Atomic<Int>.self, to: Atomic(0))
            (lines + stripe * 64 + 8).initializeMemory(as: Int.self, repeating: 0, count: Self.words)
        }
    }

    deinit {
        for stripe in 0..<count { (lines + stripe * 64).assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: 1) }
        free(lines)
    }

    /// Runs `body` with the words of the calling thread's stripe (word 1 at offset 0) if its
    /// lock is free at once; nil if not.
    @inline(__always)
    func withOwnStripeIfFree<T>(_ body: (UnsafeMutableRawPointer) -> T) -> T? {
        guard let words = unretainedLines.tryTakeOwnStripe() else { return nil }
        defer { Lines.release(words) }
        return body(words)
    }

    /// The stripes' memory, to take a stripe without a closure (``Lines``). Valid while
    /// `self` lives: the holder keeps `self` too.
    var unretainedLines: Lines { Lines(base: lines, mask: mask) }

    /// The stripes' memory, a plain pointer: for callers whose work under a stripe is too
    /// large for a closure the optimiser inlines, and who must not retain the stripes on each
    /// use. Valid while the ``TryLockedStripes`` it came from lives.
    struct Lines {
        let base: UnsafeMutableRawPointer
        let mask: Int

        /// The words of the calling thread's stripe with its lock taken, if it is free at
        /// once; nil if not. Give them back with ``release(_:)``.
        @inline(__always)
        func tryTakeOwnStripe() -> UnsafeMutableRawPointer? {
            let line = base + (Int(rcumaps_thread_stripe()) & mask) &* 64
            guard line.assumingMemoryBound(to: Atomic<Int>.self).pointee.exchange(1, ordering: .acquiring) == 0 else {
                return nil
            }
            return line + 8
        }

        /// Releases the stripe whose words ``tryTakeOwnStripe()`` returned.
        @inline(__always)
        static func release(_ words: UnsafeMutableRawPointer) {
            (words - 8).assumingMemoryBound(to: Atomic<Int>.self).pointee.store(0, ordering: .releasing)
        }
    }

    /// Runs `body` with the words of stripe `stripe`, waiting for its lock.
    func withStripe<T>(_ stripe: Int, _ body: (UnsafeMutableRawPointer) -> T) -> T {
        let line = lines + stripe * 64
        let lock = line.assumingMemoryBound(to: Atomic<Int>.self)
        while lock.pointee.exchange(1, ordering: .acquiring) != 0 { sched_yield() }
        defer { lock.pointee.store(0, ordering: .releasing) }
        return body(line + 8)
    }
}
