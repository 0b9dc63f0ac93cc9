#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The error every map operation throws: a Linux errno, as a BPF map returns it.
///
/// Each case corresponds 1:1 to the errno Linux returns for the same misuse, so behaviour
/// can be compared with the kernel. ``reason`` is an optional human-readable detail; it
/// does not take part in equality (`error == .invalidArgument` compares codes only).
public struct MapError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The Linux errno value (positive).
    public let code: Int32
    /// Why, in words, when the library knows more than the code says.
    public let reason: String?
    /// For a batch that failed part-way: how many elements it had done before the one that
    /// failed (Linux's `count` out). Not part of equality.
    public var elementsProcessed: Int?
    /// Whether a custom map's provider raised this error to refuse an addition or a
    /// deletion (its `preprocessElementAddition` or `preprocessElementDeletion` callback),
    /// rather than the map finding the case the code names. Not part of equality.
    ///
    /// A provider may refuse with any code, ENOENT included: the calls that answer a missing
    /// key with `nil` or `false` (``RawMap/deleteIfPresent(key:)``,
    /// ``RawMap/lookupAndDeleteIfPresent(key:into:)``, the typed maps' `replaceValue` and
    /// `removeValue`, a removing batch) throw such a refusal instead of reading it as "absent"
    /// (`lookupAndDeleteIfPresent`, and so `removeValue`, the typed `replaceValue` and a
    /// removing batch read it so, with the key still in the map, until 2026-12-06: found by
    /// review).
    /// A find callback's ENOENT is not a refusal: it hides the entry, which then reads as
    /// absent everywhere.
    public package(set) var isProviderRefusal = false

    /// An error with a Linux errno `code` and an optional human-readable `reason`.
    @inlinable
    public init(code: Int32, reason: String? = nil) {
        self.code = code
        self.reason = reason
    }

    /// The same error with a detail attached.
    public func with(reason: String) -> MapError {
        var error = MapError(code: code, reason: reason)
        error.elementsProcessed = elementsProcessed
        error.isProviderRefusal = isProviderRefusal
        return error
    }

    /// The same error, marked as a provider's refusal (``isProviderRefusal``).
    package func asProviderRefusal() -> MapError {
        var error = self
        error.isProviderRefusal = true
        return error
    }

    /// Whether this is ENOENT from the map itself: the key is absent (or hidden by a find
    /// callback), not a provider's refusal that happens to carry ENOENT.
    @inlinable
    public var isKeyAbsent: Bool { code == ENOENT && !isProviderRefusal }

    /// The same error, from a batch that had done `count` elements.
    public func with(elementsProcessed count: Int) -> MapError {
        var error = self
        error.elementsProcessed = count
        return error
    }

    /// The key is not in the map. Corresponds to `EBPF_KEY_NOT_FOUND` / `-ENOENT`.
    public static let keyNotFound = MapError(code: ENOENT)
    /// The key is already in the map (update with `NOEXIST`). Corresponds to
    /// `EBPF_KEY_ALREADY_EXISTS` / `-EEXIST`.
    public static let alreadyExists = MapError(code: EEXIST)
    /// The map is full (LPM_TRIE: ``noSpace``), or an index or size is beyond its bounds. Corresponds to
    /// `EBPF_NO_MORE_KEYS`-style exhaustion / `-E2BIG`.
    public static let outOfSpace = MapError(code: E2BIG)
    /// A size, flag, index or definition is invalid. Corresponds to
    /// `EBPF_INVALID_ARGUMENT` / `-EINVAL`.
    public static let invalidArgument = MapError(code: EINVAL)
    /// The operation does not exist for this map type or mode. Corresponds to
    /// `EBPF_OPERATION_NOT_SUPPORTED` / `-EOPNOTSUPP`.
    public static let notSupported = MapError(code: EOPNOTSUPP)
    /// Memory could not be allocated; the map is unchanged (an LRU map's insert into a full
    /// map allocates what it needs before it evicts). Corresponds to `EBPF_NO_MEMORY` /
    /// `-ENOMEM`.
    public static let noMemory = MapError(code: ENOMEM)
    /// The object is in use (for example a provider that still has maps). Corresponds to
    /// `EBPF_OBJECT_ALREADY_EXISTS`-style contention / `-EBUSY`.
    public static let busy = MapError(code: EBUSY)
    /// The operation is not permitted. Corresponds to `EBPF_ACCESS_DENIED` / `-EPERM`.
    public static let permissionDenied = MapError(code: EPERM)
    /// Access denied by the map's program-side flags (`BPF_F_RDONLY_PROG`,
    /// `BPF_F_WRONLY_PROG`): a helper-mode access Linux's verifier refuses, a writable
    /// mapping of a read-only-for-programs array, or a lock word with those flags.
    /// Corresponds to `-EACCES`.
    public static let accessDenied = MapError(code: EACCES)
    /// No room: a batch whose first bucket does not fit in the buffers (retry with larger
    /// ones from the same cursor), or a new prefix in a full LPM_TRIE (Linux's
    /// `trie_check_add_elem`; the hashes answer ``outOfSpace`` when full). Corresponds to
    /// `-ENOSPC`.
    public static let noSpace = MapError(code: ENOSPC)
    /// The map type does not implement the operation, in Linux's kernel-internal errno
    /// `ENOTSUPP` (524), which the bpf syscall returns for it: lookup-and-delete on an
    /// array, batch operations a type lacks, freezing a map with a lock word. Not the same
    /// as ``notSupported`` (`EOPNOTSUPP`, 95).
    public static let unsupportedByMapType = MapError(code: 524)
    /// The operation would wait for a lock its own thread holds: a provider callback that
    /// runs under its map's lock tried to write to that map. Corresponds to `-EDEADLK`
    /// (eBPF-for-Windows and Linux have no such case: their callbacks cannot re-enter).
    public static let wouldDeadlock = MapError(code: EDEADLK)

    /// Equal when the errno codes are equal (the reason is not compared).
    public static func == (lhs: MapError, rhs: MapError) -> Bool { lhs.code == rhs.code }

    /// E2BIG for a new key in a full map, saying so (a bare "E2BIG" sent users to the errno
    /// tables: found by review, 2026-12-05).
    @usableFromInline static let mapFull = MapError(
        code: E2BIG, reason: "the map is full: it holds maxEntries entries (a key already present is still replaced)")
    /// E2BIG for an array index at or beyond `maxEntries`, saying so.
    @usableFromInline static let indexOutOfRange = MapError(
        code: E2BIG, reason: "the index is at or beyond the array's maxEntries")
    /// Hashes the errno code only, consistent with `==`.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// Pattern matching in `catch` clauses and `switch`: matches on the code.
    public static func ~= (pattern: MapError, value: any Error) -> Bool {
        (value as? MapError)?.code == pattern.code
    }

    /// The errno's symbolic name.
    public var name: String {
        switch code {
        case ENOENT: "ENOENT"
        case EEXIST: "EEXIST"
        case E2BIG: "E2BIG"
        case EINVAL: "EINVAL"
        case EOPNOTSUPP: "EOPNOTSUPP"
        case ENOMEM: "ENOMEM"
        case EBUSY: "EBUSY"
        case EPERM: "EPERM"
        case EDEADLK: "EDEADLK"
        case EACCES: "EACCES"
        case ENOSPC: "ENOSPC"
        case 524: "ENOTSUPP"
        default: "errno \(code)"
        }
    }

    /// A readable form, for logs and error messages.
    public var description: String {
        if let reason { return "\(name): \(reason)" }
        return name
    }
}
