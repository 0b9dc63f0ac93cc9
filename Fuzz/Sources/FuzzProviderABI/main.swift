import FuzzSupport
#if canImport(Glibc)
import Glibc
#endif

// SwiftPM compiles this top-level code as FuzzProviderABI_main and links the executable with
// `--defsym main=FuzzProviderABI_main`; fuzzMain hands the command line to libFuzzer.
exit(fuzzMain(makeTarget()))
