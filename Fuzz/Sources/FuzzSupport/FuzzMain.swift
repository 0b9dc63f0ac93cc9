import CFuzzSupport
import RCUMaps
#if canImport(Glibc)
import Glibc
#endif

/// One fuzz target: what it does with an input, and the seeds it writes for its corpus.
public struct FuzzTarget {
    public let name: String
    /// Runs one input. Every map it makes is gone when it returns.
    public let run: (inout FuzzInput) -> Void
    /// The seed corpus: (file name, bytes).
    public let seeds: () -> [(String, [UInt8])]
    /// Every this many inputs, and at the end of a replay, wait for every deferred free and
    /// check that the epoch's per-tag accounting is back to zero bytes (no leak).
    public let settleEvery: Int
    /// Tags whose memory may stay live for the whole process (not checked by the settle).
    public let residentTags: Set<PoolTag>

    public init(name: String, settleEvery: Int = 1024, residentTags: Set<PoolTag> = providerResidentTags,
                seeds: @escaping () -> [(String, [UInt8])], run: @escaping (inout FuzzInput) -> Void) {
        self.name = name
        self.run = run
        self.seeds = seeds
        self.settleEvery = settleEvery
        self.residentTags = residentTags
    }
}

// The fuzzer calls back on one thread, one input at a time.
nonisolated(unsafe) private var activeTarget: FuzzTarget?
nonisolated(unsafe) private var inputsRun = 0

/// The entry point of a fuzz target (call it from main.swift's top-level code, which SwiftPM
/// compiles as `<module>_main`, the symbol the executable's `main` is defined as).
///
/// - `--write-seeds DIR`: writes the seed corpus and exits.
/// - `--replay PATH...`: runs each input file once (works without libFuzzer).
/// - otherwise: libFuzzer's command line (`-max_total_time=60 CORPUS_DIR`, …).
public func fuzzMain(_ target: FuzzTarget) -> Int32 {
    activeTarget = target
    let arguments = CommandLine.arguments
    if arguments.count >= 3, arguments[1] == "--write-seeds" {
        return writeSeeds(target, to: arguments[2])
    }
    let result = rcf_main(CommandLine.argc, CommandLine.unsafeArgv) { data, size in
        guard let target = activeTarget else { return 0 }
        var input = FuzzInput(size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : [])
        target.run(&input)
        inputsRun += 1
        if inputsRun % target.settleEvery == 0 { checkEpochMemorySettles(after: "\(inputsRun) inputs") }
        return 0
    }
    if result == 0, arguments.count >= 2, arguments[1] == "--replay" {
        checkEpochMemorySettles(after: "the replay")
    }
    return result
}

private func writeSeeds(_ target: FuzzTarget, to directory: String) -> Int32 {
    mkdir(directory, 0o755)
    var written = 0
    for (name, bytes) in target.seeds() {
        let path = directory + "/" + name
        let result = bytes.withUnsafeBufferPointer { rcf_write_file(path, $0.baseAddress, $0.count) }
        guard result == 0 else {
            writeToStandardError("cannot write \(path): errno \(result)\n")
            return 1
        }
        written += 1
    }
    writeToStandardError("\(target.name): wrote \(written) seeds to \(directory)\n")
    return 0
}

/// Waits for every deferred free, then checks that no pool tag still holds live bytes: every
/// map the targets made is gone by now, so anything left is a leak of epoch memory (or of a
/// provider's epoch allocations). A bucket-hash reclaim can retire memory in turn, so this
/// waits several rounds before it calls a leak a leak.
///
/// Not checked: the target's ``FuzzTarget/residentTags`` — by default the tags of
/// `RCUDictionary` (``providerResidentTags``), whose memory in the map targets is the object
/// map providers' handle tables, registered once and alive for the whole process. (Every
/// object in them is checked: its tag must settle like the rest.) `FuzzDictionary`, which
/// registers no provider, checks them too.
///
/// Page mappings too (`EpochMemory.mappedPageBytes`: mmapable arrays, whose storage is not
/// epoch memory, and other maps' storage too large for one block) must all be gone: a
/// dropped map that never unmapped its pages was invisible to this check and to
/// LeakSanitizer, which does not track `mmap` (until 2026-12-07).
public func checkEpochMemorySettles(after what: String) {
    var live: [EpochTagStatistics] = []
    var mapped = 0
    let resident = activeTarget?.residentTags ?? providerResidentTags
    for _ in 0..<16 {
        Epoch.barrier()
        live = EpochMemory.allStatistics().filter {
            // Recycled blocks too: a retire list kept alive after its map is gone holds them,
            // and they are not live bytes (found by review, 2026-12-05, sixteenth session).
            ($0.liveBytes != 0 || $0.liveAllocations != 0 || $0.recycledBytes != 0) && !resident.contains($0.tag)
        }
        mapped = EpochMemory.mappedPageBytes
        if live.isEmpty && mapped == 0 { return }
    }
    // The periodic check runs after every `settleEvery`-th input, which libFuzzer then saves:
    // the leak may be any input since the last check, so that one replayed alone can pass
    // (found by review of the fuzzing, 2026-12-07). Said here, where the failure is read.
    fuzzFail("epoch memory still live after \(what) and 16 barriers: "
        + (live.map { "\($0.tag): \($0.liveBytes) bytes in \($0.liveAllocations) blocks, \($0.recycledBytes) recycled" }
            + (mapped == 0 ? [] : ["\(mapped) bytes of page mappings"]))
            .joined(separator: "; ")
        + (what == "the replay" ? "" : " (the input saved for this failure is the one after which the periodic check ran, "
            + "not necessarily the one that leaked: replay the corpus or the last \(activeTarget?.settleEvery ?? 1024) "
            + "inputs together to find it, before moving anything to Regressions/)"))
}

/// Tags of memory that lives as long as the process in a target that uses the object map
/// providers: `RCUDictionary`'s entries, bucket arrays and replaced references (the
/// providers' handle tables).
public let providerResidentTags: Set<PoolTag> = [PoolTag("rcud"), PoolTag("rcdt"), PoolTag("rcuo")]
