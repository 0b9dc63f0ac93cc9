import Glibc
import RCUMaps
import Testing

/// Typed batches size their buffers by bytes as well as by entries (row 313).
@Suite struct TypedBatchSizeTests {
    /// A value of one mebibyte (8-byte words: `InlineArray` of bytes takes long to compile).
    typealias WideValue = InlineArray<131_072, UInt64>

    /// How many entries a call's buffers hold: `largestBatch` for narrow pairs, what fits
    /// in `largestBatchBytes` for wide ones, never fewer than one.
    @Test func aCallHoldsWhatFitsInItsByteBudget() {
        typealias Narrow = BucketHashMap<UInt64, UInt64>
        #expect(Narrow.batchRoom(keyBytes: 8, valueBytes: 8) == Narrow.largestBatch)
        #expect(Narrow.batchRoom(keyBytes: 4, valueBytes: 1 << 20) == Narrow.largestBatchBytes / (4 + (1 << 20)))
        #expect(Narrow.batchRoom(keyBytes: 4, valueBytes: 4_194_000) == 16)
        #expect(Narrow.batchRoom(keyBytes: 4, valueBytes: Int.max) == 1)
        #expect(Narrow.batchRoom(keyBytes: 0, valueBytes: 0) == Narrow.largestBatch)
    }

    /// A map of wide values with a large capacity, holding two entries: every typed batch
    /// call works in calls of what fits in 64 MiB. Sized by entries alone, the first call
    /// asked malloc for 65,537 MiB of values and stopped the process (found by review,
    /// 2026-12-07; in its own process, as the failure it guards against ends one).
    @Test func wideValuesAreBatchedWithoutAllocatingForTheWholeCount() async {
        await #expect(processExitsWith: .success) {
            let map = try LockFreeHashMap<UInt32, TypedBatchSizeTests.WideValue>(maxEntries: 65_536)
            try map.updateValue(TypedBatchSizeTests.WideValue(repeating: 1), forKey: 1)
            try map.updateValue(TypedBatchSizeTests.WideValue(repeating: 2), forKey: 2)
            let read = try map.lookupBatch(maxCount: 65_536)
            guard read.isComplete, Set(read.entries.map(\.key)) == [1, 2],
                  read.entries.allSatisfy({ $0.value[131_071] == UInt64($0.key) }) else { exit(1) }
            try map.updateValues((3...70).map { (UInt32($0), TypedBatchSizeTests.WideValue(repeating: UInt64($0))) })
            guard map.count == 70 else { exit(2) }
            var removed = 0
            var batch = try map.removeBatch(maxCount: 65_536)
            while true {
                // At most what fits in 64 MiB a call: 63 mebibyte values.
                guard batch.entries.count <= 63 else { exit(3) }
                removed += batch.entries.count
                if batch.isComplete { break }
                batch = try map.removeBatch(from: batch.cursor, maxCount: 65_536)
            }
            guard removed == 70, map.isEmpty else { exit(4) }
            exit(0)
        }
    }
}
