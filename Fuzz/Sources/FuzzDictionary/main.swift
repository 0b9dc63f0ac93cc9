import FuzzSupport
#if canImport(Glibc)
import Glibc
#endif

// SwiftPM compiles this top-level code as FuzzDictionary_main and links the executable with
// `--defsym main=FuzzDictionary_main`; fuzzMain hands the command line to libFuzzer.
exit(fuzzMain(makeDictionaryTarget()))
