import CRCUMapsBaselines
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RCUEpoch
import RCUMaps

/// What `rcumaps memory` reads: glibc's count of heap bytes in use, and the process's
/// resident anonymous memory.
struct MemoryReading: Equatable, Sendable {
    /// `mallinfo2()`'s `uordblks + hblkhd`, plus the epoch layer's mapped blocks (see
    /// ``ProcessMemory/heapBytes()``).
    var heapBytes: Int
    /// Resident anonymous bytes (see ``ProcessMemory/residentBytes()``).
    var residentBytes: Int

    /// The change from `earlier` to this reading.
    func since(_ earlier: MemoryReading) -> MemoryReading {
        MemoryReading(heapBytes: heapBytes - earlier.heapBytes, residentBytes: residentBytes - earlier.residentBytes)
    }
}

/// Reads the process's memory for `rcumaps memory`.
///
/// The heap figure is glibc's `mallinfo2()`: `uordblks` (bytes in allocated chunks of every
/// arena, chunk headers included) plus `hblkhd` (bytes in blocks malloc mmapped on its own).
/// To it the tool adds the epoch layer's own mapped blocks (`EpochMemory.mappedBytes`:
/// cache-aligned blocks of 4 MiB or more, such as a large bucket table, which the epoch
/// layer maps itself since 2026-12-06 and `malloc` used to map and count in `hblkhd`).
/// It does not see memory a library maps itself, such as liburcu's rculfhash bucket index
/// (on 64-bit its default allocator reserves the index with `mmap` and populates it as the
/// table grows); the resident figure does: anonymous resident memory from
/// `/proc/self/smaps_rollup`, read after `malloc_trim(0)` has handed free heap pages back,
/// so that it counts the pages in use.
///
/// `mallinfo2` and `malloc_trim` come from `<malloc.h>`, which Swift's Glibc module does
/// not import: the C baselines target wraps them (`rcumaps_heap_bytes_in_use`,
/// `rcumaps_heap_trim`).
enum ProcessMemory {
    /// The file ``residentBytes()`` reads.
    static let rollupPath = "/proc/self/smaps_rollup"

    /// Whether ``now()`` can measure here (glibc with `mallinfo2`, `malloc_trim` and a
    /// readable ``rollupPath``).
    ///
    /// A probe allocation must show in the heap figure: under a sanitizer, whose allocator
    /// replaces malloc, `mallinfo2` sees nothing and measuring is refused.
    static let isAvailable: Bool = rcumaps_heap_figures_see_malloc() != 0 && residentBytes() != nil

    /// `uordblks + hblkhd` plus `EpochMemory.mappedBytes` now, or `nil` without `mallinfo2`.
    static func heapBytes() -> Int? {
        let bytes = rcumaps_heap_bytes_in_use()
        return bytes >= 0 ? Int(bytes) + EpochMemory.mappedBytes : nil
    }

    /// The `Anonymous:` line of ``rollupPath`` (resident anonymous memory: touched pages of
    /// the heap, of mmapped blocks, of thread stacks), in bytes; `nil` if it cannot be read.
    ///
    /// Reads into a stack buffer: allocates nothing on the heap.
    static func residentBytes() -> Int? {
        let descriptor = open(rollupPath, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { buffer -> Int? in
            var count = 0
            while count < buffer.count {
                let got = read(descriptor, buffer.baseAddress! + count, buffer.count - count)
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else { break }
                count += got
            }
            return kilobytesField("Anonymous:", in: UnsafeBufferPointer(rebasing: buffer[..<count])).map { $0 * 1024 }
        }
    }

    /// The number after `name` at the start of a line of `text` (`Anonymous:   1234 kB`).
    static func kilobytesField(_ name: StaticString, in text: UnsafeBufferPointer<UInt8>) -> Int? {
        let label = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        var lineStart = 0
        while lineStart < text.count {
            var lineEnd = lineStart
            while lineEnd < text.count && text[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            if lineEnd - lineStart > label.count,
               (0..<label.count).allSatisfy({ text[lineStart + $0] == label[$0] }) {
                var position = lineStart + label.count
                while position < lineEnd && text[position] == UInt8(ascii: " ") { position += 1 }
                var value = 0
                var digits = 0
                while position < lineEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[position]) {
                    value = value * 10 + Int(text[position] - UInt8(ascii: "0"))
                    digits += 1
                    position += 1
                }
                return digits > 0 ? value : nil
            }
            lineStart = lineEnd + 1
        }
        return nil
    }

    /// Both figures now, after `malloc_trim(0)`; `nil` if either cannot be read.
    static func now() -> MemoryReading? {
        _ = rcumaps_heap_trim()
        guard let heap = heapBytes(), let resident = residentBytes() else { return nil }
        return MemoryReading(heapBytes: heap, residentBytes: resident)
    }

    /// Pause between two readings of ``settledReading(maxReadings:)``, in nanoseconds.
    static let settleInterval: UInt64 = 5_000_000
    /// Readings in a row that must agree for the process to count as settled.
    static let settledReadings = 3
    /// Most readings ``settledReading(maxReadings:)`` takes by default before it gives up waiting (about 2 s).
    static let maxSettleReadings = 400

    /// ``now()`` once memory is quiet: after `Epoch.barrier()` (every deferred free has
    /// run), readings ``settleInterval`` apart, each after another barrier, until
    /// ``settledReadings`` in a row agree (rculfhash resizes on a worker thread of its
    /// own, which no barrier waits for). After `maxReadings`, the last reading, with
    /// `settled` false (the figures it gives are marked so: found unmarked by review,
    /// 2026-12-06).
    ///
    /// - Precondition: not inside an epoch section.
    static func settledReading(maxReadings: Int = maxSettleReadings) -> (reading: MemoryReading, settled: Bool)? {
        Epoch.barrier()
        guard var last = now() else { return nil }
        var agreeing = 1
        for _ in 1..<max(1, maxReadings) where agreeing < settledReadings {
            MonotonicClock.sleep(until: MonotonicClock.nanoseconds() + settleInterval)
            Epoch.barrier()
            guard let reading = now() else { return nil }
            agreeing = reading == last ? agreeing + 1 : 1
            last = reading
        }
        return (last, agreeing >= settledReadings)
    }

}

/// One measured cell of `rcumaps memory`: a map, a shape, an entry count.
struct MemoryCell: Sendable {
    let map: MemorySubject
    let shape: BenchShape
    /// Keys in the map (and its `maxEntries`).
    let entries: Int
    /// Heap bytes (`mallinfo2`, plus the epoch layer's mapped blocks: ``ProcessMemory/heapBytes()``)
    /// in use with the filled map alive, less those in use before it was created.
    let bytes: Int
    /// Resident anonymous bytes with the filled map alive, less those before it was created:
    /// the heap's pages plus memory the map's libraries mapped themselves.
    let residentBytes: Int
    /// Heap bytes in use after the map was destroyed, less the bytes before it was created:
    /// about 0, unless the map leaks or something else allocated during the cell.
    let residualBytes: Int
    /// Whether each of the cell's readings settled (``ProcessMemory/settledReading(maxReadings:)``);
    /// if not, its figures are the last readings taken, and the report marks them.
    var settled = true

    /// ``bytes`` per entry.
    var bytesPerEntry: Double { Double(bytes) / Double(entries) }

    /// Heap bytes per entry beyond the key and the value.
    var overheadPerEntry: Double { bytesPerEntry - Double(shape.keyBytes + shape.valueBytes) }

    /// ``residentBytes`` per entry.
    var residentBytesPerEntry: Double { Double(residentBytes) / Double(entries) }

    /// Resident bytes per entry beyond the key and the value.
    var residentOverheadPerEntry: Double { residentBytesPerEntry - Double(shape.keyBytes + shape.valueBytes) }

    /// Whether a delta of `bytes` can be a measurement of this cell: at least the keys' and
    /// values' own bytes. Below that the reading saw less than the map holds (a few entries
    /// fit in memory malloc already counted as in use, or pages already resident), and its
    /// overhead — negative — says nothing (it read as "target met": found by review,
    /// 2026-12-06).
    func measures(_ bytes: Int) -> Bool { bytes >= entries * (shape.keyBytes + shape.valueBytes) }

    /// Whether ``overheadPerEntry`` is within the SPEC target
    /// (``MemoryOptions/targetOverheadPerEntry``); `nil` for a baseline or a reading that
    /// measured nothing (``measures(_:)``).
    var withinTarget: Bool? {
        map.isBaseline || !measures(bytes) ? nil : overheadPerEntry <= Double(MemoryOptions.targetOverheadPerEntry)
    }

    /// Whether ``residentOverheadPerEntry`` is within the SPEC target; `nil` for a baseline or
    /// a reading that measured nothing.
    var residentWithinTarget: Bool? {
        map.isBaseline || !measures(residentBytes) ? nil
            : residentOverheadPerEntry <= Double(MemoryOptions.targetOverheadPerEntry)
    }
}

/// Why a memory run stopped early.
enum MemoryFailure: Error, CustomStringConvertible {
    /// `mallinfo2()`, `malloc_trim()` or `/proc/self/smaps_rollup` is not available.
    case measurementUnavailable
    /// A map could not be created or filled.
    case map(MemorySubject, MapError)

    var description: String {
        switch self {
        case .measurementUnavailable:
            "cannot measure memory: needs glibc's mallinfo2() (seeing this process's allocations: not under a sanitizer) and a readable \(ProcessMemory.rollupPath)"
        case let .map(subject, error): "cannot build the \(subject.rawValue) map: \(error)"
        }
    }
}

/// One cell of a memory run.
struct MemoryStep: Equatable, Sendable {
    let entries: Int
    let shape: BenchShape
    let map: MemorySubject
}

/// The cells `options` asks for, in order: by entry count, then shape, then map; the
/// baselines only for 8x8.
func memoryPlan(_ options: MemoryOptions) -> [MemoryStep] {
    var plan: [MemoryStep] = []
    for entries in options.entries {
        for shape in options.shapes {
            for map in options.maps where map.supports(shape) {
                plan.append(MemoryStep(entries: entries, shape: shape, map: map))
            }
        }
    }
    return plan
}

/// Runs `rcumaps memory` and prints its report.
///
/// - Returns: The exit status: 0 once every cell is measured (whether or not the target
///   is met), 1 if one could not be, 2 if the options leave nothing to measure.
func runMemory(_ options: MemoryOptions) -> Int32 {
    guard !memoryPlan(options).isEmpty else {
        writeToStandardError("rcumaps: error: none of the maps (\(options.maps.map(\.rawValue).joined(separator: ", "))) "
            + "is measured in the shapes asked for (\(options.shapes.map(\.description).joined(separator: ", "))): "
            + "nothing to measure (the baselines run only 8x8)\n")
        return 2
    }
    let cells: [MemoryCell]
    do {
        cells = try measureMemory(options, progress: true)
    } catch {
        writeToStandardError("rcumaps: \(error)\n")
        return 1
    }
    let report = MemoryReport(cells: cells)
    print(options.json ? report.json() : report.table())
    return 0
}

/// Measures every cell of ``memoryPlan(_:)`` in order.
///
/// - Parameter progress: print a line per cell on stderr as it starts, and its result.
/// - Throws: ``MemoryFailure`` for the first cell that cannot be measured.
func measureMemory(_ options: MemoryOptions, progress: Bool) throws(MemoryFailure) -> [MemoryCell] {
    guard ProcessMemory.isAvailable else { throw .measurementUnavailable }
    let plan = memoryPlan(options)
    var cells: [MemoryCell] = []
    for (number, step) in plan.enumerated() {
        if progress {
            writeToStandardError("[\(number + 1)/\(plan.count)] \(step.map.rawValue) \(step.shape) "
                + "\(step.entries) entries ... ")
        }
        let cell: MemoryCell
        do {
            cell = try measureMemoryCell(step.map, shape: step.shape, entries: step.entries)
        } catch {
            if progress { writeToStandardError("failed\n") }
            throw error
        }
        if progress {
            writeToStandardError("\(fixed(cell.bytesPerEntry, 1) ?? "-") B/entry\(cell.settled ? "" : " (memory did not settle)")\n")
        }
        cells.append(cell)
    }
    return cells
}

/// Measures one cell: the heap bytes a `subject` map with `entries` keys of `shape` uses.
///
/// A small map of the same kind is built and destroyed first, and another (the sentinel)
/// built and kept until the end, so one-time set-up (rculfhash's resize worker, which
/// lives while any table does; pool-tag counters; type metadata; the malloc cache of the
/// thread that runs deferred frees) happens before the first reading. Then: a settled reading, the map
/// created and filled in a scope of its own (``filledReading(_:shape:entries:)``, which
/// reads memory with the map alive and destroys it on return), and a last settled reading
/// for the residual. The sentinel goes and `Epoch.barrier()` runs before returning.
func measureMemoryCell(_ subject: MemorySubject, shape: BenchShape, entries: Int) throws(MemoryFailure) -> MemoryCell {
    defer { Epoch.barrier() }
    _ = try MemorySentinel(subject, shape: shape)
    let sentinel = try MemorySentinel(subject, shape: shape)
    return try withExtendedLifetime(sentinel) { () throws(MemoryFailure) -> MemoryCell in
        guard let before = ProcessMemory.settledReading() else { throw .measurementUnavailable }
        let (alive, aliveSettled) = try filledReading(subject, shape: shape, entries: entries)
        let filled = alive.since(before.reading)
        guard let after = ProcessMemory.settledReading() else { throw .measurementUnavailable }
        let released = after.reading.since(before.reading)
        return MemoryCell(map: subject, shape: shape, entries: entries, bytes: filled.heapBytes,
                          residentBytes: filled.residentBytes, residualBytes: released.heapBytes,
                          settled: before.settled && aliveSettled && after.settled)
    }
}

/// Creates a `subject` map with `maxEntries` = `entries`, fills it with `entries` distinct
/// keys of `shape` (the bench's keys and prefill values) and returns
/// ``ProcessMemory/settledReading(maxReadings:)`` read while it is alive (and whether it
/// settled). The map is destroyed on return.
func filledReading(_ subject: MemorySubject, shape: BenchShape,
                   entries: Int) throws(MemoryFailure) -> (reading: MemoryReading, settled: Bool) {
    let reading: (reading: MemoryReading, settled: Bool)?
    do {
        switch subject {
        case .hashLockFree:
            let map = try RawLockFreeHashMap(memoryDefinition(entries: entries, shape: shape, implementation: .lockFree))
            try fillHashMap(map, shape: shape, entries: entries)
            reading = withExtendedLifetime(map) { ProcessMemory.settledReading() }
        case .hashBucket:
            let map = try RawBucketHashMap(memoryDefinition(entries: entries, shape: shape, implementation: .bucketLocked))
            try fillHashMap(map, shape: shape, entries: entries)
            reading = withExtendedLifetime(map) { ProcessMemory.settledReading() }
        case .swiftDict:
            let dictionary = filledDictionary(entries: entries)
            reading = withExtendedLifetime(dictionary) { ProcessMemory.settledReading() }
        case .cRculfhash:
            let table = try filledCRculfhash(entries: entries)
            defer { rcumaps_baseline_lfht_destroy(table) }
            reading = ProcessMemory.settledReading()
        }
    } catch {
        throw .map(subject, error)
    }
    guard let reading else { throw .measurementUnavailable }
    return reading
}

/// A hash map definition for `rcumaps memory`: keys and values of `shape`, `maxEntries` = `entries`.
func memoryDefinition(entries: Int, shape: BenchShape, implementation: HashImplementation) -> MapDefinition {
    MapDefinition(type: .hash, keySize: shape.keyBytes, valueSize: shape.valueBytes, maxEntries: entries,
                  name: "memory", hashImplementation: implementation)
}

/// Inserts the bench's first `entries` keys of `shape` into `map` (`.noExist`) and checks its count.
///
/// Keys and values are built word by word on the stack (the same bytes as the bench's),
/// so filling allocates nothing but what the map does.
func fillHashMap<Map: RawMap>(_ map: Map, shape: BenchShape, entries: Int) throws(MapError) {
    _ = try HashTarget(map: map, entries: entries, keys: WordKeys(words: shape.keyWords),
                       values: WordValues(words: shape.valueWords), mode: HelperModeLookup.self)
}

/// A `[UInt64: UInt64]` created with `minimumCapacity` = `entries` (as a map gets
/// `maxEntries`) holding the bench's first `entries` keys and prefill values.
func filledDictionary(entries: Int) -> [UInt64: UInt64] {
    var dictionary = [UInt64: UInt64](minimumCapacity: entries)
    for index in 0..<entries { dictionary[BenchKeys.hashKey(index)] = BenchKeys.initialValue(index) }
    return dictionary
}

/// A C rculfhash baseline table sized for `entries` holding the bench's first `entries`
/// keys; destroy it with `rcumaps_baseline_lfht_destroy`.
func filledCRculfhash(entries: Int) throws(MapError) -> UnsafeMutablePointer<rcumaps_baseline_lfht_t> {
    guard let table = rcumaps_baseline_lfht_create(entries) else { throw MapError.noMemory }
    for index in 0..<entries {
        guard rcumaps_baseline_lfht_insert(table, BenchKeys.hashKey(index), BenchKeys.initialValue(index)) == 0 else {
            rcumaps_baseline_lfht_destroy(table)
            throw MapError.noMemory
        }
    }
    return table
}

/// A small, filled instance of a subject, kept alive while a cell of the same subject is
/// measured (see ``measureMemoryCell(_:shape:entries:)``).
final class MemorySentinel {
    /// Entries in a sentinel.
    static let entries = 64

    /// The sentinel hash map, if the subject is one of ours.
    private let map: (any RawMap)?
    /// The sentinel dictionary, for `swift-dict`.
    private let dictionary: [UInt64: UInt64]?
    /// The sentinel C table, for `c-rculfhash`; destroyed in deinit.
    private let table: UnsafeMutablePointer<rcumaps_baseline_lfht_t>?

    /// Builds a sentinel for `subject` with keys and values of `shape`.
    init(_ subject: MemorySubject, shape: BenchShape) throws(MemoryFailure) {
        let entries = Self.entries
        var map: (any RawMap)?
        var dictionary: [UInt64: UInt64]?
        var table: UnsafeMutablePointer<rcumaps_baseline_lfht_t>?
        do {
            switch subject {
            case .hashLockFree:
                let lockFree = try RawLockFreeHashMap(memoryDefinition(entries: entries, shape: shape,
                                                                    implementation: .lockFree))
                try fillHashMap(lockFree, shape: shape, entries: entries)
                map = lockFree
            case .hashBucket:
                let bucket = try RawBucketHashMap(memoryDefinition(entries: entries, shape: shape,
                                                                implementation: .bucketLocked))
                try fillHashMap(bucket, shape: shape, entries: entries)
                map = bucket
            case .swiftDict:
                dictionary = filledDictionary(entries: entries)
            case .cRculfhash:
                table = try filledCRculfhash(entries: entries)
            }
        } catch {
            throw .map(subject, error)
        }
        self.map = map
        self.dictionary = dictionary
        self.table = table
    }

    deinit {
        if let table { rcumaps_baseline_lfht_destroy(table) }
    }
}
