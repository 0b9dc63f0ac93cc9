/// `value` with exactly `digits` decimals (no Foundation), or `nil` if it is not finite.
func fixed(_ value: Double, _ digits: Int) -> String? {
    guard value.isFinite else { return nil }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    // Beyond Int64 (absurd for this tool): fall back to Swift's own rendering.
    guard scaled < 9.0e18 else { return String(value) }
    let units = Int64(scaled)
    let divisor = Int64(scale)
    let whole = String(units / divisor)
    let sign = value < 0 && units != 0 ? "-" : ""
    guard digits > 0 else { return sign + whole }
    let fraction = String(units % divisor)
    return sign + whole + "." + String(repeating: "0", count: digits - fraction.count) + fraction
}

/// A value for the table: about three significant figures, `-` when absent.
func readable(_ value: Double?) -> String {
    guard let value, value.isFinite else { return "-" }
    let digits = value >= 100 ? 0 : value >= 10 ? 1 : 2
    return fixed(value, digits) ?? "-"
}

/// `text` padded with spaces on the right to `width` characters (one space after a longer text).
func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

/// Renders rows as columns: the first column left-aligned, the others right-aligned.
func renderColumns(_ rows: [[String]]) -> String {
    let columnCount = rows.map(\.count).max() ?? 0
    var widths = [Int](repeating: 0, count: columnCount)
    for row in rows {
        for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
    }
    return rows.map { row in
        row.enumerated().map { column, cell in
            let padding = String(repeating: " ", count: widths[column] - cell.count)
            return column == 0 ? cell + padding : padding + cell
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\t": result += "\\t"
        case "\r": result += "\\r"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

/// A JSON number with `digits` decimals, or `null` when absent or not finite.
func jsonNumber(_ value: Double?, _ digits: Int) -> String {
    guard let value, let text = fixed(value, digits) else { return "null" }
    return text
}

/// Seconds for a stress run's header, progress and verdicts: one decimal, or as many as a
/// duration under 1 s needs to show two significant digits (at most 6), trailing zeros
/// beyond the first decimal dropped: `0.04` and `0.05` print as given (with one decimal
/// they printed `0.0` and `0.1`).
func formatSeconds(_ value: Double) -> String {
    guard value.isFinite else { return "-" }
    var digits = 1
    var scaled = abs(value) * 10
    while digits < 6, value != 0, scaled < 10 {
        digits += 1
        scaled *= 10
    }
    guard var text = fixed(value, digits) else { return "-" }
    // "0.040" is 0.04.
    while digits > 1, text.hasSuffix("0") {
        text.removeLast()
        digits -= 1
    }
    return text
}

/// A duration the user gave (`--duration`), printed as given: the fewest decimals (at least
/// one, at most six) that read back as the same number — `1.25` as `1.25`, `60` as `60.0`.
/// (Printed with ``formatSeconds(_:)``, `--duration 1.25` read `1.3 s per map` beside a
/// repeat line that said `--duration 1.25`: found by review, 2026-12-05.)
func formatGivenSeconds(_ value: Double) -> String {
    guard value.isFinite else { return "-" }
    for digits in 1...6 {
        if let text = fixed(value, digits), let back = Double(text), abs(back - value) <= abs(value) * 1e-12 { return text }
    }
    return fixed(value, 6) ?? "-"
}
