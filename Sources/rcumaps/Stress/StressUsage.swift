/// The text `rcumaps stress --help` prints (and stress usage errors print after their message).
func stressUsageText() -> String {
    let defaults = StressOptions()
    let maps = StressMapKind.allCases.map { "    \(pad($0.rawValue, 15))\($0.summary)" }.joined(separator: "\n")
    return """
        USAGE: rcumaps stress [options]

        Runs many threads of mixed operations on each chosen map for --duration seconds,
        checking invariants as it goes, and prints a verdict per map (with the process's peak
        RSS while the map ran) and overall. Progress (about once a second) and violations, as
        they happen, go to stderr.

        Each worker (an OS thread with its own xorshift stream derived from --seed) mixes
        lookups, helper-mode in-place lookups, update(.any/.noExist/.exist), helper-mode
        updates and deletes, delete, lookup-and-delete, operations on keys never inserted,
        count checks and whole get-next-key iteration passes. A quarter of the keys are
        stable (prefilled, replaced but never deleted); the rest churn. Half the keys are
        each owned by one worker, the only one that writes them, so it knows their content
        at every moment. Hash maps have maxEntries = 5/8 of the keys, so they run full.

        Checked continuously: every value read is whole (not torn) and belongs to its key;
        an owned key holds exactly what its owner last stored (no lost or phantom values,
        every errno as predicted); a stable key is never missing; one writer's values never
        go back in time for a reader; an iteration pass returns no key twice and every key
        present throughout it; count stays between the stable keys and maxEntries; no
        unexpected errno. About once a second the workers pause at a checkpoint and the
        quiescent map is checked whole: count equals the keys iteration finds, lookups agree
        with iteration, every value is whole, and (object map) every object's reference count
        is 1 + the entries holding it. At the end, the same, then the map is dropped: its
        pool tag must return to 0 live bytes within 5 rounds of Epoch.barrier() (a reclaim
        callback may retire memory in turn); for the object map every reference count must
        return to 1 and, once the objects are closed, their memory too.

        OPTIONS:
          --map LIST         maps to stress, comma-separated (default: all, one after the other)
          --duration S       seconds per map (default: \(fixed(defaults.duration, 0) ?? "5"))
          --threads N        worker threads, 1...\(StressOptions.maxThreads) (default: \(defaults.threads))
          --seed N           seed of the workers' random streams (default: from the clock, printed)
          --keys N           size of the key space, \(StressOptions.minKeys)...\(StressOptions.maxKeys) (default: \(defaults.keys))
          --samples FILE     write memory samples to FILE as CSV (see SAMPLES; default: none)
          -h, --help         print this help

        MAPS:
        \(maps)

        SAMPLES: --samples FILE gets a header line, then a row per map as its workers start,
        at every progress tick (about once a second), at the end (workers stopped, final
        check done) and once the map is dropped and its memory reclaimed:
          seconds        seconds since the map's workers started
          map            the map's name
          phase          start, run, end or released
          rss_bytes      the process's resident set size (/proc/self/statm; empty if unreadable)
          heap_bytes     heap bytes in use (glibc mallinfo2; empty without glibc or under a
                         sanitizer): RSS rising over a flat heap is memory malloc keeps
          live_bytes     the map's pool tag: epoch memory allocated and not yet reclaimed
          pending_bytes  of live_bytes, memory freed and awaiting reclamation (a grace period)
          operations     operations done so far on the map
          violations     violations recorded so far on the map
        Rows are flushed as they are written. scripts/plot-soak.py draws them.

        EXIT STATUS: 0 when no map had a violation; 1 on any violation (or a map that could
        not be built, threads that could not be started or got stuck, or a --samples file
        that could not be written); 2 for a usage error.
        """
}
