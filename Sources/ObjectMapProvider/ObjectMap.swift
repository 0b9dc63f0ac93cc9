import RCUMaps

/// A typed map of Swift objects, `Key` → `Object`, on a typed provider: the typed form of
/// the sample object map. The map holds one strong reference per entry; readers get the
/// object retained, lock-free.
///
/// ```swift
/// final class Connection: Sendable { … }
/// let connections = try ObjectMap<UInt32, Connection>(maxEntries: 4096)
/// try connections.updateValue(connection, forKey: fd)
/// connections[fd]?.send(bytes)                       // retained for as long as you hold it
/// try connections.removeValue(forKey: fd)           // released once no reader can see it
/// ```
///
/// How: the map stores each object's address (an 8-byte value) in a custom map whose
/// provider (`ObjectReferenceProvider`, internal) hears of every value that leaves the map —
/// deleted, replaced or torn down — and releases that object's reference after a grace
/// period. A reader turns an address back into a reference (a retain) inside the epoch
/// section in which it found it, so the object cannot go away in between.
///
/// Concurrency: any number of readers and writers on any threads. The map's references to
/// removed and replaced objects are released on the reclamation thread, after a grace
/// period, 64 releases to a batch (`Epoch.barrier()` waits for them; with no memory for a
/// batch's work, the releases wait for the next batch, idle flush or barrier). An object's
/// `deinit` runs where its last reference goes: there, if the map's was the last; else on
/// the thread of a reader or caller that still held it, and no barrier waits for it (the
/// docs said every `deinit` ran on the reclamation thread: found by review, 2026-12-06). Writers on threads of their own pause, after
/// their section, while releases (or the base map's own reclamation) fall far behind:
/// 16 MiB pending, a release counting 8 bytes whatever its object's size, for at most
/// 250 ms a time; writers on a Swift task's thread for at most 2 ms a write (see
/// `EpochRetireList.throttleIfBehind()`).
public final class ObjectMap<Key: BitwiseCopyable & Sendable, Object: AnyObject & Sendable>: Sendable, Sequence {
    /// The custom map underneath: object addresses as `UInt`, each holding one reference.
    ///
    /// Not public, nor is its provider or registration: through them any integer could be
    /// stored as an address, then read back as an object or released (found by review: a
    /// forged address crashed the process), and an in-place write would replace an address
    /// without its reference being taken or given back.
    let addresses: CustomMap<Key, UInt>
    /// The provider's registration, in a registry of the map's own.
    let registration: TypedProviderRegistration<ObjectReferenceProvider<Key, Object>>

    /// A map for at most `maxEntries` objects, on `base`, with a provider registered for it
    /// alone (in a registry of its own, as custom type 4101).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` (EINVAL) for a `Key` type with
    ///   padding, `maxEntries` below 1 or over `UInt32.max`, or a `Key` other than 4 bytes on
    ///   an `.array` base; the base map's own creation errors (``/RCUBaseMaps/MapError/outOfSpace``,
    ///   E2BIG, for `maxEntries` over 2^27 on a hash base); ``/RCUBaseMaps/MapError/noMemory``.
    public convenience init(maxEntries: Int, base: ProviderBaseMap = .hashBucketLocked) throws(MapError) {
        let registration = try MapProviderRegistry().register(
            ObjectReferenceProvider<Key, Object>(), type: ObjectReferenceProvider<Key, Object>.defaultType, base: base)
        try self.init(registration: registration, maxEntries: maxEntries)
    }

    /// A map of the type `registration` serves.
    init(registration: TypedProviderRegistration<ObjectReferenceProvider<Key, Object>>,
                maxEntries: Int, name: String = "", poolTag: PoolTag? = nil) throws(MapError) {
        self.registration = registration
        addresses = try registration.makeMap(maxEntries: maxEntries, name: name, poolTag: poolTag)
    }

    /// The object stored under `key`, retained; `nil` when absent.
    ///
    /// Concurrency: lock-free; the object is retained inside the section that found it.
    public subscript(key: Key) -> Object? {
        Epoch.withSection { _ in
            (try? addresses.value(forKey: key)).flatMap { $0 }.flatMap(Self.object)
        }
    }

    /// Stores `object` under `key` (the map takes a reference), replacing any object there.
    ///
    /// - Returns: The object replaced (whose map reference is released after a grace
    ///   period), or `nil` if the key was new.
    /// - Throws: ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) for a new key in a full map
    ///   and, on an array base, for an index past its end; ``/RCUBaseMaps/MapError/noMemory``.
    ///   On failure the map takes no reference.
    @discardableResult
    public func updateValue(_ object: Object, forKey key: Key) throws(MapError) -> Object? {
        let address = Self.retain(object)
        // After the section: the map's own write could not wait for reclamation inside it
        // (found by review, 2026-12-05: no back-pressure on a lock-free base), nor for the
        // releases of the objects displaced (2026-12-06).
        defer { Self.throttleIfBehind(addresses) }
        do {
            // The displaced object is released after a grace period: turn it into a
            // reference inside the same section.
            return try Epoch.withSection { (_) throws(MapError) -> Object? in
                try addresses.updateValue(address, forKey: key).flatMap(Self.object)
            }
        } catch {
            Self.release(address)
            throw error
        }
    }

    /// Stores `object` under `key` only if the key is absent.
    ///
    /// On an array base every index in range is a key that exists (an ARRAY's `BPF_NOEXIST`
    /// is EEXIST), so this returns `false` there, also for an index that holds no object:
    /// use ``updateValue(_:forKey:)``.
    ///
    /// - Returns: `true` if stored (the map took a reference); `false` if the key was taken.
    /// - Throws: ``/RCUBaseMaps/MapError/outOfSpace`` (E2BIG) for a new key in a full map
    ///   and, on an array base, for an index past its end; ``/RCUBaseMaps/MapError/noMemory``.
    ///   On failure the map takes no reference.
    @discardableResult
    public func insertIfAbsent(_ object: Object, forKey key: Key) throws(MapError) -> Bool {
        let address = Self.retain(object)
        do {
            if try addresses.insertIfAbsent(address, forKey: key) { return true }
        } catch {
            Self.release(address)
            throw error
        }
        Self.release(address)
        return false
    }

    /// Removes `key` and returns its object (of concurrent removers, exactly one gets it).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/unsupportedByMapType`` (ENOTSUPP, 524) on an array base
    ///   (arrays cannot delete; it is a lookup-and-delete, which Linux answers so for arrays).
    @discardableResult
    public func removeValue(forKey key: Key) throws(MapError) -> Object? {
        defer { Self.throttleIfBehind(addresses) }  // after the section, as above
        return try Epoch.withSection { (_) throws(MapError) -> Object? in
            try addresses.removeValue(forKey: key).flatMap(Self.object)
        }
    }

    /// Objects in the map (a snapshot under concurrent writes). On a hash base, the base's
    /// count; on an array base, the slots that hold an object, counted in a pass over them
    /// (O(`maxEntries`): every slot of an array exists, and one never written holds none —
    /// the base's count would be `maxEntries` whatever is stored: found by review,
    /// 2026-12-05, sixteenth session).
    public var count: Int {
        guard addresses.raw.baseKind == .array else { return addresses.count }
        var objects = 0
        for (_, address) in addresses where address != 0 { objects += 1 }
        return objects
    }

    /// Whether the map holds no object (a snapshot; on an array base, a pass over its
    /// slots up to the first object).
    public var isEmpty: Bool {
        guard addresses.raw.baseKind == .array else { return addresses.isEmpty }
        for (_, address) in addresses where address != 0 { return false }
        return true
    }

    /// Most objects the map holds (`maxEntries`).
    public var capacity: Int { addresses.capacity }

    /// The keys, in the map's iteration order. On an array base, every index (an ARRAY's
    /// keys), also those that hold no object; iterating the map itself returns only the
    /// indices that hold one, as ``count`` counts them.
    public var keys: KeyValueMapKeys<CustomMap<Key, UInt>> { addresses.keys }

    /// Iterates the entries (objects retained as they are read).
    public func makeIterator() -> Iterator { Iterator(map: self, keys: addresses.keys.makeIterator()) }

    // MARK: Iteration

    /// Iterates `(key, object)` pairs with get-next-key, each step self-contained (see
    /// ``/RCUMaps/KeyValueMapIterator``); each object is retained inside the section that found it.
    public struct Iterator: IteratorProtocol {
        let map: ObjectMap
        var keys: KeyValueMapKeys<CustomMap<Key, UInt>>.Iterator

        public mutating func next() -> (key: Key, object: Object)? {
            while let key = keys.next() {
                if let object = map[key] { return (key, object) }
            }
            return nil
        }
    }

    // MARK: References

    static func retain(_ object: Object) -> UInt {
        UInt(bitPattern: Unmanaged.passRetained(object).toOpaque())
    }

    /// Back-pressure after a write's section: waits if the base map's reclamation, or the
    /// releases of displaced objects, fell far behind (see ``objectMapReleases``).
    static func throttleIfBehind(_ addresses: CustomMap<Key, UInt>) {
        addresses.raw.throttleWriterIfBehind()
        objectMapReleases.throttleIfBehind()
    }

    static func release(_ address: UInt) {
        Unmanaged<Object>.fromOpaque(UnsafeRawPointer(bitPattern: address)!).release()
    }

    /// A new reference to the object at `address` (nil for 0: an array slot never written).
    /// Caller is inside the section in which it read the address from the map (the map's
    /// reference is released only after it ends).
    static func object(_ address: UInt) -> Object? {
        UnsafeRawPointer(bitPattern: address).map { Unmanaged<Object>.fromOpaque($0).takeUnretainedValue() }
    }
}

/// The typed provider of ``ObjectMap``: values are object addresses holding one reference
/// each; every value that leaves the map has its reference released after a grace period
/// (readers may still be turning the address into a reference until then). Internal: a
/// map of its type accepts any integer as an address (see ``ObjectMap``).
struct ObjectReferenceProvider<Key: BitwiseCopyable & Sendable, Object: AnyObject & Sendable>: TypedMapProvider {
    /// The stored value: an object's address, holding one reference.
    public typealias Value = UInt

    /// The type ID an ``ObjectMap`` registers in a registry of its own.
    public static var defaultType: MapType { MapType(rawValue: 4101) }

    /// Observing: values are stored as given (no transformation); removals are reported.
    public static var mode: TypedProviderMode { .observing }

    /// A provider (stateless: everything it needs is in the values).
    public init() {}

    /// Releases the reference a value that left the map held, after a grace period, on the
    /// reclamation thread (``objectMapReleases``). Called by the provider layer, exactly once
    /// per value.
    public func removed(_ stored: UInt, forKey key: Key, reason: RemovalReason, context: NoProviderContext) {
        // An array slot never written holds 0: no object.
        guard let address = UnsafeMutableRawPointer(bitPattern: stored) else { return }
        objectMapReleases.retire(address)
    }
}

/// The pending releases of every ``ObjectMap``'s objects that left a map: a list of
/// references, released in batches after a grace period, whose backlog the maps' writers
/// wait for when it falls far behind (``EpochRetireList/throttleIfBehind()``, after their
/// section). Each release was a work item of its own, which no writer ever waited for: on
/// a hash or array base (in-place values, nothing retired into a list the base throttles
/// on), replacing objects faster than the one reclamation thread released them grew the
/// backlog, and the objects it kept alive, without bound (found by review, 2026-12-06).
/// A pending release counts as 8 bytes of its tag, `objr` (not the sample provider's
/// `objm`: its objects' backlog would throttle these writers), whatever the object's size.
let objectMapReleases = EpochRetireList(referencesWithTag: PoolTag("objr"), finalizer: ObjectMapReleaser(),
                                        flushesWhenIdle: true)

/// Releases one object reference an ``ObjectMap`` gave up (``objectMapReleases``).
final class ObjectMapReleaser: EpochBlockFinalizer {
    func finalize(_ block: UnsafeMutableRawPointer) {
        Unmanaged<AnyObject>.fromOpaque(block).release()
    }
}
