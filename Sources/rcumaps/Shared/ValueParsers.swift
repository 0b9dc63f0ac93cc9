import ArgumentParser

// Parsers of option values, for the `transform:` of the commands' `@Option`s. Their errors
// are `ValidationError`s; ArgumentParser names the option and the value in front of the
// message ("The value 'x' is invalid for '--threads <list>': ...").

/// Parses a comma-separated, non-empty list, dropping repeats but keeping order; items are
/// trimmed of spaces and tabs, and none may be empty.
func parseList<Element: Equatable>(
    _ text: String, _ element: (String) throws(ValidationError) -> Element
) throws(ValidationError) -> [Element] {
    var result: [Element] = []
    for item in text.split(separator: ",", omittingEmptySubsequences: false) {
        let trimmed = String(item).trimmingSpaces
        guard !trimmed.isEmpty else { throw ValidationError("empty item in '\(text)'") }
        let parsed = try element(trimmed)
        if !result.contains(parsed) { result.append(parsed) }
    }
    return result
}

/// The lists a list option was given, one per occurrence, merged in order without repeats
/// (`--maps a --maps b,a` is `a,b`); `defaults` if it was not given. (A repeated list
/// option kept only its last list, so `--map hash-bucket --map array` stressed only array:
/// found by review, 2026-12-05.)
func mergedLists<Element: Equatable>(_ lists: [[Element]], defaults: [Element]) -> [Element] {
    guard !lists.isEmpty else { return defaults }
    var result: [Element] = []
    for element in lists.joined() where !result.contains(element) { result.append(element) }
    return result
}

/// Parses a decimal integer in `range`.
func parseInt(_ text: String, in range: ClosedRange<Int>) throws(ValidationError) -> Int {
    guard let value = Int(text) else { throw ValidationError("'\(text)' is not an integer") }
    guard range.contains(value) else {
        throw ValidationError("\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
    }
    return value
}

/// The shortest `--duration` accepted (seconds).
let minimumSeconds = 0.001

/// Parses a finite number of seconds from ``minimumSeconds`` to ``BenchOptions/maxDuration``.
func parseSeconds(_ text: String) throws(ValidationError) -> Double {
    guard let value = Double(text), value.isFinite else {
        throw ValidationError("'\(text)' is not a number of seconds")
    }
    // At least a millisecond: a cell (or a stress map) of 1e-300 s measured thread start-up
    // and printed its ratios as figures (found by review, 2026-12-06).
    guard value >= minimumSeconds, value <= BenchOptions.maxDuration else {
        throw ValidationError("\(text) must be at least \(minimumSeconds) and at most \(Int(BenchOptions.maxDuration))")
    }
    return value
}

/// Parses one of the names of a `String`-backed enum.
func parseName<Name: RawRepresentable & CaseIterable>(
    _ text: String, as type: Name.Type
) throws(ValidationError) -> Name where Name.RawValue == String {
    guard let value = Name(rawValue: text) else {
        let known = Name.allCases.map(\.rawValue).joined(separator: ", ")
        throw ValidationError("unknown name '\(text)' (choose from \(known))")
    }
    return value
}

/// Parses a comma-separated list of key/value shapes (`8x8,16x8`).
func parseShapes(_ text: String) throws(ValidationError) -> [BenchShape] {
    try parseList(text) { (item) throws(ValidationError) in try BenchShape.parse(item) }
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
