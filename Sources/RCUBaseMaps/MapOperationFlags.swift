import RCUEpoch

/// Why a provider callback runs: eBPF-for-Windows' `EBPF_MAP_OPERATION_*` flags, same values.
public struct MapOperationFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The raw value.
    public var rawValue: UInt32
    /// Wraps a raw value (not validated here: maps validate what they are given).
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The operation comes from helper (program) mode (`EBPF_MAP_OPERATION_HELPER`, 0x01).
    @inlinable public static var helper: MapOperationFlags { MapOperationFlags(rawValue: 0x01) }
    /// The deletion is a value displaced by an update, or the rollback of an addition whose
    /// base update failed (`EBPF_MAP_OPERATION_UPDATE`, 0x02). Must not fail.
    @inlinable public static var update: MapOperationFlags { MapOperationFlags(rawValue: 0x02) }
    /// The deletion is part of the map's teardown (`EBPF_MAP_OPERATION_MAP_CLEANUP`, 0x04).
    /// Must not fail.
    @inlinable public static var mapCleanup: MapOperationFlags { MapOperationFlags(rawValue: 0x04) }
    /// With ``update``: the deletion undoes an addition whose base update failed — the value
    /// never was in the map. An RCUMaps extension (eBPF-for-Windows passes `UPDATE` alone):
    /// providers that only test ``update`` see no difference.
    @inlinable public static var rollback: MapOperationFlags { MapOperationFlags(rawValue: 0x08) }

    /// A readable form, for logs and error messages.
    public var description: String {
        var names: [String] = []
        if contains(.helper) { names.append("HELPER") }
        if contains(.update) { names.append("UPDATE") }
        if contains(.mapCleanup) { names.append("MAP_CLEANUP") }
        if contains(.rollback) { names.append("ROLLBACK") }
        return names.isEmpty ? "[]" : "[" + names.joined(separator: ", ") + "]"
    }
}

/// What the provider layer hooks into a base map: told when an entry's value leaves the map.
///
/// Not API: the provider layer (`RCUMapProviders`) installs one through the base maps'
/// `package` initialisers.
///
/// Calling rules, per base map:
/// - ``entryWillBeRemoved(key:value:flags:)`` runs *before* a value leaves the map — with the
///   bucket lock held (``RawBucketHashMap``), holding the slot's writer bit (``RawArrayMap``), or
///   just before an unlink attempt (``RawLockFreeHashMap``, which has no lock: racing writers
///   may each report the same value, so the provider layer allows no pre-deletion callback
///   there). Its error refuses an explicit delete; for `.update` and `.mapCleanup` it is ignored.
/// - ``entryWasRemoved(key:value:flags:)`` runs *after* the value left the map and every
///   lock was released, exactly once per value, before the value's memory is retired: the
///   value is readable for the duration of the call.
/// Both run for explicit deletes (flags `[]` or `.helper`), displaced values (`.update`) and
/// teardown (`.mapCleanup`).
package protocol MapEntryObserver: AnyObject, Sendable {
    /// Whether ``entryWillBeRemoved(key:value:flags:)`` does anything: read once, when a base
    /// map is made; if not, the map does not call it on writes (only at teardown).
    var wantsAdvanceNotice: Bool { get }
    func entryWillBeRemoved(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                            flags: MapOperationFlags) -> MapError?
    func entryWasRemoved(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapOperationFlags)
}

/// A base map the provider layer can build on: a ``RawMap`` that reports removals to a
/// ``MapEntryObserver`` and can remove a key atomically after letting the caller inspect
/// exactly the value being removed. Not API.
package protocol ObservableBaseMap: RawMap {
    /// Atomically removes `key`. `inspect` sees the stored value of exactly the entry that is
    /// removed, before it leaves the map (under the bucket lock on the bucket-locked hash;
    /// inside an epoch on the lock-free hash, possibly more than once if the entry changes
    /// under it — the last call is for the entry removed). If `inspect` throws, nothing is
    /// removed. Then `removed` gets the value as it left the map, read after the unlink, so
    /// it includes in-place writes (helper mode, no lock) that landed between `inspect` and
    /// the unlink, and the notifications run as for a delete. Both values are borrowed for
    /// the call only. A one-word value of the bucket-locked hash is one copy that both get;
    /// otherwise each reads the retired entry in turn, and a writer still holding an
    /// in-place pointer taken before the unlink can change it between the two reads (such a
    /// write is lost with the entry either way).
    ///
    /// - Throws: ``MapError/keyNotFound``; whatever `inspect` or a refusing observer throws;
    ///   ``MapError/unsupportedByMapType`` (ENOTSUPP, 524) on arrays.
    func remove(key: UnsafeRawBufferPointer,
                inspecting inspect: (UnsafeRawBufferPointer) throws(MapError) -> Void,
                removed: (UnsafeRawBufferPointer) -> Void) throws(MapError)

    /// Waits, if the map's reclamation has fallen far behind its writers, as its own writes
    /// do after their section (``EpochRetireList/throttleIfBehind()``; a bucket-locked
    /// hash's overflow buckets past their bound): for a caller that held a section across
    /// the map's write, where the map could not wait. Call outside any section. Nothing to
    /// do for a map without a retire list or overflow buckets.
    func throttleWriterIfBehind()
}

extension ObservableBaseMap {
    package func throttleWriterIfBehind() {}
}

/// The base maps implement each write once, with the operation flags the provider layer
/// needs (`[]` in user mode, `.helper` in helper mode); this extension derives the public
/// user- and helper-mode entry points of ``RawMap`` from it.
///
/// The user-mode update and delete are inlinable, and the conformers' methods they call
/// usable from inlinable code: a caller that names a concrete map calls its update
/// directly. (Not inlinable, the extension's method reached the class's update through two
/// witness thunks: 29 of the 347 instructions of the bucket hash's 8-byte replace,
/// callgrind.)
/// What a write did: added a new key, replaced a present key's value, or was refused
/// because the key's presence contradicts its flags (`.noExist` on a present key, `.exist`
/// on an absent one). The throwing entry points turn a refusal into Linux's errno
/// (``replacedOrThrow(_:)``); ``RawMap/insertIfAbsent(key:value:)`` answers it with `false`,
/// without building and throwing an error.
@usableFromInline
enum WriteResult: Sendable, Equatable {
    case added, replaced, refused

    /// Whether a value was replaced; a refusal is thrown as the errno Linux gives for
    /// `flags`: EEXIST for `.noExist`, ENOENT for `.exist`.
    @inlinable
    func replacedOrThrow(_ flags: MapUpdateFlags) throws(MapError) -> Bool {
        switch self {
        case .added: return false
        case .replaced: return true
        case .refused: throw flags.withoutLock == .noExist ? MapError.alreadyExists : MapError.keyNotFound
        }
    }
}

@usableFromInline
protocol FlaggedWrites: RawMap {
    /// The update, in user (`[]`) or helper (`.helper`) mode. When `displaced` is not nil
    /// and the update replaced a value, that value is copied there (`valueSize` bytes) and
    /// the result is `true`.
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                operation: MapOperationFlags, displaced: UnsafeMutableRawPointer?) throws(MapError) -> Bool
    func delete(key: UnsafeRawBufferPointer, operation: MapOperationFlags) throws(MapError)
}

extension FlaggedWrites {
    /// User-mode update. Contract: ``RawMap/update(key:value:flags:)``.
    @inlinable
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        _ = try update(key: key, value: value, flags: flags, operation: [], displaced: nil)
    }

    /// User-mode update that reports the value it replaced. Contract:
    /// ``RawMap/exchange(key:value:flags:into:)``.
    public func exchange(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                         into displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        try checkValue(displaced, definition.valueSize)
        let out = displaced.baseAddress!
        if let start = value.baseAddress, out < start + value.count, start < out + displaced.count {
            // `displaced` overlaps `value` (a caller swapping through one buffer): some writes
            // copy the old value out before they read the new one (a BPF_F_LOCK write in
            // place, an array's values wider than a word), so the new value is copied aside
            // first (found by review: the map got its old value back).
            return try withUnsafeTemporaryAllocation(byteCount: value.count, alignment: 16) { (copy) throws(MapError) in
                copy.copyMemory(from: value)
                return try update(key: key, value: UnsafeRawBufferPointer(copy), flags: flags, operation: [], displaced: out)
            }
        }
        return try update(key: key, value: value, flags: flags, operation: [], displaced: out)
    }

    /// Helper-mode update (providers see `.helper`). Contract: ``RawMap/update(key:value:flags:in:)``.
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                       in section: borrowing EpochSection) throws(MapError) {
        _ = try update(key: key, value: value, flags: flags, operation: .helper, displaced: nil)
    }

    /// User-mode delete. Contract: ``RawMap/delete(key:)``.
    @inlinable
    public func delete(key: UnsafeRawBufferPointer) throws(MapError) {
        try delete(key: key, operation: [])
    }

    /// Helper-mode delete (providers see `.helper`). Contract: ``RawMap/delete(key:in:)``.
    public func delete(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError) {
        try delete(key: key, operation: .helper)
    }
}

/// The hashes' lookup-and-delete entry points, derived from one implementation with flags
/// that answers an absent key with `false`.
@usableFromInline
protocol RemovalIfPresent: RawMap {
    /// Lookup-and-delete with flags (`BPF_F_LOCK`: the copy holds the value's lock);
    /// `false` if the key is absent (`value` untouched).
    func lookupAndDeleteIfPresent(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                                  flags: MapElementFlags) throws(MapError) -> Bool
}

extension RemovalIfPresent {
    /// Atomic lookup-and-delete. Contract: ``RawMap/lookupAndDelete(key:into:)``.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try lookupAndDelete(key: key, into: value, flags: [])
    }

    /// Atomic lookup-and-delete with flags (`BPF_F_LOCK`: the copy holds the value's lock).
    /// Contract: ``RawMap/lookupAndDelete(key:into:flags:)``.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                                flags: MapElementFlags) throws(MapError) {
        if try !lookupAndDeleteIfPresent(key: key, into: value, flags: flags) { throw MapError.keyNotFound }
    }

    /// Lookup-and-delete that answers an absent key with `false`. Contract:
    /// ``RawMap/lookupAndDeleteIfPresent(key:into:)``.
    public func lookupAndDeleteIfPresent(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError)
        -> Bool
    {
        try lookupAndDeleteIfPresent(key: key, into: value, flags: [])
    }
}
