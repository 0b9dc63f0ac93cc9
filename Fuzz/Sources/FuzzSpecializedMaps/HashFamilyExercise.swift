import CFuzzSupport
import FuzzSupport
import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH against a model of the keys that may be
/// present. A map that evicts (the LRU types) drops one key other than the one written when
/// a new key comes into a full map — which one cannot be predicted — so the model keeps
/// `known`, every key that may be present with its value, `sure`, the keys certainly
/// present (no eviction since they were last seen), and `undiscovered`, how many known keys
/// have been evicted without the model seeing which. On one thread the count is then exact
/// (`known.count - undiscovered`) after every operation: an insert into a full map evicts
/// exactly one entry (the count stays at `maxEntries`), an insert into a map that is not
/// full and a replace evict none, a failed write evicts none. A found key must be known,
/// with its last value; a key not found must not be sure (and, known, was one of the
/// evictions); a written key is present right after. Passes (get-next-key, lookup batches)
/// learn the exact contents again. Without eviction (PERCPU_HASH) `undiscovered` stays 0,
/// `sure` is every known key, and a new key into a full map is E2BIG.
final class HashFamilyExercise {
    let map: any RawMap
    /// The per-CPU view of `map`, for PERCPU_HASH and LRU_PERCPU_HASH.
    let perCPU: RawPerCPUHashMap?
    let evicts: Bool
    let keySize: Int
    let valueSize: Int
    /// A user-mode value: `valueSize`, or every possible CPU's for the per-CPU types.
    let userSize: Int
    let maxEntries: Int
    var known: [[UInt8]: [UInt8]] = [:]
    var sure: Set<[UInt8]> = []
    /// Known keys evicted without the model seeing which.
    var undiscovered = 0
    /// Every key ever written (a get-next-key cursor never written must restart the pass).
    var everWritten: Set<[UInt8]> = []
    var frozen = false

    init(map: any RawMap) {
        self.map = map
        perCPU = map as? RawPerCPUHashMap
        evicts = map.definition.type == .lruHash || map.definition.type == .lruPerCPUHash
        keySize = map.definition.keySize
        valueSize = map.definition.valueSize
        userSize = perCPU?.userValueSize ?? map.definition.valueSize
        maxEntries = map.definition.maxEntries
    }

    var cpus: Int { perCPU?.possibleCPUCount ?? 1 }
    var slotSize: Int { userSize / cpus }

    // MARK: The model

    /// The map answered that `key` holds `value` (or, `nil`, that it is absent).
    func observed(_ key: [UInt8], _ value: [UInt8]?, _ what: String) {
        guard let value else {
            fuzzCheck(!sure.contains(key), "\(what): \(hex(key)) not found, but it cannot have been evicted")
            if known.removeValue(forKey: key) != nil {
                // One of the evictions the model could not place.
                undiscovered -= 1
                fuzzCheck(undiscovered >= 0, "\(what): \(hex(key)) not found, one more key gone than inserts into a full map evicted")
            }
            return
        }
        guard let expected = known[key] else { fuzzFail("\(what): \(hex(key)) found (\(hex(value))), never written or gone") }
        fuzzCheck(value == expected, "\(what): \(hex(key)) holds \(hex(value)), expected \(hex(expected))")
        sure.insert(key)
    }

    /// A write of `key` succeeded, with `countBefore` entries before it: accounts for what
    /// it evicted, from the count after it.
    func written(_ key: [UInt8], countBefore: Int, _ what: String) {
        let count = map.count
        if sure.contains(key) {
            fuzzCheck(count == countBefore, "\(what): a replace changed the count from \(countBefore) to \(count)")
        } else if known[key] == nil || countBefore < maxEntries {
            // A new key (or a known one, maybe evicted, into a map with room: the count tells).
            if count == countBefore + 1 {
                if known[key] != nil { undiscovered -= 1 }  // it had been evicted
                fuzzCheck(undiscovered >= 0 && countBefore < maxEntries, "\(what): the count went from \(countBefore) to \(count)")
            } else {
                fuzzCheck(count == countBefore && (known[key] != nil || countBefore == maxEntries),
                          "\(what): the count went from \(countBefore) to \(count) (\(maxEntries) at most)")
                if known[key] == nil {
                    // Into a full map: exactly one other entry evicted.
                    fuzzCheck(evicts, "\(what): a new key went into a full map that does not evict")
                    trace("    (a full map: another key was evicted)")
                    undiscovered += 1
                    sure = []
                }
            }
        } else {
            // A known key, maybe evicted, into a full map: replaced, or inserted evicting
            // another; either way one known key is gone unseen as before, and the count stays.
            fuzzCheck(count == countBefore, "\(what): the count went from \(countBefore) to \(count) in a full map")
            sure = []
        }
    }

    func removed(_ key: [UInt8]) {
        known[key] = nil
        sure.remove(key)
    }

    func checkCount() {
        let count = map.count
        fuzzCheck(count <= maxEntries, "count \(count) above maxEntries \(maxEntries)")
        fuzzCheck(count == known.count - undiscovered && count >= sure.count,
                  "count \(count), with \(known.count) keys known, \(undiscovered) of them evicted unseen, \(sure.count) certain")
    }

    /// Reads `key` back in user mode (nil: absent).
    func readBack(_ key: [UInt8]) -> [UInt8]? {
        let keyBuffer = ExactBuffer(key), buffer = output(userSize)
        let result = errnoOf { () throws(MapError) in try map.lookup(key: keyBuffer.raw, into: buffer.mutableRaw) }
        if result == ENOENT { return nil }
        expect(result, 0, "read back \(hex(key))")
        return buffer.bytes
    }

    // MARK: Operations

    func step(_ frame: inout OperationFrame) {
        switch frame.opcode % 12 {
        case 0, 1, 2:  // user-mode update
            let key = fuzzHashKey(&frame.operands, size: keySize)
            let value = fuzzValue(&frame.operands, size: userSize)
            let flags = frame.opcode % 12 == 2 ? fuzzUpdateFlags(&frame.operands) : .any
            update(key, value, flags: flags, helper: false)

        case 3:  // helper-mode update: the value, or the calling CPU's value
            let key = fuzzHashKey(&frame.operands, size: keySize)
            let value = fuzzValue(&frame.operands, size: valueSize)
            update(key, value, flags: fuzzUpdateFlags(&frame.operands), helper: true)

        case 4:  // user-mode lookup
            let key = fuzzHashKey(&frame.operands, size: keySize)
            trace("  lookup \(hex(key))")
            observed(key, readBack(key), "lookup")

        case 5:  // in place: the value, or a chosen CPU's value
            let key = fuzzHashKey(&frame.operands, size: keySize)
            let cpu = Int(frame.operands.byte()) % (RawPerCPUArrayMap.cpuIDLimit + 1)
            trace("  lookupInPlace \(hex(key))" + (perCPU == nil ? "" : " cpu \(cpu)"))
            lookupInPlace(key, cpu: cpu)

        case 6:  // delete, in either mode
            let key = fuzzHashKey(&frame.operands, size: keySize)
            let helper = frame.operands.bool()
            trace("  \(helper ? "helper " : "")delete \(hex(key))")
            let keyBuffer = ExactBuffer(key)
            let result = errnoOf { () throws(MapError) in
                if helper {
                    try Epoch.withSection { section throws(MapError) in try map.delete(key: keyBuffer.raw, in: section) }
                } else {
                    try map.delete(key: keyBuffer.raw)
                }
            }
            if frozen && !helper { return expect(result, EPERM, "delete from a frozen map") }
            if result == ENOENT { return observed(key, nil, "delete") }
            expect(result, 0, "delete \(hex(key))")
            fuzzCheck(known[key] != nil, "delete of \(hex(key)) succeeded, never written or gone")
            removed(key)

        case 7:  // lookup-and-delete
            let key = fuzzHashKey(&frame.operands, size: keySize)
            trace("  lookup-and-delete \(hex(key))")
            let keyBuffer = ExactBuffer(key), buffer = output(userSize)
            let result = errnoOf { () throws(MapError) in try map.lookupAndDelete(key: keyBuffer.raw, into: buffer.mutableRaw) }
            if frozen { return expect(result, EPERM, "lookup-and-delete on a frozen map") }
            if result == ENOENT { return observed(key, nil, "lookup-and-delete") }
            expect(result, 0, "lookup-and-delete \(hex(key))")
            observed(key, buffer.bytes, "lookup-and-delete")
            removed(key)

        case 8:  // get-next-key from a key or from none: a key that may be present, or the end
            let none = frame.operands.byte() % 4 == 0
            let key = fuzzHashKey(&frame.operands, size: keySize)
            trace("  get-next-key after \(none ? "nothing" : hex(key))")
            let keyBuffer = ExactBuffer(key), next = output(keySize)
            let result = errnoOf { () throws(MapError) in try map.nextKey(after: none ? nil : keyBuffer.raw, into: next.mutableRaw) }
            if result == ENOENT {
                // The end: from nothing or from a key never written (a restart), only on an
                // empty map.
                if none || !everWritten.contains(key) {
                    fuzzCheck(map.count == 0, "get-next-key from \(none ? "the start" : "a key never written"): ENOENT with \(map.count) keys")
                }
                return
            }
            expect(result, 0, "get-next-key")
            fuzzCheck(known[next.bytes] != nil, "get-next-key returned \(hex(next.bytes)), never written or gone")
            fuzzCheck(none || next.bytes != key, "get-next-key after \(hex(key)) returned it again")

        case 9:  // a whole pass: get-next-key or lookup batches; learns the exact contents
            let chunk = 1 + Int(frame.operands.byte() % 6)
            let batches = frame.operands.bool()
            trace("  \(batches ? "lookup batch pass, \(chunk) a call" : "get-next-key pass")")
            let limit = maxEntries + 1
            let elements: [(key: [UInt8], value: [UInt8]?)] = batches
                ? lookupBatchPass(map, keySize: keySize, valueSize: userSize, chunk: chunk, limit: limit).map { ($0.key, $0.value) }
                : nextKeyPass(map, keySize: keySize, limit: limit).map { ($0, nil) }
            let keys = Set(elements.map(\.key))
            fuzzCheck(keys.count == elements.count, "a pass returned a key twice: \(elements.map { hex($0.key) })")
            fuzzCheck(keys.count == map.count, "a pass returned \(keys.count) keys, count \(map.count)")
            for (key, value) in elements {
                guard let expected = known[key] else { fuzzFail("a pass returned \(hex(key)), never written or gone") }
                if let value { fuzzCheck(value == expected, "a lookup batch gave \(hex(key)) \(hex(value)), expected \(hex(expected))") }
            }
            for key in sure { fuzzCheck(keys.contains(key), "a pass missed \(hex(key)), which cannot have been evicted") }
            known = known.filter { keys.contains($0.key) }
            sure = keys
            undiscovered = 0

        case 10:  // wrong sizes
            let choice = frame.operands.byte() % 3
            trace("  wrong size \(choice)")
            let key = ExactBuffer(MapExerciser.derivedKey(0, size: keySize))
            let result = errnoOf { () throws(MapError) in
                switch choice {
                case 0: try map.lookup(key: ExactBuffer(zeros: keySize + 1).raw, into: output(userSize).mutableRaw)
                case 1: try map.lookup(key: key.raw, into: output(userSize + 1).mutableRaw)
                default: try map.update(key: key.raw, value: ExactBuffer(zeros: userSize + 1).raw, flags: .any)
                }
            }
            expect(result, frozen && choice == 2 ? EPERM : EINVAL, "wrong size \(choice)")

        default:
            trace("  freeze")
            freezeStep(map, frozen: &frozen)
        }
    }

    func update(_ key: [UInt8], _ value: [UInt8], flags: MapUpdateFlags, helper: Bool) {
        trace("  \(helper ? "helper " : "")update \(hex(key)) = \(hex(value)) flags \(flags)")
        let what = "\(helper ? "helper " : "")update \(hex(key)) flags \(flags)"
        let keyBuffer = ExactBuffer(key), buffer = ExactBuffer(value)
        let countBefore = map.count
        // A helper write goes to the CPU the thread is on: pinned there for the call (a
        // thread that cannot be pinned may move, and its write may land on any one CPU).
        let pinned = helper && perCPU != nil ? rcf_pin_to_current_cpu() : -1
        let result = errnoOf { () throws(MapError) in
            defer { if helper && perCPU != nil { rcf_unpin() } }
            if helper {
                try Epoch.withSection { section throws(MapError) in
                    try map.update(key: keyBuffer.raw, value: buffer.raw, flags: flags, in: section)
                }
            } else {
                try map.update(key: keyBuffer.raw, value: buffer.raw, flags: flags)
            }
        }
        if frozen && !helper { return expect(result, EPERM, "\(what) on a frozen map") }
        if flags.rawValue > 2 { return expect(result, EINVAL, what) }
        switch result {
        case EEXIST:
            fuzzCheck(flags == .noExist && known[key] != nil, "\(what): EEXIST, but \(hex(key)) was never written or is gone")
            sure.insert(key)
            return
        case ENOENT:
            fuzzCheck(flags == .exist, "\(what): ENOENT")
            return observed(key, nil, what)
        case E2BIG:
            fuzzCheck(!evicts && known[key] == nil && known.count == maxEntries && flags != .exist,
                      "\(what): E2BIG with \(known.count) of \(maxEntries) entries")
            return
        default:
            expect(result, 0, what)
        }
        fuzzCheck(!(flags == .noExist && sure.contains(key)), "\(what) succeeded on a key surely present")
        fuzzCheck(!(flags == .exist && known[key] == nil), "\(what) succeeded on a key never written or gone")
        fuzzCheck(evicts || flags == .exist || known[key] != nil || known.count < maxEntries, "\(what): a new key into a full map")
        let before = known[key], wasSure = sure.contains(key)
        everWritten.insert(key)
        written(key, countBefore: countBefore, what)
        // The key just written is present right after, with what was written.
        guard let now = readBack(key) else { fuzzFail("\(what): the key just written is absent") }
        if helper && perCPU != nil {
            let cpu = pinned >= 0 && RawPerCPUArrayMap.possibleCPUsAreDense ? Int(pinned) : nil
            checkOneCPUWritten(now: now, before: before, certain: wasSure, value: value, cpu: cpu, what)
        } else {
            fuzzCheck(now == value, "\(what): read back \(hex(now))")
        }
        known[key] = now
        sure.insert(key)
    }

    /// After a helper-mode write of `value` for one CPU — `cpu` when the thread was pinned
    /// to it for the call, else any: with the key present before (`before`,
    /// `certain`), that CPU's first `valueSize` bytes are `value`, its padding and the other
    /// CPUs' values unchanged; with the key new, that CPU holds `value` and the others zeros;
    /// with the key maybe evicted, either.
    func checkOneCPUWritten(now: [UInt8], before: [UInt8]?, certain: Bool, value: [UInt8], cpu written: Int?,
                            _ what: String) {
        let slots = (0..<cpus).map { Array(now[$0 * slotSize..<($0 + 1) * slotSize]) }
        let padded = value + [UInt8](repeating: 0, count: slotSize - valueSize)
        let candidates = written.map { [$0] } ?? Array(0..<cpus)
        let fresh = candidates.contains { cpu in
            slots.enumerated().allSatisfy { $0.offset == cpu ? $0.element == padded : $0.element.allSatisfy { $0 == 0 } }
        }
        guard let before else { return fuzzCheck(fresh, "\(what): a new key's values \(hex(now))") }
        let kept = candidates.contains { cpu in
            slots.enumerated().allSatisfy { slot in
                let old = Array(before[slot.offset * slotSize..<(slot.offset + 1) * slotSize])
                return slot.offset == cpu ? slot.element == value + old[valueSize...] : slot.element == old
            }
        }
        fuzzCheck(kept || (!certain && fresh), "\(what): values \(hex(now)) from \(hex(before))")
    }

    func lookupInPlace(_ key: [UInt8], cpu: Int) {
        let keyBuffer = ExactBuffer(key)
        var bytes: [UInt8] = []
        let result = errnoOf { () throws(MapError) in
            try Epoch.withSection { section throws(MapError) in
                let found = if let perCPU {
                    try perCPU.lookupInPlace(key: keyBuffer.raw, cpu: cpu, in: section)
                } else {
                    try map.lookupInPlace(key: keyBuffer.raw, in: section)
                }
                bytes = Array(UnsafeRawBufferPointer(found))
            }
        }
        if perCPU != nil && cpu >= RawPerCPUArrayMap.cpuIDLimit { return expect(result, ENOENT, "lookupInPlace cpu \(cpu)") }
        if result == ENOENT { return observed(key, nil, "lookupInPlace") }
        expect(result, 0, "lookupInPlace \(hex(key))")
        guard let expected = known[key] else { fuzzFail("lookupInPlace: \(hex(key)) found, never written or gone") }
        sure.insert(key)
        if perCPU != nil && !RawPerCPUArrayMap.possibleCPUsAreDense { return }
        let slot = perCPU == nil ? expected : Array(expected[cpu * slotSize..<cpu * slotSize + valueSize])
        fuzzCheck(bytes == slot, "lookupInPlace \(hex(key)) cpu \(cpu): \(hex(bytes)), expected \(hex(slot))")
    }
}
