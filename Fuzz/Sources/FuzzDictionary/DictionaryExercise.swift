import FuzzSupport
import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// Runs operations on an `RCUDictionary` and on a Swift `Dictionary` of value ids (the
/// model) side by side, and compares every answer: the subscript (get, set, remove, the
/// `default:` read-modify-write), `updateValue`, `insertIfAbsent`, both `removeValue`s,
/// `replaceValue(forKey:ifCurrent:with:)`, `update(forKey:)`, `contains`, `withValue`,
/// `count`, iteration, `snapshot`, `keys`, `values`, `dictionary`, `reserveCapacity`,
/// `removeAll`, bulk inserts and removals that grow and shrink the table, and dropping the
/// dictionary. With `Tracked` values, the live objects after a barrier must be exactly the
/// entries (none released twice, none kept).
final class DictionaryExercise<Key: Hashable & Sendable, Value: FuzzValue> {
    var dictionary: RCUDictionary<Key, Value>?
    var model: [Key: Int] = [:]
    let makeKey: (inout FuzzInput) -> Key
    /// A key for the n-th entry of a bulk insert or removal.
    let bulkKey: (Int) -> Key
    var nextID = 1

    init(minimumCapacity: Int, makeKey: @escaping (inout FuzzInput) -> Key, bulkKey: @escaping (Int) -> Key) {
        dictionary = RCUDictionary(minimumCapacity: minimumCapacity)
        self.makeKey = makeKey
        self.bulkKey = bulkKey
    }

    var d: RCUDictionary<Key, Value> { dictionary! }

    /// A fresh value (ids never repeat within an input, so a stale value shows).
    func newValue() -> Value {
        defer { nextID += 1 }
        return Value(id: nextID)
    }

    func check(_ got: Value?, _ expected: Int?, _ what: @autoclosure () -> String) {
        fuzzCheck(got?.id == expected, "\(what()): \(got.map { "\($0.id)" } ?? "nil"), expected \(expected.map { "\($0)" } ?? "nil")")
        if let got { fuzzCheck(got.isIntact, "\(what()): a value whose words disagree, \(got)") }
    }

    /// What a read-modify-write through a subscript makes of the value it is given.
    static func rewritten(_ id: Int) -> Int { id &+ 1_000_000_000 }

    func step(_ frame: inout OperationFrame) {
        switch frame.opcode % 20 {
        case 0:  // subscript get
            let key = makeKey(&frame.operands)
            trace("  [\(key)]")
            check(d[key], model[key], "d[\(key)]")

        case 1:  // subscript set
            let key = makeKey(&frame.operands)
            let value = newValue()
            trace("  [\(key)] = \(value.id)")
            d[key] = value
            model[key] = value.id

        case 2:  // subscript set nil
            let key = makeKey(&frame.operands)
            trace("  [\(key)] = nil")
            d[key] = nil
            model[key] = nil

        case 3:  // updateValue
            let key = makeKey(&frame.operands)
            let value = newValue()
            trace("  updateValue(\(value.id), forKey: \(key))")
            check(d.updateValue(value, forKey: key), model.updateValue(value.id, forKey: key), "updateValue for \(key)")

        case 4:  // insertIfAbsent
            let key = makeKey(&frame.operands)
            let value = newValue()
            trace("  insertIfAbsent(\(value.id), forKey: \(key))")
            let inserted = d.insertIfAbsent(value, forKey: key)
            fuzzCheck(inserted == (model[key] == nil), "insertIfAbsent for \(key): \(inserted)")
            if inserted { model[key] = value.id }

        case 5:  // removeValue
            let key = makeKey(&frame.operands)
            trace("  removeValue(forKey: \(key))")
            check(d.removeValue(forKey: key), model.removeValue(forKey: key), "removeValue for \(key)")

        case 6:  // removeValue(forKey:ifCurrent:), with the current value or another
            let key = makeKey(&frame.operands)
            let current = frame.operands.bool()
            let expected = current ? model[key] ?? 0 : nextID + 1_000_000
            trace("  removeValue(forKey: \(key), ifCurrent: \(expected))")
            let removed = d.removeValue(forKey: key, ifCurrent: Value(id: expected))
            fuzzCheck(removed == (model[key] == expected), "removeValue(ifCurrent: \(expected)) for \(key): \(removed)")
            if removed { model[key] = nil }

        case 7:  // replaceValue(forKey:ifCurrent:with:)
            let key = makeKey(&frame.operands)
            let current = frame.operands.bool()
            let expected = current ? model[key] ?? 0 : nextID + 1_000_000
            let value = newValue()
            trace("  replaceValue(forKey: \(key), ifCurrent: \(expected), with: \(value.id))")
            let replaced = d.replaceValue(forKey: key, ifCurrent: Value(id: expected), with: value)
            fuzzCheck(replaced == (model[key] == expected), "replaceValue(ifCurrent: \(expected)) for \(key): \(replaced)")
            if replaced { model[key] = value.id }

        case 8:  // update(forKey:): keep, replace or remove, from what it is given
            let key = makeKey(&frame.operands)
            let choice = frame.operands.byte() % 3
            // Another write of the key between its read and its commit (made by `transform`
            // on its first call, as another thread's would be): the update must retry.
            let interfere = frame.operands.bool()
            let value = newValue()
            let interloper = newValue()
            trace("  update(forKey: \(key)) \(["keep", "replace", "remove"][Int(choice)])\(interfere ? ", written meanwhile" : "")")
            var given: Int??
            var calls = 0
            let result = d.update(forKey: key) { old in
                calls += 1
                given = .some(old?.id)
                if interfere && calls == 1 {
                    d[key] = interloper
                    model[key] = interloper.id
                }
                switch choice {
                case 0: return old
                case 1: return value
                default: return nil
                }
            }
            fuzzCheck(given == .some(model[key]), "update(forKey: \(key)) was given \(String(describing: given)), expected \(String(describing: model[key]))")
            fuzzCheck(!interfere || calls >= 2, "update(forKey: \(key)) committed over a write made after its read (\(calls) call)")
            if choice == 1 { model[key] = value.id } else if choice == 2 { model[key] = nil }
            check(result, model[key], "update(forKey: \(key))'s result")

        case 9:  // read-modify-writes through the subscripts (their `_modify`)
            let key = makeKey(&frame.operands)
            let choice = frame.operands.byte() % 4
            let value = newValue()
            switch choice {
            case 0:
                trace("  [\(key), default: \(value.id)] = next id")
                let replacement = newValue()
                d[key, default: value] = replacement
                model[key] = replacement.id
            case 1:
                trace("  rewrite(&[\(key), default: \(value.id)])")
                Self.rewrite(&d[key, default: value])
                model[key] = Self.rewritten(model[key] ?? value.id)
            case 2:
                trace("  rewrite(&[\(key)]), inserting \(value.id) if absent")
                Self.rewrite(&d[key], orInsert: value)
                model[key] = model[key].map(Self.rewritten) ?? value.id
            default:
                trace("  remove through &[\(key)]")
                Self.remove(&d[key])
                model[key] = nil
            }

        case 10:  // contains, withValue
            let key = makeKey(&frame.operands)
            trace("  contains / withValue \(key)")
            fuzzCheck(d.contains(key) == (model[key] != nil), "contains(\(key))")
            let lent: Int? = d.withValue(forKey: key) { $0.id }
            fuzzCheck(lent == model[key], "withValue(forKey: \(key)): \(String(describing: lent))")

        case 11:  // count and every form of a pass
            trace("  count, iteration, snapshot, keys, values, dictionary")
            checkAll()

        case 12:  // bulk insert: grows the table
            let count = 1 + Int(frame.operands.byte()) * 4
            let start = Int(frame.operands.byte()) * 8
            trace("  insert \(count) keys from \(start)")
            for index in start..<start + count {
                let value = newValue()
                check(d.updateValue(value, forKey: bulkKey(index)), model.updateValue(value.id, forKey: bulkKey(index)),
                      "bulk updateValue \(index)")
            }

        case 13:  // bulk removal: shrinks the table
            let count = 1 + Int(frame.operands.byte()) * 4
            let start = Int(frame.operands.byte()) * 8
            trace("  remove \(count) keys from \(start)")
            for index in start..<start + count {
                check(d.removeValue(forKey: bulkKey(index)), model.removeValue(forKey: bulkKey(index)), "bulk removeValue \(index)")
            }

        case 14:  // removeAll
            trace("  removeAll")
            d.removeAll()
            model.removeAll()
            fuzzCheck(d.isEmpty, "not empty after removeAll: \(d.count)")

        case 15:  // reserveCapacity
            let capacity = Int(frame.operands.u16()) % 5_000
            trace("  reserveCapacity(\(capacity))")
            d.reserveCapacity(capacity)

        case 16:  // a pass, then the live objects after a barrier
            trace("  barrier, live objects")
            checkAll()
            checkLiveObjects()

        case 17:  // drop and re-create (from a literal or with a capacity)
            let capacity = Int(frame.operands.byte())
            let literal = frame.operands.bool()
            let keys = (0..<3).map { _ in makeKey(&frame.operands) }
            trace("  drop, re-create " + (literal ? "from a literal of \(keys)" : "with minimumCapacity \(capacity)"))
            dictionary = nil
            model = [:]
            checkLiveObjects()
            if literal {
                let values = keys.map { _ in newValue() }
                dictionary = [keys[0]: values[0], keys[1]: values[1], keys[2]: values[2]]
                for (key, value) in zip(keys, values) { model[key] = value.id }  // later duplicates win
            } else {
                dictionary = RCUDictionary(minimumCapacity: capacity)
            }

        default:  // subscript get through the Sequence: for-in finds the key's value
            let key = makeKey(&frame.operands)
            trace("  for-in looking for \(key)")
            var found: [Int] = []
            for (k, v) in d where k == key { found.append(v.id) }
            fuzzCheck(found == (model[key].map { [$0] } ?? []), "for-in found \(key) with \(found), expected \(String(describing: model[key]))")
        }
        fuzzCheck(d.count == model.count, "count \(d.count), expected \(model.count)")
    }

    /// Every pass form against the model: the same keys once each, with their values.
    func checkAll() {
        var iterated: [Key: Int] = [:]
        for (key, value) in d {
            fuzzCheck(iterated.updateValue(value.id, forKey: key) == nil, "iteration returned \(key) twice")
        }
        fuzzCheck(iterated == model, "iteration: \(iterated.count) entries differ from the model's \(model.count)")
        let snapshot = d.snapshot()
        fuzzCheck(snapshot.count == model.count && snapshot.allSatisfy { model[$0.key] == $0.value.id }, "snapshot differs from the model")
        fuzzCheck(Set(d.keys) == Set(model.keys) && d.keys.count == model.count, "keys differ from the model")
        fuzzCheck(d.values.map(\.id).sorted() == model.values.sorted(), "values differ from the model")
        fuzzCheck(d.dictionary.mapValues(\.id) == model, "dictionary differs from the model")
    }

    static func rewrite(_ value: inout Value) { value = Value(id: rewritten(value.id)) }

    static func rewrite(_ value: inout Value?, orInsert new: Value) {
        value = value.map { Value(id: rewritten($0.id)) } ?? new
    }

    static func remove(_ value: inout Value?) { value = nil }

    /// With values that hold objects: once replaced and removed values are released (a
    /// barrier), the live objects are exactly the dictionary's entries.
    func checkLiveObjects() {
        guard Value.holdsObjects else { return }
        var live = 0
        for _ in 0..<16 {
            Epoch.barrier()
            live = Tracked.live.load(ordering: .relaxed)
            if live == model.count { return }
            fuzzCheck(live >= model.count, "\(live) live objects for \(model.count) entries: a value released too early or twice")
        }
        fuzzFail("\(live) live objects for \(model.count) entries after 16 barriers: a value never released")
    }

    /// Drops the dictionary; its values must all be released.
    func finish() {
        dictionary = nil
        model = [:]
        checkLiveObjects()
    }
}
