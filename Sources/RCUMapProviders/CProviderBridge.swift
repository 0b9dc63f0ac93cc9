import CRCUMapProviderABI
import CRCUMapsShim
import RCUBaseMaps
import RCUEpoch

// The C ABI of rcumaps_provider.h: C providers are adapted to MapProviderDispatchTable,
// and RCUMaps' services are offered to them as a table of C function pointers.

/// A C provider's `void *` map context, held as a provider context.
final class COpaqueContext: Sendable {
    let address: UInt
    init(_ pointer: UnsafeMutableRawPointer?) { address = UInt(bitPattern: pointer) }
    var pointer: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: address) }
}

extension Optional where Wrapped == any MapProviderContext {
    /// The `void *` a C provider returned as its map context.
    var cPointer: UnsafeMutableRawPointer? { (self as? COpaqueContext)?.pointer }
}

/// Bytes of the version-1 layouts, fixed forever (the only version this library knows, so
/// the C structs' own sizes, whatever the platform's pointer size): a shorter table is
/// refused, a longer one read up to what this library knows.
/// Dispatch: {version, size} + 7 function pointers. Registration: 6 × UInt32 + 2 pointers.
private let version1DispatchSize = MemoryLayout<rcumaps_provider_dispatch_table_t>.size
private let version1RegistrationSize = MemoryLayout<rcumaps_provider_registration_t>.size

/// Converts a C callback's result into a `MapError`: 0 succeeds; an errno (1…4095, Linux's
/// `MAX_ERRNO`) is kept, and a negative errno, as some C code returns, read as its
/// magnitude; anything else (a status code of the provider's own) becomes EINVAL, as the
/// header says. (Any negative value became its magnitude: -100000 was thrown as "errno
/// 100000". Found by review, 2026-12-06, twenty-seventh session.)
@inline(__always)
private func check(_ result: rcumaps_result_t) throws(MapError) {
    guard result != 0 else { return }
    let magnitude = result == .min ? 0 : abs(result)
    throw MapError(code: (1...4095).contains(magnitude) ? magnitude : EINVAL)
}

/// Builds a Swift dispatch table that calls a C provider's table.
///
/// The C table is copied (at most `size` bytes) so that later changes to it by the provider
/// cannot race with the library; the binding context travels as an integer.
func makeDispatchTable(from table: UnsafePointer<rcumaps_provider_dispatch_table_t>,
                       bindingContext: UnsafeMutableRawPointer?) throws(MapError) -> MapProviderDispatchTable {
    let declaredSize = Int(table.pointee.size)
    guard declaredSize >= version1DispatchSize else {
        throw MapError.invalidArgument.with(reason: "dispatch table size \(declaredSize) is below the version-1 size \(version1DispatchSize)")
    }
    var copy = rcumaps_provider_dispatch_table_t()
    withUnsafeMutableBytes(of: &copy) { destination in
        destination.copyMemory(from: UnsafeRawBufferPointer(start: table, count: min(declaredSize, destination.count)))
    }
    // A version this library does not know is refused, as the Swift table's is (a later
    // version's callbacks could mean what version 1 cannot honour).
    guard copy.version >= 1, copy.version <= MapProviderDispatchTable.currentVersion else {
        throw MapError.invalidArgument.with(
            reason: "dispatch table version \(copy.version) is not supported (1...\(MapProviderDispatchTable.currentVersion))")
    }
    let binding = UInt(bitPattern: bindingContext)
    var dispatch = MapProviderDispatchTable(version: copy.version)
    if let create = copy.preprocess_map_create {
        dispatch.preprocessMapCreate = { (request) throws(MapError) -> MapCreateResult in
            var actual = UInt32(request.valueSize)
            var context: UnsafeMutableRawPointer?
            try check(create(UnsafeMutableRawPointer(bitPattern: binding), request.type.rawValue, UInt32(request.keySize),
                             UInt32(request.valueSize), UInt32(request.maxEntries), &actual, &context))
            return MapCreateResult(actualValueSize: Int(actual), context: COpaqueContext(context))
        }
    }
    if let delete = copy.postprocess_map_delete {
        dispatch.postprocessMapDelete = { context in
            // It runs after the base map is gone: the client table's calls that take a map
            // handle refuse meanwhile, as in a teardown's deletions (below). (They read the
            // freed base map: found by review, 2026-12-05.)
            rcumaps_teardown_enter()
            defer { rcumaps_teardown_leave() }
            delete(UnsafeMutableRawPointer(bitPattern: binding), context.cPointer)
        }
    }
    if let associate = copy.preprocess_associate_program_type {
        dispatch.preprocessAssociateProgramType = { (context, programType) throws(MapError) in
            try programType.bytes.withUnsafeBufferPointer { (bytes) throws(MapError) in
                try check(associate(UnsafeMutableRawPointer(bitPattern: binding), context.cPointer, bytes.baseAddress))
            }
        }
    }
    if let find = copy.postprocess_find_element {
        dispatch.postprocessFindElement = { (call) throws(MapError) in
            try check(find(UnsafeMutableRawPointer(bitPattern: binding), call.context.cPointer,
                           call.key.count, call.key.baseAddress?.assumingMemoryBound(to: UInt8.self),
                           call.inValue.count, call.inValue.baseAddress?.assumingMemoryBound(to: UInt8.self),
                           call.outValue?.count ?? 0, call.outValue?.baseAddress?.assumingMemoryBound(to: UInt8.self), call.flags.rawValue))
        }
    }
    if let addition = copy.preprocess_element_addition {
        dispatch.preprocessElementAddition = { (call) throws(MapError) in
            try check(addition(UnsafeMutableRawPointer(bitPattern: binding), call.context.cPointer,
                               call.key.count, call.key.baseAddress?.assumingMemoryBound(to: UInt8.self),
                               call.inValue.count, call.inValue.baseAddress?.assumingMemoryBound(to: UInt8.self),
                               call.outValue?.count ?? 0, call.outValue?.baseAddress?.assumingMemoryBound(to: UInt8.self),
                               call.flags.rawValue))
        }
    }
    if let deletion = copy.preprocess_element_deletion {
        dispatch.preprocessElementDeletion = { (call) throws(MapError) in
            let teardown = call.flags.contains(.mapCleanup)
            if teardown { rcumaps_teardown_enter() }
            defer { if teardown { rcumaps_teardown_leave() } }
            try check(deletion(UnsafeMutableRawPointer(bitPattern: binding), call.context.cPointer,
                               call.key.count, call.key.baseAddress?.assumingMemoryBound(to: UInt8.self),
                               call.value.count, call.value.baseAddress?.assumingMemoryBound(to: UInt8.self), call.flags.rawValue))
        }
    }
    if let deletion = copy.postprocess_element_deletion {
        dispatch.postprocessElementDeletion = { call in
            // A teardown's deletions run while the map is destroyed: the client table's
            // calls that take its handle refuse meanwhile (below).
            let teardown = call.flags.contains(.mapCleanup)
            if teardown { rcumaps_teardown_enter() }
            defer { if teardown { rcumaps_teardown_leave() } }
            deletion(UnsafeMutableRawPointer(bitPattern: binding), call.context.cPointer,
                     call.key.count, call.key.baseAddress?.assumingMemoryBound(to: UInt8.self),
                     call.value.count, call.value.baseAddress?.assumingMemoryBound(to: UInt8.self), call.flags.rawValue)
        }
    }
    return dispatch
}

extension RawCustomMap {
    /// The handle C providers pass to the client table (`find_element`, `map_context`).
    /// Unretained: valid while the Swift code that handed it out keeps the map alive.
    public var cHandle: UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()) }

    static func fromCHandle(_ handle: UnsafeRawPointer) -> RawCustomMap {
        Unmanaged<RawCustomMap>.fromOpaque(handle).takeUnretainedValue()
    }
}

// MARK: - The client table for C providers

// nonisolated(unsafe): written once by this initialiser, read-only afterwards.
nonisolated(unsafe) private let clientTable: UnsafeMutablePointer<rcumaps_client_dispatch_table_t> = {
    let table = UnsafeMutablePointer<rcumaps_client_dispatch_table_t>.allocate(capacity: 1)
    table.initialize(to: rcumaps_client_dispatch_table_t(
        version: RCUMAPS_CLIENT_DISPATCH_VERSION,
        size: UInt32(MemoryLayout<rcumaps_client_dispatch_table_t>.size),
        find_element: { map, key, value in
            // The returned pointer is only valid inside the caller's epoch: refuse without one.
            // Refused too from a teardown's deletion callback, where the map is being
            // destroyed (its handle no longer names a live map: found by review).
            guard let map, let key, let value, Epoch.isActive, rcumaps_teardown_depth() == 0 else { return EINVAL }
            let provider = RawCustomMap.fromCHandle(map)
            let keyBuffer = UnsafeRawBufferPointer(start: key, count: provider.definition.keySize)
            do throws(MapError) {
                // The caller holds an epoch (contract); the nested section only satisfies the API.
                let stored = try Epoch.withSection { (section) throws(MapError) in
                    try provider.findStored(key: keyBuffer, in: section)
                }
                value.pointee = stored.baseAddress?.assumingMemoryBound(to: UInt8.self)
                return 0
            } catch {
                return error.code
            }
        },
        epoch_enter: { rcumaps_epoch_enter() },
        epoch_exit: { rcumaps_epoch_exit() },
        // size_t arrives as Int: sizes of 2^63 and up, such as (size_t)-1, are negative here,
        // and the allocators answer nil (NULL) for them, as for any size over maxBlockSize.
        epoch_allocate_with_tag: { size, tag in EpochMemory.allocate(byteCount: size, tag: PoolTag(rawValue: tag)) },
        epoch_allocate_cache_aligned_with_tag: { size, tag in
            EpochMemory.allocateCacheAligned(byteCount: size, tag: PoolTag(rawValue: tag))
        },
        epoch_free: { memory in if let memory { EpochMemory.free(memory) } },
        epoch_free_cache_aligned: { memory in if let memory { EpochMemory.freeCacheAligned(memory) } },
        map_context: { map in
            guard let map, rcumaps_teardown_depth() == 0 else { return nil }
            return RawCustomMap.fromCHandle(map).providerContext.cPointer
        }))
    return table
}()

/// `rcumaps_register_provider` (rcumaps_provider.h).
@_cdecl("rcumaps_register_provider")
public func rcumaps_register_provider(
    _ registration: UnsafePointer<rcumaps_provider_registration_t>?,
    _ client: UnsafeMutablePointer<UnsafePointer<rcumaps_client_dispatch_table_t>?>?
) -> rcumaps_result_t {
    guard let registration, Int(registration.pointee.size) >= version1RegistrationSize else { return EINVAL }
    // Read the caller's struct once (at most what version 1 defines).
    var local = rcumaps_provider_registration_t()
    withUnsafeMutableBytes(of: &local) { destination in
        destination.copyMemory(from: UnsafeRawBufferPointer(start: registration, count: version1RegistrationSize))
    }
    guard local.version == RCUMAPS_PROVIDER_REGISTRATION_VERSION, local.reserved == 0,
          let table = local.dispatch else { return EINVAL }
    let base: ProviderBaseMap
    switch local.base_map {
    case RCUMAPS_BASE_MAP_HASH_LOCK_FREE: base = .hashLockFree
    case RCUMAPS_BASE_MAP_HASH_BUCKET_LOCKED: base = .hashBucketLocked
    case RCUMAPS_BASE_MAP_ARRAY: base = .array
    default: return EINVAL
    }
    // The client table goes to the caller before the type is registered: a map of the type
    // can be created on another thread the moment it is, and its provider's callbacks may
    // already reach for the table (the eBPF-for-Windows order). Written after, a
    // `preprocess_map_create` racing the registration read NULL (found by review,
    // 2026-12-06). A failed registration leaves it written too: the table is one constant
    // of the process, and putting back what the variable held before let a registration of
    // the type that failed with EEXIST write NULL over the table a concurrent successful one
    // had just written (found by review of that fix, the same day). Written only when it
    // does not hold the table already: the callbacks of the provider's maps of another type
    // read the variable meanwhile, and a plain store there, even of the same value, was a
    // data race (found by review, 2026-12-06, twenty-seventh session).
    if let client, client.pointee != UnsafePointer(clientTable) { client.pointee = UnsafePointer(clientTable) }
    do {
        let dispatch = try makeDispatchTable(from: table, bindingContext: local.binding_context)
        try MapProviderRegistry.shared.register(
            type: MapType(rawValue: local.map_type), base: base,
            properties: MapProviderProperties(updatesOriginalValue: local.updates_original_value != 0),
            dispatch: dispatch)
    } catch {
        return error.code
    }
    #if DEBUG
    CProviderRegistrationHooks.afterRegistering?()
    #endif
    return 0
}

#if DEBUG
/// Tests only (debug builds).
package enum CProviderRegistrationHooks {
    /// Runs in `rcumaps_register_provider` once the type is registered (usable from any
    /// thread), before it returns. Set it before registering, from one test at a time.
    nonisolated(unsafe) package static var afterRegistering: (() -> Void)?
}
#endif

/// `rcumaps_unregister_provider` (rcumaps_provider.h).
@_cdecl("rcumaps_unregister_provider")
public func rcumaps_unregister_provider(_ mapType: UInt32) -> rcumaps_result_t {
    do {
        try MapProviderRegistry.shared.unregister(type: MapType(rawValue: mapType))
        return 0
    } catch {
        return error.code
    }
}

#if canImport(Glibc)
import Glibc
#endif
