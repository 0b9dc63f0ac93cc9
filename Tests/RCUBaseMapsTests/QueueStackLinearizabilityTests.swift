import RCUMaps
import RCUMapsTestSupport
import Testing

/// Concurrent histories of QUEUE and STACK, checked for linearizability against a
/// sequential queue or stack of the same capacity (`RCUMapsTestSupport/Linearizability.swift`):
/// three threads push (with and without `BPF_EXIST`), pop and peek, in both modes, on a map
/// of four elements, so that it is often empty and often full — the states whose answers
/// (ENOENT, E2BIG) are decided without the lock, from one load of head and tail.
/// `RCUMAPS_LONG_TESTS=<seconds>` runs longer.
@Suite("QUEUE and STACK: linearizable histories")
struct QueueStackLinearizabilityTests {
    enum Operation: Sendable, Hashable, CustomStringConvertible {
        case push(UInt64, overwritingOldest: Bool), pop, peek
        var description: String {
            switch self {
            case .push(let value, let overwriting): "push(0x\(String(value, radix: 16))\(overwriting ? ", EXIST" : ""))"
            case .pop: "pop"
            case .peek: "peek"
            }
        }
    }

    typealias Event = ObjectEvent<Operation, KeyOutcome>

    /// The sequential map: `elements` oldest first; what `operation` answers, and the elements after.
    static func apply(_ operation: Operation, to elements: [UInt64], stack: Bool, capacity: Int)
        -> (KeyOutcome, [UInt64])
    {
        var elements = elements
        switch operation {
        case .push(let value, let overwriting):
            if elements.count == capacity {
                guard overwriting else { return (.refused, elements) }
                elements.removeFirst()  // the oldest, for a stack too (Linux's shared push)
            }
            elements.append(value)
            return (.done, elements)
        case .pop:
            guard let value = stack ? elements.popLast() : (elements.isEmpty ? nil : elements.removeFirst()) else {
                return (.value(nil), elements)
            }
            return (.value(value), elements)
        case .peek:
            return (.value(stack ? elements.last : elements.first), elements)
        }
    }

    @Test(arguments: [MapType.queue, .stack])
    func historiesAreLinearizable(_ type: MapType) throws {
        let capacity = 4
        let map = try #require(try MapRegistry.create(MapDefinition(type: type, keySize: 0, valueSize: 8,
                                                                    maxEntries: capacity, poolTag: uniqueTag()))
            as? RawQueueStackMap)
        let stack = type == .stack
        let workload = LinearizabilityWorkload.scaled
        let clock = HistoryClock()
        let recorded = ThreadLock<[[Event]]>(Array(repeating: [], count: workload.threads))
        let failures = Failures()
        for round in 1...5 {
            // Each round starts empty.
            var out: UInt64 = 0
            while (try? withUnsafeMutableBytes(of: &out) { try map.pop(into: $0) }) != nil {}
            recorded.withLock { $0 = Array(repeating: [], count: workload.threads) }
            runOnThreads(workload.threads) { thread in
                var random = XorShift(seed: UInt64(round) &* 0x9E37_79B9 &+ UInt64(thread + 1))
                var events: [Event] = []
                events.reserveCapacity(workload.operationsPerThread)
                for count in 0..<workload.operationsPerThread {
                    let word = (UInt64(thread + 1) << 56) | (UInt64(round) << 32) | UInt64(count + 1)
                    let roll = random.next() % 100
                    let helper = random.next() % 4 == 0
                    let operation: Operation = switch roll {
                    case 0..<35: .push(word, overwritingOldest: false)
                    case 35..<50: .push(word, overwritingOldest: true)
                    case 50..<85: .pop
                    default: .peek
                    }
                    let called = clock.stamp()
                    var outcome: KeyOutcome
                    do throws(MapError) {
                        switch operation {
                        case .push(let value, let overwriting):
                            let flags: MapUpdateFlags = overwriting ? .exist : .any
                            try withUnsafeBytes(of: value) { (bytes) throws(MapError) in
                                if helper {
                                    try Epoch.withSection { (section) throws(MapError) in try map.push(bytes, flags: flags, in: section) }
                                } else {
                                    try map.push(bytes, flags: flags)
                                }
                            }
                            outcome = .done
                        case .pop, .peek:
                            var value: UInt64 = 0
                            try withUnsafeMutableBytes(of: &value) { (bytes) throws(MapError) in
                                switch (operation, helper) {
                                case (.pop, false): try map.pop(into: bytes)
                                case (.pop, true): try Epoch.withSection { (section) throws(MapError) in try map.pop(into: bytes, in: section) }
                                case (_, false): try map.peek(into: bytes)
                                case (_, true): try Epoch.withSection { (section) throws(MapError) in try map.peek(into: bytes, in: section) }
                                }
                            }
                            outcome = .value(value)
                        }
                    } catch .keyNotFound where operation == .pop || operation == .peek {
                        outcome = .value(nil)
                    } catch .outOfSpace where operation == .push(word, overwritingOldest: false) {
                        outcome = .refused
                    } catch {
                        failures.record("thread \(thread): \(operation) threw \(error)")
                        outcome = .refused
                    }
                    let returned = clock.stamp()
                    events.append(Event(thread: thread, object: 0, operation: operation, outcome: outcome, called: called,
                                        returned: returned))
                }
                recorded.withLock { $0[thread] = events }
            }
            #expect(failures.all.isEmpty, "\(failures.all.joined(separator: "\n"))")
            let histories = recorded.withLock { $0 }
            let deadEnd = searchLinearization(
                histories, initial: [UInt64](), called: \.called, returned: \.returned,
                apply: { event, elements in
                    let (outcome, next) = Self.apply(event.operation, to: elements, stack: stack, capacity: capacity)
                    return outcome == event.outcome ? next : nil
                })
            if let deadEnd {
                let stuck = histories.indices.compactMap {
                    deadEnd.cursors[$0] < histories[$0].count ? histories[$0][deadEnd.cursors[$0]].description : nil
                }
                Issue.record("""
                    round \(round): not linearizable after \(deadEnd.cursors.reduce(0, +)) operations, the \
                    \(stack ? "stack" : "queue") holding \(deadEnd.state.map { String($0, radix: 16) }); \
                    no thread's next operation fits:
                    \(stuck.joined(separator: "\n"))
                    """)
            }
        }
    }
}
