import Histogram
import RCUMaps

/// One measured cell: a map, a workload, a key/value shape, a thread count.
struct CellResult: Sendable {
    let map: MapKind
    let workload: Workload
    /// Key and value sizes (8x8 for every map but our hash maps).
    let shape: BenchShape
    let threads: Int
    /// Prefilled entries.
    let entries: Int
    /// Operations completed by all threads.
    let operations: Int
    /// Wall-clock nanoseconds from the start signal until the last thread stopped.
    let wallNanoseconds: UInt64
    /// Lookups answered wrong (should be zero): misses of prefilled keys, or, in a
    /// `lookup-miss` cell, hits of keys never inserted (the JSON field `misses` holds this).
    let misses: Int
    /// Updates the map refused (should be zero).
    let failedUpdates: Int
    /// Batch calls made by all threads (batch workloads; 0 for the others, whose
    /// operations are single calls).
    var calls: Int = 0
    /// Churn writes that changed the map (an insert that stored, a delete that removed): about
    /// half of them once the map has settled at half its key space.
    var changes: Int = 0
    /// Percentiles of the writes' latency (`--latency`, workloads with writes).
    var writeLatency: LatencySummary? = nil

    /// Elements per batch call (batch workloads), nil for the others.
    var elementsPerCall: Double? {
        workload.isBatch && calls > 0 ? Double(operations) / Double(calls) : nil
    }

    /// Wall-clock nanoseconds per operation per thread: `wall × threads / operations`.
    var nanosecondsPerOperation: Double? {
        operations > 0 ? Double(wallNanoseconds) * Double(threads) / Double(operations) : nil
    }

    /// Total throughput, millions of operations per second.
    var megaOperationsPerSecond: Double {
        wallNanoseconds > 0 ? Double(operations) / Double(wallNanoseconds) * 1_000 : 0
    }
}

/// Percentiles of one cell's write latencies, in nanoseconds, from every thread's
/// HdrHistogram (3 significant digits).
struct LatencySummary: Sendable, Equatable {
    /// Writes timed.
    var count: UInt64
    var p50: UInt64
    var p99: UInt64
    var p999: UInt64
    var max: UInt64

    /// The summary of `histogram`, or nil when it recorded nothing.
    init?(_ histogram: Histogram<UInt64>) {
        guard histogram.totalCount > 0 else { return nil }
        count = histogram.totalCount
        p50 = histogram.valueAtPercentile(50)
        p99 = histogram.valueAtPercentile(99)
        p999 = histogram.valueAtPercentile(99.9)
        max = histogram.maxRecorded  // exact (`max` is rounded up to its bucket)
    }

    init(count: UInt64, p50: UInt64, p99: UInt64, p999: UInt64, max: UInt64) {
        (self.count, self.p50, self.p99, self.p999, self.max) = (count, p50, p99, p999, max)
    }

    /// A histogram for one worker's writes: 1 ns to an hour, 3 significant digits.
    static func makeHistogram() -> Histogram<UInt64> {
        Histogram(highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
    }
}

/// What one timed run of a cell's threads counted.
struct Measurement: Sendable {
    /// Operations completed by all threads.
    var operations: Int
    /// Wall-clock nanoseconds from the start signal until the last thread stopped.
    var wallNanoseconds: UInt64
    /// Lookups that missed.
    var misses: Int
    /// Updates the map refused.
    var failedUpdates: Int
    /// Batch calls made (batch workloads).
    var calls: Int = 0
    /// Churn writes that changed the map.
    var changes: Int = 0
    /// Write latencies (`--latency`).
    var writeLatency: LatencySummary? = nil
}

/// Operations between two checks of the stop signal.
let operationsPerBatch = 64

/// Runs `workload` on `target` with `threads` OS threads for `duration` seconds, or for
/// `operations` operations per thread.
///
/// Threads start together on a barrier; the calling thread sleeps for the duration,
/// then signals stop and joins them (with `operations`, each thread stops by itself).
/// Thread `i` draws its keys from random stream `firstStream + i`.
///
/// - Parameter batchSize: elements per call of a batch workload.
/// - Returns: The measurements, or `nil` if a thread could not be started.
func measure<Target: BenchTarget>(
    _ target: Target, workload: Workload, threads: Int, duration: Double, batchSize: Int = 1024,
    latency: Bool = false, operations: Int? = nil, firstStream: Int = 0
) -> Measurement? {
    let control = CellControl(operationLimit: operations ?? 0)
    var workers: [OSThread] = []
    for index in 0..<threads {
        guard let thread = OSThread({
            control.report(runWorker(target, workload: workload, stream: firstStream + index, control: control,
                                     batchSize: batchSize, latency: latency))
        })
        else {
            control.waitForArrivals(workers.count)
            control.stop()
            control.start()
            for worker in workers { worker.join() }
            return nil
        }
        workers.append(thread)
    }
    control.waitForArrivals(threads)
    let startedAt = MonotonicClock.nanoseconds()
    control.start()
    if operations == nil {
        MonotonicClock.sleep(until: startedAt + UInt64(duration * 1e9))
        control.stop()
    }
    for worker in workers { worker.join() }

    let results = control.results
    keepAlive(results.reduce(0) { $0 ^ $1.checksum })
    let finishedAt = results.map(\.finishedAt).max() ?? startedAt
    var latencies: Histogram<UInt64>?
    for histogram in results.compactMap(\.writeLatency) {
        if latencies == nil { latencies = histogram } else { latencies!.add(histogram) }
    }
    return Measurement(operations: results.reduce(0) { $0 + $1.operations },
                       wallNanoseconds: finishedAt > startedAt ? finishedAt - startedAt : 0,
                       misses: results.reduce(0) { $0 + $1.misses },
                       failedUpdates: results.reduce(0) { $0 + $1.failedUpdates },
                       calls: results.reduce(0) { $0 + $1.calls },
                       changes: results.reduce(0) { $0 + $1.changes },
                       writeLatency: latencies.flatMap(LatencySummary.init))
}

/// One batch of the lookup workload (`absent` false: every key prefilled, a miss counted) or
/// of lookup-miss (`absent` true: keys never inserted, a hit counted), in a function of its
/// own for every target alike. Inside ``runWorker(_:workload:stream:control:batchSize:latency:)``
/// the loop shared the registers of the worker's writes, latency histogram and batch
/// passes, and whether the map's reference stayed in a register or was reloaded from the
/// stack before each lookup came down to how the compiler allocated that whole function.
/// At a million entries a lookup waits on cache misses, and a few instructions more decide
/// how far the processor runs ahead into the next lookup: two builds of the same lock-free
/// hash lookup differed by 10-20 % that way (2026-12-06).
@inline(never)
func runLookups<Target: BenchTarget>(_ target: Target, absent: Bool, random: inout XorShiftRandom,
                                     below bound: UInt64, into result: inout WorkerResult) {
    let first = absent ? target.entries : 0
    var checksum: UInt64 = 0
    var unexpected = 0
    var generator = random  // (a local: the `inout` one was stored and reloaded each lookup)
    defer { random = generator }
    for _ in 0..<operationsPerBatch {
        let index = first + XorShiftRandom.index(generator.next(), below: bound)
        if let value = target.lookup(index: index) {
            checksum &+= value
            if absent { unexpected &+= 1 }
        } else if !absent {
            unexpected &+= 1
        }
    }
    result.checksum &+= checksum
    result.misses &+= unexpected
    result.operations &+= operationsPerBatch
}

/// One worker thread's loop: waits for the start, then runs batches until told to stop
/// (at least one).
///
/// - `lookup` / `read-mostly` / `update`: keys are the prefilled ones; a lookup that misses
///   is counted in `misses` (there should be none).
/// - `lookup-miss`: keys are never inserted; a lookup that *hits* is counted in `misses`.
/// - `churn`: keys range over twice the prefilled set; half the operations insert
///   (`.noExist`), half delete. Refusals (present / absent) are part of the workload; any
///   other error (no memory, no room) counts in `failedUpdates` (there should be none).
/// - `batch-lookup`: one `lookupBatch` call of `batchSize` elements between two checks of
///   the stop signal, each resuming where the last stopped; at the end of the map the next
///   pass starts. Every element counts as an operation. A pass that does not return every
///   prefilled key exactly once (by count), and a call that fails, count in `misses`.
/// - `batch-update`: `batchSize` random prefilled keys with random values, then one
///   `updateBatch` call; elements it did not store count in `failedUpdates`.
/// - `increment`: add 1 to the counter of a random index in `0..<entries`; a refusal counts
///   in `failedUpdates` (there should be none).
/// - `push-pop`: push a random value, then pop one; one operation per pair. A refused push
///   counts in `failedUpdates`, a pop that finds the queue or stack empty in `misses`
///   (neither should happen: the target holds its prefilled values throughout).
///
/// With `latency`, every write (update, insert, delete, push; not batches) is timed into the
/// result's `writeLatency` histogram.
func runWorker<Target: BenchTarget>(
    _ target: Target, workload: Workload, stream: Int, control: CellControl, batchSize: Int = 1024,
    latency: Bool = false
) -> WorkerResult {
    let target = target.forWorker(stream: stream)
    var random = XorShiftRandom(stream: stream)
    let bound = UInt64(target.entries)
    let updateThreshold = workload.updatesPer65536
    var result = WorkerResult()
    // The batch buffers, made before the start signal (not timed).
    var buffers: BatchBuffers?
    if workload.isBatch {
        guard let element = target.batchElementBytes else {
            _rcumapsTrap("\(Target.self) has no batch operations (MapKind.supports)")
        }
        buffers = BatchBuffers(capacity: batchSize, keyBytes: element.key, valueBytes: element.value)
    }
    defer { buffers?.deallocate() }
    var cursor: MapBatchCursor?
    var passElements = 0
    var histogram: Histogram<UInt64>? = latency ? LatencySummary.makeHistogram() : nil
    /// Runs one write, timed when `latency` is set.
    @inline(__always)
    func timed<R>(_ write: () -> R) -> R {
        guard latency else { return write() }
        let start = MonotonicClock.nanoseconds()
        let result = write()
        _ = histogram!.record(MonotonicClock.nanoseconds() &- start)
        return result
    }
    control.arriveAndWait()
    // At least one batch per worker: under load a thread may first run after the stop
    // signal, and a cell must not report no operation for it.
    // A batch pass that cannot start (its first call fails with nothing read: a map that
    // throws, or ENOSPC for a first bucket larger than --batch-size) fails the same way on
    // every call: the worker stops there, with the misses counted, instead of calling
    // forever (with --operations, nothing else ended it; found by review, 2026-12-05).
    var stuck = false
    repeat {
        switch workload {
        case .lookup, .lookupMiss:
            runLookups(target, absent: workload == .lookupMiss, random: &random, below: bound, into: &result)
        case .readMostly, .update:
            for _ in 0..<operationsPerBatch {
                let bits = random.next()
                let index = XorShiftRandom.index(bits, below: bound)
                if bits & 0xFFFF < updateThreshold {
                    if !timed({ target.update(index: index, value: bits) }) { result.failedUpdates &+= 1 }
                } else if let value = target.lookup(index: index) {
                    result.checksum &+= value
                } else {
                    result.misses &+= 1
                }
            }
            result.operations &+= operationsPerBatch
        case .insertFull:
            // Keys no thread inserted before: above the churn key space, one range per stream.
            for _ in 0..<operationsPerBatch {
                let index = 2 * target.entries + stream << 40 + result.operations
                if timed({ target.insert(index: index) }) != .changed { result.failedUpdates &+= 1 }
                result.operations &+= 1
            }
        case .churn:
            for _ in 0..<operationsPerBatch {
                let bits = random.next()
                // The index comes from bits 32..<64 (its top bit picks the half of the key
                // space), so the choice between insert and delete must not: bit 0 makes it.
                let index = XorShiftRandom.index(bits, below: bound * 2)
                switch bits & 1 == 0 ? timed({ target.insert(index: index) }) : timed({ target.remove(index: index) }) {
                case .changed: result.changes &+= 1
                case .refused: break
                case .failed: result.failedUpdates &+= 1
                }
            }
            result.operations &+= operationsPerBatch
        case .batchLookup:
            let buffers = buffers.unsafelyUnwrapped
            result.calls &+= 1
            guard let outcome = target.lookupBatch(from: cursor, into: buffers) else {
                // The map threw: count it, and start a new pass.
                result.misses &+= 1
                stuck = cursor == nil
                cursor = nil
                passElements = 0
                continue
            }
            for element in 0..<outcome.count { result.checksum &+= target.foldBatchValue(buffers, at: element) }
            result.operations &+= outcome.count
            passElements &+= outcome.count
            if outcome.isEndOfMap || outcome.error != nil {
                // The end of a pass: every prefilled key once, or the difference is missed.
                // ENOSPC (a bucket larger than --batch-size, which this loop cannot step
                // over) is one miss, as the help says, and a new pass. (It counted the keys
                // the pass had not reached, a map's worth of misses a call: found by review,
                // 2026-12-05.)
                if !outcome.isEndOfMap {
                    result.misses &+= 1
                } else if passElements != target.entries {
                    result.misses &+= abs(target.entries - passElements)
                }
                stuck = !outcome.isEndOfMap && passElements == 0
                cursor = nil
                passElements = 0
            } else {
                cursor = outcome.cursor
            }
        case .increment:
            for _ in 0..<operationsPerBatch {
                if !target.increment(index: XorShiftRandom.index(random.next(), below: bound)) { result.failedUpdates &+= 1 }
            }
            result.operations &+= operationsPerBatch
        case .pushPop:
            for _ in 0..<operationsPerBatch {
                let bits = random.next()
                if !timed({ target.push(bits) }) { result.failedUpdates &+= 1 }
                if let value = target.pop() {
                    result.checksum &+= value
                } else {
                    result.misses &+= 1
                }
            }
            result.operations &+= operationsPerBatch
        case .batchUpdate:
            let buffers = buffers.unsafelyUnwrapped
            for element in 0..<batchSize {
                let bits = random.next()
                target.storeBatchElement(index: XorShiftRandom.index(bits, below: bound), seed: bits, at: element,
                                         in: buffers)
            }
            result.calls &+= 1
            let stored = target.updateBatch(buffers, count: batchSize)?.count ?? 0
            result.failedUpdates &+= batchSize - stored
            result.checksum &+= UInt64(stored)
            result.operations &+= batchSize
        }
    } while !stuck && !control.shouldStop(after: result.operations)
    result.finishedAt = MonotonicClock.nanoseconds()
    result.writeLatency = histogram
    return result
}
