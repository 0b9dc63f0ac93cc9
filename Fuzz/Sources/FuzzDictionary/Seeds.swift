import FuzzSupport

/// The seed corpus (`FuzzDictionary --write-seeds Corpus/FuzzDictionary`): for each kind,
/// every opcode thrice with different operands, the drop last; and a growth program (bulk
/// inserts, a pass, bulk removals, a pass).
func dictionarySeeds() -> [(String, [UInt8])] {
    let names = ["string-int", "string-object", "int-int", "int-object", "int-wide"]
    var seeds: [(String, [UInt8])] = []
    for (kind, name) in names.enumerated() {
        let builder = InputBuilder().byte(UInt8(kind)).byte(0)
        for round in 0..<3 {
            for opcode in 0..<20 where opcode != 17 || round == 2 {
                let base = UInt8(truncatingIfNeeded: opcode &* 37 &+ round &* 11)
                builder.byte(UInt8(opcode)).bytes([base % 60, base % 3, base &+ 1, UInt8(round), base % 7, 1, 0])
            }
        }
        seeds.append(("seed-\(name)", builder.bytes))
        let growth = InputBuilder().byte(UInt8(kind)).byte(4)
        for (opcode, operands) in [(12, [60, 0]), (11, [0, 0]), (16, [0, 0]), (13, [30, 2]), (11, [0, 0]), (13, [40, 0]), (16, [0, 0])] as [(UInt8, [UInt8])] {
            growth.byte(opcode).bytes(operands + [0, 0, 0, 0, 0])
        }
        seeds.append(("seed-\(name)-growth", growth.bytes))
    }
    return seeds
}
