import CRCUMapsShim
import RCUMaps
import Synchronization

// The `increment` workload's targets (``Workload/increment``): a PERCPU_ARRAY's counters,
// incremented in helper mode, and the floor under them, a counter array each thread owns.

/// `percpu-array`: a `PerCPUArrayMap<UInt64>` of `entries` counters; an operation adds 1 to
/// the calling CPU's counter at the index with `add(_:at:)`, as an eBPF program's
/// `*bpf_map_lookup_elem(...) += 1`: the CPU number and a plain add in one restartable
/// sequence (an atomic add where rseq is unavailable, as under valgrind), no epoch section.
struct PerCPUCounterTarget: BenchTarget {
    let map: PerCPUArrayMap<UInt64>
    let entries: Int

    init(entries: Int) throws(MapError) {
        map = try PerCPUArrayMap(count: entries, name: "bench")
        self.entries = entries
    }

    func lookup(index: Int) -> UInt64? { nil }
    func update(index: Int, value: UInt64) -> Bool { false }

    @inline(__always)
    func increment(index: Int) -> Bool {
        map.add(1, at: UInt32(truncatingIfNeeded: index))
    }
}

/// `percpu-hash`: a `PerCPUHashMap<UInt64, UInt64>` holding keys `0..<entries`; an
/// operation adds 1 to the calling CPU's value of the key at the index with
/// `add(_:forKey:)`: one epoch section, a hash lookup of the entry, and the CPU's value
/// found and added to in one restartable sequence (an atomic add where rseq is unavailable).
struct PerCPUHashCounterTarget: BenchTarget {
    let map: PerCPUHashMap<UInt64, UInt64>
    let entries: Int

    init(entries: Int) throws(MapError) {
        map = try PerCPUHashMap(maxEntries: entries, name: "bench")
        for key in 0..<UInt64(entries) { try map.setValue(0, forKey: key) }
        self.entries = entries
    }

    func lookup(index: Int) -> UInt64? { nil }
    func update(index: Int, value: UInt64) -> Bool { false }

    @inline(__always)
    func increment(index: Int) -> Bool {
        map.add(1, forKey: UInt64(truncatingIfNeeded: index))
    }
}

/// `thread-local`: what a counter costs with no sharing at all: each thread increments its
/// own array of `entries` counters with a plain load and store — no atomic read-modify-write,
/// no section. A thread finds its array by its stripe number (`rcumaps_thread_stripe`, given
/// to threads in turn), modulo ``arrayCount``. The arrays belong to the workers' random
/// streams: ``forWorker(stream:)`` (on the worker thread, before the cell starts) makes the
/// stream's array once and points the thread's stripe slot at it, so the timed threads reuse
/// the arrays of the warm-up's threads of the same streams (each stripe had its own array
/// before: twice the memory, found by review, 2026-12-05) and no array is made or zeroed
/// inside the timed window (found by review, 2026-12-05).
final class ThreadLocalCounterTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: an array is written only by the threads whose stripe slot points
    // at it: one per cell while a cell runs at most `arrayCount` threads at a time (threads
    // are numbered consecutively, streams too); the slots that hold the arrays are atomics.
    let entries: Int
    /// Arrays, at most: a cell of more threads shares some (and its counts race).
    static let arrayCount = 64
    /// `arrayCount` words per table: 0, or the address of an array (cache-aligned). The
    /// streams' arrays, and the stripes' slots (each pointing at its thread's stream's array).
    private let streamArrays: UnsafeMutablePointer<Atomic<UInt>>
    private let arrays: UnsafeMutablePointer<Atomic<UInt>>

    init(entries: Int) {
        self.entries = entries
        streamArrays = .allocate(capacity: Self.arrayCount)
        arrays = .allocate(capacity: Self.arrayCount)
        for index in 0..<Self.arrayCount {
            (streamArrays + index).initialize(to: Atomic(0))
            (arrays + index).initialize(to: Atomic(0))
        }
    }

    deinit {
        // An array is in the stream table, and perhaps in stripe slots too (or only in a
        // slot, when a thread incremented without `forWorker`): each freed once.
        var owned = Set<UInt>()
        for index in 0..<Self.arrayCount {
            owned.insert(streamArrays[index].load(ordering: .acquiring))
            owned.insert(arrays[index].load(ordering: .acquiring))
        }
        for address in owned { UnsafeMutableRawPointer(bitPattern: address)?.deallocate() }
        streamArrays.deinitialize(count: Self.arrayCount)
        streamArrays.deallocate()
        arrays.deinitialize(count: Self.arrayCount)
        arrays.deallocate()
    }

    /// The arrays this target has made (tests).
    var arraysMade: Int {
        var owned = Set<UInt>()
        for index in 0..<Self.arrayCount {
            owned.insert(streamArrays[index].load(ordering: .acquiring))
            owned.insert(arrays[index].load(ordering: .acquiring))
        }
        owned.remove(0)
        return owned.count
    }

    func lookup(index: Int) -> UInt64? { nil }
    func update(index: Int, value: UInt64) -> Bool { false }

    /// Points the calling worker thread's stripe slot at its stream's array (made on the
    /// stream's first worker) before the cell starts.
    func forWorker(stream: Int) -> Self {
        let streamSlot = streamArrays + stream % Self.arrayCount
        let array = UnsafeMutablePointer<UInt64>(bitPattern: streamSlot.pointee.load(ordering: .acquiring))
            ?? makeArray(streamSlot)
        (arrays + Int(rcumaps_thread_stripe()) % Self.arrayCount).pointee
            .store(UInt(bitPattern: array), ordering: .releasing)
        return self
    }

    @inline(__always)
    func increment(index: Int) -> Bool {
        let slot = arrays + Int(rcumaps_thread_stripe()) % Self.arrayCount
        let array = UnsafeMutablePointer<UInt64>(bitPattern: slot.pointee.load(ordering: .acquiring)) ?? makeArray(slot)
        array[index] &+= 1
        return true
    }

    /// An array made and installed in `slot` (a stream's, or a stripe's on an increment
    /// without ``forWorker(stream:)``), or the one another thread installed first.
    @inline(never)
    private func makeArray(_ slot: UnsafeMutablePointer<Atomic<UInt>>) -> UnsafeMutablePointer<UInt64> {
        let array = UnsafeMutableRawPointer.allocate(byteCount: entries * 8, alignment: 64)
        let counters = array.initializeMemory(as: UInt64.self, repeating: 0, count: entries)
        let (installed, current) = slot.pointee.compareExchange(expected: 0, desired: UInt(bitPattern: counters),
                                                                ordering: .acquiringAndReleasing)
        if installed { return counters }
        array.deallocate()
        return UnsafeMutablePointer(bitPattern: current)!
    }
}
