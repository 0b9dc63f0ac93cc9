#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RCUMaps

/// Why a bench run stopped early.
enum BenchFailure: Error, CustomStringConvertible {
    /// A map could not be created or prefilled.
    case map(MapKind, MapError)
    /// The system would not start a thread.
    case threads(Int)

    var description: String {
        switch self {
        case let .map(kind, error): "cannot build the \(kind.rawValue) map: \(error)"
        case let .threads(count): "cannot start \(count) threads"
        }
    }
}

/// Runs `rcumaps bench` and prints its report.
///
/// Cells run in table order: by workload, then thread count, then map. Each reports
/// progress on stderr; the table (or JSON) goes to stdout at the end.
///
/// - Returns: The exit status: 0, or 1 if a cell failed or a lookup missed.
func runBench(_ options: BenchOptions) -> Int32 {
    var plan: [(workload: Workload, threads: Int, map: MapKind)] = []
    for workload in options.workloads {
        for threads in options.threads {
            for map in options.maps where map.supports(workload) { plan.append((workload, threads, map)) }
        }
    }
    var cells: [CellResult] = []
    for (number, step) in plan.enumerated() {
        let plural = step.threads == 1 ? "thread" : "threads"
        writeToStandardError("[\(number + 1)/\(plan.count)] \(step.map.rawValue) \(step.workload.rawValue) "
            + "\(step.threads) \(plural) ... ")
        do {
            let cell = try runCell(step.map, workload: step.workload, threads: step.threads, options: options)
            // Let deferred frees of this cell's map run before the next cell is timed.
            Epoch.barrier()
            writeToStandardError("\(readable(cell.megaOperationsPerSecond)) Mops/s\n")
            cells.append(cell)
        } catch {
            writeToStandardError("failed\nrcumaps: \(error)\n")
            return 1
        }
    }

    let report = BenchReport(options: options, cells: cells)
    print(options.json ? report.json() : report.table())

    var status: Int32 = 0
    for cell in cells where cell.misses > 0 || cell.failedUpdates > 0 {
        writeToStandardError("rcumaps: warning: \(cell.map.rawValue) \(cell.workload.rawValue) \(cell.threads) threads: "
            + "\(cell.misses) lookups missed, \(cell.failedUpdates) updates failed (expected none)\n")
        status = 1
    }
    return status
}

/// Builds a fresh, prefilled map of `kind` and measures one cell on it.
func runCell(_ kind: MapKind, workload: Workload, threads: Int, options: BenchOptions) throws(BenchFailure) -> CellResult {
    let entries = options.entries
    let measured: Measurement?
    do {
        switch kind {
        case .hashLockFree:
            let map = try LockFreeHashMap(hashDefinition(entries: entries, implementation: .lockFree))
            measured = warmUpAndMeasure(try HashTarget(map: map, entries: entries), workload, threads, options)
        case .hashBucket:
            let map = try BucketHashMap(hashDefinition(entries: entries, implementation: .bucketLocked))
            measured = warmUpAndMeasure(try HashTarget(map: map, entries: entries), workload, threads, options)
        case .array:
            let map = try ArrayMap(arrayDefinition(entries: entries))
            measured = warmUpAndMeasure(try ArrayTarget(map: map, entries: entries), workload, threads, options)
        case .mutexDict:
            measured = warmUpAndMeasure(MutexDictTarget(entries: entries), workload, threads, options)
        case .rwlockDict:
            measured = warmUpAndMeasure(RWLockDictTarget(entries: entries), workload, threads, options)
        case .cRculfhash:
            measured = warmUpAndMeasure(try CRculfhashTarget(entries: entries), workload, threads, options)
        case .cOpenAddressing:
            measured = warmUpAndMeasure(try COpenAddressingTarget(entries: entries), workload, threads, options)
        case .swiftArray:
            measured = warmUpAndMeasure(SwiftArrayTarget(entries: entries), workload, threads, options)
        case .objectMap:
            measured = warmUpAndMeasure(try ObjectMapTarget(entries: entries), workload, threads, options)
        case .epoch:
            measured = warmUpAndMeasure(EpochTarget(entries: entries), workload, threads, options)
        }
    } catch {
        throw .map(kind, error)
    }
    guard let measured else { throw .threads(threads) }
    return CellResult(map: kind, workload: workload, threads: threads, entries: entries,
                      operations: measured.operations, wallNanoseconds: measured.wallNanoseconds,
                      misses: measured.misses, failedUpdates: measured.failedUpdates)
}

/// Runs `workload` untimed for a fifth of the duration (at most 0.1 s), then measures it.
///
/// The warm-up lets caches fill and lets background work the prefill started (the
/// lock-free table's auto-resize, deferred frees) finish before the timed run.
func warmUpAndMeasure<Target: BenchTarget>(
    _ target: Target, _ workload: Workload, _ threads: Int, _ options: BenchOptions
) -> Measurement? {
    guard measure(target, workload: workload, threads: threads, duration: min(0.1, options.duration / 5)) != nil
    else { return nil }
    return measure(target, workload: workload, threads: threads, duration: options.duration)
}

/// Number of CPUs online.
func cpuCount() -> Int {
    max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}
