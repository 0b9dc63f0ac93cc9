// rcumaps: the RCUMaps benchmark tool. `rcumaps` alone runs `rcumaps bench`; see `--help`.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser

// RCUMapsCommand.main(), except that a usage error exits with status 2.
var command: any ParsableCommand
do {
    command = try RCUMapsCommand.parseAsRoot()
} catch {
    guard RCUMapsCommand.exitCode(for: error) == .validationFailure else { RCUMapsCommand.exit(withError: error) }
    writeToStandardError(RCUMapsCommand.fullMessage(for: error) + "\n")
    exit(RCUMapsCommand.usageErrorStatus)
}
do {
    try command.run()
} catch {
    checkStandardOutputWritten()
    RCUMapsCommand.exit(withError: error)
}
checkStandardOutputWritten()
