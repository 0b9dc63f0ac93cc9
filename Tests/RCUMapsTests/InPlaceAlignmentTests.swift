import RCUMaps
import RCUMapsTestSupport
import Testing

/// A conformance of one's own to `InPlaceKeyValueMap` over a bucket hash of 16-byte values,
/// viewed as `SIMD4<Float>` (16-byte aligned): the built-in initialisers refuse such a
/// value type, a conformance of one's own does not.
final class OverAlignedView: InPlaceKeyValueMap, @unchecked Sendable {
    typealias Key = UInt64
    typealias Value = SIMD4<Float>
    let raw: RawBucketHashMap

    init() throws {
        raw = try RawBucketHashMap(MapDefinition(type: .hash, keySize: 8, valueSize: 16, maxEntries: 4))
    }
}

@Suite struct InPlaceAlignmentTests {
    /// In-place access to a value type aligned beyond the 8 bytes maps store values at stops
    /// with a message (reliability.md row 322): it segfaulted on an aligned vector load of
    /// the stored address (found by review, 2026-12-07).
    @Test func inPlaceAccessRefusesOverAlignedValues() async {
        await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let view = try! OverAlignedView()
            try! view.raw.put(UInt64(0), SIMD4<Float>(1, 2, 3, 4))
            _ = view.withValue(forKey: 0) { $0 += SIMD4<Float>(repeating: 1) }
        }.map { result in
            #expect(String(decoding: result.standardErrorContent, as: UTF8.self).contains("8-byte aligned"))
        }
    }
}
