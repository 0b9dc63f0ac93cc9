/// The text `--help` prints (and usage errors print after their message).
func usageText() -> String {
    let defaults = BenchOptions()
    let maps = MapKind.allCases.map { "    \(pad($0.rawValue, 19))\($0.summary)" }.joined(separator: "\n")
    let workloads = Workload.allCases.map { "    \(pad($0.rawValue, 19))\($0.summary)" }.joined(separator: "\n")
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

        --shapes sets the hash maps' key and value sizes, <keyBytes>x<valueBytes>, each a
        multiple of 8 (keys up to \(BenchShape.maxKeyBytes) bytes, values up to \(BenchShape.maxValueBytes)). Word 0 of a key is
        the 8x8 key; further words are derived from the key's index, so keys stay distinct.
        Values are filled from the index, and every lookup reads the whole value (all its
        words go into a checksum). Ratio columns compare cells of the same shape only.

        OPTIONS:
          --threads LIST     thread counts, comma-separated (default: \(defaults.threads.map(String.init).joined(separator: ",")))
          --duration S       seconds per cell (default: \(defaults.duration))
          --entries N        prefilled entries; hash maps get maxEntries = 2N (default: \(defaults.entries))
          --maps LIST        maps to measure, comma-separated (default: all)
          --workloads LIST   workloads to run, comma-separated (default: all)
          --shapes LIST      key/value shapes, comma-separated, e.g. 8x8,16x8,8x64 (default: \(defaults.shapes.map(\.description).joined(separator: ",")))
          --json             print a JSON array of cell results instead of the table
          -h, --help         print this help

        MAPS:
        \(maps)

        WORKLOADS:
        \(workloads)

        COLUMNS:
          ns/op          wall-clock nanoseconds per operation per thread: duration x threads / ops
          Mops/s         total throughput of all threads, millions of operations per second
          shape          key bytes x value bytes
          vs mutex-dict  throughput ratio to mutex-dict at the same workload, shape and thread count

        EXIT STATUS: 0 on success; 1 if a map could not be built, a thread could not be
        started, a lookup missed or an update failed; 2 for a usage error.
        """
}

/// `text` padded with spaces on the right to `width` characters.
func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}
