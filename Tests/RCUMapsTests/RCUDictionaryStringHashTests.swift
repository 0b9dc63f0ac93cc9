@testable import RCUMaps
import Testing

/// The `String` key hash of `RCUDictionary` (`StringKeyHash`): equal strings — `==` is
/// canonical equivalence — must hash alike however they are spelled and stored, and
/// distinct strings must spread over the buckets and the slot tags.
@Suite("RCUDictionary String hash")
struct RCUDictionaryStringHashTests {
    /// The scalars `StringKeyHash` maps to ASCII, and what to.
    static let asciiEquivalents: [UInt32: String] = [0x037E: ";", 0x1FEF: "`", 0x212A: "K"]

    /// Every non-ASCII scalar that `==` finds equal to a one-character ASCII string is in the
    /// hash's list, and no other: if a new Unicode version added one, lookups of it would miss.
    @Test func theASCIIEquivalentScalarsAreExactlyTheHashList() {
        var ascii: Set<String> = []
        for byte in UInt8(0)..<0x80 { ascii.insert(String(Unicode.Scalar(byte))) }
        var found: [UInt32: String] = [:]
        for value in UInt32(0x80)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let string = String(scalar)
            if let match = ascii.firstIndex(of: string) { found[value] = ascii[match] }
        }
        #expect(found == Self.asciiEquivalents)
    }

    /// Canonically equivalent spellings hash alike and find each other's entries.
    @Test func canonicallyEquivalentSpellingsHashAlikeAndMatch() {
        let pairs: [(String, String)] = [
            ("K", "\u{212A}"),
            ("a;b`cK", "a\u{37E}b\u{1FEF}c\u{212A}"),
            ("temperature in K: 300", "temperature in \u{212A}: 300"),
            (String(repeating: "K;", count: 20), String(repeating: "\u{212A}\u{37E}", count: 20)),
            ("caf\u{E9}", "cafe\u{301}"),
            ("\u{C5}ngstr\u{F6}m", "\u{212B}ngstro\u{308}m"),
            ("\u{AC00}", "\u{1100}\u{1161}"),                 // Hangul syllable, composed and not
            ("K\u{301}", "\u{212A}\u{301}"),                   // not ASCII-equivalent either way
        ]
        let dictionary = RCUDictionary<String, Int>()
        for (index, (first, second)) in pairs.enumerated() {
            #expect(first == second)
            #expect(dictionary.hash(of: first) == dictionary.hash(of: second), "\(first.debugDescription)")
            dictionary[first] = index
            #expect(dictionary[second] == index)
            dictionary[second] = index + 100
            #expect(dictionary[first] == index + 100)
        }
        #expect(dictionary.count == pairs.count)
        #expect(dictionary.hash(of: "K") != dictionary.hash(of: "K\u{301}"))
    }

    /// The same characters stored three ways — a small (inline) string, a native buffer, and
    /// a copy of a substring of a longer string — hash alike at every length up to 70.
    @Test func storageDoesNotChangeTheHash() {
        let dictionary = RCUDictionary<String, Int>()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789-_:/.")
        for length in 0...70 {
            let characters = (0..<length).map { alphabet[($0 * 7 + length) % alphabet.count] }
            let literal = String(characters)
            var built = ""
            for character in characters { built.append(character) }
            let padded = "<" + literal + ">"
            let sliced = String(padded.dropFirst().dropLast())
            #expect(built == literal && sliced == literal)
            let hash = dictionary.hash(of: literal)
            #expect(dictionary.hash(of: built) == hash && dictionary.hash(of: sliced) == hash, "length \(length)")
            // The path for strings that are not all ASCII (or cannot lend their bytes) gives
            // an ASCII string the fast path's hash. (On Linux every string lends its bytes,
            // so the three storages above all take the fast path: found by review,
            // 2026-12-06.)
            #expect(StringKeyHash.hash(ofNonASCII: literal, seed: 7) == StringKeyHash.hash(literal, seed: 7), "length \(length)")
        }
    }

    /// 100 000 distinct keys (of every length from 1 to 40, most differing in one or two
    /// characters) spread over 4096 buckets and all 128 tags, and collide almost never.
    @Test func distinctKeysSpreadOverBucketsAndTags() {
        let dictionary = RCUDictionary<String, Int>()
        let keys = (0..<100_000).map { index in
            let digits = String(index, radix: 36)
            return String(repeating: "x", count: index % 40) + digits
        }
        #expect(Set(keys).count == keys.count)
        let hashes = keys.map { dictionary.hash(of: $0) }
        let buckets = Set(hashes.map { $0 & 4095 }).count
        let tags = Set(hashes.map { Int(UInt(bitPattern: $0) >> 57) }).count
        #expect(buckets == 4096, "buckets taken: \(buckets) of 4096")
        #expect(tags == 128, "tags taken: \(tags) of 128")
        // 100 000 random 64-bit values collide with probability about 3e-10.
        #expect(Set(hashes).count == keys.count)
        // A key differing in one character anywhere changes about half the hash bits.
        let base = String(repeating: "k", count: 33)
        for position in 0..<33 {
            var changed = Array(base.utf8)
            changed[position] = UInt8(ascii: "j")
            let flipped = (UInt(bitPattern: dictionary.hash(of: base)) ^ UInt(bitPattern: dictionary.hash(of: String(decoding: changed, as: UTF8.self)))).nonzeroBitCount
            #expect((16...48).contains(flipped), "position \(position): \(flipped) bits changed")
        }
    }

    /// The byte comparison of a lookup's key with a node's stored bytes, which runs only
    /// once the hashes match: every length up to past the inline limit (32), with every
    /// single byte changed in turn — including the bytes only the overlapping loads cover.
    /// Each side is allocated with exactly its bytes, so the address sanitizer's runs catch
    /// a load past the end; and the bytes that follow differ, so a comparison that reads
    /// them answers wrongly in any build.
    @Test func storedKeyBytesCompareEveryByte() {
        typealias Layout = DictionaryNodeLayout<String, Int>
        var generator = SystemRandomNumberGenerator()
        for count in 1...48 {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let a = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
            defer { a.deallocate(); b.deallocate() }
            a.copyBytes(from: bytes)
            b.copyBytes(from: bytes)
            #expect(Layout.bytesEqual(a.baseAddress!, b.baseAddress!, count), "\(count) equal bytes")
            for position in 0..<count {
                b[position] ^= 0x20
                #expect(!Layout.bytesEqual(a.baseAddress!, b.baseAddress!, count), "\(count) bytes, byte \(position) differs")
                b[position] ^= 0x20
            }
            // Equal prefixes of `count` bytes, followed by bytes that differ.
            let longA = bytes + [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]
            let longB = bytes + [0xFF, 0xEE, 0xDD, 0xCC, 0xBB, 0xAA, 0x99, 0x88]
            longA.withUnsafeBytes { first in
                #expect(longB.withUnsafeBytes { Layout.bytesEqual(first.baseAddress!, $0.baseAddress!, count) },
                        "\(count) equal bytes, different bytes after them")
            }
        }
    }

    @Test func seedsDifferBetweenDictionaries() {
        let first = RCUDictionary<String, Int>(), second = RCUDictionary<String, Int>()
        let keys = (0..<64).map { "key-\($0)" } + ["caf\u{E9}"]
        #expect(keys.map { first.hash(of: $0) } != keys.map { second.hash(of: $0) })
    }
}
