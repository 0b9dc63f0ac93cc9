import RCUMaps
import Synchronization

/// `rcumaps stress` for `RCUDictionary`: one dictionary per run, class values whose lives are
/// counted, in the three layouts the dictionary picks by its types (see
/// ``DictionaryStressSchema``).
///
/// Key layout (index `i` in `0..<keys`; indices from `keys` on are *foreign*, never stored):
/// - `i % 16 == 0`: *counters*, prefilled at version 0 and only ever replaced by increments,
///   through `update(forKey:)`, a compare-and-replace (`replaceValue(forKey:ifCurrent:with:)`)
///   of the value read, or an `inout` access of the subscript (its `_modify`, plain and with
///   a default): at the end a counter's version is the sum of every worker's increments that
///   succeeded (no update lost or applied twice), and a reader never sees it go back;
/// - `i % 16 == 4`: *owned stable* keys, prefilled, replaced only by their owner (an eighth
///   of the keys are stable in all: the rest can drain, so the bucket array shrinks);
/// - the other even keys are churn keys, prefilled; the odd ones churn keys, not prefilled;
/// - `i % 8 == 3`: *contested* keys, created only by `insertIfAbsent` and taken out only by
///   `removeValue(forKey:)` or a compare-and-remove of the value read
///   (`removeValue(forKey:ifCurrent:)`), by every worker: per key, the inserts won minus the
///   removals won is 1 if it is present at the end, 0 if not;
/// - keys with `i & 4 != 0` are *owned* by worker `(i >> 3) % threads`, the only one that
///   writes them, with every write (`updateValue`, the subscript's setter, `insertIfAbsent`,
///   `removeValue`, `removeValue(forKey:ifCurrent:)`, `replaceValue`, `update(forKey:)`)
///   answering exactly as the owner's record predicts; the rest are shared.
///
/// Every value read (the subscript, `withValue(forKey:)`, iteration) must be whole (its
/// check word sealed), of its key, and not yet released. Every object that leaves the
/// dictionary — returned by `removeValue`, taken by a compare-and-remove, displaced by
/// `updateValue`, a compare-and-replace or `update(forKey:)` — leaves once (a second
/// departure is a value removed twice), and at
/// the end the objects stored minus those that left equal the entries. With the workers
/// stopped and a barrier passed, exactly the dictionary's entries are alive; once it is
/// dropped, none, and its pool tags hold no memory.
///
/// Churn comes in phases (each worker flips between mostly inserting and mostly removing
/// churn keys, its own and shared ones, every 64 batches), so the dictionary grows and
/// shrinks its bucket array while read; the workers count the resizes they see.
protocol DictionaryStressSchema: Sendable {
    associatedtype Key: Hashable & Sendable
    associatedtype Value: Sendable & Equatable
    /// The key of index `index` (`0..<2 * keys`).
    func key(_ index: Int) -> Key
    /// The index of a key the dictionary returned, or `nil` if it is no key of the run.
    func index(of key: Key) -> Int?
    /// The value that stores `object`.
    func wrap(_ object: DictionaryStressValue) -> Value
    /// The object a value read stores, or `nil` if the value is not one ``wrap(_:)`` made
    /// (a torn copy).
    func object(in value: borrowing Value) -> DictionaryStressValue?
}

/// Creations and `deinit`s of one run's values.
final class DictionaryStressLives: Sendable {
    let created = Atomic<Int>(0)
    let destroyed = Atomic<Int>(0)

    /// Values created and not yet deinitialised.
    var alive: Int { created.load(ordering: .acquiring) - destroyed.load(ordering: .acquiring) }
}

/// One value of a dictionary stress run: immutable, sealed by a check word over its key,
/// writer and version, and counted while it lives.
final class DictionaryStressValue: Sendable, Equatable {
    let key: Int
    /// 0 for the prefill, else the worker's index + 1.
    let writer: Int
    let version: UInt64
    let check: UInt64
    /// How many writes took this object out of the dictionary (at most one may).
    let departures = Atomic<Int>(0)
    let lives: DictionaryStressLives

    init(key: Int, writer: Int, version: UInt64, lives: DictionaryStressLives) {
        self.key = key
        self.writer = writer
        self.version = version
        self.lives = lives
        check = Self.seal(key: key, writer: writer, version: version)
        lives.created.add(1, ordering: .relaxed)
    }

    deinit { lives.destroyed.add(1, ordering: .releasing) }

    static func seal(key: Int, writer: Int, version: UInt64) -> UInt64 {
        StressWords.mix(UInt64(truncatingIfNeeded: key) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: writer) << 48 ^ version)
    }

    /// Whether the fields still match their seal (a released object's memory reused by
    /// another would not, almost surely).
    var isWhole: Bool { check == Self.seal(key: key, writer: writer, version: version) }

    static func == (lhs: DictionaryStressValue, rhs: DictionaryStressValue) -> Bool { lhs === rhs }

    var described: String { "value of key \(key) by writer \(writer), version \(version)" }
}

/// `dictionary`: `Int` keys, the objects themselves as values: both kept in the slot.
struct DictionaryStressIntSchema: DictionaryStressSchema {
    func key(_ index: Int) -> Int { Int(truncatingIfNeeded: StressKeys.hashKey(index)) }
    func index(of key: Int) -> Int? { StressKeys.index(ofHashKey: UInt64(truncatingIfNeeded: key)) }
    func wrap(_ object: DictionaryStressValue) -> DictionaryStressValue { object }
    func object(in value: borrowing DictionaryStressValue) -> DictionaryStressValue? { copy value }
}

/// `dictionary-string`: `String` keys (in nodes), the objects as values (in the slot).
struct DictionaryStressStringSchema: DictionaryStressSchema {
    /// Every key, built once (`2 * keys` of them), and their indices.
    let names: [String]
    let indices: [String: Int]

    init(keys: Int) {
        names = (0..<2 * keys).map { "stress-key-\($0)" }
        indices = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
    }

    func key(_ index: Int) -> String { names[index] }
    func index(of key: String) -> Int? { indices[key] }
    func wrap(_ object: DictionaryStressValue) -> DictionaryStressValue { object }
    func object(in value: borrowing DictionaryStressValue) -> DictionaryStressValue? { copy value }
}

/// `dictionary-node`: `Int` keys, a two-word value (the object and a seal of it) that lives
/// in a node with its key.
struct DictionaryStressNodeSchema: DictionaryStressSchema {
    struct Pair: Sendable, Equatable {
        let object: DictionaryStressValue
        let seal: UInt64
    }

    func key(_ index: Int) -> Int { Int(truncatingIfNeeded: StressKeys.hashKey(index)) }
    func index(of key: Int) -> Int? { StressKeys.index(ofHashKey: UInt64(truncatingIfNeeded: key)) }
    func wrap(_ object: DictionaryStressValue) -> Pair { Pair(object: object, seal: ~object.check) }
    func object(in value: borrowing Pair) -> DictionaryStressValue? {
        value.seal == ~value.object.check ? value.object : nil
    }
}

/// Stresses one dictionary (see ``DictionaryStressSchema``). Returns with the dictionary
/// dropped and its memory and values checked released (unless threads got stuck).
/// `prefilled` (tests) is given the dictionary once the prefill is in, before the workers
/// start; it must not keep it.
@inline(never)
func exerciseDictionary<Schema: DictionaryStressSchema>(
    _ kind: StressMapKind, schema: Schema, options: StressOptions, seed: UInt64, recorder: StressRecorder,
    progress: Bool, samples: StressSampleFile?,
    prefilled: ((RCUDictionary<Schema.Key, Schema.Value>) -> Void)? = nil
) -> StressExercise {
    let lives = DictionaryStressLives()
    var exercise = StressExercise()
    let completed = runDictionaryStress(kind, schema: schema, lives: lives, options: options, seed: seed,
                                        recorder: recorder, progress: progress, samples: samples, exercise: &exercise,
                                        prefilledHook: prefilled)
    guard completed else { return exercise }
    // The dictionary and every record of the workers are gone: nothing may keep a value.
    checkDictionaryValues(lives, alive: 0, when: "after the dictionary was dropped", recorder: recorder)
    let tags = StressPools.dictionaryTags(kind)
    for tag in [tags.table, tags.nodes, tags.objects] { checkReleased(tag, what: "the dictionary", recorder: recorder) }
    return exercise
}

/// After up to ``releaseBarrierRounds`` rounds of `Epoch.barrier()`, exactly `alive` values
/// must be alive (and never more `deinit`s than values made).
func checkDictionaryValues(_ lives: DictionaryStressLives, alive: Int, when: String, recorder: StressRecorder) {
    for _ in 0..<releaseBarrierRounds {
        Epoch.barrier()
        if lives.alive == alive { return }
    }
    let created = lives.created.load(ordering: .acquiring)
    let destroyed = lives.destroyed.load(ordering: .acquiring)
    recorder.record(.references, "\(when): \(created - destroyed) values alive (\(created) made, \(destroyed) deinitialised) "
        + "after \(releaseBarrierRounds) rounds of Epoch.barrier(); expected \(alive)"
        + (destroyed > created ? " (more deinits than values: a double release)" : ""))
}

/// Builds the dictionary, prefills it, runs the workers and the final check. Whether the
/// workers stopped (the caller checks the releases then).
@inline(never)
private func runDictionaryStress<Schema: DictionaryStressSchema>(
    _ kind: StressMapKind, schema: Schema, lives: DictionaryStressLives, options: StressOptions, seed: UInt64,
    recorder: StressRecorder, progress: Bool, samples: StressSampleFile?, exercise: inout StressExercise,
    prefilledHook: ((RCUDictionary<Schema.Key, Schema.Value>) -> Void)?
) -> Bool {
    let layout = DictionaryStressLayout(keys: options.keys, threads: options.threads)
    let dictionary = RCUDictionary<Schema.Key, Schema.Value>(memoryTags: StressPools.dictionaryTags(kind))
    var prefilled = 0
    for index in 0..<layout.keys where layout.isPrefilled(index) {
        let value = DictionaryStressValue(key: index, writer: 0, version: 0, lives: lives)
        if !dictionary.insertIfAbsent(schema.wrap(value), forKey: schema.key(index)) {
            recorder.record(.setup, "prefill: insertIfAbsent of key \(index) into an empty dictionary returned false")
        }
        prefilled += 1
    }
    prefilledHook?(dictionary)
    let check = DictionaryStressCheck(dictionary: dictionary, schema: schema, layout: layout, recorder: recorder)
    // The workers, for the checkpoints: read only while they are paused (the pause's
    // acquire and release order their writes before the reads, and the reads before their
    // next writes).
    let workers = ThreadLock<[DictionaryStressWorker<Schema>.Handle]>([])
    guard case (var reports, let sampling, let startedAt)? = runStressWorkers(
        kind, options: options, recorder: recorder, samples: samples, progress: progress, exercise: &exercise,
        // The end's checks at each checkpoint, with the workers paused between two batches
        // (every key, a pass, the values alive after a barrier): about once a second, less
        // often past 32,768 keys.
        checkpointTicks: max(1, options.keys / 32_768),
        checkpoint: { label in
            let paused = workers.withLock { $0 }.map(\.worker.report)
            check.run(reports: paused, prefilled: prefilled, label: label)
            // What the paused workers hold is what they stored under their own keys, all in
            // the dictionary: exactly its entries are alive once a barrier has passed.
            checkDictionaryValues(lives, alive: dictionary.count, when: label, recorder: recorder)
        },
        { index, control in
            let worker = DictionaryStressWorker(dictionary: dictionary, schema: schema, layout: layout, lives: lives,
                                                index: index, seed: seed, recorder: recorder)
            workers.withLock { $0.append(DictionaryStressWorker.Handle(worker: worker)) }
            worker.run(control)
            return worker.report
        }) else { return !exercise.hung }
    // (The handles go before the final check of the values alive, with the reports.)
    workers.withLock { $0 = [] }
    exercise.stats = reports.reduce(StressStats()) { $0 + $1.stats }
    exercise.resizes = (reports.reduce(0) { $0 + $1.grows }, reports.reduce(0) { $0 + $1.shrinks })
    check.run(reports: reports, prefilled: prefilled)
    sampling.take(.end, at: Double(MonotonicClock.nanoseconds() - startedAt) / 1e9, into: &exercise)
    // The workers' records (their objects) dropped: once a barrier has passed, exactly the
    // entries are alive.
    reports = []
    checkDictionaryValues(lives, alive: dictionary.count, when: "with the workers stopped", recorder: recorder)
    withExtendedLifetime(dictionary) {}
    return true
}

/// Which keys are which (see ``DictionaryStressSchema``).
struct DictionaryStressLayout: Sendable {
    let keys: Int
    let threads: Int

    func isCounter(_ index: Int) -> Bool { index & 15 == 0 }
    /// Counters and owned stable keys: `i % 16` is 0 or 4.
    func isStable(_ index: Int) -> Bool { index & 11 == 0 }
    func isContested(_ index: Int) -> Bool { index & 7 == 3 }
    func isPrefilled(_ index: Int) -> Bool { index & 1 == 0 }
    /// The worker that owns `index`, or `nil` for a shared key.
    func owner(_ index: Int) -> Int? { index & 4 != 0 ? (index >> 3) % threads : nil }
}

/// What one dictionary worker leaves for the final check.
struct DictionaryStressReport: Sendable {
    let index: Int
    let stats: StressStats
    /// Per key: the object this worker last stored under a key it owns (nil: absent).
    let owned: [DictionaryStressValue?]
    /// Per key: the increments of a counter this worker made.
    let increments: [UInt64]
    /// Per key: contested inserts won minus contested removals won.
    let balance: [Int]
    /// Objects this worker put in and took out.
    let stored: Int
    let departed: Int
    /// Changes of the bucket array's size this worker saw between two of its batches.
    let grows: Int
    let shrinks: Int
}

/// One worker of a dictionary stress run.
final class DictionaryStressWorker<Schema: DictionaryStressSchema> {
    let dictionary: RCUDictionary<Schema.Key, Schema.Value>
    let schema: Schema
    let layout: DictionaryStressLayout
    let lives: DictionaryStressLives
    let index: Int
    let recorder: StressRecorder
    var random: XorShiftRandom
    var stats = StressStats()
    var owned: [DictionaryStressValue?]
    var increments: [UInt64]
    var balance: [Int]
    /// Per counter: the newest version this worker read.
    var newestSeen: [UInt64]
    var stored = 0
    var departed = 0
    var version: UInt64 = 0
    /// Mostly inserting (true) or mostly removing shared churn keys; flips every 64 batches.
    var filling = true
    var batches = 0
    /// This worker's keys (owned by it).
    let mine: [Int]

    init(dictionary: RCUDictionary<Schema.Key, Schema.Value>, schema: Schema, layout: DictionaryStressLayout,
         lives: DictionaryStressLives, index: Int, seed: UInt64, recorder: StressRecorder) {
        self.dictionary = dictionary
        self.schema = schema
        self.layout = layout
        self.lives = lives
        self.index = index
        self.recorder = recorder
        random = XorShiftRandom(seed: seed, stream: index)
        increments = [UInt64](repeating: 0, count: layout.keys)
        balance = [Int](repeating: 0, count: layout.keys)
        newestSeen = [UInt64](repeating: 0, count: layout.keys)
        mine = (0..<layout.keys).filter { layout.owner($0) == index }
        // The prefill's values of this worker's keys, read before the start: nobody writes them yet.
        var owned = [DictionaryStressValue?](repeating: nil, count: layout.keys)
        for key in mine { owned[key] = dictionary[schema.key(key)].flatMap { schema.object(in: $0) } }
        self.owned = owned
    }

    var grows = 0
    var shrinks = 0

    var report: DictionaryStressReport {
        DictionaryStressReport(index: index, stats: stats, owned: owned, increments: increments, balance: balance,
                               stored: stored, departed: departed, grows: grows, shrinks: shrinks)
    }

    /// A worker handed to the coordinator for the checkpoints (read only while it is paused).
    struct Handle: @unchecked Sendable {
        let worker: DictionaryStressWorker
    }

    /// Runs batches of ``step()`` until the stop, pausing between two when the coordinator
    /// asks for a checkpoint.
    func run(_ control: StressControl) {
        var buckets = -1
        var inBatch = 0
        stats.operations &+= control.runBatches {
            // (Read at the first step, after the start: the prefill's size.)
            if buckets < 0 { buckets = dictionary.bucketCountNow }
            step()
            inBatch &+= 1
            guard inBatch == stressBatch else { return }
            inBatch = 0
            batches &+= 1
            if batches & 63 == 0 { filling.toggle() }
            let now = dictionary.bucketCountNow
            if now > buckets { grows += 1 } else if now < buckets { shrinks += 1 }
            buckets = now
        }
    }

    func step() {
        let bits = random.next()
        let choice = bits & 0xFF
        let target = Int((bits >> 8) % UInt64(layout.keys))
        switch choice {
        case 0..<64: read(target, borrowing: choice & 1 == 0)
        case 64..<72: readForeign(Int((bits >> 8) % UInt64(layout.keys)) + layout.keys, bits: bits)
        case 72..<120: writeOwned(bits)
        case 120..<168: writeShared(bits)
        case 168..<216: increment(bits)
        case 216..<248: contest(bits)
        case 248..<250: iterate(bits)
        default:
            // (No reserveCapacity: it raises the array's floor for good, and the array would
            // stop shrinking: found by review, 2026-12-06.)
            let stable = target & ~11
            if !dictionary.contains(schema.key(stable)) { recorder.record(.stableKey, "contains(_:) missed stable key \(stable)") }
        }
    }

    /// The object of a value read under key `key`, checked: of the run, whole, of that key,
    /// not released; nil (recorded) if not.
    func checked(_ value: borrowing Schema.Value, key: Int, how: String) -> DictionaryStressValue? {
        guard let object = schema.object(in: value) else {
            recorder.record(.value, "\(how) of key \(key): a torn value (its seal does not match its object)")
            return nil
        }
        guard object.isWhole, object.key == key, object.writer <= layout.threads else {
            recorder.record(.value, "\(how) of key \(key) returned a \(object.isWhole ? object.described : "value that is not whole (released?)")")
            return nil
        }
        return object
    }

    /// A lookup, copying (the subscript) or borrowing (`withValue`).
    func read(_ key: Int, borrowing: Bool) {
        let found: DictionaryStressValue?
        let present: Bool
        if borrowing {
            stats.helperLookups += 1
            let result = dictionary.withValue(forKey: schema.key(key)) { value in checked(value, key: key, how: "withValue") }
            present = result != nil
            found = result ?? nil
            if present { stats.helperLookupHits += 1 }
        } else {
            stats.lookups += 1
            let value = dictionary[schema.key(key)]
            present = value != nil
            found = value.flatMap { checked($0, key: key, how: "a lookup") }
            if present { stats.lookupHits += 1 }
        }
        if layout.isStable(key), !present { recorder.record(.stableKey, "stable key \(key) missing") }
        if layout.owner(key) == index {
            stats.selfChecks += 1
            if present ? found.map({ $0 !== owned[key] }) ?? false : owned[key] != nil {
                recorder.record(.ownKey, "owned key \(key) holds \(found?.described ?? "nothing"); its owner stored "
                    + (owned[key]?.described ?? "nothing"))
            }
        }
        // A counter's versions only grow, and so do an owned key's (its owner's versions
        // grow); a reader never sees one older than one it saw (other writers' keys: no order).
        if layout.isCounter(key) || layout.owner(key) != nil, let found {
            if found.version < newestSeen[key] {
                recorder.record(.timeTravel, "\(layout.isCounter(key) ? "counter" : "owned key") \(key) at version "
                    + "\(found.version) after this worker read \(newestSeen[key])")
            }
            newestSeen[key] = max(newestSeen[key], found.version)
        }
    }

    /// Keys never stored: absent to every operation.
    func readForeign(_ key: Int, bits: UInt64) {
        stats.foreignOperations += 1
        let found: Bool = switch bits >> 40 & 3 {
        case 0: dictionary[schema.key(key)] != nil
        case 1: dictionary.contains(schema.key(key))
        case 2: dictionary.withValue(forKey: schema.key(key)) { _ in true } != nil
        default: dictionary.removeValue(forKey: schema.key(key)) != nil
        }
        if found { recorder.record(.value, "foreign key \(key), never stored, was found") }
    }

    func newValue(_ key: Int) -> DictionaryStressValue {
        version &+= 1
        return DictionaryStressValue(key: key, writer: index + 1, version: version, lives: lives)
    }

    /// Counts `object` out of the dictionary (a removal or a displacement); a second
    /// departure of one object is a value removed twice.
    func depart(_ object: DictionaryStressValue, key: Int, how: String) {
        departed += 1
        if object.departures.wrappingAdd(1, ordering: .relaxed).newValue > 1 {
            recorder.record(.duplicate, "\(how) of key \(key) returned \(object.described), which had already left the dictionary")
        }
    }

    /// Counts a value this worker put in the dictionary.
    func countStored() {
        stats.updatesStored += 1
        stored += 1
    }

    /// ``depart(_:key:how:)`` for a value returned by `how`, once ``checked(_:key:how:)``
    /// found it whole and of its key.
    func departChecked(_ value: borrowing Schema.Value, key: Int, how: String) {
        if let object = checked(value, key: key, how: how) { depart(object, key: key, how: how) }
    }

    /// A write of one of this worker's keys, whose answer its record predicts exactly.
    func writeOwned(_ bits: UInt64) {
        guard !mine.isEmpty else { return }
        let key = mine[Int((bits >> 16) % UInt64(mine.count))]
        let stable = layout.isStable(key)
        let expected = owned[key]
        let k = schema.key(key)
        stats.selfChecks += 1
        // The stable keys are never removed: their writes are replaces.
        var operation = Int(bits >> 40 % 8)
        // Churn keys follow the phase: mostly removed while draining, never while filling.
        if !stable, !filling, bits >> 46 & 3 != 0 { operation = 2 }
        if stable || filling, operation == 2 { operation = stable ? 0 : 3 }
        switch operation {
        case 0, 1:
            stats.updates += 1
            let value = newValue(key)
            let previous: DictionaryStressValue?
            if operation == 0 {
                previous = dictionary.updateValue(schema.wrap(value), forKey: k).flatMap { checked($0, key: key, how: "updateValue") }
                if previous !== expected {
                    recorder.record(.ownKey, "updateValue of owned key \(key) displaced \(previous?.described ?? "nothing"); "
                        + "its owner stored \(expected?.described ?? "nothing")")
                }
            } else {
                // The subscript's setter (a `_modify` access) says nothing of what it replaced,
                // so what it will replace is read first — exact, as only this worker writes the
                // key — and checked against the record. (Booking the record's value as the one
                // replaced made a lost or a phantom entry balance again unseen: found by
                // review, 2026-12-06, thirtieth session.)
                previous = dictionary[k].flatMap { checked($0, key: key, how: "a read before the subscript's setter") }
                if previous !== expected {
                    recorder.record(.ownKey, "owned key \(key) held \(previous?.described ?? "nothing") before the "
                        + "subscript's setter; its owner stored \(expected?.described ?? "nothing")")
                }
                dictionary[k] = schema.wrap(value)
            }
            countStored()
            if let previous { depart(previous, key: key, how: "a replace") }
            owned[key] = value
        case 2:
            stats.deletes += 1
            let removed: DictionaryStressValue?
            switch bits >> 44 & 3 {
            case 0, 1:
                removed = dictionary.removeValue(forKey: k).flatMap { checked($0, key: key, how: "removeValue") }
                if removed !== expected {
                    recorder.record(.ownKey, "removeValue of owned key \(key) returned \(removed?.described ?? "nothing"); "
                        + "its owner stored \(expected?.described ?? "nothing")")
                }
            case 2:
                // A compare-and-remove against what the owner stored (nothing: a stale object).
                let taken = dictionary.removeValue(forKey: k, ifCurrent: schema.wrap(expected ?? newValue(key)))
                if taken != (expected != nil) {
                    recorder.record(.ownKey, "removeValue(forKey:ifCurrent:) of owned key \(key) returned \(taken); "
                        + "its owner stored \(expected?.described ?? "nothing")")
                }
                removed = taken ? expected : nil
            default:
                // As the setter above: what `= nil` removes is read first.
                removed = dictionary[k].flatMap { checked($0, key: key, how: "a read before `= nil`") }
                if removed !== expected {
                    recorder.record(.ownKey, "owned key \(key) held \(removed?.described ?? "nothing") before `= nil`; "
                        + "its owner stored \(expected?.described ?? "nothing")")
                }
                dictionary[k] = nil
            }
            if let removed {
                stats.deletesDone += 1
                depart(removed, key: key, how: "a removal")
            }
            owned[key] = nil
        case 3:
            stats.updates += 1
            let value = newValue(key)
            let inserted = dictionary.insertIfAbsent(schema.wrap(value), forKey: k)
            if inserted != (expected == nil) {
                recorder.record(.ownKey, "insertIfAbsent of owned key \(key) returned \(inserted); its owner stored "
                    + (expected?.described ?? "nothing"))
            }
            if inserted {
                countStored()
                owned[key] = value
            } else {
                stats.updatesExisting += 1
            }
        case 4:
            stats.updates += 1
            // A compare-and-replace against what the owner stored (nothing: a stale object).
            let value = newValue(key)
            let current = expected ?? value
            let replaced = dictionary.replaceValue(forKey: k, ifCurrent: schema.wrap(current), with: schema.wrap(value))
            if replaced != (expected != nil) {
                recorder.record(.ownKey, "replaceValue of owned key \(key) returned \(replaced); its owner stored "
                    + (expected?.described ?? "nothing"))
            }
            if replaced, let expected {
                countStored()
                depart(expected, key: key, how: "a compare-and-replace")
                owned[key] = value
            } else {
                stats.updatesMissing += 1
            }
        default:
            // update(forKey:): the closure sees exactly what the owner stored (nobody else
            // writes the key, so it runs once); it stores a new value or, on a churn key,
            // sometimes removes it.
            stats.updates += 1
            let value = newValue(key)
            let removes = !stable && bits >> 45 & 3 == 0
            var given: DictionaryStressValue??
            let result = dictionary.update(forKey: k) { old in
                if given != nil {
                    recorder.record(.ownKey, "update(forKey:) of owned key \(key) ran its closure again with no other writer")
                }
                given = .some(old.flatMap { checked($0, key: key, how: "update(forKey:)") })
                return removes ? nil : schema.wrap(value)
            }
            let old = given ?? nil
            if old !== expected {
                recorder.record(.ownKey, "update(forKey:) of owned key \(key) was given \(old?.described ?? "nothing"); "
                    + "its owner stored \(expected?.described ?? "nothing")")
            }
            if (result == nil) != removes {
                recorder.record(.ownKey, "update(forKey:) of owned key \(key) returned \(result == nil ? "nil" : "a value")")
            }
            if let old { depart(old, key: key, how: "update(forKey:)") }
            if removes {
                owned[key] = nil
            } else {
                countStored()
                owned[key] = value
            }
        }
    }

    /// A write of a shared churn key (not a counter, not contested): updateValue, removeValue
    /// or insertIfAbsent, mostly inserting or mostly removing by phase.
    func writeShared(_ bits: UInt64) {
        // The shared churn keys: 1, 2, 8, 9 and 10 (mod 16).
        let key = Int((bits >> 16) % UInt64(layout.keys)) & ~15 | [1, 2, 8, 9, 10][Int(bits >> 40 % 5)]
        guard key < layout.keys else { return }
        let k = schema.key(key)
        let inserting = (bits >> 48 & 3 != 0) == filling
        if inserting {
            stats.updates += 1
            let value = newValue(key)
            if bits >> 50 & 1 == 0 {
                if let previous = dictionary.updateValue(schema.wrap(value), forKey: k) {
                    departChecked(previous, key: key, how: "updateValue")
                }
                countStored()
            } else if dictionary.insertIfAbsent(schema.wrap(value), forKey: k) {
                countStored()
            } else {
                stats.updatesExisting += 1
            }
        } else {
            stats.deletes += 1
            if let removed = dictionary.removeValue(forKey: k) {
                stats.deletesDone += 1
                departChecked(removed, key: key, how: "removeValue")
            }
        }
    }

    /// One increment of a counter: `update(forKey:)`, a compare-and-replace of the value
    /// read, or an `inout` access of the subscript (`_modify`, with and without a default).
    func increment(_ bits: UInt64) {
        let key = Int((bits >> 16) % UInt64(layout.keys)) & ~15
        let k = schema.key(key)
        stats.updates += 1
        let how = bits >> 40 & 3
        if how >= 2 {
            // The subscript's `_modify`: the stripe is held from the read to the write.
            var given: DictionaryStressValue?
            func bump(_ value: inout Schema.Value?) {
                guard let old = value, let object = checked(old, key: key, how: "an inout access of a counter") else {
                    recorder.record(.stableKey, "counter \(key) missing in an inout access")
                    return
                }
                given = object
                value = schema.wrap(DictionaryStressValue(key: key, writer: index + 1, version: object.version &+ 1,
                                                          lives: lives))
            }
            if how == 2 {
                bump(&dictionary[k])
            } else {
                // With a default that a counter (always present) never needs.
                func bumpPresent(_ value: inout Schema.Value) {
                    var optional: Schema.Value? = value
                    bump(&optional)
                    if let optional { value = optional }
                }
                let fallback = DictionaryStressValue(key: key, writer: index + 1, version: 0, lives: lives)
                bumpPresent(&dictionary[k, default: schema.wrap(fallback)])
                // The default yielded: the counter was missing, and the access stored a new one
                // (a lost counter re-created unseen, its default booked as departed without
                // ever being stored: found by review, 2026-12-06, thirtieth session).
                if let object = given, object === fallback {
                    recorder.record(.stableKey, "counter \(key) missing in an inout access with a default")
                    countStored()
                    increments[key] &+= 1
                    return
                }
            }
            guard let given else { return }
            countStored()
            increments[key] &+= 1
            depart(given, key: key, how: "an inout access of a counter")
            return
        }
        if how == 0 {
            var given: DictionaryStressValue?
            var made: DictionaryStressValue?
            dictionary.update(forKey: k) { old in
                guard let old, let object = checked(old, key: key, how: "update(forKey:) of a counter") else {
                    recorder.record(.stableKey, "counter \(key) missing in update(forKey:)")
                    given = nil
                    made = nil
                    return old
                }
                given = object
                let next = DictionaryStressValue(key: key, writer: index + 1, version: object.version &+ 1, lives: lives)
                made = next
                return schema.wrap(next)
            }
            guard let given, made != nil else { return }
            countStored()
            increments[key] &+= 1
            depart(given, key: key, how: "update(forKey:) of a counter")
        } else {
            guard let current = dictionary[k], let object = checked(current, key: key, how: "a counter's read") else {
                recorder.record(.stableKey, "counter \(key) missing")
                return
            }
            let next = DictionaryStressValue(key: key, writer: index + 1, version: object.version &+ 1, lives: lives)
            if dictionary.replaceValue(forKey: k, ifCurrent: current, with: schema.wrap(next)) {
                countStored()
                increments[key] &+= 1
                depart(object, key: key, how: "a counter's compare-and-replace")
            } else {
                stats.updatesMissing += 1
            }
        }
    }

    /// An insert or a removal of a contested key.
    func contest(_ bits: UInt64) {
        let key = Int((bits >> 16) % UInt64(layout.keys)) & ~7 | 3
        guard key < layout.keys else { return }
        let k = schema.key(key)
        // Mostly inserts while filling, mostly removals while draining.
        if (bits >> 40 & 3 != 0) == filling {
            stats.updates += 1
            if dictionary.insertIfAbsent(schema.wrap(newValue(key)), forKey: k) {
                countStored()
                balance[key] += 1
            } else {
                stats.updatesExisting += 1
            }
        } else {
            stats.lookupAndDeletes += 1
            if bits >> 42 & 1 == 0 {
                if let removed = dictionary.removeValue(forKey: k) {
                    stats.lookupAndDeletesDone += 1
                    balance[key] -= 1
                    departChecked(removed, key: key, how: "removeValue")
                }
            } else if let seen = dictionary[k], dictionary.removeValue(forKey: k, ifCurrent: seen) {
                // Read, then take exactly what was read if no one took or replaced it since.
                stats.lookupAndDeletesDone += 1
                balance[key] -= 1
                departChecked(seen, key: key, how: "removeValue(forKey:ifCurrent:)")
            }
        }
    }

    /// One pass over the dictionary (its `Sequence`, `keys`, or `snapshot()`): none of another
    /// run, every stable key once, this worker's keys exactly as it left them (each once),
    /// and every value checked.
    func iterate(_ bits: UInt64) {
        stats.passes += 1
        var seen = [Bool](repeating: false, count: layout.keys)
        func visit(_ key: Schema.Key, _ value: Schema.Value?) {
            stats.passKeys += 1
            guard let key = schema.index(of: key), key < layout.keys else {
                recorder.record(.iteration, "an iteration pass returned a key the run never stores")
                return
            }
            // Only a key present for the whole pass is listed once: one removed and inserted
            // again meanwhile may be listed twice (from its old slot and its new one), as
            // `snapshot()` documents.
            if seen[key], layout.isStable(key) || layout.owner(key) == index {
                recorder.record(.iteration, "an iteration pass returned \(layout.isStable(key) ? "stable" : "owned") key \(key) twice")
            }
            seen[key] = true
            if let value, let object = checked(value, key: key, how: "iteration"), layout.owner(key) == index,
               object !== owned[key] {
                recorder.record(.iteration, "an iteration pass found \(object.described) under owned key \(key); its owner stored "
                    + (owned[key]?.described ?? "nothing"))
            }
        }
        switch bits >> 40 % 3 {
        case 0: for (key, value) in dictionary { visit(key, value) }
        case 1: for key in dictionary.keys { visit(key, nil) }
        default: for entry in dictionary.snapshot() { visit(entry.key, entry.value) }
        }
        for key in 0..<layout.keys where !seen[key] && (layout.isStable(key) || (layout.owner(key) == index && owned[key] != nil)) {
            recorder.record(.iteration, "an iteration pass missed \(layout.isStable(key) ? "stable" : "owned") key \(key)")
        }
        for key in mine where seen[key] && owned[key] == nil {
            recorder.record(.iteration, "an iteration pass returned owned key \(key), which its owner removed")
        }
    }
}

/// The check of a dictionary with its workers stopped.
struct DictionaryStressCheck<Schema: DictionaryStressSchema> {
    let dictionary: RCUDictionary<Schema.Key, Schema.Value>
    let schema: Schema
    let layout: DictionaryStressLayout
    let recorder: StressRecorder

    /// The checks of a dictionary whose workers are stopped, or paused at a checkpoint
    /// (`label` names it, or the end); `reports` has every worker's record, as it stands.
    func run(reports: [DictionaryStressReport], prefilled: Int, label: String = "final check") {
        var present = 0
        for key in 0..<layout.keys {
            let value = dictionary[schema.key(key)]
            let object = value.flatMap { schema.object(in: $0) }
            if value != nil {
                present += 1
                guard let object, object.isWhole, object.key == key else {
                    recorder.record(.consistency, "\(label): key \(key) holds a value that is not its own or not whole")
                    continue
                }
            }
            if layout.isStable(key), value == nil { recorder.record(.stableKey, "\(label): stable key \(key) missing") }
            if let owner = layout.owner(key), let report = reports.first(where: { $0.index == owner }),
               object !== report.owned[key] {
                recorder.record(.ownKey, "\(label): owned key \(key) holds \(object?.described ?? "nothing"); its owner "
                    + "stored \(report.owned[key]?.described ?? "nothing")")
            }
            if layout.isCounter(key), let object {
                let expected = reports.reduce(UInt64(0)) { $0 &+ $1.increments[key] }
                if object.version != expected {
                    recorder.record(.consistency, "\(label): counter \(key) at version \(object.version); the workers "
                        + "incremented it \(expected) times")
                }
            }
            if layout.isContested(key) {
                let balance = reports.reduce(0) { $0 + $1.balance[key] }
                if balance != (value == nil ? 0 : 1) {
                    recorder.record(.twoWinners, "\(label): contested key \(key) is \(value == nil ? "absent" : "present") "
                        + "after \(balance) more inserts won than removals")
                }
            }
        }
        for foreign in layout.keys..<(2 * layout.keys) where dictionary.contains(schema.key(foreign)) {
            recorder.record(.consistency, "\(label): foreign key \(foreign) present")
        }
        let count = dictionary.count
        let iterated = dictionary.snapshot().count
        if count != present || iterated != present {
            recorder.record(.count, "\(label): count \(count) and an iteration's \(iterated) entries, for \(present) keys present")
        }
        let stored = prefilled + reports.reduce(0) { $0 + $1.stored }
        let departed = reports.reduce(0) { $0 + $1.departed }
        if stored - departed != present {
            recorder.record(.lost, "\(label): \(stored) values stored (the prefill's included) and \(departed) taken out, "
                + "but \(present) entries")
        }
    }
}
