import CRCUMapsShim

/// What libnuma reports about this machine. On a machine without NUMA (or where libnuma
/// says NUMA is unavailable) there is one node, 0, and every query answers for it.
///
/// Concurrency: any thread.
public enum NUMATopology {
    /// Number of NUMA nodes (at least 1): `numa_max_node() + 1`, so nodes below it may be
    /// offline (``isOnline(_:)``).
    public static var nodeCount: Int { Int(rcumaps_numa_node_count()) }
    /// Whether `node` is online: in libnuma's set of configured nodes (`numa_nodes_ptr`),
    /// which a node numbered below ``nodeCount`` may be missing from. Without NUMA, node 0
    /// only.
    public static func isOnline(_ node: Int) -> Bool {
        guard let node = Int32(exactly: node) else { return false }
        return rcumaps_numa_node_is_configured(node) != 0
    }
    /// The node of the CPU the caller is running on right now.
    public static var currentNode: Int { Int(rcumaps_numa_current_node()) }
    /// The CPU the caller is running on right now (a hint: the thread may move).
    public static var currentCPU: Int { Int(rcumaps_current_cpu()) }
}
