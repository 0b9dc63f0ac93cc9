import RCUEpoch

/// Where a batch operation resumes: Linux's opaque `in_batch` / `out_batch`.
///
/// Pass `nil` to start a pass, then the ``MapBatchResult/cursor`` of each call to the next.
/// What it holds depends on the map — a bucket index for the bucket-locked hash (as
/// Linux's hash maps), the last index returned for arrays and the last key returned for
/// the lock-free hash and custom maps (as Linux's generic batches), except a lock-free hash
/// with values in place (keys and values of at most 8 bytes, no lock word), whose cursor
/// is the next entry slot to sweep — and is not for the caller to read. A batch over keys
/// that stops before the end (a lookup-and-delete batch always) returns the key it would
/// have taken next instead, followed by one marker byte: the key it returned last may be
/// gone from the map by the next call (removed by the call, or by a caller that deletes
/// what it read), and a lock-free hash finds the place of a missing key only by walking its
/// list from the head (each call would cost time proportional to the whole map). An LPM
/// trie's cursor is its last key (a call that returns no key hands back the cursor it was
/// passed, or `nil`). Either form resumes a pass of either kind.
public struct MapBatchCursor: Hashable, Sendable {
    /// Up to 16 bytes stored inline (no allocation per batch call); longer cursors in `heap`:
    /// the last key of a map with keys over 16 bytes, or a cursor that resumes at a key of
    /// 16 bytes or more (its key and a marker byte).
    private let low: UInt64
    private let high: UInt64
    private let count: Int
    private let heap: [UInt8]?

    /// A cursor from bytes a map wrote (for callers that store cursors).
    public init(bytes: [UInt8]) {
        self = bytes.withUnsafeBytes { MapBatchCursor($0) }
    }

    /// A cursor holding `bytes`.
    package init(_ bytes: UnsafeRawBufferPointer) {
        count = bytes.count
        if bytes.count <= 16 {
            var words: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: bytes) }
            (low, high) = words
            heap = nil
        } else {
            (low, high) = (0, 0)
            heap = Array(bytes)
        }
    }

    /// A cursor holding a 4-byte index (a bucket or an array slot).
    package init(index: UInt32) {
        low = UInt64(index)
        high = 0
        count = 4
        heap = nil
    }

    /// The cursor's bytes, as the map wrote them.
    public var bytes: [UInt8] { withBytes { Array($0) } }

    /// Runs `body` with the cursor's bytes.
    package func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let heap { return heap.withUnsafeBytes(body) }
        var words = (low, high)
        return withUnsafeBytes(of: &words) { body(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
    }

    /// The byte count.
    package var byteCount: Int { count }

    /// The 4-byte index the cursor holds, or nil if it holds something else.
    package var index: UInt32? { count == 4 && heap == nil ? UInt32(truncatingIfNeeded: low) : nil }

    /// The marker byte after the key of a cursor that resumes *at* its key.
    static let resumesAtKeyMarker: UInt8 = 1

    /// A cursor that resumes a pass of keys at `key` itself (returned first, if it is still
    /// in the map), where a cursor of the key's bytes alone resumes after it.
    package init(resumingAt key: UnsafeRawBufferPointer) {
        self = withUnsafeTemporaryAllocation(byteCount: key.count + 1, alignment: 8) { bytes in
            bytes.copyMemory(from: key)
            bytes[key.count] = Self.resumesAtKeyMarker
            return MapBatchCursor(UnsafeRawBufferPointer(bytes))
        }
    }

    /// Runs `body` with the key of a cursor of a pass over keys of `keySize` bytes, and
    /// whether the pass resumes at that key (``init(resumingAt:)``) or after it.
    ///
    /// - Throws: ``MapError/invalidArgument`` for a cursor of neither form.
    package func withResumeKey<R>(keySize: Int,
                                  _ body: (_ key: UnsafeRawBufferPointer, _ resumesAtKey: Bool) -> R) throws(MapError) -> R {
        let result: R? = withBytes { bytes in
            if bytes.count == keySize { return body(bytes, false) }
            guard bytes.count == keySize + 1, bytes[keySize] == Self.resumesAtKeyMarker else { return nil }
            return body(UnsafeRawBufferPointer(rebasing: bytes[..<keySize]), true)
        }
        guard let result else {
            throw MapError.invalidArgument.with(reason: "the batch cursor is not one of this map's (\(count) bytes)")
        }
        return result
    }
}

/// What a batch operation did: how many elements, where to resume, and the errno Linux
/// returns for the call.
///
/// Lookup batches: ``error`` `nil` means the call stopped before the end and more may
/// remain — the buffers are full, or, on the bucket-locked hashes (`HASH`, `LRU_HASH` and
/// their per-CPU forms), `count` is below what was asked because the next whole bucket does
/// not fit in the room left; ``MapError/keyNotFound`` (ENOENT) means the pass reached the
/// end — `count` may still be above 0, and those elements are valid; ``MapError/noSpace``
/// (ENOSPC, bucket-locked hashes only) means the next bucket alone does not fit in `count`
/// elements: retry from ``cursor`` with larger buffers. A lookup batch (not a
/// lookup-and-delete one) that fails on an element's lookup answers `count` 0 and no
/// cursor, as Linux writes no count there, although the elements before it were copied
/// into the buffers. Update and delete batches stop at the first failing element: `count`
/// elements were done, and ``error`` is the failure of the element at index `count`.
public struct MapBatchResult: Hashable, Sendable {
    /// Elements done (copied, removed, stored), also when ``error`` is set — except for a
    /// lookup batch that fails on an element's lookup, which answers 0 (see the type's
    /// documentation).
    public var count: Int
    /// Where the next call resumes (`out_batch`); `nil` where Linux leaves `out_batch`
    /// unwritten (a generic batch that returned no element and was passed no cursor, or
    /// one that failed on an element's lookup), and for the lock-free hash's batch that
    /// starts a pass (no cursor) on an empty map, where Linux writes its end-of-table index
    /// with ENOENT (resuming from `nil` starts a new pass, which finds the same). The bucket-locked hashes return a chain
    /// index whenever `count` was above 0, as Linux's hash batches write `out_batch` (also
    /// with ENOSPC on the first chain, which a retry needs, and ENOENT on an empty map); a
    /// call with `count` 0 returns the cursor it was passed, `nil` included, as Linux writes
    /// nothing then. An LPM trie given a
    /// cursor whose `prefixLen` exceeds its data starts from the first key, and returns
    /// `nil` with `count` 0.
    public var cursor: MapBatchCursor?
    /// The errno of the call, or `nil` for success (see the type's documentation).
    public var error: MapError?
    /// Whether ``error`` is the bucket-locked hash's ENOSPC for a bucket larger than the
    /// buffers (retry with larger ones), rather than an element's own failure with ENOSPC (a
    /// custom map's provider refusing it, which larger buffers would only ask again). Set by
    /// the map; not part of equality.
    package var needsLargerBuffers = false

    /// A result: `count` elements done, where to resume, and the call's errno (maps and
    /// tests make them; users read them).
    public init(count: Int, cursor: MapBatchCursor?, error: MapError?) {
        self.count = count
        self.cursor = cursor
        self.error = error
    }

    /// The same count, cursor and error: the call's answer (the map's internal note on why
    /// an ENOSPC happened is not compared).
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.count == rhs.count && lhs.cursor == rhs.cursor && lhs.error == rhs.error
    }

    /// Hashes the count, cursor and error (the parts ``==(_:_:)`` compares).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        hasher.combine(cursor)
        hasher.combine(error)
    }

    /// Whether a lookup pass is over (ENOENT from the map, not a provider's refusal:
    /// ``MapError/isKeyAbsent``).
    public var isEndOfMap: Bool { error?.isKeyAbsent ?? false }
}

// MARK: - Shared checks

/// The checks every batch operation makes before it does anything, in Linux 6.18's order:
/// access (EPERM), the operation's existence for the type (ENOTSUPP), element flags
/// (EINVAL; `BPF_F_LOCK` only with a lock word), and the buffers (EINVAL for a buffer
/// shorter than `count` elements, where Linux faults).
package struct BatchChecks {
    let map: any RawMap

    package init(_ map: any RawMap) { self.map = map }

    package func access(read: Bool, write: Bool) throws(MapError) {
        let access = map.access
        if read, !access.userRead { throw accessError("batch read", "BPF_F_WRONLY") }
        if write, !access.userWrite { throw accessError("batch write", "BPF_F_RDONLY") }
        if write, map.isFrozen { throw frozenError }
    }

    package func elementFlags(_ flags: MapElementFlags) throws(MapError) {
        guard flags.subtracting(.lock).isEmpty else {
            throw MapError.invalidArgument.with(reason: "batch element flags may only be BPF_F_LOCK, got \(flags.rawValue)")
        }
        if flags.contains(.lock), map.definition.lockOffset == nil {
            throw MapError.invalidArgument.with(reason: "BPF_F_LOCK needs a map whose values hold a lock word")
        }
    }

    package func buffer(_ count: Int, _ bytes: Int, of size: Int, _ what: StaticString) throws(MapError) {
        guard count >= 0 else { throw MapError.invalidArgument.with(reason: "batch count \(count) is negative") }
        let (needed, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, bytes >= needed else {
            throw MapError.invalidArgument.with(reason: "the \(what) buffer holds \(bytes) bytes, \(count) elements need \(needed)")
        }
    }
}

// MARK: - Generic batches (Linux's generic_map_*_batch)

extension RawMap {
    /// Linux's `generic_map_update_batch`: each element is a user-mode update with
    /// `elementFlags` as its flags (0 or `BPF_F_LOCK`: Linux 6.18 refuses `BPF_NOEXIST` and
    /// `BPF_EXIST` here); stops at the first failure. Access and flags are checked first.
    /// `valueSize` is one element's value in `values` (the definition's, unless the map's
    /// user-mode values are larger: a per-CPU map's hold every CPU's).
    package func genericUpdateBatch(keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, count: Int,
                                    elementFlags: MapElementFlags, valueSize: Int? = nil) throws(MapError) -> MapBatchResult {
        let checks = BatchChecks(self)
        try checks.access(read: false, write: true)
        try checks.elementFlags(elementFlags)
        let keySize = definition.keySize
        let valueSize = valueSize ?? definition.valueSize
        try checks.buffer(count, keys.count, of: keySize, "keys")
        try checks.buffer(count, values.count, of: valueSize, "values")
        let flags = MapUpdateFlags(rawValue: elementFlags.rawValue)
        for index in 0..<count {
            let key = UnsafeRawBufferPointer(rebasing: keys[index * keySize ..< (index + 1) * keySize])
            let value = UnsafeRawBufferPointer(rebasing: values[index * valueSize ..< (index + 1) * valueSize])
            do throws(MapError) {
                try update(key: key, value: value, flags: flags)
            } catch {
                return MapBatchResult(count: index, cursor: nil, error: error)
            }
        }
        return MapBatchResult(count: count, cursor: nil, error: nil)
    }

    /// Linux's `generic_map_delete_batch`: each key is a user-mode delete; stops at the
    /// first failure (ENOENT for a missing key). Access and flags are checked first.
    package func genericDeleteBatch(keys: UnsafeRawBufferPointer, count: Int,
                                    elementFlags: MapElementFlags) throws(MapError) -> MapBatchResult {
        let checks = BatchChecks(self)
        try checks.access(read: false, write: true)
        try checks.elementFlags(elementFlags)
        let keySize = definition.keySize
        try checks.buffer(count, keys.count, of: keySize, "keys")
        for index in 0..<count {
            do throws(MapError) {
                try delete(key: UnsafeRawBufferPointer(rebasing: keys[index * keySize ..< (index + 1) * keySize]))
            } catch {
                return MapBatchResult(count: index, cursor: nil, error: error)
            }
        }
        return MapBatchResult(count: count, cursor: nil, error: nil)
    }

    /// Linux's `generic_map_lookup_batch`, and the same walk removing each element for a
    /// lookup-and-delete batch: the cursor is the last key returned (or the key after it,
    /// below); the walk is
    /// ``nextKeyInPass(after:into:)`` (no key twice in a pass, even when the cursor was
    /// deleted — but for that function's rare exception on a lock-free hash base, a deleted
    /// cursor inserted again); a key that disappears between its get-next-key and its lookup
    /// is skipped.
    ///
    /// A removing walk reads each element's successor before it removes the element, and
    /// returns a cursor that resumes at the successor (`MapBatchCursor(resumingAt:)`):
    /// get-next-key after a key that is gone finds its place, in a lock-free hash, only by
    /// walking the list from its head, which made draining a map cost time quadratic in its
    /// size. A lookup walk (not of a trie) that stops before the end reads its last key's
    /// successor for its cursor the same way, for callers that delete what they read.
    ///
    /// - Parameter removing: lookup-and-delete each element (atomic per element: of
    ///   concurrent passes, exactly one returns each value).
    package func genericLookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                                    values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                                    removing: Bool) throws(MapError) -> MapBatchResult {
        let checks = BatchChecks(self)
        try checks.access(read: true, write: removing)
        try checks.elementFlags(elementFlags)
        let keySize = definition.keySize
        let valueSize = definition.valueSize
        try checks.buffer(count, keys.count, of: keySize, "keys")
        try checks.buffer(count, values.count, of: valueSize, "values")
        guard count > 0 else { return MapBatchResult(count: 0, cursor: cursor, error: nil) }
        // `previous`: the last key handled (returned or skipped); `upcoming`: the key to take
        // next without asking get-next-key (a cursor that resumes at a key, or the successor
        // a removing walk read before it removed `previous`).
        let previous = UnsafeMutableRawBufferPointer.allocate(byteCount: keySize, alignment: 16)
        defer { previous.deallocate() }
        let upcoming = UnsafeMutableRawBufferPointer.allocate(byteCount: keySize, alignment: 16)
        defer { upcoming.deallocate() }
        // The element being taken, copied to the caller's buffers only once it is returned:
        // a key skipped (gone meanwhile) or refused leaves nothing past the returned count,
        // as Linux's generic batch copies to user memory only after a successful lookup.
        let key = UnsafeMutableRawBufferPointer.allocate(byteCount: keySize, alignment: 16)
        defer { key.deallocate() }
        let value = UnsafeMutableRawBufferPointer.allocate(byteCount: valueSize, alignment: 16)
        defer { value.deallocate() }
        var hasPrevious = false
        var hasUpcoming = false
        var upcomingIsEnd = false
        // An LPM trie's lookup is a longest-prefix match: a key deleted between its
        // get-next-key and its lookup would come back with the value of a shorter prefix
        // that covers it, a pair the map never held (found by review, 2026-12-05; Linux's
        // generic batch does the same). Its walk copies each key and its value in one step.
        let trie = removing ? nil : self as? RawLPMTrieMap
        if let cursor {
            var resumesAtKeyOfATrie = false
            try cursor.withResumeKey(keySize: keySize) { key, resumesAtKey in
                resumesAtKeyOfATrie = resumesAtKey && trie != nil
                if resumesAtKey {
                    upcoming.copyMemory(from: key)
                    hasUpcoming = true
                } else {
                    previous.copyMemory(from: key)
                    hasPrevious = true
                }
            }
            // Only removing walks make such cursors, and a trie has none.
            if resumesAtKeyOfATrie {
                throw MapError.invalidArgument.with(reason: "the batch cursor is not one of this map's (\(cursor.byteCount) bytes)")
            }
        }
        var done = 0
        var end = false
        while done < count {
            if hasUpcoming {
                key.copyMemory(from: UnsafeRawBufferPointer(upcoming))
                hasUpcoming = false
            } else if upcomingIsEnd {
                end = true
                break
            } else {
                do throws(MapError) {
                    if let trie {
                        try trie.nextEntryInPass(after: hasPrevious ? UnsafeRawBufferPointer(previous) : nil, into: key,
                                                 value: value.baseAddress!)
                    } else {
                        try nextKeyInPass(after: hasPrevious ? UnsafeRawBufferPointer(previous) : nil, into: key)
                    }
                } catch where error == .keyNotFound {
                    end = true
                    break
                } catch {
                    // Another failure of get-next-key is the batch's error, with the elements
                    // copied so far, as Linux's generic batch returns it; reported as the end
                    // of the map, it would pass for a complete pass. (No built-in map's step
                    // fails once the call's checks passed — a custom map's is its base map's,
                    // with no provider callback — but a map of another conformance may.)
                    return MapBatchResult(count: done, cursor: done > 0 ? MapBatchCursor(UnsafeRawBufferPointer(previous)) : cursor,
                                          error: error)
                }
            }
            previous.copyMemory(from: UnsafeRawBufferPointer(key))
            hasPrevious = true
            if removing {
                // The successor, while this key is still in the map. A failure other than
                // the end is left to the next element's own get-next-key, which reports it.
                do throws(MapError) {
                    try nextKeyInPass(after: UnsafeRawBufferPointer(key), into: upcoming)
                    hasUpcoming = true
                } catch {
                    upcomingIsEnd = error == .keyNotFound
                }
            }
            // Zeroed before each element: a custom map's find callback may write only part
            // of the value it answers with, and the rest must not be bytes of another
            // element, or of whatever the allocation held before (found by review, 2026-12-06).
            if trie == nil { value.initializeMemory(as: UInt8.self, repeating: 0) }
            do throws(MapError) {
                if removing {
                    try lookupAndDelete(key: UnsafeRawBufferPointer(key), into: value, flags: elementFlags)
                } else if trie != nil {
                    // Key and value came together.
                } else {
                    try lookup(key: UnsafeRawBufferPointer(key), into: value, flags: elementFlags)
                }
            } catch where error.isKeyAbsent {
                continue  // gone meanwhile (or hidden by a find callback): skip it
            } catch {
                guard removing else {
                    return MapBatchResult(count: 0, cursor: nil, error: error)  // Linux writes no count here
                }
                // The elements removed before the refusal are gone from the map: hand them
                // back (count = those), as update and delete batches stop at their first
                // failure, with a cursor past the refused element (it stays in the map) —
                // also when it was the call's first: without one, a drain in small batches
                // met it first on every call and never got past it (found by review,
                // 2026-12-05). Linux's generic batch reports no count here, but it never removes.
                return MapBatchResult(count: done, cursor: MapBatchCursor(UnsafeRawBufferPointer(previous)), error: error)
            }
            UnsafeMutableRawBufferPointer(rebasing: keys[done * keySize ..< (done + 1) * keySize])
                .copyMemory(from: UnsafeRawBufferPointer(key))
            UnsafeMutableRawBufferPointer(rebasing: values[done * valueSize ..< (done + 1) * valueSize])
                .copyMemory(from: UnsafeRawBufferPointer(value))
            done += 1
        }
        // A removing walk whose last successor read found none is at the end of the map.
        if upcomingIsEnd, !hasUpcoming { end = true }
        // A lookup walk that stops before the end resumes at the successor of its last key,
        // read now, while that key is most likely still in the map: a caller that deletes
        // the keys a call returned ("read, then expire") would otherwise resume after a
        // missing key, which a lock-free base finds by walking its list from the head —
        // once a call, time quadratic in the map's size (found by review, 2026-12-05).
        // A failure (the end, or a provider's) leaves the plain cursor.
        if !removing, trie == nil, !end, done > 0, !hasUpcoming,
           (try? nextKeyInPass(after: UnsafeRawBufferPointer(previous), into: upcoming)) != nil {
            hasUpcoming = true
        }
        let out: MapBatchCursor?
        if done == 0 {
            out = cursor
        } else if hasUpcoming {
            out = MapBatchCursor(resumingAt: UnsafeRawBufferPointer(upcoming))
        } else {
            out = MapBatchCursor(UnsafeRawBufferPointer(previous))
        }
        return MapBatchResult(count: done, cursor: out, error: end ? .keyNotFound : nil)
    }

    /// ENOTSUPP for a batch operation the map type lacks, after the access checks (Linux's
    /// `bpf_map_do_batch` order).
    package func unsupportedBatch(read: Bool, write: Bool, _ what: StaticString) throws(MapError) -> MapBatchResult {
        try BatchChecks(self).access(read: read, write: write)
        throw MapError.unsupportedByMapType.with(reason: "\(definition.type) has no \(what) batch")
    }
}
