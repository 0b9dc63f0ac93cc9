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
        guard let other = baselineCell(baseline, for: cell), other.megaOperationsPerSecond > 0 else { return nil }
        return cell.megaOperationsPerSecond / other.megaOperationsPerSecond
    }

    /// Baselines that were run, in column order.
    var baselinesRun: [MapKind] { MapKind.baselines.filter { kind in cells.contains { $0.map == kind } } }

    /// The human-readable table, with a header line and a legend.
    func table() -> String {
        let baselines = baselinesRun
        var rows = [["map", "workload", "shape", "threads", "ns/op", "Mops/s"] + baselines.map { "vs \($0.rawValue)" }]
        for cell in cells {
            rows.append([
                cell.map.rawValue,
                cell.workload.rawValue,
                cell.shape.description,
                String(cell.threads),
                readable(cell.nanosecondsPerOperation),
                readable(cell.megaOperationsPerSecond),
            ] + baselines.map { baseline in ratio(for: cell, to: baseline).map { readable($0) + "x" } ?? "-" })
        }
        let legend = [
            ("shape", "key bytes x value bytes; lookups read the whole value"),
            ("ns/op", "wall-clock ns per operation per thread (duration x threads / ops)"),
            ("Mops/s", "total throughput of all threads, millions of operations per second"),
            ("vs X", "throughput ratio to baseline X at the same workload, shape and thread count (- : X did not run it)"),
        ].map { pad($0.0, 8) + $0.1 }
        return """
            rcumaps bench: \(options.entries) entries, \(options.duration) s per cell, \(cpuCount()) CPUs online
            \(renderColumns(rows))

            \(legend.joined(separator: "\n"))
            """
    }

    /// A JSON array with one object per cell.
    func json() -> String {
        let objects = cells.map { cell in
            let fields = [
                "\"map\": \(jsonString(cell.map.rawValue))",
                "\"workload\": \(jsonString(cell.workload.rawValue))",
                "\"shape\": \(jsonString(cell.shape.description))",
                "\"keyBytes\": \(cell.shape.keyBytes)",
                "\"valueBytes\": \(cell.shape.valueBytes)",
                "\"threads\": \(cell.threads)",
                "\"entries\": \(cell.entries)",
                "\"operations\": \(cell.operations)",
                "\"seconds\": \(jsonNumber(Double(cell.wallNanoseconds) / 1e9, 6))",
                "\"nsPerOp\": \(jsonNumber(cell.nanosecondsPerOperation, 3))",
                "\"mopsPerSecond\": \(jsonNumber(cell.megaOperationsPerSecond, 3))",
                "\"ratios\": {" + baselinesRun.map { "\(jsonString($0.rawValue)): \(jsonNumber(ratio(for: cell, to: $0), 3))" }
                    .joined(separator: ", ") + "}",
                "\"misses\": \(cell.misses)",
                "\"failedUpdates\": \(cell.failedUpdates)",
            ]
            return "  {" + fields.joined(separator: ", ") + "}"
        }
        return objects.isEmpty ? "[]" : "[\n" + objects.joined(separator: ",\n") + "\n]"
    }
}
