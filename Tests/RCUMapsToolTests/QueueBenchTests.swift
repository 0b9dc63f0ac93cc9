@testable import rcumaps
import RCUMaps
import Testing

/// `rcumaps bench`'s queues and stacks: the `push-pop` workload on `queue` and `stack`
/// against liburcu's wfcqueue and lfstack and a `Mutex<Deque>`.
@Suite("rcumaps bench queue and stack kinds")
struct QueueKindTests {
    @Test func queueKindsRunOnlyPushPopAndOnlyWhenNamed() throws {
        let queueKinds: [MapKind] = [.queue, .cWfcqueue, .stack, .cLfstack, .mutexDeque]
        #expect(try benchOptions(["--maps", "queues"]).maps == queueKinds)
        #expect(MapGroup.queues.kinds == queueKinds)
        #expect(MapKind.allCases.filter(\.runsPushPop) == [.queue, .cWfcqueue, .stack, .cLfstack, .mutexDeque])
        for kind in MapKind.allCases {
            #expect(kind.supports(.pushPop) == kind.runsPushPop, "\(kind)")
            for workload in Workload.allCases where workload != .pushPop {
                #expect(!kind.runsPushPop || !kind.supports(workload), "\(kind) \(workload)")
            }
        }
        #expect(!queueKinds.contains { $0.runsByDefault })
        // push-pop runs by default, so `--maps queues` alone runs it, but the default run has
        // no map that runs it: the main job is no longer than before.
        #expect(Workload.pushPop.runsByDefault)
        #expect(!benchPlan(BenchOptions()).contains { $0.workload == .pushPop || $0.map.runsPushPop })
        let plan = benchPlan(try benchOptions(["--maps", "queues", "--threads", "1,2"]))
        #expect(plan.count == 5 * 2)
        #expect(plan.allSatisfy { $0.workload == .pushPop && $0.shape == .standard })
        // Other shapes are skipped for them, as for every 8x8-only kind.
        #expect(!MapKind.queue.supports(BenchShape(keyBytes: 16, valueBytes: 8)))
    }

    @Test func counterpartsAndBaselineColumn() {
        #expect(MapKind.queue.counterpart == .cWfcqueue)
        #expect(MapKind.stack.counterpart == .cLfstack)
        #expect(MapKind.baselines.contains(.mutexDeque))
        #expect(queueStackDefinition(.queue, entries: 100).maxEntries >= 100 + BenchOptions.maxThreads)
        #expect(queueStackDefinition(.stack, entries: 1 << 20).maxEntries == 2 << 20)
        #expect(queueStackDefinition(.stack, entries: 100).type == .stack)
    }

    @Test func ratiosSideBySideInTheTableAndJSON() {
        func cell(_ map: MapKind, _ threads: Int, _ operations: Int) -> CellResult {
            CellResult(map: map, workload: .pushPop, shape: .standard, threads: threads, entries: 16,
                       operations: operations, wallNanoseconds: 1_000_000_000, misses: 0, failedUpdates: 0)
        }
        let report = BenchReport(options: BenchOptions(), cells: [
            cell(.queue, 2, 12_000_000), cell(.cWfcqueue, 2, 10_000_000), cell(.stack, 2, 9_000_000),
            cell(.cLfstack, 2, 6_000_000), cell(.mutexDeque, 2, 3_000_000),
        ])
        #expect(report.baselinesRun == [.mutexDeque])
        #expect(report.counterpartRatio(for: report.cells[0]) == 1.2)
        #expect(report.counterpartRatio(for: report.cells[2]) == 1.5)
        #expect(report.ratio(for: report.cells[0], to: .mutexDeque) == 4.0)
        #expect(report.ratio(for: report.cells[2], to: .mutexDeque) == 3.0)
        let rows = report.table().split(separator: "\n").map(String.init)
        #expect(rows[1].contains("vs mutex-deque") && rows[1].hasSuffix("vs counterpart"))
        #expect(rows.first { $0.hasPrefix("queue ") }?.hasSuffix("4.00x           1.20x") == true, "\(rows)")
        #expect(rows.first { $0.hasPrefix("stack ") }?.hasSuffix("3.00x           1.50x") == true, "\(rows)")
        #expect(report.table().contains("queue to c-wfcqueue, stack to c-lfstack"))
        #expect(report.table().contains("an operation is one push and one pop"))
        let json = report.json()
        #expect(json.contains("\"ratios\": {\"mutex-deque\": 4.000, \"counterpart\": 1.200}"))
        #expect(json.contains("\"counterpart\": \"c-wfcqueue\""))
    }

    @Test func usageListsTheQueueKinds() {
        let text = help(for: BenchCommand.self)
        for kind in MapGroup.queues.kinds { #expect(text.contains(kind.rawValue)) }
        #expect(text.contains("  queues "))
        #expect(text.contains("push-pop"))
    }
}

/// Short in-process push-pop runs: every push stored, every pop found a value.
@Suite("rcumaps bench queue and stack runs", .serialized)
struct QueueRunTests {
    func tinyOptions(_ maps: [MapKind], threads: [Int]) -> BenchOptions {
        var options = BenchOptions()
        options.maps = maps
        options.threads = threads
        options.entries = 256
        options.duration = 0.05
        return options
    }

    func check(_ cells: [CellResult]) {
        for cell in cells {
            #expect(cell.workload == .pushPop)
            #expect(cell.operations > 0, "\(cell.map) \(cell.threads)")
            #expect(cell.misses == 0, "\(cell.map) \(cell.threads): \(cell.misses) pops found it empty")
            #expect(cell.failedUpdates == 0, "\(cell.map) \(cell.threads): \(cell.failedUpdates) pushes refused")
        }
    }

    @Test func ourQueueAndStackAtOneAndTwoThreads() throws {
        let cells = try runBenchCells(tinyOptions([.queue, .stack], threads: [1, 2]), progress: false)
        #expect(cells.count == 4)
        check(cells)
    }

    /// The baselines at one thread: ThreadSanitizer sees neither Synchronization.Mutex
    /// hand-offs (docs/architecture.md) nor liburcu's inline-assembly atomics, and this test
    /// runs under it.
    @Test func baselinesAndRatioColumns() throws {
        let options = tinyOptions(MapGroup.queues.kinds, threads: [1])
        let cells = try runBenchCells(options, progress: false)
        #expect(cells.map(\.map) == MapGroup.queues.kinds)
        check(cells)
        let report = BenchReport(options: options, cells: cells)
        for cell in cells where cell.map == .queue || cell.map == .stack {
            #expect(report.counterpartRatio(for: cell) != nil, "\(cell.map)")
            #expect(report.ratio(for: cell, to: .mutexDeque) != nil, "\(cell.map)")
        }
        let header = report.table().split(separator: "\n")[1]
        #expect(header.contains("vs mutex-deque") && header.contains("vs counterpart"))
    }

    /// Each target holds what it was prefilled with: pops give the prefill's values back,
    /// in FIFO order for the queues, LIFO for the stacks.
    @Test func targetsPopInTheirOrder() throws {
        let entries = 8
        let first = BenchKeys.initialValue(0)
        let last = BenchKeys.initialValue(entries - 1)
        let queue = try QueueStackTarget(.queue, entries: entries)
        let stack = try QueueStackTarget(.stack, entries: entries)
        let wfcqueue = try CWfcqueueTarget(entries: entries)
        let lfstack = try CLfstackTarget(entries: entries)
        let deque = MutexDequeTarget(entries: entries)
        #expect(queue.pop() == first && wfcqueue.pop() == first && deque.pop() == first)
        #expect(stack.pop() == last && lfstack.pop() == last)
        for target in [queue, stack] as [any BenchTarget] + [wfcqueue, lfstack, deque] {
            #expect(target.push(42))
            var popped = 0
            while target.pop() != nil { popped += 1 }
            #expect(popped == entries, "\(type(of: target))")
            #expect(target.pop() == nil)
        }
    }
}
