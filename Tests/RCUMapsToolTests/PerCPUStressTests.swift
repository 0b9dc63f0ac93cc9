#if canImport(Glibc)
import Glibc
#endif
@testable import rcumaps
import RCUMaps
import Foundation
import Synchronization
import Testing

/// What ``aThreadCanBePinned()``'s thread found.
private let pinProbe = Atomic<Int>(0)

/// Whether a new thread (not a pool thread of the test runner, which must not be pinned) can
/// be pinned to CPU 0, as the stress run's first odd worker pins itself.
func aThreadCanBePinned() -> Bool {
    var thread = pthread_t()
    guard pthread_create(&thread, nil, { _ in
        pinProbe.store(RawPerCPUArrayMap.pinCurrentThread(toCPU: 0) ? 1 : 2, ordering: .releasing)
        return nil
    }, nil) == 0 else { return false }
    pthread_join(thread, nil)
    return pinProbe.load(ordering: .acquiring) == 1
}

/// A PERCPU_HASH whose user-mode lookups sometimes answer the values the key's latest
/// user-mode update displaced: the right key, every CPU an old value of it. Before the
/// values carried a generation, they equalled the new ones and nothing noticed.
final class StalePerCPUMap: ForwardingMap, @unchecked Sendable {
    /// Per key: the values (every CPU's) its latest user-mode update displaced.
    let displaced = ThreadLock<[UInt64: [UInt8]]>([:])  // not `Mutex`: TSan cannot see it hand over (ThreadLock)

    override func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        var old = [UInt8](repeating: 0, count: value.count)
        let found = old.withUnsafeMutableBytes { buffer in (try? base.lookup(key: key, into: buffer)) != nil }
        try base.update(key: key, value: value, flags: flags)
        let name = key.loadUnaligned(as: UInt64.self)
        displaced.withLock { $0[name] = found ? old : nil }
    }

    override func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try base.lookup(key: key, into: value)
        guard strikes(), let old = displaced.withLock({ $0[key.loadUnaligned(as: UInt64.self)] }) else { return }
        old.withUnsafeBytes { value.copyMemory(from: $0) }
    }
}

/// A PERCPU_HASH standing in for a faulty one: its possible CPUs.
class PerCPUForwardingMap: ForwardingMap, @unchecked Sendable {
    let cpus: Int
    init(base: RawPerCPUHashMap) {
        cpus = base.possibleCPUCount
        super.init(base: base)
    }

    /// Stores `values` (one per CPU) under `key` in user mode.
    func store(_ values: [UInt64], key: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        let result: Result<Void, MapError> = values.withUnsafeBytes { bytes in
            Result { () throws(MapError) in try base.update(key: key, value: bytes, flags: flags) }
        }
        try result.get()
    }
}

/// A PERCPU_HASH whose helper-mode writes store the value on every CPU, not the calling
/// CPU's alone.
final class EveryCPUHelperWriteMap: PerCPUForwardingMap, @unchecked Sendable {
    override func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                         in section: borrowing EpochSection) throws(MapError) {
        try store([UInt64](repeating: value.loadUnaligned(as: UInt64.self), count: cpus), key: key, flags: flags)
    }
}

/// A PERCPU_HASH whose helper-mode writes store the value in the slot after the calling
/// CPU's (the others kept): one CPU's value changes, but not the caller's.
final class NextCPUHelperWriteMap: PerCPUForwardingMap, @unchecked Sendable {
    override func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                         in section: borrowing EpochSection) throws(MapError) {
        var all = [UInt64](repeating: 0, count: cpus)
        _ = all.withUnsafeMutableBytes { buffer in try? base.lookup(key: key, into: buffer) }
        let own = RawPerCPUArrayMap.currentCPUSlot(of: cpus)
        all[(own + 1) % cpus] = value.loadUnaligned(as: UInt64.self)
        try store(all, key: key, flags: flags)
    }
}

/// A PERCPU_HASH whose deletes sometimes succeed without removing anything.
final class DeleteKeepsPerCPUMap: ForwardingMap, @unchecked Sendable {
    override func delete(key: UnsafeRawBufferPointer) throws(MapError) {
        if strikes() {
            var values = [UInt8](repeating: 0, count: 8 * cpus)
            let found = values.withUnsafeMutableBytes { buffer in (try? base.lookup(key: key, into: buffer)) != nil }
            if found { return }  // "deleted"
        }
        try base.delete(key: key)
    }

    var cpus: Int { (base as! RawPerCPUHashMap).possibleCPUCount }
}

@Suite("rcumaps stress: generations in per-CPU values", .serialized)
struct PerCPUStressGenerationTests {
    /// A short two-thread PERCPU_HASH run over 64 keys.
    static func options() -> StressOptions {
        var options = StressOptions()
        options.maps = [.perCPUHash]
        options.duration = 0.3
        options.threads = 2
        options.keys = 64
        return options
    }

    /// The PERCPU_HASH (bucket-locked base, 8-byte keys and values) a faulty wrapper wraps.
    static func map(named name: String, _ options: StressOptions) throws -> RawPerCPUHashMap {
        try RawPerCPUHashMap(MapDefinition(type: .perCPUHash, keySize: 8, valueSize: 8, maxEntries: options.keys,
                                           name: name, hashImplementation: .bucketLocked))
    }

    /// Runs the short PERCPU_HASH stress on `map`, standing in for `base`; returns the run
    /// and what it recorded.
    static func run(_ map: any RawMap, over base: RawPerCPUHashMap, label: String,
                    _ options: StressOptions) -> (exercise: StressExercise, recorder: StressRecorder) {
        let recorder = StressRecorder(label: label, echo: false)
        let target = EvictingStressTarget(map: map, storage: base.storage, cpus: base.possibleCPUCount, threads: options.threads)
        let exercise = exerciseEvictingTarget(target, kind: .perCPUHash, options: options, seed: 3, recorder: recorder,
                                              progress: false, samples: nil)
        return (exercise, recorder)
    }

    /// PERCPU_HASH answering stale values: the writer reading back its key (an older
    /// generation than it just wrote) and readers (a generation older than one they saw).
    @Test(arguments: [StressViolation.ownKey, .timeTravel])
    func stalePerCPUHashValuesAreCaught(_ expected: StressViolation) throws {
        let options = Self.options()
        let base = try Self.map(named: "stale", options)
        let (exercise, recorder) = Self.run(StalePerCPUMap(base: base), over: base, label: "stale", options)
        #expect(!exercise.hung)
        #expect(recorder.byKind.contains { $0.0 == expected }, "\(recorder.byKind) \(recorder.descriptions)")
        #expect(!recorder.byKind.contains { $0.0 == .value }, "\(recorder.descriptions)")
    }

    /// A helper-mode write must change the calling CPU's value alone (found by review,
    /// 2026-12-05: a write that stored every CPU's value passed the checker). Needs two
    /// possible CPUs to tell "one CPU" from "every CPU".
    @Test(.enabled(if: RawPerCPUArrayMap.possibleCPUs > 1, "one possible CPU"))
    func aHelperWriteToEveryCPUIsCaught() throws {
        let options = Self.options()
        let base = try Self.map(named: "everycpu", options)
        let (exercise, recorder) = Self.run(EveryCPUHelperWriteMap(base: base), over: base, label: "everycpu", options)
        #expect(!exercise.hung)
        #expect(recorder.byKind.contains { $0.0 == .ownKey }, "\(recorder.byKind) \(recorder.descriptions)")
    }

    /// A helper-mode write must change the calling CPU's value: a write that changes one
    /// other CPU's value is caught by a worker pinned to a CPU (found by review, 2026-12-06:
    /// only "exactly one CPU changed" was checked), and the same run on the plain map
    /// reports nothing. Needs two possible CPUs, and a system that lets a thread be pinned.
    @Test(.enabled(if: RawPerCPUArrayMap.possibleCPUs > 1, "one possible CPU"))
    func aHelperWriteToAnotherCPUIsCaught() throws {
        let options = Self.options()
        let base = try Self.map(named: "nextcpu", options)
        let (exercise, recorder) = Self.run(NextCPUHelperWriteMap(base: base), over: base, label: "nextcpu", options)
        #expect(!exercise.hung)
        if aThreadCanBePinned() {
            #expect(recorder.descriptions.contains { $0.contains("by a worker pinned to the CPU of slot") },
                    "\(recorder.byKind) \(recorder.descriptions)")
        }
        let plain = try Self.map(named: "pinctl", options)
        let control = Self.run(plain, over: plain, label: "pinctl", options).recorder
        #expect(control.byKind.isEmpty, "\(control.descriptions)")
    }

    /// Each worker knows which of its own keys are present (only it writes and deletes them):
    /// a delete that reports success and removes nothing is caught, and the same run on the
    /// plain map reports nothing (found by review of the checker, 2026-12-05, eighteenth
    /// session: no check looked at presence, so such a delete passed).
    @Test func aDeleteThatRemovesNothingIsCaught() throws {
        let options = Self.options()
        let base = try Self.map(named: "delkeeps", options)
        let (exercise, recorder) = Self.run(DeleteKeepsPerCPUMap(base: base), over: base, label: "delkeeps", options)
        #expect(!exercise.hung)
        #expect(recorder.byKind.contains { $0.0 == .ownKey }, "\(recorder.byKind) \(recorder.descriptions)")
        let plain = try Self.map(named: "control", options)
        let control = Self.run(plain, over: plain, label: "control", options).recorder
        #expect(control.byKind.isEmpty, "\(control.descriptions)")
    }

    /// Marks tell their key and generation apart: a mark of another key, or a generation
    /// no write of the key has, is not one the key may hold.
    @Test func perCPUHashMarksNameTheirKeyAndGeneration() throws {
        let base = try RawPerCPUHashMap(MapDefinition(type: .perCPUHash, keySize: 8, valueSize: 8, maxEntries: 64,
                                                      name: "marks", hashImplementation: .bucketLocked))
        let target = EvictingStressTarget(map: base, storage: base.storage, cpus: base.possibleCPUCount, threads: 2)
        // Worker 1's key of index 5: sequences 5, 37, 69, … (ownRange 32), generations one more.
        let key = UInt64(1) << 40 | 5
        #expect(target.ownRange == 32)
        #expect(target.generation(of: EvictingStressTarget.mark(key, generation: 6), key: key) == 6)
        #expect(target.generation(of: EvictingStressTarget.mark(key, generation: 38), key: key) == 38)
        #expect(target.generation(of: EvictingStressTarget.mark(key, generation: 7), key: key) == nil)
        #expect(target.generation(of: EvictingStressTarget.mark(key + 1, generation: 6), key: key) == nil)
        #expect(target.generation(of: 0, key: key) == nil)
        #expect(target.holdsOnlyMarks([0, EvictingStressTarget.mark(key, generation: 38)], of: key))
    }

    /// A PERCPU_ARRAY helper-mode write must change the calling CPU's value alone. The
    /// state a write of the mark to every CPU leaves (every CPU holding the new mark, none
    /// changed by this write) passed the check, which asked only that some CPU hold it
    /// (found by review, 2026-12-05, sixteenth session). A plain helper write passes.
    /// An 8-index PERCPU_ARRAY named `name`, its recorder, and worker `index` of `threads`
    /// (one thread owns indices 4…7, the upper half; bits 0 pick index 4, 1 << 8 index 5).
    static func perCPUArrayWorker(_ name: String, index: Int = 0, threads: Int = 1) throws
        -> (map: RawPerCPUArrayMap, recorder: StressRecorder, worker: PerCPUArrayStressWorker)
    {
        let map = try RawPerCPUArrayMap(MapDefinition(type: .perCPUArray, keySize: 4, valueSize: 8, maxEntries: 8,
                                                      name: name))
        let recorder = StressRecorder(label: name, echo: false)
        let worker = PerCPUArrayStressWorker(map: map, index: index, threads: threads, seed: 1,
                                             control: StressControl(threads: threads), recorder: recorder)
        return (map, recorder, worker)
    }

    /// Stores `values` (one per CPU) at `index` in user mode.
    static func store(_ map: RawPerCPUArrayMap, _ index: UInt32, _ values: [UInt64]) throws {
        try withUnsafeBytes(of: index) { key in try values.withUnsafeBytes { try map.update(key: key, value: $0, flags: .any) } }
    }

    @Test(.enabled(if: RawPerCPUArrayMap.possibleCPUs > 1, "one possible CPU"))
    func aPerCPUArrayHelperWriteMustChangeOneCPUsValue() throws {
        let (map, recorder, writer) = try Self.perCPUArrayWorker("onecpu")
        try Self.store(map, 4, [UInt64](repeating: PerCPUArrayStressWorker.mark(4, 1), count: map.possibleCPUCount))
        // Generation 1: what every CPU holds already. Two findings: the index held marks its
        // owner never wrote (the check before the write), and the write changed no value.
        writer.writeOwned(helper: true, bits: 0)
        #expect(recorder.byKind.map(\.0) == [.ownKey], "\(recorder.descriptions)")
        #expect(recorder.violations == 2, "\(recorder.descriptions)")
        writer.writeOwned(helper: true, bits: 0)   // generation 2, on the calling CPU alone
        #expect(recorder.violations == 2, "\(recorder.descriptions)")
    }

    /// A PERCPU_ARRAY reader that found generation 5 of an owned index and then finds 3
    /// reports the value going back in time; 7 after that is fine.
    @Test func perCPUArrayReaderCatchesAnOlderGeneration() throws {
        let (map, recorder, reader) = try Self.perCPUArrayWorker("older", index: 1, threads: 2)
        func write(_ generation: UInt64) throws {
            try Self.store(map, 4, [UInt64](repeating: PerCPUArrayStressWorker.mark(4, generation), count: map.possibleCPUCount))
        }
        try write(5)
        reader.readOwned(4, helper: false)
        #expect(recorder.violations == 0, "\(recorder.descriptions)")
        try write(3)
        reader.readOwned(4, helper: false)
        #expect(recorder.byKind.map(\.0) == [.timeTravel], "\(recorder.descriptions)")
        try write(7)
        reader.readOwned(4, helper: false)
        #expect(recorder.violations == 1, "\(recorder.descriptions)")
    }

    /// At the end each worker's own PERCPU_HASH keys hold, on every CPU, exactly what it read
    /// back after its last write of each: only their presence was checked, so values lost or
    /// changed since passed (found by review, 2026-12-06). Both a later mark of the key on
    /// every CPU, which any reader accepts, and zeros are caught.
    @Test func perCPUHashOwnKeysHoldTheirLastWriteAtTheEnd() throws {
        let base = try RawPerCPUHashMap(MapDefinition(type: .perCPUHash, keySize: 8, valueSize: 8, maxEntries: 16,
                                                      name: "lastwrite", hashImplementation: .bucketLocked))
        let target = EvictingStressTarget(map: base, storage: base.storage, cpus: base.possibleCPUCount, threads: 1)
        let recorder = StressRecorder(label: "lastwrite", echo: false)
        let worker = EvictingStressWorker(target: target, index: 0, threads: 1, seed: 1, control: StressControl(threads: 1),
                                          recorder: recorder)
        // Keys 0 (user mode: every CPU), 1 and 2 (helper mode: a new key, the calling CPU's value).
        worker.writeAndCheck(helper: false)
        worker.writeAndCheck(helper: true)
        worker.writeAndCheck(helper: true)
        worker.checkOwnPresence()
        #expect(recorder.violations == 0, "\(recorder.descriptions)")
        func store(_ key: UInt64, _ values: [UInt64]) throws {
            try withUnsafeBytes(of: key) { k in try values.withUnsafeBytes { try base.update(key: k, value: $0, flags: .exist) } }
        }
        // Key 0's next generation in this worker's range (ownRange 16), a mark key 0 may hold.
        try store(0, [UInt64](repeating: EvictingStressTarget.mark(0, generation: 17), count: base.possibleCPUCount))
        try store(1, [UInt64](repeating: 0, count: base.possibleCPUCount))
        worker.checkOwnPresence()
        #expect(recorder.byKind.map(\.0) == [.ownKey], "\(recorder.descriptions)")
        #expect(recorder.violations == 2, "\(recorder.descriptions)")
    }

    /// At the end each owned PERCPU_ARRAY index holds, on every CPU, exactly what its owner
    /// read back after its last write, or zeros if it never wrote it: the final check asked
    /// only for marks of the index or 0, so an index whose writes were lost (all zeros)
    /// passed, as it still passes that check (found by review, 2026-12-06).
    @Test func perCPUArrayOwnedIndicesHoldTheirLastWriteAtTheEnd() throws {
        let (map, recorder, owner) = try Self.perCPUArrayWorker("lastwrite")
        owner.writeOwned(helper: false, bits: 0)
        owner.writeOwned(helper: true, bits: 1 << 8)
        owner.checkOwned()
        #expect(recorder.violations == 0, "\(recorder.descriptions)")
        // Index 6, never written, holding a mark of its own on every CPU.
        try Self.store(map, 6, [UInt64](repeating: PerCPUArrayStressWorker.mark(6, 1), count: map.possibleCPUCount))
        owner.checkOwned()
        #expect(recorder.violations == 1 && recorder.descriptions.last?.contains("index 6") == true,
                "\(recorder.descriptions)")
        // Index 4's write lost: zeros, as before it.
        try Self.store(map, 6, [UInt64](repeating: 0, count: map.possibleCPUCount))
        try Self.store(map, 4, [UInt64](repeating: 0, count: map.possibleCPUCount))
        owner.checkOwned()
        #expect(recorder.violations == 2 && recorder.descriptions.last?.contains("index 4") == true,
                "\(recorder.descriptions)")
        #expect(recorder.byKind.map(\.0) == [.ownKey], "\(recorder.descriptions)")
        let marksOnly = StressRecorder(label: "final", echo: false)
        PerCPUArrayStressWorker.finalCheck(map, tallies: [[0, 0, 0, 0]], recorder: marksOnly)
        #expect(marksOnly.violations == 0, "\(marksOnly.descriptions)")
    }

    /// An LRU key is written once: its mark on every CPU (user mode) or on one, 0 on the
    /// others (helper mode, a new key). A mix in between passed (found by review,
    /// 2026-12-06). PERCPU_HASH keys are written again and again, one CPU at a time in
    /// helper mode: any mix of marks and zeros may be there.
    @Test func anLRUKeyHoldsItsMarkOnOneCPUOrOnEvery() throws {
        let lru = try RawBucketHashMap(MapDefinition(type: .lruHash, keySize: 8, valueSize: 8, maxEntries: 16))
        let target = EvictingStressTarget(map: lru, storage: lru, cpus: 3, threads: 1)
        let key = UInt64(5)
        let mark = EvictingStressTarget.mark(key, generation: 6)
        let helperMark = EvictingStressTarget.mark(key, generation: 6, helper: true)
        #expect(target.holdsOnlyMarks([mark, mark, mark], of: key))
        #expect(target.holdsOnlyMarks([0, helperMark, 0], of: key))
        #expect(!target.holdsOnlyMarks([mark, 0, mark], of: key))
        #expect(!target.holdsOnlyMarks([0, 0, 0], of: key))
        // A user-mode write's mark on one CPU alone, or a helper-mode write's on every CPU:
        // with two CPUs the counts alone could not tell (found by review of the checkers,
        // 2026-12-07).
        #expect(!target.holdsOnlyMarks([0, mark, 0], of: key))
        #expect(!target.holdsOnlyMarks([helperMark, helperMark, helperMark], of: key))
        let two = EvictingStressTarget(map: lru, storage: lru, cpus: 2, threads: 1)
        #expect(two.holdsOnlyMarks([mark, mark], of: key) && two.holdsOnlyMarks([0, helperMark], of: key))
        #expect(!two.holdsOnlyMarks([mark, 0], of: key) && !two.holdsOnlyMarks([helperMark, helperMark], of: key))
        #expect(!two.holdsOnlyMarks([helperMark, mark], of: key))
        let hash = try RawBucketHashMap(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 16,
                                                      hashImplementation: .bucketLocked))
        let reused = EvictingStressTarget(map: hash, storage: hash, cpus: 3, threads: 1)
        #expect(reused.holdsOnlyMarks([mark, 0, mark], of: key))
    }
}

@Suite("rcumaps stress: percpu-array checkpoints")
struct PerCPUArrayCheckpointTests {
    /// The percpu-array run checks its counters at checkpoints, with the workers paused, not
    /// only at the end: a counter another thread overwrites early in a 1.5 s run is caught
    /// at checkpoint 1 (the run had no checkpoints: left by the note of 2026-12-06, done the
    /// same day).
    @Test func aCorruptedCounterIsCaughtAtTheFirstCheckpoint() throws {
        var options = StressOptions()
        options.duration = 1.5
        options.threads = 2
        options.keys = 64
        let map = try RawPerCPUArrayMap(MapDefinition(type: .perCPUArray, keySize: 4, valueSize: 8, maxEntries: options.keys,
                                                      name: "ckpt", poolTag: PoolTag("stpk")))
        let recorder = StressRecorder(label: "percpu-ckpt", echo: false)
        let corrupter = Thread {
            usleep(300_000)
            let bogus = [UInt64](repeating: 1_000_000, count: map.possibleCPUCount)
            _ = try? withUnsafeBytes(of: UInt32(0)) { k in try bogus.withUnsafeBytes { try map.update(key: k, value: $0, flags: .any) } }
        }
        corrupter.start()
        let exercise = exercisePerCPUArrayMap(map, options: options, seed: 4, recorder: recorder, progress: false, samples: nil)
        #expect(!exercise.hung)
        #expect(exercise.checkpoints >= 1, "checkpoints: \(exercise.checkpoints)")
        #expect(recorder.descriptions.contains { $0.hasPrefix("checkpoint 1 at") && $0.contains("counter 0 sums to") },
                "\(recorder.descriptions)")
    }
}

