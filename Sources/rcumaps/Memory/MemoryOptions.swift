/// The maps `rcumaps memory` measures, by command-line name.
enum MemorySubject: String, CaseIterable, Sendable {
    /// `RawLockFreeHashMap` (liburcu `rculfhash`), keys and values of each shape.
    case hashLockFree = "hash-lockfree"
    /// `RawBucketHashMap` (per-bucket locks), keys and values of each shape.
    case hashBucket = "hash-bucket"
    /// Baseline: a Swift `Dictionary<UInt64, UInt64>` created with `minimumCapacity` = entries (8x8 only).
    case swiftDict = "swift-dict"
    /// Baseline: liburcu rculfhash driven from C, sized for the entries as the bench's is (8x8 only).
    case cRculfhash = "c-rculfhash"

    /// Whether this is a baseline (measured for comparison; the SPEC target is not applied).
    var isBaseline: Bool { self == .swiftDict || self == .cRculfhash }

    /// Whether this map is measured with keys and values of `shape` (baselines: 8x8 only).
    func supports(_ shape: BenchShape) -> Bool { !isBaseline || shape == .standard }

    /// One line for `rcumaps memory --help`.
    var summary: String {
        switch self {
        case .hashLockFree: "RawLockFreeHashMap (rculfhash), keys and values of each --shapes"
        case .hashBucket: "RawBucketHashMap (per-bucket locks), keys and values of each --shapes"
        case .swiftDict: "baseline: Dictionary<UInt64, UInt64>(minimumCapacity: entries), 8x8 only"
        case .cRculfhash: "baseline: liburcu rculfhash from C (48-byte malloc'd nodes), 8x8 only"
        }
    }
}

/// What `rcumaps memory` measures, as parsed from the command line.
struct MemoryOptions: Equatable, Sendable {
    /// Key/value shapes, in order (the baselines run only 8x8).
    var shapes: [BenchShape] = [.standard, BenchShape(keyBytes: 16, valueBytes: 8), BenchShape(keyBytes: 8, valueBytes: 64)]
    /// Entry counts, in order: each map is created with `maxEntries` = N and filled with N keys.
    var entries: [Int] = [100_000]
    /// Maps to measure, in order.
    var maps: [MemorySubject] = MemorySubject.allCases
    /// Print a JSON array instead of the table.
    var json = false

    /// The SPEC §10 target: at most this many bytes per entry beyond its key and value.
    static let targetOverheadPerEntry = 48
}

/// Parses the arguments after `memory`.
///
/// Options take their value as the next argument or after `=` (`--entries 1000` or `--entries=1000`).
func parseMemoryCommand(_ arguments: [String]) throws(UsageError) -> Command {
    var options = MemoryOptions()
    var help = false
    try forEachOption(arguments[...], unknown: "unknown memory option") { (token, value) throws(UsageError) in
        let name = token.name
        switch name {
        case "-h", "--help":
            try token.noValue()
            help = true
            return .stop
        case "--json":
            try token.noValue()
            options.json = true
        case "--entries":
            options.entries = try parseList(try value(), option: name) { (text) throws(UsageError) in
                try parseInt(text, option: name, in: 1...BenchOptions.maxEntries)
            }
        case "--shapes":
            options.shapes = try parseShapes(try value(), option: name)
        case "--maps", "--map":
            options.maps = try parseList(try value(), option: name) { (text) throws(UsageError) in
                try parseName(text, option: name, as: MemorySubject.self)
            }
        default:
            return .unknown
        }
        return .handled
    }
    return help ? .memoryHelp : .memory(options)
}

/// The text `rcumaps memory --help` prints (and memory usage errors print after their message).
func memoryUsageText() -> String {
    let defaults = MemoryOptions()
    let maps = MemorySubject.allCases.map { "    \(pad($0.rawValue, 15))\($0.summary)" }.joined(separator: "\n")
    return """
        USAGE: rcumaps memory [options]

        Measures the memory each map really uses per entry, end to end: glibc's mallinfo2()
        (uordblks + hblkhd: bytes in allocated chunks of every arena, malloc's chunk headers
        included, plus blocks malloc mmapped) is read before a map is created with
        maxEntries = N and again once N distinct keys are in it; the difference is the map's.
        Each reading follows Epoch.barrier() (deferred frees have run) and waits until memory
        stops changing (rculfhash resizes on a worker thread of its own). Memory a library
        maps itself is invisible to malloc (liburcu's rculfhash reserves its bucket index
        with mmap), so resident anonymous memory (/proc/self/smaps_rollup, after
        malloc_trim(0)) is measured the same way and shown beside it.

        Each cell (map x shape x N) runs in a scope of its own: the map is destroyed and
        Epoch.barrier() called before the next. A small map of the same kind stays alive
        through the cell, and one is built and destroyed before it, so that what the first
        map in a process sets up once (rculfhash's resize worker, pool-tag counters, type
        metadata, the reclamation thread's malloc cache) is not counted. Keys and values are
        those of `rcumaps bench` (--shapes as there). Progress goes to stderr. The verdict on
        the SPEC target is printed; it does not change the exit status.

        OPTIONS:
          --entries LIST     entry counts, comma-separated (default: \(defaults.entries.map(String.init).joined(separator: ",")))
          --shapes LIST      key/value shapes, <keyBytes>x<valueBytes>, comma-separated
                             (default: \(defaults.shapes.map(\.description).joined(separator: ",")))
          --maps LIST        maps to measure, comma-separated (default: all)
          --json             print a JSON array of cell results instead of the table
          -h, --help         print this help

        MAPS:
        \(maps)

        COLUMNS:
          bytes          heap bytes in use with the filled map alive, less those before it was created
          B/entry        bytes / entries
          overhead       B/entry less the key and value bytes
          <=\(MemoryOptions.targetOverheadPerEntry)B          whether overhead is within the SPEC target of \(MemoryOptions.targetOverheadPerEntry) bytes per entry
                         (our maps; - for a baseline)
          resident       resident anonymous bytes per entry, measured the same way: the heap's
                         pages plus memory mapped outside malloc
          residual       heap bytes still in use after the map was destroyed (about 0 unless
                         something else allocated during the cell)

        EXIT STATUS: 0 once measured, whether or not the target is met; 1 if a map could
        not be built or filled, or memory cannot be read here (no mallinfo2() or
        malloc_trim(), as outside glibc, or no /proc/self/smaps_rollup); 2 for a usage error.
        """
}
