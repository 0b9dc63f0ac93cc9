import RCUMaps
import RCUMapsTestSupport
import Testing

/// Concurrent histories of LPM_TRIE, checked for linearizability
/// (`RCUMapsTestSupport/Linearizability.swift`). A longest-prefix lookup depends on every
/// prefix that covers its address, so the object checked is a *region*: four nested IPv4
/// prefixes (`a/8`, `a.1/16`, `a.1.2/24`, `a.1.2.3/32`) and the lookups of addresses inside
/// them; three regions, three threads. Writes (update with each flag, delete, delete that
/// copies the value, in both modes) make the trie split and merge its nodes under the
/// lookups (user mode and in place). The writes must be linearizable, and every lookup
/// explained by its walk (``walks(_:levelOf:)``): the prefixes read from the shortest to the
/// longest, each at one moment within the call. `RCUMAPS_LONG_TESTS=<seconds>` runs longer.
@Suite("LPM_TRIE: linearizable histories")
struct LPMTrieLinearizabilityTests {
    enum Operation: Sendable, Hashable, CustomStringConvertible {
        /// Update prefix `level` (0: /8 … 3: /32).
        case update(level: Int, UInt64, KeyWriteCondition)
        case delete(level: Int)
        /// Delete that returns the value removed.
        case take(level: Int)
        /// Longest-prefix lookup of an address covered by prefixes `0...deepest`.
        case lookup(deepest: Int)
        /// One step of a lookup's walk, as the check sees it: prefix `level` read at one moment.
        case read(level: Int)

        var description: String {
            switch self {
            case .update(let level, let value, let condition):
                "update(/\(8 * (level + 1)), 0x\(String(value, radix: 16)), \(condition))"
            case .delete(let level): "delete(/\(8 * (level + 1)))"
            case .take(let level): "take(/\(8 * (level + 1)))"
            case .lookup(let deepest): "lookup(an address under /\(8 * (deepest + 1)))"
            case .read(let level): "the walk reads /\(8 * (level + 1))"
            }
        }
    }

    /// An operation on a region (`object`).
    typealias Event = ObjectEvent<Operation, KeyOutcome>

    /// The sequential region: each level's value (nil: absent).
    static func apply(_ operation: Operation, to levels: [UInt64?]) -> (KeyOutcome, [UInt64?]) {
        var levels = levels
        switch operation {
        case .update(let level, let value, let condition):
            let (outcome, next) = KeyModel.apply(.update(value, condition), to: levels[level])
            levels[level] = next
            return (outcome, levels)
        case .delete(let level):
            let (outcome, next) = KeyModel.apply(.delete, to: levels[level])
            levels[level] = next
            return (outcome, levels)
        case .take(let level):
            let (outcome, next) = KeyModel.apply(.lookupAndDelete, to: levels[level])
            levels[level] = next
            return (outcome, levels)
        case .lookup(let deepest):
            return (.value(levels[...deepest].last { $0 != nil } ?? nil), levels)
        case .read(let level):
            return (.value(levels[level]), levels)
        }
    }

    /// Prefix `level` of region `region`: the key bytes (prefix length, then the address).
    static func prefix(region: Int, level: Int) -> [UInt8] {
        let address: [UInt8] = [UInt8(10 + 10 * region), 1, 2, 3]
        let data = address.enumerated().map { $0.offset <= level ? $0.element : 0 }
        return withUnsafeBytes(of: UInt32(8 * (level + 1)).littleEndian) { Array($0) } + data
    }

    /// A /32 query for an address covered by prefixes `0...deepest` of region `region` and by no deeper one.
    static func query(region: Int, deepest: Int) -> [UInt8] {
        var address: [UInt8] = [UInt8(10 + 10 * region), 1, 2, 3]
        if deepest < 3 { address[deepest + 1] = 9 }
        return withUnsafeBytes(of: UInt32(32).littleEndian) { Array($0) } + address
    }

    @Test func historiesAreLinearizable() throws {
        let map = try #require(try MapRegistry.create(MapDefinition(type: .lpmTrie, keySize: 8, valueSize: 8, maxEntries: 64,
                                                                    flags: .noPrealloc, poolTag: uniqueTag()))
            as? RawLPMTrieMap)
        let regions = 3
        let workload = LinearizabilityWorkload.scaled
        let clock = HistoryClock()
        let failures = Failures()
        for round in 1...5 {
            // Each round starts with no prefix.
            for region in 0..<regions {
                for level in 0..<4 {
                    Self.prefix(region: region, level: level).withUnsafeBytes { _ = try? map.delete(key: $0) }
                }
            }
            let recorded = ThreadLock<[[Event]]>(Array(repeating: [], count: workload.threads))
            runOnThreads(workload.threads) { thread in
                var random = XorShift(seed: UInt64(round) &* 0x9E37_79B9 &+ UInt64(thread + 1))
                var events: [Event] = []
                for count in 0..<workload.operationsPerThread {
                    let word = (UInt64(thread + 1) << 56) | (UInt64(round) << 32) | UInt64(count + 1)
                    let region = Int(random.next() % UInt64(regions))
                    let level = Int(random.next() % 4)
                    let roll = random.next() % 100
                    let helper = random.next() % 4 == 0
                    let operation: Operation = switch roll {
                    case 0..<25: .update(level: level, word, .any)
                    case 25..<33: .update(level: level, word, .ifAbsent)
                    case 33..<40: .update(level: level, word, .ifPresent)
                    case 40..<52: .delete(level: level)
                    case 52..<58: .take(level: level)
                    default: .lookup(deepest: level)
                    }
                    let called = clock.stamp()
                    let outcome = Self.perform(operation, on: map, region: region, helper: helper, thread: thread,
                                               failures: failures)
                    let returned = clock.stamp()
                    events.append(Event(thread: thread, object: region, operation: operation, outcome: outcome,
                                        called: called, returned: returned))
                }
                recorded.withLock { $0[thread] = events }
            }
            #expect(failures.all.isEmpty, "\(failures.all.joined(separator: "\n"))")
            let all = recorded.withLock { $0 }
            for region in 0..<regions {
                let regionEvents = all.map { $0.filter { $0.object == region } }
                var levelOf: [UInt64: Int] = [:]  // which prefix each written value went to
                for case let (.update(level, value, _)) in regionEvents.joined().map(\.operation) { levelOf[value] = level }
                let histories = regionEvents.map { Self.walks($0, levelOf: levelOf) }
                let deadEnd = searchLinearization(
                    histories, initial: [UInt64?](repeating: nil, count: 4), called: \.called, returned: \.returned,
                    apply: { event, levels in
                        let (outcome, next) = Self.apply(event.operation, to: levels)
                        return outcome == event.outcome ? next : nil
                    })
                if let deadEnd {
                    let stuck = histories.indices.compactMap {
                        deadEnd.cursors[$0] < histories[$0].count ? histories[$0][deadEnd.cursors[$0]].description : nil
                    }
                    Issue.record("""
                        round \(round), region \(region): not linearizable after \(deadEnd.cursors.reduce(0, +)) \
                        operations, the prefixes holding \(deadEnd.state); no thread's next operation fits:
                        \(stuck.joined(separator: "\n"))
                        """)
                }
            }
        }
    }

    /// A thread's events with each lookup replaced by the steps of its walk that its answer
    /// shows, each with the lookup's stamps: the prefix it answered (`levelOf` its value, which
    /// only one write stored) read present with that value, then each longer prefix under the
    /// address read absent, in that order. This is the guarantee map-types.md gives: a lookup
    /// reads the prefixes from the shortest to the longest, each at one moment of the call,
    /// the longer ones later — so a lookup that overlaps several updates may answer a
    /// combination no single moment held, as Linux's can; a lookup that overlaps at most one
    /// update answers the trie before or after it. (A value no update stored stays a lookup,
    /// which then fails the check.)
    static func walks(_ events: [Event], levelOf: [UInt64: Int]) -> [Event] {
        events.flatMap { event -> [Event] in
            guard case .lookup(let deepest) = event.operation, case .value(let answer) = event.outcome else { return [event] }
            func step(_ level: Int, _ value: UInt64?) -> Event {
                var step = event
                step.operation = .read(level: level)
                step.outcome = .value(value)
                return step
            }
            guard let answer else { return (0...deepest).map { step($0, nil) } }
            guard let level = levelOf[answer], level <= deepest else { return [event] }
            return [step(level, answer)] + (level..<deepest).map { step($0 + 1, nil) }
        }
    }

    /// Runs `operation` and returns what it answered.
    static func perform(_ operation: Operation, on map: RawLPMTrieMap, region: Int, helper: Bool, thread: Int,
                        failures: Failures) -> KeyOutcome {
        // The 8 key bytes as one word (the typed-throws `withUnsafeBytes(of:)` takes a value).
        func keyWord(_ key: [UInt8]) -> UInt64 { key.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } }
        var value: UInt64 = 0
        do throws(MapError) {
            switch operation {
            case .update(let level, let word, let condition):
                try withUnsafeBytes(of: keyWord(prefix(region: region, level: level))) { (key) throws(MapError) in
                    try withUnsafeBytes(of: word) { (bytes) throws(MapError) in
                        if helper {
                            try Epoch.withSection { (section) throws(MapError) in
                                try map.update(key: key, value: bytes, flags: condition.flags, in: section)
                            }
                        } else {
                            try map.update(key: key, value: bytes, flags: condition.flags)
                        }
                    }
                }
                return .done
            case .delete(let level):
                try withUnsafeBytes(of: keyWord(prefix(region: region, level: level))) { (key) throws(MapError) in
                    if helper {
                        try Epoch.withSection { (section) throws(MapError) in try map.delete(key: key, in: section) }
                    } else {
                        try map.delete(key: key)
                    }
                }
                return .done
            case .take(let level):
                try withUnsafeBytes(of: keyWord(prefix(region: region, level: level))) { (key) throws(MapError) in
                    try withUnsafeMutableBytes(of: &value) { (out) throws(MapError) in
                        try map.delete(key: key, copyingValueInto: out)
                    }
                }
                return .value(value)
            case .lookup(let deepest):
                try withUnsafeBytes(of: keyWord(query(region: region, deepest: deepest))) { (key) throws(MapError) in
                    if helper {
                        // In place: the matched entry's value, read inside the section.
                        value = try Epoch.withSection { (section) throws(MapError) -> UInt64 in
                            try map.lookupInPlace(key: key, in: section).loadUnaligned(as: UInt64.self)
                        }
                    } else {
                        try withUnsafeMutableBytes(of: &value) { (out) throws(MapError) in try map.lookup(key: key, into: out) }
                    }
                }
                return .value(value)
            case .read:
                preconditionFailure("a walk's step is made by the check, not run")
            }
        } catch .keyNotFound {
            switch operation {
            case .lookup, .take: return .value(nil)
            case .delete, .update(_, _, .ifPresent): return .refused
            default: break
            }
            failures.record("thread \(thread): \(operation) threw ENOENT")
            return .refused
        } catch .alreadyExists where operation.isInsert {
            return .refused
        } catch {
            failures.record("thread \(thread): \(operation) threw \(error)")
            return .refused
        }
    }
}

extension LPMTrieLinearizabilityTests.Operation {
    var isInsert: Bool {
        if case .update(_, _, .ifAbsent) = self { return true }
        return false
    }
}
