import ObjectMapProvider
import RCUMaps

/// What a stress worker writes: a *token* naming the key it belongs to, the writer and
/// the writer's version, packed into 64 bits.
///
/// Layout: key index (20 bits, 63…44) | writer (8 bits, 43…36) | version (36 bits).
/// Writer 0 is the prefill (always ``prefillVersion``); worker `n` writes as writer `n + 1`, with a
/// per-worker version that only grows, so two writes never share a token.
///
/// For the object map the token is simply the handle stored (no writer, no version).
enum StressToken {
    /// "No value": the expectation for an absent key. Its key field (0xFFFFF) is never a valid key.
    static let absent: UInt64 = .max

    @inline(__always)
    static func make(key: Int, writer: Int, version: UInt64) -> UInt64 {
        UInt64(truncatingIfNeeded: key) << 44 | UInt64(truncatingIfNeeded: writer) << 36 | (version & versionMask)
    }

    static let versionMask: UInt64 = (1 << 36) - 1

    /// The version of the prefill's tokens (writer 0): 1, so that no token is all zero bits.
    static let prefillVersion: UInt64 = 1

    @inline(__always) static func key(_ token: UInt64) -> Int { Int(truncatingIfNeeded: token >> 44) }
    @inline(__always) static func writer(_ token: UInt64) -> Int { Int(truncatingIfNeeded: (token >> 36) & 0xFF) }
    @inline(__always) static func version(_ token: UInt64) -> UInt64 { token & versionMask }

    /// `key/writer/version`, for messages.
    static func describe(_ token: UInt64) -> String {
        token == absent ? "absent" : "key \(key(token)) writer \(writer(token)) version \(version(token))"
    }
}

/// The 32-byte values of the byte maps: four words, word `i` = `mix(token ^ salt[i])`.
///
/// `mix` is the MurmurHash3 64-bit finaliser, a bijection, so every word decodes on its own
/// (`unmix(word) ^ salt[i]`). A whole value decodes to one token in all four words; a torn
/// value (words from two writes) decodes to different tokens; zeroed or foreign memory
/// decodes to garbage (an all-zero word gives `salt[i]`, whose key field 0xFFFFF is never valid).
enum StressWords {
    static let count = 4
    static let valueSize = count * 8

    @inline(__always)
    static func salt(_ index: Int) -> UInt64 {
        switch index {
        case 0: 0xFFFF_F0A5_5A0F_F001
        case 1: 0xFFFF_F1C3_3C1E_E102
        case 2: 0xFFFF_F296_692D_D203
        default: 0xFFFF_F3E1_1E3C_C304
        }
    }

    static let multiplier1: UInt64 = 0xFF51_AFD7_ED55_8CCD
    static let multiplier2: UInt64 = 0xC4CE_B9FE_1A85_EC53
    static let inverse1 = modularInverse(multiplier1)
    static let inverse2 = modularInverse(multiplier2)

    /// The multiplicative inverse of an odd `value` modulo 2^64 (Newton's iteration).
    static func modularInverse(_ value: UInt64) -> UInt64 {
        var inverse = value  // correct to 3 bits for odd values
        for _ in 0..<5 { inverse = inverse &* (2 &- value &* inverse) }
        return inverse
    }

    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var bits = value
        bits ^= bits >> 33
        bits = bits &* multiplier1
        bits ^= bits >> 33
        bits = bits &* multiplier2
        bits ^= bits >> 33
        return bits
    }

    @inline(__always)
    static func unmix(_ value: UInt64) -> UInt64 {
        var bits = value
        bits ^= bits >> 33
        bits = bits &* inverse2
        bits ^= bits >> 33
        bits = bits &* inverse1
        bits ^= bits >> 33
        return bits
    }

    @inline(__always)
    static func word(_ token: UInt64, _ index: Int) -> UInt64 { mix(token ^ salt(index)) }

    @inline(__always)
    static func token(_ word: UInt64, _ index: Int) -> UInt64 { unmix(word) ^ salt(index) }

    /// Writes the value of `token` to `destination` (32 bytes).
    @inline(__always)
    static func encode(_ token: UInt64, into destination: UnsafeMutableRawPointer) {
        for index in 0..<count {
            destination.storeBytes(of: word(token, index), toByteOffset: index * 8, as: UInt64.self)
        }
    }

    /// The token of a whole value, or `nil` if its words disagree.
    @inline(__always)
    static func decode(_ value: UnsafeRawPointer) -> UInt64? {
        let first = token(value.loadUnaligned(as: UInt64.self), 0)
        for index in 1..<count where token(value.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self), index) != first {
            return nil
        }
        return first
    }
}

/// A 64-bit digest of a per-CPU value (every CPU's word, in CPU order), for the per-CPU
/// runs' end checks: an owner keeps the digest of what it read back after its last write
/// of a key, not a copy of every CPU's word (as much memory as the map's values). Each step
/// is a bijection of the word given the digest so far (``StressWords/mix(_:)`` is one), so
/// values that differ in one CPU's word always differ in digest; values that differ in
/// more share one with odds of about 2^-64, which could only hide a fault, never report one.
enum StressDigest {
    static func of(_ values: [UInt64]) -> UInt64 {
        var digest: UInt64 = 0x9E37_79B9_7F4A_7C15
        for value in values { digest = StressWords.mix(digest ^ value) &+ 0x9E37_79B9_7F4A_7C15 }
        return digest
    }
}

/// Keys of the byte hash maps: `tag | index`, so a key from iteration can be checked.
enum StressKeys {
    static let tag: UInt64 = 0x5354_5245_5300_0000  // "STRES" in the high bytes
    static let indexMask: UInt64 = 0xF_FFFF

    @inline(__always)
    static func hashKey(_ index: Int) -> UInt64 { tag | UInt64(truncatingIfNeeded: index) }

    /// The index of a hash key, or `nil` if it is not one of ours.
    @inline(__always)
    static func index(ofHashKey key: UInt64) -> Int? {
        key & ~indexMask == tag ? Int(truncatingIfNeeded: key & indexMask) : nil
    }
}

/// The objects of an object-map stress run: a provider registered for a type and pool tags
/// of its own, and a pool of objects shared by groups of keys.
///
/// Key `k` may hold object `j` only when `j % groups == k % groups`: each key has
/// `perGroup` possible objects, and each object is shared by many keys (so their reference
/// counts are contended by several keys at once).
final class StressObjects: Sendable {
    /// The custom map type of the stress run's provider (the bench uses 4100).
    static let mapType = MapType(rawValue: 4200)
    /// The type of the same provider on the lock-free hash (`object-map-lockfree`; the tests
    /// register 4201–4203 for stand-ins while stress runs go on).
    static let lockFreeMapType = MapType(rawValue: 4210)
    /// Pool tag of the objects.
    static let objectTag = PoolTag("stob")
    /// Objects per group.
    static let perGroup = 4

    let provider: ObjectMapProvider
    let handles: [ObjectMapProvider.Handle]
    let groups: Int
    /// `handleIndex[handle - firstHandle]`: the object's index, or -1.
    private let handleIndex: [Int32]
    private let firstHandle: UInt32

    /// Registers the provider for `type` and opens `groups * perGroup` objects under
    /// `objectTag` (the defaults: ``mapType``, ``objectTag``; tests pass others).
    init(keys: Int, type: MapType = StressObjects.mapType, base: ProviderBaseMap = .hashBucketLocked,
         objectTag: PoolTag = StressObjects.objectTag) throws(MapError) {
        provider = try ObjectMapProvider(type: type, base: base, objectTag: objectTag)
        groups = min(64, keys)
        var handles: [ObjectMapProvider.Handle] = []
        do throws(MapError) {
            for _ in 0..<(groups * Self.perGroup) { handles.append(try provider.makeObject()) }
        } catch {
            for handle in handles { provider.close(handle) }
            try? provider.registration.unregister()
            throw error
        }
        self.handles = handles
        let first = handles.min() ?? 0
        let last = handles.max() ?? 0
        var index = [Int32](repeating: -1, count: Int(last - first) + 1)
        for (position, handle) in handles.enumerated() { index[Int(handle - first)] = Int32(position) }
        handleIndex = index
        firstHandle = first
    }

    /// The index of `handle` among the run's objects, or `nil`.
    @inline(__always)
    func index(of handle: UInt32) -> Int? {
        guard handle >= firstHandle, Int(handle - firstHandle) < handleIndex.count else { return nil }
        let position = handleIndex[Int(handle - firstHandle)]
        return position >= 0 ? Int(position) : nil
    }

    /// Whether key `key` may hold `handle`.
    @inline(__always)
    func belongs(_ handle: UInt32, toKey key: Int) -> Bool {
        guard let position = index(of: handle) else { return false }
        return position % groups == key % groups
    }

    /// The `choice`-th object key `key` may hold.
    @inline(__always)
    func handle(forKey key: Int, choice: Int) -> UInt32 {
        handles[key % groups + (choice % Self.perGroup) * groups]
    }

    /// Closes every handle and unregisters the provider (no map of its type may be left).
    func close() -> MapError? {
        for handle in handles { provider.close(handle) }
        do {
            try provider.registration.unregister()
            return nil
        } catch {
            return error
        }
    }
}


/// The newest version a reader has seen of each writer's values under each key: the
/// time-travel check ("of one writer's values under one key, a reader never sees an older
/// one after a newer one") for every writer at once. Comparing with the last value seen
/// only, of whichever writer, missed a stale value of writer A read after any value of
/// writer B (found by review, 2026-12-05, sixteenth session: on shared keys most stale
/// reads went unnoticed). One word per key and writer (the prefill, writer 0, and each
/// worker): kept only while every reader's record fits ``budgetWords`` together (256 MiB);
/// beyond, `isTracking` is false and the caller compares with the last value seen, as
/// before. (A record of its own per reader grew with keys × threads² with no bound: 8 GiB
/// at 255 threads and 16 Ki keys, found by review, 2026-12-05.)
struct NewestVersions {
    private var cells: [UInt64]
    private let writers: Int

    /// Words the records of all readers of one run may take together: 32 Mi (256 MiB).
    static let budgetWords = 1 << 25

    /// Whether `threads` readers each keep a record for `keys` keys and writers
    /// 0…`threads` within ``budgetWords``.
    static func tracksEveryWriter(keys: Int, threads: Int) -> Bool {
        let (perReader, overflow) = keys.multipliedReportingOverflow(by: threads + 1)
        let (total, overflowTotal) = perReader.multipliedReportingOverflow(by: threads)
        return !overflow && !overflowTotal && total <= budgetWords
    }

    /// Room for `keys` keys and writers 0…`threads`, if ``tracksEveryWriter(keys:threads:)``.
    init(keys: Int, threads: Int) {
        writers = threads + 1
        cells = Self.tracksEveryWriter(keys: keys, threads: threads)
            ? [UInt64](repeating: 0, count: keys * writers) : []
    }

    var isTracking: Bool { !cells.isEmpty }

    /// Notes that `token` was read under `key`; returns the write seen before that makes it
    /// a time travel, else nil: a newer version of the same writer, or, for the prefill's
    /// token (writer 0), any worker's version — the prefill wrote every key before the
    /// workers started, so once a worker's write of a key was read, the prefill's value
    /// never comes back (a stale read of it passed: found by review, 2026-12-05).
    @inline(__always)
    mutating func see(_ token: UInt64, key: Int) -> (writer: Int, version: UInt64)? {
        let writer = StressToken.writer(token), version = StressToken.version(token)
        guard writer < writers else { return nil }  // a foreign value: other checks report it
        let base = key &* writers
        if writer == 0 {
            for other in 1..<writers where cells[base &+ other] != 0 { return (other, cells[base &+ other]) }
        }
        let cell = base &+ writer
        let newest = cells[cell]
        if version < newest { return (writer, newest) }
        cells[cell] = version
        return nil
    }
}
