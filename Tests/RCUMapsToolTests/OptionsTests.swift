#if canImport(Glibc)
import Glibc
#endif
@testable import rcumaps
import Foundation
import Testing

@Suite("rcumaps command line")
struct OptionsTests {
    @Test func noArgumentsRunsTheDefaultBench() throws {
        #expect(try benchOptions([]) == BenchOptions())
        #expect(try benchOptions(["bench"]) == BenchOptions())
        #expect(try asksForHelp(["--help"]))
        #expect(try asksForHelp(["-h"]))
        #expect(try asksForHelp(["help"]))
        #expect(try asksForHelp(["bench", "--help"]))
        #expect(printsHelp(BenchCommand.self, ["--help"]))
        #expect(printsHelp(RCUMapsCommand.self, ["-h"]))
    }

    @Test func optionsAreParsed() throws {
        let options = try benchOptions(
            ["bench", "--threads", "1,2,4", "--duration=0.25", "--entries", "1000",
             "--maps", "hash-bucket,mutex-dict", "--workloads", "lookup", "--json"])
        #expect(options.threads == [1, 2, 4])
        #expect(options.duration == 0.25)
        #expect(options.entries == 1000)
        #expect(options.maps == [.hashBucket, .mutexDict])
        #expect(options.workloads == [.lookup])
        #expect(options.json)
        // Without the subcommand name, the options are the bench's.
        #expect(try benchOptions(["--threads", "1", "--duration", "0.2", "--maps", "hash-bucket"])
            == BenchOptions(threads: [1], duration: 0.2, maps: [.hashBucket]))
        // Repeats in a list are dropped, order kept; a repeated option's last value wins.
        #expect(try benchOptions(["--threads", "4, 1,4"]).threads == [4, 1])
        #expect(try benchOptions(["--entries", "5", "--entries=7"]).entries == 7)
    }

    /// The default thread counts go from 1 to the CPUs online, doubling (SPEC §9's "1..N
    /// threads"; they were 1 and 2 whatever the machine).
    @Test func defaultThreadsReachTheCPUCount() {
        #expect(BenchOptions.defaultThreads(cpus: 1) == [1])
        #expect(BenchOptions.defaultThreads(cpus: 2) == [1, 2])
        #expect(BenchOptions.defaultThreads(cpus: 6) == [1, 2, 4, 6])
        #expect(BenchOptions.defaultThreads(cpus: 8) == [1, 2, 4, 8])
        #expect(BenchOptions().threads == BenchOptions.defaultThreads(cpus: usableCPUCount()))
        #expect((1...cpuCount()).contains(usableCPUCount()))
    }

    /// A list option given more than once merges its lists, in order, without repeats: the
    /// last list alone was kept, so `stress --map hash-bucket --map array` stressed only
    /// array and said PASS (found by review, 2026-12-05).
    @Test func repeatedListOptionsAreMerged() throws {
        let bench = try benchOptions(["--maps", "hash-bucket", "--maps=array,hash-bucket", "--threads", "2",
                                      "--threads", "1", "--workloads", "lookup", "--workloads", "churn",
                                      "--shapes", "8x8", "--shapes", "16x8"])
        #expect(bench.maps == [.hashBucket, .array])
        #expect(bench.threads == [2, 1])
        #expect(bench.workloads == [.lookup, .churn])
        #expect(bench.shapes.map(\.description) == ["8x8", "16x8"])
        #expect(try stressOptions(["stress", "--map", "hash-bucket", "--maps", "array"]).maps == [.hashBucket, .array])
        let memory = try memoryOptions(["memory", "--map", "hash-bucket", "--maps", "swift-dict", "--entries", "10",
                                        "--entries", "20,10"])
        #expect(memory.maps.map(\.rawValue) == ["hash-bucket", "swift-dict"])
        #expect(memory.entries == [10, 20])
        // Not given: the defaults.
        #expect(try stressOptions(["stress"]).maps == StressOptions().maps)
    }

    /// Results that cannot be written (standard output on a full disk) end the run with
    /// status 1 and a message: every subcommand exited 0, its table or JSON lost (found by
    /// review, 2026-12-05).
    @Test func unwritableResultsFailTheRun() async {
        await #expect(processExitsWith: .exitCode(1), observing: [\.standardErrorContent]) {
            guard freopen("/dev/full", "w", standardOutputStream) != nil else { exit(0) }  // no /dev/full: the expectation fails
            print(String(repeating: "results ", count: 2048))
            checkStandardOutputWritten()
            exit(0)
        }.map { result in
            let text = String(decoding: result.standardErrorContent, as: UTF8.self)
            #expect(text.contains("could not be written to standard output"), "\(text)")
        }
    }

    /// `--entries` whose largest cell cannot fit the machine's memory is a usage error that
    /// says so (it was accepted, and the run killed for memory after minutes of prefill:
    /// found by review, 2026-12-05). Decided for a machine of 16 GiB and 8 CPUs given, not
    /// this one; only the shapes a map runs count.
    @Test func entriesBeyondTheMachinesMemoryAreRefused() throws {
        let memory = 16 << 30
        func refusal(_ maps: [MapKind], _ shapes: [String] = ["8x8"], entries: Int, threads: Int = 2) -> String? {
            BenchCommand.footprintRefusal(maps: maps, shapes: shapes.map { try! parseShapes($0)[0] }, entries: entries,
                                          threads: threads, cpus: 8, memory: memory)
        }
        let huge = try #require(refusal([.lpmIPv4], entries: 1 << 26))
        #expect(huge.contains("GiB") && huge.contains("lpm-ipv4"), "\(huge)")
        #expect(refusal([.lpmIPv4], entries: 1_000_000) == nil)
        let wide = try #require(refusal([.hashBucket], ["8x8", "512x4096"], entries: 1 << 21))
        #expect(wide.contains("512x4096"), "\(wide)")
        // The array runs only 8x8: a wide shape in the list does not count for it.
        #expect(refusal([.array], ["8x8", "512x4096"], entries: 3_000_000) == nil)
        // The thread-local baseline makes an array of counters per thread.
        #expect(refusal([.threadLocalCounter], entries: 1 << 26, threads: 64)?.contains("64 threads") == true)
        #expect(refusal([.threadLocalCounter], entries: 1 << 26, threads: 1) == nil)
        // Per-CPU maps hold a value per CPU of each entry.
        #expect(refusal([.perCPUHash], entries: 1 << 26) != nil)
        #expect(refusal([.hashBucket], entries: 1 << 26) == nil)
        // The String dictionary rows give each thread its own probe keys (about 200 bytes
        // an entry a thread: 2,000,000 entries at 64 threads is some 26 GB; found by review,
        // 2026-12-06).
        #expect(refusal([.rcuDictString], entries: 2_000_000, threads: 64)?.contains("64 threads") == true)
        #expect(refusal([.mutexDictString], entries: 2_000_000, threads: 64) != nil)
        #expect(refusal([.rcuDictString], entries: 2_000_000, threads: 2) == nil)
        // Through the command line, on this machine: absurd sizes are refused before any cell.
        #expect(usageError(["--maps", "lpm-ipv4", "--entries", "\(BenchOptions.maxEntries)", "--shapes", "8x8"]) != nil
            || ProcessInfo.processInfo.physicalMemory > UInt64(BenchOptions.maxEntries) * 2048)
    }

    /// Durations in a stress run's lines: elapsed times with two significant digits (with
    /// one decimal, 0.04 s printed as 0.0 and 0.05 s as 0.1), the given `--duration` as
    /// given (found by review, 2026-12-05).
    @Test func stressDurationsPrintAsGiven() {
        #expect(formatSeconds(0.04) == "0.04")
        #expect(formatSeconds(0.05) == "0.05")
        #expect(formatSeconds(0.125) == "0.13")
        #expect(formatSeconds(2.5) == "2.5")
        #expect(formatSeconds(60) == "60.0")
        #expect(formatSeconds(0) == "0.0")
        #expect(formatSeconds(.nan) == "-")
        // A given duration prints with the decimals it was given.
        #expect(formatGivenSeconds(1.25) == "1.25")
        #expect(formatGivenSeconds(0.125) == "0.125")
        #expect(formatGivenSeconds(60) == "60.0")
        #expect(formatGivenSeconds(0.05) == "0.05")
    }

    @Test(arguments: [
        ["--bogus"], ["stress", "--bogus"], ["--threads", "0"], ["--threads", "1,,2"], ["--threads", "x"],
        ["--duration"], ["--duration", "-1"], ["--duration", "nan"], ["--duration", "1e-300"], ["--duration", "0.0009"], ["--entries", "0"],
        ["--maps", "foo"], ["--maps", "typed,foo"], ["--maps", "typed,"], ["--workloads", "lookup,bar"], ["bench", "extra"],
        ["extra"], ["--threads", "1025"], ["--duration", "3601"], ["--entries", "\(BenchOptions.maxEntries + 1)"],
        ["--json=yes"], ["--maps", "--json"],
    ])
    func badArgumentsAreUsageErrors(_ arguments: [String]) {
        #expect(usageError(arguments) != nil)
    }

    @Test func usageErrorsNameTheOptionAndWhatIsWrong() throws {
        let threads = try #require(usageError(["--threads", "0"]))
        #expect(threads.contains("--threads") && threads.contains("0 is out of range 1...1024"))
        // The value is the next argument whatever it looks like, as before ArgumentParser.
        let duration = try #require(usageError(["--duration", "-1"]))
        #expect(duration.contains("--duration") && duration.contains("-1 must be at least 0.001 and at most 3600"))
        #expect(try #require(usageError(["--threads", "1,,2"])).contains("empty item in '1,,2'"))
        #expect(try #require(usageError(["--duration"])).contains("--duration"))
    }

    /// The command lines README.md, docs/, Benchmarks/README.md, scripts/ and the tool's own
    /// output (stress's "repeat with" line) give: each parses into the command they mean.
    @Test func documentedCommandLinesParse() throws {
        let bench: [[String]] = [
            [],  // scripts/run.sh without arguments
            ["bench", "--json", "--duration", "1", "--threads", "1,2"],
            ["bench", "--json", "--threads", "1,2"],
            ["bench", "--json", "--duration", "1", "--threads", "1,2", "--workloads", "read-mostly"],
            ["bench", "--json", "--duration", "1", "--threads", "1,2", "--entries", "1000000", "--workloads", "lookup",
             "--maps", "hash-lockfree,hash-bucket,mutex-dict,c-rculfhash,c-open-addressing"],
            ["bench", "--duration", "1", "--threads", "1,2", "--shapes", "8x8,16x8,8x64", "--maps", "hash-lockfree,hash-bucket",
             "--workloads", "lookup,read-mostly"],
            ["bench", "--json", "--duration", "1", "--threads", "1,2", "--workloads", "lookup,read-mostly",
             "--maps", "hash-lockfree,hash-bucket,array,object-map,mutex-dict,rwlock-dict,c-rculfhash,c-open-addressing"],
            ["bench", "--workloads", "batch"],
            ["--duration", "0.2", "--threads", "1", "--maps", "hash-bucket"],
        ]
        for arguments in bench { #expect(throws: Never.self, "\(arguments)") { try benchOptions(arguments) } }
        #expect(try benchOptions(bench[4]).entries == 1_000_000)
        #expect(try benchOptions(bench[5]).shapes.map(\.description) == ["8x8", "16x8", "8x64"])
        #expect(try memoryOptions(["memory", "--entries", "16384,1000000"]).entries == [16384, 1_000_000])
        #expect(try stressOptions(["stress", "--duration", "60"]).duration == 60)
        #expect(try stressOptions(["stress", "--duration", "60", "--threads", "4"]).threads == 4)
        #expect(try stressOptions(["stress", "--duration", "10", "--threads", "4"]).duration == 10)
        #expect(try stressOptions(["stress", "--seed", "826731184", "--threads", "2", "--keys", "1024", "--duration", "1.0",
                                   "--map", "array"])
            == StressOptions(maps: [.array], duration: 1, threads: 2, seed: 826_731_184, keys: 1024))
        // `bash scripts/run.sh bench --help`, `rcumaps --help`, `rcumaps memory --help`, `rcumaps stress --help`.
        for arguments in [["bench", "--help"], ["--help"], ["memory", "--help"], ["stress", "--help"]] {
            #expect(try asksForHelp(arguments), "\(arguments)")
        }
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
