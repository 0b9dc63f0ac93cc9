import Synchronization

/// Allocation-failure injection for tests (the `ENABLE_MOCKING` idea of swift-system,
/// per tag so that tests running in parallel do not disturb each other).
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

    static func shouldFail(tag: PoolTag) -> Bool {
        plans.withLock { plans in
            guard let remaining = plans[tag.rawValue] else { return false }
            if remaining > 0 {
                plans[tag.rawValue] = remaining - 1
                return false
            }
            return true
        }
    }
}
