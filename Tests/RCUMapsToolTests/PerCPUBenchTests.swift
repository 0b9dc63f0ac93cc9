@testable import rcumaps
import Foundation
import RCUMaps
import Testing

/// `rcumaps bench`'s per-CPU counters: the `increment` workload on `percpu-array` against a
/// counter array each thread owns.
@Suite("rcumaps bench per-CPU counters")
struct PerCPUBenchTests {
    @Test func perCPUKindsRunOnlyIncrementAndOnlyWhenNamed() throws {
        let kinds: [MapKind] = [.perCPUArray, .perCPUHash, .threadLocalCounter]
        #expect(try benchOptions(["--maps", "percpu"]).maps == kinds)
        #expect(Set(MapKind.allCases.filter { $0.dedicatedWorkload == .increment }) == Set(kinds))
        for kind in MapKind.allCases {
            #expect(kind.supports(.increment) == kinds.contains(kind), "\(kind)")
            for workload in Workload.allCases where workload != .increment {
                #expect(!kinds.contains(kind) || !kind.supports(workload), "\(kind) \(workload)")
            }
        }
        #expect(MapKind.perCPUArray.counterpart == .threadLocalCounter)
        #expect(MapKind.perCPUHash.counterpart == .threadLocalCounter)
        // increment runs by default, but no default map runs it.
        #expect(Workload.increment.runsByDefault && Workload.increment.isDedicated)
        #expect(!benchPlan(BenchOptions()).contains { $0.workload == .increment })
        let plan = benchPlan(try benchOptions(["--maps", "percpu", "--threads", "1,2"]))
        #expect(plan.count == 3 * 2 && plan.allSatisfy { $0.workload == .increment })
    }

    /// The warm-up's threads and the timed threads of the same streams share their arrays:
    /// each thread had an array of its own, twice the memory in every cell (found by
    /// review, 2026-12-05). Runs a warm-up and a measurement of two threads, as a cell does.
    @Test func threadLocalArraysBelongToStreams() {
        let target = ThreadLocalCounterTarget(entries: 1_000)
        for firstStream in [warmUpStreams, 0] {
            let finished = DispatchSemaphore(value: 0)  // as a cell joins its threads
            for index in 0..<2 {
                Thread {
                    let worker = target.forWorker(stream: firstStream + index)
                    for _ in 0..<10 { _ = worker.increment(index: 7) }
                    finished.signal()
                }.start()
            }
            for _ in 0..<2 { finished.wait() }
        }
        #expect(target.arraysMade == 2)
    }

    /// Both kinds run, every increment is accepted, and a row gets its counterpart ratio.
    @Test func incrementCellsRun() throws {
        var options = BenchOptions()
        options.maps = MapGroup.perCPU.kinds
        options.threads = [1]
        options.entries = 64
        options.duration = 0.02
        let cells = try runBenchCells(options, progress: false)
        #expect(cells.map(\.map) == [.perCPUArray, .perCPUHash, .threadLocalCounter])
        for cell in cells {
            #expect(cell.workload == .increment && cell.operations > 0 && cell.failedUpdates == 0, "\(cell)")
        }
        let report = BenchReport(options: options, cells: cells)
        #expect(report.hasCounterparts)
    }

    /// A thread's counters are its own, and a fixed number of operations lands exactly
    /// (`--operations`): one thread's increments all count, none is lost.
    @Test func fixedOperationCountsLandExactly() throws {
        let target = try PerCPUCounterTarget(entries: 4)
        var options = BenchOptions()
        options.operations = 640
        let measured = try #require(warmUpAndMeasure(target, .increment, 1, options))
        #expect(measured.operations == 640)
        let total = (0..<4).reduce(UInt64(0)) { $0 + (target.map.sum(at: UInt32($1)) ?? 0) }
        #expect(total == 640)
        let hash = try PerCPUHashCounterTarget(entries: 4)
        let hashMeasured = try #require(warmUpAndMeasure(hash, .increment, 1, options))
        #expect(hashMeasured.operations == 640)
        #expect((0..<4).reduce(UInt64(0)) { $0 + (hash.map.sum(forKey: UInt64($1)) ?? 0) } == 640)
    }
}
