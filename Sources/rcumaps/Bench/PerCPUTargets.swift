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
/// to threads in turn), modulo ``arrayCount``; the array is made before the cell starts
/// (``forWorker(stream:)``, on the worker thread), not on its first timed increment (found by
/// review, 2026-12-05: each measured thread allocated and zeroed `entries × 8` bytes inside
/// the timed window).
final class ThreadLocalCounterTarget: BenchTarget, @unchecked Sendable {
    // @unchecked Sendable: an array is written only by the threads whose stripe number picks
    // it: one per cell while a cell runs at most `arrayCount` threads at a time (threads are
    // numbered consecutively); the slots that hold the arrays are atomics.
    let entries: Int
    /// Arrays, at most: a cell of more threads shares some (and its counts race).
    static let arrayCount = 64
    /// `arrayCount` words: 0, or the address of a thread's array (cache-aligned).
    private let arrays: UnsafeMutablePointer<Atomic<UInt>>

    init(entries: Int) {
        self.entries = entries
        arrays = .allocate(capacity: Self.arrayCount)
        for index in 0..<Self.arrayCount { (arrays + index).initialize(to: Atomic(0)) }
    }

    deinit {
        for index in 0..<Self.arrayCount {
            UnsafeMutableRawPointer(bitPattern: arrays[index].load(ordering: .acquiring))?.deallocate()
        }
        arrays.deinitialize(count: Self.arrayCount)
        arrays.deallocate()
    }

    func lookup(index: Int) -> UInt64? { nil }
    func update(index: Int, value: UInt64) -> Bool { false }

    /// Makes the calling worker thread's array before the cell starts.
    func forWorker(stream: Int) -> Self {
        let slot = arrays + Int(rcumaps_thread_stripe()) % Self.arrayCount
        if slot.pointee.load(ordering: .acquiring) == 0 { _ = makeArray(slot) }
        return self
    }

    @inline(__always)
    func increment(index: Int) -> Bool {
        let slot = arrays + Int(rcumaps_thread_stripe()) % Self.arrayCount
        let array = UnsafeMutablePointer<UInt64>(bitPattern: slot.pointee.load(ordering: .acquiring)) ?? makeArray(slot)
        array[index] &+= 1
        return true
    }

    /// The calling thread's array, made and installed on first use.
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
