import ArgumentParser

/// The defaults `rcumaps memory`'s options start from.
private let defaults = MemoryOptions()

/// `rcumaps memory`: the heap and resident bytes per entry of each map, filled to
/// `maxEntries` (``runMemory(_:)``).
struct MemoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Measure the memory each map uses per entry.",
        usage: "rcumaps memory [<options>]",
        discussion: memoryDiscussion()
    )

    // Every option takes the next argument as its value whatever it looks like
    // (`.unconditional`), as the tool's own parser did before ArgumentParser: `--duration -1`
    // is refused as out of range rather than as a missing value. A list option may be given
    // more than once: its lists are merged.
    @Option(name: .customLong("entries"),
            parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Entry counts, comma-separated, each 1...\(BenchOptions.maxEntries) "
                                   + "(default: \(defaults.entries.map(String.init).joined(separator: ","))).",
                               valueName: "list"),
            transform: { text in
                try parseList(text) { (item) throws(ValidationError) in try parseInt(item, in: 1...BenchOptions.maxEntries) }
            })
    var entriesLists: [[Int]] = []
    /// `--entries`, every occurrence merged (``mergedLists(_:defaults:)``).
    var entries: [Int] { mergedLists(entriesLists, defaults: defaults.entries) }

    @Option(name: .customLong("shapes"),
            parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Key/value shapes, <keyBytes>x<valueBytes>, comma-separated "
                                   + "(default: \(defaults.shapes.map(\.description).joined(separator: ","))).",
                               valueName: "list"),
            transform: { try parseShapes($0) })
    var shapesLists: [[BenchShape]] = []
    /// `--shapes`, every occurrence merged (``mergedLists(_:defaults:)``).
    var shapes: [BenchShape] { mergedLists(shapesLists, defaults: defaults.shapes) }

    @Option(name: [.customLong("maps"), .customLong("map")],
            parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Maps to measure, comma-separated (see MAPS above; default: every map).", valueName: "list"),
            transform: { text in
                try parseList(text) { (item) throws(ValidationError) in try parseName(item, as: MemorySubject.self) }
            })
    var mapsLists: [[MemorySubject]] = []
    /// `--maps` (or `--map`), every occurrence merged (``mergedLists(_:defaults:)``).
    var maps: [MemorySubject] { mergedLists(mapsLists, defaults: defaults.maps) }

    @Flag(help: "Print a JSON array of cell results instead of the table.")
    var json = false

    /// The parsed command line, as ``runMemory(_:)`` takes it.
    var options: MemoryOptions {
        MemoryOptions(shapes: shapes, entries: entries, maps: maps, json: json)
    }

    /// As `bench`'s footprint check: `--entries` whose largest cell cannot fit the machine's
    /// memory is a usage error, not a fill the kernel kills for memory (`memory` had no such
    /// check: found by review, 2026-12-06).
    func validate() throws {
        guard let memory = machineMemoryBytes() else { return }
        if let refusal = Self.footprintRefusal(maps: maps, shapes: shapes, entries: entries.max() ?? 1, memory: memory) {
            throw ValidationError(refusal)
        }
    }

    /// Why filling maps of `entries` would not fit `memory` bytes, or nil: the first cell
    /// over it. A cell holds `entries` pairs, key and value each rounded up to 8 bytes, plus
    /// 64 bytes of bucket, slot or node an entry, over-estimated by a third for load (as
    /// `bench` estimates; its maps hold twice as many). Only the shapes a map measures count.
    /// A pure function of the machine, for tests.
    static func footprintRefusal(maps: [MemorySubject], shapes: [BenchShape], entries: Int, memory: Int) -> String? {
        for subject in maps {
            for shape in shapes where subject.supports(shape) {
                let (bytes, overflow) = entries.multipliedReportingOverflow(by: (shape.storedPairBytes + 64) * 4 / 3)
                guard overflow || bytes > memory else { continue }
                return "--entries \(entries) needs about \(overflow ? "more than \(Int.max >> 30)" : "\(bytes >> 30)") GiB "
                    + "for \(subject.rawValue) (\(shape)); this machine has \(memory >> 30) GiB: use fewer entries or a smaller shape"
            }
        }
        return nil
    }

    /// Runs the measurement; a run that fails exits with ``runMemory(_:)``'s status.
    func run() throws {
        let status = runMemory(options)
        if status != 0 { throw ExitCode(status) }
    }
}

/// What `rcumaps memory --help` explains above its options: how memory is measured, the
/// maps, the table's columns and the exit status.
func memoryDiscussion() -> String {
    let target = MemoryOptions.targetOverheadPerEntry
    return [
        HelpText.paragraph("""
            Measures the memory each map really uses per entry, end to end: glibc's \
            mallinfo2() (uordblks + hblkhd: bytes in allocated chunks of every arena, malloc's \
            chunk headers included, plus blocks malloc mmapped), with the blocks of 4 MiB or \
            more that the epoch layer maps itself added, is read before a map is created \
            with maxEntries = N and again once N distinct keys are in it; the difference is the \
            map's. Each reading follows Epoch.barrier() (deferred frees have run) and waits \
            until memory stops changing (rculfhash resizes on a worker thread of its own). \
            Memory a library maps itself is invisible to malloc (liburcu's rculfhash reserves \
            its bucket index with mmap), so resident anonymous memory \
            (/proc/self/smaps_rollup, after malloc_trim(0)) is measured the same way and shown \
            beside it.
            """),
        HelpText.paragraph("""
            Each cell (map x shape x N) runs in a scope of its own: the map is destroyed and \
            Epoch.barrier() called before the next. A small map of the same kind stays alive \
            through the cell, and one is built and destroyed before it, so that what the first \
            map in a process sets up once (rculfhash's resize worker, pool-tag counters, type \
            metadata, the reclamation thread's malloc cache) is not counted. Keys and values are \
            those of `rcumaps bench` (--shapes as there). Progress goes to stderr. The verdict \
            on the SPEC target is printed; it does not change the exit status.
            """),
        HelpText.section("MAPS:", HelpText.table(MemorySubject.allCases.map { (name: $0.rawValue, text: $0.summary) })),
        HelpText.section("COLUMNS:", HelpText.table([
            ("bytes", "heap bytes in use with the filled map alive, less those before it was created"),
            ("B/entry", "bytes / entries"),
            ("overhead", "B/entry less the key and value bytes"),
            ("<=\(target)B", "whether overhead is within the SPEC target of \(target) bytes per entry "
                + "(our maps; - for a baseline)"),
            ("resident", "resident anonymous bytes per entry, measured the same way: the heap's pages plus "
                + "memory mapped outside malloc"),
            ("residual", "heap bytes still in use after the map was destroyed (about 0 unless something else "
                + "allocated during the cell)"),
        ])),
        HelpText.paragraph("""
            EXIT STATUS: 0 once measured, whether or not the target is met; 1 if a map could \
            not be built or filled, or memory cannot be read here (no mallinfo2() or \
            malloc_trim(), as outside glibc, or no /proc/self/smaps_rollup), or if the results \
            could not be written to standard output; 2 for a usage error.
            """),
    ].joined(separator: "\n\n")
}
