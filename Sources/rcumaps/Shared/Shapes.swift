import ArgumentParser

/// The sizes of a hash map's keys and values, written `<keyBytes>x<valueBytes>` (`16x8`).
///
/// Both sizes are multiples of 8 bytes: keys and values are built from 64-bit words
/// (``BenchKeys/keyWord(_:_:)``, ``BenchKeys/valueWord(_:_:)``).
struct BenchShape: Hashable, Sendable, CustomStringConvertible {
    /// Key size in bytes: a multiple of 8, 8...``maxKeyBytes``.
    let keyBytes: Int
    /// Value size in bytes: a multiple of 8, 8...``maxValueBytes``.
    let valueBytes: Int

    /// Bytes a map stores for one pair of this shape: key and value, each rounded up to 8
    /// (the footprint estimates of `bench` and `memory`).
    var storedPairBytes: Int { (keyBytes + 7) / 8 * 8 + (valueBytes + 7) / 8 * 8 }

    /// 8-byte keys and values: the only shape the baselines, the array and the object map run.
    static let standard = BenchShape(keyBytes: 8, valueBytes: 8)

    /// Largest key (the hash maps' limit, `MapDefinition.maxKeySize`).
    static let maxKeyBytes = 512
    /// Largest value the tool accepts (maps take more; values are built on the stack).
    static let maxValueBytes = 4096

    /// `keyBytes` / 8.
    var keyWords: Int { keyBytes / 8 }
    /// `valueBytes` / 8.
    var valueWords: Int { valueBytes / 8 }

    /// `<keyBytes>x<valueBytes>`, as on the command line.
    var description: String { "\(keyBytes)x\(valueBytes)" }

    /// Parses `<keyBytes>x<valueBytes>`; sizes must be multiples of 8 within the limits.
    ///
    /// - Throws: a `ValidationError` saying what is wrong (ArgumentParser adds the option).
    static func parse(_ text: String) throws(ValidationError) -> BenchShape {
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let key = Int(parts[0]), let value = Int(parts[1]) else {
            throw ValidationError("'\(text)' is not a shape (expected <keyBytes>x<valueBytes>, e.g. 16x8)")
        }
        guard key >= 8, key <= maxKeyBytes, key % 8 == 0 else {
            throw ValidationError("key size \(key) in '\(text)' must be a multiple of 8 from 8 to \(maxKeyBytes)")
        }
        guard value >= 8, value <= maxValueBytes, value % 8 == 0 else {
            throw ValidationError("value size \(value) in '\(text)' must be a multiple of 8 from 8 to \(maxValueBytes)")
        }
        return BenchShape(keyBytes: key, valueBytes: value)
    }
}

/// The keys the benchmark (and `rcumaps memory`) uses.
enum BenchKeys {
    /// The hash key for `index`: scrambled by a large odd multiplier (a bijection on
    /// `UInt64`), so keys are distinct and not sequential.
    @inline(__always)
    static func hashKey(_ index: Int) -> UInt64 {
        (UInt64(truncatingIfNeeded: index) &+ 1) &* 0x9E37_79B9_7F4A_7C15
    }

    /// The value prefilled under `index`.
    @inline(__always)
    static func initialValue(_ index: Int) -> UInt64 {
        UInt64(truncatingIfNeeded: index) ^ 0x5555_5555_5555_5555
    }
}

extension BenchKeys {
    /// Word `word` of the key for `index`. Word 0 is ``hashKey(_:)`` (a bijection of the
    /// index, so keys of any width stay distinct); further words are other mixes of the
    /// index and the word number.
    @inline(__always)
    static func keyWord(_ index: Int, _ word: Int) -> UInt64 {
        guard word != 0 else { return hashKey(index) }
        return (UInt64(truncatingIfNeeded: index) ^ UInt64(truncatingIfNeeded: word) << 56) &* 0xC2B2_AE3D_27D4_EB4F
    }

    /// Word `word` of the value made from `seed` (the prefill uses ``initialValue(_:)`` of
    /// the index; updates use random bits). Word 0 is the seed itself.
    @inline(__always)
    static func valueWord(_ seed: UInt64, _ word: Int) -> UInt64 {
        seed &+ UInt64(truncatingIfNeeded: word) &* 0x9E37_79B9_7F4A_7C15
    }
}

// MARK: - Keys

/// Builds the benchmark's hash keys of one size from key indices.
///
/// The fixed sizes the bench names (8 and 16 bytes) have types of their own, so that a
/// key is built with straight-line stores; ``WordKeys`` serves any other size.
protocol BenchKeyMaker: Sendable {
    /// Key size in bytes.
    var byteCount: Int { get }
    /// Calls `body` with the key for `index` (``BenchKeys/keyWord(_:_:)`` for each word).
    func withKey<Result, Failure: Error>(
        _ index: Int, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result
}

/// 8-byte keys: ``BenchKeys/hashKey(_:)``.
struct Key8: BenchKeyMaker {
    var byteCount: Int { 8 }

    @inline(__always)
    func withKey<Result, Failure: Error>(
        _ index: Int, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var key = BenchKeys.hashKey(index)
        return try withUnsafeBytes(of: &key) { (bytes) throws(Failure) in try body(bytes) }
    }
}

/// 16-byte keys: ``BenchKeys/hashKey(_:)`` followed by a second word derived from the index.
struct Key16: BenchKeyMaker {
    var byteCount: Int { 16 }

    @inline(__always)
    func withKey<Result, Failure: Error>(
        _ index: Int, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var key = (BenchKeys.keyWord(index, 0), BenchKeys.keyWord(index, 1))
        return try withUnsafeBytes(of: &key) { (bytes) throws(Failure) in try body(bytes) }
    }
}

/// Keys of any multiple of 8 bytes, built word by word in a stack buffer.
struct WordKeys: BenchKeyMaker {
    /// Words per key (at least 1).
    let words: Int

    var byteCount: Int { words * 8 }

    @inline(__always)
    func withKey<Result, Failure: Error>(
        _ index: Int, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try withStackWords(words, { BenchKeys.keyWord(index, $0) }, body)
    }
}

// MARK: - Values

/// Builds the benchmark's values of one size and reads them back whole.
///
/// A lookup folds every word of the stored value into its checksum
/// (``fold(_:)``), so a wider value costs what touching all of it costs.
protocol BenchValueMaker: Sendable {
    /// Value size in bytes.
    var byteCount: Int { get }
    /// Calls `body` with the value made from `seed` (``BenchKeys/valueWord(_:_:)`` for each word).
    func withValue<Result, Failure: Error>(
        _ seed: UInt64, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result
    /// The wrapping sum of every word of the stored value at `stored` (which need not be aligned).
    func fold(_ stored: UnsafeRawPointer) -> UInt64
    /// Calls `body` with room for one value on the stack, uninitialised, for a user-mode
    /// lookup to copy into (a hit writes it whole; a miss leaves it unread). It was zeroed
    /// on every lookup, up to 4 KiB of stores the typed maps' lookups do not make and a
    /// batch's buffers pay once: about 95 of the 8x4096 user-mode lookup's 300 ns (found by
    /// review, 2026-12-06, twenty-fourth session).
    func withOutput<Result>(_ body: (UnsafeMutableRawBufferPointer) -> Result) -> Result
}

/// 8-byte values: the seed itself.
struct Value8: BenchValueMaker {
    var byteCount: Int { 8 }

    @inline(__always)
    func withValue<Result, Failure: Error>(
        _ seed: UInt64, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var value = seed
        return try withUnsafeBytes(of: &value) { (bytes) throws(Failure) in try body(bytes) }
    }

    @inline(__always)
    func fold(_ stored: UnsafeRawPointer) -> UInt64 { stored.loadUnaligned(as: UInt64.self) }

    @inline(__always)
    func withOutput<Result>(_ body: (UnsafeMutableRawBufferPointer) -> Result) -> Result {
        var value: UInt64 = 0
        return withUnsafeMutableBytes(of: &value) { body($0) }
    }
}

/// 64-byte values: eight words, all read by every lookup.
struct Value64: BenchValueMaker {
    var byteCount: Int { 64 }

    @inline(__always)
    func withValue<Result, Failure: Error>(
        _ seed: UInt64, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var value = (BenchKeys.valueWord(seed, 0), BenchKeys.valueWord(seed, 1), BenchKeys.valueWord(seed, 2),
                     BenchKeys.valueWord(seed, 3), BenchKeys.valueWord(seed, 4), BenchKeys.valueWord(seed, 5),
                     BenchKeys.valueWord(seed, 6), BenchKeys.valueWord(seed, 7))
        return try withUnsafeBytes(of: &value) { (bytes) throws(Failure) in try body(bytes) }
    }

    @inline(__always)
    func fold(_ stored: UnsafeRawPointer) -> UInt64 {
        var sum: UInt64 = 0
        for word in 0..<8 { sum &+= stored.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self) }
        return sum
    }

    @inline(__always)
    func withOutput<Result>(_ body: (UnsafeMutableRawBufferPointer) -> Result) -> Result {
        withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { body($0) }
    }
}

/// Values of any multiple of 8 bytes, built word by word in a stack buffer.
struct WordValues: BenchValueMaker {
    /// Words per value (at least 1).
    let words: Int

    var byteCount: Int { words * 8 }

    @inline(__always)
    func withValue<Result, Failure: Error>(
        _ seed: UInt64, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try withStackWords(words, { BenchKeys.valueWord(seed, $0) }, body)
    }

    @inline(__always)
    func fold(_ stored: UnsafeRawPointer) -> UInt64 {
        var sum: UInt64 = 0
        for word in 0..<words { sum &+= stored.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self) }
        return sum
    }

    @inline(__always)
    func withOutput<Result>(_ body: (UnsafeMutableRawBufferPointer) -> Result) -> Result {
        withUnsafeTemporaryAllocation(byteCount: byteCount, alignment: 8) { body($0) }
    }
}

/// Runs `body` with `count` words, word `i` being `word(i)`, in a stack buffer (the bytes of
/// a key or value of any multiple of 8 bytes).
@inline(__always)
func withStackWords<Result, Failure: Error>(
    _ count: Int, _ word: (Int) -> UInt64, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
) throws(Failure) -> Result {
    let outcome = withUnsafeTemporaryAllocation(of: UInt64.self, capacity: count) { buffer in
        for index in 0..<count { buffer.initializeElement(at: index, to: word(index)) }
        return Swift.Result { () throws(Failure) in try body(UnsafeRawBufferPointer(buffer)) }
    }
    return try outcome.get()
}
