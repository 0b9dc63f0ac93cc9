import RCUMaps
import Synchronization

/// The sample provider: an *object map*, in the style of Linux's XSKMAP.
///
/// Users store 4-byte handles of reference-counted objects (think of file descriptors of
/// sockets); the map stores an 8-byte pointer to the object itself (actual value size 8),
/// holding one reference per entry. Lookups translate the pointer back into the handle;
/// every way a value leaves the map — delete, replace, teardown, a failed update — releases
/// its reference exactly once.
///
/// Objects are epoch memory, a cache line each (``/RCUMapProviders/MapClientServices/allocateCacheAligned(byteCount:tag:)``), and are freed
/// through the epoch when their last reference goes, so a reader translating a pointer
/// inside an epoch never touches freed memory.
///
/// ```swift
/// let objects = try ObjectMapProvider()              // registers type 4100 on a bucket-locked hash
/// let socket = try objects.makeObject()              // a handle, reference count 1 (ours)
/// let map = try objects.makeMap(maxEntries: 64)      // keys: UInt32, values: handles
/// try map.update(key: …, value: handle bytes, flags: .any)   // the map takes a reference
/// objects.close(socket)                              // drops ours; the map's keeps it alive
/// ```
///
/// Concurrency: every method may be called from any thread.
public final class ObjectMapProvider: Sendable {
    /// The map type the sample registers by default.
    public static let defaultMapType = MapType(rawValue: 4100)
    /// Default pool tag of the objects.
    public static let defaultObjectTag = PoolTag("objm")

    /// A handle users store in the map.
    public typealias Handle = UInt32

    /// The registration (unregister through it once no map of the type is left).
    public let registration: MapProviderRegistration
    private let state: State

    /// Per-provider state shared with the callbacks.
    final class State: Sendable {
        /// Live objects by handle (the "handle table"), as object addresses: read without a
        /// lock (an element addition looks its handle up here), written by open and by the
        /// release of an object's last reference. A closed object that maps still hold keeps
        /// its entry, so its handle is not given out again while lookups still answer it.
        let table = RCUDictionary<Handle, UInt>()
        /// The next handle to give out.
        let nextHandle = Atomic<Handle>(1)
        let client = MapClientServices()
        let mapsAlive = Atomic<Int>(0)
        let associationsRefused = Atomic<Int>(0)
        let objectTag: PoolTag
        init(objectTag: PoolTag) { self.objectTag = objectTag }

        /// The state behind a callback's context, unretained: every map of this provider
        /// has its `State` as context, and the map keeps it alive while callbacks run.
        @inline(__always)
        static func of(_ context: (any MapProviderContext)?) -> Unmanaged<State> {
            Unmanaged.passUnretained(unsafeDowncast(context.unsafelyUnwrapped, to: State.self))
        }
    }

    /// A program type the sample refuses to associate with (to demonstrate refusal).
    public static let refusedProgramType = ProgramType("00000000-0000-0000-0000-00000000dead")!

    /// Registers the object map provider for `type` on `base`; objects are accounted under
    /// `objectTag`.
    ///
    /// - Throws: what ``/RCUMapProviders/MapProviderRegistry/register(type:base:properties:dispatch:)`` throws.
    public init(type: MapType = ObjectMapProvider.defaultMapType,
                base: ProviderBaseMap = .hashBucketLocked,
                objectTag: PoolTag = ObjectMapProvider.defaultObjectTag) throws(MapError) {
        let state = State(objectTag: objectTag)
        self.state = state
        registration = try MapProviderRegistry.shared.register(
            type: type, base: base, properties: MapProviderProperties(updatesOriginalValue: true),
            dispatch: Self.dispatchTable(state))
    }

    /// Creates a map of this provider's type: `UInt32` keys (or array indices), handle values.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/keyNotFound`` once this provider is unregistered;
    ///   what ``/RCUMapProviders/MapProviderRegistration/createMap(_:)`` throws.
    public func makeMap(maxEntries: Int, name: String = "objects", poolTag: PoolTag? = nil) throws(MapError) -> RawCustomMap {
        try registration.createMap(MapDefinition(
            type: registration.type, keySize: 4, valueSize: 4, maxEntries: maxEntries, name: name, poolTag: poolTag))
    }

    // MARK: Objects

    /// Object layout: reference count (atomic Int) | handle (UInt32) | closed (atomic UInt32,
    /// 1 once its handle was closed), in a cache line of its own, so that retaining one
    /// object never slows down the readers of another.
    static let objectSize = 64

    /// Opens a new object and returns its handle; the caller holds one reference.
    ///
    /// Handles count up from 1 and wrap around after `UInt32.max`, skipping 0 and every
    /// handle whose object is alive — open, or closed while a map still holds it (after 2^32
    /// opens, a wrapped counter overwrote an open handle's entry: that object was never
    /// freed and its owner's `close` released another's; a closed handle a map still held
    /// was given out again, and that map's lookups then answered the new object's handle:
    /// found by review, 2026-12-06).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/noMemory``; ``/RCUBaseMaps/MapError/outOfSpace``
    ///   (E2BIG) if every handle is open.
    public func makeObject() throws(MapError) -> Handle {
        guard let object = state.client.allocateCacheAligned(byteCount: Self.objectSize, tag: state.objectTag) else {
            throw MapError.noMemory
        }
        object.bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(1))
        (object + 12).bindMemory(to: Atomic<UInt32>.self, capacity: 1).initialize(to: Atomic(0))
        for _ in 0...UInt64(Handle.max) {
            let handle = state.nextHandle.wrappingAdd(1, ordering: .relaxed).oldValue
            if handle == 0 { continue }
            (object + 8).storeBytes(of: handle, as: Handle.self)
            // Publishes the initialised object, unless the handle is still open.
            if state.table.insertIfAbsent(UInt(bitPattern: object), forKey: handle) { return handle }
        }
        state.client.freeCacheAligned(object)
        throw MapError.outOfSpace.with(reason: "every object handle is open")
    }

    /// Tests only: the next handle ``makeObject()`` tries.
    func setNextHandle(_ handle: Handle) {
        state.nextHandle.store(handle, ordering: .relaxed)
    }

    /// Closes a handle: drops the caller's reference. Maps that hold the object keep it alive,
    /// and its handle reserved, until they let it go.
    ///
    /// - Returns: `false` if the handle is not open.
    @discardableResult
    public func close(_ handle: Handle) -> Bool {
        // In a section: an object whose last reference goes is freed a grace period later.
        Epoch.withSection { _ in
            guard let address = state.table[handle] else { return false }
            let object = UnsafeMutableRawPointer(bitPattern: address)!
            guard Self.closed(object).pointee.exchange(1, ordering: .acquiringAndReleasing) == 0 else { return false }
            Self.release(object, state: state)
            return true
        }
    }

    /// The reference count of an open object (`nil` once closed).
    public func referenceCount(of handle: Handle) -> Int? {
        // In a section: a concurrent close may free the object, but only after a grace period.
        Epoch.withSection { _ in
            guard let address = state.table[handle] else { return nil }
            let object = UnsafeMutableRawPointer(bitPattern: address)!
            guard Self.closed(object).pointee.load(ordering: .acquiring) == 0 else { return nil }
            return Self.counter(object).pointee.load(ordering: .acquiring)
        }
    }

    /// Maps of this provider's type that exist now, as the provider counts them: a map
    /// leaves the count inside its `postprocessMapDelete`, a little before the library
    /// stops counting it, so an `unregister()` right after this reads 0 may still answer
    /// EBUSY (try again).
    public var liveMaps: Int { state.mapsAlive.load(ordering: .acquiring) }

    static func counter(_ object: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<Int>> {
        object.assumingMemoryBound(to: Atomic<Int>.self)
    }

    static func closed(_ object: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (object + 12).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    /// Takes a reference to `object` unless its count already reached zero (it is being
    /// freed: a grace period after). Caller is inside an epoch section.
    static func tryRetain(_ object: UnsafeMutableRawPointer) -> Bool {
        let count = counter(object)
        var current = count.pointee.load(ordering: .relaxed)
        while current > 0 {
            let (exchanged, original) = count.pointee.compareExchange(
                expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Drops one reference; the last one frees the object's handle for reuse and the object
    /// (after a grace period: readers in an epoch may still translate it).
    @inline(__always)
    static func release(_ object: UnsafeMutableRawPointer, state: State) {
        let remaining = counter(object).pointee.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue
        _rcumapsPrecondition(remaining >= 0, "object released more often than retained")
        if remaining == 0 { free(object, state: state) }
    }

    /// The last reference went: the handle is free for reuse, and the object is freed.
    @inline(never)
    static func free(_ object: UnsafeMutableRawPointer, state: State) {
        state.table.removeValue(forKey: (object + 8).load(as: Handle.self), ifCurrent: UInt(bitPattern: object))
        state.client.freeCacheAligned(object)
    }

    // MARK: Callbacks

    /// The addition of a closed object's handle: gives back the reference just taken and
    /// refuses (out of line: the common addition stays small).
    @inline(never)
    static func refuseClosed(_ address: UInt, handle: Handle, context: (any MapProviderContext)?) throws(MapError) {
        State.of(context)._withUnsafeGuaranteedRef { release(UnsafeMutableRawPointer(bitPattern: address)!, state: $0) }
        throw MapError.invalidArgument.with(reason: "handle \(handle) is not open")
    }

    static func dispatchTable(_ state: State) -> MapProviderDispatchTable {
        MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) -> MapCreateResult in
                guard request.valueSize == MemoryLayout<Handle>.size else {
                    throw MapError.invalidArgument.with(reason: "object map values are 4-byte handles, got \(request.valueSize)")
                }
                state.mapsAlive.wrappingAdd(1, ordering: .relaxed)
                return MapCreateResult(actualValueSize: MemoryLayout<UInt>.size, context: state)
            },
            postprocessMapDelete: { _ in
                state.mapsAlive.wrappingSubtract(1, ordering: .relaxed)
            },
            preprocessAssociateProgramType: { (_, programType) throws(MapError) in
                if programType == refusedProgramType {
                    state.associationsRefused.wrappingAdd(1, ordering: .relaxed)
                    throw MapError.permissionDenied.with(reason: "the object map refuses program type \(programType)")
                }
            },
            postprocessFindElement: { (call) throws(MapError) in
                // stored pointer → handle. Runs inside an epoch: the object cannot be freed under us.
                guard let out = call.outValue else { return }
                let address = call.inValue.loadUnaligned(as: UInt.self)
                guard let object = UnsafeMutableRawPointer(bitPattern: address) else {
                    throw MapError.keyNotFound  // an array slot that never held an object
                }
                out.storeBytes(of: (object + 8).load(as: Handle.self), as: Handle.self)
            },
            // The per-element callbacks reach `state` through the call's context (the map's
            // context, set above), not by capturing it: Swift retains a closure's captured
            // context around every call, and that count is one word every thread writes.
            preprocessElementAddition: { (call) throws(MapError) in
                // handle → stored pointer, taking a reference for the map.
                guard let out = call.outValue else { return }
                let handle = call.inValue.loadUnaligned(as: Handle.self)
                // No lock: the callback runs inside an epoch section, so an object a
                // concurrent close is dropping is not freed under us; it is taken only while
                // its count is above zero (a count that reached zero never rises again).
                let address = State.of(call.context)._withUnsafeGuaranteedRef { $0.table[handle] }
                guard let address, tryRetain(UnsafeMutableRawPointer(bitPattern: address)!) else {
                    throw MapError.invalidArgument.with(reason: "handle \(handle) is not open")
                }
                // A closed object keeps its entry while maps hold it: not open for new ones.
                // (Checked after the retain: a close that comes later is after this write.)
                if closed(UnsafeMutableRawPointer(bitPattern: address)!).pointee.load(ordering: .acquiring) != 0 {
                    try refuseClosed(address, handle: handle, context: call.context)
                }
                out.storeBytes(of: address, as: UInt.self)
            },
            postprocessElementDeletion: { call in
                // Delete, replace (.update), rollback (.update) or teardown (.mapCleanup):
                // the entry's reference goes, exactly once.
                let address = call.value.loadUnaligned(as: UInt.self)
                if let object = UnsafeMutableRawPointer(bitPattern: address) {
                    State.of(call.context)._withUnsafeGuaranteedRef { release(object, state: $0) }
                }
            })
    }
}
