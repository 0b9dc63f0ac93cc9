/// The results of a bench run, ready to print.
struct BenchReport {
    let options: BenchOptions
    let cells: [CellResult]

    /// The baseline cell for the same workload and thread count as `cell`, if it was run.
    func baseline(for cell: CellResult) -> CellResult? {
        cells.first { $0.map == MapKind.baseline && $0.workload == cell.workload && $0.threads == cell.threads }
    }

    /// Throughput of `cell` divided by the baseline's, if there is a baseline with throughput.
    func ratio(for cell: CellResult) -> Double? {
        guard let baseline = baseline(for: cell), baseline.megaOperationsPerSecond > 0 else { return nil }
        return cell.megaOperationsPerSecond / baseline.megaOperationsPerSecond
    }

    /// The human-readable table, with a header line and a legend.
    func table() -> String {
        var rows = [["map", "workload", "threads", "ns/op", "Mops/s", "vs \(MapKind.baseline.rawValue)"]]
        for cell in cells {
            rows.append([
                cell.map.rawValue,
                cell.workload.rawValue,
                String(cell.threads),
                readable(cell.nanosecondsPerOperation),
                readable(cell.megaOperationsPerSecond),
                ratio(for: cell).map { readable($0) + "x" } ?? "-",
            ])
        }
        let ratioLabel = "vs \(MapKind.baseline.rawValue)"
        let legend = [
            ("ns/op", "wall-clock ns per operation per thread (duration x threads / ops)"),
            ("Mops/s", "total throughput of all threads, millions of operations per second"),
            (ratioLabel, "throughput ratio to Mutex<[UInt64: UInt64]> at the same workload and threads"),
        ].map { pad($0.0, ratioLabel.count + 2) + $0.1 }
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
                "\"threads\": \(cell.threads)",
                "\"entries\": \(cell.entries)",
                "\"operations\": \(cell.operations)",
                "\"seconds\": \(jsonNumber(Double(cell.wallNanoseconds) / 1e9, 6))",
                "\"nsPerOp\": \(jsonNumber(cell.nanosecondsPerOperation, 3))",
                "\"mopsPerSecond\": \(jsonNumber(cell.megaOperationsPerSecond, 3))",
                "\"ratioToBaseline\": \(jsonNumber(ratio(for: cell), 3))",
                "\"misses\": \(cell.misses)",
                "\"failedUpdates\": \(cell.failedUpdates)",
            ]
            return "  {" + fields.joined(separator: ", ") + "}"
        }
        return objects.isEmpty ? "[]" : "[\n" + objects.joined(separator: ",\n") + "\n]"
    }
}
