import RCUEpoch
import Synchronization

/// An array of 4-byte locks: a ``FutexLock`` word each (see there for why not
/// `Synchronization.Mutex`). `RCUDictionary` takes one per stripe of chains, and the array
/// map's writers of values wider than a word one per group of slots. (The bucket hash does
/// not use it: its chain locks are bits of each chain's first overflow word, see
/// `BucketTable.lockChain`.)
///
/// Invariant: `words` holds `count` initialised atomics at stable addresses.
///
/// Concurrency: any thread; not reentrant; a holder must not wait for a grace period.
@usableFromInline
package struct BucketLocks: ~Copyable {
    let words: UnsafeMutablePointer<Atomic<UInt32>>
    let count: Int

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
        FutexLock.lock(words + index)
        defer { FutexLock.unlock(words + index) }
        return body()
    }

    /// Takes lock `index` (pair with ``unlock(_:)``; prefer ``withLock(_:_:)``).
    @usableFromInline
    package func lock(_ index: Int) {
        FutexLock.lock(words + index)
    }

    /// Whether a thread sleeps waiting for lock `index` (its word says "held with sleepers").
    /// A snapshot, for tests that must know a waiter has arrived.
    package func hasSleepers(_ index: Int) -> Bool {
        words[index].load(ordering: .acquiring) == 2
    }

    /// Releases lock `index`, taken with ``lock(_:)``.
    @usableFromInline
    package func unlock(_ index: Int) {
        FutexLock.unlock(words + index)
    }
}
