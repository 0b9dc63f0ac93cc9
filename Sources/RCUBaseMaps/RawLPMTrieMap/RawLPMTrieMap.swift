import CRCUMapsShim
import RCUEpoch
import Synchronization

/// An `LPM_TRIE` map (Linux `BPF_MAP_TYPE_LPM_TRIE`, type 11): longest-prefix match on keys
/// `{prefixLen: UInt32, data: [UInt8]}` — Linux's `struct bpf_lpm_trie_key_u8`, the prefix
/// length in host order, the data big-endian (byte 0 holds the first bits).
///
/// Semantics follow Linux 6.18 (`kernel/bpf/lpm_trie.c`), errno for errno:
/// - Creation: `keySize` = 4 + data bytes, data 1...256 bytes (``maxDataSize``);
///   `valueSize` 1...``maxValueSize``; `maxEntries` ≥ 1; `BPF_F_NO_PREALLOC` required; other
///   flags among ``MapDefinition/lpmTrieFlags`` — each refusal EINVAL; a lock word EOPNOTSUPP.
/// - Lookup: the value of the longest stored prefix that covers the key's first `prefixLen`
///   bits — a query with a shorter `prefixLen` matches only prefixes no longer than it.
///   `prefixLen` beyond `8 × data bytes` → ENOENT; no match → ENOENT.
/// - Update and delete are exact-prefix. Bits beyond `prefixLen` are ignored for matching, but
///   stored: get-next-key returns the data bytes of the update that stored the prefix, as
///   Linux does. Update: flags beyond `BPF_EXIST` (or `BPF_F_LOCK`) → EINVAL; `prefixLen` too
///   long → EINVAL; `BPF_NOEXIST` on a stored prefix → EEXIST; `BPF_EXIST` on a new one →
///   ENOENT; a new prefix in a full map → ENOSPC (a stored one is still replaced). Delete:
///   `prefixLen` too long → EINVAL; a prefix not stored → ENOENT (also a prefix that only a
///   longer one passes through: no intermediate node is an entry).
/// - Get-next-key in Linux's postorder (more specific before less specific; at each bit the
///   0 side first); a cursor that is not stored, or a `prefixLen` beyond the data, restarts
///   at the first key. Lookup-and-delete and its batch → ENOTSUPP (524); the other batches
///   are Linux's generic ones.
///
/// Design: a multibit trie of 8-bit strides — direct-indexed nodes for the root and dense
/// strides, compressed nodes (bitmaps and rank counting) for the others, path compression;
/// `LPMNode` — that readers walk in an epoch section without a lock or a store, one node
/// per data byte at most, instead of one per bit (the walk is C: `lpm_walk.c`). Writers
/// serialise on one lock (as Linux's spinlock), keep a writer-side tree
/// (`LPMWriterNode`), copy the published nodes a change touches, publish them with one
/// release store (a child slot of the nearest unchanged node, or the root) and retire the
/// replaced nodes and entries through the epoch.
///
/// Concurrency: any number of readers and writers on any threads. Lookups (both modes) take
/// no lock. Updates, deletes, get-next-key and batches take the writer lock (not
/// reentrant: a signal handler (on a thread that entered a section before the signal) may look up, but must not call these, which would wait for
/// ever for a lock its interrupted thread holds).
public final class RawLPMTrieMap: RawMap, @unchecked Sendable {
    // @unchecked Sendable: `tree`, `count` bookkeeping and every block are written only with
    // `writerLock` held — except entry values, which helper-mode writers also write in place,
    // without the lock, through `lookupInPlace` pointers (as on Linux; readers may see such a
    // value half written); readers reach blocks only through `root` (acquire) inside a section.

    /// The definition the map was created with. Immutable; any thread.
    public let definition: MapDefinition
    /// Data bytes per key (`keySize - 4`).
    public let dataSize: Int
    /// The longest prefix: `8 × dataSize` bits.
    public let maxPrefixLength: Int
    let layout: LPMEntryLayout
    /// What user and helper mode may do (the access flags).
    public let access: MapAccess
    let freezeState = MapFreezeState()
    #if DEBUG
    /// Tests (debug builds only): runs in an update under the writer lock, once it has found
    /// the map unfrozen, before it changes anything. Set before the map is shared.
    package nonisolated(unsafe) var afterFreezeCheck: (() -> Void)?
    #endif
    let tag: PoolTag
    /// The published root block (never 0 after init).
    let root = Atomic<UInt>(0)
    let entries = Atomic<Int>(0)
    /// Serialises writers (and the walks that read the writer-side tree). A pthread mutex
    /// (`ThreadLock`), not `Synchronization.Mutex`, whose futex the thread sanitizer does not
    /// see: under it, TSan reported the writers' accesses to the writer-side tree as races.
    let writerLock = ThreadLock<Void>(())
    /// Writer-side tree; only with `writerLock` held.
    var tree: LPMWriterNode

    /// Linux's `LPM_DATA_SIZE_MAX`.
    public static let maxDataSize = 256
    /// Linux 6.18's `LPM_VAL_SIZE_MAX`: `KMALLOC_MAX_SIZE` less the largest data and its
    /// 24-byte node header.
    public static let maxValueSize = MapDefinition.kmallocMaxSize - 256 - 24

    /// Creates an empty trie.
    ///
    /// - Throws: ``MapError/invalidArgument`` for a definition Linux refuses (see the type);
    ///   ``MapError/accessDenied`` (EACCES) for a lock word with a program access flag,
    ///   ``MapError/notSupported`` for a lock word otherwise; ``MapError/noMemory``.
    public init(_ definition: MapDefinition) throws(MapError) {
        guard definition.type == .lpmTrie else {
            throw MapError.invalidArgument.with(reason: "RawLPMTrieMap serves BPF_MAP_TYPE_LPM_TRIE, not \(definition.type)")
        }
        try definition.validateLPMTrie()
        self.definition = definition
        dataSize = definition.keySize - 4
        maxPrefixLength = dataSize * 8
        layout = LPMEntryLayout(dataSize: dataSize, valueSize: definition.valueSize)
        access = MapAccess(definition.flags)
        tag = definition.effectivePoolTag
        tree = LPMWriterNode(depth: 0, path: [])
        guard let block = LPMNodeBuilder(tag: tag).build(tree) else { throw MapError.noMemory }
        tree.published = block
        root.store(UInt(bitPattern: block), ordering: .releasing)
        try definition.validateAfterAllocation()  // as Linux, after the allocation (deinit frees it)
    }

    deinit {
        // Readers of this map may still be inside sections holding borrowed values: retire
        // everything through the epoch rather than freeing it at once.
        tree.forEachNode { node in
            if let block = node.published { EpochMemory.freeCacheAligned(block) }
            for (_, entry) in node.own { EpochMemory.free(entry) }
        }
    }

    /// Stored prefixes. A snapshot under concurrent updates. Any thread.
    public var count: Int { entries.load(ordering: .relaxed) }

    // MARK: Lookup (lock-free)

    /// The entry of the longest stored prefix matching the first `length` bits of `data`.
    ///
    /// Precondition: inside a section (the entry is valid until it ends); `length` ≤
    /// ``maxPrefixLength``.
    ///
    /// The walk is `rcumaps_lpm_longest_match` (C, CRCUMapsShim): per stride one 16-byte
    /// slot of a direct-indexed node, or a compressed node's bitmap word and then its child
    /// word and run entry — with a POPCNT instruction where the CPU has one. It loads child
    /// words with acquire ordering and stores nothing.
    @inline(__always)
    func longestMatch(_ data: UnsafeRawPointer, length: Int) -> UnsafeRawPointer? {
        rcumaps_lpm_longest_match(UnsafeRawPointer(bitPattern: root.load(ordering: .acquiring))!,
                                  data.assumingMemoryBound(to: UInt8.self), length)
    }

    @inline(__always)
    func checkedPrefix(_ key: UnsafeRawBufferPointer) throws(MapError) -> Int {
        try checkKey(key, definition.keySize)
        return Int(key.baseAddress!.loadUnaligned(as: UInt32.self))
    }

    /// User-mode lookup: copies the value of the longest matching prefix.
    /// Contract: ``RawMap/lookup(key:into:)``; ENOENT when nothing matches or `prefixLen`
    /// exceeds ``maxPrefixLength``.
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try access.checkUserRead()
        let length = try checkedPrefix(key)
        try checkValue(value, layout.valueSize)
        guard length <= maxPrefixLength else { throw MapError.keyNotFound }
        let found: Bool = Epoch.withSection { _ in
            guard let entry = longestMatch(key.baseAddress! + 4, length: length) else { return false }
            value.baseAddress!.copyMemory(from: layout.value(entry), byteCount: layout.valueSize)
            return true
        }
        if !found { throw MapError.keyNotFound }
    }

    /// Lookup with flags: any flag EINVAL (`BPF_F_LOCK` too: no lock word).
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                       flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: true)
        try access.checkUserRead()
        if flags.contains(.lock) { throw noLockWordError }
        try lookup(key: key, into: value)
    }

    /// Helper-mode lookup: the longest match's value in place, borrowed until `section` ends.
    public func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        try access.checkProgramRead()
        let length = try checkedPrefix(key)
        guard length <= maxPrefixLength, let entry = longestMatch(key.baseAddress! + 4, length: length) else {
            throw MapError.keyNotFound
        }
        return UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(mutating: layout.value(entry)), count: layout.valueSize)
    }

    /// The longest-match lookup the typed map calls with its key bytes already laid out:
    /// copies the value into `value` (``definition``'s value size) and returns true, or
    /// false when nothing matches. No size checks: the caller guarantees them.
    package func lookupUnchecked(data: UnsafeRawPointer, prefixLength: Int, into value: UnsafeMutableRawPointer) throws(MapError) -> Bool {
        try access.checkUserRead()
        guard prefixLength <= maxPrefixLength else { return false }
        return Epoch.withSection { _ in
            guard let entry = longestMatch(data, length: prefixLength) else { return false }
            if layout.valueSize == 8 {
                // The common 8-byte value: one load and one store, no memcpy call.
                value.storeBytes(of: layout.value(entry).load(as: UInt64.self), as: UInt64.self)
            } else {
                value.copyMemory(from: layout.value(entry), byteCount: layout.valueSize)
            }
            return true
        }
    }

    // MARK: Update and delete (writer lock)

    /// User-mode update of the exact prefix `key`. Contract: ``RawMap/update(key:value:flags:)``
    /// with Linux's LPM errnos (see the type).
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        try access.checkUserWrite(freezeState)
        if flags.contains(.lock) { throw noLockWordError }
        try store(key: key, value: value, flags: flags, displaced: nil, checkingFreeze: true)
    }

    /// Update that reports the value it replaced. Not a Linux operation.
    public func exchange(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                         into displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        try access.checkUserWrite(freezeState)
        if flags.contains(.lock) { throw noLockWordError }
        try checkValue(displaced, layout.valueSize)
        return try store(key: key, value: value, flags: flags, displaced: displaced.baseAddress!, checkingFreeze: true)
    }

    /// Helper-mode update (EACCES with `BPF_F_RDONLY_PROG`; not stopped by a freeze).
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                       in section: borrowing EpochSection) throws(MapError) {
        try access.checkProgramWrite()
        if flags.contains(.lock) { throw noLockWordError }
        try store(key: key, value: value, flags: flags, displaced: nil, checkingFreeze: false)
    }

    /// Where a prefix lives: the stride that holds it and its index there.
    @inline(__always)
    func place(length: Int, data: UnsafeRawPointer) -> (depth: Int, index: Int) {
        let depth = length == 0 ? 0 : (length - 1) / 8
        return (depth, LPMWriterNode.ownIndex(relativeLength: length - 8 * depth, byte: data.load(fromByteOffset: depth, as: UInt8.self)))
    }

    /// The writer nodes from the root towards the stride at `depth`, as far as they exist.
    func pathNodes(to depth: Int, data: UnsafeRawPointer) -> [LPMWriterNode] {
        var nodes = [tree]
        while nodes.count <= depth, let next = nodes.last!.child(data.load(fromByteOffset: nodes.count - 1, as: UInt8.self)) {
            nodes.append(next)
        }
        return nodes
    }

    @discardableResult
    func store(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
               displaced: UnsafeMutableRawPointer?, checkingFreeze: Bool) throws(MapError) -> Bool {
        let length = try checkedPrefix(key)
        try checkValue(value, layout.valueSize)
        guard flags.rawValue <= MapUpdateFlags.exist.rawValue else {
            throw MapError.invalidArgument.with(reason: "invalid update flags \(flags.rawValue)")
        }
        guard length <= maxPrefixLength else {
            throw MapError.invalidArgument.with(reason: "prefixLen \(length) exceeds the trie's \(maxPrefixLength) bits")
        }
        let data = key.baseAddress! + 4
        guard let entry = EpochMemory.allocate(byteCount: layout.byteCount, tag: tag) else { throw MapError.noMemory }
        entry.storeBytes(of: UInt32(length), as: UInt32.self)
        (entry + 4).copyMemory(from: data, byteCount: dataSize)
        if layout.valueOffset > 4 + dataSize {
            (entry + 4 + dataSize).initializeMemory(as: UInt8.self, repeating: 0, count: layout.valueOffset - 4 - dataSize)
        }
        (entry + layout.valueOffset).copyMemory(from: value.baseAddress!, byteCount: layout.valueSize)
        // Registered before the lock: the write retires what it replaces under it, and a first
        // registration there would wait at the fork gate holding the lock (see
        // `BucketTable.lockChain`).
        rcumaps_ensure_registered()
        do throws(MapError) {
            return try writerLock.withLock { _ throws(MapError) -> Bool in
                if checkingFreeze, freezeState.isFrozen { throw frozenError }
                #if DEBUG
                afterFreezeCheck?()
                #endif
                let (depth, index) = place(length: length, data: data)
                var nodes = pathNodes(to: depth, data: data)
                let existing = nodes.count == depth + 1 ? nodes[depth].entry(index) : nil
                if existing != nil {
                    if flags == .noExist { throw MapError.alreadyExists }
                } else {
                    if flags == .exist { throw MapError.keyNotFound }
                    if entries.load(ordering: .relaxed) >= definition.maxEntries {
                        throw MapError.noSpace.with(reason: "the trie holds its maximum of \(definition.maxEntries) prefixes")
                    }
                }
                let existingCount = nodes.count
                while nodes.count <= depth {
                    let parent = nodes.last!
                    let byte = data.load(fromByteOffset: parent.depth, as: UInt8.self)
                    let node = LPMWriterNode(depth: parent.depth + 1, path: parent.path + [byte])
                    parent.setChild(byte, node)
                    nodes.append(node)
                }
                nodes[depth].setEntry(index, entry)
                do throws(MapError) {
                    try republish(nodes, removed: [], from: existingCount - 1)
                } catch {
                    // Undo: the tree as it was (nothing was published).
                    nodes[depth].setEntry(index, existing)
                    if existingCount <= depth {
                        nodes[existingCount - 1].setChild(data.load(fromByteOffset: existingCount - 1, as: UInt8.self), nil)
                    }
                    throw error
                }
                if let existing {
                    displaced?.copyMemory(from: layout.value(existing), byteCount: layout.valueSize)
                    EpochMemory.free(existing)
                    return true
                }
                entries.wrappingAdd(1, ordering: .relaxed)
                return false
            }
        } catch {
            EpochMemory.freeUnpublished(entry)
            throw error
        }
    }

    /// Publishes a change: rebuilds the blocks of `nodes[from...]` (the path's nodes whose
    /// prefixes or children changed, and everything below them on the path), then makes
    /// readers see them with **one** release store — into the slot of the nearest
    /// significant ancestor that did not change (its children, bitmaps and prefixes are the
    /// same; only where that slot leads changes), or into the root pointer when the root
    /// itself was rebuilt. Retires the blocks replaced and those of `removed` (nodes just
    /// taken out of the tree).
    ///
    /// Readers therefore see the whole change or none of it. Rebuilding only the changed
    /// part keeps an insert deep in the trie from copying the large root and second-level
    /// nodes.
    ///
    /// - Throws: ``MapError/noMemory`` with nothing published and nothing retired.
    func republish(_ nodes: [LPMWriterNode], removed: [LPMWriterNode], from: Int) throws(MapError) {
        let builder = LPMNodeBuilder(tag: tag)
        let rebuilt = nodes[from...]
        for node in rebuilt.reversed() where node.isSignificant {
            guard let block = builder.build(node) else {
                for node in rebuilt {
                    if let block = node.pending { EpochMemory.freeUnpublished(block) }
                    node.pending = nil
                }
                throw MapError.noMemory
            }
            node.pending = block
        }
        // Publication: every new block is fully written; the release store orders them
        // before any reader's acquiring load of the pointer it changes.
        var parent = from - 1
        while parent >= 0, !nodes[parent].isSignificant { parent -= 1 }
        if parent < 0 {
            root.store(UInt(bitPattern: tree.pending!), ordering: .releasing)
        } else {
            // The unchanged ancestor's slot on the path now leads to the rebuilt nodes.
            let block = nodes[parent].published!
            let slot = nodes[parent + 1].path[parent]
            guard let word = LPMNode.childSlot(block, depth: parent, slot: Int(slot)) else {
                _rcumapsPrecondition(false, "LPM trie: an unchanged node lost the child on the path")
                return
            }
            word.pointee.store(LPMNodeBuilder.childWord(nodes[parent + 1], depth: parent), ordering: .releasing)
        }
        for node in Array(rebuilt) + removed {
            if let old = node.published { EpochMemory.freeCacheAligned(old) }
            node.published = node.pending
            node.pending = nil
        }
    }

    /// User-mode delete of the exact prefix `key`. Contract: ``RawMap/delete(key:)``; EINVAL
    /// for a `prefixLen` beyond the data, ENOENT for a prefix not stored, EPERM on a frozen or
    /// `BPF_F_RDONLY` trie, ENOMEM when a node the delete rebuilds cannot be allocated
    /// (Linux's `trie_delete_elem` never allocates: see docs/linux-compatibility.md).
    public func delete(key: UnsafeRawBufferPointer) throws(MapError) {
        try access.checkUserWrite(freezeState)
        try remove(key: key, checkingFreeze: true)
    }

    /// User-mode delete of the exact prefix `key` that copies the value it removed into
    /// `value` (exactly `valueSize` bytes, EINVAL otherwise), as one step under the writer
    /// lock: of two threads removing one prefix, one gets its value, the other ENOENT. Not a
    /// Linux operation (Linux's trie has no lookup-and-delete: ``lookupAndDelete(key:into:)``
    /// is ENOTSUPP, as there); errors as ``delete(key:)``. A helper-mode write in place
    /// racing the removal may land after the copy, as on every map (its pointer's memory
    /// stays valid for its section).
    public func delete(key: UnsafeRawBufferPointer, copyingValueInto value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try access.checkUserWrite(freezeState)
        try checkValue(value, layout.valueSize)
        try remove(key: key, checkingFreeze: true, displaced: value.baseAddress!)
    }

    /// Delete with flags: any flag is EINVAL.
    public func delete(key: UnsafeRawBufferPointer, flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: false)
        try delete(key: key)
    }

    /// Helper-mode delete (EACCES with `BPF_F_RDONLY_PROG`).
    public func delete(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError) {
        try access.checkProgramWrite()
        try remove(key: key, checkingFreeze: false)
    }

    func remove(key: UnsafeRawBufferPointer, checkingFreeze: Bool, displaced: UnsafeMutableRawPointer? = nil) throws(MapError) {
        let length = try checkedPrefix(key)
        guard length <= maxPrefixLength else {
            throw MapError.invalidArgument.with(reason: "prefixLen \(length) exceeds the trie's \(maxPrefixLength) bits")
        }
        let data = key.baseAddress! + 4
        rcumaps_ensure_registered()  // (as in the update: it retires under the lock)
        try writerLock.withLock { _ throws(MapError) in
            if checkingFreeze, freezeState.isFrozen { throw frozenError }
            let (depth, index) = place(length: length, data: data)
            var nodes = pathNodes(to: depth, data: data)
            guard nodes.count == depth + 1, let existing = nodes[depth].entry(index) else { throw MapError.keyNotFound }
            nodes[depth].setEntry(index, nil)
            // Take out the strides left empty, from the bottom.
            var removed: [LPMWriterNode] = []
            while nodes.count > 1, nodes.last!.isEmpty {
                let node = nodes.removeLast()
                nodes.last!.setChild(node.path[node.depth - 1], nil)
                removed.append(node)
            }
            do throws(MapError) {
                try republish(nodes, removed: removed, from: nodes.count - 1)
            } catch {
                for node in removed.reversed() { nodes.append(node) }
                for position in 1..<nodes.count { nodes[position - 1].setChild(nodes[position].path[position - 1], nodes[position]) }
                nodes[depth].setEntry(index, existing)
                throw error
            }
            entries.wrappingSubtract(1, ordering: .relaxed)
            displaced?.copyMemory(from: layout.value(existing), byteCount: layout.valueSize)
            EpochMemory.free(existing)
        }
    }

    /// Lookup-and-delete: ENOTSUPP (524), as Linux, after its checks.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try lookupAndDelete(key: key, into: value, flags: [])
    }

    /// Lookup-and-delete with flags: flags beyond `BPF_F_LOCK` EINVAL, then EPERM, then
    /// `BPF_F_LOCK` EINVAL, then the key, then ENOTSUPP.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                                flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: true)
        try access.checkUserRead()
        try access.checkUserWrite(freezeState)
        if flags.contains(.lock) { throw noLockWordError }
        try checkKey(key, definition.keySize)
        throw MapError.unsupportedByMapType.with(reason: "lookup-and-delete is not supported on LPM tries")
    }

    // MARK: Iteration (writer lock)

    func writeKey(_ entry: UnsafeRawPointer, into nextKey: UnsafeMutableRawBufferPointer) {
        nextKey.baseAddress!.copyMemory(from: entry, byteCount: 4 + dataSize)
    }

    /// The checks of a get-next-key step (user read access, the output buffer's size) and
    /// the cursor's prefix length: nil to start at the first key (no cursor, or one whose
    /// `prefixLen` exceeds the data).
    private func nextKeyCursor(_ key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) -> Int? {
        try access.checkUserRead()
        try checkKey(UnsafeRawBufferPointer(nextKey), definition.keySize)
        guard let key else { return nil }
        let length = try checkedPrefix(key)
        return length <= maxPrefixLength ? length : nil
    }

    /// Get-next-key in Linux's postorder. A `key` that is not stored (host bits beyond its
    /// `prefixLen` do not count), or whose `prefixLen` exceeds the data, restarts at the first
    /// key. Contract: ``RawMap/nextKey(after:into:)``.
    public func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        let cursor = try nextKeyCursor(key, into: nextKey)
        try writerLock.withLock { _ throws(MapError) in
            var next: UnsafeMutableRawPointer?
            if let length = cursor, let key {
                let data = key.baseAddress! + 4
                let (depth, index) = place(length: length, data: data)
                let nodes = pathNodes(to: depth, data: data)
                if nodes.count == depth + 1, nodes[depth].entry(index) != nil {
                    next = tree.successor(length: length, data: data)
                    guard next != nil else { throw MapError.keyNotFound }
                }
            }
            guard let found = next ?? tree.first(after: -1) else { throw MapError.keyNotFound }
            writeKey(found, into: nextKey)
        }
    }

    /// The key after `key` in postorder, never restarting: a cursor no longer stored resumes
    /// after the place it would have; one whose `prefixLen` exceeds the data ends the pass
    /// (ENOENT). Contract: ``RawMap/nextKeyInPass(after:into:)``.
    public func nextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try nextInPass(after: key, into: nextKey, value: nil)
    }

    /// ``nextKeyInPass(after:into:)`` that also copies the stored prefix's value into
    /// `value` (``definition``'s value size), in the same step under the writer lock, so the
    /// pair is one the map held. For the typed map's iteration.
    package func nextEntryInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer,
                                 value: UnsafeMutableRawPointer) throws(MapError) {
        try nextInPass(after: key, into: nextKey, value: value)
    }

    /// The step of both: the key after `key` into `nextKey`, and its value into `value` if given.
    private func nextInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer,
                            value: UnsafeMutableRawPointer?) throws(MapError) {
        let cursor = try nextKeyCursor(key, into: nextKey)
        // A cursor whose `prefixLen` exceeds the data never came from the map: the pass ends
        // there (ENOENT) rather than restarting, which this entry point never does (it
        // restarted at the first key, as `nextKey` does: found by review).
        if key != nil, cursor == nil { throw MapError.keyNotFound }
        try writerLock.withLock { _ throws(MapError) in
            let found: UnsafeMutableRawPointer?
            if let length = cursor, let key {
                found = tree.successor(length: length, data: key.baseAddress! + 4)
            } else {
                found = tree.first(after: -1)
            }
            guard let found else { throw MapError.keyNotFound }
            writeKey(found, into: nextKey)
            value?.copyMemory(from: layout.value(found), byteCount: layout.valueSize)
        }
    }

    // MARK: Introspection (tests)

    /// The published nodes by kind: direct-indexed and compressed. Takes the writer lock.
    package var publishedNodeKinds: (direct: Int, compressed: Int) {
        writerLock.withLock { _ in
            var kinds = (direct: 0, compressed: 0)
            tree.forEachNode { node in
                guard let block = node.published else { return }
                if LPMNode.isDirect(block) { kinds.direct += 1 } else { kinds.compressed += 1 }
            }
            return kinds
        }
    }

    // MARK: Freezing

    /// Whether the map is frozen. Any thread.
    public var isFrozen: Bool { freezeState.isFrozen }

    /// Freezes the map: user-mode writes fail with EPERM afterwards. Contract: ``RawMap/freeze()``.
    @available(*, noasync, message: "waits for a grace period: call it from a thread of your own, or use `await map.freezeAsync()`")
    public func freeze() throws(MapError) {
        // User-mode writes check the flag under the writer lock, outside any section, so the
        // grace period `freeze(access:lockWord:)` waits for does not wait for them: taking
        // the lock once waits for a write that saw the map unfrozen (a write after it sees
        // the flag). Then no user-mode write finishes after `freeze()` returns, nor after a
        // second freeze answers "frozen already".
        try freezeState.freeze(access: access, lockWord: false) { writerLock.withLock { _ in } }
    }

    // MARK: Batches (Linux's generic ones; no lookup-and-delete batch)

    /// `BPF_MAP_LOOKUP_BATCH`: Linux's generic batch (the cursor is the last key returned),
    /// in postorder. A cursor of the key size whose `prefixLen` exceeds the data starts at
    /// the first key, as Linux's, which hands the cursor to `trie_get_next_key` (its
    /// `find_leftmost`); the in-pass step the batch walks with would end the pass there,
    /// answering ENOENT for a trie with entries (found by review, 2026-12-05).
    public func lookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                            values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        let start = cursor.flatMap { cursor in
            cursor.withBytes { bytes in
                bytes.count == definition.keySize && Int(bytes.loadUnaligned(as: UInt32.self)) > maxPrefixLength
            } ? nil : cursor
        }
        return try genericLookupBatch(from: start, keys: keys, values: values, count: count, elementFlags: elementFlags,
                                      removing: false)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`: ENOTSUPP (after the access checks), as Linux.
    public func lookupAndDeleteBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                                     values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                                     flags: UInt64) throws(MapError) -> MapBatchResult {
        try unsupportedBatch(read: true, write: true, "lookup-and-delete")
    }

    /// `BPF_MAP_UPDATE_BATCH`: each element a user-mode update; stops at the first failure.
    public func updateBatch(keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, count: Int,
                            elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult {
        try genericUpdateBatch(keys: keys, values: values, count: count, elementFlags: elementFlags)
    }

    /// `BPF_MAP_DELETE_BATCH`: each key an exact-prefix delete; stops at the first failure.
    public func deleteBatch(keys: UnsafeRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try genericDeleteBatch(keys: keys, count: count, elementFlags: elementFlags)
    }
}

extension MapDefinition {
    /// The flags an `LPM_TRIE` accepts (Linux `LPM_CREATE_FLAG_MASK`); `BPF_F_NO_PREALLOC`
    /// is also required.
    public static let lpmTrieFlags: MapCreationFlags = [.noPrealloc, .numaNode, .accessFlags]

    /// Checks an `LPM_TRIE` definition as Linux 6.18's `trie_alloc` and `map_create` do:
    /// `maxEntries` 0 (or beyond `UInt32.max`), no `BPF_F_NO_PREALLOC`, a flag outside
    /// ``lpmTrieFlags``, both program access flags, `keySize` outside 5...260 or `valueSize`
    /// outside 1...`RawLPMTrieMap.maxValueSize` → EINVAL. After the allocation
    /// (`validateAfterAllocation()`): the name (EINVAL), then a lock word (EACCES with a
    /// program access flag, else EOPNOTSUPP: Linux allows `bpf_spin_lock` only in hash,
    /// array and storage maps).
    func validateLPMTrie() throws(MapError) {
        try validateCommon()
        guard maxEntries > 0, maxEntries <= Int(UInt32.max), flags.contains(.noPrealloc),
              Self.lpmTrieFlags.isSuperset(of: flags), !flags.isSuperset(of: [.readOnlyProgram, .writeOnlyProgram]),
              (5...(4 + RawLPMTrieMap.maxDataSize)).contains(keySize),
              (1...RawLPMTrieMap.maxValueSize).contains(valueSize) else {
            throw MapError.invalidArgument.with(reason: """
                an LPM trie needs BPF_F_NO_PREALLOC, flags among \(Self.lpmTrieFlags) without both program access \
                flags, keySize 5...260 (4 + 1...256 data bytes), valueSize 1...\(RawLPMTrieMap.maxValueSize) and \
                1...\(UInt32.max) entries (got keySize \(keySize), valueSize \(valueSize), maxEntries \(maxEntries), \
                flags \(flags))
                """)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
