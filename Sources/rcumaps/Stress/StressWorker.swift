#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RCUMaps

/// The operations a stress worker mixes.
enum StressOperation: UInt8, CaseIterable {
    case lookup, helperLookup, foreign, updateAny, updateNoExist, updateExist, helperUpdate,
         delete, helperDelete, lookupAndDelete, count

    /// Weights out of 256, per map kind.
    static func weights(for kind: StressMapKind) -> [(StressOperation, Int)] {
        switch kind {
        case .hashLockFree, .hashBucket, .hashLockFreeWord, .hashBucketWord:
            [(.lookup, 56), (.helperLookup, 32), (.foreign, 8), (.updateAny, 36), (.updateNoExist, 36),
             (.updateExist, 24), (.helperUpdate, 12), (.delete, 24), (.helperDelete, 8), (.lookupAndDelete, 16), (.count, 4)]
        case .objectMap, .objectMapLockFree:
            // Helper mode is blocked on the object map (its provider translates values): rare, refused.
            [(.lookup, 72), (.helperLookup, 4), (.foreign, 8), (.updateAny, 40), (.updateNoExist, 40),
             (.updateExist, 28), (.helperUpdate, 4), (.delete, 28), (.helperDelete, 4), (.lookupAndDelete, 24), (.count, 4)]
        case .array, .customArray:
            // Arrays refuse inserts, deletes and lookup-and-delete: rare, refused.
            [(.lookup, 72), (.helperLookup, 48), (.foreign, 8), (.updateAny, 56), (.updateNoExist, 8),
             (.updateExist, 40), (.helperUpdate, 12), (.delete, 4), (.helperDelete, 2), (.lookupAndDelete, 2), (.count, 4)]
        case .queue, .stack:
            preconditionFailure("queues and stacks have workers of their own (QueueStressWorker)")
        case .lruHash, .perCPUHash, .lruPerCPUHash:
            preconditionFailure("LRU and per-CPU hashes have workers of their own (EvictingStressWorker)")
        case .perCPUArray:
            preconditionFailure("per-CPU arrays have workers of their own (PerCPUArrayStressWorker)")
        case .lpmTrie:
            preconditionFailure("LPM tries have workers of their own (runLPMStressWorker)")
        case .dictionary, .dictionaryString, .dictionaryNode:
            preconditionFailure("dictionaries have workers of their own (DictionaryStressWorker)")
        }
    }

    /// A 256-entry table: the operation for each value of a random byte.
    static func table(for kind: StressMapKind) -> [StressOperation] {
        var table: [StressOperation] = []
        for (operation, weight) in weights(for: kind) {
            table.append(contentsOf: repeatElement(operation, count: weight))
        }
        _rcumapsPrecondition(table.count == 256, "stress operation weights must add up to 256")
        return table
    }
}

/// Operations between two looks at the stop and pause signals.
let stressBatch = 64

/// One worker thread of a stress run: runs random operations on the map and checks every
/// outcome it can predict.
///
/// What a worker knows:
/// - its *own* keys exactly (nobody else writes them): every lookup, update, delete and
///   lookup-and-delete outcome on them, and every value, must match its record;
/// - stable keys are always present; foreign keys never are;
/// - every value read is whole and belongs to its key (and, for an owned key, was written
///   by its owner or the prefill);
/// - values of one writer under one key never go back in time for one reader (byte maps);
/// - an iteration pass returns no key twice, every stable key, every key of its own that
///   is present and none of its own that is absent;
/// - `count` stays within `stable keys...maxEntries` (arrays: exactly `keys`);
/// - only the errno each operation may return;
/// - "exactly one wins" on shared keys, settled at quiescent checks (``StressContest``): the
///   worker turns `.any` writes of contested keys into `BPF_NOEXIST`, counts the inserts and
///   removals of contested keys it won and keeps the tokens its lookup-and-deletes returned.
final class StressWorker<Map: RawMap> {
    let harness: StressHarness<Map>
    let map: Map
    let index: Int
    let writer: Int
    let keys: Int
    var random: XorShiftRandom
    let operations: [StressOperation]
    var version: UInt64 = 0
    var stats = StressStats()
    /// Per key: the token last stored under a key this worker owns, or `absent`.
    var expected: [UInt64]
    /// Per key: the last token this worker saw (byte maps), for the time-travel check.
    var lastSeen: [UInt64]
    /// Each writer's newest version seen per key (the time-travel check; see
    /// ``NewestVersions``; `lastSeen` when it is too large to keep).
    var newest: NewestVersions
    /// Per key: the number of the last pass that returned it.
    var seenInPass: [UInt32]
    var passNumber: UInt32 = 0
    /// Per key: `BPF_NOEXIST` inserts won minus removals won on contested keys since the
    /// last deposit.
    var balance: [Int32]
    /// Tokens this worker's lookup-and-deletes returned since the last deposit (byte maps).
    var removedTokens: [UInt64] = []
    let keyBuffer: UnsafeMutableRawPointer
    let cursorBuffer: UnsafeMutableRawPointer
    let valueBuffer: UnsafeMutableRawPointer
    let readBuffer: UnsafeMutableRawPointer

    init(harness: StressHarness<Map>, index: Int) {
        self.harness = harness
        map = harness.map
        self.index = index
        writer = index + 1
        keys = harness.keys
        random = XorShiftRandom(seed: harness.seed, stream: index)
        operations = StressOperation.table(for: harness.kind)
        expected = (0..<harness.keys).map { harness.owner($0) == index ? harness.prefillToken($0) : StressToken.absent }
        lastSeen = [UInt64](repeating: StressToken.absent, count: harness.keys)
        newest = NewestVersions(keys: harness.keys, threads: harness.threads)
        seenInPass = [UInt32](repeating: 0, count: harness.keys)
        balance = [Int32](repeating: 0, count: harness.keys)
        keyBuffer = .allocate(byteCount: 8, alignment: 8)
        cursorBuffer = .allocate(byteCount: 8, alignment: 8)
        valueBuffer = .allocate(byteCount: max(harness.valueSize, 8), alignment: 8)
        readBuffer = .allocate(byteCount: max(harness.valueSize, 8), alignment: 8)
    }

    deinit {
        keyBuffer.deallocate()
        cursorBuffer.deallocate()
        valueBuffer.deallocate()
        readBuffer.deallocate()
    }

    var report: StressWorkerReport { StressWorkerReport(index: index, stats: stats, expected: expected) }

    // MARK: Loop

    func run() {
        let control = harness.control
        control.arriveAndWait()
        var generation = 0
        while !control.shouldStop {
            let requested = control.requestedPause
            if requested != generation {
                generation = requested
                checkOwnKeys()
                harness.contest.deposit(balances: &balance, removed: &removedTokens)
                control.pause(generation: generation)
                continue
            }
            let bits = random.next()
            if bits & 63 == 0 {
                let steps = iterationPass()
                stats.operations &+= steps
                control.addOperations(steps)
            }
            for _ in 0..<stressBatch { step() }
            stats.operations &+= stressBatch
            control.addOperations(stressBatch)
        }
        checkOwnKeys()
        harness.contest.deposit(balances: &balance, removed: &removedTokens)
        control.finish()
    }

    @inline(__always)
    func step() {
        let bits = random.next()
        let operation = operations[Int(truncatingIfNeeded: bits & 0xFF)]
        let key = Int(truncatingIfNeeded: ((bits >> 32) &* UInt64(truncatingIfNeeded: keys)) >> 32)
        switch operation {
        case .lookup: lookup(key)
        case .helperLookup: helperLookup(key)
        case .foreign: foreign(bits)
        case .updateAny: update(writableKey(key), flags: .any, helper: false, bits: bits)
        case .updateNoExist: update(writableKey(key), flags: .noExist, helper: false, bits: bits)
        case .updateExist: update(writableKey(key), flags: .exist, helper: false, bits: bits)
        case .helperUpdate:
            let flags = MapUpdateFlags(rawValue: (bits >> 8) % 3)
            update(writableKey(key), flags: flags, helper: true, bits: bits)
        case .delete: delete(deletableKey(key), helper: false)
        case .helperDelete: delete(deletableKey(key), helper: true)
        case .lookupAndDelete: lookupAndDelete(deletableKey(key))
        case .count: checkCount()
        }
    }

    /// `key`, or the shared key next to it when another worker owns it.
    @inline(__always)
    func writableKey(_ key: Int) -> Int {
        if let owner = harness.owner(key), owner != index { return key & ~4 }
        return key
    }

    /// A writable churn key (stable keys are never deleted).
    @inline(__always)
    func deletableKey(_ key: Int) -> Int {
        let writable = writableKey(key)
        return harness.isArray || writable & 3 != 0 ? writable : writable | 1
    }

    @inline(__always)
    func isMine(_ key: Int) -> Bool { harness.owner(key) == index }

    // MARK: Buffers

    @inline(__always)
    func keyBytes(_ key: Int) -> UnsafeRawBufferPointer { harness.key(key, in: keyBuffer) }

    @inline(__always)
    var readBytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: readBuffer, count: harness.valueSize) }

    @inline(__always)
    var valueBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: valueBuffer, count: harness.valueSize) }

    /// The error `body` throws, as an errno (0: none).
    @inline(__always)
    func outcome(_ body: () throws(MapError) -> Void) -> Int32 {
        do {
            try body()
            return 0
        } catch {
            return error.code
        }
    }

    // MARK: Violations

    func violation(_ category: StressViolation, _ message: @autoclosure () -> String) {
        harness.recorder.record(category, "worker \(index) op \(stats.operations): \(message())")
    }

    func unexpected(_ operation: String, key: Int, code: Int32) {
        violation(.errno, "\(operation) of key \(key) failed with unexpected \(MapError(code: code).name)")
    }

    // MARK: Observations

    /// Checks a value read under `key` (copied out of the map): whole, of its key, as the
    /// owner last stored, not older than what this worker saw before.
    @discardableResult
    func observe(_ key: Int, _ value: UnsafeRawPointer, via operation: StaticString) -> UInt64? {
        guard let token = harness.decode(value, key: key) else {
            violation(.value, "\(operation) of key \(key): \(harness.describeValue(value, key: key))")
            return nil
        }
        if let owner = harness.owner(key) {
            if owner == index {
                if token != expected[key] {
                    violation(.ownKey, "\(operation) of own key \(key) returned \(StressToken.describe(token)), "
                        + "last stored \(StressToken.describe(expected[key]))")
                }
            } else if harness.hasVersions {
                let writer = StressToken.writer(token)
                if writer != 0 && writer != owner + 1 {
                    violation(.ownKey, "\(operation) of key \(key) owned by worker \(owner) returned a value of writer \(writer)")
                }
            }
        }
        if harness.hasVersions { sawToken(token, key: key, via: operation) }
        return token
    }

    /// The time-travel check: of one writer's values under one key, a reader never sees an
    /// older one after a newer one.
    @inline(__always)
    func sawToken(_ token: UInt64, key: Int, via operation: StaticString) {
        if newest.isTracking {
            if let newer = newest.see(token, key: key) {
                violation(.timeTravel, "\(operation) of key \(key) returned \(StressToken.describe(token)) after this worker saw "
                    + "version \(newer.version) of writer \(newer.writer): the value went back in time")
            }
            return
        }
        let last = lastSeen[key]
        if last != StressToken.absent,
           StressToken.writer(last) == StressToken.writer(token) ? StressToken.version(token) < StressToken.version(last)
               : StressToken.writer(token) == 0 {  // the prefill's value after a worker's (see NewestVersions)
            violation(.timeTravel, "\(operation) of key \(key) returned \(StressToken.describe(token)) after this worker saw "
                + "\(StressToken.describe(last)): the value went back in time")
        }
        lastSeen[key] = token
    }

    /// Checks that `key` may be absent.
    func observeAbsent(_ key: Int, via operation: StaticString) {
        if harness.isStable(key) {
            violation(.stableKey, "\(operation): stable key \(key) is missing")
        } else if isMine(key), expected[key] != StressToken.absent {
            violation(.ownKey, "\(operation): own key \(key) is missing, last stored \(StressToken.describe(expected[key]))")
        }
    }

    // MARK: Operations

    func lookup(_ key: Int) {
        stats.lookups += 1
        let code = outcome { () throws(MapError) in try map.lookup(key: keyBytes(key), into: readBytes) }
        switch code {
        case 0:
            stats.lookupHits += 1
            observe(key, readBuffer, via: "lookup")
        case ENOENT:
            observeAbsent(key, via: "lookup")
        default:
            unexpected("lookup", key: key, code: code)
        }
    }

    func helperLookup(_ key: Int) {
        stats.helperLookups += 1
        let isArray = harness.isArray
        let wordValues = harness.kind.hasWordValues
        let buffer = readBuffer
        let valueSize = harness.valueSize
        let code = outcome { () throws(MapError) in
            try Epoch.withSection { (section) throws(MapError) in
                let stored = try map.lookupInPlace(key: keyBytes(key), in: section)
                guard stored.count == valueSize else {
                    throw MapError.invalidArgument.with(reason: "in-place value of \(stored.count) bytes")
                }
                if isArray {
                    // Written with atomic stores, concurrently: read each word atomically.
                    for word in 0..<StressWords.count {
                        buffer.storeBytes(of: StressArrayWords.load(stored.baseAddress!, word), toByteOffset: word * 8, as: UInt64.self)
                    }
                } else if wordValues {
                    // One word, replaced in place by concurrent updates: read it atomically.
                    buffer.storeBytes(of: StressArrayWords.load(stored.baseAddress!, 0), as: UInt64.self)
                } else {
                    // Wider hash values are immutable once published (replaced by new entries).
                    buffer.copyMemory(from: stored.baseAddress!, byteCount: valueSize)
                }
            }
        }
        switch code {
        case 0 where harness.isObjectMap:
            violation(.errno, "helper-mode lookup of key \(key) succeeded on the object map (helper mode must be blocked)")
        case 0 where isArray:
            stats.helperLookupHits += 1
            checkArrayWords(key)
        case 0:
            stats.helperLookupHits += 1
            observe(key, readBuffer, via: "helper lookup")
        case ENOENT where !harness.isObjectMap:
            observeAbsent(key, via: "helper lookup")
        case EOPNOTSUPP where harness.isObjectMap:
            stats.refusals += 1
        default:
            unexpected("helper lookup", key: key, code: code)
        }
    }

    /// An array slot read in place: each word whole and of this key (words may come from
    /// different writes: helper mode bypasses the slot's seqlock, as in eBPF); an own key —
    /// written by nobody else — exactly as last stored.
    func checkArrayWords(_ key: Int) {
        for word in 0..<StressWords.count {
            let token = StressWords.token(readBuffer.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self), word)
            guard harness.isValid(token, key: key) else {
                violation(.value, "helper lookup of array key \(key): word \(word) is not a word of this key "
                    + "(\(StressToken.describe(token)))")
                return
            }
            if let owner = harness.owner(key) {
                if owner == index, token != expected[key] {
                    violation(.ownKey, "helper lookup of own array key \(key): word \(word) is \(StressToken.describe(token)), "
                        + "last stored \(StressToken.describe(expected[key]))")
                    return
                }
                let writer = StressToken.writer(token)
                if owner != index, writer != 0, writer != owner + 1 {
                    violation(.ownKey, "helper lookup of array key \(key) owned by worker \(owner): word \(word) of writer \(writer)")
                    return
                }
            }
        }
    }

    /// Operations on keys that are never inserted: lookups, `.exist` updates and deletes.
    func foreign(_ bits: UInt64) {
        stats.foreignOperations += 1
        let key = keys + Int(truncatingIfNeeded: ((bits >> 40) &* UInt64(truncatingIfNeeded: keys)) >> 24)
        let isArray = harness.isArray
        switch (bits >> 8) & 3 {
        case 0:
            version += 1
            harness.encode(harness.newToken(key: key % keys, writer: writer, version: version, choice: 0), into: valueBuffer)
            let code = outcome { () throws(MapError) in try map.update(key: keyBytes(key), value: valueBytes, flags: .exist) }
            if code != (isArray ? E2BIG : ENOENT) { unexpected("update(.exist) of foreign", key: key, code: code) }
        case 1:
            let code = outcome { () throws(MapError) in try map.delete(key: keyBytes(key)) }
            if code != (isArray ? EINVAL : ENOENT) { unexpected("delete of foreign", key: key, code: code) }
        default:
            let code = outcome { () throws(MapError) in try map.lookup(key: keyBytes(key), into: readBytes) }
            if code == 0 {
                violation(.consistency, "lookup of foreign key \(key) (never inserted) found a value")
            } else if code != ENOENT {
                unexpected("lookup of foreign", key: key, code: code)
            }
        }
    }

    func update(_ key: Int, flags requested: MapUpdateFlags, helper: Bool, bits: UInt64) {
        stats.updates += 1
        // Contested keys are never written with `.any`: only a NOEXIST insert creates them.
        // Other balanced keys' `.any` writes say whether they created the key (`exchange`),
        // which a helper-mode write cannot: it inserts or replaces instead.
        let contested = harness.isContested(key)
        let balanced = harness.isBalanced(key)
        let flags = requested != .any ? requested
            : contested || (balanced && helper) ? (contested || bits & 1 == 0 ? MapUpdateFlags.noExist : .exist) : .any
        version += 1
        let token = harness.newToken(key: key, writer: writer, version: version, choice: Int(truncatingIfNeeded: bits >> 16))
        harness.encode(token, into: valueBuffer)
        let code: Int32
        var replaced = true
        // An own key's `.any` write must not hide what the key held: the user-mode one says
        // what it displaced (`exchange`), the helper-mode one (which cannot) reads it first.
        // Both were blind, so an own key lost, re-created or left unchanged by the map before
        // the write went unseen (found by review of the checkers, 2026-12-07; row 300 closed
        // the same hole for the dictionary).
        let mine = isMine(key)
        let ownBlindWrite = mine && flags == .any
        if ownBlindWrite && helper && !harness.isObjectMap { checkOwnBeforeWrite(key) }
        if helper {
            code = outcome { () throws(MapError) in
                try Epoch.withSection { (section) throws(MapError) in
                    try map.update(key: keyBytes(key), value: valueBytes, flags: flags, in: section)
                }
            }
        } else if flags == .any && (balanced || mine) {
            code = outcome { () throws(MapError) in
                replaced = try map.exchange(key: keyBytes(key), value: valueBytes, flags: .any, into: readBytes)
            }
        } else {
            code = outcome { () throws(MapError) in try map.update(key: keyBytes(key), value: valueBytes, flags: flags) }
        }
        let name = helper ? "helper update(\(flags))" : "update(\(flags))"
        if helper && harness.isObjectMap {
            if code == EOPNOTSUPP { stats.refusals += 1 } else { unexpected(name, key: key, code: code) }
            return
        }
        let had = mine ? expected[key] != StressToken.absent : true
        let stable = harness.isStable(key)
        switch code {
        case 0:
            stats.updatesStored += 1
            if ownBlindWrite && !helper {
                // What it displaced is what this worker last stored (`observe` compares it),
                // and it displaced something exactly when the key held a value.
                if replaced {
                    observe(key, readBuffer, via: "exchange of own key")
                } else if had {
                    violation(.ownKey, "update(.any) of own key \(key) created it, but it held \(StressToken.describe(expected[key]))")
                }
            }
            if flags == .any && balanced {
                if !replaced {
                    balance[key] &+= 1
                } else if let token = observe(key, readBuffer, via: "exchange"), harness.hasVersions {
                    // The value it displaced, checked as any value read, and a removal: it
                    // must not come back, nor leave the map twice (it went unchecked: found
                    // by review, 2026-12-06, twenty-fifth session).
                    removedTokens.append(token)
                }
            }
            if flags == .noExist {
                if balanced { balance[key] &+= 1 }
                if stable { violation(.stableKey, "\(name) of stable key \(key) succeeded: the key was missing") }
                if mine && had { violation(.ownKey, "\(name) of own key \(key) succeeded, but it held \(StressToken.describe(expected[key]))") }
            } else if flags == .exist, mine, !had {
                violation(.ownKey, "\(name) of own key \(key) succeeded, but it was absent")
            }
            if mine { expected[key] = token }
            if harness.hasVersions { sawToken(token, key: key, via: "update") }
        case EEXIST where flags == .noExist:
            stats.updatesExisting += 1
            if mine && !had { violation(.ownKey, "\(name) of own absent key \(key) failed with EEXIST") }
        case ENOENT where flags == .exist && !harness.isArray:
            stats.updatesMissing += 1
            if stable { violation(.stableKey, "\(name): stable key \(key) is missing (ENOENT)") }
            if mine && had { violation(.ownKey, "\(name) of own key \(key) failed with ENOENT, but it holds \(StressToken.describe(expected[key]))") }
        case E2BIG where flags != .exist && !harness.isArray:
            stats.updatesFull += 1
            if stable { violation(.stableKey, "\(name) of existing stable key \(key) failed with E2BIG") }
            if mine && had { violation(.ownKey, "\(name) of own existing key \(key) failed with E2BIG") }
        default:
            unexpected(name, key: key, code: code)
        }
    }

    func delete(_ key: Int, helper: Bool) {
        stats.deletes += 1
        let code: Int32
        if helper {
            code = outcome { () throws(MapError) in
                try Epoch.withSection { (section) throws(MapError) in try map.delete(key: keyBytes(key), in: section) }
            }
        } else {
            code = outcome { () throws(MapError) in try map.delete(key: keyBytes(key)) }
        }
        let name = helper ? "helper delete" : "delete"
        if harness.isArray || (helper && harness.isObjectMap) {
            let refusal = harness.isArray ? EINVAL : EOPNOTSUPP
            if code == refusal { stats.refusals += 1 } else { unexpected(name, key: key, code: code) }
            return
        }
        let mine = isMine(key)
        switch code {
        case 0:
            stats.deletesDone += 1
            if harness.isBalanced(key) { balance[key] &-= 1 }
            if mine {
                if expected[key] == StressToken.absent { violation(.ownKey, "\(name) of own absent key \(key) succeeded") }
                expected[key] = StressToken.absent
            }
        case ENOENT:
            if mine && expected[key] != StressToken.absent {
                violation(.ownKey, "\(name) of own key \(key) failed with ENOENT, but it holds \(StressToken.describe(expected[key]))")
            }
        default:
            unexpected(name, key: key, code: code)
        }
    }

    func lookupAndDelete(_ key: Int) {
        stats.lookupAndDeletes += 1
        let code = outcome { () throws(MapError) in try map.lookupAndDelete(key: keyBytes(key), into: readBytes) }
        if harness.isArray {
            // Linux's errno for an operation the map type lacks: ENOTSUPP (524), not EOPNOTSUPP.
            if code == MapError.unsupportedByMapType.code {
                stats.refusals += 1
            } else {
                unexpected("lookupAndDelete", key: key, code: code)
            }
            return
        }
        let mine = isMine(key)
        switch code {
        case 0:
            stats.lookupAndDeletesDone += 1
            if harness.isBalanced(key) { balance[key] &-= 1 }
            if let token = observe(key, readBuffer, via: "lookupAndDelete"), harness.hasVersions {
                removedTokens.append(token)
            }
            if mine { expected[key] = StressToken.absent }
        case ENOENT:
            if mine && expected[key] != StressToken.absent {
                violation(.ownKey, "lookupAndDelete of own key \(key) failed with ENOENT, but it holds \(StressToken.describe(expected[key]))")
            }
        default:
            unexpected("lookupAndDelete", key: key, code: code)
        }
    }

    func checkCount() {
        stats.countChecks += 1
        let count = map.count
        if harness.isArray {
            if count != keys { violation(.count, "array count is \(count), not \(keys)") }
            return
        }
        // `count` is clamped to maxEntries: the gate's own units, never fewer than the
        // entries, are what can show an overshoot (found by review, 2026-12-05: the check
        // of `count` could never fire).
        let units = stressCapacityUnits(of: map)
        if units > harness.maxEntries {
            violation(.countOvershoot, "capacity units in use \(units) exceed maxEntries \(harness.maxEntries)")
        } else if count < harness.stableCount,
                  !(0..<3).contains(where: { _ in sched_yield(); return map.count >= harness.stableCount }) {
            // Read again: a snapshot that met credits on their way between a stripe and the
            // gate's count reads low for that moment, a real shortfall stays.
            violation(.count, "count \(count) is below the \(harness.stableCount) stable keys, which are always present")
        }
    }

    // MARK: Iteration

    /// One whole get-next-key pass (`nextKeyInPass`, which never restarts), checked. Returns
    /// the number of calls.
    @discardableResult
    func iterationPass() -> Int {
        stats.passes += 1
        passNumber &+= 1
        if passNumber == 0 {  // wrapped: forget old passes
            for key in 0..<keys { seenInPass[key] = 0 }
            passNumber = 1
        }
        let keySize = harness.keySize
        var hasCursor = false
        var steps = 0
        var stableFound = 0
        var calls = 0
        while true {
            stats.passKeys += 1
            calls += 1
            let code = outcome { () throws(MapError) in
                try map.nextKeyInPass(after: hasCursor ? UnsafeRawBufferPointer(start: cursorBuffer, count: keySize) : nil,
                                into: UnsafeMutableRawBufferPointer(start: keyBuffer, count: keySize))
            }
            if code == ENOENT { break }
            guard code == 0 else {
                violation(.errno, "nextKey failed with unexpected \(MapError(code: code).name)")
                return calls
            }
            guard let key = harness.index(ofKey: keyBuffer) else {
                violation(.iteration, "iteration returned a key never inserted: \(harness.describeKey(keyBuffer))")
                return calls
            }
            if seenInPass[key] == passNumber {
                violation(.iteration, "iteration returned key \(key) twice in one pass (after \(steps) keys)")
                return calls
            }
            if harness.isArray, key != steps {
                violation(.iteration, "array iteration returned index \(key) at step \(steps)")
                return calls
            }
            seenInPass[key] = passNumber
            if harness.isStable(key) { stableFound += 1 }
            if isMine(key), expected[key] == StressToken.absent {
                violation(.iteration, "iteration returned own key \(key), which is absent for the whole pass")
            }
            cursorBuffer.copyMemory(from: keyBuffer, byteCount: keySize)
            hasCursor = true
            steps += 1
        }
        if stableFound != harness.stableCount {
            let missing = (0..<keys).filter { harness.isStable($0) && seenInPass[$0] != passNumber }
            violation(.iteration, "iteration pass missed \(missing.count) stable key(s), first \(missing.prefix(8).map(String.init).joined(separator: ", "))")
        }
        let ownMissing = (0..<keys).filter { isMine($0) && expected[$0] != StressToken.absent && seenInPass[$0] != passNumber }
        if !ownMissing.isEmpty {
            violation(.iteration, "iteration pass missed \(ownMissing.count) own key(s) present for the whole pass, "
                + "first \(ownMissing.prefix(8).map(String.init).joined(separator: ", "))")
        }
        return calls
    }

    // MARK: Own keys

    /// Before a helper-mode `.any` write of own key `key` (which cannot say what it
    /// replaced): the key holds exactly what this worker last stored, or is absent if it
    /// removed it.
    func checkOwnBeforeWrite(_ key: Int) {
        stats.selfChecks += 1
        let code = outcome { () throws(MapError) in try map.lookup(key: keyBytes(key), into: readBytes) }
        switch code {
        case 0:
            if expected[key] == StressToken.absent {
                violation(.ownKey, "own key \(key) holds a value before a write, but this worker removed it")
            } else {
                observe(key, readBuffer, via: "lookup before a write")
            }
        case ENOENT:
            if expected[key] != StressToken.absent {
                violation(.ownKey, "own key \(key) is missing before a write, last stored \(StressToken.describe(expected[key]))")
            }
        default:
            unexpected("lookup before a write", key: key, code: code)
        }
    }

    /// Looks up every key this worker owns: each must hold exactly what it last stored.
    func checkOwnKeys() {
        stats.selfChecks += 1
        for key in 0..<keys where isMine(key) {
            let code = outcome { () throws(MapError) in try map.lookup(key: keyBytes(key), into: readBytes) }
            switch code {
            case 0:
                if expected[key] == StressToken.absent {
                    violation(.ownKey, "own-key check: key \(key) should be absent but holds a value")
                } else {
                    observe(key, readBuffer, via: "own-key check")
                }
            case ENOENT:
                if expected[key] != StressToken.absent {
                    violation(.ownKey, "own-key check: key \(key) is missing, last stored \(StressToken.describe(expected[key]))")
                }
            default:
                unexpected("own-key check lookup", key: key, code: code)
            }
        }
    }
}
