@testable import RCUBaseMaps
import RCUEpoch
import RCUMapsTestSupport
import Synchronization
import Testing

/// Where lookup-and-delete batches over keys resume: at the key after the last one removed
/// (`MapBatchCursor(resumingAt:)`), so that a lock-free hash finds its place at once instead
/// of walking its list from the head once per call.
@Suite("Batch cursors that resume at a key")
struct BatchResumeTests {
    /// 16-byte keys: the lock-free hash walks its list (no entry slots), as it does for any
    /// key or value over 8 bytes.
    typealias Key = (UInt64, UInt64)

    static func key(_ index: Int) -> Key { (UInt64(index) &* 0x9E37_79B9_7F4A_7C15, UInt64(index)) }

    static func makeMap(maxEntries: Int) throws -> RawLockFreeHashMap {
        try RawLockFreeHashMap(MapDefinition(type: .hash, keySize: 16, valueSize: 8, maxEntries: maxEntries))
    }

    /// One lookup-and-delete call of up to `count` elements: the keys' indexes (word 1 of each
    /// key) and the call's result. `generic` takes Linux's generic batch (custom maps' walk).
    static func drainCall(_ map: RawLockFreeHashMap, from cursor: MapBatchCursor?, count: Int,
                          generic: Bool = false) throws -> (indexes: [Int], values: [UInt64], result: MapBatchResult) {
        var keys = [UInt64](repeating: 0, count: 2 * count)
        var values = [UInt64](repeating: 0, count: count)
        let result = try keys.withUnsafeMutableBytes { k in
            try values.withUnsafeMutableBytes { v in
                generic
                    ? try map.genericLookupBatch(from: cursor, keys: k, values: v, count: count, elementFlags: [], removing: true)
                    : try map.lookupAndDeleteBatch(from: cursor, keys: k, values: v, count: count, elementFlags: [], flags: 0)
            }
        }
        return ((0..<result.count).map { Int(keys[2 * $0 + 1]) }, Array(values[..<result.count]), result)
    }

    /// Fills `map` with 2,000 entries (`index` → `index &* multiplier`), runs a pass of
    /// `call`s from cursor to cursor (each returns the indexes and values it got, and its
    /// result) to the end, and checks that every key came once, with its value, that the map
    /// ends empty, and that no call looked for a place by walking the list from its head.
    static func expectPassReturningEachKeyOnce(
        of map: RawLockFreeHashMap, multiplier: UInt64,
        _ call: (MapBatchCursor?) throws -> (indexes: [Int], values: [UInt64], result: MapBatchResult)
    ) throws {
        for index in 0..<2_000 { try map.put(Self.key(index), UInt64(index) &* multiplier) }
        var cursor: MapBatchCursor?
        var returned: [Int: Int] = [:]
        var calls = 0
        while true {
            let (indexes, values, result) = try call(cursor)
            calls += 1
            for (index, value) in zip(indexes, values) {
                returned[index, default: 0] += 1
                #expect(value == UInt64(index) &* multiplier)
            }
            if result.isEndOfMap { break }
            #expect(result.error == nil)
            cursor = result.cursor
            if calls > 1_000 { Issue.record("the pass does not end"); break }
        }
        #expect(returned.count == 2_000)
        #expect(returned.values.allSatisfy { $0 == 1 }, "a key came twice")
        #expect(map.count == 0)
        #expect(map.walksFromTheHead.load(ordering: .relaxed) == 0)
    }

    /// Draining 2,000 entries seven at a time returns each once, empties the map, and never
    /// looks for a place by walking the list from its head. Before, each call resumed after the
    /// key it had removed last and walked from the head to find where that key had been: 285
    /// walks over up to 2,000 entries, time quadratic in the map's size.
    @Test(arguments: [false, true])
    func drainingInSmallBatchesNeverWalksFromTheHead(_ generic: Bool) throws {
        let map = try Self.makeMap(maxEntries: 2_048)
        try Self.expectPassReturningEachKeyOnce(of: map, multiplier: 3) { cursor in
            try Self.drainCall(map, from: cursor, count: 7, generic: generic)
        }
    }

    /// Reading 2,000 entries seven at a time and deleting what each call returned before the
    /// next ("read, then expire") returns each key once and never walks the list from its
    /// head. Before, a lookup batch's cursor was its last key, gone by the next call, which
    /// then walked from the head to find that key's place: about 285 walks over up to 2,000
    /// entries (found by review, 2026-12-05). `generic`: Linux's generic walk (custom maps').
    @Test(arguments: [false, true])
    func readingThenDeletingInSmallBatchesNeverWalksFromTheHead(_ generic: Bool) throws {
        let map = try Self.makeMap(maxEntries: 2_048)
        var keys = [UInt64](repeating: 0, count: 14)
        var values = [UInt64](repeating: 0, count: 7)
        try Self.expectPassReturningEachKeyOnce(of: map, multiplier: 5) { cursor in
            let result = try keys.withUnsafeMutableBytes { k in
                try values.withUnsafeMutableBytes { v in
                    generic
                        ? try map.genericLookupBatch(from: cursor, keys: k, values: v, count: 7, elementFlags: [],
                                                     removing: false)
                        : try map.lookupBatch(from: cursor, keys: k, values: v, count: 7, elementFlags: [], flags: 0)
                }
            }
            let indexes = (0..<result.count).map { Int(keys[2 * $0 + 1]) }
            let deleted = try keys.withUnsafeBytes { k in
                try map.deleteBatch(keys: UnsafeRawBufferPointer(rebasing: k[..<(16 * result.count)]), count: result.count,
                                    elementFlags: [], flags: 0)
            }
            #expect(deleted.count == result.count && deleted.error == nil)
            return (indexes, Array(values[..<result.count]), result)
        }
    }

    /// A removing batch's cursor continues a lookup pass, and the other way round: every key
    /// is returned exactly once over the mixed pass.
    @Test func cursorsOfEitherKindResumeEitherKindOfPass() throws {
        let map = try Self.makeMap(maxEntries: 512)
        for index in 0..<300 { try map.put(Self.key(index), UInt64(index)) }
        var cursor: MapBatchCursor?
        var removed = Set<Int>()
        var looked = Set<Int>()
        var removing = true
        var calls = 0
        while true {
            let result: MapBatchResult
            if removing {
                let call = try Self.drainCall(map, from: cursor, count: 5)
                for index in call.indexes { #expect(removed.insert(index).inserted && !looked.contains(index)) }
                result = call.result
            } else {
                var keys = [UInt64](repeating: 0, count: 10)
                var values = [UInt64](repeating: 0, count: 5)
                result = try keys.withUnsafeMutableBytes { k in
                    try values.withUnsafeMutableBytes { v in
                        try map.lookupBatch(from: cursor, keys: k, values: v, count: 5, elementFlags: [], flags: 0)
                    }
                }
                for element in 0..<result.count {
                    let index = Int(keys[2 * element + 1])
                    #expect(looked.insert(index).inserted && !removed.contains(index))
                }
            }
            if result.isEndOfMap { break }
            cursor = result.cursor
            removing.toggle()
            calls += 1
            if calls > 1_000 { Issue.record("the pass does not end"); break }
        }
        #expect(removed.union(looked) == Set(0..<300))
        #expect(map.count == 300 - removed.count)
    }

    /// The cursor's forms: a key (resume after it) and a key with the marker byte 1 (resume at
    /// it). A cursor at a key that is gone resumes where that key would be. Other lengths
    /// and markers are EINVAL.
    @Test func aCursorAtAKeyReturnsThatKeyFirst() throws {
        let map = try Self.makeMap(maxEntries: 64)
        for index in 0..<40 { try map.put(Self.key(index), UInt64(index)) }
        let first = try Self.drainCall(map, from: nil, count: 3)
        let resume = try #require(first.result.cursor)
        #expect(resume.byteCount == 17)
        // The key it resumes at is the next one a pass returns, and still in the map.
        let resumeIndex = try resume.withResumeKey(keySize: 16) { key, atKey -> Int in
            #expect(atKey)
            return Int(key.load(fromByteOffset: 8, as: UInt64.self))
        }
        #expect((try? map.get(Self.key(resumeIndex), as: UInt64.self)) == UInt64(resumeIndex))
        let second = try Self.drainCall(map, from: resume, count: 1)
        #expect(second.indexes == [resumeIndex])
        // At a key that is gone (just removed): the pass goes on with the keys after its place.
        let third = try Self.drainCall(map, from: resume, count: 40)
        #expect(third.result.isEndOfMap)
        #expect(Set(first.indexes + second.indexes + third.indexes) == Set(0..<40))
        #expect(first.indexes.count + second.indexes.count + third.indexes.count == 40)
        // Foreign forms.
        for bytes in [[UInt8](repeating: 0, count: 15), [UInt8](repeating: 0, count: 17), [UInt8](repeating: 1, count: 18)] {
            #expect(throws: MapError.invalidArgument) {
                try Self.drainCall(map, from: MapBatchCursor(bytes: bytes), count: 1)
            }
        }
    }

    /// Writers insert fresh keys while two threads drain the map in small lookup-and-delete
    /// batches (one the lock-free walk, one the generic walk): every key inserted is returned
    /// exactly once or is still in the map.
    @Test func concurrentDrainsOfAListWalkingMapLoseNothing() throws {
        let map = try Self.makeMap(maxEntries: 8_192)
        let writersDone = Atomic<Int>(0)
        let returned = ThreadLock<[Int: Int]>([:])
        let inserted = ThreadLock<Set<Int>>([])
        let wrongValues = Atomic<Int>(0)
        runOnThreads(4) { thread in
            if thread < 2 {
                for round in 0..<60 {
                    var mine: [Int] = []
                    for offset in 0..<40 {
                        let index = thread * 1_000_000 + round * 100 + offset
                        if (try? map.put(Self.key(index), UInt64(index) &* 3, flags: .noExist)) != nil { mine.append(index) }
                    }
                    inserted.withLock { $0.formUnion(mine) }
                }
                writersDone.add(1, ordering: .releasing)
            } else {
                var passes = 0
                while passes < 20 || writersDone.load(ordering: .acquiring) < 2 {
                    passes += 1
                    var cursor: MapBatchCursor?
                    while let call = try? Self.drainCall(map, from: cursor, count: 6, generic: thread == 3) {
                        for (index, value) in zip(call.indexes, call.values) where value != UInt64(index) &* 3 {
                            wrongValues.add(1, ordering: .relaxed)
                        }
                        returned.withLock { counts in for index in call.indexes { counts[index, default: 0] += 1 } }
                        if call.result.error != nil { break }
                        cursor = call.result.cursor
                    }
                }
            }
        }
        let counts = returned.withLock { $0 }
        let all = inserted.withLock { $0 }
        var left = Set<Int>()
        for index in all where (try? map.get(Self.key(index), as: UInt64.self)) != nil { left.insert(index) }
        #expect(!counts.isEmpty)
        #expect(counts.values.allSatisfy { $0 == 1 }, "a key was returned twice")
        #expect(wrongValues.load(ordering: .relaxed) == 0)
        #expect(left.isDisjoint(with: counts.keys))
        #expect(left.union(counts.keys) == all)
        #expect(map.count == left.count)
    }
}
