import RCUMaps
import RCUMapsTestSupport
import Testing

/// Concurrent histories of custom maps, checked for linearizability key by key
/// (`RCUMapsTestSupport/Linearizability.swift`), as the base maps' are in
/// `LinearizabilityTests`: the provider layer must keep every single-key operation atomic.
/// Two providers on each base: one whose callbacks change nothing (helper mode allowed), and
/// one that updates the original value — it stores each value word XOR a mask and
/// translates it back on every find (helper mode blocked, so user mode only).
/// `RCUMAPS_LONG_TESTS=<seconds>` runs longer histories.
@Suite("Custom maps: linearizable histories")
struct CustomMapLinearizabilityTests {
    static let mask: UInt64 = 0xC3C3_C3C3_C3C3_C3C3

    /// Writes `call`'s value XOR `mask`, word by word, to its output.
    static func translate(_ call: MapElementCall) {
        guard let out = call.outValue else { return }
        for offset in stride(from: 0, to: call.inValue.count, by: 8) {
            out.storeBytes(of: call.inValue.loadUnaligned(fromByteOffset: offset, as: UInt64.self) ^ mask,
                           toByteOffset: offset, as: UInt64.self)
        }
    }

    /// Stored words are the user's XOR `mask`, word by word; finds translate them back.
    static var transforming: MapProviderDispatchTable {
        MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { (_, _) throws(MapError) in },
            postprocessFindElement: { (call) throws(MapError) in translate(call) },
            preprocessElementAddition: { (call) throws(MapError) in translate(call) },
            postprocessElementDeletion: { _ in })
    }

    static var passThrough: MapProviderDispatchTable {
        MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { (_, _) throws(MapError) in },
            postprocessFindElement: { _ in },
            preprocessElementAddition: { _ in },
            postprocessElementDeletion: { _ in })
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var base: ProviderBaseMap
        var transforms: Bool
        var valueSize: Int
        var testDescription: String { "\(base.rawValue), \(transforms ? "transforming" : "pass-through"), \(valueSize)-byte values" }
        static let all: [Case] = [ProviderBaseMap.hashBucketLocked, .hashLockFree, .array].flatMap { base in
            [false, true].flatMap { transforms in [8, 16].map { Case(base: base, transforms: transforms, valueSize: $0) } }
        }
    }

    @Test(arguments: Case.all)
    func historiesAreLinearizable(_ configuration: Case) throws {
        let (base, transforms, valueSize) = (configuration.base, configuration.transforms, configuration.valueSize)
        let registry = MapProviderRegistry()
        let type = uniqueCustomType()
        let registration = try registry.register(
            type: type, base: base, properties: MapProviderProperties(updatesOriginalValue: transforms),
            dispatch: transforms ? Self.transforming : Self.passThrough)
        let isArray = base == .array
        var workload = LinearizabilityWorkload.scaled
        workload.keysCanBeAbsent = !isArray
        workload.helperMode = !transforms
        workload.inPlaceReadsMayTear = isArray && valueSize > 8
        do {
            let map = try registry.createMap(MapDefinition(type: type, keySize: isArray ? 4 : 8, valueSize: valueSize,
                                                           maxEntries: isArray ? 4 : 64, poolTag: uniqueTag()))
            // An array's untouched index holds zero bytes as stored, which a transforming find
            // answers as the mask (not a whole 16-byte value): every index is written first.
            if isArray {
                for index in 0..<UInt32(4) {
                    if valueSize == 8 { try map.put(index, UInt64(index)) } else { try map.put(index, (UInt64(index), ~UInt64(index))) }
                }
            }
            for problem in try linearizabilityProblems(of: map, workload, rounds: 3) { Issue.record("\(problem)") }
        }
        try registration.unregister()
    }
}
