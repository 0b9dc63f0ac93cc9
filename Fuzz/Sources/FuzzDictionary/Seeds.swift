import FuzzSupport

/// The seed corpus (`FuzzDictionary --write-seeds Corpus/FuzzDictionary`): for each kind,
/// every opcode in three rounds with different operands (the drop, 17, in the last round
/// only); a growth program (bulk inserts, a pass, bulk removals, a pass); and a long program
/// of 400 operations (libFuzzer's length control starts its limit at the corpus's longest
/// input and raises it slowly, up to 4,096 bytes: without a long seed, inputs stayed at a
/// few dozen operations).
func dictionarySeeds() -> [(String, [UInt8])] {
    let names = ["string-int", "string-object", "int-int", "int-object", "int-wide", "string-wide", "int-object-wide",
                 "colliding-int"]
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
        let long = InputBuilder().byte(UInt8(kind)).byte(0)
        for step in 0..<400 {
            let opcode = UInt8([0, 1, 3, 4, 5, 8, 9, 2, 6, 7, 10, 0, 1, 18][step % 14])
            let base = UInt8(truncatingIfNeeded: step &* 7)
            long.byte(step % 97 == 96 ? 11 : opcode).bytes([base % 50, UInt8(step % 4), base &+ 3, base % 5, 1, 0, 0])
        }
        seeds.append(("seed-\(name)-long", long.bytes))
    }
    return seeds
}
