/// The results of a bench run, ready to print.
struct BenchReport {
    let options: BenchOptions
    let cells: [CellResult]

    /// The cell of `baseline` for the same workload, shape and thread count as `cell`, if it
    /// was run (baselines run only 8x8, so other shapes have no ratios).
    func baselineCell(_ baseline: MapKind, for cell: CellResult) -> CellResult? {
        cells.first {
            $0.map == baseline && $0.workload == cell.workload && $0.shape == cell.shape && $0.threads == cell.threads
        }
    }

    /// Throughput of `cell` divided by `baseline`'s at the same workload, shape and thread count.
    func ratio(for cell: CellResult, to baseline: MapKind = .mutexDict) -> Double? {
        guard cell.map.comparesWith(baseline), let other = baselineCell(baseline, for: cell),
              other.megaOperationsPerSecond > 0 else { return nil }
        return cell.megaOperationsPerSecond / other.megaOperationsPerSecond
    }

    /// Baselines that were run, in column order.
    var baselinesRun: [MapKind] { MapKind.baselines.filter { kind in cells.contains { $0.map == kind } } }

    /// The cell `cell` is compared with in the `vs counterpart` column
    /// (``MapKind/counterpart(in:)``: the counterpart kind at the same workload, or a batch
    /// workload's single-operation workload), at the same shape and thread count, if it was run.
    func counterpartCell(for cell: CellResult) -> CellResult? {
        guard let counterpart = cell.map.counterpart(in: cell.workload) else { return nil }
        return cells.first {
            $0.map == counterpart.map && $0.workload == counterpart.workload && $0.shape == cell.shape
                && $0.threads == cell.threads
        }
    }

    /// Throughput of `cell` divided by its counterpart's (``counterpartCell(for:)``): nil if
    /// the kind has none or it was not run. For a batch workload, elements per second over
    /// single operations per second: how many times faster per element.
    func counterpartRatio(for cell: CellResult) -> Double? {
        guard let other = counterpartCell(for: cell), other.megaOperationsPerSecond > 0 else { return nil }
        return cell.megaOperationsPerSecond / other.megaOperationsPerSecond
    }

    /// Whether some cell's counterpart was run: the report then has a `vs counterpart` column.
    var hasCounterparts: Bool {
        cells.contains { counterpartCell(for: $0) != nil }
    }

    /// Whether a batch workload was run: the header names the batch size.
    var hasBatches: Bool { cells.contains { $0.workload.isBatch } }

    /// Whether the push-pop workload was run: the legend says what its operation is.
    var hasPushPop: Bool { cells.contains { $0.workload == .pushPop } }

    /// The human-readable table, with a header line and a legend.
    func table() -> String {
        let baselines = baselinesRun
        let counterparts = hasCounterparts
        let latency = options.latency
        var rows = [["map", "workload", "shape", "threads", "ns/op", "Mops/s"] + baselines.map { "vs \($0.rawValue)" }
            + (counterparts ? ["vs counterpart"] : [])
            + (latency ? ["write p50", "p99", "p99.9", "max"] : [])]
        func ratioText(_ ratio: Double?) -> String { ratio.map { readable($0) + "x" } ?? "-" }
        func latencyText(_ summary: LatencySummary?) -> [String] {
            guard let summary else { return ["-", "-", "-", "-"] }
            return [summary.p50, summary.p99, summary.p999, summary.max].map { readable(Double($0)) }
        }
        for cell in cells {
            rows.append([
                cell.map.rawValue,
                cell.workload.rawValue,
                cell.map.shapeLabel(at: cell.shape),
                String(cell.threads),
                readable(cell.nanosecondsPerOperation),
                readable(cell.megaOperationsPerSecond),
            ] + baselines.map { ratioText(ratio(for: cell, to: $0)) }
                + (counterparts ? [ratioText(counterpartRatio(for: cell))] : [])
                + (latency ? latencyText(cell.writeLatency) : []))
        }
        let pairs = MapKind.allCases.compactMap { kind in kind.counterpart.map { "\(kind.rawValue) to \($0.rawValue)" } }
            // insert-full's counterpart is another workload (the table said only "lru-hash to
            // hash-bucket": found by review, 2026-12-06, twenty-fourth session).
            + (cells.contains { $0.workload == .insertFull }
                ? ["lru-hash insert-full to hash-bucket update (an evicting insert against a replace)"] : [])
        let batchPairs = MapKind.allCases.filter(\.runsBatches).compactMap { kind in
            kind.counterpart(in: .batchLookup).map { "\(kind.rawValue) batch-lookup to \($0.map.rawValue) lookup" }
        } + ["batch-update to update on the same map"]
        let batches = hasBatches
        let legend = [
            ("shape", "key bytes x value bytes (- : not a byte size: String keys, an index, no map); lookups read the whole value"),
            ("ns/op", "wall-clock ns per operation per thread (duration x threads / ops)"),
            ("Mops/s", "total throughput of all threads, millions of operations per second"),
            ("vs X", "throughput ratio to baseline X at the same workload, shape and thread count (- : X did not run it)"),
        ].map { pad($0.0, 8) + $0.1 }
            + (batches
                ? [pad("batch-*", 8) + "an operation is an element: ns/op and Mops/s are per element, "
                    + "\(options.batchSize) elements per call"] : [])
            + (hasPushPop
                ? [pad("push-pop", 8) + "an operation is one push and one pop (a pair): ns/op and Mops/s are per pair"]
                : [])
            + (latency
                ? [pad("write p*", 8) + "latency of one write (update, insert, delete, push), ns: percentiles and "
                    + "maximum over every thread's writes, refused ones included (churn: about half, an insert of a "
                    + "present key or a delete of an absent one) (- : no write timed)"] : [])
            + (counterparts
                ? ["vs counterpart  the same ratio to the row's counterpart: " + pairs.joined(separator: ", ")
                    + (batches ? "; per element, " + batchPairs.joined(separator: ", ") : "")] : [])
        let batchSize = batches ? ", batches of \(options.batchSize)" : ""
        return """
            rcumaps bench: \(options.entries) entries, \(options.operations.map { "\($0) operations per thread per cell" } ?? "\(options.duration) s per cell"), \(cpuCount()) CPUs online\(batchSize)
            \(renderColumns(rows))

            \(legend.joined(separator: "\n"))
            """
    }

    /// The `writeLatency` field of a cell's JSON object: nanoseconds, or null.
    func latencyField(_ summary: LatencySummary?) -> String {
        guard let summary else { return "\"writeLatency\": null" }
        return "\"writeLatency\": {\"count\": \(summary.count), \"p50\": \(summary.p50), \"p99\": \(summary.p99), "
            + "\"p999\": \(summary.p999), \"max\": \(summary.max)}"
    }

    /// A JSON array with one object per cell.
    ///
    /// `ratios` has one entry per baseline run and, when some counterpart was run, one named
    /// `counterpart` (its map is the cell's `counterpart` field; when its workload is not
    /// the cell's — batch workloads, `insert-full` — that workload is `counterpartWorkload`). Batch cells also give `batchSize` and
    /// `elementsPerCall` (what the calls returned on average; whole buckets for the
    /// bucket-locked hash); their `operations` are elements.
    func json() -> String {
        let counterparts = hasCounterparts
        let objects = cells.map { cell in
            let counterpart = cell.map.counterpart(in: cell.workload)
            let counterpartField = counterparts
                ? (cell.workload.isBatch || counterpart.map({ $0.workload != cell.workload }) == true
                    ? ["\"counterpartWorkload\": \(counterpart.map { jsonString($0.workload.rawValue) } ?? "null")"] : [])
                    + ["\"counterpart\": \(counterpart.map { jsonString($0.map.rawValue) } ?? "null")"] : []
            let batchFields = cell.workload.isBatch
                ? ["\"batchSize\": \(options.batchSize)", "\"elementsPerCall\": \(jsonNumber(cell.elementsPerCall, 1))"] : []
            let fields = [
                "\"map\": \(jsonString(cell.map.rawValue))",
                "\"workload\": \(jsonString(cell.workload.rawValue))",
                "\"shape\": \(jsonString(cell.map.shapeLabel(at: cell.shape)))",
                "\"keyBytes\": \(cell.map.ownLayout.map { $0.keyBytes.map(String.init) ?? "null" } ?? String(cell.shape.keyBytes))",
                "\"valueBytes\": \(cell.map.ownLayout.map { $0.valueBytes.map(String.init) ?? "null" } ?? String(cell.shape.valueBytes))",
                "\"threads\": \(cell.threads)",
                "\"entries\": \(cell.entries)",
                "\"operations\": \(cell.operations)",
                "\"seconds\": \(jsonNumber(Double(cell.wallNanoseconds) / 1e9, 6))",
                "\"nsPerOp\": \(jsonNumber(cell.nanosecondsPerOperation, 3))",
                "\"mopsPerSecond\": \(jsonNumber(cell.megaOperationsPerSecond, 3))",
                "\"ratios\": {" + (baselinesRun.map { "\(jsonString($0.rawValue)): \(jsonNumber(ratio(for: cell, to: $0), 3))" }
                    + (counterparts ? ["\"counterpart\": \(jsonNumber(counterpartRatio(for: cell), 3))"] : []))
                    .joined(separator: ", ") + "}",
                "\"misses\": \(cell.misses)",
                "\"failedUpdates\": \(cell.failedUpdates)",
            ] + (cell.workload == .churn ? ["\"changes\": \(cell.changes)"] : []) + batchFields + counterpartField + (options.latency ? [latencyField(cell.writeLatency)] : [])
            return "  {" + fields.joined(separator: ", ") + "}"
        }
        return objects.isEmpty ? "[]" : "[\n" + objects.joined(separator: ",\n") + "\n]"
    }
}
