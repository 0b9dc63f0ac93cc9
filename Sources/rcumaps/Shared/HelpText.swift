/// Layout of the explanatory text of `--help` (the commands' `discussion`).
///
/// ArgumentParser prints a discussion line by line, rewrapping only lines wider than the
/// terminal (80 columns when the output is not one). These helpers lay text out within
/// ``width`` columns: paragraphs wrapped at spaces, and tables whose descriptions continue
/// under themselves (a hanging indent) rather than at the left margin.
enum HelpText {
    /// Widest line produced: ArgumentParser leaves lines of up to 79 characters alone at
    /// its default width of 80.
    static let width = 79

    /// `text` (one paragraph, on one line) wrapped at spaces within ``width`` columns.
    static func paragraph(_ text: String) -> String {
        wrap(text, width: width).joined(separator: "\n")
    }

    /// A section: `title` on a line of its own, then `body`.
    static func section(_ title: String, _ body: String) -> String {
        "\(title)\n\(body)"
    }

    /// Rows of a name and its description: names indented by `indent` and padded to
    /// `nameWidth` (at least the longest name), descriptions wrapped at ``width`` with a
    /// hanging indent.
    static func table(_ rows: [(name: String, text: String)], indent: Int = 2, nameWidth: Int = 0) -> String {
        let column = indent + max(nameWidth, rows.map(\.name.count).max() ?? 0) + 2
        let hanging = String(repeating: " ", count: column)
        return rows.map { row in
            let lead = String(repeating: " ", count: indent) + row.name
            let padding = String(repeating: " ", count: column - lead.count)
            return lead + padding + wrap(row.text, width: max(20, width - column)).joined(separator: "\n" + hanging)
        }.joined(separator: "\n")
    }

    /// `text` split at spaces into lines of at most `width` characters (a longer word gets
    /// a line of its own).
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if line.isEmpty {
                line = String(word)
            } else if line.count + 1 + word.count <= width {
                line += " " + word
            } else {
                lines.append(line)
                line = String(word)
            }
        }
        if !line.isEmpty || lines.isEmpty { lines.append(line) }
        return lines
    }
}
