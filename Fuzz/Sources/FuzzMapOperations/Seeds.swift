import FuzzSupport

/// The seed corpus (`FuzzMapOperations --write-seeds Corpus/FuzzMapOperations`): one
/// program per map kind that touches every operation, the same with creation flags (access
/// flags, a lock word, mmapable, zero seed), plus a few shapes (a full map, wide keys and
/// values, a larger table).
func mapOperationSeeds() -> [(String, [UInt8])] {
    var seeds: [(String, [UInt8])] = []
    let names = ["hash-lockfree", "hash-bucket", "array", "object-bucket", "object-lockfree", "object-array",
                 "c-transform-lockfree", "c-transform-bucket", "c-transform-array", "c-identity-lockfree",
                 "c-identity-bucket", "c-identity-array", "swift-bucket", "swift-array"]
    for (kind, name) in names.enumerated() {
        // keySize index 5 (8 bytes), valueSize index 4 (8 bytes), 6 entries.
        seeds.append(("seed-\(name)", program(kind: UInt8(kind), keyIndex: 5, valueIndex: 4, capacity: 5)))
    }
    // Creation flags: the kind byte + 14 says a flags byte follows (then a lock-word byte
    // when bit 7 is set). Flags bits: 0-1 RDONLY/WRONLY, 2-3 RDONLY_PROG/WRONLY_PROG,
    // 4 ZERO_SEED (hash) / MMAPABLE (array), 5 NO_PREALLOC / INNER_MAP, 6 NUMA_NODE, 7 lock word.
    func flagged(_ kind: UInt8, _ flags: UInt8, lock: UInt8? = nil, value: UInt8 = 4) -> [UInt8] {
        program(kind: kind + 14, flags: [flags] + (lock.map { [$0] } ?? []), keyIndex: 5, valueIndex: value, capacity: 5)
    }
    seeds.append(("seed-hash-lockfree-rdonly", flagged(0, 0x01)))
    seeds.append(("seed-hash-bucket-wronly", flagged(1, 0x02)))
    seeds.append(("seed-array-rdonly-prog", flagged(2, 0x04)))
    seeds.append(("seed-array-wronly-prog-inner", flagged(2, 0x28)))
    seeds.append(("seed-hash-lockfree-lock-word", flagged(0, 0x80, lock: 1, value: 7)))
    seeds.append(("seed-hash-bucket-lock-word-zero-seed", flagged(1, 0x90, lock: 0, value: 9)))
    seeds.append(("seed-array-lock-word", flagged(2, 0x80, lock: 3, value: 9)))
    seeds.append(("seed-array-mmapable", flagged(2, 0x50, value: 9)))
    seeds.append(("seed-c-transform-bucket-zero-seed", flagged(7, 0x30)))
    seeds.append(("seed-c-identity-lockfree-rdonly", flagged(9, 0x01)))
    seeds.append(("seed-object-array-wronly", flagged(5, 0x02)))
    seeds.append(("seed-swift-bucket-rdonly-prog", flagged(12, 0x04)))
    seeds.append(("seed-hash-lockfree-full", program(kind: 0, keyIndex: 2, valueIndex: 1, capacity: 0)))
    seeds.append(("seed-hash-bucket-wide", program(kind: 1, keyIndex: 11, valueIndex: 11, capacity: 20)))
    seeds.append(("seed-hash-lockfree-odd", program(kind: 0, keyIndex: 9, valueIndex: 6, capacity: 30)))
    seeds.append(("seed-array-large-values", program(kind: 2, keyIndex: 0, valueIndex: 10, capacity: 10)))
    seeds.append(("seed-hash-bucket-big-table", program(kind: 1, keyIndex: 5, valueIndex: 7, capacity: 0xF0, extra: [0x00, 0x02])))
    return seeds
}

/// Header (kind, [flags], key size, value size, capacity), then operations in
/// MapExerciser's encoding.
func program(kind: UInt8, flags: [UInt8] = [], keyIndex: UInt8, valueIndex: UInt8, capacity: UInt8,
             extra: [UInt8] = []) -> [UInt8] {
    let b = InputBuilder()
    b.byte(kind).bytes(flags).byte(keyIndex).byte(valueIndex).byte(capacity).bytes(extra)
    for key: UInt8 in 0..<6 { b.bytes([1, key, 0x10 + key, 0]) }  // update .any
    b.bytes([1, 2, 0x33, 1])                 // NOEXIST on a present key: EEXIST
    b.bytes([1, 9, 0x34, 2])                 // EXIST on an absent key: ENOENT
    b.bytes([1, 3, 0x35, 6])                 // invalid flags: EINVAL
    b.bytes([1, 3, 0x36, 7])                 // BPF_F_LOCK: EINVAL without a lock word
    b.bytes([0, 3]).bytes([0, 0x90])         // lookups, present and absent
    b.bytes([16, 3, 2]).bytes([16, 3, 5])    // lookup with BPF_F_LOCK, with an invalid flag
    b.bytes([19, 3, 0x21, 0])                // exchange a present key
    b.bytes([19, 0x85, 0x22, 0])             // exchange a new key
    b.bytes([3, 1]).bytes([3, 1])            // delete, then ENOENT
    b.bytes([17, 0, 2])                      // delete with BPF_F_LOCK: EINVAL
    b.bytes([4, 2]).bytes([4, 2])            // lookup-and-delete, then ENOENT
    b.bytes([18, 4, 2])                      // lookup-and-delete with BPF_F_LOCK
    b.bytes([5, 0]).bytes([5, 1, 0]).bytes([5, 2, 0x91])  // get-next-key: first, after a key, after an absent key
    b.bytes([21, 1, 0]).bytes([21, 2, 0x92]) // the same in a pass
    b.bytes([6, 4])                          // helper-mode lookup
    b.bytes([7, 4, 0x44])                    // write through the helper-mode pointer
    b.bytes([8, 5, 0x55, 0])                 // helper-mode update
    b.bytes([9, 5])                          // helper-mode delete
    b.bytes([12, 1]).bytes([12, 2])          // the fixture's own operation (object handles)
    b.bytes([11])                            // count, every key, full passes
    // Batches: update 5, a lookup pass in steps of 2, a delete batch, lookup-and-delete.
    b.bytes([25, 5, 0x20, 0x21, 0x22, 0x23, 0x24, 1, 2, 3, 4, 5, 0, 0, 0, 1])
    // (Mode 6 gives the buffers slack, one byte more: without it the next opcode was read
    // as the slack and the rest of the program decoded out of step, so the delete and
    // lookup-and-delete batches, the garbage cursors and the pass with writes below never
    // ran in the replay; found by review of the fuzzing, 2026-12-07.)
    b.bytes([23, 2, 1, 0, 0, 0]).bytes([23, 0, 1, 0, 0, 6, 3]).bytes([23, 0, 1, 5, 0, 0])
    b.bytes([26, 3, 1, 0, 1, 1, 0, 0x23, 0, 0, 0, 1])
    b.bytes([24, 2, 2, 0, 0, 0])
    // Garbage cursors, read alike whatever the map's cursor size (a cursor of that size,
    // 4 bytes for slot and chain cursors, decoded the rest of a hash map's program out of
    // step): one random byte, and an index past any bucket or slot (UInt32.max).
    b.bytes([27, 0, 1, 0xAA, 0, 2, 0]).bytes([27, 3, 0, 1, 2, 0])
    b.bytes([27, 0, 2, 1, 2, 3, 1, 1, 0])                                     // a cursor of the wrong length
    b.bytes([22, 1, 0, 4, 0, 5, 1, 6, 0x86, 0x41, 0, 0])                      // a pass with writes
    b.bytes([30, 0, 1]).bytes([30, 1, 2])    // whole batch passes: lookup, lookup-and-delete
    // Wrong sizes of the newer calls (operation, which buffer is wrong, then the key, the
    // value and the output as that choice reads them, then element flags; a wrong length
    // choice of 4 is 1 byte): exchange into no output buffer, a lookup with a 1-byte
    // value and an output one byte long, get-next-key after a 1-byte key.
    b.bytes([28, 0, 2, 1, 0x20, 1, 0]).bytes([28, 1, 1, 2, 4, 0x55, 2, 0]).bytes([28, 3, 0, 4, 1, 0x30, 0])
    b.bytes([29, 1, 1]).bytes([29, 4, 3, 0x66]).bytes([29, 2, 3]).bytes([20, 1, 0, 0]).bytes([29, 5, 0])
    for key: UInt8 in 0..<10 { b.bytes([1, 0x80 + key, key, 1]) }  // NOEXIST inserts until E2BIG
    b.bytes([11])
    b.bytes([14])                            // drop and re-create
    b.bytes([1, 7, 7, 0]).bytes([0, 7])
    b.bytes([10, 0, 3, 0x11])                // a NULL key buffer: EINVAL
    b.bytes([10, 3, 3, 0x12])
    b.bytes([20, 1, 3, 0x13, 0x14])          // freeze (its own writes after: a key, two values), then user writes are EPERM
    b.bytes([1, 3, 0x14, 0]).bytes([8, 3, 0x15, 0]).bytes([25, 1, 3, 0x16, 0, 0, 0, 1])
    return b.bytes
}
