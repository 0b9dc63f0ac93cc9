import CRCUMapsShim
import RCUMaps
import RCUMapsTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// PERCPU_ARRAY's NUMA placement: with several nodes each CPU's block starts on a page of
/// its own and its pages are asked for on that CPU's node. Forced here (this machine may
/// have one node, where every CPU's node is 0): the layout, the node the kernel reports for
/// each block once touched, and that the map behaves as an unplaced one.
@Suite("PERCPU_ARRAY NUMA placement")
struct PerCPUArrayNUMATests {
    static func definition(valueSize: Int, maxEntries: Int) -> MapDefinition {
        MapDefinition(type: .perCPUArray, keySize: 4, valueSize: valueSize, maxEntries: maxEntries, name: "numa",
                      poolTag: uniqueTag())
    }

    /// Blocks are placed a run of consecutive CPUs of one node at a time (the kernel splits
    /// a mapping at each change of policy: a mapping per run), and not at all where CPU
    /// numbers alternate between nodes more often than the cap (a mapping per CPU and map
    /// exhausted the process's mappings: found by review, 2026-12-06, twenty-seventh
    /// session). The cap is lowered here, where two CPUs make at most two runs.
    @Test func blocksArePlacedByRunsAndNotWhereNodesAlternate() throws {
        let runs = RawPerCPUArrayMap.placementRuns([0, 0, 1, 1, 1, 0, 2])
        #expect(runs.map { [$0.first, $0.count, $0.node] } == [[0, 2, 0], [2, 3, 1], [5, 1, 0], [6, 1, 2]])
        #expect(RawPerCPUArrayMap.placementRuns([]).isEmpty)
        let alternating = try RawPerCPUArrayMap(Self.definition(valueSize: 8, maxEntries: 4), placingBlocksOnNodes: true,
                                                nodeOfCPU: { $0 % 2 }, maxRuns: 1)
        let oneNode = try RawPerCPUArrayMap(Self.definition(valueSize: 8, maxEntries: 4), placingBlocksOnNodes: true,
                                            nodeOfCPU: { _ in 0 }, maxRuns: 1)
        #expect(oneNode.cpuBlockNodes == Array(repeating: 0, count: oneNode.possibleCPUCount))
        if alternating.possibleCPUCount > 1 {
            #expect(alternating.cpuBlockNodes == nil)
        }
        // Unplaced, the map works as any other.
        try withUnsafeBytes(of: UInt32(3)) { key in
            let value = [UInt64](repeating: 9, count: alternating.possibleCPUCount)
            try value.withUnsafeBytes { try alternating.update(key: key, value: $0, flags: .any) }
            var back = [UInt64](repeating: 0, count: alternating.possibleCPUCount)
            try back.withUnsafeMutableBytes { try alternating.lookup(key: key, into: $0) }
            #expect(back == value)
        }
    }

    @Test(arguments: [(8, 3), (24, 1000), (8, 600)])
    func placedBlocksArePageAlignedOnTheirCPUsNodesAndBehaveAlike(valueSize: Int, maxEntries: Int) throws {
        // Placed whatever the machine's runs of nodes (a server whose CPU numbers alternate
        // between nodes has more than the cap's: found by review of that change).
        let placed = try RawPerCPUArrayMap(Self.definition(valueSize: valueSize, maxEntries: maxEntries),
                                           placingBlocksOnNodes: true, maxRuns: .max)
        let plain = try RawPerCPUArrayMap(Self.definition(valueSize: valueSize, maxEntries: maxEntries),
                                          placingBlocksOnNodes: false)
        let cpus = placed.possibleCPUCount
        let nodes = try #require(placed.cpuBlockNodes)
        #expect(plain.cpuBlockNodes == nil)
        #expect(nodes == (0..<cpus).map { Int(rcumaps_numa_node_of_cpu(Int32($0))) })
        // Every index of every CPU written through user mode, then read back on both maps.
        let width = placed.paddedValueSize
        for index in 0..<maxEntries {
            var value = [UInt8](repeating: 0, count: placed.userValueSize)
            for cpu in 0..<cpus {
                for byte in 0..<valueSize { value[cpu * width + byte] = UInt8(truncatingIfNeeded: index &* 7 &+ cpu &* 31 &+ byte) }
            }
            try withUnsafeBytes(of: UInt32(index)) { key in
                try value.withUnsafeBytes { bytes in
                    try placed.update(key: key, value: bytes, flags: .any)
                    try plain.update(key: key, value: bytes, flags: .any)
                }
                var fromPlaced = [UInt8](repeating: 0, count: placed.userValueSize)
                var fromPlain = fromPlaced
                try fromPlaced.withUnsafeMutableBytes { try placed.lookup(key: key, into: $0) }
                try fromPlain.withUnsafeMutableBytes { try plain.lookup(key: key, into: $0) }
                #expect(fromPlaced == fromPlain && fromPlaced == value, "index \(index)")
            }
        }
        // Each block's first and last index: on a page boundary apart, and where the kernel
        // reports its page (when it reports at all: without NUMA support it cannot).
        let page = sysconf(Int32(_SC_PAGESIZE))
        // Whether this process may set a memory policy at all (a seccomp profile can refuse
        // mbind): tried on a scratch page.
        let scratch = try #require(mmap(nil, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer { munmap(scratch, page) }
        let policiesWork = rcumaps_numa_prefer_node(scratch, page, 0) == 0
        for cpu in 0..<cpus {
            try Epoch.withSection { section in
                for index in [0, maxEntries - 1] {
                    let slot = try withUnsafeBytes(of: UInt32(index)) { key in
                        try placed.lookupInPlace(key: key, cpu: cpu, in: section)
                    }
                    let address = UnsafeMutableRawPointer(mutating: slot.baseAddress!)
                    if index == 0 { #expect(Int(bitPattern: address) % page <= 8, "CPU \(cpu)'s block starts a page") }
                    // The policy the map set on the block's pages.
                    // (A CPU's node without memory: the nearest node with memory, as Linux.)
                    let wanted = Int(rcumaps_numa_nearest_with_memory(Int32(nodes[cpu])))
                    let expected = wanted >= 0 ? wanted : nodes[cpu]
                    let preferred = Int(rcumaps_numa_preferred_node_of_address(address))
                    #expect(preferred == expected || !policiesWork,
                            "CPU \(cpu), index \(index): preferred node \(preferred), asked for \(nodes[cpu]) (\(expected))")
                    let node = Int(rcumaps_numa_node_of_address(address))
                    #expect(node == -1 || node == expected, "CPU \(cpu), index \(index): node \(node), asked for \(nodes[cpu]) (\(expected))")
                }
            }
        }
    }
}

/// The NUMA placement of an ARRAY's or a QUEUE's storage (`rcumaps_numa_alloc_onnode`) only
/// prefers the node, as Linux's map allocation does: libnuma's `numa_alloc_onnode` bound it
/// (`MPOL_BIND`), so a map created on a node short of memory drew the OOM killer while it
/// cleared its pages instead of taking memory from another node (found by review,
/// 2026-12-05).
@Suite("NUMA-placed storage")
struct NUMAPlacedStorageTests {
    @Test func placedStorageOnlyPrefersItsNode() throws {
        let page = sysconf(Int32(_SC_PAGESIZE))
        // Whether this process may set a memory policy at all (a seccomp profile can refuse it).
        let scratch = try #require(mmap(nil, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer { munmap(scratch, page) }
        guard rcumaps_numa_prefer_node(scratch, page, 0) == 0 else {
            try Test.cancel("this process may not set a memory policy: nothing to test")
        }
        let size = 1 << 20
        let memory = try #require(rcumaps_numa_alloc_onnode(size, 0))
        defer { rcumaps_numa_free(memory, size) }
        #expect(Int(bitPattern: memory) % page == 0)
        // Node 0, or, when node 0 has no memory, the nearest node with memory (as Linux).
        let expected = max(0, rcumaps_numa_nearest_with_memory(0))
        #expect(rcumaps_numa_preferred_node_of_address(memory) == expected, "not MPOL_PREFERRED on node \(expected)")
        #expect(memory.load(fromByteOffset: size - 8, as: UInt64.self) == 0)
    }
}
