/// What `rcumaps bench` runs: the parsed command line (``BenchCommand/options``), or built
/// directly by tests.
struct BenchOptions: Equatable, Sendable {
    /// Thread counts to measure each map and workload at, in order: by default 1, 2, 4, …
    /// up to the CPUs this process may run on, and that count itself (1 and 2 on a two-CPU
    /// machine), as the spec's "1..N threads" asks (it was 1 and 2 whatever the machine:
    /// found by review, 2026-12-05).
    var threads: [Int] = BenchOptions.defaultThreads(cpus: usableCPUCount())
    /// Seconds of measurement per cell.
    var duration: Double = 0.5
    /// Entries prefilled into each map (and each hash map's `maxEntries`).
    var entries: Int = 16384
    /// Maps to measure, in order (the comparison kinds only when named: ``MapKind/defaults``).
    var maps: [MapKind] = MapKind.defaults
    /// Workloads to run, in order (the update and batch workloads only when named:
    /// ``Workload/defaults``).
    var workloads: [Workload] = Workload.defaults
    /// Elements per call of the batch workloads (`batch-lookup`, `batch-update`).
    var batchSize: Int = 1024
    /// Key/value shapes to run, in order (shapes other than 8x8 run only our hash maps).
    var shapes: [BenchShape] = [.standard]
    /// Print a JSON array instead of the table.
    var json = false
    /// Time every write (update, insert, delete) and report its percentiles.
    var latency = false
    /// Operations per thread per cell, instead of ``duration`` (no warm-up): for instruction
    /// counts under `valgrind --tool=callgrind`, where wall time means nothing.
    var operations: Int?
    /// The Benchmarks package's RCUMapsPeers shared library, where the peer maps
    /// (``MapKind/peerSymbolPrefix``) come from; nil: no peer map can run.
    var peersLibrary: String?

    /// The default thread counts on a machine of `cpus` CPUs: powers of two below it, and
    /// `cpus` itself.
    static func defaultThreads(cpus: Int) -> [Int] {
        var counts: [Int] = []
        var count = 1
        while count < cpus {
            counts.append(count)
            count *= 2
        }
        counts.append(max(1, cpus))
        return counts == [1] ? [1] : counts
    }

    /// Largest accepted `--threads` entry.
    static let maxThreads = 1024
    /// Largest accepted `--duration`, in seconds (for `rcumaps stress` too).
    static let maxDuration = 3600.0
    /// Largest accepted `--entries` (2^26; for `rcumaps memory` too).
    static let maxEntries = 1 << 26
    /// Smallest accepted `--batch-size`: a batch call answers ENOSPC for a bucket of more
    /// elements than it has room for, and the bench cannot step past such a bucket (a pass
    /// restarts, and the run failed a correct map with "lookups missed": at 2, every call;
    /// found by review, 2026-12-06). A bucket chain of 16 live elements is far beyond what
    /// the maps' loads make (none seen at 8).
    static let minBatchSize = 16
    /// Largest accepted `--batch-size` (2^20).
    static let maxBatchSize = 1 << 20
    /// Largest accepted `--operations` (2^40).
    static let maxOperations = 1 << 40
}
