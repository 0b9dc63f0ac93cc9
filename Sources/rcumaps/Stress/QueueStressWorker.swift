import RCUMaps

/// What the workers of a queue or stack run did, by operation and outcome.
struct QueueStressStats: Sendable, Equatable {
    var operations = 0
    var pushes = 0
    var pushesStored = 0
    /// Pushes refused with E2BIG (a full map, without `BPF_EXIST`).
    var pushesFull = 0
    /// Pushes with `BPF_EXIST`, and how many of them dropped the oldest element.
    var overwritingPushes = 0
    var overwrites = 0
    var pops = 0
    var popsFound = 0
    var peeks = 0
    var peeksFound = 0
    var countChecks = 0
    /// Pushes, pops and peeks made in helper mode (inside an epoch section), of the above.
    var helperPushes = 0
    var helperPops = 0
    var helperPeeks = 0

    static func + (lhs: QueueStressStats, rhs: QueueStressStats) -> QueueStressStats {
        var sum = lhs
        sum.operations += rhs.operations
        sum.pushes += rhs.pushes
        sum.pushesStored += rhs.pushesStored
        sum.pushesFull += rhs.pushesFull
        sum.overwritingPushes += rhs.overwritingPushes
        sum.overwrites += rhs.overwrites
        sum.pops += rhs.pops
        sum.popsFound += rhs.popsFound
        sum.peeks += rhs.peeks
        sum.peeksFound += rhs.peeksFound
        sum.helperPushes += rhs.helperPushes
        sum.helperPops += rhs.helperPops
        sum.helperPeeks += rhs.helperPeeks
        sum.countChecks += rhs.countChecks
        return sum
    }
}

/// One worker thread of a queue or stack run: a producer and a consumer at once.
///
/// Every 16 batches it picks how much it pushes (a quarter, half or three quarters of its
/// operations), so that the map swings between empty and full. It pushes its own values in
/// sequence (1 in 16 pushes with `BPF_EXIST`, overwriting the oldest element of a full map),
/// pops, peeks, and reads the count. It checks every value it pops, peeks or sees dropped
/// (``QueueStressHarness/check(_:_:)``); for a queue, that each producer's values come in
/// push order (popped, dropped or peeked: FIFO removes in that order); that count stays
/// within `0...capacity`; and that each operation fails only with the errno it may return
/// (push E2BIG, pop and peek ENOENT).
final class QueueStressWorker<Queue: StressQueue> {
    let harness: QueueStressHarness<Queue>
    let queue: Queue
    let index: Int
    let writer: Int
    let producer: QueueStressProducer
    var random: XorShiftRandom
    var stats = QueueStressStats()
    /// The next sequence number to push.
    var sequence: UInt64 = 0
    var removed = 0
    /// Tokens removed since the last deposit.
    var log: [UInt64] = []
    /// Per producer: the last sequence number this worker removed (queue order check).
    var lastRemoved: [Int64]
    /// Per producer: the newest sequence number this worker's overwriting pushes dropped
    /// (-1: none), for the drains' check (``QueueStressHarness/quiescentCheck(_:final:)``).
    var newestDropped: [Int64]
    /// Pushes out of 256 in the current stretch of batches.
    var pushShare = 128
    let valueBuffer: UnsafeMutableRawBufferPointer
    let readBuffer: UnsafeMutableRawBufferPointer

    init(harness: QueueStressHarness<Queue>, index: Int) {
        self.harness = harness
        queue = harness.queue
        self.index = index
        writer = index + 1
        producer = harness.producers[index + 1]
        random = XorShiftRandom(seed: harness.seed, stream: index)
        lastRemoved = [Int64](repeating: -1, count: harness.threads + 1)
        newestDropped = [Int64](repeating: -1, count: harness.threads + 1)
        valueBuffer = .allocate(byteCount: StressWords.valueSize, alignment: 8)
        readBuffer = .allocate(byteCount: StressWords.valueSize, alignment: 8)
    }

    deinit {
        valueBuffer.deallocate()
        readBuffer.deallocate()
    }

    func run() {
        let control = harness.control
        control.arriveAndWait()
        var generation = 0
        var batches = 0
        while !control.shouldStop {
            let requested = control.requestedPause
            if requested != generation {
                generation = requested
                publish()
                control.pause(generation: generation)
                continue
            }
            if batches & 15 == 0 { pushShare = [64, 128, 192][random.below(3)] }
            batches += 1
            for _ in 0..<stressBatch { step() }
            stats.operations &+= stressBatch
            control.addOperations(stressBatch)
        }
        publish()
        control.finish()
    }

    /// Makes this worker's counts and removed values visible to the coordinator's check.
    func publish() {
        producer.pushed.store(Int(sequence), ordering: .relaxed)
        producer.removed.store(removed, ordering: .relaxed)
        harness.deposit(&log, newestDropped: newestDropped)
    }

    @inline(__always)
    func step() {
        let bits = random.next()
        let choice = Int(truncatingIfNeeded: bits & 0xFF)
        // A quarter of the pushes that do not overwrite, pops and peeks in helper mode.
        let helper = (bits >> 12) & 3 == 0
        if choice < 12 {
            peek(helper: helper)
        } else if choice < 14 {
            stats.countChecks += 1
            let count = queue.count
            if count < 0 || count > queue.capacity {
                violation(.count, "count \(count) outside 0...\(queue.capacity)")
            }
        } else if choice < 14 + pushShare * 242 / 256 {
            push(overwrite: (bits >> 8) & 15 == 0, helper: helper)
        } else {
            pop(helper: helper)
        }
    }

    func push(overwrite: Bool, helper: Bool = false) {
        stats.pushes += 1
        if overwrite { stats.overwritingPushes += 1 }
        // Announced before the push: a reader may see the value before the push returns.
        producer.attempted.store(sequence + 1, ordering: .releasing)
        StressWords.encode(harness.token(writer: writer, sequence: sequence), into: valueBuffer.baseAddress!)
        do throws(MapError) {
            let dropped: Bool
            if helper, !overwrite {
                stats.helperPushes += 1
                try queue.pushInSection(UnsafeRawBufferPointer(valueBuffer))
                dropped = false
            } else {
                dropped = try queue.push(UnsafeRawBufferPointer(valueBuffer), overwrite: overwrite, displaced: readBuffer)
            }
            stats.pushesStored += 1
            sequence += 1
            if dropped {
                stats.overwrites += 1
                if let token = removedValue(in: "dropped by an overwriting push") {
                    let source = StressToken.writer(token)
                    newestDropped[source] = max(newestDropped[source], Int64(StressToken.version(token)))
                }
            }
        } catch {
            if error.code == MapError.outOfSpace.code, !overwrite {
                stats.pushesFull += 1  // the sequence number is used again
            } else {
                violation(.errno, "\(overwrite ? "overwriting push" : "push") failed with unexpected \(error.name)")
            }
        }
    }

    func pop(helper: Bool = false) {
        stats.pops += 1
        if helper { stats.helperPops += 1 }
        do throws(MapError) {
            if helper { try queue.popInSection(into: readBuffer) } else { try queue.pop(into: readBuffer) }
            stats.popsFound += 1
            removedValue(in: "popped")
        } catch {
            if error.code != MapError.keyNotFound.code { violation(.errno, "pop failed with unexpected \(error.name)") }
        }
    }

    func peek(helper: Bool = false) {
        stats.peeks += 1
        if helper { stats.helperPeeks += 1 }
        do throws(MapError) {
            if helper { try queue.peekInSection(into: readBuffer) } else { try queue.peek(into: readBuffer) }
            stats.peeksFound += 1
            guard let token = harness.check(readBuffer.baseAddress!, "worker \(index): peeked") else { return }
            // A queue's next element is younger than anything of its producer removed before.
            let producer = StressToken.writer(token)
            let sequence = Int64(StressToken.version(token))
            if harness.isQueue, sequence <= lastRemoved[producer] {
                violation(.order, "peeked producer \(producer)'s value \(sequence) after removing its value \(lastRemoved[producer])")
            }
        } catch {
            if error.code != MapError.keyNotFound.code { violation(.errno, "peek failed with unexpected \(error.name)") }
        }
    }

    /// Checks the value just removed (in `readBuffer`) and logs it; returns its token (nil:
    /// not a value of the run, recorded).
    @discardableResult
    func removedValue(in what: String) -> UInt64? {
        removed += 1
        guard let token = harness.check(readBuffer.baseAddress!, "worker \(index): \(what)") else { return nil }
        let producer = StressToken.writer(token)
        let sequence = Int64(StressToken.version(token))
        if harness.isQueue, sequence <= lastRemoved[producer] {
            violation(.order, "\(what) producer \(producer)'s value \(sequence) after its value \(lastRemoved[producer]) "
                + "(a queue removes each producer's values in push order)")
        }
        lastRemoved[producer] = max(lastRemoved[producer], sequence)
        log.append(token)
        return token
    }

    func violation(_ category: StressViolation, _ message: @autoclosure () -> String) {
        harness.recorder.record(category, "worker \(index) op \(stats.operations): \(message())")
    }

    var report: QueueStressStats { stats }
}
