import ArgumentParser

/// The `rcumaps` tool: the root command, whose subcommands do the work. With no
/// subcommand it runs ``BenchCommand``, so `rcumaps --maps hash-bucket` is
/// `rcumaps bench --maps hash-bucket`.
struct RCUMapsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rcumaps",
        abstract: "The RCUMaps benchmark, memory and stress tool.",
        usage: """
            rcumaps [bench] [<options>]
            rcumaps stress [<options>]
            rcumaps memory [<options>]
            """,
        discussion: [
            HelpText.paragraph("""
                With no subcommand, rcumaps runs `bench`, whose options may follow `rcumaps` \
                directly: `rcumaps --maps hash-bucket` is `rcumaps bench --maps hash-bucket`. \
                `rcumaps bench --help`, `rcumaps stress --help` and `rcumaps memory --help` \
                explain what each measures or checks, and their options.
                """),
            HelpText.paragraph("""
                EXIT STATUS: 0 on success; 1 when a run fails (see each subcommand's help); 2 for \
                a usage error.
                """),
        ].joined(separator: "\n\n"),
        subcommands: [BenchCommand.self, StressCommand.self, MemoryCommand.self],
        defaultSubcommand: BenchCommand.self
    )

    /// Status for a command line ArgumentParser refuses: 2, as before the tool used
    /// ArgumentParser (whose own is `EX_USAGE`, 64).
    static let usageErrorStatus: Int32 = 2
}
