import CRCUMapsShim
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Bytes of the mappings made by ``rcumaps_map_pages(_:)`` and
/// ``rcumaps_map_pages(_:preferringNode:)`` and not yet unmapped
/// (``EpochMemory/mappedPageBytes``).
private let liveMappedPageBytes = Atomic<Int>(0)

/// Zeroed, page-aligned anonymous memory of `size` bytes (private to the process), or nil.
/// Used by arrays that need Linux's mmap layout (`BPF_F_MMAPABLE`) or that are too large
/// for one epoch block, and by ``EpochMemory`` for cache-aligned blocks of
/// ``EpochMemory/mappedBlockSize`` or more. Pages are committed as they are first touched.
package func rcumaps_map_pages(_ size: Int) -> UnsafeMutableRawPointer? {
    guard size > 0 else { return nil }
    let memory = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    guard let memory, memory != UnsafeMutableRawPointer(bitPattern: -1) else { return nil }
    liveMappedPageBytes.wrappingAdd(size, ordering: .relaxed)
    return memory
}

/// Returns memory from ``rcumaps_map_pages(_:)``.
package func rcumaps_unmap_pages(_ memory: UnsafeMutableRawPointer?, _ size: Int) {
    guard let memory else { return }
    munmap(memory, size)
    liveMappedPageBytes.wrappingSubtract(size, ordering: .relaxed)
}

/// Zeroed anonymous pages of `size` bytes that prefer NUMA node `node`
/// (`rcumaps_numa_alloc_onnode`: the kernel falls back to other nodes), or nil (also when
/// libnuma is unavailable). Counted in ``EpochMemory/mappedPageBytes``.
package func rcumaps_map_pages(_ size: Int, preferringNode node: Int32) -> UnsafeMutableRawPointer? {
    guard size > 0, let memory = rcumaps_numa_alloc_onnode(size, node) else { return nil }
    liveMappedPageBytes.wrappingAdd(size, ordering: .relaxed)
    return memory
}

/// Returns memory from ``rcumaps_map_pages(_:preferringNode:)``.
package func rcumaps_unmap_node_pages(_ memory: UnsafeMutableRawPointer?, _ size: Int) {
    guard let memory else { return }
    rcumaps_numa_free(memory, size)
    liveMappedPageBytes.wrappingSubtract(size, ordering: .relaxed)
}

extension EpochMemory {
    /// Bytes of the anonymous page mappings the library holds now, as requested (not rounded
    /// up to whole pages): the storage of arrays with `BPF_F_MMAPABLE`, placed on a NUMA
    /// node or too large for one epoch block, of per-CPU arrays and of the per-CPU hashes'
    /// first-level values placed per NUMA node or too large for one block, of queues and stacks placed on a node or too large for one
    /// block, and every cache-aligned epoch block of 4 MiB or more — a map's, an
    /// `RCUDictionary`'s table, a provider's or your own from ``allocateCacheAligned(byteCount:tag:)``
    /// (these also count in their tag's ``statistics(for:)``). Not counted: the lock-free
    /// HASH's table, which liburcu's rculfhash maps itself (its address-space reservation and
    /// bucket pages).
    ///
    /// A dropped map gives its pages back at once (queues and stacks) or after a grace period
    /// (arrays, epoch blocks), so once every map, dictionary and large block is gone this
    /// returns to 0 after ``Epoch/barrier()-129j7``: a leak check can rely on that, as on the
    /// tags' live bytes.
    ///
    /// Concurrency: any thread; a snapshot, which other threads' mappings change at any time.
    public static var mappedPageBytes: Int { liveMappedPageBytes.load(ordering: .relaxed) }
}
