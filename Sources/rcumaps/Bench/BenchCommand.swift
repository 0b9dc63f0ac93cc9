import ArgumentParser
import RCUBaseMaps
#if canImport(Glibc)
import Glibc
#endif

/// The defaults `rcumaps bench`'s options start from.
private let defaults = BenchOptions()

/// `rcumaps bench`, the default subcommand: measures the maps against the baselines
/// (``runBench(_:)``).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the maps' throughput against baselines.",
        usage: "rcumaps [bench] [<options>]",
        discussion: benchDiscussion()
    )

    // Every option takes the next argument as its value whatever it looks like
    // (`.unconditional`), as the tool's own parser did before ArgumentParser: `--duration -1`
    // is refused as out of range rather than as a missing value. A list option may be given
    // more than once: its lists are merged.
    @Option(name: .customLong("threads"),
            parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Thread counts, comma-separated, each 1...\(BenchOptions.maxThreads) "
                                   + "(default: \(defaults.threads.map(String.init).joined(separator: ","))).",
                               valueName: "list"),
            transform: { text in
                try parseList(text) { (item) throws(ValidationError) in try parseInt(item, in: 1...BenchOptions.maxThreads) }
            })
    var threadsLists: [[Int]] = []
    /// `--threads`, every occurrence merged (``mergedLists(_:defaults:)``).
    var threads: [Int] { mergedLists(threadsLists, defaults: defaults.threads) }

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Seconds per cell, at least \(minimumSeconds) and at most \(Int(BenchOptions.maxDuration)) "
                                   + "(default: \(defaults.duration)).",
                               valueName: "seconds"),
            transform: { try parseSeconds($0) })
    var duration: Double = defaults.duration

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Prefilled entries, 1...\(BenchOptions.maxEntries); hash maps get maxEntries = 2N, "
                                   + "but lru-hash and percpu-hash N (default: \(defaults.entries)).",
                               valueName: "n"),
            transform: { try parseInt($0, in: 1...BenchOptions.maxEntries) })
    var entries: Int = defaults.entries

    @Option(name: .customLong("maps"),
            parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Maps or groups to measure, comma-separated (see MAPS and GROUPS above; "
                                   + "default: the group default).",
                               valueName: "list"),
            transform: { try parseMaps($0) })
    var mapsLists: [[MapKind]] = []
    /// `--maps`, every occurrence merged (``mergedLists(_:defaults:)``).
    var maps: [MapKind] { mergedLists(mapsLists, defaults: defaults.maps) }

    @Option(name: .customLong("workloads"),
            parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Workloads or groups to run, comma-separated (see WORKLOADS above; "
                                   + "default: the group default).",
                               valueName: "list"),
            transform: { try parseWorkloads($0) })
    var workloadsLists: [[Workload]] = []
    /// `--workloads`, every occurrence merged (``mergedLists(_:defaults:)``).
    var workloads: [Workload] { mergedLists(workloadsLists, defaults: defaults.workloads) }

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Elements per call of the batch workloads, \(BenchOptions.minBatchSize)..."
                                   + "\(BenchOptions.maxBatchSize) (default: \(defaults.batchSize)).",
                               valueName: "n"),
            transform: { try parseInt($0, in: BenchOptions.minBatchSize...BenchOptions.maxBatchSize) })
    var batchSize: Int = defaults.batchSize

    @Option(name: .customLong("shapes"),
            parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Key/value shapes, comma-separated, e.g. 8x8,16x8,8x64 "
                                   + "(default: \(defaults.shapes.map(\.description).joined(separator: ","))).",
                               valueName: "list"),
            transform: { try parseShapes($0) })
    var shapesLists: [[BenchShape]] = []
    /// `--shapes`, every occurrence merged (``mergedLists(_:defaults:)``).
    var shapes: [BenchShape] { mergedLists(shapesLists, defaults: defaults.shapes) }

    @Flag(help: "Print a JSON array of cell results instead of the table.")
    var json = false

    @Flag(help: ArgumentHelp("Time every write and report its latency percentiles (p50, p99, p99.9, max).",
                             discussion: "Each update, insert, delete and push is timed with the monotonic clock "
                                 + "(about 20 ns a reading, so throughput drops where writes are frequent) into an "
                                 + "HdrHistogram per thread (3 significant digits). A grace-period stall shows in "
                                 + "the tail, not in the mean. Not timed: batch workloads, push-pop's pop, and "
                                 + "increment; the epoch row's read-mostly writes are empty sections (their "
                                 + "figures are an empty section's)."))
    var latency = false

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Run exactly n operations per thread in each cell instead of --duration seconds, "
                                   + "with no warm-up, 1...\(BenchOptions.maxOperations) (rounded up to a whole "
                                   + "batch: 64 operations, or --batch-size elements).",
                               discussion: "For instruction counts: under valgrind --tool=callgrind, the difference "
                                   + "between two runs of n and 2n operations, divided by the difference of the "
                                   + "operations they made (the JSON's operations: n is rounded up, and batch-lookup "
                                   + "stops only at the end of a call), is the instructions per operation, "
                                   + "repeatable where wall time is not (prefill and start-up cancel out; "
                                   + "scripts/instructions-per-op.sh does this).",
                               valueName: "n"),
            transform: { try parseInt($0, in: 1...BenchOptions.maxOperations) })
    var operations: Int?

    @Option(help: ArgumentHelp("The peer maps' shared library (ck-ht, libcuckoo, tbb-hash-map; group peers).",
                               discussion: "RCUMaps never links the peers: build them in the Benchmarks package "
                                   + "(cd Benchmarks && ./install-peers.sh && swift build -c release --product "
                                   + "RCUMapsPeers) and pass Benchmarks/.build/release/libRCUMapsPeers.so.",
                               valueName: "path"))
    var peersLibrary: String?

    /// The parsed command line, as ``runBench(_:)`` takes it.
    var options: BenchOptions {
        BenchOptions(threads: threads, duration: duration, entries: entries, maps: maps, workloads: workloads,
                     batchSize: batchSize, shapes: shapes, json: json, latency: latency, operations: operations,
                     peersLibrary: peersLibrary)
    }

    /// Most bytes of the batch buffers of a cell's workers together (each worker's:
    /// `--batch-size` elements of the largest shape's key and value): 256 MiB.
    static let maxBatchBufferBytes = 256 << 20

    /// Refuses batch buffers too large to allocate: `--batch-size 1048576 --shapes
    /// 512x4096` asked for 4.8 GB a thread, and the process was killed instead of getting a
    /// usage error (found by review, 2026-12-05); the bound was then checked for one worker,
    /// though every worker of a cell allocates its own at once (`--threads 128` of 256 MiB
    /// each: 32 GiB; found by review, 2026-12-05, seventeenth session).
    func validate() throws {
        try validateFootprint()
        guard workloads.contains(where: \.isBatch) else { return }
        let element = shapes.map { $0.keyBytes + $0.valueBytes }.max() ?? 16
        let workers = threads.max() ?? 1
        let (perWorker, overflow) = batchSize.multipliedReportingOverflow(by: element)
        let (total, overflowTotal) = perWorker.multipliedReportingOverflow(by: workers)
        if overflow || overflowTotal || total > Self.maxBatchBufferBytes {
            let needed = overflow || overflowTotal ? "more than \(Int.max >> 20)" : "\(total >> 20)"
            throw ValidationError(
                "--batch-size \(batchSize) of \(element)-byte elements on \(workers) thread\(workers == 1 ? "" : "s") needs "
                    + "\(needed) MiB of buffers; at most \(Self.maxBatchBufferBytes >> 20) MiB: use a smaller batch, "
                    + "shape or thread count")
        }
    }

    /// Refuses `--entries` whose largest cell cannot fit this machine's memory: any count
    /// up to the limit was accepted, and a large one was killed for memory after minutes
    /// of prefill, with no message (found by review, 2026-12-05).
    func validateFootprint() throws {
        guard let memory = machineMemoryBytes() else { return }
        if let refusal = Self.footprintRefusal(maps: maps, shapes: shapes, entries: entries, threads: threads.max() ?? 1,
                                               cpus: RawPerCPUArrayMap.possibleCPUs, memory: memory) {
            throw ValidationError(refusal)
        }
    }

    /// Why a run of `entries` would not fit `memory` bytes, or nil: the first cell whose
    /// estimate (``estimatedBytes(_:_:entries:threads:cpus:)``) is larger. Only the shapes a
    /// map runs count. A pure function of the machine, for tests.
    static func footprintRefusal(maps: [MapKind], shapes: [BenchShape], entries: Int, threads: Int, cpus: Int,
                                 memory: Int) -> String? {
        for kind in maps {
            for shape in shapes where kind.supports(shape) {
                let bytes = estimatedBytes(kind, shape, entries: entries, threads: threads, cpus: cpus)
                guard bytes > memory else { continue }
                let needed = bytes == .max ? "more than \(Int.max >> 30)" : "\(bytes >> 30)"
                return "--entries \(entries) needs about \(needed) GiB for \(kind.rawValue) (\(shape)"
                    + "\([.threadLocalCounter, .rcuDictString, .mutexDictString].contains(kind) ? ", \(threads) threads" : "")); this machine has "
                    + "\(memory >> 30) GiB: use fewer entries\(kind.runsEveryShape ? " or a smaller shape" : "")"
            }
        }
        return nil
    }

    /// Bytes a cell of `kind` prefilled with `entries` may take, over-estimated: a hash map
    /// holds `maxEntries` = 2N, each a pair rounded up to 8 bytes and 64 bytes of bucket,
    /// slot or node, its buckets sized for three-quarters load; a per-CPU map a value per
    /// possible CPU of each; the thread-local baseline an array of `entries` counters per
    /// thread (at most 64); an LPM trie about 2 KiB a route (1.6 KiB resident at 100,000 IPv4
    /// routes); the `String`-keyed dictionary rows also 2N probe keys for the prefill and for
    /// each thread, each a heap string (about 100 bytes with its slot: measured, 1.37 GB at
    /// 100,000 entries and 64 threads, where this gave 21 MB; found by review, 2026-12-06).
    /// `Int.max` when it overflows.
    static func estimatedBytes(_ kind: MapKind, _ shape: BenchShape, entries: Int, threads: Int, cpus: Int) -> Int {
        let pair = shape.storedPairBytes
        let perEntry: Int
        switch kind {
        case .lpmIPv4, .lpmIPv6, .cPatriciaIPv4, .cPatriciaIPv6: perEntry = 2048
        case .threadLocalCounter: perEntry = 8 * min(max(threads, 1), 64)
        case .perCPUArray, .perCPUHash: perEntry = 2 * (8 * max(cpus, 1) + 64) * 4 / 3
        case .rcuDictString, .mutexDictString:
            let (keys, overflow) = (max(threads, 1) + 1).multipliedReportingOverflow(by: 2 * 112)
            if overflow { return .max }
            perEntry = 2 * (pair + 64) * 4 / 3 + keys
        default: perEntry = 2 * (pair + 64) * 4 / 3
        }
        let (bytes, overflow) = entries.multipliedReportingOverflow(by: perEntry)
        return overflow ? .max : bytes
    }

    /// Runs the bench; a run that fails exits with ``runBench(_:)``'s status.
    func run() throws {
        let status = runBench(options)
        if status != 0 { throw ExitCode(status) }
    }
}

/// The machine's physical memory in bytes, or nil when it cannot be read (then no run is
/// refused for its footprint).
func machineMemoryBytes() -> Int? {
    let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
    guard pages > 0, pageSize > 0 else { return nil }
    let memory = pages.multipliedReportingOverflow(by: pageSize)
    return memory.overflow ? nil : memory.partialValue
}

/// Parses a comma-separated list of map kinds and group names (``MapGroup``: `typed`
/// stands for its kinds), dropping repeats but keeping order.
func parseMaps(_ text: String) throws(ValidationError) -> [MapKind] {
    let items = try parseList(text) { (item) throws(ValidationError) -> [MapKind] in
        if let group = MapGroup(rawValue: item) { return group.kinds }
        guard let kind = MapKind(rawValue: item) else {
            let known = (MapKind.allCases.map(\.rawValue) + MapGroup.allCases.map(\.rawValue)).joined(separator: ", ")
            throw ValidationError("unknown name '\(item)' (choose from \(known))")
        }
        return [kind]
    }
    var kinds: [MapKind] = []
    for kind in items.joined() where !kinds.contains(kind) { kinds.append(kind) }
    return kinds
}

/// Parses a comma-separated list of workloads and group names (``WorkloadGroup``: `batch`
/// stands for its workloads), dropping repeats but keeping order.
func parseWorkloads(_ text: String) throws(ValidationError) -> [Workload] {
    let items = try parseList(text) { (item) throws(ValidationError) -> [Workload] in
        if let group = WorkloadGroup(rawValue: item) { return group.workloads }
        guard let workload = Workload(rawValue: item) else {
            let known = (Workload.allCases.map(\.rawValue) + WorkloadGroup.allCases.map(\.rawValue)).joined(separator: ", ")
            throw ValidationError("unknown name '\(item)' (choose from \(known))")
        }
        return [workload]
    }
    var workloads: [Workload] = []
    for workload in items.joined() where !workloads.contains(workload) { workloads.append(workload) }
    return workloads
}

/// What `rcumaps bench --help` explains above its options: how cells are measured, the
/// maps, workloads and groups by name, the table's columns and the exit status.
func benchDiscussion() -> String {
    let nameWidth = (MapKind.allCases.map(\.rawValue) + Workload.allCases.map(\.rawValue)).map(\.count).max() ?? 0
    func rows<Name: RawRepresentable>(_ names: [Name], _ summary: (Name) -> String) -> String
    where Name.RawValue == String {
        HelpText.table(names.map { (name: $0.rawValue, text: summary($0)) }, nameWidth: nameWidth)
    }
    return [
        HelpText.paragraph("""
            Measures RCUMaps' maps against baselines (Swift Mutex and reader-writer-lock \
            dictionaries, raw C rculfhash, C open addressing, a plain Swift array) and prints a \
            table with a throughput ratio column per baseline. With no subcommand, rcumaps runs \
            `bench`. Each cell (map x workload x shape x thread count) gets a fresh map prefilled \
            with --entries keys; its threads start together and run for --duration seconds of \
            wall-clock time, after an untimed warm-up of a fifth of that (at most 0.1 s). Hash \
            lookups run in helper mode: one epoch section and one lookupInPlaceIfPresent per \
            operation (a miss is nil; custom maps: lookupInPlace, a miss thrown as ENOENT); \
            array lookups are user-mode lookup (a copy; arrays need no epoch section); updates \
            are user-mode update(.any). Combinations a map cannot run (writers on a read-only \
            baseline, churn on an array, a shape other than 8x8 on anything but our hash maps) \
            are skipped.
            """),
        HelpText.paragraph("""
            The comparison maps run only when named in --maps (or by a group): the typed maps \
            (subscript lookups, updateValue updates) after the same byte-level map in user mode \
            (lookupIfPresent(key:into:), a copy, as the subscript does), and RCUDictionary before a Mutex \
            dictionary with the same keys and values. The `vs counterpart` column gives each \
            typed or RCUDictionary row's throughput ratio to its counterpart.
            """),
        HelpText.paragraph("""
            The batch workloads (only when named; --maps batch --workloads batch runs each \
            beside its single-operation counterpart) run on hash-lockfree, hash-bucket and \
            array, --batch-size elements per call, and count elements: ns/op and Mops/s are per \
            element. batch-lookup walks the whole map with lookupBatch, pass after pass; its \
            counterpart is the user-mode lookup row (hash-lockfree-user, hash-bucket-user, \
            array). batch-update stores --batch-size random existing keys per updateBatch call; \
            its counterpart is the update workload on the same map. A bucket larger than \
            --batch-size (ENOSPC) counts as a miss; a pass whose first call reads nothing that \
            way ends that worker (it would fail the same way on every call).
            """),
        HelpText.paragraph("""
            Queues and stacks (only when named; --maps queues runs them all) run one workload, \
            push-pop, and nothing else runs it: each operation pushes one UInt64 and then pops \
            one, and is counted once (ns/op and Mops/s are per pair). Each starts with --entries \
            values, so no pop finds it empty; a refused push or an empty pop is reported and \
            fails the run. queue and stack are RawQueueStackMap in user mode; their counterparts \
            are liburcu's wfcqueue and lfstack driven from C (a malloc'd node per push), and \
            mutex-deque (a Mutex<Deque<UInt64>>, append and popFirst) has a ratio column.
            """),
        HelpText.paragraph("""
            Per-CPU counters (only when named; --maps percpu runs percpu-array, percpu-hash \
            and their counterpart thread-local) run one workload, increment, and nothing else \
            runs it: each operation adds 1 to the counter of a random index (percpu-array) or \
            key (percpu-hash) in 0..<--entries. percpu-array is a PerCPUArrayMap<UInt64>, \
            add(1, at:) to this CPU's value of the index (a plain add in a restartable sequence, \
            no epoch section; a relaxed atomic add where rseq is unavailable); percpu-hash is a PerCPUHashMap<UInt64, UInt64>, add(1, forKey:) to \
            this CPU's value of the key. Their counterpart, thread-local, is a counter array \
            each thread owns, incremented with a plain load and store.
            """),
        HelpText.paragraph("""
            --shapes sets the hash maps' key and value sizes, <keyBytes>x<valueBytes>, each a \
            multiple of 8 (keys up to \(BenchShape.maxKeyBytes) bytes, values up to \
            \(BenchShape.maxValueBytes)). Word 0 of a key is the 8x8 key; further words are \
            derived from the key's index, so keys stay distinct. Values are filled from the \
            index, and every lookup reads the whole value (all its words go into a checksum). \
            Ratio columns compare cells of the same shape only.
            """),
        HelpText.section("MAPS:", rows(MapKind.defaults, \.summary)),
        HelpText.section("COMPARISON MAPS (only when named):", rows(MapKind.allCases.filter { !$0.runsByDefault }, \.summary)),
        HelpText.section("GROUPS (for --maps):", rows(MapGroup.allCases, \.summary)),
        HelpText.section("WORKLOADS:", rows(Workload.defaults, \.summary)),
        HelpText.section("WORKLOADS RUN ONLY WHEN NAMED:", rows(Workload.allCases.filter { !$0.runsByDefault }, \.summary)),
        HelpText.section("GROUPS (for --workloads):", rows(WorkloadGroup.allCases, \.summary)),
        HelpText.section("COLUMNS:", HelpText.table([
            ("ns/op", "wall-clock nanoseconds per operation per thread: duration x threads / ops"),
            ("Mops/s", "total throughput of all threads, millions of operations per second"),
            ("shape", "key bytes x value bytes"),
            ("vs mutex-dict", "throughput ratio to mutex-dict at the same workload, shape and thread count"),
            ("vs counterpart", "the same ratio to the row's counterpart (typed-bucket to hash-bucket-user, "
                + "queue to c-wfcqueue, ...; per element, hash-bucket batch-lookup to hash-bucket-user lookup, ...)"),
        ])),
        HelpText.paragraph("""
            EXIT STATUS: 0 on success; 1 if a map could not be built, a thread could not be \
            started, a lookup missed a prefilled key (or, in lookup-miss, found a key never \
            inserted), an update or push failed, a pop found its queue or \
            stack empty or no write of a churn cell changed the map, or the results could not \
            be written to standard output; 2 for a usage error.
            """),
    ].joined(separator: "\n\n")
}
