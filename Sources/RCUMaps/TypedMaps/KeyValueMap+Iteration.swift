/// Iterates a typed map's entries with get-next-key: each step is self-contained (its own
/// epoch section, no section held between steps), so an iteration may pause, block or
/// cross an `await` between steps.
///
/// The pass never repeats a key and returns every key present for the whole pass (the
/// base maps' get-next-key guarantee), with one rare exception on a ``LockFreeHashMap``
/// (or a ``CustomMap`` on a lock-free hash base): when the key a step resumes after was
/// deleted meanwhile, another key with exactly its 64-bit hash can be skipped, or returned
/// twice if the deleted key was inserted again — by chance almost never, on purpose with
/// keys of 8 bytes or more under `BPF_F_ZERO_SEED` (see the repository's `docs/map-types.md`,
/// "HASH"). A key deleted between its get-next-key and its lookup is skipped; each value
/// returned is one some update stored whole. For a custom map whose provider refuses a
/// lookup, that entry is skipped.
public struct KeyValueMapIterator<Map: KeyValueMap>: IteratorProtocol {
    @usableFromInline var pass: KeyValueMapPass<Map>

    @inlinable
    init(_ map: Map) { pass = KeyValueMapPass(map) }

    /// The next entry, or `nil` at the end of the pass.
    @inlinable
    public mutating func next() -> (key: Map.Key, value: Map.Value)? {
        while let key = pass.next() {
            // Not a use: a pass over an LRU map leaves its recency as it is.
            if let value = (try? pass.map.passValue(forKey: key)) ?? nil { return (key, value) }
        }
        return nil
    }
}

/// A get-next-key pass that asks for each key's successor before it hands the key out.
///
/// So a caller that removes the key it was just given (clearing or expiring entries while
/// iterating) does not make the next step resume after a key no longer in the map: on the
/// lock-free HASH that resumption walks the table's list from its head, and a pass that
/// removed each key as it went took time quadratic in the map's size (100,000 keys: about
/// 30 s; found by review, 2026-12-05, sixteenth session). The guarantees are those of the
/// steps it makes (``KeyValueMap/nextKeyInPass(after:)``), each made one key earlier.
@usableFromInline
struct KeyValueMapPass<Map: KeyValueMap> {
    @usableFromInline let map: Map
    @usableFromInline var keys: RawKeyPass<Map.Raw, Map.Key>

    @inlinable
    init(_ map: Map) {
        self.map = map
        keys = RawKeyPass(map.raw)
    }

    /// The next key of the pass, or nil at its end (and after).
    @inlinable
    mutating func next() -> Map.Key? { keys.next() }
}

/// The look-ahead pass itself, over a byte-level map with keys of type `Key` (see
/// ``KeyValueMapPass``; the per-CPU maps iterate with it directly). Each step is its own
/// epoch section (the map's).
@usableFromInline
struct RawKeyPass<Raw: RawMap, Key: BitwiseCopyable> {
    @usableFromInline let raw: Raw
    /// The key the next call returns (fetched when the previous one was handed out).
    @usableFromInline var upcoming: Key?
    @usableFromInline var started = false

    @inlinable
    init(_ raw: Raw) { self.raw = raw }

    /// The next key of the pass, or nil at its end (and after).
    @inlinable
    mutating func next() -> Key? {
        if !started {
            started = true
            upcoming = typedNextKey(of: raw, after: nil, inPass: true)
        }
        guard let key = upcoming else { return nil }
        upcoming = typedNextKey(of: raw, after: key, inPass: true)
        return key
    }
}

/// The keys of a typed map, in get-next-key order (see ``KeyValueMapIterator``).
public struct KeyValueMapKeys<Map: KeyValueMap>: Sequence {
    @usableFromInline let map: Map

    @inlinable
    init(_ map: Map) { self.map = map }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(map: map) }

    /// Iterates the keys; each step is its own epoch section. Removing the key just
    /// returned costs the pass nothing (each key's successor is found before the key is returned).
    public struct Iterator: IteratorProtocol {
        @usableFromInline var pass: KeyValueMapPass<Map>

        @inlinable
        init(map: Map) { pass = KeyValueMapPass(map) }

        @inlinable
        public mutating func next() -> Map.Key? { pass.next() }
    }
}

/// The values of a typed map, in get-next-key order of their keys.
public struct KeyValueMapValues<Map: KeyValueMap>: Sequence {
    @usableFromInline let map: Map

    @inlinable
    init(_ map: Map) { self.map = map }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(entries: KeyValueMapIterator(map)) }

    /// Iterates the values; each step is its own epoch section.
    public struct Iterator: IteratorProtocol {
        @usableFromInline var entries: KeyValueMapIterator<Map>

        @inlinable
        init(entries: KeyValueMapIterator<Map>) { self.entries = entries }

        @inlinable
        public mutating func next() -> Map.Value? { entries.next()?.value }
    }
}

extension KeyValueMap {
    /// Iterates the entries (see ``KeyValueMapIterator``).
    @inlinable
    public func makeIterator() -> KeyValueMapIterator<Self> { KeyValueMapIterator(self) }

    /// The keys, in iteration order.
    @inlinable
    public var keys: KeyValueMapKeys<Self> { KeyValueMapKeys(self) }

    /// The values, in the iteration order of their keys.
    @inlinable
    public var values: KeyValueMapValues<Self> { KeyValueMapValues(self) }

    /// The key after `key` in the map's iteration order (the first key when `key` is nil),
    /// or nil at the end: Linux's `BPF_MAP_GET_NEXT_KEY`, including its rule for a `key`
    /// that is not in the map (see ``/RCUBaseMaps/RawMap/nextKey(after:into:)``).
    @inlinable
    public func nextKey(after key: Key?) -> Key? {
        nextKey(after: key, inPass: false)
    }

    /// The key after `key` in a pass that never restarts: a `key` no longer in the map
    /// resumes after the place it had (see ``/RCUBaseMaps/RawMap/nextKeyInPass(after:into:)``).
    /// What iteration uses.
    @inlinable
    public func nextKeyInPass(after key: Key?) -> Key? {
        nextKey(after: key, inPass: true)
    }

    @inlinable
    func nextKey(after key: Key?, inPass: Bool) -> Key? {
        typedNextKey(of: raw, after: key, inPass: inPass)
    }
}

/// Get-next-key on a byte-level map with keys of type `Key` (`BPF_MAP_GET_NEXT_KEY`, or the
/// pass that never restarts when `inPass`): nil at the end of the pass, or when the map
/// refuses reads. The typed maps' iteration and the per-CPU maps' both step with it.
@inlinable
func typedNextKey<Raw: RawMap, Key: BitwiseCopyable>(of raw: Raw, after key: Key?, inPass: Bool) -> Key? {
    withUnsafeTemporaryAllocation(of: Key.self, capacity: 1) { next -> Key? in
        let nextBytes = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(next)[..<MemoryLayout<Key>.size])
        do {
            if let key {
                try withUnsafeBytes(of: key) { (keyBytes) throws(MapError) in
                    if inPass {
                        try raw.nextKeyInPass(after: keyBytes, into: nextBytes)
                    } else {
                        try raw.nextKey(after: keyBytes, into: nextBytes)
                    }
                }
            } else {
                try raw.nextKeyInPass(after: nil, into: nextBytes)
            }
        } catch {
            // ENOENT: the end of the pass (or a map that refuses reads: nothing to iterate).
            return nil
        }
        return nextBytes.baseAddress!.load(as: Key.self)
    }
}
