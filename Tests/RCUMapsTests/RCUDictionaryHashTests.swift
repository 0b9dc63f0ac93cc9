@testable import RCUMaps
import Testing

/// The integer-key hash of `RCUDictionary` (`hash(of:)`: the key's bits, a per-dictionary
/// seed and two multiply–xorshift rounds): keys that differ only in some bits must still spread over
/// the buckets (the low bits) and the slot tags (the top seven bits).
@Suite("RCUDictionary integer hash")
struct RCUDictionaryHashTests {
    /// Distinct values of `bits(hash)` over `keys`.
    static func spread(_ dictionary: RCUDictionary<Int, Int>, _ keys: [Int], _ bits: (Int) -> Int) -> Int {
        Set(keys.map { bits(dictionary.hash(of: $0)) }).count
    }

    @Test(arguments: [0, 12, 32, 40, 52])
    func keysDifferingInOneBitRangeSpreadOverBucketsAndTags(shift: Int) {
        let dictionary = RCUDictionary<Int, Int>()
        // 4096 keys that differ only in 12 bits starting at `shift`.
        let keys = (0..<4096).map { $0 << shift }
        // Random values would take about 2590 of the 4096 low 12-bit values and all 128 tags;
        // a hash that left the low bits to the low bits of the key (a plain multiply) would
        // put keys shifted by 12 or more into one bucket, and a single full-width multiply
        // with its halves folded took only about 1750 with keys shifted by 40.
        let buckets = Self.spread(dictionary, keys) { $0 & 4095 }
        let tags = Self.spread(dictionary, keys) { Int(UInt(bitPattern: $0) >> 57) }
        #expect(buckets > 2300, "12-bit bucket indices taken: \(buckets) of 4096")
        #expect(tags == 128, "tags taken: \(tags) of 128")
    }

    @Test func seedsDifferBetweenDictionaries() {
        let first = RCUDictionary<UInt32, Int>(), second = RCUDictionary<UInt32, Int>()
        let keys: [UInt32] = Array(0..<64)
        #expect(keys.map { first.hash(of: $0) } != keys.map { second.hash(of: $0) })
    }

    @Test func smallIntegerKeysRoundTripWithTheirOwnHash() {
        let dictionary = RCUDictionary<Int16, Int>()
        for key in Int16.min...Int16.max where key % 7 == 0 { dictionary[key] = Int(key) }
        for key in Int16.min...Int16.max {
            #expect(dictionary[key] == (key % 7 == 0 ? Int(key) : nil))
        }
        #expect(dictionary.count == (Int(Int16.max) - Int(Int16.min) + 1 + 6) / 7)
    }

    /// A key type that implements `hashValue` itself (deprecated, still legal): its values
    /// are multiples of 2^20.
    struct ShiftedID: Hashable, Sendable {
        let id: Int
        var hashValue: Int { id << 20 }
        func hash(into hasher: inout Hasher) { hasher.combine(hashValue) }
        static func == (a: Self, b: Self) -> Bool { a.id == b.id }
    }

    /// Such keys still spread over the stripes and buckets: their `hashValue` was used as it
    /// came, so every key went to stripe 0, bucket 0 and one tag — one chain of about
    /// N / 3 overflow buckets, each operation O(N) (found by review, 2026-12-06).
    @Test func aStructuredHashValueStillSpreads() {
        let dictionary = RCUDictionary<ShiftedID, Int>()
        let keys = (0..<6000).map(ShiftedID.init)
        for key in keys { dictionary[key] = key.id }
        let stripes = Set(keys.map { dictionary.hash(of: $0) & dictionary.stripeMask }).count
        #expect(stripes == dictionary.stripeMask + 1, "stripes taken: \(stripes) of \(dictionary.stripeMask + 1)")
        let overflow = Epoch.withSection { _ in dictionary.currentTable.overflowBucketCount }
        let buckets = Epoch.withSection { _ in dictionary.currentTable.bucketCount }
        // Random hashes overflow a small share of the buckets (2,000 before the fix).
        #expect(overflow < buckets / 4, "overflow buckets \(overflow), buckets \(buckets)")
        for key in keys { #expect(dictionary[key] == key.id) }
    }
}
