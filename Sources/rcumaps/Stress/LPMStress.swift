import RCUMaps
import Synchronization

// `rcumaps stress --maps lpm-trie`: an IPv4 LPM_TRIE under concurrent lookups, inserts,
// deletes, replaces and iteration passes, every answer checked.
//
// The routes are fixed before the run: *stable* prefixes (`--keys / 2`, under 10.0.0.0/8,
// which is one of them) stay stored for the whole run and are only replaced (`BPF_EXIST`,
// which must succeed); *volatile* prefixes (as many, /12 to /32) come and go. A value names
// its prefix (index << 32 | a generation). Invariants:
// - a lookup of an address answers the longest stable prefix covering it, or a volatile
//   prefix that covers it and is longer — never a shorter prefix, one that does not cover
//   the address, or nothing;
// - a stable replace never fails; an insert never meets ENOSPC (the capacity holds every
//   route); other errnos are only those of races (EEXIST, ENOENT on volatile prefixes);
// - an iteration pass (nextKeyInPass) returns keys in strictly increasing postorder, every
//   stable prefix exactly once;
// - at the end (workers stopped), the count equals the stable prefixes plus the volatile
//   ones iteration finds, and every lookup of every route's address matches a brute-force
//   scan over the routes stored then;
// - once the map is dropped, its pool tag returns to 0 live bytes.

/// The routes of an LPM stress run.
struct LPMStressRoutes: Sendable {
    let lengths: [Int]
    let data: [UInt32]  // host-order addresses, host bits zero
    let stableCount: Int

    init(count: Int, seed: UInt64) {
        var random = XorShiftRandom(stream: Int(truncatingIfNeeded: seed))
        var lengths = [8]
        var data: [UInt32] = [0x0A00_0000]
        var seen: Set<UInt64> = [UInt64(0x0A00_0000) << 8 | 8]
        let half = max(2, count / 2)
        while lengths.count < half * 2 {
            let stable = lengths.count < half
            let length = stable ? 9 + Int(random.next() % 20) : 12 + Int(random.next() % 21)
            // 10.0.0.0/14: prefixes nest and share strides.
            let address = (0x0A00_0000 | UInt32(truncatingIfNeeded: random.next()) & 0x0003_FFFF) & Self.mask(length)
            guard seen.insert(UInt64(address) << 8 | UInt64(length)).inserted else { continue }
            lengths.append(length)
            data.append(address)
        }
        self.lengths = lengths
        self.data = data
        stableCount = half
    }

    static func mask(_ length: Int) -> UInt32 { length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length) }

    func covers(_ index: Int, _ address: UInt32) -> Bool { address & Self.mask(lengths[index]) == data[index] }

    static func key(_ length: Int, _ address: UInt32) -> (UInt32, UInt32) { (UInt32(length), address.bigEndian) }
}

/// Shared state of the workers.
final class LPMStressShared: Sendable {
    let map: RawLPMTrieMap
    let routes: LPMStressRoutes
    let recorder: StressRecorder
    let stop = Atomic<Bool>(false)
    let operations = Atomic<Int>(0)
    let stats = Mutex<StressStats>(StressStats())

    init(map: RawLPMTrieMap, routes: LPMStressRoutes, recorder: StressRecorder) {
        self.map = map
        self.routes = routes
        self.recorder = recorder
    }

    func lookup(_ address: UInt32) throws(MapError) -> UInt64 {
        var key = LPMStressRoutes.key(32, address)
        var value: UInt64 = 0
        try withUnsafeBytes(of: &key) { (key) throws(MapError) in
            try withUnsafeMutableBytes(of: &value) { (value) throws(MapError) in try map.lookup(key: key, into: value) }
        }
        return value
    }

    func store(_ index: Int, generation: UInt64, flags: MapUpdateFlags) throws(MapError) {
        var key = LPMStressRoutes.key(routes.lengths[index], routes.data[index])
        var value = UInt64(index) << 32 | generation & 0xFFFF_FFFF
        try withUnsafeBytes(of: &key) { (key) throws(MapError) in
            try withUnsafeBytes(of: &value) { (value) throws(MapError) in try map.update(key: key, value: value, flags: flags) }
        }
    }

    func delete(_ index: Int) throws(MapError) {
        var key = LPMStressRoutes.key(routes.lengths[index], routes.data[index])
        try withUnsafeBytes(of: &key) { (key) throws(MapError) in try map.delete(key: key) }
    }

    /// The longest stable route covering `address` (10.0.0.0/8 covers all of them).
    func stableBest(_ address: UInt32) -> Int {
        var best = 0
        for index in 1..<routes.stableCount where routes.lengths[index] > routes.lengths[best] && routes.covers(index, address) {
            best = index
        }
        return best
    }

    /// Checks one lookup answer against the stable routes.
    func checkLookup(_ address: UInt32, volatileAllowed: Bool) -> Bool {
        let best = stableBest(address)
        let index: Int
        do { index = Int(try lookup(address) >> 32) } catch {
            recorder.record(.stableKey, "lookup \(hex(address)): \(error), but stable route \(best) covers it")
            return false
        }
        guard index < routes.lengths.count, routes.covers(index, address) else {
            recorder.record(.value, "lookup \(hex(address)) answered route \(index), which does not cover it")
            return false
        }
        if index < routes.stableCount {
            if index != best { recorder.record(.value, "lookup \(hex(address)) answered stable route \(index), expected \(best)") }
        } else if !volatileAllowed || routes.lengths[index] <= routes.lengths[best] {
            recorder.record(.value, "lookup \(hex(address)) answered volatile route \(index) /\(routes.lengths[index]) over stable \(best) /\(routes.lengths[best])")
        }
        return true
    }

    /// One iteration pass: strictly increasing postorder, every stable route once.
    func iterationPass() -> Int {
        var cursor: (UInt32, UInt32)?
        var stableSeen = 0
        var keys = 0
        while true {
            var next: (UInt32, UInt32) = (0, 0)
            do {
                try withUnsafeMutableBytes(of: &next) { (out) throws(MapError) in
                    if var previous = cursor {
                        try withUnsafeBytes(of: &previous) { (key) throws(MapError) in try map.nextKeyInPass(after: key, into: out) }
                    } else {
                        try map.nextKeyInPass(after: nil, into: out)
                    }
                }
            } catch where error == .keyNotFound {
                break
            } catch {
                recorder.record(.iteration, "nextKeyInPass: \(error)")
                return keys
            }
            keys += 1
            let length = Int(next.0), address = UInt32(bigEndian: next.1)
            if let previous = cursor, !Self.precedes((Int(previous.0), UInt32(bigEndian: previous.1)), (length, address)) {
                recorder.record(.iteration, "pass went from \(hex(UInt32(bigEndian: previous.1)))/\(previous.0) to \(hex(address))/\(length): not postorder")
            }
            if let index = routeIndex(length, address), index < routes.stableCount { stableSeen += 1 }
            cursor = next
        }
        if stableSeen != routes.stableCount {
            recorder.record(.iteration, "a pass returned \(stableSeen) stable routes of \(routes.stableCount)")
        }
        return keys
    }

    func routeIndex(_ length: Int, _ address: UInt32) -> Int? {
        // Few routes: a scan is fine for the checks.
        routes.lengths.indices.first { routes.lengths[$0] == length && routes.data[$0] == address }
    }

    /// Linux's postorder on (length, address): at the first differing bit 0 first; a prefix
    /// after the prefixes it covers.
    static func precedes(_ a: (Int, UInt32), _ b: (Int, UInt32)) -> Bool {
        let common = min(a.0, b.0)
        let differing = (a.1 ^ b.1) & LPMStressRoutes.mask(common)
        if differing != 0 {
            let bit = UInt32(1) << UInt32(31 - differing.leadingZeroBitCount)
            return a.1 & bit == 0
        }
        return a.0 > b.0
    }
}

func hex(_ address: UInt32) -> String { "\(address >> 24).\(address >> 16 & 0xFF).\(address >> 8 & 0xFF).\(address & 0xFF)" }

/// Builds the IPv4 LPM_TRIE, runs `--threads` workers for the duration, checks the
/// quiescent map, drops it. See the invariants at the top of this file.
@inline(never)
func exerciseLPMTrie(options: StressOptions, seed: UInt64, recorder: StressRecorder, progress: Bool,
                     samples: StressSampleFile?) -> StressExercise {
    var exercise = StressExercise()
    let routes = LPMStressRoutes(count: options.keys, seed: seed)
    let map: RawLPMTrieMap
    do {
        map = try RawLPMTrieMap(MapDefinition(type: .lpmTrie, keySize: 8, valueSize: 8, maxEntries: routes.lengths.count,
                                              flags: .noPrealloc, name: "stress", poolTag: StressPools.mapTag(.lpmTrie)))
    } catch {
        recorder.record(.setup, "cannot create the lpm-trie map: \(error)")
        return exercise
    }
    let shared = LPMStressShared(map: map, routes: routes, recorder: recorder)
    for index in 0..<routes.stableCount {
        do { try shared.store(index, generation: 0, flags: .noExist) } catch {
            recorder.record(.setup, "prefill of stable route \(index): \(error)")
        }
    }
    let tag = StressPools.mapTag(.lpmTrie)
    /// A memory sample (the map's pool tag, RSS), kept for the peaks and written to `--samples`.
    func sample(_ phase: StressSample.Phase, at seconds: Double) {
        let taken = StressSample.take(.lpmTrie, phase, seconds: seconds, tag: tag,
                                      operations: shared.operations.load(ordering: .relaxed), violations: recorder.violations)
        exercise.memory.include(taken)
        samples?.write(taken)
    }
    sample(.start, at: 0)
    let startedAt = MonotonicClock.nanoseconds()
    exercise.startedAt = startedAt
    var threads: [OSThread] = []
    for worker in 0..<options.threads {
        guard let thread = OSThread({ runLPMStressWorker(shared, worker: worker, seed: seed) }) else {
            recorder.record(.setup, "cannot start worker \(worker)")
            break
        }
        threads.append(thread)
    }
    let endAt = startedAt + UInt64(options.duration * 1e9)
    var nextTick = startedAt + 1_000_000_000
    while true {
        let deadline = min(nextTick, endAt)
        MonotonicClock.sleep(until: deadline)
        if deadline == endAt { break }
        sample(.run, at: Double(MonotonicClock.nanoseconds() - startedAt) / 1e9)
        if progress {
            let elapsed = Double(MonotonicClock.nanoseconds() - startedAt) / 1e9
            let done = shared.operations.load(ordering: .relaxed)
            writeToStandardError("[lpm-trie] \(fixed(elapsed, 1) ?? "-")/\(fixed(options.duration, 1) ?? "-") s  "
                + "\(stressCount(done)) ops  \(readable(Double(done) / elapsed / 1e6)) Mops/s  violations \(recorder.violations)\n")
        }
        nextTick += 1_000_000_000
    }
    shared.stop.store(true, ordering: .releasing)
    for thread in threads { thread.join() }
    exercise.nanoseconds = MonotonicClock.nanoseconds() - startedAt
    exercise.operations = shared.operations.load(ordering: .relaxed)
    exercise.stats = shared.stats.withLock { $0 }

    // Quiescent: the stored routes, from iteration, against count and a brute-force scan.
    var stored: [Int] = []
    var cursor: (UInt32, UInt32)?
    while true {
        var next: (UInt32, UInt32) = (0, 0)
        let moved: Bool = withUnsafeMutableBytes(of: &next) { out in
            if var previous = cursor {
                return withUnsafeBytes(of: &previous) { key in (try? map.nextKey(after: key, into: out)) != nil }
            }
            return (try? map.nextKey(after: nil, into: out)) != nil
        }
        guard moved else { break }
        if let index = shared.routeIndex(Int(next.0), UInt32(bigEndian: next.1)) { stored.append(index) } else {
            recorder.record(.consistency, "final pass returned \(hex(UInt32(bigEndian: next.1)))/\(next.0), not a route")
        }
        cursor = next
        if stored.count > routes.lengths.count { recorder.record(.consistency, "final pass does not end"); break }
    }
    if map.count != stored.count { recorder.record(.count, "count \(map.count), a pass found \(stored.count)") }
    for address in routes.data + routes.data.map({ $0 | 0x0000_00FF }) {
        var best: Int?
        for index in stored where routes.covers(index, address) && routes.lengths[index] > (best.map { routes.lengths[$0] } ?? -1) {
            best = index
        }
        let answer = try? shared.lookup(address)
        if answer.map({ Int($0 >> 32) }) != best {
            recorder.record(.consistency, "final lookup \(hex(address)): \(answer.map { String($0 >> 32) } ?? "ENOENT"), brute force \(best.map(String.init) ?? "none")")
        }
    }
    exercise.checkpoints = 1
    sample(.end, at: Double(MonotonicClock.nanoseconds() - startedAt) / 1e9)
    return exercise
}

/// One worker: a mix of checked lookups (70 %), volatile inserts and deletes (10 % each),
/// stable replaces (9 %) and, rarely, an iteration pass.
func runLPMStressWorker(_ shared: LPMStressShared, worker: Int, seed: UInt64) {
    var random = XorShiftRandom(stream: Int(truncatingIfNeeded: seed &+ UInt64(worker) &* 7919))
    var stats = StressStats()
    let routes = shared.routes
    let volatileCount = routes.lengths.count - routes.stableCount
    var generation: UInt64 = UInt64(worker) << 24
    while !shared.stop.load(ordering: .relaxed) {
        for _ in 0..<256 {
            let bits = random.next()
            let choice = bits % 100
            generation &+= 1
            if choice < 70 {
                // An address inside a random route, or anywhere in 10.0.0.0/14.
                let index = Int((bits >> 8) % UInt64(routes.lengths.count))
                let address = bits & 0x100 == 0
                    ? routes.data[index] | UInt32(truncatingIfNeeded: bits >> 32) & ~LPMStressRoutes.mask(routes.lengths[index])
                    : 0x0A00_0000 | UInt32(truncatingIfNeeded: bits >> 32) & 0x0003_FFFF
                stats.lookups += 1
                if shared.checkLookup(address, volatileAllowed: true) { stats.lookupHits += 1 }
            } else if choice < 80 {
                let index = routes.stableCount + Int((bits >> 8) % UInt64(volatileCount))
                stats.updates += 1
                do {
                    try shared.store(index, generation: generation, flags: .noExist)
                    stats.updatesStored += 1
                } catch where error == .alreadyExists {
                    stats.updatesExisting += 1
                } catch {
                    shared.recorder.record(.errno, "insert of volatile route \(index): \(error)")
                }
            } else if choice < 90 {
                let index = routes.stableCount + Int((bits >> 8) % UInt64(volatileCount))
                stats.deletes += 1
                do {
                    try shared.delete(index)
                    stats.deletesDone += 1
                } catch where error == .keyNotFound {
                } catch {
                    shared.recorder.record(.errno, "delete of volatile route \(index): \(error)")
                }
            } else if choice < 99 {
                let index = Int((bits >> 8) % UInt64(routes.stableCount))
                stats.updates += 1
                do {
                    try shared.store(index, generation: generation, flags: .exist)
                    stats.updatesStored += 1
                } catch {
                    shared.recorder.record(.stableKey, "replace of stable route \(index): \(error)")
                }
            } else if bits & 0xF00 == 0 {
                stats.passes += 1
                stats.passKeys += shared.iterationPass()
            } else {
                stats.countChecks += 1
                let count = shared.map.count
                if count < routes.stableCount || count > routes.lengths.count {
                    shared.recorder.record(.count, "count \(count) outside \(routes.stableCount)...\(routes.lengths.count)")
                }
            }
        }
        shared.operations.add(256, ordering: .relaxed)
        stats.operations += 256
    }
    shared.stats.withLock { $0 = $0 + stats }
}
