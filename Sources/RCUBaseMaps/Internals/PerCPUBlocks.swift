import CRCUMapsShim
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Memory for one block per possible CPU, CPU-major: block `s` (CPU slot `s`) starts at
/// `base + s × cpuStride`. The storage of PERCPU_ARRAY (``RawPerCPUArrayMap``) and of the
/// per-CPU hashes' first-level values (``RawPerCPUHashMap``, through `BucketTable`).
///
/// Each block is padded to 64 bytes (a cache line), so no two CPUs' memory shares a line.
/// When `placingOnNodes` (a machine with several NUMA nodes; tests force it), each block is
/// padded to whole pages instead, and the kernel is asked (`mbind`, preferred policy) to
/// put each block's pages on its CPU's node when they are first touched, as Linux's
/// per-CPU allocator keeps each CPU's copy local. One mapping holds every block; runs of
/// consecutive blocks of one node are asked for at once (the kernel splits a mapping
/// wherever the policy changes), and with more than `maxRuns` runs nothing is placed (see
/// ``RawPerCPUArrayMap``'s notes: a process's mappings are limited). A refusal of `mbind`
/// leaves the pages where the kernel puts them: correct, only not local.
///
/// Invariant: `size` bytes at `base`, 64-byte aligned, zero, bound to `Atomic<UInt64>`,
/// until a grace period after the last reference goes (a section may still hold a pointer
/// into a block taken through a map whose last reference it dropped).
///
/// Concurrency: immutable after `init`; the blocks' contents are the owner's business.
final class PerCPUBlocks: @unchecked Sendable {
    // @unchecked Sendable: the fields are immutable; the memory is shared by design.
    let base: UnsafeMutableRawPointer
    /// Bytes from one CPU's block to the next: the block rounded up to 64, or to the page
    /// size when placed.
    let cpuStride: Int
    let size: Int
    let onPages: Bool
    /// The node each CPU slot's block was asked for; nil when the blocks were not placed.
    let nodes: [Int]?

    /// Allocates `cpuCount` zeroed blocks of `blockBytes`; `what` names them in errors.
    init(blockBytes: Int, cpuCount: Int, placingOnNodes: Bool, nodeOfCPU: (Int) -> Int, maxRuns: Int,
         tag: PoolTag, what: String) throws(MapError) {
        if placingOnNodes {
            // A page per CPU block at least, so that each block's pages can have a node of
            // their own; mapped pages are not touched (or placed) until first written.
            let page = max(64, sysconf(Int32(_SC_PAGESIZE)))
            guard blockBytes <= Int.max - page else {
                throw MapError.noMemory.with(reason: "\(what): a per-CPU block of \(blockBytes) bytes does not fit in memory")
            }
            let stride = (blockBytes + page - 1) / page * page
            let (pagedSize, overflow) = stride.multipliedReportingOverflow(by: cpuCount)
            guard !overflow, let pages = rcumaps_map_pages(pagedSize) else {
                throw MapError.noMemory.with(reason: "no memory for \(what): \(cpuCount) blocks of \(stride) bytes")
            }
            cpuStride = stride
            size = pagedSize
            base = pages
            onPages = true
            let nodes = (0..<cpuCount).map(nodeOfCPU)
            let runs = RawPerCPUArrayMap.placementRuns(nodes)
            if runs.count <= maxRuns {
                for run in runs {
                    // A refusal leaves the blocks where the kernel puts them: still correct,
                    // only not local.
                    _ = rcumaps_numa_prefer_node(pages + run.first * stride, run.count * stride, Int32(run.node))
                }
                self.nodes = nodes
            } else {
                self.nodes = nil
            }
        } else {
            nodes = nil
            guard blockBytes <= Int.max - 63 else {
                throw MapError.noMemory.with(reason: "\(what): a per-CPU block of \(blockBytes) bytes does not fit in memory")
            }
            cpuStride = (blockBytes + 63) & ~63
            let (total, overflow) = cpuStride.multipliedReportingOverflow(by: cpuCount)
            guard !overflow else {
                throw MapError.noMemory.with(reason: "\(what): \(cpuCount) blocks of \(cpuStride) bytes do not fit in memory")
            }
            size = total
            if total > EpochMemory.maxBlockSize {
                guard let pages = rcumaps_map_pages(total) else {
                    throw MapError.noMemory.with(reason: "no memory for \(what) of \(total) bytes")
                }
                base = pages
                onPages = true
            } else {
                guard let memory = EpochMemory.allocateCacheAligned(byteCount: total, tag: tag) else {
                    throw MapError.noMemory
                }
                base = memory
                onPages = false
                base.initializeMemory(as: UInt8.self, repeating: 0, count: total)
            }
        }
        base.bindMemory(to: Atomic<UInt64>.self, capacity: size / 8)
    }

    deinit {
        if onPages {
            let address = UInt(bitPattern: base)
            let size = size
            let release: @Sendable () -> Void = { rcumaps_unmap_pages(UnsafeMutableRawPointer(bitPattern: address), size) }
            if !Epoch.afterGracePeriod(release) {
                runWhereGracePeriodsMayBeAwaited {
                    Epoch.synchronize()
                    release()
                }
            }
        } else {
            EpochMemory.freeCacheAligned(base)
        }
    }
}
