#if canImport(Glibc)
import Glibc
#endif
import RCUEpoch

/// A byte-level map: the base every map type is built on.
///
/// Keys and values are raw bytes of the sizes fixed by ``definition``; every operation
/// checks the buffers it is given and throws ``MapError/invalidArgument`` for a wrong size,
/// never reading or writing out of bounds.
///
/// Concurrency: every built-in implementation is safe for any number of readers and
/// writers on any threads. Lookups of a key take no lock — except a `BPF_F_LOCK` lookup
/// (the value's lock), a QUEUE or STACK peek (the ring's lock), and an ARRAY or
/// PERCPU_ARRAY lookup of a value over 8 bytes that keeps finding it mid-write (it holds
/// the slot's sequence word after 16 spoiled copies); the bucket-locked hashes' batches
/// (HASH, LRU_HASH and the per-CPU hashes, lookup batches too) take each chain's lock, and
/// LPM_TRIE's get-next-key and batches its writer lock, for each step.
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
    /// Concurrency: any thread; enters an epoch for the copy where the map needs one (an
    /// ARRAY does not). The value copied is one that some user-mode update stored whole —
    /// except where in-place writes are not atomic as a whole, as on Linux: a value over 8
    /// bytes changed through a helper-mode pointer or by a `BPF_F_LOCK` update (a lookup
    /// without `BPF_F_LOCK` may copy it half written), a `BPF_F_MMAPABLE` ARRAY's values
    /// over 8 bytes (no sequence word), the per-CPU maps' helper-mode writes, and a
    /// PERCPU_ARRAY's user-mode updates, written and copied one CPU's value at a time (a
    /// lookup may return CPU 0's value of one update and CPU 1's of another; each CPU's
    /// value is whole).
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
    ///   (new key in a full map; index out of range), ``MapError/noSpace`` (a new prefix in a
    ///   full LPM_TRIE: ENOSPC, as Linux), ``MapError/invalidArgument`` (bad flags
    ///   or sizes), ``MapError/noMemory`` (the map is unchanged; an LRU map's insert into a
    ///   full map allocates what it needs before it evicts).
    ///
    /// Concurrency: any thread. Readers see the old or the new value, never a mix — except
    /// for a `BPF_F_LOCK` update, written in place under the value's lock (a lookup without
    /// `BPF_F_LOCK` may see it half written, as on Linux), a `BPF_F_MMAPABLE` ARRAY's values
    /// over 8 bytes, and a PERCPU_ARRAY's update, written one CPU's value at a time (each
    /// whole); a displaced value is reclaimed after a grace period.
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError)

    /// ``update(key:value:flags:)`` that also reports the value it replaced: the one this
    /// update displaced, atomically (never a value read before another writer's update).
    ///
    /// - Parameters:
    ///   - key: the key, of the map's key size.
    ///   - value: the value to store, of the map's value size.
    ///   - flags: ``MapUpdateFlags/any``, ``MapUpdateFlags/noExist`` or ``MapUpdateFlags/exist``.
    ///   - displaced: a buffer of the map's value size; receives the replaced value. It may
    ///     be `value`'s own buffer: the new value is taken before the old one is written
    ///     there (a swap).
    /// - Returns: `true` if a value was replaced (and copied to `displaced`); `false` when
    ///   the key was new. Arrays always replace. Custom maps report the replaced value as
    ///   the provider's find callback sees (and, if it transforms, translates) it, and
    ///   `false` if it hides it (ENOENT), the new value being stored all the same.
    /// - Throws: as ``update(key:value:flags:)`` (nothing stored); ``MapError/invalidArgument`` for a
    ///   `displaced` buffer of the wrong size; on a custom map, a find callback's other
    ///   refusal of the replaced value, after the new value was stored (the reason says so).
    ///
    /// Concurrency: as ``update(key:value:flags:)``. Not a Linux operation: it is what
    /// `Dictionary.updateValue(_:forKey:)` returns, done atomically.
    func exchange(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                  into displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool

    /// Removes `key`.
    ///
    /// - Throws: ``MapError/keyNotFound`` if absent; ``MapError/invalidArgument`` for a wrong
    ///   key size, and always for arrays (as Linux).
    func delete(key: UnsafeRawBufferPointer) throws(MapError)

    /// ``update(key:value:flags:)`` with ``MapUpdateFlags/noExist`` that answers a present
    /// key with `false` instead of throwing ``MapError/alreadyExists``.
    ///
    /// For code that expects the key to be present often (a flow table that inserts the
    /// key of every packet): the hashes return the refusal without building and throwing an
    /// error. Every other error is thrown as ``update(key:value:flags:)`` throws it.
    ///
    /// - Returns: `true` if `value` was stored under the new key; `false` if the key held a
    ///   value (left as it was). Arrays always answer `false`: every index holds a value.
    ///
    /// Concurrency: as ``update(key:value:flags:)``; of several threads inserting one absent
    /// key, exactly one gets `true`.
    func insertIfAbsent(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(MapError) -> Bool

    /// ``delete(key:)`` that answers an absent key with `false` instead of throwing
    /// ``MapError/keyNotFound``.
    ///
    /// - Returns: `true` if this call removed the key. Every other error is thrown as
    ///   ``delete(key:)`` throws it (arrays: ``MapError/invalidArgument``).
    ///
    /// Concurrency: as ``delete(key:)``; of several threads deleting one key, exactly one
    /// gets `true`.
    func deleteIfPresent(key: UnsafeRawBufferPointer) throws(MapError) -> Bool

    /// Atomically removes `key` and copies out the value it had: of several concurrent
    /// callers for one key, exactly one gets the value.
    ///
    /// - Throws: ``MapError/keyNotFound`` if absent; ``MapError/unsupportedByMapType``
    ///   (ENOTSUPP, 524) for arrays and LPM tries, as Linux.
    func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError)

    /// ``lookupAndDelete(key:into:)`` that answers an absent key with `false` instead of
    /// throwing ``MapError/keyNotFound`` (`value` is then left as it was).
    ///
    /// Concurrency: as ``lookupAndDelete(key:into:)``.
    func lookupAndDeleteIfPresent(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError)
        -> Bool

    /// Writes the key following `key` in the map's iteration order into `nextKey`; with
    /// `key == nil`, the first key (Linux `BPF_MAP_GET_NEXT_KEY`).
    ///
    /// A `key` that is not in the map: hash maps resume after the place it would have in
    /// the iteration order, and if no key follows it, return the first key, as Linux does —
    /// never ENOENT on a non-empty map — except that the bucket-locked hash, which still
    /// sees a key deleted within the last grace period, ends the pass (ENOENT) when that
    /// key was the last. Arrays, as Linux: an index beyond the last restarts at 0.
    ///
    /// - Throws: ``MapError/keyNotFound`` after the last key (or on an empty map);
    ///   ``MapError/permissionDenied`` for a `BPF_F_WRONLY` map.
    ///
    /// Stable under concurrent modification: a pass never crashes, and a pass whose cursor
    /// stays in the map never returns a key twice; every key present for the whole pass is
    /// returned once. (``nextKeyInPass(after:into:)`` resumes after a deleted cursor too, with
    /// its rare exception on the lock-free hash.)
    func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError)

    /// ``update(key:value:flags:)`` in helper mode: from inside an epoch, as an eBPF program
    /// calls `bpf_map_update_elem`. Providers see the `.helper` flag. Never throttled: the
    /// back-pressure a user-mode write applies when reclamation falls far behind waits
    /// outside any section (see docs/architecture.md, `EpochRetireList`).
    ///
    /// - Throws: as ``update(key:value:flags:)``; ``MapError/notSupported`` for a custom map
    ///   whose provider transforms stored values.
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                in section: borrowing EpochSection) throws(MapError)

    /// ``delete(key:)`` in helper mode (`bpf_map_delete_elem`). Providers see the `.helper` flag.
    func delete(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)

    // MARK: Operation flags (Linux's `flags` of the element commands)

    /// ``lookup(key:into:)`` with Linux's lookup flags: `BPF_F_LOCK` copies the value with
    /// its lock word held (a map with a ``MapDefinition/lockOffset``); any other flag is
    /// EINVAL, checked before anything else, as Linux 6.18 does.
    func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                flags: MapElementFlags) throws(MapError)

    /// ``delete(key:)`` with flags: Linux's delete takes none, so any flag is EINVAL.
    func delete(key: UnsafeRawBufferPointer, flags: MapElementFlags) throws(MapError)

    /// ``lookupAndDelete(key:into:)`` with flags: `BPF_F_LOCK` (with a lock word) or EINVAL.
    func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                         flags: MapElementFlags) throws(MapError)

    /// The key after `key` in iteration order, never restarting a pass: like
    /// ``nextKey(after:into:)``, except that a cursor no longer in the map resumes after the
    /// place it had — ENOENT if nothing follows it — instead of at the first key. Iteration
    /// (the typed maps' `Sequence`, batches) uses this: a pass never returns a key twice,
    /// whatever is deleted meanwhile — except, rarely, on the lock-free hash: resumed after a
    /// cursor deleted meanwhile, it can skip another key with exactly the cursor's 64-bit
    /// hash, or return such keys twice if the cursor was inserted again (the repository's
    /// `docs/map-types.md`, "HASH"). Arrays: an index beyond the last is followed by
    /// nothing (ENOENT), where ``nextKey(after:into:)`` restarts at 0.
    func nextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError)

    // MARK: Access and freezing

    /// What user mode and helper mode may do with the map (its creation flags).
    var access: MapAccess { get }

    /// Whether the map is frozen: true from the moment a ``freeze()`` begins, when user-mode
    /// writes start failing with EPERM (the layers above check it for that, inside their
    /// sections). The writes in flight then have finished once that `freeze()` returns — or
    /// once a second one answers EPERM, which waits for the first.
    var isFrozen: Bool { get }

    /// Freezes the map (Linux `BPF_MAP_FREEZE`): from now on user-mode writes fail with
    /// EPERM; helper mode is unaffected. A write in flight when it is called has finished
    /// when it returns (it waits for a grace period).
    ///
    /// - Throws: ``MapError/permissionDenied`` (EPERM) for a `BPF_F_RDONLY` map or a second
    ///   freeze; ``MapError/unsupportedByMapType`` (ENOTSUPP) when values hold a lock word;
    ///   ``MapError/busy`` (EBUSY) while a writable mapping of an array exists, or inside an
    ///   epoch section or a liburcu read lock the thread took itself (where it cannot wait).
    @available(*, noasync, message: "waits for a grace period: call it from a thread of your own, or use `await map.freezeAsync()`")
    func freeze() throws(MapError)

    // MARK: Batches (Linux's BPF_MAP_*_BATCH)

    /// Copies up to `count` elements, starting at `cursor` (`nil`: the first), into `keys`
    /// and `values` (each `count` elements long, packed). `BPF_MAP_LOOKUP_BATCH`.
    ///
    /// - Parameters:
    ///   - cursor: Where to resume: the ``MapBatchResult/cursor`` of the previous call, or
    ///     `nil` to start at the first element. Opaque; valid only for this map.
    ///   - keys: Room for `count` keys of `keySize` bytes each, packed.
    ///   - values: Room for `count` values of `valueSize` bytes each, packed.
    ///   - count: The most elements to copy (Linux's `batch.count` in); 0 copies nothing
    ///     and answers `count` 0, no error and the cursor passed (negative: EINVAL; an LPM
    ///     trie's out-of-range cursor comes back `nil`).
    ///   - elementFlags: `BPF_F_LOCK` or nothing.
    ///   - flags: Linux's `batch.flags`: must be 0 for hash maps (EINVAL), ignored by arrays.
    /// - Returns: The elements copied and where to resume; see ``MapBatchResult`` for
    ///   ENOENT (end of the map) and ENOSPC.
    /// - Throws: before doing anything: EPERM (`BPF_F_WRONLY`), EINVAL (flags, buffers).
    func lookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                     values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                     flags: UInt64) throws(MapError) -> MapBatchResult

    /// ``lookupBatch(from:keys:values:count:elementFlags:flags:)`` that also removes every
    /// element it returns, atomically per element (of concurrent passes, exactly one returns
    /// each). `BPF_MAP_LOOKUP_AND_DELETE_BATCH`.
    ///
    /// An element a custom map's provider refuses (its find or pre-deletion callback fails
    /// with anything but ENOENT) stops the call: the result holds the elements removed
    /// before it (`count`), that error, and a cursor past the refused element, which stays
    /// in the map — nothing removed goes unreturned.
    ///
    /// - Throws: as the lookup batch, plus EPERM when the map is `BPF_F_RDONLY` or frozen,
    ///   and ``MapError/unsupportedByMapType`` (ENOTSUPP) for arrays.
    func lookupAndDeleteBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                              values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                              flags: UInt64) throws(MapError) -> MapBatchResult

    /// Stores `count` elements (`keys`, `values` packed), each as a user-mode update with
    /// `elementFlags` (`BPF_ANY` behaviour; `BPF_F_LOCK` allowed; Linux 6.18 refuses
    /// `BPF_NOEXIST`/`BPF_EXIST` here with EINVAL). Stops at the first failure.
    /// `BPF_MAP_UPDATE_BATCH`.
    func updateBatch(keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, count: Int,
                     elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult

    /// Deletes `count` keys; stops at the first failure (ENOENT for an absent key).
    /// `BPF_MAP_DELETE_BATCH`; ENOTSUPP for arrays.
    func deleteBatch(keys: UnsafeRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                     flags: UInt64) throws(MapError) -> MapBatchResult
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

/// The refusal-returning forms for maps that implement only the throwing ones (custom maps,
/// arrays, the other built-in types): the error is caught. The two hashes implement them
/// without throwing.
extension RawMap {
    /// ``RawMap/insertIfAbsent(key:value:)`` through ``RawMap/update(key:value:flags:)``.
    public func insertIfAbsent(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(MapError) -> Bool {
        do {
            try update(key: key, value: value, flags: .noExist)
            return true
        } catch where error.code == EEXIST {
            return false
        }
    }

    /// ``RawMap/deleteIfPresent(key:)`` through ``RawMap/delete(key:)``.
    public func deleteIfPresent(key: UnsafeRawBufferPointer) throws(MapError) -> Bool {
        do {
            try delete(key: key)
            return true
        } catch where error.isKeyAbsent {
            return false
        }
    }

    /// ``RawMap/lookupAndDeleteIfPresent(key:into:)`` through ``RawMap/lookupAndDelete(key:into:)``.
    public func lookupAndDeleteIfPresent(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError)
        -> Bool
    {
        do {
            try lookupAndDelete(key: key, into: value)
            return true
        } catch where error.isKeyAbsent {
            return false
        }
    }
}

extension RawMap {
    /// ``freeze()`` for async code: the wait for a grace period runs on a thread of its own,
    /// so no cooperative-pool thread blocks meanwhile (``freeze()`` itself is `noasync`).
    /// The same errors as ``freeze()``.
    ///
    /// Concurrency: any task; not inside an epoch section (a task holds none across an
    /// `await` anyway) or a liburcu read lock the calling thread took itself (EBUSY, as
    /// ``freeze()``: the freeze would wait for it while the task waits for the freeze).
    public func freezeAsync() async throws(MapError) {
        if Epoch.isInsideAnyReadLock {
            // `freeze()` refuses here before it would wait (EBUSY), after the checks of the
            // map's own state that Linux makes first (ENOTSUPP, EPERM): the same errors in
            // the same order (EBUSY was answered first; found by review, 2026-12-06).
            try freezeRefusedInsideReadLock()
        }
        let outcome: Result<Void, MapError> = await withCheckedContinuation { continuation in
            runOnDetachedThread {
                do throws(MapError) {
                    try self.freeze()
                    continuation.resume(returning: .success(()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        try outcome.get()
    }

    /// ``freeze()`` inside a section or a liburcu read lock, where it throws before it
    /// would wait (every map's freeze checks through `MapFreezeState.freeze` first). A
    /// synchronous function: `freeze()` is `noasync`, and here it cannot block.
    private func freezeRefusedInsideReadLock() throws(MapError) {
        try freeze()
        preconditionFailure("freeze() inside a read lock neither refused nor waited")
    }
}
