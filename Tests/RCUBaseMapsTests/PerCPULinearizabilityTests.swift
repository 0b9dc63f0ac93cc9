import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// Concurrent histories of the per-CPU maps (PERCPU_HASH, LRU_PERCPU_HASH with room for
/// every key, PERCPU_ARRAY), checked for linearizability (`RCUMapsTestSupport/Linearizability.swift`).
///
/// A per-CPU key holds one value per CPU, so the sequential model's state is a vector:
/// - **The hashes** (``PerCPUModel``): a key is absent or holds one word per CPU slot.
///   User-mode writes set every slot at once (a replace publishes a new entry: readers see
///   all old values or all new); a user-mode lookup finds the entry at one moment and reads
///   its slots one after another (a helper-mode write in place may land between two, as on
///   Linux, but never a value of another entry); `exchange` and lookup-and-delete answer
///   the entry as they removed it; helper-mode reads return one chosen CPU's slot
///   (`lookupInPlace(key:cpu:in:)`), and a helper-mode update writes its own CPU's slot
///   alone — a new key's other slots zero, as on Linux. Threads are pinned to CPUs, so each
///   knows which slot its helper-mode writes touch.
/// - **The array**: Linux writes every CPU's value of an index one after the other, not at
///   once, so each (index, CPU) word is checked as a register of its own
///   (``KeyModel``), each user-mode operation as one operation on every slot in the same
///   interval.
///
/// Writes store a word unique to the operation, slot `c` with `c + 1` in its bits 48..<56
/// (so a value found in another slot than the one written is seen), and a 16-byte value
/// holds that and its complement (so a torn slot is seen). Helper-mode adds (`add(_:forKey:)`) are left out on purpose:
/// an add racing a user-mode write can be lost by design (map-types.md), as on Linux.
/// `RCUMAPS_LONG_TESTS=<seconds>` runs longer histories.
@Suite("Per-CPU maps: linearizable histories")
struct PerCPULinearizabilityTests {
    /// One operation on one key of a per-CPU hash, as the model sees it.
    enum Operation: Sendable, Hashable, CustomStringConvertible {
        /// One step of a user-mode lookup: slot `slot` of `of` read. A lookup finds the entry
        /// once, then copies its CPUs' values one after another with no lock, so a helper-mode
        /// write of one CPU's value (in place) can land between two of them; it is recorded
        /// as one step a slot, in slot order, with the lookup's stamps (found by review of
        /// the first version, which checked a lookup as one moment).
        case readSlot(slot: Int, of: Int)
        /// (Not recorded: a user-mode lookup is recorded as its ``readSlot(slot:of:)`` steps.)
        case lookup
        case update(UInt64, KeyWriteCondition)
        case exchange(UInt64, KeyWriteCondition)
        case delete
        case lookupAndDelete
        /// Helper mode: CPU `cpu`'s value (`lookupInPlace(key:cpu:in:)`), in slot `slot`.
        case helperLookup(cpu: Int, slot: Int)
        /// Helper mode from a thread pinned to the CPU of `slot`.
        case helperUpdate(UInt64, KeyWriteCondition, slot: Int)
        case helperDelete

        var description: String {
            switch self {
            case .readSlot(let slot, let slots): "lookup, slot \(slot) of \(slots)"
            case .lookup: "lookup"
            case .update(let word, let condition): "update(\(hex(word)), \(condition))"
            case .exchange(let word, let condition): "exchange(\(hex(word)), \(condition))"
            case .delete: "delete"
            case .lookupAndDelete: "lookupAndDelete"
            case .helperLookup(let cpu, let slot): "helperLookup(CPU \(cpu), slot \(slot))"
            case .helperUpdate(let word, let condition, let slot): "helperUpdate(\(hex(word)), \(condition), slot \(slot))"
            case .helperDelete: "helperDelete"
            }
        }
    }

    /// What an operation answered: every slot's word (nil: absent), one slot's, or done/refused.
    enum Outcome: Sendable, Hashable, CustomStringConvertible {
        case words([UInt64]?)
        case word(UInt64?)
        case done
        case refused

        var description: String {
            switch self {
            case .words(let words?): "[\(words.map(hex).joined(separator: ", "))]"
            case .words(nil), .word(nil): "absent"
            case .word(let word?): hex(word)
            case .done: "done"
            case .refused: "refused"
            }
        }
    }

    /// An event of one key (its `object`).
    typealias Event = ObjectEvent<Operation, Outcome>

    /// The sequential per-CPU hash, for one key: absent, or one word per slot; and the
    /// user-mode lookups under way.
    struct State: Hashable {
        /// nil: absent.
        var values: [UInt64]?
        /// Changes whenever the key's entry is created, replaced or removed (a user-mode
        /// write, a delete, a helper-mode insert); not with a helper-mode write in place.
        var version = 0
        /// Each thread's user-mode lookup under way: the entry it found (or none), and that
        /// entry's values once it was replaced or removed — a retired entry is written no more.
        var reads: [Int: Read] = [:]

        struct Read: Hashable {
            var found: Bool
            var version: Int
            var frozen: [UInt64]?
        }

        /// The key's entry is replaced or removed (or created): lookups reading the current
        /// entry go on reading its values as they are now.
        mutating func retireEntry() {
            for (thread, read) in reads where read.found && read.version == version && read.frozen == nil {
                reads[thread]!.frozen = values
            }
            version += 1
        }
    }

    enum PerCPUModel {
        /// What `operation` of `thread` answers on `state`, and the state after it.
        static func apply(_ operation: Operation, of thread: Int, to state: State, slots: Int) -> (Outcome, State) {
            var next = state
            func allowed(_ condition: KeyWriteCondition) -> Bool { condition.allows(present: state.values != nil) }
            func replace(with values: [UInt64]?) {
                next.retireEntry()
                next.values = values
            }
            switch operation {
            case .readSlot(let slot, let count):
                let answer: UInt64?
                if slot == 0 {
                    next.reads[thread] = State.Read(found: state.values != nil, version: state.version)
                    answer = state.values?[0]
                } else {
                    guard let read = state.reads[thread] else { return (.refused, state) }
                    answer = read.found ? (read.frozen ?? state.values)?[slot] : nil
                }
                if slot == count - 1 { next.reads[thread] = nil }
                return (.word(answer), next)
            case .lookup:
                return (.words(state.values), state)
            case .update(let word, let condition):
                guard allowed(condition) else { return (.refused, state) }
                replace(with: Array(repeating: word, count: slots))
                return (.done, next)
            case .exchange(let word, let condition):
                guard allowed(condition) else { return (.refused, state) }
                replace(with: Array(repeating: word, count: slots))
                return (.words(state.values), next)
            case .delete, .helperDelete:
                guard state.values != nil else { return (.refused, state) }
                replace(with: nil)
                return (.done, next)
            case .lookupAndDelete:
                if state.values != nil { replace(with: nil) }
                return (.words(state.values), next)
            case .helperLookup(_, let slot):
                return (.word(state.values?[slot]), state)
            case .helperUpdate(let word, let condition, let slot):
                guard allowed(condition) else { return (.refused, state) }
                if var values = state.values {
                    values[slot] = word  // in place: the same entry
                    next.values = values
                } else {
                    var values = Array(repeating: UInt64(0), count: slots)
                    values[slot] = word
                    replace(with: values)
                }
                return (.done, next)
            }
        }
    }

    // MARK: Encoding values

    /// Slot `slot`'s stored word for a write of `word`: the word with `slot + 1` in its bits
    /// 48..<56, so that a value found in another slot than the one written is seen (0 stays
    /// 0: a value never written).
    static func stored(_ word: UInt64, slot: Int) -> UInt64 {
        precondition(word & slotBits == 0 && slot < 255, "words leave bits 48..<56 for the slot")
        return word == 0 ? 0 : word | UInt64(slot + 1) << 48
    }

    static let slotBits: UInt64 = 0xFF << 48

    /// Writes `word` into every slot of a user-mode value (`padded` bytes a slot).
    static func encode(_ word: UInt64, into bytes: UnsafeMutableRawBufferPointer, slots: Int, padded: Int) {
        for slot in 0..<slots {
            encodeSlot(stored(word, slot: slot), into: bytes.baseAddress! + slot * padded, padded: padded)
        }
    }

    static func encodeSlot(_ stored: UInt64, into pointer: UnsafeMutableRawPointer, padded: Int) {
        pointer.storeBytes(of: stored, as: UInt64.self)
        if padded == 16 { pointer.storeBytes(of: stored == 0 ? 0 : ~stored, toByteOffset: 8, as: UInt64.self) }
    }

    /// The word slot `slot`'s bytes hold, or nil when they are torn (a failure recorded).
    static func decodeSlot(_ pointer: UnsafeRawPointer, slot: Int, padded: Int, failures: Failures,
                           context: @autoclosure () -> String) -> UInt64 {
        let first = pointer.loadUnaligned(as: UInt64.self)
        if padded == 16 {
            let second = pointer.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            if second != (first == 0 ? 0 : ~first) {
                failures.record("\(context()): slot \(slot) torn: \(hex(first)), \(hex(second))")
            }
        }
        if first == 0 { return 0 }
        let word = first & ~slotBits
        if word >> 56 == 0 || word >> 56 > 8 || (first & slotBits) >> 48 != UInt64(slot + 1) {
            failures.record("\(context()): slot \(slot) holds \(hex(first)), which no write stored there")
        }
        return word
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, slots: Int, padded: Int, failures: Failures,
                       context: @autoclosure () -> String) -> [UInt64] {
        (0..<slots).map { decodeSlot(bytes.baseAddress! + $0 * padded, slot: $0, padded: padded, failures: failures,
                                     context: context()) }
    }

    // MARK: Threads on CPUs

    /// Pins the calling thread to a CPU (thread `thread` to the machine's CPU `thread` modulo
    /// the possible CPUs, else the first that accepts it) and returns that CPU's slot in a map
    /// of `slots` slots; nil if no CPU accepts the pin (a container's mask), when the thread
    /// makes no helper-mode writes.
    static func pinToCPU(thread: Int, slots: Int) -> Int? {
        let cpus = RawPerCPUArrayMap.possibleCPUs
        for offset in 0..<cpus {
            let cpu = (thread + offset) % cpus
            if RawPerCPUArrayMap.pinCurrentThread(toCPU: cpu) {
                return RawPerCPUArrayMap.slot(ofCPU: cpu, slots: slots)
            }
        }
        return nil
    }

    /// A helper-mode lookup of CPU `cpu`'s value, in its slot (slots wrap around the CPU numbers).
    static func helperLookup(cpu: Int, slots: Int) -> Operation {
        .helperLookup(cpu: cpu, slot: RawPerCPUArrayMap.slot(ofCPU: cpu, slots: slots))
    }

    // MARK: The hashes

    enum HashKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// PERCPU_HASH with one slot per possible CPU, 8- and 16-byte values (16: user mode
        /// only, since a helper-mode update writes a wide value in place a word at a time,
        /// which a user-mode read may see half done, as on Linux).
        case perCPUHash8, perCPUHash16
        /// Three slots whatever the machine: more slots than CPUs, an odd count.
        case perCPUHashThreeSlots
        /// LRU_PERCPU_HASH with room for every key (nothing is evicted), common and per-CPU lists.
        case lruPerCPUHash8, lruPerCPUHashPerCPULists
        var testDescription: String { rawValue }

        var valueSize: Int { self == .perCPUHash16 ? 16 : 8 }
        var helperWrites: Bool { self != .perCPUHash16 }

        func makeMap() throws -> RawPerCPUHashMap {
            let type: MapType = rawValue.hasPrefix("lru") ? .lruPerCPUHash : .perCPUHash
            let definition = MapDefinition(type: type, keySize: 8, valueSize: valueSize, maxEntries: 64,
                                           flags: self == .lruPerCPUHashPerCPULists ? .noCommonLRU : [],
                                           poolTag: uniqueTag())
            if self == .perCPUHashThreeSlots { return try RawPerCPUHashMap(definition, possibleCPUs: 3) }
            return try #require(try MapRegistry.create(definition) as? RawPerCPUHashMap)
        }
    }

    @Test(arguments: HashKind.allCases)
    func hashHistoriesAreLinearizable(_ kind: HashKind) throws {
        let map = try kind.makeMap()
        let slots = map.possibleCPUCount
        let padded = map.paddedValueSize
        let workload = LinearizabilityWorkload.scaled
        let keys = 3
        for round in 1...3 {
            for key in 0..<UInt64(keys) { _ = try? map.remove(key) }
            let clock = HistoryClock()
            let recorded = ThreadLock<[[Event]]>(Array(repeating: [], count: workload.threads))
            let failures = Failures()
            runOnThreads(workload.threads) { thread in
                let ownSlot = kind.helperWrites ? Self.pinToCPU(thread: thread, slots: slots) : nil
                var random = XorShift(seed: UInt64(round) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(thread + 1))
                var events: [Event] = []
                events.reserveCapacity(workload.operationsPerThread)
                var value = [UInt8](repeating: 0, count: map.userValueSize)
                var out = [UInt8](repeating: 0, count: map.userValueSize)
                var own = [UInt8](repeating: 0, count: kind.valueSize)
                for count in 0..<workload.operationsPerThread {
                    let key = random.next() % UInt64(keys)
                    let roll = Int(random.next() % 100)
                    let word = (UInt64(thread + 1) << 56) | (UInt64(round) << 32) | UInt64(count + 1)
                    let condition: KeyWriteCondition = [.any, .any, .ifAbsent, .ifPresent][roll % 4]
                    let operation: Operation = switch roll {
                    case 0..<15: .readSlot(slot: 0, of: slots)
                    case 15..<35: .update(word, condition)
                    case 35..<45: .exchange(word, condition)
                    case 45..<52: .delete
                    case 52..<60: .lookupAndDelete
                    case 60..<75: Self.helperLookup(cpu: Int(random.next() % UInt64(RawPerCPUArrayMap.cpuIDLimit)), slots: slots)
                    case 75..<92: ownSlot.map { .helperUpdate(word, condition, slot: $0) } ?? .readSlot(slot: 0, of: slots)
                    default: ownSlot == nil ? .readSlot(slot: 0, of: slots) : .helperDelete
                    }
                    let context = "thread \(thread), key \(key), \(operation)"
                    // A user-mode read of every CPU's value into `out` by `body` (ENOENT: absent).
                    func readAll(_ body: (UnsafeMutableRawBufferPointer) throws(MapError) -> Void) throws(MapError) -> Outcome {
                        try mutableBytes(&out) { (bytes) throws(MapError) -> Outcome in
                            do throws(MapError) { try body(bytes) } catch .keyNotFound { return .words(nil) }
                            return .words(Self.decode(UnsafeRawBufferPointer(bytes), slots: slots, padded: padded,
                                                      failures: failures, context: context))
                        }
                    }
                    // A write under `condition`: its refusal (ENOENT for `.ifPresent`, EEXIST for
                    // `.ifAbsent`) answered as refused, any other error thrown.
                    func conditional(_ condition: KeyWriteCondition, _ body: () throws(MapError) -> Outcome) throws(MapError) -> Outcome {
                        do throws(MapError) {
                            return try body()
                        } catch .keyNotFound where condition == .ifPresent {
                            return .refused
                        } catch .alreadyExists where condition == .ifAbsent { return .refused }
                    }
                    let called = clock.stamp()
                    var outcome: Outcome
                    do throws(MapError) {
                        outcome = try bytes(of: key) { (keyBytes) throws(MapError) -> Outcome in
                            switch operation {
                            case .readSlot, .lookup:
                                return try readAll { (bytes) throws(MapError) in try map.lookup(key: keyBytes, into: bytes) }
                            case .update(let word, let condition):
                                return try mutableBytes(&value) { (bytes) throws(MapError) -> Outcome in
                                    Self.encode(word, into: bytes, slots: slots, padded: padded)
                                    return try conditional(condition) { () throws(MapError) -> Outcome in
                                        try map.update(key: keyBytes, value: UnsafeRawBufferPointer(bytes), flags: condition.flags)
                                        return .done
                                    }
                                }
                            case .exchange(let word, let condition):
                                return try mutableBytes(&value) { (bytes) throws(MapError) -> Outcome in
                                    Self.encode(word, into: bytes, slots: slots, padded: padded)
                                    return try conditional(condition) { () throws(MapError) -> Outcome in
                                        // (Not `readAll`: ENOENT here is `.ifPresent`'s refusal.)
                                        try mutableBytes(&out) { (displaced) throws(MapError) -> Outcome in
                                            let replaced = try map.exchange(key: keyBytes, value: UnsafeRawBufferPointer(bytes),
                                                                            flags: condition.flags, into: displaced)
                                            return replaced ? .words(Self.decode(UnsafeRawBufferPointer(displaced), slots: slots,
                                                                                 padded: padded, failures: failures, context: context))
                                                : .words(nil)
                                        }
                                    }
                                }
                            case .delete:
                                do throws(MapError) {
                                    if roll % 2 == 0 { return try map.deleteIfPresent(key: keyBytes) ? .done : .refused }
                                    try map.delete(key: keyBytes)
                                    return .done
                                } catch .keyNotFound { return .refused }
                            case .lookupAndDelete:
                                return try readAll { (bytes) throws(MapError) in try map.lookupAndDelete(key: keyBytes, into: bytes) }
                            case .helperLookup(let cpu, let slot):
                                return try Epoch.withSection { (section) throws(MapError) -> Outcome in
                                    let inPlace: UnsafeMutableRawBufferPointer
                                    do throws(MapError) {
                                        inPlace = try map.lookupInPlace(key: keyBytes, cpu: cpu, in: section)
                                    } catch .keyNotFound { return .word(nil) }
                                    // Word by word with atomic loads: helper mode writes in place.
                                    var copy = (UInt64(0), UInt64(0))
                                    let words = inPlace.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self)
                                    copy.0 = words[0].load(ordering: .relaxed)
                                    if kind.valueSize == 16 { copy.1 = words[1].load(ordering: .relaxed) }
                                    return .word(withUnsafeBytes(of: &copy) {
                                        Self.decodeSlot($0.baseAddress!, slot: slot, padded: padded, failures: failures,
                                                        context: context)
                                    })
                                }
                            case .helperUpdate(let word, let condition, let slot):
                                return try mutableBytes(&own) { (bytes) throws(MapError) -> Outcome in
                                    Self.encodeSlot(Self.stored(word, slot: slot), into: bytes.baseAddress!, padded: kind.valueSize)
                                    return try Epoch.withSection { (section) throws(MapError) -> Outcome in
                                        try conditional(condition) { () throws(MapError) -> Outcome in
                                            try map.update(key: keyBytes, value: UnsafeRawBufferPointer(bytes),
                                                           flags: condition.flags, in: section)
                                            return .done
                                        }
                                    }
                                }
                            case .helperDelete:
                                return try Epoch.withSection { (section) throws(MapError) -> Outcome in
                                    do throws(MapError) {
                                        try map.delete(key: keyBytes, in: section)
                                    } catch .keyNotFound { return .refused }
                                    return .done
                                }
                            }
                        }
                    } catch {
                        failures.record("\(context) threw \(error)")
                        outcome = .refused
                    }
                    let returned = clock.stamp()
                    if case .readSlot = operation, case .words(let words) = outcome {
                        // One step a slot, in slot order, each anywhere in the lookup's interval.
                        for slot in 0..<slots {
                            events.append(Event(thread: thread, object: Int(key), operation: .readSlot(slot: slot, of: slots),
                                                outcome: .word(words?[slot]), called: called, returned: returned))
                        }
                    } else {
                        events.append(Event(thread: thread, object: Int(key), operation: operation, outcome: outcome,
                                            called: called, returned: returned))
                    }
                }
                recorded.withLock { $0[thread] = events }
            }
            #expect(failures.all.isEmpty, "round \(round): \(failures.all.prefix(8).joined(separator: "\n"))")
            let events = recorded.withLock { $0.flatMap { $0 } }
            let lookups = events.filter { if case .readSlot(let slot, _) = $0.operation { slot > 0 } else { false } }.count
            #expect(events.count - lookups == workload.threads * workload.operationsPerThread)
            if kind.helperWrites {
                #expect(events.contains { if case .helperUpdate = $0.operation { true } else { false } },
                        "no thread could be pinned to a CPU: helper-mode writes went untested")
            }
            for key in 0..<keys {
                // Each thread's events in the order it made them (a lookup's steps share its
                // stamps and stay in slot order).
                let histories = (0..<workload.threads).map { thread in events.filter { $0.thread == thread && $0.object == key } }
                let deadEnd = searchLinearization(
                    histories, initial: State(), called: \.called, returned: \.returned,
                    apply: { event, state -> State? in
                        let (outcome, next) = PerCPUModel.apply(event.operation, of: event.thread, to: state, slots: slots)
                        return outcome == event.outcome ? next : nil
                    })
                if let deadEnd {
                    let stuck = histories.indices.compactMap {
                        deadEnd.cursors[$0] < histories[$0].count ? histories[$0][deadEnd.cursors[$0]].description : nil
                    }
                    Issue.record("""
                        \(kind) round \(round): key \(key) is not linearizable after \
                        \(deadEnd.cursors.reduce(0, +)) operations, the key \
                        \(deadEnd.state.values.map { "holding [\($0.map(hex).joined(separator: ", "))]" } ?? "absent"); \
                        no thread's next operation fits:
                        \(stuck.joined(separator: "\n"))
                        """)
                }
            }
        }
    }

    // MARK: The array

    /// PERCPU_ARRAY: every (index, CPU slot) word a register of its own. User-mode lookups,
    /// updates (any, `BPF_EXIST`, and `BPF_NOEXIST`, always EEXIST) and exchanges count as
    /// one operation on each slot; helper-mode reads of a chosen CPU's slot and writes of the
    /// pinned thread's own slot as one operation on that slot.
    @Test(arguments: [8, 16])
    func arrayHistoriesAreLinearizable(valueSize: Int) throws {
        let map = try #require(try MapRegistry.create(MapDefinition(type: .perCPUArray, keySize: 4, valueSize: valueSize,
                                                                    maxEntries: 4, poolTag: uniqueTag()))
            as? RawPerCPUArrayMap)
        let slots = map.possibleCPUCount
        let padded = map.paddedValueSize
        let userValueSize = slots * padded
        let workload = LinearizabilityWorkload.scaled
        let keys = 3
        /// Register `(index, slot)`'s object number.
        let object: @Sendable (Int, Int) -> Int = { index, slot in index * slots + slot }
        for round in 1...3 {
            // Each register starts from what the last round left.
            let failures = Failures()
            var initial: [Int: UInt64] = [:]
            var buffer = [UInt8](repeating: 0, count: userValueSize)
            for index in 0..<keys {
                try withUnsafeBytes(of: UInt32(index)) { key in
                    try buffer.withUnsafeMutableBytes { try map.lookup(key: key, into: $0) }
                }
                let words = buffer.withUnsafeBytes {
                    Self.decode($0, slots: slots, padded: padded, failures: failures, context: "round \(round) start")
                }
                for slot in 0..<slots { initial[object(index, slot)] = words[slot] }
            }
            let run = recordHistory(workload, seed: UInt64(round)) { thread, failures in
                let ownSlot = Self.pinToCPU(thread: thread, slots: slots)
                var value = [UInt8](repeating: 0, count: userValueSize)
                var out = [UInt8](repeating: 0, count: userValueSize)
                var own = [UInt8](repeating: 0, count: valueSize)
                return { recorder, index, roll, word in
                    let condition: KeyWriteCondition = [.any, .any, .ifAbsent, .ifPresent][roll % 4]
                    // From the word, not the roll: the rolls that reach the helper lookup are few
                    // (50..<80), and on a machine of 16, 32 or 64 CPUs none would pick CPU 0
                    // (found by review).
                    let helperCPU = Int((word &* 0x9E37_79B9_7F4A_7C15) >> 33) % RawPerCPUArrayMap.cpuIDLimit
                    let helperSlot = RawPerCPUArrayMap.slot(ofCPU: helperCPU, slots: slots)
                    let key = UInt32(index)
                    // One user-mode operation on every slot: `body` answers each slot's outcome.
                    func everySlot(_ operation: KeyOperation, _ body: () throws(MapError) -> [KeyOutcome]) {
                        recorder.record(keys: (0..<slots).map { object(index, $0) }, operation) {
                            do throws(MapError) {
                                return try body()
                            } catch {
                                failures.record("thread \(thread): \(operation) on index \(index) threw \(error)")
                                return Array(repeating: .refused, count: slots)
                            }
                        }
                    }
                    func decodeAll(_ bytes: UnsafeMutableRawBufferPointer) -> [KeyOutcome] {
                        Self.decode(UnsafeRawBufferPointer(bytes), slots: slots, padded: padded, failures: failures,
                                    context: "thread \(thread), index \(index)").map { .value($0) }
                    }
                    withUnsafeBytes(of: key) { keyBytes in
                        switch roll {
                        case 0..<25:
                            everySlot(.lookup) { () throws(MapError) in
                                try mutableBytes(&out) { (bytes) throws(MapError) in
                                    try map.lookup(key: keyBytes, into: bytes)
                                    return decodeAll(bytes)
                                }
                            }
                        case 25..<50:
                            everySlot(.update(word, condition)) { () throws(MapError) in
                                try mutableBytes(&value) { (bytes) throws(MapError) in
                                    Self.encode(word, into: bytes, slots: slots, padded: padded)
                                    do throws(MapError) {
                                        try map.update(key: keyBytes, value: UnsafeRawBufferPointer(bytes), flags: condition.flags)
                                    } catch .alreadyExists where condition == .ifAbsent {
                                        return Array(repeating: .refused, count: slots)
                                    }
                                    return Array(repeating: .done, count: slots)
                                }
                            }
                        case 50..<65 where condition != .ifAbsent:
                            everySlot(.exchange(word, condition)) { () throws(MapError) in
                                try mutableBytes(&value) { (bytes) throws(MapError) in
                                    Self.encode(word, into: bytes, slots: slots, padded: padded)
                                    return try mutableBytes(&out) { (displaced) throws(MapError) in
                                        _ = try map.exchange(key: keyBytes, value: UnsafeRawBufferPointer(bytes),
                                                             flags: condition.flags, into: displaced)
                                        return decodeAll(displaced)
                                    }
                                }
                            }
                        case 65..<80, 50..<65:
                            recorder.record(key: object(index, helperSlot), .lookup) {
                                Epoch.withSection { section in
                                    do throws(MapError) {
                                        let inPlace = try map.lookupInPlace(key: keyBytes, cpu: helperCPU, in: section)
                                        // A wide value may be read torn in place (written where it is
                                        // read, as on Linux): its first word only.
                                        let first = inPlace.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self)
                                            .pointee.load(ordering: .relaxed)
                                        return .value(withUnsafeBytes(of: first) {
                                            Self.decodeSlot($0.baseAddress!, slot: helperSlot, padded: 8, failures: failures,
                                                            context: "thread \(thread), helper lookup of index \(index)")
                                        })
                                    } catch {
                                        failures.record("thread \(thread): helper lookup of index \(index) threw \(error)")
                                        return .refused
                                    }
                                }
                            }
                        default:
                            guard let ownSlot, condition != .ifAbsent else {
                                return everySlot(.lookup) { () throws(MapError) in
                                    try mutableBytes(&out) { (bytes) throws(MapError) in
                                        try map.lookup(key: keyBytes, into: bytes)
                                        return decodeAll(bytes)
                                    }
                                }
                            }
                            recorder.record(key: object(index, ownSlot), .update(word, condition)) {
                                own.withUnsafeMutableBytes { bytes in
                                    Self.encodeSlot(Self.stored(word, slot: ownSlot), into: bytes.baseAddress!, padded: valueSize)
                                    return Epoch.withSection { section in
                                        do throws(MapError) {
                                            try map.update(key: keyBytes, value: UnsafeRawBufferPointer(bytes),
                                                           flags: condition.flags, in: section)
                                            return .done
                                        } catch {
                                            failures.record("thread \(thread): helper update of index \(index) threw \(error)")
                                            return .refused
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let problems = failures.all + run.failures
            #expect(problems.isEmpty, "round \(round): \(problems.prefix(8).joined(separator: "\n"))")
            if let violation = checkLinearizable(run.events, initial: { initial[$0] }) {
                Issue.record("PERCPU_ARRAY (\(valueSize)-byte values) round \(round), object = index × \(slots) + slot: \(violation)")
            }
        }
    }
}

/// `array.withUnsafeMutableBytes`, for a body that throws `MapError` only.
private func mutableBytes<R>(_ array: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(MapError) -> R)
    throws(MapError) -> R
{
    try array.withUnsafeMutableBytes { bytes in Result { () throws(MapError) in try body(bytes) } }.get()
}

/// `withUnsafeBytes(of:)`, for a body that throws `MapError` only.
private func bytes<R>(of key: UInt64, _ body: (UnsafeRawBufferPointer) throws(MapError) -> R) throws(MapError) -> R {
    try withUnsafeBytes(of: key) { bytes in Result { () throws(MapError) in try body(bytes) } }.get()
}

private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
