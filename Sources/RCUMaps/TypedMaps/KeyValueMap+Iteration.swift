/// Iterates a typed map's entries with get-next-key: each step is self-contained (its own
/// epoch section, no section held between steps), so an iteration may pause, block or
/// cross an `await` between steps.
///
/// The pass never repeats a key and returns every key present for the whole pass (the
/// base maps' get-next-key guarantee). A key deleted between its get-next-key and its
/// lookup is skipped; each value returned is one some update stored whole. For a custom map
/// whose provider refuses a lookup, that entry is skipped.
public struct KeyValueMapIterator<Map: KeyValueMap>: IteratorProtocol {
    @usableFromInline let map: Map
    @usableFromInline var cursor: Map.Key?
    @usableFromInline var finished = false

    @inlinable
    init(_ map: Map) { self.map = map }

    /// The next entry, or `nil` at the end of the pass.
    @inlinable
    public mutating func next() -> (key: Map.Key, value: Map.Value)? {
        while !finished {
            guard let key = map.nextKeyInPass(after: cursor) else {
                finished = true
                return nil
            }
            cursor = key
            if let value = (try? map.value(forKey: key)) ?? nil { return (key, value) }
        }
        return nil
    }
}

/// The keys of a typed map, in get-next-key order (see ``KeyValueMapIterator``).
public struct KeyValueMapKeys<Map: KeyValueMap>: Sequence {
    @usableFromInline let map: Map

    @inlinable
    init(_ map: Map) { self.map = map }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(map: map) }

    /// Iterates the keys; each step is its own epoch section.
    public struct Iterator: IteratorProtocol {
        @usableFromInline let map: Map
        @usableFromInline var cursor: Map.Key?
        @usableFromInline var finished = false

        @inlinable
        init(map: Map) { self.map = map }

        @inlinable
        public mutating func next() -> Map.Key? {
            guard !finished, let key = map.nextKeyInPass(after: cursor) else {
                finished = true
                return nil
            }
            cursor = key
            return key
        }
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
}
