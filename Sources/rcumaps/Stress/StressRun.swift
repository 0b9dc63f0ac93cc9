#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ObjectMapProvider
import RCUMaps

/// Pool tags of the stress runs' maps: one per map kind, used by nothing else, so that
/// "0 live bytes after the map is dropped" is about that map alone.
enum StressPools {
    static func mapTag(_ kind: StressMapKind) -> PoolTag {
        switch kind {
        case .hashLockFree: PoolTag("sthl")
        case .hashBucket: PoolTag("sthb")
        case .hashLockFreeWord: PoolTag("stlw")
        case .hashBucketWord: PoolTag("stbw")
        case .array: PoolTag("star")
        case .objectMap: PoolTag("stom")
        case .objectMapLockFree: PoolTag("stol")
        case .customArray: PoolTag("stca")
        case .queue: PoolTag("stqu")
        case .stack: PoolTag("stst")
        case .lruHash: PoolTag("stlr")
        case .perCPUArray: PoolTag("stpa")
        case .perCPUHash: PoolTag("stpc")
        case .lruPerCPUHash: PoolTag("stlp")
        case .lpmTrie: PoolTag("stlm")
        // Where the run's memory and backlog sit: the bucket arrays when keys and values are
        // in the slots, the nodes otherwise (the final check covers every tag).
        case .dictionary: dictionaryTags(kind).table
        case .dictionaryString, .dictionaryNode: dictionaryTags(kind).nodes
        }
    }

    /// The pool tags of a dictionary run's `RCUDictionary` (its bucket arrays, nodes and
    /// references awaiting release); the default tags of other kinds.
    static func dictionaryTags(_ kind: StressMapKind) -> RCUDictionaryMemoryTags {
        switch kind {
        case .dictionary: RCUDictionaryMemoryTags(table: PoolTag("sdit"), nodes: PoolTag("sdin"), objects: PoolTag("sdio"))
        case .dictionaryString: RCUDictionaryMemoryTags(table: PoolTag("sdst"), nodes: PoolTag("sdsn"), objects: PoolTag("sdso"))
        case .dictionaryNode: RCUDictionaryMemoryTags(table: PoolTag("sdnt"), nodes: PoolTag("sdnn"), objects: PoolTag("sdno"))
        default: RCUDictionaryMemoryTags()
        }
    }
}

/// What the coordinator of one run measured.
struct StressExercise: Sendable {
    var operations = 0
    var nanoseconds: UInt64 = 0
    var checkpoints = 0
    var stats = StressStats()
    /// Threads did not reach a checkpoint or the end in time: they were left running.
    var hung = false
    /// When the workers were started (``MonotonicClock`` nanoseconds; 0 if they never were).
    var startedAt: UInt64 = 0
    /// The largest RSS and pool-tag figures sampled from the start to the end of the run.
    var memory = StressMemoryPeaks()
    /// Queues and stacks: what the workers did (``stats`` stays empty).
    var queueStats = QueueStressStats()
    /// Queues and stacks: values pushed (the prefill's included) and removed (popped or
    /// dropped by an overwriting push) by the end, and the elements left then.
    var queueTotals: (pushed: Int, removed: Int, left: Int)?
    /// Dictionaries: the bucket array's growths and shrinks its workers saw (summed over
    /// the workers: one resize seen by several counts once by each).
    var resizes: (grows: Int, shrinks: Int)?
}

/// The outcome of stressing one map.
struct StressMapResult: Sendable {
    let kind: StressMapKind
    let exercise: StressExercise
    let violations: Int
    /// The first few violations, in words.
    let descriptions: [String]
    /// Violations by kind.
    let byKind: [(StressViolation, Int)]

    /// No violation, no stuck thread, and something ran: a run that did no operation
    /// (a duration too short for one batch) checked nothing and does not pass.
    var passed: Bool { violations == 0 && !exercise.hung && exercise.operations > 0 }
    var operations: Int { exercise.operations }
    var seconds: Double { Double(exercise.nanoseconds) / 1e9 }

    /// `PASS hash-bucket: 12.3M ops in 60.0 s (0.21 Mops/s), 60 checkpoints, 0 violations, peak RSS 45.2 MiB`.
    var verdict: String {
        let rate = seconds > 0 ? Double(operations) / seconds / 1e6 : 0
        // Below 0.01 M a second in thousands (an LPM run at 255 threads printed 0.00 Mops/s).
        let rateText = rate > 0 && rate < 0.01 ? "\(readable(rate * 1e3)) kops/s" : "\(readable(rate)) Mops/s"
        return "\(passed ? "PASS" : "FAIL") \(kind.rawValue): \(stressCount(operations)) ops in \(formatSeconds(seconds)) s "
            + "(\(rateText)), \(exercise.checkpoints) checkpoints, \(violations) violation\(violations == 1 ? "" : "s")"
            + (exercise.memory.residentBytes.map { ", peak RSS \(stressBytes($0))" } ?? "")
            + (exercise.hung ? ", threads stuck" : "")
            // The advice only where the run was merely too short: a map that could not be
            // built, or whose threads could not start, says so in its violations.
            + (exercise.operations == 0
               ? (violations == 0 ? ", nothing ran (a longer --duration checks something)" : ", nothing ran") : "")
    }

    /// The map's pool tag at its sampled peaks (live, awaiting reclamation, and kept for
    /// reuse where the map recycles).
    var memoryDetails: String {
        "  pool tag \(tag): peak \(stressBytes(exercise.memory.liveBytes)) live, "
            + "peak \(stressBytes(exercise.memory.pendingBytes)) awaiting reclamation"
            + (exercise.memory.recycledBytes > 0
               ? ", peak \(stressBytes(exercise.memory.recycledBytes)) kept for reuse" : "")
    }

    /// The pool tag the map's memory was accounted under.
    var tag: PoolTag { StressPools.mapTag(kind) }

    /// What the workers did, by operation and outcome.
    var details: String {
        if kind.isQueueStack { return queueDetails }
        let s = exercise.stats
        var parts = [
            "lookups \(stressCount(s.lookups)) (\(percent(s.lookupHits, s.lookups)) found)",
            "\(kind.isDictionary ? "withValue lookups" : "helper lookups") \(stressCount(s.helperLookups)) (\(percent(s.helperLookupHits, s.helperLookups)) found)",
            "updates \(stressCount(s.updates)) (stored \(percent(s.updatesStored, s.updates)), EEXIST \(percent(s.updatesExisting, s.updates)), "
                + "ENOENT \(percent(s.updatesMissing, s.updates)), E2BIG \(percent(s.updatesFull, s.updates)))",
        ]
        if s.helperWrites > 0 { parts.append("helper-mode writes \(stressCount(s.helperWrites)) of the updates and deletes") }
        if !kind.isArray {
            parts.append("deletes \(stressCount(s.deletes)) (\(percent(s.deletesDone, s.deletes)) done)")
            parts.append("lookup-and-deletes \(stressCount(s.lookupAndDeletes)) (\(percent(s.lookupAndDeletesDone, s.lookupAndDeletes)) done)")
        }
        parts += [
            "foreign-key ops \(stressCount(s.foreignOperations))",
            "refused by design \(stressCount(s.refusals))",
            "iteration passes \(stressCount(s.passes)) (\(stressCount(s.passKeys)) nextKey calls)",
            "count checks \(stressCount(s.countChecks))",
            "own-key checks \(stressCount(s.selfChecks))",
        ]
        if let resizes = exercise.resizes {
            parts.append("bucket array resizes seen by the workers: \(resizes.grows) grows, \(resizes.shrinks) shrinks")
        }
        return "  " + parts.joined(separator: ", ")
    }
}

extension StressMapResult {
    /// What the workers of a queue or stack run did, and the final accounting.
    var queueDetails: String {
        let s = exercise.queueStats
        var parts = [
            "pushes \(stressCount(s.pushes)) (stored \(percent(s.pushesStored, s.pushes)), E2BIG \(percent(s.pushesFull, s.pushes)); "
                + "\(stressCount(s.overwritingPushes)) with BPF_EXIST, \(stressCount(s.overwrites)) dropped the oldest)",
            "pops \(stressCount(s.pops)) (\(percent(s.popsFound, s.pops)) found)",
            "peeks \(stressCount(s.peeks)) (\(percent(s.peeksFound, s.peeks)) found)",
            "count checks \(stressCount(s.countChecks))",
            "in helper mode: pushes \(stressCount(s.helperPushes)), pops \(stressCount(s.helperPops)), peeks \(stressCount(s.helperPeeks))",
        ]
        if let totals = exercise.queueTotals {
            parts.append("values pushed \(stressCount(totals.pushed)) = removed \(stressCount(totals.removed)) "
                + "+ left \(stressCount(totals.left))\(totals.pushed == totals.removed + totals.left ? "" : " (MISMATCH)")")
        }
        return "  " + parts.joined(separator: ", ")
    }
}

/// `n` as `12.3M`, `45.6k` or `789`.
func stressCount(_ value: Int) -> String {
    if value >= 1_000_000 { return readable(Double(value) / 1e6) + "M" }
    if value >= 10_000 { return readable(Double(value) / 1e3) + "k" }
    return String(value)
}

fileprivate func percent(_ part: Int, _ whole: Int) -> String {
    whole > 0 ? "\(Int((Double(part) * 100 / Double(whole)).rounded()))%" : "-"
}

/// A seed from the clock, when none is given (printed, so the run can be repeated).
func stressClockSeed() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    var bits = UInt64(truncatingIfNeeded: time.tv_sec) &* 1_000_000_007 &+ UInt64(truncatingIfNeeded: time.tv_nsec)
    bits ^= UInt64(truncatingIfNeeded: getpid()) << 20
    bits = (bits ^ (bits >> 31)) &* 0x9E37_79B9_7F4A_7C15
    return (bits >> 16) % 1_000_000_000
}

/// What the key-value maps' checker keeps (24 bytes a key in each worker: expected and last
/// seen tokens, pass numbers, contest balances; the contest's record, 8 bytes a key and
/// writer and 8 a key — left out before, found by review, 2026-12-06; and the per-writer
/// record of ``NewestVersions`` while it fits its budget), and which time-travel check runs.
func stressCheckerMemoryLine(keys: Int, threads: Int) -> String {
    func mebibytes(_ bytes: Double) -> String { (fixed(bytes / 1_048_576, 1) ?? "-") + " MiB" }
    let perKey = Double(keys) * Double(threads) * 24 + Double(keys) * Double(threads + 2) * 8
    let record = Double(keys) * Double(threads + 1) * Double(threads) * 8
    if NewestVersions.tracksEveryWriter(keys: keys, threads: threads) {
        return "checker memory (key-value maps): \(mebibytes(perKey + record)); "
            + "time travel checked per writer"
    }
    return "checker memory (key-value maps): \(mebibytes(perKey)); time travel checked against the last "
        + "value each reader saw (a record per writer would take \(mebibytes(record)), over its "
        + "\(mebibytes(Double(NewestVersions.budgetWords * 8))) budget)"
}

/// Runs `rcumaps stress`: each map in turn, a verdict per map and overall.
///
/// - Returns: The exit status: 0 when no map had a violation, 1 otherwise.
func runStress(_ options: StressOptions) -> Int32 {
    let seed = options.seed ?? stressClockSeed()
    let maps = options.maps.map(\.rawValue).joined(separator: ",")
    print("rcumaps stress: seed \(seed), \(options.threads) threads, \(options.keys) keys, "
        + "\(formatGivenSeconds(options.duration)) s per map, \(cpuCount()) CPUs online")
    print("  repeat with: rcumaps stress --seed \(seed) --threads \(options.threads) --keys \(options.keys) "
        + "--duration \(options.duration) --map \(maps)")
    print("  " + stressCheckerMemoryLine(keys: options.keys, threads: options.threads))
    var samples: StressSampleFile?
    if let path = options.samples {
        do {
            samples = try StressSampleFile(path: path)
        } catch {
            writeToStandardError("rcumaps stress: error: \(error.message)\n")
            return 1
        }
        print("  samples (CSV, about once a second) to \(path)")
    }
    fflush(nil)
    var results: [StressMapResult] = []
    for kind in options.maps {
        let result = runStressMap(kind, options: options, seed: seed, progress: true, samples: samples)
        results.append(result)
        print(result.verdict)
        print(result.details)
        print(result.memoryDetails)
        if !result.byKind.isEmpty {
            print("  violations by kind: " + result.byKind.map { "\($0.0.rawValue) \($0.1)" }.joined(separator: ", "))
        }
        for description in result.descriptions { print("    \(description)") }
        if result.violations > result.descriptions.count {
            print("    … and \(result.violations - result.descriptions.count) more")
        }
        fflush(nil)
        if result.exercise.hung {
            print("rcumaps stress: stopping: threads of the \(kind.rawValue) run are stuck")
            break
        }
    }
    let violations = results.reduce(0) { $0 + $1.violations }
    let operations = results.reduce(0) { $0 + $1.operations }
    let failed = results.filter { !$0.passed }.map(\.kind.rawValue)
    var passed = failed.isEmpty && results.count == options.maps.count
    if let samples {
        if samples.close() {
            print("  \(samples.rows) samples written to \(samples.path)")
        } else {
            print("  error: could not write every sample to \(samples.path)")
            passed = false
        }
    }
    let peaks = results.map { result in "\(result.kind.rawValue) \(result.exercise.memory.residentBytes.map(stressBytes) ?? "-")" }
    print("\(passed ? "PASS" : "FAIL"): \(results.count) map\(results.count == 1 ? "" : "s"), \(stressCount(operations)) ops, "
        + "\(violations) violation\(violations == 1 ? "" : "s")"
        + (failed.isEmpty ? "" : " (failed: \(failed.joined(separator: ", ")))") + ", seed \(seed)"
        + "; peak RSS: \(peaks.joined(separator: ", "))")
    fflush(nil)
    return passed ? 0 : 1
}

/// Stresses one map: builds it, runs the workers, checks it at every checkpoint and at the
/// end, drops it, and checks that everything it held was released.
///
/// - Parameters:
///   - progress: print a progress line to stderr about once a second, and echo violations
///     there as they happen.
///   - samples: where to write a memory sample at the start, at every progress tick, at the
///     end and once the map is released (peaks are sampled either way).
func runStressMap(_ kind: StressMapKind, options: StressOptions, seed: UInt64, progress: Bool,
                  samples: StressSampleFile? = nil) -> StressMapResult {
    let recorder = StressRecorder(label: kind.rawValue, echo: progress)
    let exercise: StressExercise
    switch kind {
    case .hashLockFree, .hashBucket, .hashLockFreeWord, .hashBucketWord, .array, .customArray:
        exercise = exerciseByteMap(kind, options: options, seed: seed, recorder: recorder, progress: progress, samples: samples)
        if !exercise.hung {
            // The map is gone; its deferred frees run after a grace period.
            checkReleased(StressPools.mapTag(kind), what: "the map", recorder: recorder)
        }
    case .objectMap, .objectMapLockFree:
        exercise = exerciseObjectMap(kind, options: options, seed: seed, recorder: recorder, progress: progress, samples: samples)
    case .queue, .stack:
        exercise = exerciseQueueStack(kind, options: options, seed: seed, recorder: recorder, progress: progress,
                                      samples: samples)
        if !exercise.hung { checkReleased(StressPools.mapTag(kind), what: "the map", recorder: recorder) }
    case .lruHash, .perCPUHash, .lruPerCPUHash:
        exercise = exerciseEvictingHash(kind, options: options, seed: seed, recorder: recorder, progress: progress,
                                        samples: samples)
        if !exercise.hung { checkReleased(StressPools.mapTag(kind), what: "the map", recorder: recorder) }
    case .perCPUArray:
        exercise = exercisePerCPUArray(options: options, seed: seed, recorder: recorder, progress: progress, samples: samples)
        if !exercise.hung { checkReleased(StressPools.mapTag(kind), what: "the map", recorder: recorder) }
    case .lpmTrie:
        exercise = exerciseLPMTrie(options: options, seed: seed, recorder: recorder, progress: progress, samples: samples)
        if !exercise.hung { checkReleased(StressPools.mapTag(kind), what: "the map", recorder: recorder) }
    case .dictionary:
        exercise = exerciseDictionary(kind, schema: DictionaryStressIntSchema(), options: options, seed: seed,
                                      recorder: recorder, progress: progress, samples: samples)
    case .dictionaryString:
        exercise = exerciseDictionary(kind, schema: DictionaryStressStringSchema(keys: options.keys), options: options,
                                      seed: seed, recorder: recorder, progress: progress, samples: samples)
    case .dictionaryNode:
        exercise = exerciseDictionary(kind, schema: DictionaryStressNodeSchema(), options: options, seed: seed,
                                      recorder: recorder, progress: progress, samples: samples)
    }
    if let samples { writeFinalSample(kind, exercise: exercise, recorder: recorder, to: samples) }
    return StressMapResult(kind: kind, exercise: exercise, violations: recorder.violations,
                           descriptions: recorder.descriptions, byKind: recorder.byKind)
}

/// The last memory sample of a map's run: once the map is released, or, when its workers
/// were stuck, a `hung` sample with the violations so far. (A stuck run wrote no sample
/// after its last progress tick, whose violations were 0, so the soak plot showed the map
/// as clean: found by review, 2026-12-06.)
func writeFinalSample(_ kind: StressMapKind, exercise: StressExercise, recorder: StressRecorder, to samples: StressSampleFile) {
    let seconds = exercise.startedAt == 0 ? 0 : Double(MonotonicClock.nanoseconds() - exercise.startedAt) / 1e9
    if exercise.hung {
        samples.write(.take(kind, .hung, seconds: seconds, tag: StressPools.mapTag(kind),
                            operations: exercise.operations, violations: recorder.violations))
    } else if exercise.startedAt != 0 {
        samples.write(.take(kind, .released, seconds: seconds, tag: StressPools.mapTag(kind),
                            operations: exercise.operations, violations: recorder.violations))
    }
}

/// Barrier rounds ``checkReleased(_:what:recorder:)`` allows. One `Epoch.barrier()` waits
/// for the callbacks scheduled before it; a callback may schedule more in turn (a bucket
/// reclaim work item that unlinks an emptied overflow bucket retires it), so memory can
/// need a few rounds to settle — never more than a handful.
let releaseBarrierRounds = 5

/// Records a violation if `tag` still has live epoch memory, or blocks kept for reuse,
/// after up to ``releaseBarrierRounds`` calls of `Epoch.barrier()`. (Blocks a recycling
/// retire list keeps are not live bytes: a list kept alive after its map was dropped went
/// unnoticed — found by review of the checker.)
func checkReleased(_ tag: PoolTag, what: String, recorder: StressRecorder) {
    var statistics = EpochMemory.statistics(for: tag)
    func settled() -> Bool {
        statistics.liveBytes == 0 && statistics.liveAllocations == 0 && statistics.recycledBytes == 0
    }
    for _ in 0..<releaseBarrierRounds {
        Epoch.barrier()
        statistics = EpochMemory.statistics(for: tag)
        if settled() { return }
    }
    if !settled() {
        recorder.record(.memory, "after dropping \(what) and \(releaseBarrierRounds) rounds of Epoch.barrier(): pool tag \(tag) still has \(statistics.liveBytes) live bytes "
            + "in \(statistics.liveAllocations) allocations (\(statistics.pendingBytes) pending), "
            + "\(statistics.recycledBytes) bytes kept for reuse")
    }
}

/// Builds a byte map (8-byte or index keys, 32-byte values) and stresses it. The map is
/// released when this returns (unless threads are stuck).
@inline(never)
func exerciseByteMap(_ kind: StressMapKind, options: StressOptions, seed: UInt64,
                     recorder: StressRecorder, progress: Bool, samples: StressSampleFile?) -> StressExercise {
    let tag = StressPools.mapTag(kind)
    let hashEntries = options.keys * 5 / 8
    do {
        switch kind {
        case .hashLockFree:
            let map = try RawLockFreeHashMap(MapDefinition(
                type: .hash, keySize: 8, valueSize: StressWords.valueSize, maxEntries: hashEntries,
                name: "stress", hashImplementation: .lockFree, poolTag: tag))
            return drive(map, kind: kind, objects: nil, options: options, seed: seed, recorder: recorder, progress: progress,
                         samples: samples)
        case .hashBucket:
            let map = try RawBucketHashMap(MapDefinition(
                type: .hash, keySize: 8, valueSize: StressWords.valueSize, maxEntries: hashEntries,
                name: "stress", hashImplementation: .bucketLocked, poolTag: tag))
            return drive(map, kind: kind, objects: nil, options: options, seed: seed, recorder: recorder, progress: progress,
                         samples: samples)
        case .hashLockFreeWord:
            let map = try RawLockFreeHashMap(MapDefinition(
                type: .hash, keySize: 8, valueSize: 8, maxEntries: hashEntries,
                name: "stress", hashImplementation: .lockFree, poolTag: tag))
            return drive(map, kind: kind, objects: nil, options: options, seed: seed, recorder: recorder, progress: progress,
                         samples: samples)
        case .hashBucketWord:
            let map = try RawBucketHashMap(MapDefinition(
                type: .hash, keySize: 8, valueSize: 8, maxEntries: hashEntries,
                name: "stress", hashImplementation: .bucketLocked, poolTag: tag))
            return drive(map, kind: kind, objects: nil, options: options, seed: seed, recorder: recorder, progress: progress,
                         samples: samples)
        case .array:
            let map = try RawArrayMap(MapDefinition(
                type: .array, keySize: 4, valueSize: StressWords.valueSize, maxEntries: options.keys,
                name: "stress", poolTag: tag))
            return drive(map, kind: kind, objects: nil, options: options, seed: seed, recorder: recorder, progress: progress,
                         samples: samples)
        case .customArray:
            let map = try PassThroughProvider.makeArrayMap(MapDefinition(
                type: .array, keySize: 4, valueSize: StressWords.valueSize, maxEntries: options.keys,
                name: "stress", poolTag: tag))
            return drive(map, kind: kind, objects: nil, options: options, seed: seed, recorder: recorder, progress: progress,
                         samples: samples)
        case .objectMap, .objectMapLockFree:
            preconditionFailure("object maps are built by exerciseObjectMap")
        case .queue, .stack:
            preconditionFailure("queues and stacks are built by exerciseQueueStack")
        case .lruHash, .perCPUHash, .lruPerCPUHash:
            preconditionFailure("LRU and per-CPU hashes are built by exerciseEvictingHash")
        case .perCPUArray:
            preconditionFailure("per-CPU arrays are built by exercisePerCPUArray")
        case .lpmTrie:
            preconditionFailure("LPM tries are built by exerciseLPMTrie")
        case .dictionary, .dictionaryString, .dictionaryNode:
            preconditionFailure("dictionaries are built by exerciseDictionary")
        }
    } catch {
        recorder.record(.setup, "cannot create the \(kind.rawValue) map: \(error)")
        return StressExercise()
    }
}

/// Registers a provider of the object map (type 4200, or 4210 on the lock-free hash; objects under their own pool tag),
/// stresses a map of it, drops the map and checks that every reference the map held was
/// released exactly once, then closes the objects and checks that their memory is freed.
@inline(never)
func exerciseObjectMap(_ kind: StressMapKind = .objectMap, options: StressOptions, seed: UInt64, recorder: StressRecorder,
                       progress: Bool, samples: StressSampleFile?) -> StressExercise {
    let objects: StressObjects
    let type = kind == .objectMapLockFree ? StressObjects.lockFreeMapType : StressObjects.mapType
    do {
        objects = try StressObjects(keys: options.keys, type: type,
                                    base: kind == .objectMapLockFree ? .hashLockFree : .hashBucketLocked)
    } catch {
        recorder.record(.setup, "cannot register the object map provider (type \(type.rawValue)) or open objects: \(error)")
        return StressExercise()
    }
    let exercise = exerciseObjectMapInstance(objects, kind: kind, options: options, seed: seed, recorder: recorder,
                                             progress: progress, samples: samples)
    if exercise.hung { return exercise }
    // The map is gone: its teardown released every entry's reference.
    if objects.provider.liveMaps != 0 {
        recorder.record(.references, "after dropping the map: the provider still counts \(objects.provider.liveMaps) live map(s)")
    }
    var wrong: [String] = []
    for (position, handle) in objects.handles.enumerated() {
        let references = objects.provider.referenceCount(of: handle)
        if references != 1 { wrong.append("object \(position) (handle \(handle)): \(references.map(String.init) ?? "closed")") }
    }
    if !wrong.isEmpty {
        recorder.record(.references, "after dropping the map: \(wrong.count) object(s) do not have reference count 1 (only the run's handle): "
            + wrong.prefix(6).joined(separator: "; "))
    }
    if let error = objects.close() {
        recorder.record(.setup, "cannot unregister the object map provider after the run: \(error)")
    }
    checkReleased(StressObjects.objectTag, what: "the map and closing every object", recorder: recorder)
    checkReleased(StressPools.mapTag(kind), what: "the map", recorder: recorder)
    return exercise
}

@inline(never)
func exerciseObjectMapInstance(_ objects: StressObjects, kind: StressMapKind = .objectMap, options: StressOptions,
                               seed: UInt64, recorder: StressRecorder, progress: Bool,
                               samples: StressSampleFile?) -> StressExercise {
    do {
        let map = try objects.provider.makeMap(maxEntries: options.keys * 5 / 8, name: "stress",
                                               poolTag: StressPools.mapTag(kind))
        return drive(map, kind: kind, objects: objects, options: options, seed: seed, recorder: recorder, progress: progress,
                     samples: samples)
    } catch {
        recorder.record(.setup, "cannot create the object map: \(error)")
        return StressExercise()
    }
}

/// Starts `count` worker threads, each running `work(index)` and keeping what it returns
/// in `reports`, and waits until all have arrived at `control`'s start barrier. Returns nil
/// (recorded as a setup failure) when a thread cannot start — the ones started are then
/// released, stopped and joined — or when they do not all arrive within `watchdog` ns
/// (`exercise.hung` is then set).
func startStressWorkers<Report: Sendable>(
    _ count: Int, control: StressControl, recorder: StressRecorder, exercise: inout StressExercise,
    watchdog: UInt64 = stressWatchdog, _ work: @escaping @Sendable (Int) -> Report
) -> (workers: [OSThread], reports: ThreadLock<[Report]>)? {
    let reports = ThreadLock<[Report]>([])
    var workers: [OSThread] = []
    for index in 0..<count {
        guard let thread = OSThread({
            let report = work(index)
            reports.withLock { $0.append(report) }
        }) else {
            recorder.record(.setup, "cannot start worker thread \(index)")
            _ = control.waitForArrivals(workers.count, timeout: watchdog)
            control.stop()
            control.start()
            for worker in workers { worker.join() }
            return nil
        }
        workers.append(thread)
    }
    guard control.waitForArrivals(count, timeout: watchdog) else {
        recorder.record(.setup, "worker threads did not start within \(stressSeconds(watchdog)) s")
        exercise.hung = true
        for worker in workers { worker.detach() }  // left running (see stopStressWorkers)
        return nil
    }
    return (workers, reports)
}

/// Signals the workers started by ``startStressWorkers(_:control:recorder:exercise:_:)`` to
/// stop, waits for them (at most `watchdog` ns) and joins them, recording the run's
/// operations and duration in `exercise`. Returns `false` (recorded as a setup failure,
/// `exercise.hung` set, the threads left running, detached) when they do not stop in time.
func stopStressWorkers(_ workers: [OSThread], control: StressControl, recorder: StressRecorder,
                       startedAt: UInt64, exercise: inout StressExercise, watchdog: UInt64 = stressWatchdog) -> Bool {
    control.stop()
    guard control.waitForFinish(timeout: watchdog) else {
        recorder.record(.setup, "\(control.threads - control.finished) of \(control.threads) workers did not stop within "
            + "\(stressSeconds(watchdog)) s (deadlock or livelock?)")
        exercise.operations = control.operations
        exercise.nanoseconds = MonotonicClock.nanoseconds() - startedAt
        exercise.hung = true
        // Not joined (they may never finish); detached, so that those that do are not
        // left as zombies (the thread sanitizer reported them as leaked).
        for worker in workers { worker.detach() }
        return false
    }
    for worker in workers { worker.join() }
    exercise.nanoseconds = MonotonicClock.nanoseconds() - startedAt
    exercise.operations = control.operations
    return true
}

/// How long the coordinator waits for workers to reach a checkpoint or the end before it
/// declares them stuck (deadlock or livelock).
let stressWatchdog: UInt64 = 60_000_000_000

/// `nanoseconds` in seconds, for messages (`60`, `0.5`).
func stressSeconds(_ nanoseconds: UInt64) -> String {
    nanoseconds % 1_000_000_000 == 0 ? String(nanoseconds / 1_000_000_000) : fixed(Double(nanoseconds) / 1e9, 1) ?? "-"
}

/// Prefills `map`, runs the workers for the duration with a checkpoint about once a
/// second, stops them and checks the map at rest. Samples memory (process RSS, the map's
/// pool tag) as the workers start, at every tick and at the end, into the exercise's peaks
/// and `samples`.
func drive<Map: RawMap>(_ map: Map, kind: StressMapKind, objects: StressObjects?, options: StressOptions,
                        seed: UInt64, recorder: StressRecorder, progress: Bool,
                        samples: StressSampleFile? = nil) -> StressExercise {
    let harness = StressHarness(kind: kind, map: map, keys: options.keys, threads: options.threads, seed: seed,
                                objects: objects, recorder: recorder)
    let control = harness.control
    var exercise = StressExercise()
    harness.prefill()
    harness.quiescentCheck("after prefill")

    guard let (workers, reports) = startStressWorkers(options.threads, control: control, recorder: recorder,
                                                      exercise: &exercise, { index in let worker = StressWorker(harness: harness, index: index); worker.run(); return worker.report })
    else { return exercise }

    let second: UInt64 = 1_000_000_000
    let checkpointTicks = max(1, options.keys / 32768)
    let tag = map.definition.effectivePoolTag
    @discardableResult
    func sample(_ phase: StressSample.Phase, at seconds: Double) -> StressSample {
        let taken = StressSample.take(kind, phase, seconds: seconds, tag: tag,
                                      operations: control.operations, violations: recorder.violations)
        exercise.memory.include(taken)
        samples?.write(taken)
        return taken
    }
    sample(.start, at: 0)
    let startedAt = MonotonicClock.nanoseconds()
    let endAt = startedAt + UInt64(options.duration * 1e9)
    exercise.startedAt = startedAt
    control.start()
    var nextTick = startedAt + second
    var tick = 0
    while true {
        let deadline = min(nextTick, endAt)
        MonotonicClock.sleep(until: deadline)
        if deadline == endAt { break }
        tick += 1
        if tick % checkpointTicks == 0 {
            exercise.checkpoints += 1
            guard control.pauseAll(generation: exercise.checkpoints, timeout: stressWatchdog) else {
                recorder.record(.setup, "workers did not reach checkpoint \(exercise.checkpoints) within \(stressWatchdog / 1_000_000_000) s "
                    + "(deadlock or livelock?); \(control.operations) ops done")
                exercise.operations = control.operations
                exercise.nanoseconds = MonotonicClock.nanoseconds() - startedAt
                exercise.hung = true
                for worker in workers { worker.detach() }  // left running (see stopStressWorkers)
                return exercise
            }
            let elapsed = Double(MonotonicClock.nanoseconds() - startedAt) / 1e9
            harness.quiescentCheck("checkpoint \(exercise.checkpoints) at \(formatSeconds(elapsed)) s")
            control.resumeAll(generation: exercise.checkpoints)
        }
        let elapsed = Double(MonotonicClock.nanoseconds() - startedAt) / 1e9
        let taken = sample(.run, at: elapsed)
        if progress {
            let operations = taken.operations
            writeToStandardError("[\(kind.rawValue)] \(formatSeconds(elapsed))/\(formatGivenSeconds(options.duration)) s  "
                + "\(stressCount(operations)) ops  \(readable(Double(operations) / elapsed / 1e6)) Mops/s  "
                + "violations \(recorder.violations)  checkpoints \(exercise.checkpoints)"
                + (taken.residentBytes.map { "  RSS \(stressBytes($0))" } ?? "")
                + "  pending \(stressBytes(taken.pendingBytes))\n")
        }
        nextTick += second
    }
    guard stopStressWorkers(workers, control: control, recorder: recorder, startedAt: startedAt,
                            exercise: &exercise) else { return exercise }

    let collected = reports.withLock { $0 }.sorted { $0.index < $1.index }
    exercise.stats = collected.reduce(StressStats()) { $0 + $1.stats }
    if collected.count != options.threads {
        recorder.record(.setup, "only \(collected.count) of \(options.threads) workers reported")
    }
    harness.quiescentCheck("final check", expected: collected.count == options.threads ? collected : nil)
    sample(.end, at: Double(MonotonicClock.nanoseconds() - startedAt) / 1e9)
    return exercise
}
