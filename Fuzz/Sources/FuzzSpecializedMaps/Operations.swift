import FuzzSupport
import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

// What the exercises of this target share: how a call's errno is taken, and the keys and
// values the operations use (each operation is an `OperationFrame`).

/// The errno `body` ended with: 0 when it returned.
func errnoOf(_ body: () throws(MapError) -> Void) -> Int32 {
    do {
        try body()
        return 0
    } catch {
        return error.code
    }
}

/// Fails unless a call ended with `expected`.
func expect(_ got: Int32, _ expected: Int32, _ what: @autoclosure () -> String) {
    fuzzCheck(got == expected, "\(what()): \(errnoName(got)), expected \(errnoName(expected))")
}

/// Bytes from a 32-bit seed (xorshift): "raw" keys and values of any length from a fixed
/// frame.
func seededBytes(_ seed: UInt32, count: Int) -> [UInt8] {
    var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state >> 24)
    }
}

/// A value of `size` bytes: derived from one selector byte, or (selector ≥ 0xE0) seeded
/// from the next four.
func fuzzValue(_ operands: inout FuzzInput, size: Int) -> [UInt8] {
    let selector = operands.byte()
    if selector >= 0xE0 { return seededBytes(operands.u32(), count: size) }
    return (0..<size).map { UInt8(truncatingIfNeeded: Int(selector) &+ $0 &* 29) }
}

/// A hash key of `size` bytes: one of 24 derived keys (so that maps fill up and keys
/// collide), or (selector ≥ 0xF0) seeded from the next four bytes.
func fuzzHashKey(_ operands: inout FuzzInput, size: Int) -> [UInt8] {
    let selector = operands.byte()
    if selector >= 0xF0 { return seededBytes(operands.u32(), count: size) }
    return MapExerciser.derivedKey(selector % 24, size: size)
}

/// Update flags: mostly `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`; sometimes `BPF_F_LOCK`,
/// both of the first two, or unknown bits.
func fuzzUpdateFlags(_ operands: inout FuzzInput) -> MapUpdateFlags {
    switch operands.byte() % 10 {
    case 0, 1, 2: .any
    case 3, 4: .noExist
    case 5, 6: .exist
    case 7: .lock
    case 8: MapUpdateFlags(rawValue: 3)
    default: MapUpdateFlags(rawValue: 0x10)
    }
}

/// A 4-byte array index: mostly inside or just past `maxEntries`, sometimes any.
func fuzzIndex(_ operands: inout FuzzInput, maxEntries: Int) -> UInt32 {
    let selector = operands.byte()
    return selector < 0xF0 ? UInt32(Int(selector) % (maxEntries + 2)) : operands.u32()
}

func indexKey(_ index: UInt32) -> [UInt8] { withUnsafeBytes(of: index.littleEndian) { Array($0) } }
func indexOf(_ key: [UInt8]) -> UInt32 { key.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) } }

/// A buffer of `size` bytes for a call to fill.
func output(_ size: Int) -> ExactBuffer { ExactBuffer(zeros: size) }

/// Every key a get-next-key pass returns, from the start to ENOENT (at most `limit`: more
/// is a cycle), checked for errors other than the end.
func nextKeyPass(_ map: any RawMap, keySize: Int, limit: Int) -> [[UInt8]] {
    var keys: [[UInt8]] = []
    var cursor: ExactBuffer?
    while true {
        let next = output(keySize)
        let result = errnoOf { () throws(MapError) in try map.nextKey(after: cursor?.raw, into: next.mutableRaw) }
        if result == ENOENT { return keys }
        expect(result, 0, "get-next-key pass, step \(keys.count)")
        keys.append(next.bytes)
        fuzzCheck(keys.count <= limit, "a get-next-key pass returned more than \(limit) keys: \(keys.suffix(4).map { hex($0) })")
        cursor = next
    }
}

/// Every (key, value) a pass of lookup batches returns, `chunk` elements a call, until the
/// call that reports ENOENT. A hash's call answers ENOSPC, with nothing copied, when one of
/// its buckets holds more entries than `count` (as Linux's): the pass then asks for twice as
/// many from the same cursor.
func lookupBatchPass(_ map: any RawMap, keySize: Int, valueSize: Int, chunk: Int, limit: Int)
    -> [(key: [UInt8], value: [UInt8])]
{
    var elements: [(key: [UInt8], value: [UInt8])] = []
    var cursor: MapBatchCursor?
    var chunk = chunk
    while true {
        let keys = output(keySize * chunk)
        let values = output(valueSize * chunk)
        let outcome = attempt { () throws(MapError) in
            try map.lookupBatch(from: cursor, keys: keys.mutableRaw, values: values.mutableRaw, count: chunk,
                                elementFlags: MapElementFlags(rawValue: 0), flags: 0)
        }
        guard case .success(let result) = outcome else {
            fuzzFail("lookup batch of \(chunk) after \(elements.count) elements failed: \(outcome)")
        }
        fuzzCheck(result.count <= chunk, "a lookup batch of \(chunk) returned \(result.count) elements")
        let keyBytes = keys.bytes
        let valueBytes = values.bytes
        for index in 0..<result.count {
            elements.append((Array(keyBytes[index * keySize..<(index + 1) * keySize]),
                             Array(valueBytes[index * valueSize..<(index + 1) * valueSize])))
        }
        fuzzCheck(elements.count <= limit, "a lookup batch pass returned more than \(limit) elements")
        if let error = result.error, error.code == ENOSPC, result.count == 0 {
            fuzzCheck(chunk <= limit, "a lookup batch of \(chunk) answered ENOSPC with at most \(limit) elements in the map")
            chunk *= 2
            continue
        }
        if let error = result.error {
            expect(error.code, ENOENT, "lookup batch after \(elements.count) elements")
            return elements
        }
        cursor = result.cursor
    }
}

/// `freeze()`: the first succeeds, a second is EPERM.
func freezeStep(_ map: any RawMap, frozen: inout Bool) {
    let result = errnoOf { () throws(MapError) in try map.freeze() }
    expect(result, frozen ? EPERM : 0, "freeze")
    frozen = true
    fuzzCheck(map.isFrozen, "isFrozen false after freeze")
}
