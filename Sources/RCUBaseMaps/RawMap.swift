import RCUEpoch

/// A byte-level map: the base every map type is built on.
///
/// Keys and values are raw bytes of the sizes fixed by ``definition``; every operation
/// checks the buffers it is given and throws ``MapError/invalidArgument`` for a wrong size,
/// never reading or writing out of bounds.
///
/// Concurrency: every built-in implementation is safe for any number of readers and
/// writers on any threads. Readers never take a lock.
///
/// Two access modes:
/// - *User mode* (``lookup(key:into:)`` and the updates): copies in and out of the
///   caller's buffers; usable anywhere.
/// - *Helper mode* (``lookupInPlace(key:in:)``): inside an epoch, returns the value stored
///   in the map, borrowed until the section ends, as an eBPF program sees it. Writes
///   through it are visible to other threads with no synchronisation of ours: use atomic
///   operations for data other threads update concurrently.
///
/// Hot paths: the base maps' lookups are `@inlinable` and compile into a caller that names
/// the concrete type (`RawBucketHashMap`, `RawLockFreeHashMap`, `RawArrayMap`). Through this
/// protocol from another module they do not: Swift 6.3 does not devirtualize typed-throws
/// requirements across modules, even in specialised generic code, so each call goes through
/// the witness table (measured: 11.6 ns per bucket-hash lookup instead of 8.0). Generic
/// code should call ``inlinedLookupInPlace(key:in:)`` and ``inlinedLookup(key:into:)``,
/// which compile to the built-in maps' inlined lookups once specialised.
public protocol RawMap: AnyObject, Sendable {
    /// The definition the map was created with (value size as users see it).
    var definition: MapDefinition { get }

    /// Number of entries (for arrays, `maxEntries`). A snapshot under concurrent updates.
    var count: Int { get }

    /// Copies the value stored under `key` into `value`.
    ///
    /// - Throws: ``MapError/keyNotFound`` (ENOENT) if absent; ``MapError/invalidArgument``
    ///   for wrong buffer sizes.
    ///
    /// Concurrency: any thread; enters an epoch for the copy. The value copied is one that
    /// some update stored whole (no torn values in user mode).
    func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError)

    /// Returns the value stored under `key`, in place (helper mode).
    ///
    /// - Returns: Memory borrowed from the map, valid until `section` ends. Do not keep it.
    /// - Throws: ``MapError/keyNotFound`` if absent; ``MapError/invalidArgument`` for a wrong key size.
    ///
    /// Precondition: inside an epoch (the `section` parameter proves it).
    func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer

    /// Stores `value` under `key` as `flags` say.
    ///
    /// - Throws: ``MapError/alreadyExists`` (`.noExist` on an existing key),
    ///   ``MapError/keyNotFound`` (`.exist` on an absent key), ``MapError/outOfSpace``
    ///   (new key in a full map; index out of range), ``MapError/invalidArgument`` (bad flags
    ///   or sizes), ``MapError/noMemory`` (the map is unchanged).
    ///
    /// Concurrency: any thread. Readers see the old or the new value, never a mix;
    /// a displaced value is reclaimed after a grace period.
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError)

    /// Removes `key`.
    ///
    /// - Throws: ``MapError/keyNotFound`` if absent; ``MapError/invalidArgument`` for a wrong
    ///   key size, and always for arrays (as Linux).
    func delete(key: UnsafeRawBufferPointer) throws(MapError)

    /// Atomically removes `key` and copies out the value it had: of several concurrent
    /// callers for one key, exactly one gets the value.
    ///
    /// - Throws: ``MapError/keyNotFound`` if absent; ``MapError/notSupported`` for arrays.
    func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError)

    /// Writes the key following `key` in the map's iteration order into `nextKey`; with
    /// `key == nil`, the first key (Linux `BPF_MAP_GET_NEXT_KEY`).
    ///
    /// - Throws: ``MapError/keyNotFound`` after the last key (or on an empty map).
    ///
    /// Stable under concurrent modification: a pass never crashes and never returns a key
    /// twice; every key present for the whole pass is returned once.
    func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError)

    /// ``update(key:value:flags:)`` in helper mode: from inside an epoch, as an eBPF program
    /// calls `bpf_map_update_elem`. Providers see the `.helper` flag.
    ///
    /// - Throws: as ``update(key:value:flags:)``; ``MapError/notSupported`` for a custom map
    ///   whose provider transforms stored values.
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                in section: borrowing EpochSection) throws(MapError)

    /// ``delete(key:)`` in helper mode (`bpf_map_delete_elem`). Providers see the `.helper` flag.
    func delete(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
}

// MARK: - Argument checks shared by the implementations

// The checks inline into every operation; their error paths (which build a message) stay
// out of line, so that the hot paths keep small frames.

@inlinable @inline(__always)
func checkKey(_ key: UnsafeRawBufferPointer, _ size: Int) throws(MapError) {
    guard key.count == size, key.baseAddress != nil else { throw bufferSizeError("key", key.count, size) }
}

@inlinable @inline(__always)
func checkValue(_ value: UnsafeRawBufferPointer, _ size: Int) throws(MapError) {
    guard value.count == size, value.baseAddress != nil else { throw bufferSizeError("value", value.count, size) }
}

/// EINVAL for a `what` buffer of `count` bytes where the map takes `size`.
@usableFromInline @inline(never)
func bufferSizeError(_ what: StaticString, _ count: Int, _ size: Int) -> MapError {
    MapError.invalidArgument.with(reason: "\(what) buffer is \(count) bytes, map \(what)s are \(size)")
}

@inlinable @inline(__always)
func checkValue(_ value: UnsafeMutableRawBufferPointer, _ size: Int) throws(MapError) {
    try checkValue(UnsafeRawBufferPointer(value), size)
}

@inline(__always)
func checkFlags(_ flags: MapUpdateFlags) throws(MapError) {
    guard flags.isValid else { throw MapError.invalidArgument.with(reason: "invalid update flags \(flags.rawValue)") }
}

/// Rounds `n` up to a multiple of 8.
@inline(__always)
func roundUp8(_ n: Int) -> Int { (n + 7) & ~7 }
