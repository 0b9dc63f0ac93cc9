import RCUMaps

/// Builds a QUEUE or STACK map (32-byte values, `--keys` elements at most) and stresses it.
/// The map is released when this returns (unless threads are stuck).
@inline(never)
func exerciseQueueStack(_ kind: StressMapKind, options: StressOptions, seed: UInt64, recorder: StressRecorder,
                        progress: Bool, samples: StressSampleFile?) -> StressExercise {
    do {
        let map = try RawQueueStackMap(MapDefinition(
            type: kind == .queue ? .queue : .stack, keySize: 0, valueSize: StressWords.valueSize,
            maxEntries: options.keys, name: "stress", poolTag: StressPools.mapTag(kind)))
        return driveQueue(map, kind: kind, options: options, seed: seed, recorder: recorder, progress: progress,
                          samples: samples)
    } catch {
        recorder.record(.setup, "cannot create the \(kind.rawValue) map: \(error)")
        return StressExercise()
    }
}

/// Prefills `queue` to half its capacity, runs the workers for the duration with a
/// checkpoint about once a second (``QueueStressHarness/quiescentCheck(_:final:)``), stops
/// them and checks that every value pushed was removed once or is still there. Samples
/// memory as ``drive(_:kind:objects:options:seed:recorder:progress:samples:)`` does.
func driveQueue<Queue: StressQueue>(_ queue: Queue, kind: StressMapKind, options: StressOptions, seed: UInt64,
                                    recorder: StressRecorder, progress: Bool,
                                    samples: StressSampleFile? = nil) -> StressExercise {
    let harness = QueueStressHarness(kind: kind, queue: queue, threads: options.threads, seed: seed, recorder: recorder)
    let control = harness.control
    var exercise = StressExercise()
    harness.prefill()
    harness.quiescentCheck("after prefill", final: false)

    guard let (workers, reports) = startStressWorkers(options.threads, control: control, recorder: recorder,
                                                      exercise: &exercise, { index in let worker = QueueStressWorker(harness: harness, index: index); worker.run(); return worker.report })
    else { return exercise }

    let second: UInt64 = 1_000_000_000
    let tag = StressPools.mapTag(kind)
    func sample(_ phase: StressSample.Phase, at seconds: Double) -> StressSample {
        let taken = StressSample.take(kind, phase, seconds: seconds, tag: tag,
                                      operations: control.operations, violations: recorder.violations)
        exercise.memory.include(taken)
        samples?.write(taken)
        return taken
    }
    _ = sample(.start, at: 0)
    let startedAt = MonotonicClock.nanoseconds()
    let endAt = startedAt + UInt64(options.duration * 1e9)
    exercise.startedAt = startedAt
    control.start()
    var nextTick = startedAt + second
    while true {
        let deadline = min(nextTick, endAt)
        MonotonicClock.sleep(until: deadline)
        if deadline == endAt { break }
        exercise.checkpoints += 1
        guard control.pauseAll(generation: exercise.checkpoints, timeout: stressWatchdog) else {
            recorder.record(.setup, "workers did not reach checkpoint \(exercise.checkpoints) within "
                + "\(stressWatchdog / 1_000_000_000) s (deadlock or livelock?); \(control.operations) ops done")
            exercise.operations = control.operations
            exercise.nanoseconds = MonotonicClock.nanoseconds() - startedAt
            exercise.hung = true
            for worker in workers { worker.detach() }  // left running (see stopStressWorkers)
            return exercise
        }
        let elapsed = Double(MonotonicClock.nanoseconds() - startedAt) / 1e9
        harness.quiescentCheck("checkpoint \(exercise.checkpoints) at \(formatSeconds(elapsed)) s", final: false)
        control.resumeAll(generation: exercise.checkpoints)
        let taken = sample(.run, at: elapsed)
        if progress {
            writeToStandardError("[\(kind.rawValue)] \(formatSeconds(elapsed))/\(formatGivenSeconds(options.duration)) s  "
                + "\(stressCount(taken.operations)) ops  \(readable(Double(taken.operations) / elapsed / 1e6)) Mops/s  "
                + "violations \(recorder.violations)  checkpoints \(exercise.checkpoints)"
                + (taken.residentBytes.map { "  RSS \(stressBytes($0))" } ?? "") + "\n")
        }
        nextTick += second
    }
    guard stopStressWorkers(workers, control: control, recorder: recorder, startedAt: startedAt,
                            exercise: &exercise) else { return exercise }
    let collected = reports.withLock { $0 }
    exercise.queueStats = collected.reduce(QueueStressStats()) { $0 + $1 }
    if collected.count != options.threads {
        recorder.record(.setup, "only \(collected.count) of \(options.threads) workers reported")
    }
    let totals = harness.totals
    exercise.queueTotals = (totals.pushed, totals.removed, queue.count)
    harness.quiescentCheck("final check", final: true)
    _ = sample(.end, at: Double(MonotonicClock.nanoseconds() - startedAt) / 1e9)
    return exercise
}
