#if canImport(Glibc)
import Glibc
#endif

/// Zeroed, page-aligned anonymous memory of `size` bytes (private to the process), or nil.
/// Used by arrays that need Linux's mmap layout (`BPF_F_MMAPABLE`) or that are too large
/// for one epoch block, and by ``EpochMemory`` for cache-aligned blocks of
/// ``EpochMemory/mappedBlockSize`` or more. Pages are committed as they are first touched.
package func rcumaps_map_pages(_ size: Int) -> UnsafeMutableRawPointer? {
    guard size > 0 else { return nil }
    let memory = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    guard let memory, memory != UnsafeMutableRawPointer(bitPattern: -1) else { return nil }
    return memory
}

/// Returns memory from ``rcumaps_map_pages(_:)``.
package func rcumaps_unmap_pages(_ memory: UnsafeMutableRawPointer?, _ size: Int) {
    guard let memory else { return }
    munmap(memory, size)
}
