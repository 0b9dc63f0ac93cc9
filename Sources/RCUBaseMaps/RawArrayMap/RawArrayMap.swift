import CRCUMapsShim
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An `ARRAY` map: `maxEntries` preallocated, zero-initialised values indexed by a
/// `UInt32` key, in one cache-aligned block (pages that prefer the requested NUMA node when the
/// machine has several).
///
/// Semantics follow Linux: every index always has a value, so ``count`` is `maxEntries`;
/// delete is EINVAL; lookup past the end is ENOENT; update past the end is E2BIG;
/// `.noExist` is EEXIST; lookup-and-delete, and the lookup-and-delete and delete batches,
/// are ENOTSUPP (524).
///
/// Torn values: a value of at most 8 bytes is one atomic word. A larger value slot has a
/// sequence counter in front (a seqlock): writers of one slot exclude each other through
/// it, readers copy the value word by word with atomic loads and retry if a writer
/// overlapped — readers take no lock and block no writer, except that a reader whose copy
/// writers of its slot spoiled 16 times in a row copies once more holding the slot, which
/// holds that slot's writers off for one copy (so a writer rewriting one slot back to back
/// cannot starve its readers; a reader waits while the counter is odd, which costs no
/// try). Writes through helper-mode pointers (``lookupInPlace(key:in:)``) go straight to
/// memory, as in eBPF, and bypass the counter; helper-mode updates take it as user-mode
/// ones do. A `BPF_F_LOCK` lookup holds the value's lock and reads the counter too. A `BPF_F_MMAPABLE` array has
/// Linux's mmap layout instead — values `round_up(valueSize, 8)` apart with nothing in
/// between, in page-aligned memory (``mapStorage(writable:)``) — so, as on Linux, a
/// user-mode read of a value over 8 bytes can see a concurrent write half done.
///
/// Signal handlers: a reader of a sequenced value waits while a writer of its slot is in
/// the middle of its write, and a `BPF_F_LOCK` lookup waits for the value's lock. A signal
/// handler that interrupted such a write (or a holder of the lock) on its own thread would
/// wait for it for ever: a handler may read values of at most 8 bytes, and mapped values,
/// but must not read a larger value of a slot its thread may be writing, nor take a lock
/// word, nor write (as for QUEUE and STACK).
///
/// Concurrency: any number of readers and writers on any threads.
public final class RawArrayMap: ObservableBaseMap, FlaggedWrites, @unchecked Sendable {
    // @unchecked Sendable: `storage` is allocated once and only accessed through atomics
    // (user mode) or as borrowed memory (helper mode, caller's responsibility).

    /// The definition the map was created with. Immutable; any thread.
    public let definition: MapDefinition
    @usableFromInline let valueSize: Int
    @usableFromInline let maxEntries: Int
    /// Value bytes padded to 8 (Linux's `round_up(value_size, 8)`).
    let paddedValueSize: Int
    /// Bytes per slot: the padded value, plus an 8-byte sequence word when the value
    /// exceeds 8 bytes.
    @usableFromInline let slotStride: Int
    /// Offset of the value within a slot (0 or 8).
    @usableFromInline let valueOffset: Int
    let storageSize: Int
    /// Invariant: `storageSize` bytes, 64-byte aligned (page-aligned for `.pages`), bound to
    /// `Atomic<UInt64>`, all zero at creation.
    @usableFromInline let storage: UnsafeMutableRawPointer
    /// The provider layer's hooks, if this map is the base of a custom map. With hooks,
    /// every slot has a sequence word (writers need exclusion to see the displaced value).
    let observer: (any MapEntryObserver)?
    /// Set once the initialiser's last check passed (``deinit`` then tells the observer).
    private var created = false
    /// `observer` if it wants to hear of removals in advance (``MapEntryObserver/wantsAdvanceNotice``),
    /// else nil: a write does not make a call that does nothing.
    let advanceObserver: (any MapEntryObserver)?
    /// What user and helper mode may do (the access flags).
    public let access: MapAccess
    /// Frozen or not, and the writable mappings of the storage.
    let freezeState = MapFreezeState()
    /// Writers of a value stored without a sequence word and wider than one word (an
    /// mmapable array's values over 8 bytes, with or without a lock word) hold the lock of
    /// their index's stripe: the value is copied word by word, and two writers interleaving
    /// would both report the same displaced value (``exchange(key:value:flags:into:)``) and
    /// lose another. Writes through a mapping take no lock, as on Linux. (No locks are
    /// allocated for the other arrays.)
    let wideValueWriters: BucketLocks
    /// Whether writes take ``wideValueWriters``.
    let writesWordByWord: Bool
    /// Whether a write keeps the bytes between the value's end and the next 8-byte boundary
    /// (an mmapable array whose values are not a multiple of 8 bytes: the mapping shows
    /// them, and Linux's `copy_map_value` copies `value_size` bytes only).
    let keepsPadding: Bool
    /// The value's lock word, if the definition names one.
    @usableFromInline let lockWord: LockWordCopy
    /// How the storage was obtained (and how it goes back).
    let placement: Placement

    enum Placement {
        /// Epoch memory (cache-aligned), freed after a grace period.
        case epoch
        /// Anonymous pages that prefer the requested node (`rcumaps_map_pages(_:preferringNode:)`), freed
        /// after a grace period by a work item.
        case numa
        /// Anonymous pages (page-aligned: `BPF_F_MMAPABLE` arrays, and arrays too large for an
        /// epoch block), unmapped after a grace period by a work item.
        case pages
    }

    /// Creates an array with every value zero.
    ///
    /// - Throws: ``MapError/invalidArgument`` (key size not 4, zero sizes, flags),
    ///   ``MapError/outOfSpace`` (value size beyond the limit), ``MapError/accessDenied``
    ///   (a lock word with a program access flag), ``MapError/noMemory``
    ///   (the storage cannot be allocated; arrays beyond one epoch block live on anonymous pages).
    public convenience init(_ definition: MapDefinition) throws(MapError) {
        try self.init(definition, observer: nil)
    }

    /// Creates an array whose displaced values are reported to `observer` (provider layer).
    package init(_ definition: MapDefinition, observer: (any MapEntryObserver)?) throws(MapError) {
        guard definition.type == .array else {
            throw MapError.invalidArgument.with(reason: "RawArrayMap serves BPF_MAP_TYPE_ARRAY, not \(definition.type)")
        }
        try definition.validateArray()
        self.definition = definition
        valueSize = definition.valueSize
        maxEntries = definition.maxEntries
        paddedValueSize = roundUp8(valueSize)
        self.observer = observer
        advanceObserver = observer?.wantsAdvanceNotice == true ? observer : nil
        access = MapAccess(definition.flags)
        lockWord = LockWordCopy(definition)
        let mmapable = definition.flags.contains(.mmapable)
        if mmapable, observer != nil {
            throw MapError.invalidArgument.with(reason: "BPF_F_MMAPABLE arrays cannot be the base of a custom map")
        }
        // Linux's mmap layout has nothing between values; otherwise values over a word (and
        // every value of a custom map's base) get a sequence word in front.
        valueOffset = mmapable || (valueSize <= 8 && observer == nil) ? 0 : 8
        writesWordByWord = valueOffset == 0 && valueSize > 8
        keepsPadding = mmapable && valueSize & 7 != 0
        wideValueWriters = BucketLocks(count: writesWordByWord ? 64 : 0)
        slotStride = paddedValueSize + valueOffset
        let (size, overflow) = maxEntries.multipliedReportingOverflow(by: slotStride)
        guard !overflow else {
            throw MapError.noMemory.with(reason: "an array of \(maxEntries) × \(slotStride) bytes does not fit in memory")
        }
        storageSize = size
        if let node = definition.placementNode, !mmapable, NUMATopology.nodeCount > 1,
           let placed = rcumaps_map_pages(size, preferringNode: Int32(node)) {
            storage = placed
            placement = .numa
            storage.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        } else if mmapable || size > EpochMemory.maxBlockSize {
            // Fresh anonymous pages are zero: nothing to clear.
            guard let pages = rcumaps_map_pages(size) else {
                throw MapError.noMemory.with(reason: "no memory for an array of \(size) bytes")
            }
            storage = pages
            placement = .pages
        } else {
            guard let block = EpochMemory.allocateCacheAligned(byteCount: size, tag: definition.effectivePoolTag) else {
                throw MapError.noMemory
            }
            storage = block
            placement = .epoch
            // Before the first touch: a big array on huge pages misses the TLB far less.
            rcumaps_advise_huge_pages(storage, size)
            storage.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        }
        // All-zero bytes are a valid `Atomic<UInt64>` of 0; bind once, access atomically after.
        storage.bindMemory(to: Atomic<UInt64>.self, capacity: size / 8)
        try definition.validateAfterAllocation()  // as Linux, after the allocation (deinit frees it)
        created = true
    }

    deinit {
        // A map refused after its allocation (its name, its lock word) never existed for the
        // observer: no teardown of its entries (a custom map's provider got a MAP_CLEANUP
        // callback for each index of a map whose creation it was told failed: found by
        // review of the session's diff, 2026-12-05, nineteenth session).
        if created, let observer {
            for index in 0..<maxEntries {
                var key = UInt32(index)
                withUnsafeBytes(of: &key) { key in
                    let value = UnsafeRawBufferPointer(start: slot(index) + valueOffset, count: valueSize)
                    _ = observer.entryWillBeRemoved(key: key, value: value, flags: .mapCleanup)
                    observer.entryWasRemoved(key: key, value: value, flags: .mapCleanup)
                }
            }
        }
        switch placement {
        case .epoch:
            EpochMemory.freeCacheAligned(storage)
        case .numa, .pages:
            // No epoch header: give the memory back after a grace period by work item.
            let address = UInt(bitPattern: storage)
            let size = storageSize
            let numa = placement == .numa
            let release: @Sendable () -> Void = {
                let memory = UnsafeMutableRawPointer(bitPattern: address)
                if numa { rcumaps_unmap_node_pages(memory, size) } else { rcumaps_unmap_pages(memory, size) }
            }
            if !Epoch.afterGracePeriod(release) {
                runWhereGracePeriodsMayBeAwaited {
                    Epoch.synchronize()
                    release()
                }
            }
        }
    }

    /// Entries in the map: a snapshot under concurrent updates (arrays: `maxEntries`). Any thread.
    public var count: Int { maxEntries }

    // MARK: Slots

    @inlinable @inline(__always)
    func index(_ key: UnsafeRawBufferPointer) throws(MapError) -> Int {
        try checkKey(key, 4)
        return Int(key.baseAddress!.loadUnaligned(as: UInt32.self))
    }

    @inlinable @inline(__always)
    func slot(_ index: Int) -> UnsafeMutableRawPointer { storage + index * slotStride }

    @inlinable @inline(__always)
    func word(_ pointer: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        pointer.assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Copies a slot's value out word by word with relaxed atomic loads.
    @inlinable @inline(__always)
    func copyOut(_ value: UnsafeMutableRawPointer, from source: UnsafeMutableRawPointer) {
        if valueSize == 8 {
            // Acquiring: the releasing store of a one-word update publishes what it refers to.
            value.storeBytes(of: word(source).pointee.load(ordering: .acquiring), as: UInt64.self)
            return
        }
        var offset = 0
        while offset + 8 <= valueSize {
            value.storeBytes(of: word(source + offset).pointee.load(ordering: .relaxed),
                             toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        if offset < valueSize {
            var last = word(source + offset).pointee.load(ordering: .relaxed)
            withUnsafeBytes(of: &last) { bytes in
                (value + offset).copyMemory(from: bytes.baseAddress!, byteCount: valueSize - offset)
            }
        }
    }

    /// Copies `count` consecutive storage words starting at `source` to `destination` (which
    /// may be unaligned) with relaxed atomic loads, then one acquiring fence: each word is read
    /// whole, and the fence orders what the caller reads after the copy as acquiring loads
    /// would (a one-word update's releasing store publishes what its value refers to).
    ///
    /// Invariant: `source ..< source + 8 × count` lies in `storage` (8-byte aligned words,
    /// bound to `Atomic<UInt64>`); `destination` holds `8 × count` bytes. Unrolled by four: a
    /// batch lookup of an array is this loop, plus the keys.
    @inline(__always)
    func copyWordsOut(to destination: UnsafeMutableRawPointer, from source: UnsafeMutableRawPointer, count: Int) {
        let words = source.assumingMemoryBound(to: Atomic<UInt64>.self)
        var index = 0
        while index &+ 4 <= count {
            let four = words + index
            let first = four.pointee.load(ordering: .relaxed)
            let second = (four + 1).pointee.load(ordering: .relaxed)
            let third = (four + 2).pointee.load(ordering: .relaxed)
            let fourth = (four + 3).pointee.load(ordering: .relaxed)
            destination.storeBytes(of: first, toByteOffset: index &* 8, as: UInt64.self)
            destination.storeBytes(of: second, toByteOffset: index &* 8 &+ 8, as: UInt64.self)
            destination.storeBytes(of: third, toByteOffset: index &* 8 &+ 16, as: UInt64.self)
            destination.storeBytes(of: fourth, toByteOffset: index &* 8 &+ 24, as: UInt64.self)
            index &+= 4
        }
        while index < count {
            destination.storeBytes(of: (words + index).pointee.load(ordering: .relaxed), toByteOffset: index &* 8,
                                   as: UInt64.self)
            index &+= 1
        }
        atomicMemoryFence(ordering: .acquiring)
    }

    /// Copies a value into a slot word by word with atomic stores (releasing ones when
    /// the slot has no sequence word to publish it).
    @inline(__always)
    func copyIn(_ destination: UnsafeMutableRawPointer, from value: UnsafeRawPointer, releasing: Bool) {
        var offset = 0
        while offset < valueSize {
            var bits: UInt64 = 0
            if offset + 8 <= valueSize {
                bits = value.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            } else {
                withUnsafeMutableBytes(of: &bits) { bytes in
                    bytes.baseAddress!.copyMemory(from: value + offset, byteCount: valueSize - offset)
                }
                if keepsPadding {
                    _ = WordBytes.merge(bits, length: valueSize - offset, into: word(destination + offset))
                    break
                }
            }
            if releasing {
                word(destination + offset).pointee.store(bits, ordering: .releasing)
            } else {
                word(destination + offset).pointee.store(bits, ordering: .relaxed)
            }
            offset += 8
        }
    }

    /// Writes `value` over the value at `stored` word by word with atomic exchanges (a
    /// compare-exchange for a partial last word, keeping the bytes past the value), the
    /// replaced bytes going to `displaced` — which may be `value`: each word is read before
    /// its old bytes are written. Every word atomically: the sequence word (or the wide-value
    /// lock) holds off other whole-value writers only, not the in-place atomic writes of
    /// helpers (`lookupInPlace`, `withAtomicFields`), and a load then a store lost an
    /// increment that landed between them, from both the map and `displaced` (found by
    /// review, 2026-12-05: row 35 of reliability.md, on this map).
    func exchangeIn(_ stored: UnsafeMutableRawPointer, from value: UnsafeRawPointer,
                    displaced: UnsafeMutableRawPointer) {
        var offset = 0
        while offset < valueSize {
            let length = min(8, valueSize - offset)
            let cell = word(stored + offset)
            var old: UInt64
            if length == 8 {
                old = cell.pointee.exchange(value.loadUnaligned(fromByteOffset: offset, as: UInt64.self),
                                            ordering: .acquiringAndReleasing)
            } else {
                var bits: UInt64 = 0
                withUnsafeMutableBytes(of: &bits) { $0.baseAddress!.copyMemory(from: value + offset, byteCount: length) }
                old = WordBytes.merge(bits, length: length, into: cell)
            }
            withUnsafeBytes(of: &old) { (displaced + offset).copyMemory(from: $0.baseAddress!, byteCount: length) }
            offset += 8
        }
    }

    // MARK: Lookup

    /// User-mode lookup. Contract: ``RawMap/lookup(key:into:)``.
    /// Inlinable: a one-word value compiles into the caller as a bounds check and a load.
    @inlinable @inline(__always)
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        if try !lookupIfPresent(key: key, into: value) { throw MapError.keyNotFound }
    }

    /// ``lookup(key:into:)`` that answers an absent key with `false` instead of ENOENT (no
    /// error to build on a miss). Inlinable.
    @inlinable @inline(__always)
    public func lookupIfPresent(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        try access.checkUserRead()
        let index = try self.index(key)
        try checkValue(value, valueSize)
        guard index < maxEntries else { return false }
        if valueOffset == 0 {
            copyOut(value.baseAddress!, from: slot(index))
        } else {
            copySequenced(value.baseAddress!, from: slot(index))
        }
        lockWord.clear(in: value.baseAddress!)
        return true
    }

    /// User-mode lookup with flags. Contract: ``RawMap/lookup(key:into:flags:)``.
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                       flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: true)
        guard flags.contains(.lock) else { return try lookup(key: key, into: value) }
        try access.checkUserRead()
        try requireLockWord()
        let index = try self.index(key)
        try checkValue(value, valueSize)
        guard index < maxEntries else { throw MapError.keyNotFound }
        copyLocked(slot(index), to: value.baseAddress!)
    }

    /// A `BPF_F_LOCK` copy of a slot's value: with the value's lock held and, for a slot with
    /// a sequence word, as a sequenced read too. A plain update of such a slot takes only its
    /// sequence word, not the value's lock, so a copy under the lock alone could mix two
    /// values (found by review, 2026-12-05). Lock, then sequence word: the order of a
    /// `BPF_F_LOCK` update (``writeKeepingLockWord(_:_:locked:displaced:)``), so a reader
    /// that falls back to holding the slot cannot deadlock with it. The copy's lock word is
    /// cleared.
    ///
    /// A slot without a sequence word (values of at most 8 bytes, an mmapable array's) is
    /// copied word by word with atomic loads under the lock: a plain update writes its
    /// words with atomic stores and no lock, so a `memcpy` there was a data race, and on an
    /// mmapable value of 2 KiB or more could tear a word changed in place (found by review,
    /// 2026-12-06, twenty-third session; as row 49 for the per-CPU hash).
    func copyLocked(_ slot: UnsafeMutableRawPointer, to destination: UnsafeMutableRawPointer) {
        guard valueOffset != 0 else {
            MapValueLock.withLock(UnsafeMutableRawBufferPointer(start: slot, count: valueSize), offset: lockWord.offset) {
                copyOut(destination, from: slot)
            }
            lockWord.clear(in: destination)
            return
        }
        MapValueLock.withLock(UnsafeMutableRawBufferPointer(start: slot + valueOffset, count: valueSize),
                              offset: lockWord.offset) {
            copySequenced(destination, from: slot)
        }
        lockWord.clear(in: destination)
    }

    /// Copies a value guarded by its slot's sequence word (a seqlock read,
    /// ``SequencedReads/copy(guardedBy:extraBits:_:)``): waits while a writer of the slot is
    /// active, retries when one overlapped the copy, and after ``SequencedReads/patience``
    /// spoiled copies copies with the slot held: writers rewriting the slot back to back,
    /// each write shorter than the copy, can make a reader wait while they hold the slot (a
    /// few writes with several writers, each release going to one of the waiters), not make
    /// it retry for as long as they run (found by review, 2026-12-05: a 64 KiB value rewritten in a loop kept
    /// a lookup spinning as long as the writer ran).
    @usableFromInline
    func copySequenced(_ value: UnsafeMutableRawPointer, from slot: UnsafeMutableRawPointer) {
        // The writer bit too: a provider map's writer holding it writes the counter from its
        // own snapshot, without a compare-and-swap (``replaceReporting``).
        SequencedReads.copy(guardedBy: word(slot), extraBits: Self.writerBit) { copyOut(value, from: slot + 8) }
    }

    /// Helper-mode lookup, borrowed until `section` ends. Contract: ``RawMap/lookupInPlace(key:in:)``.
    @inlinable
    public func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        try access.checkProgramRead()
        let index = try self.index(key)
        guard index < maxEntries else { throw MapError.keyNotFound }
        return UnsafeMutableRawBufferPointer(start: slot(index) + valueOffset, count: valueSize)
    }

    // MARK: Update

    @usableFromInline
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                operation: MapOperationFlags, displaced: UnsafeMutableRawPointer?) throws(MapError) -> Bool {
        // Linux's order: access (EPERM / EACCES), BPF_F_LOCK without a lock word (the
        // syscall's own check), the copies of key and value, then `array_map_update_elem`'s
        // flag, index and NOEXIST checks, then its own BPF_F_LOCK check — the only one a
        // helper-mode write meets, after the others.
        let helper = operation.contains(.helper)
        if helper { try access.checkProgramWrite() } else { try access.checkUserWrite(freezeState) }
        if !helper, flags.contains(.lock) { try requireLockWord() }
        let index = try self.index(key)
        try checkValue(value, valueSize)
        try checkFlags(flags)
        guard index < maxEntries else { throw MapError.indexOutOfRange }
        if flags.withoutLock == .noExist { throw MapError.alreadyExists }
        if helper, flags.contains(.lock) { try requireLockWord() }
        // A user-mode write checks the freeze inside a section (see MapFreezeState).
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        if !helper { try access.checkUserWrite(freezeState) }
        let slot = self.slot(index)
        if writesWordByWord { wideValueWriters.lock(index & 63) }
        defer { if writesWordByWord { wideValueWriters.unlock(index & 63) } }
        if lockWord.exists {
            writeKeepingLockWord(slot, value.baseAddress!, locked: flags.contains(.lock), displaced: displaced)
            return true
        }
        if valueOffset == 0 {
            if let displaced, keepsPadding || valueSize > 8 {
                // Every word exchanged (an mmapable array's padding kept).
                exchangeIn(slot, from: value.baseAddress!, displaced: displaced)
            } else if let displaced {
                // One word: exchanged, so the value reported is exactly the one replaced.
                var bits: UInt64 = 0
                withUnsafeMutableBytes(of: &bits) { $0.baseAddress!.copyMemory(from: value.baseAddress!, byteCount: valueSize) }
                var old = word(slot).pointee.exchange(bits, ordering: .acquiringAndReleasing)
                withUnsafeBytes(of: &old) { displaced.copyMemory(from: $0.baseAddress!, byteCount: valueSize) }
            } else {
                // (An mmapable array's wider values: copied word by word, as Linux copies them.)
                copyIn(slot, from: value.baseAddress!, releasing: true)
            }
            return true
        }
        let sequence = word(slot)
        if let observer {
            replaceReporting(to: observer, key: key, slot: slot, value: value.baseAddress!,
                             flags: operation.union(.update), displaced: displaced)
            return true
        }
        writeSequenced(slot) {
            // This writer alone writes the whole value now; helpers may still add in place.
            if let displaced {
                exchangeIn(slot + 8, from: value.baseAddress!, displaced: displaced)
            } else {
                copyIn(slot + 8, from: value.baseAddress!, releasing: false)
            }
        }
        _ = sequence
        return true
    }

    /// Runs `write` as the slot's only writer, with its sequence word odd (readers retry).
    @inline(__always)
    func writeSequenced(_ slot: UnsafeMutableRawPointer, _ write: () -> Void) {
        let sequence = word(slot)
        var spins = 0
        while true {
            let current = sequence.pointee.load(ordering: .relaxed)
            if current & 1 == 0,
               sequence.pointee.compareExchange(expected: current, desired: current &+ 1,
                                                ordering: .acquiring).exchanged {
                atomicMemoryFence(ordering: .releasing)
                write()
                sequence.pointee.store(current &+ 2, ordering: .releasing)
                return
            }
            spins += 1
            if spins & 63 == 0 { sched_yield() }
        }
    }

    /// Writes a value whose lock word must stay as it is (Linux's `copy_map_value` skips
    /// it), optionally holding it (`BPF_F_LOCK`); the displaced copy has its lock word at 0.
    func writeKeepingLockWord(_ slot: UnsafeMutableRawPointer, _ value: UnsafeRawPointer, locked: Bool,
                              displaced: UnsafeMutableRawPointer?) {
        let stored = slot + valueOffset
        let write = {
            if self.valueOffset == 0 {
                // No sequence word (a one-word value, or an mmapable array's value of any
                // size): stored word by word, as Linux copies such values.
                self.exchangeWordsKeepingLock(stored, from: value, displaced: displaced)
            } else {
                self.writeSequenced(slot) {
                    // Word by word atomically, as `exchangeIn`, keeping the lock word.
                    self.exchangeWordsKeepingLock(stored, from: value, displaced: displaced)
                }
            }
            if let displaced { self.lockWord.clear(in: displaced) }
        }
        // A displaced value is taken under the lock too, as the hashes copy theirs: a program's
        // locked write in place ends before the exchange, not half in the value handed back
        // (exchanged without it, the displaced value held the program's first half and the
        // map its second: found by review, 2026-12-06, twenty-sixth session).
        if locked || displaced != nil {
            MapValueLock.withLock(UnsafeMutableRawBufferPointer(start: stored, count: valueSize),
                                  offset: lockWord.offset, write)
        } else {
            write()
        }
    }

    /// Stores `value` into a value with no sequence word (or under a sequenced slot's
    /// sequence word, which holds off whole-value writers only), word by word with atomic
    /// exchanges (releasing: each publishes what it refers to), never changing the lock
    /// word's bits: the word holding them is swapped with a compare-exchange that keeps them,
    /// so a concurrent `BPF_F_LOCK` holder's lock survives. The replaced bytes go to
    /// `displaced` word by word (a concurrent writer may interleave, as on Linux).
    ///
    /// Invariant: `stored` is 8-aligned and its slot is `valueSize` rounded up to 8 bytes,
    /// so every word written lies inside the slot; the partial last word's bytes past
    /// `valueSize` are zero in what is stored and never copied out.
    func exchangeWordsKeepingLock(_ stored: UnsafeMutableRawPointer, from value: UnsafeRawPointer,
                                  displaced: UnsafeMutableRawPointer?) {
        let lockWordOffset = lockWord.offset & ~7
        let lockBits = UInt64(UInt32.max) << UInt64(8 * (lockWord.offset & 7))
        var offset = 0
        while offset < valueSize {
            let length = min(8, valueSize - offset)
            var bits: UInt64 = 0
            withUnsafeMutableBytes(of: &bits) { $0.baseAddress!.copyMemory(from: value + offset, byteCount: length) }
            let cell = word(stored + offset)
            var old: UInt64
            if offset == lockWordOffset {
                old = cell.pointee.load(ordering: .relaxed)
                while true {
                    let (exchanged, original) = cell.pointee.compareExchange(
                        expected: old, desired: (bits & ~lockBits) | (old & lockBits), ordering: .acquiringAndReleasing)
                    if exchanged { break }
                    old = original
                }
            } else {
                old = cell.pointee.exchange(bits, ordering: .acquiringAndReleasing)
            }
            if let displaced {
                withUnsafeBytes(of: &old) { (displaced + offset).copyMemory(from: $0.baseAddress!, byteCount: length) }
            }
            offset += 8
        }
    }

    /// Bit 63 of a slot's sequence word: a writer of the slot holds it (provider maps only).
    /// Readers look only at bit 0 (a write in progress), so holding the slot while the
    /// provider's pre-deletion callback runs never makes a reader wait.
    static let writerBit: UInt64 = 1 << 63

    /// Writes `value` into `slot` on a map with an observer, reporting the displaced value:
    /// `entryWillBeRemoved` while this writer holds the slot (other writers wait, readers do
    /// not), `entryWasRemoved` after the write and the slot's release.
    func replaceReporting(to observer: any MapEntryObserver, key: UnsafeRawBufferPointer, slot: UnsafeMutableRawPointer,
                          value: UnsafeRawPointer, flags: MapOperationFlags, displaced: UnsafeMutableRawPointer?) {
        let sequence = word(slot)
        var spins = 0
        var current: UInt64
        while true {  // take the slot's writer bit
            current = sequence.pointee.load(ordering: .relaxed)
            if current & Self.writerBit == 0,
               sequence.pointee.compareExchange(expected: current, desired: current | Self.writerBit,
                                                ordering: .acquiring).exchanged { break }
            spins += 1
            if spins & 63 == 0 { sched_yield() }
        }
        let reported = displaced
        // Only the holder of the writer bit writes the whole value; helpers may still add in
        // place, so the value replaced is what the exchange returns, word by word.
        withUnsafeTemporaryAllocation(byteCount: paddedValueSize, alignment: 8) { displaced in
            let old = UnsafeRawBufferPointer(start: displaced.baseAddress!, count: valueSize)
            if advanceObserver != nil {
                // Advance notice: the value as it is now (an in-place add may still follow).
                copyOut(displaced.baseAddress!, from: slot + 8)
                _ = observer.entryWillBeRemoved(key: key, value: old, flags: flags)
            }
            sequence.pointee.store((current &+ 1) | Self.writerBit, ordering: .relaxed)  // odd: readers retry
            atomicMemoryFence(ordering: .releasing)
            exchangeIn(slot + 8, from: value, displaced: displaced.baseAddress!)
            sequence.pointee.store(current &+ 2, ordering: .releasing)  // even, writer bit clear
            reported?.copyMemory(from: displaced.baseAddress!, byteCount: valueSize)
            observer.entryWasRemoved(key: key, value: old, flags: flags)
        }
    }

    // MARK: Delete (not on arrays)

    @usableFromInline
    func delete(key: UnsafeRawBufferPointer, operation: MapOperationFlags) throws(MapError) {
        if operation.contains(.helper) { try access.checkProgramWrite() } else { try access.checkUserWrite(freezeState) }
        _ = try index(key)
        throw MapError.invalidArgument.with(reason: "array elements cannot be deleted")
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
        _ = try index(key)
        throw Self.noLookupAndDelete
    }

    static let noLookupAndDelete = MapError.unsupportedByMapType.with(reason: "lookup-and-delete is not supported on arrays")

    /// Lookup-and-delete: ENOTSUPP on arrays, after Linux's checks. Contract: ``RawMap/lookupAndDelete(key:into:)``.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try lookupAndDelete(key: key, into: value, flags: [])
    }

    /// Lookup-and-delete with flags: ENOTSUPP on arrays, after Linux's checks (flags
    /// EINVAL, then EPERM, then `BPF_F_LOCK` without a lock word EINVAL).
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                                flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: true)
        try access.checkUserRead()
        try access.checkUserWrite(freezeState)
        if flags.contains(.lock) { try requireLockWord() }
        _ = try index(key)
        throw Self.noLookupAndDelete
    }

    // MARK: Iteration

    /// Get-next-key iteration. Contract: ``RawMap/nextKey(after:into:)``.
    public func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try access.checkUserRead()
        guard nextKey.count == 4, nextKey.baseAddress != nil else {
            throw MapError.invalidArgument.with(reason: "key buffer is \(nextKey.count) bytes, array keys are 4")
        }
        let next: Int
        if let key {
            let index = try self.index(key)
            // As Linux: an out-of-range cursor restarts at 0; the last index ends the pass.
            if index >= maxEntries { next = 0 } else if index == maxEntries - 1 { throw MapError.keyNotFound } else { next = index + 1 }
        } else {
            next = 0
        }
        nextKey.baseAddress!.storeBytes(of: UInt32(next), as: UInt32.self)
    }

    /// An array's keys never leave it: as ``nextKey(after:into:)``, except after an index beyond
    /// the last, which ends the pass (ENOENT) where `nextKey` restarts at 0.
    public func nextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try arrayNextKeyInPass(after: key, into: nextKey, maxEntries: maxEntries, access: access) { () throws(MapError) in
            try self.nextKey(after: key, into: nextKey)
        }
    }

    // MARK: Freezing and mapping

    /// Whether the map is frozen. Any thread.
    public var isFrozen: Bool { freezeState.isFrozen }

    /// Freezes the map. Contract: ``RawMap/freeze()``.
    @available(*, noasync, message: "waits for a grace period: call it from a thread of your own, or use `await map.freezeAsync()`")
    public func freeze() throws(MapError) {
        try freezeState.freeze(access: access, lockWord: lockWord.exists)
    }

    /// The storage of a `BPF_F_MMAPABLE` array, mapped: what Linux's `mmap` of the map shows
    /// — value `i` at byte `i × round_up(valueSize, 8)`, page-aligned — as directly
    /// addressable memory.
    ///
    /// A writable mapping counts as a writer: the map cannot be frozen while one exists
    /// (EBUSY), as on Linux. Drop the mapping (or call ``RawArrayMapping/unmap()``) when done.
    ///
    /// - Throws: in Linux's order (the file's access mode, checked before `bpf_map_mmap`,
    ///   then `bpf_map_mmap`, then `array_map_mmap`): ``MapError/accessDenied`` (EACCES) for
    ///   `BPF_F_WRONLY`, and for a writable mapping of a `BPF_F_RDONLY` map;
    ///   ``MapError/unsupportedByMapType`` (ENOTSUPP) when values hold a lock word; for a
    ///   writable mapping, ``MapError/permissionDenied`` (EPERM) when frozen, then
    ///   ``MapError/accessDenied`` (EACCES) for `BPF_F_RDONLY_PROG`;
    ///   ``MapError/invalidArgument`` (EINVAL) for an array without `BPF_F_MMAPABLE`. A
    ///   writable mapping asked for while a freeze is in progress answers EPERM (the freeze
    ///   marks the map frozen before it waits for writes in flight); ``MapError/busy``
    ///   (EBUSY) only in a child forked between a freeze's claim and its mark, where no
    ///   thread will ever mark it.
    ///
    /// Concurrency: the memory is the map's own; writes through it are plain stores, seen
    /// by readers with no ordering (use atomics for data others update concurrently).
    public func mapStorage(writable: Bool) throws(MapError) -> RawArrayMapping {
        guard access.userRead else { throw MapError.accessDenied.with(reason: "a BPF_F_WRONLY map cannot be mapped") }
        if writable, !access.userWrite {
            throw MapError.accessDenied.with(reason: "a writable mapping of a BPF_F_RDONLY map")
        }
        guard !lockWord.exists else {
            throw MapError.unsupportedByMapType.with(reason: "an array whose values hold a lock word cannot be mapped")
        }
        if writable {
            guard !freezeState.isFrozen else {
                throw MapError.permissionDenied.with(reason: "a frozen map cannot be mapped writable")
            }
            guard access.programWrite else {
                throw MapError.accessDenied.with(reason: "a writable mapping of a BPF_F_RDONLY_PROG map")
            }
        }
        guard placement == .pages, definition.flags.contains(.mmapable) else {
            throw MapError.invalidArgument.with(reason: "only BPF_F_MMAPABLE arrays can be mapped")
        }
        // Counted last: the freeze is checked again here, atomically with the count.
        if writable { try freezeState.addWritableMapping() }
        return RawArrayMapping(map: self, writable: writable)
    }

    func unmapped(writable: Bool) {
        if writable { freezeState.removeWritableMapping() }
    }

    // MARK: Batches

    /// `BPF_MAP_LOOKUP_BATCH` (Linux's generic batch: the cursor is the last index returned;
    /// `flags` is ignored, as Linux ignores it here). Contract: ``RawMap/lookupBatch(from:keys:values:count:elementFlags:flags:)``.
    public func lookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                            values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        let checks = BatchChecks(self)
        try checks.access(read: true, write: false)
        try checks.elementFlags(elementFlags)
        try checks.buffer(count, keys.count, of: 4, "keys")
        try checks.buffer(count, values.count, of: valueSize, "values")
        guard count > 0 else { return MapBatchResult(count: 0, cursor: cursor, error: nil) }
        var next = 0
        if let cursor {
            guard let index = cursor.index else {
                throw MapError.invalidArgument.with(reason: "the batch cursor is not one of this map's (\(cursor.byteCount) bytes)")
            }
            let previous = Int(index)
            next = previous >= maxEntries ? 0 : previous + 1  // as get-next-key: out of range restarts
        }
        // The flags are checked once per batch, not per element.
        let done = min(count, maxEntries - next)
        let keyBase = keys.baseAddress.unsafelyUnwrapped
        let valueBase = values.baseAddress.unsafelyUnwrapped
        // Keys are consecutive indices (the buffer may be unaligned: byte-offset stores).
        for element in 0..<done {
            keyBase.storeBytes(of: UInt32(truncatingIfNeeded: next &+ element), toByteOffset: element &* 4, as: UInt32.self)
        }
        if elementFlags.contains(.lock) {
            for element in 0..<done {
                copyLocked(slot(next &+ element), to: valueBase + element &* valueSize)
            }
        } else if valueOffset == 0 && paddedValueSize == valueSize {
            // The slots of these elements are their values back to back (no sequence word, no
            // padding), as the values buffer wants them: one run of words.
            copyWordsOut(to: valueBase, from: slot(next), count: done &* (valueSize / 8))
        } else if valueOffset == 0 {
            for element in 0..<done { copyOut(valueBase + element &* valueSize, from: slot(next &+ element)) }
        } else {
            for element in 0..<done { copySequenced(valueBase + element &* valueSize, from: slot(next &+ element)) }
        }
        if lockWord.exists, !elementFlags.contains(.lock) {
            for element in 0..<done { lockWord.clear(in: valueBase + element &* valueSize) }
        }
        next += done
        let out = done > 0 ? MapBatchCursor(index: UInt32(next - 1)) : cursor
        return MapBatchResult(count: done, cursor: out, error: next >= maxEntries && done < count ? .keyNotFound : nil)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`: ENOTSUPP on arrays (after the access checks).
    public func lookupAndDeleteBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                                     values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                                     flags: UInt64) throws(MapError) -> MapBatchResult {
        try unsupportedBatch(read: true, write: true, "lookup-and-delete")
    }

    /// `BPF_MAP_UPDATE_BATCH` (Linux's generic batch).
    public func updateBatch(keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, count: Int,
                            elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult {
        try genericUpdateBatch(keys: keys, values: values, count: count, elementFlags: elementFlags)
    }

    /// `BPF_MAP_DELETE_BATCH`: ENOTSUPP on arrays (after the access checks).
    public func deleteBatch(keys: UnsafeRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try unsupportedBatch(read: false, write: true, "delete")
    }

    // MARK: Checks

    @inline(__always)
    func requireLockWord() throws(MapError) {
        if !lockWord.exists { throw noLockWordError }
    }
}

/// A mapping of a `BPF_F_MMAPABLE` array's storage (``RawArrayMap/mapStorage(writable:)``):
/// the counterpart of Linux's `mmap` of the map.
///
/// The memory stays valid while the mapping exists (it keeps the map alive). A writable
/// mapping keeps the map from being frozen until it is unmapped.
///
/// Concurrency: the mapping object may be used from any thread; what is written through
/// it is plain memory.
public final class RawArrayMapping: @unchecked Sendable {
    // @unchecked Sendable: immutable after init except `mapped`, guarded by `state`.
    /// The map whose storage this is.
    public let map: RawArrayMap
    /// Whether writes through ``bytes`` are allowed.
    public let writable: Bool
    private let state = Mutex<Bool>(true)

    init(map: RawArrayMap, writable: Bool) {
        self.map = map
        self.writable = writable
    }

    deinit { unmap() }

    /// The array's values: `maxEntries × round_up(valueSize, 8)` bytes, page-aligned.
    /// Do not write through it unless the mapping is ``writable``.
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: map.storage, count: map.storageSize)
    }

    /// Ends the mapping (a writable one stops keeping the map from being frozen). Using
    /// ``bytes`` after this is a programming error. Idempotent.
    public func unmap() {
        let wasMapped = state.withLock { mapped in
            defer { mapped = false }
            return mapped
        }
        if wasMapped { map.unmapped(writable: writable) }
    }
}

// MARK: - Flag checks shared by the maps

extension MapUpdateFlags {
    /// The flags without `BPF_F_LOCK`.
    @inlinable var withoutLock: MapUpdateFlags { MapUpdateFlags(rawValue: rawValue & ~MapUpdateFlags.lock.rawValue) }
}

/// EINVAL for element flags other than `BPF_F_LOCK` (`allowingLock`) or any flag at all.
@inline(__always)
func checkElementFlags(_ flags: MapElementFlags, allowingLock: Bool) throws(MapError) {
    let allowed: MapElementFlags = allowingLock ? .lock : []
    guard flags.subtracting(allowed).isEmpty else {
        throw MapError.invalidArgument.with(reason: "invalid flags \(flags.rawValue)\(allowingLock ? " (only BPF_F_LOCK)" : "")")
    }
}

/// EINVAL for `BPF_F_LOCK` on a map whose values hold no lock word.
let noLockWordError = MapError.invalidArgument.with(reason: "BPF_F_LOCK needs a map whose values hold a lock word (MapDefinition.lockOffset)")
