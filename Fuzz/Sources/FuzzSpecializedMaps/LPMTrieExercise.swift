import FuzzSupport
import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// LPM_TRIE against a list of stored prefixes, answered by brute force: longest-prefix
/// lookups in both modes, exact-prefix updates and deletes with Linux's errnos, host bits
/// kept as the last update gave them, get-next-key in Linux's postorder from a stored
/// cursor, passes of get-next-key and of lookup batches, freezing.
final class LPMTrieExercise {
    /// A stored prefix: its length and its data with the host bits zeroed (what decides a
    /// match); `data` is what the last update gave, host bits included.
    struct Prefix: Hashable {
        let length: UInt32
        let masked: [UInt8]
    }

    struct Stored {
        var data: [UInt8]
        var value: [UInt8]
    }

    let map: RawLPMTrieMap
    let dataSize: Int
    let valueSize: Int
    let maxEntries: Int
    var maxPrefixLength: UInt32 { UInt32(dataSize * 8) }
    var entries: [Prefix: Stored] = [:]
    var frozen = false

    init(map: RawLPMTrieMap) {
        self.map = map
        dataSize = map.definition.keySize - 4
        valueSize = map.definition.valueSize
        maxEntries = map.definition.maxEntries
    }

    // MARK: Keys

    /// Data patterns that share leading bits, so that prefixes nest and branch.
    static let patterns: [UInt8] = [0x00, 0xFF, 0x80, 0xA5, 0x0F, 0x7F, 0xC0, 0x5A]

    /// A key: a prefix length (short, around byte boundaries, the maximum, one past it, or
    /// any), and data from a pattern with one bit flipped, or seeded.
    func key(_ operands: inout FuzzInput) -> (length: UInt32, data: [UInt8]) {
        let lengthSelector = operands.byte()
        let max = maxPrefixLength
        let lengths: [UInt32] = [0, 1, 2, 3, 7, 8, 9, 12, 15, 16, 17, 24, max - 1, max, max, max + 1]
        let length: UInt32 = lengthSelector >= 0xF8 ? operands.u32()
            : lengthSelector >= 0xC0 ? UInt32(lengthSelector) % (max + 2)
            : min(lengths[Int(lengthSelector) % lengths.count], max + 1)
        let dataSelector = operands.byte()
        var data: [UInt8]
        if dataSelector >= 0xF0 {
            data = seededBytes(operands.u32(), count: dataSize)
        } else {
            data = [UInt8](repeating: Self.patterns[Int(dataSelector) % Self.patterns.count], count: dataSize)
            let flip = operands.byte()
            if flip < 0x80 {
                let bit = Int(flip) % (dataSize * 8)
                data[bit / 8] ^= 0x80 >> UInt8(bit % 8)
            }
        }
        return (length, data)
    }

    static func keyBytes(_ length: UInt32, _ data: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: length) { Array($0) } + data
    }

    static func masked(_ data: [UInt8], _ length: UInt32) -> [UInt8] {
        data.enumerated().map { index, byte in
            let bits = Int(length) - index * 8
            return bits >= 8 ? byte : bits <= 0 ? 0 : byte & ~(0xFF >> UInt8(bits))
        }
    }

    // MARK: The model's answers

    /// The longest stored prefix that covers `data`'s first `length` bits.
    func longestMatch(_ length: UInt32, _ data: [UInt8]) -> Stored? {
        guard length <= maxPrefixLength else { return nil }
        var length = length
        while true {
            if let stored = entries[Prefix(length: length, masked: Self.masked(data, length))] { return stored }
            if length == 0 { return nil }
            length -= 1
        }
    }

    /// Linux's get-next-key order: a prefix after every prefix it covers; otherwise at the
    /// first bit where they differ, the 0 side first.
    static func precedes(_ a: Prefix, _ b: Prefix) -> Bool {
        let common = min(a.length, b.length)
        for bit in 0..<Int(common) {
            let mask: UInt8 = 0x80 >> UInt8(bit % 8)
            let x = a.masked[bit / 8] & mask, y = b.masked[bit / 8] & mask
            if x != y { return x == 0 }
        }
        return a.length > b.length
    }

    /// The stored prefixes in get-next-key order, as the keys the map returns.
    var orderedKeys: [[UInt8]] {
        entries.keys.sorted(by: Self.precedes).map { Self.keyBytes($0.length, entries[$0]!.data) }
    }

    // MARK: Operations

    func step(_ frame: inout OperationFrame) {
        switch frame.opcode % 11 {
        case 0, 1, 2:  // update
            let (length, data) = key(&frame.operands)
            let value = fuzzValue(&frame.operands, size: valueSize)
            let flags = frame.opcode % 11 == 2 ? fuzzUpdateFlags(&frame.operands) : .any
            update(length, data, value, flags: flags, helper: frame.opcode % 11 == 1 && frame.operands.bool())

        case 3, 4:  // lookup, in either mode
            let (length, data) = key(&frame.operands)
            let helper = frame.opcode % 11 == 4
            trace("  \(helper ? "helper " : "")lookup /\(length) \(hex(data))")
            let keyBuffer = ExactBuffer(Self.keyBytes(length, data))
            let buffer = output(valueSize)
            let result = errnoOf { () throws(MapError) in
                if helper {
                    try Epoch.withSection { section throws(MapError) in
                        let found = try map.lookupInPlace(key: keyBuffer.raw, in: section)
                        fuzzCheck(found.count == valueSize, "lookupInPlace gave \(found.count) bytes")
                        buffer.mutableRaw.copyMemory(from: UnsafeRawBufferPointer(found))
                    }
                } else {
                    try map.lookup(key: keyBuffer.raw, into: buffer.mutableRaw)
                }
            }
            guard let match = longestMatch(length, data) else {
                return expect(result, ENOENT, "lookup /\(length) \(hex(data)) with no match")
            }
            expect(result, 0, "lookup /\(length) \(hex(data))")
            fuzzCheck(buffer.bytes == match.value,
                      "lookup /\(length) \(hex(data)): \(hex(buffer.bytes)), expected \(hex(match.value))")

        case 5:  // delete, in either mode
            let (length, data) = key(&frame.operands)
            let helper = frame.operands.bool()
            trace("  \(helper ? "helper " : "")delete /\(length) \(hex(data))")
            let keyBuffer = ExactBuffer(Self.keyBytes(length, data))
            let result = errnoOf { () throws(MapError) in
                if helper {
                    try Epoch.withSection { section throws(MapError) in try map.delete(key: keyBuffer.raw, in: section) }
                } else {
                    try map.delete(key: keyBuffer.raw)
                }
            }
            let prefix = Prefix(length: length, masked: Self.masked(data, length))
            if frozen && !helper { return expect(result, EPERM, "delete from a frozen map") }
            if length > maxPrefixLength { return expect(result, EINVAL, "delete /\(length)") }
            guard entries.removeValue(forKey: prefix) != nil else { return expect(result, ENOENT, "delete of a prefix not stored") }
            expect(result, 0, "delete /\(length) \(hex(data))")

        case 6:  // get-next-key from a stored cursor, from none, from one not stored
            nextKey(&frame.operands)

        case 7:  // a whole pass of get-next-key, or of lookup batches
            let chunk = 1 + Int(frame.operands.byte() % 6)
            let batches = frame.operands.bool()
            trace("  \(batches ? "lookup batch pass, \(chunk) a call" : "get-next-key pass")")
            let expected = orderedKeys
            if batches {
                let elements = lookupBatchPass(map, keySize: 4 + dataSize, valueSize: valueSize, chunk: chunk,
                                               limit: maxEntries)
                fuzzCheck(elements.map(\.key) == expected,
                          "a lookup batch pass returned \(elements.map { hex($0.key) }), expected \(expected.map { hex($0) })")
                for (key, value) in elements {
                    let length = indexOf(key)  // the prefix length: the first 4 bytes, host order
                    let prefix = Prefix(length: length, masked: Self.masked(Array(key[4...]), length))
                    fuzzCheck(entries[prefix]?.value == value, "a lookup batch gave \(hex(key)) the value \(hex(value))")
                }
            } else {
                let keys = nextKeyPass(map, keySize: 4 + dataSize, limit: maxEntries)
                fuzzCheck(keys == expected, "a get-next-key pass returned \(keys.map { hex($0) }), expected \(expected.map { hex($0) })")
            }

        case 8:  // lookup-and-delete: not an LPM operation
            let (length, data) = key(&frame.operands)
            trace("  lookup-and-delete /\(length)")
            let keyBuffer = ExactBuffer(Self.keyBytes(length, data))
            let buffer = output(valueSize)
            let result = errnoOf { () throws(MapError) in try map.lookupAndDelete(key: keyBuffer.raw, into: buffer.mutableRaw) }
            expect(result, frozen ? EPERM : 524, "lookup-and-delete on an LPM trie")

        case 9:  // wrong sizes
            let choice = frame.operands.byte() % 3
            let keySize = 4 + dataSize + (frame.operands.bool() ? 1 : -1)
            let keyBuffer = ExactBuffer(zeros: keySize)
            let value = ExactBuffer(zeros: valueSize + 1)
            let rightKey = ExactBuffer(Self.keyBytes(0, [UInt8](repeating: 0, count: dataSize)))
            trace("  wrong size \(choice)")
            let result = errnoOf { () throws(MapError) in
                switch choice {
                case 0: try map.lookup(key: keyBuffer.raw, into: value.mutableRaw)
                case 1: try map.update(key: rightKey.raw, value: value.raw, flags: .any)
                default: try map.delete(key: keyBuffer.raw)
                }
            }
            expect(result, frozen && choice != 0 ? EPERM : EINVAL, "wrong size \(choice)")

        default:
            trace("  freeze")
            freezeStep(map, frozen: &frozen)
        }
    }

    func update(_ length: UInt32, _ data: [UInt8], _ value: [UInt8], flags: MapUpdateFlags, helper: Bool) {
        trace("  \(helper ? "helper " : "")update /\(length) \(hex(data)) = \(hex(value)) flags \(flags)")
        let keyBuffer = ExactBuffer(Self.keyBytes(length, data))
        let valueBuffer = ExactBuffer(value)
        let result = errnoOf { () throws(MapError) in
            if helper {
                try Epoch.withSection { section throws(MapError) in
                    try map.update(key: keyBuffer.raw, value: valueBuffer.raw, flags: flags, in: section)
                }
            } else {
                try map.update(key: keyBuffer.raw, value: valueBuffer.raw, flags: flags)
            }
        }
        let what = "update /\(length) \(hex(data)) flags \(flags)"
        if frozen && !helper { return expect(result, EPERM, "\(what) on a frozen map") }
        if flags.rawValue > 2 || length > maxPrefixLength { return expect(result, EINVAL, what) }
        let prefix = Prefix(length: length, masked: Self.masked(data, length))
        if entries[prefix] != nil {
            if flags == .noExist { return expect(result, EEXIST, what) }
        } else {
            if flags == .exist { return expect(result, ENOENT, what) }
            if entries.count == maxEntries { return expect(result, ENOSPC, what) }
        }
        expect(result, 0, what)
        entries[prefix] = Stored(data: data, value: value)
    }

    func nextKey(_ operands: inout FuzzInput) {
        let choice = operands.byte() % 3
        let ordered = orderedKeys
        let next = output(4 + dataSize)
        var cursor: [UInt8]?
        switch choice {
        case 0 where !ordered.isEmpty: cursor = ordered[Int(operands.byte()) % ordered.count]
        case 1: cursor = nil
        default:
            let (length, data) = key(&operands)
            cursor = Self.keyBytes(length, data)
        }
        trace("  get-next-key after \(cursor.map { hex($0) } ?? "nothing")")
        let cursorBuffer = cursor.map { ExactBuffer($0) }
        let result = errnoOf { () throws(MapError) in try map.nextKey(after: cursorBuffer?.raw, into: next.mutableRaw) }
        let prefixes = entries.keys.sorted(by: Self.precedes)
        let stored = cursor.flatMap { cursor -> Int? in
            let length = indexOf(cursor)
            guard length <= maxPrefixLength else { return nil }
            return prefixes.firstIndex(of: Prefix(length: length, masked: Self.masked(Array(cursor[4...]), length)))
        }
        if let cursor, let position = stored {
            // A stored prefix (whatever its host bits): the key after it.
            if position + 1 == ordered.count { return expect(result, ENOENT, "get-next-key after the last key") }
            expect(result, 0, "get-next-key after \(hex(cursor))")
            fuzzCheck(next.bytes == ordered[position + 1],
                      "get-next-key after \(hex(cursor)): \(hex(next.bytes)), expected \(hex(ordered[position + 1]))")
        } else {
            // No cursor, a prefix not stored or one longer than the maximum: the first key
            // (Linux's trie_get_next_key goes to its leftmost node).
            if ordered.isEmpty { return expect(result, ENOENT, "get-next-key on an empty trie") }
            expect(result, 0, "get-next-key from \(cursor.map { hex($0) } ?? "the start")")
            fuzzCheck(next.bytes == ordered[0], "get-next-key from \(cursor.map { hex($0) } ?? "the start"): \(hex(next.bytes)), expected \(hex(ordered[0]))")
        }
    }

    func checkCount() {
        fuzzCheck(map.count == entries.count, "count \(map.count), the model holds \(entries.count) prefixes")
    }
}
