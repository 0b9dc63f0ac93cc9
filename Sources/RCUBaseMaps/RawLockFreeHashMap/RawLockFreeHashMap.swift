import CRCUMapsShim
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A `HASH` map on liburcu's lock-free, auto-resizing hash table (`rculfhash`).
///
/// Each entry is one headerless epoch block (see ``/RCUEpoch/EpochRetireList``): the `cds_lfht_node`,
/// the key (padded to 8 bytes) and the value. Two ways to update an existing key:
///
/// - *Publish and retire* (keys or values over 8 bytes, values with a lock word, and provider
///   base maps): an entry's key and value never change once published (except through
///   helper-mode pointers, and a `BPF_F_LOCK` update, which writes the value in place under
///   its lock word); an update publishes a new entry and retires the old one after a grace
///   period, so a helper-mode pointer's later writes go to the retired entry.
/// - *In place* (keys and values of at most 8 bytes, no lock word, no provider): the value is one atomic
///   word, paired with a state word in front of the node (live, or sealed by the thread that
///   unlinked the entry). An update is a lookup and a 16-byte compare-and-swap of the pair
///   that succeeds only while the entry is live; a delete seals the pair after unlinking, and
///   `lookupAndDelete` returns the value it sealed. So an update that reports success is
///   either in the map or in the value a `lookupAndDelete` returned, never lost; with the
///   pair, an 8-byte-key entry is 40 bytes, the same 48-byte allocator chunk as without it.
///
/// - Lookups: wait-free for readers (`cds_lfht_lookup` in an epoch).
/// - `.noExist` is a lookup then `cds_lfht_add_unique`; `.any` and `.exist` store in place
///   or `cds_lfht_replace` a present key, and `.any` adds an absent one with
///   `cds_lfht_add_unique`: exact semantics with no lock.
/// - Capacity: an atomic count reserves a slot before a new key is published, so the map
///   never holds more than `maxEntries` keys; a full map still replaces existing keys.
/// - Batch lookups, in place: every entry also holds an *entry slot* (`EntrySlots`: one
///   word per slot, 8 bytes per entry at the map's peak count, in chunks of up to 4,096),
///   taken with its capacity unit and given back when it is unlinked. Lookup and
///   lookup-and-delete batches sweep the slots (cursor: the next slot), their loads
///   independent of each other, instead of following rculfhash's list. Other maps' batches
///   walk the list (cursor: the next key, marked as a place to resume at; the last key at
///   the end of the pass). Either way a key present for the whole pass is
///   returned exactly once, and no key twice unless it was deleted and inserted again —
///   except among keys of one 64-bit hash (`RawMap.nextKeyInPass(after:into:)`): rculfhash
///   keeps them newest first, so one of them deleted and inserted again between two calls
///   can bring another of them, present throughout, back a second time.
///
/// Concurrency: any number of readers and writers on any threads. A signal handler (on a
/// thread that entered a section before the signal) may look up (not with `BPF_F_LOCK`)
/// but must not write: a handler that interrupted a write of its
/// own thread would wait for ever for the retire-list stripe lock, or in a full map the
/// change in flight, that write holds (docs/map-types.md, HASH).
public final class RawLockFreeHashMap: ObservableBaseMap, FlaggedWrites, RemovalIfPresent, @unchecked Sendable {
    // @unchecked Sendable: `table` is only touched through liburcu's thread-safe API in
    // epochs; every other stored property is immutable or atomic.

    /// The definition the map was created with. Immutable; any thread.
    public let definition: MapDefinition
    @usableFromInline let table: OpaquePointer
    @usableFromInline let keySize: Int
    @usableFromInline let valueSize: Int
    /// Whether updates of existing keys replace the value in place (see the type's doc).
    @usableFromInline let valuesInPlace: Bool
    /// Where the value is, from the entry (node) address: after the padded key, or, in
    /// place, 16 bytes in front of the node.
    @usableFromInline let valueDelta: Int
    /// Bytes of the block in front of the node: 0, or 16 for the in-place (value, state) pair.
    let nodeOffset: Int
    /// Bytes of an entry's block: [value, state pair (16)] + node (16) + padded key [+ value].
    let entrySize: Int
    let maxEntries: Int
    let tag: PoolTag
    @usableFromInline let hasher: KeyHasher
    let capacity: CapacityGate
    /// The provider layer's hooks, if this map is the base of a custom map.
    let observer: (any MapEntryObserver)?
    /// `observer` if it wants to hear of removals in advance (``MapEntryObserver/wantsAdvanceNotice``),
    /// else nil: a write does not make a call that does nothing.
    let advanceObserver: (any MapEntryObserver)?
    /// Allocates entries (headerless epoch blocks of `entrySize` bytes) and holds removed
    /// and replaced ones until their grace period: an entry of 8-byte keys and values is
    /// 40 bytes with its in-place pair, one 48-byte glibc chunk (16-byte keys and 8-byte
    /// values: 40 bytes, also 48; 64-byte values: 88 bytes, one 96-byte chunk).
    let retired: EpochRetireList
    /// What user and helper mode may do (the access flags).
    public let access: MapAccess
    #if DEBUG
    /// Tests only (debug builds: release inserts do not look for it): runs in an in-place
    /// insert right after its entry is linked into the table and before it is marked
    /// published (set before the map is shared).
    var afterLinkingNewEntry: (@Sendable () -> Void)?
    /// Tests only: runs in a write that found no reason to refuse, just before it allocates
    /// its entry (set before the map is shared).
    var beforeAllocatingForWrite: (@Sendable () -> Void)?
    /// Tests only: runs in a replace once the displaced value is copied out for the caller
    /// (`exchange`), before the observer hears of it (set before the map is shared).
    package var afterCopyingTheDisplacedValue: (@Sendable () -> Void)?
    /// Tests only: runs in `remove(key:inspecting:removed:)` once the removed value is copied
    /// out for the caller, before the observer hears of it (set before the map is shared).
    package var afterCopyingTheRemovedValue: (@Sendable () -> Void)?
    /// Tests only: how many times a pass looked for a place in split order by walking the
    /// list from its head (`firstEntry(afterOrder:)`).
    let walksFromTheHead = Atomic<Int>(0)
    #endif
    /// Frozen or not.
    let freezeState = MapFreezeState()
    /// The value's lock word, if the definition names one.
    @usableFromInline let lockWord: LockWordCopy
    /// Stable positions of the entries, which batch lookups sweep (in-place maps only: their
    /// entries never move; see `EntrySlots`).
    let slots: EntrySlots?
    /// ``slots``, unretained, for the write paths: the map holds `slots` for its whole life,
    /// so a call through this reference needs no retain and release around it — which Swift
    /// otherwise makes around each call on the optional stored reference, a write to the
    /// slots object's header that every writing thread shares.
    let unretainedSlots: Unmanaged<EntrySlots>?

    @usableFromInline static let nodeSize = MemoryLayout<cds_lfht_node>.size
    /// The in-place (value, state) pair: two words, 16-byte aligned (malloc's alignment).
    static let pairSize = 16
    /// State word of an in-place entry: bit 0 sealed (by the thread that unlinked it), bit 1
    /// published (its `cds_lfht_add_unique` succeeded: batches return only such entries),
    /// bit 2 slotted (it was put in a slot: unpublished, it is retired, not freed, since a
    /// batch may have read its address), then its slot (`EntrySlots`). Live: not sealed.
    static let live: UInt = 0
    static let sealed: UInt = 1
    static let published: UInt = 2
    static let slotted: UInt = 4
    static let slotShift = 3

    /// Creates an empty map.
    ///
    /// - Throws: ``MapError/invalidArgument`` or ``MapError/outOfSpace`` for a bad
    ///   definition (see ``MapDefinition``); ``MapError/noMemory`` if the table cannot be made
    ///   (liburcu aborts instead in a few cases: see `rcumaps_lfht_new`);
    ///   ``MapError/wouldDeadlock`` when called inside an epoch section or from a reclamation
    ///   callback while another thread is forking (waiting for the fork there could deadlock;
    ///   elsewhere the creation waits for the fork to end).
    public convenience init(_ definition: MapDefinition) throws(MapError) {
        try self.init(definition, observer: nil)
    }

    /// Creates an empty map whose removals are reported to `observer` (provider layer).
    package init(_ definition: MapDefinition, observer: (any MapEntryObserver)?) throws(MapError) {
        guard definition.type == .hash else {
            throw MapError.invalidArgument.with(reason: "RawLockFreeHashMap serves BPF_MAP_TYPE_HASH, not \(definition.type)")
        }
        try definition.validateHash()
        self.definition = definition
        keySize = definition.keySize
        valueSize = definition.valueSize
        // (A value with a lock word is replaced whole, or written in place under the lock.)
        valuesInPlace = definition.keySize <= 8 && definition.valueSize <= 8 && observer == nil
            && definition.lockOffset == nil
        access = MapAccess(definition.flags)
        lockWord = LockWordCopy(definition)
        if valuesInPlace {
            nodeOffset = Self.pairSize
            valueDelta = -Self.pairSize
            entrySize = Self.pairSize + Self.nodeSize + 8
        } else {
            nodeOffset = 0
            valueDelta = Self.nodeSize + roundUp8(definition.keySize)
            entrySize = Self.nodeSize + roundUp8(definition.keySize) + roundUp8(definition.valueSize)
        }
        maxEntries = definition.maxEntries
        capacity = CapacityGate(maxEntries: definition.maxEntries)
        tag = definition.effectivePoolTag
        // Entries whose grace period is over are kept for the next inserts, as many as the
        // map holds (at least 256, at most 65,536: 3 MiB for 8-byte keys and values): a
        // grace period ends for all the entries retired during it at once, and the inserts
        // that follow take them.
        retired = EpochRetireList(blockSize: entrySize, tag: tag,
                                  recycling: Swift.min(1 << 16, Swift.max(256, definition.maxEntries)))
        if valuesInPlace {
            // Slots in use never exceed the capacity units held (slots go back before their
            // unit: see EntrySlots); the 64 spare slots are only a margin.
            guard let slots = EntrySlots(capacity: definition.maxEntries + 64) else {
                throw MapError.noMemory.with(reason: "no memory for the entry slots")
            }
            self.slots = slots
            unretainedSlots = Unmanaged.passUnretained(slots)
        } else {
            slots = nil
            unretainedSlots = nil
        }
        // BPF_F_ZERO_SEED: a fixed seed, so the iteration order repeats (for tests).
        hasher = definition.flags.contains(.zeroSeed) ? KeyHasher(seed: 0) : KeyHasher()
        self.observer = observer
        advanceObserver = observer?.wantsAdvanceNotice == true ? observer : nil
        // Buckets for maxEntries at load ≤ 1 from the start, up to 2^16 (1 MiB of bucket
        // nodes); beyond that auto-resize grows the table as entries arrive. Short chains
        // are what makes rculfhash lookups fast: its auto-resize only reacts to long chains.
        let maxBuckets = UInt(max(1, maxEntries)).nextPowerOfTwoClamped
        let initial = min(maxBuckets, 1 << 16)
        guard let table = rcumaps_lfht_new(initial, maxBuckets) else {
            if errno == EDEADLK {
                throw MapError.wouldDeadlock.with(
                    reason: "a fork is starting: a lock-free HASH cannot be created inside an epoch section or a "
                        + "reclamation callback until it ends")
            }
            throw MapError.noMemory.with(reason: "cds_lfht_new failed")
        }
        self.table = table
        // The fork count, made now (its participant counts only forks after it exists), so
        // that the deinit of a map that lived through a fork knows it runs in a child.
        _ = Epoch.forkIncarnations
        try definition.validateAfterAllocation()  // as Linux, after the allocation (deinit frees it)
    }

    deinit {
        // Unlink and retire every entry, then destroy the (now empty) table.
        Epoch._libraryEnter()
        var entry = rcumaps_lfht_first(table)
        while let current = entry {
            entry = rcumaps_lfht_next(table, current)
            if rcumaps_lfht_del(table, current) == 0 {
                if let observer {
                    let key = UnsafeRawBufferPointer(start: keyPointer(current), count: keySize)
                    let value = UnsafeRawBufferPointer(start: valuePointer(current), count: valueSize)
                    _ = observer.entryWillBeRemoved(key: key, value: value, flags: .mapCleanup)
                    observer.entryWasRemoved(key: key, value: value, flags: .mapCleanup)
                }
                retire(current)
            }
        }
        Epoch._libraryExit()
        retired.flush()
        let table = UInt(bitPattern: self.table)
        runWhereGracePeriodsMayBeAwaited {
            let result = rcumaps_lfht_destroy(OpaquePointer(bitPattern: table))
            // In the child of a fork, an entry another thread of the parent was deleting
            // stays linked and unreachable, and the table cannot be emptied: it is left
            // allocated (docs/architecture.md, process life). Anywhere else, a bug.
            assert(result == 0 || Epoch.forkIncarnations > 0, "cds_lfht_destroy failed (\(result)): entries were left")
        }
    }

    /// Entries in the map: a snapshot under concurrent updates (arrays: `maxEntries`). Any thread.
    public var count: Int { capacity.entries }

    /// Units the capacity gate has handed out (entries, those being inserted, parked
    /// credits), not clamped to `maxEntries` as `count` is: the bound the gate keeps. For
    /// tests and the stress checker.
    package var capacityUnitsInUse: Int { capacity.count.load(ordering: .relaxed) }

    // MARK: Entry layout

    @inlinable @inline(__always)
    func keyPointer(_ entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(entry) + Self.nodeSize
    }

    @inlinable @inline(__always)
    func valuePointer(_ entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(entry) + valueDelta
    }

    /// Copies the value of `entry` out: one atomic load when values change in place.
    @inlinable @inline(__always)
    func copyValue(of entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>, into destination: UnsafeMutableRawPointer) {
        if valuesInPlace {
            // Acquiring: an in-place update (a compare-and-swap) publishes what the value refers to.
            var bits = valuePointer(entry).assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .acquiring)
            withUnsafeBytes(of: &bits) { destination.copyMemory(from: $0.baseAddress!, byteCount: valueSize) }
        } else {
            destination.copyMemory(from: valuePointer(entry), byteCount: valueSize)
        }
    }

    // MARK: In-place values (keys and values of at most 8 bytes, no provider)

    /// The (value, state) pair of an in-place entry. Invariant: 16-byte aligned (the block
    /// starts with it and malloc aligns to 16), initialised in `makeEntry` before the entry
    /// is published; after that only touched atomically — the pair by compare-and-swap, the
    /// value word alone by readers' atomic loads.
    func pair(_ entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) -> UnsafeMutablePointer<Atomic<WordPair>> {
        (UnsafeMutableRawPointer(entry) - Self.pairSize).assumingMemoryBound(to: Atomic<WordPair>.self)
    }

    /// The current pair, read as two atomic words (a guess for a compare-and-swap).
    func currentPair(_ entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) -> WordPair {
        let words = (UnsafeMutableRawPointer(entry) - Self.pairSize).assumingMemoryBound(to: Atomic<UInt>.self)
        return WordPair(first: words[0].load(ordering: .relaxed), second: words[1].load(ordering: .relaxed))
    }

    /// Stores `bits` as the value of a live in-place entry and returns the bits it replaced;
    /// nil if the entry is sealed (unlinked: the key must be looked up again). Caller holds
    /// an epoch.
    func storeInPlace(_ bits: UInt, in entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) -> UInt? {
        var expected = currentPair(entry)
        while expected.second & Self.sealed == 0 {
            let (exchanged, original) = pair(entry).pointee.compareExchange(
                expected: expected, desired: WordPair(first: bits, second: expected.second),
                ordering: .acquiringAndReleasing)
            if exchanged { return expected.first }
            expected = original
        }
        return nil
    }

    /// Sets `bits` in the state word of an in-place entry unless it is sealed; returns
    /// whether it did. Caller holds an epoch.
    @discardableResult
    func markState(_ bits: UInt, of entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) -> Bool {
        var expected = currentPair(entry)
        while expected.second & Self.sealed == 0 {
            let (exchanged, original) = pair(entry).pointee.compareExchange(
                expected: expected, desired: WordPair(first: expected.first, second: expected.second | bits),
                ordering: .acquiringAndReleasing)
            if exchanged { return true }
            expected = original
        }
        return false
    }

    /// The state word of an in-place entry (see ``sealed``).
    @inline(__always)
    func state(_ entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) -> UnsafeMutablePointer<Atomic<UInt>> {
        (UnsafeMutableRawPointer(entry) - Self.pairSize).assumingMemoryBound(to: Atomic<UInt>.self) + 1
    }

    /// Seals an in-place entry its caller has just unlinked, and returns its final value:
    /// no update can land after this. Caller holds an epoch.
    @discardableResult
    func seal(_ entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) -> UInt {
        var expected = currentPair(entry)
        while true {
            _rcumapsPrecondition(expected.second & Self.sealed == 0, "an in-place entry sealed twice")
            let (exchanged, original) = pair(entry).pointee.compareExchange(
                expected: expected, desired: WordPair(first: expected.first, second: expected.second | Self.sealed),
                ordering: .acquiringAndReleasing)
            if exchanged { return expected.first }
            expected = original
        }
    }

    /// Seals an in-place entry this thread has just unlinked and gives its slot back (before
    /// the caller returns the capacity unit); returns its final value. Every published
    /// in-place entry has a slot, filled before its publication. Caller holds an epoch.
    @discardableResult
    func sealUnlinked(_ entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) -> UInt {
        let value = seal(entry)
        if let slots = unretainedSlots {
            let slot = Int(state(entry).pointee.load(ordering: .relaxed) >> Self.slotShift)
            slots._withUnsafeGuaranteedRef { $0.release(slot) }
        }
        return value
    }

    /// `value` (at most 8 bytes) as the bits of a value word.
    @inline(__always)
    func valueBits(_ value: UnsafeRawBufferPointer) -> UInt {
        // 8 bytes (the common case) as one load instead of a call to memcpy.
        if valueSize == 8 { return value.baseAddress!.loadUnaligned(as: UInt.self) }
        var bits: UInt = 0
        withUnsafeMutableBytes(of: &bits) { $0.baseAddress!.copyMemory(from: value.baseAddress!, byteCount: valueSize) }
        return bits
    }

    @inlinable @inline(__always)
    func hash(_ key: UnsafeRawBufferPointer) -> UInt {
        UInt(truncatingIfNeeded: hasher.hash(key.baseAddress!, count: keySize))
    }

    /// Builds an unpublished entry holding `key` and `value`.
    func makeEntry(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(MapError)
        -> UnsafeMutablePointer<rcumaps_lfht_entry_t>
    {
        guard let block = retired.allocate() else { throw MapError.noMemory }
        let entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>
        if valuesInPlace {
            // Pair, node, one key word (the pair is set below): the node and the key word
            // zeroed, so that a key under 8 bytes is padded with zeros, then the key. Three
            // stores and one load for an 8-byte key where a memset and a memcpy were calls.
            let node = block + Self.pairSize
            node.initializeMemory(as: UInt.self, repeating: 0, count: Self.nodeSize / 8 + 1)
            entry = node.bindMemory(to: rcumaps_lfht_entry_t.self, capacity: 1)
            if keySize == 8 {
                keyPointer(entry).storeBytes(of: key.baseAddress!.loadUnaligned(as: UInt.self), as: UInt.self)
            } else {
                keyPointer(entry).copyMemory(from: key.baseAddress!, byteCount: keySize)
            }
        } else {
            block.initializeMemory(as: UInt8.self, repeating: 0, count: entrySize)
            entry = (block + nodeOffset).bindMemory(to: rcumaps_lfht_entry_t.self, capacity: 1)
            keyPointer(entry).copyMemory(from: key.baseAddress!, byteCount: keySize)
        }
        if valuesInPlace {
            // The pair is updated with a 16-byte compare-and-swap, which faults on an address
            // that is not 16-byte aligned. malloc's blocks are (glibc, musl, jemalloc,
            // mimalloc, the sanitizers' allocators); an interposed allocator that aligns to 8
            // would otherwise crash later, on the first update of the entry.
            _rcumapsPrecondition(Int(bitPattern: block) & 15 == 0,
                                 "RawLockFreeHashMap: the allocator returned an entry that is not 16-byte aligned")
            block.initializeMemory(as: Atomic<WordPair>.self,
                                   to: Atomic(WordPair(first: valueBits(value), second: Self.live)))
        } else {
            valuePointer(entry).copyMemory(from: value.baseAddress!, byteCount: valueSize)
            // A new element's lock word starts free, whatever the caller's bytes held there.
            if lockWord.exists {
                valuePointer(entry).storeBytes(of: 0 as UInt32, toByteOffset: lockWord.offset, as: UInt32.self)
            }
        }
        rcumaps_tsan_publish(UnsafeMutableRawPointer(entry))
        return entry
    }

    /// Frees an entry that was never published (or failed to be); one that was in a slot
    /// goes through a grace period, as a batch may have read its address there.
    @inline(__always)
    func discard(_ entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) {
        if slots != nil, state(entry).pointee.load(ordering: .relaxed) & Self.slotted != 0 {
            retire(entry)
            return
        }
        retired.freeUnpublished(UnsafeMutableRawPointer(entry) - nodeOffset)
    }

    @inline(__always)
    func retire(_ entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) {
        retired.retire(UnsafeMutableRawPointer(entry) - nodeOffset)
    }

    /// Finds the entry for `key`. Caller holds an epoch.
    @inlinable @inline(__always)
    func find(_ key: UnsafeRawBufferPointer, hash: UInt) -> UnsafeMutablePointer<rcumaps_lfht_entry_t>? {
        rcumaps_lfht_lookup(table, hash, key.baseAddress, keySize)
    }

    // MARK: Lookup

    /// User-mode lookup. Contract: ``RawMap/lookup(key:into:)``. Inlinable.
    @inlinable @inline(__always)
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        if try !lookupIfPresent(key: key, into: value) { throw MapError.keyNotFound }
    }

    /// ``lookup(key:into:)`` that answers an absent key with `false` instead of ENOENT (no
    /// error to build on a miss). Inlinable.
    @inlinable @inline(__always)
    public func lookupIfPresent(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        try access.checkUserRead()
        try checkKey(key, keySize)
        try checkValue(value, valueSize)
        let hash = self.hash(key)
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        guard let entry = find(key, hash: hash) else { return false }
        copyValue(of: entry, into: value.baseAddress!)
        lockWord.clear(in: value.baseAddress!)
        return true
    }

    /// User-mode lookup with flags. Contract: ``RawMap/lookup(key:into:flags:)``.
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                       flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: true)
        guard flags.contains(.lock) else { return try lookup(key: key, into: value) }
        try access.checkUserRead()
        if !lockWord.exists { throw noLockWordError }
        try checkKey(key, keySize)
        try checkValue(value, valueSize)
        let hash = self.hash(key)
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        guard let entry = find(key, hash: hash) else { throw MapError.keyNotFound }
        lockWord.copyLocked(valuePointer(entry), to: value.baseAddress!)
    }

    /// Helper-mode lookup, borrowed until `section` ends. Contract: ``RawMap/lookupInPlace(key:in:)``.
    /// Inlinable.
    @inlinable @inline(__always)
    public func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        guard let stored = try lookupInPlaceIfPresent(key: key, in: section) else { throw MapError.keyNotFound }
        return stored
    }

    /// ``lookupInPlace(key:in:)`` that answers an absent key with `nil` instead of ENOENT (no
    /// error to build on a miss). Same contract otherwise; inlinable.
    @inlinable @inline(__always)
    public func lookupInPlaceIfPresent(key: UnsafeRawBufferPointer, in section: borrowing EpochSection)
        throws(MapError) -> UnsafeMutableRawBufferPointer?
    {
        try access.checkProgramRead()
        try checkKey(key, keySize)
        guard let entry = find(key, hash: hash(key)) else { return nil }
        return UnsafeMutableRawBufferPointer(start: valuePointer(entry), count: valueSize)
    }

    // MARK: Update

    @usableFromInline
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags rawFlags: MapUpdateFlags,
                operation: MapOperationFlags, displaced: UnsafeMutableRawPointer?) throws(MapError) -> Bool {
        try write(key: key, value: value, flags: rawFlags, operation: operation, displaced: displaced)
            .replacedOrThrow(rawFlags)
    }

    /// Waits if reclamation has fallen far behind (``ObservableBaseMap/throttleWriterIfBehind()``).
    package func throttleWriterIfBehind() { retired.throttleIfBehind() }

    /// `.noExist` update that answers a present key with `false`. Contract:
    /// ``RawMap/insertIfAbsent(key:value:)``.
    public func insertIfAbsent(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(MapError) -> Bool {
        try write(key: key, value: value, flags: .noExist, operation: [], displaced: nil) != .refused
    }

    /// The update; a refusal (`.noExist` on a present key, `.exist` on an absent one) is
    /// returned, not thrown.
    @inline(__always)
    func write(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags rawFlags: MapUpdateFlags,
               operation: MapOperationFlags, displaced: UnsafeMutableRawPointer?) throws(MapError) -> WriteResult {
        // Linux's order: access (EPERM / EACCES), BPF_F_LOCK without a lock word, the copies
        // of key and value, then the type's flag check.
        let helper = operation.contains(.helper)
        if helper { try access.checkProgramWrite() } else { try access.checkUserWrite(freezeState) }
        let locked = rawFlags.contains(.lock)
        if locked, !lockWord.exists { throw noLockWordError }
        try checkKey(key, keySize)
        try checkValue(value, valueSize)
        try checkFlags(rawFlags)
        let flags = rawFlags.withoutLock
        let hash = self.hash(key)
        defer { retired.throttleIfBehind() }  // after the section below has ended
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        // A user-mode write checks the freeze inside its section (see MapFreezeState).
        if !helper { try access.checkUserWrite(freezeState) }
        if locked, flags != .noExist {
            while true {
                if let entry = find(key, hash: hash) {
                    // BPF_F_LOCK on an existing element: written in place under its lock word,
                    // as Linux does (readers without the lock may see it half written) — if
                    // it is still in the map. One replaced or removed meanwhile is looked up
                    // again: its value went to the replace or removal (which copy it under
                    // this lock, after their unlink); written into, it was reported twice and
                    // this write lost (found by review, 2026-12-05).
                    let stored = valuePointer(entry)
                    let written = MapValueLock.withLock(UnsafeMutableRawBufferPointer(start: stored, count: valueSize),
                                                        offset: lockWord.offset) { () -> Bool in
                        guard rcumaps_lfht_is_removed(entry) == 0 else { return false }
                        displaced?.copyMemory(from: stored, byteCount: valueSize)
                        lockWord.copy(value.baseAddress!, over: stored)
                        return true
                    }
                    guard written else { continue }
                    if let displaced { lockWord.clear(in: displaced) }
                    return .replaced
                }
                if flags == .exist { return .refused }
                // An absent key: a new element — unless the key turned up meanwhile, which is
                // then written in place under its lock, as Linux looks again under the bucket
                // lock. (Through the general `.any` path below, a key inserted between the two
                // looks was replaced by a new element, and a holder of the old one's lock lost
                // its writes: found by review.)
                guard let entry = try entryForAbsentKey(key, hash: hash, value: value, flags: flags) else { continue }
                let publication = publishNew(key, hash: hash, entry: entry)
                switch publication {
                case .published:
                    return .added
                case .exists:
                    discard(entry)
                case .full, .noMemory:
                    try abandon(entry, after: publication)
                }
            }
        }
        // `.noExist` on a present key is refused before anything is allocated. Looking
        // first also means an update of an existing key never holds a capacity slot.
        if flags == .noExist, find(key, hash: hash) != nil { return .refused }
        if valuesInPlace, flags != .noExist {
            return try updateInPlace(key, hash: hash, value: value, flags: flags, displaced: displaced)
        }
        #if DEBUG
        beforeAllocatingForWrite?()
        #endif
        let entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>
        do throws(MapError) {
            entry = try makeEntry(forWrite: key, hash: hash, value: value, flags: flags)
        } catch where error == .alreadyExists {
            return .refused  // `.noExist`: the key turned up meanwhile (see `refusalWithoutMemory`)
        }
        let replaced: Bool
        switch flags {
        case .noExist:
            guard try insertNew(key, hash: hash, entry: entry) else { return .refused }
            replaced = false
        case .exist:
            guard replaceExisting(key, hash: hash, with: entry, operation: operation, displaced: displaced) else {
                return .refused
            }
            replaced = true
        default:
            replaced = try insertOrReplace(key, hash: hash, entry: entry, operation: operation, displaced: displaced)
        }
        if replaced, let displaced { lockWord.clear(in: displaced) }
        return replaced ? .replaced : .added
    }

    /// ``makeEntry(key:value:)`` for a write with `flags`. With no memory for the entry, the
    /// answer Linux gives that write before it allocates, where it gives one: ENOENT for
    /// `BPF_EXIST` on an absent key, EEXIST for `BPF_NOEXIST` on a key inserted since the
    /// write's first look, E2BIG for a new key of a full map (`htab_map_update_elem`
    /// checks the flags, and `alloc_htab_elem` the count, first); else ENOMEM. Before, a new
    /// key of a full map answered ENOMEM when memory was short (found by
    /// `WriteFaultSweepTests`). Caller holds an epoch.
    @inline(__always)
    func makeEntry(forWrite key: UnsafeRawBufferPointer, hash: UInt, value: UnsafeRawBufferPointer,
                   flags: MapUpdateFlags) throws(MapError) -> UnsafeMutablePointer<rcumaps_lfht_entry_t> {
        do throws(MapError) {
            return try makeEntry(key: key, value: value)
        } catch {
            throw refusalWithoutMemory(key, hash: hash, flags: flags) ?? error
        }
    }

    /// A new entry for a `BPF_ANY` write (in place, or `BPF_F_LOCK`) that found its key
    /// absent, or nil when the allocation failed because memory is short but the key has
    /// turned up meanwhile: the write needs no entry then and goes round again to write in
    /// place (it answered ENOMEM, which Linux never answers for an existing element: found
    /// by review, 2026-12-05). Caller holds an epoch. Not inlined: the new-key path only
    /// (inlined, its `catch` cost every in-place update about 7 instructions).
    @inline(never)
    func entryForAbsentKey(_ key: UnsafeRawBufferPointer, hash: UInt, value: UnsafeRawBufferPointer,
                           flags: MapUpdateFlags) throws(MapError) -> UnsafeMutablePointer<rcumaps_lfht_entry_t>? {
        #if DEBUG
        beforeAllocatingForWrite?()
        #endif
        do throws(MapError) {
            return try makeEntry(forWrite: key, hash: hash, value: value, flags: flags)
        } catch where error == .noMemory && find(key, hash: hash) != nil {
            return nil
        }
    }

    /// The refusal a write with no memory for its entry gets instead of ENOMEM, if any (see
    /// ``makeEntry(forWrite:hash:value:flags:)``). Not inlined: the allocation's failure is
    /// the only caller.
    @inline(never)
    func refusalWithoutMemory(_ key: UnsafeRawBufferPointer, hash: UInt, flags: MapUpdateFlags) -> MapError? {
        guard find(key, hash: hash) == nil else { return flags == .noExist ? .alreadyExists : nil }
        if flags == .exist { return .keyNotFound }
        return capacity.hasNoRoom() ? .mapFull : nil
    }

    /// `.any` / `.exist` on an in-place map: stores the value into the key's live entry, or
    /// (`.any`) publishes a new entry if the key is absent. Caller holds an epoch.
    func updateInPlace(_ key: UnsafeRawBufferPointer, hash: UInt, value: UnsafeRawBufferPointer,
                       flags: MapUpdateFlags, displaced: UnsafeMutableRawPointer?) throws(MapError) -> WriteResult {
        let bits = valueBits(value)
        var fresh: UnsafeMutablePointer<rcumaps_lfht_entry_t>?
        while true {
            if let entry = find(key, hash: hash) {
                if var old = storeInPlace(bits, in: entry) {
                    if let fresh { discard(fresh) }
                    if let displaced {
                        withUnsafeBytes(of: &old) { displaced.copyMemory(from: $0.baseAddress!, byteCount: valueSize) }
                    }
                    return .replaced
                }
                continue  // sealed: unlinked meanwhile, look again
            }
            guard flags != .exist else {
                if let fresh { discard(fresh) }
                return .refused
            }
            let entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>
            if let fresh {
                entry = fresh
            } else {
                guard let made = try entryForAbsentKey(key, hash: hash, value: value, flags: flags) else { continue }
                entry = made
            }
            fresh = entry
            let publication = publishNew(key, hash: hash, entry: entry)
            switch publication {
            case .published:
                return .added
            case .exists:
                continue  // inserted meanwhile: store into it (`entry` is unpublished)
            case .full, .noMemory:
                try abandon(entry, after: publication)
            }
        }
    }

    /// Replaces `old` with `entry`; returns false if `old` left the map meanwhile. On
    /// success reports and retires `old`. Caller holds an epoch.
    /// The replaced value is copied to `displaced` (if given) before it is reported.
    func replace(_ old: UnsafeMutablePointer<rcumaps_lfht_entry_t>, with entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>,
                 hash: UInt, key: UnsafeRawBufferPointer, operation: MapOperationFlags,
                 displaced: UnsafeMutableRawPointer?) -> Bool {
        let oldValue = UnsafeRawBufferPointer(start: valuePointer(old), count: valueSize)
        _ = advanceObserver?.entryWillBeRemoved(key: key, value: oldValue, flags: operation.union(.update))
        guard rcumaps_lfht_replace(table, hash, keySize, old, entry) == 0 else { return false }
        // This is the value the replace displaced. Entries change after publication only by
        // writes in place: `BPF_F_LOCK` ones, which a value with a lock word takes (its copy
        // is made under that lock, after the unlink, so that such a write either ends
        // before it and is in the copy, or finds the element removed and looks again), and
        // helper-mode ones through an older pointer, which may land after the copy.
        if let displaced {
            if lockWord.exists {
                lockWord.copyLocked(valuePointer(old), to: displaced)
            } else {
                displaced.copyMemory(from: valuePointer(old), byteCount: valueSize)
            }
        }
        #if DEBUG
        afterCopyingTheDisplacedValue?()
        #endif
        // The provider hears of the value the caller gets back, when one is copied: read
        // twice, a helper-mode write in place between the two reads made them differ (as
        // row 202 fixed for removals; found by review, 2026-12-06).
        let reported = displaced.map { UnsafeRawBufferPointer(start: $0, count: valueSize) } ?? oldValue
        observer?.entryWasRemoved(key: key, value: reported, flags: operation.union(.update))
        retire(old)
        return true
    }

    /// `.noExist`: publishes `entry` if the key is absent. Caller holds an epoch and has
    /// just looked the key up and not found it (``update(key:value:flags:operation:)``), so
    /// an update of an existing key never holds a capacity slot and never makes a
    /// concurrent insert fail with E2BIG; a key inserted since is caught by `publishNew`.
    /// `false` (and `entry` discarded) when the key is present.
    func insertNew(_ key: UnsafeRawBufferPointer, hash: UInt,
                   entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) throws(MapError) -> Bool {
        let publication = publishNew(key, hash: hash, entry: entry)
        switch publication {
        case .published:
            return true
        case .exists:
            discard(entry)
            return false
        case .full, .noMemory:
            try abandon(entry, after: publication)
        }
    }

    enum Publication { case published, exists, full, noMemory }

    /// Discards `entry` (unpublished) and throws what a failed publication means: E2BIG for
    /// `.full`, ENOMEM for `.noMemory`.
    @inline(__always)
    func abandon(_ entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>, after failure: Publication) throws(MapError) -> Never {
        discard(entry)
        throw failure == .full ? MapError.mapFull : MapError.noMemory
    }

    /// Reserves a capacity slot and publishes `entry` as a new key (`cds_lfht_add_unique`).
    /// `.exists` when the key is (or became) present — `entry` is then unpublished and still
    /// the caller's; `.full` when the map is really full. Caller holds an epoch.
    func publishNew(_ key: UnsafeRawBufferPointer, hash: UInt,
                    entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>) -> Publication {
        // `self` unretained in the closure: the caller's reference keeps the map alive, and a
        // retain would be a write to the map's header that every writing thread shares.
        switch capacity.reserve(keyExists: { [unowned(unsafe) self] in find(key, hash: hash) != nil }) {
        case .exists:
            return .exists
        case .full:
            return .full
        case .reserved:
            guard let slots = unretainedSlots else {
                let published = rcumaps_lfht_add_unique(table, hash, keySize, entry) == entry
                capacity.resolve(published: published)
                return published ? .published : .exists
            }
            // In place: the entry takes a slot, filled before the publication so that any
            // thread that finds the entry (and may unlink it) finds its slot filled: the one
            // whose unlink succeeds gives the slot back (`sealUnlinked`).
            guard let slot = slots._withUnsafeGuaranteedRef({ $0.take() }) else {
                capacity.resolve(published: false)
                // No memory for a chunk of slots. If the key turned up meanwhile, the write
                // needs none: EEXIST for NOEXIST, a store into it for ANY, as Linux answers
                // (it answered ENOMEM: rows 75 and 126 covered only the entry's allocation;
                // found by review, 2026-12-05, sixteenth session).
                return find(key, hash: hash) != nil ? .exists : .noMemory
            }
            state(entry).pointee.store(UInt(slot) << Self.slotShift | Self.slotted, ordering: .relaxed)
            slots._withUnsafeGuaranteedRef { $0.publish(UnsafeMutableRawPointer(entry), at: slot) }
            let published = rcumaps_lfht_add_unique(table, hash, keySize, entry) == entry
            if published {
                #if DEBUG
                afterLinkingNewEntry?()
                #endif
                // From now on batches return it without asking the table (unless a delete
                // sealed it already); until then a sweep asks (``sweepBatch``).
                markState(Self.published, of: entry)
            } else {
                slots._withUnsafeGuaranteedRef { $0.release(slot) }  // never findable: the slot is still ours
            }
            capacity.resolve(published: published)
            return published ? .published : .exists
        }
    }

    /// `.any`: replaces the key's entry, or publishes `entry` as a new key if there is
    /// room. Caller holds an epoch. Retries when it races with inserts and deletes of the
    /// same key; E2BIG only when the map is full and the key is absent.
    func insertOrReplace(_ key: UnsafeRawBufferPointer, hash: UInt,
                         entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>, operation: MapOperationFlags,
                         displaced: UnsafeMutableRawPointer?) throws(MapError) -> Bool {
        while true {
            if let old = find(key, hash: hash) {
                if replace(old, with: entry, hash: hash, key: key, operation: operation, displaced: displaced) { return true }
                continue  // `old` left the map meanwhile: look again
            }
            let publication = publishNew(key, hash: hash, entry: entry)
            switch publication {
            case .published:
                return false
            case .exists:
                continue  // inserted meanwhile: go round and replace it (`entry` is unpublished)
            case .full, .noMemory:
                try abandon(entry, after: publication)
            }
        }
    }

    /// Replaces the entry for `key` with `entry`; discards `entry` and returns `false` if
    /// the key is absent. Caller holds an epoch.
    func replaceExisting(_ key: UnsafeRawBufferPointer, hash: UInt,
                         with entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>, operation: MapOperationFlags,
                         displaced: UnsafeMutableRawPointer?) -> Bool {
        while true {
            guard let old = find(key, hash: hash) else {
                discard(entry)
                return false
            }
            if replace(old, with: entry, hash: hash, key: key, operation: operation, displaced: displaced) { return true }
            // `old` was removed or replaced meanwhile: look again.
        }
    }

    // MARK: Delete

    @usableFromInline
    func delete(key: UnsafeRawBufferPointer, operation: MapOperationFlags) throws(MapError) {
        if try !remove(key, operation: operation) { throw MapError.keyNotFound }
    }

    /// Delete that answers an absent key with `false`. Contract: ``RawMap/deleteIfPresent(key:)``.
    public func deleteIfPresent(key: UnsafeRawBufferPointer) throws(MapError) -> Bool {
        try remove(key, operation: [])
    }

    /// The delete; `false` if the key is absent.
    @inline(__always)
    func remove(_ key: UnsafeRawBufferPointer, operation: MapOperationFlags) throws(MapError) -> Bool {
        let helper = operation.contains(.helper)
        if helper { try access.checkProgramWrite() } else { try access.checkUserWrite(freezeState) }
        try checkKey(key, keySize)
        let hash = self.hash(key)
        defer { retired.throttleIfBehind() }
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        if !helper, freezeState.isFrozen { throw frozenError }
        guard let entry = try unlink(key, hash: hash, operation: operation) else { return false }  // sealed if in place
        observer?.entryWasRemoved(key: key, value: UnsafeRawBufferPointer(start: valuePointer(entry), count: valueSize),
                                  flags: operation)
        retire(entry)
        return true
    }

    /// User-mode delete with flags: Linux's delete takes none. Contract: ``RawMap/delete(key:flags:)``.
    public func delete(key: UnsafeRawBufferPointer, flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: false)
        try delete(key: key, operation: [])
    }

    /// Atomic removal with an inspection of the removed value first. Contract: ``ObservableBaseMap``.
    package func remove(key: UnsafeRawBufferPointer,
                        inspecting inspect: (UnsafeRawBufferPointer) throws(MapError) -> Void,
                        removed: (UnsafeRawBufferPointer) -> Void) throws(MapError) {
        try checkKey(key, keySize)
        guard !valuesInPlace else {
            // Provider base maps (the only callers) never update in place.
            throw MapError.notSupported.with(reason: "remove(inspecting:) needs a map without in-place values")
        }
        let hash = self.hash(key)
        defer { retired.throttleIfBehind() }
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        // The entry `inspect` saw is the one that leaves, but an in-place write (helper mode,
        // no lock) may change its value until the unlink: `removed` and the observer get the
        // value as it left, read after it (the section keeps the entry readable).
        guard let entry = try unlink(key, hash: hash, operation: [], inspect: inspect) else { throw MapError.keyNotFound }
        // One copy for the caller and the observer (`reportRemovedValue`).
        reportRemovedValue(UnsafeRawBufferPointer(start: valuePointer(entry), count: valueSize), key: key, flags: [],
                           observer: observer, removed: removed) {
            #if DEBUG
            afterCopyingTheRemovedValue?()
            #endif
        }
        retire(entry)
    }

    /// Lookup-and-delete with flags; `false` if absent. Contract: `RemovalIfPresent`
    /// (which derives the public lookup-and-delete entry points from it).
    @usableFromInline
    func lookupAndDeleteIfPresent(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                                  flags: MapElementFlags) throws(MapError) -> Bool {
        try checkElementFlags(flags, allowingLock: true)
        try access.checkUserRead()
        try access.checkUserWrite(freezeState)
        let locked = flags.contains(.lock)
        if locked, !lockWord.exists { throw noLockWordError }
        try checkKey(key, keySize)
        try checkValue(value, valueSize)
        let hash = self.hash(key)
        defer { retired.throttleIfBehind() }
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        if freezeState.isFrozen { throw frozenError }
        guard let entry = try unlink(key, hash: hash, operation: []) else { return false }
        // We alone removed `entry`: its value is the one the key had when it left the map
        // (in place: the one we sealed, after which no map update can land — though a
        // helper-mode store through a pointer taken before the removal can, until that
        // section ends, and is read here: an in-place increment then is not lost).
        copyRemovedValue(entry, into: value.baseAddress!, locked: locked)
        observer?.entryWasRemoved(key: key, value: UnsafeRawBufferPointer(start: valuePointer(entry), count: valueSize),
                                  flags: [])
        retire(entry)
        return true
    }

    /// Copies the value of an entry this thread has just unlinked (and, in place, sealed:
    /// ``sealUnlinked(_:)``); the lock word is cleared in the copy. Caller holds an epoch.
    func copyRemovedValue(_ entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>, into value: UnsafeMutableRawPointer,
                          locked: Bool) {
        if valuesInPlace {
            var bits = currentPair(entry).first  // sealed: final
            withUnsafeBytes(of: &bits) { value.copyMemory(from: $0.baseAddress!, byteCount: valueSize) }
        } else if locked || lockWord.exists {
            // Under the lock also without BPF_F_LOCK: a locked write in place that found the
            // element before its unlink ends before this copy, or finds it removed (above).
            lockWord.copyLocked(valuePointer(entry), to: value)
        } else {
            value.copyMemory(from: valuePointer(entry), byteCount: valueSize)
            lockWord.clear(in: value)
        }
    }

    /// Removes the entry for `key` and returns it (still readable in this epoch), or nil if
    /// the key is absent; an in-place entry is sealed, and its slot given back, before its
    /// capacity unit.
    func unlink(_ key: UnsafeRawBufferPointer, hash: UInt, operation: MapOperationFlags,
                inspect: (UnsafeRawBufferPointer) throws(MapError) -> Void = { _ in })
        throws(MapError) -> UnsafeMutablePointer<rcumaps_lfht_entry_t>?
    {
        while true {
            guard let entry = find(key, hash: hash) else { return nil }
            try inspect(UnsafeRawBufferPointer(start: valuePointer(entry), count: valueSize))
            if let refusal = advanceObserver?.entryWillBeRemoved(
                key: key, value: UnsafeRawBufferPointer(start: valuePointer(entry), count: valueSize), flags: operation) {
                throw refusal
            }
            capacity.beginRemoval()
            let removed = rcumaps_lfht_del(table, entry) == 0
            if removed, valuesInPlace { sealUnlinked(entry) }
            capacity.endRemoval(removed: removed)
            if removed { return entry }
            // Removed or replaced concurrently: look again.
        }
    }

    // MARK: Iteration

    /// Get-next-key iteration. Contract: ``RawMap/nextKey(after:into:)``.
    public func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try self.nextKey(after: key, into: nextKey, restartingForUnknownCursor: true)
    }

    /// Get-next-key that never restarts a pass. Contract: ``RawMap/nextKeyInPass(after:into:)``.
    public func nextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try self.nextKey(after: key, into: nextKey, restartingForUnknownCursor: false)
    }

    /// Order: rculfhash's split order. A cursor no longer in the map resumes after the place
    /// its hash has in that order; if nothing follows, `restartingForUnknownCursor` returns
    /// the first key, as Linux does for a key that is not in the map (this map cannot tell a
    /// key deleted during the pass from one never inserted).
    func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer,
                 restartingForUnknownCursor: Bool) throws(MapError) {
        try access.checkUserRead()
        if let key { try checkKey(key, keySize) }
        guard nextKey.count == keySize, nextKey.baseAddress != nil else {
            throw MapError.invalidArgument.with(reason: "key buffer is \(nextKey.count) bytes, map keys are \(keySize)")
        }
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        guard let next = entry(resumingAfter: key, restartingForUnknownCursor: restartingForUnknownCursor) else {
            throw MapError.keyNotFound
        }
        nextKey.baseAddress!.copyMemory(from: keyPointer(next), byteCount: keySize)
    }

    /// The entry a pass resumed *at* `key` continues with: `key`'s own entry, or if the key
    /// is gone, the first after its place in split order (nil: the end). Caller holds an epoch.
    func entry(resumingAt key: UnsafeRawBufferPointer) -> UnsafeMutablePointer<rcumaps_lfht_entry_t>? {
        let hash = self.hash(key)
        if let current = find(key, hash: hash) { return current }
        return firstEntry(afterOrder: rcumaps_lfht_order_of_hash(hash))
    }

    /// The entry get-next-key of `key` returns (nil: the end). Caller holds an epoch.
    func entry(resumingAfter key: UnsafeRawBufferPointer?, restartingForUnknownCursor: Bool)
        -> UnsafeMutablePointer<rcumaps_lfht_entry_t>?
    {
        guard let key else { return rcumaps_lfht_first(table) }
        let hash = self.hash(key)
        if let current = find(key, hash: hash) { return entry(after: current, skippingKey: key) }
        // The cursor key is gone: resume after the place it had in split order.
        if let next = firstEntry(afterOrder: rcumaps_lfht_order_of_hash(hash)) { return next }
        return restartingForUnknownCursor ? rcumaps_lfht_first(table) : nil
    }

    // MARK: Freezing

    /// Whether the map is frozen. Any thread.
    public var isFrozen: Bool { freezeState.isFrozen }

    /// Freezes the map. Contract: ``RawMap/freeze()``.
    @available(*, noasync, message: "waits for a grace period: call it from a thread of your own, or use `await map.freezeAsync()`")
    public func freeze() throws(MapError) {
        try freezeState.freeze(access: access, lockWord: lockWord.exists)
    }

    // MARK: Batches

    /// `BPF_MAP_LOOKUP_BATCH`, in one section per call (this table has no buckets to return
    /// whole, so ENOSPC never happens): with values in place, a sweep of the entry slots
    /// whose cursor is the next slot (`sweepBatch(_:from:keys:values:count:removing:)`);
    /// otherwise the walk is rculfhash's order and the cursor resumes at the key after the
    /// last one returned (`MapBatchCursor(resumingAt:)`; the last key itself at the end).
    /// `flags` must be 0, as for Linux's hash maps.
    /// Contract: ``RawMap/lookupBatch(from:keys:values:count:elementFlags:flags:)``.
    public func lookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                            values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try walkBatch(from: cursor, keys: keys, values: values, count: count, elementFlags: elementFlags,
                      flags: flags, removing: false)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`: as the lookup batch, unlinking each entry it
    /// returns (of concurrent passes, the one whose unlink wins returns it).
    public func lookupAndDeleteBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                                     values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                                     flags: UInt64) throws(MapError) -> MapBatchResult {
        try walkBatch(from: cursor, keys: keys, values: values, count: count, elementFlags: elementFlags,
                      flags: flags, removing: true)
    }

    /// `BPF_MAP_UPDATE_BATCH` (Linux's generic batch: element by element).
    public func updateBatch(keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, count: Int,
                            elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult {
        try genericUpdateBatch(keys: keys, values: values, count: count, elementFlags: elementFlags)
    }

    /// `BPF_MAP_DELETE_BATCH` (Linux's generic batch: key by key).
    public func deleteBatch(keys: UnsafeRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try genericDeleteBatch(keys: keys, count: count, elementFlags: elementFlags)
    }

    func walkBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                   values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                   flags: UInt64, removing: Bool) throws(MapError) -> MapBatchResult {
        if observer != nil {
            // A custom map's base: element by element, so the provider hears of each removal.
            return try genericLookupBatch(from: cursor, keys: keys, values: values, count: count,
                                          elementFlags: elementFlags, removing: removing)
        }
        let checks = BatchChecks(self)
        try checks.access(read: true, write: removing)
        try checks.elementFlags(elementFlags)
        guard flags == 0 else { throw MapError.invalidArgument.with(reason: "batch flags must be 0, got \(flags)") }
        try checks.buffer(count, keys.count, of: keySize, "keys")
        try checks.buffer(count, values.count, of: valueSize, "values")
        guard count > 0 else { return MapBatchResult(count: 0, cursor: cursor, error: nil) }
        if let slots {
            return try sweepBatch(slots, from: cursor, keys: keys, values: values, count: count, removing: removing)
        }
        if let cursor { try cursor.withResumeKey(keySize: keySize) { _, _ in } }  // EINVAL before anything else
        let locked = elementFlags.contains(.lock)
        defer { if removing { retired.throttleIfBehind() } }
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        if removing, freezeState.isFrozen { throw frozenError }
        var next: UnsafeMutablePointer<rcumaps_lfht_entry_t>?
        if let cursor {
            next = try cursor.withResumeKey(keySize: keySize) { key, resumesAtKey in
                resumesAtKey ? entry(resumingAt: key) : entry(resumingAfter: key, restartingForUnknownCursor: false)
            }
        } else {
            next = rcumaps_lfht_first(table)
        }
        var done = 0
        while done < count, let entry = next {
            let key = keys.baseAddress! + done * keySize
            let value = values.baseAddress! + done * valueSize
            if removing {
                capacity.beginRemoval()
                let unlinked = rcumaps_lfht_del(table, entry) == 0
                if unlinked, valuesInPlace { sealUnlinked(entry) }
                capacity.endRemoval(removed: unlinked)
                // The successor is read after the unlink attempt, from the node itself (its
                // link is frozen once it is removed): a replace that won against us linked its
                // replacement, the same key, right after `entry`, so the walk visits it next.
                // Read before, it skipped the key, which then stayed in the map though the
                // pass never saw it leave.
                next = rcumaps_lfht_next(table, entry)
                guard unlinked else { continue }  // removed or replaced by another thread
                key.copyMemory(from: keyPointer(entry), byteCount: keySize)
                copyRemovedValue(entry, into: value, locked: locked)
                retire(entry)
            } else {
                next = rcumaps_lfht_next(table, entry)
                // A replaced node's successor is its replacement (same key): skip it.
                if done > 0, keysEqual(keyPointer(entry), keys.baseAddress! + (done - 1) * keySize, count: keySize) {
                    continue
                }
                key.copyMemory(from: keyPointer(entry), byteCount: keySize)
                if locked {
                    lockWord.copyLocked(valuePointer(entry), to: value)
                } else {
                    copyValue(of: entry, into: value)
                    lockWord.clear(in: value)
                }
            }
            done += 1
        }
        if !removing, done > 0 {
            // A replace of the last key returned links its replacement right after it: not
            // a key to resume at.
            let last = keys.baseAddress! + (done - 1) * keySize
            while let current = next, keysEqual(keyPointer(current), last, count: keySize) {
                next = rcumaps_lfht_next(table, current)
            }
        }
        // The end once that replacement is skipped: taken before, a full batch that took
        // the last key while it was being replaced answered no error, and the next call an
        // empty ENOENT (found by review, 2026-12-06, twenty-fifth session).
        let end = next == nil
        let out: MapBatchCursor?
        if done > 0, let next {
            // Resume at the entry after the last key returned, which the next call finds by
            // its key at once. Resuming after the last key walks the list from its head when
            // that key is gone by then: removed by this call, or by a caller that deletes
            // what a lookup batch returned ("read, then expire") — once a call, and a pass in
            // small batches cost time quadratic in the map's size (found by review, 2026-12-05,
            // for the lookup batch).
            out = MapBatchCursor(resumingAt: UnsafeRawBufferPointer(start: keyPointer(next), count: keySize))
        } else if done > 0 {
            out = MapBatchCursor(UnsafeRawBufferPointer(start: keys.baseAddress! + (done - 1) * keySize, count: keySize))
        } else {
            out = cursor
        }
        return MapBatchResult(count: done, cursor: out, error: end ? .keyNotFound : nil)
    }

    /// A batch of an in-place map: a sweep of the entry slots (`EntrySlots`) from the
    /// cursor, which is the next slot to look at. Checks are the caller's (`walkBatch`).
    ///
    /// Order is slot order. An entry keeps its slot for as long as its key is in the map, so
    /// a key present for the whole pass (inserted before it began, not deleted before it
    /// ended) is returned exactly once; a key inserted or deleted during the pass may or may
    /// not be, and one deleted and inserted again may come twice. An entry counts from the
    /// end of its publication until it is sealed (just after its unlink). The sweep's
    /// loads are independent (no list to follow), so their cache misses overlap.
    func sweepBatch(_ slots: EntrySlots, from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                    values: UnsafeMutableRawBufferPointer, count: Int, removing: Bool) throws(MapError) -> MapBatchResult {
        var slot = 0
        if let cursor {
            guard let index = cursor.index else {
                throw MapError.invalidArgument.with(reason: "the batch cursor is not one of this map's (\(cursor.byteCount) bytes)")
            }
            slot = Int(index)
        }
        defer { if removing { retired.throttleIfBehind() } }
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        if removing, freezeState.isFrozen { throw frozenError }
        let end = slots.end
        let keyBase = keys.baseAddress.unsafelyUnwrapped
        let valueBase = values.baseAddress.unsafelyUnwrapped
        let mask = slots.chunkSize - 1
        var done = 0
        while done < count, slot < end {
            let chunkEnd = Swift.min(end, (slot | mask) + 1)
            guard let words = slots.entryWords(ofChunk: slot >> slots.chunkShift) else {
                slot = chunkEnd  // not made yet: no entry there
                continue
            }
            while done < count, slot < chunkEnd {
                let here = slot
                slot += 1
                guard let entry = sweptEntry(words, slot: here, mask: mask) else { continue }
                let key = keyBase + done &* keySize
                let value = valueBase + done &* valueSize
                if removing {
                    capacity.beginRemoval()
                    let unlinked = rcumaps_lfht_del(table, entry) == 0
                    var bits: UInt = 0
                    if unlinked { bits = sealUnlinked(entry) }
                    capacity.endRemoval(removed: unlinked)
                    guard unlinked else { continue }  // deleted by another thread meanwhile
                    key.copyMemory(from: keyPointer(entry), byteCount: keySize)
                    withUnsafeBytes(of: &bits) { value.copyMemory(from: $0.baseAddress!, byteCount: valueSize) }
                    retire(entry)
                } else {
                    key.copyMemory(from: keyPointer(entry), byteCount: keySize)
                    copyValue(of: entry, into: value)
                }
                done += 1
            }
        }
        // A full batch with no live entry left after it ends the pass (ENOENT), as Linux's
        // batch scans on past its last element (and as the list walk and the bucket hash
        // answer): free slots between the last entry copied and the high-water mark used to
        // leave it to one more call that found nothing (found by review, 2026-12-06).
        if slot < end, !hasLiveEntry(slots, from: slot, below: end) { slot = end }
        let out = done > 0 || cursor != nil ? MapBatchCursor(index: UInt32(truncatingIfNeeded: slot)) : nil
        return MapBatchResult(count: done, cursor: out, error: slot >= end ? .keyNotFound : nil)
    }

    /// The entry of slot `here` (`words`: its chunk's words, `mask` the chunk's) that a sweep
    /// returns now, or nil. Caller holds an epoch.
    @inline(__always)
    private func sweptEntry(_ words: UnsafeMutablePointer<Atomic<UInt>>, slot here: Int,
                            mask: Int) -> UnsafeMutablePointer<rcumaps_lfht_entry_t>? {
        // Acquiring: pairs with the slot's releasing store, after the entry was built.
        let address = words[here & mask].load(ordering: .acquiring)
        guard address != 0, address & 1 == 0 else { return nil }  // never used, or free
        // Invariant: an even non-zero slot is an entry block's node, valid until this
        // section ends (slots are emptied before their entry is retired).
        let entry = UnsafeMutablePointer<rcumaps_lfht_entry_t>(bitPattern: address).unsafelyUnwrapped
        let flags = state(entry).pointee.load(ordering: .relaxed)
        // Not sealed, and still this slot's (an entry read from a slot it has left, then
        // slotted again elsewhere, would come twice).
        guard flags & Self.sealed == 0, flags >> Self.slotShift == here else { return nil }
        // Published; or linked by an insert that has yet to mark it (a lookup already finds
        // it, so the pass must return it: found by review, 2026-12-03, the sweep skipped it):
        // asked of the table, which finds this very entry once it is linked.
        if flags & Self.published == 0 {
            let entryKey = UnsafeRawBufferPointer(start: keyPointer(entry), count: keySize)
            guard find(entryKey, hash: hash(entryKey)) == entry else { return nil }
            // (The find's loads before the look again: an acquire load orders only what
            // follows it, and on ARM64 the re-read could be served before the find saw the
            // entry linked; x86 keeps loads in order. Found by review.)
            atomicMemoryFence(ordering: .acquiring)
            // Looked at again: an entry whose first publication failed leaves this slot, and
            // may be linked later from another one, where the pass meets it again (found by
            // review, 2026-12-05: the state read before the find still named this slot).
            guard state(entry).pointee.load(ordering: .acquiring) >> Self.slotShift == here else { return nil }
        }
        return entry
    }

    /// Whether a slot in `start ..< end` holds an entry a sweep would return now
    /// (``sweptEntry(_:slot:mask:)``), without copying it. Caller holds an epoch.
    private func hasLiveEntry(_ slots: EntrySlots, from start: Int, below end: Int) -> Bool {
        let mask = slots.chunkSize - 1
        var slot = start
        while slot < end {
            let chunkEnd = Swift.min(end, (slot | mask) + 1)
            guard let words = slots.entryWords(ofChunk: slot >> slots.chunkShift) else {
                slot = chunkEnd
                continue
            }
            while slot < chunkEnd {
                if sweptEntry(words, slot: slot, mask: mask) != nil { return true }
                slot += 1
            }
        }
        return false
    }

    /// The entry after `entry` whose key is not `key`. Caller holds an epoch.
    ///
    /// A node displaced by `cds_lfht_replace` / `cds_lfht_add_replace` keeps a `next`
    /// pointer to its replacement, which holds the same key: skip it, or the key would be
    /// returned twice in one pass.
    func entry(after entry: UnsafeMutablePointer<rcumaps_lfht_entry_t>, skippingKey key: UnsafeRawBufferPointer)
        -> UnsafeMutablePointer<rcumaps_lfht_entry_t>?
    {
        var next = rcumaps_lfht_next(table, entry)
        while let candidate = next, keysEqual(keyPointer(candidate), key.baseAddress!, count: keySize) {
            next = rcumaps_lfht_next(table, candidate)
        }
        return next
    }

    /// The first entry whose split-order key is greater than `order`. Caller holds an epoch.
    ///
    /// A walk from the head of the list: rculfhash has no way to seek to a place in split
    /// order other than a key's own node. Passes avoid it where they can (a removing batch
    /// resumes at the next key, not after the one it removed).
    func firstEntry(afterOrder order: UInt) -> UnsafeMutablePointer<rcumaps_lfht_entry_t>? {
        #if DEBUG
        walksFromTheHead.wrappingAdd(1, ordering: .relaxed)
        #endif
        var entry = rcumaps_lfht_first(table)
        while let current = entry, rcumaps_lfht_entry_order(current) <= order {
            entry = rcumaps_lfht_next(table, current)
        }
        return entry
    }
}

extension UInt {
    /// The smallest power of two ≥ self, at most 2^31.
    var nextPowerOfTwoClamped: UInt {
        if self <= 1 { return 1 }
        let shift = UInt.bitWidth - (self - 1).leadingZeroBitCount
        return 1 << Swift.min(shift, 31)
    }
}
