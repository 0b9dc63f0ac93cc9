import RCUMaps
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `rcumaps stress` for PERCPU_ARRAY: `UInt32` indices, an 8-byte value per possible CPU,
/// `--keys` entries. The indices are split in two halves.
///
/// - *Counters* (the lower half): workers add 1 to random counters in helper mode — the
///   calling CPU's slot: odd counters through `lookupInPlace` and an atomic add, as a
///   program's `bpf_map_lookup_elem` and `__sync_fetch_and_add` do, even ones through the
///   map's own add (a restartable sequence, not atomic: what `PerCPUArrayMap.add(_:at:)`
///   runs; the two never mix on one counter, where the map's add is exact only alone) — and
///   each keeps its own tally per counter. A user-mode read of a counter (every CPU's slot) must sum to at least the
///   reader's own tally and never to less than the same reader saw before. At the end, with
///   the workers stopped, each counter's sum over the CPUs must equal the sum of every
///   worker's tally for it: no increment lost or counted twice, whichever CPU a thread ran
///   on or moved to in the middle of an increment.
/// - *Owned* (the upper half): index `i` is written only by worker `i % threads`, in user
///   mode (every CPU's slot) or in helper mode (its CPU's slot), always with a *mark* of the
///   index and a generation. The owner reads back what it wrote (user mode: every CPU holds
///   the new mark; helper mode: some CPU does, and the rest hold older marks of the index or
///   0); any other reader finds on every CPU 0 or a mark of that index, never another
///   index's value or a torn one, and in user mode never a newest generation (among the
///   CPUs) older than the newest it found there before. Once the owner has stopped, each
///   of its indices holds exactly what it read back after its last write (0 on every CPU
///   if it never wrote it).
///
/// Errnos, as Linux returns them: an index at or past `maxEntries` is ENOENT on lookup and
/// E2BIG on update; `BPF_NOEXIST` is EEXIST; a delete is EINVAL.
@inline(never)
func exercisePerCPUArray(options: StressOptions, seed: UInt64, recorder: StressRecorder, progress: Bool,
                         samples: StressSampleFile?) -> StressExercise {
    let kind = StressMapKind.perCPUArray
    let tag = StressPools.mapTag(kind)
    let map: RawPerCPUArrayMap
    do {
        map = try RawPerCPUArrayMap(MapDefinition(type: .perCPUArray, keySize: 4, valueSize: 8, maxEntries: options.keys,
                                                  name: "stress", poolTag: tag))
    } catch {
        recorder.record(.setup, "cannot create the percpu-array map: \(error)")
        return StressExercise()
    }
    return exercisePerCPUArrayMap(map, options: options, seed: seed, recorder: recorder, progress: progress,
                                  samples: samples)
}

/// The run of ``exercisePerCPUArray(options:seed:recorder:progress:samples:)`` on `map` (a
/// fresh PERCPU_ARRAY of `options.keys` 8-byte values). At checkpoints (about once a second,
/// less often past 32,768 indices) the workers pause, and the map is checked as at the end:
/// every counter against the workers' increments so far, every owned index against what its
/// owner last read back. (These runs had no checkpoints: left by the note of 2026-12-06,
/// done the same day.)
func exercisePerCPUArrayMap(_ map: RawPerCPUArrayMap, options: StressOptions, seed: UInt64, recorder: StressRecorder,
                            progress: Bool, samples: StressSampleFile?) -> StressExercise {
    let kind = StressMapKind.perCPUArray
    var exercise = StressExercise()
    // The workers, for the checkpoints: read only while they are paused (the pause's
    // acquire and release order their writes before the reads, and the reads before their
    // next writes).
    let workers = ThreadLock<[PerCPUArrayStressWorker.Handle]>([])
    guard let (finished, sampling, startedAt) = runStressWorkers(
        kind, options: options, recorder: recorder, samples: samples, progress: progress, exercise: &exercise,
        checkpointTicks: max(1, options.keys / 32_768),
        checkpoint: { label in
            let paused = workers.withLock { $0 }.map(\.worker)
            PerCPUArrayStressWorker.finalCheck(map, tallies: paused.map(\.tally), recorder: recorder, label: label)
            for worker in paused { worker.checkOwned(label: label) }
        },
        { index, control in
            let worker = PerCPUArrayStressWorker(map: map, index: index, threads: options.threads, seed: seed,
                                                 control: control, recorder: recorder)
            workers.withLock { $0.append(PerCPUArrayStressWorker.Handle(worker: worker)) }
            worker.run()
            return PerCPUArrayStressReport(stats: worker.stats, tally: worker.tally)
        }) else { return exercise }
    exercise.stats = finished.reduce(StressStats()) { $0 + $1.stats }
    PerCPUArrayStressWorker.finalCheck(map, tallies: finished.map(\.tally), recorder: recorder)
    sampling.take(.end, at: Double(MonotonicClock.nanoseconds() - startedAt) / 1e9, into: &exercise)
    return exercise
}

/// What one PERCPU_ARRAY worker leaves: its statistics and its increments per counter.
struct PerCPUArrayStressReport: Sendable {
    let stats: StressStats
    let tally: [UInt64]
}

extension PerCPUArrayStressWorker {
    /// A worker handed to the coordinator for the checkpoints (read only while it is paused).
    struct Handle: @unchecked Sendable {
        let worker: PerCPUArrayStressWorker
    }
}

/// One worker of ``exercisePerCPUArray(options:seed:recorder:progress:samples:)``.
final class PerCPUArrayStressWorker {
    let map: RawPerCPUArrayMap
    let index: Int
    let threads: Int
    let control: StressControl
    let recorder: StressRecorder
    var random: XorShiftRandom
    /// Counters: `0..<counters`; owned indices: `counters..<maxEntries`.
    let counters: Int
    /// This worker's increments per counter.
    var tally: [UInt64]
    /// The largest sum this worker read per counter.
    var seen: [UInt64]
    /// The generation of this worker's last write per index (owned indices only).
    var generation: [UInt64]
    /// Per index: the newest generation a user-mode read of this worker found among the
    /// CPUs (owned indices only).
    var newestSeen: [UInt64]
    /// Per index (owned indices only): the ``StressDigest`` of every CPU's value this worker
    /// read back right after its last write of it, or of zeros (a PERCPU_ARRAY starts
    /// zeroed) before its first: what the index holds exactly until the owner writes it
    /// again, for ``checkOwned()``.
    var written: [UInt64]
    /// One user-mode value: every CPU's 8 bytes.
    var values: [UInt64]
    /// The slot of the CPU this worker is pinned to (odd workers, when the system lets it):
    /// its helper-mode writes must change that slot and no other. Unpinned workers migrate
    /// freely, which the other checks allow for. (Nothing checked which slot a helper-mode
    /// write changed, only that one did: a write to a stale CPU's slot passed; found by
    /// review, 2026-12-06, twenty-third session.)
    var pinnedSlot: Int?
    var stats = StressStats()

    init(map: RawPerCPUArrayMap, index: Int, threads: Int, seed: UInt64, control: StressControl,
         recorder: StressRecorder) {
        self.map = map
        self.index = index
        self.threads = threads
        self.control = control
        self.recorder = recorder
        // A family per seed (see EvictingStressRun).
        random = XorShiftRandom(seed: seed, stream: index)
        counters = map.definition.maxEntries / 2
        tally = [UInt64](repeating: 0, count: counters)
        seen = [UInt64](repeating: 0, count: counters)
        generation = [UInt64](repeating: 0, count: map.definition.maxEntries)
        newestSeen = [UInt64](repeating: 0, count: map.definition.maxEntries)
        let zeros = [UInt64](repeating: 0, count: map.possibleCPUCount)
        values = zeros
        written = [UInt64](repeating: StressDigest.of(zeros), count: map.definition.maxEntries)
    }

    /// The value an owner writes to `index` in generation `generation`: the index in the top
    /// 24 bits, the generation below, never 0.
    static func mark(_ index: Int, _ generation: UInt64) -> UInt64 {
        UInt64(index) << 40 | (generation & 0xFF_FFFF_FFFF)
    }

    /// Whether `value` is 0 or a mark of `index`.
    static func belongs(_ value: UInt64, to index: Int) -> Bool {
        value == 0 || (value >> 40 == UInt64(index) && value & 0xFF_FFFF_FFFF != 0)
    }

    func run() {
        if index % 2 == 1 {
            let cpus = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
            let cpu = (index / 2) % cpus
            if RawPerCPUArrayMap.pinCurrentThread(toCPU: cpu) {
                pinnedSlot = RawPerCPUArrayMap.slot(ofCPU: cpu, slots: map.possibleCPUCount)
            }
        }
        stats.operations &+= control.runBatches { step() }
        checkOwned()
    }

    /// This worker's indices: those at or past `counters` whose remainder by `threads` is its
    /// own index, from this one on, every `threads`-th one.
    var firstOwned: Int { counters + (index - counters % threads + threads) % threads }

    /// Once this worker has stopped: each index it owns holds, on every CPU, exactly what it
    /// read back after its last write of it, or 0 if it never wrote it. No other worker
    /// writes the index (the others only read it, or add to counters), so the workers still
    /// running change nothing here. (The final check accepted any marks of the index and
    /// zeros — an index that lost its owner's writes, all zeros, included; found by review,
    /// 2026-12-06.)
    /// Each index this worker owns holds exactly what it read back after its last write
    /// (`label`: the checkpoint, or the end), with this worker paused or stopped.
    func checkOwned(label: String = "the end") {
        for target in stride(from: firstOwned, to: map.definition.maxEntries, by: threads) {
            guard lookUp(target) else { continue }
            if StressDigest.of(values) != written[target] {
                recorder.record(.ownKey, "owned index \(target) holds \(values) at \(label), not what its owner "
                    + (generation[target] == 0 ? "left it (0 on every CPU: it never wrote it)"
                        : "read back after its last write (generation \(generation[target]))"))
            }
        }
    }

    func step() {
        let bits = random.next()
        let choice = bits & 0xFF
        if choice < 112 {
            increment(Int((bits >> 8) % UInt64(counters)))
        } else if choice < 160 {
            readCounter(Int((bits >> 8) % UInt64(counters)))
        } else if choice < 208 {
            writeOwned(helper: choice < 176, bits: bits)
        } else if choice < 248 {
            readOwned(Int(UInt64(counters) + (bits >> 8) % UInt64(map.definition.maxEntries - counters)), helper: choice < 228)
        } else {
            refusals(bits)
        }
    }

    /// Helper mode: +1 on the calling CPU's slot of `counter`.
    func increment(_ counter: Int) {
        let key = UInt32(counter)
        stats.helperLookups += 1
        let done: Bool
        if counter & 1 == 0 {
            // The map's own add (found by review, 2026-12-05: only the atomic idiom below ran
            // here, whose increments no migration can lose, so the exact sum proved nothing
            // about the add that users run).
            done = (try? map.addToCurrentCPUWord(1, at: key)) == true
        } else {
            done = withUnsafeBytes(of: key) { k in
                Epoch.withSection { section in
                    guard let slot = try? map.lookupInPlace(key: k, in: section) else { return false }
                    // Atomic: another thread may be on (or have migrated to) the same CPU.
                    slot.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.wrappingAdd(1, ordering: .relaxed)
                    return true
                }
            }
        }
        if done {
            stats.helperLookupHits += 1
            tally[counter] &+= 1
        } else {
            recorder.record(.errno, "helper lookup of counter \(counter) failed")
        }
    }

    /// User mode: the sum over the CPUs covers this worker's own increments and never shrinks.
    func readCounter(_ counter: Int) {
        stats.lookups += 1
        guard lookUp(counter) else { return }
        stats.lookupHits += 1
        let sum = values.reduce(0, &+)
        if sum < tally[counter] {
            recorder.record(.ownKey, "counter \(counter) sums to \(sum), below this worker's own \(tally[counter]) increments")
        }
        if sum < seen[counter] {
            recorder.record(.timeTravel, "counter \(counter) sums to \(sum) after \(seen[counter])")
        }
        seen[counter] = max(seen[counter], sum)
    }

    /// Writes one of this worker's owned indices and reads it back.
    func writeOwned(helper: Bool, bits: UInt64) {
        let first = firstOwned
        guard first < map.definition.maxEntries else { return }
        let owned = (map.definition.maxEntries - first + threads - 1) / threads
        let target = first + Int((bits >> 8) % UInt64(owned)) * threads
        generation[target] &+= 1
        let mark = Self.mark(target, generation[target])
        let key = UInt32(target)
        // A helper write must change the calling CPU's value alone: every CPU's value before
        // it, to compare (this worker is the index's only writer). Without it, a write that
        // stored the mark on every CPU passed (found by review, 2026-12-05, sixteenth
        // session; row 124 closed the same hole for the per-CPU hashes).
        // In both modes, what the index holds first is exactly what this worker read back
        // after its last write of it (only it writes the index): compared here, where the
        // record was replaced by the next write's read-back and a slot zeroed or reverted in
        // between was seen only if a checkpoint came first (found by review of the
        // checkers, 2026-12-07).
        guard lookUp(target) else { return }
        let before = values
        if StressDigest.of(before) != written[target] {
            recorder.record(.ownKey, "owned index \(target) holds \(before) before its owner's write, not what it "
                + (generation[target] == 1 ? "left it (0 on every CPU: it never wrote it)"
                    : "read back after its last write (generation \(generation[target] - 1))"))
        }
        stats.updates += 1
        do {
            try withUnsafeBytes(of: key) { k in
                if helper {
                    try withUnsafeBytes(of: mark) { v in
                        try Epoch.withSection { (section) in try map.update(key: k, value: v, flags: .any, in: section) }
                    }
                } else {
                    for cpu in values.indices { values[cpu] = mark }
                    try values.withUnsafeBytes { v in try map.update(key: k, value: v, flags: .exist) }
                }
            }
        } catch {
            recorder.record(.errno, "update of owned index \(target) failed: \(error)")
            return
        }
        stats.updatesStored += 1
        stats.selfChecks += 1
        guard lookUp(target) else { return }
        // Only this worker writes the index: this is what it holds until the next write.
        written[target] = StressDigest.of(values)
        let current = values.filter { $0 == mark }.count
        let stale = values.contains { !Self.belongs($0, to: target) || ($0 != 0 && $0 & 0xFF_FFFF_FFFF > generation[target]) }
        // Helper mode: exactly one CPU's value changed, to the mark.
        let changed = helper ? zip(before, values).filter { $0 != $1 }.map(\.1) : []
        if stale || (helper ? changed != [mark] : current != values.count) {
            recorder.record(.ownKey, "owned index \(target) just written with \(mark) (\(helper ? "helper" : "user") mode) holds \(values)")
        } else if helper, let pinnedSlot, values[pinnedSlot] != mark {
            recorder.record(.ownKey, "owned index \(target) written in helper mode by a worker pinned to the CPU of "
                + "slot \(pinnedSlot) changed another CPU's value: \(values)")
        }
    }

    /// Reads an owned index (any worker's): 0 or a mark of it on every CPU; in user mode, a
    /// newest generation not older than the newest this worker found before. (A slot only
    /// ever gets newer generations: its owner's, which grow; so does the newest of them.
    /// Not in helper mode: the thread may have moved to a CPU the owner wrote less
    /// recently.)
    func readOwned(_ target: Int, helper: Bool) {
        if helper {
            stats.helperLookups += 1
            let key = UInt32(target)
            let word: UInt64? = withUnsafeBytes(of: key) { k in
                Epoch.withSection { section in
                    guard let slot = try? map.lookupInPlace(key: k, in: section) else { return nil }
                    return slot.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .relaxed)
                }
            }
            guard let word else {
                recorder.record(.errno, "helper lookup of index \(target) failed")
                return
            }
            stats.helperLookupHits += 1
            if !Self.belongs(word, to: target) { recorder.record(.value, "helper lookup of index \(target) found \(word)") }
            return
        }
        stats.lookups += 1
        guard lookUp(target) else { return }
        stats.lookupHits += 1
        if values.contains(where: { !Self.belongs($0, to: target) }) {
            recorder.record(.value, "lookup of index \(target) found \(values)")
            return
        }
        let newest = values.reduce(0) { max($0, $1 & 0xFF_FFFF_FFFF) }
        if newest < newestSeen[target] {
            recorder.record(.timeTravel, "lookup of index \(target) found generations \(values.map { $0 & 0xFF_FFFF_FFFF }) "
                + "after this worker found generation \(newestSeen[target]): the value went back in time")
        }
        newestSeen[target] = max(newestSeen[target], newest)
    }

    /// User-mode lookup of `target` into `values`; records a failure.
    func lookUp(_ target: Int) -> Bool {
        let key = UInt32(target)
        do {
            try withUnsafeBytes(of: key) { k in
                try values.withUnsafeMutableBytes { v in try map.lookup(key: k, into: v) }
            }
            return true
        } catch {
            recorder.record(.errno, "lookup of index \(target) failed: \(error)")
            return false
        }
    }

    /// What the map must refuse, with Linux's errnos.
    func refusals(_ bits: UInt64) {
        stats.refusals += 1
        let outside = UInt32(map.definition.maxEntries) &+ UInt32(truncatingIfNeeded: bits >> 40) % 1000
        let inside = UInt32((bits >> 8) % UInt64(map.definition.maxEntries))
        func expect(_ expected: MapError, _ what: String, _ body: () throws -> Void) {
            do {
                try body()
                recorder.record(.errno, "\(what) succeeded; Linux returns \(expected)")
            } catch where (error as? MapError) == expected {
            } catch {
                recorder.record(.errno, "\(what) failed with \(error); Linux returns \(expected)")
            }
        }
        withUnsafeBytes(of: outside) { k in
            expect(.keyNotFound, "lookup of index \(outside)") {
                try values.withUnsafeMutableBytes { v in try map.lookup(key: k, into: v) }
            }
            expect(.outOfSpace, "update of index \(outside)") {
                try values.withUnsafeBytes { v in try map.update(key: k, value: v, flags: .any) }
            }
        }
        withUnsafeBytes(of: inside) { k in
            expect(.alreadyExists, "BPF_NOEXIST update of index \(inside)") {
                try values.withUnsafeBytes { v in try map.update(key: k, value: v, flags: .noExist) }
            }
            expect(.invalidArgument, "delete of index \(inside)") { try map.delete(key: k) }
        }
    }

    /// With the workers stopped: each counter sums, over the CPUs, to every worker's
    /// increments of it, and each owned index holds 0 or its own marks.
    static func finalCheck(_ map: RawPerCPUArrayMap, tallies: [[UInt64]], recorder: StressRecorder,
                           label: String = "final") {
        var values = [UInt64](repeating: 0, count: map.possibleCPUCount)
        for target in 0..<map.definition.maxEntries {
            let key = UInt32(target)
            do {
                try withUnsafeBytes(of: key) { k in
                    try values.withUnsafeMutableBytes { v in try map.lookup(key: k, into: v) }
                }
            } catch {
                recorder.record(.errno, "\(label) lookup of index \(target) failed: \(error)")
                continue
            }
            if target < map.definition.maxEntries / 2 {
                let expected = tallies.reduce(0) { $0 &+ $1[target] }
                let sum = values.reduce(0, &+)
                if sum != expected {
                    recorder.record(.consistency, "\(label): counter \(target) sums to \(sum) over the CPUs; the workers added \(expected)")
                }
            } else if values.contains(where: { !belongs($0, to: target) }) {
                recorder.record(.value, "\(label) pass: index \(target) holds \(values)")
            }
        }
    }
}
