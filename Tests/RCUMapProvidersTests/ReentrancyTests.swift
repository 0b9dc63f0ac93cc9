import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// Provider callbacks that run under their map's lock may not write to that map: the write
/// would wait for the lock its own thread holds. It fails with EDEADLK instead of hanging.
@Suite("Provider re-entrancy")
struct ReentrancyTests {
    /// The map a callback writes back into: set once the map exists.
    final class Target: @unchecked Sendable {
        let map = ThreadLock<(any RawMap)?>(nil)
        let innerErrors = ThreadLock<[MapError]>([])
        func record(_ error: MapError) { innerErrors.withLock { $0.append(error) } }
    }

    /// A provider whose deprecated pre-deletion callback writes to its own map: `update`
    /// of the key being removed, `delete` of it, and `lookupAndDelete` of it.
    func register(base: ProviderBaseMap, target: Target) throws -> MapProviderRegistration {
        let dispatch = MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { (_, _) throws(MapError) in },
            postprocessFindElement: { (call) throws(MapError) in
                // During a lookup-and-delete this runs under the bucket lock too.
                guard let map = target.map.withLock({ $0 }) else { return }
                do throws(MapError) {
                    try map.update(key: call.key, value: call.inValue, flags: .any)
                } catch {
                    target.record(error)
                }
            },
            preprocessElementDeletion: { (deletion) throws(MapError) in
                guard !deletion.flags.contains(.mapCleanup), let map = target.map.withLock({ $0 }) else { return }
                for attempt in 0..<3 {
                    do throws(MapError) {
                        switch attempt {
                        case 0: try map.update(key: deletion.key, value: deletion.value, flags: .any)
                        case 1: try map.delete(key: deletion.key)
                        default:
                            var out: UInt64 = 0  // the maps under test store 8-byte values
                            try withUnsafeMutableBytes(of: &out) { (o) throws(MapError) in
                                try map.lookupAndDelete(key: deletion.key, into: o)
                            }
                        }
                    } catch {
                        target.record(error)
                    }
                }
            })
        return try MapProviderRegistry.shared.register(type: uniqueCustomType(), base: base, dispatch: dispatch)
    }

    /// Regression: a pre-deletion callback that updated its own key made `delete` of a
    /// present key never return on the bucket-locked base (and spin forever on the array).
    @Test(arguments: [ProviderBaseMap.hashBucketLocked, .array])
    func aCallbackUnderTheLockCannotWriteItsOwnMap(_ base: ProviderBaseMap) throws {
        let target = Target()
        let registration = try register(base: base, target: target)
        defer { _ = try? registration.unregister() }
        let map = try MapProviderRegistry.shared.createMap(MapDefinition(
            type: registration.type, keySize: 4, valueSize: 8, maxEntries: 16))
        target.map.withLock { $0 = map }
        defer { target.map.withLock { $0 = nil } }
        try map.put(UInt32(3), UInt64(30))
        if base == .array {
            // Arrays cannot delete: a replace runs the callback under the slot's writer bit.
            try map.put(UInt32(3), UInt64(31))
            #expect(try map.get(UInt32(3), as: UInt64.self) == 31)
        } else {
            try map.remove(UInt32(3))
            #expect(throws: MapError.keyNotFound) { try map.get(UInt32(3), as: UInt64.self) }
            // A replace runs the callback under the lock as well.
            try map.put(UInt32(4), UInt64(40))
            try map.put(UInt32(4), UInt64(41))
            #expect(try map.get(UInt32(4), as: UInt64.self) == 41)
            // And lookup-and-delete runs the find callback under the lock.
            try map.put(UInt32(5), UInt64(50))
            #expect(try map.take(UInt32(5), as: UInt64.self) == 50)
        }
        let errors = target.innerErrors.withLock { $0 }
        #expect(!errors.isEmpty)
        #expect(errors.allSatisfy { $0 == .wouldDeadlock }, "\(errors)")
        #expect(errors.first?.reason?.contains("cannot write to the same map") == true)
    }

    /// From inside a callback, writes to another map (whose lock the thread does not hold)
    /// work as usual.
    @Test func writesToAnotherMapFromALockedCallbackWork() throws {
        let target = Target()
        let registration = try register(base: .hashBucketLocked, target: target)
        defer { _ = try? registration.unregister() }
        let map = try MapProviderRegistry.shared.createMap(MapDefinition(
            type: registration.type, keySize: 4, valueSize: 8, maxEntries: 16))
        let other = try MapRegistry.create(MapDefinition(type: .hash, keySize: 4, valueSize: 8, maxEntries: 16,
                                                         hashImplementation: .bucketLocked))
        target.map.withLock { $0 = other }
        defer { target.map.withLock { $0 = nil } }
        try map.put(UInt32(1), UInt64(10))
        try map.remove(UInt32(1))
        // update, then delete succeeded in `other`; the lookup-and-delete found nothing left.
        #expect(target.innerErrors.withLock { $0 } == [.keyNotFound])
        #expect(other.count == 0)
        #expect(map.count == 0)
    }
}

@Suite("Provider registration handles")
struct RegistrationHandleTests {
    func table() -> MapProviderDispatchTable {
        MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { (_, _) throws(MapError) in },
            postprocessElementDeletion: { _ in })
    }

    /// Regression: after A unregistered and B registered the same type, A's stale handle
    /// unregistered B.
    @Test func aStaleHandleNeverRemovesAnotherRegistration() throws {
        let type = uniqueCustomType()
        let first = try MapProviderRegistry.shared.register(type: type, base: .hashLockFree, dispatch: table())
        try first.unregister()
        let second = try MapProviderRegistry.shared.register(type: type, base: .hashBucketLocked, dispatch: table())
        #expect(throws: MapError.keyNotFound) { try first.unregister() }
        #expect(MapProviderRegistry.shared.isRegistered(type))
        // B's maps are served by B.
        let map = try MapProviderRegistry.shared.createMap(MapDefinition(type: type, keySize: 4, valueSize: 4, maxEntries: 4))
        #expect(map.baseKind == .hashBucketLocked)
        #expect(throws: MapError.busy) { try second.unregister() }
        _ = consume map
        try second.unregister()
        #expect(!MapProviderRegistry.shared.isRegistered(type))
    }
}
