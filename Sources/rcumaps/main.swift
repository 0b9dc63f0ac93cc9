// rcumaps: the RCUMaps benchmark tool. `rcumaps` alone runs `rcumaps bench`; see `--help`.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

do {
    switch try parseCommand(Array(CommandLine.arguments.dropFirst())) {
    case .help:
        print(usageText())
        exit(0)
    case let .bench(options):
        exit(runBench(options))
    case .stressHelp:
        print(stressUsageText())
        exit(0)
    case let .stress(options):
        exit(runStress(options))
    }
} catch {
    let usage = CommandLine.arguments.dropFirst().first == "stress" ? stressUsageText() : usageText()
    writeToStandardError("rcumaps: error: \(error.message)\n\n\(usage)\n")
    exit(2)
}
