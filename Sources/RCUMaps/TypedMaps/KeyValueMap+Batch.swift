/// A batch of entries read from a typed map, and where the next batch starts.
public struct MapBatch<Key, Value> {
    /// The entries, in the map's batch order.
    public var entries: [(key: Key, value: Value)]
    /// Where the next batch starts (pass it to the next call).
    public var cursor: MapBatchCursor?
    /// Whether the pass reached the end of the map (Linux's ENOENT).
    public var isComplete: Bool
    /// Why a removing batch (``DynamicKeyValueMap/removeBatch(from:maxCount:)``) stopped
    /// early after removing the entries it returns: an element failed (a custom map's
    /// provider refused it; the entries returned may then be none) — that element stays in
    /// the map and ``cursor`` continues after it. `nil` otherwise (a batch that fails
    /// before it removes or passes anything throws). (A custom map's iteration is its base
    /// map's, with no provider callback: it does not fail once the call's checks passed.)
    public var failure: MapError? = nil
}

/// A batch is a value: sendable when its keys and values are (it holds copies, no borrowed
/// memory). (It was not, so a batch read in a detached task could not be returned from it:
/// found by review, 2026-12-07.)
extension MapBatch: Sendable where Key: Sendable, Value: Sendable {}

extension KeyValueMap {
    /// Reads up to `maxCount` entries in one call, starting at `cursor` (`nil`: the start):
    /// Linux's `BPF_MAP_LOOKUP_BATCH`, typed. Call again with the returned cursor until
    /// ``MapBatch/isComplete``.
    ///
    /// ```swift
    /// var batch = try flows.lookupBatch(maxCount: 1024)
    /// while true {
    ///     for (flow, counters) in batch.entries { export(flow, counters) }
    ///     if batch.isComplete { break }
    ///     batch = try flows.lookupBatch(from: batch.cursor, maxCount: 1024)
    /// }
    /// ```
    ///
    /// A bucket of the bucket-locked hash that does not fit in `maxCount` is read whole
    /// anyway (the buffers grow for it, where the byte level answers ENOSPC), and the call
    /// then also returns the buckets after it that fit the grown buffers. One call
    /// returns at most ``largestBatch`` entries whatever `maxCount` asks, and no more than
    /// fit in ``largestBatchBytes`` of keys and values (at least one entry; more take more
    /// calls): its buffers are allocated for the count it may return.
    ///
    /// A `maxCount` of 0 returns no entry (the cursor unchanged), as Linux does for a count
    /// of 0.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/permissionDenied`` for a `BPF_F_WRONLY` map;
    ///   ``/RCUBaseMaps/MapError/invalidArgument`` for a negative `maxCount`; a custom map's
    ///   provider errors: an element its provider refuses fails the call with nothing
    ///   returned, as Linux's generic batch fails it, so a pass in batches cannot get past
    ///   that element (the map's `Sequence` skips it).
    public func lookupBatch(from cursor: MapBatchCursor? = nil, maxCount: Int) throws(MapError) -> MapBatch<Key, Value> {
        try batch(from: cursor, maxCount: maxCount, removing: false)
    }

    /// The most entries one batch call returns (65,536), whatever its `maxCount`; a bucket
    /// larger than that is still returned whole. Wide pairs are fewer a call: see
    /// ``largestBatchBytes``.
    public static var largestBatch: Int { 1 << 16 }

    /// The most bytes of keys and values one batch call's buffers hold (64 MiB): a call
    /// returns, stores or removes at most as many entries as fit (and at least one), so that
    /// a map of wide values (up to about 4 MiB a pair) is read in several calls instead of
    /// allocating gigabytes at once. A bucket larger than that is still returned whole.
    public static var largestBatchBytes: Int { 64 << 20 }

    /// How many entries one call's buffers hold: ``largestBatch`` at most, and no more than
    /// fit in ``largestBatchBytes`` when each entry takes `keyBytes + valueBytes` (at least
    /// one). Sized by entries alone, a `lookupBatch(maxCount: 65_536)` on a map of 4 MB
    /// values asked for 256 GiB and stopped the program when malloc refused, whatever the map
    /// held (found by review, 2026-12-07).
    package static func batchRoom(keyBytes: Int, valueBytes: Int) -> Int {
        let (sum, overflow) = keyBytes.addingReportingOverflow(valueBytes)
        return Swift.max(1, Swift.min(largestBatch, largestBatchBytes / (overflow ? Int.max : Swift.max(1, sum))))
    }

    func batch(from cursor: MapBatchCursor?, maxCount: Int, removing: Bool) throws(MapError) -> MapBatch<Key, Value> {
        // Nothing asked, nothing read or removed (the room below is at least 1: a count of
        // 0 read one entry, or removed a whole bucket; found by review, 2026-12-05).
        guard maxCount > 0 else {
            guard maxCount == 0 else { throw MapError.invalidArgument.with(reason: "maxCount is \(maxCount)") }
            return MapBatch(entries: [], cursor: cursor, isComplete: false)
        }
        // Room for at most the map's capacity and one: `maxCount` may be anything (`.max`
        // trapped in the allocation; found by review), no call returns more entries than the
        // map holds, and the one more lets a call that returns them all also report the end.
        // And at most `largestBatch`: sized for a large map's capacity, `.max` allocated
        // gigabytes on every call and stopped the program when malloc refused (found by
        // review: 32 GiB for an array of 2^32-1 eight-byte values).
        // And at most what fits in `largestBatchBytes` (`batchRoom`).
        var room = Swift.min(Swift.max(1, maxCount), Swift.max(1, raw.definition.maxEntries) &+ 1,
                             Self.batchRoom(keyBytes: MemoryLayout<Key>.size, valueBytes: MemoryLayout<Value>.size))
        while true {
            let keys = UnsafeMutableBufferPointer<Key>.allocate(capacity: room)
            let values = UnsafeMutableBufferPointer<Value>.allocate(capacity: room)
            defer {
                keys.deallocate()
                values.deallocate()
            }
            let keyBytes = UnsafeMutableRawBufferPointer(start: keys.baseAddress, count: room * MemoryLayout<Key>.size)
            let valueBytes = UnsafeMutableRawBufferPointer(start: values.baseAddress, count: room * MemoryLayout<Value>.size)
            // Keys and values are packed at their sizes (equal to their strides for keys; values
            // are read back from the packed bytes).
            let result = removing
                ? try raw.lookupAndDeleteBatch(from: cursor, keys: keyBytes, values: valueBytes, count: room,
                                               elementFlags: [], flags: 0)
                : try raw.lookupBatch(from: cursor, keys: keyBytes, values: valueBytes, count: room,
                                      elementFlags: [], flags: 0)
            // The bucket-locked hash answers ENOSPC, with nothing processed, for a bucket larger
            // than the room, and says so (`needsLargerBuffers`): read it whole (no bucket holds
            // more than the map's capacity). Any other ENOSPC (a custom map's provider refusing
            // an element) is a failure as any other. (Before 2026-12-03, a provider's ENOSPC
            // after some removed entries lost them and then doubled the room forever; until
            // 2026-12-05 one on the first element was asked again with doubled buffers up to
            // the capacity before it was thrown; both found by review.)
            let capacity = Swift.max(1, raw.definition.maxEntries)
            if result.needsLargerBuffers, result.error == .noSpace, result.count == 0, room < capacity {
                room = Swift.min(room * 2, capacity)
                continue
            }
            // A removing batch stopped by an element (a custom map's provider refusing it)
            // returns what it removed before it — thrown, those entries would be lost with
            // the error — and a cursor past it, also when it removed nothing (thrown, the
            // cursor would be lost, and a drain in small batches never got past the element;
            // found by review, 2026-12-05).
            let movedOn = removing && (result.count > 0 || (result.cursor != nil && result.cursor != cursor))
            if let error = result.error, !result.isEndOfMap, !movedOn {
                throw error.with(elementsProcessed: result.count)
            }
            let failure = result.isEndOfMap ? nil : result.error
            var entries: [(key: Key, value: Value)] = []
            entries.reserveCapacity(result.count)
            for index in 0..<result.count {
                let key = keyBytes.baseAddress!.loadUnaligned(fromByteOffset: index * MemoryLayout<Key>.size, as: Key.self)
                let value = valueBytes.baseAddress!.loadUnaligned(fromByteOffset: index * MemoryLayout<Value>.size, as: Value.self)
                entries.append((key, value))
            }
            return MapBatch(entries: entries, cursor: result.cursor ?? cursor, isComplete: result.isEndOfMap && failure == nil,
                            failure: failure)
        }
    }

    /// Stores every entry, in order, with `BPF_ANY` semantics: Linux's `BPF_MAP_UPDATE_BATCH`,
    /// one call per ``largestBatch`` entries (fewer for wide pairs: ``largestBatchBytes``).
    ///
    /// - Throws: the first failure (``/RCUBaseMaps/MapError/outOfSpace`` for a new key in a full map,
    ///   …), with ``/RCUBaseMaps/MapError/elementsProcessed`` the number of entries stored before it.
    public func updateValues(_ entries: some Collection<(Key, Value)>) throws(MapError) {
        // A buffer of at most `largestBatch` entries, submitted each time it fills: buffers
        // for the whole collection were allocated first, so a long lazy collection
        // (`repeatElement(…, count: .max)`) overflowed their size and trapped, and a large
        // one was copied whole before its first failing element (found by review, 2026-12-06).
        let room = Swift.min(entries.count, Self.batchRoom(keyBytes: MemoryLayout<Key>.size, valueBytes: MemoryLayout<Value>.size))
        guard room > 0 else { return }
        let keys = UnsafeMutableRawBufferPointer.allocate(byteCount: room * MemoryLayout<Key>.size, alignment: 16)
        let values = UnsafeMutableRawBufferPointer.allocate(byteCount: room * MemoryLayout<Value>.size, alignment: 16)
        defer {
            keys.deallocate()
            values.deallocate()
        }
        var stored = 0
        var filled = 0
        func submit() throws(MapError) {
            let result: MapBatchResult
            do {
                result = try raw.updateBatch(keys: UnsafeRawBufferPointer(keys), values: UnsafeRawBufferPointer(values),
                                             count: filled, elementFlags: [], flags: 0)
            } catch {
                // Refused before it began (a map frozen meanwhile): what earlier calls stored.
                throw stored > 0 ? error.with(elementsProcessed: stored) : error
            }
            if let error = result.error { throw error.with(elementsProcessed: stored + result.count) }
            stored += filled
            filled = 0
        }
        for (key, value) in entries {
            keys.storeBytes(of: key, toByteOffset: filled * MemoryLayout<Key>.size, as: Key.self)
            values.storeBytes(of: value, toByteOffset: filled * MemoryLayout<Value>.size, as: Value.self)
            filled += 1
            if filled == room { try submit() }
        }
        if filled > 0 { try submit() }
    }
}

extension DynamicKeyValueMap {
    /// Reads and removes up to `maxCount` entries in one call (of concurrent callers,
    /// exactly one gets each entry): Linux's `BPF_MAP_LOOKUP_AND_DELETE_BATCH`, typed. Drain
    /// a map by calling it until ``MapBatch/isComplete``.
    ///
    /// A `maxCount` of 0 removes nothing (see ``KeyValueMap/lookupBatch(from:maxCount:)``).
    /// It may remove more than `maxCount` entries when a bucket of the bucket-locked hash
    /// is larger (read whole, as ``KeyValueMap/lookupBatch(from:maxCount:)`` reads it).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/permissionDenied`` for a frozen map or one created
    ///   with `BPF_F_RDONLY`; ``/RCUBaseMaps/MapError/invalidArgument`` for a negative `maxCount`. A call stopped by an element (a custom map's
    ///   provider refusing it) returns instead the entries it removed before it (perhaps
    ///   none), with the failure in ``MapBatch/failure``: the element stays in the map, and
    ///   the cursor continues after it.
    public func removeBatch(from cursor: MapBatchCursor? = nil, maxCount: Int) throws(MapError) -> MapBatch<Key, Value> {
        try batch(from: cursor, maxCount: maxCount, removing: true)
    }

    /// Removes every key, in order: Linux's `BPF_MAP_DELETE_BATCH`, one call per
    /// ``KeyValueMap/largestBatch`` keys (fewer for wide keys: ``KeyValueMap/largestBatchBytes``).
    ///
    /// - Throws: the first failure (``/RCUBaseMaps/MapError/keyNotFound`` for an absent key), with
    ///   ``/RCUBaseMaps/MapError/elementsProcessed`` the number of keys removed before it.
    public func removeValues(forKeys keys: some Collection<Key>) throws(MapError) {
        // In buffers of at most `largestBatch` keys, as `updateValues(_:)`.
        let room = Swift.min(keys.count, Self.batchRoom(keyBytes: MemoryLayout<Key>.size, valueBytes: 0))
        guard room > 0 else { return }
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: room * MemoryLayout<Key>.size, alignment: 16)
        defer { bytes.deallocate() }
        var removed = 0
        var filled = 0
        func submit() throws(MapError) {
            let result: MapBatchResult
            do {
                result = try raw.deleteBatch(keys: UnsafeRawBufferPointer(bytes), count: filled, elementFlags: [], flags: 0)
            } catch {
                throw removed > 0 ? error.with(elementsProcessed: removed) : error
            }
            if let error = result.error { throw error.with(elementsProcessed: removed + result.count) }
            removed += filled
            filled = 0
        }
        for key in keys {
            bytes.storeBytes(of: key, toByteOffset: filled * MemoryLayout<Key>.size, as: Key.self)
            filled += 1
            if filled == room { try submit() }
        }
        if filled > 0 { try submit() }
    }
}
