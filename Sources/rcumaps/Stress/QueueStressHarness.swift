import RCUMaps
import Synchronization

/// What a queue or stack stress run drives: push, pop, peek and count, as
/// `RawQueueStackMap` has them in user mode. A protocol so that tests can hand the checker
/// a queue that misbehaves on purpose.
protocol StressQueue: Sendable {
    /// Most elements the queue holds.
    var capacity: Int { get }
    /// Elements held: a snapshot.
    var count: Int { get }
    /// Pushes `value` (32 bytes). With `overwrite` (`BPF_EXIST`) a full queue first drops
    /// its oldest element into `displaced` and this returns `true`; otherwise a full queue
    /// throws E2BIG.
    func push(_ value: UnsafeRawBufferPointer, overwrite: Bool, displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool
    /// Removes the next element into `value`; ENOENT when empty.
    func pop(into value: UnsafeMutableRawBufferPointer) throws(MapError)
    /// Copies the next element into `value` without removing it; ENOENT when empty.
    func peek(into value: UnsafeMutableRawBufferPointer) throws(MapError)
    /// Helper mode, inside an epoch section, as a BPF program calls them: a push that does
    /// not overwrite (helper mode cannot report what an overwriting push drops, which the
    /// checker needs), a pop and a peek. Default: the user-mode calls (a test's stand-in).
    func pushInSection(_ value: UnsafeRawBufferPointer) throws(MapError)
    func popInSection(into value: UnsafeMutableRawBufferPointer) throws(MapError)
    func peekInSection(into value: UnsafeMutableRawBufferPointer) throws(MapError)
}

extension StressQueue {
    func pushInSection(_ value: UnsafeRawBufferPointer) throws(MapError) {
        let unused = UnsafeMutableRawBufferPointer.allocate(byteCount: value.count, alignment: 8)
        defer { unused.deallocate() }
        _ = try push(value, overwrite: false, displaced: unused)
    }
    func popInSection(into value: UnsafeMutableRawBufferPointer) throws(MapError) { try pop(into: value) }
    func peekInSection(into value: UnsafeMutableRawBufferPointer) throws(MapError) { try peek(into: value) }
}

extension RawQueueStackMap: StressQueue {
    func push(_ value: UnsafeRawBufferPointer, overwrite: Bool,
              displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        try exchange(key: UnsafeRawBufferPointer(start: nil, count: 0), value: value,
                     flags: overwrite ? .exist : .any, into: displaced)
    }
    func pushInSection(_ value: UnsafeRawBufferPointer) throws(MapError) {
        try Epoch.withSection { (section) throws(MapError) in try push(value, flags: .any, in: section) }
    }
    func popInSection(into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try Epoch.withSection { (section) throws(MapError) in try pop(into: value, in: section) }
    }
    func peekInSection(into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try Epoch.withSection { (section) throws(MapError) in try peek(into: value, in: section) }
    }
}

/// One producer's shared record (a worker's, or the prefill's): what the checker needs to
/// know about the values it pushed.
final class QueueStressProducer: Sendable {
    /// One more than the highest sequence number the producer has *tried* to push, stored
    /// before the push: a value read with a sequence at or above it was never pushed.
    let attempted = Atomic<UInt64>(0)
    /// Values the producer pushed: its sequence numbers `0..<pushed` are exactly the values it
    /// stored (a refused push's number is used again). Stored by the producer before each
    /// checkpoint pause and at the end (the pause orders it before the coordinator's reads).
    let pushed = Atomic<Int>(0)
    /// Values the producer removed as a consumer: pops, and elements its overwriting pushes
    /// dropped. Stored as `pushed`.
    let removed = Atomic<Int>(0)
}

/// One queue or stack stress run: the values' encoding, the producers' records, the
/// consumers' logs of what they removed, and the quiescent checks. Shared by the coordinator
/// and every worker.
///
/// Values are 32-byte ``StressWords`` of a ``StressToken`` whose key field is
/// ``QueueStressHarness/marker``, whose writer is the producer (0 the prefill, worker `n` as
/// `n + 1`) and whose version is the producer's sequence number. So every value read can be
/// checked whole (not torn), ours (the marker), and pushed (sequence below the producer's
/// ``QueueStressProducer/attempted``); and the coordinator can account for every value:
/// - at each checkpoint (workers paused): each value the consumers removed since the last
///   is marked in its producer's bitmap — a value marked twice was removed twice; the map is
///   drained, every element checked (whole, ours, not removed before, each producer's values
///   in push order for a queue and in reverse for a stack, each newer than every value of
///   its producer an overwriting push dropped), counted against pushed − removed, and
///   pushed back in its order with `BPF_EXIST`, which must drop nothing;
/// - at the end, the same drain without pushing back, every element marked: each producer's
///   bitmap must then hold exactly its sequence numbers `0..<pushed` — one missing was lost.
final class QueueStressHarness<Queue: StressQueue>: Sendable {
    /// The key field of every token of a queue run (see ``StressToken``).
    static var marker: Int { 0x51_51 }

    let kind: StressMapKind
    let queue: Queue
    let threads: Int
    let seed: UInt64
    let control: StressControl
    let recorder: StressRecorder
    /// Index 0: the prefill; `1...threads`: the workers.
    let producers: [QueueStressProducer]
    /// Values the prefill pushed.
    let prefillCount: Int
    /// Tokens the consumers removed since the coordinator last took them.
    private let deposits = ThreadLock<[UInt64]>([])
    /// The coordinator's: per producer, a bit per sequence number, set once the value was
    /// removed (popped or dropped by an overwriting push, or drained at the end).
    private let removedBits = ThreadLock<[[UInt64]]>([])
    /// Per producer: the newest sequence number an overwriting push of any worker dropped
    /// (-1: none), as the workers handed them over.
    private let newestDropped = ThreadLock<[Int64]>([])

    /// Whether pops come from the oldest end (queue) or the newest (stack).
    var isQueue: Bool { kind == .queue }

    init(kind: StressMapKind, queue: Queue, threads: Int, seed: UInt64, recorder: StressRecorder) {
        self.kind = kind
        self.queue = queue
        self.threads = threads
        self.seed = seed
        self.recorder = recorder
        control = StressControl(threads: threads)
        producers = (0...threads).map { _ in QueueStressProducer() }
        prefillCount = queue.capacity / 2
        removedBits.withLock { $0 = [[UInt64]](repeating: [], count: threads + 1) }
        newestDropped.withLock { $0 = [Int64](repeating: -1, count: threads + 1) }
    }

    // MARK: Values

    /// The token of sequence `sequence` of producer `writer`.
    @inline(__always)
    func token(writer: Int, sequence: UInt64) -> UInt64 {
        StressToken.make(key: Self.marker, writer: writer, version: sequence)
    }

    /// The token of a value read from the queue, if it is one a producer may have pushed;
    /// otherwise records a violation (`what` says where the value came from) and returns nil.
    func check(_ value: UnsafeRawPointer, _ what: @autoclosure () -> String) -> UInt64? {
        guard let token = StressWords.decode(value) else {
            recorder.record(.value, "\(what()): a torn value (its words decode to different tokens)")
            return nil
        }
        let writer = StressToken.writer(token)
        guard StressToken.key(token) == Self.marker, writer <= threads else {
            recorder.record(.value, "\(what()): a foreign value (\(StressToken.describe(token)))")
            return nil
        }
        let attempted = producers[writer].attempted.load(ordering: .acquiring)
        guard StressToken.version(token) < attempted else {
            recorder.record(.value, "\(what()): a value never pushed (\(StressToken.describe(token)); "
                + "producer \(writer) has tried \(attempted) pushes)")
            return nil
        }
        return token
    }

    /// Hands over the tokens a consumer removed and, per producer, the newest sequence number
    /// its overwriting pushes dropped (before a checkpoint pause and at the end).
    func deposit(_ tokens: inout [UInt64], newestDropped dropped: [Int64]) {
        newestDropped.withLock { newest in
            for writer in newest.indices where writer < dropped.count { newest[writer] = max(newest[writer], dropped[writer]) }
        }
        guard !tokens.isEmpty else { return }
        deposits.withLock { $0.append(contentsOf: tokens) }
        tokens.removeAll(keepingCapacity: true)
    }

    // MARK: Prefill and quiescent checks (coordinator, workers paused or stopped)

    /// Pushes half the capacity as producer 0.
    func prefill() {
        withUnsafeTemporaryAllocation(byteCount: 2 * StressWords.valueSize, alignment: 8) { buffer in
            let value = UnsafeRawBufferPointer(rebasing: buffer[0..<StressWords.valueSize])
            let displaced = UnsafeMutableRawBufferPointer(rebasing: buffer[StressWords.valueSize...])
            for sequence in 0..<prefillCount {
                producers[0].attempted.store(UInt64(sequence + 1), ordering: .releasing)
                StressWords.encode(token(writer: 0, sequence: UInt64(sequence)), into: buffer.baseAddress!)
                do throws(MapError) {
                    _ = try queue.push(value, overwrite: false, displaced: displaced)
                } catch {
                    recorder.record(.setup, "prefill push \(sequence) of \(prefillCount) failed: \(error)")
                    return
                }
                producers[0].pushed.store(sequence + 1, ordering: .relaxed)
            }
        }
    }

    /// Marks `token` removed in its producer's bitmap; a violation if it already was.
    private func markRemoved(_ token: UInt64, in bits: inout [[UInt64]], _ what: String) {
        let writer = StressToken.writer(token)
        let sequence = Int(StressToken.version(token))
        let word = sequence >> 6
        if bits[writer].count <= word { bits[writer] += [UInt64](repeating: 0, count: word + 1 - bits[writer].count) }
        let bit: UInt64 = 1 << UInt64(sequence & 63)
        if bits[writer][word] & bit != 0 {
            recorder.record(.duplicate, "\(what): \(StressToken.describe(token)) was removed twice")
        }
        bits[writer][word] |= bit
    }

    /// Whether `token` was marked removed.
    private func wasRemoved(_ token: UInt64, in bits: [[UInt64]]) -> Bool {
        let sequence = Int(StressToken.version(token))
        let words = bits[StressToken.writer(token)]
        return sequence >> 6 < words.count && words[sequence >> 6] & (1 << UInt64(sequence & 63)) != 0
    }

    /// The checks of a quiescent queue (see the type's description): at a checkpoint
    /// (`final` false) the drained elements are pushed back in their order; at the end they
    /// are marked removed and every producer's values must be accounted for.
    func quiescentCheck(_ label: String, final: Bool) {
        let removedTokens = deposits.withLock { tokens in
            defer { tokens.removeAll() }
            return tokens
        }
        let dropped = newestDropped.withLock { $0 }
        removedBits.withLock { bits in
            for token in removedTokens { markRemoved(token, in: &bits, "\(label), removed by a consumer") }
            let expected = producers.reduce(0) { $0 + $1.pushed.load(ordering: .relaxed) - $1.removed.load(ordering: .relaxed) }
            let counted = queue.count
            // Drain, checking each element: at most capacity + 1 pops, so that a queue whose
            // pops remove nothing cannot keep the check going.
            var drained: [UInt64] = []
            var lastSequence = [Int64](repeating: -1, count: threads + 1)
            // Whether a pop found the map empty (ENOENT): then nothing is left in it.
            var emptied = false
            withUnsafeTemporaryAllocation(byteCount: StressWords.valueSize, alignment: 8) { buffer in
                for _ in 0...queue.capacity {
                    do throws(MapError) {
                        try queue.pop(into: buffer)
                    } catch {
                        if error.code != MapError.keyNotFound.code {
                            recorder.record(.errno, "\(label): draining pop failed with unexpected \(error.name)")
                        } else {
                            emptied = true
                        }
                        break
                    }
                    guard let token = check(buffer.baseAddress!, "\(label), element \(drained.count)") else { continue }
                    let writer = StressToken.writer(token)
                    let sequence = Int64(StressToken.version(token))
                    if wasRemoved(token, in: bits) {
                        recorder.record(.duplicate, "\(label): \(StressToken.describe(token)) is still in the map but was removed before")
                    } else if sequence < dropped[writer] {
                        // The map is a ring in push order (pops take its newest end for a
                        // stack, its oldest for a queue; the pushes back below keep the
                        // order), and a producer pushes its values in sequence, so its values
                        // lie in the ring in sequence order; an overwriting push drops the
                        // oldest end, for a stack too. So each value of the producer still in
                        // the map, or pushed by it later, is newer than every one of its
                        // values dropped. A push that dropped another element (a stack's
                        // newest) passed (found by review, 2026-12-06).
                        recorder.record(.order, "\(label): producer \(writer)'s value \(sequence) is still in the map, but an "
                            + "overwriting push dropped its newer value \(dropped[writer]) (a full map drops its oldest element)")
                    }
                    // A queue drains each producer's values oldest first; a stack newest first.
                    if lastSequence[writer] >= 0, isQueue ? sequence <= lastSequence[writer] : sequence >= lastSequence[writer] {
                        recorder.record(.order, "\(label): producer \(writer)'s value \(sequence) drained after its value "
                            + "\(lastSequence[writer]) (\(isQueue ? "a queue gives each producer's values in push order" : "a stack gives them in reverse push order"))")
                    }
                    lastSequence[writer] = sequence
                    drained.append(token)
                }
            }
            if drained.count != expected || counted != expected {
                recorder.record(.count, "\(label): the map holds \(drained.count) values (count said \(counted)); "
                    + "pushed − removed = \(expected)")
            }
            if final {
                for token in drained { markRemoved(token, in: &bits, "\(label), drained") }
                checkEveryValueAccountedFor(bits, label)
                return
            }
            // Back in, so that the map holds what it held: a queue in drain order, a stack reversed.
            // With BPF_EXIST, which may drop an element only from a full map: the drain left
            // the map empty (a pop found nothing) and the workers are paused, so before the
            // push of the n-th value back it holds n - 1 < capacity (a correct map never
            // gives more than capacity), and nothing may be dropped. (The workers' overwriting
            // pushes, into a map that may be full, were the only ones, and what they drop
            // cannot be checked as it happens: one that dropped an element of a map with room
            // passed; found by review, 2026-12-06.)
            withUnsafeTemporaryAllocation(byteCount: 2 * StressWords.valueSize, alignment: 8) { buffer in
                let value = UnsafeRawBufferPointer(rebasing: buffer[0..<StressWords.valueSize])
                let displaced = UnsafeMutableRawBufferPointer(rebasing: buffer[StressWords.valueSize...])
                let order = isQueue ? drained : Array(drained.reversed())
                for (position, token) in order.enumerated() {
                    StressWords.encode(token, into: buffer.baseAddress!)
                    do throws(MapError) {
                        let droppedOne = try queue.push(value, overwrite: true, displaced: displaced)
                        if droppedOne, emptied, position < queue.capacity {
                            recorder.record(.lost, "\(label): pushing drained value \(position + 1) back into the emptied map "
                                + "(capacity \(queue.capacity)) with BPF_EXIST dropped an element of a map with room")
                        }
                    } catch {
                        recorder.record(.errno, "\(label): pushing a drained value back failed with \(error.name)")
                    }
                }
            }
        }
    }

    /// At the end: each producer's bitmap must be exactly its sequence numbers `0..<pushed`.
    private func checkEveryValueAccountedFor(_ bits: [[UInt64]], _ label: String) {
        for (writer, producer) in producers.enumerated() {
            let pushed = producer.pushed.load(ordering: .relaxed)
            var missing = 0
            var firstMissing: Int?
            for sequence in 0..<pushed where !wasRemoved(token(writer: writer, sequence: UInt64(sequence)), in: bits) {
                missing += 1
                if firstMissing == nil { firstMissing = sequence }
            }
            if let firstMissing {
                recorder.record(.lost, "\(label): \(missing) of producer \(writer)'s \(pushed) values were neither popped, "
                    + "dropped by an overwriting push nor left in the map (first: value \(firstMissing))")
            }
            let marked = bits[writer].reduce(0) { $0 + $1.nonzeroBitCount }
            if marked != pushed - missing {
                recorder.record(.value, "\(label): producer \(writer) pushed \(pushed) values but \(marked - (pushed - missing)) "
                    + "more were removed (values it never pushed)")
            }
        }
    }

    /// Pushed, removed and left, summed over the producers (for the report).
    var totals: (pushed: Int, removed: Int) {
        producers.reduce((0, 0)) { ($0.0 + $1.pushed.load(ordering: .relaxed), $0.1 + $1.removed.load(ordering: .relaxed)) }
    }
}
