@testable import rcumaps
import RCUMaps
import Synchronization
import Testing

/// `rcumaps stress` on queues and stacks: short runs with no violation, and a queue that
/// misbehaves on purpose is caught.
@Suite("rcumaps stress queues and stacks", .serialized)
struct QueueStressTests {
    @Test func optionsNameQueueAndStack() throws {
        #expect(try stressOptions(["stress", "--maps", "queue,stack"]).maps == [.queue, .stack])
        #expect(StressMapKind.queue.isQueueStack && StressMapKind.stack.isQueueStack)
        #expect(!StressMapKind.array.isQueueStack)
        let text = help(for: StressCommand.self)
        #expect(text.contains("queue") && text.contains("stack") && text.contains("BPF_EXIST"))
    }

    @Test(arguments: [StressMapKind.queue, .stack])
    func shortRunHasNoViolations(_ kind: StressMapKind) throws {
        var options = StressOptions()
        options.maps = [kind]
        options.duration = 0.3
        options.threads = 3
        options.keys = 64
        let result = runStressMap(kind, options: options, seed: 12345, progress: false)
        #expect(result.byKind.isEmpty, "violations: \(result.byKind) — \(result.descriptions)")
        #expect(!result.exercise.hung)
        #expect(result.operations > 0)
        let stats = result.exercise.queueStats
        #expect(stats.pushesStored > 0 && stats.popsFound > 0 && stats.peeksFound > 0)
        // A share in helper mode, inside epoch sections (the run drove user mode only: found
        // by review, 2026-12-06, twenty-seventh session).
        #expect(stats.helperPushes > 0 && stats.helperPushes < stats.pushes)
        #expect(stats.helperPops > 0 && stats.helperPops < stats.pops)
        #expect(stats.helperPeeks > 0 && stats.helperPeeks < stats.peeks)
        // A 64-element map runs full: refused pushes and overwriting ones that dropped.
        #expect(stats.pushesFull > 0 && stats.overwrites > 0, "\(stats)")
        let totals = try #require(result.exercise.queueTotals)
        #expect(totals.pushed == totals.removed + totals.left)
        #expect(totals.pushed >= 32 + stats.pushesStored)  // the prefill, half of 64
        #expect(result.details.contains("values pushed"))
    }

    @Test(arguments: [
        (FaultyQueue.Fault.popsTwice, StressViolation.duplicate),
        (FaultyQueue.Fault.dropsPushes, StressViolation.lost),
        (FaultyQueue.Fault.tearsValues, StressViolation.value),
        (FaultyQueue.Fault.popsNewest, StressViolation.order),
        (FaultyQueue.Fault.overwriteDropsWithRoom, StressViolation.lost),
    ])
    func faultyQueueIsCaught(_ fault: FaultyQueue.Fault, _ expected: StressViolation) throws {
        var options = StressOptions()
        options.duration = 0.3
        options.threads = 2
        options.keys = 64
        let queue = try FaultyQueue(fault: fault, capacity: options.keys)
        let recorder = StressRecorder(label: "faulty", echo: false)
        let exercise = driveQueue(queue, kind: .queue, options: options, seed: 7, recorder: recorder, progress: false)
        #expect(!exercise.hung)
        #expect(recorder.byKind.contains { $0.0 == expected }, "violations: \(recorder.byKind) — \(recorder.descriptions)")
    }

    /// The drained values go back with `BPF_EXIST` into the emptied map, where nothing may be
    /// dropped: an overwriting push that drops the oldest element of a map with room is
    /// caught at the first check, after the prefill. The workers' overwriting pushes could
    /// not show it: what a push into a map that may be full drops is accounted for, not
    /// checked (found by review, 2026-12-06).
    @Test func anOverwritingPushThatDropsFromAMapWithRoomIsCaught() throws {
        let faulty = try FaultyQueue(fault: .overwriteDropsWithRoom, capacity: 64)
        let recorder = StressRecorder(label: "room", echo: false)
        let harness = QueueStressHarness(kind: .queue, queue: faulty, threads: 1, seed: 1, recorder: recorder)
        harness.prefill()  // 32 values; the 17th pushed back drops one
        harness.quiescentCheck("after prefill", final: false)
        #expect(recorder.byKind.map(\.0) == [.lost], "\(recorder.descriptions)")
        let queue = try Self.map(.queue, capacity: 64)
        let control = StressRecorder(label: "control", echo: false)
        let plain = QueueStressHarness(kind: .queue, queue: queue, threads: 1, seed: 1, recorder: control)
        plain.prefill()
        plain.quiescentCheck("after prefill", final: false)
        plain.quiescentCheck("again", final: false)
        #expect(control.byKind.isEmpty, "\(control.descriptions)")
    }

    /// A full map's overwriting push drops its oldest element, for a stack too (its bottom),
    /// so each producer's values still in the map are newer than any of its values dropped.
    /// A stack that dropped its newest element (the top) passed: what was dropped was
    /// accounted for and the rest kept stack order (found by review, 2026-12-06). One worker
    /// pushes 3 values with `BPF_EXIST` onto the prefill's 2 in a map of 4: the third drops.
    @Test(arguments: [StressMapKind.queue, .stack])
    func aDropOfAnyButTheOldestElementIsCaught(_ kind: StressMapKind) throws {
        let map = try Self.map(kind, capacity: 4)
        let correct = Self.overwriteAFullMap(map, kind: kind)
        #expect(correct.overwrites == 1)
        #expect(correct.recorder.byKind.isEmpty, "\(correct.recorder.descriptions)")
        guard kind == .stack else { return }
        let stack = try FaultyQueue(fault: .dropsNewest, capacity: 4)
        let faulty = Self.overwriteAFullMap(stack, kind: kind)
        #expect(faulty.overwrites == 1)
        #expect(faulty.recorder.byKind.map(\.0) == [.order], "\(faulty.recorder.descriptions)")
    }

    /// A QUEUE or STACK of 32-byte values, `capacity` elements at most.
    static func map(_ kind: StressMapKind, capacity: Int) throws -> RawQueueStackMap {
        try RawQueueStackMap(MapDefinition(type: kind == .queue ? .queue : .stack, keySize: 0,
                                           valueSize: StressWords.valueSize, maxEntries: capacity, name: "drops"))
    }

    /// Prefills `queue` (capacity 4) with 2 values, has one worker push 3 with `BPF_EXIST`,
    /// then checks the map at rest. Returns what was recorded and the worker's drops.
    static func overwriteAFullMap<Queue: StressQueue>(_ queue: Queue, kind: StressMapKind)
        -> (recorder: StressRecorder, overwrites: Int) {
        let recorder = StressRecorder(label: "drops", echo: false)
        let harness = QueueStressHarness(kind: kind, queue: queue, threads: 1, seed: 1, recorder: recorder)
        harness.prefill()
        let worker = QueueStressWorker(harness: harness, index: 0)
        for _ in 0..<3 { worker.push(overwrite: true) }
        worker.publish()
        harness.quiescentCheck("check", final: false)
        return (recorder, worker.stats.overwrites)
    }
}

/// A queue that misbehaves on purpose, once every 16 calls of the faulty operation (unless
/// its fault says otherwise).
final class FaultyQueue: StressQueue {
    enum Fault: Sendable {
        /// A pop copies the next element out but leaves it there (a value popped twice).
        case popsTwice
        /// A push reports success without storing (a value lost).
        case dropsPushes
        /// A pop returns a value with one word from elsewhere (a torn value).
        case tearsValues
        /// Every pop takes the newest element: the "queue" is a stack (FIFO broken).
        case popsNewest
        /// An overwriting push into a map with room drops its oldest element anyway (a value
        /// lost to a `BPF_EXIST` push that had no need to drop).
        case overwriteDropsWithRoom
        /// A stack whose overwriting push into a full map drops its newest element (the top),
        /// not its oldest (the bottom). Every time: the test that uses it is deterministic.
        case dropsNewest
    }

    let fault: Fault
    let base: RawQueueStackMap
    let calls = Atomic<Int>(0)

    init(fault: Fault, capacity: Int) throws(MapError) {
        self.fault = fault
        let type: MapType = fault == .popsNewest || fault == .dropsNewest ? .stack : .queue
        base = try RawQueueStackMap(MapDefinition(type: type, keySize: 0,
                                                  valueSize: StressWords.valueSize, maxEntries: capacity, name: "faulty"))
    }

    /// True once every 16 calls.
    func strikes() -> Bool { calls.wrappingAdd(1, ordering: .relaxed).newValue & 15 == 0 }

    var capacity: Int { base.capacity }
    var count: Int { base.count }

    func push(_ value: UnsafeRawBufferPointer, overwrite: Bool,
              displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        if fault == .dropsPushes, !overwrite, base.count < base.capacity, strikes() { return false }
        if fault == .overwriteDropsWithRoom, overwrite, base.count > 0, base.count < base.capacity, strikes() {
            try base.pop(into: displaced)  // a queue's oldest
            _ = try base.push(value, overwrite: false, displaced: displaced)
            return true
        }
        if fault == .dropsNewest, overwrite, base.count == base.capacity {
            try base.pop(into: displaced)  // a stack's newest
            _ = try base.push(value, overwrite: false, displaced: displaced)
            return true
        }
        return try base.push(value, overwrite: overwrite, displaced: displaced)
    }

    func pop(into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        if fault == .popsTwice, strikes() { return try base.peek(into: value) }
        try base.pop(into: value)
        if fault == .tearsValues, strikes() { value.storeBytes(of: UInt64(0xDEAD), toByteOffset: 8, as: UInt64.self) }
    }

    func peek(into value: UnsafeMutableRawBufferPointer) throws(MapError) { try base.peek(into: value) }
}
