@testable import rcumaps
import RCUMaps
import Testing

/// The comparison kinds: typed maps against their byte-level maps in user mode, and
/// `RCUDictionary` against `Mutex` dictionaries.
@Suite("rcumaps bench comparison kinds")
struct ComparisonKindTests {
    @Test func comparisonKindsRunOnlyWhenNamed() throws {
        #expect(BenchOptions().maps == MapKind.defaults)
        #expect(MapKind.defaults == [.hashLockFree, .hashBucket, .array, .mutexDict, .rwlockDict, .cRculfhash,
                                     .cOpenAddressing, .swiftArray, .objectMap, .epoch])
        let comparisons: Set<MapKind> = [.hashLockFreeUser, .typedLockFree, .hashBucketUser, .typedBucket, .typedArray,
                                         .rcuDictObject, .mutexDictObject, .rcuDictObjectField, .mutexDictObjectField,
                                         .rcuDictString, .mutexDictString, .passThrough,
                                         .queue, .cWfcqueue, .stack, .cLfstack, .mutexDeque, .perCPUArray,
                                         .threadLocalCounter, .lruHash, .perCPUHash, .lpmIPv4, .cPatriciaIPv4, .lpmIPv6,
                                         .cPatriciaIPv6, .ckHT, .libcuckoo, .tbbHashMap, .cRWLockOpenAddressing]
        #expect(Set(MapKind.allCases.filter { !$0.runsByDefault }) == comparisons)
        #expect(benchPlan(BenchOptions()).allSatisfy { $0.map.runsByDefault })
    }

    @Test func mapsTakeKindsAndGroups() throws {
        func maps(_ text: String) throws -> [MapKind] { try benchOptions(["--maps", text]).maps }
        #expect(try maps("typed") == [.hashLockFreeUser, .typedLockFree, .hashBucketUser, .typedBucket, .array, .typedArray])
        #expect(try maps("dictionary") == [.rcuDictObject, .mutexDictObject, .rcuDictObjectField, .mutexDictObjectField,
                                           .rcuDictString, .mutexDictString])
        #expect(try maps("custom") == [.hashBucket, .passThrough, .objectMap])
        #expect(try maps("lpm") == [.lpmIPv4, .cPatriciaIPv4, .lpmIPv6, .cPatriciaIPv6])
        // `all` leaves out the library peers, which need --peers-library; `peers` names them,
        // and the lock-based open addressing built into the tool.
        #expect(try maps("all") == MapKind.allCases.filter { $0.peerSymbolPrefix == nil })
        #expect(try maps("all").contains(.cRWLockOpenAddressing))
        #expect(try maps("peers") == [.hashBucket, .hashLockFree, .cRculfhash, .mutexDict, .cRWLockOpenAddressing,
                                      .ckHT, .libcuckoo, .tbbHashMap])
        #expect(try maps("default") == MapKind.defaults)
        // Repeats are dropped, order kept, kinds and groups mixed.
        #expect(try maps("mutex-dict,dictionary,rcu-dict-object") == [.mutexDict, .rcuDictObject, .mutexDictObject,
                                                                        .rcuDictObjectField, .mutexDictObjectField,
                                                                        .rcuDictString, .mutexDictString])
        #expect(try maps("typed-bucket, typed") == [.typedBucket, .hashLockFreeUser, .typedLockFree, .hashBucketUser,
                                                     .array, .typedArray])
        #expect(try maps("default,typed").count == MapKind.defaults.count + 5)
        let message = try #require(usageError(["--maps", "typed,bogus"]), "accepted an unknown map")
        #expect(message.contains("unknown name 'bogus'"))
        #expect(message.contains("typed-bucket") && message.contains("dictionary"))
    }

    @Test func everyCounterpartRunsWhatItsRowRuns() throws {
        for kind in MapKind.allCases {
            guard let counterpart = kind.counterpart else { continue }
            #expect(counterpart.counterpart == nil)
            for workload in Workload.allCases where kind.supports(workload) {
                // The cell compared with: the same workload, or for insert-full, HASH's update.
                let cell = try #require(kind.counterpart(in: workload))
                #expect(cell.map == counterpart)
                #expect(counterpart.supports(cell.workload), "\(counterpart) cannot run \(cell.workload) for \(kind)")
            }
            #expect(counterpart.supports(BenchShape.standard))
        }
        #expect(MapKind.lruHash.counterpart(in: .insertFull) == BenchCounterpart(map: .hashBucket, workload: .update))
        #expect(MapKind.allCases.filter { $0.supports(.insertFull) } == [.lruHash])
        #expect(MapKind.typedBucket.counterpart == .hashBucketUser)
        #expect(MapKind.typedLockFree.counterpart == .hashLockFreeUser)
        #expect(MapKind.typedArray.counterpart == .array)
        #expect(MapKind.rcuDictObject.counterpart == .mutexDictObject)
        #expect(MapKind.rcuDictObjectField.counterpart == .mutexDictObjectField)
        #expect(MapKind.rcuDictString.counterpart == .mutexDictString)
        // The typed rows compare lookups; their churn would repeat the byte-level rows'.
        for kind in [MapKind.hashLockFreeUser, .typedLockFree, .hashBucketUser, .typedBucket, .typedArray] {
            #expect(!kind.supports(.churn))
            #expect(kind.supports(.lookup) && kind.supports(.lookupMiss) && kind.supports(.readMostly))
        }
        for kind in [MapKind.rcuDictObject, .mutexDictObject, .rcuDictObjectField, .mutexDictObjectField, .rcuDictString,
                     .mutexDictString] {
            #expect(Workload.allCases.filter { !$0.isBatch && !$0.isDedicated }.allSatisfy(kind.supports))
            #expect(!kind.runsEveryShape)
        }
        #expect(MapKind.hashBucketUser.runsEveryShape && MapKind.hashLockFreeUser.runsEveryShape)
    }

    @Test func typedMapsAreDefinedAsTheirByteLevelRows() throws {
        #expect(try LockFreeHashMap<UInt64, UInt64>.benchMap(entries: 100).raw.definition
            == hashDefinition(entries: 100, implementation: .lockFree))
        #expect(try BucketHashMap<UInt64, UInt64>.benchMap(entries: 100).raw.definition
            == hashDefinition(entries: 100, implementation: .bucketLocked))
        #expect(try ArrayMap<UInt64>.benchMap(entries: 100).raw.definition == arrayDefinition(entries: 100))
        #expect(LockFreeHashMap<UInt64, UInt64>.benchKey(7) == BenchKeys.hashKey(7))
        #expect(BucketHashMap<UInt64, UInt64>.benchKey(7) == BenchKeys.hashKey(7))
        #expect(ArrayMap<UInt64>.benchKey(7) == 7)
    }

    @Test func stringKeysAreLongDistinctAndStoredApart() {
        let schema = StringSchema(entries: 1000)
        #expect(schema.keys.count == 2000)
        #expect(Set(schema.keys.buffer).count == 2000)
        for index in [0, 1, 8, 9, 999, 1000, 1999] {
            let key = schema.key(index)
            #expect((16...24).contains(key.utf8.count), "\(key)")
            #expect(key.utf8.allSatisfy { $0 < 128 })
            #expect(key.hasSuffix(String(BenchKeys.hashKey(index), radix: 16)))
            #expect(schema.prefillKey(index) == key)
            #expect(schema.withKey(index) { $0 } == key)
        }
        // A worker's probe keys are equal strings in buffers of their own.
        let worker = schema.forWorker(stream: 1)
        #expect(Array(worker.keys.buffer) == Array(schema.keys.buffer))
        #expect(worker.keys.buffer[5].utf8.withContiguousStorageIfAvailable { $0.baseAddress }
            != schema.keys.buffer[5].utf8.withContiguousStorageIfAvailable { $0.baseAddress })
        #expect(Set(schema.keys.buffer.map(\.utf8.count)) == Set(16...24))
        #expect(StringSchema.key(forIndex: 8) == "session:" + String(BenchKeys.hashKey(8), radix: 16))
        let objects = ObjectSchema(entries: 64)
        #expect(Set(objects.objects.map(\.id)).count == 64)
        #expect(objects.key(3) == Int(truncatingIfNeeded: BenchKeys.hashKey(3)))
        #expect(objects.fold(objects.value(5)) == objects.objects[5].id)
    }

    @Test func counterpartRatiosInTheTableAndJSON() {
        func cell(_ map: MapKind, _ workload: Workload, _ threads: Int, _ operations: Int) -> CellResult {
            CellResult(map: map, workload: workload, shape: .standard, threads: threads, entries: 16,
                       operations: operations, wallNanoseconds: 1_000_000_000, misses: 0, failedUpdates: 0)
        }
        let report = BenchReport(options: BenchOptions(), cells: [
            cell(.hashBucketUser, .lookup, 1, 40_000_000), cell(.typedBucket, .lookup, 1, 38_000_000),
            cell(.rcuDictString, .lookup, 2, 30_000_000), cell(.mutexDictString, .lookup, 2, 3_000_000),
            cell(.typedArray, .lookup, 1, 10_000_000),
        ])
        #expect(report.hasCounterparts)
        #expect(report.counterpartRatio(for: report.cells[1]) == 0.95)
        #expect(report.counterpartRatio(for: report.cells[2]) == 10.0)
        #expect(report.counterpartRatio(for: report.cells[0]) == nil)
        #expect(report.counterpartRatio(for: report.cells[4]) == nil)  // `array` did not run
        let rows = report.table().split(separator: "\n").map(String.init)
        #expect(rows[1].hasSuffix("vs counterpart"))
        #expect(rows.first { $0.hasPrefix("typed-bucket") }?.hasSuffix("0.95x") == true)
        #expect(rows.first { $0.hasPrefix("rcu-dict-string") }?.hasSuffix("10.0x") == true)
        #expect(rows.first { $0.hasPrefix("hash-bucket-user") }?.hasSuffix("-") == true)
        #expect(report.table().contains("typed-bucket to hash-bucket-user"))
        let json = report.json()
        #expect(json.contains("\"ratios\": {\"counterpart\": 0.950}"))
        #expect(json.contains("\"counterpart\": \"hash-bucket-user\"}"))
        #expect(json.contains("\"counterpart\": null}"))
        // Without counterparts, neither the column nor the fields.
        let plain = BenchReport(options: BenchOptions(), cells: [cell(.hashBucket, .lookup, 1, 1), cell(.mutexDict, .lookup, 1, 1)])
        #expect(!plain.hasCounterparts)
        #expect(!plain.table().contains("counterpart"))
        #expect(!plain.json().contains("counterpart"))
    }

    @Test func usageListsComparisonKindsAndGroups() {
        let text = help(for: BenchCommand.self)
        for kind in MapKind.allCases { #expect(text.contains(kind.rawValue)) }
        for group in MapGroup.allCases { #expect(text.contains("  \(group.rawValue) ")) }
        #expect(text.contains("vs counterpart"))
    }
}

/// Short in-process runs of the comparison kinds: every lookup a hit, every update accepted.
@Suite("rcumaps bench comparison runs", .serialized)
struct ComparisonRunTests {
    func tinyOptions(_ maps: [MapKind], threads: [Int]) -> BenchOptions {
        var options = BenchOptions()
        options.maps = maps
        options.threads = threads
        options.entries = 256
        options.duration = 0.02
        return options
    }

    func check(_ cells: [CellResult]) {
        for cell in cells {
            #expect(cell.operations > 0, "\(cell.map) \(cell.workload)")
            #expect(cell.misses == 0, "\(cell.map) \(cell.workload) \(cell.threads): \(cell.misses) misses")
            #expect(cell.failedUpdates == 0, "\(cell.map) \(cell.workload) \(cell.threads): failed updates")
        }
    }

    @Test func typedMapsAndTheirUserModeCounterparts() throws {
        let options = tinyOptions(MapGroup.typed.kinds, threads: [1, 2])
        let cells = try runBenchCells(options, progress: false)
        // lookup, lookup-miss, read-mostly (no churn) x 2 thread counts x 6 kinds.
        #expect(cells.count == 3 * 2 * 6)
        #expect(!cells.contains { $0.workload == .churn })
        check(cells)
        let report = BenchReport(options: options, cells: cells)
        for cell in cells where cell.map.counterpart != nil {
            #expect(report.counterpartRatio(for: cell) != nil, "\(cell.map) \(cell.workload)")
        }
    }

    @Test func userModeLookupsRunOtherShapes() throws {
        var options = tinyOptions([.hashBucketUser, .hashLockFreeUser, .typedBucket], threads: [1])
        options.shapes = [BenchShape(keyBytes: 16, valueBytes: 8), BenchShape(keyBytes: 8, valueBytes: 64),
                          BenchShape(keyBytes: 24, valueBytes: 40)]
        options.workloads = [.lookup, .lookupMiss]
        let cells = try runBenchCells(options, progress: false)
        #expect(cells.count == 2 * 3 * 2)
        #expect(!cells.contains { $0.map == .typedBucket })
        check(cells)
    }

    @Test func dictionariesEveryWorkload() throws {
        // RCUDictionary at two threads. The Mutex baselines at one: ThreadSanitizer cannot see
        // Synchronization.Mutex hand-offs (docs/architecture.md) and this test runs under it.
        // Every workload but the batch ones (byte-level maps only) and the dedicated ones
        // (push-pop for queues and stacks, increment for per-CPU counters).
        let workloads = Workload.allCases.filter { !$0.isBatch && !$0.isDedicated }
        var rcuOptions = tinyOptions([.rcuDictObject, .rcuDictObjectField, .rcuDictString], threads: [1, 2])
        rcuOptions.workloads = workloads
        let rcu = try runBenchCells(rcuOptions, progress: false)
        #expect(rcu.count == workloads.count * 3 * 2)
        check(rcu)
        var mutexOptions = tinyOptions([.mutexDictObject, .mutexDictObjectField, .mutexDictString, .mutexDict],
                                       threads: [1])
        mutexOptions.workloads = workloads
        let mutex = try runBenchCells(mutexOptions, progress: false)
        #expect(mutex.count == workloads.count * 4)
        check(mutex)
    }
}
