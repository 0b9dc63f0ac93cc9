import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body`, catching its typed error.
@inline(__always)
public func attempt<T>(_ body: () throws(MapError) -> T) -> Result<T, MapError> {
    do { return .success(try body()) } catch { return .failure(error) }
}

/// What a map fixture adds to the generic operation sequence.
public struct ExerciseHooks {
    /// Tells a provider which mode the next callbacks are in (helper operation, teardown).
    public var setPhase: (_ helper: Bool, _ teardown: Bool) -> Void = { _, _ in }
    /// Around an exchange: the provider's find callback may translate the value whose
    /// deletion it was just told of (RawCustomMap.exchange does that).
    public var setStaleFinds: (Bool) -> Void = { _ in }
    /// After each operation: checks of the fixture's own (reference counts, callback counters).
    public var afterOperation: (MapModel) -> Void = { _ in }
    /// After the map was dropped (the model of the dropped map is passed).
    public var afterDrop: (MapModel) -> Void = { _ in }
    /// A value for an update (object maps: a handle); nil: derived bytes.
    public var makeValue: ((inout FuzzInput) -> [UInt8])?
    /// The fixture's own operation (object maps: open / close handles).
    public var extraOperation: ((inout FuzzInput) -> Void)?
    /// Called with the new map after each creation (C providers attach their context).
    public var mapCreated: (any RawMap) -> Void = { _ in }

    public init() {}
}

/// Runs a sequence of operations decoded from the input on one map and compares every result
/// with the reference model, errno for errno; checks count, get-next-key passes and batch
/// passes against the model; drops the map at the end.
///
/// Every buffer handed to the map is an ``ExactBuffer`` (exactly as long as the caller
/// says), so AddressSanitizer sees the map read or write a byte past it.
///
/// Opcodes (the first byte of each operation, modulo 32): 0 lookup, 1/2/15 update, 3
/// delete, 4 lookup-and-delete, 5 get-next-key, 6 helper lookup, 7 helper in-place write, 8
/// helper update, 9 helper delete, 10 wrong sizes, 11 verify everything, 12 the fixture's
/// own operation, 13 update with raw bytes, 14 drop and re-create; 16 lookup with flags, 17
/// delete with flags, 18 lookup-and-delete with flags, 19 exchange, 20 freeze, 21
/// get-next-key in a pass, 22 a get-next-key pass with writes in between, 23 a lookup batch
/// call, 24 a lookup-and-delete batch call, 25 an update batch, 26 a delete batch, 27 a
/// batch from a garbage or stale cursor, 28 wrong sizes of the newer calls, 29 storage
/// mappings (mmapable arrays) or a freeze inside a section, 30 a whole batch pass, 31 update.
public final class MapExerciser {
    public private(set) var map: (any RawMap)?
    public private(set) var model: MapModel
    let makeMap: () -> any RawMap
    let makeModel: () -> MapModel
    public var hooks: ExerciseHooks
    var recreations = 0
    var operations = 0
    public var maxOperations = 400
    /// The batch pass in progress (lookup or lookup-and-delete), continued by later calls.
    var batchPass: BatchPass?
    /// Cursors batches returned, kept across re-creation: stale cursors for later calls.
    var staleCursors: [MapBatchCursor] = []
    /// Storage mappings held (mmapable arrays); released before the map is dropped.
    var mappings: [RawArrayMapping] = []

    public init(makeMap: @escaping () -> any RawMap, makeModel: @escaping () -> MapModel, hooks: ExerciseHooks) {
        self.makeMap = makeMap
        self.makeModel = makeModel
        self.hooks = hooks
        model = makeModel()
        let map = makeMap()
        self.map = map
        hooks.mapCreated(map)
    }

    var keySize: Int { model.keySize }
    var valueSize: Int { model.valueSize }
    var keyLength: Int { model.isArray ? 4 : keySize }

    // MARK: Keys and values

    /// A key: mostly from a small set (so that keys collide, maps fill up, replaces happen),
    /// sometimes raw bytes of the input. Arrays: an index, often just past the end.
    public func key(_ input: inout FuzzInput) -> [UInt8] {
        let selector = input.byte()
        if model.isArray {
            let index: UInt32 = selector < 0xC0 ? UInt32(Int(selector) % (model.maxEntries + 3)) : input.u32()
            return MapModel.key(index: index)
        }
        if selector >= 0xC0 { return input.bytes(keySize) }
        return Self.derivedKey(selector < 0x80 ? selector % 16 : selector, size: keySize)
    }

    public static func derivedKey(_ index: UInt8, size: Int) -> [UInt8] {
        var key = [UInt8](repeating: 0, count: size)
        key[0] = index
        for position in 1..<max(size, 1) {
            key[position] = UInt8(truncatingIfNeeded: Int(index) &* 131 &+ position &* 17)
        }
        return key
    }

    /// A key of the model (or any key when it has none).
    func presentKey(_ input: inout FuzzInput) -> [UInt8] {
        let keys = model.isArray ? [] : model.keys
        return keys.isEmpty ? key(&input) : keys[Int(input.byte()) % keys.count]
    }

    public func value(_ input: inout FuzzInput) -> [UInt8] {
        if let makeValue = hooks.makeValue { return makeValue(&input) }
        let selector = input.byte()
        if selector >= 0xE0 { return input.bytes(valueSize) }
        return (0..<valueSize).map { UInt8(truncatingIfNeeded: Int(selector) &+ $0 &* 29) }
    }

    static func flags(_ input: inout FuzzInput) -> MapUpdateFlags {
        let selector = input.byte() % 12
        switch selector {
        case 0, 1, 2: return MapUpdateFlags(rawValue: UInt64(selector))
        case 3, 4, 5: return .any
        case 6: return MapUpdateFlags(rawValue: 3)
        case 7: return .lock  // BPF_ANY | BPF_F_LOCK
        case 8: return MapUpdateFlags(rawValue: .max)
        case 9: return MapUpdateFlags(rawValue: input.u64())
        case 10: return MapUpdateFlags.noExist.union(.lock)
        default: return MapUpdateFlags.exist.union(.lock)
        }
    }

    /// Flags of lookups, deletes and lookup-and-delete: none, BPF_F_LOCK, or invalid bits.
    static func elementFlags(_ input: inout FuzzInput) -> MapElementFlags {
        switch input.byte() % 8 {
        case 0, 1: return []
        case 2, 3, 4: return .lock
        case 5: return MapElementFlags(rawValue: 1)
        case 6: return MapElementFlags(rawValue: 2)
        default: return MapElementFlags(rawValue: input.u64())
        }
    }

    // MARK: Checking

    /// Compares an outcome with the model's expectation; returns whether it succeeded.
    @discardableResult
    func check(_ what: @autoclosure () -> String, _ expectation: Expectation, _ result: Result<[UInt8]?, MapError>) -> Bool {
        trace("  \(what()) → \(describe(result)) (model: \(expectation))")
        switch (expectation, result) {
        case (.succeed(let expected), .success(let actual)):
            if let expected, let actual, expected != actual {
                fuzzFail("\(what()): value \(hex(actual, limit: 64)), model has \(hex(expected, limit: 64))")
            }
            return true
        case (.fail(let codes), .failure(let error)):
            if !codes.contains(error.code) {
                fuzzFail("\(what()): failed with \(errnoName(error.code)) (\(error)), model expects \(expectation)")
            }
            return false
        default:
            fuzzFail("\(what()): \(describe(result)), model expects \(expectation)")
        }
    }

    func describe(_ result: Result<[UInt8]?, MapError>) -> String {
        switch result {
        case .success(let value): value.map { "ok \(hex($0))" } ?? "ok"
        case .failure(let error): "\(errnoName(error.code))"
        }
    }

    func keyText(_ key: [UInt8]) -> String { model.isArray ? "[\(MapModel.index(key))]" : hex(key) }

    // MARK: Operations

    /// Runs operations until the input ends, then checks everything and drops the map.
    public func run(_ input: inout FuzzInput) {
        while !input.isExhausted, operations < maxOperations {
            step(&input)
            operations += 1
            guard map != nil else { return }
            checkCount("after operation \(operations)")
            hooks.afterOperation(model)
        }
        finish()
    }

    public func step(_ input: inout FuzzInput) {
        let opcode = input.byte() % 32
        // Recreating drops the map: no local reference to it may be alive here.
        if opcode == 14 { return recreate() }
        guard let map else { return }
        switch opcode {
        case 0: lookup(map, key(&input))
        case 1, 2, 15: update(map, key(&input), value(&input), Self.flags(&input), helper: false)
        case 3: delete(map, key(&input), helper: false)
        case 4: lookupAndDelete(map, key(&input))
        case 5: nextKey(map, &input, inPass: false)
        case 6: lookupInPlace(map, key(&input))
        case 7: writeInPlace(map, key(&input), value(&input))
        case 8: update(map, key(&input), value(&input), Self.flags(&input), helper: true)
        case 9: delete(map, key(&input), helper: true)
        case 10: wrongSizes(map, &input)
        case 11: verifyAll("operation \(operations)")
        case 12:
            if let extra = hooks.extraOperation { extra(&input) } else { lookup(map, key(&input)) }
        case 13:
            let key = input.bytes(keyLength)
            let value = input.bytes(valueSize)
            update(map, key, hooks.makeValue == nil ? value : self.value(&input), Self.flags(&input), helper: false)
        case 16: lookup(map, key(&input), flags: Self.elementFlags(&input))
        case 17: delete(map, key(&input), flags: Self.elementFlags(&input))
        case 18: lookupAndDelete(map, key(&input), flags: Self.elementFlags(&input))
        case 19: exchange(map, key(&input), value(&input), Self.flags(&input), &input)
        case 20: freeze(map, &input)
        case 21: nextKey(map, &input, inPass: true)
        case 22: passWithWrites(map, &input)
        case 23: batchStep(map, .lookup, &input)
        case 24: batchStep(map, .lookupAndDelete, &input)
        case 25: updateBatch(map, &input)
        case 26: deleteBatch(map, &input)
        case 27: garbageCursorBatch(map, &input)
        case 28: wrongSizesOfNewerCalls(map, &input)
        case 29: storageMapping(map, &input)
        case 30: wholeBatchPass(map, &input)
        default:
            update(map, key(&input), value(&input), .any, helper: false)
        }
    }

    func lookup(_ map: any RawMap, _ key: [UInt8], flags: MapElementFlags? = nil) {
        let keyBuffer = ExactBuffer(key), out = ExactBuffer(zeros: valueSize)
        let result: Result<[UInt8]?, MapError> = attempt { () throws(MapError) in
            if let flags {
                try map.lookup(key: keyBuffer.raw, into: out.mutableRaw, flags: flags)
            } else {
                try map.lookup(key: keyBuffer.raw, into: out.mutableRaw)
            }
            return out.bytes
        }
        check("lookup \(keyText(key))\(flags.map { " flags \($0.rawValue)" } ?? "")", model.lookup(key, flags: flags), result)
    }

    func update(_ map: any RawMap, _ key: [UInt8], _ value: [UInt8], _ flags: MapUpdateFlags, helper: Bool) {
        let expectation = model.update(key, value, flags: flags, helper: helper)
        let keyBuffer = ExactBuffer(key), valueBuffer = ExactBuffer(value)
        hooks.setPhase(helper, false)
        let result: Result<[UInt8]?, MapError> = attempt { () throws(MapError) in
            if helper {
                try Epoch.withSection { (section) throws(MapError) in
                    try map.update(key: keyBuffer.raw, value: valueBuffer.raw, flags: flags, in: section)
                }
            } else {
                try map.update(key: keyBuffer.raw, value: valueBuffer.raw, flags: flags)
            }
            return nil
        }
        hooks.setPhase(false, false)
        if check("\(helper ? "helper " : "")update \(keyText(key)) = \(hex(value)) \(flags)", expectation, result) {
            model.applyUpdate(key, value)
        }
    }

    /// An update that reports the value it replaced.
    func exchange(_ map: any RawMap, _ key: [UInt8], _ value: [UInt8], _ flags: MapUpdateFlags, _ input: inout FuzzInput) {
        let expectation = model.update(key, value, flags: flags)
        let displaced = model.exchangeDisplaced(key)
        let keyBuffer = ExactBuffer(key), valueBuffer = ExactBuffer(value), out = ExactBuffer(zeros: valueSize)
        hooks.setStaleFinds(true)
        let result = attempt { () throws(MapError) in
            try map.exchange(key: keyBuffer.raw, value: valueBuffer.raw, flags: flags, into: out.mutableRaw)
        }
        hooks.setStaleFinds(false)
        let what = "exchange \(keyText(key)) = \(hex(value)) \(flags)"
        if case .succeed = expectation, let refusal = displaced.refusal {
            // Stored, then the find callback refused the value it displaced: thrown.
            guard case .failure(let error) = result, error.code == refusal else {
                fuzzFail("\(what): expected the find callback's refusal \(refusal) after the store, got \(result)")
            }
            model.applyUpdate(key, value)
            return
        }
        let asValue: Result<[UInt8]?, MapError> = result.map { _ in nil }
        guard check(what, expectation, asValue), case .success(let replaced) = result else { return }
        trace("    replaced \(replaced) \(replaced ? hex(out.bytes) : "") (model: \(displaced.replaced) \(displaced.value.map { hex($0) } ?? ""))")
        fuzzCheck(replaced == displaced.replaced,
                  "\(what): reported replaced = \(replaced), model expects \(displaced.replaced)")
        if replaced, let expected = displaced.value {
            fuzzCheck(out.bytes == expected, "\(what): displaced \(hex(out.bytes, limit: 64)), model had \(hex(expected, limit: 64))")
        }
        model.applyUpdate(key, value)
    }

    func delete(_ map: any RawMap, _ key: [UInt8], helper: Bool = false, flags: MapElementFlags? = nil) {
        let expectation = model.delete(key, helper: helper, flags: flags)
        let keyBuffer = ExactBuffer(key)
        hooks.setPhase(helper, false)
        let result: Result<[UInt8]?, MapError> = attempt { () throws(MapError) in
            if helper {
                try Epoch.withSection { (section) throws(MapError) in try map.delete(key: keyBuffer.raw, in: section) }
            } else if let flags {
                try map.delete(key: keyBuffer.raw, flags: flags)
            } else {
                try map.delete(key: keyBuffer.raw)
            }
            return nil
        }
        hooks.setPhase(false, false)
        let what = "\(helper ? "helper " : "")delete \(keyText(key))\(flags.map { " flags \($0.rawValue)" } ?? "")"
        if check(what, expectation, result) { model.applyDelete(key) }
    }

    func lookupAndDelete(_ map: any RawMap, _ key: [UInt8], flags: MapElementFlags? = nil) {
        let expectation = model.lookupAndDelete(key, flags: flags)
        let keyBuffer = ExactBuffer(key), out = ExactBuffer(zeros: valueSize)
        let result: Result<[UInt8]?, MapError> = attempt { () throws(MapError) in
            if let flags {
                try map.lookupAndDelete(key: keyBuffer.raw, into: out.mutableRaw, flags: flags)
            } else {
                try map.lookupAndDelete(key: keyBuffer.raw, into: out.mutableRaw)
            }
            return out.bytes
        }
        if check("lookupAndDelete \(keyText(key))\(flags.map { " flags \($0.rawValue)" } ?? "")", expectation, result) {
            model.applyDelete(key)
        }
    }

    func lookupInPlace(_ map: any RawMap, _ key: [UInt8]) {
        let keyBuffer = ExactBuffer(key)
        hooks.setPhase(true, false)
        let result: Result<[UInt8]?, MapError> = attempt { () throws(MapError) in
            try Epoch.withSection { (section) throws(MapError) -> [UInt8]? in
                let stored = try map.lookupInPlace(key: keyBuffer.raw, in: section)
                fuzzCheck(stored.count == valueSize && stored.baseAddress != nil,
                          "lookupInPlace returned \(stored.count) bytes at \(String(describing: stored.baseAddress)), values are \(valueSize)")
                return Array(UnsafeRawBufferPointer(stored))
            }
        }
        hooks.setPhase(false, false)
        check("lookupInPlace \(keyText(key))", model.lookup(key, helper: true), result)
    }

    /// Helper mode as an eBPF program uses it: look up in place, write the new value there
    /// (around the lock word, holding it, when the value has one). Never on a
    /// `BPF_F_RDONLY_PROG` map: a verifier would refuse such a program.
    func writeInPlace(_ map: any RawMap, _ key: [UInt8], _ value: [UInt8]) {
        guard model.programWrite else { return lookupInPlace(map, key) }
        let keyBuffer = ExactBuffer(key)
        let expectation = model.lookup(key, helper: true)
        let lockOffset = model.lockOffset
        hooks.setPhase(true, false)
        let result: Result<[UInt8]?, MapError> = attempt { () throws(MapError) in
            try Epoch.withSection { (section) throws(MapError) -> [UInt8]? in
                let stored = try map.lookupInPlace(key: keyBuffer.raw, in: section)
                fuzzCheck(stored.count == valueSize, "lookupInPlace returned \(stored.count) bytes, values are \(valueSize)")
                let before = Array(UnsafeRawBufferPointer(stored))
                if let lockOffset {
                    MapValueLock.withLock(stored, offset: lockOffset) {
                        for index in 0..<value.count where index < lockOffset || index >= lockOffset + 4 {
                            stored[index] = value[index]
                        }
                    }
                } else {
                    value.withUnsafeBytes { stored.copyMemory(from: $0) }
                }
                return before
            }
        }
        hooks.setPhase(false, false)
        if check("write in place \(keyText(key)) = \(hex(value))", expectation, result) {
            model.applyInPlaceWrite(key, value)
        }
    }

    /// A get-next-key call from a cursor of the model, an absent key, or none.
    func nextKey(_ map: any RawMap, _ input: inout FuzzInput, inPass: Bool) {
        var cursor: [UInt8]?
        switch input.byte() % 4 {
        case 0: cursor = nil
        case 1: cursor = presentKey(&input)
        default: cursor = key(&input)
        }
        let result = nextKeyCall(map, after: cursor, inPass: inPass)
        if let problem = model.checkNextKey(cursor: cursor, result: result, inPass: inPass) { fuzzFail(problem) }
    }

    func nextKeyCall(_ map: any RawMap, after cursor: [UInt8]?, inPass: Bool) -> Result<[UInt8], MapError> {
        let cursorBuffer = cursor.map { ExactBuffer($0) }
        let out = ExactBuffer(zeros: keyLength)
        let result: Result<[UInt8], MapError> = attempt { () throws(MapError) in
            if inPass {
                try map.nextKeyInPass(after: cursorBuffer?.raw, into: out.mutableRaw)
            } else {
                try map.nextKey(after: cursorBuffer?.raw, into: out.mutableRaw)
            }
            return out.bytes
        }
        trace("  \(inPass ? "nextKeyInPass" : "nextKey") after \(cursor.map(keyText) ?? "nil") → \(model.describe(result))")
        return result
    }

    /// Freezes the map (sometimes inside a section: EBUSY), then checks that a user-mode
    /// write is refused and a helper-mode one is not.
    func freeze(_ map: any RawMap, _ input: inout FuzzInput) {
        let inSection = input.byte() % 4 == 0
        let expectation = model.freeze(inSection: inSection)
        let result: Result<[UInt8]?, MapError> = attempt { () throws(MapError) in
            if inSection {
                try Epoch.withSection { (_) throws(MapError) in try map.freeze() }
            } else {
                try map.freeze()
            }
            return nil
        }
        if check("freeze\(inSection ? " inside a section" : "")", expectation, result) { model.applyFreeze() }
        fuzzCheck(map.isFrozen == model.frozen, "isFrozen is \(map.isFrozen), model has \(model.frozen)")
        guard model.frozen else { return }
        // Frozen: a user-mode write is EPERM (before any callback), whatever it is; a
        // helper-mode one is not refused for the freeze (the model says what it answers).
        // (The helper write was promised by the comment above and not made: found by
        // review, 2026-12-05, sixteenth session.)
        let key = self.key(&input)
        update(map, key, value(&input), .any, helper: false)
        delete(map, key, helper: false)
        update(map, key, value(&input), .any, helper: true)
    }

    /// A call with a buffer of the wrong size (or none): EINVAL, nothing changed, and no
    /// byte read past the buffer. Helper-mode CRUD on a transforming provider's map is
    /// EOPNOTSUPP first; lookup-and-delete on an array is ENOTSUPP once the key is right;
    /// a refusal by the access flags may come first (two faults: either errno).
    func wrongSizes(_ map: any RawMap, _ input: inout FuzzInput) {
        let operation = input.byte() % 9
        let fault = input.byte() % 4  // 0: key, 1: value, 2: both, 3: key with no address
        let keyLength = self.keyLength
        func wrongLength(_ right: Int) -> Int {
            let choices = [0, right - 1, right + 1, right * 2, 600, 1, 4, 8]
            var length = choices[Int(input.byte()) % choices.count]
            if length == right || length < 0 { length = right + 3 }
            return length
        }
        let keyWrong = fault != 1 || [3, 6, 8].contains(operation)  // delete/inPlace/helper delete have no value
        let keyBuffer: ExactBuffer
        if fault == 3 {
            keyBuffer = ExactBuffer(nilBase: ())
        } else {
            keyBuffer = keyWrong ? ExactBuffer(input.bytes(wrongLength(keyLength))) : ExactBuffer(key(&input))
        }
        let valueWrong = fault == 1 || fault == 2
        let valueBuffer = valueWrong ? ExactBuffer(input.bytes(wrongLength(valueSize))) : ExactBuffer(value(&input))
        let outBuffer = valueWrong ? ExactBuffer(zeros: wrongLength(valueSize)) : ExactBuffer(zeros: valueSize)
        var codes: Set<Int32> = [EINVAL]
        let helperOperation = [6, 7, 8].contains(operation)
        if operation == 4, model.isArray { codes.insert(ENOTSUPP) }
        if let denied = accessFault(operation) { codes.insert(denied) }
        if helperOperation, model.transforms { codes = [EOPNOTSUPP] }
        let countBefore = map.count
        hooks.setPhase(helperOperation, false)
        let result: Result<[UInt8]?, MapError> = attempt { () throws(MapError) in
            switch operation {
            case 0: try map.lookup(key: keyBuffer.raw, into: outBuffer.mutableRaw)
            case 1: try map.update(key: keyBuffer.raw, value: valueBuffer.raw, flags: .any)
            case 2: try map.update(key: keyBuffer.raw, value: valueBuffer.raw, flags: .noExist)
            case 3: try map.delete(key: keyBuffer.raw)
            case 4: try map.lookupAndDelete(key: keyBuffer.raw, into: outBuffer.mutableRaw)
            case 5:
                // get-next-key: a wrong cursor, or a wrong output buffer.
                if keyWrong {
                    try map.nextKey(after: keyBuffer.raw, into: ExactBuffer(zeros: keyLength).mutableRaw)
                } else {
                    try map.nextKey(after: nil, into: ExactBuffer(zeros: wrongLength(keyLength)).mutableRaw)
                }
            case 6:
                try Epoch.withSection { (section) throws(MapError) in _ = try map.lookupInPlace(key: keyBuffer.raw, in: section) }
            case 7:
                try Epoch.withSection { (section) throws(MapError) in
                    try map.update(key: keyBuffer.raw, value: valueBuffer.raw, flags: .any, in: section)
                }
            default:
                try Epoch.withSection { (section) throws(MapError) in try map.delete(key: keyBuffer.raw, in: section) }
            }
            return nil
        }
        hooks.setPhase(false, false)
        check("wrong sizes (operation \(operation), fault \(fault), key \(keyBuffer.count), value \(valueBuffer.count))",
              .fail(codes), result)
        fuzzCheck(map.count == countBefore, "a refused call changed count from \(countBefore) to \(map.count)")
    }

    /// The errno the access flags refuse operation `operation` of ``wrongSizes(_:_:)`` with.
    func accessFault(_ operation: UInt8) -> Int32? {
        switch operation {
        case 0, 5: model.userRead ? nil : EPERM
        case 1, 2, 3: model.userWrite ? nil : EPERM
        case 4: model.userRead && model.userWrite ? nil : EPERM
        case 6: model.programRead ? nil : EACCES
        default: model.programWrite ? nil : EACCES
        }
    }

    /// Wrong buffers on the calls added with Linux 6.18's interface: exchange (its
    /// displaced-value buffer too), the flagged lookup and lookup-and-delete,
    /// get-next-key in a pass.
    func wrongSizesOfNewerCalls(_ map: any RawMap, _ input: inout FuzzInput) {
        let operation = input.byte() % 4
        let which = input.byte() % 3  // 0: key, 1: value (or out), 2: the displaced buffer / no address
        func wrongLength(_ right: Int) -> Int {
            let choices = [0, right - 1, right + 1, right * 2, 1, 8]
            var length = choices[Int(input.byte()) % choices.count]
            if length == right || length < 0 { length = right + 5 }
            return length
        }
        let key = ExactBuffer(which == 0 ? input.bytes(wrongLength(keyLength)) : self.key(&input))
        let value = ExactBuffer(which == 1 ? input.bytes(wrongLength(valueSize)) : self.value(&input))
        let out = which == 2 ? (input.bool() ? ExactBuffer(nilBase: ()) : ExactBuffer(zeros: wrongLength(valueSize)))
            : ExactBuffer(zeros: which == 1 ? wrongLength(valueSize) : valueSize)
        let flags = Self.elementFlags(&input)
        var codes: Set<Int32> = [EINVAL]
        switch operation {
        case 0:
            if !model.userWrite { codes.insert(EPERM) }
        case 1:
            if !model.userRead { codes.insert(EPERM) }
        case 2:
            if !model.userRead || !model.userWrite { codes.insert(EPERM) }
            if model.isArray { codes.insert(ENOTSUPP) }
        default:
            if !model.userRead { codes.insert(EPERM) }
        }
        let countBefore = map.count
        let result: Result<[UInt8]?, MapError> = attempt { () throws(MapError) in
            switch operation {
            case 0: _ = try map.exchange(key: key.raw, value: value.raw, flags: .any, into: out.mutableRaw)
            case 1: try map.lookup(key: key.raw, into: out.mutableRaw, flags: flags)
            case 2: try map.lookupAndDelete(key: key.raw, into: out.mutableRaw, flags: flags)
            default:
                if which == 0 {
                    try map.nextKeyInPass(after: key.raw, into: ExactBuffer(zeros: keyLength).mutableRaw)
                } else {
                    try map.nextKeyInPass(after: nil, into: ExactBuffer(zeros: wrongLength(keyLength)).mutableRaw)
                }
            }
            return nil
        }
        check("wrong sizes of call \(operation) (fault \(which), key \(key.count), value \(value.count), out \(out.count), flags \(flags.rawValue))",
              .fail(codes), result)
        fuzzCheck(map.count == countBefore, "a refused call changed count from \(countBefore) to \(map.count)")
    }

    func recreate() {
        guard recreations < 4 else { return }
        recreations += 1
        trace("  recreate the map")
        verifyAll("before recreating")
        drop()
        model = makeModel()
        batchPass = nil
        let map = makeMap()
        self.map = map
        hooks.mapCreated(map)
    }

    // MARK: Whole-map checks

    func checkCount(_ when: String) {
        guard let map else { return }
        fuzzCheck(map.count == model.count, "count is \(map.count), model has \(model.count) (\(when))")
    }

    /// Count, a lookup of every key the model has, and full get-next-key passes (`nextKey`
    /// and `nextKeyInPass`): every key exactly once (arrays: 0, 1, …, maxEntries - 1). A map
    /// user mode may not read (`BPF_F_WRONLY`) is read in helper mode instead.
    public func verifyAll(_ when: String) {
        guard let map else { return }
        checkCount(when)
        let keys: [[UInt8]]
        if model.isArray {
            // Every index of a small array (a write that spilled into a slot never written
            // shows there: fuzzing.md promises a lookup of every key); a big one's written
            // slots and its ends.
            var indices = Set(model.slots.keys)
            indices.insert(0)
            indices.insert(UInt32(model.maxEntries - 1))
            if model.maxEntries <= 4096 { indices.formUnion(0..<UInt32(model.maxEntries)) }
            keys = indices.sorted().map { MapModel.key(index: $0) }
        } else {
            keys = model.keys
        }
        guard model.userRead else {
            for key in keys { lookupInPlace(map, key) }
            if let problem = model.checkNextKey(cursor: nil, result: nextKeyCall(map, after: nil, inPass: false), inPass: false) {
                fuzzFail(problem + " (\(when))")
            }
            return
        }
        for key in keys {
            lookup(map, key)
            if model.lockOffset != nil { lookup(map, key, flags: .lock) }
        }
        fullPass(map, inPass: false, when)
        // (An array's nextKeyInPass is its nextKey: one pass over a big array is enough.)
        if !model.isArray || model.maxEntries <= 4096 { fullPass(map, inPass: true, when) }
    }

    /// One get-next-key pass from the start: every key exactly once, in a finite number of calls.
    func fullPass(_ map: any RawMap, inPass: Bool, _ when: String) {
        let name = inPass ? "nextKeyInPass" : "nextKey"
        var cursor: ExactBuffer?
        if model.isArray {
            // Linux's order: 0, 1, …, maxEntries - 1, then ENOENT.
            var expected: UInt32 = 0
            while true {
                let out = ExactBuffer(zeros: keyLength)
                do throws(MapError) {
                    if inPass { try map.nextKeyInPass(after: cursor?.raw, into: out.mutableRaw) }
                    else { try map.nextKey(after: cursor?.raw, into: out.mutableRaw) }
                } catch {
                    fuzzCheck(error.code == ENOENT, "array \(name) pass failed with \(error) at \(expected) (\(when))")
                    break
                }
                let index = MapModel.index(out.bytes)
                fuzzCheck(index == expected && Int(index) < model.maxEntries,
                          "array \(name) pass returned \(index), expected \(expected) of \(model.maxEntries) (\(when))")
                expected += 1
                cursor = out
            }
            fuzzCheck(Int(expected) == model.maxEntries,
                      "array \(name) pass ended after \(expected) of \(model.maxEntries) indices (\(when))")
            return
        }
        var seen: Set<[UInt8]> = []
        while true {
            let out = ExactBuffer(zeros: keyLength)
            do throws(MapError) {
                if inPass { try map.nextKeyInPass(after: cursor?.raw, into: out.mutableRaw) }
                else { try map.nextKey(after: cursor?.raw, into: out.mutableRaw) }
            } catch {
                fuzzCheck(error.code == ENOENT, "\(name) pass failed with \(error) after \(seen.count) keys (\(when))")
                break
            }
            let key = out.bytes
            fuzzCheck(seen.insert(key).inserted, "\(name) pass returned \(keyText(key)) twice (\(when))")
            fuzzCheck(seen.count <= model.count,
                      "\(name) pass returned more keys than the map has: \(seen.count) > \(model.count) (\(when))")
            cursor = out
        }
        fuzzCheck(seen == Set(model.entries.keys),
                  "\(name) pass found \(seen.count) keys, model has \(model.entries.count) (\(when)); missing: \(Set(model.entries.keys).subtracting(seen).map { hex($0) }), extra: \(seen.subtracting(model.entries.keys).map { hex($0) })")
    }

    /// Checks everything, then drops the map (outside any epoch section).
    public func finish() {
        guard map != nil else { return }
        verifyAll("end of input")
        drop()
    }

    func drop() {
        fuzzCheck(!Epoch.isActive, "the harness is inside an epoch section when it drops a map")
        releaseMappings()
        hooks.setPhase(false, true)
        map = nil
        hooks.setPhase(false, false)
        hooks.afterDrop(model)
    }
}
