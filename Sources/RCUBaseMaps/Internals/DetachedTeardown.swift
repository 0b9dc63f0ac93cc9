import RCUEpoch
#if canImport(Glibc)
import Glibc
#endif

/// Runs `work` now, or — when the caller is inside an epoch (or a liburcu read lock it took
/// itself) or on liburcu's reclamation thread, where liburcu forbids waiting for grace
/// periods — on a new short-lived thread.
///
/// Used by map teardown (`cds_lfht_destroy` must not run in either context, and a map's
/// last reference may be dropped there: the lock-free hash, ARRAY and PERCPU_ARRAY). With
/// no thread to be had, `work` is dropped (what it would free leaks).
package func runWhereGracePeriodsMayBeAwaited(_ work: @escaping @Sendable () -> Void) {
    guard Epoch.isInsideAnyReadLock || EpochMemory.isReclamationThread else {
        work()
        return
    }
    final class Box: @unchecked Sendable {  // @unchecked: handed to exactly one thread
        let work: @Sendable () -> Void
        init(_ work: @escaping @Sendable () -> Void) { self.work = work }
    }
    let context = Unmanaged.passRetained(Box(work)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().work()
        return nil
    }, context)
    if result == 0 {
        pthread_detach(thread)
    } else {
        // No thread to be had: leaking the table is better than deadlocking. Reclaim it
        // at the next opportunity would need a queue; report loudly in debug builds.
        assertionFailure("cannot start a thread to run work that waits for a grace period (pthread_create: \(result))")
        Unmanaged<Box>.fromOpaque(context).release()
    }
}
