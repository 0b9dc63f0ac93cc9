import FuzzSupport
#if canImport(Glibc)
import Glibc
#endif

// SwiftPM compiles this top-level code as FuzzSpecializedMaps_main and links the executable
// with `--defsym main=FuzzSpecializedMaps_main`; fuzzMain hands the command line to libFuzzer.
exit(fuzzMain(makeSpecializedMapsTarget()))
