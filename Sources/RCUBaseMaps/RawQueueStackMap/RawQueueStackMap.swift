import CRCUMapsShim
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A `QUEUE` (FIFO) or `STACK` (LIFO) map: Linux's `BPF_MAP_TYPE_QUEUE` (22) and
/// `BPF_MAP_TYPE_STACK` (23), errno for errno with Linux 6.18's `queue_stack_maps.c`.
///
/// The map has no keys (`keySize` 0) and holds at most `maxEntries` values:
///
/// | operation | user mode (``RawMap`` names) | helper mode |
/// |---|---|---|
/// | push | ``push(_:flags:)`` = ``update(key:value:flags:)`` with an empty key | ``push(_:flags:in:)`` (`bpf_map_push_elem`) |
/// | pop | ``pop(into:)`` = ``lookupAndDelete(key:into:flags:)`` | ``pop(into:in:)`` (`bpf_map_pop_elem`) |
/// | peek | ``peek(into:)`` = ``lookup(key:into:flags:)`` | ``peek(into:in:)`` (`bpf_map_peek_elem`) |
///
/// A queue pops and peeks its oldest element, a stack its newest. Rules, as Linux:
/// - push flags: `BPF_ANY` (0) or `BPF_EXIST` (2); anything else (`BPF_NOEXIST`,
///   `BPF_F_LOCK`, unknown bits) is EINVAL. A full map refuses a push with E2BIG, unless
///   `BPF_EXIST`: then the *oldest* element is dropped to make room — for a stack too,
///   where that is the bottom element, since Linux's push is shared by both types.
/// - pop and peek of an empty map: ENOENT (helper mode also zeroes the output buffer, as
///   Linux's helpers do; user mode leaves it untouched, as the syscall copies nothing out).
/// - user-mode pop takes no flags (any → EINVAL); user-mode peek takes only `BPF_F_LOCK`,
///   which is EINVAL too since the values hold no lock word.
/// - delete and get-next-key: EINVAL. Batch operations: ENOTSUPP (524).
/// - keys: the byte API's key parameters take an *empty* buffer (count 0, any base
///   address) for Linux's null key; a non-empty key is EINVAL, as a non-null key pointer is.
///   Value buffers must be exactly `valueSize` bytes (EINVAL otherwise).
/// - access: `BPF_F_RDONLY` refuses user push and pop, `BPF_F_WRONLY` user peek, pop and
///   get-next-key (EPERM); a frozen map refuses user push and pop (EPERM) but still peeks.
///   `BPF_F_RDONLY_PROG` refuses helper push and pop (EACCES, where Linux's verifier
///   refuses the program); `BPF_F_WRONLY_PROG` refuses nothing: Linux's verifier guards
///   reads of map memory, and peek and pop copy into the caller's buffer.
/// - helper mode has no update, delete or in-place lookup on these types: Linux's verifier
///   refuses `bpf_map_update_elem`, `bpf_map_delete_elem` and `bpf_map_lookup_elem` on
///   them (EINVAL; `BPF_F_RDONLY_PROG` is checked first for the writes, EACCES).
///
/// Storage, as Linux: one block of `maxEntries + 1` slots of `valueSize` bytes (a ring
/// with one slot always free, so that full and empty differ), behind a 64-byte header
/// holding the lock word and the ring's head and tail. Memory per element: `valueSize`
/// bytes, no padding; plus one spare slot and the 64-byte header per map.
///
/// Concurrency: any number of producers and consumers on any threads, in either mode.
/// Every push, pop and peek takes one short lock (a futex lock whose waiters back off
/// exponentially, then sleep: `FutexLock.lockBackingOff`; not fair, a thread may
/// finish a burst of operations while another waits) and copies the value in or out under
/// it: each operation is atomic, so nothing pushed is lost or returned twice, and no value
/// is torn. Three answers need no lock at
/// all: pop and peek of an empty map (ENOENT) and a push without `BPF_EXIST` into a full
/// one (E2BIG) are decided from one atomic load of head and tail. Values are copied, never
/// borrowed: nothing a caller holds points into the map, so no epoch is needed to read.
/// A freeze excludes user-mode pushes and pops in flight through the lock (``freeze()``).
public final class RawQueueStackMap: RawMap, @unchecked Sendable {
    // @unchecked Sendable: the ring's slots are only read and written with the header's lock
    // held; the header's words are atomics; everything else is immutable.

    /// Which end pops come from.
    public enum Kind: Sendable, Hashable {
        /// `BPF_MAP_TYPE_QUEUE`: first in, first out.
        case queue
        /// `BPF_MAP_TYPE_STACK`: last in, first out.
        case stack
    }

    /// The definition the map was created with. Immutable; any thread.
    public let definition: MapDefinition
    /// Queue or stack. Immutable; any thread.
    public let kind: Kind
    /// What user and helper mode may do (the access flags). Immutable; any thread.
    public let access: MapAccess
    /// Frozen or not.
    let freezeState = MapFreezeState()
    #if DEBUG
    /// Tests (debug builds only): runs in a user-mode push with 0 before it takes the ring's
    /// lock (its unlocked frozen check passed), and with 1 once it holds the lock and found
    /// the map unfrozen. Set before the map is shared.
    package nonisolated(unsafe) var userPushStep: ((Int) -> Void)?
    #endif
    let valueSize: Int
    /// Slots in the ring: `maxEntries + 1` (Linux's `qs->size`), at most 2^32.
    let slotCount: Int
    /// Invariant: `storageSize` bytes, 64-byte aligned; bytes 0..<4 bound to
    /// `Atomic<UInt32>` (the lock word), bytes 8..<16 to `Atomic<UInt64>` (the ring's state),
    /// both zero at creation; the slots start at ``headerSize``.
    let storage: UnsafeMutableRawPointer
    let storageSize: Int
    let placement: Placement

    enum Placement {
        /// An epoch block (cache-aligned), given back with `freeCacheAligned`.
        case epoch
        /// Anonymous pages that prefer the requested node (`rcumaps_map_pages(_:preferringNode:)`).
        case numa
        /// Anonymous pages (rings larger than one epoch block): committed as they are touched.
        case pages
    }

    /// Bytes before the first slot: the lock word and the state, on a cache line of their own.
    static let headerSize = 64

    /// Creates an empty queue or stack (the kind follows `definition.type`).
    ///
    /// - Throws: ``MapError/invalidArgument`` (a type other than `QUEUE`/`STACK`, `keySize`
    ///   not 0, `valueSize` or `maxEntries` 0, `maxEntries` beyond `UInt32.max`, flags
    ///   outside `BPF_F_NUMA_NODE` and the access flags, both program access flags, a bad
    ///   name or NUMA node, a lock word); ``MapError/outOfSpace`` (E2BIG: `valueSize` over
    ///   ``MapDefinition/kmallocMaxSize``); ``MapError/noMemory`` (the ring cannot be allocated).
    public init(_ definition: MapDefinition) throws(MapError) {
        switch definition.type {
        case .queue: kind = .queue
        case .stack: kind = .stack
        default:
            throw MapError.invalidArgument.with(
                reason: "RawQueueStackMap serves BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK, not \(definition.type)")
        }
        try definition.validateQueueStack()
        self.definition = definition
        valueSize = definition.valueSize
        slotCount = definition.maxEntries + 1  // ≤ 2^32: validated
        access = MapAccess(definition.flags)
        // Linux: sizeof(struct bpf_queue_stack) + (u64)(max_entries + 1) * value_size.
        let (ring, overflow) = slotCount.multipliedReportingOverflow(by: valueSize)
        let (size, overflow2) = ring.addingReportingOverflow(Self.headerSize)
        guard !overflow, !overflow2 else {
            throw MapError.noMemory.with(reason: "a ring of \(slotCount) × \(valueSize) bytes does not fit in memory")
        }
        storageSize = size
        if let node = definition.placementNode, NUMATopology.nodeCount > 1,
           let placed = rcumaps_map_pages(size, preferringNode: Int32(node)) {
            storage = placed
            placement = .numa
        } else if size > EpochMemory.maxBlockSize {
            guard let pages = rcumaps_map_pages(size) else {  // zero-filled
                throw MapError.noMemory.with(reason: "no memory for a ring of \(size) bytes")
            }
            storage = pages
            placement = .pages
        } else {
            guard let block = EpochMemory.allocateCacheAligned(byteCount: size, tag: definition.effectivePoolTag) else {
                throw MapError.noMemory.with(reason: "no memory for a ring of \(size) bytes")
            }
            storage = block
            placement = .epoch
        }
        // The header starts zero (unlocked; head = tail = 0: empty); all-zero bytes are valid
        // atomics of 0. The slots need no initialisation: a slot is read only after a push
        // wrote it.
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: Self.headerSize)
        storage.bindMemory(to: Atomic<UInt32>.self, capacity: 1)
        (storage + 8).bindMemory(to: Atomic<UInt64>.self, capacity: 1)
        try definition.validateAfterAllocation()  // as Linux, after the allocation (deinit frees it)
    }

    deinit {
        // Nothing outside the map points into the ring (values are copied), and no operation
        // runs once the last reference is gone: nothing needs a grace period, and the ring
        // goes back at once, an epoch block too (it was retired through `freeCacheAligned`,
        // so its bytes stayed pending for a grace period and a thread dropping a queue was
        // registered with liburcu: found by review, 2026-12-06, twenty-fifth session).
        switch placement {
        case .epoch: EpochMemory.freeUnreachable(storage, cacheAligned: true)
        case .numa: rcumaps_unmap_node_pages(storage, storageSize)
        case .pages: rcumaps_unmap_pages(storage, storageSize)
        }
    }

    /// Most elements the map holds (`maxEntries`). Any thread.
    public var capacity: Int { definition.maxEntries }

    /// Elements in the map: a snapshot under concurrent pushes and pops. Any thread; no lock.
    public var count: Int {
        let (head, tail) = Self.unpack(state.pointee.load(ordering: .acquiring))
        return head >= tail ? head - tail : head + slotCount - tail
    }

    // MARK: The ring

    /// The lock word: 0 free, 1 held, 2 held with sleepers (`FutexLock`'s protocol, taken with
    /// its `lockBackingOff`).
    @inline(__always)
    var lockWord: UnsafeMutablePointer<Atomic<UInt32>> { storage.assumingMemoryBound(to: Atomic<UInt32>.self) }

    /// `head << 32 | tail`, slot indices in `0..<slotCount` (Linux's `qs->head`, `qs->tail`):
    /// empty when equal, full when `head + 1 == tail` (mod `slotCount`). Written only with
    /// the lock held (releasing), read without it (acquiring) for the lock-free answers.
    @inline(__always)
    var state: UnsafeMutablePointer<Atomic<UInt64>> { (storage + 8).assumingMemoryBound(to: Atomic<UInt64>.self) }

    @inline(__always)
    static func unpack(_ bits: UInt64) -> (head: Int, tail: Int) { (Int(bits >> 32), Int(bits & 0xFFFF_FFFF)) }

    @inline(__always)
    static func pack(head: Int, tail: Int) -> UInt64 { UInt64(head) << 32 | UInt64(tail) }

    /// Slot `index`'s bytes. Invariant: `index < slotCount`, so the slot lies inside the block.
    @inline(__always)
    func slot(_ index: Int) -> UnsafeMutableRawPointer { storage + Self.headerSize + index &* valueSize }

    @inline(__always)
    func next(_ index: Int) -> Int { index + 1 == slotCount ? 0 : index + 1 }

    /// Copies one value (`valueSize` bytes) from `source` to `destination`; an 8- or 4-byte
    /// value as one unaligned load and store instead of a call to `memmove`. Called with
    /// the lock held, on a slot and a caller's buffer of `valueSize` bytes each.
    @inline(__always)
    func copyValue(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer) {
        switch valueSize {
        case 8: destination.storeBytes(of: source.loadUnaligned(as: UInt64.self), as: UInt64.self)
        case 4: destination.storeBytes(of: source.loadUnaligned(as: UInt32.self), as: UInt32.self)
        default: destination.copyMemory(from: source, byteCount: valueSize)
        }
    }

    /// Takes the ring's lock. Every operation of every thread takes this one lock, so a
    /// waiter backs off rather than taking it the moment it is free (which moved the lock's
    /// and the ring's lines between the cores at every operation).
    @inline(__always)
    func lock() {
        FutexLock.lockBackingOff(lockWord)
    }

    @inline(__always)
    func unlock() {
        FutexLock.unlock(lockWord)
    }

    /// Linux's `queue_stack_map_push_elem` after its flag check: writes `value` at the head;
    /// a full ring refuses (E2BIG) unless `replace`, which first drops the element at the
    /// tail (the oldest), copying it to `displaced` when given. A `user` push checks the
    /// freeze again with the lock held (see ``freeze()``).
    ///
    /// - Returns: whether an element was dropped.
    @inline(__always)
    func pushChecked(_ value: UnsafeRawPointer, replace: Bool, displaced: UnsafeMutableRawPointer?,
                     user: Bool) throws(MapError) -> Bool {
        if !replace {
            // Full without the lock: a push can only be refused, linearised at this load.
            let (head, tail) = Self.unpack(state.pointee.load(ordering: .acquiring))
            if next(head) == tail { throw Self.full }
        }
        #if DEBUG
        if user { userPushStep?(0) }
        #endif
        lock()
        if user, freezeState.isFrozen {
            unlock()
            throw frozenError
        }
        #if DEBUG
        if user { userPushStep?(1) }
        #endif
        var (head, tail) = Self.unpack(state.pointee.load(ordering: .relaxed))
        var dropped = false
        if next(head) == tail {
            guard replace else {
                unlock()
                throw Self.full
            }
            // The new element first, then the dropped one out (a full ring's head and tail
            // slots differ): a caller whose `value` and `displaced` are one buffer swaps them.
            // The other order overwrote `value` with the dropped element before it was read,
            // so the ring got the dropped element back and the new one was lost (found by
            // review).
            copyValue(to: slot(head), from: value)
            if let displaced { copyValue(to: displaced, from: slot(tail)) }
            tail = next(tail)
            dropped = true
        } else {
            copyValue(to: slot(head), from: value)
        }
        head = next(head)
        state.pointee.store(Self.pack(head: head, tail: tail), ordering: .releasing)
        unlock()
        return dropped
    }

    /// Linux's `__queue_map_get` / `__stack_map_get`: copies the element a pop would take
    /// into `value` and, if `delete`, removes it. A `userPop` checks the freeze again with
    /// the lock held (see ``freeze()``).
    ///
    /// - Returns: `false` if the map is empty (`value` untouched).
    @inline(__always)
    func get(into value: UnsafeMutableRawPointer, delete: Bool, userPop: Bool = false) throws(MapError) -> Bool {
        // Empty without the lock: linearised at this load.
        let (head, tail) = Self.unpack(state.pointee.load(ordering: .acquiring))
        if head == tail { return false }
        lock()
        if userPop, freezeState.isFrozen {
            unlock()
            throw frozenError
        }
        var (h, t) = Self.unpack(state.pointee.load(ordering: .relaxed))
        if h == t {
            unlock()
            return false
        }
        switch kind {
        case .queue:
            copyValue(to: value, from: slot(t))
            if delete { t = next(t) }
        case .stack:
            let top = h == 0 ? slotCount - 1 : h - 1
            copyValue(to: value, from: slot(top))
            if delete { h = top }
        }
        if delete { state.pointee.store(Self.pack(head: h, tail: t), ordering: .releasing) }
        unlock()
        return true
    }

    static let full = MapError.outOfSpace.with(reason: "the map is full (push with BPF_EXIST overwrites the oldest element)")
    static let empty = MapError.keyNotFound.with(reason: "the map is empty")

    // MARK: Checks

    /// EINVAL unless `key` is empty: Linux's null key (`__bpf_copy_key` with key size 0).
    @inline(__always)
    func checkNoKey(_ key: UnsafeRawBufferPointer?) throws(MapError) {
        if let key, key.count != 0 {
            throw MapError.invalidArgument.with(reason: "\(definition.type) has no keys: pass an empty key buffer, not \(key.count) bytes")
        }
    }

    /// `queue_stack_map_push_elem`'s flag check: `BPF_NOEXIST` or anything above `BPF_EXIST`
    /// (so `BPF_F_LOCK` too) is EINVAL. Returns whether the push may overwrite (`BPF_EXIST`).
    @inline(__always)
    func checkPushFlags(_ flags: MapUpdateFlags) throws(MapError) -> Bool {
        guard flags.rawValue & MapUpdateFlags.noExist.rawValue == 0, flags.rawValue <= MapUpdateFlags.exist.rawValue else {
            throw MapError.invalidArgument.with(reason: "push flags must be BPF_ANY or BPF_EXIST, got \(flags)")
        }
        return flags == .exist
    }

    static let noInPlace = MapError.invalidArgument.with(
        reason: "queue and stack values are copied: use peek(into:in:), pop(into:in:), push(_:flags:in:)")

    // MARK: User mode

    /// Pushes a copy of `value` (user mode; Linux's `BPF_MAP_UPDATE_ELEM` with a null key).
    ///
    /// - Parameters:
    ///   - value: `valueSize` bytes, copied into the map.
    ///   - flags: ``MapUpdateFlags/any``, or ``MapUpdateFlags/exist`` to overwrite the oldest
    ///     element when the map is full.
    /// - Throws: ``MapError/permissionDenied`` (`BPF_F_RDONLY`, frozen);
    ///   ``MapError/invalidArgument`` (other flags, a wrong value size);
    ///   ``MapError/outOfSpace`` (E2BIG: full, without `BPF_EXIST`).
    ///
    /// Concurrency: any thread; atomic with every other push, pop and peek.
    public func push(_ value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        _ = try userPush(value, flags: flags, displaced: nil)
    }

    /// Removes the next element — a queue's oldest, a stack's newest — and copies it into
    /// `value` (user mode; Linux's `BPF_MAP_LOOKUP_AND_DELETE_ELEM` with a null key).
    ///
    /// - Throws: ``MapError/keyNotFound`` (ENOENT) when empty (`value` untouched);
    ///   ``MapError/permissionDenied`` (`BPF_F_RDONLY`, `BPF_F_WRONLY`, frozen);
    ///   ``MapError/invalidArgument`` (a wrong value size).
    ///
    /// Concurrency: any thread; of concurrent pops, each element goes to exactly one.
    public func pop(into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        // ``lookupAndDelete(key:into:flags:)``'s checks for no flags and no key, inlined
        // here (called through it, a pop was three calls deep).
        try access.checkUserRead()
        try access.checkUserWrite(freezeState)
        try checkValue(value, valueSize)
        if try !get(into: value.baseAddress!, delete: true, userPop: true) { throw Self.empty }
    }

    /// Copies the next element — what ``pop(into:)`` would return — into `value`, leaving
    /// it in the map (user mode; Linux's `BPF_MAP_LOOKUP_ELEM` with a null key).
    ///
    /// - Throws: ``MapError/keyNotFound`` (ENOENT) when empty (`value` untouched);
    ///   ``MapError/permissionDenied`` (`BPF_F_WRONLY`); ``MapError/invalidArgument``.
    ///
    /// Concurrency: any thread; works on a frozen map.
    public func peek(into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try lookup(key: UnsafeRawBufferPointer(start: nil, count: 0), into: value, flags: [])
    }

    @inline(__always)
    func userPush(_ value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                  displaced: UnsafeMutableRawPointer?) throws(MapError) -> Bool {
        // Linux's order (map_update_elem, then the push): EPERM, BPF_F_LOCK without a lock
        // word (EINVAL), the key, the value, then the push's own flag check (EINVAL).
        try access.checkUserWrite(freezeState)
        if flags.contains(.lock) { throw noLockWordError }
        try checkValue(value, valueSize)
        let replace = try checkPushFlags(flags)
        return try pushChecked(value.baseAddress!, replace: replace, displaced: displaced, user: true)
    }

    // MARK: Helper mode (as an eBPF program calls the helpers)

    /// `bpf_map_push_elem`: ``push(_:flags:)`` in helper mode. A frozen map still accepts it.
    ///
    /// - Throws: ``MapError/accessDenied`` (EACCES: `BPF_F_RDONLY_PROG`);
    ///   ``MapError/invalidArgument`` (flags other than `BPF_ANY`/`BPF_EXIST`, value size);
    ///   ``MapError/outOfSpace`` (E2BIG: full, without `BPF_EXIST`).
    ///
    /// Concurrency: any thread, inside the epoch section `section` (the mode's marker: the
    /// value is copied, nothing is borrowed).
    public func push(_ value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                     in section: borrowing EpochSection) throws(MapError) {
        try access.checkProgramWrite()
        try checkValue(value, valueSize)
        let replace = try checkPushFlags(flags)
        _ = try pushChecked(value.baseAddress!, replace: replace, displaced: nil, user: false)
    }

    /// `bpf_map_pop_elem`: ``pop(into:)`` in helper mode. A frozen map still allows it.
    ///
    /// - Throws: ``MapError/keyNotFound`` (ENOENT) when empty — `value` is then zeroed, as
    ///   Linux's helper zeroes the program's buffer; ``MapError/accessDenied`` (EACCES:
    ///   `BPF_F_RDONLY_PROG`); ``MapError/invalidArgument`` (value size).
    ///
    /// Concurrency: as ``push(_:flags:in:)``.
    public func pop(into value: UnsafeMutableRawBufferPointer, in section: borrowing EpochSection) throws(MapError) {
        try access.checkProgramWrite()
        try checkValue(value, valueSize)
        try helperGet(into: value, delete: true)
    }

    /// `bpf_map_peek_elem`: ``peek(into:)`` in helper mode.
    ///
    /// - Throws: ``MapError/keyNotFound`` (ENOENT) when empty — `value` is then zeroed, as
    ///   Linux's helper does; ``MapError/invalidArgument`` (value size).
    ///
    /// Concurrency: as ``push(_:flags:in:)``.
    public func peek(into value: UnsafeMutableRawBufferPointer, in section: borrowing EpochSection) throws(MapError) {
        try checkValue(value, valueSize)
        try helperGet(into: value, delete: false)
    }

    func helperGet(into value: UnsafeMutableRawBufferPointer, delete: Bool) throws(MapError) {
        guard try get(into: value.baseAddress!, delete: delete) else {
            value.initializeMemory(as: UInt8.self, repeating: 0)
            throw Self.empty
        }
    }

    // MARK: RawMap: lookup (peek), update (push), lookup-and-delete (pop)

    /// User-mode peek through the key/value interface: `key` must be empty.
    /// Contract: ``peek(into:)``.
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try lookup(key: key, into: value, flags: [])
    }

    /// User-mode peek with Linux's lookup flags: any flag but `BPF_F_LOCK` is EINVAL before
    /// anything else, then EPERM (`BPF_F_WRONLY`), then `BPF_F_LOCK` is EINVAL (no lock
    /// word), then a non-empty key and a wrong value size are EINVAL; empty is ENOENT.
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                       flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: true)
        try access.checkUserRead()
        if flags.contains(.lock) { throw noLockWordError }
        try checkNoKey(key)
        try checkValue(value, valueSize)
        if try !get(into: value.baseAddress!, delete: false) { throw Self.empty }
    }

    /// Helper-mode in-place lookup: EINVAL. Linux's verifier refuses `bpf_map_lookup_elem`
    /// on a queue or stack; use ``peek(into:in:)``.
    public func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        throw Self.noInPlace
    }

    /// User-mode push through the key/value interface: `key` must be empty.
    /// Contract: ``push(_:flags:)``.
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        try access.checkUserWrite(freezeState)
        if flags.contains(.lock) { throw noLockWordError }
        try checkNoKey(key)
        _ = try userPush(value, flags: flags, displaced: nil)
    }

    /// User-mode push that reports the element a `BPF_EXIST` push overwrote: `true`, with
    /// that element (the oldest) copied to `displaced`, when the map was full; `false` when
    /// nothing was dropped. Not a Linux operation. `key` must be empty.
    ///
    /// - Throws: as ``push(_:flags:)``; ``MapError/invalidArgument`` for a `displaced`
    ///   buffer of the wrong size (checked first).
    public func exchange(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                         into displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        try checkValue(displaced, valueSize)
        try access.checkUserWrite(freezeState)
        if flags.contains(.lock) { throw noLockWordError }
        try checkNoKey(key)
        return try userPush(value, flags: flags, displaced: displaced.baseAddress!)
    }

    /// Helper-mode update: Linux's verifier refuses `bpf_map_update_elem` on a queue or
    /// stack — EACCES for a `BPF_F_RDONLY_PROG` map, EINVAL otherwise. Use ``push(_:flags:in:)``.
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                       in section: borrowing EpochSection) throws(MapError) {
        try access.checkProgramWrite()
        throw MapError.invalidArgument.with(reason: "helper-mode update on a \(definition.type): use push(_:flags:in:)")
    }

    /// User-mode pop through the key/value interface: `key` must be empty. Contract: ``pop(into:)``.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try lookupAndDelete(key: key, into: value, flags: [])
    }

    /// User-mode pop with flags, in Linux's order: a flag other than `BPF_F_LOCK` → EINVAL;
    /// no read or no write access, or frozen → EPERM; then any flag at all → EINVAL (queues
    /// and stacks take none); a non-empty key or a wrong value size → EINVAL; empty → ENOENT.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                                flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: true)
        try access.checkUserRead()
        try access.checkUserWrite(freezeState)
        guard flags.isEmpty else {
            throw MapError.invalidArgument.with(reason: "pop from a \(definition.type) takes no flags, got \(flags.rawValue)")
        }
        try checkNoKey(key)
        try checkValue(value, valueSize)
        if try !get(into: value.baseAddress!, delete: true, userPop: true) { throw Self.empty }
    }

    // MARK: RawMap: delete, get-next-key (EINVAL)

    /// User-mode delete: EINVAL (after EPERM for `BPF_F_RDONLY` or a frozen map), as Linux.
    public func delete(key: UnsafeRawBufferPointer) throws(MapError) {
        try access.checkUserWrite(freezeState)
        try checkNoKey(key)
        throw MapError.invalidArgument.with(reason: "elements of a \(definition.type) cannot be deleted: pop them")
    }

    /// User-mode delete with flags: any flag is EINVAL first (Linux's delete takes none).
    public func delete(key: UnsafeRawBufferPointer, flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: false)
        try delete(key: key)
    }

    /// Helper-mode delete: Linux's verifier refuses `bpf_map_delete_elem` on a queue or stack
    /// — EACCES for a `BPF_F_RDONLY_PROG` map, EINVAL otherwise.
    public func delete(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError) {
        try access.checkProgramWrite()
        throw MapError.invalidArgument.with(reason: "helper-mode delete on a \(definition.type): use pop(into:in:)")
    }

    /// Get-next-key: EINVAL (after EPERM for `BPF_F_WRONLY`), as Linux: a queue or stack
    /// cannot be iterated.
    public func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try access.checkUserRead()
        try checkNoKey(key)
        throw MapError.invalidArgument.with(reason: "a \(definition.type) has no keys to iterate")
    }

    /// As ``nextKey(after:into:)``: EINVAL.
    public func nextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try self.nextKey(after: key, into: nextKey)
    }

    // MARK: Freezing

    /// Whether the map is frozen. Any thread.
    public var isFrozen: Bool { freezeState.isFrozen }

    /// Freezes the map: user-mode push and pop fail with EPERM afterwards; peek and helper
    /// mode are unaffected. Contract: ``RawMap/freeze()``.
    ///
    /// How a push or pop in flight is excluded without an epoch section on every one: a
    /// user-mode push or pop reads the frozen flag again with the ring's lock held, and the
    /// freeze, after setting the flag, takes and releases that lock once. A push or pop that
    /// saw the map unfrozen held the lock until it was done, so it has finished when this
    /// returns; one that takes the lock later sees the flag.
    @available(*, noasync, message: "waits for a grace period: call it from a thread of your own, or use `await map.freezeAsync()`")
    public func freeze() throws(MapError) {
        try freezeState.freeze(access: access, lockWord: false) {
            lock()
            unlock()
        }
    }

    // MARK: Batches: none (ENOTSUPP after the access checks, as Linux's BPF_DO_BATCH)

    /// `BPF_MAP_LOOKUP_BATCH`: EPERM (`BPF_F_WRONLY`), else ENOTSUPP (524).
    public func lookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                            values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try unsupportedBatch(read: true, write: false, "lookup")
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`: EPERM (no read or write access, frozen), else ENOTSUPP.
    public func lookupAndDeleteBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                                     values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                                     flags: UInt64) throws(MapError) -> MapBatchResult {
        try unsupportedBatch(read: true, write: true, "lookup-and-delete")
    }

    /// `BPF_MAP_UPDATE_BATCH`: EPERM (`BPF_F_RDONLY`, frozen), else ENOTSUPP.
    public func updateBatch(keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, count: Int,
                            elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult {
        try unsupportedBatch(read: false, write: true, "update")
    }

    /// `BPF_MAP_DELETE_BATCH`: EPERM (`BPF_F_RDONLY`, frozen), else ENOTSUPP.
    public func deleteBatch(keys: UnsafeRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try unsupportedBatch(read: false, write: true, "delete")
    }
}
