#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A value guarded by a `pthread_mutex_t`: the lock for plain data that threads share.
///
/// Why not `Synchronization.Mutex`: on Linux it hands a contended lock over through the
/// kernel (PI futex), which ThreadSanitizer cannot see, so every contended `Mutex` section
/// is reported as a data race and hides real ones (checked on Swift 6.3.1). pthread mutexes
/// are intercepted by the sanitizer. (The bucket hash's per-bucket locks are 4-byte futex
/// locks of its own, `BucketLocks`, whose atomics the sanitizer sees.)
///
/// Not API: `package` for this package's modules, the sample provider and the tests.
///
/// Concurrency: any thread; not reentrant; never call it from inside its own `withLock`.
package final class ThreadLock<Value>: @unchecked Sendable {
    // @unchecked Sendable: `value` is only touched with `mutex` held.
    // Unchecked exclusivity: the mutex already makes every access exclusive, and the dynamic
    // check cost more than the lock itself on hot paths (EpochRetireList.retire).
    @exclusivity(unchecked) private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    package init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let result = pthread_mutex_init(mutex, nil)
        _rcumapsPrecondition(result == 0, "pthread_mutex_init failed: \(result)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the value, the lock held.
    @inline(__always)
    package func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        let locked = pthread_mutex_lock(mutex)
        _rcumapsPrecondition(locked == 0, "pthread_mutex_lock failed: \(locked)")
        defer {
            let unlocked = pthread_mutex_unlock(mutex)
            _rcumapsPrecondition(unlocked == 0, "pthread_mutex_unlock failed: \(unlocked)")
        }
        if MemoryLayout<Value>.size == 0 {
            // A lock with no value (`ThreadLock<Void>`): `body` gets a local. The thread
            // sanitizer records an inout access of a zero-sized stored property at the
            // object's own address, and reported it as racing with other threads' reads of
            // the object's header (method calls on the lock before they take it).
            var nothing = value
            return try body(&nothing)
        }
        return try body(&value)
    }

    // MARK: fork() (see EpochFork)

    /// Takes the lock and keeps it: for a fork participant's `prepare` handler, which must
    /// call ``unlockAfterFork()`` from its `parent` and `child` handlers.
    package func lockForFork() {
        let locked = pthread_mutex_lock(mutex)
        _rcumapsPrecondition(locked == 0, "pthread_mutex_lock failed: \(locked)")
    }

    /// Releases a lock taken by ``lockForFork()``, in the parent or in the child (where the
    /// forking thread goes on; a default pthread mutex is simply unlocked, as POSIX's
    /// rationale for `pthread_atfork` does).
    package func unlockAfterFork() {
        pthread_mutex_unlock(mutex)
    }

    /// The value, for the holder of ``lockForFork()``.
    package var valueLockedForFork: Value { value }

    /// Runs `body` with the value, for the holder of ``lockForFork()`` (a `child` handler
    /// resetting state that a thread the child does not have was using).
    package func withValueLockedForFork<Result>(_ body: (inout Value) -> Result) -> Result { body(&value) }
}
