import CRCUMapsShim
import Synchronization

/// One 4-byte lock per bucket of the bucket hash: a futex mutex that spins briefly, then
/// sleeps (the classic three-state futex lock: 0 free, 1 held, 2 held with sleepers).
///
/// Why not `Synchronization.Mutex`: on Linux it spins long in user space and hands over
/// through priority-inheritance futexes; with more threads than cores and a preempted
/// holder, writers of a hot bucket burned their time slices spinning (`rcumaps stress
/// --keys 16 --threads 8` on 2 cores ran at 0.06 Mops/s). Here a waiter spins a few
/// dozen `pause`s, then sleeps until the holder wakes it. The lock word's acquire and
/// release are Swift atomics, so ThreadSanitizer sees the ordering it provides.
///
/// Invariant: `words` holds `count` initialised atomics at stable addresses.
///
/// Concurrency: any thread; not reentrant; a holder must not wait for a grace period.
@usableFromInline
package struct BucketLocks: ~Copyable {
    let words: UnsafeMutablePointer<Atomic<UInt32>>
    let count: Int

    static let spins = 64

    package init(count: Int) {
        self.count = count
        words = .allocate(capacity: count)
        for index in 0..<count { (words + index).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: count)
        words.deallocate()
    }

    /// Runs `body` with lock `index` held.
    @inline(__always)
    package func withLock<Result>(_ index: Int, _ body: () throws(Never) -> Result) -> Result {
        let word = words + index
        if !word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            Self.lockContended(word)
        }
        defer {
            if word.pointee.exchange(0, ordering: .releasing) == 2 {
                rcumaps_futex_wake(UnsafeMutableRawPointer(word), 1)
            }
        }
        return body()
    }

    /// Takes lock `index` (pair with ``unlock(_:)``; prefer ``withLock(_:_:)``).
    @usableFromInline
    package func lock(_ index: Int) {
        let word = words + index
        if !word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            Self.lockContended(word)
        }
    }

    /// Releases lock `index`, taken with ``lock(_:)``.
    @usableFromInline
    package func unlock(_ index: Int) {
        let word = words + index
        if word.pointee.exchange(0, ordering: .releasing) == 2 {
            rcumaps_futex_wake(UnsafeMutableRawPointer(word), 1)
        }
    }

    /// Takes a lock another thread holds: spin a little, then sleep on the futex.
    @inline(never)
    static func lockContended(_ word: UnsafeMutablePointer<Atomic<UInt32>>) {
        for _ in 0..<spins {
            if word.pointee.load(ordering: .relaxed) == 0,
               word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
                return
            }
            rcumaps_cpu_relax()
        }
        // Mark the lock contended (2) and sleep until it is free; taking it from 0 here
        // leaves it at 2, so its release wakes the next sleeper (at worst one spurious wake).
        while word.pointee.exchange(2, ordering: .acquiring) != 0 {
            rcumaps_futex_wait(UnsafeMutableRawPointer(word), 2)
        }
    }
}
