import Foundation
@testable import rcumaps
import RCUMaps
import Testing

/// What `rcumaps bench` and `rcumaps memory` say about a run: an error when the options
/// leave nothing to run, a header that names what each cell ran, and a JSON counterpart
/// that names the workload it was measured on.
@Suite("rcumaps reports")
struct ReportTests {
    /// Options that leave no cell (maps that run none of the workloads, or none of the
    /// shapes) are an error with exit status 2, not an empty table with status 0.
    @Test func optionsThatLeaveNothingToRunAreAnError() throws {
        let bench = try benchOptions(["--maps", "queue", "--workloads", "lookup"])
        #expect(benchPlan(bench).isEmpty)
        #expect(runBench(bench) == 2)
        let memory = try memoryOptions(["memory", "--maps", "swift-dict", "--shapes", "16x8"])
        #expect(memoryPlan(memory).isEmpty)
        #expect(runMemory(memory) == 2)
    }

    /// With `--operations`, the header gives the operations per thread (it gave the unused
    /// duration); an `insert-full` cell's JSON names the workload of its counterpart
    /// (`hash-bucket`'s `update`), as batch cells do.
    @Test func theReportSaysWhatEachCellRan() throws {
        let options = try benchOptions(["--maps", "lru", "--workloads", "update,insert-full", "--threads", "1",
                                        "--operations", "2000", "--entries", "256"])
        let cells = try runBenchCells(options, progress: false)
        let report = BenchReport(options: options, cells: cells)
        #expect(report.table().contains("2000 operations per thread per cell"))
        #expect(!report.table().contains(" s per cell"))
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [[String: Any]])
        let insertFull = try #require(objects.first { $0["workload"] as? String == "insert-full" })
        #expect(insertFull["counterpart"] as? String == "hash-bucket")
        #expect(insertFull["counterpartWorkload"] as? String == "update")
        let update = try #require(objects.first { $0["workload"] as? String == "update" && $0["map"] as? String == "lru-hash" })
        #expect(update["counterpart"] as? String == "hash-bucket")
        #expect(update["counterpartWorkload"] == nil)
        // The table's legend says insert-full is compared with another workload (it said only
        // "lru-hash to hash-bucket": found by review, 2026-12-06, twenty-fourth session).
        #expect(report.table().contains("lru-hash insert-full to hash-bucket update"))
    }

    /// The dictionary baselines insert a key if absent in one hash and probe, as the maps
    /// do, and leave a present key's value alone (they looked the key up, then stored it:
    /// found by review, 2026-12-06, twenty-fourth session).
    @Test func theBaselinesInsertIfAbsentInOneStep() {
        var dictionary: [UInt64: UInt64] = [1: 10]
        var asked = 0
        #expect(!insertIfAbsent(&dictionary, 1, { asked += 1; return 11 }()))
        #expect(dictionary == [1: 10] && asked == 0)
        #expect(insertIfAbsent(&dictionary, 2, { asked += 1; return 20 }()))
        #expect(dictionary == [1: 10, 2: 20] && asked == 1)
    }

    /// Rows whose types are not the 8x8 shape their cells run at report their own key and
    /// value sizes, in the table and in the JSON; every such row said 8x8 (found by review,
    /// 2026-12-05).
    @Test func rowsReportTheirOwnKeyAndValueSizes() throws {
        func cell(_ map: MapKind, _ workload: Workload) -> CellResult {
            CellResult(map: map, workload: workload, shape: .standard, threads: 1, entries: 16, operations: 1_000,
                       wallNanoseconds: 1_000_000, misses: 0, failedUpdates: 0, calls: 0)
        }
        let report = BenchReport(options: BenchOptions(), cells: [
            cell(.hashBucket, .lookup), cell(.array, .lookup), cell(.lpmIPv6, .lookup), cell(.queue, .pushPop),
            cell(.rcuDictString, .lookup), cell(.epoch, .lookup), cell(.objectMap, .lookup),
        ])
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [[String: Any]])
        let shapes = objects.map { $0["shape"] as? String }
        #expect(shapes == ["8x8", "4x8", "20x8", "0x8", "-x8", "-", "4x4"])
        #expect(objects[1]["keyBytes"] as? Int == 4 && objects[1]["valueBytes"] as? Int == 8)
        #expect(objects[4]["keyBytes"] is NSNull && objects[4]["valueBytes"] as? Int == 8)
        #expect(objects[0]["keyBytes"] as? Int == 8)
        let table = report.table()
        #expect(table.contains("20x8") && table.contains("0x8"))
    }

    /// The key-value baselines' ratios go only to maps doing their work: an LPM lookup, a
    /// `String`-keyed dictionary lookup or a per-CPU increment run under the same workload
    /// names but get no `vs mutex-dict` (found by review, 2026-12-05); a queue gets its ratio
    /// to `mutex-deque` and no other.
    @Test func baselineRatiosOnlyForMapsDoingTheBaselinesWork() {
        func cell(_ map: MapKind, _ workload: Workload) -> CellResult {
            CellResult(map: map, workload: workload, shape: .standard, threads: 1, entries: 16, operations: 1_000,
                       wallNanoseconds: 1_000_000, misses: 0, failedUpdates: 0, calls: 0)
        }
        let report = BenchReport(options: BenchOptions(), cells: [
            cell(.mutexDict, .lookup), cell(.hashBucket, .lookup), cell(.lruHash, .lookup), cell(.lpmIPv4, .lookup),
            cell(.rcuDictString, .lookup), cell(.mutexDeque, .pushPop), cell(.queue, .pushPop), cell(.perCPUArray, .increment),
        ])
        #expect(report.ratio(for: report.cells[1]) == 1)
        #expect(report.ratio(for: report.cells[2]) == 1)
        #expect(report.ratio(for: report.cells[3]) == nil)
        #expect(report.ratio(for: report.cells[4]) == nil)
        #expect(report.ratio(for: report.cells[6], to: .mutexDeque) == 1)
        #expect(report.ratio(for: report.cells[6], to: .mutexDict) == nil)
        #expect(report.ratio(for: report.cells[1], to: .mutexDeque) == nil)
    }
}
