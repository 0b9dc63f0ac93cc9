import RCUEpoch
import Synchronization

/// One 4-byte lock per bucket of the bucket hash: a ``FutexLock`` word each (see there for
/// why not `Synchronization.Mutex`).
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

    /// Releases lock `index`, taken with ``lock(_:)``.
    @usableFromInline
    package func unlock(_ index: Int) {
        FutexLock.unlock(words + index)
    }
}
