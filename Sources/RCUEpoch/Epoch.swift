import CRCUMapsShim

/// Proof that the current thread is inside an epoch (an RCU read-side critical section).
///
/// A section is only ever handed to the synchronous closure of ``Epoch/withSection(_:)``,
/// borrowed: it cannot be copied, stored, or carried across an `await`, so code that
/// holds one is inside the epoch by construction. APIs that return borrowed memory
/// (helper-mode lookups) take `in section: borrowing EpochSection`.
public struct EpochSection: ~Copyable {
    @usableFromInline
    init() {}
}

/// The epoch (RCU) layer: read sections, grace periods and deferred reclamation.
///
/// RCUMaps uses liburcu's *memb* flavour. A thread is registered with liburcu lazily,
/// the first time it enters a section (or frees epoch memory), and unregistered
/// automatically when it exits, so sections work on any thread — including Swift
/// concurrency's pool threads and Dispatch threads — without setup. That registration is
/// where a reader can wait: chiefly while another thread prepares a `fork()` (see Process
/// life), otherwise only briefly for liburcu's registry lock; a registered thread's
/// sections never wait.
///
/// Rules (liburcu's, enforced where they can be):
/// - A section must not span an `await` (a task may resume on another thread). The
///   scoped API takes only synchronous closures, so it cannot.
/// - ``synchronize()-9adyg`` and ``barrier()-129j7`` must not be called inside a section (they would
///   wait for the caller itself): they stop the program with a message if they are.
/// - Memory freed through ``EpochMemory`` stays readable until every section that might
///   have seen it has ended.
///
/// ## Process life
///
/// - **Thread exit.** A thread is unregistered from liburcu when it exits. A thread that
///   exits inside a section (an ``enter()`` without its ``exit()``) has the section ended
///   for it first, with a message on standard error (for the first 8 such threads of the
///   process): grace periods never wait for a thread that is gone.
/// - **Shutdown.** Nothing needs stopping. The epoch layer's grace-period driver (a
///   detached thread, started with the first item queued on it — an
///   `EpochWorkItem.scheduleOnGracePeriodDriver()` item, or a block some map hands it to
///   free, such as a bucket hash's emptied overflow bucket on a delete —, that sleeps when it has nothing to run) never delays `exit`; no other thread of
///   RCUMaps' outlives the work it was started for. Deferred frees and work items still
///   queued when the process exits are simply not run (the memory goes back to the system
///   with the process). Call ``barrier()-129j7`` before exiting when they must run — work
///   items with effects outside the process, or statistics that must settle. liburcu's own
///   reclamation thread depends on its version: 0.13 (Debian 12) never delays `exit`; 0.14
///   and later (Ubuntu 24.04) stop it in a destructor at exit when it exists and nothing is
///   queued on it, which waits for a grace period and for the batch of callbacks the thread
///   is running — so then `exit` waits for every other thread's section, never returns
///   when called inside a section of the calling thread (the grace period waits for that
///   section), and waits for a work item that is running. Leave every section before
///   calling `exit`.
/// - **fork().** A child of a fork (without exec) can use epochs and maps: RCUMaps pauses
///   liburcu's workers and waits for the grace periods in flight before the fork, and in
///   the child forgets the threads that did not follow it and starts a new reclamation
///   thread, which also runs the deferred frees the parent had queued — and its queued work
///   items, which therefore run in both processes (mind items with effects outside the
///   process). A fork waits for the grace periods in flight (each waits for the sections
///   that began before it), not otherwise for the sections in progress on other threads:
///   those threads are not in the child, whose grace periods no longer wait for them. A
///   section must therefore not wait for something the forking thread does after `fork()`.
///   In the child only
///   the forking thread exists; blocks that other threads were about to retire stay
///   allocated there. Do not fork inside a section (or a liburcu read lock your code took
///   itself) or from a work item: such a fork cannot be prepared, and its child may only read maps, then `exec` or `_exit` (a grace period,
///   a barrier or a new thread's first section stops it with a message). Threads that your
///   code registered with liburcu itself (see ``adoptRegisteredThread()``) must be
///   released (``releaseAdoptedThread()``) and unregistered before a fork, as liburcu
///   requires — unless the child only calls `exec` or `_exit`, which liburcu allows, from
///   such a thread too (adopted or not: RCUMaps leaves the forker's registration as it is).
///   A fork counts as RCUMaps' first use of a forking thread no one registered: it is
///   registered then, so register your own threads with liburcu before they fork. Fork from
///   one thread at a time: a fork inside a section waits for glibc's
///   fork lock while another thread's fork, holding it, waits for a grace period that
///   waits for that section. In a process that forks, do not make a thread's first RCUMaps
///   call, create a lock-free HASH or drop the last reference to one (outside a section,
///   its teardown waits for rculfhash's resize worker, paused by a fork), call
///   `synchronize()` or freeze a map while holding a
///   lock that a reclamation callback takes (a `deinit` of a value released after a grace
///   period, a work item): a fork in progress waits for the callbacks in flight while it
///   keeps those calls waiting. docs/architecture.md ("Process life") lists what a child may
///   do with maps and `RCUDictionary`s that other threads were writing at the fork (and
///   with queues, stacks and LPM tries other threads were reading, and hashes they were
///   reading in batches).
public enum Epoch {
    /// Runs `body` inside an epoch and returns its result.
    ///
    /// Sections nest; an inner section costs about as much as an outer one.
    ///
    /// - Parameter body: Synchronous code to run in the section. It receives a borrowed
    ///   ``EpochSection`` that proves to map APIs that the epoch is held.
    /// - Returns: Whatever `body` returns.
    /// - Throws: Whatever `body` throws; the section is left first.
    ///
    /// Concurrency: callable from any thread, any time. Reads performed in `body` see
    /// memory published before they happen; memory retired meanwhile is not reclaimed
    /// until `body` returns. The corresponding liburcu functions are
    /// `urcu_memb_read_lock` / `urcu_memb_read_unlock` (generic `rcu_read_lock`).
    @inlinable @inline(__always)
    public static func withSection<Result, Failure: Error>(
        _ body: (borrowing EpochSection) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        _epochReadLock()
        // (An `exit()` inside the body with no `enter()` of its own open stops the program at
        // once: `exit()` counts the unscoped sections it may end.)
        defer { _epochReadUnlock() }
        return try body(EpochSection())
    }

    /// Enters an epoch without a scope. Pair with ``exit()`` on the same thread.
    ///
    /// Prefer ``withSection(_:)``. This form exists for code that cannot be scoped
    /// (C providers, hand-written fast paths). Never `await` between `enter()` and `exit()`.
    ///
    /// Concurrency: any thread; nestable. Wraps `urcu_memb_read_lock`.
    @available(*, noasync, message: "a task may resume on another thread between enter() and exit(): use Epoch.withSection")
    @inlinable @inline(__always)
    public static func enter() {
        _epochReadLock()
        rcumaps_unscoped_enter()
    }

    /// Leaves an epoch entered with ``enter()``.
    ///
    /// - Precondition: the calling thread has a section of its own ``enter()`` open. An
    ///   `exit()` with none — outside any epoch, or inside a ``withSection(_:)`` body, which
    ///   did not enter the body's section — stops the program with a message, in every build
    ///   configuration: going on would leave the thread without a read lock while pointers
    ///   borrowed under the section are still in use (inside `withSection`, a later
    ///   `enter()` balanced the depth again, and nothing stopped: found by review,
    ///   2026-12-06, twenty-sixth session). (C providers' `epoch_exit` refuses it instead:
    ///   see `rcumaps_provider.h`.)
    ///
    /// Concurrency: the thread that called ``enter()``. Wraps `urcu_memb_read_unlock`.
    @available(*, noasync, message: "a task may resume on another thread between enter() and exit(): use Epoch.withSection")
    @inlinable @inline(__always)
    public static func exit() {
        if _slowPath(rcumaps_unscoped_exit() == 0) { _unbalancedExit() }
        _epochReadUnlock()
    }

    @usableFromInline @inline(never)
    static func _unbalancedExit() -> Never {
        if rcumaps_read_nesting() == 0 {
            _rcumapsTrap("Epoch.exit() called outside an epoch: no matching Epoch.enter() on this thread")
        }
        _rcumapsTrap("Epoch.exit() with no Epoch.enter() of its own open on this thread (inside Epoch.withSection, "
                         + "whose section the body did not enter): pointers borrowed under the section would be used "
                         + "without a read lock")
    }

    /// The library's own unscoped section (its maps' lookups and writes): ``enter()``
    /// without the count of unscoped sections that ``exit()`` checks. Not for other code:
    /// use ``withSection(_:)`` or ``enter()``.
    @available(*, noasync)
    @inlinable @inline(__always)
    public static func _libraryEnter() {
        _epochReadLock()
    }

    /// Leaves a section of ``_libraryEnter()`` (what ``exit()`` did before it counted
    /// unscoped sections: it stops the program outside any epoch).
    @available(*, noasync)
    @inlinable @inline(__always)
    public static func _libraryExit() {
        if _slowPath(rcumaps_read_nesting() == 0) { _unbalancedExit() }
        _epochReadUnlock()
    }

    /// Declares that the calling thread is already registered with liburcu-memb by code
    /// outside RCUMaps (your own liburcu use, a C provider's threads), so that RCUMaps
    /// neither registers it a second time — which liburcu forbids — nor unregisters it at
    /// thread exit. Call it once on such a thread before its first section. A thread
    /// registered elsewhere and not adopted stops the program with a message at its first
    /// section or map operation (a `fork()` from it does not: the fork handlers leave its
    /// registration alone). Adopting a thread liburcu does not know stops the program with
    /// a message: its sections would protect nothing.
    ///
    /// Threads RCUMaps registers itself need nothing: registration is automatic.
    ///
    /// Call it outside the thread's liburcu read-side critical sections (inside one, the
    /// program stops with a message), and end those before the thread exits: RCUMaps'
    /// thread-exit handler waits at the fork gate to forget the thread, which a fork keeps
    /// closed while it waits for grace periods that wait for such a read lock.
    ///
    /// Before your code unregisters such a thread from liburcu (at the latest before a
    /// fork whose child goes on without `exec`, as liburcu requires), call
    /// ``releaseAdoptedThread()``.
    ///
    /// Concurrency: affects the calling thread only.
    @available(*, noasync, message: "affects the calling thread, which a task may leave at any await")
    public static func adoptRegisteredThread() {
        rcumaps_adopt_registered_thread()
    }

    /// Undoes ``adoptRegisteredThread()``: call it on an adopted thread, outside any section,
    /// before your code unregisters the thread from liburcu. RCUMaps forgets the thread;
    /// once your code has unregistered it, its next section, if any, registers it anew as
    /// RCUMaps' own. Between the two calls the thread must make no section or map operation
    /// (liburcu still holds it: the program stops with a message), unless you adopt it
    /// again. Without the release, the thread's sections would go on marking a liburcu
    /// reader that grace periods no longer wait for.
    ///
    /// ```swift
    /// urcu_memb_register_thread()      // your code's own registration
    /// Epoch.adoptRegisteredThread()
    /// // ... sections, map reads ...
    /// Epoch.releaseAdoptedThread()
    /// urcu_memb_unregister_thread()    // then yours (before a fork, at the latest)
    /// ```
    ///
    /// - Precondition: not inside an epoch section or a liburcu read lock the thread holds
    ///   (the program stops with a message).
    ///
    /// Concurrency: affects the calling thread only. No effect on a thread not adopted.
    @available(*, noasync, message: "affects the calling thread, which a task may leave at any await")
    public static func releaseAdoptedThread() {
        rcumaps_release_adopted_thread()
    }

    /// Whether the calling thread is inside an epoch.
    @inlinable
    public static var isActive: Bool { rcumaps_read_nesting() > 0 }

    /// Whether the calling thread is inside a section or inside a liburcu read lock it took
    /// itself (``isActive`` counts only sections): where waiting for a grace period would
    /// wait for this thread.
    package static var isInsideAnyReadLock: Bool { rcumaps_inside_any_read_lock() != 0 }

    /// Whether `exit` may wait for liburcu's reclamation worker: liburcu 0.14 and later stop
    /// it in a destructor at exit when nothing is queued on it (see "Shutdown" in the type's
    /// notes); 0.13 never does.
    package static var liburcuJoinsItsWorkerAtExit: Bool { rcumaps_liburcu_joins_worker_at_exit() != 0 }

    /// The calling thread's section depth (0 outside any section).
    @inlinable
    public static var nesting: Int { Int(rcumaps_read_nesting()) }

    /// Waits for a grace period: returns once every section that was active when it was
    /// called has ended.
    ///
    /// - Precondition: not inside a section or a liburcu read lock the thread took itself (it
    ///   would wait for itself), and not from a work
    ///   item on the epoch layer's grace-period driver thread (which runs its items holding a
    ///   lock that a `fork()` in progress waits for, while the fork holds the grace periods'
    ///   gate this call waits at).
    ///
    /// Concurrency: any thread outside a section; blocks the caller (do not call it from
    /// a Swift concurrency task that must stay responsive). Wraps `urcu_memb_synchronize_rcu`.
    @available(*, noasync, message: "blocks the thread: use `await Epoch.synchronize()` (in top-level code, which picks this form even after `await`, from inside an async function)")
    public static func synchronize() {
        _rcumapsPrecondition(!isInsideAnyReadLock,
                             "Epoch.synchronize() inside an epoch section (or a liburcu read lock) would deadlock")
        _rcumapsPrecondition(rcumaps_thread_is_gp_driver() == 0,
                             "Epoch.synchronize() from a work item on the grace-period driver could deadlock with a fork")
        rcumaps_synchronize()
    }

    /// Waits until every deferred free and work item scheduled before the call has run,
    /// including the blocks waiting in ``EpochRetireList``s (they are submitted first) and
    /// the items queued on the grace-period driver (waited for before and after liburcu's
    /// barrier, so driver items that liburcu's callbacks queue are waited for too) — and,
    /// round after round (at most 64), the callbacks and items those callbacks queued in
    /// turn: a released object whose `deinit` drops a map that releases objects of its own.
    /// (Blocks a callback retires into a retire list without filling a batch are submitted
    /// only when a further round runs, or by the next barrier.) A round is repeated whenever
    /// the reclamation threads queued anything during it, which they also do for other
    /// threads' writes (a bucket hash's reclaim generations, retire lists' idle flushes):
    /// while other threads keep writing, a barrier may run all 64 rounds, about a second
    /// (found by review, 2026-12-06).
    ///
    /// Use it at teardown (tests, process shutdown) to see memory statistics settle.
    ///
    /// - Precondition: not inside a section, and not on the reclamation thread (from a
    ///   work item), where it would wait for itself.
    ///
    /// Concurrency: any other thread; blocks the caller. Wraps `urcu_memb_barrier`.
    /// Not from the grace-period driver thread either (``EpochMemory/isReclamationThread``
    /// is true there).
    @available(*, noasync, message: "blocks the thread: use `await Epoch.barrier()` (in top-level code, which picks this form even after `await`, from inside an async function)")
    public static func barrier() {
        _rcumapsPrecondition(!isInsideAnyReadLock,
                             "Epoch.barrier() inside an epoch section (or a liburcu read lock) would deadlock")
        _rcumapsPrecondition(!EpochMemory.isReclamationThread,
                     "Epoch.barrier() from a deferred work item would deadlock")
        // Register before flushing: the flush submits batches (call_rcu) with the retire
        // lists' registry lock held, and a registration there could wait for a fork in
        // progress whose prepare handler waits for that lock.
        rcumaps_ensure_registered()
        // Again while the callbacks that ran queued more (a released object whose deinit
        // drops a map that releases its own objects): liburcu's barrier does not wait for a
        // callback queued behind its own (found by review, 2026-12-05, nineteenth session).
        // At most 64 rounds: a callback that queues another every time would go on for ever.
        for _ in 0..<64 {
            let before = rcumaps_reclamation_requeue_count()
            EpochRetireList.flushAll()
            rcumaps_barrier()
            if rcumaps_reclamation_requeue_count() == before { break }
        }
    }
}
