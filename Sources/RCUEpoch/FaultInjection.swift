import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Allocation-failure injection for tests (the `ENABLE_MOCKING` idea of swift-system).
///
/// Two kinds of plan, both isolated from tests running in parallel:
/// - per tag (``failAllocations(tag:after:)``): every allocation under one pool tag, from
///   any thread, fails after some successes until ``disarm(tag:)``;
/// - per thread (``failingOneAllocation(after:_:)``): exactly one allocation made by the
///   calling thread — under any tag — fails, the one after `successes` successful ones.
///   A fault-point sweep runs an operation with `successes = 0, 1, 2, …` until the
///   operation makes fewer allocations than that, and checks each failure is clean.
///
/// Every allocation of the epoch layer goes through here: ``EpochMemory`` blocks (map
/// storage, overflow buckets, work items, retire batches, provider memory from the client
/// table) and ``EpochRetireList`` blocks (lock-free hash entries). Allocations outside it —
/// Swift objects, liburcu's own tables — are not injectable.
///
/// Not API: `package` so that only this package's tests can reach it. When nothing is
/// armed, the cost on the allocation path is one relaxed load.
package enum _FaultInjection {
    private static let armedCount = Atomic<Int>(0)
    private static let plans = ThreadLock<[UInt32: Int]>([:])

    @inline(__always)
    static var isActive: Bool { armedCount.load(ordering: .relaxed) != 0 }

    /// Lets `successes` more allocations under `tag` succeed, then fails every later one
    /// until ``disarm(tag:)``.
    package static func failAllocations(tag: PoolTag, after successes: Int = 0) {
        plans.withLock { plans in
            if plans.updateValue(successes, forKey: tag.rawValue) == nil {
                armedCount.add(1, ordering: .relaxed)
            }
        }
    }

    /// Stops failing allocations under `tag`.
    package static func disarm(tag: PoolTag) {
        plans.withLock { plans in
            if plans.removeValue(forKey: tag.rawValue) != nil {
                armedCount.subtract(1, ordering: .relaxed)
            }
        }
    }

    /// Runs `body` on the calling thread with one allocation failing: the one after
    /// `successes` successful allocations of this thread (any tag). Allocations made by
    /// other threads — the reclamation thread included — are not affected.
    ///
    /// - Returns: What `body` returned, and whether the failure was injected (`false` when
    ///   `body` made `successes` allocations or fewer).
    ///
    /// With `andEveryLater`, every allocation after the first failing one fails too (an
    /// allocator that stays out of memory).
    package static func failingOneAllocation<Result, Failure: Error>(
        after successes: Int, andEveryLater: Bool = false, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> (result: Result, injected: Bool) {
        let plan = ThreadPlan.current
        plan.pointee = ThreadPlan(remaining: successes, armed: true, injected: false, persistent: andEveryLater)
        armedCount.add(1, ordering: .relaxed)
        defer {
            plan.pointee.armed = false
            armedCount.subtract(1, ordering: .relaxed)
        }
        let result = try body()
        return (result, plan.pointee.injected)
    }

    static func shouldFail(tag: PoolTag) -> Bool {
        if let plan = ThreadPlan.currentIfAny, plan.pointee.armed {
            if plan.pointee.remaining == 0 {
                plan.pointee.armed = plan.pointee.persistent
                plan.pointee.injected = true
                return true
            }
            plan.pointee.remaining -= 1
            // On to the tag plans: they hold for every thread (a thread's plan returned
            // here, and allocations under a failing tag succeeded on that thread: found by
            // review, 2026-12-06).
        }
        return plans.withLock { plans in
            guard let remaining = plans[tag.rawValue] else { return false }
            if remaining > 0 {
                plans[tag.rawValue] = remaining - 1
                return false
            }
            return true
        }
    }

    /// The calling thread's plan, in thread-specific storage (tests only: reached only
    /// while some plan is armed).
    struct ThreadPlan {
        var remaining: Int
        var armed: Bool
        var injected: Bool
        var persistent: Bool

        /// Created once (a `static let` is initialised exactly once).
        static let key: pthread_key_t = {
            var key = pthread_key_t()
            let result = pthread_key_create(&key) { pointer in
                pointer?.assumingMemoryBound(to: ThreadPlan.self).deallocate()
            }
            _rcumapsPrecondition(result == 0, "pthread_key_create failed: \(result)")
            return key
        }()

        /// This thread's plan, created on first use.
        static var current: UnsafeMutablePointer<ThreadPlan> {
            if let existing = currentIfAny { return existing }
            let plan = UnsafeMutablePointer<ThreadPlan>.allocate(capacity: 1)
            plan.initialize(to: ThreadPlan(remaining: 0, armed: false, injected: false, persistent: false))
            pthread_setspecific(key, plan)
            return plan
        }

        static var currentIfAny: UnsafeMutablePointer<ThreadPlan>? {
            pthread_getspecific(key)?.assumingMemoryBound(to: ThreadPlan.self)
        }
    }
}
