#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RCUMaps

/// The process's resident set size, for `rcumaps stress`'s samples and peak RSS.
enum StressResident {
    /// The file ``bytes()`` reads.
    static let statmPath = "/proc/self/statm"
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Resident bytes now (what `VmRSS` shows: anonymous, file-backed and shared pages),
    /// from the second field of ``statmPath``; `nil` if it cannot be read.
    ///
    /// Reads into a stack buffer: allocates nothing on the heap.
    static func bytes() -> Int? {
        let descriptor = open(statmPath, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buffer -> Int? in
            var count = 0
            while count < buffer.count {
                let got = read(descriptor, buffer.baseAddress! + count, buffer.count - count)
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else { break }
                count += got
            }
            return residentPages(statm: UnsafeBufferPointer(rebasing: buffer[..<count])).map { $0 * pageSize }
        }
    }

    /// The second field of statm text (`size resident shared text lib data dt`, in pages).
    static func residentPages(statm text: UnsafeBufferPointer<UInt8>) -> Int? {
        var field = 0
        var value = 0
        var digits = 0
        for byte in text {
            if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                if field == 1 {
                    value = value * 10 + Int(byte - UInt8(ascii: "0"))
                    digits += 1
                }
            } else if byte == UInt8(ascii: " ") {
                if field == 1 { break }
                field += 1
            } else {
                break
            }
        }
        return field == 1 && digits > 0 ? value : nil
    }
}

/// One row of `rcumaps stress --samples`: the process and the map at one moment.
struct StressSample: Equatable, Sendable {
    /// When the sample was taken.
    enum Phase: String, Sendable {
        /// Map built and prefilled, workers about to start (0 s).
        case start
        /// At a progress tick (about once a second), workers running.
        case run
        /// Workers stopped, the final check done, the map not yet dropped.
        case end
        /// The map dropped and its deferred frees run (after `Epoch.barrier()`).
        case released
        /// Workers stuck in an operation: the run stopped there, the map left as it was (no
        /// `end` or `released` sample follows); the violations include the stuck threads.
        case hung
    }

    var map: StressMapKind
    var phase: Phase
    /// Seconds since the map's workers started.
    var seconds: Double
    /// The process's resident set size; `nil` where `/proc/self/statm` cannot be read.
    var residentBytes: Int?
    /// Heap bytes in use (glibc's `mallinfo2()` plus the epoch layer's own mapped blocks, see
    /// ``ProcessMemory/heapBytes()``): RSS
    /// rising over a flat heap is memory malloc keeps, not memory in use; `nil` where it
    /// cannot be measured (not glibc, or under a sanitizer).
    var heapBytes: Int?
    /// The map's pool tag: bytes allocated and not yet reclaimed.
    var liveBytes: Int
    /// Of ``liveBytes``, those freed and awaiting reclamation (a grace period).
    var pendingBytes: Int
    /// Operations done so far by the map's workers.
    var operations: Int
    /// Violations recorded so far for the map.
    var violations: Int
    /// The pool tag's blocks kept for reuse after their grace period (not in ``liveBytes``;
    /// the lock-free hash recycles its entries).
    var recycledBytes: Int = 0

    /// The first line of the CSV file.
    static let csvHeader = "seconds,map,phase,rss_bytes,heap_bytes,live_bytes,pending_bytes,operations,violations,recycled_bytes"

    /// The sample as a CSV line (no newline); empty `rss_bytes` or `heap_bytes` when they
    /// could not be measured.
    var csvRow: String {
        [fixed(seconds, 3) ?? "", map.rawValue, phase.rawValue, residentBytes.map(String.init) ?? "",
         heapBytes.map(String.init) ?? "", String(liveBytes), String(pendingBytes), String(operations),
         String(violations), String(recycledBytes)].joined(separator: ",")
    }

    /// A sample now: RSS from ``StressResident``, the heap from ``ProcessMemory``, `tag`'s
    /// figures from `EpochMemory`.
    static func take(_ map: StressMapKind, _ phase: Phase, seconds: Double, tag: PoolTag,
                     operations: Int, violations: Int) -> StressSample {
        let statistics = EpochMemory.statistics(for: tag)
        return StressSample(map: map, phase: phase, seconds: seconds, residentBytes: StressResident.bytes(),
                            heapBytes: ProcessMemory.isAvailable ? ProcessMemory.heapBytes() : nil,
                            liveBytes: statistics.liveBytes, pendingBytes: statistics.pendingBytes,
                            operations: operations, violations: violations, recycledBytes: statistics.recycledBytes)
    }
}

/// The largest figures of one map's samples.
struct StressMemoryPeaks: Sendable, Equatable {
    var residentBytes: Int?
    var liveBytes = 0
    var pendingBytes = 0
    var recycledBytes = 0

    mutating func include(_ sample: StressSample) {
        if let resident = sample.residentBytes { residentBytes = max(residentBytes ?? 0, resident) }
        liveBytes = max(liveBytes, sample.liveBytes)
        pendingBytes = max(pendingBytes, sample.pendingBytes)
        recycledBytes = max(recycledBytes, sample.recycledBytes)
    }
}

/// The `--samples` file: a header, then one CSV row per sample, flushed as written so
/// that a run cut short leaves every row taken so far.
final class StressSampleFile {
    let path: String
    private var file: UnsafeMutablePointer<FILE>?
    private(set) var rows = 0
    /// Set on the first failed write (the rest are still attempted).
    private(set) var failed = false

    /// Why the file could not be created.
    struct OpenError: Error {
        let message: String
    }

    /// Creates (or truncates) `path` and writes the header.
    init(path: String) throws(OpenError) {
        self.path = path
        guard let file = fopen(path, "w") else {
            throw OpenError(message: "cannot create the samples file '\(path)': \(String(cString: strerror(errno)))")
        }
        self.file = file
        writeLine(StressSample.csvHeader)
    }

    deinit { _ = close() }

    func write(_ sample: StressSample) {
        writeLine(sample.csvRow)
        rows += 1
    }

    private func writeLine(_ line: String) {
        guard let file else { return }
        if fputs(line + "\n", file) < 0 || fflush(file) != 0 { failed = true }
    }

    /// Closes the file; whether every row was written.
    @discardableResult
    func close() -> Bool {
        if let file, fclose(file) != 0 { failed = true }
        file = nil
        return !failed
    }
}

/// `bytes` in B, KiB, MiB or GiB, about three significant figures (`45.2 MiB`).
func stressBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB"]
    var value = Double(bytes)
    var unit = 0
    while abs(value) >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : "\(readable(value)) \(units[unit])"
}

/// The memory samples of one run (`--samples`): taken at the start, about once a second and
/// at the end, folded into the exercise's peaks and written to the samples file.
struct StressSampling {
    let kind: StressMapKind
    let control: StressControl
    let recorder: StressRecorder
    let file: StressSampleFile?

    @discardableResult
    func take(_ phase: StressSample.Phase, at seconds: Double, into exercise: inout StressExercise) -> StressSample {
        let taken = StressSample.take(kind, phase, seconds: seconds, tag: StressPools.mapTag(kind),
                                      operations: control.operations, violations: recorder.violations)
        exercise.memory.include(taken)
        file?.write(taken)
        return taken
    }
}

/// The coordinator of the runs whose workers use ``StressControl/runBatches(_:)`` (LRU,
/// per-CPU and LPM maps): samples at the start, starts the workers, samples about once a
/// second (with a progress line, `status()` appended, when `progress`) and returns when
/// `options.duration` has passed, with the start time (also in `exercise.startedAt`).
///
/// With a `checkpoint`, every `checkpointTicks` seconds it pauses the workers (each at a
/// batch boundary, so no operation is in flight), runs `checkpoint` with a label for its
/// messages, and resumes them. Workers that do not pause within ``stressWatchdog`` are
/// reported and the run goes on without further checkpoints (the stop's watchdog then
/// reports them as hung).
func runStressClock(_ sampling: StressSampling, options: StressOptions, progress: Bool,
                    exercise: inout StressExercise, status: () -> String = { "" },
                    checkpointTicks: Int = 1, checkpoint: ((String) -> Void)? = nil) -> UInt64 {
    sampling.take(.start, at: 0, into: &exercise)
    let startedAt = MonotonicClock.nanoseconds()
    let endAt = startedAt + UInt64(options.duration * 1e9)
    exercise.startedAt = startedAt
    sampling.control.start()
    var nextTick = startedAt + 1_000_000_000
    var checkpoint = checkpoint
    var tick = 0
    while true {
        let deadline = min(nextTick, endAt)
        MonotonicClock.sleep(until: deadline)
        if deadline == endAt { break }
        tick += 1
        if let check = checkpoint, tick % max(1, checkpointTicks) == 0 {
            exercise.checkpoints += 1
            let generation = exercise.checkpoints
            if sampling.control.pauseAll(generation: generation, timeout: stressWatchdog) {
                let elapsed = Double(MonotonicClock.nanoseconds() - startedAt) / 1e9
                check("checkpoint \(generation) at \(formatSeconds(elapsed)) s")
            } else {
                sampling.recorder.record(.setup, "workers did not reach checkpoint \(generation) within "
                    + "\(stressWatchdog / 1_000_000_000) s (deadlock or livelock?); \(sampling.control.operations) ops done")
                checkpoint = nil
            }
            sampling.control.resumeAll(generation: generation)
        }
        let elapsed = Double(MonotonicClock.nanoseconds() - startedAt) / 1e9
        let taken = sampling.take(.run, at: elapsed, into: &exercise)
        if progress {
            writeToStandardError("[\(sampling.kind.rawValue)] \(formatSeconds(elapsed))/\(formatGivenSeconds(options.duration)) s  "
                + "\(stressCount(taken.operations)) ops  violations \(sampling.recorder.violations)"
                + (exercise.checkpoints > 0 ? "  checkpoints \(exercise.checkpoints)" : "") + "\(status())\n")
        }
        nextTick += 1_000_000_000
    }
    return startedAt
}

/// A run of ``StressControl/runBatches(_:)`` workers, from start to stop: starts
/// `options.threads` workers, each running `work(index, control)` and returning its report,
/// runs the clock (``runStressClock(_:options:progress:exercise:status:checkpointTicks:checkpoint:)``,
/// with `checkpoint` at its pauses) and stops them. Returns the
/// reports, the sampling (for the final sample) and the start time; nil, with `exercise`
/// filled in, when the workers could not be started or did not stop: a worker stuck in an
/// operation for `watchdog` ns after the stop is reported (`exercise.hung`) rather than
/// waited for.
func runStressWorkers<Report: Sendable>(
    _ kind: StressMapKind, options: StressOptions, recorder: StressRecorder, samples: StressSampleFile?,
    progress: Bool, exercise: inout StressExercise, status: () -> String = { "" }, watchdog: UInt64 = stressWatchdog,
    checkpointTicks: Int = 1, checkpoint: ((String) -> Void)? = nil,
    _ work: @escaping @Sendable (Int, StressControl) -> Report
) -> (reports: [Report], sampling: StressSampling, startedAt: UInt64)? {
    let control = StressControl(threads: options.threads)
    guard let (workers, reports) = startStressWorkers(options.threads, control: control, recorder: recorder,
                                                      exercise: &exercise, watchdog: watchdog, { index in work(index, control) })
    else { return nil }
    let sampling = StressSampling(kind: kind, control: control, recorder: recorder, file: samples)
    let startedAt = runStressClock(sampling, options: options, progress: progress, exercise: &exercise, status: status,
                                   checkpointTicks: checkpointTicks, checkpoint: checkpoint)
    guard stopStressWorkers(workers, control: control, recorder: recorder, startedAt: startedAt, exercise: &exercise,
                            watchdog: watchdog)
    else { return nil }
    return (reports.withLock { $0 }, sampling, startedAt)
}

extension StressControl {
    /// A worker of ``runStressWorkers(_:options:recorder:samples:progress:exercise:status:watchdog:checkpointTicks:checkpoint:_:)``:
    /// waits for the start, runs `step` in batches of ``stressBatch`` (counting them into the
    /// run's operations) until the stop, pausing between two batches when the coordinator
    /// asks for a checkpoint, then reports that it finished. Returns the operations this
    /// worker did.
    func runBatches(_ step: () -> Void) -> Int {
        arriveAndWait()
        var operations = 0
        var generation = 0
        while !shouldStop {
            let requested = requestedPause
            if requested != generation {
                generation = requested
                pause(generation: generation)
                continue
            }
            for _ in 0..<stressBatch { step() }
            operations &+= stressBatch
            addOperations(stressBatch)
        }
        finish()
        return operations
    }
}
