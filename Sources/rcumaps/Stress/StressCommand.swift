import ArgumentParser

/// The defaults `rcumaps stress`'s options start from.
private let defaults = StressOptions()

/// `rcumaps stress`: many threads of mixed operations on each chosen map, checking
/// invariants continuously (``runStress(_:)``).
struct StressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stress",
        abstract: "Check the maps' invariants under many threads of mixed operations.",
        usage: "rcumaps stress [<options>]",
        discussion: stressDiscussion()
    )

    // Every option takes the next argument as its value whatever it looks like
    // (`.unconditional`), as the tool's own parser did before ArgumentParser: `--duration -1`
    // is refused as out of range rather than as a missing value. A list option may be given
    // more than once: its lists are merged.
    @Option(name: [.customLong("map"), .customLong("maps")],
            parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Maps to stress, comma-separated (see MAPS above; default: every map, one after the other).",
                               valueName: "list"),
            transform: { text in
                try parseList(text) { (item) throws(ValidationError) in try parseName(item, as: StressMapKind.self) }
            })
    var mapsLists: [[StressMapKind]] = []
    /// `--map` (or `--maps`), every occurrence merged (``mergedLists(_:defaults:)``).
    var maps: [StressMapKind] { mergedLists(mapsLists, defaults: defaults.maps) }

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Seconds per map, at least \(minimumSeconds) and at most \(Int(BenchOptions.maxDuration)) "
                                   + "(default: \(fixed(defaults.duration, 0) ?? "5")).",
                               valueName: "seconds"),
            transform: { try parseSeconds($0) })
    var duration: Double = defaults.duration

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Worker threads, 1...\(StressOptions.maxThreads) (default: \(defaults.threads)).",
                               valueName: "n"),
            transform: { try parseInt($0, in: 1...StressOptions.maxThreads) })
    var threads: Int = defaults.threads

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Seed of the workers' random streams (default: from the clock, printed).", valueName: "n"),
            transform: { text in
                guard let seed = UInt64(text) else { throw ValidationError("'\(text)' is not an unsigned 64-bit integer") }
                return seed
            })
    var seed: UInt64? = defaults.seed

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Size of the key space, \(StressOptions.minKeys)...\(StressOptions.maxKeys), at most "
                                   + "\(LPMStressRoutes.maxCount) with lpm-trie in --maps, as by default "
                                   + "(default: \(defaults.keys)).",
                               valueName: "n"),
            transform: { try parseInt($0, in: StressOptions.minKeys...StressOptions.maxKeys) })
    var keys: Int = defaults.keys

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Write memory samples to <file> as CSV (see SAMPLES above; default: none).",
                               valueName: "file"),
            completion: .file(),
            transform: { path in
                guard !path.isEmpty else { throw ValidationError("the path is empty") }
                return path
            })
    var samples: String? = defaults.samples

    /// The parsed command line, as ``runStress(_:)`` takes it.
    var options: StressOptions {
        StressOptions(maps: maps, duration: duration, threads: threads, seed: seed, keys: keys, samples: samples)
    }

    /// Refuses `--keys` over what the LPM run can make routes for (its setup looped forever:
    /// found by review, 2026-12-05).
    func validate() throws {
        if maps.contains(.lpmTrie), keys > LPMStressRoutes.maxCount {
            throw ValidationError(
                "--keys \(keys) is too many for lpm-trie: half of its routes are stable prefixes inside "
                    + "10.0.0.0/14, room for \(LPMStressRoutes.maxCount) keys at most; use fewer keys, or leave "
                    + "lpm-trie out of --maps")
        }
    }

    /// Runs the stress test; a run that fails exits with ``runStress(_:)``'s status.
    func run() throws {
        let status = runStress(options)
        if status != 0 { throw ExitCode(status) }
    }
}

/// What `rcumaps stress --help` explains above its options: the operations, the checks,
/// the maps, the samples file and the exit status.
func stressDiscussion() -> String {
    [
        HelpText.paragraph("""
            Runs many threads of mixed operations on each chosen map for --duration seconds, \
            checking invariants as it goes, and prints a verdict per map (with the process's \
            peak RSS while the map ran) and overall. Progress (about once a second) and \
            violations, as they happen, go to stderr.
            """),
        HelpText.paragraph("""
            The key-value maps (hash-lockfree, hash-bucket, hash-lockfree-8, hash-bucket-8, array, \
            object-map, object-map-lockfree, custom-array): \
            each worker (an OS thread with its own xorshift stream derived from --seed) mixes \
            lookups, helper-mode in-place lookups, update(.any/.noExist/.exist), helper-mode \
            updates and deletes, delete, lookup-and-delete, operations on keys never inserted, \
            count checks and whole get-next-key iteration passes. A quarter of the keys are \
            stable (prefilled, replaced but never deleted); the rest churn. Half the keys are \
            each owned by one worker, the only one that writes them, so it knows their content \
            at every moment; the others are shared, and an eighth (contested keys) are never \
            written with .any: only a BPF_NOEXIST insert creates them; the other shared churn \
            keys' .any writes go through exchange in user mode (which says whether the write \
            created the key) and become NOEXIST or EXIST in helper mode; an owner's .any writes \
            go through exchange in user mode and look the key up first in helper mode, so what \
            they replace is checked against what it last stored. Hash maps have \
            maxEntries = 5/8 of the keys, so they run full.
            """),
        HelpText.paragraph("""
            Checked continuously on those maps: every value read is whole (not torn) and belongs to its key; \
            an owned key holds exactly what its owner last stored (no lost or phantom values, \
            every errno as predicted); a stable key is never missing; one writer's values never \
            go back in time for a reader (not on the object maps, whose values are handles without \
            versions: there the winners' balance on the shared churn keys, the checkpoints and the \
            reference counts are its checks) (per writer while the readers' records of every \
            writer's newest version fit 256 MiB together — 8 bytes a key, writer and reader; \
            beyond, against the last value the reader saw under the key, which misses one \
            writer's stale value read after another writer's; the first lines of the output \
            say which, and the checker's memory); an iteration pass returns no key twice and \
            none the run never inserts, every stable key (an array: every index, in order), \
            every key the iterating worker owns that is present and none it owns that is absent \
            (whether it returns the shared keys, which other workers insert and delete during \
            the pass, is not checked); count never below the stable keys (its bound above is \
            checked at the checkpoints, from iteration: the capacity gate's units sampled \
            meanwhile cannot exceed maxEntries by construction); no unexpected errno. Once a second (every keys/32768 seconds with more keys than \
            that) the workers pause at a checkpoint and the \
            quiescent map is checked whole: count equals the keys iteration finds, lookups agree \
            with iteration, every value is whole, and (object map) every object's reference \
            count is 1 + the entries holding it. Exactly one wins: no value was returned by two \
            lookup-and-deletes or is still in the map after one returned it, and on each \
            shared churn key the writes that created it (the prefill, NOEXIST inserts, .any \
            exchanges that replaced nothing) minus the removals won is 1 if it is present, 0 \
            if not. At the end, the same, then the map is dropped: \
            its pool tag must return to 0 live bytes within \(releaseBarrierRounds) rounds of \
            Epoch.barrier() (a reclaim callback may retire memory in turn); for the object map \
            every reference count must return to 1 and, once the objects are closed, their \
            memory too.
            """),
        HelpText.paragraph("""
            The other maps run workloads of their own. lru-hash, lru-percpu-hash and percpu-hash: \
            each worker writes keys of its own (fresh keys on the LRU types, nearly every insert \
            evicting; a share of the entries reused round after round on percpu-hash, never \
            full), looks up any worker's keys in user and helper mode and deletes its own (on \
            the LRU types, recent ones); \
            checked: the key just written present with its mark, \
            which carries the write's generation (LRU: unless the hand moved its guaranteed \
            distance), a key gone after its owner's delete, every value read a mark of the key \
            or 0 on each CPU (LRU: a helper-mode write's mark on one CPU or a user-mode write's \
            on every CPU, as the key's one write left it: the mark says which); on percpu-hash also the newest generation a reader finds never older than \
            one it found before, each worker's keys, before each of its writes and at the end, \
            present or absent as it left them, holding exactly what it read back after its \
            last write, and a final pass \
            finding no more than maxEntries keys; the same pass (count, bound, marks) at \
            checkpoints while they run, with the workers paused; a helper-mode write changing \
            exactly one CPU's value, and for a worker pinned to a CPU (the odd workers, where \
            the system allows it) that CPU's. \
            percpu-array: helper-mode counters (half through the map's own add, half through \
            an atomic add in place) summed exactly at the end (no increment lost or \
            doubled) and indices owned by one worker each, read back as written and, before \
            each of the owner's writes, holding what it read back after its last one, their newest \
            generation never going back for a reader, a helper-mode write by a worker pinned \
            to a CPU (the odd workers, where the system allows it) changing that CPU's value, \
            and at the end holding exactly what \
            their owner read back after its last write (0 if it never wrote them); the counters \
            and owned indices are checked the same way at checkpoints, with the workers paused. lpm-trie: lookups (70 %) checked \
            against the stable routes (the longest stable route covering the address, or a \
            longer volatile one that covers it), a lookup right after a worker's own insert \
            or delete of a volatile route of its own (half of them have one owner) against \
            that route (it or a longer one while stored, never it once deleted), and, at \
            the end, against a brute-force scan of the routes at two addresses each; \
            volatile routes inserted (BPF_NOEXIST) \
            and deleted, stable ones replaced (half of them each by one owner), and iteration \
            passes (a quarter of the lookups, inserts, deletes and replaces in helper mode, \
            inside an epoch section, the lookups reading in place); values carry their route, writer and version: an owner reads back what it \
            stored, and each replace of its own route reads or displaces what it stored last, \
            no reader sees a version older than one it saw, and at the end each \
            volatile route's inserts won minus deletes won is 1 if stored, 0 if not; at \
            checkpoints (about once a second), with the workers paused, a get-next-key pass \
            against count, every stable route stored and every stored route's value (not the \
            brute-force scan). Workers \
            still stuck \(stressWatchdog / 1_000_000_000) s after the stop are reported, not waited for.
            """),
        HelpText.paragraph("""
            dictionary, dictionary-string and dictionary-node stress RCUDictionary in its three \
            layouts (keys and values in the slots; keys in nodes; both in nodes), with class \
            values whose lives are counted. Each worker reads any key (the subscript, \
            withValue, contains), writes keys it owns with every write the dictionary has \
            (updateValue, the subscript's setter, insertIfAbsent, removeValue, replaceValue, \
            update(forKey:)), inserts and removes churn keys in phases (mostly inserting, then \
            mostly removing) that grow and shrink the bucket array (the resizes the workers \
            see are counted in the details), increments counters through update(forKey:), \
            compare-and-replace and inout accesses of the subscript (with and without a \
            default), races on contested keys, and iterates (the Sequence, keys, snapshot()). \
            Checked: every value read is whole, of its key and not released; a stable key or \
            counter is never missing; an owned key answers every write and read exactly as \
            its owner's record says; a counter or an owned key never goes back to an older \
            version for a reader; no object leaves the dictionary twice; an iteration pass has every stable key \
            once and this worker's keys as it left them (each once; a shared key removed and \
            inserted again during the pass may be listed twice, as snapshot() documents); at \
            checkpoints (about once a second, with the workers paused) and at the end, every \
            key against its owner's record, a counter equals the increments that succeeded, \
            values stored minus values taken out equal the entries, count equals an \
            iteration's, contested keys balance, and exactly the entries' objects are alive \
            after a barrier; none once the dictionary is dropped (its pool tags back to 0 bytes).
            """),
        HelpText.paragraph("""
            queue and stack have no keys: each worker is a producer and a consumer, pushing its \
            own values in sequence (1 in 16 pushes with BPF_EXIST, dropping the oldest element \
            of a full map), popping, peeking and reading the count (a quarter of the pushes \
            without BPF_EXIST, pops and peeks in helper mode, inside an epoch section), with a share of pushes that \
            changes every few batches so that the map runs empty and full. The map holds at \
            most --keys 32-byte values and starts half full. Checked continuously: every value \
            popped, peeked or dropped is whole, one of the run's and was pushed; for a queue, \
            each producer's values leave in push order for every consumer; count stays within \
            0...maxEntries; no unexpected errno (push E2BIG, pop and peek ENOENT). At every \
            checkpoint, no value was removed twice, and the map, drained, holds exactly pushed \
            minus removed values, none removed before, each producer's in push order (queue) \
            or reverse push order (stack) and newer than any of its values an overwriting push \
            dropped (a full map drops its oldest element, a stack's bottom one too); then it is \
            pushed back with BPF_EXIST, dropping nothing (the map has room). At the end, every value \
            pushed was removed exactly once or is still in the map. The checker keeps a bit \
            per value pushed (1 MiB per 8 million) and 8 bytes per value removed since the last \
            checkpoint: the process's RSS grows with the run.
            """),
        HelpText.section("MAPS:", HelpText.table(StressMapKind.allCases.map { (name: $0.rawValue, text: $0.summary) })),
        HelpText.paragraph("""
            SAMPLES: --samples <file> gets a header line, then a row per map as its workers start, \
            at every progress tick (about once a second), at the end (workers stopped, final \
            check done) and once the map is dropped and its memory reclaimed — or, when its \
            workers are stuck, a last row (hung) with the violations so far:
            """)
            + "\n" + HelpText.table([
                ("seconds", "seconds since the map's workers started"),
                ("map", "the map's name"),
                ("phase", "start, run, end, released, or hung (workers stuck: the run stopped there)"),
                ("rss_bytes", "the process's resident set size (/proc/self/statm; empty if unreadable)"),
                ("heap_bytes", "heap bytes in use (glibc mallinfo2, plus the epoch layer's own mapped blocks of 4 MiB "
                    + "or more; empty without glibc or under a sanitizer): RSS rising over a flat heap is memory malloc keeps"),
                ("live_bytes", "the map's pool tag: epoch memory allocated and not yet reclaimed"),
                ("pending_bytes", "of live_bytes, memory freed and awaiting reclamation (a grace period)"),
                ("operations", "operations done so far on the map"),
                ("violations", "violations recorded so far on the map"),
                ("recycled_bytes", "the pool tag's blocks kept for reuse after their grace period "
                    + "(not in live_bytes; the lock-free hash recycles its entries)"),
            ])
            + "\nRows are flushed as they are written. scripts/plot-soak.py draws them.",
        HelpText.paragraph("""
            EXIT STATUS: 0 when no map had a violation; 1 on any violation (or a map on which \
            nothing ran, a map that could not be built, threads that could not be started or got stuck, or a --samples file \
            that could not be written, or results that could not be written to standard \
            output); 2 for a usage error.
            """),
    ].joined(separator: "\n\n")
}
