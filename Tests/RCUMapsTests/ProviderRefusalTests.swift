import RCUBaseMaps
import RCUMapProviders
import RCUMaps
import RCUMapsTestSupport
import Testing

/// A provider may refuse an addition or a deletion with any errno, ENOENT included. The calls
/// that answer a missing key with `nil` or `false` read such a refusal as "absent" — with the
/// key still in the map and the refusal lost (found by review, 2026-12-06, thirtieth
/// session): they now throw it, marked ``MapError/isProviderRefusal``.
@Suite("A provider's ENOENT refusal is not an absent key")
struct ProviderRefusalTests {
    /// A provider on the bucket-locked base that refuses to store the value 0 and to delete
    /// key 7 explicitly (a pinned entry), both with ENOENT.
    static func refusingMap(_ registry: MapProviderRegistry) throws -> (CustomMap<UInt32, UInt64>, RawCustomMap) {
        let dispatch = MapProviderDispatchTable(
            preprocessMapCreate: { (request) throws(MapError) in MapCreateResult(actualValueSize: request.valueSize) },
            postprocessMapDelete: { _ in },
            preprocessAssociateProgramType: { (_, _) throws(MapError) in },
            preprocessElementAddition: { (call) throws(MapError) in
                if call.inValue.loadUnaligned(as: UInt64.self) == 0 {
                    throw MapError.keyNotFound.with(reason: "the provider refuses the value 0")
                }
            },
            preprocessElementDeletion: { (deletion) throws(MapError) in
                if deletion.flags.isEmpty, deletion.key.loadUnaligned(as: UInt32.self) == 7 {
                    throw MapError.keyNotFound.with(reason: "the provider pins key 7")
                }
            })
        let registration = try registry.register(type: MapType(rawValue: 4301), base: .hashBucketLocked, dispatch: dispatch)
        let raw = try registry.createMap(MapDefinition(type: registration.type, keySize: 4, valueSize: 8, maxEntries: 8))
        return (try CustomMap<UInt32, UInt64>(wrapping: raw), raw)
    }

    @Test func replaceValueThrowsARefusedAddition() throws {
        let (map, _) = try Self.refusingMap(MapProviderRegistry())
        try map.updateValue(1, forKey: 7)
        do {
            let replaced = try map.replaceValue(0, forKey: 7)
            Issue.record("replaceValue answered \(String(describing: replaced)) for a refused addition")
        } catch {
            #expect(error == .keyNotFound && error.isProviderRefusal, "\(error)")
        }
        #expect(try map[7] == 1)
        // An absent key is still nil, not a refusal.
        #expect(try map.replaceValue(2, forKey: 8) == nil)
        #expect(try map[8] == nil)
    }

    @Test func removeValueThrowsARefusedDeletion() throws {
        let (map, raw) = try Self.refusingMap(MapProviderRegistry())
        try map.updateValue(1, forKey: 7)
        do {
            let removed = try map.removeValue(forKey: 7)
            Issue.record("removeValue answered \(String(describing: removed)) for a refused deletion")
        } catch {
            #expect(error == .keyNotFound && error.isProviderRefusal, "\(error)")
        }
        var key: UInt32 = 7
        do {
            let deleted = try withUnsafeBytes(of: &key) { (key) throws(MapError) in try raw.deleteIfPresent(key: key) }
            Issue.record("deleteIfPresent answered \(deleted) for a refused deletion")
        } catch {
            #expect(error == .keyNotFound && error.isProviderRefusal, "\(error)")
        }
        #expect(try map[7] == 1)
        // Absent keys are still nil and false.
        #expect(try map.removeValue(forKey: 9) == nil)
        key = 9
        #expect(try withUnsafeBytes(of: &key) { (key) throws(MapError) in try raw.deleteIfPresent(key: key) } == false)
    }

    @Test func aRemovingBatchReportsARefusedDeletion() throws {
        let (map, _) = try Self.refusingMap(MapProviderRegistry())
        try map.updateValue(1, forKey: 7)
        let batch = try map.removeBatch(maxCount: 4)
        #expect(!batch.isComplete)
        #expect(batch.failure == .keyNotFound && batch.failure?.isProviderRefusal == true, "\(String(describing: batch.failure))")
        #expect(try map[7] == 1)
        // With another key in the map, a drain removes it and reports the pinned one.
        try map.updateValue(3, forKey: 3)
        var removed: [UInt32] = []
        var cursor: MapBatchCursor?
        var failures = 0
        for _ in 0..<8 {
            let next = try map.removeBatch(from: cursor, maxCount: 1)
            removed += next.entries.map(\.key)
            if next.failure != nil { failures += 1 }
            if next.isComplete { break }
            cursor = next.cursor
        }
        #expect(removed == [3])
        #expect(failures >= 1)
        #expect(try map[7] == 1)
    }
}
