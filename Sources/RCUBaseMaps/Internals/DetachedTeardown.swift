import RCUEpoch
#if canImport(Glibc)
import Glibc
#endif

/// Runs `work` now, or — when the caller is inside an epoch (or a liburcu read lock it took
/// itself) or on liburcu's reclamation thread, where liburcu forbids waiting for grace
/// periods — on the process's one teardown thread, which runs such work in order.
///
/// Used by map teardown (`cds_lfht_destroy` must not run in either context, and a map's
/// last reference may be dropped there: the lock-free hash, ARRAY and PERCPU_ARRAY). A
/// destroy may wait for the very section its map was dropped in, so the teardown thread
/// waits there and the work of later drops queues behind it: one thread, however many maps
/// are dropped inside one section (there was a thread per drop: a thousand maps dropped in
/// one section started a thousand threads, each blocked until the section ended; found by
/// review, 2026-12-07). The thread exits once the queue is empty; the next work starts
/// another. When no thread can be started, the work waits in the queue for the next drop's
/// attempt (it was dropped, leaking what it would free). In the child of a fork, work
/// queued in the parent stays queued and runs with the child's next such work (the
/// parent's thread does not exist there).
package func runWhereGracePeriodsMayBeAwaited(_ work: @escaping @Sendable () -> Void) {
    guard Epoch.isInsideAnyReadLock || EpochMemory.isReclamationThread else {
        work()
        return
    }
    TeardownQueue.enqueue(work)
}

/// The work ``runWhereGracePeriodsMayBeAwaited(_:)`` could not run where it was asked, and
/// whether a thread is draining it.
package enum TeardownQueue {
    struct State {
        var work: [@Sendable () -> Void] = []
        var head = 0
        var draining = false
        /// Threads started so far (tests).
        var threadsStarted = 0
    }

    /// A fork participant (``EpochFork/Level/maps``: its holders never wait for anything):
    /// the child gets the lock free and no draining thread.
    static let state: ThreadLock<State> = {
        EpochFork.addParticipant(level: .maps, prepare: { TeardownQueue.state.lockForFork() },
                                 parent: { TeardownQueue.state.unlockAfterFork() },
                                 child: {
                                     TeardownQueue.state.unlockAfterFork()
                                     TeardownQueue.state.withLock { $0.draining = false }
                                 })
        return ThreadLock(State())
    }()

    static func enqueue(_ work: @escaping @Sendable () -> Void) {
        let start = state.withLock { state -> Bool in
            state.work.append(work)
            guard !state.draining else { return false }
            state.draining = true
            state.threadsStarted += 1
            return true
        }
        guard start else { return }
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { _ in
            TeardownQueue.drain()
            return nil
        }, nil)
        if result == 0 {
            pthread_detach(thread)
        } else {
            // No thread now: the work stays queued for the next attempt.
            state.withLock { $0.draining = false }
        }
    }

    /// The teardown thread: runs the queued work in order until none is left.
    static func drain() {
        while true {
            let next = state.withLock { state -> (@Sendable () -> Void)? in
                guard state.head < state.work.count else {
                    state.work.removeAll(keepingCapacity: false)
                    state.head = 0
                    state.draining = false
                    return nil
                }
                let work = state.work[state.head]
                state.head += 1
                return work
            }
            guard let next else { return }
            next()
        }
    }

    /// Tests: teardown threads started so far in this process, and work not yet run.
    package static var statistics: (threadsStarted: Int, pending: Int) {
        state.withLock { ($0.threadsStarted, $0.work.count - $0.head) }
    }
}
