import Glibc
import RCUMaps
import RCUMapsTestSupport
import Testing

/// Maps dropped inside a section are torn down by one thread, in order, once the section
/// ends (reliability.md row 317): a thread a drop left a thousand threads blocked while one
/// section lasted.
@Suite(.serialized) struct TeardownQueueTests {
    /// The process's threads now (`/proc/self/task`).
    static func threadCount() -> Int {
        guard let directory = opendir("/proc/self/task") else { return -1 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { count += 1 }
        }
        return count
    }

    @Test func mapsDroppedInsideOneSectionShareOneTeardownThread() throws {
        let bigTag = uniqueTag()
        let smallTag = uniqueTag()
        let threadsBefore = Self.threadCount()
        var during = 0
        var pendingDuring = 0
        try Epoch.withSection { _ in
            // Its deletes at teardown queue a shrink of its table, which waits for this
            // section: its destroy waits here, and every destroy after it behind it.
            // (liburcu asks for the shrink when a per-CPU count of the deletes crosses a
            // multiple of 1,024 and is committed: with 2,048 entries that did not always
            // happen, 1 run in 3 under TSan; 16,384 entries cross it many times.)
            var big: RawLockFreeHashMap? = try RawLockFreeHashMap(MapDefinition(
                type: .hash, keySize: 8, valueSize: 8, maxEntries: 32_768, hashImplementation: .lockFree, poolTag: bigTag))
            for key in UInt64(0)..<16_384 { try big!.put(key, key) }
            big = nil
            for _ in 0..<300 {
                _ = try RawLockFreeHashMap(MapDefinition(type: .hash, keySize: 8, valueSize: 8, maxEntries: 16,
                                                         hashImplementation: .lockFree, poolTag: smallTag))
            }
            during = Self.threadCount()
            pendingDuring = TeardownQueue.statistics.pending
        }
        // One teardown thread (other suites running meanwhile may start a few of their own).
        #expect(during - threadsBefore <= 8, "\(during - threadsBefore) more threads while the section lasted")
        // (Not the threads started: a drop after the queue emptied starts the next one, and
        // other suites' drops meanwhile do too; what must not grow is the threads alive.)
        #expect(pendingDuring > 0, "nothing waited for the section")
        // Once the section ends, every queued teardown runs: the maps' memory comes back.
        var waited = 0
        while TeardownQueue.statistics.pending > 0, waited < 2_000 {
            usleep(10_000)
            waited += 1
        }
        #expect(TeardownQueue.statistics.pending == 0)
        #expect(settledStatistics(for: bigTag).liveBytes == 0)
        #expect(settledStatistics(for: smallTag).liveBytes == 0)
    }
}
