import FuzzSupport
#if canImport(Glibc)
import Glibc
#endif

// SwiftPM compiles this top-level code as FuzzMapOperations_main and links the executable with
// `--defsym main=FuzzMapOperations_main`; fuzzMain hands the command line to libFuzzer.
exit(fuzzMain(makeMapOperationsTarget()))
