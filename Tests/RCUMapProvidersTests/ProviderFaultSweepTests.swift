import ObjectMapProvider
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// Fault-point sweeps through custom maps: the provider's own allocations (an addition
/// callback that allocates epoch memory) and the base map's, one at a time. Each failure is
/// ENOMEM (the provider's error, or the base map's after the provider's work was rolled
/// back through the deletion callback), the map is unchanged, and every tag's bytes return.
@Suite("Provider fault-point sweeps")
struct ProviderFaultSweepTests {
    /// A provider that keeps each value in a box of epoch memory: users store a `UInt64`,
    /// the map stores the box's address. Additions allocate, deletions free.
    static func registerBoxing(base: ProviderBaseMap, boxTag: PoolTag) throws -> MapProviderRegistration {
        let client = MapClientServices()
        let dispatch = MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) in
                guard request.valueSize == 8 else { throw MapError.invalidArgument }
                return MapCreateResult(actualValueSize: 8)
            },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { (_, _) throws(MapError) in },
            postprocessFindElement: { (call) throws(MapError) in
                guard let out = call.outValue else { return }
                guard let box = UnsafeRawPointer(bitPattern: call.inValue.loadUnaligned(as: UInt.self)) else {
                    throw MapError.keyNotFound  // an array slot never written
                }
                out.storeBytes(of: box.load(as: UInt64.self), as: UInt64.self)
            },
            preprocessElementAddition: { (call) throws(MapError) in
                guard let out = call.outValue else { return }
                guard let box = client.allocate(byteCount: 8, tag: boxTag) else {
                    throw MapError.noMemory.with(reason: "no memory for a box")
                }
                box.storeBytes(of: call.inValue.loadUnaligned(as: UInt64.self), as: UInt64.self)
                out.storeBytes(of: UInt(bitPattern: box), as: UInt.self)
            },
            postprocessElementDeletion: { call in
                if let box = UnsafeMutableRawPointer(bitPattern: call.value.loadUnaligned(as: UInt.self)) {
                    client.free(box)
                }
            })
        return try MapProviderRegistry.shared.register(type: uniqueCustomType(), base: base,
                                                       properties: .init(updatesOriginalValue: true), dispatch: dispatch)
    }

    @Test(arguments: [ProviderBaseMap.hashLockFree, .hashBucketLocked, .array])
    func boxingProviderUpdates(_ base: ProviderBaseMap) throws {
        let boxTag = uniqueTag()
        let mapTag = uniqueTag()
        let registration = try Self.registerBoxing(base: base, boxTag: boxTag)
        defer { _ = try? registration.unregister() }
        var swept = 0
        do {
            let map = try MapProviderRegistry.shared.createMap(MapDefinition(
                type: registration.type, keySize: 4, valueSize: 8, maxEntries: 16, poolTag: mapTag))
            for key in UInt32(0)..<4 { try map.put(key, UInt64(key) * 10) }
            for (key, flags) in [(UInt32(9), MapUpdateFlags.any), (2, .exist), (3, .any)] {
                let before = try snapshot(of: map)
                let figures = (accountedFigures(boxTag), accountedFigures(mapTag))
                swept += try sweepFaultPoints("\(base) key \(key)", { try map.put(key, UInt64(key) * 100, flags: flags) }) { point in
                    switch point.outcome {
                    case .failure(let error):
                        #expect(error as? MapError == .noMemory, "point \(point.index): \(error)")
                        #expect(try snapshot(of: map) == before, "point \(point.index)")
                        #expect(accountedFigures(boxTag) == figures.0, "point \(point.index)")
                        #expect(accountedFigures(mapTag) == figures.1, "point \(point.index)")
                    case .success:
                        #expect(try map.get(key, as: UInt64.self) == UInt64(key) * 100)
                        if let old = before[withUnsafeBytes(of: key) { Array($0) }] {
                            try map.put(key, old.withUnsafeBytes { $0.load(as: UInt64.self) }, flags: .exist)
                        } else {
                            try map.remove(key)
                        }
                    }
                }
            }
        }
        #expect(swept >= 3)  // the box of every update, at least
        #expect(accountedFigures(boxTag) == (0, 0, 0))
        #expect(accountedFigures(mapTag) == (0, 0, 0))
    }

    /// The sample object map: a failed update leaves every object's reference count as it was.
    @Test(arguments: [ProviderBaseMap.hashLockFree, .hashBucketLocked, .array])
    func objectMapUpdates(_ base: ProviderBaseMap) throws {
        let objects = try ObjectMapProvider(type: uniqueCustomType(), base: base, objectTag: uniqueTag())
        defer { _ = try? objects.registration.unregister() }
        let mapTag = uniqueTag()
        let first = try objects.makeObject()
        let second = try objects.makeObject()
        do {
            let map = try objects.makeMap(maxEntries: 8, poolTag: mapTag)
            try map.put(UInt32(1), first)
            let before = try snapshot(of: map)
            let figures = accountedFigures(mapTag)
            let points = try sweepFaultPoints("\(base) object replace", { try map.put(UInt32(1), second) }) { point in
                if case .failure(let error) = point.outcome {
                    #expect(error as? MapError == .noMemory)
                    #expect(try snapshot(of: map) == before)
                    #expect(objects.referenceCount(of: first) == 2)
                    #expect(objects.referenceCount(of: second) == 1)
                    #expect(accountedFigures(mapTag) == figures)
                } else {
                    try map.put(UInt32(1), first)
                }
            }
            // A replace allocates on the lock-free base only (the others store the handle
            // in place): there the checks above must have run.
            #expect(points >= (base == .hashLockFree ? 1 : 0))
        }
        #expect(objects.referenceCount(of: first) == 1)
        #expect(objects.referenceCount(of: second) == 1)
        objects.close(first)
        objects.close(second)
        #expect(accountedFigures(mapTag) == (0, 0, 0))
    }
}
