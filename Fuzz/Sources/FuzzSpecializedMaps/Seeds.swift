import FuzzSupport

/// The seed corpus (`FuzzSpecializedMaps --write-seeds Corpus/FuzzSpecializedMaps`): for
/// each kind, every opcode in three rounds with different operands, at three shapes — a
/// small map that fills up (evictions, E2BIG, ENOSPC, overwriting pushes), one entry with
/// the variant flag, odd key and value sizes; the freeze (each kind's last opcode) runs in
/// the last round only, except in the odd shape, where it runs in the second round too, so
/// that the third round's operations meet a frozen map; and a long program of 400
/// operations.
func specializedMapSeeds() -> [(String, [UInt8])] {
    let names = ["percpu-array", "percpu-hash", "lru-hash", "lru-percpu-hash", "queue", "stack", "lpm-trie"]
    // Operations per opcode cycle of each kind's exercise (its `switch` modulus).
    let opcodes = [10, 12, 12, 12, 13, 13, 11]
    var seeds: [(String, [UInt8])] = []
    for (kind, name) in names.enumerated() {
        // variant, value size index, capacity byte, suffix
        let shapes: [(UInt8, UInt8, UInt8, String)] = [
            (2 << 1, 4, 3, "small"),           // 8-byte keys (LPM: 1 data byte), 8-byte values, 4 entries
            (1 | 0 << 1, 5, 0, "one-entry"),   // the variant flag, 1-byte keys (LPM: 4 data bytes), 9-byte values
            (4 << 1, 3, 11, "odd"),            // 3-byte keys (LPM: 3 data bytes), 7-byte values, 12 entries
        ]
        for (variant, valueIndex, capacity, suffix) in shapes {
            let builder = InputBuilder().byte(UInt8(kind)).byte(variant).byte(valueIndex).byte(capacity)
            for round in 0..<3 {
                // The last opcode freezes the map.
                let freezes = round == 2 || (round == 1 && suffix == "odd")
                for opcode in 0..<(freezes ? opcodes[kind] : opcodes[kind] - 1) {
                    // Operands vary with the round, so that keys repeat across operations.
                    let base = UInt8(truncatingIfNeeded: opcode &* 37 &+ round &* 11)
                    builder.byte(UInt8(opcode)).bytes([base % 5, base % 3, base &+ 1, UInt8(round), base % 7, 1, 0])
                }
            }
            seeds.append(("seed-\(name)-\(suffix)", builder.bytes))
        }
        // A long program (no freeze): 400 operations on a small map. libFuzzer's length
        // control starts its limit at the corpus's longest input and raises it slowly (up
        // to 4,096 bytes): without a long seed, inputs stayed at a few dozen operations.
        let long = InputBuilder().byte(UInt8(kind)).byte(2 << 1).byte(4).byte(5)
        for step in 0..<400 {
            let base = UInt8(truncatingIfNeeded: step &* 13)
            long.byte(UInt8(step % (opcodes[kind] - 1))).bytes([base % 30, base % 3, base &+ 5, base % 11, 1, 0, 0])
        }
        seeds.append(("seed-\(name)-long", long.bytes))
    }
    return seeds
}
