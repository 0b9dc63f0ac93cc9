import FuzzSupport
import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// QUEUE and STACK against a list of elements, oldest first: pushes (overwriting the oldest
/// with `BPF_EXIST` when full), pops and peeks in both modes and through the key/value
/// calls, the calls Linux refuses, wrong sizes, freezing; the count after every operation.
final class QueueStackExercise {
    let map: RawQueueStackMap
    let isStack: Bool
    let valueSize: Int
    let capacity: Int
    /// The model: oldest first.
    var elements: [[UInt8]] = []
    var frozen = false

    init(map: RawQueueStackMap) {
        self.map = map
        isStack = map.definition.type == .stack
        valueSize = map.definition.valueSize
        capacity = map.definition.maxEntries
    }

    /// What a pop or peek returns: a queue's oldest element, a stack's newest.
    var next: [UInt8]? { isStack ? elements.last : elements.first }

    func removeNext() {
        if isStack { elements.removeLast() } else { elements.removeFirst() }
    }

    /// The errno a push of `value` with `flags` must end with, and the model after it; the
    /// element an overwriting push drops. `user`: a frozen map refuses it.
    func predictPush(_ value: [UInt8], flags: MapUpdateFlags, user: Bool) -> (Int32, dropped: [UInt8]?) {
        if user && frozen { return (EPERM, nil) }
        if flags.rawValue != 0 && flags.rawValue != 2 { return (EINVAL, nil) }
        var dropped: [UInt8]?
        if elements.count == capacity {
            guard flags.rawValue == 2 else { return (E2BIG, nil) }
            dropped = elements.removeFirst()
        }
        elements.append(value)
        return (0, dropped)
    }

    /// Checks a pop or peek's result against the model (and pops the model).
    func checkGet(_ result: Int32, _ buffer: ExactBuffer, delete: Bool, helper: Bool, _ what: String) {
        guard let expected = next else {
            expect(result, ENOENT, "\(what) of an empty \(map.definition.type)")
            if helper {
                fuzzCheck(buffer.bytes.allSatisfy { $0 == 0 }, "\(what): an empty map's helper call left \(hex(buffer.bytes))")
            } else {
                fuzzCheck(buffer.bytes.allSatisfy { $0 == 0xCD }, "\(what): an empty map's user call wrote \(hex(buffer.bytes))")
            }
            return
        }
        expect(result, 0, what)
        fuzzCheck(buffer.bytes == expected, "\(what): \(hex(buffer.bytes)), expected \(hex(expected))")
        if delete { removeNext() }
    }

    func step(_ frame: inout OperationFrame) {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        switch frame.opcode % 13 {
        case 0, 1, 2:  // push: fuzzed flags, BPF_ANY, BPF_EXIST
            let value = fuzzValue(&frame.operands, size: valueSize)
            let flags = frame.opcode % 13 == 0 ? fuzzUpdateFlags(&frame.operands) : frame.opcode % 13 == 1 ? .any : .exist
            trace("  push \(hex(value)) flags \(flags)")
            let buffer = ExactBuffer(value)
            let result = errnoOf { () throws(MapError) in try map.push(buffer.raw, flags: flags) }
            expect(result, predictPush(value, flags: flags, user: true).0, "push flags \(flags)")

        case 3:  // pop
            trace("  pop")
            let buffer = output(valueSize)
            let result = errnoOf { () throws(MapError) in try map.pop(into: buffer.mutableRaw) }
            if frozen { return expectUntouched(result, EPERM, buffer, "pop from a frozen map") }
            checkGet(result, buffer, delete: true, helper: false, "pop")

        case 4:  // peek
            trace("  peek")
            let buffer = output(valueSize)
            checkGet(errnoOf { () throws(MapError) in try map.peek(into: buffer.mutableRaw) }, buffer,
                     delete: false, helper: false, "peek")

        case 5:  // push through update(key:value:flags:), an empty key
            let value = fuzzValue(&frame.operands, size: valueSize)
            let flags = fuzzUpdateFlags(&frame.operands)
            trace("  update (push) \(hex(value)) flags \(flags)")
            let buffer = ExactBuffer(value)
            let key = ExactBuffer(nilBase: ())
            let result = errnoOf { () throws(MapError) in try map.update(key: key.raw, value: buffer.raw, flags: flags) }
            expect(result, predictPush(value, flags: flags, user: true).0, "update (push) flags \(flags)")

        case 6:  // pop through lookupAndDelete, with flags
            let flags = elementFlags(&frame.operands)
            trace("  lookup-and-delete (pop) flags \(flags.rawValue)")
            let buffer = output(valueSize)
            let result = errnoOf { () throws(MapError) in try map.lookupAndDelete(key: empty, into: buffer.mutableRaw, flags: flags) }
            if flags.rawValue & ~4 != 0 { return expect(result, EINVAL, "pop with unknown flags") }
            if frozen { return expectUntouched(result, EPERM, buffer, "pop from a frozen map") }
            if flags.rawValue != 0 { return expectUntouched(result, EINVAL, buffer, "pop with BPF_F_LOCK") }
            checkGet(result, buffer, delete: true, helper: false, "lookup-and-delete (pop)")

        case 7:  // peek through lookup, with flags
            let flags = elementFlags(&frame.operands)
            trace("  lookup (peek) flags \(flags.rawValue)")
            let buffer = output(valueSize)
            let result = errnoOf { () throws(MapError) in try map.lookup(key: empty, into: buffer.mutableRaw, flags: flags) }
            if flags.rawValue != 0 { return expect(result, EINVAL, "peek with flags \(flags.rawValue)") }
            checkGet(result, buffer, delete: false, helper: false, "lookup (peek)")

        case 8:  // exchange: the push that reports what it dropped
            let value = fuzzValue(&frame.operands, size: valueSize)
            let flags = fuzzUpdateFlags(&frame.operands)
            trace("  exchange \(hex(value)) flags \(flags)")
            let buffer = ExactBuffer(value)
            let displaced = output(valueSize)
            var droppedAny = false
            let result = errnoOf { () throws(MapError) in
                droppedAny = try map.exchange(key: empty, value: buffer.raw, flags: flags, into: displaced.mutableRaw)
            }
            let (expected, dropped) = predictPush(value, flags: flags, user: true)
            expect(result, expected, "exchange flags \(flags)")
            if result == 0 {
                fuzzCheck(droppedAny == (dropped != nil), "exchange answered \(droppedAny), dropped \(dropped.map { hex($0) } ?? "nothing")")
            }
            if let dropped, result == 0 {
                fuzzCheck(displaced.bytes == dropped, "exchange dropped \(hex(displaced.bytes)), expected \(hex(dropped))")
            } else {
                fuzzCheck(displaced.bytes.allSatisfy { $0 == 0xCD }, "exchange that dropped nothing wrote \(hex(displaced.bytes))")
            }

        case 9:  // helper mode: push, pop or peek inside a section (a frozen map allows them)
            let choice = frame.operands.byte() % 3
            let value = fuzzValue(&frame.operands, size: valueSize)
            let flags = fuzzUpdateFlags(&frame.operands)
            let buffer = choice == 0 ? ExactBuffer(value) : output(valueSize)
            trace("  helper \(["push \(hex(value)) flags \(flags)", "pop", "peek"][Int(choice)])")
            let result = Epoch.withSection { section in
                errnoOf { () throws(MapError) in
                    switch choice {
                    case 0: try map.push(buffer.raw, flags: flags, in: section)
                    case 1: try map.pop(into: buffer.mutableRaw, in: section)
                    default: try map.peek(into: buffer.mutableRaw, in: section)
                    }
                }
            }
            if choice == 0 {
                expect(result, predictPush(value, flags: flags, user: false).0, "helper push flags \(flags)")
            } else {
                checkGet(result, buffer, delete: choice == 1, helper: true, choice == 1 ? "helper pop" : "helper peek")
            }

        case 10:  // wrong sizes and keys
            wrongSizes(&frame.operands)

        case 11:  // what Linux refuses on these types: delete, get-next-key, in place, helper update
            let choice = frame.operands.byte() % 4
            trace("  refused call \(choice)")
            let next = output(4)
            let value = ExactBuffer(fuzzValue(&frame.operands, size: valueSize))
            let result = errnoOf { () throws(MapError) in
                switch choice {
                case 0: try map.delete(key: empty)
                case 1: try map.nextKey(after: nil, into: next.mutableRaw)
                case 2: _ = try Epoch.withSection { section throws(MapError) in try map.lookupInPlace(key: empty, in: section) }
                default: try Epoch.withSection { section throws(MapError) in try map.update(key: empty, value: value.raw, flags: .any, in: section) }
                }
            }
            expect(result, choice == 0 && frozen ? EPERM : EINVAL, "refused call \(choice)")

        default:  // freeze
            trace("  freeze")
            freezeStep(map, frozen: &frozen)
        }
    }

    /// A refused call: its errno, and the caller's buffer as it was.
    func expectUntouched(_ result: Int32, _ expected: Int32, _ buffer: ExactBuffer, _ what: String) {
        expect(result, expected, what)
        fuzzCheck(buffer.bytes.allSatisfy { $0 == 0xCD }, "\(what) wrote \(hex(buffer.bytes))")
    }

    /// Element flags: none, `BPF_F_LOCK`, or unknown bits.
    func elementFlags(_ operands: inout FuzzInput) -> MapElementFlags {
        switch operands.byte() % 4 {
        case 0, 1: MapElementFlags(rawValue: 0)
        case 2: .lock
        default: MapElementFlags(rawValue: 0x10)
        }
    }

    func wrongSizes(_ operands: inout FuzzInput) {
        let choice = operands.byte() % 5
        let wrongSize = operands.bool() ? valueSize + 1 : valueSize - 1
        let value = ExactBuffer(zeros: wrongSize)
        let key = ExactBuffer(zeros: 1 + Int(operands.byte() % 8))
        let right = ExactBuffer(zeros: valueSize)
        trace("  wrong size \(choice): value \(wrongSize) bytes, key \(key.count)")
        let result = errnoOf { () throws(MapError) in
            switch choice {
            case 0: try map.push(value.raw, flags: .any)
            case 1: try map.pop(into: value.mutableRaw)
            case 2: try map.peek(into: value.mutableRaw)
            case 3: try map.update(key: key.raw, value: right.raw, flags: .any)
            default: try map.lookup(key: key.raw, into: right.mutableRaw)
            }
        }
        // Writes check EPERM first (a frozen map), reads have nothing before the sizes.
        expect(result, frozen && [0, 1, 3].contains(choice) ? EPERM : EINVAL, "wrong size \(choice)")
    }

    func checkCount() {
        fuzzCheck(map.count == elements.count, "count \(map.count), the model holds \(elements.count)")
    }
}
