import RCUBaseMaps

/// The callbacks of a custom map provider: eBPF-for-Windows'
/// `ebpf_base_map_provider_dispatch_table_t` as a versioned Swift struct.
///
/// Required: ``preprocessMapCreate``, ``postprocessMapDelete``,
/// ``preprocessAssociateProgramType``, and exactly one of ``preprocessElementDeletion``
/// (deprecated) and ``postprocessElementDeletion`` (preferred). With
/// ``MapProviderProperties/updatesOriginalValue`` the find and addition callbacks are
/// required too. ``MapProviderRegistry/register(type:base:properties:dispatch:)`` checks all
/// of this and refuses a table that breaks a rule with ``/RCUBaseMaps/MapError/invalidArgument``.
///
/// Concurrency: callbacks run on the thread of the map operation that triggers them — every
/// callback that receives a key or value inside an epoch — and may run concurrently, also
/// for one key, on every base: the addition callback runs before the base write, outside
/// any lock, and the deletion callback after the lock is released, so a replace's report and
/// a following delete's of one key may overlap or arrive in either order (only the
/// pre-deletion callbacks of one bucket or slot are serialised, under its lock). They must
/// not call `Epoch.synchronize()` or
/// `Epoch.barrier()`. docs/custom-maps.md has the full table of who calls what, where.
public struct MapProviderDispatchTable: Sendable {
    /// The layout version this library understands.
    public static let currentVersion: UInt32 = 1

    /// The version the table was written for (≤ ``currentVersion``).
    public var version: UInt32

    /// Before the base map is created: validate the sizes, choose the stored value size,
    /// return a per-map context. Throwing refuses the map (nothing is created). Required.
    public var preprocessMapCreate: (@Sendable (MapCreateRequest) throws(MapError) -> MapCreateResult)?

    /// After the map is destroyed — after the deletion callback ran with `.mapCleanup` for
    /// every remaining entry — release the context. Required.
    public var postprocessMapDelete: (@Sendable ((any MapProviderContext)?) -> Void)?

    /// Before a program type is associated with a map; throwing refuses it. Required.
    public var preprocessAssociateProgramType: (@Sendable ((any MapProviderContext)?, ProgramType) throws(MapError) -> Void)?

    /// After the base lookup found a stored value. With `updatesOriginalValue`, write the
    /// user-visible value to `outValue`. Throwing fails the lookup. For lookup-and-delete it
    /// runs on the entry being removed, before it leaves the map (throwing leaves the map
    /// unchanged); it then runs under the base map's lock, and writes to the same map from
    /// inside it fail with ``/RCUBaseMaps/MapError/wouldDeadlock`` (EDEADLK). On the
    /// lock-free base it runs again if another thread replaced the key meanwhile (only its
    /// last run is for the entry removed): keep it free of side effects. Throwing
    /// ``/RCUBaseMaps/MapError/keyNotFound`` hides the element: a lookup reports ENOENT,
    /// and a batch skips it (a lookup-and-delete batch leaves it in the map).
    public var postprocessFindElement: (@Sendable (MapElementCall) throws(MapError) -> Void)?

    /// Before the base update. With `updatesOriginalValue`, write the stored value to
    /// `outValue`. Throwing aborts the update (the map is unchanged). If the base update
    /// then fails, the deletion callback runs with `.update` for the stored value, so the
    /// provider can undo what this callback did.
    public var preprocessElementAddition: (@Sendable (MapElementCall) throws(MapError) -> Void)?

    /// Deprecated: before a value leaves the map, under the base map's bucket lock (the
    /// slot's writer bit for arrays). Throwing refuses an explicit delete; for `.update` and
    /// `.mapCleanup` the error is ignored. Not available on ``ProviderBaseMap/hashLockFree``
    /// (registration refuses it), which has no lock to run it under. Writes to the same map
    /// from inside it (which would wait for the lock this thread holds) fail with
    /// ``/RCUBaseMaps/MapError/wouldDeadlock`` (EDEADLK); lookups of any map work, except a
    /// lookup batch of the same map (EDEADLK too; see docs/custom-maps.md). Writes to
    /// *another* map work too, but take that map's locks while this one's is held: two maps
    /// whose callbacks write to each other can deadlock (thread 1 deletes from A, whose
    /// callback waits for B's lock, while thread 2 deletes from B, whose callback waits for
    /// A's), which no check refuses. Write to other maps from
    /// ``postprocessElementDeletion`` instead, which runs with no lock held.
    public var preprocessElementDeletion: (@Sendable (MapElementDeletion) throws(MapError) -> Void)?

    /// Preferred: after a value left the map and the bucket lock was released — exactly
    /// once per value, also under concurrent replaces of one key. Cannot fail.
    public var postprocessElementDeletion: (@Sendable (MapElementDeletion) -> Void)?

    /// A table of `version` with the given callbacks (`nil`: absent); registration checks
    /// which are required (see each callback).
    public init(version: UInt32 = MapProviderDispatchTable.currentVersion,
                preprocessMapCreate: (@Sendable (MapCreateRequest) throws(MapError) -> MapCreateResult)? = nil,
                postprocessMapDelete: (@Sendable ((any MapProviderContext)?) -> Void)? = nil,
                preprocessAssociateProgramType: (@Sendable ((any MapProviderContext)?, ProgramType) throws(MapError) -> Void)? = nil,
                postprocessFindElement: (@Sendable (MapElementCall) throws(MapError) -> Void)? = nil,
                preprocessElementAddition: (@Sendable (MapElementCall) throws(MapError) -> Void)? = nil,
                preprocessElementDeletion: (@Sendable (MapElementDeletion) throws(MapError) -> Void)? = nil,
                postprocessElementDeletion: (@Sendable (MapElementDeletion) -> Void)? = nil) {
        self.version = version
        self.preprocessMapCreate = preprocessMapCreate
        self.postprocessMapDelete = postprocessMapDelete
        self.preprocessAssociateProgramType = preprocessAssociateProgramType
        self.postprocessFindElement = postprocessFindElement
        self.preprocessElementAddition = preprocessElementAddition
        self.preprocessElementDeletion = preprocessElementDeletion
        self.postprocessElementDeletion = postprocessElementDeletion
    }

    /// Checks the rules of the table against `properties`.
    func validate(_ properties: MapProviderProperties) throws(MapError) {
        guard version >= 1, version <= Self.currentVersion else {
            throw MapError.invalidArgument.with(reason: "dispatch table version \(version) is not supported (1...\(Self.currentVersion))")
        }
        var missing: [String] = []
        if preprocessMapCreate == nil { missing.append("preprocessMapCreate") }
        if postprocessMapDelete == nil { missing.append("postprocessMapDelete") }
        if preprocessAssociateProgramType == nil { missing.append("preprocessAssociateProgramType") }
        guard missing.isEmpty else {
            throw MapError.invalidArgument.with(reason: "required callbacks missing: \(missing.joined(separator: ", "))")
        }
        switch (preprocessElementDeletion != nil, postprocessElementDeletion != nil) {
        case (true, true):
            throw MapError.invalidArgument.with(
                reason: "set exactly one of preprocessElementDeletion (deprecated) and postprocessElementDeletion, not both")
        case (false, false):
            throw MapError.invalidArgument.with(
                reason: "set exactly one of preprocessElementDeletion (deprecated) and postprocessElementDeletion")
        default:
            break
        }
        if properties.validatesValues {
            guard !properties.updatesOriginalValue else {
                throw MapError.invalidArgument.with(reason: "validatesValues and updatesOriginalValue exclude each other")
            }
            guard preprocessElementAddition != nil else {
                throw MapError.invalidArgument.with(reason: "validatesValues requires preprocessElementAddition")
            }
        }
        if properties.updatesOriginalValue {
            var needed: [String] = []
            if postprocessFindElement == nil { needed.append("postprocessFindElement") }
            if preprocessElementAddition == nil { needed.append("preprocessElementAddition") }
            guard needed.isEmpty else {
                throw MapError.invalidArgument.with(
                    reason: "updatesOriginalValue requires \(needed.joined(separator: " and "))")
            }
        }
    }
}
