import CRCUMapsShim

/// What libnuma reports about this machine. On a machine without NUMA (or where libnuma
/// says NUMA is unavailable) there is one node, 0, and every query answers for it.
///
/// Concurrency: any thread.
public enum NUMATopology {
    /// Number of NUMA nodes (at least 1).
    public static var nodeCount: Int { Int(rcumaps_numa_node_count()) }
    /// The node of the CPU the caller is running on right now.
    public static var currentNode: Int { Int(rcumaps_numa_current_node()) }
    /// The CPU the caller is running on right now (a hint: the thread may move).
    public static var currentCPU: Int { Int(rcumaps_current_cpu()) }
}
