import Foundation
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// Concurrent histories of `RCUDictionary`, checked for linearizability key by key
/// (`RCUMapsTestSupport/Linearizability.swift`): threads share three keys and mix every
/// single-key operation — the subscript's get and set (a value, and `nil`), `updateValue`,
/// `insertIfAbsent`, `removeValue`, the two compare-and-set forms and `update(forKey:)`,
/// whose closure may run more than once. One case per storage layout: integer keys with
/// one-word values in the slot, `String` keys with one-word values, and values of three
/// words in a node under both kinds of key. `RCUMAPS_LONG_TESTS=<seconds>` runs longer.
@Suite("RCUDictionary: linearizable histories")
struct RCUDictionaryLinearizabilityTests {
    /// Three words that must always agree: a read of a mixed value is a torn one.
    struct Triple: Sendable, Equatable {
        var words: (UInt64, UInt64, UInt64)
        init(_ word: UInt64) { words = (word, ~word, word ^ 0x5A5A_5A5A_5A5A_5A5A) }
        var word: UInt64? { words.1 == ~words.0 && words.2 == words.0 ^ 0x5A5A_5A5A_5A5A_5A5A ? words.0 : nil }
        static func == (lhs: Triple, rhs: Triple) -> Bool { lhs.words == rhs.words }
    }

    @Test func integerKeysOneWordValues() {
        check(RCUDictionary<Int, UInt64>(), keys: [0, 1, 2], wrap: { $0 }, unwrap: { $0 })
    }

    @Test func stringKeysOneWordValues() {
        // Keys longer than 15 bytes: kept out of line, as most real keys are.
        check(RCUDictionary<String, UInt64>(), keys: (0..<3).map { "linearizability-key-\($0)" }, wrap: { $0 }, unwrap: { $0 })
    }

    @Test func integerKeysValuesInNodes() {
        check(RCUDictionary<Int, Triple>(), keys: [0, 1, 2], wrap: Triple.init, unwrap: \.word)
    }

    @Test func stringKeysValuesInNodes() {
        check(RCUDictionary<String, Triple>(), keys: ["k0", "k1", "a key long enough to be kept out of line"],
              wrap: Triple.init, unwrap: \.word)
    }

    /// The four layouts again while another thread inserts and removes 3,000 other keys over
    /// and over, so that the table grows and shrinks (the dictionary's resize, which copies
    /// every entry to a new table) under the history's operations.
    @Test func historiesStayLinearizableWhileTheTableResizes() {
        let churn = (0..<3_000).map { $0 + 1_000 }
        check(RCUDictionary<Int, UInt64>(), keys: [0, 1, 2], wrap: { $0 }, unwrap: { $0 }, churn: churn)
        check(RCUDictionary<String, UInt64>(), keys: (0..<3).map { "linearizability-key-\($0)" }, wrap: { $0 },
              unwrap: { $0 }, churn: churn.map { "churning-key-number-\($0)" })
        check(RCUDictionary<Int, Triple>(), keys: [0, 1, 2], wrap: Triple.init, unwrap: \.word, churn: churn)
        check(RCUDictionary<String, Triple>(), keys: ["k0", "k1", "k2"], wrap: Triple.init, unwrap: \.word,
              churn: churn.map { "c\($0)" })
    }

    func check<Key: Hashable & Sendable, Value: Sendable & Equatable>(
        _ dictionary: RCUDictionary<Key, Value>, keys: [Key],
        wrap: @escaping @Sendable (UInt64) -> Value, unwrap: @escaping @Sendable (Value) -> UInt64?,
        churn: [Key] = []
    ) {
        var workload = LinearizabilityWorkload.scaled
        workload.keys = keys.count
        // The churning thread: fills the dictionary with `churn` and empties it, until told to stop.
        let stop = Atomic<Bool>(false)
        let stopped = Atomic<Bool>(churn.isEmpty)
        if !churn.isEmpty {
            Thread {
                var filler = wrap(1)
                while !stop.load(ordering: .relaxed) {
                    for key in churn { dictionary[key] = filler }
                    for key in churn { dictionary[key] = nil }
                    filler = wrap(2)
                }
                stopped.store(true, ordering: .releasing)
            }.start()
        }
        for round in 1...5 {
            for key in keys { dictionary[key] = nil }
            let run = recordHistory(workload, seed: UInt64(round)) { thread, failures in
                { recorder, index, roll, word in
                    let key = keys[index]
                    // A value read, as the model's word; a torn one is reported.
                    func read(_ value: Value?) -> UInt64? {
                        guard let value else { return nil }
                        guard let word = unwrap(value) else {
                            failures.record("thread \(thread): key \(index) read a torn value")
                            return 0
                        }
                        return word
                    }
                    switch roll {
                    case 0..<20:
                        recorder.record(key: index, .lookup) { .value(read(dictionary[key])) }
                    case 20..<32:
                        recorder.record(key: index, .update(word, .any)) {
                            dictionary[key] = wrap(word)
                            return .done
                        }
                    case 32..<40:
                        recorder.record(key: index, .erase) {
                            dictionary[key] = nil
                            return .done
                        }
                    case 40..<52:
                        recorder.record(key: index, .exchange(word, .any)) {
                            .value(read(dictionary.updateValue(wrap(word), forKey: key)))
                        }
                    case 52..<62:
                        recorder.record(key: index, .update(word, .ifAbsent)) {
                            dictionary.insertIfAbsent(wrap(word), forKey: key) ? .done : .refused
                        }
                    case 62..<72:
                        recorder.record(key: index, .lookupAndDelete) { .value(read(dictionary.removeValue(forKey: key))) }
                    case 72..<90:
                        // Compare against a value read just before (often still current, sometimes
                        // not); the read is an operation of the history too. Absent: a value no
                        // write stores, so the compare fails unless the model says otherwise.
                        var seen: Value?
                        recorder.record(key: index, .lookup) {
                            seen = dictionary[key]
                            return .value(read(seen))
                        }
                        let expected = seen.flatMap(unwrap) ?? word
                        let compared = seen ?? wrap(word)
                        if roll < 82 {
                            recorder.record(key: index, .compareAndReplace(expected: expected, new: word)) {
                                dictionary.replaceValue(forKey: key, ifCurrent: compared, with: wrap(word)) ? .done : .refused
                            }
                        } else {
                            recorder.record(key: index, .compareAndDelete(expected: expected)) {
                                dictionary.removeValue(forKey: key, ifCurrent: compared) ? .done : .refused
                            }
                        }
                    default:
                        recorder.record(key: index, .toggle(word)) {
                            // The closure may run again on a newer value: the last call's
                            // argument is the value the write replaced.
                            var replaced: Value?
                            dictionary.update(forKey: key) { current in
                                replaced = current
                                return current == nil ? wrap(word) : nil
                            }
                            return .value(read(replaced))
                        }
                    }
                }
            }
            #expect(run.failures.isEmpty, "\(run.failures.joined(separator: "\n"))")
            #expect(run.events.count >= workload.threads * workload.operationsPerThread)
            if let violation = run.violation() { Issue.record("round \(round): \(violation)") }
        }
        // Every churn cycle ends with its keys removed: once it stops, only the history's keys remain.
        stop.store(true, ordering: .relaxed)
        while !stopped.load(ordering: .acquiring) { usleep(1_000) }
        #expect(dictionary.count <= keys.count)
    }
}
