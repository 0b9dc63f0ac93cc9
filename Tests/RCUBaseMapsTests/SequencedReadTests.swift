import Foundation
@testable import RCUBaseMaps
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// The arrays' sequenced reads of values over 8 bytes cannot be starved: a writer
/// rewriting one large value back to back (each write shorter than a reader's copy, so the
/// slot is never quiet for a whole copy) kept a lookup retrying for as long as it ran —
/// found by review, 2026-12-05; on the code before the fix each reader below waited for the
/// watchdog. Every value read is checked whole (each write stores one pattern in every word).
@Suite("Sequenced reads")
struct SequencedReadTests {
    final class Run: @unchecked Sendable {
        let done = Atomic<Bool>(false)
        let watchdogFired = Atomic<Bool>(false)
        let torn = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        /// Reads that failed, or left a word no write stores (the poison the buffer holds
        /// before each read: a read that copied nothing), or a word neither value has.
        let failed = Atomic<Int>(0)
        /// Preallocated and filled before the race, so that the writer's writes follow each
        /// other with almost no gap: two values (every word 1, every word 2) and the
        /// reader's buffer.
        let values: [UnsafeMutableRawBufferPointer]
        let read: UnsafeMutableRawBufferPointer

        init(writtenBytes: Int, readBytes: Int) {
            values = (1...2).map { pattern in
                let value = UnsafeMutableRawBufferPointer.allocate(byteCount: writtenBytes, alignment: 8)
                value.bindMemory(to: UInt64.self).update(repeating: UInt64(pattern))
                return value
            }
            read = .allocate(byteCount: readBytes, alignment: 8)
        }

        func value(_ pattern: UInt64) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(values[Int(pattern & 1)]) }

        deinit {
            values.forEach { $0.deallocate() }
            read.deallocate()
        }
    }

    /// A writer rewriting entry 0 until the reader is done (or a 20 s watchdog fires), a
    /// reader making `reads` reads through `read`, which answers whether it succeeded; each
    /// read must succeed, every word must be 1 or 2 (the two values written) or 0 (a slot not
    /// written yet, or another CPU's), and all words equal, or, with `piece`, each run of
    /// `piece` words (per-CPU values: each CPU's slot is copied under its own sequence word,
    /// so the CPUs may show different writes). The buffer is poisoned before each read:
    /// before, a failed read (`try?`) left the last whole value in place and passed (found
    /// by review, 2026-12-05, eighteenth session).
    func race(_ run: Run, reads: Int, piece: Int? = nil, write: @escaping @Sendable (UInt64) -> Void,
              read: @escaping @Sendable () -> Bool) {
        runOnThreads(3) { role in
            switch role {
            case 0:
                var pattern: UInt64 = 1
                while !run.done.load(ordering: .acquiring) {
                    write(pattern)
                    pattern &+= 1
                }
            case 1:
                for _ in 0..<reads {
                    let words = run.read.bindMemory(to: UInt64.self)
                    words.update(repeating: 0xDEAD_BEEF_DEAD_BEEF)
                    if !read() || words.contains(where: { $0 > 2 }) { run.failed.wrappingAdd(1, ordering: .relaxed) }
                    let size = piece ?? words.count
                    for start in stride(from: 0, to: words.count, by: size)
                    where words[start..<Swift.min(start + size, words.count)].contains(where: { $0 != words[start] }) {
                        run.torn.wrappingAdd(1, ordering: .relaxed)
                    }
                    run.reads.wrappingAdd(1, ordering: .relaxed)
                }
                run.done.store(true, ordering: .releasing)
            default:
                watchdog(seconds: 20, isDone: { run.done.load(ordering: .acquiring) }) {
                    run.watchdogFired.store(true, ordering: .relaxed)
                    run.done.store(true, ordering: .releasing)
                }
            }
        }
    }

    @Test func anArrayLookupIsNotStarvedByAWriterOfItsSlot() throws {
        try expectArrayReadsOfSlotZeroNotStarved(maxEntries: 2) { map, run in
            (try? withUnsafeBytes(of: UInt32(0)) { try map.lookup(key: $0, into: run.read) }) != nil
        }
    }

    /// The lookup batch copies each value the same way.
    @Test func anArrayLookupBatchIsNotStarvedByAWriterOfItsSlot() throws {
        try expectArrayReadsOfSlotZeroNotStarved(maxEntries: 1) { map, run in
            var key: UInt32 = 0
            let result = try? withUnsafeMutableBytes(of: &key) { keys in
                try map.lookupBatch(from: nil, keys: keys, values: run.read, count: 1, elementFlags: [], flags: 0)
            }
            return result?.count == 1 && key == 0
        }
    }

    /// An ARRAY of 64 KiB values, one writer rewriting slot 0 back to back, and 50 reads of
    /// it by `read`: none may wait out the 20 s watchdog, none may be torn.
    func expectArrayReadsOfSlotZeroNotStarved(maxEntries: Int,
                                              read: @escaping @Sendable (RawArrayMap, Run) -> Bool) throws {
        let valueSize = 1 << 16
        let map = try RawArrayMap(MapDefinition(type: .array, keySize: 4, valueSize: valueSize, maxEntries: maxEntries,
                                                poolTag: uniqueTag()))
        let run = Run(writtenBytes: valueSize, readBytes: valueSize)
        race(run, reads: 50, write: { pattern in
            try? withUnsafeBytes(of: UInt32(0)) { try map.update(key: $0, value: run.value(pattern), flags: .any) }
        }, read: { read(map, run) })
        let fired = run.watchdogFired.load(ordering: .relaxed), reads = run.reads.load(ordering: .relaxed)
        #expect(!fired, "\(reads) of 50 reads in 20 s")
        let torn = run.torn.load(ordering: .relaxed)
        #expect(torn == 0)
        #expect(run.failed.load(ordering: .relaxed) == 0, "reads that failed or copied no value")
    }

    @Test func aPerCPUArrayLookupIsNotStarvedByAWriterOfItsSlots() throws {
        let valueSize = 32768  // Linux's limit for per-CPU values
        let map = try RawPerCPUArrayMap(MapDefinition(type: .perCPUArray, keySize: 4, valueSize: valueSize, maxEntries: 1,
                                                      poolTag: uniqueTag()))
        // Helper-mode writes: the calling CPU's value alone, back to back. (User-mode writes
        // of every CPU's value leave each slot quiet while they write the others.)
        let run = Run(writtenBytes: valueSize, readBytes: map.userValueSize)
        // 25 reads, not 50: each copies every CPU's 32 KiB value, and under the thread
        // sanitizer, beside the rest of the suite, 50 of them took just over the watchdog's
        // 20 s once (2026-12-06; alone, 19 s). A starved read never ends, whatever the count.
        race(run, reads: 25, piece: valueSize / 8, write: { pattern in
            try? Epoch.withSection { section in
                try withUnsafeBytes(of: UInt32(0)) { try map.update(key: $0, value: run.value(pattern), flags: .any, in: section) }
            }
        }, read: {
            (try? withUnsafeBytes(of: UInt32(0)) { try map.lookup(key: $0, into: run.read) }) != nil
        })
        let fired = run.watchdogFired.load(ordering: .relaxed), reads = run.reads.load(ordering: .relaxed)
        #expect(!fired, "\(reads) of 25 reads in 20 s")
        let torn = run.torn.load(ordering: .relaxed)
        #expect(torn == 0, "\(torn) CPU values torn")
        #expect(run.failed.load(ordering: .relaxed) == 0, "reads that failed or copied no value")
    }

    /// A reader that meets one write in progress waits for it and copies optimistically: it
    /// does not hold the slot. Before, each look at the odd word spent one of its sixteen
    /// tries, so one write longer than sixteen loads sent the reader to hold the slot, and
    /// readers arriving while it held it did the same, one at a time (found by review,
    /// 2026-12-05). The copy sees the word as the reader left it: held, bit 0 and the
    /// writer bit set.
    @Test func aReaderWaitsForAWriteInProgressWithoutHoldingTheSlot() throws {
        final class Slot: @unchecked Sendable {
            let word = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 1)
            let heldDuringCopy = Atomic<Bool>(false)
            init() { word.initialize(to: Atomic(5)) }  // a write in progress
            deinit { word.deallocate() }
        }
        let slot = Slot()
        // The reader is this thread, so it is reading before the write ends: a helper ends
        // the write 20 ms later. (With the roles the other way round, a reader thread
        // scheduled late found the write over, and the code before the fix passed.)
        Thread {
            usleep(20_000)
            slot.word.pointee.store(6, ordering: .releasing)  // the write ends
        }.start()
        let held = SequencedReads.copy(guardedBy: slot.word, extraBits: RawArrayMap.writerBit) {
            if slot.word.pointee.load(ordering: .relaxed) & RawArrayMap.writerBit != 0 {
                slot.heldDuringCopy.store(true, ordering: .relaxed)
            }
        }
        let heldDuringCopy = slot.heldDuringCopy.load(ordering: .relaxed)
        #expect(!heldDuringCopy, "the reader held the slot after one write")
        #expect(!held)
        #expect(slot.word.pointee.load(ordering: .acquiring) == 6)
    }

    /// A `BPF_F_LOCK` lookup of an array value over 8 bytes reads it under the slot's
    /// sequence word too: a plain update, which takes only that word, is not excluded by the
    /// value's lock. Here a plain write is halfway (the word odd, half the words of the new
    /// value stored) when the locked lookup starts, and ends 50 ms later: the lookup must
    /// return the old value or the new one whole. Before, it copied under the lock alone, at
    /// once: half old, half new (found by review, 2026-12-05).
    @Test func aLockedArrayLookupIsNotTornByAPlainWrite() throws {
        let map = try RawArrayMap(MapDefinition(type: .array, keySize: 4, valueSize: 64, maxEntries: 1, poolTag: uniqueTag(),
                                                lockOffset: 0))
        let old = [UInt64](repeating: 0xAAAA_AAAA_0000_0000, count: 8)
        try withUnsafeBytes(of: UInt32(0)) { key in
            try old.withUnsafeBytes { try map.update(key: key, value: $0, flags: .any) }
        }
        final class Write: @unchecked Sendable {
            let slot: UnsafeMutableRawPointer
            let sequence: UnsafeMutablePointer<Atomic<UInt64>>
            let value: UnsafeMutableRawPointer
            init(_ map: RawArrayMap) {
                slot = map.slot(0)
                sequence = map.word(slot)
                value = slot + map.valueOffset
            }
            /// Stores `pattern` into words `range` of the value (word 0's lock half kept).
            func store(_ pattern: UInt64, words range: Range<Int>) {
                for index in range {
                    let word = (value + 8 * index).assumingMemoryBound(to: Atomic<UInt64>.self)
                    let keep = index == 0 ? word.pointee.load(ordering: .relaxed) & 0xFFFF_FFFF : 0
                    word.pointee.store(index == 0 ? (pattern & ~0xFFFF_FFFF) | keep : pattern, ordering: .relaxed)
                }
            }
        }
        let write = Write(map)
        let start = write.sequence.pointee.load(ordering: .acquiring)
        #expect(start & 1 == 0)
        write.sequence.pointee.store(start + 1, ordering: .relaxed)  // a plain write begins
        write.store(0xBBBB_BBBB_0000_0000, words: 0..<4)
        Thread {
            usleep(50_000)
            write.store(0xBBBB_BBBB_0000_0000, words: 4..<8)
            write.sequence.pointee.store(start + 2, ordering: .releasing)
        }.start()
        var read = [UInt64](repeating: 0, count: 8)
        try withUnsafeBytes(of: UInt32(0)) { key in
            try read.withUnsafeMutableBytes { try map.lookup(key: key, into: $0, flags: .lock) }
        }
        while write.sequence.pointee.load(ordering: .acquiring) != start + 2 { usleep(1_000) }
        // (The copy's lock word, word 0's low half, reads 0, as each pattern's low half.)
        #expect(Set(read).count == 1, "torn: \(read.map { String($0, radix: 16) })")
    }

    /// The fallback does not wait for a provider writer that holds the slot (the writer bit)
    /// while its pre-deletion callback runs: the value cannot change until that writer sets
    /// bit 0, so it copies optimistically. Waiting could deadlock with a callback that waits
    /// for the reader's caller (found by review, 2026-12-05: the first version waited).
    @Test func theFallbackCopiesPastAWriterInItsCallback() throws {
        final class Slot: @unchecked Sendable {
            let word = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 1)
            let copied = Atomic<Bool>(false)
            init() { word.initialize(to: Atomic(RawArrayMap.writerBit | 4)) }  // held, bit 0 clear
            deinit { word.deallocate() }
        }
        let slot = Slot()
        Thread {
            SequencedReads.copyHoldingSlot(slot.word, extraBits: RawArrayMap.writerBit) {}
            slot.copied.store(true, ordering: .releasing)
        }.start()
        let deadline = Date().addingTimeInterval(5)
        while !slot.copied.load(ordering: .acquiring), Date() < deadline { usleep(1_000) }
        let copied = slot.copied.load(ordering: .acquiring)
        // Let a waiting fallback go (the old code), so that the thread ends either way.
        slot.word.pointee.store(4, ordering: .releasing)
        while !slot.copied.load(ordering: .acquiring) { usleep(1_000) }
        #expect(copied, "the fallback waited for the writer bit")
        #expect(slot.word.pointee.load(ordering: .acquiring) == 4)
    }
}
