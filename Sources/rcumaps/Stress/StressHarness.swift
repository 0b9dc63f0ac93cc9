#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RCUMaps
import Synchronization

/// One stress run on one map: the key layout, the value codec, the shared control and
/// recorder, and the quiescent checks. Shared by the coordinator and every worker.
///
/// Key layout (index `i` in `0..<keys`):
/// - *stable* keys (`i % 4 == 0`; every index of an array) are prefilled and never
///   deleted, only replaced: they must never be missing;
/// - the others are *churn* keys, inserted and deleted at random; those with `i % 4 == 2`
///   are prefilled;
/// - *owned* keys (`i & 4 != 0`) are written only by worker `(i >> 3) % threads`, which
///   therefore knows exactly what each must hold (or that it is absent) at every moment;
///   the other keys are *shared*: every worker writes them;
/// - *contested* keys (`i % 8 == 3`, shared churn keys never prefilled) are never written
///   with `.any` (workers turn it into `BPF_NOEXIST`): only a `NOEXIST` insert creates
///   them, so exactly one of the inserts racing on an absent one may win, and exactly one
///   of the removals racing on a present one (``StressContest``);
/// - *balanced* keys are every shared churn key (`i % 8` is 1, 2 or 3): the contested ones,
///   and the others, whose `.any` writes go through `exchange` in user mode (which tells a
///   new key from a replaced one) and become `NOEXIST` or `EXIST` in helper mode (which
///   cannot tell). Every insert that creates one, and every removal, is counted, so two
///   removals that both won one entry show on them too — also on the object map, whose
///   values (handles) cannot show a value returned twice. (Only the contested keys were
///   counted: found by review, 2026-12-05, left then, done 2026-12-06.)
/// - *foreign* keys (indices `keys..<2*keys`) are never inserted.
final class StressHarness<Map: RawMap>: Sendable {
    let kind: StressMapKind
    let map: Map
    let keys: Int
    let threads: Int
    let maxEntries: Int
    let stableCount: Int
    let seed: UInt64
    /// Object map only.
    let objects: StressObjects?
    let control: StressControl
    let recorder: StressRecorder
    /// "Exactly one wins": the workers' balances on contested keys and the tokens their
    /// lookup-and-deletes returned, settled at every quiescent check.
    let contest: StressContest

    /// Bytes of a key: 8 for the byte hash maps, 4 (an index) otherwise.
    let keySize: Int
    /// Bytes of a user value: 32 for the byte maps (8 for the one-word kinds), 4 (a handle)
    /// for the object map.
    let valueSize: Int

    init(kind: StressMapKind, map: Map, keys: Int, threads: Int, seed: UInt64,
         objects: StressObjects?, recorder: StressRecorder) {
        self.kind = kind
        self.map = map
        self.keys = keys
        self.threads = threads
        self.maxEntries = map.definition.maxEntries
        self.seed = seed
        self.objects = objects
        self.recorder = recorder
        control = StressControl(threads: threads)
        contest = StressContest(keys: keys, threads: threads)
        keySize = map.definition.keySize
        valueSize = map.definition.valueSize
        stableCount = kind.isArray ? keys : (keys + 3) / 4
    }

    // MARK: Layout

    @inline(__always) var isArray: Bool { kind.isArray }
    @inline(__always) var isObjectMap: Bool { kind == .objectMap || kind == .objectMapLockFree }
    /// Byte maps carry writer and version in their values.
    @inline(__always) var hasVersions: Bool { !isObjectMap }

    @inline(__always)
    func isStable(_ index: Int) -> Bool { isArray || index & 3 == 0 }

    /// The worker that owns key `index`, or `nil` for a shared key.
    @inline(__always)
    func owner(_ index: Int) -> Int? { index & 4 != 0 ? (index >> 3) % threads : nil }

    /// Whether key `index` is contested: shared, churned, not prefilled and never written
    /// with `.any`, so that only a `BPF_NOEXIST` insert creates it (see the layout above).
    @inline(__always)
    func isContested(_ index: Int) -> Bool { !isArray && index & 7 == 3 }

    /// Whether key `index` is balanced: a shared churn key (see the layout above), whose
    /// creations and removals every worker counts (``StressContest``).
    @inline(__always)
    func isBalanced(_ index: Int) -> Bool { !isArray && !isStable(index) && owner(index) == nil }

    /// Whether the prefill stores key `index`.
    @inline(__always)
    func isPrefilled(_ index: Int) -> Bool { isArray || index & 1 == 0 }

    /// The token the prefill stores under `index`, or ``StressToken/absent``.
    func prefillToken(_ index: Int) -> UInt64 {
        guard isPrefilled(index) else { return StressToken.absent }
        if let objects { return UInt64(objects.handle(forKey: index, choice: 0)) }
        // Version 1, never 0: key 0's token would otherwise be all zero bits, and a value
        // zeroed by a defect (a slot read before it was filled) would pass for it on the
        // maps whose value is the bare token (found by review, 2026-12-05).
        return StressToken.make(key: index, writer: 0, version: StressToken.prefillVersion)
    }

    /// A new token for key `index` by `writer` (a worker index + 1).
    @inline(__always)
    func newToken(key index: Int, writer: Int, version: UInt64, choice: Int) -> UInt64 {
        if let objects { return UInt64(objects.handle(forKey: index, choice: choice)) }
        return StressToken.make(key: index, writer: writer, version: version)
    }

    // MARK: Keys and values

    /// Writes key `index` into `buffer` (at least 8 bytes) and returns it as a key.
    @inline(__always)
    func key(_ index: Int, in buffer: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        if keySize == 8 {
            buffer.storeBytes(of: StressKeys.hashKey(index), as: UInt64.self)
        } else {
            buffer.storeBytes(of: UInt32(truncatingIfNeeded: index), as: UInt32.self)
        }
        return UnsafeRawBufferPointer(start: buffer, count: keySize)
    }

    /// The index of a key the map returned, or `nil` if it is not a key of the key space.
    @inline(__always)
    func index(ofKey key: UnsafeRawPointer) -> Int? {
        let index: Int?
        if keySize == 8 {
            index = StressKeys.index(ofHashKey: key.loadUnaligned(as: UInt64.self))
        } else {
            index = Int(key.loadUnaligned(as: UInt32.self))
        }
        guard let index, index < keys else { return nil }
        return index
    }

    func describeKey(_ key: UnsafeRawPointer) -> String {
        keySize == 8 ? "0x" + String(key.loadUnaligned(as: UInt64.self), radix: 16)
                     : String(key.loadUnaligned(as: UInt32.self))
    }

    /// Writes the value of `token` into `buffer`.
    @inline(__always)
    func encode(_ token: UInt64, into buffer: UnsafeMutableRawPointer) {
        if isObjectMap {
            buffer.storeBytes(of: UInt32(truncatingIfNeeded: token), as: UInt32.self)
        } else if kind.hasWordValues {
            buffer.storeBytes(of: token, as: UInt64.self)
        } else {
            StressWords.encode(token, into: buffer)
        }
    }

    /// The token of a value read under key `index`, or `nil` if the value is torn, corrupt
    /// or belongs to another key.
    @inline(__always)
    func decode(_ value: UnsafeRawPointer, key index: Int) -> UInt64? {
        if let objects {
            let handle = value.loadUnaligned(as: UInt32.self)
            return objects.belongs(handle, toKey: index) ? UInt64(handle) : nil
        }
        if kind.hasWordValues {
            // One word cannot tear; it must still be a token of this key.
            let token = value.loadUnaligned(as: UInt64.self)
            return isValid(token, key: index) ? token : nil
        }
        guard let token = StressWords.decode(value), isValid(token, key: index) else { return nil }
        return token
    }

    /// Whether a byte-map token is one some writer could have stored under `index`.
    @inline(__always)
    func isValid(_ token: UInt64, key index: Int) -> Bool {
        let writer = StressToken.writer(token)
        return StressToken.key(token) == index && writer <= threads
            && (writer != 0 || StressToken.version(token) == StressToken.prefillVersion)
    }

    /// Why a value read under key `index` is wrong, in words.
    func describeValue(_ value: UnsafeRawPointer, key index: Int) -> String {
        if let objects {
            let handle = value.loadUnaligned(as: UInt32.self)
            guard let position = objects.index(of: handle) else { return "value \(handle) is not a handle of the run" }
            return "handle \(handle) (object \(position), group \(position % objects.groups)) does not belong to key \(index) (group \(index % objects.groups))"
        }
        if kind.hasWordValues {
            return "value does not belong to key \(index): \(StressToken.describe(value.loadUnaligned(as: UInt64.self)))"
        }
        let tokens = (0..<StressWords.count).map { StressWords.token(value.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self), $0) }
        let words = (0..<StressWords.count).map { "0x" + String(value.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self), radix: 16) }
        if Set(tokens).count > 1 {
            return "torn value: words decode to [\(tokens.map(StressToken.describe).joined(separator: "; "))] (words \(words.joined(separator: " ")))"
        }
        return "value does not belong to key \(index): \(StressToken.describe(tokens[0])) (words \(words.joined(separator: " ")))"
    }

    // MARK: Prefill

    /// Stores every prefilled key; records a violation for every refusal.
    func prefill() {
        withScratch { key, value in
            var stored = 0
            // The prefill created the balanced keys it stored: one each.
            var created = [Int32](repeating: 0, count: keys)
            for index in 0..<keys where isPrefilled(index) {
                encode(prefillToken(index), into: value.baseAddress!)
                do {
                    try map.update(key: self.key(index, in: key.baseAddress!),
                                   value: UnsafeRawBufferPointer(start: value.baseAddress!, count: valueSize),
                                   flags: isArray ? .exist : .noExist)
                    stored += 1
                    if isBalanced(index) { created[index] = 1 }
                } catch {
                    recorder.record(.setup, "prefill: update of key \(index) failed: \(error)")
                }
            }
            let expected = isArray ? keys : stored
            if map.count != expected {
                recorder.record(.consistency, "prefill: stored \(stored) keys but count is \(map.count)")
            }
            var none: [UInt64] = []
            contest.deposit(balances: &created, removed: &none)
        }
    }

    /// Runs `body` with two scratch buffers: a key (8 bytes) and a value (`valueSize`).
    func withScratch<R>(_ body: (UnsafeMutableRawBufferPointer, UnsafeMutableRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(byteCount: 16, alignment: 8) { key in
            withUnsafeTemporaryAllocation(byteCount: max(valueSize, 8), alignment: 8) { value in
                body(key, value)
            }
        }
    }

    // MARK: Quiescent check

    /// Checks the whole map while no worker is running (a checkpoint or the end).
    ///
    /// - One iteration pass: no key twice, every key one of ours, every stable key there;
    ///   for an array, exactly `0..<keys` in order.
    /// - `count` equals the number of keys the pass found, and is at most `maxEntries`.
    /// - Every key of the key space: found by lookup exactly when the pass found it, with a
    ///   whole value that belongs to it; the helper-mode lookup agrees (byte maps).
    /// - Foreign keys are absent.
    /// - "Exactly one wins" (``StressContest``): no value was returned by two
    ///   lookup-and-deletes since the last check, none of them is still in the map, and every
    ///   contested key's insert and removal wins balance to its presence.
    /// - `expected` (at the end): every owned key holds exactly what its owner last stored.
    /// - Object map: every object's reference count is 1 (the run's handle) plus the
    ///   number of entries holding it.
    func quiescentCheck(_ label: String, expected: [StressWorkerReport]? = nil) {
        withScratch { keyBuffer, value in
            withUnsafeTemporaryAllocation(byteCount: 16, alignment: 8) { cursor in
                var present = [Bool](repeating: false, count: keys)
                var found = 0
                var hasCursor = false
                var steps = 0
                pass: while true {
                    do throws(MapError) {
                        try map.nextKeyInPass(after: hasCursor ? UnsafeRawBufferPointer(start: cursor.baseAddress!, count: keySize) : nil,
                                        into: UnsafeMutableRawBufferPointer(start: keyBuffer.baseAddress!, count: keySize))
                    } catch where error == .keyNotFound {
                        break pass
                    } catch {
                        recorder.record(.errno, "\(label): nextKey failed: \(error)")
                        break pass
                    }
                    guard let index = index(ofKey: keyBuffer.baseAddress!) else {
                        recorder.record(.iteration, "\(label): iteration returned a key never inserted: \(describeKey(keyBuffer.baseAddress!))")
                        break pass
                    }
                    if present[index] {
                        recorder.record(.iteration, "\(label): iteration returned key \(index) twice")
                        break pass
                    }
                    if isArray, index != steps {
                        recorder.record(.iteration, "\(label): array iteration returned index \(index) at step \(steps)")
                        break pass
                    }
                    present[index] = true
                    found += 1
                    steps += 1
                    cursor.baseAddress!.copyMemory(from: keyBuffer.baseAddress!, byteCount: keySize)
                    hasCursor = true
                }
                let count = map.count
                if count != found {
                    recorder.record(.consistency, "\(label): count is \(count) but iteration found \(found) keys")
                }
                if found > maxEntries {
                    recorder.record(.count, "\(label): \(found) keys in a map of maxEntries \(maxEntries)")
                }
                var held = [UInt64](repeating: StressToken.absent, count: keys)
                var holders = [Int](repeating: 0, count: objects?.handles.count ?? 0)
                var missingStable: [Int] = []
                for index in 0..<keys {
                    if isStable(index), !present[index] { missingStable.append(index) }
                    let key = self.key(index, in: keyBuffer.baseAddress!)
                    var token = StressToken.absent
                    do throws(MapError) {
                        try map.lookup(key: key, into: UnsafeMutableRawBufferPointer(start: value.baseAddress!, count: valueSize))
                        if let decoded = decode(value.baseAddress!, key: index) {
                            token = decoded
                        } else {
                            recorder.record(.value, "\(label): key \(index): \(describeValue(value.baseAddress!, key: index))")
                        }
                        if !present[index] {
                            recorder.record(.consistency, "\(label): lookup finds key \(index) but iteration did not return it")
                        }
                    } catch where error == .keyNotFound {
                        if present[index] {
                            recorder.record(.consistency, "\(label): iteration returned key \(index) but lookup does not find it")
                        }
                    } catch {
                        recorder.record(.errno, "\(label): lookup of key \(index) failed: \(error)")
                    }
                    held[index] = token
                    if token != StressToken.absent, let owner = owner(index), hasVersions {
                        let writer = StressToken.writer(token)
                        if writer != 0 && writer != owner + 1 {
                            recorder.record(.ownKey, "\(label): key \(index) owned by worker \(owner) holds a value of writer \(writer)")
                        }
                    }
                    if token != StressToken.absent, let objects, let position = objects.index(of: UInt32(truncatingIfNeeded: token)) {
                        holders[position] += 1
                    }
                    if hasVersions {
                        checkInPlace(key, index: index, expecting: token, label: label)
                    }
                    if let expected, let owner = owner(index), owner < expected.count,
                       expected[owner].expected[index] != token {
                        recorder.record(.ownKey, "\(label): key \(index) holds \(StressToken.describe(token)), "
                            + "its owner (worker \(owner)) last stored \(StressToken.describe(expected[owner].expected[index]))")
                    }
                }
                contest.settle(label, present: present, held: held, isBalanced: isBalanced, recorder: recorder)
                if !missingStable.isEmpty {
                    recorder.record(.stableKey, "\(label): \(missingStable.count) stable key(s) missing, first \(missingStable.prefix(8).map(String.init).joined(separator: ", "))")
                }
                for foreign in [keys, keys + keys / 2, 2 * keys - 1] {
                    let key = self.key(foreign, in: keyBuffer.baseAddress!)
                    do throws(MapError) {
                        try map.lookup(key: key, into: UnsafeMutableRawBufferPointer(start: value.baseAddress!, count: valueSize))
                        recorder.record(.consistency, "\(label): foreign key \(foreign) (never inserted) is found")
                    } catch where error == .keyNotFound {
                    } catch {
                        recorder.record(.errno, "\(label): lookup of foreign key \(foreign) failed: \(error)")
                    }
                }
                if let objects {
                    for (position, handle) in objects.handles.enumerated() {
                        let references = objects.provider.referenceCount(of: handle)
                        if references != 1 + holders[position] {
                            recorder.record(.references, "\(label): object \(position) (handle \(handle)) has reference count "
                                + "\(references.map(String.init) ?? "nil (closed)") but 1 + \(holders[position]) entries hold it")
                        }
                    }
                }
            }
        }
    }

    /// Helper-mode lookup of a key the user-mode lookup just read (quiescent map): same token.
    func checkInPlace(_ key: UnsafeRawBufferPointer, index: Int, expecting token: UInt64, label: String) {
        let seen: UInt64? = Epoch.withSection { section in
            guard let stored = try? map.lookupInPlace(key: key, in: section) else { return StressToken.absent }
            if isArray { return StressArrayWords.decodeWhole(stored.baseAddress!) }
            if kind.hasWordValues { return StressArrayWords.load(stored.baseAddress!, 0) }
            return StressWords.decode(stored.baseAddress!)
        }
        if seen != token {
            recorder.record(.consistency, "\(label): helper-mode lookup of key \(index) sees \(seen.map(StressToken.describe) ?? "a torn value"), "
                + "user mode \(StressToken.describe(token))")
        }
    }
}

/// Reads in place of array slots and of one-word hash values: their words are written with
/// atomic stores (or exchanged), so they are read with atomic loads (for arrays helper mode
/// bypasses the seqlock: words may come from different writes, each word is whole).
enum StressArrayWords {
    @inline(__always)
    static func load(_ value: UnsafeMutableRawPointer, _ index: Int) -> UInt64 {
        (value + index * 8).assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .relaxed)
    }

    /// The token of the slot's words if they agree (`nil` if torn).
    static func decodeWhole(_ value: UnsafeMutableRawPointer) -> UInt64? {
        let first = StressWords.token(load(value, 0), 0)
        for index in 1..<StressWords.count where StressWords.token(load(value, index), index) != first { return nil }
        return first
    }
}
