import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// A pass of lookup (or lookup-and-delete) batches: where it resumes, what it returned.
struct BatchPass {
    let kind: BatchKind
    var cursor: MapBatchCursor?
    /// Keys returned so far: none may come twice in one pass.
    var seen: Set<[UInt8]> = []
    /// The model's keys when the pass started (nil: every index of an array), and how many
    /// removals it had logged.
    let presentAtStart: Set<[UInt8]>?
    let removalsAtStart: Int
    /// Started from no cursor: at its end it must have returned every key present throughout.
    let complete: Bool
    var calls = 0
}

/// How the batch buffers are laid out.
enum BufferMode: CustomStringConvertible {
    /// Exactly `count` elements (AddressSanitizer sees a write past them).
    case exact
    /// `count` + n elements, the tail filled with 0xCD, which the map must leave alone.
    case slack(Int)
    /// A byte short of `count` elements: EINVAL.
    case short
    /// No address at all (0 bytes).
    case none

    var description: String {
        switch self {
        case .exact: "exact"
        case .slack(let extra): "slack \(extra)"
        case .short: "short"
        case .none: "none"
        }
    }

    static func decode(_ input: inout FuzzInput) -> BufferMode {
        switch input.byte() % 10 {
        case 0, 1, 2, 3, 4, 5: .exact
        case 6, 7: .slack(1 + Int(input.byte() % 3))
        case 8: .short
        default: .none
        }
    }
}

/// What the model predicts a lookup batch returns, on maps whose batch walk is
/// get-next-key's order (all but the bucket-locked hash, which returns whole chains).
struct BatchPrediction {
    var elements: [(key: [UInt8], value: [UInt8])] = []
    /// An element whose lookup failed (not ENOENT): the call fails there.
    var stop: Int32?
    /// Elements the walk has beyond those returned.
    var moreRemain = false
}

/// The largest buffer a batch call gets (bigger counts get short buffers: EINVAL).
let maxBatchBufferBytes = 1 << 21

extension MapExerciser {
    // MARK: Decoding

    /// A batch `count`: small ones, 0, negative, the map's size and beyond, absurd.
    func batchCount(_ input: inout FuzzInput) -> Int {
        let choices = [1, 2, 3, 4, 5, 7, 8, 16, 64, 0, -1, model.count, model.count + 1, Int.max / 2, Int.max]
        return choices[Int(input.byte()) % choices.count]
    }

    /// Batch element flags: 0, BPF_F_LOCK, and invalid ones (BPF_NOEXIST / BPF_EXIST are EINVAL).
    func batchElementFlags(_ input: inout FuzzInput) -> MapElementFlags {
        switch input.byte() % 10 {
        case 0, 1, 2, 3, 4: []
        case 5, 6: .lock
        case 7: MapElementFlags(rawValue: 1)
        case 8: MapElementFlags(rawValue: 2)
        default: MapElementFlags(rawValue: input.u64())
        }
    }

    /// `batch.flags`: 0 (hash lookups require it), or not.
    func batchFlags(_ input: inout FuzzInput) -> UInt64 {
        switch input.byte() % 8 {
        case 0, 1, 2, 3, 4, 5: 0
        case 6: 1
        default: input.u64()
        }
    }

    /// An output buffer for `count` elements of `size` bytes.
    func outputBuffer(_ count: Int, _ size: Int, _ mode: BufferMode) -> ExactBuffer {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        if overflow || count < 0 || bytes > maxBatchBufferBytes { return ExactBuffer(zeros: 16) }
        switch mode {
        case .exact: return ExactBuffer(zeros: bytes)
        case .slack(let extra): return ExactBuffer(zeros: bytes + extra * size)
        case .short: return ExactBuffer(zeros: max(0, bytes - 1))
        case .none: return ExactBuffer(nilBase: ())
        }
    }

    /// An input buffer holding `elements` (packed), laid out by `mode`.
    func inputBuffer(_ elements: [[UInt8]], _ size: Int, _ mode: BufferMode) -> ExactBuffer {
        let bytes = elements.flatMap { $0 }
        switch mode {
        case .exact: return ExactBuffer(bytes)
        case .slack(let extra): return ExactBuffer(bytes + [UInt8](repeating: 0xEE, count: extra * size))
        case .short: return ExactBuffer(Array(bytes.dropLast()))
        case .none: return ExactBuffer(nilBase: ())
        }
    }

    // MARK: Lookup and lookup-and-delete batches

    func startPass(_ kind: BatchKind, from cursor: MapBatchCursor?, complete: Bool) -> BatchPass {
        // Arrays: every index (implied, not listed), but a transforming provider's find
        // skips the slots never written.
        let present: Set<[UInt8]>?
        if model.isArray {
            present = model.transforms ? Set(model.slots.keys.map { MapModel.key(index: $0) }) : nil
        } else {
            present = Set(model.entries.keys)
        }
        return BatchPass(kind: kind, cursor: cursor, presentAtStart: present, removalsAtStart: model.removals.count,
                         complete: complete)
    }

    /// One call of the pass in progress (or of a new one).
    func batchStep(_ map: any RawMap, _ kind: BatchKind, _ input: inout FuzzInput) {
        let selector = input.byte()
        var pass: BatchPass
        if let current = batchPass, current.kind == kind, selector % 4 != 2 {
            pass = current
        } else {
            pass = startPass(kind, from: nil, complete: true)
        }
        let count = batchCount(&input)
        let elementFlags = batchElementFlags(&input)
        let flags = batchFlags(&input)
        let mode = BufferMode.decode(&input)
        let goesOn = batchCall(map, &pass, count: count, elementFlags: elementFlags, flags: flags, mode: mode)
        batchPass = goesOn ? pass : nil
    }

    /// A whole pass of lookup (or lookup-and-delete) batches from the start, `count` at a time.
    func wholeBatchPass(_ map: any RawMap, _ input: inout FuzzInput) {
        let kind: BatchKind = input.bool() ? .lookupAndDelete : .lookup
        var count = batchCount(&input)
        if count <= 0 || count > 4096 { count = 1 + count & 7 }
        count = max(count, model.count / 64)  // at most some 64 calls
        let elementFlags: MapElementFlags = model.lockOffset != nil && input.bool() ? .lock : []
        var pass = startPass(kind, from: nil, complete: true)
        trace("  batch pass (\(kind), \(count) at a time)")
        // Big arrays (FuzzMapDefinitions makes them with up to 65,536 slots): one call.
        let calls = model.count > 4096 ? 1 : model.count + 8
        for _ in 0..<calls {
            guard batchCall(map, &pass, count: count, elementFlags: elementFlags, flags: 0, mode: .exact) else {
                batchPass = nil
                return
            }
        }
        batchPass = pass
        fuzzCheck(calls == 1, "a \(kind) batch pass of \(count) at a time did not end after \(calls) calls")
    }

    /// A batch from a cursor the map never handed out for this pass: wrong lengths, random
    /// bytes, a stale cursor (of an earlier pass, or of the map this one replaced), a key.
    /// It must fail with EINVAL or answer as from some place in the map — never crash, never
    /// return a key that is not there.
    func garbageCursorBatch(_ map: any RawMap, _ input: inout FuzzInput) {
        let cursorSize = model.cursorSize
        var bytes: [UInt8]
        switch input.byte() % 6 {
        case 0:
            let lengths = [0, 1, 3, 5, 8, cursorSize - 1, cursorSize + 1, cursorSize * 2]
            var length = lengths[Int(input.byte()) % lengths.count]
            if length == cursorSize || length < 0 { length = cursorSize + 1 }
            bytes = input.bytes(length)
        case 1:
            bytes = input.bytes(cursorSize)
        case 2:
            bytes = staleCursors.isEmpty ? input.bytes(cursorSize) : staleCursors[Int(input.byte()) % staleCursors.count].bytes
        case 3:
            bytes = withUnsafeBytes(of: input.pick([UInt32.max, 0x8000_0000, 1 << 22, 4096, 65535]).littleEndian) { Array($0) }
            if bytes.count != cursorSize { bytes = Array((bytes + [UInt8](repeating: 0xFF, count: cursorSize)).prefix(cursorSize)) }
        case 4:
            bytes = model.chainBatches || model.slotBatches ? input.bytes(4) : presentKey(&input)
        default:
            bytes = model.chainBatches || model.slotBatches ? input.bytes(4) : key(&input)
        }
        let kind: BatchKind = input.byte() % 3 == 0 ? .lookupAndDelete : .lookup
        var pass = startPass(kind, from: MapBatchCursor(bytes: bytes), complete: false)
        let count = batchCount(&input)
        let elementFlags = batchElementFlags(&input)
        trace("  batch from a foreign cursor \(hex(bytes))")
        let goesOn = batchCall(map, &pass, count: count, elementFlags: elementFlags, flags: 0, mode: .exact)
        batchPass = goesOn ? pass : nil
    }

    /// Runs one lookup or lookup-and-delete batch call from `pass.cursor` and checks it
    /// against the model (retrying with larger buffers after ENOSPC, as a caller must);
    /// applies removals; advances the pass. Returns whether the pass goes on.
    @discardableResult
    func batchCall(_ map: any RawMap, _ pass: inout BatchPass, count requested: Int, elementFlags: MapElementFlags,
                   flags: UInt64, mode requestedMode: BufferMode) -> Bool {
        var count = requested
        var mode = requestedMode
        let removing = pass.kind == .lookupAndDelete
        for _ in 0..<20 {
            let keys = outputBuffer(count, keyLength, mode)
            let values = outputBuffer(count, valueSize, mode)
            let cursor = pass.cursor
            let what = "\(pass.kind) batch of \(count) from \(cursor.map { hex($0.bytes) } ?? "nil") (element flags \(elementFlags.rawValue), flags \(flags), buffers \(mode): \(keys.count)/\(values.count) bytes)"
            let refusal = model.batchPrecheck(pass.kind, elementFlags: elementFlags, flags: flags, count: count,
                                              keyBytes: keys.count, valueBytes: values.count, cursor: cursor?.bytes)
            var prediction: BatchPrediction?
            if refusal == nil, count > 0, !model.chainBatches, !model.slotBatches {
                let predicted = predictBatch(map, pass.kind, from: cursor, count: count, elementFlags: elementFlags)
                prediction = predicted
            }
            let countBefore = map.count
            pass.calls += 1
            let result = attempt { () throws(MapError) -> MapBatchResult in
                removing
                    ? try map.lookupAndDeleteBatch(from: cursor, keys: keys.mutableRaw, values: values.mutableRaw, count: count,
                                                   elementFlags: elementFlags, flags: flags)
                    : try map.lookupBatch(from: cursor, keys: keys.mutableRaw, values: values.mutableRaw, count: count,
                                          elementFlags: elementFlags, flags: flags)
            }
            switch result {
            case .success(let outcome):
                trace("  \(what) → count \(outcome.count), \(outcome.error.map { errnoName($0.code) } ?? "no error"), cursor \(outcome.cursor.map { hex($0.bytes) } ?? "nil") (model: \(refusal.map(errnoName) ?? "a result"))")
            case .failure(let error):
                trace("  \(what) → \(errnoName(error.code)) (model: \(refusal.map(errnoName) ?? "a result"))")
            }
            if let refusal {
                guard case .failure(let error) = result, error.code == refusal else {
                    fuzzFail("\(what): \(describeBatch(result)), model expects \(errnoName(refusal))")
                }
                fuzzCheck(map.count == countBefore, "\(what): refused, but count went from \(countBefore) to \(map.count)")
                return false
            }
            let outcome: MapBatchResult
            switch result {
            case .success(let value): outcome = value
            case .failure(let error): fuzzFail("\(what): threw \(error), model expects a result")
            }
            if count == 0 {
                fuzzCheck(outcome.count == 0 && outcome.error == nil && outcome.cursor == cursor,
                          "\(what): count 0 answered \(describeBatch(result)), expected nothing done and the cursor back")
                return true
            }
            fuzzCheck(outcome.count >= 0 && outcome.count <= count, "\(what): count \(outcome.count) out of 0...\(count)")
            checkUntouched(keys, from: count * keyLength, what: "\(what): keys")
            checkUntouched(values, from: count * valueSize, what: "\(what): values")
            let keyBytes = keys.bytes, valueBytes = values.bytes
            let returned = (0..<outcome.count).map { index in
                (key: Array(keyBytes[index * keyLength ..< (index + 1) * keyLength]),
                 value: Array(valueBytes[index * valueSize ..< (index + 1) * valueSize]))
            }
            if let prediction {
                checkExact(outcome, returned, prediction, count: count, removing: removing, what)
            } else {
                checkChainBatch(outcome, returned, count: count, elementFlags: elementFlags, removing: removing, what)
            }
            // No key twice in one pass (also across calls) — but, in a slot sweep, one deleted
            // and inserted again during the pass (it may have taken a slot the pass has yet
            // to reach, as Linux allows for a re-inserted key).
            for (key, _) in returned where !pass.seen.insert(key).inserted {
                let reinserted = model.slotBatches && model.removals[pass.removalsAtStart...].contains(key)
                fuzzCheck(reinserted, "\(what): returned \(keyText(key)) a second time in one pass")
            }
            if removing { for (key, _) in returned { model.applyBatchRemoval(key) } }
            if let cursor = outcome.cursor {
                staleCursors.append(cursor)
                if staleCursors.count > 8 { staleCursors.removeFirst() }
            }
            // A provider's refusal with ENOENT is a failure, not the end (`isEndOfMap`): it takes
            // the default branch, as any other refusal.
            let code: Int32? = outcome.isEndOfMap ? ENOENT : (outcome.error?.code == ENOENT ? -1 : outcome.error?.code)
            switch code {
            case nil:
                fuzzCheck(outcome.cursor != nil, "\(what): no cursor to resume from")
                pass.cursor = outcome.cursor
                return true
            case ENOENT:
                checkPassComplete(pass, elementFlags: elementFlags, what)
                return false
            case ENOSPC:
                // A chain larger than the buffers: retry from the cursor with larger ones.
                fuzzCheck(count < model.count + (removing ? outcome.count : 0),
                          "\(what): ENOSPC with room for all \(model.count) entries")
                pass.cursor = outcome.cursor ?? cursor
                count = max(count * 2, 8)
                mode = .exact
            default:
                return false
            }
        }
        fuzzFail("ENOSPC after 20 retries with ever larger buffers")
    }

    func describeBatch(_ result: Result<MapBatchResult, MapError>) -> String {
        switch result {
        case .success(let outcome): "count \(outcome.count), \(outcome.error.map { errnoName($0.code) } ?? "no error")"
        case .failure(let error): "\(errnoName(error.code)) (\(error))"
        }
    }

    /// The bytes of `buffer` from `offset` on are still the 0xCD they were filled with.
    func checkUntouched(_ buffer: ExactBuffer, from offset: Int, what: @autoclosure () -> String) {
        guard buffer.count > offset, offset >= 0 else { return }
        let tail = buffer.bytes[offset...]
        fuzzCheck(tail.allSatisfy { $0 == 0xCD }, "\(what()) written past the \(offset) bytes of `count` elements")
    }

    /// The first key a batch walks from `cursor`: arrays by index (an index past the end
    /// restarts at 0, as get-next-key — but a custom map's generic batch walks with
    /// `nextKeyInPass`, which ends the pass there; a custom map's cursor that resumes at its
    /// index starts there); other maps but the bucket-locked hash by `nextKeyInPass` from the
    /// cursor (the last key returned), which the batch itself uses.
    func walkStart(_ map: any RawMap, from cursor: MapBatchCursor?) -> [UInt8]? {
        if model.isArray {
            var start = 0
            if let cursor {
                let index = Int(MapModel.index(cursor.bytes))
                let resumesAt = model.resumesAtKey(cursor.bytes) != nil
                start = index >= model.maxEntries ? (model.isCustom ? model.maxEntries : 0)
                    : resumesAt ? index : index + 1
            }
            return start < model.maxEntries ? MapModel.key(index: UInt32(start)) : nil
        }
        if let cursor, let key = model.resumesAtKey(cursor.bytes) {
            // A cursor that resumes at its key: the key itself if it is still there.
            return model.entries[key] != nil ? key : walkNext(map, after: key)
        }
        return walkNext(map, after: cursor?.bytes)
    }

    /// The key the walk visits after `key`.
    func walkNext(_ map: any RawMap, after key: [UInt8]?) -> [UInt8]? {
        if model.isArray {
            let next = Int(MapModel.index(key!)) + 1
            return next < model.maxEntries ? MapModel.key(index: UInt32(next)) : nil
        }
        switch nextKeyCall(map, after: key, inPass: true) {
        case .failure(let error):
            fuzzCheck(error.code == ENOENT, "nextKeyInPass failed with \(error) while predicting a batch")
            return nil
        case .success(let next):
            fuzzCheck(model.entries[next] != nil, "nextKeyInPass returned \(hex(next)), which is not in the map")
            return next
        }
    }

    /// The elements a lookup (or lookup-and-delete) batch returns from `cursor`: the walk's
    /// keys in order, skipping those whose lookup says ENOENT (a custom map's find), up to
    /// `count`; an element whose lookup fails otherwise (or whose removal the pre-deletion
    /// callback refuses, ENOENT included) fails the call.
    func predictBatch(_ map: any RawMap, _ kind: BatchKind, from cursor: MapBatchCursor?, count: Int,
                      elementFlags: MapElementFlags) -> BatchPrediction {
        var prediction = BatchPrediction()
        var walked: Set<[UInt8]> = []
        var next = walkStart(map, from: cursor)
        while let key = next {
            if prediction.elements.count == count {
                prediction.moreRemain = true
                break
            }
            fuzzCheck(walked.insert(key).inserted, "nextKeyInPass returned \(hex(key)) twice in one walk")
            let expectation = kind == .lookup ? model.lookup(key, flags: elementFlags)
                                              : model.lookupAndDelete(key, flags: elementFlags)
            switch expectation {
            case .succeed(let value):
                prediction.elements.append((key, value ?? []))
            case .fail(let codes):
                // A pre-deletion callback's refusal stops a removing batch whatever its code;
                // an ENOENT of the map's or of a find callback skips the element.
                if codes != [ENOENT] || (kind != .lookup && model.lookupAndDeleteIsRefused(key, flags: elementFlags)) {
                    prediction.stop = codes.min()
                    return prediction
                }
            }
            next = walkNext(map, after: key)
        }
        return prediction
    }

    /// Exactly the predicted elements, in order, and Linux's errno: ENOENT when the walk
    /// ended before `count`, none when more remain; a failing element fails the call with
    /// nothing counted (Linux's generic batch) — except in a custom map's lookup-and-delete
    /// batch, which stops there and returns the elements it removed before it.
    func checkExact(_ outcome: MapBatchResult, _ returned: [(key: [UInt8], value: [UInt8])], _ prediction: BatchPrediction,
                    count: Int, removing: Bool, _ what: String) {
        func show(_ elements: [(key: [UInt8], value: [UInt8])]) -> String {
            elements.map { "\(keyText($0.key))=\(hex($0.value, limit: 16))" }.joined(separator: " ")
        }
        if let stop = prediction.stop {
            let fixed = removing && model.isCustom
            let expectedCount = fixed ? prediction.elements.count : 0
            fuzzCheck(outcome.error?.code == stop && outcome.count == expectedCount,
                      "\(what): count \(outcome.count), \(outcome.error.map { errnoName($0.code) } ?? "no error"); model expects \(errnoName(stop)) with count \(expectedCount) (elements before it: \(show(prediction.elements)))")
            if fixed {
                fuzzCheck(returned.elementsEqual(prediction.elements, by: { $0.key == $1.key && $0.value == $1.value }),
                          "\(what): returned \(show(returned)), model expects \(show(prediction.elements))")
            }
            return
        }
        fuzzCheck(returned.elementsEqual(prediction.elements, by: { $0.key == $1.key && $0.value == $1.value }),
                  "\(what): returned \(show(returned)), model expects \(show(prediction.elements))")
        let error = outcome.error?.code
        if prediction.elements.count < count {
            fuzzCheck(error == ENOENT, "\(what): \(error.map(errnoName) ?? "no error") after the last element, expected ENOENT")
        } else if prediction.moreRemain {
            fuzzCheck(error == nil, "\(what): \(error.map(errnoName) ?? "no error") with more elements to come, expected none")
        } else {
            fuzzCheck(error == nil || error == ENOENT, "\(what): \(errnoName(error!)) at the end, expected none or ENOENT")
        }
    }

    /// The bucket-locked hash returns whole chains, whose layout the model does not know:
    /// every element must be in the map with its value, ENOSPC only with nothing copied,
    /// no error only with something copied. The lock-free hash's slot sweep (in-place
    /// values), in an order the model does not know either: the same, never ENOSPC, and no
    /// error only with the buffers full.
    func checkChainBatch(_ outcome: MapBatchResult, _ returned: [(key: [UInt8], value: [UInt8])], count: Int,
                         elementFlags: MapElementFlags, removing: Bool, _ what: String) {
        let error = outcome.error?.code
        fuzzCheck(error == nil || error == ENOENT || error == ENOSPC, "\(what): \(errnoName(error!))")
        if model.slotBatches {
            fuzzCheck(error != ENOSPC, "\(what): ENOSPC from a slot sweep")
            if error == nil { fuzzCheck(outcome.count == count, "\(what): no error with \(outcome.count) of \(count) elements") }
        }
        if error == ENOSPC { fuzzCheck(outcome.count == 0, "\(what): ENOSPC with \(outcome.count) elements") }
        if error == nil { fuzzCheck(outcome.count > 0, "\(what): no error and no element") }
        var inCall: Set<[UInt8]> = []
        for (key, value) in returned {
            fuzzCheck(inCall.insert(key).inserted, "\(what): returned \(keyText(key)) twice")
            let expectation = removing ? model.lookupAndDelete(key, flags: elementFlags) : model.lookup(key, flags: elementFlags)
            guard case .succeed(let expected) = expectation else {
                fuzzFail("\(what): returned \(keyText(key)) = \(hex(value)), model: \(expectation)")
            }
            fuzzCheck(expected == value, "\(what): returned \(keyText(key)) = \(hex(value, limit: 64)), model has \(hex(expected ?? [], limit: 64))")
        }
    }

    /// At the end of a pass that started from no cursor: every key present for the whole
    /// pass was returned (but those a custom map's callbacks skip).
    func checkPassComplete(_ pass: BatchPass, elementFlags: MapElementFlags, _ what: String) {
        guard pass.complete else { return }
        let removed = Set(model.removals[pass.removalsAtStart...])
        let present = pass.presentAtStart ?? Set(model.keys)
        // Skipped: keys whose lookup (lookup-and-delete) the model answers ENOENT — a custom
        // map's find saying ENOENT. (A pre-deletion refusal stops the batch instead, with a
        // marked error that does not end the pass: `batchCall` checks a pass only at its end.)
        let required = present.subtracting(removed).filter { key in
            let expectation = pass.kind == .lookupAndDelete ? model.lookupAndDelete(key, flags: elementFlags)
                                                            : model.lookup(key, flags: elementFlags)
            if case .fail(let codes) = expectation, codes == [ENOENT] { return false }
            return true
        }
        let missing = required.subtracting(pass.seen)
        fuzzCheck(missing.isEmpty, "\(what): the pass ended (ENOENT) after \(pass.calls) calls without \(missing.count) keys present throughout: \(missing.prefix(8).map(keyText))")
    }

    // MARK: Update and delete batches

    /// An update batch of up to 11 (sometimes up to 48) elements, each a user-mode update
    /// with the element flags; it stops at the first failure, count = elements stored.
    func updateBatch(_ map: any RawMap, _ input: inout FuzzInput) {
        let selector = input.byte()
        let elements = selector >= 0xF0 ? Int(selector & 0x0F) * 3 : Int(selector % 12)
        let keys = (0..<elements).map { _ in key(&input) }
        let values = (0..<elements).map { _ in value(&input) }
        let elementFlags = batchElementFlags(&input)
        let flags = batchFlags(&input)
        let mode = BufferMode.decode(&input)
        var count = elements
        if input.byte() % 16 == 0 { count = input.bool() ? -1 : elements + 1 }
        let keyBuffer = inputBuffer(keys, keyLength, mode), valueBuffer = inputBuffer(values, valueSize, mode)
        let what = "update batch of \(count) (element flags \(elementFlags.rawValue), buffers \(mode): \(keyBuffer.count)/\(valueBuffer.count) bytes)"
        let refusal = model.batchPrecheck(.update, elementFlags: elementFlags, flags: flags, count: count,
                                          keyBytes: keyBuffer.count, valueBytes: valueBuffer.count, cursor: nil)
        // The model, element by element (the map must agree, or the input fails).
        var done = 0
        var failure: Expectation?
        if refusal == nil {
            // The elements as the map reads them (a buffer with room to spare holds filler past `elements`).
            let keyBytes = keyBuffer.bytes, valueBytes = valueBuffer.bytes
            let updateFlags = MapUpdateFlags(rawValue: elementFlags.rawValue)
            while done < count {
                let key = Array(keyBytes[done * keyLength ..< (done + 1) * keyLength])
                let value = Array(valueBytes[done * valueSize ..< (done + 1) * valueSize])
                let expectation = model.update(key, value, flags: updateFlags)
                if expectation.failed { failure = expectation; break }
                model.applyUpdate(key, value)
                done += 1
            }
        }
        let result = attempt { () throws(MapError) -> MapBatchResult in
            try map.updateBatch(keys: keyBuffer.raw, values: valueBuffer.raw, count: count, elementFlags: elementFlags, flags: flags)
        }
        checkWriteBatch(result, refusal: refusal, done: done, failure: failure, what)
    }

    /// A delete batch of up to 11 keys (present ones, absent ones, repeats): stops at the
    /// first failure (ENOENT for an absent key). Arrays: ENOTSUPP.
    func deleteBatch(_ map: any RawMap, _ input: inout FuzzInput) {
        let elements = Int(input.byte() % 12)
        let keys = (0..<elements).map { _ in input.byte() % 4 == 0 ? key(&input) : presentKey(&input) }
        let elementFlags = batchElementFlags(&input)
        let flags = batchFlags(&input)
        let mode = BufferMode.decode(&input)
        var count = elements
        if input.byte() % 16 == 0 { count = input.bool() ? -1 : elements + 1 }
        let keyBuffer = inputBuffer(keys, keyLength, mode)
        let what = "delete batch of \(count) (element flags \(elementFlags.rawValue), buffer \(mode): \(keyBuffer.count) bytes)"
        let refusal = model.batchPrecheck(.delete, elementFlags: elementFlags, flags: flags, count: count,
                                          keyBytes: keyBuffer.count, valueBytes: 0, cursor: nil)
        var done = 0
        var failure: Expectation?
        if refusal == nil {
            let keyBytes = keyBuffer.bytes
            while done < count {
                let key = Array(keyBytes[done * keyLength ..< (done + 1) * keyLength])
                let expectation = model.delete(key)
                if expectation.failed { failure = expectation; break }
                model.applyDelete(key)
                done += 1
            }
        }
        let result = attempt { () throws(MapError) -> MapBatchResult in
            try map.deleteBatch(keys: keyBuffer.raw, count: count, elementFlags: elementFlags, flags: flags)
        }
        checkWriteBatch(result, refusal: refusal, done: done, failure: failure, what)
    }

    func checkWriteBatch(_ result: Result<MapBatchResult, MapError>, refusal: Int32?, done: Int, failure: Expectation?,
                         _ what: String) {
        trace("  \(what) → \(describeBatch(result)) (model: \(refusal.map(errnoName) ?? "\(done) done, \(failure.map { "\($0)" } ?? "no error")"))")
        if let refusal {
            guard case .failure(let error) = result, error.code == refusal else {
                fuzzFail("\(what): \(describeBatch(result)), model expects \(errnoName(refusal))")
            }
            return
        }
        guard case .success(let outcome) = result else { fuzzFail("\(what): \(describeBatch(result)), model expects a result") }
        fuzzCheck(outcome.count == done, "\(what): count \(outcome.count), model did \(done) (\(failure.map { "then \($0)" } ?? "all"))")
        switch (failure, outcome.error) {
        case (nil, nil): break
        case (.fail(let codes)?, let error?):
            fuzzCheck(codes.contains(error.code), "\(what): stopped with \(errnoName(error.code)), model expects \(failure!)")
        default:
            fuzzFail("\(what): \(describeBatch(result)), model expects \(failure.map { "\($0)" } ?? "no error") after \(done)")
        }
    }

    // MARK: Get-next-key passes with writes in between

    /// A get-next-key pass (`nextKey` or `nextKeyInPass`) with updates and deletes between
    /// the calls, the cursor itself deleted sometimes: no key may come twice (`nextKey` may
    /// restart once its cursor is gone), every key present for the whole pass must come,
    /// and every key returned must be in the map then.
    func passWithWrites(_ map: any RawMap, _ input: inout FuzzInput) {
        let inPass = input.bool()
        guard model.userRead, !model.isArray else { return nextKey(map, &input, inPass: inPass) }
        var pass = startPass(.lookup, from: nil, complete: true)
        var cursor: [UInt8]?
        var mayRepeat = false
        trace("  \(inPass ? "nextKeyInPass" : "nextKey") pass with writes")
        for step in 0..<(2 * model.maxEntries + 16) {
            switch input.byte() % 8 {
            case 4:
                if let cursor { delete(map, cursor) }
            case 5:
                delete(map, presentKey(&input))
            case 6:
                update(map, key(&input), value(&input), .any, helper: false)
            case 7:
                update(map, presentKey(&input), value(&input), .exist, helper: false)
            default:
                break
            }
            if let cursor, model.entries[cursor] == nil { mayRepeat = mayRepeat || !inPass }
            let result = nextKeyCall(map, after: cursor, inPass: inPass)
            if let problem = model.checkNextKey(cursor: cursor, result: result, inPass: inPass) {
                fuzzFail(problem + " (step \(step) of a pass with writes)")
            }
            guard case .success(let key) = result else {
                if !mayRepeat || inPass {
                    checkPassComplete(pass, elementFlags: [], "\(inPass ? "nextKeyInPass" : "nextKey") pass with writes")
                } else {
                    checkPassComplete(pass, elementFlags: [], "nextKey pass with writes (restarted)")
                }
                return
            }
            if !pass.seen.insert(key).inserted, !mayRepeat {
                fuzzFail("\(inPass ? "nextKeyInPass" : "nextKey") pass with writes returned \(keyText(key)) twice (step \(step))")
            }
            cursor = key
        }
        // Only a restarting pass (its cursor deleted) may go on this long.
        fuzzCheck(mayRepeat, "a \(inPass ? "nextKeyInPass" : "nextKey") pass with writes did not end")
    }

    // MARK: Storage mappings (BPF_F_MMAPABLE arrays)

    /// Maps an array's storage (readable or writable), reads and writes values through a
    /// mapping it holds, or unmaps one; on other maps, a freeze inside a section (EBUSY).
    func storageMapping(_ map: any RawMap, _ input: inout FuzzInput) {
        guard let array = map as? RawArrayMap, !model.isCustom else {
            let inSection = model.freeze(inSection: true)
            let result: Result<[UInt8]?, MapError> = attempt { () throws(MapError) in
                try Epoch.withSection { (_) throws(MapError) in try map.freeze() }
                return nil
            }
            if check("freeze inside a section", inSection, result) { model.applyFreeze() }
            return
        }
        let stride = (valueSize + 7) & ~7
        switch input.byte() % 6 {
        case 0, 1:
            let writable = input.bool()
            let expectation: Expectation
            // Linux's order: the fd's access mode (EACCES), then bpf_map_mmap (ENOTSUPP for a
            // lock word; writable: EPERM frozen, EACCES for RDONLY_PROG), then
            // array_map_mmap (EINVAL without BPF_F_MMAPABLE).
            if !model.userRead { expectation = .fail(EACCES) }
            else if writable, model.flags.contains(.readOnly) { expectation = .fail(EACCES) }
            else if model.lockOffset != nil { expectation = .fail(ENOTSUPP) }
            else if writable, model.frozen { expectation = .fail(EPERM) }
            else if writable, !model.programWrite { expectation = .fail(EACCES) }
            else if !model.flags.contains(.mmapable) { expectation = .fail(EINVAL) }
            else { expectation = .succeed(value: nil) }
            let result = attempt { () throws(MapError) in try array.mapStorage(writable: writable) }
            if check("mapStorage(writable: \(writable))", expectation, result.map { _ in nil }), case .success(let mapping) = result {
                fuzzCheck(mapping.bytes.count == model.maxEntries * stride && Int(bitPattern: mapping.bytes.baseAddress) % 4096 == 0,
                          "a mapping of \(mapping.bytes.count) bytes at \(String(describing: mapping.bytes.baseAddress)), expected \(model.maxEntries) × \(stride), page-aligned")
                if writable { model.writableMappings += 1 }
                mappings.append(mapping)
                if mappings.count > 3 { unmap(0) }
            }
        case 2, 3:
            // Read through a mapping: Linux's layout, value i at i × round_up(valueSize, 8).
            guard let mapping = mappings.last else { return }
            let index = Int(input.byte()) % model.maxEntries
            let bytes = Array(mapping.bytes[index * stride ..< index * stride + valueSize])
            let expected = model.stored(MapModel.key(index: UInt32(index))) ?? []
            trace("  read [\(index)] through a mapping → \(hex(bytes)) (model: \(hex(expected)))")
            fuzzCheck(bytes == expected, "mapping: [\(index)] reads \(hex(bytes, limit: 64)), model has \(hex(expected, limit: 64))")
        case 4:
            guard let mapping = mappings.last(where: { $0.writable }) else { return }
            let index = Int(input.byte()) % model.maxEntries
            let value = self.value(&input)
            trace("  write [\(index)] = \(hex(value)) through a mapping")
            for (offset, byte) in value.enumerated() { mapping.bytes[index * stride + offset] = byte }
            model.applyInPlaceWrite(MapModel.key(index: UInt32(index)), value)
        default:
            if !mappings.isEmpty { unmap(Int(input.byte()) % mappings.count) }
        }
    }

    func unmap(_ index: Int) {
        let mapping = mappings.remove(at: index)
        trace("  unmap a \(mapping.writable ? "writable" : "readable") mapping")
        mapping.unmap()
        if mapping.writable { model.writableMappings -= 1 }
    }

    func releaseMappings() {
        while !mappings.isEmpty { unmap(mappings.count - 1) }
    }
}
