import RCUMaps
import Synchronization

/// What a linearizability run does to a byte-level map: a few keys, shared by every thread,
/// each operation chosen at random; see ``runLinearizabilityHistory(on:_:seed:)``.
public struct LinearizabilityWorkload: Sendable {
    /// Threads at once (more than the machine's cores, so that threads are also preempted
    /// in the middle of an operation).
    public var threads = 3
    /// Operations each thread makes.
    public var operationsPerThread = 4_000
    /// Keys all threads share: few, so that most operations overlap others on their key.
    public var keys = 3
    /// Whether the map stores keys that can be absent (hashes: deletes, lookup-and-delete,
    /// inserts). Arrays: every index always holds a value, initially zero.
    public var keysCanBeAbsent = true
    /// Whether helper-mode lookups, updates and deletes are mixed in.
    public var helperMode = true
    /// Whether a value of more than 8 bytes read in place (helper mode) may be torn: ARRAY's
    /// in-place values are written where readers read them, as Linux's are. Such a read is
    /// recorded as its first word.
    public var inPlaceReadsMayTear = false

    public init() {}

    /// `RCUMAPS_LONG_TESTS=<seconds>` scales the operations up (10,000 a thread per second
    /// asked, at least the default).
    public static var scaled: LinearizabilityWorkload {
        var workload = LinearizabilityWorkload()
        let seconds = Double(stressDuration.components.seconds) + Double(stressDuration.components.attoseconds) / 1e18
        workload.operationsPerThread = max(workload.operationsPerThread, Int(seconds * 10_000))
        return workload
    }
}

extension KeyWriteCondition {
    /// Linux's update flag for the condition: `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`.
    public var flags: MapUpdateFlags {
        switch self {
        case .any: .any
        case .ifAbsent: .noExist
        case .ifPresent: .exist
        }
    }
}

/// Runs `rounds` histories of `workload` on `map`, one after another, and returns a message
/// for each thing found wrong (an empty list: every history linearizable). Each round starts
/// from what the map holds: a hash's keys removed first, an array's values as the last
/// round left them (`workload.keysCanBeAbsent` tells which).
public func linearizabilityProblems(of map: any RawMap, _ workload: LinearizabilityWorkload,
                                    rounds: Int) throws -> [String] {
    var problems: [String] = []
    for round in 1...rounds {
        var initial: [Int: UInt64] = [:]
        for key in 0..<workload.keys {
            if workload.keysCanBeAbsent {
                _ = try? map.remove(UInt64(key))
            } else {
                initial[key] = map.definition.valueSize == 8
                    ? try map.get(UInt32(key), as: UInt64.self) : try map.get(UInt32(key), as: (UInt64, UInt64).self).0
            }
        }
        let run = runLinearizabilityHistory(on: map, workload, seed: UInt64(round))
        problems += run.failures.map { "round \(round): \($0)" }
        if run.events.count != workload.threads * workload.operationsPerThread {
            problems.append("round \(round): \(run.events.count) operations recorded, not \(workload.threads * workload.operationsPerThread)")
        }
        if let violation = checkLinearizable(run.events, initial: { initial[$0] }) {
            problems.append("round \(round): \(violation)")
        }
    }
    return problems
}

/// The outcome of a run: every thread's events, and what the run itself saw wrong (an error
/// no operation may give, a torn value).
public struct LinearizabilityRun: Sendable {
    public var events: [HistoryEvent]
    public var failures: [String]

    /// Checks the history (each key starting absent, or holding `initial`).
    public func violation(initial: UInt64? = nil) -> LinearizabilityViolation? {
        checkLinearizable(events, initial: { _ in initial })
    }
}

/// Runs `workload.threads` threads that each make `workload.operationsPerThread` operations
/// and records their history. For each operation, the thread's step (made once per thread
/// by `makeStep`) gets the thread's recorder, the key (`0..<keys`), a random roll in
/// `0..<100` that chooses the operation, and a word unique to this operation for a write
/// to store (the thread, the seed and a count: never 0, and unique across seeds); it performs
/// one operation inside ``HistoryRecorder/record(key:_:_:)`` and may report what it saw
/// wrong to `failures`.
public func recordHistory(
    _ workload: LinearizabilityWorkload, seed: UInt64 = 1,
    makeStep: @escaping @Sendable (_ thread: Int, _ failures: Failures)
        -> (_ recorder: inout HistoryRecorder, _ key: Int, _ roll: Int, _ word: UInt64) -> Void
) -> LinearizabilityRun {
    let clock = HistoryClock()
    let recorded = ThreadLock<[[HistoryEvent]]>(Array(repeating: [], count: workload.threads))
    let failures = Failures()
    runOnThreads(workload.threads) { thread in
        var recorder = HistoryRecorder(thread: thread, clock: clock)
        var random = XorShift(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(thread + 1))
        let step = makeStep(thread, failures)
        for count in 0..<workload.operationsPerThread {
            let key = Int(random.next() % UInt64(workload.keys))
            let roll = Int(random.next() % 100)
            // Unique within the run and across runs of other seeds on one map (a round that
            // starts from what the last one left must not see its start value written again).
            step(&recorder, key, roll, (UInt64(thread + 1) << 56) | ((seed & 0xFF_FFFF) << 32) | UInt64(count + 1))
        }
        let events = recorder.events
        recorded.withLock { $0[thread] = events }
    }
    return LinearizabilityRun(events: recorded.withLock { $0.flatMap { $0 } }, failures: failures.all)
}

/// Runs `workload` on `map` and records its history.
///
/// Keys are the key indexes `0..<keys` written into the map's key size (little-endian, 4 or
/// 8 bytes; arrays: the index). Each write stores its unique word in the map's first 8
/// value bytes; a 16-byte value holds the word and then its complement, so a read of a
/// mixed pair is a torn value (the all-zero value of an array's untouched index reads as
/// 0). Operations: user-mode lookup, update (any, no-exist, exist), `exchange`,
/// `insertIfAbsent`, delete, `deleteIfPresent`, lookup-and-delete; helper-mode lookup (the
/// value read in place, each word with an atomic load, inside the section), update and
/// delete.
public func runLinearizabilityHistory(on map: any RawMap, _ workload: LinearizabilityWorkload = .init(),
                                      seed: UInt64 = 1) -> LinearizabilityRun {
    let keySize = map.definition.keySize
    let valueSize = map.definition.valueSize
    precondition(keySize == 4 || keySize == 8, "linearizability runs use 4- or 8-byte keys")
    precondition(valueSize == 8 || valueSize == 16, "linearizability runs use 8- or 16-byte values")
    return recordHistory(workload, seed: seed) { thread, failures in
        var key = [UInt8](repeating: 0, count: keySize)
        var value = [UInt8](repeating: 0, count: valueSize)
        var out = [UInt8](repeating: 0, count: valueSize)
        return { recorder, index, roll, word in
            withUnsafeBytes(of: UInt64(index).littleEndian) { index in
                key.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: index[..<keySize])) }
            }
            value.withUnsafeMutableBytes { bytes in
                bytes.storeBytes(of: word, toByteOffset: 0, as: UInt64.self)
                if valueSize == 16 { bytes.storeBytes(of: ~word, toByteOffset: 8, as: UInt64.self) }
            }
            // The word a read value holds, or nil (and a failure) when its halves disagree.
            func readWord(of bytes: UnsafeRawBufferPointer, inPlace: Bool = false) -> UInt64 {
                let first = bytes.loadUnaligned(as: UInt64.self)
                if valueSize == 16, !(inPlace && workload.inPlaceReadsMayTear) {
                    let second = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                    if second != ~first, !(first == 0 && second == 0) {
                        failures.record("thread \(thread): key \(index) read a torn value\(inPlace ? " in place" : ""): "
                                        + "\(String(first, radix: 16)), \(String(second, radix: 16))")
                    }
                }
                return first
            }
            func unexpected(_ error: MapError, _ operation: KeyOperation) -> KeyOutcome {
                failures.record("thread \(thread): \(operation) on key \(index) threw \(error)")
                return .refused
            }
            var roll = roll
            if !workload.helperMode, roll >= 85 { roll -= 15 }
            // Arrays: inserts, deletes and lookup-and-deletes become lookups and plain updates.
            if !workload.keysCanBeAbsent, (50..<70).contains(roll) { roll = roll < 60 ? 0 : 28 }
            key.withUnsafeBytes { keyBytes in
                value.withUnsafeBytes { valueBytes in
                    out.withUnsafeMutableBytes { outBytes in
                        // A user-mode lookup, recorded (ENOENT: absent).
                        func lookUp() {
                            recorder.record(key: index, .lookup) {
                                do throws(MapError) {
                                    try map.lookup(key: keyBytes, into: outBytes)
                                    return .value(readWord(of: UnsafeRawBufferPointer(outBytes)))
                                } catch .keyNotFound { return .value(nil) } catch { return unexpected(error, .lookup) }
                            }
                        }
                        // A write's error: its condition's refusal (ENOENT for `.ifPresent`,
                        // EEXIST for `.ifAbsent`), or one no write may give.
                        func refusal(_ error: MapError, _ condition: KeyWriteCondition, _ operation: KeyOperation) -> KeyOutcome {
                            (error == .keyNotFound && condition == .ifPresent) || (error == .alreadyExists && condition == .ifAbsent)
                                ? .refused : unexpected(error, operation)
                        }
                        switch roll {
                        case 0..<15:
                            lookUp()
                        case 15..<40:
                            let condition: KeyWriteCondition = [.any, .any, .ifAbsent, .ifPresent][roll % 4]
                            let operation = KeyOperation.update(word, condition)
                            recorder.record(key: index, operation) {
                                do throws(MapError) {
                                    try map.update(key: keyBytes, value: valueBytes, flags: condition.flags)
                                    return .done
                                } catch { return refusal(error, condition, operation) }
                            }
                        case 40..<50:
                            let condition: KeyWriteCondition = [.any, .any, .ifAbsent, .ifPresent][roll % 4]
                            let operation = KeyOperation.exchange(word, condition)
                            recorder.record(key: index, operation) {
                                do throws(MapError) {
                                    let replaced = try map.exchange(key: keyBytes, value: valueBytes, flags: condition.flags, into: outBytes)
                                    return .value(replaced ? readWord(of: UnsafeRawBufferPointer(outBytes)) : nil)
                                } catch { return refusal(error, condition, operation) }
                            }
                        case 50..<55:
                            let operation = KeyOperation.update(word, .ifAbsent)
                            recorder.record(key: index, operation) {
                                do throws(MapError) {
                                    return try map.insertIfAbsent(key: keyBytes, value: valueBytes) ? .done : .refused
                                } catch { return unexpected(error, operation) }
                            }
                        case 55..<60:
                            recorder.record(key: index, .delete) {
                                do throws(MapError) {
                                    if roll % 2 == 0 {
                                        try map.delete(key: keyBytes)
                                        return .done
                                    }
                                    return try map.deleteIfPresent(key: keyBytes) ? .done : .refused
                                } catch .keyNotFound { return .refused } catch { return unexpected(error, .delete) }
                            }
                        case 60..<70:
                            recorder.record(key: index, .lookupAndDelete) {
                                do throws(MapError) {
                                    try map.lookupAndDelete(key: keyBytes, into: outBytes)
                                    return .value(readWord(of: UnsafeRawBufferPointer(outBytes)))
                                } catch .keyNotFound { return .value(nil) } catch { return unexpected(error, .lookupAndDelete) }
                            }
                        case 70..<85:
                            // Another plain lookup half the time, else a user-mode replace.
                            if roll % 2 == 0 {
                                lookUp()
                            } else {
                                let operation = KeyOperation.update(word, .any)
                                recorder.record(key: index, operation) {
                                    do throws(MapError) {
                                        try map.update(key: keyBytes, value: valueBytes, flags: .any)
                                        return .done
                                    } catch { return unexpected(error, operation) }
                                }
                            }
                        case 85..<93:
                            // Helper mode: the value read in place, each word with an atomic load.
                            recorder.record(key: index, .lookup) {
                                Epoch.withSection { section in
                                    do throws(MapError) {
                                        let stored = try map.lookupInPlace(key: keyBytes, in: section)
                                        let base = stored.baseAddress!
                                        let first = base.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .relaxed)
                                        var copy = (first, UInt64(0))
                                        if valueSize == 16 {
                                            copy.1 = (base + 8).assumingMemoryBound(to: Atomic<UInt64>.self).pointee
                                                .load(ordering: .relaxed)
                                        }
                                        return .value(withUnsafeBytes(of: &copy) { readWord(of: $0, inPlace: true) })
                                    } catch .keyNotFound { return .value(nil) } catch { return unexpected(error, .lookup) }
                                }
                            }
                        case 93..<97:
                            let condition: KeyWriteCondition = [.any, .ifAbsent, .ifPresent, .any][roll % 4]
                            let operation = KeyOperation.update(word, condition)
                            recorder.record(key: index, operation) {
                                Epoch.withSection { section in
                                    do throws(MapError) {
                                        try map.update(key: keyBytes, value: valueBytes, flags: condition.flags, in: section)
                                        return .done
                                    } catch { return refusal(error, condition, operation) }
                                }
                            }
                        default:
                            // (Arrays: a lookup instead of a helper-mode delete.)
                            if !workload.keysCanBeAbsent { return lookUp() }
                            recorder.record(key: index, .delete) {
                                Epoch.withSection { section in
                                    do throws(MapError) {
                                        try map.delete(key: keyBytes, in: section)
                                        return .done
                                    } catch .keyNotFound { return .refused } catch { return unexpected(error, .delete) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
