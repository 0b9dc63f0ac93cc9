import RCUBaseMaps

extension PerCPUHashMap: Sequence {
    /// Iterates `(key, values)` pairs — every CPU's value of each key, CPU 0 first — with
    /// get-next-key, each step self-contained (no section held between steps), as the other
    /// typed maps iterate (``KeyValueMapIterator``): no key twice, every key present for the
    /// whole pass; a key removed between finding it and reading its values is skipped.
    public struct Iterator: IteratorProtocol {
        let map: PerCPUHashMap
        var pass: RawKeyPass<RawPerCPUHashMap, Key>

        public mutating func next() -> (key: Key, values: [Value])? {
            while let key = pass.next() {
                // Not a use: a pass over an LRU map leaves its recency as it is.
                if let values = map.passValues(forKey: key) { return (key, values) }
            }
            return nil
        }
    }

    /// Iterates the entries (see ``Iterator``).
    public func makeIterator() -> Iterator { Iterator(map: self, pass: RawKeyPass(raw)) }

    /// The keys, in iteration order; each step is its own epoch section.
    public var keys: PerCPUHashMapKeys<Key> { PerCPUHashMapKeys(raw: raw) }

    /// Most keys the map holds (`maxEntries`). Any thread.
    public var capacity: Int { raw.definition.maxEntries }

    /// Whether the map holds no key (a snapshot). Any thread.
    public var isEmpty: Bool { count == 0 }

    /// Stores `values` (one per possible CPU) under `key` only if the key is absent
    /// (`BPF_NOEXIST`).
    ///
    /// - Returns: `true` if stored; `false` if the key was present (nothing changed).
    /// - Throws: as ``setValues(_:forKey:flags:)``, except EEXIST.
    @discardableResult
    public func insertValues(_ values: [Value], forKey key: Key) throws(MapError) -> Bool {
        do throws(MapError) {
            try setValues(values, forKey: key, flags: .noExist)
            return true
        } catch where error == .alreadyExists {
            return false
        }
    }

    /// Every entry, as a dictionary of each key's values (not atomic: each key's values
    /// are read at some moment of the pass).
    public func snapshot() -> [Key: [Value]] where Key: Hashable {
        var result: [Key: [Value]] = [:]
        for (key, values) in self { result[key] = values }
        return result
    }
}

/// The keys of a ``PerCPUHashMap``, in get-next-key order.
public struct PerCPUHashMapKeys<Key: BitwiseCopyable & Sendable>: Sequence {
    let raw: RawPerCPUHashMap

    /// Iterates the keys; each step is its own epoch section. Removing the key just
    /// returned costs the pass nothing. Use on one thread at a time.
    public struct Iterator: IteratorProtocol {
        var pass: RawKeyPass<RawPerCPUHashMap, Key>
        /// The next key, or nil at the end of the pass.
        public mutating func next() -> Key? { pass.next() }
    }

    /// Starts a pass over the keys. Any thread.
    public func makeIterator() -> Iterator { Iterator(pass: RawKeyPass(raw)) }
}

extension PerCPUArrayMap: Sequence {
    /// Iterates `(index, values)` for every index in order, every CPU's value, CPU 0
    /// first; each step a user-mode lookup of its own.
    public struct Iterator: IteratorProtocol {
        let map: PerCPUArrayMap
        var index: UInt32 = 0

        public mutating func next() -> (index: UInt32, values: [Value])? {
            guard Int(index) < map.count, let values = map.values(at: index) else { return nil }
            defer { index &+= 1 }
            return (index, values)
        }
    }

    /// Iterates every index (see ``Iterator``).
    public func makeIterator() -> Iterator { Iterator(map: self) }

    /// The number of indices (`maxEntries`, as ``count``). Any thread.
    public var capacity: Int { count }
}

extension LPMTrieMap: Sequence {
    /// Iterates `(prefix, value)` in Linux's get-next-key order (more specific prefixes
    /// before the ones that cover them), each step its own call (as ``snapshot()``'s):
    /// a prefix present for the whole pass comes once, with its value at that step. Each
    /// step resumes after the place of the prefix handed out last, so removing it costs
    /// the pass nothing; a prefix removed before its step is skipped. (The successor was
    /// read a step early, value included, so a prefix the loop body removed or changed
    /// came back as it was: found by review, 2026-12-05, nineteenth session.)
    public struct Iterator: IteratorProtocol {
        let map: LPMTrieMap
        var last: Key?
        var finished = false

        public mutating func next() -> (prefix: Key, value: Value)? {
            guard !finished, let entry = map.entry(after: last) else {
                finished = true
                return nil
            }
            last = entry.prefix
            return entry
        }
    }

    /// Iterates the prefixes and their values (see ``Iterator``).
    public func makeIterator() -> Iterator { Iterator(map: self) }
}
