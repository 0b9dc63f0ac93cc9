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
}

/// A queue that misbehaves on purpose, once every 16 calls of the faulty operation.
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
    }

    let fault: Fault
    let base: RawQueueStackMap
    let calls = Atomic<Int>(0)

    init(fault: Fault, capacity: Int) throws(MapError) {
        self.fault = fault
        base = try RawQueueStackMap(MapDefinition(type: fault == .popsNewest ? .stack : .queue, keySize: 0,
                                                  valueSize: StressWords.valueSize, maxEntries: capacity, name: "faulty"))
    }

    /// True once every 16 calls.
    func strikes() -> Bool { calls.wrappingAdd(1, ordering: .relaxed).newValue & 15 == 0 }

    var capacity: Int { base.capacity }
    var count: Int { base.count }

    func push(_ value: UnsafeRawBufferPointer, overwrite: Bool,
              displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        if fault == .dropsPushes, !overwrite, base.count < base.capacity, strikes() { return false }
        return try base.push(value, overwrite: overwrite, displaced: displaced)
    }

    func pop(into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        if fault == .popsTwice, strikes() { return try base.peek(into: value) }
        try base.pop(into: value)
        if fault == .tearsValues, strikes() { value.storeBytes(of: UInt64(0xDEAD), toByteOffset: 8, as: UInt64.self) }
    }

    func peek(into value: UnsafeMutableRawBufferPointer) throws(MapError) { try base.peek(into: value) }
}
