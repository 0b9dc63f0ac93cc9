@testable import rcumaps
import Testing

@Suite("rcumaps command line")
struct OptionsTests {
    @Test func noArgumentsRunsTheDefaultBench() throws {
        #expect(try parseCommand([]) == .bench(BenchOptions()))
        #expect(try parseCommand(["bench"]) == .bench(BenchOptions()))
        #expect(try parseCommand(["--help"]) == .help)
        #expect(try parseCommand(["help"]) == .help)
    }

    @Test func optionsAreParsed() throws {
        guard case let .bench(options) = try parseCommand(
            ["bench", "--threads", "1,2,4", "--duration=0.25", "--entries", "1000",
             "--maps", "hash-bucket,mutex-dict", "--workloads", "lookup", "--json"])
        else {
            Issue.record("not a bench command")
            return
        }
        #expect(options.threads == [1, 2, 4])
        #expect(options.duration == 0.25)
        #expect(options.entries == 1000)
        #expect(options.maps == [.hashBucket, .mutexDict])
        #expect(options.workloads == [.lookup])
        #expect(options.json)
    }

    @Test(arguments: [
        ["--bogus"], ["stress", "--bogus"], ["--threads", "0"], ["--threads", "1,,2"], ["--threads", "x"],
        ["--duration"], ["--duration", "-1"], ["--duration", "nan"], ["--entries", "0"],
        ["--maps", "foo"], ["--maps", "typed,foo"], ["--maps", "typed,"], ["--workloads", "lookup,bar"], ["bench", "extra"],
    ])
    func badArgumentsAreUsageErrors(_ arguments: [String]) {
        #expect(throws: UsageError.self) { try parseCommand(arguments) }
    }

    @Test func ratiosAreAgainstTheBaselineAtTheSameCell() {
        let options = BenchOptions()
        func cell(_ map: MapKind, _ threads: Int, _ operations: Int) -> CellResult {
            CellResult(map: map, workload: .lookup, shape: .standard, threads: threads, entries: 16,
                       operations: operations, wallNanoseconds: 1_000_000_000, misses: 0, failedUpdates: 0)
        }
        let report = BenchReport(options: options, cells: [
            cell(.mutexDict, 1, 10_000_000), cell(.hashBucket, 1, 50_000_000),
            cell(.mutexDict, 2, 5_000_000), cell(.hashBucket, 2, 100_000_000),
        ])
        #expect(report.ratio(for: report.cells[1]) == 5.0)
        #expect(report.ratio(for: report.cells[3]) == 20.0)
        #expect(cell(.hashBucket, 2, 100_000_000).nanosecondsPerOperation == 20.0)
        #expect(cell(.hashBucket, 2, 100_000_000).megaOperationsPerSecond == 100.0)
        let table = report.table()
        #expect(table.contains("hash-bucket"))
        #expect(table.contains("20.0x") || table.contains("20x"))
    }
}
