import ArgumentParser
@testable import rcumaps

// Command lines parsed the way the tool parses them (`RCUMapsCommand.parseAsRoot`, as
// main.swift does), for the option tests of every subcommand.

/// A command line that parsed, but not into the subcommand a test expected.
struct UnexpectedCommand: Error, CustomStringConvertible {
    /// The type the command line parsed into.
    let parsed: String

    var description: String { "parsed into \(parsed)" }
}

/// The `rcumaps bench` options of `arguments` (with or without the `bench` subcommand name).
func benchOptions(_ arguments: [String]) throws -> BenchOptions {
    let parsed = try RCUMapsCommand.parseAsRoot(arguments)
    guard let bench = parsed as? BenchCommand else { throw UnexpectedCommand(parsed: "\(type(of: parsed))") }
    return bench.options
}

/// The `rcumaps stress` options of `arguments` (`stress` first).
func stressOptions(_ arguments: [String]) throws -> StressOptions {
    let parsed = try RCUMapsCommand.parseAsRoot(arguments)
    guard let stress = parsed as? StressCommand else { throw UnexpectedCommand(parsed: "\(type(of: parsed))") }
    return stress.options
}

/// The `rcumaps memory` options of `arguments` (`memory` first).
func memoryOptions(_ arguments: [String]) throws -> MemoryOptions {
    let parsed = try RCUMapsCommand.parseAsRoot(arguments)
    guard let memory = parsed as? MemoryCommand else { throw UnexpectedCommand(parsed: "\(type(of: parsed))") }
    return memory.options
}

/// ArgumentParser's message if `arguments` are refused as a usage error (the tool prints
/// it with the usage and exits 2); nil if they parse or ask for help.
func usageError(_ arguments: [String]) -> String? {
    do {
        _ = try RCUMapsCommand.parseAsRoot(arguments)
        return nil
    } catch {
        guard RCUMapsCommand.exitCode(for: error) == .validationFailure else { return nil }
        return RCUMapsCommand.message(for: error)
    }
}

/// Whether `arguments` parse into ArgumentParser's help command (which prints help and
/// exits 0) rather than into one of the tool's commands.
func asksForHelp(_ arguments: [String]) throws -> Bool {
    let parsed = try RCUMapsCommand.parseAsRoot(arguments)
    return !(parsed is BenchCommand || parsed is StressCommand || parsed is MemoryCommand)
}

/// Whether `command` alone, given `arguments`, stops with a help request whose text is its
/// help screen (exit status 0).
func printsHelp(_ command: any ParsableCommand.Type, _ arguments: [String]) -> Bool {
    do {
        _ = try command.parse(arguments)
        return false
    } catch {
        return command.exitCode(for: error) == .success
            && command.fullMessage(for: error, columns: 200) == command.helpMessage(columns: 200)
    }
}

/// The help screen of `subcommand` as `rcumaps subcommand --help` prints it, at a width
/// wide enough that ArgumentParser rewraps nothing.
func help(for subcommand: any ParsableCommand.Type) -> String {
    RCUMapsCommand.helpMessage(for: subcommand, columns: 200)
}

/// The help screen of `rcumaps --help`.
func rootHelp() -> String {
    RCUMapsCommand.helpMessage(columns: 200)
}
