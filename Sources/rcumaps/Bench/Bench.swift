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

/// One cell of a bench run: which map runs which workload, with which key/value shape,
/// at how many threads.
struct BenchStep: Equatable, Sendable {
    let workload: Workload
    let threads: Int
    let shape: BenchShape
    let map: MapKind
}

/// The cells `options` asks for, in table order: by workload, then thread count, then
/// shape, then map. Combinations a map cannot run (see the two `MapKind.supports`) are
/// left out.
func benchPlan(_ options: BenchOptions) -> [BenchStep] {
    var plan: [BenchStep] = []
    for workload in options.workloads {
        for threads in options.threads {
            for shape in options.shapes {
                for map in options.maps where map.supports(workload) && map.supports(shape) {
                    plan.append(BenchStep(workload: workload, threads: threads, shape: shape, map: map))
                }
            }
        }
    }
    return plan
}

/// Runs `rcumaps bench` and prints its report.
///
/// Cells run in table order (``benchPlan(_:)``). Each reports progress on stderr; the
/// table (or JSON) goes to stdout at the end.
///
/// - Returns: The exit status: 0, 1 if a cell failed or a lookup missed, 2 if the options
///   leave no cell to run.
func runBench(_ options: BenchOptions) -> Int32 {
    guard !benchPlan(options).isEmpty else {
        writeToStandardError("rcumaps: error: none of the maps (\(options.maps.map(\.rawValue).joined(separator: ", "))) runs "
            + "any of the workloads (\(options.workloads.map(\.rawValue).joined(separator: ", "))) in the shapes asked for: "
            + "nothing to measure (rcumaps bench --help lists which maps run which workloads)\n")
        return 2
    }
    // The peer maps' library, checked before the first cell rather than at its cell.
    for kind in options.maps where kind.peerSymbolPrefix != nil {
        do {
            _ = try PeerFunctions.load(kind, from: options.peersLibrary)
        } catch {
            writeToStandardError("rcumaps: error: \(error)\n")
            return 2
        }
    }
    if options.peersLibrary != nil, !options.maps.contains(where: { $0.peerSymbolPrefix != nil }) {
        // (Accepted and ignored without a word before: found by review, 2026-12-06.)
        writeToStandardError("rcumaps: note: --peers-library is used only by the peer maps (ck-ht, libcuckoo, "
            + "tbb-hash-map), and none is named in --maps: it is not loaded\n")
    }
    let standardOnly = options.maps.filter { !$0.runsEveryShape }
    let otherShapes = options.shapes.filter { $0 != .standard }
    if !standardOnly.isEmpty, !otherShapes.isEmpty {
        writeToStandardError("rcumaps: note: \(standardOnly.map(\.rawValue).joined(separator: ", ")) run only their own "
            + "shape; skipped for \(otherShapes.map(\.description).joined(separator: ", "))\n")
    }
    let cells: [CellResult]
    do {
        cells = try runBenchCells(options, progress: true)
    } catch {
        writeToStandardError("rcumaps: \(error)\n")
        return 1
    }

    let report = BenchReport(options: options, cells: cells)
    print(options.json ? report.json() : report.table())

    var status: Int32 = 0
    // (A batch-lookup cell counts a pass that did not return every key once, or a call that
    // failed, as missed lookups.)
    for cell in cells where cell.misses > 0 || cell.failedUpdates > 0 {
        let (missed, failed) = cell.workload == .pushPop ? ("pops found it empty", "pushes refused")
            : cell.workload == .lookupMiss ? ("lookups found a key never inserted", "updates failed")
            : ("lookups missed", "updates failed")
        writeToStandardError("rcumaps: warning: \(cell.map.rawValue) \(cell.workload.rawValue) \(cell.map.shapeLabel(at: cell.shape)) "
            + "\(cell.threads) threads: \(cell.misses) \(missed), \(cell.failedUpdates) \(failed) (expected none)\n")
        status = 1
    }
    // A churn cell whose writes never change the map measures refusals only.
    for cell in cells where cell.workload == .churn && cell.operations > 0 && cell.changes == 0 {
        writeToStandardError("rcumaps: warning: \(cell.map.rawValue) churn \(cell.map.shapeLabel(at: cell.shape)) \(cell.threads) threads: "
            + "none of \(cell.operations) writes changed the map (expected about half)\n")
        status = 1
    }
    return status
}

/// Measures every cell of ``benchPlan(_:)`` in order, with a barrier after each so that
/// deferred frees of one cell's map do not run while the next is timed.
///
/// - Parameter progress: print a line per cell on stderr (`[n/total] map workload shape threads ... Mops/s`).
/// - Throws: the first cell's failure (a map that could not be built, threads that could not start).
func runBenchCells(_ options: BenchOptions, progress: Bool) throws(BenchFailure) -> [CellResult] {
    let plan = benchPlan(options)
    var cells: [CellResult] = []
    for (number, step) in plan.enumerated() {
        if progress {
            let plural = step.threads == 1 ? "thread" : "threads"
            writeToStandardError("[\(number + 1)/\(plan.count)] \(step.map.rawValue) \(step.workload.rawValue) "
                + "\(step.map.shapeLabel(at: step.shape)) \(step.threads) \(plural) ... ")
        }
        let cell: CellResult
        do {
            cell = try runCell(step.map, workload: step.workload, threads: step.threads, shape: step.shape,
                               options: options)
        } catch {
            if progress { writeToStandardError("failed\n") }
            throw error
        }
        // Let deferred frees of this cell's map run before the next cell is timed.
        Epoch.barrier()
        if progress { writeToStandardError("\(readable(cell.megaOperationsPerSecond)) Mops/s\n") }
        cells.append(cell)
    }
    return cells
}

/// Builds a fresh, prefilled map of `kind` and measures one cell on it.
///
/// - Precondition: `kind` supports `shape` (`MapKind.supports`).
func runCell(
    _ kind: MapKind, workload: Workload, threads: Int, shape: BenchShape = .standard, options: BenchOptions
) throws(BenchFailure) -> CellResult {
    _rcumapsPrecondition(kind.supports(shape), "\(kind.rawValue) cannot run shape \(shape)")
    let entries = options.entries
    let measured: Measurement?
    do throws(MapError) {
        switch kind {
        case .hashLockFree, .hashLockFreeUser:
            let map = try RawLockFreeHashMap(hashDefinition(entries: entries, shape: shape, implementation: .lockFree))
            measured = try measureHash(map, shape: shape, userMode: kind == .hashLockFreeUser, workload, threads, options)
        case .hashBucket, .hashBucketUser:
            let map = try RawBucketHashMap(hashDefinition(entries: entries, shape: shape, implementation: .bucketLocked))
            measured = try measureHash(map, shape: shape, userMode: kind == .hashBucketUser, workload, threads, options)
        case .lruHash:
            var definition = hashDefinition(entries: entries, shape: shape, implementation: .bucketLocked)
            definition.type = .lruHash
            definition.maxEntries = entries
            measured = try measureHash(try RawBucketHashMap(definition), shape: shape, userMode: false, workload, threads,
                                       options)
        case .array:
            let map = try RawArrayMap(arrayDefinition(entries: entries))
            measured = warmUpAndMeasure(try ArrayTarget(map: map, entries: entries), workload, threads, options)
        case .typedLockFree:
            let target = try TypedTarget<LockFreeHashMap<UInt64, UInt64>>(entries: entries)
            measured = warmUpAndMeasure(target, workload, threads, options)
        case .typedBucket:
            let target = try TypedTarget<BucketHashMap<UInt64, UInt64>>(entries: entries)
            measured = warmUpAndMeasure(target, workload, threads, options)
        case .typedArray:
            measured = warmUpAndMeasure(try TypedTarget<ArrayMap<UInt64>>(entries: entries), workload, threads, options)
        case .mutexDict:
            measured = warmUpAndMeasure(MutexDictTarget(WordSchema(entries: entries)), workload, threads, options)
        case .rcuDictObject:
            measured = warmUpAndMeasure(try RCUDictionaryTarget(ObjectSchema(entries: entries)), workload, threads, options)
        case .mutexDictObject:
            measured = warmUpAndMeasure(MutexDictTarget(ObjectSchema(entries: entries)), workload, threads, options)
        case .rcuDictObjectField:
            let target = try RCUDictionaryTarget(ObjectSchema(entries: entries), borrowsValues: true)
            measured = warmUpAndMeasure(target, workload, threads, options)
        case .mutexDictObjectField:
            let target = MutexDictTarget(ObjectSchema(entries: entries), borrowsValues: true)
            measured = warmUpAndMeasure(target, workload, threads, options)
        case .rcuDictString:
            measured = warmUpAndMeasure(try RCUDictionaryTarget(StringSchema(entries: entries)), workload, threads, options)
        case .mutexDictString:
            measured = warmUpAndMeasure(MutexDictTarget(StringSchema(entries: entries)), workload, threads, options)
        case .rwlockDict:
            measured = warmUpAndMeasure(RWLockDictTarget(entries: entries), workload, threads, options)
        case .cRculfhash:
            measured = warmUpAndMeasure(try CRculfhashTarget(entries: entries), workload, threads, options)
        case .cOpenAddressing:
            measured = warmUpAndMeasure(try COpenAddressingTarget(entries: entries), workload, threads, options)
        case .cRWLockOpenAddressing:
            measured = warmUpAndMeasure(try CRWLockOpenAddressingTarget(entries: entries), workload, threads, options)
        case .swiftArray:
            measured = warmUpAndMeasure(SwiftArrayTarget(entries: entries), workload, threads, options)
        case .objectMap:
            measured = warmUpAndMeasure(try ObjectMapTarget(entries: entries), workload, threads, options)
        case .passThrough:
            measured = try measureHash(try PassThroughProvider.makeMap(entries: entries), shape: shape, userMode: false,
                                       workload, threads, options)
        case .epoch:
            measured = warmUpAndMeasure(EpochTarget(entries: entries), workload, threads, options)
        case .queue:
            measured = warmUpAndMeasure(try QueueStackTarget(.queue, entries: entries), workload, threads, options)
        case .stack:
            measured = warmUpAndMeasure(try QueueStackTarget(.stack, entries: entries), workload, threads, options)
        case .cWfcqueue:
            measured = warmUpAndMeasure(try CWfcqueueTarget(entries: entries), workload, threads, options)
        case .cLfstack:
            measured = warmUpAndMeasure(try CLfstackTarget(entries: entries), workload, threads, options)
        case .mutexDeque:
            measured = warmUpAndMeasure(MutexDequeTarget(entries: entries), workload, threads, options)
        case .perCPUArray:
            measured = warmUpAndMeasure(try PerCPUCounterTarget(entries: entries), workload, threads, options)
        case .perCPUHash:
            measured = warmUpAndMeasure(try PerCPUHashCounterTarget(entries: entries), workload, threads, options)
        case .threadLocalCounter:
            measured = warmUpAndMeasure(ThreadLocalCounterTarget(entries: entries), workload, threads, options)
        case .lpmIPv4, .lpmIPv6:
            let routes = LPMBenchRoutes(kind == .lpmIPv4 ? .ipv4 : .ipv6, entries: entries)
            measured = warmUpAndMeasure(try LPMTrieTarget(routes), workload, threads, options)
        case .cPatriciaIPv4, .cPatriciaIPv6:
            let routes = LPMBenchRoutes(kind == .cPatriciaIPv4 ? .ipv4 : .ipv6, entries: entries)
            measured = warmUpAndMeasure(try CPatriciaTarget(routes), workload, threads, options)
        case .ckHT, .libcuckoo, .tbbHashMap:
            let target: Result<PeerTarget, PeerLibraryError> = Result { () throws(PeerLibraryError) in
                try PeerTarget(try PeerFunctions.load(kind, from: options.peersLibrary), name: kind.rawValue, entries: entries)
            }
            switch target {
            case let .success(target): measured = warmUpAndMeasure(target, workload, threads, options)
            case let .failure(error): throw MapError.invalidArgument.with(reason: error.description)
            }
        }
    } catch {
        throw .map(kind, error)
    }
    guard let measured else { throw .threads(threads) }
    return CellResult(map: kind, workload: workload, shape: shape, threads: threads, entries: entries,
                      operations: measured.operations, wallNanoseconds: measured.wallNanoseconds,
                      misses: measured.misses, failedUpdates: measured.failedUpdates, calls: measured.calls,
                      changes: measured.changes, writeLatency: measured.writeLatency)
}

/// Prefills `map` (whose key and value sizes are `shape`'s) and measures `workload` on it,
/// with user-mode lookups (``UserModeLookup``) or helper-mode ones (``HelperModeLookup``).
func measureHash<Map: RawMap>(
    _ map: Map, shape: BenchShape, userMode: Bool, _ workload: Workload, _ threads: Int, _ options: BenchOptions
) throws(MapError) -> Measurement? {
    userMode
        ? try measureHash(map, shape: shape, mode: UserModeLookup.self, workload, threads, options)
        : try measureHash(map, shape: shape, mode: HelperModeLookup.self, workload, threads, options)
}

/// ``measureHash(_:shape:userMode:_:_:_:)`` with the lookup mode as a type.
///
/// The shapes the bench names have key and value types of their own (straight-line code,
/// as the 8x8 baselines get); any other shape is built word by word.
func measureHash<Map: RawMap, Mode: HashLookupMode>(
    _ map: Map, shape: BenchShape, mode: Mode.Type, _ workload: Workload, _ threads: Int, _ options: BenchOptions
) throws(MapError) -> Measurement? {
    let entries = options.entries
    switch (shape.keyBytes, shape.valueBytes) {
    case (8, 8):
        let target = try HashTarget(map: map, entries: entries, keys: Key8(), values: Value8(), mode: mode)
        return warmUpAndMeasure(target, workload, threads, options)
    case (16, 8):
        let target = try HashTarget(map: map, entries: entries, keys: Key16(), values: Value8(), mode: mode)
        return warmUpAndMeasure(target, workload, threads, options)
    case (8, 64):
        let target = try HashTarget(map: map, entries: entries, keys: Key8(), values: Value64(), mode: mode)
        return warmUpAndMeasure(target, workload, threads, options)
    case (16, 64):
        let target = try HashTarget(map: map, entries: entries, keys: Key16(), values: Value64(), mode: mode)
        return warmUpAndMeasure(target, workload, threads, options)
    default:
        let target = try HashTarget(map: map, entries: entries, keys: WordKeys(words: shape.keyWords),
                                    values: WordValues(words: shape.valueWords), mode: mode)
        return warmUpAndMeasure(target, workload, threads, options)
    }
}

/// The first random stream of warm-up threads (measured threads use streams from 0).
let warmUpStreams = 1 << 20

/// Runs `workload` untimed for a fifth of the duration (at most 0.1 s), then measures it
/// (with `--operations`: measures it at once, for that many operations per thread).
///
/// The warm-up lets caches fill and lets background work the prefill started (the
/// lock-free table's auto-resize, deferred frees) finish before the timed run.
func warmUpAndMeasure<Target: BenchTarget>(
    _ target: Target, _ workload: Workload, _ threads: Int, _ options: BenchOptions
) -> Measurement? {
    if options.operations == nil {
        // Streams of their own: a warm-up drawing the measurement's keys would leave the
        // measurement to replay its writes first (churn: inserts of keys just inserted).
        guard measure(target, workload: workload, threads: threads, duration: min(0.1, options.duration / 5),
                      batchSize: options.batchSize, firstStream: warmUpStreams) != nil
        else { return nil }
    }
    return measure(target, workload: workload, threads: threads, duration: options.duration, batchSize: options.batchSize,
                   latency: options.latency, operations: options.operations)
}
