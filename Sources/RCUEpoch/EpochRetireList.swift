/// Retires compact blocks (``EpochMemory/allocateCompact(byteCount:tag:)``) in batches:
/// up to ``batchSize`` blocks share one `rcu_head`, so that each block needs none.
///
/// A retired block stays readable by every section that could have seen it; it is freed
/// after a grace period that begins once its batch is submitted: when the batch is full, on
/// ``flush()``, on ``Epoch/barrier()`` (which flushes every list first) and when the list
/// is deinitialised. Until then at most `batchSize - 1` blocks of a list wait, so memory
/// stays bounded; ``EpochTagStatistics/pendingBytes`` counts them from their retirement.
///
/// One list per owner (a hash map): its lock is held only to append a pointer.
///
/// Concurrency: any thread, inside or outside a section; ``retire(_:)`` never blocks on a
/// grace period.
public final class EpochRetireList: Sendable {
    /// Blocks per batch (the batch block is `8 + 8 × batchSize` bytes).
    public static let batchSize = 64

    /// Retired blocks not yet submitted, as addresses.
    private let pending = ThreadLock<[UInt]>([])

    /// Every live list, so that ``Epoch/barrier()`` can flush them. Lock order: this
    /// registry, then a list's `pending`.
    private static let registry = ThreadLock<[ObjectIdentifier: Unmanaged<EpochRetireList>]>([:])

    public init() {
        pending.withLock { $0.reserveCapacity(Self.batchSize) }
        Self.registry.withLock { $0[ObjectIdentifier(self)] = Unmanaged.passUnretained(self) }
    }

    deinit {
        Self.registry.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(self)) }
        flush()
    }

    /// Retires a compact block whose owner has unpublished it (no reader can newly find it).
    ///
    /// - Precondition: `block` is compact and not retired before.
    public func retire(_ block: UnsafeMutableRawPointer) {
        EpochMemory.markCompactRetired(block)
        let full: [UInt]? = pending.withLock { list in
            list.append(UInt(bitPattern: block))
            guard list.count >= Self.batchSize else { return nil }
            let batch = list
            list = []
            list.reserveCapacity(Self.batchSize)
            return batch
        }
        if let full { submit(full) }
    }

    /// Submits the blocks retired so far for reclamation after a grace period.
    public func flush() {
        let all = pending.withLock { list -> [UInt] in
            let batch = list
            list = []
            return batch
        }
        if !all.isEmpty { submit(all) }
    }

    /// Flushes every live list (``Epoch/barrier()`` calls this before waiting).
    static func flushAll() {
        registry.withLock { lists in
            for list in lists.values { list.takeUnretainedValue().flush() }
        }
    }

    /// Queues `blocks` behind one `rcu_head`: a batch block `[count | addresses…]`.
    /// Its memory is accounted to ``PoolTag/workItem``, so that a fault injected on the
    /// owner's tag never stops a retirement. If even that allocation fails, the blocks go
    /// back to the list for the next submission.
    private func submit(_ blocks: [UInt]) {
        guard let batch = EpochMemory.allocate(byteCount: 8 * (blocks.count + 1), tag: .workItem) else {
            pending.withLock { $0.append(contentsOf: blocks) }
            return
        }
        batch.storeBytes(of: blocks.count, as: Int.self)
        blocks.withUnsafeBytes { (batch + 8).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        EpochMemory.scheduleRetireBatch(batch)
    }

    /// Reclaim callback of a batch block (after its grace period): frees its blocks.
    static func release(batch: UnsafeMutableRawPointer) {
        let count = batch.load(as: Int.self)
        for index in 0..<count {
            let block = UnsafeMutableRawPointer(bitPattern: batch.load(fromByteOffset: 8 * (index + 1), as: UInt.self))!
            let flags = EpochMemory.compactState(block).pointee.load(ordering: .relaxed)
            EpochMemory.releaseCompact(block, flags: flags, wasPending: true)
        }
    }
}
