/// The results of a memory run, ready to print.
struct MemoryReport {
    let cells: [MemoryCell]

    /// The human-readable table, a verdict per map and a legend.
    func table() -> String {
        let target = MemoryOptions.targetOverheadPerEntry
        var rows = [["map", "shape", "entries", "bytes", "B/entry", "overhead", "<=\(target)B", "resident", "residual"]]
        for cell in cells {
            rows.append([
                cell.map.rawValue,
                cell.shape.description,
                String(cell.entries),
                String(cell.bytes),
                (fixed(cell.bytesPerEntry, 1) ?? "-") + (cell.settled ? "" : "*"),
                fixed(cell.overheadPerEntry, 1) ?? "-",
                cell.withinTarget.map { $0 ? "yes" : "NO" } ?? "-",
                fixed(cell.residentBytesPerEntry, 1) ?? "-",
                String(cell.residualBytes),
            ])
        }
        let legend = [
            ("bytes", "heap bytes in use (mallinfo2 uordblks + hblkhd, plus the epoch layer's mapped blocks) with the filled map alive, less before it"),
            ("B/entry", "bytes / entries"),
            ("overhead", "B/entry less the key and value bytes"),
            ("<=\(target)B", "overhead (unrounded) within the SPEC target of \(target) bytes per entry (our maps; - : a baseline)"),
            ("resident", "resident anonymous bytes per entry, same way: heap pages and memory mapped outside malloc"),
            ("", "(whole pages; a map may fill pages the heap had already touched, so it can be below B/entry)"),
            ("residual", "heap bytes still in use after the map was destroyed (about 0 when the cell was undisturbed)"),
        ].map { pad($0.0, 10) + $0.1 }
        let unsettled = cells.contains { !$0.settled }
            ? ["* memory had not settled after \(ProcessMemory.maxSettleReadings) readings: that cell's figures are the last "
                + "readings taken (something else in the process was allocating or freeing)"] : []
        return """
            rcumaps memory: each map created with maxEntries = entries and filled with that many distinct keys
            \(renderColumns(rows))

            \((unsettled + verdicts()).joined(separator: "\n"))

            \(legend.joined(separator: "\n"))
            """
    }

    /// The verdict on the SPEC target for each measured map of ours: one line on the heap
    /// figures, one on the resident ones, each saying whether every cell met the target and
    /// listing those that did not.
    func verdicts() -> [String] {
        let target = MemoryOptions.targetOverheadPerEntry
        var lines = ["SPEC target: at most \(target) bytes per entry beyond key and value"]
        for map in MemorySubject.allCases where !map.isBaseline {
            let mine = cells.filter { $0.map == map }
            guard !mine.isEmpty else { continue }
            lines.append("  " + pad(map.rawValue, 15) + pad("heap", 10)
                + verdict(mine, overhead: \.overheadPerEntry, within: \.withinTarget))
            lines.append("  " + pad("", 15) + pad("resident", 10)
                + verdict(mine, overhead: \.residentOverheadPerEntry, within: \.residentWithinTarget))
        }
        return lines
    }

    /// `met in all N cells (overhead a-b B/entry)` or `NOT met in k of N cells (shape at entries: overhead, ...)`.
    private func verdict(
        _ cells: [MemoryCell], overhead: (MemoryCell) -> Double, within: (MemoryCell) -> Bool?
    ) -> String {
        // A cell whose reading was below its keys' and values' bytes measured nothing.
        let measured = cells.filter { within($0) != nil }
        let unmeasured = cells.count - measured.count
        let note = unmeasured == 0 ? ""
            : "; \(unmeasured) cell\(unmeasured == 1 ? "" : "s") too small to measure (more --entries)"
        guard !measured.isEmpty else {
            return "not measured: every reading was below the keys' and values' own bytes (more --entries)"
        }
        let over = measured.filter { within($0) == false }
        guard over.isEmpty else {
            let list = over.map { "\($0.shape) at \($0.entries): \(fixed(overhead($0), 1) ?? "-")" }
            return "NOT met in \(over.count) of \(measured.count) cells (\(list.joined(separator: ", ")) B/entry)" + note
        }
        let overheads = measured.map(overhead)
        let low = fixed(overheads.min() ?? 0, 1) ?? "-"
        let high = fixed(overheads.max() ?? 0, 1) ?? "-"
        return "met in all \(measured.count) cells (overhead \(low == high ? low : "\(low) to \(high)") B/entry)" + note
    }

    /// A JSON array with one object per cell.
    func json() -> String {
        let objects = cells.map { cell in
            let fields = [
                "\"map\": \(jsonString(cell.map.rawValue))",
                "\"baseline\": \(cell.map.isBaseline)",
                "\"shape\": \(jsonString(cell.shape.description))",
                "\"keyBytes\": \(cell.shape.keyBytes)",
                "\"valueBytes\": \(cell.shape.valueBytes)",
                "\"entries\": \(cell.entries)",
                "\"bytes\": \(cell.bytes)",
                "\"bytesPerEntry\": \(jsonNumber(cell.bytesPerEntry, 2))",
                "\"overheadPerEntry\": \(jsonNumber(cell.overheadPerEntry, 2))",
                "\"targetOverheadPerEntry\": \(MemoryOptions.targetOverheadPerEntry)",
                "\"withinTarget\": \(cell.withinTarget.map { String($0) } ?? "null")",
                "\"residentBytes\": \(cell.residentBytes)",
                "\"residentBytesPerEntry\": \(jsonNumber(cell.residentBytesPerEntry, 2))",
                "\"residentOverheadPerEntry\": \(jsonNumber(cell.residentOverheadPerEntry, 2))",
                "\"residentWithinTarget\": \(cell.residentWithinTarget.map { String($0) } ?? "null")",
                "\"residualBytes\": \(cell.residualBytes)",
                "\"settled\": \(cell.settled)",
            ]
            return "  {" + fields.joined(separator: ", ") + "}"
        }
        return objects.isEmpty ? "[]" : "[\n" + objects.joined(separator: ",\n") + "\n]"
    }
}
