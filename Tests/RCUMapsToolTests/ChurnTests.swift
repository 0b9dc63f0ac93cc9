@testable import rcumaps
import Testing

/// `churn` must churn: half its writes insert, half delete, over twice the prefilled key
/// space, so about half of them change the map. (Until 2026-12-02 the choice between insert
/// and delete came from the bit that also picked the half of the key space: every insert
/// hit a prefilled key and every delete a key never inserted, and the workload measured
/// refusals only.)
@Suite("rcumaps bench churn", .serialized)
struct ChurnTests {
    @Test func aboutHalfOfTheWritesChangeTheMap() throws {
        // RCUMaps' maps at 1 and 2 threads; the baselines at 1 thread only: their
        // synchronisation (the standard library's Mutex, liburcu's grace periods driven from
        // C) is not instrumented, so ThreadSanitizer would report their writers racing.
        var ours = BenchOptions()
        ours.maps = [.hashBucket, .hashLockFree, .objectMap]
        ours.threads = [1, 2]
        var baselines = BenchOptions()
        baselines.maps = [.mutexDict, .cRculfhash]
        baselines.threads = [1]
        var cells: [CellResult] = []
        for var options in [ours, baselines] {
            options.workloads = [.churn]
            options.entries = 256
            options.duration = 0.05
            cells += try runBenchCells(options, progress: false)
        }
        #expect(cells.count == 3 * 2 + 2)
        for cell in cells {
            let name = "\(cell.map.rawValue) \(cell.threads) threads"
            #expect(cell.operations > 0, "\(name)")
            // Expected: one half; the bounds leave room for the random walk of a short run.
            #expect(cell.changes * 4 >= cell.operations, "\(name): \(cell.changes) of \(cell.operations)")
            #expect(cell.changes * 4 <= cell.operations * 3, "\(name): \(cell.changes) of \(cell.operations)")
        }
        let json = BenchReport(options: ours, cells: cells).json()
        #expect(json.contains("\"changes\": "))
    }
}
