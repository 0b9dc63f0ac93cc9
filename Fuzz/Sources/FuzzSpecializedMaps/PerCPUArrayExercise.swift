import CFuzzSupport
import FuzzSupport
import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// PERCPU_ARRAY against a table of all-CPU values: user-mode updates and lookups of every
/// CPU's value (padding included), a chosen CPU's value in place, helper-mode writes of the
/// calling CPU's value (whichever CPU that is: exactly one CPU's value may change), the
/// calls Linux refuses, get-next-key, lookup batch passes, wrong sizes, freezing.
final class PerCPUArrayExercise {
    let map: RawPerCPUArrayMap
    let valueSize: Int
    let userSize: Int
    let cpus: Int
    let maxEntries: Int
    /// Every index's all-CPU value, as a user-mode lookup copies it.
    var values: [[UInt8]]
    var frozen = false

    init(map: RawPerCPUArrayMap) {
        self.map = map
        valueSize = map.definition.valueSize
        userSize = map.userValueSize
        cpus = map.possibleCPUCount
        maxEntries = map.definition.maxEntries
        values = Array(repeating: [UInt8](repeating: 0, count: map.userValueSize), count: map.definition.maxEntries)
    }

    var slotSize: Int { userSize / cpus }

    func step(_ frame: inout OperationFrame) {
        switch frame.opcode % 10 {
        case 0, 1:  // user-mode update of every CPU's value
            let index = fuzzIndex(&frame.operands, maxEntries: maxEntries)
            let value = fuzzValue(&frame.operands, size: userSize)
            let flags = frame.opcode % 10 == 1 ? fuzzUpdateFlags(&frame.operands) : .any
            trace("  update [\(index)] = \(hex(value)) flags \(flags)")
            let key = ExactBuffer(indexKey(index)), buffer = ExactBuffer(value)
            let result = errnoOf { () throws(MapError) in try map.update(key: key.raw, value: buffer.raw, flags: flags) }
            let expected: Int32 = frozen ? EPERM : flags.rawValue > 2 ? EINVAL : Int(index) >= maxEntries ? E2BIG
                : flags == .noExist ? EEXIST : 0
            expect(result, expected, "update [\(index)] flags \(flags)")
            if result == 0 { values[Int(index)] = value }

        case 2:  // user-mode lookup
            let index = fuzzIndex(&frame.operands, maxEntries: maxEntries)
            trace("  lookup [\(index)]")
            let key = ExactBuffer(indexKey(index)), buffer = output(userSize)
            let result = errnoOf { () throws(MapError) in try map.lookup(key: key.raw, into: buffer.mutableRaw) }
            guard Int(index) < maxEntries else { return expect(result, ENOENT, "lookup [\(index)] past the end") }
            expect(result, 0, "lookup [\(index)]")
            fuzzCheck(buffer.bytes == values[Int(index)], "lookup [\(index)]: \(hex(buffer.bytes)), expected \(hex(values[Int(index)]))")

        case 3:  // one CPU's value in place
            let index = fuzzIndex(&frame.operands, maxEntries: maxEntries)
            let cpu = Int(frame.operands.byte()) % (RawPerCPUArrayMap.cpuIDLimit + 1)
            trace("  lookupInPlace [\(index)] cpu \(cpu)")
            let key = ExactBuffer(indexKey(index))
            var bytes: [UInt8] = []
            let result = errnoOf { () throws(MapError) in
                try Epoch.withSection { section throws(MapError) in
                    bytes = Array(UnsafeRawBufferPointer(try map.lookupInPlace(key: key.raw, cpu: cpu, in: section)))
                }
            }
            guard Int(index) < maxEntries, cpu < RawPerCPUArrayMap.cpuIDLimit else {
                return expect(result, ENOENT, "lookupInPlace [\(index)] cpu \(cpu)")
            }
            expect(result, 0, "lookupInPlace [\(index)] cpu \(cpu)")
            // CPU ids are slot numbers only where the possible CPUs are 0, 1, … n − 1.
            guard RawPerCPUArrayMap.possibleCPUsAreDense else { return }
            let slot = Array(values[Int(index)][cpu * slotSize..<cpu * slotSize + valueSize])
            fuzzCheck(bytes == slot, "lookupInPlace [\(index)] cpu \(cpu): \(hex(bytes)), expected \(hex(slot))")

        case 4:  // helper-mode update: the calling CPU's value only (a frozen map allows it)
            let index = fuzzIndex(&frame.operands, maxEntries: maxEntries)
            let value = fuzzValue(&frame.operands, size: valueSize)
            let flags = fuzzUpdateFlags(&frame.operands)
            trace("  helper update [\(index)] = \(hex(value)) flags \(flags)")
            let key = ExactBuffer(indexKey(index)), buffer = ExactBuffer(value)
            // The write goes to the CPU the thread is on: pinned there for the call (a thread
            // that cannot be pinned may move, and its write may land on any one CPU).
            let pinned = rcf_pin_to_current_cpu()
            let result = errnoOf { () throws(MapError) in
                defer { rcf_unpin() }
                try Epoch.withSection { section throws(MapError) in
                    try map.update(key: key.raw, value: buffer.raw, flags: flags, in: section)
                }
            }
            let cpu = pinned >= 0 && RawPerCPUArrayMap.possibleCPUsAreDense ? Int(pinned) : nil
            // Linux's array_map_update_elem: BPF_F_LOCK passes the first check and is refused
            // last (no lock word), after E2BIG and EEXIST.
            let bits = flags.rawValue
            let expected: Int32 = bits & ~4 > 2 ? EINVAL : Int(index) >= maxEntries ? E2BIG : bits & 1 != 0 ? EEXIST
                : bits & 4 != 0 ? EINVAL : 0
            expect(result, expected, "helper update [\(index)] flags \(flags)")
            if result == 0 { values[Int(index)] = checkOneCPUWritten(index: index, value: value, cpu: cpu) }

        case 5:  // delete and lookup-and-delete: not array operations
            let index = fuzzIndex(&frame.operands, maxEntries: maxEntries)
            let andLookup = frame.operands.bool()
            trace("  \(andLookup ? "lookup-and-delete" : "delete") [\(index)]")
            let key = ExactBuffer(indexKey(index)), buffer = output(userSize)
            let result = errnoOf { () throws(MapError) in
                if andLookup { try map.lookupAndDelete(key: key.raw, into: buffer.mutableRaw) } else { try map.delete(key: key.raw) }
            }
            expect(result, frozen ? EPERM : andLookup ? 524 : EINVAL, andLookup ? "lookup-and-delete" : "delete")

        case 6:  // get-next-key, as ARRAY's
            let none = frame.operands.byte() % 4 == 0
            let index = fuzzIndex(&frame.operands, maxEntries: maxEntries)
            trace("  get-next-key after \(none ? "nothing" : "[\(index)]")")
            let key = ExactBuffer(indexKey(index)), next = output(4)
            let result = errnoOf { () throws(MapError) in try map.nextKey(after: none ? nil : key.raw, into: next.mutableRaw) }
            if !none && Int(index) == maxEntries - 1 { return expect(result, ENOENT, "get-next-key after the last index") }
            expect(result, 0, "get-next-key")
            let expected: UInt32 = none || Int(index) >= maxEntries ? 0 : index + 1
            fuzzCheck(indexOf(next.bytes) == expected, "get-next-key after [\(index)]: \(indexOf(next.bytes)), expected \(expected)")

        case 7:  // a pass of lookup batches: every index in order, every CPU's value
            let chunk = 1 + Int(frame.operands.byte() % 5)
            trace("  lookup batch pass, \(chunk) a call")
            let elements = lookupBatchPass(map, keySize: 4, valueSize: userSize, chunk: chunk, limit: maxEntries)
            fuzzCheck(elements.map { indexOf($0.key) } == (0..<UInt32(maxEntries)).map { $0 },
                      "a lookup batch pass returned indexes \(elements.map { indexOf($0.key) })")
            for (index, element) in elements.enumerated() {
                fuzzCheck(element.value == values[index], "a lookup batch gave [\(index)] \(hex(element.value)), expected \(hex(values[index]))")
            }

        case 8:  // wrong sizes: a user-mode buffer of one CPU's value, a helper-mode one of all
            let choice = frame.operands.byte() % 3
            let key = ExactBuffer(indexKey(0))
            trace("  wrong size \(choice)")
            let result = errnoOf { () throws(MapError) in
                switch choice {
                case 0: try map.lookup(key: key.raw, into: output(userSize == valueSize ? userSize + 1 : valueSize).mutableRaw)
                case 1: try map.lookup(key: ExactBuffer(zeros: 8).raw, into: output(userSize).mutableRaw)
                default:
                    try Epoch.withSection { section throws(MapError) in
                        try map.update(key: key.raw, value: ExactBuffer(zeros: valueSize + 1).raw, flags: .any, in: section)
                    }
                }
            }
            expect(result, EINVAL, "wrong size \(choice)")

        default:
            trace("  freeze")
            freezeStep(map, frozen: &frozen)
        }
    }

    /// After a helper-mode write of `value` to `index`: the all-CPU value read back differs
    /// from the model in one CPU's value at most — `cpu`'s, when the thread was pinned to it
    /// for the call — that CPU's first `valueSize` bytes are `value` and its padding is
    /// unchanged. Returns what was read.
    func checkOneCPUWritten(index: UInt32, value: [UInt8], cpu: Int?) -> [UInt8] {
        let key = ExactBuffer(indexKey(index)), buffer = output(userSize)
        expect(errnoOf { () throws(MapError) in try map.lookup(key: key.raw, into: buffer.mutableRaw) }, 0,
               "lookup after a helper update")
        let now = buffer.bytes, before = values[Int(index)]
        let changed = (0..<cpus).filter { now[$0 * slotSize..<($0 + 1) * slotSize] != before[$0 * slotSize..<($0 + 1) * slotSize] }
        fuzzCheck(changed.count <= 1 && (cpu == nil || changed.allSatisfy { $0 == cpu }),
                  "a helper update of [\(index)] on CPU \(cpu.map { "\($0)" } ?? "?") changed the values of CPUs \(changed)")
        let written = cpu ?? changed.first ?? (0..<cpus).first { Array(now[$0 * slotSize..<$0 * slotSize + valueSize]) == value }
        guard let written else { fuzzFail("a helper update of [\(index)] to \(hex(value)): no CPU holds it in \(hex(now))") }
        fuzzCheck(Array(now[written * slotSize..<written * slotSize + valueSize]) == value,
                  "a helper update of [\(index)] wrote \(hex(Array(now[written * slotSize..<(written + 1) * slotSize]))) for \(hex(value))")
        fuzzCheck(now[written * slotSize + valueSize..<(written + 1) * slotSize] == before[written * slotSize + valueSize..<(written + 1) * slotSize],
                  "a helper update of [\(index)] changed CPU \(written)'s padding")
        return now
    }
}
