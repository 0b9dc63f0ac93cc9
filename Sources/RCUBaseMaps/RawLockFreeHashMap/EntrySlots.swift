import CRCUMapsShim
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Stable positions for the entries of a lock-free hash map whose values change in place,
/// so that a batch lookup reads the map in one sweep over an array of entry addresses
/// instead of walking rculfhash's split-ordered list node by node (one dependent cache miss
/// per node, bucket nodes included; the sweep's misses are independent and overlap).
///
/// Every published entry holds one slot from just before its publication until it is
/// unlinked. A slot is one word: an entry's address (even, non-zero), or, free, its link in
/// a free stack, one per thread stripe (`next << 1 | 1`, `next` being the slot below it + 1,
/// or 0), or 0 (never used). Entries
/// of such a map never move (updates store into them), so an entry keeps its slot for as
/// long as its key is in the map. 8 bytes per slot, in chunks made as slots are first used.
///
/// Rules (``RawLockFreeHashMap`` keeps them):
/// - A writer takes a slot (``take()``) only while it holds a capacity unit for a new key
///   (between the capacity gate's reservation and its resolution) and fills it
///   (``publish(_:at:)``) *before* `cds_lfht_add_unique`, so that whoever finds the entry
///   in the table finds its slot filled. It gives the slot back (``release(_:)``) when the
///   publication failed, and otherwise the thread whose unlink of the entry succeeded does,
///   after sealing it — always before the capacity unit goes back. So slots in use never
///   exceed the units the gate counts, at most `maxEntries`: ``take()`` always finds one
///   (the map adds 64 spare slots as a margin).
/// - An entry that was ever in a slot is freed only after a grace period, published or not:
///   a sweep may have read its address.
/// - Readers (batches) load slots inside an epoch section. An even non-zero slot is an
///   entry, readable until the section ends (a slot is emptied before its entry is
///   retired). Whether the entry is in the map is its own state: published (its
///   `cds_lfht_add_unique` succeeded) and not sealed (unlinked), and still in this slot.
/// - Slots live in chunks made as the high-water mark grows, freed with the map.
///
/// Concurrency: any number of writers and readers; no operation waits for another.
final class EntrySlots: @unchecked Sendable {
    // @unchecked Sendable: all shared state is atomic; chunks are installed once, by
    // compare-and-swap, and freed only in deinit.

    /// Slots per chunk (a power of two): 4,096, or fewer for a small map.
    let chunkSize: Int
    let chunkShift: Int
    /// Slots in all (`maxEntries` and the map's margin).
    let capacity: Int
    /// Invariant: `chunkCount` words, each 0 or the address of a chunk of `chunkSize` slot
    /// words (`Atomic<UInt>`, zeroed when made); installed once, never changed after.
    private let chunks: UnsafeMutablePointer<Atomic<UInt>>
    private let chunkCount: Int
    #if DEBUG
    /// Tests only: a chunk not yet made fails to allocate, as if `calloc` had failed.
    let refusesNewChunks = Atomic<Bool>(false)
    #endif
    /// Slots handed out at least once: every slot below it is in use or on a free stack.
    private let highWater = Atomic<Int>(0)
    /// The free stacks (Treiber), one per thread stripe (`rcumaps_thread_stripe`), each on
    /// a cache line of its own, so that writers giving slots back and taking them do not
    /// all write one word: each top is `tag << 32 | (slot + 1)`, 0 when empty. The tag
    /// changes on every push so that a pop racing with a pop and a push of the same slot
    /// fails (ABA). A slot is on at most one stack.
    ///
    /// Invariant: `stackCount` tops, 64 bytes apart, initialised atomics.
    private let stacks: UnsafeMutableRawPointer
    /// A power of two: the CPU count, at most 16.
    private let stackCount: Int

    /// Slots for `capacity` entries; nil if there is no memory for the chunk table.
    init?(capacity: Int) {
        self.capacity = capacity
        var shift = 0
        while shift < 12, 1 << shift < capacity { shift += 1 }
        chunkShift = shift
        chunkSize = 1 << shift
        chunkCount = (capacity + chunkSize - 1) >> shift
        // Zeroed words are valid atomics of 0 (8 bytes per 4,096 entries).
        guard let table = calloc(chunkCount, MemoryLayout<UInt>.stride) else { return nil }
        stackCount = ThreadStripes.count()
        guard let tops = aligned_alloc(64, 64 * stackCount) else {
            free(table)
            return nil
        }
        chunks = table.bindMemory(to: Atomic<UInt>.self, capacity: chunkCount)
        stacks = tops
        for stack in 0..<stackCount { (stacks + 64 * stack).initializeMemory(as: Atomic<UInt64>.self, to: Atomic(0)) }
    }

    /// The top of free stack `stack`.
    @inline(__always)
    private func top(_ stack: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (stacks + 64 &* stack).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// The free stack of the calling thread.
    @inline(__always)
    private var ownStack: Int { Int(rcumaps_thread_stripe()) & (stackCount &- 1) }

    deinit {
        for index in 0..<chunkCount {
            if let chunk = UnsafeMutableRawPointer(bitPattern: chunks[index].load(ordering: .acquiring)) { free(chunk) }
        }
        free(chunks)
        for stack in 0..<stackCount { top(stack).deinitialize(count: 1) }
        free(stacks)
    }

    /// Slots handed out so far: a sweep covers `0 ..< end` (a snapshot).
    var end: Int { highWater.load(ordering: .acquiring) }

    /// The entry words of chunk `index`, or nil if it was not made yet (then none of its
    /// slots holds an entry).
    @inline(__always)
    func entryWords(ofChunk index: Int) -> UnsafeMutablePointer<Atomic<UInt>>? {
        UnsafeMutablePointer(bitPattern: chunks[index].load(ordering: .acquiring))
    }

    /// The word of `slot`, whose chunk exists. (Masking shifts and wrapping arithmetic:
    /// `0 <= slot < capacity` and `chunkShift < 64`, so neither can overflow, and the
    /// checked forms cost a third of a slot's take.)
    @inline(__always)
    private func word(_ slot: Int) -> UnsafeMutablePointer<Atomic<UInt>> {
        entryWords(ofChunk: slot &>> chunkShift).unsafelyUnwrapped + (slot & (chunkSize &- 1))
    }

    /// Makes chunk `index` if no thread has; false if there is no memory for it.
    private func ensureChunk(_ index: Int) -> Bool {
        if chunks[index].load(ordering: .acquiring) != 0 { return true }
        #if DEBUG
        if refusesNewChunks.load(ordering: .relaxed) { return false }
        #endif
        // Zeroed words: valid atomics of 0.
        guard let chunk = calloc(chunkSize, MemoryLayout<UInt>.stride) else { return false }
        chunk.bindMemory(to: Atomic<UInt>.self, capacity: chunkSize)
        let (installed, _) = chunks[index].compareExchange(expected: 0, desired: UInt(bitPattern: chunk),
                                                         ordering: .acquiringAndReleasing)
        if !installed { free(chunk) }  // another thread made it
        return true
    }

    /// A free slot, or nil if there is no memory for its chunk. The caller holds a capacity
    /// unit with no slot (see the type's rules): one is free, on a stack or above the
    /// high-water mark. The calling thread's stack first, then the others (so the slots
    /// stay dense and sweeps short), then a new slot.
    func take() -> Int? {
        var spins = 0
        let own = ownStack
        while true {
            for offset in 0..<stackCount {
                if let slot = pop(own ^ offset) { return slot }
            }
            var mark = highWater.load(ordering: .relaxed)
            while mark < capacity {
                guard ensureChunk(mark &>> chunkShift) else { return nil }
                let (bumped, current) = highWater.compareExchange(expected: mark, desired: mark + 1,
                                                                  ordering: .acquiringAndReleasing)
                if bumped { return mark }
                mark = current
            }
            // None free: impossible while the rules hold (the caller's unit has no slot, so
            // one is free), unless it moved between stacks while we looked; look again
            // rather than fail an insert.
            spins += 1
            if spins & 63 == 0 { sched_yield() }
        }
    }

    /// Pops a slot off free stack `stack`, or nil if it is empty.
    @inline(__always)
    private func pop(_ stack: Int) -> Int? {
        let top = self.top(stack)
        var current = top.pointee.load(ordering: .acquiring)
        while current & 0xFFFF_FFFF != 0 {
            let slot = Int(current & 0xFFFF_FFFF) - 1
            // A stale word (the slot was popped meanwhile, perhaps filled, perhaps pushed
            // again) fails the compare-and-swap: the top is another slot, or its tag changed.
            let next = UInt64(word(slot).pointee.load(ordering: .relaxed) >> 1) & 0xFFFF_FFFF
            let (popped, seen) = top.pointee.compareExchange(
                expected: current, desired: (current & ~0xFFFF_FFFF) | next, ordering: .acquiringAndReleasing)
            if popped { return slot }
            current = seen
        }
        return nil
    }

    /// Stores `entry` in `slot`, for sweeps to find (before its publication: see the rules).
    @inline(__always)
    func publish(_ entry: UnsafeMutableRawPointer, at slot: Int) {
        word(slot).pointee.store(UInt(bitPattern: entry), ordering: .releasing)
    }

    /// Empties `slot` and puts it on the calling thread's free stack (its word becomes its
    /// link: odd, so sweeps skip it).
    func release(_ slot: Int) {
        let word = self.word(slot)
        let freeTop = top(ownStack)
        var top = freeTop.pointee.load(ordering: .relaxed)
        while true {
            word.pointee.store(UInt(top & 0xFFFF_FFFF) << 1 | 1, ordering: .releasing)
            let tag = (top >> 32) &+ 1
            let (pushed, current) = freeTop.pointee.compareExchange(
                expected: top, desired: tag << 32 | UInt64(slot + 1), ordering: .acquiringAndReleasing)
            if pushed { return }
            top = current
        }
    }
}
