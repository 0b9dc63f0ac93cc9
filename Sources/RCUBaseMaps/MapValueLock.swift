import CRCUMapsShim
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The lock word inside a map value: the userspace counterpart of a `struct bpf_spin_lock`
/// field, at ``MapDefinition/lockOffset``.
///
/// User-mode operations with `BPF_F_LOCK` hold it while they copy the value in or out;
/// helper-mode code takes it around its own in-place accesses, as an eBPF program calls
/// `bpf_spin_lock` / `bpf_spin_unlock`:
///
/// ```swift
/// try Epoch.withSection { section in
///     let value = try map.lookupInPlace(key: key, in: section)
///     MapValueLock.withLock(value, offset: map.definition.lockOffset!) {
///         value.storeBytes(of: value.load(fromByteOffset: 8, as: UInt64.self) + 1, toByteOffset: 8, as: UInt64.self)
///     }
/// }
/// ```
///
/// A spin lock: 0 free, 1 held. It spins with a CPU pause and yields the thread after a
/// while (a holder may have been preempted). Keep what it guards short, and never wait for
/// a grace period or call into a map while holding it: a map's own operations on that
/// value take this lock (user-mode `BPF_F_LOCK` ones, on both hashes every exchange and
/// lookup-and-delete of a value with a lock word, and on ARRAY every exchange of one), and
/// would wait for it
/// forever — as an eBPF program may call no helper while it holds a `bpf_spin_lock`.
///
/// Concurrency: any thread; not reentrant.
public enum MapValueLock {
    /// Runs `body` with the lock word at `offset` in `value` held.
    ///
    /// - Precondition: `offset` is a multiple of 4 and the word lies inside `value`
    ///   (checked, with a message).
    @inlinable
    public static func withLock<Result, Failure: Error>(
        _ value: UnsafeMutableRawBufferPointer, offset: Int, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        // (`offset <= count - 4`, not `offset + 4 <= count`: the sum overflowed, and stopped the
        // program without this message, for an offset within 4 of `Int.max`.)
        _rcumapsPrecondition(offset >= 0 && offset % 4 == 0 && offset <= value.count - 4 && value.baseAddress != nil,
                             "MapValueLock: no 4-byte lock word at offset \(offset) of a \(value.count)-byte value")
        let word = (value.baseAddress! + offset).assumingMemoryBound(to: Atomic<UInt32>.self)
        lock(word)
        defer { word.pointee.store(0, ordering: .releasing) }
        return try body()
    }

    /// Takes the lock word at `word`.
    @inlinable @inline(__always)
    static func lock(_ word: UnsafeMutablePointer<Atomic<UInt32>>) {
        if word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { return }
        lockContended(word)
    }

    @usableFromInline @inline(never)
    static func lockContended(_ word: UnsafeMutablePointer<Atomic<UInt32>>) {
        var spins = 0
        while true {
            if word.pointee.load(ordering: .relaxed) == 0,
               word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { return }
            spins += 1
            if spins & 63 == 0 { sched_yield() } else { rcumaps_cpu_relax() }
        }
    }
}

/// How a map copies values that hold a lock word: never the lock word itself.
///
/// Linux's `copy_map_value` copies every byte but the special fields, and a lookup's output
/// shows them as zero (`check_and_init_map_value`). Maps without a lock word use none of
/// this (their `lockOffset` is -1).
@usableFromInline
struct LockWordCopy: Sendable {
    /// Offset of the lock word in the value, or -1.
    @usableFromInline let offset: Int
    let valueSize: Int

    init(_ definition: MapDefinition) {
        offset = definition.lockOffset ?? -1
        valueSize = definition.valueSize
    }

    @inlinable var exists: Bool { offset >= 0 }

    /// Zeroes the lock word in a copy handed to a user, or in a new element's stored value
    /// (a new element's lock word starts free, whatever the caller's bytes held there).
    @inlinable @inline(__always)
    func clear(in value: UnsafeMutableRawPointer) {
        if _slowPath(offset >= 0) { value.storeBytes(of: 0 as UInt32, toByteOffset: offset, as: UInt32.self) }
    }

    /// Copies `source` over the stored value `destination` except for its lock word.
    func copy(_ source: UnsafeRawPointer, over destination: UnsafeMutableRawPointer) {
        destination.copyMemory(from: source, byteCount: offset)
        let tail = offset + 4
        if tail < valueSize { (destination + tail).copyMemory(from: source + tail, byteCount: valueSize - tail) }
    }

    /// Copies `source` out to `destination` with the stored value's lock held, and clears
    /// the lock word in the copy (user-mode `BPF_F_LOCK` lookups).
    func copyLocked(_ source: UnsafeMutableRawPointer, to destination: UnsafeMutableRawPointer) {
        MapValueLock.withLock(UnsafeMutableRawBufferPointer(start: source, count: valueSize), offset: offset) {
            destination.copyMemory(from: source, byteCount: valueSize)
        }
        clear(in: destination)
    }

    /// Writes `source` into the stored value `destination`, in place, with its lock held,
    /// leaving the lock word alone (user-mode `BPF_F_LOCK` updates of an existing element).
    func writeLocked(_ source: UnsafeRawPointer, into destination: UnsafeMutableRawPointer) {
        MapValueLock.withLock(UnsafeMutableRawBufferPointer(start: destination, count: valueSize), offset: offset) {
            copy(source, over: destination)
        }
    }

    /// The bits of a one-word value (at most 8 bytes) that belong to the lock word.
    @inlinable @inline(__always)  // (called, not inlined, in the bucket hash's update)
    var lockBits: UInt64 { offset >= 0 ? UInt64(UInt32.max) << UInt64(8 * offset) : 0 }
}
