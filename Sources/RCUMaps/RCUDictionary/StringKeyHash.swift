/// How ``RCUDictionary`` hashes `String` keys: a seeded multiply–fold hash of the UTF-8
/// bytes, about a tenth of the instructions of `String.hashValue` (SipHash-1-3 behind the
/// standard library's `Hasher`, which also feeds the bytes one call at a time) for ASCII
/// keys; a non-ASCII key costs a scan of its scalars on top of `hashValue`.
///
/// Equal strings must hash equal, and `String`'s `==` is canonical equivalence, so bytes
/// alone are not enough: `"\u{212A}"` (KELVIN SIGN) `== "K"`. The rule this type keeps:
/// - An all-ASCII string is its own normal form; its bytes are hashed (`asciiHash`).
/// - A string with other scalars is canonically equivalent to an ASCII string only if every
///   one of its scalars is ASCII or one of the three scalars whose canonical decomposition
///   is a single ASCII scalar: U+037E GREEK QUESTION MARK (`;`), U+1FEF GREEK VARIA
///   (`` ` ``) and U+212A KELVIN SIGN (`K`) — canonical composition never yields an ASCII
///   scalar, and no scalar decomposes canonically into several ASCII ones. Such a string is
///   hashed as the ASCII string it is equivalent to. Every other string cannot equal an
///   ASCII string, and hashes with the standard library's `hashValue`, which hashes the
///   normal form. The three scalars are Unicode's whole list as of this toolchain; the test
///   `RCUDictionaryStringHashTests.theASCIIEquivalentScalarsAreExactlyTheHashList` checks
///   every scalar against `==`, so a future Unicode version that added one would fail it
///   rather than miss lookups.
///
/// Like the integer keys' finaliser, it spreads any keys over the buckets with a random
/// seed per dictionary, but is not designed to withstand an attacker who picks colliding
/// keys after learning the seed (SipHash is); see ``RCUDictionary``.
@usableFromInline
enum StringKeyHash {
    /// Odd 64-bit constants with well-spread bits (from the digits of π, e and √2).
    @usableFromInline static let mixA: UInt64 = 0x243F_6A88_85A3_08D3
    @usableFromInline static let mixB: UInt64 = 0xB7E1_5162_8AED_2A6B
    @usableFromInline static let mixC: UInt64 = 0x6A09_E667_F3BC_C909

    /// The hash of `string` with `seed`.
    @inlinable @inline(__always)
    static func hash(_ string: String, seed: UInt) -> Int {
        // Native strings (small or not) lend their UTF-8 contiguously; the closure returns
        // nil for non-ASCII bytes, the outer optional is nil for a string that cannot lend.
        if let hash = string.utf8.withContiguousStorageIfAvailable({ asciiHash(UnsafeRawBufferPointer($0), seed: seed) }),
           let hash {
            return hash
        }
        return hash(ofNonASCII: string, seed: seed)
    }

    /// The full 128-bit product of `a` and `b`, folded to 64 bits: every input bit reaches
    /// the middle bits of the product, and the fold brings the high half down.
    @inlinable @inline(__always)
    static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    /// The hash of `bytes` with `seed`, or nil when a byte is not ASCII.
    ///
    /// Sixteen bytes a step, each step one 64×64→128-bit multiply of the two words (each
    /// xored with the running state and a constant); the last 1–16 bytes are read as two
    /// (possibly overlapping) words — of 8 bytes, or of 4 for 4 to 8 bytes, and 1 to 3
    /// bytes one by one — and the length goes into the final step, so strings that differ
    /// only in length or in an overlap region still differ.
    @inlinable @inline(__always)
    static func asciiHash(_ bytes: UnsafeRawBufferPointer, seed: UInt) -> Int? {
        let count = bytes.count
        var state = UInt64(seed) ^ mixC
        var highBits: UInt64 = 0
        var offset = 0
        while count - offset > 16 {
            let first = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let second = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            highBits |= first | second
            state = fold(first ^ state ^ mixA, second ^ mixB)
            offset += 16
        }
        // 0 to 16 bytes remain, from `offset`.
        let remaining = count - offset
        var first: UInt64 = 0
        var second: UInt64 = 0
        if remaining > 8 {
            first = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            second = bytes.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
        } else if remaining >= 4 {
            first = UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            second = UInt64(bytes.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self))
        } else if remaining > 0 {
            first = UInt64(bytes[offset]) | UInt64(bytes[offset + remaining / 2]) << 8
            second = UInt64(bytes[count - 1])
        }
        highBits |= first | second
        guard highBits & 0x8080_8080_8080_8080 == 0 else { return nil }
        state = fold(first ^ state ^ mixA, second ^ mixB)
        return Int(truncatingIfNeeded: fold(state ^ mixC, UInt64(truncatingIfNeeded: count) ^ mixA))
    }

    /// A string that is not all ASCII (or cannot lend its bytes): hashed as the ASCII string
    /// it is canonically equivalent to, if any, and otherwise by `hashValue` with `seed`.
    ///
    /// The scalars are scanned first, allocating nothing: only a string whose every scalar is
    /// ASCII or one of the three builds its ASCII equivalent. (The equivalent's buffer was
    /// reserved before the scan, a heap allocation on every operation of every non-ASCII
    /// key — "café", any CJK key — that then hashed with `hashValue` anyway: found by
    /// review, 2026-12-06.)
    @usableFromInline
    static func hash(ofNonASCII string: String, seed: UInt) -> Int {
        for scalar in string.unicodeScalars {
            switch scalar.value {
            case 0..<0x80, 0x037E, 0x1FEF, 0x212A: continue
            default:
                // Not equivalent to any ASCII string: only other non-ASCII strings can equal
                // it, and `hashValue` gives all of them (canonically equivalent) one hash.
                return Int(truncatingIfNeeded: fold(UInt64(UInt(bitPattern: string.hashValue)) ^ mixB, UInt64(seed) ^ mixC))
            }
        }
        var equivalent: [UInt8] = []
        equivalent.reserveCapacity(string.utf8.count)
        for scalar in string.unicodeScalars {
            switch scalar.value {
            case 0x037E: equivalent.append(UInt8(ascii: ";"))
            case 0x1FEF: equivalent.append(UInt8(ascii: "`"))
            case 0x212A: equivalent.append(UInt8(ascii: "K"))
            default: equivalent.append(UInt8(truncatingIfNeeded: scalar.value))
            }
        }
        return equivalent.withUnsafeBytes { asciiHash($0, seed: seed)! }
    }
}
