import RCUMaps

/// `pass-through`: a custom map type on the bucket-locked hash whose provider's callbacks
/// are all present and change nothing — the provider layer's own cost, measured against its
/// base map (`hash-bucket`) on the same workloads (helper-mode lookups: the provider does
/// not update the original value, so they are allowed).
enum PassThroughProvider {
    /// The map type, registered once per process.
    static let type = MapType(rawValue: 4102)

    /// The registration, made on first use.
    static let registration: Result<MapProviderRegistration, MapError> = Result { () throws(MapError) in
        try MapProviderRegistry.shared.register(
            type: type, base: .hashBucketLocked, properties: MapProviderProperties(updatesOriginalValue: false),
            dispatch: MapProviderDispatchTable(
                preprocessMapCreate: { request in MapCreateResult(actualValueSize: request.valueSize) },
                postprocessMapDelete: { _ in },
                preprocessAssociateProgramType: { _, _ in },
                postprocessFindElement: { _ in },
                preprocessElementAddition: { _ in },
                postprocessElementDeletion: { _ in }))
    }

    /// A map of the type with the bench's hash definition (8-byte keys and values).
    static func makeMap(entries: Int) throws(MapError) -> RawCustomMap {
        _ = try registration.get()
        var definition = hashDefinition(entries: entries, implementation: .bucketLocked)
        definition.type = type
        return try MapProviderRegistry.shared.createMap(definition)
    }
}
