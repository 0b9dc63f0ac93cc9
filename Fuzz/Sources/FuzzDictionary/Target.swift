import FuzzSupport
import RCUMaps

/// FuzzDictionary: a sequence of operations on one `RCUDictionary` against a Swift
/// `Dictionary` (DictionaryExercise.swift), for eight pairs of key and value types that take
/// the dictionary's different layouts: `String` keys (nodes, the dictionary's own string
/// hash with canonical equivalence) with `Int` values, with objects and with three-word
/// values; `Int` keys with `Int` values (one word in the slot), with objects (a reference in
/// the slot), with three-word values and with three-word values holding an object (nodes);
/// and a key type whose hash takes three values (full-hash collisions, long chains).
///
/// Input: a kind byte (byte % 8), a minimum-capacity byte, then operations of 8 bytes each
/// (an opcode, then a frame of operands: ``OperationFrame``).
func makeDictionaryTarget() -> FuzzTarget {
    // No provider here: the dictionary's own tags must settle like every other (after 256
    // inputs: each input's bulk operations and passes make this target slow).
    FuzzTarget(name: "FuzzDictionary", settleEvery: 256, residentTags: [], seeds: dictionarySeeds) { input in
        runDictionary(&input)
    }
}

func runDictionary(_ input: inout FuzzInput) {
    let kind = Int(input.byte()) % dictionaryKinds.count
    let capacity = Int(input.byte())
    trace("input: kind \(dictionaryKinds[kind]) minimumCapacity \(capacity)")
    switch kind {
    case 0: run(DictionaryExercise<String, Int>(minimumCapacity: capacity, makeKey: DictionaryKeys.string, bulkKey: bulkString), &input)
    case 1: run(DictionaryExercise<String, Tracked>(minimumCapacity: capacity, makeKey: DictionaryKeys.string, bulkKey: bulkString), &input)
    case 2: run(DictionaryExercise<Int, Int>(minimumCapacity: capacity, makeKey: DictionaryKeys.integer, bulkKey: { $0 + 1_000 }), &input)
    case 3: run(DictionaryExercise<Int, Tracked>(minimumCapacity: capacity, makeKey: DictionaryKeys.integer, bulkKey: { $0 + 1_000 }), &input)
    case 4: run(DictionaryExercise<Int, Wide>(minimumCapacity: capacity, makeKey: DictionaryKeys.integer, bulkKey: { $0 + 1_000 }), &input)
    case 5: run(DictionaryExercise<String, Wide>(minimumCapacity: capacity, makeKey: DictionaryKeys.string, bulkKey: bulkString), &input)
    case 6: run(DictionaryExercise<Int, TrackedWide>(minimumCapacity: capacity, makeKey: DictionaryKeys.integer, bulkKey: { $0 + 1_000 }), &input)
    default:
        run(DictionaryExercise<CollidingKey, Int>(minimumCapacity: capacity, makeKey: DictionaryKeys.colliding,
                                                  bulkKey: { CollidingKey(value: $0 + 1_000) }), &input)
    }
}

let dictionaryKinds = ["String → Int", "String → object", "Int → Int", "Int → object", "Int → three words",
                       "String → three words", "Int → three words with an object", "colliding keys → Int"]

/// Bulk keys: short and long, ASCII and not (each distinct from every other).
func bulkString(_ index: Int) -> String {
    switch index % 3 {
    case 0: "bulk-\(index)"
    case 1: "a bulk key of more than fifteen bytes, \(index)"
    default: "bulk-e\u{301}-\(index)"
    }
}

func run<Key, Value>(_ exercise: DictionaryExercise<Key, Value>, _ input: inout FuzzInput) {
    for _ in 0..<OperationFrame.limit {
        guard var frame = OperationFrame.next(&input) else { break }
        exercise.step(&frame)
    }
    exercise.finish()
}
