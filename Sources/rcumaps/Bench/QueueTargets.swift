import CRCUMapsBaselines
import DequeModule
import RCUMaps
import Synchronization

// The `push-pop` workload's targets (``Workload/pushPop``): our QUEUE and STACK maps and
// their baselines, each prefilled with `entries` values so that a pop never finds them
// empty. Lookups and updates are never called on them (``MapKind/supports(_:)``).

/// A QUEUE or STACK map definition for the benchmark: 8-byte values, room for the
/// prefilled `entries` and as many more (at least ``BenchOptions/maxThreads``): a worker
/// pushes one value and then pops one, so at most one value per thread is added to the
/// prefill and no push is ever refused for want of room.
func queueStackDefinition(_ kind: RawQueueStackMap.Kind, entries: Int) -> MapDefinition {
    MapDefinition(type: kind == .queue ? .queue : .stack, keySize: 0, valueSize: 8,
                  maxEntries: entries + max(entries, BenchOptions.maxThreads), name: "bench")
}

/// `queue`, `stack`: a `RawQueueStackMap` in user mode, `push(_:flags: .any)` and
/// `pop(into:)` of one `UInt64` (each a copy under the map's lock).
struct QueueStackTarget: BenchTarget {
    let map: RawQueueStackMap
    let entries: Int

    /// A new map of `kind` (``queueStackDefinition(_:entries:)``) holding `entries` values.
    init(_ kind: RawQueueStackMap.Kind, entries: Int) throws(MapError) {
        map = try RawQueueStackMap(queueStackDefinition(kind, entries: entries))
        self.entries = entries
        for index in 0..<entries {
            guard push(BenchKeys.initialValue(index)) else {
                throw MapError.invalidArgument.with(reason: "could not prefill value \(index) of \(entries)")
            }
        }
    }

    func lookup(index: Int) -> UInt64? { nil }
    func update(index: Int, value: UInt64) -> Bool { false }

    @inline(__always)
    func push(_ value: UInt64) -> Bool {
        var value = value
        return withUnsafeBytes(of: &value) { value in (try? map.push(value, flags: .any)) != nil }
    }

    @inline(__always)
    func pop() -> UInt64? {
        var value: UInt64 = 0
        let popped = withUnsafeMutableBytes(of: &value) { value in (try? map.pop(into: value)) != nil }
        return popped ? value : nil
    }
}

/// Baseline `c-wfcqueue`: liburcu's wfcqueue driven from C (a malloc'd node per push,
/// wait-free enqueue; dequeue under the queue's mutex, the node freed at once).
final class CWfcqueueTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: wfcqueue is safe for concurrent enqueuers and (with its dequeue
    // mutex, which the pop takes) concurrent dequeuers.
    let queue: UnsafeMutablePointer<rcumaps_baseline_wfcq_t>
    let entries: Int

    init(entries: Int) throws(MapError) {
        guard let queue = rcumaps_baseline_wfcq_create() else { throw MapError.noMemory }
        self.queue = queue
        self.entries = entries
        for index in 0..<entries where !push(BenchKeys.initialValue(index)) { throw MapError.noMemory }
    }

    deinit { rcumaps_baseline_wfcq_destroy(queue) }

    func lookup(index: Int) -> UInt64? { nil }
    func update(index: Int, value: UInt64) -> Bool { false }

    @inline(__always)
    func push(_ value: UInt64) -> Bool { rcumaps_baseline_wfcq_push(queue, value) == 0 }

    @inline(__always)
    func pop() -> UInt64? {
        var value: UInt64 = 0
        return rcumaps_baseline_wfcq_pop(queue, &value) != 0 ? value : nil
    }
}

/// Baseline `c-lfstack`: liburcu's lfstack driven from C (a malloc'd node per push,
/// lock-free push; pop under the stack's mutex, the node freed at once).
final class CLfstackTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: lfstack is safe for concurrent pushers, and (with its pop mutex,
    // which the pop takes) concurrent poppers.
    let stack: UnsafeMutablePointer<rcumaps_baseline_lfs_t>
    let entries: Int

    init(entries: Int) throws(MapError) {
        guard let stack = rcumaps_baseline_lfs_create() else { throw MapError.noMemory }
        self.stack = stack
        self.entries = entries
        for index in 0..<entries where !push(BenchKeys.initialValue(index)) { throw MapError.noMemory }
    }

    deinit { rcumaps_baseline_lfs_destroy(stack) }

    func lookup(index: Int) -> UInt64? { nil }
    func update(index: Int, value: UInt64) -> Bool { false }

    @inline(__always)
    func push(_ value: UInt64) -> Bool { rcumaps_baseline_lfs_push(stack, value) == 0 }

    @inline(__always)
    func pop() -> UInt64? {
        var value: UInt64 = 0
        return rcumaps_baseline_lfs_pop(stack, &value) != 0 ? value : nil
    }
}

/// Baseline `mutex-deque`: a swift-collections `Deque<UInt64>` behind a
/// `Synchronization.Mutex`, used as a queue (`append`, `popFirst`): what a Swift user
/// reaches for first. Against both `queue` and `stack` (a deque's two ends cost the same).
final class MutexDequeTarget: BenchTarget, Sendable {
    let deque: Mutex<Deque<UInt64>>
    let entries: Int

    init(entries: Int) {
        var deque = Deque<UInt64>(minimumCapacity: entries + max(entries, BenchOptions.maxThreads))
        for index in 0..<entries { deque.append(BenchKeys.initialValue(index)) }
        self.deque = Mutex(deque)
        self.entries = entries
    }

    func lookup(index: Int) -> UInt64? { nil }
    func update(index: Int, value: UInt64) -> Bool { false }

    @inline(__always)
    func push(_ value: UInt64) -> Bool {
        deque.withLock { $0.append(value) }
        return true
    }

    @inline(__always)
    func pop() -> UInt64? { deque.withLock { $0.popFirst() } }
}
