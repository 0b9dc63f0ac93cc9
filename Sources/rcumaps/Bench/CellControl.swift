import Histogram
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RCUMaps
import Synchronization

/// What one worker thread measured.
struct WorkerResult: Sendable {
    /// Operations completed.
    var operations = 0
    /// Lookups that found no value (should be zero: every key is prefilled).
    var misses = 0
    /// Updates the map refused (should be zero).
    var failedUpdates = 0
    /// Batch calls made (batch workloads).
    var calls = 0
    /// Churn writes that changed the map: inserts that stored a key, deletes that removed one.
    var changes = 0
    /// Sum of looked-up values, so the optimiser must perform the lookups.
    var checksum: UInt64 = 0
    /// When the worker saw the stop signal (``MonotonicClock/nanoseconds()``).
    var finishedAt: UInt64 = 0
    /// Nanoseconds of each write (`--latency` only).
    var writeLatency: Histogram<UInt64>?
}

/// Start barrier, stop signal and result collection shared by a cell's threads.
final class CellControl: Sendable {
    private let ready = Atomic<Int>(0)
    private let started = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let collected = ThreadLock<[WorkerResult]>([])
    /// Operations after which a worker stops by itself (0: only when told to).
    let operationLimit: Int

    init(operationLimit: Int = 0) { self.operationLimit = operationLimit }

    /// Called by a worker: announces it is ready and waits until all are released.
    func arriveAndWait() {
        ready.add(1, ordering: .releasing)
        while !started.load(ordering: .acquiring) { sched_yield() }
    }

    /// Called by the coordinator: waits until `count` workers have arrived.
    func waitForArrivals(_ count: Int) {
        while ready.load(ordering: .acquiring) < count { sched_yield() }
    }

    /// Releases every waiting worker.
    func start() { started.store(true, ordering: .releasing) }

    /// Tells the workers to finish.
    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Whether a worker that has run `operations` should finish (checked every batch of
    /// operations): told to, or past the operation limit.
    @inline(__always)
    func shouldStop(after operations: Int) -> Bool {
        stopped.load(ordering: .relaxed) || (operationLimit > 0 && operations >= operationLimit)
    }

    /// Records one worker's result.
    func report(_ result: WorkerResult) { collected.withLock { $0.append(result) } }

    /// Every recorded result.
    var results: [WorkerResult] { collected.withLock { $0 } }
}
