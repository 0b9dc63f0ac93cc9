@testable import rcumaps
import Testing

/// `rcumaps bench --latency`: every write timed, percentiles per cell, in the table and JSON.
@Suite("rcumaps bench write latency", .serialized)
struct LatencyTests {
    @Test func theFlagIsParsedAndOffByDefault() throws {
        #expect(!BenchOptions().latency)
        #expect(try benchOptions(["--latency"]).latency)
        #expect(try benchOptions(["bench", "--maps", "hash-bucket", "--latency"]).latency)
        #expect(help(for: BenchCommand.self).contains("--latency"))
    }

    /// Writes are timed: each write workload's cell has ordered percentiles over its writes;
    /// a lookup-only cell has none, and without the flag no cell has any.
    @Test func writeCellsReportOrderedPercentiles() throws {
        var options = BenchOptions()
        options.maps = [.hashBucket, .hashLockFree]
        options.workloads = [.lookup, .readMostly, .churn]
        options.threads = [1, 2]
        options.entries = 256
        options.duration = 0.05
        options.latency = true
        let cells = try runBenchCells(options, progress: false)
        #expect(cells.count == 2 * 3 * 2)
        for cell in cells {
            if cell.workload == .lookup {
                #expect(cell.writeLatency == nil, "\(cell.map) lookup")
                continue
            }
            let summary = try #require(cell.writeLatency, "\(cell.map) \(cell.workload) \(cell.threads)")
            #expect(summary.count > 0)
            // Churn is all writes; 90/10 about one in ten.
            if cell.workload == .churn { #expect(summary.count == UInt64(cell.operations)) }
            if cell.workload == .readMostly { #expect(summary.count < UInt64(cell.operations)) }
            #expect(summary.p50 > 0)
            #expect(summary.p50 <= summary.p99 && summary.p99 <= summary.p999 && summary.p999 <= summary.max)
        }
        let report = BenchReport(options: options, cells: cells)
        #expect(report.table().contains("write p50"))
        #expect(report.json().contains("\"writeLatency\": {\"count\": "))
        #expect(report.json().contains("\"writeLatency\": null"))  // the lookup cells

        options.latency = false
        options.workloads = [.churn]
        options.threads = [1]
        let untimed = try runBenchCells(options, progress: false)
        #expect(untimed.allSatisfy { $0.writeLatency == nil })
        let plain = BenchReport(options: options, cells: untimed)
        #expect(!plain.table().contains("write p50") && !plain.json().contains("writeLatency"))
    }
}

/// `pass-through`: the provider layer against its base, every workload, with a ratio.
@Suite("rcumaps bench pass-through provider", .serialized)
struct PassThroughTests {
    @Test func theProviderLayerRunsBesideItsBase() throws {
        var options = BenchOptions()
        options.maps = MapGroup.custom.kinds
        options.workloads = [.lookup, .readMostly, .churn, .update]
        options.threads = [1, 2]
        options.entries = 256
        options.duration = 0.02
        let cells = try runBenchCells(options, progress: false)
        let passThrough = cells.filter { $0.map == .passThrough }
        #expect(passThrough.count == 4 * 2)
        let report = BenchReport(options: options, cells: cells)
        for cell in passThrough {
            #expect(cell.operations > 0 && cell.misses == 0 && cell.failedUpdates == 0, "\(cell.workload) \(cell.threads)")
            #expect(report.counterpartRatio(for: cell) != nil, "\(cell.workload) \(cell.threads)")
        }
        // Its maps are of the registered type, on the bucket-locked base.
        let map = try PassThroughProvider.makeMap(entries: 16)
        #expect(map.definition.type == PassThroughProvider.type && map.baseKind == .hashBucketLocked)
    }
}
