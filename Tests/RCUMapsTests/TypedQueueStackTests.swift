import Foundation
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// The typed queue and stack (QueueMap, StackMap): round trips of odd-sized values,
/// order, full and overwrite, helper mode, freezing, wrapping, and concurrent use.
@Suite("Typed QUEUE and STACK")
struct TypedQueueStackTests {
    /// 13 bytes of data, stride 16: padding is copied along, harmlessly.
    struct Sample: BitwiseCopyable, Equatable, Sendable {
        var id: UInt64
        var flags: UInt32
        var tag: UInt8
    }

    static func sample(_ id: UInt64) -> Sample { Sample(id: id, flags: UInt32(truncatingIfNeeded: id &* 7), tag: UInt8(id & 0xFF)) }

    @Test func queueRoundTripsInOrder() throws {
        let queue = try QueueMap<Sample>(capacity: 4, name: "samples")
        #expect(queue.raw.definition.type == .queue)
        #expect(queue.raw.definition.keySize == 0)
        #expect(queue.raw.definition.valueSize == MemoryLayout<Sample>.size)
        #expect(queue.capacity == 4 && queue.isEmpty)
        #expect(try queue.pop() == nil)
        #expect(try queue.peek() == nil)
        for id: UInt64 in 1...4 { try queue.push(Self.sample(id)) }
        #expect(queue.count == 4)
        #expect(throws: MapError.outOfSpace) { try queue.push(Self.sample(5)) }
        #expect(try queue.peek() == Self.sample(1))
        #expect(try queue.push(Self.sample(5), overwritingOldest: true) == Self.sample(1))
        #expect(throws: MapError.outOfSpace) { try queue.push(Self.sample(6), overwritingOldest: false) }
        var popped: [UInt64] = []
        while let next = try queue.pop() { popped.append(next.id) }
        #expect(popped == [2, 3, 4, 5])
        #expect(try queue.push(Self.sample(7), overwritingOldest: true) == nil)  // room: nothing dropped
        #expect(try queue.pop() == Self.sample(7))
    }

    @Test func stackRoundTripsInOrderAndOverwritesTheBottom() throws {
        let stack = try StackMap<UInt16>(capacity: 3)
        #expect(stack.raw.definition.type == .stack)
        for value: UInt16 in [10, 20, 30] { try stack.push(value) }
        #expect(try stack.peek() == 30)
        #expect(try stack.push(40, overwritingOldest: true) == 10)  // the bottom goes, as Linux
        #expect(try stack.pop() == 40)
        #expect(try stack.pop() == 30)
        #expect(try stack.pop() == 20)
        #expect(try stack.pop() == nil)
    }

    @Test func fullWithoutOverwriteThrowsAndStoresNothing() throws {
        let queue = try QueueMap<UInt64>(capacity: 1)
        try queue.push(1)
        #expect(throws: MapError.outOfSpace) { try queue.push(2, overwritingOldest: false) }
        #expect(throws: MapError.outOfSpace) {
            try Epoch.withSection { (section) throws(MapError) in try queue.push(2, in: section) }
        }
        #expect(try queue.pop() == 1)
        #expect(try queue.pop() == nil)
    }

    @Test func helperModeAndFreeze() throws {
        let queue = try QueueMap<UInt32>(capacity: 8)
        try queue.push(1)
        try queue.raw.freeze()
        #expect(throws: MapError.permissionDenied) { try queue.push(2) }
        #expect(throws: MapError.permissionDenied) { _ = try queue.pop() }
        #expect(try queue.peek() == 1)
        // Helper mode is unaffected by the freeze.
        try Epoch.withSection { (section) throws(MapError) in
            try queue.push(2, in: section)
            #expect(try queue.peek(in: section) == 1)
            #expect(try queue.pop(in: section) == 1)
            #expect(try queue.pop(in: section) == 2)
            #expect(try queue.pop(in: section) == nil)
        }
    }

    @Test func wrappingChecksTypeAndSize() throws {
        let raw = try MapRegistry.create(MapDefinition(type: .stack, keySize: 0, valueSize: 8, maxEntries: 4)) as! RawQueueStackMap
        let stack = try StackMap<UInt64>(wrapping: raw)
        try withUnsafeBytes(of: UInt64(99)) { try raw.push($0, flags: .any) }
        #expect(try stack.pop() == 99)
        #expect(throws: MapError.invalidArgument) { _ = try QueueMap<UInt64>(wrapping: raw) }   // a stack
        #expect(throws: MapError.invalidArgument) { _ = try StackMap<UInt32>(wrapping: raw) }   // 4 bytes, not 8
        #expect(throws: MapError.invalidArgument) { _ = try QueueMap<UInt64>(capacity: 0) }
        #expect(throws: MapError.invalidArgument) { _ = try StackMap<UInt8>(capacity: 4, name: "no spaces") }
    }

    /// Producers push distinct values through the typed API while consumers pop: every
    /// value comes out exactly once.
    @Test func concurrentTypedProducersAndConsumers() throws {
        let queue = try QueueMap<Sample>(capacity: 16)
        let producers = 2, consumers = 2, perProducer = 10_000
        let total = producers * perProducer
        let seen = UnsafeMutablePointer<Atomic<UInt8>>.allocate(capacity: total)
        for index in 0..<total { (seen + index).initialize(to: Atomic(0)) }
        defer { seen.deinitialize(count: total); seen.deallocate() }
        let seenAddress = UInt(bitPattern: seen)
        let popped = Atomic<Int>(0)
        let failures = Failures()
        let deadline = Deadline(after: .seconds(60))
        runOnThreads(producers + consumers) { thread in
            let seen = UnsafeMutablePointer<Atomic<UInt8>>(bitPattern: seenAddress)!
            if thread < producers {
                var index = 0
                while index < perProducer, !deadline.hasPassed {
                    do {
                        try queue.push(Self.sample(UInt64(thread * perProducer + index)))
                        index += 1
                    } catch {
                        sched_yield()  // full
                    }
                }
                return
            }
            while popped.load(ordering: .relaxed) < total {
                if deadline.hasPassed { return failures.record("values lost: consumers gave up") }
                guard let sample = try? queue.pop() else { sched_yield(); continue }
                guard sample == Self.sample(sample.id), sample.id < UInt64(total) else {
                    return failures.record("torn or foreign \(sample)")
                }
                if (seen + Int(sample.id)).pointee.wrappingAdd(1, ordering: .relaxed).newValue != 1 {
                    failures.record("\(sample.id) popped twice")
                }
                popped.wrappingAdd(1, ordering: .relaxed)
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        #expect(popped.load(ordering: .relaxed) == total)
        #expect(queue.isEmpty)
    }
}
