#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RCUMaps
import Synchronization

/// Start barrier, checkpoints (pause / resume), stop signal and the shared operation count
/// of one stress run's workers.
///
/// Checkpoints: the coordinator requests pause `g`; each worker, at its next batch boundary
/// (never inside an operation or an iteration pass), checks its own keys, counts itself
/// paused and waits for resume `g`. With every worker paused, the map is quiescent.
final class StressControl: Sendable {
    let threads: Int
    private let ready = Atomic<Int>(0)
    private let started = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let pauseRequested = Atomic<Int>(0)
    /// Cumulative: each worker adds one per checkpoint.
    private let pausedArrivals = Atomic<Int>(0)
    private let resumedGeneration = Atomic<Int>(0)
    private let finishedWorkers = Atomic<Int>(0)
    private let operationCount = Atomic<Int>(0)

    init(threads: Int) { self.threads = threads }

    // MARK: Workers

    /// Announces the worker and waits for the start.
    func arriveAndWait() {
        ready.add(1, ordering: .releasing)
        while !started.load(ordering: .acquiring) { Self.nap() }
    }

    @inline(__always)
    var shouldStop: Bool { stopped.load(ordering: .relaxed) }

    /// The latest checkpoint requested.
    @inline(__always)
    var requestedPause: Int { pauseRequested.load(ordering: .acquiring) }

    /// Counts the worker paused for checkpoint `generation`, then waits until it is resumed.
    func pause(generation: Int) {
        pausedArrivals.add(1, ordering: .acquiringAndReleasing)
        while resumedGeneration.load(ordering: .acquiring) < generation { Self.nap() }
    }

    /// Adds finished operations to the shared count.
    @inline(__always)
    func addOperations(_ count: Int) { operationCount.add(count, ordering: .relaxed) }

    /// Called by a worker as it leaves.
    func finish() { finishedWorkers.add(1, ordering: .releasing) }

    // MARK: Coordinator

    /// Waits until `count` workers have arrived (up to `timeout` ns); whether they did.
    func waitForArrivals(_ count: Int, timeout: UInt64) -> Bool {
        Self.wait(timeout: timeout) { ready.load(ordering: .acquiring) >= count }
    }

    func start() { started.store(true, ordering: .releasing) }

    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Requests checkpoint `generation` (1, 2, …) and waits until every worker is paused
    /// (up to `timeout` ns); whether they all did.
    func pauseAll(generation: Int, timeout: UInt64) -> Bool {
        pauseRequested.store(generation, ordering: .releasing)
        return Self.wait(timeout: timeout) { pausedArrivals.load(ordering: .acquiring) >= threads * generation }
    }

    func resumeAll(generation: Int) { resumedGeneration.store(generation, ordering: .releasing) }

    /// Waits until every worker has left its loop (up to `timeout` ns); whether they did.
    func waitForFinish(timeout: UInt64) -> Bool {
        Self.wait(timeout: timeout) { finishedWorkers.load(ordering: .acquiring) >= threads }
    }

    var operations: Int { operationCount.load(ordering: .relaxed) }

    /// Workers that have left their loop.
    var finished: Int { finishedWorkers.load(ordering: .acquiring) }

    // MARK: Waiting

    /// Sleeps briefly (50 µs): waiting threads must not take the CPU from the others.
    static func nap() {
        var request = timespec(tv_sec: 0, tv_nsec: 50_000)
        _ = nanosleep(&request, nil)
    }

    static func wait(timeout: UInt64, until condition: () -> Bool) -> Bool {
        let deadline = MonotonicClock.nanoseconds() + timeout
        while !condition() {
            if MonotonicClock.nanoseconds() >= deadline { return false }
            nap()
        }
        return true
    }
}

/// The units of a hash map's capacity in use — entries, reservations and parked credits,
/// never fewer than the entries — for the check against `maxEntries` (`count` is clamped to
/// `maxEntries`, so it cannot show an overshoot); `count` for maps without a capacity gate.
func stressCapacityUnits(of map: any RawMap) -> Int {
    if let reporting = map as? StressCapacityReporting { return reporting.stressCapacityUnits }
    if let bucket = map as? RawBucketHashMap { return bucket.capacityUnitsInUse }
    if let lockFree = map as? RawLockFreeHashMap { return lockFree.capacityUnitsInUse }
    if let perCPU = map as? RawPerCPUHashMap { return perCPU.storage.capacityUnitsInUse }
    // The object map (found by review, 2026-12-05, sixteenth session: it fell through to
    // the clamped count, so its check could never fire).
    if let custom = map as? RawCustomMap { return custom.capacityUnitsInUse }
    return map.count
}

/// A map that reports its own capacity units to the stress checks (a test's stand-in for a
/// map whose gate overshoots: no test could show the overshoot checks fire before).
protocol StressCapacityReporting {
    /// Units of capacity in use, as ``stressCapacityUnits(of:)`` reads them.
    var stressCapacityUnits: Int { get }
}

/// The kinds of invariant violation, for the summary.
enum StressViolation: String, CaseIterable, Sendable {
    case value = "torn or foreign value"
    case ownKey = "owned key differs from its owner's record"
    case stableKey = "stable key missing"
    case timeTravel = "value went back in time"
    case iteration = "iteration pass"
    case count = "count out of bounds"
    /// The capacity gate's units in use (entries, reservations, parked credits) above
    /// `maxEntries` under concurrent inserts into a full map.
    case countOvershoot = "capacity units above maxEntries"
    case errno = "unexpected errno"
    case consistency = "quiescent map inconsistent"
    case references = "object reference counts"
    case memory = "memory not released"
    case setup = "setup, threads or provider"
    /// Queues and stacks: a value popped (or dropped by an overwriting push) twice, or
    /// still in the map after it was removed. Key-value maps: a value returned by two
    /// lookup-and-deletes, or still in the map after one returned it (``StressContest``).
    case duplicate = "value removed twice"
    /// Queues and stacks: a value pushed that was never removed and is not in the map.
    case lost = "value lost"
    /// Queues and stacks: a producer's values out of FIFO (queue) or LIFO (stack at rest) order.
    case order = "order (FIFO / LIFO)"
    /// Key-value maps: two `BPF_NOEXIST` inserts won one absent episode of a contested key,
    /// or two removals one present episode (``StressContest``).
    case twoWinners = "two winners of one race"
}

/// Collects invariant violations from every thread: all are counted (by kind), the first
/// few described.
final class StressRecorder: Sendable {
    /// Descriptions kept (and echoed) per run.
    static let kept = 10

    let label: String
    let echo: Bool
    private let count = Atomic<Int>(0)
    private let first = ThreadLock<(descriptions: [String], byKind: [StressViolation: Int])>(([], [:]))

    init(label: String, echo: Bool) {
        self.label = label
        self.echo = echo
    }

    /// Records one violation; the message is built only for the first few.
    func record(_ kind: StressViolation, _ message: @autoclosure () -> String) {
        let number = count.wrappingAdd(1, ordering: .relaxed).newValue
        let text: String? = number <= Self.kept ? message() : nil
        first.withLock { state in
            state.byKind[kind, default: 0] += 1
            if let text { state.descriptions.append(text) }
        }
        if let text, echo { writeToStandardError("VIOLATION [\(label)] \(text)\n") }
    }

    var violations: Int { count.load(ordering: .relaxed) }
    var descriptions: [String] { first.withLock { $0.descriptions } }
    /// Violations by kind, in declaration order, kinds with none left out.
    var byKind: [(StressViolation, Int)] {
        let counts = first.withLock { $0.byKind }
        return StressViolation.allCases.compactMap { kind in counts[kind].map { (kind, $0) } }
    }
}

/// What the workers of a run did, by operation and outcome.
struct StressStats: Sendable, Equatable {
    var operations = 0
    var lookups = 0
    var lookupHits = 0
    var helperLookups = 0
    var helperLookupHits = 0
    /// Writes made in helper mode by the runs that count them apart (LPM: inserts, deletes
    /// and replaces inside an epoch section).
    var helperWrites = 0
    var foreignOperations = 0
    var updates = 0
    var updatesStored = 0
    var updatesExisting = 0  // EEXIST
    var updatesMissing = 0   // ENOENT
    var updatesFull = 0      // E2BIG
    var deletes = 0
    var deletesDone = 0
    var lookupAndDeletes = 0
    var lookupAndDeletesDone = 0
    /// Operations refused by design (array delete, helper mode on the object map, …).
    var refusals = 0
    var passes = 0
    var passKeys = 0
    var countChecks = 0
    var selfChecks = 0

    static func + (lhs: StressStats, rhs: StressStats) -> StressStats {
        var sum = lhs
        sum.operations += rhs.operations
        sum.lookups += rhs.lookups
        sum.lookupHits += rhs.lookupHits
        sum.helperLookups += rhs.helperLookups
        sum.helperLookupHits += rhs.helperLookupHits
        sum.helperWrites += rhs.helperWrites
        sum.foreignOperations += rhs.foreignOperations
        sum.updates += rhs.updates
        sum.updatesStored += rhs.updatesStored
        sum.updatesExisting += rhs.updatesExisting
        sum.updatesMissing += rhs.updatesMissing
        sum.updatesFull += rhs.updatesFull
        sum.deletes += rhs.deletes
        sum.deletesDone += rhs.deletesDone
        sum.lookupAndDeletes += rhs.lookupAndDeletes
        sum.lookupAndDeletesDone += rhs.lookupAndDeletesDone
        sum.refusals += rhs.refusals
        sum.passes += rhs.passes
        sum.passKeys += rhs.passKeys
        sum.countChecks += rhs.countChecks
        sum.selfChecks += rhs.selfChecks
        return sum
    }
}

/// One worker's leavings: its statistics and what it expects its own keys to hold.
struct StressWorkerReport: Sendable {
    let index: Int
    let stats: StressStats
    /// Per key index: the token the worker last stored under a key it owns (or
    /// ``StressToken/absent``); meaningless for other keys.
    let expected: [UInt64]
}
