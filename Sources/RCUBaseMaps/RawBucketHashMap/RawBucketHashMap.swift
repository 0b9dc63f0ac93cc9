import CRCUMapsShim
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A `HASH` map with lock-free readers and one lock per bucket for writers, whose keys
/// and values sit inline in cache-line buckets: a lookup is one hash, one bucket line
/// and one key compare — no pointer to follow.
///
/// Layout (`BucketTable`): `bucketCount` buckets in one cache-aligned block, preallocated
/// for `maxEntries` (as Linux preallocates hash elements); a full bucket chains to an
/// overflow bucket of the same layout. A bucket is
/// - a control word: one tag byte per slot (`0x80 | 7 hash bits` when the slot is live,
///   0 when free, a reclaim stamp when retired), a *retired* bit per slot;
/// - the address of its overflow bucket, or 0;
/// - `slotsPerBucket` slots of `[key padded to 8 | value padded to 8]`.
///
/// A live slot's key never changes; its value changes in place only by an exchange of a
/// one-word value (atomic: a reader sees the old or the new word), a `BPF_F_LOCK` update
/// (under the value's lock word; a reader without the lock may see a mix, as on Linux) and
/// helper-mode writes. Otherwise it is the pair of a key and one value, as a Linux hash
/// element is.
///
/// Writers hold the bucket's lock (a chain shares its first bucket's lock):
/// - a new key is written into a free slot, then published by setting its tag in the
///   control word (release store);
/// - replacing a value wider than a word (or, without `BPF_F_LOCK`, a word holding a lock
///   word) writes the new pair into another free slot and
///   publishes it, then retires the old slot; readers see the old or the new pair, never
///   a mix, and a helper-mode pointer to the old value keeps reading it until its section
///   ends;
/// - delete clears the tag and marks the slot retired, in one store (the slot's stamp
///   follows in a second): it never fails for lack of memory (the generation work item or
///   spare ring it may allocate is optional).
///
/// A retired slot is not reused until a grace period has passed, so a reader that matched
/// its key keeps reading that key's value: the slot is stamped with the table's reclaim
/// generation and the chain's writers reuse it once the next generation has completed; an
/// overflow bucket left with no live slot leaves the chain at once and is kept as a spare
/// for the next chain that grows, or freed after a grace period (see `BucketTable` and
/// `SpareBuckets`).
///
/// Writes without a section: an update or delete that reads no slot after its lock holds
/// no epoch section of its own — one that reports nothing (no observer, no copy of the
/// displaced or removed value), or one of a map with one-word values (8 bytes or fewer, no
/// lock word), whose old value is copied under the lock.
/// The chain's lock alone keeps the chain's buckets in place (an LRU eviction, too, visits
/// each chain under its lock), and the reclaim stamp is read after the unlinking, so
/// nothing such a write does needs one. A grace
/// period then never waits for such a writer: on cores that writers keep busy, the
/// grace-period thread preempts one, and if it was inside a section liburcu's
/// `synchronize_rcu` waited (interrupting the other core with `membarrier` over and over)
/// until the scheduler gave the writer its core back. Such writes check a freeze under the
/// chain's lock instead of inside a section, and ``freeze()`` takes every chain's lock once.
///
/// Writes in one pass: ``insertIfAbsent(key:value:)`` of a map that does not evict, and the
/// user-mode updates of a map with one-word values (no lock word, no provider that hears of
/// a displacement under the lock), take one locked pass of their own — the value word
/// exchanged in place, or the new key's slot filled and then counted
/// (`CapacityGate.claim`) and published — instead of the general update, which serves
/// helper mode, `BPF_F_LOCK`, wider values and LRU maps' replaces. An LRU map's
/// `insertIfAbsent` takes a pass of its own too (reserve, or evict under the key's chain
/// lock, then publish), and the general update only when that sweep finds no victim.
///
/// `LRU_HASH` (Linux `BPF_MAP_TYPE_LRU_HASH`) is this map with a `RecencyClock`: a new
/// key in a full map evicts an entry not used recently instead of failing with E2BIG (see
/// there for the CLOCK sweep and the referenced bits lookups set). The key just written is
/// present when the update returns — under concurrent writers, unless their evictions moved
/// the hand on by half its span meanwhile, or a sweep reached its last lap (only when its
/// forced lap found no victim: writers wrote into every bucket within it, or its ticks went
/// stale while it waited for chain locks), which may evict an entry written a moment
/// before — and the count never exceeds `maxEntries`: a writer
/// that finds the map full evicts one entry (holding its own chain's lock, it only tries
/// the victim chain's and passes over one that is taken; the general path, which holds
/// no lock while it sweeps, waits for each) and takes the unit the eviction freed before
/// it inserts.
///
/// Concurrency: any number of readers and writers on any threads. Readers take no lock;
/// on a `HASH` they never write shared memory, on an `LRU_HASH` at most one atomic OR the
/// first time an entry is used after an eviction pass; writers of different buckets never
/// contend (an evicting LRU writer also advances the shared eviction hand). A signal
/// handler (on a thread that entered a section before the signal) may look up (not with
/// `BPF_F_LOCK`) but must not write: a handler that interrupted a write of its own thread
/// would wait for ever for the bucket lock that write holds (docs/map-types.md, HASH).
public final class RawBucketHashMap: ObservableBaseMap, FlaggedWrites, RemovalIfPresent, @unchecked Sendable {
    // @unchecked Sendable: buckets are read through atomics (control, overflow links) and
    // immutable live slots; they change only under their bucket's lock.

    /// The definition the map was created with. Immutable; any thread.
    public let definition: MapDefinition
    @usableFromInline let keySize: Int
    @usableFromInline let valueSize: Int
    let maxEntries: Int
    let tag: PoolTag
    @usableFromInline let hasher: KeyHasher
    let capacity: CapacityGate
    /// The buckets, their locks and their reclamation (a pending generation item holds the table weakly).
    @usableFromInline let table: BucketTable
    /// The provider layer's hooks, if this map is the base of a custom map.
    let observer: (any MapEntryObserver)?
    /// `observer` if it wants to hear of removals in advance (``MapEntryObserver/wantsAdvanceNotice``),
    /// else nil: a write does not make a call that does nothing.
    let advanceObserver: (any MapEntryObserver)?
    /// What user and helper mode may do (the access flags).
    public let access: MapAccess
    /// `keySize` if user-mode reads are allowed, else -1; and the same for helper-mode
    /// reads. The lookups test a key's size against these, so that the access check and
    /// the size check are one test on their common path (the access flags never change);
    /// a key they refuse goes to ``refuseRead(helperMode:keyCount:)`` for the error the
    /// separate checks give, in their order.
    @usableFromInline let userReadKeySize: Int
    @usableFromInline let programReadKeySize: Int
    /// Frozen or not.
    let freezeState = MapFreezeState()
    /// User-mode writes of an LRU map that evict with no lock held: each is counted from
    /// before it checks the freeze and evicts until its next pass holds its chain's lock (or
    /// until it evicted no one). Such a write may evict before `freeze()` sets its flag and
    /// look again after; `freeze()` waits for the count to fall to 0 after setting the flag
    /// (each side's store, a full fence, then its load) and then takes every chain's lock,
    /// so either the write sees the map frozen before it evicts (EPERM, nothing changed) or
    /// `freeze()` waits for it, and the write, which evicted for its key, goes in. Before,
    /// such a write evicted, then found the map frozen and failed with EPERM, the victim
    /// gone (found by review, 2026-12-05).
    let evictingWriters = Atomic<Int>(0)
    /// The value's lock word, if the definition names one.
    @usableFromInline let lockWord: LockWordCopy
    /// The eviction state of an `LRU_HASH`; nil for a `HASH`.
    let recency: RecencyClock?
    /// `recency` without a reference count, for the eviction sweep (see
    /// `evictLeastRecentlyUsed(forUserWrite:)`).
    let unretainedRecency: Unmanaged<RecencyClock>?
    /// Whether lookups set referenced bits (`recency != nil`, read on the hot path).
    @usableFromInline let tracksRecency: Bool
    #if DEBUG
    /// Tests (debug builds only): runs in a removal (delete, lookup-and-delete, the typed
    /// `removeValue`, and each entry of a lookup-and-delete batch) under the chain's lock,
    /// once the entry is found and inspected, just before it is unlinked. Set before the map
    /// is shared.
    package nonisolated(unsafe) var beforeRemovalUnlinks: (() -> Void)?
    /// Tests (debug builds only): runs in the general update once a key's pair was replaced
    /// by a new one (its old slot retired), with the chain's lock released, before the old
    /// value is copied out. Set before the map is shared.
    package nonisolated(unsafe) var afterReplacingByANewPair: (() -> Void)?
    /// Tests (debug builds only): runs in the same update once the old value is copied out
    /// for the caller (`exchange`), before the observer hears of it. Set before the map is
    /// shared.
    package nonisolated(unsafe) var afterCopyingTheDisplacedValue: (() -> Void)?
    /// Tests (debug builds only): runs in `remove(key:inspecting:removed:)` once the removed
    /// value is copied out for the caller, before the observer hears of it. Set before the
    /// map is shared.
    package nonisolated(unsafe) var afterCopyingTheRemovedValue: (() -> Void)?
    #endif
    /// Tests: the overflow bytes past which writers wait for reclamation
    /// (`BucketTable.overflowThrottleBytes`; the bucket array's size with a per-CPU hash's
    /// value blocks, at least 16 MiB). Set
    /// before the map is shared.
    package var overflowThrottleBytes: Int {
        get { table.overflowThrottleBytes }
        set { table.overflowThrottleBytes = newValue }
    }
    /// How many times this map's writers waited for reclamation because its overflow
    /// buckets grew past that bound.
    package var growthThrottles: Int { table.growthThrottles.load(ordering: .relaxed) }

    /// The table's flag that some writer grew it past its bound (tests only: set to show it
    /// does not stay set with nothing pending).
    package var isGrowingBehind: Bool {
        get { table.growingBehind.load(ordering: .relaxed) }
        set { table.growingBehind.store(newValue, ordering: .relaxed) }
    }
    /// Whether a user-mode update without `BPF_F_LOCK` takes the one-pass path
    /// (``writeInOnePass(key:value:flags:displaced:)``): no eviction, a one-word value without
    /// a lock word, no provider that must hear of a displacement under the lock.
    @usableFromInline let writesWords: Bool

    /// Creates an empty `HASH` or `LRU_HASH` map whose buckets hold `maxEntries` entries
    /// (an LRU map twice that) at two-thirds load when a bucket is one cache line, three
    /// quarters otherwise (`BucketTable`).
    ///
    /// With `BPF_F_NO_COMMON_LRU`, `maxEntries` is rounded up to a multiple of the possible
    /// CPUs (down if that overflows `UInt32`), as Linux does; ``definition`` shows the result.
    ///
    /// - Throws: ``MapError/invalidArgument`` or ``MapError/outOfSpace`` for a bad definition,
    ///   ``MapError/unsupportedByMapType`` (ENOTSUPP) for an `LRU_HASH` with
    ///   `BPF_F_NO_PREALLOC`, ``MapError/accessDenied`` (EACCES) for a lock word with a
    ///   program access flag, ``MapError/notSupported`` (EOPNOTSUPP) for a lock word on an
    ///   `LRU_HASH`, ``MapError/noMemory`` if the buckets cannot be allocated.
    public convenience init(_ definition: MapDefinition) throws(MapError) {
        try self.init(definition, observer: nil)
    }

    /// Creates an empty map whose removals are reported to `observer` (provider layer).
    /// `bucketCount` overrides the sizing (tests use one bucket to build long chains).
    /// `perCPU`: values are a per-CPU hash's (``RawPerCPUHashMap``), `definition.valueSize`
    /// the user-mode layout's (every CPU's value), kept one block per CPU (see "Per-CPU
    /// values" in `BucketTable`'s notes).
    package init(_ definition: MapDefinition, observer: (any MapEntryObserver)?,
                 bucketCount: Int? = nil, perCPU: PerCPUValueLayout? = nil) throws(MapError) {
        guard definition.type == .hash || definition.type == .lruHash else {
            throw MapError.invalidArgument.with(
                reason: "RawBucketHashMap serves BPF_MAP_TYPE_HASH and BPF_MAP_TYPE_LRU_HASH, not \(definition.type)")
        }
        // A per-CPU hash's values are all its CPUs' (`round_up(valueSize, 8)` each): Linux
        // checks `keySize + valueSize` against one CPU's value, which the per-CPU map checked,
        // and the whole value is not checked again (it refused E2BIG from 128 possible CPUs
        // for values Linux accepts; found by review, 2026-12-07).
        try definition.validateHash(checkingKeyPlusValue: perCPU == nil)
        var definition = definition
        let lru = definition.type == .lruHash
        if lru, definition.flags.contains(.noCommonLRU) {
            definition.maxEntries = Self.perCPUListEntries(definition.maxEntries)
        }
        precondition(!lru || observer == nil, "an LRU hash is not a provider base: evictions would bypass the provider")
        self.definition = definition
        keySize = definition.keySize
        valueSize = definition.valueSize
        maxEntries = definition.maxEntries
        capacity = CapacityGate(maxEntries: definition.maxEntries)
        tag = definition.effectivePoolTag
        // BPF_F_ZERO_SEED: a fixed seed, so the iteration order repeats (for tests).
        hasher = definition.flags.contains(.zeroSeed) ? KeyHasher(seed: 0) : KeyHasher()
        self.observer = observer
        advanceObserver = observer?.wantsAdvanceNotice == true ? observer : nil
        access = MapAccess(definition.flags)
        userReadKeySize = access.userRead ? keySize : -1
        programReadKeySize = access.programRead ? keySize : -1
        lockWord = LockWordCopy(definition)
        // An LRU map runs full, and every insert into it retires the slot of the entry it
        // evicts, which waits for a reclaim generation before it is free again: sized
        // for twice `maxEntries` (the capacity gate still holds it to `maxEntries`), its
        // chains keep room for those slots instead of spilling into overflow buckets that
        // every later insert walks.
        table = try BucketTable(keySize: keySize, valueSize: valueSize, maxEntries: lru ? 2 * maxEntries : maxEntries,
                                tag: tag, bucketCount: bucketCount, perCPU: perCPU)
        recency = lru ? RecencyClock(bucketCount: table.bucketCount) : nil
        unretainedRecency = recency.map { Unmanaged.passUnretained($0) }
        tracksRecency = lru
        writesWords = !lru && table.valueIsOneWord && !lockWord.exists && advanceObserver == nil
        try definition.validateAfterAllocation()  // as Linux, after the allocation (deinit frees it)
    }

    /// Linux's `maxEntries` for per-CPU LRU lists: a multiple of the possible CPUs, so that
    /// every CPU's list gets the same share (rounded down if rounding up passes `UInt32`).
    /// A count above `UInt32` (which Linux's `max_entries` cannot hold) is returned as it is,
    /// for the caller's bound to refuse: rounding it up overflowed `Int` and stopped the
    /// program (found by review, 2026-12-05).
    package static func perCPUListEntries(_ requested: Int) -> Int {
        guard requested <= Int(UInt32.max) else { return requested }
        let cpus = RawPerCPUArrayMap.possibleCPUs
        let up = (requested + cpus - 1) / cpus * cpus
        return up <= Int(UInt32.max) ? up : requested / cpus * cpus
    }

    deinit {
        // No reader can hold the map any more: report what is left to the provider.
        guard let observer else { return }
        // In a section, as provider callbacks run (see `ProviderHooks`).
        Epoch.withSection { _ in
            for index in 0..<table.bucketCount {
                table.forEachBucket(inChainOf: index) { bucket in
                    let control = table.loadControl(bucket)
                    for slot in 0..<table.slotsPerBucket where BucketTable.isLive(control, slot) {
                        let entry = table.slot(bucket, slot)
                        let key = UnsafeRawBufferPointer(start: entry, count: keySize)
                        let value = UnsafeRawBufferPointer(start: entry + table.valueOffset, count: valueSize)
                        _ = observer.entryWillBeRemoved(key: key, value: value, flags: .mapCleanup)
                        observer.entryWasRemoved(key: key, value: value, flags: .mapCleanup)
                    }
                }
            }
        }
    }

    /// Entries in the map: a snapshot under concurrent updates. Any thread.
    public var count: Int { capacity.entries }

    /// Whether a first-level slot retired while `retiredAt` reclaim generations had been
    /// posted may be written again once `posted` have been posted and `completed` have run
    /// (the table's reuse rule, for tests).
    package static func retiredSlotIsReusable(retiredAt: UInt64, posted: UInt64, completed: UInt64) -> Bool {
        BucketTable.isReusable(stamp: BucketTable.stamp(retiredAt), posted: posted, completed: completed)
    }

    /// The slot a writer fills first in a bucket of `slotsPerBucket` slots whose control
    /// word is `control` (the lowest free one: tag byte 0, not retired), or nil (the
    /// table's one-step test, for tests).
    package static func firstFreeSlot(control: UInt64, slotsPerBucket: Int) -> Int? {
        var liveTagBits: UInt64 = 0
        for slot in 0..<slotsPerBucket { liveTagBits |= 0x80 << UInt64(8 * slot) }
        return BucketTable.firstFreeSlot(control, liveTagBits: liveTagBits)
    }

    /// Slots in each bucket (the table's geometry; for tests and diagnostics).
    package var slotsPerBucket: Int { table.slotsPerBucket }

    /// Bytes of each bucket, an overflow bucket's allocation less its header (for tests).
    package var bucketBytes: Int { table.bucketStride }

    /// Buckets in use beyond the first-level ones (a snapshot; for tests and diagnostics).
    package var overflowBucketCount: Int {
        Epoch.withSection { _ in
            var total = 0
            for index in 0..<table.bucketCount {
                table.forEachBucket(inChainOf: index) { _ in total += 1 }
            }
            return total - table.bucketCount
        }
    }

    /// Live slots in chain `index`, counted under the chain's lock: exact for that chain at
    /// one moment (for tests: in a map of one chain, the number of entries, independent of
    /// the capacity gate's bookkeeping).
    package func liveSlots(inChain index: Int) -> Int {
        table.withChainLock(index) {
            var total = 0
            table.forEachBucket(inChainOf: index) { bucket in
                total += (table.loadControl(bucket) & table.liveTagBits).nonzeroBitCount
            }
            return total
        }
    }

    /// The bytes of `key`'s live slot (its key, then its value or, in a per-CPU hash's table,
    /// the word that locates its values): where they were at the moment of the lookup (for
    /// tests and diagnostics: no access is made through it). Nil when absent.
    package func slotBytes(forKey key: UnsafeRawBufferPointer) -> (address: UInt, count: Int)? {
        Epoch.withSection { _ in
            findSlot(key.baseAddress!, hash: hasher.hash(key.baseAddress!, count: keySize))
                .map { (UInt(bitPattern: $0), table.slotStride) }
        }
    }

    /// Overflow buckets unlinked from their chains and kept for reuse (``SpareBuckets``), and
    /// how many each thread stripe may keep (a snapshot; for tests and diagnostics).
    package var spareOverflowBuckets: (count: Int, perStripe: Int) {
        (table.spares?.count ?? 0, table.spares?.capacity ?? 0)
    }

    /// The reclaim generations posted and completed so far (a snapshot; for tests and
    /// diagnostics). Reading it asks for nothing.
    package var reclaimGenerations: (posted: UInt64, completed: UInt64) {
        (table.generationsPosted.load(ordering: .acquiring), table.generationsCompleted.load(ordering: .acquiring))
    }

    /// Waits until every reclaim generation writers have asked for so far has run, so that
    /// every slot retired before the call is reusable — without `Epoch.barrier()`, which
    /// also flushes every retire list. Call outside a section (a generation waits for
    /// every reader). For tests.
    package func waitForReclaimGenerations() {
        let wanted = table.generationsWanted.load(ordering: .acquiring)
        while table.generationsCompleted.load(ordering: .acquiring) < wanted {
            table.requestGenerations(through: wanted)
            usleep(200)
        }
    }

    // MARK: Lookup

    /// The live slot holding `key`, or nil. Caller holds an epoch (or the bucket's lock).
    @inlinable @inline(__always)
    func findSlot(_ key: UnsafeRawPointer, hash: UInt64) -> UnsafeMutableRawPointer? {
        findSlot(key, keyCount: keySize, hash: hash)
    }

    /// ``findSlot(_:hash:)`` given the key's size (`keyCount`, which must be `keySize`):
    /// a lookup whose caller's key size is a constant passes it, so that the key's
    /// comparison is chosen at compile time.
    @inlinable @inline(__always)
    func findSlot(_ key: UnsafeRawPointer, keyCount: Int, hash: UInt64) -> UnsafeMutableRawPointer? {
        guard let match = firstMatch(key, keyCount: keyCount, hash: hash, inChainOf: table.bucketIndex(hash)) else {
            return nil
        }
        if tracksRecency { markReferenced(match.bucket, slot: match.slot, control: match.control) }
        return table.slot(match.bucket, match.slot)
    }

    /// The bucket and slot where `key` is live in the chain of bucket `index`, and that
    /// bucket's control word as loaded, or nil: each bucket's tags are matched in one step,
    /// and the walk stops at the first match (a chain holds a key at most once). Caller
    /// holds an epoch, or the chain's lock.
    @inlinable @inline(__always)
    func firstMatch(_ key: UnsafeRawPointer, hash: UInt64, inChainOf index: Int)
        -> (bucket: UnsafeMutableRawPointer, slot: Int, control: UInt64)?
    {
        firstMatch(key, keyCount: keySize, hash: hash, inChainOf: index)
    }

    /// ``firstMatch(_:hash:inChainOf:)`` given the key's size (`keyCount`, which must be `keySize`).
    @inlinable @inline(__always)
    func firstMatch(_ key: UnsafeRawPointer, keyCount: Int, hash: UInt64, inChainOf index: Int)
        -> (bucket: UnsafeMutableRawPointer, slot: Int, control: UInt64)?
    {
        let pattern = BucketTable.tag(hash) &* BucketTable.byteOnes
        var bucket = table.bucket(index)
        while true {
            let control = table.loadControl(bucket)
            var candidates = table.tagMatches(control, pattern: pattern)
            while candidates != 0 {
                let slot = BucketTable.matchedSlot(candidates)
                if keysEqual(table.slot(bucket, slot), key, count: keyCount) { return (bucket, slot, control) }
                candidates &= candidates &- 1
            }
            guard let next = table.overflow(bucket) else { return nil }
            bucket = next
        }
    }

    /// Sets a live slot's referenced bit (LRU maps), unless `control`, the bucket's control
    /// word as just loaded, shows it set already: a hot entry costs its readers no write.
    @inlinable @inline(__always)
    func markReferenced(_ bucket: UnsafeMutableRawPointer, slot: Int, control: UInt64) {
        let bit: UInt64 = 1 &<< (BucketTable.referencedShift &+ UInt64(truncatingIfNeeded: slot))
        if control & bit == 0 { table.control(bucket).pointee.bitwiseOr(bit, ordering: .relaxed) }
    }

    /// Marks a live slot written in place (LRU maps, under the chain's lock): referenced, as
    /// a lookup marks it, and its bucket ``BucketTable/insertedBit``, as a publication
    /// marks it, so that the entry just written outlives a forced eviction's next pass too.
    @inline(__always)
    func markWritten(_ bucket: UnsafeMutableRawPointer, slot: Int) {
        let bits = 1 &<< (BucketTable.referencedShift &+ UInt64(truncatingIfNeeded: slot)) | BucketTable.insertedBit
        let word = table.control(bucket)
        if word.pointee.load(ordering: .relaxed) & bits != bits { word.pointee.bitwiseOr(bits, ordering: .relaxed) }
    }

    /// User-mode lookup. Contract: ``RawMap/lookup(key:into:)``. Inlinable.
    @inlinable @inline(__always)
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        if try !lookupIfPresent(key: key, into: value) { throw MapError.keyNotFound }
    }

    /// ``lookup(key:into:)`` that answers an absent key with `false` instead of ENOENT (no
    /// error to build on a miss). Inlinable.
    @inlinable @inline(__always)
    public func lookupIfPresent(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        // The access check and the key's (see `userReadKeySize`).
        if _slowPath(key.count != userReadKeySize || key.baseAddress == nil) {
            try refuseRead(helperMode: false, keyCount: key.count)
        }
        try checkValue(value, valueSize)
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        guard let entry = findSlot(key.baseAddress!, keyCount: key.count, hash: hasher.hash(key.baseAddress!, count: key.count))
        else {
            return false
        }
        table.copyValue(from: entry, into: value.baseAddress!)
        lockWord.clear(in: value.baseAddress!)
        return true
    }

    /// The error of a lookup (helper mode or user mode) whose key `programReadKeySize` or
    /// `userReadKeySize` refused: the access check's, else the key check's, as when they
    /// were made one after the other. Never returns. Given the key's size, not its buffer
    /// (whose error, when nil, is the same): a key buffer passed to a call that is not inlined
    /// must be in memory, and the caller's key then left its register on every lookup.
    @usableFromInline @inline(never)
    func refuseRead(helperMode: Bool, keyCount: Int) throws(MapError) -> Never {
        if helperMode { try access.checkProgramRead() } else { try access.checkUserRead() }
        throw bufferSizeError("key", keyCount, keySize)
    }

    /// ``lookupIfPresent(key:into:)`` that is not a use of the entry: an LRU map's referenced
    /// bit is left as it is, as Linux's syscall lookups leave it (`htab_lru_map_lookup_elem_sys`).
    /// For passes over the map — the typed maps' iteration, `values`, `snapshot()` —, which
    /// made every entry look just used, so that an export pass over a full LRU map left the
    /// hand no victim but by a forced lap (found by review, 2026-12-06, twenty-third
    /// session). Otherwise the same, and the same on a map that does not track recency.
    @inlinable @inline(__always)
    package func lookupIfPresentWithoutUse(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer)
        throws(MapError) -> Bool
    {
        try access.checkUserRead()
        try checkKey(key, keySize)
        try checkValue(value, valueSize)
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        let hash = hasher.hash(key.baseAddress!, count: keySize)
        guard let match = firstMatch(key.baseAddress!, hash: hash, inChainOf: table.bucketIndex(hash)) else { return false }
        table.copyValue(from: table.slot(match.bucket, match.slot), into: value.baseAddress!)
        lockWord.clear(in: value.baseAddress!)
        return true
    }

    /// The user-mode lookup's copy of `key`'s value into `value` (`valueSize` bytes), inside
    /// the caller's section: for the provider layer, whose user-mode lookup has checked the
    /// access, the key's size and the buffer's already and holds a section for its find
    /// callback. Without them, a custom map's lookup paid this map's checks and a nested
    /// section a second time (about 40 instructions). `false` if the key is absent.
    @inlinable @inline(__always)
    package func copyValue(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawPointer,
                           in section: borrowing EpochSection) -> Bool {
        guard let entry = findSlot(key.baseAddress!, hash: hasher.hash(key.baseAddress!, count: keySize)) else {
            return false
        }
        table.copyValue(from: entry, into: value)
        lockWord.clear(in: value)
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
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        guard let entry = findSlot(key.baseAddress!, hash: hasher.hash(key.baseAddress!, count: keySize)) else {
            throw MapError.keyNotFound
        }
        lockWord.copyLocked(entry + table.valueOffset, to: value.baseAddress!)
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
        // The access check and the key's (see `programReadKeySize`).
        if _slowPath(key.count != programReadKeySize || key.baseAddress == nil) {
            try refuseRead(helperMode: true, keyCount: key.count)
        }
        assert(table.valueCopy != .perCPUCells, "a per-CPU hash's values are reached through perCPUValuesIfPresent")
        // `key.count`, equal to `keySize` here: a constant where the caller's key type is
        // known, which selects the hasher's path at compile time.
        guard let entry = findSlot(key.baseAddress!, keyCount: key.count, hash: hasher.hash(key.baseAddress!, count: key.count))
        else {
            return nil
        }
        return UnsafeMutableRawBufferPointer(start: entry + table.valueOffset, count: valueSize)
    }

    /// A per-CPU hash's helper-mode lookup (its table has per-CPU values): where `key`'s
    /// values are — CPU slot `c`'s at `base + c × cpuStride` (`round_up(valueSize, 8)` bytes
    /// each of the per-CPU map) —, borrowed until `section` ends; nil when absent. An LRU
    /// map marks the entry used, as ``lookupInPlaceIfPresent(key:in:)`` does. Any thread,
    /// inside `section`.
    @inlinable @inline(__always)
    package func perCPUValuesIfPresent(key: UnsafeRawBufferPointer, in section: borrowing EpochSection)
        throws(MapError) -> (base: UnsafeMutableRawPointer, cpuStride: Int)?
    {
        try access.checkProgramRead()
        try checkKey(key, keySize)
        guard let entry = findSlot(key.baseAddress!, hash: hasher.hash(key.baseAddress!, count: keySize)) else {
            return nil
        }
        return table.cells(of: entry)
    }

    /// ``lookupInPlace(key:in:)`` that is not a use of the entry (an LRU map's referenced bit
    /// is left as it is, as ``lookupIfPresentWithoutUse(key:into:)`` leaves it): for the typed
    /// maps' `forEachInPlace`, a pass over the map, which made every entry look just used
    /// (found by review, 2026-12-06, twenty-fifth session). Otherwise the same.
    @inlinable @inline(__always)
    package func lookupInPlaceWithoutUse(key: UnsafeRawBufferPointer, in section: borrowing EpochSection)
        throws(MapError) -> UnsafeMutableRawBufferPointer
    {
        try access.checkProgramRead()
        try checkKey(key, keySize)
        let hash = hasher.hash(key.baseAddress!, count: keySize)
        guard let match = firstMatch(key.baseAddress!, hash: hash, inChainOf: table.bucketIndex(hash)) else {
            throw MapError.keyNotFound
        }
        assert(table.valueCopy != .perCPUCells, "a per-CPU hash's values are reached through perCPUValuesIfPresent")
        return UnsafeMutableRawBufferPointer(start: table.slot(match.bucket, match.slot) + table.valueOffset,
                                             count: valueSize)
    }

    // MARK: Writers

    /// Where a key lives: its bucket and slot (the address as an integer, so that the
    /// value is `Sendable`).
    struct Place: Sendable {
        var bucket: UInt
        var slot: Int

        init(_ bucket: UnsafeMutableRawPointer, _ slot: Int) {
            self.bucket = UInt(bitPattern: bucket)
            self.slot = slot
        }

        var bucketPointer: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: bucket)! }
    }

    /// The live place of `key` in the chain of bucket `index`. Caller holds its lock.
    @inline(__always)
    func locate(_ key: UnsafeRawPointer, hash: UInt64, index: Int) -> Place? {
        firstMatch(key, hash: hash, inChainOf: index).map { Place($0.bucket, $0.slot) }
    }

    /// Writes `key` and `value` into a free slot of the chain of bucket `index`, chaining a
    /// new overflow bucket if every slot is live or retired and `mayGrow` allows it (asked
    /// once, just before; a caller that counts the key only after filling its slot counts it
    /// there, so that a full map's refusal links no bucket it would then keep). The slot is
    /// not yet published. Caller holds the chain's lock. Returns nil when `mayGrow` refused or
    /// no memory is left for an overflow bucket.
    ///
    /// A replacement (`replacing` is the old place) goes into the old place's bucket or a
    /// later one: a reader walks the chain in order, so if it passed the old bucket before
    /// the old slot was retired it found the old pair, and if after, the new pair (published
    /// first) is still ahead of it. A new pair earlier in the chain could be missed by both.
    ///
    /// `spare`, if given, is the overflow bucket to chain instead of allocating one (a
    /// retry after an LRU eviction with no lock held allocates it before it evicts): a fill
    /// with a spare never fails. The caller gives back a spare the fill did not use
    /// (``BucketTable/discardUnlinkedOverflowBucket(_:)``).
    @inline(__always)
    func fillFreeSlot(index: Int, key: UnsafeRawPointer, value: UnsafeRawPointer, replacing: Place?,
                      mayGrow: () -> Bool = { true }, spare: UnsafeMutableRawPointer? = nil) -> Place? {
        let search = searchFreeSlot(index: index, replacing: replacing)
        if search.place == nil, spare == nil, !mayGrow() {
            // Refused growing: generations are still asked for, as `fill` does.
            if search.waiting { table.requestGenerations(through: table.generationsPosted.load(ordering: .relaxed) &+ 1) }
            return nil
        }
        return fill(search, key: key, value: value, spare: spare)
    }

    /// Where a new pair of a chain can go (``searchFreeSlot(index:replacing:)``): a free
    /// slot, or a retired one whose generation has run; else nil, with the chain's last
    /// bucket (where an overflow bucket is linked) and whether retired slots wait for
    /// generations.
    struct SlotSearch {
        var place: Place?
        var last: UnsafeMutableRawPointer
        var waiting: Bool
    }

    /// The search of ``fillFreeSlot(index:key:value:replacing:mayGrow:spare:)``. Caller
    /// holds the chain's lock; what it finds stays free while the lock is held, as long as
    /// no bucket leaves the chain (an LRU eviction from the writer's own chain keeps its
    /// bucket: ``BucketTable/retire(_:chain:keepingEmptyBucket:)``).
    @inline(__always)
    func searchFreeSlot(index: Int, replacing: Place?) -> SlotSearch {
        var bucket = table.bucket(index)
        var reachedOld = replacing == nil
        var waiting = false
        while true {
            if !reachedOld { reachedOld = UInt(bitPattern: bucket) == replacing!.bucket }
            if reachedOld {
                let control = table.loadControl(bucket)
                if let slot = table.firstFreeSlot(control) {
                    return SlotSearch(place: Place(bucket, slot), last: bucket, waiting: waiting)
                }
                // A bucket keeps its retired slots: reuse one whose stamp is a generation
                // old (see BucketTable).
                var retired = table.retiredSlots(control)
                if retired != 0 {
                    let clock = table.reuseClock()
                    repeat {
                        let slot = retired.trailingZeroBitCount
                        if clock.allowsReuse(stamp: BucketTable.tagByte(control, slot)) {
                            return SlotSearch(place: Place(bucket, slot), last: bucket, waiting: waiting)
                        }
                        waiting = true
                        retired &= retired &- 1
                    } while retired != 0
                }
            }
            guard let next = table.overflow(bucket) else { break }
            bucket = next
        }
        return SlotSearch(place: nil, last: bucket, waiting: waiting)
    }

    /// Writes `key` and `value` where `search` found room, or into slot 0 of a new overflow
    /// bucket (`spare`, or allocated) linked after the chain's last bucket; nil when no
    /// memory is left for that bucket. Caller holds the chain's lock taken for the search.
    @inline(__always)
    func fill(_ search: SlotSearch, key: UnsafeRawPointer, value: UnsafeRawPointer,
              spare: UnsafeMutableRawPointer?) -> Place? {
        if let place = search.place {
            table.write(key: key, value: value, into: table.slot(place.bucketPointer, place.slot))
            return place
        }
        // Slots waiting for generations while the chain grows: make sure generations advance
        // (a stamp over 126 generations old reads as a young one until they do).
        if search.waiting { table.requestGenerations(through: table.generationsPosted.load(ordering: .relaxed) &+ 1) }
        let overflow: UnsafeMutableRawPointer
        if let spare {
            overflow = spare
        } else {
            guard let allocated = table.allocateOverflowBucket() else { return nil }
            overflow = allocated
        }
        table.write(key: key, value: value, into: table.slot(overflow, 0))
        // Publishing the link publishes the bucket's contents; the slot's tag is set by the
        // caller. `search.last` is the chain's last bucket.
        table.link(overflow, after: search.last)
        return Place(overflow, 0)
    }

    /// What ``fillEvicting(index:key:value:forUserWrite:announced:)`` did.
    enum EvictingFill {
        /// The pair is written at `place` (not yet published); `leftEmpty` is an overflow
        /// bucket of the chain the victim left with no live slot, for the caller to unlink
        /// once its key is published (``BucketTable/unlinkIfEmpty(_:chain:)``).
        case filled(Place, leftEmpty: UnsafeMutableRawPointer?)
        /// The sweep under the lock found no victim: nothing changed.
        case noVictim
        /// The chain needs an overflow bucket and none can be allocated: nothing evicted.
        case noMemory
    }

    /// Writes a new key's pair into chain `index` of a full LRU map (the caller holds the
    /// chain's lock and found the key absent), evicting an entry while the lock is held
    /// (``evictHolding(_:forUserWrite:announced:)``). The room is found first and
    /// a needed overflow bucket allocated before the eviction, so that a shortage of memory
    /// fails the write with the map unchanged; a victim of this chain leaves its bucket in
    /// the chain, so the room found stays. Inlined into both callers: called, it cost the
    /// general update's in-place writes 9 instructions (register pressure in the locked
    /// pass) and 2.5 % of their wall time.
    ///
    /// `given` is a spare the caller already holds (a retry's, see `update`): used if the
    /// chain needs a bucket, never given back here (the caller gives it back unless it is
    /// the filled place's bucket).
    @inline(__always)
    func fillEvicting(index: Int, key: UnsafeRawPointer, value: UnsafeRawPointer, forUserWrite: Bool,
                      announced: Bool, spare given: UnsafeMutableRawPointer? = nil) -> EvictingFill {
        let search = searchFreeSlot(index: index, replacing: nil)
        var spare: UnsafeMutableRawPointer?
        if search.place == nil {
            if let given {
                spare = given
            } else {
                guard let bucket = table.allocateOverflowBucket() else { return .noMemory }
                spare = bucket
            }
        }
        let eviction = evictHolding(index, forUserWrite: forUserWrite, announced: announced)
        guard eviction.evicted else {
            if let spare, spare != given { table.discardUnlinkedOverflowBucket(spare) }
            return .noVictim
        }
        // With a spare the fill cannot fail.
        return .filled(fill(search, key: key, value: value, spare: spare)!, leftEmpty: eviction.leftEmpty)
    }

    /// Inlinable, so that a caller's choice between the two paths is a test and a call:
    /// called, this function's frame and typed-throws plumbing cost 27 instructions a write.
    @inlinable
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags rawFlags: MapUpdateFlags,
                operation: MapOperationFlags, displaced: UnsafeMutableRawPointer?) throws(MapError) -> Bool {
        if writesWords, operation.isEmpty, !rawFlags.contains(.lock) {
            return try updateInOnePass(key: key, value: value, flags: rawFlags, displaced: displaced)
        }
        return try generalUpdate(key: key, value: value, flags: rawFlags, operation: operation, displaced: displaced)
    }

    /// The update of a map that ``writesWords``. Not inlined, as ``generalUpdate(key:value:flags:operation:displaced:)``:
    /// the choice between the two stays a test and a call (inlined, either path's frame and
    /// spills were paid by both: 36 instructions an LRU update).
    @usableFromInline @inline(never)
    func updateInOnePass(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                         displaced: UnsafeMutableRawPointer?) throws(MapError) -> Bool {
        try writeInOnePass(key: key, value: value, flags: flags, displaced: displaced).replacedOrThrow(flags)
    }

    /// The update of every other case (helper mode, `BPF_F_LOCK`, a lock word, values over
    /// one word, an LRU map, a provider with a pre-deletion callback). Not inlined, so that
    /// the one-pass path keeps a small frame.
    @usableFromInline @inline(never)
    func generalUpdate(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                       operation: MapOperationFlags, displaced: UnsafeMutableRawPointer?) throws(MapError) -> Bool {
        try update(key: key, value: value, flags: flags, operation: operation, displaced: displaced, writing: nil)
            .replacedOrThrow(flags)
    }

    /// Waits if overflow buckets grew past their bound while reclamation was held back
    /// (``ObservableBaseMap/throttleWriterIfBehind()``; see `BucketTable.throttleIfGrowingBehind()`).
    package func throttleWriterIfBehind() { table.throttleIfGrowingBehind() }

    /// `.noExist` update that answers a present key with `false`. Contract:
    /// ``RawMap/insertIfAbsent(key:value:)``.
    public func insertIfAbsent(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(MapError) -> Bool {
        // An LRU map may have to evict, with the lock released and taken again: the general path.
        if tracksRecency { return try evictingInsertIfAbsent(key: key, value: value) }
        // NOEXIST never replaces: the one-pass write serves any value size here.
        return try writeInOnePass(key: key, value: value, flags: .noExist, displaced: nil) != .refused
    }

    /// ``insertIfAbsent(key:value:)`` of an LRU map, which may have to evict. Not inlined, so
    /// that the common insert keeps a small frame.
    ///
    /// One locked pass when the map has room or the hand's next chains yield a victim while
    /// the key's chain stays locked (``evictHolding(_:forUserWrite:announced:)``): the steps
    /// the general update takes for a new key of an LRU map, in its order, without its
    /// machinery for replaces, lock words, per-CPU slices and retries, and without
    /// announcing the evicted unit in flight (two atomic operations on the capacity gate an
    /// insert fewer). When the sweep under the lock finds no victim, the general update
    /// makes room with no lock held and tries again.
    @inline(never)
    private func evictingInsertIfAbsent(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(MapError) -> Bool {
        try access.checkUserWrite(freezeState)
        let (hash, index) = try checkedChain(key: key, value: value, flags: .noExist)
        let write: LeanWrite? = table.withChainLock(index) {
            // No section is held: the freeze is checked under the chain's lock (see ``freeze()``).
            if freezeState.isFrozen { return .frozen }
            if locate(key.baseAddress!, hash: hash, index: index) != nil { return .refused }
            // A unit of room reserved (in flight), or an evicted entry's unit, still counted,
            // handed to this key without touching the gate; neither: the general path.
            let new: Place
            var leftEmpty: UnsafeMutableRawPointer?
            let inFlight = !capacity.hasNoRoom() && capacity.reserveIfRoom()
            if inFlight {
                guard let place = fillFreeSlot(index: index, key: key.baseAddress!, value: value.baseAddress!,
                                               replacing: nil) else {
                    capacity.resolve(published: false)
                    return .noMemory
                }
                new = place
            } else {
                switch fillEvicting(index: index, key: key.baseAddress!, value: value.baseAddress!, forUserWrite: true,
                                    announced: false) {
                case .filled(let place, let emptied):
                    new = place
                    leftEmpty = emptied
                case .noVictim: return nil
                case .noMemory: return .noMemory
                }
            }
            // A new element's lock word starts free, whatever the caller's bytes held there.
            lockWord.clear(in: table.slot(new.bucketPointer, new.slot) + table.valueOffset)
            // Published referenced: a new entry outlives the hand's next pass.
            table.publish(new, tag: BucketTable.tag(hash), referenced: true)
            if inFlight { capacity.resolve(published: true) }
            if let leftEmpty { table.unlinkIfEmpty(leftEmpty, chain: index) }
            return .inserted
        }
        switch write {
        case .inserted:
            table.throttleIfGrowingBehind()
            return true
        case .refused: return false
        case .frozen: throw frozenError
        case .noMemory: throw MapError.noMemory
        case .full, .replaced: preconditionFailure("an LRU insert neither fails for room nor replaces")
        case nil:
            return try update(key: key, value: value, flags: .noExist, operation: [], displaced: nil, writing: nil) != .refused
        }
    }

    /// What a locked pass of ``writeInOnePass(key:value:flags:displaced:)`` did.
    private enum LeanWrite { case inserted, refused, replaced(UInt64), frozen, full, noMemory }

    /// Publishes `key` (absent: the caller holds its chain's lock and looked) with `value`:
    /// the slot is filled first and the key counted after (``CapacityGate/claim()``), when
    /// the publication that follows cannot fail. A slot filled for a key refused as E2BIG
    /// is never published (its tag is never set; a reused retired slot keeps its stamp).
    /// A chain with no slot to fill reserves the key's unit first, and grows only if it got
    /// one: a full map's refusal links no overflow bucket (it stayed linked, empty, until the
    /// map was destroyed), and answers E2BIG before it allocates, as Linux does (not ENOMEM
    /// when memory is short). That unit is in flight until the key is published, or, with
    /// no memory for the bucket, until it goes back: an insert elsewhere that finds the map
    /// full meanwhile waits for it, where a unit counted without being in flight (a claim)
    /// made it answer E2BIG for room that came back a moment later (found by review,
    /// 2026-12-05).
    @inline(__always)
    private func publishAbsent(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, hash: UInt64,
                               index: Int) -> LeanWrite {
        // nil: no slot was needed from a new bucket; else whether a unit was reserved for one.
        var reservedToGrow: Bool?
        guard let new = fillFreeSlot(index: index, key: key.baseAddress!, value: value.baseAddress!, replacing: nil,
                                     mayGrow: {
                                         if case .reserved = capacity.reserve(keyExists: { false }) {
                                             reservedToGrow = true
                                         } else {
                                             reservedToGrow = false
                                         }
                                         return reservedToGrow!
                                     })
        else {
            // No unit (the map is full), or no memory for the bucket: the unit goes back.
            guard reservedToGrow == true else { return .full }
            capacity.resolve(published: false)
            return .noMemory
        }
        if reservedToGrow == nil { guard capacity.claim() else { return .full } }
        // A new element's lock word starts free, whatever the caller's bytes held there.
        lockWord.clear(in: table.slot(new.bucketPointer, new.slot) + table.valueOffset)
        table.publish(new, tag: BucketTable.tag(hash))
        if reservedToGrow == true { capacity.resolve(published: true) }
        return .inserted
    }

    /// A write's checks after the access check, in Linux's order (the key, the value, the
    /// flags), and the key's hash and chain. The chain's first bucket, whose line the write's
    /// lock takes, is fetched while the value and flags are checked (at a million entries it
    /// is almost always a cache miss).
    @inline(__always)
    func checkedChain(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                      flags: MapUpdateFlags) throws(MapError) -> (hash: UInt64, index: Int) {
        try checkKey(key, keySize)
        let hash = hasher.hash(key.baseAddress!, count: keySize)
        let index = table.bucketIndex(hash)
        rcumaps_prefetch_for_write(table.bucket(index))
        try checkValue(value, valueSize)
        try checkFlags(flags)
        return (hash, index)
    }

    /// A user-mode write in one locked pass: exchanges a present key's value word in place,
    /// or publishes an absent key (``publishAbsent(_:_:hash:index:)``); no section (the old
    /// value comes out of the lock as bits), the general update's checks and errors in
    /// Linux's order. The displaced value goes to `displaced` and to the observer after the
    /// lock, as the general path's `.word` outcome does. For the updates of a map that
    /// ``writesWords``, and for `insertIfAbsent` (NOEXIST, which never replaces) of any map
    /// that does not evict.
    @inline(__always)
    private func writeInOnePass(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                                displaced: UnsafeMutableRawPointer?) throws(MapError) -> WriteResult {
        try access.checkUserWrite(freezeState)
        let (hash, index) = try checkedChain(key: key, value: value, flags: flags)
        let write: LeanWrite = table.withChainLock(index) {
            // No section is held: the freeze is checked under the chain's lock (see ``freeze()``).
            if freezeState.isFrozen { return .frozen }
            if let old = locate(key.baseAddress!, hash: hash, index: index) {
                if flags == .noExist { return .refused }
                return .replaced(table.exchangeValue(at: old, with: value.baseAddress!))
            }
            if flags == .exist { return .refused }
            return publishAbsent(key, value, hash: hash, index: index)
        }
        switch write {
        case .inserted:
            // (Only a new key can chain an overflow bucket here.)
            table.throttleIfGrowingBehindAfterInsert()
            return .added
        case .refused: return .refused
        case .replaced(var bits):
            if displaced != nil || observer != nil {
                withUnsafeBytes(of: &bits) { bytes in
                    displaced?.copyMemory(from: bytes.baseAddress!, byteCount: valueSize)
                    observer?.entryWasRemoved(key: key, value: UnsafeRawBufferPointer(rebasing: bytes[..<valueSize]),
                                              flags: .update)
                }
            }
            return .replaced
        case .frozen: throw frozenError
        case .full: throw MapError.mapFull
        case .noMemory: throw MapError.noMemory
        }
    }

    /// The update, writing only the bytes `slice` of `value` over an existing entry's value
    /// (nil: all of it). The per-CPU hash's helper mode writes one CPU's value this way:
    /// under the bucket lock, in place, 8 bytes at a time with atomic stores (the other
    /// CPUs' bytes are not touched, so nothing their threads change in place meanwhile is
    /// undone); a new key takes `value` whole (the caller zeroes the other CPUs' values, as
    /// Linux does).
    ///
    /// Always inlined into its two callers, so that the common update (`slice` nil) is
    /// compiled without the per-CPU slice path.
    @inline(__always)
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags rawFlags: MapUpdateFlags,
                operation: MapOperationFlags, displaced: UnsafeMutableRawPointer?,
                writing slice: Range<Int>?) throws(MapError) -> WriteResult {
        // Linux's order: access (EPERM / EACCES), BPF_F_LOCK without a lock word, the copies
        // of key and value, then the type's flag check.
        let helper = operation.contains(.helper)
        if helper { try access.checkProgramWrite() } else { try access.checkUserWrite(freezeState) }
        let locked = rawFlags.contains(.lock)
        if locked, !lockWord.exists { throw noLockWordError }
        let (hash, index) = try checkedChain(key: key, value: value, flags: rawFlags)
        let flags = rawFlags.withoutLock
        let tag = BucketTable.tag(hash)
        // The section keeps a displaced slot intact until its removal has been reported,
        // after the lock. A write that reports nothing (no observer, no copy of the old
        // value) reads nothing after the lock and holds no section (see "Writes without a
        // section" in the type's notes; an LRU eviction works under each chain's lock).
        // A value replaced in place is copied under the lock; one replaced by a new pair (wider
        // than a word, or a word with a lock word: row 211) is read from its retired slot after
        // the lock, which a section keeps from reuse. (Without a section there, a slot retired
        // by a lock word's plain update could be reused under the copy: found by review,
        // 2026-12-06.)
        let holdsSection = (observer != nil || displaced != nil) && !(table.valueIsOneWord && !lockWord.exists)
        // The section is held from each locked pass to the end, but not while a full LRU
        // map's write evicts (below): that sweep may take up to four laps of chain locks (see
        // `RecencyClock`) and yield between them, and every grace period in the process would wait for it (found by
        // review). A pass that needs room retires nothing, so nothing read after the lock
        // depends on a section held across the eviction.
        // Last, after the section: a write that chained an overflow bucket while retired
        // slots waited for a held-back grace period may wait for reclamation here.
        defer { table.throttleIfGrowingBehind() }
        var inSection = false
        defer { if inSection { Epoch._libraryExit() } }
        // A user-mode write checks the freeze inside its section (see MapFreezeState), or,
        // without one, under the chain's lock (see ``freeze()``); a write whose section was
        // left for an eviction checks it again in its new section.
        let checksFreezeUnderLock = !helper && !holdsSection
        var outcome: Result<Displaced, MapError>
        // An LRU eviction for this write hands it the victim's unit of capacity as its
        // reservation (in flight, as from `reserveIfRoom`); one not used for a new key (the
        // key turned up meanwhile) goes back as a credit. (A flag captured by
        // value, not a variable the closure writes: that cost every update 20 instructions.)
        var evictedUnit = false
        // An overflow bucket allocated before an eviction with no lock held, for the pass
        // that follows: its chain may have no slot to fill by then, and without it a shortage
        // of memory would fail the write after someone was evicted. Given back at the end if
        // no pass chained it (not in a `defer`: that cost every update 10 instructions).
        var spareForRetry: UnsafeMutableRawPointer?
        repeat {
            let holdsEvictedUnit = evictedUnit
            let passSpare = spareForRetry
            if holdsSection, !inSection {
                Epoch._libraryEnter()
                inSection = true
                // A write that evicted for its key goes in: `freeze()` waits for it (see
                // `evictingWriters`).
                if !helper, !holdsEvictedUnit, freezeState.isFrozen {
                    if let passSpare { table.discardUnlinkedOverflowBucket(passSpare) }
                    throw frozenError
                }
            }
            outcome = table.withChainLock(index) {
                // A user write that evicted for its key goes in under this lock, which a
                // `freeze()` waiting for it takes next: it stops counting in `evictingWriters`.
                if _slowPath(holdsEvictedUnit), !helper { evictingWriters.wrappingSubtract(1, ordering: .releasing) }
                if checksFreezeUnderLock, !holdsEvictedUnit, freezeState.isFrozen { return .failure(frozenError) }
                let old = locate(key.baseAddress!, hash: hash, index: index)
                // A new key's pair written by an eviction under this lock, and a bucket of
                // this chain its victim left empty (see ``fillEvicting(index:key:value:forUserWrite:announced:)``).
                var evictedFor: Place?
                var leftEmpty: UnsafeMutableRawPointer?
                if let old {
                    if flags == .noExist { return .success(.refused) }
                    // An LRU map's write in place is a use, as a lookup is: the entry survives
                    // the eviction hand's next pass. (A new slot is published referenced;
                    // Linux installs a new node, or, for a per-CPU LRU's value written in
                    // place, sets the node's reference bit.)
                    if tracksRecency, table.valueIsOneWord || locked || slice != nil {
                        markWritten(old.bucketPointer, slot: old.slot)
                    }
                    // In place only without a lock word, or under it (`BPF_F_LOCK`): a plain
                    // write of a value with a lock word installs a new pair, as Linux's
                    // `htab_map_update_elem` does and the lock-free hash does, so a program
                    // holding the old value's lock finishes its critical section on the old
                    // value. (In place, without the lock, it was lost under that section's
                    // store, or counted twice with `exchange`: found by review, 2026-12-06.)
                    if table.valueIsOneWord, locked || !lockWord.exists || slice != nil {
                        // One atomic word: replace it in place, no new slot, nothing to reclaim (a
                        // lock word in it keeps its bits).
                        _ = advanceObserver?.entryWillBeRemoved(key: key, value: table.value(of: old, count: valueSize),
                                                         flags: operation.union(.update))
                        let stored = table.slot(old.bucketPointer, old.slot) + table.valueOffset
                        if locked {
                            var bits: UInt64 = 0
                            MapValueLock.withLock(UnsafeMutableRawBufferPointer(start: stored, count: valueSize),
                                                  offset: lockWord.offset) {
                                bits = table.exchangeValue(at: old, with: value.baseAddress!, keeping: lockWord.lockBits)
                            }
                            return .success(.word(bits))
                        }
                        let keeping = lockWord.lockBits | (slice.map(BucketTable.bitsOutside) ?? 0)
                        return .success(.word(table.exchangeValue(at: old, with: value.baseAddress!, keeping: keeping)))
                    }
                    if locked {
                        // BPF_F_LOCK on an existing element: written in place under its lock word,
                        // as Linux does (readers without the lock may see it half written).
                        let stored = table.slot(old.bucketPointer, old.slot) + table.valueOffset
                        MapValueLock.withLock(UnsafeMutableRawBufferPointer(start: stored, count: valueSize),
                                              offset: lockWord.offset) {
                            displaced?.copyMemory(from: stored, byteCount: valueSize)
                            lockWord.copy(value.baseAddress!, over: stored)
                        }
                        return .success(.inPlace)
                    }
                    if let slice {
                        // One CPU's value of a per-CPU hash (helper mode): written in place,
                        // 8 bytes at a time with atomic stores; the padding after the value
                        // keeps its bytes, as Linux's `pcpu_copy_value` copies `value_size`
                        // bytes for one CPU. A new pair that copied the other CPUs' values
                        // would lose what their threads add in place meanwhile (atomically,
                        // through `lookupInPlace`) to the pair it retires.
                        // `stored + offset` is byte `offset` of the all-CPU value: in the slot,
                        // or, with per-CPU values, in the one CPU's value the slice covers.
                        let slot = table.slot(old.bucketPointer, old.slot)
                        let start = slice.lowerBound, end = Swift.min((slice.upperBound + 7) & ~7, (valueSize + 7) & ~7)
                        var stored = slot + table.valueOffset
                        if table.valueCopy == .perCPUCells {
                            let cpu = start / table.cellWidth
                            precondition(slice.upperBound <= (cpu + 1) * table.cellWidth, "a slice of one CPU's value")
                            stored = table.cellBytes(of: slot, cpu: cpu)
                        }
                        precondition(start & 7 == 0 && Int(bitPattern: stored) & 7 == 0,
                                     "a per-CPU value starts on an 8-byte boundary")
                        var offset = start
                        while offset < end {
                            let word = (stored + offset).assumingMemoryBound(to: Atomic<UInt64>.self)
                            var incoming = (value.baseAddress! + offset).loadUnaligned(as: UInt64.self)
                            let valueBytes = slice.upperBound &- offset
                            if valueBytes < 8 {
                                // The last word: its bytes past the value (in memory) are
                                // padding, kept as they are.
                                let padding = ~WordBytes.mask(0..<valueBytes)
                                incoming = incoming & ~padding | word.pointee.load(ordering: .relaxed) & padding
                            }
                            word.pointee.store(incoming, ordering: .relaxed)
                            offset &+= 8
                        }
                        return .success(.inPlace)
                    }
                } else {
                    if flags == .exist { return .success(.refused) }
                    // The key is absent and stays so while we hold its bucket's lock.
                    if tracksRecency {
                        // Full: evict while holding this lock if the hand's next chains are
                        // free, else with this lock released (below), then look again. With
                        // an evicted unit, this insert's reservation is that unit.
                        if _fastPath(!holdsEvictedUnit), !capacity.reserveIfRoom() {
                            switch fillEvicting(index: index, key: key.baseAddress!, value: value.baseAddress!,
                                                forUserWrite: checksFreezeUnderLock, announced: true, spare: passSpare) {
                            case .filled(let place, let emptied):
                                evictedFor = place
                                leftEmpty = emptied
                            case .noVictim: return .success(.needsRoom)
                            case .noMemory: return .failure(.noMemory)
                            }
                        }
                    } else {
                        guard case .reserved = capacity.reserve(keyExists: { false }) else { return .failure(.mapFull) }
                    }
                }
                let new: Place
                if let evictedFor {
                    new = evictedFor
                    // A retry's spare (the eviction with no lock held found no victim, this
                    // one did): chained, or given back; the caller forgets it.
                    if let passSpare, evictedFor.bucketPointer != passSpare { table.discardUnlinkedOverflowBucket(passSpare) }
                } else {
                    // After an eviction with no lock held, the fill takes the spare allocated
                    // before it (a fill with a spare cannot fail), or gives it back; the
                    // caller forgets it. A replace may take it too (the key turned up
                    // meanwhile, and its bucket is full): a bucket linked at the chain's end
                    // is a later bucket than the old pair's, as a replace needs.
                    let spare = passSpare
                    guard let filled = fillFreeSlot(index: index, key: key.baseAddress!, value: value.baseAddress!,
                                                    replacing: old, spare: spare) else {
                        // The reservation (a new key's, or an evicted unit this replace does not
                        // need) goes back; `usedTheReservation` counts ENOMEM as resolved here.
                        if old == nil || holdsEvictedUnit { capacity.resolve(published: false) }
                        return .failure(.noMemory)
                    }
                    if let spare, filled.bucketPointer != spare { table.discardUnlinkedOverflowBucket(spare) }
                    new = filled
                }
                // A new element's lock word starts free, whatever the caller's bytes held there.
                lockWord.clear(in: table.slot(new.bucketPointer, new.slot) + table.valueOffset)
                if let old {
                    // Deprecated-style providers hear of the displacement under the lock.
                    _ = advanceObserver?.entryWillBeRemoved(key: key, value: table.value(of: old, count: valueSize),
                                                     flags: operation.union(.update))
                }
                // New pair first, old one second: a reader sees one or the other, or both for
                // an instant (both hold whole values), never neither.
                table.publish(new, tag: tag, referenced: tracksRecency)
                guard let old else {
                    capacity.resolve(published: true)
                    if let leftEmpty { table.unlinkIfEmpty(leftEmpty, chain: index) }
                    return .success(.nothing)
                }
                table.retire(old, chain: index)
                return .success(.slot(old))
            }
            // The evicted unit went into a new key's slot (published, or resolved after a
            // failed allocation) or it goes back now.
            if _slowPath(holdsEvictedUnit), !Self.usedTheReservation(outcome) { capacity.resolve(published: false) }
            // A pair was filled (a new key, or a replace by a new slot): the pass chained
            // the retry's spare or gave it back.
            if _slowPath(passSpare != nil) {
                switch outcome {
                case .success(.nothing), .success(.slot): spareForRetry = nil
                default: break
                }
            }
            // A full LRU map: evict with no lock held and no section, then try again. (A user
            // write's sweep checks the freeze under each victim chain's lock.)
            guard case .success(.needsRoom) = outcome else { break }
            if inSection {
                Epoch._libraryExit()
                inSection = false
            }
            // Counted from before it looks at the flag and evicts until its next pass holds
            // its chain's lock, or until it evicted no one (see `evictingWriters`).
            if !helper {
                evictingWriters.wrappingAdd(1, ordering: .sequentiallyConsistent)
                atomicMemoryFence(ordering: .sequentiallyConsistent)
            }
            if spareForRetry == nil {
                // A user write to a map frozen meanwhile answers EPERM (its sweep under the
                // lock stopped at the freeze), not ENOMEM from this allocation.
                if !helper, freezeState.isFrozen {
                    evictingWriters.wrappingSubtract(1, ordering: .releasing)
                    throw frozenError
                }
                guard let bucket = table.allocateOverflowBucket() else {
                    if !helper { evictingWriters.wrappingSubtract(1, ordering: .releasing) }
                    throw MapError.noMemory
                }
                spareForRetry = bucket
            }
            evictedUnit = evictLeastRecentlyUsed(forUserWrite: !helper)
            if !helper, !evictedUnit { evictingWriters.wrappingSubtract(1, ordering: .releasing) }
        } while true
        if _slowPath(spareForRetry != nil) { table.discardUnlinkedOverflowBucket(spareForRetry!) }
        switch try outcome.get() {
        case .needsRoom:
            preconditionFailure("an update that needs room evicts and tries again")
        case .refused:
            return .refused
        case .nothing:
            return .added
        case .inPlace:
            if let displaced { lockWord.clear(in: displaced) }
            return .replaced
        case .word(var bits):
            withUnsafeBytes(of: &bits) { bytes in
                if let displaced {
                    displaced.copyMemory(from: bytes.baseAddress!, byteCount: valueSize)
                    lockWord.clear(in: displaced)
                }
                observer?.entryWasRemoved(key: key, value: UnsafeRawBufferPointer(rebasing: bytes[..<valueSize]),
                                          flags: operation.union(.update))
            }
            return .replaced
        case .slot(let old):
            #if DEBUG
            afterReplacingByANewPair?()
            #endif
            // The retired slot is intact until a grace period after this section.
            let oldValue = table.value(of: old, count: valueSize)
            if let displaced {
                if lockWord.exists {
                    // Under the value's lock, as the lock-free hash copies it: a program's
                    // locked write in place that found the old pair ends before the copy, not
                    // half in it (copied without, the displaced value could hold half of
                    // that write: found by review, 2026-12-06, twenty-fifth session).
                    lockWord.copyLocked(UnsafeMutableRawPointer(mutating: oldValue.baseAddress!), to: displaced)
                } else {
                    table.copyValue(from: table.slot(old.bucketPointer, old.slot), into: displaced)
                    lockWord.clear(in: displaced)
                }
            }
            #if DEBUG
            afterCopyingTheDisplacedValue?()
            #endif
            // The provider hears of the value the caller gets back, when one is copied (a
            // helper-mode write in place between two reads made them differ; custom maps have
            // no lock word, so the copy differs from the slot in nothing else).
            let reported = displaced.map { UnsafeRawBufferPointer(start: $0, count: valueSize) } ?? oldValue
            observer?.entryWasRemoved(key: key, value: reported, flags: operation.union(.update))
            return .replaced
        }
    }

    /// Whether a locked pass that held an evicted unit used it: it inserted a new key
    /// (`.nothing`) or resolved it after failing to allocate a slot (ENOMEM, also for a key
    /// that turned up meanwhile). Every other outcome leaves it unused: a present key
    /// replaced, `NOEXIST` on a present key, `EXIST` on an absent one, a freeze.
    static func usedTheReservation(_ outcome: Result<Displaced, MapError>) -> Bool {
        switch outcome {
        case .success(.nothing): true
        case .failure(let error): error.code == MapError.noMemory.code
        default: false
        }
    }

    /// What an update displaced: nothing (a new key), a one-word value replaced in place,
    /// or a retired slot (intact until the reclaim after the next grace period); or that it
    /// was refused (`NOEXIST` on a present key, `EXIST` on an absent one: nothing changed).
    enum Displaced: Sendable {
        case refused
        case nothing
        /// Written in place under the value's lock word (`BPF_F_LOCK`).
        case inPlace
        case word(UInt64)
        case slot(Place)
        /// An LRU map is full: evict, then try again (nothing was changed).
        case needsRoom
    }

    @usableFromInline
    func delete(key: UnsafeRawBufferPointer, operation: MapOperationFlags) throws(MapError) {
        let helper = operation.contains(.helper)
        if helper { try access.checkProgramWrite() } else { try access.checkUserWrite(freezeState) }
        try checkKey(key, keySize)
        if try !remove(key, operation: operation, checkingFreeze: !helper, readsRemovedValue: false, removed: { _ in }) {
            throw MapError.keyNotFound
        }
    }

    /// Delete that answers an absent key with `false`. Contract: ``RawMap/deleteIfPresent(key:)``.
    public func deleteIfPresent(key: UnsafeRawBufferPointer) throws(MapError) -> Bool {
        try access.checkUserWrite(freezeState)
        try checkKey(key, keySize)
        return try remove(key, operation: [], checkingFreeze: true, readsRemovedValue: false, removed: { _ in })
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
        // A provider's base; a per-CPU hash's table (never one) has no inline value to inspect.
        precondition(table.valueCopy != .perCPUCells, "remove(inspecting:) on a per-CPU hash's table")
        try checkKey(key, keySize)
        if try !remove(key, operation: [], inspect: inspect, removed: removed) { throw MapError.keyNotFound }
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
        return try remove(key, operation: [], checkingFreeze: true) { removed in
            // Only we removed it: `removed` is the retired slot's value, not reused before
            // our section ends, or a copy of a one-word value taken under the lock. With a
            // lock word it is copied under the value's lock also without `BPF_F_LOCK`, as the
            // lock-free hash copies it, so that a program's locked write in place ends
            // before the copy (found by review, 2026-12-06, twenty-fifth session).
            if locked || lockWord.exists {
                lockWord.copyLocked(UnsafeMutableRawPointer(mutating: removed.baseAddress!), to: value.baseAddress!)
            } else {
                // (`valueSize` bytes: the per-CPU hash's table stores a word per slot.)
                value.baseAddress!.copyMemory(from: removed.baseAddress!, byteCount: valueSize)
                lockWord.clear(in: value.baseAddress!)
            }
        }
    }

    /// Unlinks `key` under its bucket's lock (after `inspect` accepted it and the provider
    /// did not refuse), then hands its value to `removed` (the retired slot's, read inside
    /// an epoch section, or a one-word copy taken under the lock), reports the removal and
    /// schedules the slot's reclamation.
    ///
    /// `readsRemovedValue: false` promises that `removed` ignores the value: with no
    /// observer either, nothing reads the slot after the lock and the removal holds no
    /// section (see "Writes without a section" in the type's notes).
    ///
    /// Always inlined into its four callers, so that each gets its own closures and flags
    /// folded in: called, the common delete ran both closures as indirect calls and kept
    /// the section and observer paths (about 40 instructions a delete).
    @inline(__always)
    func remove(_ key: UnsafeRawBufferPointer, operation: MapOperationFlags, checkingFreeze: Bool = false,
                readsRemovedValue: Bool = true,
                inspect: (UnsafeRawBufferPointer) throws(MapError) -> Void = { _ in },
                removed: (UnsafeRawBufferPointer) -> Void) throws(MapError) -> Bool {
        let hash = hasher.hash(key.baseAddress!, count: keySize)
        let index = table.bucketIndex(hash)
        rcumaps_prefetch_for_write(table.bucket(index))
        // A one-word value (without a lock word, which a helper-mode holder may still hold
        // in the slot) is copied under the lock and handed on from the copy: the slot is
        // not read after the lock, and no section is needed for it either.
        let copiesWord = table.valueIsOneWord && !lockWord.exists
        let reportsValue = readsRemovedValue || observer != nil
        let holdsSection = reportsValue && !copiesWord
        if holdsSection { Epoch._libraryEnter() }
        defer { if holdsSection { Epoch._libraryExit() } }
        // A user-mode write checks the freeze inside its section (see MapFreezeState), or,
        // without one, under the chain's lock (see ``freeze()``).
        if checkingFreeze, holdsSection, freezeState.isFrozen { throw frozenError }
        let checksFreezeUnderLock = checkingFreeze && !holdsSection
        let outcome: Result<(Place, UInt64)?, MapError> = table.withChainLock(index) {
            if checksFreezeUnderLock, freezeState.isFrozen { return .failure(frozenError) }
            guard let place = locate(key.baseAddress!, hash: hash, index: index) else { return .success(nil) }
            let value = table.value(of: place, count: valueSize)
            do throws(MapError) {
                try inspect(value)
            } catch {
                return .failure(error)
            }
            if let refusal = advanceObserver?.entryWillBeRemoved(key: key, value: value, flags: operation) {
                return .failure(refusal)
            }
            capacity.beginRemoval()
            // The one-word copy is read after the unlink: an in-place write (helper mode
            // takes no lock) that found the entry before it is in the value handed on, not
            // lost with the slot (read before it, an add in between was lost; found by
            // review, 2026-12-06). An overflow bucket the unlink empties stays in the chain
            // until the read: without a section, it could be freed once it left.
            #if DEBUG
            beforeRemovalUnlinks?()
            #endif
            var word: UInt64 = 0
            if copiesWord && reportsValue {
                word = retireReadingWord(place, chain: index)
            } else {
                table.retire(place, chain: index)
            }
            capacity.endRemoval(removed: true)
            return .success((place, word))
        }
        guard let (place, word) = try outcome.get() else { return false }
        if holdsSection, table.valueCopy == .perCPUCells {
            // Per-CPU values, gathered out of the retired slot's per-CPU memory for the caller
            // (no provider observes a per-CPU hash).
            withUnsafeTemporaryAllocation(byteCount: valueSize, alignment: 8) { copy in
                table.gatherCells(of: table.slot(place.bucketPointer, place.slot), into: copy.baseAddress!)
                removed(UnsafeRawBufferPointer(copy))
                #if DEBUG
                afterCopyingTheRemovedValue?()
                #endif
            }
        } else if holdsSection {
            // One copy for the caller and the observer (`reportRemovedValue`).
            reportRemovedValue(table.value(of: place, count: valueSize), key: key, flags: operation, observer: observer,
                               removed: removed) {
                #if DEBUG
                afterCopyingTheRemovedValue?()
                #endif
            }
        } else if reportsValue {
            var bits = word
            withUnsafeBytes(of: &bits) { bytes in
                let value = UnsafeRawBufferPointer(rebasing: bytes[..<valueSize])
                removed(value)
                observer?.entryWasRemoved(key: key, value: value, flags: operation)
            }
        }
        return true
    }

    /// Unlinks and retires `place` (``BucketTable/retire(_:chain:keepingEmptyBucket:)``)
    /// and returns its one-word value as it was at the unlink, for a removal that reports
    /// the value and holds no section (see `remove`): an overflow bucket the unlink empties
    /// stays in the chain until the word is read, then leaves it. Caller holds chain
    /// `index`'s lock. Not inlined: a second inlined `retire` in `remove` cost the plain
    /// delete, which reads nothing, 15 instructions of spills.
    @inline(never)
    func retireReadingWord(_ place: Place, chain index: Int) -> UInt64 {
        let keptEmpty = table.retire(place, chain: index, keepingEmptyBucket: true)
        let word = table.valueWord(table.slot(place.bucketPointer, place.slot)).pointee.load(ordering: .acquiring)
        if keptEmpty { table.unlinkIfEmpty(place.bucketPointer, chain: index) }
        return word
    }

    // MARK: Iteration

    /// The smallest live key (by bytes) in the chain of bucket `index` that is greater
    /// than `bound` (any key when `bound` is nil). Caller holds an epoch.
    func smallestKey(inChainOf index: Int, after bound: UnsafeRawPointer?) -> UnsafeRawPointer? {
        var best: UnsafeRawPointer?
        table.forEachBucket(inChainOf: index) { bucket in
            let control = table.loadControl(bucket)
            for slot in 0..<table.slotsPerBucket where BucketTable.isLive(control, slot) {
                let key = UnsafeRawPointer(table.slot(bucket, slot))
                if let bound, memcmp(key, bound, keySize) <= 0 { continue }
                if let current = best, memcmp(key, current, keySize) >= 0 { continue }
                best = key
            }
        }
        return best
    }

    /// Get-next-key iteration. Contract: ``RawMap/nextKey(after:into:)``.
    ///
    /// Order: (bucket index, key bytes). A cursor no longer in the map resumes after its
    /// place; if nothing follows it, the pass ends (ENOENT) when the cursor was deleted
    /// within the last grace period or so (a retired slot of its chain still holds it:
    /// deleted during this pass) and no writer holds that chain's lock just then (it is
    /// tried, not waited for: a provider callback may hold it), and otherwise restarts at
    /// the first key, as Linux does for
    /// a key that is not in the map. A key deleted from an overflow bucket that then emptied
    /// restarts (the bucket left the chain with its slots). A retired slot's age is a 7-bit
    /// stamp: one whose chain no write has touched since reads as recent again for one
    /// generation in 127, and a cursor deleted long ago from it ends the pass then instead of
    /// restarting — as does, in that generation, a key never stored whose one-pass insert
    /// into the full map was refused E2BIG after filling a retired slot it did not publish
    /// (found by review, 2026-12-05; counting the key before filling would cost the common
    /// insert a test, so it is documented).
    public func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try self.nextKey(after: key, into: nextKey, restartingForUnknownCursor: true)
    }

    /// Get-next-key that never restarts a pass. Contract: ``RawMap/nextKeyInPass(after:into:)``.
    public func nextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try self.nextKey(after: key, into: nextKey, restartingForUnknownCursor: false)
    }

    func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer,
                 restartingForUnknownCursor: Bool) throws(MapError) {
        try access.checkUserRead()
        if let key { try checkKey(key, keySize) }
        guard nextKey.count == keySize, nextKey.baseAddress != nil else {
            throw MapError.invalidArgument.with(reason: "key buffer is \(nextKey.count) bytes, map keys are \(keySize)")
        }
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        // Resume strictly after the cursor's place, whether or not the cursor key is still
        // in the map.
        var index = 0
        var cursorChain: Int?
        if let key {
            index = table.bucketIndex(hasher.hash(key.baseAddress!, count: keySize))
            cursorChain = index
            if let found = smallestKey(inChainOf: index, after: key.baseAddress!) {
                nextKey.baseAddress!.copyMemory(from: found, byteCount: keySize)
                return
            }
            index += 1
        }
        if let found = firstKey(fromChain: index) {
            nextKey.baseAddress!.copyMemory(from: found, byteCount: keySize)
            return
        }
        // Nothing follows the cursor's place.
        if let key, let chain = cursorChain, restartingForUnknownCursor,
           locate(key.baseAddress!, hash: hasher.hash(key.baseAddress!, count: keySize), index: chain) == nil,
           !table.recentlyRetired(key.baseAddress!, inChainOf: chain),
           let first = firstKey(fromChain: 0) {
            nextKey.baseAddress!.copyMemory(from: first, byteCount: keySize)
            return
        }
        throw MapError.keyNotFound
    }

    /// The first live key of the chains from `index` on. Caller holds an epoch.
    func firstKey(fromChain index: Int) -> UnsafeRawPointer? {
        var index = index
        while index < table.bucketCount {
            if let found = smallestKey(inChainOf: index, after: nil) { return found }
            index += 1
        }
        return nil
    }

    // MARK: Freezing

    /// Whether the map is frozen. Any thread.
    public var isFrozen: Bool { freezeState.isFrozen }

    /// Freezes the map. Contract: ``RawMap/freeze()``.
    ///
    /// Writes that hold a section checked the flag inside it, and the freeze waits for a
    /// grace period; writes without one (see the type's notes) check it under their
    /// chain's lock, so the freeze then takes and releases every chain's lock once: a
    /// write that saw the map unfrozen has finished with that lock. Before that, it waits
    /// for the LRU writes that evicted for their key with no lock held (`evictingWriters`).
    @available(*, noasync, message: "waits for a grace period: call it from a thread of your own, or use `await map.freezeAsync()`")
    public func freeze() throws(MapError) {
        try freezeState.freeze(access: access, lockWord: lockWord.exists) {
            // User writes that evicted for their key before the flag was set go in first (see
            // `evictingWriters`). None waits for this thread: it holds no lock and no section.
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            while evictingWriters.load(ordering: .sequentiallyConsistent) > 0 { sched_yield() }
            for index in 0..<table.bucketCount { table.withChainLock(index) {} }
        }
    }

    // MARK: Batches

    /// `BPF_MAP_LOOKUP_BATCH`, as Linux's hash maps do it: the cursor is a chain (bucket)
    /// index, and whole chains are copied — a chain that does not fit in what is left of
    /// `count` ends the call there (ENOSPC if it is the first). `flags` must be 0.
    /// Contract: ``RawMap/lookupBatch(from:keys:values:count:elementFlags:flags:)``.
    public func lookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                            values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try chainBatch(from: cursor, keys: keys, values: values, count: count, elementFlags: elementFlags,
                       flags: flags, removing: false)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`: as ``lookupBatch(from:keys:values:count:elementFlags:flags:)``,
    /// removing each whole chain under its lock, so that of concurrent passes exactly one
    /// returns each element.
    public func lookupAndDeleteBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                                     values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                                     flags: UInt64) throws(MapError) -> MapBatchResult {
        try chainBatch(from: cursor, keys: keys, values: values, count: count, elementFlags: elementFlags,
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

    func chainBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
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
        var chain = 0
        if let cursor {
            guard let index = cursor.index else {
                throw MapError.invalidArgument.with(reason: "the batch cursor is not one of this map's (\(cursor.byteCount) bytes)")
            }
            chain = Int(index)
        }
        guard chain < table.bucketCount else { return MapBatchResult(count: 0, cursor: cursor, error: .keyNotFound) }
        let locked = elementFlags.contains(.lock)
        var total = 0
        var outcome: MapError?
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        if removing, freezeState.isFrozen { throw frozenError }
        while true {
            let room = count - total
            let copied: Int? = removing
                ? takeChain(chain, keys: keys, values: values, at: total, room: room, locked: locked)
                : copyChain(chain, keys: keys, values: values, at: total, room: room, locked: locked)
            guard let copied else {
                // The chain does not fit: stop before it (ENOSPC if nothing was copied).
                if total == 0 { outcome = .noSpace }
                break
            }
            total += copied
            chain += 1
            if chain >= table.bucketCount {
                outcome = .keyNotFound
                break
            }
            if total == count {
                // Full: the next call starts at this chain (ENOENT now if the rest is empty).
                if firstKey(fromChain: chain) == nil {
                    chain = table.bucketCount
                    outcome = .keyNotFound
                }
                break
            }
        }
        var result = MapBatchResult(count: total, cursor: MapBatchCursor(index: UInt32(chain)), error: outcome)
        result.needsLargerBuffers = outcome == .noSpace
        return result
    }

    /// Copies the live entries of chain `index` to element `at` of the buffers, if they fit
    /// in `room` elements; nil if they do not (nothing copied). Caller holds an epoch.
    ///
    /// Under the chain's lock, as Linux's batches copy each bucket under its lock: read
    /// without it, a chain can show a key twice or not at all — a replace of a value over
    /// 8 bytes (or of one with a lock word) publishes the new pair (in the old pair's bucket or a later one) before it
    /// retires the old one, and a pass reading the buckets one after the other can see both
    /// pairs, or neither. So a batch returns each key present for the whole pass once.
    ///
    /// A chain that is one bucket with no live slot is passed over without the lock: no key
    /// was in it when its two words were read (a replace publishes before it retires, so a
    /// key being replaced always shows), and a key that stays in the map stays in its chain.
    func copyChain(_ index: Int, keys: UnsafeMutableRawBufferPointer, values: UnsafeMutableRawBufferPointer,
                   at start: Int, room: Int, locked: Bool) -> Int? {
        if table.isEmptySingleBucketChain(index) { return 0 }
        return table.withChainLock(index) { () -> Int? in
            // Counted first, so that a chain that does not fit leaves the buffers untouched
            // past what the batch returns (as Linux, which copies a bucket out only whole).
            var live = 0
            var counting: UnsafeMutableRawPointer? = table.bucket(index)
            while let bucket = counting {
                live &+= (table.loadControl(bucket) & table.liveTagBits).nonzeroBitCount
                counting = table.overflow(bucket)
            }
            guard live <= room else { return nil }
            var copied = 0
            var current: UnsafeMutableRawPointer? = table.bucket(index)
            while let bucket = current {
                // One bit (0x80) per live slot's tag byte; lowest slot first.
                var live = table.loadControl(bucket) & table.liveTagBits
                while live != 0 {
                    let slot = live.trailingZeroBitCount &>> 3
                    live &= live &- 1
                    copyEntry(table.slot(bucket, slot), to: start &+ copied, keys: keys, values: values, locked: locked)
                    copied &+= 1
                }
                current = table.overflow(bucket)
            }
            return copied
        }
    }

    /// Copies and removes the live entries of chain `index`, under its lock, if they fit in
    /// `room` elements; nil if they do not (nothing removed). Caller holds an epoch. An
    /// empty one-bucket chain is passed over without the lock (see ``copyChain(_:keys:values:at:room:locked:)``).
    func takeChain(_ index: Int, keys: UnsafeMutableRawBufferPointer, values: UnsafeMutableRawBufferPointer,
                   at start: Int, room: Int, locked: Bool) -> Int? {
        if table.isEmptySingleBucketChain(index) { return 0 }
        let taken: Int? = table.withChainLock(index) {
            var places: [Place] = []
            table.forEachBucket(inChainOf: index) { bucket in
                let control = table.loadControl(bucket)
                for slot in 0..<table.slotsPerBucket where BucketTable.isLive(control, slot) {
                    places.append(Place(bucket, slot))
                }
            }
            guard places.count <= room else { return nil }
            for (offset, place) in places.enumerated() {
                capacity.beginRemoval()
                #if DEBUG
                beforeRemovalUnlinks?()
                #endif
                table.retire(place, chain: index)
                // Copied after the unlink, as a single removal's value (see `remove`): an
                // in-place write that found the entry before it is in the copy. The caller's
                // section keeps the slot, and a bucket the unlink took out of the chain, readable.
                // Under the value's lock when it has a lock word, also without `BPF_F_LOCK`, as
                // a single lookup-and-delete (row 250; found by review of that fix, 2026-12-06):
                // the chain's lock, then the value's, the order every locked copy takes.
                copyEntry(table.slot(place.bucketPointer, place.slot), to: start + offset, keys: keys, values: values,
                          locked: locked || lockWord.exists)
                capacity.endRemoval(removed: true)
            }
            return places.count
        }
        return taken
    }

    /// Copies one entry (key and value; the value's lock word cleared) to element `element`.
    @inline(__always)
    func copyEntry(_ entry: UnsafeMutableRawPointer, to element: Int, keys: UnsafeMutableRawBufferPointer,
                   values: UnsafeMutableRawBufferPointer, locked: Bool) {
        let key = keys.baseAddress.unsafelyUnwrapped + element &* keySize
        if keySize == 4 {
            key.storeBytes(of: entry.load(as: UInt32.self), as: UInt32.self)
        } else if keySize == 8 {
            key.storeBytes(of: entry.load(as: UInt64.self), as: UInt64.self)
        } else {
            key.copyMemory(from: entry, byteCount: keySize)
        }
        let value = values.baseAddress.unsafelyUnwrapped + element &* valueSize
        if locked {
            lockWord.copyLocked(entry + table.valueOffset, to: value)
        } else {
            table.copyValue(from: entry, into: value)
            lockWord.clear(in: value)
        }
    }
}

extension UInt {
    @inline(__always)
    var rawPointer: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: self) }
}
