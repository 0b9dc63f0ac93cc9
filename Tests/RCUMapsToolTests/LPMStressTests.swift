#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
@testable import rcumaps
import RCUMaps
import Synchronization
import Testing

/// An IPv4 LPM trie that misbehaves on purpose, to show that the LPM stress run notices.
final class FaultyLPMMap: RawMap {
    enum Fault: Sendable {
        /// Some lookups answer the value a `BPF_EXIST` replace of the route displaced (the
        /// right route, an old value): only the generation in the value tells.
        case staleReads
        /// A `BPF_NOEXIST` insert of a stored route replaces it and succeeds: two inserts
        /// win one absent episode.
        case noExistReplaces
        /// Lookups wait while ``FaultyLPMMap/stalled`` is set: the workers make no progress.
        case stalls
    }

    let base: RawLPMTrieMap
    let fault: Fault
    let calls = Atomic<Int>(0)
    /// ``Fault/stalls``: lookups wait until this is cleared.
    let stalled = Atomic<Bool>(true)
    /// ``Fault/staleReads``: per route index, the value its latest replace displaced.
    let displaced = Mutex<[Int: UInt64]>([:])

    init(routes: LPMStressRoutes, fault: Fault) throws(MapError) {
        base = try RawLPMTrieMap(MapDefinition(type: .lpmTrie, keySize: 8, valueSize: 8, maxEntries: routes.lengths.count,
                                               flags: .noPrealloc, name: "faulty_lpm"))
        self.fault = fault
    }

    /// True once every 16 calls.
    func strikes() -> Bool { calls.wrappingAdd(1, ordering: .relaxed).newValue & 15 == 0 }

    var definition: MapDefinition { base.definition }
    var count: Int { base.count }

    func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        if fault == .stalls { while stalled.load(ordering: .acquiring) { StressControl.nap() } }
        try base.lookup(key: key, into: value)
        if fault == .staleReads, strikes(),
           let old = displaced.withLock({ $0[StressToken.key(value.loadUnaligned(as: UInt64.self))] }) {
            value.storeBytes(of: old, as: UInt64.self)
        }
    }

    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        if fault == .staleReads, flags == .exist {
            var old: UInt64 = 0
            try withUnsafeMutableBytes(of: &old) { (buffer) throws(MapError) in try base.lookup(key: key, into: buffer) }
            try base.update(key: key, value: value, flags: flags)
            displaced.withLock { $0[StressToken.key(old)] = old }
            return
        }
        if fault == .noExistReplaces, flags == .noExist, strikes() {
            try base.update(key: key, value: value, flags: .any)
            return
        }
        try base.update(key: key, value: value, flags: flags)
    }

    // The rest of RawMap, passed through unchanged.
    func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer {
        try base.lookupInPlace(key: key, in: section)
    }
    func exchange(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                  into displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        try base.exchange(key: key, value: value, flags: flags, into: displaced)
    }
    func delete(key: UnsafeRawBufferPointer) throws(MapError) { try base.delete(key: key) }
    func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try base.lookupAndDelete(key: key, into: value)
    }
    func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try base.nextKey(after: key, into: nextKey)
    }
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                in section: borrowing EpochSection) throws(MapError) {
        try base.update(key: key, value: value, flags: flags, in: section)
    }
    func delete(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError) {
        try base.delete(key: key, in: section)
    }
    func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer, flags: MapElementFlags) throws(MapError) {
        try base.lookup(key: key, into: value, flags: flags)
    }
    func delete(key: UnsafeRawBufferPointer, flags: MapElementFlags) throws(MapError) { try base.delete(key: key, flags: flags) }
    func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                         flags: MapElementFlags) throws(MapError) {
        try base.lookupAndDelete(key: key, into: value, flags: flags)
    }
    func nextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try base.nextKeyInPass(after: key, into: nextKey)
    }
    var access: MapAccess { base.access }
    var isFrozen: Bool { base.isFrozen }
    func freeze() throws(MapError) { try base.freeze() }
    func lookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer, values: UnsafeMutableRawBufferPointer,
                     count: Int, elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult {
        try base.lookupBatch(from: cursor, keys: keys, values: values, count: count, elementFlags: elementFlags, flags: flags)
    }
    func lookupAndDeleteBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                              values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                              flags: UInt64) throws(MapError) -> MapBatchResult {
        try base.lookupAndDeleteBatch(from: cursor, keys: keys, values: values, count: count,
                                      elementFlags: elementFlags, flags: flags)
    }
    func updateBatch(keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, count: Int,
                     elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult {
        try base.updateBatch(keys: keys, values: values, count: count, elementFlags: elementFlags, flags: flags)
    }
    func deleteBatch(keys: UnsafeRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                     flags: UInt64) throws(MapError) -> MapBatchResult {
        try base.deleteBatch(keys: keys, count: count, elementFlags: elementFlags, flags: flags)
    }
}

@Suite("rcumaps stress catches LPM faults", .serialized)
struct LPMStressCheckerTests {
    static func options(threads: Int = 2) -> StressOptions {
        var options = StressOptions()
        options.maps = [.lpmTrie]
        options.duration = 0.3
        options.threads = threads
        options.keys = 128
        return options
    }

    /// Stale values and a NOEXIST insert that replaces: the generation in the values (an
    /// old value of the right route), the owner's record and the volatile routes' balances.
    @Test(arguments: [
        (FaultyLPMMap.Fault.staleReads, StressViolation.timeTravel),
        (FaultyLPMMap.Fault.staleReads, StressViolation.ownKey),
        (FaultyLPMMap.Fault.noExistReplaces, StressViolation.twoWinners),
    ])
    func faultyLPMMapIsCaught(_ fault: FaultyLPMMap.Fault, _ expected: StressViolation) throws {
        let options = Self.options()
        var caught = false
        var seen: [String] = []
        for seed in UInt64(5)..<10 where !caught {
            let map = try FaultyLPMMap(routes: LPMStressRoutes(count: options.keys, seed: seed), fault: fault)
            let recorder = StressRecorder(label: "faulty-lpm", echo: false)
            let exercise = exerciseLPMMap(map, options: options, seed: seed, recorder: recorder, progress: false, samples: nil)
            #expect(!exercise.hung)
            caught = recorder.byKind.contains { $0.0 == expected }
            seen.append("\(recorder.byKind) \(recorder.descriptions.prefix(2))")
        }
        #expect(caught, "violations per run: \(seen)")
    }

    /// Workers stuck in lookups are reported once the watchdog expires after the stop,
    /// rather than hanging the run (the LPM run joined its threads without a limit).
    @Test func stuckWorkersAreReported() throws {
        let options = Self.options()
        let map = try FaultyLPMMap(routes: LPMStressRoutes(count: options.keys, seed: 1), fault: .stalls)
        let recorder = StressRecorder(label: "faulty-lpm", echo: false)
        let started = MonotonicClock.nanoseconds()
        let exercise = exerciseLPMMap(map, options: options, seed: 1, recorder: recorder, progress: false, samples: nil,
                                      watchdog: 500_000_000)
        let seconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
        map.stalled.store(false, ordering: .releasing)  // let the stuck threads finish
        #expect(exercise.hung)
        #expect(recorder.byKind.map(\.0) == [.setup], "\(recorder.descriptions)")
        #expect(recorder.descriptions.first?.contains("did not stop within 0.5 s") == true, "\(recorder.descriptions)")
        #expect(seconds < 5)
    }

    /// The unbroken map: no violation, and the checks ran (owned routes replaced, volatile
    /// routes inserted and deleted).
    @Test func lpmRunOfManyThreadsHasNoViolations() {
        var options = Self.options(threads: 5)
        options.keys = 64
        let result = runStressMap(.lpmTrie, options: options, seed: 77, progress: false)
        #expect(result.byKind.isEmpty, "violations: \(result.byKind) — \(result.descriptions)")
        #expect(result.exercise.stats.deletesDone > 0 && result.exercise.stats.updatesStored > 0)
    }
}
