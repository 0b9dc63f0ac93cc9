/// The text `--help` prints (and usage errors print after their message).
func usageText() -> String {
    let defaults = BenchOptions()
    let maps = MapKind.defaults.map { "    \(pad($0.rawValue, 19))\($0.summary)" }.joined(separator: "\n")
    let comparisons = MapKind.allCases.filter { !$0.runsByDefault }.map { "    \(pad($0.rawValue, 19))\($0.summary)" }
        .joined(separator: "\n")
    let groups = MapGroup.allCases.map { "    \(pad($0.rawValue, 19))\($0.summary)" }.joined(separator: "\n")
    let workloads = Workload.defaults.map { "    \(pad($0.rawValue, 19))\($0.summary)" }.joined(separator: "\n")
    let namedWorkloads = Workload.allCases.filter { !$0.runsByDefault }.map { "    \(pad($0.rawValue, 19))\($0.summary)" }
        .joined(separator: "\n")
    let workloadGroups = WorkloadGroup.allCases.map { "    \(pad($0.rawValue, 19))\($0.summary)" }.joined(separator: "\n")
    return """
        USAGE: rcumaps [bench] [options]
               rcumaps stress [options]    (see `rcumaps stress --help`)
               rcumaps memory [options]    (memory per entry; see `rcumaps memory --help`)

        Measures RCUMaps' maps against baselines (Swift Mutex and reader-writer-lock
        dictionaries, raw C rculfhash, C open addressing, a plain Swift array) and prints a
        table with a throughput ratio column per baseline. With no subcommand, runs `bench`.
        Each cell (map x workload x shape x thread count) gets a fresh map prefilled with
        --entries keys; its threads start together and run for --duration seconds of
        wall-clock time, after an untimed warm-up of a fifth of that (at most 0.1 s). Hash
        lookups run in helper mode: one epoch section and one lookupInPlace per operation;
        array lookups are user-mode lookup (a copy; arrays need no epoch section); updates
        are user-mode update(.any). Combinations a map cannot run (writers on a read-only
        baseline, churn on an array, a shape other than 8x8 on anything but our hash maps)
        are skipped.

        The comparison maps run only when named in --maps (or by a group): the typed maps
        (subscript lookups, updateValue updates) after the same byte-level map in user mode
        (lookup(key:into:), a copy, as the subscript does), and RCUDictionary before a Mutex
        dictionary with the same keys and values. The `vs counterpart` column gives each
        typed or RCUDictionary row's throughput ratio to its counterpart.

        The batch workloads (only when named; --maps batch --workloads batch runs each
        beside its single-operation counterpart) run on hash-lockfree, hash-bucket and
        array, --batch-size elements per call, and count elements: ns/op and Mops/s are per
        element. batch-lookup walks the whole map with lookupBatch, pass after pass; its
        counterpart is the user-mode lookup row (hash-lockfree-user, hash-bucket-user,
        array). batch-update stores --batch-size random existing keys per updateBatch call;
        its counterpart is the update workload on the same map. A bucket larger than
        --batch-size (ENOSPC) counts as a miss.

        --shapes sets the hash maps' key and value sizes, <keyBytes>x<valueBytes>, each a
        multiple of 8 (keys up to \(BenchShape.maxKeyBytes) bytes, values up to \(BenchShape.maxValueBytes)). Word 0 of a key is
        the 8x8 key; further words are derived from the key's index, so keys stay distinct.
        Values are filled from the index, and every lookup reads the whole value (all its
        words go into a checksum). Ratio columns compare cells of the same shape only.

        OPTIONS:
          --threads LIST     thread counts, comma-separated (default: \(defaults.threads.map(String.init).joined(separator: ",")))
          --duration S       seconds per cell (default: \(defaults.duration))
          --entries N        prefilled entries; hash maps get maxEntries = 2N (default: \(defaults.entries))
          --maps LIST        maps or groups to measure, comma-separated (default: the group default)
          --workloads LIST   workloads or groups to run, comma-separated (default: the group default)
          --batch-size N     elements per call of the batch workloads (default: \(defaults.batchSize))
          --shapes LIST      key/value shapes, comma-separated, e.g. 8x8,16x8,8x64 (default: \(defaults.shapes.map(\.description).joined(separator: ",")))
          --json             print a JSON array of cell results instead of the table
          -h, --help         print this help

        MAPS:
        \(maps)

        COMPARISON MAPS (only when named):
        \(comparisons)

        GROUPS (for --maps):
        \(groups)

        WORKLOADS:
        \(workloads)

        WORKLOADS RUN ONLY WHEN NAMED:
        \(namedWorkloads)

        GROUPS (for --workloads):
        \(workloadGroups)

        COLUMNS:
          ns/op          wall-clock nanoseconds per operation per thread: duration x threads / ops
          Mops/s         total throughput of all threads, millions of operations per second
          shape          key bytes x value bytes
          vs mutex-dict  throughput ratio to mutex-dict at the same workload, shape and thread count
          vs counterpart the same ratio to the row's counterpart (typed-bucket to hash-bucket-user, ...;
                         per element, hash-bucket batch-lookup to hash-bucket-user lookup, ...)

        EXIT STATUS: 0 on success; 1 if a map could not be built, a thread could not be
        started, a lookup missed or an update failed; 2 for a usage error.
        """
}

/// `text` padded with spaces on the right to `width` characters.
func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}
