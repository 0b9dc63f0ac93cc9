import FuzzSupport

/// String keys that collide in interesting ways: ASCII keys short (stored inline in the
/// `String`) and long (on the heap); canonically equivalent pairs and triples in different
/// encodings — which Swift's `==` (and so the model, a `Dictionary`) treats as one key, and
/// which `RCUDictionary`'s own string hash must therefore hash alike — among them singletons
/// that decompose to ASCII (KELVIN SIGN → "K"), combining marks in either order, Hangul
/// syllables and jamo; compatibility-only look-alikes that are *different* keys; the empty
/// string; long non-ASCII keys.
enum DictionaryKeys {
    static let strings: [String] = {
        var keys: [String] = ["", "a", "b", "K", "k", "key", "key-1", "key-2", "A", "Å", "Ω", "é", "fi", "ss"]
        keys += (0..<24).map { "key-\($0)" }
        keys += (0..<8).map { "a rather long key, number \($0), past fifteen bytes" }
        keys += [
            "\u{212A}",                      // KELVIN SIGN ≡ "K"
            "\u{212B}", "A\u{30A}",          // ANGSTROM SIGN ≡ "Å" ≡ A + ring
            "\u{2126}",                      // OHM SIGN ≡ "Ω"
            "e\u{301}",                      // ≡ "é"
            "caf\u{E9}", "cafe\u{301}",      // ≡ each other
            "a\u{301}\u{316}", "a\u{316}\u{301}", "\u{E1}\u{316}",  // marks in either order ≡
            "\u{AC00}", "\u{1100}\u{1161}",  // 가 ≡ ᄀ + ᅡ
            "\u{FB01}",                      // LATIN SMALL LIGATURE FI: compatibility only, ≠ "fi"
            "\u{DF}",                        // ß ≠ "ss"
            "👍🏽", "👍",
            String(repeating: "e\u{301}", count: 12), String(repeating: "\u{E9}", count: 12),
            "a rather long key with a mark at the end: e\u{301}", "a rather long key with a mark at the end: \u{E9}",
            "K\u{212A}K", "KKK", "\u{212A}\u{212A}\u{212A}",
            // The three scalars whose canonical equivalents are ASCII (the string hash maps
            // them itself), alone, mixed and in long keys.
            ";", "\u{037E}", "`", "\u{1FEF}", "a;b`K", "a\u{037E}b\u{1FEF}\u{212A}", "a;b\u{1FEF}K",
            "a rather long key with a kelvin sign: K;`", "a rather long key with a kelvin sign: \u{212A}\u{037E}\u{1FEF}",
            "\u{212A}\u{301}", "K\u{301}", "\u{1E30}",  // ≡ one another, not ASCII
        ]
        return keys
    }()

    /// A string key: one of the pool, or (selector ≥ 0xF0) the pool's key with a suffix.
    static func string(_ operands: inout FuzzInput) -> String {
        let selector = operands.byte()
        let base = strings[Int(selector) % strings.count]
        return selector >= 0xF0 ? base + String(operands.byte() % 4) : base
    }

    /// A colliding key: 48 values over three hash values.
    static func colliding(_ operands: inout FuzzInput) -> CollidingKey { CollidingKey(value: integer(&operands)) }

    /// An integer key: small (so that keys repeat), negative, or any.
    static func integer(_ operands: inout FuzzInput) -> Int {
        let selector = operands.byte()
        switch selector {
        case 0..<0xC0: return Int(selector % 48)
        case 0xC0..<0xE0: return -Int(selector % 8) - 1
        default: return Int(truncatingIfNeeded: operands.u32()) << (selector & 1 == 0 ? 0 : 32)
        }
    }
}

/// A key type whose hash says little: every key hashes to one of three values, so keys
/// that differ share their full hash and their chain, and only `==` tells them apart.
struct CollidingKey: Hashable, Sendable, CustomStringConvertible {
    let value: Int
    func hash(into hasher: inout Hasher) { hasher.combine(value % 3) }
    var description: String { "#\(value)" }
}
