@testable import rcumaps
import RCUMaps
import Testing

@Suite("rcumaps bench --shapes")
struct ShapeOptionTests {
    @Test func defaultIsEightByEight() throws {
        #expect(BenchOptions().shapes == [.standard])
        #expect(BenchShape.standard == BenchShape(keyBytes: 8, valueBytes: 8))
        #expect(BenchShape.standard.description == "8x8")
    }

    @Test func shapesAreParsed() throws {
        let options = try benchOptions(["bench", "--shapes", "8x8,16x8,8x64,16x8", "--json"])
        #expect(options.shapes == [BenchShape(keyBytes: 8, valueBytes: 8), BenchShape(keyBytes: 16, valueBytes: 8),
                                   BenchShape(keyBytes: 8, valueBytes: 64)])
        #expect(options.shapes.map(\.description) == ["8x8", "16x8", "8x64"])
        let inline = try benchOptions(["--shapes=24x40"])
        #expect(inline.shapes == [BenchShape(keyBytes: 24, valueBytes: 40)])
        #expect(inline.shapes[0].keyWords == 3 && inline.shapes[0].valueWords == 5)
    }

    @Test(arguments: [
        "12x8", "8x12", "0x8", "4x8", "8x0", "8x4", "8x", "x8", "8x8x8", "16X8", "abc", "", "-8x8", "8x-8",
        "520x8", "8x4104", " x8",
    ])
    func badShapesAreUsageErrors(_ shape: String) {
        #expect(usageError(["bench", "--shapes", shape]) != nil)
        #expect(usageError(["bench", "--shapes", "8x8,\(shape)"]) != nil)
        #expect(usageError(["memory", "--shapes", shape]) != nil)
    }

    @Test func badShapeMessagesSayWhatIsWrong() {
        func message(_ shape: String) -> String { usageError(["--shapes", shape]) ?? "" }
        #expect(message("12x8").contains("key size 12"))
        #expect(message("12x8").contains("multiple of 8"))
        #expect(message("8x60").contains("value size 60"))
        #expect(message("16-8").contains("<keyBytes>x<valueBytes>"))
        // ArgumentParser names the option (and the value) before the message.
        #expect(message("16-8").contains("'--shapes <list>'"))
        #expect(usageError(["--shapes"]) != nil)
    }

    @Test func usageDescribesShapes() {
        #expect(help(for: BenchCommand.self).contains("--shapes"))
        #expect(help(for: MemoryCommand.self).contains("--shapes"))
        #expect(rootHelp().contains("rcumaps memory"))
    }
}

@Suite("rcumaps bench shapes: plan, keys, values, report")
struct ShapePlanTests {
    @Test func onlyOurHashMapsRunOtherShapes() {
        var options = BenchOptions()
        options.shapes = [.standard, BenchShape(keyBytes: 16, valueBytes: 8), BenchShape(keyBytes: 8, valueBytes: 64)]
        options.threads = [1, 2]
        let plan = benchPlan(options)
        let standard = plan.filter { $0.shape == .standard }
        let others = plan.filter { $0.shape != .standard }
        #expect(Set(standard.map(\.map)) == Set(MapKind.defaults))
        #expect(Set(others.map(\.map)) == [.hashLockFree, .hashBucket])
        // Every default workload but the dedicated ones (push-pop, increment) and thread count,
        // both hash maps, two other shapes.
        #expect(others.count == Workload.defaults.filter { !$0.isDedicated }.count * 2 * 2 * 2)
        #expect(plan.allSatisfy { $0.map.supports($0.workload) && $0.map.supports($0.shape) })
        // Table order: workload, threads, shape, map.
        #expect(plan.first == BenchStep(workload: .lookup, threads: 1, shape: .standard, map: .hashLockFree))
        #expect(plan[MapKind.defaults.count] == BenchStep(workload: .lookup, threads: 1,
                                                          shape: BenchShape(keyBytes: 16, valueBytes: 8),
                                                          map: .hashLockFree))
        options.maps = [.mutexDict, .swiftArray]
        options.shapes = [BenchShape(keyBytes: 16, valueBytes: 8)]
        #expect(benchPlan(options).isEmpty)
    }

    @Test func keysOfEveryWidthAreTheEightByteKeyPlusIndexWords() {
        func words(_ maker: some BenchKeyMaker, _ index: Int) -> [UInt64] {
            maker.withKey(index) { bytes in
                #expect(bytes.count == maker.byteCount)
                return (0..<bytes.count / 8).map { bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
            }
        }
        var seen = Set<[UInt64]>()
        for index in [0, 1, 2, 255, 256, 65_535, 1 << 20] {
            #expect(words(Key8(), index) == [BenchKeys.hashKey(index)])
            let key16 = words(Key16(), index)
            #expect(key16 == [BenchKeys.hashKey(index), BenchKeys.keyWord(index, 1)])
            #expect(key16[1] != key16[0])
            #expect(words(WordKeys(words: 2), index) == key16)
            #expect(words(WordKeys(words: 1), index) == [BenchKeys.hashKey(index)])
            #expect(words(WordKeys(words: 5), index).prefix(2) == key16[...])
            seen.insert(key16)
        }
        #expect(seen.count == 7)
        // Distinct over a whole key space, prefilled and never-inserted keys alike.
        let keys = Set((0..<4096).map { words(Key16(), $0) })
        #expect(keys.count == 4096)
    }

    @Test func valuesAreFilledFromTheSeedAndFoldedWhole() {
        func fold(_ maker: some BenchValueMaker, _ seed: UInt64) -> (words: [UInt64], fold: UInt64) {
            maker.withValue(seed) { bytes in
                #expect(bytes.count == maker.byteCount)
                let words = (0..<bytes.count / 8).map { bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
                return (words, maker.fold(bytes.baseAddress!))
            }
        }
        for seed in [0, BenchKeys.initialValue(7), UInt64.max] {
            let eight = fold(Value8(), seed)
            #expect(eight.words == [seed] && eight.fold == seed)
            let sixtyFour = fold(Value64(), seed)
            #expect(sixtyFour.words == (0..<8).map { BenchKeys.valueWord(seed, $0) })
            #expect(sixtyFour.fold == sixtyFour.words.reduce(0, &+))
            #expect(Set(sixtyFour.words).count == 8)
            let general = fold(WordValues(words: 8), seed)
            #expect(general.words == sixtyFour.words && general.fold == sixtyFour.fold)
            #expect(fold(WordValues(words: 1), seed).fold == seed)
        }
        // Every word counts: changing the last one changes the fold.
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 8) { buffer in
            for word in 0..<8 { buffer[word] = BenchKeys.valueWord(42, word) }
            let before = Value64().fold(UnsafeRawPointer(buffer.baseAddress!))
            buffer[7] &+= 1
            #expect(Value64().fold(UnsafeRawPointer(buffer.baseAddress!)) == before &+ 1)
        }
    }

    @Test func ratiosOnlyAgainstBaselinesOfTheSameShape() {
        var options = BenchOptions()
        options.shapes = [.standard, BenchShape(keyBytes: 16, valueBytes: 8)]
        func cell(_ map: MapKind, _ shape: BenchShape, _ operations: Int) -> CellResult {
            CellResult(map: map, workload: .lookup, shape: shape, threads: 1, entries: 16, operations: operations,
                       wallNanoseconds: 1_000_000_000, misses: 0, failedUpdates: 0)
        }
        let wide = BenchShape(keyBytes: 16, valueBytes: 8)
        let report = BenchReport(options: options, cells: [
            cell(.hashBucket, .standard, 40_000_000), cell(.mutexDict, .standard, 20_000_000),
            cell(.hashBucket, wide, 30_000_000),
        ])
        #expect(report.ratio(for: report.cells[0]) == 2.0)
        #expect(report.ratio(for: report.cells[2]) == nil)
        #expect(report.baselineCell(.mutexDict, for: report.cells[2]) == nil)
        let table = report.table()
        let rows = table.split(separator: "\n").map(String.init)
        #expect(rows[1].contains("shape"))
        let wideRow = rows.first { $0.hasPrefix("hash-bucket") && $0.contains("16x8") }
        #expect(wideRow?.hasSuffix("-") == true, "\(table)")
        let json = report.json()
        #expect(json.contains("\"shape\": \"16x8\", \"keyBytes\": 16, \"valueBytes\": 8"))
        #expect(json.contains("\"shape\": \"8x8\""))
        #expect(json.contains("\"ratios\": {\"mutex-dict\": null}"))
    }
}

/// Short in-process bench runs with other shapes: our hash maps only, every lookup a hit.
@Suite("rcumaps bench runs with shapes", .serialized)
struct ShapeRunTests {
    /// Options for a tiny run: 256 entries, 20 ms per cell.
    func tinyOptions(_ shapes: [BenchShape], workloads: [Workload], threads: [Int] = [1]) -> BenchOptions {
        var options = BenchOptions()
        options.shapes = shapes
        options.workloads = workloads
        options.threads = threads
        options.entries = 256
        options.duration = 0.02
        return options
    }

    @Test func sixteenByteKeysRunOnOurHashMapsOnly() throws {
        let shape = BenchShape(keyBytes: 16, valueBytes: 8)
        let options = tinyOptions([shape], workloads: Workload.allCases)
        let cells = try runBenchCells(options, progress: false)
        // Every workload but the dedicated ones (push-pop, increment).
        let workloads = Workload.allCases.filter { !$0.isDedicated }
        #expect(cells.count == workloads.count * 2)
        for workload in workloads {
            #expect(Set(cells.filter { $0.workload == workload }.map(\.map)) == [.hashLockFree, .hashBucket])
        }
        for cell in cells {
            #expect(cell.shape == shape)
            #expect(cell.entries == 256)
            #expect(cell.operations > 0, "\(cell.map) \(cell.workload)")
            #expect(cell.misses == 0, "\(cell.map) \(cell.workload): \(cell.misses) misses")
            #expect(cell.failedUpdates == 0, "\(cell.map) \(cell.workload): \(cell.failedUpdates) failed updates")
        }
        let report = BenchReport(options: options, cells: cells)
        #expect(report.baselinesRun.isEmpty)
        #expect(report.table().contains("16x8"))
    }

    @Test func wideValuesAndMixedShapesAtTwoThreads() throws {
        let wide = BenchShape(keyBytes: 8, valueBytes: 64)
        let general = BenchShape(keyBytes: 24, valueBytes: 40)
        var options = tinyOptions([.standard, wide, general], workloads: [.lookup, .readMostly], threads: [2])
        // The reader-writer-lock baseline, not the Mutex one: ThreadSanitizer cannot see
        // Synchronization.Mutex hand-offs (docs/architecture.md) and this test runs under it.
        options.maps = [.hashBucket, .rwlockDict, .hashLockFree, .array]
        let cells = try runBenchCells(options, progress: false)
        #expect(cells.map(\.map) == [.hashBucket, .rwlockDict, .hashLockFree, .array, .hashBucket, .hashLockFree,
                                     .hashBucket, .hashLockFree].repeated(2))
        #expect(cells.filter { $0.map == .rwlockDict || $0.map == .array }.allSatisfy { $0.shape == .standard })
        for cell in cells {
            #expect(cell.threads == 2)
            #expect(cell.operations > 0)
            #expect(cell.misses == 0, "\(cell.map) \(cell.workload) \(cell.shape): \(cell.misses) misses")
            #expect(cell.failedUpdates == 0, "\(cell.map) \(cell.workload) \(cell.shape)")
        }
        let report = BenchReport(options: options, cells: cells)
        for cell in cells where cell.shape != .standard {
            #expect(report.ratio(for: cell, to: .rwlockDict) == nil)
        }
        for cell in cells where cell.shape == .standard {
            #expect(report.ratio(for: cell, to: .rwlockDict) != nil)
        }
    }
}

extension Array {
    /// The array `count` times over.
    func repeated(_ count: Int) -> [Element] { (0..<count).flatMap { _ in self } }
}
