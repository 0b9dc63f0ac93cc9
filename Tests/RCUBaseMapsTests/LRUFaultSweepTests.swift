import Foundation
@testable import RCUBaseMaps
import RCUEpoch
import RCUMapsTestSupport
import Testing

/// Random writes to small, full LRU maps with every allocation point failed in turn: a
/// write that fails with ENOMEM leaves the map exactly as it was — no entry evicted, no
/// unit of capacity in flight — through every evicting path (the one-pass insert, the
/// general update under the chain's lock and with no lock held, exchanges), with and
/// without a reader holding a section (then retired slots wait and chains must grow).
@Suite("LRU writes under failing allocations")
struct LRUFaultSweepTests {
    struct Shape: Sendable, CustomTestStringConvertible {
        var valueSize: Int
        var bucketCount: Int
        var flags: MapCreationFlags
        var testDescription: String { "\(valueSize)-byte values, \(bucketCount) chains\(flags.isEmpty ? "" : ", per-CPU lists")" }
    }

    static let shapes = [
        Shape(valueSize: 8, bucketCount: 1, flags: []),
        Shape(valueSize: 8, bucketCount: 4, flags: []),
        Shape(valueSize: 40, bucketCount: 1, flags: []),
        Shape(valueSize: 40, bucketCount: 3, flags: []),
        Shape(valueSize: 16, bucketCount: 4, flags: .noCommonLRU),
    ]

    /// A reader thread that holds an epoch section between `hold()` and `release()`.
    final class SectionHolder: @unchecked Sendable {
        private let entered = DispatchSemaphore(value: 0)
        private let released = DispatchSemaphore(value: 0)
        func hold() {
            Thread { [self] in
                Epoch.withSection { _ in
                    entered.signal()
                    released.wait()
                }
            }.start()
            entered.wait()
        }
        func release() { released.signal() }
    }

    @Test(arguments: shapes)
    func aFailedWriteEvictsNoOne(_ shape: Shape) throws {
        let maxEntries = 6
        let definition = MapDefinition(type: .lruHash, keySize: 8, valueSize: shape.valueSize, maxEntries: maxEntries,
                                       flags: shape.flags, poolTag: uniqueTag())
        let map = try RawBucketHashMap(definition, observer: nil, bucketCount: shape.bucketCount)
        let units = map.definition.maxEntries
        var random = SystemRandomNumberGenerator()
        var seed = UInt64.random(in: 0..<UInt64.max, using: &random)
        func next() -> UInt64 {
            // SplitMix64: the run is reproducible from the seed in the failure message.
            seed &+= 0x9E37_79B9_7F4A_7C15
            var z = seed
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let startSeed = seed
        func value(_ key: UInt64, _ version: UInt64) -> [UInt8] {
            (0..<shape.valueSize).map { UInt8(truncatingIfNeeded: key &* 31 &+ version &+ UInt64($0)) }
        }
        var evictingFailures = 0
        var evictingWrites = 0
        let holder = SectionHolder()
        for round in 0..<4 {
            let holding = round % 2 == 0
            if holding { holder.hold() }
            for step in 0..<60 {
                let key = next() % 40
                let version = next()
                let kind = next() % 4
                let before = try snapshot(of: map)
                let wasFull = before.count == units
                let isNew = before[withUnsafeBytes(of: key) { Array($0) }] == nil
                let bytes = value(key, version)
                let write = { () throws -> Bool in
                    try withUnsafeBytes(of: key) { k -> Bool in
                        try bytes.withUnsafeBytes { v -> Bool in
                            switch kind {
                            case 0: return try map.insertIfAbsent(key: k, value: v)
                            case 1:
                                try map.update(key: k, value: v, flags: .any)
                                return true
                            case 2:
                                var old = [UInt8](repeating: 0, count: shape.valueSize)
                                return try old.withUnsafeMutableBytes { o -> Bool in
                                    _ = try map.exchange(key: k, value: v, flags: .any, into: o)
                                    return true
                                }
                            default:
                                try map.update(key: k, value: v, flags: .noExist)
                                return true
                            }
                        }
                    }
                }
                var failing = 0
                sweep: while true {
                    let attempt: (result: Result<Bool, MapError>, injected: Bool) = _FaultInjection.failingOneAllocation(after: failing) {
                        do { return .success(try write()) } catch { return .failure(error as! MapError) }
                    }
                    let context = "seed \(startSeed), round \(round), step \(step), key \(key), kind \(kind), failing allocation \(failing)"
                    switch attempt.result {
                    case .failure(let error) where error == .noMemory:
                        #expect(attempt.injected, "ENOMEM with no failure injected: \(context)")
                        if wasFull, isNew { evictingFailures += 1 }
                        #expect(try snapshot(of: map) == before, "ENOMEM changed the map: \(context)")
                        #expect(map.capacityChangesInFlight == 0, "\(context)")
                        failing += 1
                    default:
                        // Done (the write's allocations all succeeded, or one that may fail
                        // without failing the write did): it took effect, or was refused.
                        if case .failure(let error) = attempt.result {
                            #expect(error == .alreadyExists && !isNew && (kind == 0 || kind == 3), "\(error): \(context)")
                        } else {
                            let after = try snapshot(of: map)
                            #expect(after[withUnsafeBytes(of: key) { Array($0) }] == bytes || kind == 0 && !isNew, "\(context)")
                            #expect(after.count <= units, "\(context)")
                            if wasFull, isNew { evictingWrites += 1 }
                        }
                        break sweep
                    }
                }
            }
            if holding {
                holder.release()
                map.waitForReclaimGenerations()
            }
        }
        #expect(map.capacityChangesInFlight == 0)
        // The sweep reached the evicting paths and their failures (in 15 runs of the five
        // shapes: 183 to 212 evicting writes, 11 to 117 failed ones).
        #expect(evictingWrites >= 100, "seed \(startSeed)")
        #expect(evictingFailures >= 5, "seed \(startSeed)")
    }
}
