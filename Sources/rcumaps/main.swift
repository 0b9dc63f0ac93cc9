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
    case .memoryHelp:
        print(memoryUsageText())
        exit(0)
    case let .memory(options):
        exit(runMemory(options))
    }
} catch {
    let usage = switch CommandLine.arguments.dropFirst().first {
    case "stress": stressUsageText()
    case "memory": memoryUsageText()
    default: usageText()
    }
    writeToStandardError("rcumaps: error: \(error.message)\n\n\(usage)\n")
    exit(2)
}
