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
    }
} catch {
    writeToStandardError("rcumaps: error: \(error.message)\n\n\(usageText())\n")
    exit(2)
}
