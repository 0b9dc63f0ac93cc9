/// A custom map type written in Swift with typed keys and values: the typed face of
/// ``/RCUMapProviders/MapProviderDispatchTable``.
///
/// A provider says how it relates user values to stored ones (``mode``), and implements
/// the hooks that mode uses; every hook has a default that does nothing. Register it with
/// ``RCUMapProviders/MapProviderRegistry/register(_:type:base:)`` and create maps from the registration.
///
/// ```swift
/// struct Clamped: TypedMapProvider {
///     typealias Key = UInt32
///     typealias Value = UInt16
///     static var mode: TypedProviderMode { .validating }
///     func validate(_ value: inout UInt16, forKey key: UInt32, context: NoProviderContext) throws(MapError) {
///         value = min(value, 1_000)                      // check or clamp, same form
///     }
/// }
/// let registration = try MapProviderRegistry.shared.register(Clamped(), type: MapType(rawValue: 4200),
///                                                            base: .hashBucketLocked)
/// let limits = try registration.makeMap(maxEntries: 1024)   // CustomMap<UInt32, UInt16>
/// ```
///
/// Concurrency: hooks run on the thread of the map operation that triggers them, possibly
/// concurrently, also for one key (two updates of a key validate or store at once; a
/// replace's and a delete's ``removed(_:forKey:reason:context:)`` of a key may overlap or
/// come in either order). Those that receive a key or a value run inside an
/// epoch section; ``makeContext(maxEntries:)``, ``associate(_:context:)`` and
/// ``destroyContext(_:)`` get no section entered for them (``destroyContext(_:)`` runs where
/// the map's last reference is dropped: inside that thread's section if it holds one, or on
/// the reclamation thread; enter one to read epoch-protected memory there). ``removed(_:forKey:reason:context:)``
/// runs exactly once per value that leaves the map. Writing to the same map from
/// ``load(_:forKey:context:)`` during a lookup-and-delete (single or batch) fails with
/// EDEADLK: it runs under the base map's lock there (see
/// ``/RCUMapProviders/MapProviderDispatchTable/postprocessFindElement``).
public protocol TypedMapProvider: Sendable {
    /// The key type of the provider's maps.
    associatedtype Key: BitwiseCopyable & Sendable
    /// The values users store and read.
    associatedtype Value: BitwiseCopyable & Sendable
    /// The values the map stores: `Value` unless the provider transforms them.
    associatedtype Stored: BitwiseCopyable & Sendable = Value
    /// Per-map state, made when a map is created, dropped when it is destroyed.
    associatedtype Context: AnyObject & Sendable = NoProviderContext

    /// How user values relate to stored ones.
    static var mode: TypedProviderMode { get }

    /// Makes the state of a new map; throwing refuses the map. Default: a fresh
    /// ``NoProviderContext`` (when `Context` is that type).
    func makeContext(maxEntries: Int) throws(MapError) -> Context

    /// The map is gone (every entry was reported with ``RemovalReason/teardown``).
    func destroyContext(_ context: Context)

    /// Whether `programType` may use maps of this type; throwing refuses. Default: yes.
    func associate(_ programType: ProgramType, context: Context) throws(MapError)

    /// ``TypedProviderMode/transforming``: the stored form of a user value (throwing
    /// refuses the update; the map is unchanged).
    func store(_ value: Value, forKey key: Key, context: Context) throws(MapError) -> Stored

    /// ``TypedProviderMode/transforming``: the user form of a stored value (throwing fails
    /// the lookup). On the lock-free base a removal whose key is replaced meanwhile runs it
    /// again on the newer entry, so it may run on a value that is not returned: keep it free
    /// of side effects.
    func load(_ stored: Stored, forKey key: Key, context: Context) throws(MapError) -> Value

    /// ``TypedProviderMode/validating``: check the value (throw to refuse the update) or
    /// rewrite it in place (clamp it, fill a field).
    func validate(_ value: inout Value, forKey key: Key, context: Context) throws(MapError)

    /// A value left the map: deleted, replaced, rolled back (an update that failed after
    /// ``store(_:forKey:context:)`` or ``validate(_:forKey:context:)`` accepted it) or
    /// torn down with the map. Exactly once per value, after the map's lock is released.
    ///
    /// On an array base (``/RCUMapProviders/ProviderBaseMap/array``) every slot holds a
    /// value from the map's creation, as Linux's arrays do: all-zero bytes, which `store`
    /// never produced. They are reported too — ``RemovalReason/replaced`` at a slot's first
    /// write, ``RemovalReason/teardown`` for a slot never written — and, in transforming
    /// mode, ``load(_:forKey:context:)`` reads them from a slot never written. On an array
    /// base, use a `Stored` type whose all-zero bytes are a valid value that means "nothing"
    /// (the object map stores address 0 for no object); all-zero bytes of another type
    /// (`ObjectIdentifier`, an enum without a zero case) are undefined behaviour.
    func removed(_ stored: Stored, forKey key: Key, reason: RemovalReason, context: Context)
}

/// How a typed provider's stored values relate to its users' values.
public enum TypedProviderMode: Sendable, Hashable {
    /// Stored values are user values, untouched; the provider only hears about removals.
    /// Helper-mode (in-place) access stays available.
    case observing
    /// Stored values are user values, checked or rewritten in the same form on the way in
    /// (``TypedMapProvider/validate(_:forKey:context:)``). Helper-mode access stays available;
    /// in-place writes change the stored value directly and are not validated.
    case validating
    /// Stored values differ from user values (``TypedMapProvider/store(_:forKey:context:)``
    /// and ``TypedMapProvider/load(_:forKey:context:)``). Helper-mode access is blocked:
    /// it would expose the stored form.
    case transforming
}

/// Why a value left a map (a typed reading of ``/RCUBaseMaps/MapOperationFlags``).
public enum RemovalReason: Sendable, Hashable {
    /// Deleted by a user (delete or lookup-and-delete), in user or helper mode.
    case deleted
    /// Replaced by an update.
    case replaced
    /// An update that failed after the provider accepted its value: the value never was in
    /// the map; undo what accepting it did.
    case rolledBack
    /// The map was destroyed with the value in it.
    case teardown

    init(_ flags: MapOperationFlags) {
        if flags.contains(.mapCleanup) {
            self = .teardown
        } else if flags.contains(.rollback) {
            self = .rolledBack
        } else if flags.contains(.update) {
            self = .replaced
        } else {
            self = .deleted
        }
    }
}

/// The context of a provider that keeps no per-map state.
public final class NoProviderContext: Sendable {
    /// An empty context.
    public init() {}
}

/// Defaults, so that a provider implements only the callbacks it needs. Each runs where the
/// requirement it stands for says (the provider layer calls them; see the protocol for which
/// run inside an epoch section).
extension TypedMapProvider {
    /// Default: nothing to destroy.
    public func destroyContext(_ context: Context) {}
    /// Default: every program type may use the map.
    public func associate(_ programType: ProgramType, context: Context) throws(MapError) {}
    /// Default: every value is accepted as it is.
    public func validate(_ value: inout Value, forKey key: Key, context: Context) throws(MapError) {}
    /// Default: removals need no work.
    public func removed(_ stored: Stored, forKey key: Key, reason: RemovalReason, context: Context) {}
    /// Default for a provider that stores values as given (`Stored == Value`); a
    /// transforming provider must implement it (this one stops the program with a message).
    public func store(_ value: Value, forKey key: Key, context: Context) throws(MapError) -> Stored {
        guard Stored.self == Value.self else {
            _rcumapsTrap("\(Self.self): a transforming provider must implement store(_:forKey:context:)")
        }
        return unsafeBitCast(value, to: Stored.self)
    }
    /// Default for a provider that stores values as given (see ``store(_:forKey:context:)``).
    public func load(_ stored: Stored, forKey key: Key, context: Context) throws(MapError) -> Value {
        guard Stored.self == Value.self else {
            _rcumapsTrap("\(Self.self): a transforming provider must implement load(_:forKey:context:)")
        }
        return unsafeBitCast(stored, to: Value.self)
    }
}

extension TypedMapProvider where Context == NoProviderContext {
    /// Default for a provider without per-map state: an empty context.
    public func makeContext(maxEntries: Int) throws(MapError) -> NoProviderContext { NoProviderContext() }
}

/// A registered typed provider: creates its maps, and unregisters it.
///
/// Concurrency: any thread.
public final class TypedProviderRegistration<Provider: TypedMapProvider>: Sendable {
    /// The registration underneath (its type ID, unregistration, client services).
    public let registration: MapProviderRegistration
    /// The registry the provider is registered in.
    public let registry: MapProviderRegistry
    /// The provider.
    public let provider: Provider

    init(registration: MapProviderRegistration, registry: MapProviderRegistry, provider: Provider) {
        self.registration = registration
        self.registry = registry
        self.provider = provider
    }

    /// The custom type ID the provider serves.
    public var type: MapType { registration.type }

    /// A new map of the provider's type, by this registration's provider.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/keyNotFound`` once this registration is unregistered
    ///   (even if another provider has registered the type ID since: before, that provider
    ///   made the map, found by review, 2026-12-05); otherwise what
    ///   ``CustomMap/init(type:maxEntries:name:poolTag:registry:)`` throws.
    public func makeMap(maxEntries: Int, name: String = "", poolTag: PoolTag? = nil) throws(MapError)
        -> CustomMap<Provider.Key, Provider.Value>
    {
        try CustomMap(registration: registration, maxEntries: maxEntries, name: name, poolTag: poolTag)
    }

    /// Unregisters the provider (``/RCUBaseMaps/MapError/busy`` while maps of its type exist).
    public func unregister() throws(MapError) { try registration.unregister() }
}

extension MapProviderRegistry {
    /// Registers a typed provider for the custom `type`, stored in `base`.
    ///
    /// - Throws: ``/RCUBaseMaps/MapError/invalidArgument`` for an ID outside 4096–65535, a key type with
    ///   padding, a value type aligned beyond 8 bytes, or a `Stored` type other than `Value` outside
    ///   the ``TypedProviderMode/transforming`` mode; ``/RCUBaseMaps/MapError/alreadyExists`` if the
    ///   type already has a provider in this registry. Typed maps of the type must then be made with
    ///   the provider's `Key` and `Value` types
    ///   (``TypedProviderRegistration/makeMap(maxEntries:name:poolTag:)`` does), byte-level ones
    ///   with their sizes: a ``CustomMap`` of other types (even of the same sizes) or a definition
    ///   of other sizes is refused with ``/RCUBaseMaps/MapError/invalidArgument``.
    public func register<Provider: TypedMapProvider>(_ provider: Provider, type: MapType, base: ProviderBaseMap)
        throws(MapError) -> TypedProviderRegistration<Provider>
    {
        try TypedLayout.checkKey(Provider.Key.self)
        try TypedLayout.checkValue(Provider.Value.self)
        try TypedLayout.checkValue(Provider.Stored.self)
        let mode = Provider.mode
        // Outside `.transforming` the map stores user values as they are, and the removal
        // hook reads them back as `Stored`: only the same type is sound (bytes of one type
        // read as another of the same size can be an invalid enum case or `Bool`).
        guard mode == .transforming || Provider.Stored.self == Provider.Value.self else {
            throw MapError.invalidArgument.with(
                reason: "\(Provider.self): Stored (\(Provider.Stored.self)) is not Value (\(Provider.Value.self)); only the .transforming mode may store another type")
        }
        let registration = try register(
            type: type, base: base,
            properties: MapProviderProperties(updatesOriginalValue: mode == .transforming,
                                              validatesValues: mode == .validating),
            dispatch: TypedDispatch(provider).table,
            valueTypes: ProviderValueTypes(key: Provider.Key.self, value: Provider.Value.self))
        return TypedProviderRegistration(registration: registration, registry: self, provider: provider)
    }
}

/// Builds the byte-level dispatch table of a typed provider.
struct TypedDispatch<Provider: TypedMapProvider> {
    let provider: Provider

    init(_ provider: Provider) { self.provider = provider }

    /// The provider's context, as stored by the map (its own class: the cast is exact).
    static func context(_ context: (any MapProviderContext)?) -> Provider.Context {
        unsafeDowncast(context!, to: Provider.Context.self)
    }

    var table: MapProviderDispatchTable {
        let provider = self.provider
        var table = MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) -> MapCreateResult in
                // Every hook reads keys and values as the provider's types: a map made with
                // other sizes (a `CustomMap` of other types, or a byte-level definition) would
                // have them read and written out of bounds.
                guard request.keySize == MemoryLayout<Provider.Key>.size,
                      request.valueSize == MemoryLayout<Provider.Value>.size else {
                    throw MapError.invalidArgument.with(
                        reason: "\(Provider.self) serves \(MemoryLayout<Provider.Key>.size)-byte keys and \(MemoryLayout<Provider.Value>.size)-byte values, not \(request.keySize) and \(request.valueSize)")
                }
                let context = try provider.makeContext(maxEntries: request.maxEntries)
                return MapCreateResult(actualValueSize: MemoryLayout<Provider.Stored>.size, context: context)
            },
            postprocessMapDelete: { context in provider.destroyContext(Self.context(context)) },
            preprocessAssociateProgramType: { (context, programType) throws(MapError) in
                try provider.associate(programType, context: Self.context(context))
            },
            postprocessElementDeletion: { deletion in
                provider.removed(deletion.value.loadUnaligned(as: Provider.Stored.self),
                                 forKey: deletion.key.loadUnaligned(as: Provider.Key.self),
                                 reason: RemovalReason(deletion.flags), context: Self.context(deletion.context))
            })
        switch Provider.mode {
        case .observing:
            break
        case .validating:
            table.preprocessElementAddition = { (call) throws(MapError) in
                guard let out = call.outValue else { return }
                var value = call.inValue.loadUnaligned(as: Provider.Value.self)
                try provider.validate(&value, forKey: call.key.loadUnaligned(as: Provider.Key.self),
                                      context: Self.context(call.context))
                out.storeBytes(of: value, as: Provider.Value.self)
            }
        case .transforming:
            table.preprocessElementAddition = { (call) throws(MapError) in
                guard let out = call.outValue else { return }
                let stored = try provider.store(call.inValue.loadUnaligned(as: Provider.Value.self),
                                                forKey: call.key.loadUnaligned(as: Provider.Key.self),
                                                context: Self.context(call.context))
                out.storeBytes(of: stored, as: Provider.Stored.self)
            }
            table.postprocessFindElement = { (call) throws(MapError) in
                guard let out = call.outValue else { return }
                let value = try provider.load(call.inValue.loadUnaligned(as: Provider.Stored.self),
                                              forKey: call.key.loadUnaligned(as: Provider.Key.self),
                                              context: Self.context(call.context))
                out.storeBytes(of: value, as: Provider.Value.self)
            }
        }
        return table
    }
}
