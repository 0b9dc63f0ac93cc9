import CRCUMapsShim
import Synchronization

/// A 4-byte futex mutex that spins briefly, then sleeps: the classic three-state futex lock
/// (0 free, 1 held, 2 held with sleepers), on a lock word the caller owns.
///
/// Why not `Synchronization.Mutex` or a pthread mutex: on Linux the first spins long in
/// user space and hands over through priority-inheritance futexes — with more threads than
/// cores and a preempted holder, writers burned their time slices spinning (`rcumaps stress
/// --keys 16 --threads 8` on 2 cores ran at 0.06 Mops/s) — and the second costs a call and
/// about 55 instructions a lock and unlock. Here an uncontended lock is one compare-exchange
/// and an unlock one exchange; a waiter of ``lock(_:)`` spins a few dozen `pause`s, then
/// sleeps until the holder wakes it; a waiter of ``lockBackingOff(_:)`` checks the word
/// eleven times with exponentially longer `pause` runs between checks (2,272 `pause`s,
/// about 57 µs here) before it sleeps. The word's acquire and release are Swift atomics, so
/// ThreadSanitizer sees the ordering the lock provides.
///
/// Concurrency: any thread; not reentrant; a holder must not wait for a grace period.
@usableFromInline
package enum FutexLock {
    /// Spins before a waiter sleeps.
    package static let spins = 64

    /// Takes the lock of `word`.
    @inlinable @inline(__always)
    package static func lock(_ word: UnsafeMutablePointer<Atomic<UInt32>>) {
        if !word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            lockContended(word)
        }
    }

    /// Releases the lock of `word`, taken with ``lock(_:)`` or ``lockBackingOff(_:)`` (or,
    /// after a `fork`, in the parent or the child).
    @inlinable @inline(__always)
    package static func unlock(_ word: UnsafeMutablePointer<Atomic<UInt32>>) {
        if word.pointee.exchange(0, ordering: .releasing) == 2 {
            rcumaps_futex_wake(UnsafeMutableRawPointer(word), 1)
        }
    }

    /// Takes the lock of `word`, for a lock that every operation of a structure takes (a
    /// QUEUE or STACK map's ring), where contention is the common case under several
    /// threads: a waiter backs off exponentially before it sleeps
    /// (``lockContendedBackingOff(_:)``). Released with ``unlock(_:)``.
    @inlinable @inline(__always)
    package static func lockBackingOff(_ word: UnsafeMutablePointer<Atomic<UInt32>>) {
        if !word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            lockContendedBackingOff(word)
        }
    }

    /// Checks of the word a backing-off waiter makes before it sleeps.
    package static let backoffRounds = 11
    /// `pause`s before a backing-off waiter's first check; the wait doubles from there.
    package static let backoffStart = 32
    /// Most `pause`s between two checks of a backing-off waiter: with ``backoffStart`` and
    /// ``backoffRounds``, a waiter spins at most 2,272 `pause`s (32 + 64 + 128 + 8 × 256;
    /// about 57 µs where a `pause` takes 25 ns, as on this project's AMD EPYC machine)
    /// before it sleeps.
    package static let backoffCap = 256

    /// Takes a lock another thread holds, checking it after 32, 64, 128, then every 256
    /// `pause`s (``backoffStart``, doubling up to ``backoffCap``; ``backoffRounds`` checks),
    /// then sleeping on the futex as ``lockContended(_:)`` does (``sleepUntilTaken(_:)``).
    ///
    /// Why: a waiter that checks after every `pause` (``lockContended(_:)``) takes the lock
    /// as soon as the holder lets it go, so under two threads that push and pop without a
    /// break the lock's line, and the ring's, moved between the cores at every operation
    /// (`rcumaps bench --maps queues --threads 2`: 8–15 M pairs a second, about
    /// `Mutex<Deque>`'s rate). Backing off lets the holder run a burst of operations on
    /// lines its core already has; a first check after one `pause` still changed hands
    /// often (26–47 M pairs a second), a first check after 32 far less (47–72). See
    /// docs/performance.md. The lock is not fair: a waiter may see a burst of the holder's
    /// operations before it gets in, waits at least 32 `pause`s once it finds the lock held,
    /// and sleeps after about 57 µs of trying.
    @usableFromInline @inline(never)
    package static func lockContendedBackingOff(_ word: UnsafeMutablePointer<Atomic<UInt32>>) {
        var pauses = backoffStart
        for _ in 0..<backoffRounds {
            for _ in 0..<pauses { rcumaps_cpu_relax() }
            if word.pointee.load(ordering: .relaxed) == 0,
               word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
                return
            }
            pauses = Swift.min(pauses &* 2, backoffCap)
        }
        sleepUntilTaken(word)
    }

    /// Takes a lock another thread holds: spin a little, then sleep on the futex.
    @usableFromInline @inline(never)
    package static func lockContended(_ word: UnsafeMutablePointer<Atomic<UInt32>>) {
        for _ in 0..<spins {
            if word.pointee.load(ordering: .relaxed) == 0,
               word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
                return
            }
            rcumaps_cpu_relax()
        }
        sleepUntilTaken(word)
    }

    /// The end of both contended paths: marks the lock contended (2) and sleeps until it is
    /// free; taking it from 0 here leaves it at 2, so its release wakes the next sleeper (at
    /// worst one spurious wake).
    @inline(__always)
    static func sleepUntilTaken(_ word: UnsafeMutablePointer<Atomic<UInt32>>) {
        while word.pointee.exchange(2, ordering: .acquiring) != 0 {
            rcumaps_futex_wait(UnsafeMutableRawPointer(word), 2)
        }
    }
}
