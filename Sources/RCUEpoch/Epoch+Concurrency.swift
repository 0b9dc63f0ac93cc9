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
    /// resumes the task; no thread is parked meanwhile. Except: the first call on a thread
    /// RCUMaps has not registered yet registers it, and a registration waits while a
    /// `fork()` is being prepared, which waits for the grace periods in flight — each of them
    /// for the sections that began before it; and where the callback cannot be allocated (no
    /// memory), a thread of RCUMaps' own waits in the blocking ``synchronize()`` instead, or,
    /// where no thread can be started either, the caller's pool thread does.
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
            // The process, and the forks its memory has been through: a pid alone missed a
            // grandchild that got the caller's recycled pid (row 266's gap, closed for barriers;
            // found by review, 2026-12-06, thirtieth session).
            let process = getpid()
            let forks = ForkIncarnation.count.load(ordering: .acquiring)
            let scheduled = afterGracePeriod {
                guard getpid() == process, ForkIncarnation.count.load(ordering: .acquiring) == forks else {
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
                // No memory for the callback: wait on a thread of our own instead (or, where
                // none can start, on this one; see the doc).
                runOnDetachedThread {
                    Epoch.synchronize()
                    continuation.resume()
                }
            }
        }
    }

    /// Counts the forks this process's memory has been through (a fork participant's child
    /// handler adds one): an async wait queued before a fork tells its own process from a
    /// descendant that was given the same pid.
    enum ForkIncarnation {
        static let count: Atomic<UInt64> = {
            // The prepare handler reads the static: a fork that comes while another thread is
            // still inside this initialiser (the participant published, the once-lock held)
            // waits for it, where the child's handler would wait for a lock whose holder the
            // child does not have (found by review, 2026-12-06, thirtieth session).
            _ = EpochFork.addParticipant(level: .epoch,
                                         prepare: { _ = ForkIncarnation.count.load(ordering: .relaxed) }, parent: {},
                                         child: { ForkIncarnation.count.wrappingAdd(1, ordering: .releasing) })
            return Atomic(0)
        }()
    }

    /// ``ForkIncarnation``'s count, read. For tests.
    package static var forkIncarnations: UInt64 { ForkIncarnation.count.load(ordering: .acquiring) }

    /// Async ``synchronize()`` waits whose callback ran in a forked child and did not resume
    /// the parent's task there (per process). For tests.
    package static let asyncWaitsDroppedInChild = Atomic<Int>(0)
    /// Async ``synchronize()`` waits whose callback was scheduled (per process). For tests.
    package static let asyncWaitsScheduled = Atomic<Int>(0)

    /// Waits until every deferred free and work item scheduled before the call has run,
    /// without blocking a pool thread: one thread of RCUMaps' own runs the blocking
    /// ``barrier()`` for every task awaiting it. Calls that arrive while that thread is in a
    /// barrier wait for its next one, which starts after they arrived, so a thousand
    /// concurrent calls take one thread and two barriers, not a thousand threads. (Where no
    /// thread can be started, the first caller's pool thread runs the barriers instead.)
    ///
    /// A wait still pending when the process forks resumes its task in the parent only; in
    /// the child the next call starts a barrier thread of the child's own.
    ///
    /// - Precondition: the calling thread is not inside a section, or a liburcu read lock it
    ///   took itself (checked, with a message).
    ///
    /// Concurrency: any task or thread. The async form of ``barrier()``.
    public static func barrier() async {
        _rcumapsPrecondition(!isInsideAnyReadLock,
                             "await Epoch.barrier() inside an epoch section (or a liburcu read lock) would deadlock")
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            _afterBarrier { continuation.resume() }
        }
    }

    /// Runs `resume` once a barrier that started after this call has returned: the shared
    /// waiter of `await Epoch.barrier()`. Not API: `package` for tests (a forked child, where no
    /// task can be awaited). `resume` runs on the barrier thread and must be short.
    package static func _afterBarrier(_ resume: @escaping @Sendable () -> Void) {
        if AsyncBarriers.enqueue(resume) { runOnDetachedThread { AsyncBarriers.run() } }
    }

    /// Threads (or, where none could start, pool threads) that ran awaited barriers, per
    /// process. For tests.
    package static let asyncBarrierRunners = Atomic<Int>(0)

    /// Awaited barriers queued behind the one running now (or about to), per process. For
    /// tests.
    package static var asyncBarrierWaiters: Int { AsyncBarriers.state.withLock { $0.waiting.count } }

    /// Tests only: `hook` runs on the barrier thread before each barrier it starts (nil:
    /// none). A forked child keeps the parent's hook until it sets its own.
    package static func _setBeforeAsyncBarrier(_ hook: (@Sendable () -> Void)?) {
        AsyncBarriers.state.withLock { $0.beforeBarrier = hook }
    }
}

/// The one thread that runs the barriers tasks await (see `Epoch.barrier()` async).
///
/// Invariant: `running` is true from the moment a caller is told to start the thread until
/// that thread finds `waiting` empty under the lock and stops; while it is true, callers
/// only append to `waiting`. The thread takes the whole of `waiting` *before* each barrier,
/// so every waiter it resumes arrived before that barrier started.
private enum AsyncBarriers {
    struct State {
        /// Whether a thread runs (or is being started to run) the barriers.
        var running = false
        /// The process that thread belongs to: in a forked child it does not exist.
        var process: pid_t = 0
        /// Waiters for the next barrier.
        var waiting: [@Sendable () -> Void] = []
        /// See `Epoch._setBeforeAsyncBarrier(_:)`.
        var beforeBarrier: (@Sendable () -> Void)?
    }

    /// A fork participant: a fork while another thread held the lock would leave it held in
    /// the child, by a thread that does not exist there. Holders take no other lock. The
    /// child handler forgets the parent's barrier thread (``forgetParentsThread(_:)``); so
    /// does the next call in a child whose fork was not prepared (its pid differs; a pid
    /// alone would miss a grandchild that got its grandparent's recycled pid: found by
    /// review, 2026-12-06).
    static let state: ThreadLock<State> = {
        EpochFork.addParticipant(level: .epoch, prepare: { AsyncBarriers.state.lockForFork() },
                                 parent: { AsyncBarriers.state.unlockAfterFork() },
                                 child: {
                                     AsyncBarriers.state.withValueLockedForFork { AsyncBarriers.forgetParentsThread(&$0) }
                                     AsyncBarriers.state.unlockAfterFork()
                                 })
        // The keeper's class initialised here, not first in a child handler (where another
        // thread of the parent may have held the runtime's metadata lock at the fork).
        _ = WaitersKeeper([])
        return ThreadLock(State())
    }()

    /// In a forked child: the parent's barrier thread is not here, and its waiters are the
    /// parent's tasks, which must not resume here; kept, never released (a released checked
    /// continuation reports itself leaked).
    static func forgetParentsThread(_ state: inout State) {
        if !state.waiting.isEmpty { _ = Unmanaged.passRetained(WaitersKeeper(state.waiting)) }
        state.waiting = []
        state.running = false
    }

    /// Queues `resume`; returns whether the caller must start the barrier thread.
    static func enqueue(_ resume: @escaping @Sendable () -> Void) -> Bool {
        let process = getpid()
        return state.withLock { state in
            if state.running, state.process != process { forgetParentsThread(&state) }
            state.waiting.append(resume)
            if state.running { return false }
            state.running = true
            state.process = process
            return true
        }
    }

    /// The barrier thread's loop: a barrier for each batch of waiters, until none is left.
    static func run() {
        Epoch.asyncBarrierRunners.add(1, ordering: .relaxed)
        while true {
            let (batch, hook) = state.withLock { state -> ([@Sendable () -> Void], (@Sendable () -> Void)?) in
                let batch = state.waiting
                state.waiting = []
                if batch.isEmpty { state.running = false }
                return (batch, state.beforeBarrier)
            }
            if batch.isEmpty { return }
            hook?()
            Epoch.barrier()
            for resume in batch { resume() }
        }
    }
}

/// Waiters of the parent's barrier thread, kept in a forked child (see `AsyncBarriers`).
private final class WaitersKeeper: @unchecked Sendable {
    // Never read: only kept.
    let waiters: [@Sendable () -> Void]
    init(_ waiters: [@Sendable () -> Void]) { self.waiters = waiters }
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
