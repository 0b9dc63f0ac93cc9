#if canImport(Glibc)
import Glibc
#endif
import Synchronization

// The epoch layer in Swift concurrency.
//
// Sections are synchronous (`Epoch.withSection`), so they can be used from any task: a task
// never holds a section across an `await`. What must not run on a concurrency pool thread
// is waiting: `synchronize()` and `barrier()` block their thread for a grace period or
// more. Their async forms below wait without blocking any pool thread; the blocking forms
// are `noasync`, as is the unscoped `enter()` / `exit()` pair (a task may resume on another
// thread between them).

extension Epoch {
    /// Waits for a grace period without blocking a thread: returns once every section that
    /// was active when it was called has ended.
    ///
    /// The wait is a callback liburcu runs after the grace period (`call_rcu`), which
    /// resumes the task; no thread is parked meanwhile. (Except once: the first call on a
    /// thread RCUMaps has not registered yet registers it, and a registration waits while a
    /// `fork()` is being prepared, which waits for the grace periods in flight — each of them
    /// for the sections that began before it.)
    ///
    /// A wait still pending when the process forks resumes its task in the parent only: the
    /// callback is queued in the child too (liburcu's queue is copied), where the task's
    /// executor is the parent's and must not run it.
    ///
    /// - Precondition: the calling thread is not inside a section, or a liburcu read lock it
    ///   took itself (checked, with a message).
    ///
    /// Concurrency: any task or thread. The async form of ``synchronize()``.
    public static func synchronize() async {
        _rcumapsPrecondition(!isInsideAnyReadLock,
                             "await Epoch.synchronize() inside an epoch section (or a liburcu read lock) would deadlock")
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            // The callback also runs in a child forked while it was queued: resuming the
            // parent's task there ran parent code in the child, or hung it (found by review,
            // 2026-12-05, eighteenth session).
            let process = getpid()
            let scheduled = afterGracePeriod {
                guard getpid() == process else {
                    asyncWaitsDroppedInChild.wrappingAdd(1, ordering: .relaxed)
                    // Kept, never resumed: released, the checked continuation would report
                    // itself leaked on the child's standard error.
                    _ = Unmanaged.passRetained(ContinuationKeeper(continuation))
                    return
                }
                continuation.resume()
            }
            if scheduled { asyncWaitsScheduled.wrappingAdd(1, ordering: .relaxed) }
            if !scheduled {
                // No memory for the callback: wait on a thread of our own instead.
                runOnDetachedThread {
                    Epoch.synchronize()
                    continuation.resume()
                }
            }
        }
    }

    /// Async ``synchronize()`` waits whose callback ran in a forked child and did not resume
    /// the parent's task there (per process). For tests.
    package static let asyncWaitsDroppedInChild = Atomic<Int>(0)
    /// Async ``synchronize()`` waits whose callback was scheduled (per process). For tests.
    package static let asyncWaitsScheduled = Atomic<Int>(0)

    /// Waits until every deferred free and work item scheduled before the call has run,
    /// without blocking a pool thread (a short-lived thread of its own does the blocking
    /// ``barrier()``). Each call starts its own thread: a thousand concurrent calls start a
    /// thousand threads (each registers with liburcu while it runs), and where no thread can
    /// be started, the call runs the barrier on its pool thread. Await it from a few tasks,
    /// not from every task of a large group.
    ///
    /// - Precondition: the calling thread is not inside a section, or a liburcu read lock it
    ///   took itself (checked, with a message).
    ///
    /// Concurrency: any task or thread. The async form of ``barrier()``.
    public static func barrier() async {
        _rcumapsPrecondition(!isInsideAnyReadLock,
                             "await Epoch.barrier() inside an epoch section (or a liburcu read lock) would deadlock")
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            runOnDetachedThread {
                Epoch.barrier()
                continuation.resume()
            }
        }
    }
}

/// Runs `work` on a new detached thread (or, if none can be started, here).
package func runOnDetachedThread(_ work: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {  // @unchecked: handed to exactly one thread
        let work: @Sendable () -> Void
        init(_ work: @escaping @Sendable () -> Void) { self.work = work }
    }
    let context = Unmanaged.passRetained(Box(work)).toOpaque()
    var thread = pthread_t()
    let started = pthread_create(&thread, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().work()
        return nil
    }, context)
    if started == 0 {
        pthread_detach(thread)
    } else {
        Unmanaged<Box>.fromOpaque(context).takeRetainedValue().work()
    }
}

/// A continuation kept alive in a forked child, where it must not be resumed (see
/// `Epoch.synchronize()`).
private final class ContinuationKeeper: @unchecked Sendable {
    // Never read: only kept.
    let continuation: CheckedContinuation<Void, Never>
    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }
}
