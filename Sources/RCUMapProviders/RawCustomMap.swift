import CRCUMapsShim
import RCUBaseMaps
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A map of a custom type: a built-in base map with the provider's callbacks layered on it.
///
/// Storage, iteration, locking and memory come from the base map (created with the stored
/// value size the provider chose); this type checks sizes on every path, calls the
/// provider's find / addition callbacks, and blocks helper-mode CRUD when the provider
/// transforms stored values. Deletion callbacks run from inside the base map (see
/// ``MapProviderDispatchTable``).
///
/// Concurrency: any number of readers and writers on any threads, as for the base map.
public final class RawCustomMap: RawMap, @unchecked Sendable {
    // @unchecked Sendable: every stored property is immutable and Sendable, or a Mutex;
    // `hooks` is unowned(unsafe) (kept alive by `base`, which only this map owns).

    /// The definition users see: the custom type, the user value size.
    public let definition: MapDefinition
    /// The value size the base map stores.
    public let storedValueSize: Int
    /// The base map kind the provider registered.
    public let baseKind: ProviderBaseMap
    let base: any ObservableBaseMap
    /// `base` as its concrete type when it is the bucket-locked hash (the usual base), so that
    /// the inlinable helper-mode lookup reaches it without an existential call. Unmanaged:
    /// `base` keeps it alive as long as `self`, and a strong copy would be retained around
    /// each lookup (a reference-count write every thread shares; measured: 2-thread lookups
    /// at 0.3× their base).
    @usableFromInline let bucketBase: Unmanaged<RawBucketHashMap>?
    /// unowned(unsafe): `base` owns the hooks and only this map owns `base`, so they live as
    /// long as `self`; a checked `unowned` would cost an atomic refcount operation on every
    /// access, which all threads would contend on.
    unowned(unsafe) let hooks: ProviderHooks
    /// `hooks`, for calls that must not retain them (``rollBack(key:storedValue:flags:)``).
    let unmanagedHooks: Unmanaged<ProviderHooks>
    /// The provider's context as callbacks receive it (``MapElementCall/context``), read
    /// from `self` rather than through `hooks`: a retain of the context around a callback
    /// is a write every thread shares (one such pair, around an opaque call, made a
    /// pass-through lookup 3.4× its base). unowned(unsafe): `hooks` holds it, and lives as
    /// long as `self`.
    @usableFromInline unowned(unsafe) let callContext: (any MapProviderContext)?
    @usableFromInline let dispatch: MapProviderDispatchTable
    /// `dispatch.preprocessElementAddition` as a non-optional closure (a no-op if there is
    /// none; `hasAddition` says which), for the plain write path: called from this `let`,
    /// its context is borrowed, while unwrapping the optional retained and released the
    /// context around every write.
    let addition: @Sendable (MapElementCall) throws(MapError) -> Void
    let hasAddition: Bool
    @usableFromInline package let updatesOriginalValue: Bool
    let validatesValues: Bool
    /// Program types associated, and those whose association a thread is asking the
    /// provider about (by the asking thread's `pthread_self()` and its process's ID: in the
    /// child of a fork, an asker of the parent's is gone).
    private struct Associations {
        struct Asker { var thread: UInt; var process: pid_t }
        var types: [ProgramType] = []
        var pending: [ProgramType: Asker] = [:]
    }
    /// Under the provider layer's one lock, which a fork takes (``ProviderState``).
    private let programTypes = ProviderState(Associations())

    /// The checks of a definition that need no provider, made by the registry before it
    /// counts the map as alive (``MapProviderRegistry/createMap(_:)``): a definition refused
    /// here never counts, so an unregister racing with it does not answer EBUSY for a map
    /// that never existed (it counted from before these checks: found by review,
    /// 2026-12-07).
    static func checkBeforeCounting(_ definition: MapDefinition) throws(MapError) {
        // The checks `map_create` makes before any type's own: `RDONLY|WRONLY` together and
        // the NUMA node (EINVAL), before the provider is asked (it was asked first, and its
        // errno came back for a definition the map layer refuses: found by review,
        // 2026-12-05, nineteenth session).
        try definition.validateCommon()
        // Sizes the provider is told about must at least be sane.
        guard definition.keySize > 0, definition.valueSize > 0, definition.maxEntries > 0,
              definition.keySize <= Int(UInt32.max), definition.valueSize <= Int(UInt32.max),
              definition.maxEntries <= Int(UInt32.max) else {
            throw MapError.invalidArgument.with(reason: "key size, value size and maxEntries must be 1...2^32-1")
        }
        guard definition.lockOffset == nil else {
            throw MapError.invalidArgument.with(reason: "custom map values cannot hold a lock word")
        }
    }

    init(_ definition: MapDefinition, binding: ProviderBinding) throws(MapError) {
        let request = MapCreateRequest(type: definition.type, keySize: definition.keySize,
                                       valueSize: definition.valueSize, maxEntries: definition.maxEntries)
        // The caller counted this map as alive; until `hooks` exists (whose deinit uncounts
        // it), a failure must uncount it here.
        func abandon(_ error: MapError) -> MapError {
            binding.liveMaps.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            return error
        }
        // The definition passed `checkBeforeCounting(_:)` before it was counted.
        guard let create = binding.dispatch.preprocessMapCreate else { throw abandon(MapError.invalidArgument) }
        let created: MapCreateResult
        do {
            created = try create(request)
        } catch {
            throw abandon(error)
        }
        let hooks = ProviderHooks(binding: binding, context: created.context)
        // From here on, releasing `hooks` calls postprocessMapDelete.
        guard created.actualValueSize > 0, created.actualValueSize <= MapDefinition.maxValueSize else {
            throw MapError.invalidArgument.with(reason: "provider chose an invalid stored value size \(created.actualValueSize)")
        }
        guard binding.properties.updatesOriginalValue || created.actualValueSize == definition.valueSize else {
            throw MapError.invalidArgument.with(
                reason: "a provider without updatesOriginalValue must store the user value size (\(definition.valueSize)), not \(created.actualValueSize)")
        }
        var baseDefinition = definition
        baseDefinition.type = binding.base.definitionType
        baseDefinition.hashImplementation = binding.base.hashImplementation
        baseDefinition.valueSize = created.actualValueSize
        baseDefinition.poolTag = definition.poolTag ?? .customMapBase
        switch binding.base {
        case .hashLockFree:
            base = try RawLockFreeHashMap(baseDefinition, observer: hooks)
            bucketBase = nil
        case .hashBucketLocked:
            let bucket = try RawBucketHashMap(baseDefinition, observer: hooks)
            base = bucket
            bucketBase = Unmanaged.passUnretained(bucket)
        case .array:
            base = try RawArrayMap(baseDefinition, observer: hooks)
            bucketBase = nil
        }
        self.definition = definition
        self.access = base.access
        self.storedValueSize = created.actualValueSize
        self.baseKind = binding.base
        self.hooks = hooks
        unmanagedHooks = Unmanaged.passUnretained(hooks)
        callContext = created.context
        self.dispatch = binding.dispatch
        // `if let`, not `??`: through the generic `??` the closure came back wrapped in
        // reabstraction thunks, each run per call.
        if let callback = binding.dispatch.preprocessElementAddition {
            addition = callback
            hasAddition = true
        } else {
            addition = { _ throws(MapError) in }
            hasAddition = false
        }
        self.updatesOriginalValue = binding.properties.updatesOriginalValue
        self.validatesValues = binding.properties.validatesValues
    }

    /// The context the provider returned for this map (the seeds' `MAP_CONTEXT()`).
    public var providerContext: (any MapProviderContext)? { hooks.context }

    /// Program types associated so far, in order.
    public var associatedProgramTypes: [ProgramType] { programTypes.withLock { $0.types } }

    /// Associates a program type with the map, after the provider's
    /// `preprocessAssociateProgramType` accepts it. Associating a type twice is a no-op.
    ///
    /// Of several threads associating one new type, one asks the provider and the others
    /// wait for its answer (the provider is asked once, and asked again only if it refused).
    /// The provider is called with no lock held: its callback may read
    /// ``associatedProgramTypes`` and associate other types, on this map or another. From
    /// inside such a callback (of any custom map), associating the type it is being asked
    /// about, or a type another thread's callback is being asked about for the map named
    /// (two callbacks could wait for each other, on one map or across two), fails with
    /// EDEADLK; so does associating, from a callback that runs under a map's lock (the
    /// pre-deletion callback, or the find callback of a lookup-and-delete), a type another
    /// thread's callback is being asked about: that callback may be waiting for the lock;
    /// and so does waiting for another thread's answer from inside an epoch section (that
    /// thread's callback may be waiting for a grace period, as a `freeze()` does).
    ///
    /// - Throws: whatever the provider throws to refuse it;
    ///   ``/RCUBaseMaps/MapError/wouldDeadlock`` from inside the provider's callback for the same type.
    public func associate(programType: ProgramType) throws(MapError) {
        enum Claim { case associated, asking, waiting, reentered, crossed }
        let thread = UInt(pthread_self())
        var waits = 0
        while true {
            let claim = programTypes.withLock { state -> Claim in
                if state.types.contains(programType) { return .associated }
                if let asker = state.pending[programType] {
                    // Claimed in the parent of this forked child: by a thread that did not
                    // follow it into the child, so no one will finish that claim here (the
                    // child waited for it forever: found by review, 2026-12-05) — unless this
                    // thread is inside an association callback, as the forking thread is if
                    // it forked from one: then the claim may be its own, and asking again
                    // would re-enter the provider. The process is compared first: a new
                    // thread of the child may get a dead parent thread's `pthread_t`.
                    if asker.process != getpid() {
                        if rcumaps_association_depth() > 0 { return .crossed }
                        state.pending[programType] = Associations.Asker(thread: thread, process: getpid())
                        return .asking
                    }
                    if asker.thread == thread { return .reentered }
                    // This thread is inside an association callback of its own — of this map
                    // (asking about another type) or of another map — and would wait for a
                    // thread that may be waiting for it in turn. (Looking only at this map's
                    // pending types, two threads crossing between two maps waited for each
                    // other forever: found by review.) Or inside a callback that runs under a
                    // map's lock, which the asking thread's callback may be waiting for (it
                    // may write to that map): waiting there hung both (found by review,
                    // 2026-12-05, sixteenth session).
                    // Or inside an epoch section: the asking thread's callback may wait for a
                    // grace period (a `freeze()` of a map), which this section would hold up
                    // while this thread waited for it (found by review, 2026-12-06).
                    return rcumaps_association_depth() > 0 || rcumaps_locked_callback_depth() > 0
                        || Epoch.isInsideAnyReadLock ? .crossed : .waiting
                }
                state.pending[programType] = Associations.Asker(thread: thread, process: getpid())
                return .asking
            }
            switch claim {
            case .associated:
                return
            case .reentered:
                throw MapError.wouldDeadlock.with(
                    reason: "associating \(programType) from inside the provider's callback for \(programType)")
            case .crossed:
                throw MapError.wouldDeadlock.with(
                    reason: "associating \(programType) from inside a provider callback or an epoch section while another thread's callback associates it")
            case .waiting:
                // The asking thread is in the provider's callback: yield, then nap.
                waits += 1
                if waits < 64 { sched_yield() } else { usleep(100) }
            case .asking:
                do throws(MapError) {
                    rcumaps_association_enter()
                    defer { rcumaps_association_leave() }
                    try dispatch.preprocessAssociateProgramType?(hooks.context, programType)
                } catch {
                    programTypes.withLock { $0.pending[programType] = nil }
                    throw error
                }
                programTypes.withLock { state in
                    state.pending[programType] = nil
                    state.types.append(programType)
                }
                return
            }
        }
    }

    /// Entries in the map: a snapshot under concurrent updates (arrays: `maxEntries`). Any thread.
    public var count: Int { base.count }

    /// The base hash's capacity units in use (entries, reservations, parked credits: never
    /// fewer than the entries, and not clamped to `maxEntries` as ``count`` is), for checks
    /// that the map never holds more than `maxEntries`; ``count`` on an array base. Not API.
    package var capacityUnitsInUse: Int {
        if let bucket = base as? RawBucketHashMap { return bucket.capacityUnitsInUse }
        if let lockFree = base as? RawLockFreeHashMap { return lockFree.capacityUnitsInUse }
        return base.count
    }

    // MARK: Checks

    static let writeFromLockedCallback = MapError.wouldDeadlock.with(
        reason: "a provider callback that runs under this map's lock (preprocessElementDeletion, or postprocessFindElement during a lookup-and-delete) cannot write to the same map")

    /// Refuses a write on a thread that is inside one of this map's callbacks that run
    /// under the base map's lock: the write would wait for that lock forever.
    @inline(__always)
    func checkNotInLockedCallback() throws(MapError) {
        if _slowPath(rcumaps_callback_holds(hooks.identity) != 0) { throw Self.writeFromLockedCallback }
    }

    @inlinable @inline(__always)
    func checkSizes(key: UnsafeRawBufferPointer, value: Int?) throws(MapError) {
        guard key.count == definition.keySize, key.baseAddress != nil else {
            throw MapError.invalidArgument.with(reason: "key buffer is \(key.count) bytes, map keys are \(definition.keySize)")
        }
        if let value, value != definition.valueSize {
            throw MapError.invalidArgument.with(reason: "value buffer is \(value) bytes, map values are \(definition.valueSize)")
        }
    }

    /// Runs `body` with a stored value's worth of stack memory, zeroed unless `zeroed` is
    /// false (a lookup's copy overwrites every byte before anything reads it; zeroing it
    /// was a `memset` call a lookup).
    ///
    /// A stored value of up to 64 bytes (most: an object handle, a counter, a small struct)
    /// takes a buffer of a fixed size, which the compiler lays out in the caller's frame:
    /// one of the stored value's own size was a dynamic stack allocation, about 15
    /// instructions a call.
    @inline(__always)
    func withStoredBuffer<R>(zeroed: Bool = true,
                             _ body: (UnsafeMutableRawBufferPointer) throws(MapError) -> R) throws(MapError) -> R {
        try Self.withScratch(byteCount: storedValueSize, zeroed: zeroed, body)
    }

    /// Copies `source` to `destination` (the same size): 4 and 8 bytes inline, as the
    /// common values are, where `copyMemory` calls `memcpy`.
    @inline(__always)
    static func copy(_ source: UnsafeMutableRawBufferPointer, to destination: UnsafeMutableRawBufferPointer) {
        switch source.count {
        case 8: destination.baseAddress!.storeBytes(of: source.baseAddress!.loadUnaligned(as: UInt64.self), as: UInt64.self)
        case 4: destination.baseAddress!.storeBytes(of: source.baseAddress!.loadUnaligned(as: UInt32.self), as: UInt32.self)
        default: destination.copyMemory(from: UnsafeRawBufferPointer(source))
        }
    }

    /// Whether `key` and `buffer` share a byte: Linux's `bpf_map_lookup_elem(fd, &x, &x)`
    /// idiom, one buffer for the key and the answer.
    @inline(__always)
    static func overlap(_ key: UnsafeRawBufferPointer, _ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let start = key.baseAddress, let other = buffer.baseAddress else { return false }
        let otherStart = UnsafeRawPointer(other)
        return start < otherStart + buffer.count && otherStart < start + key.count
    }

    /// Calls `body` with a copy of `key` on the heap: for a call whose answer buffer is the
    /// key's own (``overlap(_:_:)``), so that writing the answer cannot change the key
    /// before the map has read it. Rare, so not on the stack's fast path.
    static func withKeyApart<Result>(_ key: UnsafeRawBufferPointer,
                                     _ body: (UnsafeRawBufferPointer) throws(MapError) -> Result) throws(MapError) -> Result {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(1, key.count), alignment: 16)
        defer { copy.deallocate() }
        copy.copyMemory(from: key)
        return try body(UnsafeRawBufferPointer(rebasing: copy[..<key.count]))
    }

    /// Zeroes `buffer`: one store for the common 4- and 8-byte values.
    @inline(__always)
    static func zero(_ buffer: UnsafeMutableRawBufferPointer) {
        switch buffer.count {
        case 8: buffer.baseAddress!.storeBytes(of: 0, as: UInt64.self)
        case 4: buffer.baseAddress!.storeBytes(of: 0, as: UInt32.self)
        default: buffer.initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    /// Runs `body` with a temporary buffer of `byteCount` bytes (zeroed if asked). Up to 64
    /// bytes it is a fixed-size stack buffer: a temporary allocation of a size known only at
    /// run time cost about 90 instructions a call (the object map's lookups, measured).
    @inline(__always)
    static func withScratch<R>(byteCount: Int, zeroed: Bool = false,
                               _ body: (UnsafeMutableRawBufferPointer) throws(MapError) -> R) throws(MapError) -> R {
        if byteCount <= 64 {
            return try withUnsafeTemporaryAllocation(byteCount: 64, alignment: 16) { raw throws(MapError) in
                let buffer = UnsafeMutableRawBufferPointer(rebasing: raw[..<byteCount])
                if zeroed { buffer.initializeMemory(as: UInt8.self, repeating: 0) }
                return try body(buffer)
            }
        }
        return try withUnsafeTemporaryAllocation(byteCount: byteCount, alignment: 16) { raw throws(MapError) in
            if zeroed { raw.initializeMemory(as: UInt8.self, repeating: 0) }
            return try body(raw)
        }
    }

    // MARK: Lookup

    /// User-mode lookup. Contract: ``/RCUBaseMaps/RawMap/lookup(key:into:)``.
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try access.checkUserRead()
        try checkSizes(key: key, value: value.baseAddress == nil ? -1 : value.count)
        // One buffer for the key and the answer (`lookup(fd, &x, &x)`): a translating
        // provider's answer is written into `value` before the key is read — zeroed first,
        // below — so the key is read from a copy. The map looked key 0 up instead (found by
        // review, 2026-12-06, twenty-ninth session). Built-in maps read the key first.
        if updatesOriginalValue, Self.overlap(key, value) {
            try Self.withKeyApart(key) { (apart) throws(MapError) in try lookup(key: apart, into: value) }
            return
        }
        // A translating provider's answer goes straight into `value` (below), zeroed first:
        // bytes the callback leaves unwritten read as 0, as row 207 made them for
        // lookup-and-delete and batches — the typed maps pass an uninitialised temporary
        // here, and a partial answer came back with stack bytes (found by review,
        // 2026-12-06). Zeroed before the section, also for a key that turns out absent:
        // inside the section's closure, the store kept that closure from being inlined (31
        // more instructions an object-map lookup).
        if updatesOriginalValue { Self.zero(value) }
        try Epoch.withSection { (section) throws(MapError) in
            if updatesOriginalValue {
                // The callback writes its answer straight into the caller's buffer, as
                // eBPF-for-Windows' does: one that refuses after writing part of it leaves
                // that part there. (A copy first, as below, cost the object map's lookups 43
                // of their 312 instructions: its closures no longer inlined.)
                try withStoredBuffer(zeroed: false) { (stored) throws(MapError) in
                    try baseLookup(key: key, into: stored, in: section)
                    try dispatch.postprocessFindElement!(MapElementCall(
                        context: callContext, key: key, inValue: UnsafeRawBufferPointer(stored), outValue: value, flags: []))
                }
            } else if let find = dispatch.postprocessFindElement {
                // Into a copy first: if the callback refuses, the caller's buffer is untouched.
                try withStoredBuffer(zeroed: false) { (stored) throws(MapError) in
                    try baseLookup(key: key, into: stored, in: section)
                    try find(MapElementCall(context: callContext, key: key, inValue: UnsafeRawBufferPointer(stored),
                                            outValue: nil, flags: []))
                    value.copyMemory(from: UnsafeRawBufferPointer(stored))
                }
            } else {
                try baseLookup(key: key, into: value, in: section)
            }
        }
    }

    /// The base map's user-mode lookup, from inside the caller's section with the access
    /// and sizes checked (``lookup(key:into:)``); a bucket-locked base is called by its
    /// concrete type, whose copy is inlined here without its checks or a section of its own.
    /// Through the existential, the base's protocol witness ran the lookup with its section's
    /// C read lock and unlock as calls (Swift marks the calls a witness thunk makes
    /// `noinline`): 248 of an object-map lookup's 475 instructions.
    @inline(__always)
    func baseLookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                    in section: borrowing EpochSection) throws(MapError) {
        guard let bucketBase else { return try base.lookup(key: key, into: value) }
        // Invariant: `base` (owned by `self`) keeps the unmanaged reference alive.
        let found = bucketBase._withUnsafeGuaranteedRef { bucket in
            bucket.copyValue(key: key, into: value.baseAddress!, in: section)
        }
        if !found { throw MapError.keyNotFound }
    }

    /// Helper-mode lookup, borrowed until `section` ends. Contract: ``/RCUBaseMaps/RawMap/lookupInPlace(key:in:)``.
    ///
    /// Inlinable: code that names `RawCustomMap` (not a generic `RawMap`, whose requirement
    /// Swift 6.3 calls through the witness table) gets the base map's lookup inlined when the
    /// base is the bucket-locked hash; the provider's find callback stays one indirect call.
    @inlinable @inline(__always)
    public func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        guard !updatesOriginalValue else { throw Self.helperModeBlocked }
        // No size check of its own: the base map's lookup checks the key (the same size,
        // with the same error) before the find callback can run.
        // Invariant: `base` (owned by `self`) keeps the unmanaged reference alive.
        let stored = if let bucketBase {
            // (`_withUnsafeGuaranteedRef` does not forward typed throws: a Result carries the error.)
            try bucketBase._withUnsafeGuaranteedRef { map -> Result<UnsafeMutableRawBufferPointer, MapError> in
                do throws(MapError) { return .success(try map.lookupInPlace(key: key, in: section)) } catch {
                    return .failure(error)
                }
            }.get()
        } else {
            try baseLookupInPlace(key: key, in: section)
        }
        try dispatch.postprocessFindElement?(MapElementCall(
            context: callContext, key: key, inValue: UnsafeRawBufferPointer(stored), outValue: nil, flags: .helper))
        return stored
    }

    /// The base map's helper-mode lookup, through its existential (bases other than the bucket hash).
    @usableFromInline
    func baseLookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        try base.lookupInPlace(key: key, in: section)
    }

    @usableFromInline package static let helperModeBlocked = MapError.notSupported.with(
        reason: "helper-mode access is blocked on maps whose provider updates the original value")

    // MARK: Update

    /// User-mode update. Contract: ``/RCUBaseMaps/RawMap/update(key:value:flags:)``.
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        let map = Unmanaged.passUnretained(self)
        _ = try update(key: key, value: value, flags: flags, operation: []) { (stored) throws(MapError) -> Bool in
            try Self.guaranteed(map) { (map) throws(MapError) in try map.baseUpdate(key: key, value: stored, flags: flags) }
            return true
        }
    }

    /// `.noExist` update that answers a present key with `false` (the addition is rolled
    /// back through the deletion callback, as for EEXIST). Contract:
    /// ``/RCUBaseMaps/RawMap/insertIfAbsent(key:value:)``.
    public func insertIfAbsent(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(MapError) -> Bool {
        let map = Unmanaged.passUnretained(self)
        return try update(key: key, value: value, flags: .noExist, operation: []) { (stored) throws(MapError) -> Bool in
            try Self.guaranteed(map) { (map) throws(MapError) -> Bool in
                guard let bucketBase = map.bucketBase else { return try map.base.insertIfAbsent(key: key, value: stored) }
                // Invariant: `base` (owned by `map`) keeps the unmanaged reference alive.
                return try Self.guaranteed(bucketBase) { (bucket) throws(MapError) -> Bool in
                    try bucket.insertIfAbsent(key: key, value: stored)
                }
            }
        }
    }

    /// The base map's user-mode update; a bucket-locked base is called by its concrete type
    /// (through the existential, each write went through two more witness thunks).
    @inline(__always)
    func baseUpdate(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        guard let bucketBase else { return try base.update(key: key, value: value, flags: flags) }
        // Invariant: `base` (owned by `self`) keeps the unmanaged reference alive.
        try Self.guaranteed(bucketBase) { (bucket) throws(MapError) in try bucket.update(key: key, value: value, flags: flags) }
    }

    /// The base map's user-mode delete, as ``baseUpdate(key:value:flags:)``.
    @inline(__always)
    func baseDelete(key: UnsafeRawBufferPointer) throws(MapError) {
        guard let bucketBase else { return try base.delete(key: key) }
        // Invariant: `base` (owned by `self`) keeps the unmanaged reference alive.
        try Self.guaranteed(bucketBase) { (bucket) throws(MapError) in try bucket.delete(key: key) }
    }

    /// Runs `body` with the map behind `map` (this map, or its base), without retaining it:
    /// for the closures a write hands to ``update(key:value:flags:operation:baseUpdate:)``. A
    /// closure that captures `self` retained and released the map around every write — a
    /// reference-count write every thread shares. Invariant: the caller's `self` keeps the
    /// map alive (it owns its base).
    @inline(__always)
    static func guaranteed<Map: AnyObject, R>(_ map: Unmanaged<Map>,
                                              _ body: (Map) throws(MapError) -> R) throws(MapError) -> R {
        // (`_withUnsafeGuaranteedRef` does not forward typed throws: a Result carries the error.)
        try map._withUnsafeGuaranteedRef { map -> Result<R, MapError> in
            do throws(MapError) { return .success(try body(map)) } catch { return .failure(error) }
        }.get()
    }

    /// User-mode update that reports the value it replaced. Contract:
    /// ``/RCUBaseMaps/RawMap/exchange(key:value:flags:into:)``.
    ///
    /// The base map reports the stored value it displaced; the provider's find callback, if
    /// it has one, sees it as a lookup would — a provider that transforms values translates
    /// it back — inside the same section (so the stored value is still readable even though
    /// its deletion callback has run, as for a concurrent lookup). The new value is stored
    /// whatever the callback answers: if it hides the displaced element (ENOENT), the
    /// result is `false`, as for an absent key (also with `BPF_EXIST`, which the base map
    /// decided); any other error is thrown, with a reason saying the new value was stored.
    public func exchange(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                         into displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        guard displaced.count == definition.valueSize, displaced.baseAddress != nil else {
            throw MapError.invalidArgument.with(
                reason: "value buffer is \(displaced.count) bytes, map values are \(definition.valueSize)")
        }
        // The displaced value's buffer is the key's: the find callback below is given the key
        // after `displaced` is zeroed and written, so it is given a copy (it translated the
        // old value with a zeroed key: found by review, 2026-12-06, twenty-ninth session).
        if Self.overlap(key, displaced), dispatch.postprocessFindElement != nil {
            return try Self.withKeyApart(key) { (apart) throws(MapError) -> Bool in
                try exchange(key: apart, value: value, flags: flags, into: displaced)
            }
        }
        // After the section (defers run last first): inside it the base's own throttle
        // cannot wait, and a lock-free base's retirements had no back-pressure here (found
        // by review, 2026-12-05).
        defer { base.throttleWriterIfBehind() }
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        return try withStoredBuffer { (storedOld) throws(MapError) -> Bool in
            var replaced = false
            _ = try update(key: key, value: value, flags: flags, operation: []) { (stored) throws(MapError) -> Bool in
                replaced = try base.exchange(key: key, value: stored, flags: flags, into: storedOld)
                return true
            }
            guard replaced else { return false }
            // (Until 2026-12-05 every refusal of a translating provider's callback read as
            // "absent", and a non-translating provider's was not asked, so an element its
            // lookups hide was handed out: found by review.)
            guard let find = dispatch.postprocessFindElement else {
                displaced.copyMemory(from: UnsafeRawBufferPointer(storedOld))
                return true
            }
            // A translating callback's unwritten bytes read as 0 (see `lookup(key:into:)`).
            if updatesOriginalValue { Self.zero(displaced) }
            do throws(MapError) {
                try find(MapElementCall(
                    context: callContext, key: key, inValue: UnsafeRawBufferPointer(storedOld),
                    outValue: updatesOriginalValue ? displaced : nil, flags: []))
            } catch where error == .keyNotFound {
                return false
            } catch {
                throw error.with(reason: "the new value was stored, but the provider refused the value it replaced: \(error)")
            }
            if !updatesOriginalValue { displaced.copyMemory(from: UnsafeRawBufferPointer(storedOld)) }
            return true
        }
    }

    /// Helper-mode update (providers see `.helper`). Contract: ``/RCUBaseMaps/RawMap/update(key:value:flags:in:)``.
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                       in section: borrowing EpochSection) throws(MapError) {
        guard !updatesOriginalValue else { throw Self.helperModeBlocked }
        let map = Unmanaged.passUnretained(self)
        _ = try update(key: key, value: value, flags: flags, operation: .helper) { (stored) throws(MapError) -> Bool in
            try Epoch.withSection { (section) throws(MapError) in
                try Self.guaranteed(map) { (map) throws(MapError) in
                    try map.base.update(key: key, value: stored, flags: flags, in: section)
                }
            }
            return true
        }
    }

    /// Addition callback, then `baseUpdate` with the stored value; rolls the addition back
    /// through the deletion callback (`.update`) if the base update fails, or refuses
    /// (returns `false`: a present key for `insertIfAbsent`). Returns what `baseUpdate` did.
    ///
    /// Always inlined into its callers (this module's writes): called, `baseUpdate` was a
    /// closure value reached through two reabstraction thunks per write.
    @inline(__always)
    func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                operation: MapOperationFlags,
                baseUpdate: (UnsafeRawBufferPointer) throws(MapError) -> Bool) throws(MapError) -> Bool {
        try checkNotInLockedCallback()
        // The base map's own checks, before any callback runs.
        if operation.contains(.helper) { try access.checkProgramWrite() } else { try checkUserWrite() }
        // A helper-mode write to an array base meets only `array_map_update_elem`'s checks,
        // whose BPF_F_LOCK check comes after the index and NOEXIST ones (below); the
        // syscall side checks the flag first.
        let lockCheckedLast = operation.contains(.helper) && baseKind == .array
        if flags.contains(.lock), !lockCheckedLast { throw Self.noLockWord }
        try checkSizes(key: key, value: value.baseAddress == nil ? -1 : value.count)
        guard flags.isValid else { throw MapError.invalidArgument.with(reason: "invalid update flags \(flags.rawValue)") }
        if flags.contains(.lock) {
            guard key.loadUnaligned(as: UInt32.self) < UInt32(truncatingIfNeeded: definition.maxEntries) else {
                throw MapError.outOfSpace
            }
            if flags.rawValue & ~MapUpdateFlags.lock.rawValue == MapUpdateFlags.noExist.rawValue { throw MapError.alreadyExists }
            throw Self.noLockWord
        }
        // The provider's callbacks run inside an epoch, each in a section of its own; the
        // base update runs in none of ours (a bucket-locked base holds one only where it
        // reads a slot after its lock), so that a writer preempted there never holds up a
        // grace period. (Measured on 2026-12-04: one section from the addition callback to
        // the end of the base update saved 32–41 instructions an update but made two-thread
        // churn 1.46× slower, grace periods waiting for the longer sections; after the read
        // side stopped waking grace periods that do not wait for the ending section, it was
        // neutral there, with three times the membarrier calls, and faster only for
        // one-thread updates; see docs/performance.md, seventh and eighth sessions.) What
        // the addition callback leaves in the stored value goes into the map and must
        // outlive any section anyway.
        if updatesOriginalValue || validatesValues {
            // The provider writes the stored value (updatesOriginalValue), or may rewrite a
            // copy of the caller's (validatesValues); the map stores what it leaves. The
            // closure reaches `self` unretained: capturing it retained and released the map
            // around every write, a write every thread's writes shared.
            let map = Unmanaged.passUnretained(self)
            let validates = !updatesOriginalValue
            return try withStoredBuffer { (stored) throws(MapError) -> Bool in
                try Self.guaranteed(map) { (map) throws(MapError) -> Bool in
                    if validates { stored.copyMemory(from: value) }
                    do throws(MapError) {
                        Epoch._libraryEnter()
                        defer { Epoch._libraryExit() }
                        try map.addition(MapElementCall(
                            context: map.callContext, key: key, inValue: value, outValue: stored, flags: operation))
                    } catch {
                        throw error.asProviderRefusal()  // see MapError.isProviderRefusal
                    }
                    let done: Bool
                    do throws(MapError) {
                        done = try baseUpdate(UnsafeRawBufferPointer(stored))
                    } catch {
                        map.rollBack(key: key, storedValue: UnsafeRawBufferPointer(stored), flags: operation)
                        throw error
                    }
                    if !done { map.rollBack(key: key, storedValue: UnsafeRawBufferPointer(stored), flags: operation) }
                    return done
                }
            }
        } else {
            guard hasAddition else { return try baseUpdate(value) }
            // Called from the stored `let`, not bound to a local: a local copy retains the
            // closure's context, one object every writing thread shares.
            do throws(MapError) {
                Epoch._libraryEnter()
                defer { Epoch._libraryExit() }
                try addition(MapElementCall(context: callContext, key: key, inValue: value, outValue: nil, flags: operation))
            } catch {
                throw error.asProviderRefusal()  // see MapError.isProviderRefusal
            }
            let done: Bool
            do throws(MapError) {
                done = try baseUpdate(value)
            } catch {
                rollBack(key: key, storedValue: value, flags: operation)
                throw error
            }
            if !done { rollBack(key: key, storedValue: value, flags: operation) }
            return done
        }
    }

    /// The hooks' roll-back of an addition whose base update failed, without retaining the
    /// hooks (a call through the `unowned(unsafe)` reference retained and released them: a
    /// write every thread's refused inserts shared). Invariant: `base` keeps them alive.
    @inline(__always)
    func rollBack(key: UnsafeRawBufferPointer, storedValue: UnsafeRawBufferPointer, flags: MapOperationFlags) {
        unmanagedHooks._withUnsafeGuaranteedRef { $0.rollBack(key: key, storedValue: storedValue, flags: flags) }
    }

    // MARK: Delete

    /// User-mode delete. Contract: ``/RCUBaseMaps/RawMap/delete(key:)``.
    public func delete(key: UnsafeRawBufferPointer) throws(MapError) {
        try checkNotInLockedCallback()
        try checkUserWrite()
        try checkSizes(key: key, value: nil)
        try baseDelete(key: key)
    }

    /// Delete that answers an absent key with `false`. Contract: ``/RCUBaseMaps/RawMap/deleteIfPresent(key:)``.
    public func deleteIfPresent(key: UnsafeRawBufferPointer) throws(MapError) -> Bool {
        try checkNotInLockedCallback()
        try checkUserWrite()
        try checkSizes(key: key, value: nil)
        guard let bucketBase else { return try base.deleteIfPresent(key: key) }
        // Invariant: `base` (owned by `self`) keeps the unmanaged reference alive.
        return try Self.guaranteed(bucketBase) { (bucket) throws(MapError) -> Bool in try bucket.deleteIfPresent(key: key) }
    }

    /// Helper-mode delete (providers see `.helper`). Contract: ``/RCUBaseMaps/RawMap/delete(key:in:)``.
    public func delete(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError) {
        guard !updatesOriginalValue else { throw Self.helperModeBlocked }
        try checkNotInLockedCallback()
        try access.checkProgramWrite()  // before the sizes, as the base checks (EACCES first)
        try checkSizes(key: key, value: nil)
        try base.delete(key: key, in: section)
    }

    /// Atomically removes `key` and returns its user-visible value: of concurrent callers,
    /// exactly one gets it.
    ///
    /// Order, as in eBPF-for-Windows but atomic: the find callback translates the stored
    /// value of the entry being removed, *before* it leaves the map (under the bucket lock
    /// on the bucket-locked base, where it runs once); if it refuses, nothing is removed.
    /// Then the entry is unlinked and the deletion callback runs. On the lock-free base the
    /// entry can change between the callback and the unlink (another thread replaces or
    /// deletes the key): the callback then runs again on the newer entry, or the call ends
    /// with ENOENT — so it may run more than once, and only its last run is for the entry
    /// removed. `value` receives that run's answer only once the entry is removed.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/keyNotFound``; the find callback's error (map unchanged);
    ///   ``/RCUBaseMaps/MapError/unsupportedByMapType`` (ENOTSUPP, 524) on an array base.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try checkNotInLockedCallback()
        try access.checkUserRead()
        try checkUserWrite()
        if baseKind == .array {
            // After the key's size, as the array checks (EINVAL before ENOTSUPP).
            try checkSizes(key: key, value: nil)
            throw MapError.unsupportedByMapType.with(reason: "lookup-and-delete is not supported on arrays")
        }
        try checkSizes(key: key, value: value.baseAddress == nil ? -1 : value.count)
        defer { base.throttleWriterIfBehind() }  // after the section, as in `exchange`
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        // Inside the section, against the base's own flag: its `freeze()` sets that flag and
        // then waits for a grace period, so either this sees it or the freeze waits for this
        // removal. Neither base's removal checks it, and the early check above reads this
        // map's flag, set only after the base's freeze returned: a removal preempted between
        // that check and this section removed an entry after `freeze()` had returned (found
        // by review, 2026-12-05).
        if base.isFrozen { throw MapError.permissionDenied.with(reason: "the map is frozen") }
        let find = dispatch.postprocessFindElement
        unowned(unsafe) let context = callContext
        let translates = updatesOriginalValue
        let hooks = self.hooks
        // The answer goes to a copy, handed to the caller once the entry is removed: the
        // lock-free base may run the callback on an entry it then fails to remove (see
        // above), and the caller's buffer is not the place for a stale answer. Zeroed for a
        // translating provider, whose find callback may write only part of its answer: the
        // rest went to the caller as whatever the stack held (found by review, 2026-12-06) —
        // zeroed before each run of the callback, as the lock-free base runs it again on the
        // entry that replaced one it failed to remove: zeroed once, the second run's unwritten
        // bytes were the first run's answer for the replaced entry (found by review,
        // 2026-12-06, twenty-fourth session).
        try Self.withScratch(byteCount: value.count) { (answer) throws(MapError) in
            try base.remove(key: key, inspecting: { (stored) throws(MapError) in
                // Under the bucket lock on the bucket-locked base: recorded as such on every
                // base, so that a provider behaves the same whichever base it chose.
                try hooks.underMapLock { () throws(MapError) in
                    if translates {
                        Self.zero(answer)
                        try find!(MapElementCall(context: context, key: key, inValue: stored, outValue: answer, flags: []))
                    } else {
                        try find?(MapElementCall(context: context, key: key, inValue: stored, outValue: nil, flags: []))
                    }
                }
            }, removed: { (left) in
                // Untranslated, the caller gets the value as it left the map, as the
                // provider's removal callback is told of it: an in-place write (helper mode,
                // no lock) between the find callback and the unlink is in both (one that a
                // holder of an older pointer makes after the unlink may reach only the later
                // read: see `ObservableBaseMap.remove`). (The copy was
                // taken in the find callback's place, so the caller missed such a write the
                // provider saw; found by review, 2026-12-06.) A translating provider's map
                // allows no in-place writes.
                if !translates { answer.copyMemory(from: left) }
            })
            Self.copy(answer, to: value)
        }
    }

    // MARK: Iteration

    /// Get-next-key iteration. Contract: ``/RCUBaseMaps/RawMap/nextKey(after:into:)``.
    public func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try base.nextKey(after: key, into: nextKey)
    }

    /// Get-next-key that never restarts a pass. Contract: ``/RCUBaseMaps/RawMap/nextKeyInPass(after:into:)``.
    public func nextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try base.nextKeyInPass(after: key, into: nextKey)
    }

    // MARK: Flags

    static let noLockWord = MapError.invalidArgument.with(reason: "BPF_F_LOCK: custom map values hold no lock word")

    /// User-mode lookup with flags: custom maps hold no lock word, so any flag is EINVAL.
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                       flags: MapElementFlags) throws(MapError) {
        guard flags.subtracting(.lock).isEmpty else { throw MapError.invalidArgument.with(reason: "invalid flags \(flags.rawValue)") }
        try access.checkUserRead()
        if flags.contains(.lock) { throw Self.noLockWord }
        try lookup(key: key, into: value)
    }

    /// User-mode delete with flags: Linux's delete takes none.
    public func delete(key: UnsafeRawBufferPointer, flags: MapElementFlags) throws(MapError) {
        guard flags.isEmpty else { throw MapError.invalidArgument.with(reason: "invalid flags \(flags.rawValue)") }
        try delete(key: key)
    }

    /// Lookup-and-delete with flags: custom maps hold no lock word, so any flag is EINVAL.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                                flags: MapElementFlags) throws(MapError) {
        guard flags.subtracting(.lock).isEmpty else { throw MapError.invalidArgument.with(reason: "invalid flags \(flags.rawValue)") }
        try access.checkUserRead()
        try checkUserWrite()
        if flags.contains(.lock) { throw Self.noLockWord }
        try lookupAndDelete(key: key, into: value)
    }

    // MARK: Access and freezing

    /// What user and helper mode may do (the definition's access flags, fixed at creation:
    /// kept here so that every write's check does not ask the base map through its
    /// existential).
    public let access: MapAccess

    /// Whether the map is frozen. Any thread.
    public var isFrozen: Bool { base.isFrozen }

    /// The base map. For tests: its freeze alone is the state this map's ``freeze()``
    /// passes through.
    package var baseMapForTests: any RawMap { base }

    /// The base map's reclamation throttle (``/RCUBaseMaps/ObservableBaseMap/throttleWriterIfBehind()``),
    /// for a caller that held its own section across this map's write (where the write's
    /// throttle could not wait). Call outside any section.
    package func throttleWriterIfBehind() { base.throttleWriterIfBehind() }

    /// Set once ``freeze()`` has frozen the base map (only this map reaches its base): the
    /// writes' early check reads it here, not through the base map's existential.
    let frozen = Atomic<Bool>(false)

    /// Freezes the map (its base map). Contract: ``/RCUBaseMaps/RawMap/freeze()``.
    @available(*, noasync, message: "waits for a grace period: call it from a thread of your own, or use `await map.freezeAsync()`")
    public func freeze() throws(MapError) {
        try base.freeze()
        frozen.store(true, ordering: .releasing)
    }

    /// EPERM for a user-mode write the flags or a freeze refuse, before any callback runs.
    /// (A write racing a freeze may pass this check: the base map's own check, inside the
    /// write's section, then refuses it, and the addition is rolled back.)
    @inline(__always)
    func checkUserWrite() throws(MapError) {
        guard access.userWrite else { throw MapError.permissionDenied.with(reason: "write refused: the map is BPF_F_RDONLY") }
        guard !frozen.load(ordering: .acquiring) else { throw MapError.permissionDenied.with(reason: "the map is frozen") }
        // Every user-mode write passes here before the base takes a lock: a deprecated
        // pre-deletion callback enters a section under the base's lock, which registers a
        // new thread at the fork gate, holding the lock (see `BucketTable.lockChain`).
        rcumaps_ensure_registered()
    }

    // MARK: Batches — element by element, so every callback runs as for single operations

    /// `BPF_MAP_LOOKUP_BATCH`, element by element through the provider's find callback (the
    /// cursor names the key after the last one returned, or, at the end, the last key; see
    /// ``/RCUBaseMaps/MapBatchCursor``). eBPF-for-Windows has no batches on custom maps.
    public func lookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                            values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try checkNotInLockedCallback()
        return try genericLookupBatch(from: cursor, keys: keys, values: values, count: count,
                                      elementFlags: elementFlags, removing: false)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`, element by element (find callback, then the
    /// deletion callbacks, as for ``lookupAndDelete(key:into:)``); ENOTSUPP on an array base.
    public func lookupAndDeleteBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                                     values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                                     flags: UInt64) throws(MapError) -> MapBatchResult {
        try checkNotInLockedCallback()
        if baseKind == .array { return try unsupportedBatch(read: true, write: true, "lookup-and-delete") }
        return try genericLookupBatch(from: cursor, keys: keys, values: values, count: count,
                                      elementFlags: elementFlags, removing: true)
    }

    /// `BPF_MAP_UPDATE_BATCH`, element by element (addition callback, then the base update).
    public func updateBatch(keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, count: Int,
                            elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult {
        try checkNotInLockedCallback()
        return try genericUpdateBatch(keys: keys, values: values, count: count, elementFlags: elementFlags)
    }

    /// `BPF_MAP_DELETE_BATCH`, key by key (deletion callbacks); ENOTSUPP on an array base.
    public func deleteBatch(keys: UnsafeRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try checkNotInLockedCallback()
        if baseKind == .array { return try unsupportedBatch(read: false, write: true, "delete") }
        return try genericDeleteBatch(keys: keys, count: count, elementFlags: elementFlags)
    }

    // MARK: Client services

    /// The stored value for `key`, in place, without provider callbacks (the client
    /// dispatch table's `find_element`). Caller holds an epoch.
    func findStored(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        try checkSizes(key: key, value: nil)
        return try base.lookupInPlace(key: key, in: section)
    }
}
