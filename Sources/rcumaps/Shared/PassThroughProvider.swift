import RCUMaps

/// A custom map type whose provider's callbacks are all present and change nothing: the
/// provider layer's own cost and behaviour, against its base map. Two registrations, once per
/// process each:
/// - `pass-through` in `rcumaps bench` (type 4102, on the bucket-locked hash), measured
///   against `hash-bucket` on the same workloads (helper-mode lookups: the provider does not
///   update the original value, so they are allowed);
/// - `custom-array` in `rcumaps stress` (type 4103, on an ARRAY), checked as an array is:
///   the layer must be invisible, errno for errno.
enum PassThroughProvider {
    /// The bench's type, on the bucket-locked hash.
    static let type = MapType(rawValue: 4102)
    /// The stress run's type, on an ARRAY.
    static let arrayType = MapType(rawValue: 4103)

    /// Callbacks that change nothing.
    static var dispatch: MapProviderDispatchTable {
        MapProviderDispatchTable(
            preprocessMapCreate: { request in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { _, _ in },
            postprocessFindElement: { _ in },
            preprocessElementAddition: { _ in },
            postprocessElementDeletion: { _ in })
    }

    /// The bench's registration, made on first use.
    static let registration: Result<MapProviderRegistration, MapError> = Result { () throws(MapError) in
        try MapProviderRegistry.shared.register(
            type: type, base: .hashBucketLocked, properties: MapProviderProperties(updatesOriginalValue: false),
            dispatch: dispatch)
    }

    /// The stress run's registration, made on first use.
    static let arrayRegistration: Result<MapProviderRegistration, MapError> = Result { () throws(MapError) in
        try MapProviderRegistry.shared.register(
            type: arrayType, base: .array, properties: MapProviderProperties(updatesOriginalValue: false),
            dispatch: dispatch)
    }

    /// A map of the bench's type with the bench's hash definition (8-byte keys and values).
    static func makeMap(entries: Int) throws(MapError) -> RawCustomMap {
        _ = try registration.get()
        var definition = hashDefinition(entries: entries, implementation: .bucketLocked)
        definition.type = type
        return try MapProviderRegistry.shared.createMap(definition)
    }

    /// A map of the stress run's type: `definition`, an ARRAY's, made a custom type's.
    static func makeArrayMap(_ definition: MapDefinition) throws(MapError) -> RawCustomMap {
        _ = try arrayRegistration.get()
        var custom = definition
        custom.type = arrayType
        return try MapProviderRegistry.shared.createMap(custom)
    }
}
