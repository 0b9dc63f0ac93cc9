import Synchronization
import CRCUMapsShim

/// A callback to run once after a grace period, like an eBPF-for-Windows epoch work item.
///
/// Create it up front (so that scheduling cannot fail at an awkward moment), then either
/// ``schedule()`` it — the callback runs after every section active at that time has
/// ended — or ``cancel()`` it. Its memory is accounted under ``PoolTag/workItem`` or the
/// tag given at creation.
///
/// The callback runs on liburcu's reclamation thread: keep it short, do not block, and do
/// not call ``Epoch/barrier()-129j7`` from it. It may enter sections and free epoch memory.
///
/// Concurrency: an item may be created, scheduled and cancelled from any thread;
/// scheduling and cancelling race safely (exactly one of them wins).
public final class EpochWorkItem: Sendable {
    private enum State: Int { case idle = 0, scheduled = 1, cancelled = 2 }

    private let work: @Sendable () -> Void
    private let state = Atomic<Int>(State.idle.rawValue)
    // Invariant: a block from EpochMemory.allocate with room for one pointer; owned by this
    // item until scheduled, then by the reclamation callback, freed exactly once.
    private nonisolated(unsafe) let block: UnsafeMutableRawPointer

    /// Prepares a work item.
    ///
    /// - Returns: `nil` if its memory cannot be allocated.
    public init?(tag: PoolTag = .workItem, _ work: @escaping @Sendable () -> Void) {
        guard let block = EpochMemory.allocate(byteCount: MemoryLayout<UnsafeRawPointer>.size, tag: tag) else {
            return nil
        }
        self.work = work
        self.block = block
    }

    deinit {
        // Never scheduled: its block was never handed to liburcu, release it now.
        if state.load(ordering: .acquiring) != State.scheduled.rawValue {
            EpochMemory.freeUnpublished(block)
        }
    }

    /// Queues the callback for after a grace period.
    ///
    /// - Returns: `false` if the item was already scheduled or cancelled.
    ///
    /// Concurrency: any thread, inside or outside a section; never waits for a grace period
    /// (a thread's first call registers it, which waits for a fork in progress).
    @discardableResult
    public func schedule() -> Bool {
        guard state.compareExchange(expected: State.idle.rawValue, desired: State.scheduled.rawValue,
                                    ordering: .acquiringAndReleasing).exchanged else { return false }
        // The block keeps the item alive until the callback has run.
        block.storeBytes(of: Unmanaged.passRetained(self).toOpaque(), as: UnsafeMutableRawPointer.self)
        EpochMemory.scheduleWork(block)
        return true
    }

    /// Queues the callback for after a grace period, to run on the epoch layer's
    /// grace-period driver thread instead of liburcu's reclamation thread.
    ///
    /// liburcu's call_rcu worker naps 10 ms after every batch of callbacks, so a chain of
    /// items each scheduling the next (the bucket hash's reclaim generations) advances at
    /// most one step per 10 ms. The driver waits for a grace period (`synchronize_rcu`) as
    /// soon as items are queued, runs them, and starts the next grace period after a short
    /// nap (1 ms; `RCUMAPS_GP_DRIVER_NAP_US` overrides) while more keep arriving; it sleeps
    /// when none is queued. Same guarantee as ``schedule()``: the callback runs after every
    /// section active at the call has ended. ``Epoch/barrier()-129j7`` waits for these
    /// items too. The same rules apply to the callback (short, no blocking, no barrier).
    /// Not API: for the bucket hash's generation items, whose latency bounds slot reuse,
    /// and the idle flushes of retire lists (``EpochRetireList/flushesWhenIdle``), whose
    /// latency bounds when a removed value is released.
    ///
    /// - Returns: `false` if the item was already scheduled or cancelled.
    ///
    /// Concurrency: any thread, inside or outside a section; takes a short mutex, never
    /// waits for a grace period.
    @discardableResult
    package func scheduleOnGracePeriodDriver() -> Bool {
        guard state.compareExchange(expected: State.idle.rawValue, desired: State.scheduled.rawValue,
                                    ordering: .acquiringAndReleasing).exchanged else { return false }
        block.storeBytes(of: Unmanaged.passRetained(self).toOpaque(), as: UnsafeMutableRawPointer.self)
        EpochMemory.scheduleWork(block, onDriver: true)
        return true
    }

    /// For a caller that holds a claim on an item it scheduled on the driver (an idle flush
    /// pending, a generation in flight) and so enqueues no other: starts the driver if its
    /// thread could not be started before (a thread limit). An enqueue is what retries the
    /// start, and a claim held stops every later caller from enqueuing, so without this the
    /// claimed item waited for a barrier that may never come (found by review, 2026-12-06,
    /// twenty-eighth session). One relaxed load of a flag when the driver runs. After a
    /// failed start, a start is tried at most once every 10 ms (by this call and by an
    /// enqueue alike): within those 10 ms this reads the clock and returns, taking no lock.
    ///
    /// Concurrency: any thread, inside or outside a section (takes the driver's short mutex,
    /// and tries to create its thread, only when its start failed 10 ms ago or more).
    @inlinable @inline(__always)
    package static func retryDriverStartIfItFailed() {
        if _slowPath(rcumaps_gp_driver_start_failed() != 0) { rcumaps_gp_driver_retry_start() }
    }

    /// Cancels an item that has not been scheduled; its callback will never run.
    ///
    /// - Returns: `false` if it was already scheduled (it will run) or cancelled.
    @discardableResult
    public func cancel() -> Bool {
        state.compareExchange(expected: State.idle.rawValue, desired: State.cancelled.rawValue,
                              ordering: .acquiringAndReleasing).exchanged
    }

    /// Called by the reclaim callback with a work-item block's payload.
    static func run(payload: UnsafeMutableRawPointer) {
        let item = Unmanaged<EpochWorkItem>.fromOpaque(payload.load(as: UnsafeMutableRawPointer.self))
            .takeRetainedValue()
        item.work()
    }
}

extension Epoch {
    /// Runs `work` once after a grace period (on the reclamation thread).
    ///
    /// - Returns: `false` if the work item could not be allocated (nothing was scheduled).
    ///
    /// Concurrency: any thread; never waits for a grace period (a thread's first call
    /// registers it, which waits for a fork in progress). See ``EpochWorkItem`` for what
    /// `work` may do.
    @discardableResult
    public static func afterGracePeriod(tag: PoolTag = .workItem,
                                        _ work: @escaping @Sendable () -> Void) -> Bool {
        guard let item = EpochWorkItem(tag: tag, work) else { return false }
        return item.schedule()
    }
}
