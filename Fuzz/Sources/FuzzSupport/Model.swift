import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// ENOTSUPP (524): Linux's kernel-internal errno for an operation a map type lacks
/// (`MapError.unsupportedByMapType`).
public let ENOTSUPP: Int32 = 524

/// What an operation must do, according to the reference model.
public enum Expectation: CustomStringConvertible {
    /// Succeed; a lookup must copy out `value` (nil: nothing to compare).
    case succeed(value: [UInt8]?)
    /// Fail with one of these errnos and change nothing. A call with several faults at
    /// once (a wrong size and bad flags) may report any of them; one fault: exactly one.
    case fail(Set<Int32>)

    public static func fail(_ code: Int32) -> Expectation { .fail([code]) }

    public var description: String {
        switch self {
        case .succeed(let value): value.map { "success \(hex($0))" } ?? "success"
        case .fail(let codes): "failure " + codes.sorted().map(errnoName).joined(separator: "|")
        }
    }

    public var failed: Bool { if case .fail = self { true } else { false } }
}

/// How a custom map's provider answers, as the model predicts it. Every rule sees the bytes
/// the user passed (never the stored form).
public struct ProviderRules {
    /// `updatesOriginalValue`: helper-mode CRUD is EOPNOTSUPP.
    public var transforms: Bool
    /// The addition callback's error for (key, value), or nil when it accepts.
    public var additionError: ([UInt8], [UInt8]) -> Int32?
    /// The find callback's error for (key, the user value stored, nil for an array slot
    /// never written), or nil when it accepts.
    public var findError: ([UInt8], [UInt8]?) -> Int32?
    /// The pre-deletion callback's refusal of an explicit delete of `key`, or nil.
    public var deletionRefusal: ([UInt8]) -> Int32?
    /// What a lookup returns for a stored user value (identity unless the provider drops
    /// part of it).
    public var project: ([UInt8]) -> [UInt8]

    public init(transforms: Bool,
                additionError: @escaping ([UInt8], [UInt8]) -> Int32? = { _, _ in nil },
                findError: @escaping ([UInt8], [UInt8]?) -> Int32? = { _, _ in nil },
                deletionRefusal: @escaping ([UInt8]) -> Int32? = { _ in nil },
                project: @escaping ([UInt8]) -> [UInt8] = { $0 }) {
        self.transforms = transforms
        self.additionError = additionError
        self.findError = findError
        self.deletionRefusal = deletionRefusal
        self.project = project
    }
}

/// The batch commands (Linux's `BPF_MAP_*_BATCH`).
public enum BatchKind: String, CustomStringConvertible {
    case lookup, lookupAndDelete, update, delete
    public var description: String { rawValue }
    public var reads: Bool { self == .lookup || self == .lookupAndDelete }
    public var writes: Bool { self != .lookup }
}

/// The reference model of one map: a Swift Dictionary with Linux 6.18's BPF rules, errno
/// for errno — HASH: ENOENT, EEXIST, E2BIG for a new key in a full map; ARRAY: UInt32
/// indices, delete EINVAL, lookup past the end ENOENT, update past the end E2BIG, NOEXIST
/// EEXIST, lookup-and-delete ENOTSUPP — plus the access flags (user mode EPERM, helper mode
/// EACCES), freezing, lock words (read as 0, never written by an update), operation flags,
/// batches, and the provider layer's order for custom maps: sizes, then flags, then the
/// addition callback, then the base map.
public final class MapModel {
    /// The base storage: the base map kind (custom maps: the provider's base).
    public enum Base: CustomStringConvertible {
        case lockFree, bucket, array
        public var description: String { self == .lockFree ? "lock-free" : self == .bucket ? "bucket-locked" : "array" }
    }

    public let base: Base
    public var isArray: Bool { base == .array }
    /// A custom map (the provider layer sits in front of the base map).
    public let isCustom: Bool
    public let keySize: Int
    public let valueSize: Int
    public let maxEntries: Int
    public let flags: MapCreationFlags
    public let lockOffset: Int?
    public let rules: ProviderRules?
    /// `freeze()` succeeded.
    public private(set) var frozen = false
    /// Writable mappings of an mmapable array's storage that exist now.
    public var writableMappings = 0
    /// HASH: key → the user value stored (lock word zero).
    public private(set) var entries: [[UInt8]: [UInt8]] = [:]
    /// ARRAY: index → the user value written (absent: never written, all zero).
    public private(set) var slots: [UInt32: [UInt8]] = [:]
    /// Every key removed from this map so far, in order (delete, lookup-and-delete,
    /// batches): iteration passes compute which keys were present throughout.
    public private(set) var removals: [[UInt8]] = []
    /// Keys ever removed (the bucket-locked hash may end a get-next-key pass at such a
    /// cursor, whose retired slot it still sees).
    public private(set) var everRemoved: Set<[UInt8]> = []
    /// Keys a full map refused (E2BIG): the bucket-locked hash wrote such a key's bytes into
    /// a reusable retired slot before it refused, and may end a pass at it as a cursor, in
    /// one stamp generation of 127 (documented in linux-compatibility.md; the model failed a
    /// correct map there: found by review, 2026-12-05, sixteenth session).
    public private(set) var refusedWhenFull: Set<[UInt8]> = []

    public init(base: Base, custom: Bool, keySize: Int, valueSize: Int, maxEntries: Int,
                flags: MapCreationFlags = [], lockOffset: Int? = nil, rules: ProviderRules?) {
        self.base = base
        self.isCustom = custom
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        self.flags = flags
        self.lockOffset = lockOffset
        self.rules = rules
    }

    public var count: Int { isArray ? maxEntries : entries.count }
    var zeros: [UInt8] { [UInt8](repeating: 0, count: valueSize) }

    public static func index(_ key: [UInt8]) -> UInt32 {
        UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24
    }

    public static func key(index: UInt32) -> [UInt8] { withUnsafeBytes(of: index.littleEndian) { Array($0) } }

    /// Every user value stored (arrays: written slots), for reference-count checks.
    public var storedValues: [[UInt8]] { isArray ? Array(slots.values) : Array(entries.values) }

    /// The keys of the map (arrays: every index), sorted.
    public var keys: [[UInt8]] {
        if isArray { return (0..<UInt32(maxEntries)).map { Self.key(index: $0) } }
        return entries.keys.sorted { $0.lexicographicallyPrecedes($1) }
    }

    public func contains(_ key: [UInt8]) -> Bool {
        isArray ? Int(Self.index(key)) < maxEntries : entries[key] != nil
    }

    // MARK: Access

    public var userRead: Bool { !flags.contains(.writeOnly) }
    public var userWrite: Bool { !flags.contains(.readOnly) && !frozen }
    public var programRead: Bool { !flags.contains(.writeOnlyProgram) }
    public var programWrite: Bool { !flags.contains(.readOnlyProgram) }
    public var transforms: Bool { rules?.transforms == true }
    /// The bucket-locked builtin hash: batches return whole chains, the cursor is a chain index.
    public var chainBatches: Bool { base == .bucket && !isCustom }
    /// The builtin lock-free hash with values in place (keys and values of at most 8 bytes,
    /// no lock word): batches sweep the entry slots, the cursor is a slot index, and the
    /// order is the slots' (which the model does not know).
    public var slotBatches: Bool {
        base == .lockFree && !isCustom && keySize <= 8 && valueSize <= 8 && lockOffset == nil
    }
    /// Bytes of a batch cursor.
    public var cursorSize: Int { isArray || chainBatches || slotBatches ? 4 : keySize }

    /// Whether a batch cursor has one of this map's forms: `cursorSize` bytes, or, where
    /// cursors are keys, a key and the marker byte 1 (a cursor that resumes at its key,
    /// which lookup-and-delete batches return). A custom map's cursors are keys on every
    /// base, an array's included: its batches are the generic walk of get-next-key.
    public func cursorIsValid(_ cursor: [UInt8]) -> Bool {
        cursor.count == cursorSize || (resumesAtKey(cursor) != nil)
    }

    /// The key of a cursor that resumes at its key (a key and the marker byte 1), else nil.
    public func resumesAtKey(_ cursor: [UInt8]) -> [UInt8]? {
        guard !((isArray && !isCustom) || chainBatches || slotBatches), cursor.count == keySize + 1, cursor.last == 1 else { return nil }
        return Array(cursor.prefix(keySize))
    }

    /// The value with its lock word cleared (what user mode reads, what the map keeps).
    public func normalize(_ value: [UInt8]) -> [UInt8] {
        guard let lockOffset else { return value }
        var value = value
        for index in lockOffset..<(lockOffset + 4) { value[index] = 0 }
        return value
    }

    // MARK: Expectations (sizes already right: the harness checks wrong sizes itself)

    /// The stored user value of `key` (array: nil for an unwritten slot), or an error if the
    /// base map has no such key.
    func current(_ key: [UInt8]) -> Result<[UInt8]?, MapError> {
        if isArray {
            let index = Self.index(key)
            guard Int(index) < maxEntries else { return .failure(.keyNotFound) }
            return .success(slots[index])
        }
        guard let value = entries[key] else { return .failure(.keyNotFound) }
        return .success(value)
    }

    /// The stored user value (arrays: zeros for a slot never written), nil if absent.
    public func stored(_ key: [UInt8]) -> [UInt8]? {
        switch current(key) {
        case .success(let value): value ?? zeros
        case .failure: nil
        }
    }

    /// Checks of `flags` on lookups and lookup-and-delete: only `BPF_F_LOCK`, and that only
    /// with a lock word (custom maps have none).
    func lockFlagError(_ lock: Bool) -> Int32? {
        lock && (isCustom || lockOffset == nil) ? EINVAL : nil
    }

    /// User-mode lookup (`flags`: the flagged variant; nil: the plain one) or helper-mode lookup.
    public func lookup(_ key: [UInt8], helper: Bool = false, flags: MapElementFlags? = nil) -> Expectation {
        if helper {
            if transforms { return .fail(EOPNOTSUPP) }
            if !programRead { return .fail(EACCES) }
        } else {
            if let flags, !flags.subtracting(.lock).isEmpty { return .fail(EINVAL) }
            if !userRead { return .fail(EPERM) }
            if let flags, let error = lockFlagError(flags.contains(.lock)) { return .fail(error) }
        }
        switch current(key) {
        case .failure: return .fail(ENOENT)  // (the model's own absence: Linux's errno, not the library's constant)
        case .success(let stored):
            if let rules, let error = rules.findError(key, stored) { return .fail(error) }
            let value = stored ?? zeros
            return .succeed(value: helper ? value : (rules?.project(value) ?? value))
        }
    }

    /// What an update (or an exchange: the same checks) will do; `applyUpdate` commits it
    /// once the map agreed.
    public func update(_ key: [UInt8], _ value: [UInt8], flags: MapUpdateFlags, helper: Bool = false) -> Expectation {
        if helper {
            if transforms { return .fail(EOPNOTSUPP) }
            if !programWrite { return .fail(EACCES) }
        } else if !userWrite {
            return .fail(EPERM)
        }
        let lockWithoutWord = flags.rawValue & MapUpdateFlags.lock.rawValue != 0 && (isCustom || lockOffset == nil)
        // A helper-mode ARRAY update (and one of a custom map on an array base) meets only
        // array_map_update_elem's checks, whose BPF_F_LOCK check comes after the index and
        // NOEXIST ones; the syscall side checks it first. The provider layer makes those
        // checks before any callback runs: such a write always fails.
        let lockCheckedLast = helper && isArray
        if lockWithoutWord, !lockCheckedLast { return .fail(EINVAL) }
        guard flags.isValid else { return .fail(EINVAL) }
        let plain = MapUpdateFlags(rawValue: flags.rawValue & ~MapUpdateFlags.lock.rawValue)
        if lockWithoutWord {
            guard Int(Self.index(key)) < maxEntries else { return .fail(E2BIG) }
            if plain == .noExist { return .fail(EEXIST) }
            return .fail(EINVAL)
        }
        if let rules, let error = rules.additionError(key, value) { return .fail(error) }
        if isArray {
            guard Int(Self.index(key)) < maxEntries else { return .fail(E2BIG) }
            if plain == .noExist { return .fail(EEXIST) }
            return .succeed(value: nil)
        }
        if entries[key] != nil {
            return plain == .noExist ? .fail(EEXIST) : .succeed(value: nil)
        }
        if plain == .exist { return .fail(ENOENT) }
        if entries.count >= maxEntries {
            refusedWhenFull.insert(key)
            return .fail(E2BIG)
        }
        return .succeed(value: nil)
    }

    /// What an exchange whose update succeeds reports: whether a value was replaced, and
    /// that value as the caller sees it. A custom map's find callback sees the displaced
    /// value (translating it when the provider transforms): its ENOENT reads as nothing
    /// replaced; any other refusal is thrown (`refusal`) after the new value was stored.
    public func exchangeDisplaced(_ key: [UInt8]) -> (replaced: Bool, value: [UInt8]?, refusal: Int32?) {
        guard case .success(let stored) = current(key) else { return (false, nil, nil) }  // a new key
        let old = stored ?? zeros
        guard let rules else { return (true, old, nil) }
        if let error = rules.findError(key, stored) { return error == ENOENT ? (false, nil, nil) : (false, nil, error) }
        return (true, transforms ? rules.project(old) : old, nil)
    }

    public func applyUpdate(_ key: [UInt8], _ value: [UInt8]) {
        if isArray { slots[Self.index(key)] = normalize(value) } else { entries[key] = normalize(value) }
    }

    /// A write through a helper-mode pointer or a storage mapping: the stored bytes change,
    /// no callback runs (the harness leaves the lock word alone).
    public func applyInPlaceWrite(_ key: [UInt8], _ value: [UInt8]) { applyUpdate(key, value) }

    /// User-mode delete (`flags`: the flagged variant) or helper-mode delete.
    public func delete(_ key: [UInt8], helper: Bool = false, flags: MapElementFlags? = nil) -> Expectation {
        if let flags, !flags.isEmpty { return .fail(EINVAL) }
        if helper {
            if transforms { return .fail(EOPNOTSUPP) }
            if !programWrite { return .fail(EACCES) }
        } else if !userWrite {
            return .fail(EPERM)
        }
        if isArray { return .fail(EINVAL) }
        guard entries[key] != nil else { return .fail(ENOENT) }
        if let rules, let refusal = rules.deletionRefusal(key) { return .fail(refusal) }
        return .succeed(value: nil)
    }

    public func applyDelete(_ key: [UInt8]) {
        guard !isArray, entries.removeValue(forKey: key) != nil else { return }
        removals.append(key)
        everRemoved.insert(key)
    }

    public func lookupAndDelete(_ key: [UInt8], flags: MapElementFlags? = nil) -> Expectation {
        if let flags, !flags.subtracting(.lock).isEmpty { return .fail(EINVAL) }
        if !userRead || !userWrite { return .fail(EPERM) }
        if let flags, let error = lockFlagError(flags.contains(.lock)) { return .fail(error) }
        if isArray { return .fail(ENOTSUPP) }
        guard let value = entries[key] else { return .fail(ENOENT) }
        if let rules {
            if let error = rules.findError(key, value) { return .fail(error) }
            if let refusal = rules.deletionRefusal(key) { return .fail(refusal) }
            return .succeed(value: rules.project(value))
        }
        return .succeed(value: value)
    }

    /// Whether `lookupAndDelete(key, flags:)` fails because the pre-deletion callback refuses
    /// the removal (whatever its code): a refusal, which stops a removing batch, not an
    /// absent or hidden key, which it skips (reliability.md row 299).
    public func lookupAndDeleteIsRefused(_ key: [UInt8], flags: MapElementFlags? = nil) -> Bool {
        guard case .fail = lookupAndDelete(key, flags: flags), let rules, let value = entries[key],
              rules.findError(key, value) == nil else { return false }
        return rules.deletionRefusal(key) != nil
    }

    /// `freeze()` (inside an epoch section when `inSection`).
    public func freeze(inSection: Bool) -> Expectation {
        if lockOffset != nil { return .fail(ENOTSUPP) }
        if flags.contains(.readOnly) || frozen { return .fail(EPERM) }
        if inSection || writableMappings > 0 { return .fail(EBUSY) }
        return .succeed(value: nil)
    }

    public func applyFreeze() { frozen = true }

    // MARK: Get-next-key

    /// Checks one get-next-key answer (`inPass`: `nextKeyInPass`). HASH: any key of the model
    /// but the cursor, or ENOENT after a present cursor; after an absent cursor `nextKey`
    /// restarts (never ENOENT on a non-empty map), except that the bucket-locked hash may
    /// end the pass at a cursor it removed (its retired slot); `nextKeyInPass` may end.
    /// ARRAY: exactly Linux's order (both calls), except that `nextKeyInPass` ends the pass
    /// (ENOENT) after an index beyond the last, where `nextKey` restarts at 0.
    public func checkNextKey(cursor: [UInt8]?, result: Result<[UInt8], MapError>, inPass: Bool) -> String? {
        let name = inPass ? "nextKeyInPass" : "nextKey"
        if !userRead {
            if case .failure(let error) = result, error.code == EPERM { return nil }
            return "\(name) on a BPF_F_WRONLY map: \(describe(result)), expected EPERM"
        }
        if isArray {
            let expected: UInt32?
            if let cursor {
                let index = Self.index(cursor)
                if Int(index) >= maxEntries { expected = inPass ? nil : 0 }
                else if Int(index) == maxEntries - 1 { expected = nil }
                else { expected = index + 1 }
            } else {
                expected = 0
            }
            switch (expected, result) {
            case (nil, .failure(let error)) where error.code == ENOENT: return nil
            case (let index?, .success(let key)) where Self.index(key) == index: return nil
            default: return "array \(name) after \(cursor.map { "\(Self.index($0))" } ?? "nil"): expected \(expected.map { "\($0)" } ?? "ENOENT"), got \(describe(result))"
            }
        }
        switch result {
        case .failure(let error):
            guard error.code == ENOENT else { return "\(name) failed with \(error)" }
            guard let cursor else {
                return entries.isEmpty ? nil : "\(name)(nil) is ENOENT on a map with \(entries.count) keys"
            }
            if entries[cursor] != nil || entries.isEmpty || inPass { return nil }
            // An absent cursor: Linux restarts at the first key.
            if base == .bucket, everRemoved.contains(cursor) || refusedWhenFull.contains(cursor) { return nil }
            return "\(name) after the absent key \(hex(cursor)) is ENOENT on a map with \(entries.count) keys (expected a key: resume after its place, else the first key)"
        case .success(let key):
            guard entries[key] != nil else { return "\(name) returned \(hex(key)), which is not in the map" }
            if let cursor, cursor == key { return "\(name) returned its cursor \(hex(key))" }
            return nil
        }
    }

    func describe(_ result: Result<[UInt8], MapError>) -> String {
        switch result {
        case .success(let key): isArray ? "\(Self.index(key))" : hex(key)
        case .failure(let error): errnoName(error.code)
        }
    }

    // MARK: Batches

    /// The checks a batch makes before it touches an element, in each map's order; nil if
    /// it gets that far. `cursor`: the bytes of the cursor passed (nil: none).
    public func batchPrecheck(_ kind: BatchKind, elementFlags: MapElementFlags, flags: UInt64, count: Int,
                              keyBytes: Int, valueBytes: Int, cursor: [UInt8]?) -> Int32? {
        // Access (EPERM), read before write.
        if kind.reads, !userRead { return EPERM }
        if kind.writes, !userWrite { return EPERM }
        // The operations arrays lack.
        if isArray, kind == .lookupAndDelete || kind == .delete { return ENOTSUPP }
        // Element flags: BPF_F_LOCK only, and only with a lock word.
        if !elementFlags.subtracting(.lock).isEmpty { return EINVAL }
        if let error = lockFlagError(elementFlags.contains(.lock)) { return error }
        // batch.flags: the built-in hash maps' lookups require 0.
        if kind.reads, !isArray, !isCustom, flags != 0 { return EINVAL }
        // Buffers of `count` elements.
        func short(_ bytes: Int, _ size: Int) -> Bool {
            let (needed, overflow) = count.multipliedReportingOverflow(by: size)
            return overflow || bytes < needed
        }
        if count < 0 || short(keyBytes, isArray ? 4 : keySize) { return EINVAL }
        if kind != .delete, short(valueBytes, valueSize) { return EINVAL }
        if kind.reads, count > 0, let cursor, !cursorIsValid(cursor) { return EINVAL }
        return nil
    }

    /// Applies a removal reported by a lookup-and-delete batch.
    public func applyBatchRemoval(_ key: [UInt8]) { applyDelete(key) }
}

/// How a C provider result reaches the user: 0 succeeds; an errno (1…4095, Linux's
/// `MAX_ERRNO`) is kept, a negative one negated; anything else (INT_MIN, a status code of
/// the provider's own) is EINVAL, as `rcumaps_provider.h` says.
public func mapCResult(_ result: Int32) -> Int32? {
    if result == 0 { return nil }
    let magnitude = result == .min ? 0 : abs(result)
    return (1...4095).contains(magnitude) ? magnitude : EINVAL
}
