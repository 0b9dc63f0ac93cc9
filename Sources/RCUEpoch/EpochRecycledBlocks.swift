import CRCUMapsShim
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Blocks of one ``EpochRetireList`` whose grace period is over, kept for the list's next
/// allocations instead of going back to the allocator.
///
/// Why: a retired block is freed on the reclamation thread and the next one allocated on a
/// writer thread, so glibc's per-thread cache never has one: each allocation took
/// `_int_malloc`'s slow path and its arena lock (about 130 instructions for a lock-free hash
/// entry), each free the same on the other side. A recycled block costs the writer an
/// uncontended lock of its stripe (see ``EpochRetireList/allocate()``).
///
/// The reclamation thread pushes whole batches (``keep(_:count:)``); a writer's stripe takes
/// up to a batch at once (``take(into:count:)``). At most ``limit`` blocks wait here; the
/// rest are freed as before. Blocks here are accounted as reclaimed (released from the tag's
/// live figures) and as allocated again when taken, so the statistics read as without
/// recycling; the memory held here is at most `limit × (blockSize + 8)` bytes per list (the
/// array of addresses grows with what is kept), and each of the list's stripes may hold up
/// to ``EpochRetireList/batchSize`` more blocks taken from here for its next allocations
/// (until the list goes, for a stripe whose threads stopped allocating).
///
/// Lifetime: owned by its list and retained by every batch in flight (a batch may finish
/// its grace period after the list is gone). ``close()`` (the list's `deinit`) frees what
/// is kept and makes later ``keep(_:count:)`` calls keep nothing.
///
/// Concurrency: any thread; every access under ``lock``, a pthread mutex held only to copy
/// addresses. Lock order: a list's stripe, then this lock.
final class EpochRecycledBlocks: @unchecked Sendable {
    // @unchecked Sendable: `addresses`, `count` and `closed` are only touched with `lock`.
    /// The most blocks kept.
    let limit: Int
    private let lock: ThreadLock<Void>
    /// Invariant: `capacity` words (nil while 0; grown as blocks come, up to `limit`, so a
    /// list that never churns holds none), the first `count` of them addresses of blocks of
    /// the list's size whose grace period is over (no reader can hold them), owned by
    /// nobody else.
    private var addresses: UnsafeMutablePointer<UInt>?
    private var capacity = 0
    private var count = 0
    private var closed = false
    /// `count`, readable without the lock: a hint, so that an allocation finds out there is
    /// nothing to take without taking the lock (a list that only grows never locks it).
    let available = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
        lock = ThreadLock(())
    }

    deinit {
        // Closed by the list, or never used: either way nothing is kept.
        freeKept()
        free(addresses)
    }

    /// Frees the kept blocks (under the lock, or from `deinit`).
    private func freeKept() {
        for index in 0..<count { free(UnsafeMutableRawPointer(bitPattern: addresses.unsafelyUnwrapped[index])) }
        count = 0
    }

    /// Makes room for `wanted` addresses if it can (never above `limit`, at least doubling);
    /// returns the room there is. Under the lock.
    private func room(for wanted: Int) -> Int {
        if wanted > capacity, capacity < limit {
            let grown = Swift.min(limit, Swift.max(wanted, 2 * capacity, 256))
            if let memory = realloc(addresses, grown * MemoryLayout<UInt>.stride) {
                addresses = memory.bindMemory(to: UInt.self, capacity: grown)
                capacity = grown
            }
        }
        return capacity
    }

    /// Keeps as many of `blocks` (`count` addresses, their grace period over) as there is
    /// room for, from the front; returns how many it kept. The caller frees the rest.
    func keep(_ blocks: UnsafeRawPointer, count total: Int) -> Int {
        lock.withLock { _ in
            if closed { return 0 }
            let kept = Swift.min(total, room(for: count + total) - count)
            guard kept > 0 else { return 0 }
            UnsafeMutableRawPointer(addresses.unsafelyUnwrapped + count).copyMemory(from: blocks, byteCount: 8 * kept)
            count += kept
            available.store(count, ordering: .relaxed)
            return kept
        }
    }

    /// How many blocks are kept (a snapshot).
    var keptCount: Int { lock.withLock { _ in count } }

    /// Moves up to `wanted` kept addresses into `destination`; returns how many.
    func take(into destination: UnsafeMutablePointer<UInt>, count wanted: Int) -> Int {
        lock.withLock { _ in
            let taken = Swift.min(wanted, count)
            guard taken > 0 else { return 0 }
            count -= taken
            available.store(count, ordering: .relaxed)
            destination.initialize(from: addresses.unsafelyUnwrapped + count, count: taken)
            return taken
        }
    }

    /// Frees every kept block and the array of their addresses; later ``keep(_:count:)``
    /// calls keep nothing. The lock is held only to take the blocks out (a fork waits for
    /// it: see ``EpochRetireList``'s `deinit`), the blocks are freed outside it.
    func close() {
        let (kept, keptCount) = lock.withLock { _ -> (UnsafeMutablePointer<UInt>?, Int) in
            closed = true
            available.store(0, ordering: .relaxed)
            defer {
                addresses = nil
                capacity = 0
                count = 0
            }
            return (addresses, count)
        }
        for index in 0..<keptCount { free(UnsafeMutableRawPointer(bitPattern: kept.unsafelyUnwrapped[index])) }
        free(kept)
        #if DEBUG
        afterClosing?()
        #endif
    }

    #if DEBUG
    /// Tests: runs at the end of ``close()``.
    package var afterClosing: (() -> Void)?
    #endif

    /// fork() prepare handler of the owning list (see ``EpochRetireList``).
    func lockForFork() { lock.lockForFork() }
    /// fork() parent and child handler.
    func unlockAfterFork() { lock.unlockAfterFork() }
}
