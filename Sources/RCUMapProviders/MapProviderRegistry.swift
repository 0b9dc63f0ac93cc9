import RCUBaseMaps
import RCUEpoch
import Synchronization

/// One registered provider: its type, base map, properties and callbacks, and how many maps
/// of its type are alive (a provider cannot be unregistered while any is).
final class ProviderBinding: Sendable {
    let type: MapType
    let base: ProviderBaseMap
    let properties: MapProviderProperties
    let dispatch: MapProviderDispatchTable
    /// The Swift types a typed provider reads keys and values as; nil for a byte-level one.
    let valueTypes: ProviderValueTypes?
    let liveMaps = Atomic<Int>(0)

    init(type: MapType, base: ProviderBaseMap, properties: MapProviderProperties, dispatch: MapProviderDispatchTable,
         valueTypes: ProviderValueTypes? = nil) {
        self.type = type
        self.base = base
        self.properties = properties
        self.dispatch = dispatch
        self.valueTypes = valueTypes
    }
}

/// The Swift types a typed provider (RCUMaps' `TypedMapProvider`) reads its maps' keys and
/// user values as, recorded at its registration. A typed view (`CustomMap<Key, Value>`) of
/// the provider's maps must use these very types: sizes alone would let a `UInt8` view read
/// a provider's `Bool` values (bytes other than 0 and 1 are then invalid `Bool`s).
///
/// Concurrency: an immutable value; any thread.
package struct ProviderValueTypes: Sendable, Equatable, CustomStringConvertible {
    /// The key type's identity.
    package let key: ObjectIdentifier
    /// The user value type's identity.
    package let value: ObjectIdentifier
    /// `Key → Value`, for messages.
    package let description: String

    /// The identities of `Key` and `Value`.
    package init<Key, Value>(key: Key.Type, value: Value.Type) {
        self.key = ObjectIdentifier(key)
        self.value = ObjectIdentifier(value)
        description = "\(Key.self) → \(Value.self)"
    }

    /// Same types (the description is derived from them).
    package static func == (lhs: Self, rhs: Self) -> Bool { lhs.key == rhs.key && lhs.value == rhs.value }

    /// Throws ``/RCUBaseMaps/MapError/invalidArgument`` unless `view` is `served`: the typed
    /// refusal of a view of a typed provider's map with other types (nil `served`: a
    /// byte-level provider, whose sizes its create callback checks).
    package static func check(view: ProviderValueTypes, servedBy served: ProviderValueTypes?,
                              type: MapType) throws(MapError) {
        guard let served, served != view else { return }
        throw MapError.invalidArgument.with(reason: """
            the provider of map type \(type.rawValue) serves \(served), not \(view): a typed view of its maps \
            must use the provider's Key and Value types (values of another type of the same size may be \
            invalid); use the byte-level map
            """)
    }
}

extension RawCustomMap {
    /// The types the map's provider reads keys and values as, when it is a typed provider
    /// (nil for a byte-level one). Concurrency: immutable; any thread.
    package var providerValueTypes: ProviderValueTypes? { hooks.binding.valueTypes }
}

/// The providers of custom map types (IDs 4096–65535).
///
/// Registering a provider makes its type creatable through ``/RCUBaseMaps/MapRegistry/create(_:)`` and
/// ``createMap(_:)``. Unlike eBPF-for-Windows, where two providers of one type ID are
/// undefined behaviour, a second registration of a type is refused.
///
/// Concurrency: every method may be called from any thread. Registrations, unregistrations
/// and the lookup that starts a map creation take one process-wide lock (`ProviderState`'s,
/// shared by every registry and by every custom map's program-type associations: a fork
/// participant); provider callbacks and map operations never run under it.
public final class MapProviderRegistry: Sendable {
    /// The process-wide registry: the one ``/RCUBaseMaps/MapRegistry/create(_:)`` creates custom types
    /// from, and the C ABI registers into.
    public static let shared = MapProviderRegistry(installingFactory: ())

    /// Under the provider layer's one lock, which a fork takes (``ProviderState``).
    private let bindings = ProviderState<[UInt32: ProviderBinding]>([:])

    /// A registry of its own: types registered here are created only through it
    /// (``createMap(_:)``, `CustomMap(type:maxEntries:registry:)`), never through
    /// ``/RCUBaseMaps/MapRegistry/create(_:)``, and their IDs cannot collide with anyone else's.
    ///
    /// This is how tests that register providers run in parallel: each test makes its own
    /// registry, and two tests may register the same type ID.
    public init() {}

    private init(installingFactory: Void) {
        // Custom types created through MapRegistry.create come here.
        MapRegistry.customTypeFactory.withLock { factory in
            factory = MapRegistry.CustomTypeFactoryBox { (definition) throws(MapError) -> any RawMap in
                try MapProviderRegistry.shared.createMap(definition)
            }
        }
    }

    /// Registers a provider for one custom map type.
    ///
    /// - Parameters:
    ///   - type: the custom type ID, 4096–65535.
    ///   - base: the built-in map that stores the type's entries.
    ///   - properties: whether stored values differ from user values.
    ///   - dispatch: the callbacks; checked against the rules of ``MapProviderDispatchTable``.
    ///     The deprecated `preprocessElementDeletion` is refused on ``ProviderBaseMap/hashLockFree``.
    /// - Returns: The registration, through which the provider unregisters and reaches the
    ///   client services (``MapClientServices``).
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for an ID outside 4096–65535 or a table that
    ///   breaks a rule (the reason names it); ``/RCUBaseMaps/MapError/alreadyExists`` if the type already
    ///   has a provider.
    @discardableResult
    public func register(type: MapType, base: ProviderBaseMap, properties: MapProviderProperties = .init(),
                         dispatch: MapProviderDispatchTable) throws(MapError) -> MapProviderRegistration {
        try register(type: type, base: base, properties: properties, dispatch: dispatch, valueTypes: nil)
    }

    /// ``register(type:base:properties:dispatch:)``, recording the Swift types a typed
    /// provider reads keys and values as (``createMap(_:expecting:)`` checks them).
    package func register(type: MapType, base: ProviderBaseMap, properties: MapProviderProperties,
                          dispatch: MapProviderDispatchTable,
                          valueTypes: ProviderValueTypes?) throws(MapError) -> MapProviderRegistration {
        guard type.isCustom else {
            throw MapError.invalidArgument.with(
                reason: "custom map type IDs are \(MapType.customRange.lowerBound)...\(MapType.customRange.upperBound), got \(type.rawValue)")
        }
        try dispatch.validate(properties)
        if base == .hashLockFree, dispatch.preprocessElementDeletion != nil {
            // The lock-free base has no lock to run it under: racing writers could each report
            // the same value before one of them wins the unlink.
            throw MapError.invalidArgument.with(
                reason: "the deprecated preprocessElementDeletion needs a locked base (hashBucketLocked or array); use postprocessElementDeletion with hashLockFree")
        }
        let binding = ProviderBinding(type: type, base: base, properties: properties, dispatch: dispatch,
                                      valueTypes: valueTypes)
        let inserted = bindings.withLock { bindings in
            guard bindings[type.rawValue] == nil else { return false }
            bindings[type.rawValue] = binding
            return true
        }
        guard inserted else {
            throw MapError.alreadyExists.with(reason: "a provider is already registered for map type \(type.rawValue)")
        }
        return MapProviderRegistration(binding: binding, registry: self)
    }

    /// Unregisters the provider of `type`, whoever registered it.
    ///
    /// Prefer ``MapProviderRegistration/unregister()``, which removes only its own
    /// registration: after a provider unregistered and another registered the same type,
    /// this removes the other one.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/busy`` while maps of the type exist (the maps hold their
    ///   provider; a map exists until its `postprocessMapDelete` has returned, so an
    ///   unregister from inside that callback fails); ``/RCUBaseMaps/MapError/keyNotFound`` if
    ///   no provider is registered for it.
    public func unregister(type: MapType) throws(MapError) {
        try unregister(type: type, only: nil)
    }

    /// Unregisters the provider of `type` if it is `only` (any provider when `only` is nil).
    func unregister(type: MapType, only: ProviderBinding?) throws(MapError) {
        // The binding removed is released after the lock: its last release runs the
        // provider's closures' captures' `deinit`s, arbitrary code that may call the registry
        // (this lock is not reentrant: a hang) or register its thread at the fork gate while
        // a fork waits for this lock (found by review, 2026-12-05, eighteenth session). The
        // registration object usually kept it alive; a caller that dropped it and unregisters
        // by type does not.
        var removed: ProviderBinding?
        defer { withExtendedLifetime(removed) {} }
        let outcome: MapError? = bindings.withLock { bindings in
            guard let binding = bindings[type.rawValue], only == nil || binding === only else {
                return only == nil
                    ? MapError.keyNotFound.with(reason: "no provider is registered for map type \(type.rawValue)")
                    : MapError.keyNotFound.with(reason: "this registration of map type \(type.rawValue) was already unregistered")
            }
            let live = binding.liveMaps.load(ordering: .acquiring)
            guard live == 0 else {
                return MapError.busy.with(reason: "\(live) map(s) of type \(type.rawValue) still exist")
            }
            removed = bindings.removeValue(forKey: type.rawValue)
            return nil
        }
        if let outcome { throw outcome }
    }

    /// Whether a provider is registered for `type`.
    public func isRegistered(_ type: MapType) -> Bool {
        bindings.withLock { $0[type.rawValue] != nil }
    }

    /// Creates a map of a registered custom type (``/RCUBaseMaps/MapRegistry/create(_:)`` forwards here).
    ///
    /// Order: `preprocessMapCreate` (which may change the stored value size and returns the
    /// map context), then the base map with the stored value size. If the provider's answer
    /// is invalid or the base map cannot be created, `postprocessMapDelete` releases the
    /// context and nothing is left behind.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for an unregistered type, a bad definition, or
    ///   an invalid stored value size; whatever `preprocessMapCreate` throws; the base map's
    ///   errors (``/RCUBaseMaps/MapError/noMemory``, …).
    public func createMap(_ definition: MapDefinition) throws(MapError) -> RawCustomMap {
        try createMap(definition, expecting: nil)
    }

    /// ``createMap(_:)`` for a typed view of `viewTypes` (nil: byte-level, unchecked): a
    /// typed provider that serves other types is refused with
    /// ``/RCUBaseMaps/MapError/invalidArgument`` before any of its callbacks runs.
    package func createMap(_ definition: MapDefinition,
                           expecting viewTypes: ProviderValueTypes?) throws(MapError) -> RawCustomMap {
        try createMap(definition, expecting: viewTypes, only: nil)
    }

    /// ``createMap(_:expecting:)`` by the provider of one registration (`only`): if it was
    /// unregistered, ``/RCUBaseMaps/MapError/keyNotFound``, even when another provider has
    /// registered the type ID since (a registration's maps are its provider's).
    func createMap(_ definition: MapDefinition, expecting viewTypes: ProviderValueTypes?,
                   only: ProviderBinding?) throws(MapError) -> RawCustomMap {
        let found: Result<ProviderBinding, MapError> = bindings.withLock { bindings in
            guard let binding = bindings[definition.type.rawValue], only == nil || binding === only else {
                return .failure(only == nil
                    ? MapError.invalidArgument.with(
                        reason: "no provider is registered for custom map type \(definition.type.rawValue)")
                    : MapError.keyNotFound.with(
                        reason: "this registration of map type \(definition.type.rawValue) was unregistered"))
            }
            do throws(MapError) {
                if let viewTypes {
                    try ProviderValueTypes.check(view: viewTypes, servedBy: binding.valueTypes, type: definition.type)
                }
                try RawCustomMap.checkBeforeCounting(definition)
            } catch {
                return .failure(error)
            }
            binding.liveMaps.wrappingAdd(1, ordering: .acquiringAndReleasing)  // holds the provider
            return .success(binding)
        }
        let binding = try found.get()
        // On failure the map's initialiser has already uncounted itself.
        return try RawCustomMap(definition, binding: binding)
    }
}

/// A provider's registration: unregister through it, reach the client services from it.
///
/// A registration stands for one `register` call: it removes only what that call
/// registered, never a later registration of the same type ID by someone else.
///
/// Concurrency: any thread.
public final class MapProviderRegistration: Sendable {
    /// The custom type this registration serves.
    public var type: MapType { binding.type }
    private let binding: ProviderBinding
    private let registry: MapProviderRegistry

    init(binding: ProviderBinding, registry: MapProviderRegistry) {
        self.binding = binding
        self.registry = registry
    }

    /// The services the library offers this provider (eBPF's client dispatch table).
    public var client: MapClientServices { MapClientServices() }

    /// A new map of this registration's type, by its provider (``MapProviderRegistry/createMap(_:)``,
    /// with `definition.type` this registration's).
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/keyNotFound`` if this registration was unregistered
    ///   (even if another provider has registered the same type since: its maps are not made
    ///   here); ``/RCUBaseMaps/MapError/invalidArgument`` for a definition of another type;
    ///   what ``MapProviderRegistry/createMap(_:)`` throws.
    public func createMap(_ definition: MapDefinition) throws(MapError) -> RawCustomMap {
        try createMap(definition, expecting: nil)
    }

    /// ``createMap(_:)`` for a typed view of `viewTypes` (see
    /// ``MapProviderRegistry/createMap(_:)``).
    package func createMap(_ definition: MapDefinition, expecting viewTypes: ProviderValueTypes?) throws(MapError)
        -> RawCustomMap
    {
        guard definition.type == binding.type else {
            throw MapError.invalidArgument.with(
                reason: "a registration of map type \(binding.type.rawValue) cannot make maps of type \(definition.type.rawValue)")
        }
        return try registry.createMap(definition, expecting: viewTypes, only: binding)
    }

    /// Unregisters this registration's provider.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/busy`` while maps of the type exist; ``/RCUBaseMaps/MapError/keyNotFound``
    ///   if this registration was already unregistered (even if another provider has
    ///   registered the same type since: that one stays).
    public func unregister() throws(MapError) {
        try registry.unregister(type: binding.type, only: binding)
    }
}
