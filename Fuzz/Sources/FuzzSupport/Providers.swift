import CFuzzSupport
import ObjectMapProvider
import RCUMaps
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Pool tags of everything the fuzz targets allocate, so that leaks are attributed.
public enum FuzzTags {
    public static let hashLockFree = PoolTag("fzhl")
    public static let hashBucket = PoolTag("fzhb")
    public static let array = PoolTag("fzar")
    public static let providerMaps = PoolTag("fzpm")
    public static let objects = PoolTag("fzob")
    public static let clientAllocations = PoolTag("fzca")
}

/// A Swift provider with the deprecated pre-deletion callback (bucket-locked and array
/// bases): identity values, callbacks counted, refusals by rule:
/// find fails EACCES for key[0] == 0xEF, addition EINVAL for value[0] == 0xEE,
/// pre-deletion refuses an explicit delete of key[0] == 0xEC with EBUSY.
public final class SwiftProviderState: @unchecked Sendable {
    // @unchecked: the fuzz targets run on one thread.
    public var creates = 0
    public var mapDeletes = 0
    public var additions = 0
    public var deletions = 0
    public var cleanups = 0
    /// The map the deletion callback writes to (fixed known defect 3: EDEADLK; weak: the
    /// map must go when the harness drops it).
    public weak var reentryTarget: (any RawMap)?
    public var reentryAttempts = 0

    public func reset() {
        creates = 0; mapDeletes = 0; additions = 0; deletions = 0; cleanups = 0
        reentryTarget = nil; reentryAttempts = 0
    }

    public static var rules: ProviderRules { ProviderRules(
        transforms: false,
        additionError: { _, value in value[0] == 0xEE ? EINVAL : nil },
        findError: { key, _ in key[0] == 0xEF ? EACCES : nil },
        deletionRefusal: { key in key[0] == 0xEC ? EBUSY : nil }) }

    func dispatch() -> MapProviderDispatchTable {
        MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) -> MapCreateResult in
                self.creates += 1
                return MapCreateResult(actualValueSize: request.valueSize, context: self)
            },
            postprocessMapDelete: { context in
                fuzzCheck(context === self, "postprocessMapDelete got another context")
                self.mapDeletes += 1
            },
            preprocessAssociateProgramType: { (_, _) throws(MapError) in },
            postprocessFindElement: { (call) throws(MapError) in
                fuzzCheck(call.outValue == nil, "identity provider got an outValue")
                if call.key[0] == 0xEF { throw MapError(code: EACCES) }
            },
            preprocessElementAddition: { (call) throws(MapError) in
                if call.inValue[0] == 0xEE { throw MapError.invalidArgument }
                self.additions += 1
            },
            preprocessElementDeletion: { (call) throws(MapError) in
                let explicit = !call.flags.contains(.update) && !call.flags.contains(.mapCleanup)
                // (Not in a rollback, which holds no lock: a write there is allowed, and this
                // one would change the map behind the model.)
                if !call.flags.contains(.mapCleanup), !call.flags.contains(.rollback), let map = self.reentryTarget {
                    // A write to its own map from under the bucket lock (known defect 3, fixed): EDEADLK.
                    self.reentryAttempts += 1
                    let result = attempt { () throws(MapError) in try map.delete(key: call.key) }
                    if case .failure(let error) = result {
                        trace("    re-entrant delete from the deletion callback → \(errnoName(error.code))")
                        fuzzCheck(error.code == EDEADLK, "re-entrant delete from a deletion callback: \(error), expected EDEADLK")
                    } else {
                        fuzzFail("re-entrant delete from a deletion callback succeeded")
                    }
                }
                if explicit, call.key[0] == 0xEC { throw MapError.busy }
                self.deletions += 1
                if call.flags.contains(.mapCleanup) { self.cleanups += 1 }
            })
    }
}

/// The custom map types every target can create, registered once per process.
public final class SharedProviders: @unchecked Sendable {
    public static let shared = SharedProviders()

    /// ObjectMapProvider (the sample) on each base: 4100 bucket-locked, 4101 lock-free, 4102 array.
    public let objects: [ProviderBaseMap: ObjectMapProvider]
    /// The C provider, transforming ({token, checksum, value}), no failing callbacks but
    /// addition of a value starting 0xEE (EINVAL): 4110 lock-free, 4111 bucket, 4112 array.
    public let cTransform: [ProviderBaseMap: OpaquePointer]
    /// The C provider, identity values; find fails for key[0] == 0xEF (returns -EACCES),
    /// addition for value[0] == 0xEE (returns INT_MIN: EINVAL), pre-deletion (bucket and
    /// array; lock-free has post-deletion) refuses key[0] == 0xED (EPERM): 4120, 4121, 4122.
    public let cIdentity: [ProviderBaseMap: OpaquePointer]
    /// SwiftProviderState: 4130 bucket-locked, 4131 array.
    public let swift: [ProviderBaseMap: SwiftProviderState]

    public static let bases: [ProviderBaseMap] = [.hashLockFree, .hashBucketLocked, .array]

    public static func cBase(_ base: ProviderBaseMap) -> UInt32 {
        switch base {
        case .hashLockFree: 1
        case .hashBucketLocked: 2
        case .array: 3
        }
    }

    public static func objectType(_ base: ProviderBaseMap) -> MapType {
        MapType(rawValue: [ProviderBaseMap.hashBucketLocked: 4100, .hashLockFree: 4101, .array: 4102][base]!)
    }
    public static func cTransformType(_ base: ProviderBaseMap) -> MapType { MapType(rawValue: 4110 + cBase(base) - 1) }
    public static func cIdentityType(_ base: ProviderBaseMap) -> MapType { MapType(rawValue: 4120 + cBase(base) - 1) }
    public static func swiftType(_ base: ProviderBaseMap) -> MapType { MapType(rawValue: base == .array ? 4131 : 4130) }

    public static let transformPresent = UInt32(FZP_CB_CREATE | FZP_CB_MAP_DELETE | FZP_CB_ASSOCIATE | FZP_CB_FIND
        | FZP_CB_ADDITION | FZP_CB_POST_DELETION)
    public static func identityPresent(_ base: ProviderBaseMap) -> UInt32 {
        UInt32(FZP_CB_CREATE | FZP_CB_MAP_DELETE | FZP_CB_ASSOCIATE | FZP_CB_FIND | FZP_CB_ADDITION
            | (base == .hashLockFree ? FZP_CB_POST_DELETION : FZP_CB_PRE_DELETION))
    }

    public static func transformBehavior(userValueSize: Int) -> fzp_behavior_t {
        var behavior = CProvider.quietBehavior(transforms: true)
        behavior.set_actual_value_size = 1
        behavior.actual_value_size = UInt32(truncatingIfNeeded: userValueSize &+ 8)
        behavior.addition_trigger = 0xEE
        behavior.addition_result = EINVAL
        behavior.client_calls = UInt32(FZP_CLIENT_FIND | FZP_CLIENT_CONTEXT | FZP_CLIENT_NEST | FZP_CLIENT_ALLOCATE)
        behavior.client_nesting = 2
        behavior.client_allocation_size = 48
        behavior.client_allocation_tag = FuzzTags.clientAllocations.rawValue
        return behavior
    }

    public static var identityBehavior: fzp_behavior_t {
        var behavior = CProvider.quietBehavior(transforms: false)
        behavior.find_trigger = 0xEF
        behavior.find_result = -EACCES
        behavior.addition_trigger = 0xEE
        behavior.addition_result = .min
        behavior.pre_deletion_trigger = 0xED
        behavior.pre_deletion_result = EPERM
        behavior.client_calls = UInt32(FZP_CLIENT_ALLOCATE | FZP_CLIENT_NEST)
        behavior.client_nesting = 1
        behavior.client_allocation_size = 100
        behavior.client_allocation_tag = FuzzTags.clientAllocations.rawValue
        return behavior
    }

    private init() {
        var objects: [ProviderBaseMap: ObjectMapProvider] = [:]
        var cTransform: [ProviderBaseMap: OpaquePointer] = [:]
        var cIdentity: [ProviderBaseMap: OpaquePointer] = [:]
        var swift: [ProviderBaseMap: SwiftProviderState] = [:]
        for base in Self.bases {
            do {
                objects[base] = try ObjectMapProvider(type: Self.objectType(base), base: base, objectTag: FuzzTags.objects)
            } catch {
                fuzzFail("registering the object map provider on \(base) failed: \(error)")
            }
            var transform = Self.transformBehavior(userValueSize: 8)
            let transformBinding = fzp_binding_create(&transform)!
            CProvider.registerFixed(type: Self.cTransformType(base).rawValue, base: Self.cBase(base), transforms: true,
                                    present: Self.transformPresent, binding: transformBinding)
            cTransform[base] = transformBinding
            var identity = Self.identityBehavior
            let identityBinding = fzp_binding_create(&identity)!
            CProvider.registerFixed(type: Self.cIdentityType(base).rawValue, base: Self.cBase(base), transforms: false,
                                    present: Self.identityPresent(base), binding: identityBinding)
            cIdentity[base] = identityBinding
            if base != .hashLockFree {
                let state = SwiftProviderState()
                do {
                    try MapProviderRegistry.shared.register(type: Self.swiftType(base), base: base,
                                                            properties: MapProviderProperties(updatesOriginalValue: false),
                                                            dispatch: state.dispatch())
                } catch {
                    fuzzFail("registering the Swift provider on \(base) failed: \(error)")
                }
                swift[base] = state
            }
        }
        self.objects = objects
        self.cTransform = cTransform
        self.cIdentity = cIdentity
        self.swift = swift
    }
}
