/// What `rcumaps bench` runs, as parsed from the command line.
struct BenchOptions: Equatable, Sendable {
    /// Thread counts to measure each map and workload at, in order.
    var threads: [Int] = [1, 2]
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

    /// Largest accepted `--threads` entry.
    static let maxThreads = 1024
    /// Largest accepted `--duration`, in seconds.
    static let maxDuration = 3600.0
    /// Largest accepted `--entries` (2^26).
    static let maxEntries = 1 << 26
    /// Largest accepted `--batch-size` (2^20).
    static let maxBatchSize = 1 << 20
}

/// What the command line asked for.
enum Command: Equatable, Sendable {
    /// Run the benchmark.
    case bench(BenchOptions)
    /// Run the stress test.
    case stress(StressOptions)
    /// Print the stress test's usage to stdout and exit 0.
    case stressHelp
    /// Measure the maps' heap memory per entry.
    case memory(MemoryOptions)
    /// Print the memory command's usage to stdout and exit 0.
    case memoryHelp
    /// Print usage to stdout and exit 0.
    case help
}

/// A command-line mistake: reported with usage on stderr, exit status 2.
struct UsageError: Error, Equatable, Sendable {
    let message: String
}

/// Parses `rcumaps` arguments (without the program name).
///
/// Grammar: `[bench] [options]`, `stress [options]`, `memory [options]` or `help`. Options take their value as the next
/// argument or after `=` (`--duration 1` or `--duration=1`).
func parseCommand(_ arguments: [String]) throws(UsageError) -> Command {
    var rest = arguments[...]
    if let first = rest.first, !first.hasPrefix("-") {
        switch first {
        case "bench": rest = rest.dropFirst()
        case "stress": return try parseStressCommand(Array(rest.dropFirst()))
        case "memory": return try parseMemoryCommand(Array(rest.dropFirst()))
        case "help": return .help
        default: throw UsageError(message: "unknown subcommand '\(first)'")
        }
    }
    var options = BenchOptions()
    var help = false
    try forEachOption(rest, unknown: "unknown option") { (token, value) throws(UsageError) in
        let name = token.name
        switch name {
        case "-h", "--help":
            try token.noValue()
            help = true
            return .stop
        case "--json":
            try token.noValue()
            options.json = true
        case "--threads":
            options.threads = try parseList(try value(), option: name) { (text) throws(UsageError) in
                try parseInt(text, option: name, in: 1...BenchOptions.maxThreads)
            }
        case "--duration":
            options.duration = try parseSeconds(try value(), option: name)
        case "--entries":
            options.entries = try parseInt(try value(), option: name, in: 1...BenchOptions.maxEntries)
        case "--maps":
            options.maps = try parseMaps(try value(), option: name)
        case "--workloads":
            options.workloads = try parseWorkloads(try value(), option: name)
        case "--batch-size":
            options.batchSize = try parseInt(try value(), option: name, in: 1...BenchOptions.maxBatchSize)
        case "--shapes":
            options.shapes = try parseShapes(try value(), option: name)
        default:
            return .unknown
        }
        return .handled
    }
    return help ? .help : .bench(options)
}

/// What an option handler of ``forEachOption(_:unknown:_:)`` did with an option.
enum OptionOutcome {
    /// Taken; go on with the next argument.
    case handled
    /// Taken, and the rest of the arguments is not to be read (`--help`).
    case stop
    /// Not an option of this command.
    case unknown
}

/// Walks `arguments` as `--name value` / `--name=value` options, handing each to `handle`
/// with a function that reads its value (inline after `=`, or the next argument).
///
/// - Throws: `handle`'s errors; for an option `handle` does not know, "`unknown` 'arg'";
///   for an argument that is not an option, "unexpected argument 'arg'".
func forEachOption(
    _ arguments: ArraySlice<String>, unknown: String,
    _ handle: (OptionToken, () throws(UsageError) -> String) throws(UsageError) -> OptionOutcome
) throws(UsageError) {
    var rest = arguments
    while let argument = rest.popFirst() {
        let token = OptionToken(argument)
        func value() throws(UsageError) -> String { try token.value(from: &rest) }
        switch try handle(token, value) {
        case .handled: continue
        case .stop: return
        case .unknown:
            if argument.hasPrefix("-") { throw UsageError(message: "\(unknown) '\(argument)'") }
            throw UsageError(message: "unexpected argument '\(argument)'")
        }
    }
}

// MARK: - Value parsers

/// Parses a comma-separated list of key/value shapes (`8x8,16x8`).
func parseShapes(_ text: String, option: String) throws(UsageError) -> [BenchShape] {
    try parseList(text, option: option) { (item) throws(UsageError) in try BenchShape.parse(item, option: option) }
}

/// Parses a comma-separated list of map kinds and group names (``MapGroup``: `typed`
/// stands for its kinds), dropping repeats but keeping order.
func parseMaps(_ text: String, option: String) throws(UsageError) -> [MapKind] {
    let items = try parseList(text, option: option) { (item) throws(UsageError) -> [MapKind] in
        if let group = MapGroup(rawValue: item) { return group.kinds }
        guard let kind = MapKind(rawValue: item) else {
            let known = (MapKind.allCases.map(\.rawValue) + MapGroup.allCases.map(\.rawValue)).joined(separator: ", ")
            throw UsageError(message: "\(option): unknown name '\(item)' (choose from \(known))")
        }
        return [kind]
    }
    var kinds: [MapKind] = []
    for kind in items.joined() where !kinds.contains(kind) { kinds.append(kind) }
    return kinds
}

/// Parses a comma-separated list of workloads and group names (``WorkloadGroup``: `batch`
/// stands for its workloads), dropping repeats but keeping order.
func parseWorkloads(_ text: String, option: String) throws(UsageError) -> [Workload] {
    let items = try parseList(text, option: option) { (item) throws(UsageError) -> [Workload] in
        if let group = WorkloadGroup(rawValue: item) { return group.workloads }
        guard let workload = Workload(rawValue: item) else {
            let known = (Workload.allCases.map(\.rawValue) + WorkloadGroup.allCases.map(\.rawValue)).joined(separator: ", ")
            throw UsageError(message: "\(option): unknown name '\(item)' (choose from \(known))")
        }
        return [workload]
    }
    var workloads: [Workload] = []
    for workload in items.joined() where !workloads.contains(workload) { workloads.append(workload) }
    return workloads
}

/// Parses a comma-separated, non-empty list, dropping repeats but keeping order.
func parseList<Element: Equatable>(
    _ text: String, option: String, _ element: (String) throws(UsageError) -> Element
) throws(UsageError) -> [Element] {
    var result: [Element] = []
    for item in text.split(separator: ",", omittingEmptySubsequences: false) {
        let trimmed = String(item).trimmingSpaces
        guard !trimmed.isEmpty else { throw UsageError(message: "\(option): empty item in '\(text)'") }
        let parsed = try element(trimmed)
        if !result.contains(parsed) { result.append(parsed) }
    }
    return result
}

/// Parses a decimal integer in `range`.
func parseInt(_ text: String, option: String, in range: ClosedRange<Int>) throws(UsageError) -> Int {
    guard let value = Int(text) else {
        throw UsageError(message: "\(option): '\(text)' is not an integer")
    }
    guard range.contains(value) else {
        throw UsageError(message: "\(option): \(value) is out of range \(range.lowerBound)...\(range.upperBound)")
    }
    return value
}

/// Parses a positive, finite number of seconds no larger than ``BenchOptions/maxDuration``.
func parseSeconds(_ text: String, option: String) throws(UsageError) -> Double {
    guard let value = Double(text), value.isFinite else {
        throw UsageError(message: "\(option): '\(text)' is not a number of seconds")
    }
    guard value > 0, value <= BenchOptions.maxDuration else {
        throw UsageError(message: "\(option): \(text) must be more than 0 and at most \(Int(BenchOptions.maxDuration))")
    }
    return value
}

/// Parses one of the names of a `String`-backed enum.
func parseName<Name: RawRepresentable & CaseIterable>(
    _ text: String, option: String, as type: Name.Type
) throws(UsageError) -> Name where Name.RawValue == String {
    guard let value = Name(rawValue: text) else {
        let known = Name.allCases.map(\.rawValue).joined(separator: ", ")
        throw UsageError(message: "\(option): unknown name '\(text)' (choose from \(known))")
    }
    return value
}

extension String {
    /// The string without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }),
              let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}

/// One command-line option as written: `--name value` or `--name=value`.
struct OptionToken {
    let name: String
    private let inlineValue: String?

    /// Splits `argument`; `--name=value` carries its value inline.
    init(_ argument: String) {
        if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
            name = String(argument[..<equals])
            inlineValue = String(argument[argument.index(after: equals)...])
        } else {
            name = argument
            inlineValue = nil
        }
    }

    /// The option's value: inline after `=`, or the next argument (consumed from `rest`).
    func value(from rest: inout ArraySlice<String>) throws(UsageError) -> String {
        if let inlineValue { return inlineValue }
        guard let next = rest.popFirst() else { throw UsageError(message: "\(name) needs a value") }
        return next
    }

    /// Fails if a value was given to an option that takes none.
    func noValue() throws(UsageError) {
        if inlineValue != nil { throw UsageError(message: "\(name) takes no value") }
    }
}
