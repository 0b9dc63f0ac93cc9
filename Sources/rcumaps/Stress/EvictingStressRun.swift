#if canImport(Glibc)
import Glibc
#endif
import RCUMaps
import Synchronization

/// `rcumaps stress` for LRU_HASH, PERCPU_HASH and LRU_PERCPU_HASH: 8-byte keys, one 8-byte
/// value per CPU (one for LRU_HASH).
///
/// Each worker writes keys of its own (`worker << 40 | sequence`): fresh keys on the LRU
/// types (the map is a quarter of `--keys`, so nearly every insert evicts), a range of
/// `maxEntries / threads` keys reused round after round on PERCPU_HASH (never full). Every
/// value a key ever holds, on every CPU, is one of the key's *marks* — a tag of the key and
/// the *generation* of the write (the writer's sequence number + 1, which only grows) — or
/// 0 (a CPU a helper-mode insert did not write). Invariants, checked as the workers go:
/// - `count` never exceeds `maxEntries`, and a pass finds exactly `count` keys, each holding
///   only its marks: checked with the workers paused, at checkpoints (about once a second,
///   less often for maps over 32,768 entries) and at the end. (Workers, and those paused
///   checks, also compare the capacity gate's units, which a real map's gate never lets
///   exceed `maxEntries` — its compare-and-swap bounds them —, so they show a change to
///   that bound or a stand-in map's overshoot; the bound at every moment is
///   `LRUHashMapTests.theBoundHoldsAtEveryMomentInOneChain`'s, and an entry overshoot the
///   pass's key count. Found by review, 2026-12-06.)
/// - the key a worker has just written is present with the new mark — on every CPU after a
///   user-mode write, on exactly one CPU after a helper-mode one, the others unchanged (the
///   CPU the worker is pinned to, for the odd workers of the per-CPU types where the system
///   lets them be pinned);
///   never only older marks (a stale value), never a newer one — on the LRU types unless
///   the eviction hand moved on by its guaranteed distance meanwhile;
/// - a lookup of any key, in user or helper mode, finds a mark of that key or 0 on each
///   CPU: never another key's value, never a torn one (on the LRU types lookups and
///   deletes pick recent keys, about a fifth of which are still in the map; a user-mode
///   lookup finds the key's one mark on one CPU or on every CPU, as its one write left it);
/// - a key its owner has deleted, or found absent, is not found right after; half the
///   deletes are lookup-and-deletes, whose values hold only the key's marks (on
///   PERCPU_HASH exactly what the owner read back after its last write);
/// - PERCPU_HASH, whose keys are written again and again: the newest generation a
///   user-mode lookup finds among the CPUs never goes back for one reader, and at the end
///   each worker's keys are present or absent as it left them, holding exactly what it
///   read back after its last write;
/// - a get-next-key pass made while the others write (about one step in 4,096) returns
///   no key twice and only keys workers write, and, on PERCPU_HASH, every key its worker
///   left present;
/// - no operation fails with an errno the map should not return.
@inline(never)
func exerciseEvictingHash(_ kind: StressMapKind, options: StressOptions, seed: UInt64, recorder: StressRecorder,
                          progress: Bool, samples: StressSampleFile?) -> StressExercise {
    let type: MapType = switch kind {
    case .lruHash: .lruHash
    case .lruPerCPUHash: .lruPerCPUHash
    default: .perCPUHash
    }
    // PERCPU_HASH: room for at least one key per worker (each cycles through its own share
    // and the map is never full, so E2BIG is a violation).
    let maxEntries = type == .perCPUHash ? max(options.keys, options.threads) : max(16, options.keys / 4)
    let definition = MapDefinition(type: type, keySize: 8, valueSize: 8, maxEntries: maxEntries, name: "stress",
                                   hashImplementation: .bucketLocked, poolTag: StressPools.mapTag(kind))
    let target: EvictingStressTarget
    do {
        switch try MapRegistry.create(definition) {
        case let map as RawBucketHashMap:
            target = EvictingStressTarget(map: map, storage: map, cpus: 1, threads: options.threads)
        case let map as RawPerCPUHashMap:
            target = EvictingStressTarget(map: map, storage: map.storage, cpus: map.possibleCPUCount, threads: options.threads)
        default: preconditionFailure("\(type) is served by RawBucketHashMap or RawPerCPUHashMap")
        }
    } catch {
        recorder.record(.setup, "cannot create the \(kind.rawValue) map: \(error)")
        return StressExercise()
    }
    return exerciseEvictingTarget(target, kind: kind, options: options, seed: seed, recorder: recorder, progress: progress,
                                  samples: samples)
}

/// Runs the workers of ``exerciseEvictingHash(_:options:seed:recorder:progress:samples:)``
/// on `target` for the duration, then checks it at rest.
func exerciseEvictingTarget(_ target: EvictingStressTarget, kind: StressMapKind, options: StressOptions, seed: UInt64,
                            recorder: StressRecorder, progress: Bool, samples: StressSampleFile?) -> StressExercise {
    var exercise = StressExercise()
    guard let (reports, sampling, startedAt) = runStressWorkers(
        kind, options: options, recorder: recorder, samples: samples, progress: progress, exercise: &exercise,
        status: { "  count \(target.map.count)" },
        // A pass per checkpoint: about 1 s of workers' time per 32,768 entries at most.
        checkpointTicks: max(1, target.maxEntries / 32_768),
        checkpoint: { label in target.quiescentCheck(label, recorder: recorder) },
        { index, control in
            let worker = EvictingStressWorker(target: target, index: index, threads: options.threads, seed: seed,
                                              control: control, recorder: recorder)
            worker.run()
            return worker.stats
        }) else { return exercise }
    exercise.stats = reports.reduce(StressStats()) { $0 + $1 }
    target.quiescentCheck("final pass", recorder: recorder)
    sampling.take(.end, at: Double(MonotonicClock.nanoseconds() - startedAt) / 1e9, into: &exercise)
    return exercise
}

/// The map under test: its byte-level interface, the bucket hash underneath (for the
/// eviction hands), and the values per key.
struct EvictingStressTarget: Sendable {
    let map: any RawMap
    let storage: RawBucketHashMap
    let cpus: Int
    let threads: Int
    // Kept rather than read from the definitions on every check: a `MapDefinition` (with
    // its name) is copied out of the map on each read, which cost the run a third of its
    // throughput when the value checks read it for every CPU's value.
    let maxEntries: Int
    let isLRU: Bool
    /// Keys a PERCPU_HASH worker cycles through (its share of maxEntries).
    let ownRange: UInt64

    init(map: any RawMap, storage: RawBucketHashMap, cpus: Int, threads: Int) {
        self.map = map
        self.storage = storage
        self.cpus = cpus
        self.threads = threads
        maxEntries = map.definition.maxEntries
        isLRU = storage.definition.type == .lruHash
        ownRange = UInt64(max(1, maxEntries / threads))
    }

    /// Generations: 1 ..< 2^39.
    static let generationMask: UInt64 = (1 << 39) - 1
    /// Set in the marks of helper-mode writes: on the LRU types a key written once in helper
    /// mode holds its mark on one CPU, one written in user mode on every CPU — told apart
    /// by the mark, since with two possible CPUs one mark and "a mark on every CPU but one"
    /// are the same count (a user-mode write that reached one CPU passed there: found by
    /// review of the checkers, 2026-12-07).
    static let helperBit: UInt64 = 1 << 39

    /// The mark of `key` in generation `generation` (never 0): a tag of the key in the top
    /// 24 bits, ``helperBit`` for a helper-mode write, the generation below.
    static func mark(_ key: UInt64, generation: UInt64, helper: Bool = false) -> UInt64 {
        tag(key) << 40 | (helper ? helperBit : 0) | generation & generationMask
    }

    static func tag(_ key: UInt64) -> UInt64 { (key &* 0x9E37_79B9_7F4A_7C15) >> 40 }

    /// The generation of `value` if it is a mark `key` may hold — its tag, and the
    /// generation of a write of that key (the key's low 40 bits are the writer's sequence
    /// number on the LRU types, the sequence number modulo ``ownRange`` on PERCPU_HASH) —
    /// or nil (0, another key's value, a torn one).
    func generation(of value: UInt64, key: UInt64) -> UInt64? {
        let generation = value & Self.generationMask
        guard value >> 40 == Self.tag(key), generation != 0 else { return nil }
        let slot = key & Self.generationMask
        return (isLRU ? generation - 1 == slot : (generation - 1) % ownRange == slot) ? generation : nil
    }

    /// Whether `values` (one per CPU) are what `key` may hold: a mark of `key` in at least
    /// one of them, and 0 or a mark in the others. Every write of the run leaves a mark in
    /// what it writes — each value of a user-mode write, the writing CPU's of a helper write —
    /// so no present key holds zeros alone (an LRU_HASH's one value of 0 included: accepted,
    /// a zeroed slot went unnoticed; found by review, 2026-12-05).
    ///
    /// On the LRU types, exactly one mark or a mark on every CPU: each key is fresh, written
    /// once, by a user-mode write (every CPU's value, published at once: readers see all of
    /// it or nothing) or a helper-mode one (a new key: the writing CPU's value, 0 on the
    /// others), and nothing writes it again. A mix of marks and zeros in between passed
    /// (found by review, 2026-12-06). Not on PERCPU_HASH, whose keys are written again and
    /// again, in helper mode one CPU at a time.
    func holdsOnlyMarks(_ values: [UInt64], of key: UInt64) -> Bool {
        var marked = 0
        var helperMarks = 0
        for value in values where value != 0 {
            guard generation(of: value, key: key) != nil else { return false }
            marked += 1
            if value & Self.helperBit != 0 { helperMarks += 1 }
        }
        // LRU: one helper-mode mark alone, or a user-mode mark on every CPU.
        return isLRU ? (helperMarks == 1 && marked == 1) || (helperMarks == 0 && marked == values.count) : marked > 0
    }

    /// Checks, with the workers paused at a checkpoint or stopped, that the count is within
    /// bounds and every entry holds its mark. `label` ("checkpoint 3 at 3.0 s", "final pass")
    /// starts its messages.
    func quiescentCheck(_ label: String, recorder: StressRecorder) {
        let count = map.count
        // The gate's units too: a map's `count` is clamped to `maxEntries`, so its comparison
        // could never fire on a real map (found by review, 2026-12-06, twenty-seventh
        // session; the pass's key count below catches an entry overshoot, the units a
        // change to the gate's bound). `count` is still compared: a test's stand-in map
        // overshoots there.
        let units = stressCapacityUnits(of: map)
        if units > maxEntries { recorder.record(.count, "\(label): capacity units in use \(units) above maxEntries \(maxEntries)") }
        if count > maxEntries { recorder.record(.count, "\(label): count \(count) above maxEntries \(maxEntries)") }
        var cursor: UInt64?
        var seen = Set<UInt64>()
        var next: UInt64 = 0
        var values = [UInt64](repeating: 0, count: cpus)
        // The workers have stopped: a pass returns every key once and ends with ENOENT, every
        // key it returns is found, and the count is the keys found. (Errors used to end the
        // pass, and lookups to be skipped, without a word; a key returned twice and a count
        // that disagreed went unnoticed: found by review of the checker.)
        while true {
            let step: Result<Void, MapError> = withUnsafeMutableBytes(of: &next) { nextBytes in
                Result { () throws(MapError) in
                    if var current = cursor {
                        try withUnsafeBytes(of: &current) { (c) throws(MapError) in try map.nextKeyInPass(after: c, into: nextBytes) }
                    } else {
                        try map.nextKeyInPass(after: nil, into: nextBytes)
                    }
                }
            }
            if case .failure(let error) = step {
                if error != .keyNotFound { recorder.record(.iteration, "\(label): the pass ended with \(error)") }
                break
            }
            cursor = next
            let key = next
            guard seen.insert(key).inserted else {
                recorder.record(.iteration, "\(label): the pass returned key \(key) twice")
                break
            }
            do {
                try withUnsafeBytes(of: key) { k in try values.withUnsafeMutableBytes { try map.lookup(key: k, into: $0) } }
                if !holdsOnlyMarks(values, of: key) {
                    recorder.record(.value, "\(label): key \(key) holds \(values)")
                }
            } catch {
                recorder.record(.iteration, "\(label): key \(key) returned by the pass, then its lookup failed: \(error)")
            }
        }
        if seen.count > maxEntries { recorder.record(.count, "\(label): the pass saw \(seen.count) keys, maxEntries \(maxEntries)") }
        if seen.count != count { recorder.record(.count, "\(label): the pass saw \(seen.count) keys, count is \(count)") }
    }
}

/// One worker of ``exerciseEvictingHash(_:options:seed:recorder:progress:samples:)``.
final class EvictingStressWorker {
    let target: EvictingStressTarget
    let index: Int
    let threads: Int
    let control: StressControl
    let recorder: StressRecorder
    var random: XorShiftRandom
    /// Keys written so far (the next key's sequence number).
    var sequence: UInt64 = 0
    var values: [UInt64]
    /// PERCPU_HASH: per key (`worker * ownRange + index`), the newest generation a
    /// user-mode lookup of this worker found.
    var newestSeen: [UInt64]
    /// PERCPU_HASH: whether each of this worker's own keys (by `sequence % ownRange`) is in
    /// the map. Only this worker writes and deletes them, so every write, delete and lookup
    /// of its own can be checked against it (before, a delete that removed nothing, or the
    /// wrong key, went unnoticed: found by review of the checker, 2026-12-05, eighteenth
    /// session).
    var ownPresent: [Bool]
    /// PERCPU_HASH: per own key (as ``ownPresent``), the ``StressDigest`` of every CPU's value
    /// read back right after this worker's last write of it: what the key holds exactly
    /// until this worker writes or deletes it again (no other worker writes it; lookups in
    /// helper mode only load), for the end check.
    var ownDigest: [UInt64]
    /// What this worker did (lookups, updates stored, deletes done, count checks).
    var stats = StressStats()
    /// On the per-CPU types, the slot of the CPU this worker is pinned to (odd workers, when
    /// the system lets it): its helper-mode writes must change that CPU's value. Unpinned
    /// workers may migrate mid-write, so for them only "exactly one CPU's value changed" is
    /// checked (which CPU was not, for any worker: found by review, 2026-12-06).
    var pinnedSlot: Int?

    init(target: EvictingStressTarget, index: Int, threads: Int, seed: UInt64, control: StressControl,
         recorder: StressRecorder) {
        self.target = target
        self.index = index
        self.threads = threads
        self.control = control
        self.recorder = recorder
        // A family per seed (with `seed + index`, worker i of seed s + 1 replayed worker
        // i + 1 of seed s: found by review, 2026-12-05).
        random = XorShiftRandom(seed: seed, stream: index)
        values = [UInt64](repeating: 0, count: target.cpus)
        newestSeen = [UInt64](repeating: 0, count: target.isLRU ? 0 : threads * Int(target.ownRange))
        ownPresent = [Bool](repeating: false, count: target.isLRU ? 0 : Int(target.ownRange))
        ownDigest = [UInt64](repeating: 0, count: target.isLRU ? 0 : Int(target.ownRange))
    }

    /// The slot of own key `key` in ``ownPresent`` (PERCPU_HASH).
    func ownSlot(_ key: UInt64) -> Int { Int(truncatingIfNeeded: key & (1 << 40 - 1)) }

    var ownRange: UInt64 { target.ownRange }

    func key(_ sequence: UInt64) -> UInt64 {
        UInt64(index) << 40 | (target.isLRU ? sequence : sequence % ownRange)
    }

    func run() {
        if target.cpus > 1, index % 2 == 1 {
            let online = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
            let cpu = (index / 2) % online
            if RawPerCPUArrayMap.pinCurrentThread(toCPU: cpu) {
                pinnedSlot = RawPerCPUArrayMap.slot(ofCPU: cpu, slots: target.cpus)
            }
        }
        stats.operations &+= control.runBatches { step() }
        if !target.isLRU { checkOwnPresence() }
    }

    /// PERCPU_HASH, once this worker has stopped: each of its own keys is in the map exactly
    /// when its last operation left it there (other workers only look its keys up), and a
    /// present one holds, on every CPU, exactly what this worker read back after its last
    /// write of it (only its presence was checked: a value lost or changed since passed;
    /// found by review, 2026-12-06).
    func checkOwnPresence() {
        for slot in ownPresent.indices {
            let key = UInt64(index) << 40 | UInt64(slot)
            let present = withUnsafeBytes(of: key) { lookUp($0, key: key) }
            if present != ownPresent[slot] {
                recorder.record(.ownKey, "own key \(key) is \(present ? "present" : "absent") at the end, "
                    + "but this worker's last operation left it \(ownPresent[slot] ? "present" : "absent")")
            } else if present, StressDigest.of(values) != ownDigest[slot] {
                recorder.record(.ownKey, "own key \(key) holds generations \(values.map { target.generation(of: $0, key: key) ?? 0 }) "
                    + "(\(values)) at the end, not what this worker read back right after its last write of it")
            }
        }
    }

    func step() {
        let choice = random.next() & 0xFF
        if choice < 96 {
            writeAndCheck(helper: choice < 24)
        } else if choice < 208 {
            lookUpAny(helper: choice < 128)
        } else if choice < 240 {
            deleteOwn()
        } else if choice == 255, random.next() % 16 == 0 {
            iterationPass()
        } else {
            stats.countChecks += 1
            // The gate's units (`count` is clamped to maxEntries and could not show it).
            let units = stressCapacityUnits(of: target.map)
            if units > target.maxEntries {
                recorder.record(.countOvershoot, "capacity units in use \(units) above maxEntries \(target.maxEntries)")
            }
        }
    }

    /// Writes a key of this worker, then looks it up: present with the new mark (unless
    /// evicted after the hand moved on by its guaranteed distance).
    func writeAndCheck(helper: Bool) {
        let key = self.key(sequence)
        sequence &+= 1
        let generation = sequence
        let mark = EvictingStressTarget.mark(key, generation: generation, helper: helper)
        let before = target.storage.evictionTicks
        // A helper-mode write changes the calling CPU's value alone: what every CPU held
        // before (nil: the key was absent, so the others must read 0 after). Only this worker
        // writes its keys, so nothing else changes them meanwhile. (The check accepted any
        // older mark or 0 on the other CPUs: a write to every CPU, or a re-created key that
        // kept old values, passed; found by review, 2026-12-05.)
        // On PERCPU_HASH, in both modes, the key is present exactly when this worker's last
        // operation left it so, holding exactly what it read back after its last write (a
        // user-mode write, blind, re-created a lost key and replaced a changed value unseen;
        // found by review of the checkers, 2026-12-07).
        var previous: [UInt64]?
        if helper || !target.isLRU {
            previous = withUnsafeBytes(of: key) { k in
                values.withUnsafeMutableBytes { buffer -> [UInt64]? in
                    (try? target.map.lookup(key: k, into: buffer)) == nil ? nil : Array(buffer.bindMemory(to: UInt64.self))
                }
            }
            if !target.isLRU {
                let slot = ownSlot(key)
                if (previous != nil) != ownPresent[slot] {
                    recorder.record(.ownKey, "own key \(key) is \(previous != nil ? "present" : "absent") before a write, "
                        + "but this worker's last operation left it \(ownPresent[slot] ? "present" : "absent")")
                } else if let previous, StressDigest.of(previous) != ownDigest[slot] {
                    recorder.record(.ownKey, "own key \(key) holds generations \(previous.map { target.generation(of: $0, key: key) ?? 0 }) "
                        + "(\(previous)) before a write, not what this worker read back right after its last write of it")
                }
            }
        }
        do {
            try withUnsafeBytes(of: key) { k in
                if helper {
                    try withUnsafeBytes(of: mark) { v in
                        try Epoch.withSection { section in try target.map.update(key: k, value: v, flags: .any, in: section) }
                    }
                } else {
                    for cpu in values.indices { values[cpu] = mark }
                    try values.withUnsafeBytes { v in try target.map.update(key: k, value: v, flags: .any) }
                }
            }
        } catch {
            recorder.record(.errno, "update of own key \(key) failed: \(error)")
            return
        }
        stats.updates += 1
        stats.updatesStored += 1
        stats.selfChecks += 1
        if !target.isLRU { ownPresent[ownSlot(key)] = true }
        // ENOENT is "absent"; any other errno is a violation (found by review, 2026-12-05:
        // every error read as absent).
        var lookupError: MapError?
        let present = withUnsafeBytes(of: key) { k in
            values.withUnsafeMutableBytes { buffer -> Bool in
                do throws(MapError) {
                    try target.map.lookup(key: k, into: buffer)
                    return true
                } catch {
                    if error != .keyNotFound { lookupError = error }
                    return false
                }
            }
        }
        // PERCPU_HASH: what the key holds now, exactly, for the end check (checkOwnPresence).
        if !target.isLRU, present { ownDigest[ownSlot(key)] = StressDigest.of(values) }
        if let lookupError {
            recorder.record(.errno, "lookup of own key \(key) right after its update failed: \(lookupError)")
        } else if !present {
            let moved = target.storage.evictionTicks.ticks &- before.ticks
            if !target.isLRU || moved < before.guaranteedDistance {
                recorder.record(.ownKey, "key \(key) missing right after its update (the hand moved \(moved) < \(before.guaranteedDistance))")
            }
        } else if !target.holdsOnlyMarks(values, of: key) {
            recorder.record(.value, "key \(key) just written holds \(values), mark \(mark)")
        } else if !values.contains(mark)
                    // A user-mode write stores every CPU's value: each holds the mark now (only
                    // this worker writes its keys). With "some CPU", a write that reached one
                    // CPU only passed (found by review of the checker).
                    || (!helper && values.contains(where: { $0 != mark }))
                    // Only this worker writes the key, and the generations it writes grow.
                    || values.contains(where: { (target.generation(of: $0, key: key) ?? 0) > generation }) {
            recorder.record(.ownKey, "key \(key) just written with generation \(generation) (\(helper ? "helper" : "user") mode) "
                + "holds generations \(values.map { target.generation(of: $0, key: key) ?? 0 })")
        } else if helper {
            let changed = values.indices.filter { values[$0] != (previous?[$0] ?? 0) }
            if changed.count != 1 || values[changed[0]] != mark {
                recorder.record(.ownKey, "key \(key): a helper-mode write of generation \(generation) changed CPUs \(changed) "
                    + "(\(previous == nil ? "a new key" : "present before")): one CPU's value, to the mark, was expected")
            } else if let pinnedSlot, changed[0] != pinnedSlot {
                recorder.record(.ownKey, "key \(key): a helper-mode write of generation \(generation) by a worker pinned to the "
                    + "CPU of slot \(pinnedSlot) changed slot \(changed[0])'s value")
            }
        }
    }

    /// On an LRU map, how many of a worker's latest keys lookups and deletes pick from: its
    /// share of twice `maxEntries` (about a fifth of them are still in the map).
    var recentWindow: UInt64 { UInt64(max(1, 2 * target.maxEntries / threads)) }

    /// Looks up a key some worker wrote, in user or helper mode: its mark or 0 on each CPU.
    /// On an LRU map, one of the worker's recent keys (the ``recentWindow`` before
    /// this worker's own sequence number; workers write at about the same rate), so that
    /// lookups find entries and check their values: drawn from every key a worker ever
    /// wrote, almost none was still in the map.
    /// A user-mode lookup of `k` into `values`: whether it found the key; an errno other
    /// than ENOENT is recorded as a violation.
    func lookUp(_ k: UnsafeRawBufferPointer, key: UInt64) -> Bool {
        values.withUnsafeMutableBytes { buffer -> Bool in
            do throws(MapError) {
                try target.map.lookup(key: k, into: buffer)
                return true
            } catch {
                if error != .keyNotFound { recorder.record(.errno, "lookup of key \(key) failed: \(error)") }
                return false
            }
        }
    }

    func lookUpAny(helper: Bool) {
        let bits = random.next()
        let worker = Int(bits % UInt64(threads))
        let index: UInt64
        if target.isLRU {
            let offset = (bits >> 24) % min(recentWindow, max(1, sequence))
            index = sequence > offset ? sequence &- 1 &- offset : 0
        } else {
            index = (bits >> 24) % ownRange
        }
        let key = UInt64(worker) << 40 | index
        if helper { stats.helperLookups += 1 } else { stats.lookups += 1 }
        withUnsafeBytes(of: key) { k in
            if helper {
                Epoch.withSection { section in
                    let own: UnsafeMutableRawBufferPointer
                    do throws(MapError) {
                        own = try target.map.lookupInPlace(key: k, in: section)
                    } catch {
                        if error != .keyNotFound { recorder.record(.errno, "helper lookup of key \(key) failed: \(error)") }
                        return
                    }
                    stats.helperLookupHits += 1
                    // Atomic: another worker on this CPU may be writing it in place.
                    let word = own.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .relaxed)
                    // 0 is this CPU's value of a per-CPU key another CPU wrote; one value holds a mark.
                    if word == 0 ? target.cpus == 1 : target.generation(of: word, key: key) == nil {
                        recorder.record(.value, "helper lookup of key \(key) found \(word)")
                    }
                }
            } else if lookUp(k, key: key) {
                stats.lookupHits += 1
                if !target.holdsOnlyMarks(values, of: key) {
                    recorder.record(.value, "lookup of key \(key) found \(values)")
                } else if !target.isLRU {
                    checkNewest(slot: worker * Int(ownRange) + Int(index), key: key)
                }
            }
        }
    }

    /// PERCPU_HASH: the newest generation among the CPUs of `values` (just read from `key`)
    /// is not older than the newest this worker found there before. Each write of the key
    /// has a newer generation than every write before it and either replaces every CPU's
    /// value (user mode), or one CPU's (helper mode on a present key), or creates the key
    /// (after a delete), so the newest generation present only grows.
    func checkNewest(slot: Int, key: UInt64) {
        var newest: UInt64 = 0
        for value in values { newest = max(newest, target.generation(of: value, key: key) ?? 0) }
        if newest < newestSeen[slot] {
            recorder.record(.timeTravel, "lookup of key \(key) found generations \(values.map { target.generation(of: $0, key: key) ?? 0 }) "
                + "after this worker found generation \(newestSeen[slot]): the value went back in time")
        }
        newestSeen[slot] = max(newestSeen[slot], newest)
    }

    /// One get-next-key pass over the map (`nextKeyInPass`) while the other workers write,
    /// about one step in 4,096: it ends with ENOENT, returns no key twice, only keys some
    /// worker wrote, and (PERCPU_HASH, whose keys only their owner writes or deletes, and
    /// this worker does neither during the pass) every own key this worker left present.
    /// (The runs made no pass while writers ran: noted by review, 2026-12-07.)
    func iterationPass() {
        stats.passes += 1
        var cursor: UInt64?
        var next: UInt64 = 0
        var seen = Set<UInt64>()
        while true {
            stats.passKeys += 1
            let step: Result<Void, MapError> = withUnsafeMutableBytes(of: &next) { nextBytes in
                Result { () throws(MapError) in
                    if var current = cursor {
                        try withUnsafeBytes(of: &current) { (c) throws(MapError) in
                            try target.map.nextKeyInPass(after: c, into: nextBytes)
                        }
                    } else {
                        try target.map.nextKeyInPass(after: nil, into: nextBytes)
                    }
                }
            }
            if case .failure(let error) = step {
                if error != .keyNotFound { recorder.record(.errno, "a pass's nextKey failed: \(error)") }
                break
            }
            let key = next
            cursor = key
            guard seen.insert(key).inserted else {
                return recorder.record(.iteration, "a pass returned key \(key) twice (after \(seen.count) keys)")
            }
            if key >> 40 >= UInt64(threads) || (!target.isLRU && key & (1 << 40 - 1) >= ownRange) {
                return recorder.record(.iteration, "a pass returned key \(key), which no worker writes")
            }
        }
        if !target.isLRU {
            let missing = ownPresent.indices.filter { ownPresent[$0] && !seen.contains(UInt64(index) << 40 | UInt64($0)) }
            if !missing.isEmpty {
                recorder.record(.iteration, "a pass missed \(missing.count) own key(s) present throughout, first "
                    + "\(missing.prefix(8).map { String(UInt64(index) << 40 | UInt64($0)) }.joined(separator: ", "))")
            }
        }
    }

    /// Deletes a key this worker wrote (absent is fine: evicted or deleted before); on an
    /// LRU map one of its recent ones, as ``lookUpAny(helper:)`` looks up. Half the deletes
    /// are lookup-and-deletes, whose values are checked: every CPU's value a mark of the
    /// key or 0, and on PERCPU_HASH exactly what this worker read back after its last write
    /// (the stress runs made none: found by review, 2026-12-07).
    func deleteOwn() {
        guard sequence > 0 else { return }
        let window = target.isLRU ? recentWindow : sequence
        let bits = random.next()
        let key = self.key(sequence &- 1 &- bits % min(window, sequence))
        let copying = bits >> 63 == 1
        if copying { stats.lookupAndDeletes += 1 } else { stats.deletes += 1 }
        withUnsafeBytes(of: key) { k in
            var removed = false
            do throws(MapError) {
                if copying {
                    var answer: MapError?
                    values.withUnsafeMutableBytes { buffer in
                        do throws(MapError) { try target.map.lookupAndDelete(key: k, into: buffer) } catch { answer = error }
                    }
                    if let answer { throw answer }
                    stats.lookupAndDeletesDone += 1
                    if !target.holdsOnlyMarks(values, of: key) {
                        recorder.record(.value, "lookup-and-delete of own key \(key) returned \(values)")
                    } else if !target.isLRU, StressDigest.of(values) != ownDigest[ownSlot(key)] {
                        recorder.record(.ownKey, "lookup-and-delete of own key \(key) returned generations "
                            + "\(values.map { target.generation(of: $0, key: key) ?? 0 }) (\(values)), not what this worker "
                            + "read back right after its last write of it")
                    }
                } else {
                    try target.map.delete(key: k)
                    stats.deletesDone += 1
                }
                removed = true
            } catch where error == .keyNotFound {
            } catch {
                recorder.record(.errno, "\(copying ? "lookup-and-delete" : "delete") of own key \(key) failed: \(error)")
                return
            }
            // PERCPU_HASH: only this worker writes the key, so the delete finds it exactly
            // when it was left present.
            if !target.isLRU {
                let slot = ownSlot(key)
                if removed != ownPresent[slot] {
                    recorder.record(.ownKey, "\(copying ? "lookup-and-delete" : "delete") of own key \(key) \(removed ? "removed it" : "found it absent"), "
                        + "but this worker's last operation left it \(ownPresent[slot] ? "present" : "absent")")
                }
                ownPresent[slot] = false
            }
            // Both types: a lookup after the delete finds nothing. Only this worker writes the
            // key; on the LRU types it wrote it once (keys are fresh) and an eviction only
            // removes, so a key deleted, or found evicted, stays gone. (Checked on PERCPU_HASH
            // alone, and nothing else followed a deleted LRU key: a delete that reported
            // success and removed nothing passed; found by review, 2026-12-06.)
            stats.selfChecks += 1
            if lookUp(k, key: key) {
                recorder.record(.ownKey, "own key \(key) is still present after its delete (which \(removed ? "removed it" : "found it absent"))")
            }
        }
    }
}
