import Foundation
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// The typed `PerCPUArrayMap`: user-mode values of every CPU, helper-mode access to the
/// calling CPU's value, layout checks, and concurrent atomic counting.
@Suite("PerCPUArrayMap")
struct TypedPerCPUArrayTests {
    struct Wide: BitwiseCopyable, Equatable, Sendable {
        var a: UInt64 = 0
        var b: UInt32 = 0
    }

    @Test func userModeReadsAndWritesEveryCPU() throws {
        let map = try PerCPUArrayMap<Wide>(count: 3, poolTag: uniqueTag())
        let cpus = map.possibleCPUCount
        #expect(map.count == 3)
        #expect(map[0] == [Wide](repeating: Wide(), count: cpus))
        #expect(map[3] == nil)
        let values = (0..<cpus).map { Wide(a: UInt64($0) + 1, b: UInt32($0) * 7) }
        try map.setValues(values, at: 1)
        #expect(map.values(at: 1) == values)
        try map.setValue(Wide(a: 9, b: 9), at: 2)
        #expect(map[2] == [Wide](repeating: Wide(a: 9, b: 9), count: cpus))
        #expect(throws: MapError.outOfSpace) { try map.setValue(Wide(), at: 3) }
        #expect(throws: MapError.invalidArgument) { try map.setValues(values + [Wide()], at: 0) }
        try map.raw.freeze()
        #expect(throws: MapError.permissionDenied) { try map.setValue(Wide(), at: 0) }
    }

    /// A value type whose all-zero bytes are no instance (`Color` starts at 1) gets every
    /// CPU's value at every index from `init(count:repeating:)`, as `ArrayMap` does.
    @Test func startsEveryCPUsValueAsGiven() throws {
        let colors = try PerCPUArrayMap<Color>(count: 3, repeating: .blue)
        for index in UInt32(0)..<3 {
            #expect(colors[index] == Array(repeating: .blue, count: colors.possibleCPUCount))
        }
        #expect(colors[3] == nil)
    }

    @Test func helperModeChangesOneCPUsValue() throws {
        let map = try PerCPUArrayMap<UInt64>(count: 2, poolTag: uniqueTag())
        #expect(map.withAtomicFields(at: 2) { $0[\.self].wrappingAdd(1, ordering: .relaxed) } == nil)
        map.withAtomicFields(at: 1) { $0[\.self].wrappingAdd(5, ordering: .relaxed) }
        let after = try #require(map[1])
        #expect(after.reduce(0, +) == 5)
        #expect(after.filter { $0 != 0 }.count == 1)
        try map.updateCurrentCPUValue(7, at: 0)
        #expect(try #require(map[0]).filter { $0 != 0 } == [7])
        #expect(throws: MapError.outOfSpace) { try map.updateCurrentCPUValue(1, at: 2) }
        #expect(map.withValue(at: 0) { $0 } != nil)
    }

    @Test func refusesBadValueTypesAndWrapsMatchingMaps() throws {
        #expect(throws: MapError.invalidArgument) { _ = try PerCPUArrayMap<UInt128>(count: 1) }
        #expect(throws: MapError.outOfSpace) { _ = try PerCPUArrayMap<InlineArray<4097, UInt64>>(count: 1) }
        #expect(throws: Never.self) { _ = try PerCPUArrayMap<InlineArray<4096, UInt64>>(count: 1) }
        let raw = try MapRegistry.create(MapDefinition(type: .perCPUArray, keySize: 4, valueSize: 8, maxEntries: 2))
            as! RawPerCPUArrayMap
        let typed = try PerCPUArrayMap<UInt64>(wrapping: raw)
        #expect(typed.count == 2)
        #expect(throws: MapError.invalidArgument) { _ = try PerCPUArrayMap<UInt32>(wrapping: raw) }
    }

    /// Threads × increments through the typed atomic view: the sum is exact.
    @Test func concurrentCountingIsExact() throws {
        let map = try PerCPUArrayMap<UInt64>(count: 1, poolTag: uniqueTag())
        let threads = 4, increments = 40_000
        runOnThreads(threads) { _ in
            for _ in 0..<increments { map.withAtomicFields(at: 0) { $0[\.self].wrappingAdd(1, ordering: .relaxed) } }
        }
        #expect(map.sum(at: 0) == UInt64(threads * increments))
        #expect(map.sum(at: 1) == nil)
    }
}
