import Foundation
@testable import RCUBaseMaps
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// Linux's batch operations (`BPF_MAP_*_BATCH`), errno for errno, on both HASH
/// implementations and ARRAY; custom maps in RCUMapProvidersTests.
@Suite("Batch operations")
struct BatchTests {
    typealias Kind = LinuxInterfaceTests.Kind

    /// Buffers for `count` UInt32 keys and UInt64 values.
    final class Buffers {
        var keys: [UInt32]
        var values: [UInt64]
        init(_ count: Int) {
            keys = .init(repeating: 0, count: count)
            values = .init(repeating: 0, count: count)
        }
    }

    func lookup(_ map: any RawMap, _ buffers: Buffers, from cursor: MapBatchCursor?, count: Int,
                removing: Bool = false, elementFlags: MapElementFlags = [], flags: UInt64 = 0) throws -> MapBatchResult {
        try buffers.keys.withUnsafeMutableBytes { k in
            try buffers.values.withUnsafeMutableBytes { v in
                removing
                    ? try map.lookupAndDeleteBatch(from: cursor, keys: k, values: v, count: count, elementFlags: elementFlags, flags: flags)
                    : try map.lookupBatch(from: cursor, keys: k, values: v, count: count, elementFlags: elementFlags, flags: flags)
            }
        }
    }

    /// Writes key 1 of `map` (16-byte values) again and again, each time a new value of two
    /// equal words, until `stop`.
    static func replaceKeyOne(in map: any RawMap, until stop: borrowing Atomic<Bool>, flags: MapUpdateFlags = .any) {
        var round: UInt64 = 0
        while !stop.load(ordering: .relaxed) {
            round &+= 1
            try? map.put(UInt32(1), (round, round), flags: flags)
        }
    }

    func update(_ map: any RawMap, keys: [UInt32], values: [UInt64], elementFlags: MapElementFlags = []) throws -> MapBatchResult {
        try keys.withUnsafeBytes { k in
            try values.withUnsafeBytes { v in
                try map.updateBatch(keys: k, values: v, count: keys.count, elementFlags: elementFlags, flags: 0)
            }
        }
    }

    func delete(_ map: any RawMap, keys: [UInt32]) throws -> MapBatchResult {
        try keys.withUnsafeBytes { try map.deleteBatch(keys: $0, count: keys.count, elementFlags: [], flags: 0) }
    }

    func errno(_ body: () throws -> Void) -> Int32 {
        do { try body(); return 0 } catch let error as MapError { return error.code } catch { return -1 }
    }

    /// A full batch that leaves no element after it ends the pass: ENOENT with the full
    /// count, as Linux's batch, which scans on past its last element. The lock-free HASH's
    /// slot sweep answered success when free slots (a deleted key's, below the slots'
    /// high-water mark) followed the last entry, and one more call found nothing (found by
    /// review, 2026-12-06).
    @Test(arguments: [Kind.lockFree, .bucket], [false, true])
    func aFullBatchThatEndsTheMapIsENOENT(_ kind: Kind, removing: Bool) throws {
        let map = try LinuxInterfaceTests.make(kind, maxEntries: 16)
        for key: UInt32 in 1...4 { try map.put(key, UInt64(key) &* 10) }
        try map.remove(UInt32(4))
        let buffers = Buffers(3)
        let result = try lookup(map, buffers, from: nil, count: 3, removing: removing)
        #expect(result.count == 3)
        #expect(result.error == .keyNotFound)
        #expect(Set(buffers.keys) == [1, 2, 3])
        #expect(buffers.values.sorted() == [10, 20, 30])
        #expect(map.count == (removing ? 0 : 3))
    }

    /// A whole pass in small batches returns every element once; the last call is ENOENT.
    @Test(arguments: Kind.allCases)
    func aPassInBatchesReturnsEveryElementOnce(_ kind: Kind) throws {
        let map = try LinuxInterfaceTests.make(kind, maxEntries: 300)
        let keys = kind == .array ? Array(UInt32(0)..<300) : (0..<250).map { UInt32($0) &* 2_654_435_761 }
        for key in keys { try map.put(key, UInt64(key) ^ 0xABCD) }
        var seen: [UInt32: UInt64] = [:]
        var cursor: MapBatchCursor?
        let buffers = Buffers(16)
        var calls = 0
        while true {
            let result = try lookup(map, buffers, from: cursor, count: 16)
            calls += 1
            #expect(result.count <= 16)
            for index in 0..<result.count {
                #expect(seen.updateValue(buffers.values[index], forKey: buffers.keys[index]) == nil, "a key came twice")
            }
            if result.isEndOfMap { break }
            #expect(result.error == nil || result.error == .noSpace, "\(String(describing: result.error))")
            cursor = result.cursor
            if calls > 1_000 { Issue.record("the pass does not end"); break }
        }
        #expect(Set(seen.keys) == Set(keys))
        for (key, value) in seen { #expect(value == UInt64(key) ^ 0xABCD) }
        #expect(map.count == (kind == .array ? 300 : keys.count))
    }

    @Test(arguments: Kind.allCases)
    func countZeroAndTheEndOfTheMap(_ kind: Kind) throws {
        let map = try LinuxInterfaceTests.make(kind, maxEntries: 4)
        if kind != .array { for key in UInt32(0)..<3 { try map.put(key, UInt64(key)) } }
        let buffers = Buffers(8)
        // count 0: nothing done, nothing written, no error.
        let none = try lookup(map, buffers, from: nil, count: 0)
        #expect(none == MapBatchResult(count: 0, cursor: nil, error: nil))
        // Everything at once: ENOENT with the elements.
        let all = try lookup(map, buffers, from: nil, count: 8)
        #expect(all.error == .keyNotFound)
        #expect(all.count == (kind == .array ? 4 : 3))
        // From the end cursor: ENOENT, nothing.
        let after = try lookup(map, buffers, from: all.cursor, count: 8)
        #expect(after.error == .keyNotFound && after.count == 0)
    }

    @Test(arguments: Kind.allCases)
    func flagsAndBuffersAreChecked(_ kind: Kind) throws {
        let map = try LinuxInterfaceTests.make(kind)
        let buffers = Buffers(4)
        #expect(errno { _ = try lookup(map, buffers, from: nil, count: 4, elementFlags: MapElementFlags(rawValue: 1)) } == EINVAL)
        #expect(errno { _ = try lookup(map, buffers, from: nil, count: 4, elementFlags: .lock) } == EINVAL)  // no lock word
        // batch.flags: hash maps require 0; Linux's generic (array) batch ignores it.
        #expect(errno { _ = try lookup(map, buffers, from: nil, count: 4, flags: 1) } == (kind == .array ? 0 : EINVAL))
        #expect(errno { _ = try lookup(map, buffers, from: nil, count: 5) } == EINVAL)  // buffers hold 4
        // Linux 6.18's update batch takes 0 or BPF_F_LOCK only: NOEXIST / EXIST are EINVAL.
        #expect(errno { _ = try update(map, keys: [1], values: [1], elementFlags: MapElementFlags(rawValue: 1)) } == EINVAL)
        #expect(errno { _ = try update(map, keys: [1], values: [1], elementFlags: MapElementFlags(rawValue: 2)) } == EINVAL)
    }

    /// An array's batch lookup returns, for every value layout (one word, padded, with a
    /// sequence word, an mmapable array's values back to back), the bytes single lookups
    /// return, into unaligned buffers, resuming from cursors in the middle of the array.
    @Test(arguments: [4, 8, 12, 16], [false, true])
    func arrayBatchesCopyEveryValueLayout(_ valueSize: Int, _ mmapable: Bool) throws {
        let flags: MapCreationFlags = mmapable ? .mmapable : []
        let entries = 37
        let map = try LinuxInterfaceTests.make(.array, valueSize: valueSize, maxEntries: entries, flags: flags)
        func valueBytes(_ index: Int) -> [UInt8] { (0..<valueSize).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0 &* 7 &+ 1) } }
        for index in 0..<entries {
            var key = UInt32(index)
            try withUnsafeBytes(of: &key) { key in
                try valueBytes(index).withUnsafeBytes { try map.update(key: key, value: $0, flags: .any) }
            }
        }
        // One byte in: neither buffer is aligned for its keys or values.
        var keys = [UInt8](repeating: 0xEE, count: 1 + entries * 4 + 1)
        var values = [UInt8](repeating: 0xEE, count: 1 + entries * valueSize + 1)
        for batch in [1, 3, 5, 8, 13] {
            var cursor: MapBatchCursor?
            var next = 0
            var calls = 0
            while true {
                for index in keys.indices { keys[index] = 0xEE }
                for index in values.indices { values[index] = 0xEE }
                let result = try keys.withUnsafeMutableBytes { k in
                    try values.withUnsafeMutableBytes { v in
                        try map.lookupBatch(from: cursor, keys: UnsafeMutableRawBufferPointer(rebasing: k[1...]),
                                            values: UnsafeMutableRawBufferPointer(rebasing: v[1...]), count: batch,
                                            elementFlags: [], flags: 0)
                    }
                }
                calls += 1
                #expect(result.count == min(batch, entries - next))
                for element in 0..<result.count {
                    let key = keys[1 + element * 4 ..< 1 + element * 4 + 4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
                    #expect(Int(key) == next + element)
                    #expect(Array(values[1 + element * valueSize ..< 1 + (element + 1) * valueSize]) == valueBytes(next + element),
                            "value \(next + element) of \(valueSize) bytes, batches of \(batch)")
                }
                // Nothing outside the elements returned is written.
                #expect(values[1 + result.count * valueSize ..< values.count].allSatisfy { $0 == 0xEE } && values[0] == 0xEE)
                #expect(keys[1 + result.count * 4 ..< keys.count].allSatisfy { $0 == 0xEE } && keys[0] == 0xEE)
                next += result.count
                if result.isEndOfMap { break }
                #expect(result.error == nil)
                cursor = result.cursor
                if calls > entries + 2 { Issue.record("the pass does not end"); break }
            }
            #expect(next == entries)
        }
    }

    /// Arrays have no lookup-and-delete or delete batch: ENOTSUPP (524), after the access checks.
    @Test func arraysLackTheDeletingBatches() throws {
        let map = try LinuxInterfaceTests.make(.array)
        let buffers = Buffers(4)
        #expect(errno { _ = try lookup(map, buffers, from: nil, count: 4, removing: true) } == 524)
        #expect(errno { _ = try delete(map, keys: [1]) } == 524)
        let readOnly = try LinuxInterfaceTests.make(.array, flags: .readOnly)
        #expect(errno { _ = try delete(readOnly, keys: [1]) } == EPERM)
        let writeOnly = try LinuxInterfaceTests.make(.array, flags: .writeOnly)
        #expect(errno { _ = try lookup(writeOnly, buffers, from: nil, count: 4) } == EPERM)
    }

    /// Update and delete batches stop at the first failure and count what they did.
    @Test(arguments: [Kind.lockFree, .bucket])
    func updateAndDeleteBatchesStopAtTheFirstFailure(_ kind: Kind) throws {
        let map = try LinuxInterfaceTests.make(kind, maxEntries: 4)
        let stored = try update(map, keys: [1, 2, 3, 4, 5, 6], values: [10, 20, 30, 40, 50, 60])
        #expect(stored == MapBatchResult(count: 4, cursor: nil, error: .outOfSpace))  // the 5th: full
        #expect(map.count == 4)
        let deleted = try delete(map, keys: [1, 2, 9, 3])
        #expect(deleted == MapBatchResult(count: 2, cursor: nil, error: .keyNotFound))  // 9 is absent
        #expect(map.count == 2)
        #expect(try map.get(UInt32(3), as: UInt64.self) == 30)
        let array = try LinuxInterfaceTests.make(.array, maxEntries: 4)
        #expect(try update(array, keys: [0, 3, 4, 1], values: [1, 2, 3, 4]) == MapBatchResult(count: 2, cursor: nil, error: .outOfSpace))
    }

    /// The bucket-locked hash returns whole buckets, as Linux's hash maps: a bucket larger
    /// than the room left ends the call there, ENOSPC if nothing was copied yet, with nothing
    /// written to the buffers; a larger buffer from the same cursor gets it.
    @Test func bucketBatchesAreWholeBucketsAndENOSPC() throws {
        let map = try RawBucketHashMap(MapDefinition(type: .hash, keySize: 4, valueSize: 8, maxEntries: 8,
                                                     hashImplementation: .bucketLocked), observer: nil, bucketCount: 1)
        for key in UInt32(0)..<5 { try map.put(key, UInt64(key)) }  // one chain of 5
        let buffers = Buffers(8)
        buffers.keys = .init(repeating: 0xEEEE, count: 8)
        buffers.values = .init(repeating: 0xEEEE, count: 8)
        for removing in [false, true] {
            let small = try lookup(map, buffers, from: nil, count: 3, removing: removing)
            #expect(small.error == .noSpace && small.count == 0)
            // Nothing is written past what the call returns (Linux copies a bucket out whole).
            #expect(buffers.keys.allSatisfy { $0 == 0xEEEE } && buffers.values.allSatisfy { $0 == 0xEEEE })
            #expect(map.count == 5)
        }
        let small = try lookup(map, buffers, from: nil, count: 3)
        let big = try lookup(map, buffers, from: small.cursor, count: 8)
        #expect(big.count == 5 && big.error == .keyNotFound)
    }

    /// A replace of a value over 8 bytes publishes the new pair before it retires the old
    /// one; a lookup batch that reads the chain between the two must still return the key
    /// once (Linux's batches lock each bucket and never return a key twice).
    /// (5,000 passes: each waits for the chain's lock, which the writer retakes at once, so
    /// a pass costs about a millisecond, and several alongside the rest of the suite; the
    /// code before the fix failed about once in 170 passes.)
    @Test func bucketBatchesReturnAKeyBeingReplacedOnce() throws {
        let map = try RawBucketHashMap(MapDefinition(type: .hash, keySize: 4, valueSize: 16, maxEntries: 8,
                                                     hashImplementation: .bucketLocked), observer: nil, bucketCount: 1)
        for key in UInt32(1)...3 { try map.put(key, (UInt64(key), UInt64(key))) }
        let stop = Atomic<Bool>(false)
        let duplicates = Atomic<Int>(0)
        let incomplete = Atomic<Int>(0)
        runOnThreads(2) { thread in
            if thread == 0 {
                Self.replaceKeyOne(in: map, until: stop)
            } else {
                var keys = [UInt32](repeating: 0, count: 8)
                var values = [UInt64](repeating: 0, count: 16)
                for _ in 0..<5_000 {
                    let result = keys.withUnsafeMutableBytes { k in
                        values.withUnsafeMutableBytes { v in
                            try? map.lookupBatch(from: nil, keys: k, values: v, count: 8, elementFlags: [], flags: 0)
                        }
                    }
                    guard let result else { incomplete.add(1, ordering: .relaxed); continue }
                    let returned = keys[..<result.count]
                    if Set(returned).count != returned.count { duplicates.add(1, ordering: .relaxed) }
                    if Set(returned) != [1, 2, 3] { incomplete.add(1, ordering: .relaxed) }
                }
                stop.store(true, ordering: .relaxed)
            }
        }
        #expect(duplicates.load(ordering: .relaxed) == 0)
        #expect(incomplete.load(ordering: .relaxed) == 0)
    }

    /// The lock-free hash's list walk (values over 8 bytes): a full batch that takes the
    /// map's last key ends the pass (ENOENT in the same call), also while that key is being
    /// replaced. The end was taken before the walk skipped the key's replacement, so such a
    /// batch answered no error and the next call an empty ENOENT (about 1 call in 100 here;
    /// found by review, 2026-12-06, twenty-fifth session).
    @Test func aFullListWalkBatchEndsThePassWhileItsLastKeyIsReplaced() throws {
        let map = try RawLockFreeHashMap(MapDefinition(type: .hash, keySize: 4, valueSize: 16, maxEntries: 4))
        try map.put(UInt32(1), (UInt64(0), UInt64(0)))
        let stop = Atomic<Bool>(false)
        let full = Atomic<Int>(0)
        let withoutEnd = Atomic<Int>(0)
        runOnThreads(2) { thread in
            if thread == 0 {
                Self.replaceKeyOne(in: map, until: stop, flags: .exist)
            } else {
                var key: UInt32 = 0
                var value = (UInt64(0), UInt64(0))
                let deadline = ContinuousClock.now + stressDuration
                var calls = 0
                while calls < 20_000 || ContinuousClock.now < deadline, calls < 400_000 {
                    calls += 1
                    let result = withUnsafeMutableBytes(of: &key) { k in
                        withUnsafeMutableBytes(of: &value) { v in
                            try? map.lookupBatch(from: nil, keys: k, values: v, count: 1, elementFlags: [], flags: 0)
                        }
                    }
                    guard let result, result.count == 1 else { continue }
                    full.add(1, ordering: .relaxed)
                    if result.error != .keyNotFound { withoutEnd.add(1, ordering: .relaxed) }
                }
                stop.store(true, ordering: .relaxed)
            }
        }
        let fullBatches = full.load(ordering: .relaxed)
        let missingEnds = withoutEnd.load(ordering: .relaxed)
        #expect(fullBatches > 0)
        #expect(missingEnds == 0, "\(missingEnds) of \(fullBatches) full batches did not end the pass")
    }

    /// The lock-free hash's list walk (values over 8 bytes) under writers: while 64 stable
    /// keys are replaced and fresh keys inserted and deleted around them, every pass of
    /// lookup batches of random sizes returns each stable key exactly once, with a whole
    /// value, and ends (no concurrent test covered the walk: the others use 8-byte values,
    /// which the slot sweep serves; found by review, 2026-12-06, twenty-fifth session).
    @Test func lockFreeListWalksUnderWritersReturnEachStableKeyOnce() throws {
        let map = try RawLockFreeHashMap(MapDefinition(type: .hash, keySize: 4, valueSize: 16, maxEntries: 1024))
        for key in UInt32(0)..<64 { try map.put(key, (UInt64(key), UInt64(key))) }
        let stop = Atomic<Bool>(false)
        let failures = Mutex<[String]>([])
        runOnThreads(2) { thread in
            if thread == 0 {
                var round: UInt64 = 0
                while !stop.load(ordering: .relaxed) {
                    round &+= 1
                    let stable = UInt32(round % 64)
                    try? map.put(stable, (round << 8 | UInt64(stable), round << 8 | UInt64(stable)), flags: .exist)
                    let fresh = UInt32(1000 + round % 300)
                    if round & 1 == 0 { try? map.put(fresh, (UInt64(fresh), UInt64(fresh))) } else { _ = withUnsafeBytes(of: fresh) { try? map.delete(key: $0) } }
                }
            } else {
                var random = SystemRandomNumberGenerator()
                var keys = [UInt32](repeating: 0, count: 16)
                var values = [UInt64](repeating: 0, count: 32)
                let deadline = ContinuousClock.now + stressDuration
                var passes = 0
                while passes < 200 || ContinuousClock.now < deadline, passes < 5_000 {
                    passes += 1
                    var seen = [Int](repeating: 0, count: 64)
                    var cursor: MapBatchCursor?
                    var calls = 0
                    pass: while true {
                        calls += 1
                        guard calls < 10_000 else {
                            failures.withLock { $0.append("a pass did not end after 10,000 calls") }
                            break
                        }
                        let count = Int.random(in: 1...16, using: &random)
                        let result = keys.withUnsafeMutableBytes { k in
                            values.withUnsafeMutableBytes { v in
                                try? map.lookupBatch(from: cursor, keys: k, values: v, count: count, elementFlags: [], flags: 0)
                            }
                        }
                        guard let result else {
                            failures.withLock { $0.append("a lookup batch threw") }
                            break
                        }
                        for index in 0..<result.count {
                            let key = keys[index]
                            if values[2 * index] != values[2 * index + 1] || values[2 * index] & 0xFF != UInt64(key & 0xFF) {
                                failures.withLock { $0.append("key \(key): a torn or foreign value") }
                            }
                            if key < 64 { seen[Int(key)] += 1 }
                        }
                        cursor = result.cursor
                        if result.error == .keyNotFound { break pass }
                    }
                    if let wrong = seen.firstIndex(where: { $0 != 1 }) {
                        failures.withLock { $0.append("pass \(passes): stable key \(wrong) returned \(seen[wrong]) times") }
                    }
                    if !failures.withLock({ $0.isEmpty }) { break }
                }
                stop.store(true, ordering: .relaxed)
            }
        }
        let found = failures.withLock { $0 }
        #expect(found.isEmpty, "\(found.prefix(5))")
    }

    #if DEBUG  // the insert's test hook exists in debug builds only
    /// A key that a lookup already finds is in every lookup batch that starts after that
    /// lookup, also while its insert has linked it but not yet marked it published (the
    /// entry-slot sweep of keys and values of at most 8 bytes). Found by review, 2026-12-03:
    /// the sweep skipped such an entry. Replayed with the insert paused in that window.
    @Test func lockFreeSweepsReturnAKeyALookupAlreadyFinds() throws {
        let map = try RawLockFreeHashMap(MapDefinition(type: .hash, keySize: 4, valueSize: 8, maxEntries: 64))
        for key in UInt32(1)...4 { try map.put(key, UInt64(key)) }
        let linked = Atomic<Bool>(false)
        let release = Atomic<Bool>(false)
        map.afterLinkingNewEntry = {
            linked.store(true, ordering: .releasing)
            while !release.load(ordering: .acquiring) { usleep(1_000) }
        }
        let found = Atomic<Bool>(false)
        let batched = ThreadLock<[UInt32]>([])
        runOnThreads(2) { thread in
            if thread == 0 {
                try? map.put(UInt32(9), UInt64(90), flags: .noExist)
            } else {
                while !linked.load(ordering: .acquiring) { usleep(1_000) }
                found.store((try? map.get(UInt32(9), as: UInt64.self)) == 90, ordering: .relaxed)
                var keys = [UInt32](repeating: 0, count: 16)
                var values = [UInt64](repeating: 0, count: 16)
                let result = keys.withUnsafeMutableBytes { k in
                    values.withUnsafeMutableBytes { v in
                        try? map.lookupBatch(from: nil, keys: k, values: v, count: 16, elementFlags: [], flags: 0)
                    }
                }
                batched.withLock { $0 = Array(keys[..<(result?.count ?? 0)]) }
                release.store(true, ordering: .releasing)
            }
        }
        map.afterLinkingNewEntry = nil
        let lookupFoundIt = found.load(ordering: .relaxed)
        #expect(lookupFoundIt)
        #expect(Set(batched.withLock { $0 }) == [1, 2, 3, 4, 9])
    }
    #endif

    /// A lock-free lookup-and-delete pass over the list (values over 8 bytes: no entry-slot
    /// sweep) while another thread replaces its keys (`.exist`: never adds one): every key is
    /// removed by the pass, as Linux's batch removes each bucket whole. Found by review,
    /// 2026-12-03: the walk read an entry's successor before unlinking it, so a replace in
    /// between (which links the replacement right after the entry) hid the key from the pass.
    @Test func lockFreeLookupAndDeleteBatchesRemoveAKeyBeingReplaced() throws {
        let map = try RawLockFreeHashMap(MapDefinition(type: .hash, keySize: 4, valueSize: 16, maxEntries: 64))
        let stop = Atomic<Bool>(false)
        let leftBehind = Atomic<Int>(0)
        let duplicates = Atomic<Int>(0)
        runOnThreads(2) { thread in
            if thread == 0 {
                var round: UInt64 = 0
                while !stop.load(ordering: .relaxed) {
                    round &+= 1
                    for key in UInt32(1)...8 { try? map.put(key, (round, round), flags: .exist) }
                }
            } else {
                var keys = [UInt32](repeating: 0, count: 16)
                var values = [UInt64](repeating: 0, count: 32)
                for _ in 0..<5_000 {
                    for key in UInt32(1)...8 { try? map.put(key, (UInt64(0), UInt64(0))) }
                    var cursor: MapBatchCursor?
                    var returned: [UInt32] = []
                    while true {
                        let result = keys.withUnsafeMutableBytes { k in
                            values.withUnsafeMutableBytes { v in
                                try? map.lookupAndDeleteBatch(from: cursor, keys: k, values: v, count: 16,
                                                              elementFlags: [], flags: 0)
                            }
                        }
                        guard let result else { break }
                        returned += keys[..<result.count]
                        cursor = result.cursor ?? cursor
                        if result.error == .keyNotFound || result.count == 0 { break }
                    }
                    if Set(returned).count != returned.count { duplicates.add(1, ordering: .relaxed) }
                    for key in UInt32(1)...8 where (try? map.get(key, as: (UInt64, UInt64).self)) != nil {
                        leftBehind.add(1, ordering: .relaxed)
                        try? map.remove(key)
                    }
                }
                stop.store(true, ordering: .relaxed)
            }
        }
        #expect(leftBehind.load(ordering: .relaxed) == 0)
        #expect(duplicates.load(ordering: .relaxed) == 0)
    }

    /// Lookup-and-delete batches racing with each other and with writers: no element is
    /// returned twice or lost (everything inserted is either returned once or still there).
    @Test(arguments: [Kind.lockFree, .bucket])
    func concurrentLookupAndDeleteBatchesLoseNothing(_ kind: Kind) throws {
        let map = try LinuxInterfaceTests.make(kind, maxEntries: 4_096)
        let inserted = ThreadLock<[UInt32: UInt64]>([:])
        let returned = ThreadLock<[UInt32: Int]>([:])
        let duplicateValues = Atomic<Int>(0)
        let writersDone = Atomic<Int>(0)
        let rounds = 40
        runOnThreads(4) { thread in
            if thread < 2 {
                // Writers: insert fresh keys (each key once, never reused).
                for round in 0..<rounds {
                    for index in 0..<50 {
                        let key = UInt32(thread * 1_000_000 + round * 100 + index)
                        if (try? map.put(key, UInt64(key) &* 3, flags: .noExist)) != nil {
                            inserted.withLock { $0[key] = UInt64(key) &* 3 }
                        }
                    }
                }
                writersDone.add(1, ordering: .releasing)
            } else {
                // Drainers: whole passes of lookup-and-delete batches.
                // At least `rounds` passes, and on until both writers are done (a drainer
                // that started first must not finish before anything was inserted).
                let buffers = Buffers(32)
                var passes = 0
                while passes < rounds || writersDone.load(ordering: .acquiring) < 2 {
                    passes += 1
                    var cursor: MapBatchCursor?
                    while let result = try? lookup(map, buffers, from: cursor, count: 32, removing: true) {
                        returned.withLock { counts in
                            for index in 0..<result.count {
                                counts[buffers.keys[index], default: 0] += 1
                                if buffers.values[index] != UInt64(buffers.keys[index]) &* 3 {
                                    duplicateValues.add(1, ordering: .relaxed)
                                }
                            }
                        }
                        if result.error != nil && result.error != .noSpace { break }
                        cursor = result.cursor
                    }
                }
            }
        }
        let returnedCounts = returned.withLock { $0 }
        #expect(!returnedCounts.isEmpty)
        #expect(returnedCounts.values.allSatisfy { $0 == 1 }, "a key was returned twice")
        #expect(duplicateValues.load(ordering: .relaxed) == 0)
        // Whatever was not returned is still in the map; nothing else is.
        let left = Set(try map.allKeys(as: UInt32.self))
        let all = inserted.withLock { Set($0.keys) }
        #expect(left.isDisjoint(with: returnedCounts.keys))
        #expect(left.union(returnedCounts.keys) == all)
        #expect(map.count == left.count)
    }

    /// Lookup passes racing with writers that insert and delete fresh keys and update the
    /// stable ones in place: every key present for the whole pass comes exactly once, with a
    /// value some update stored; no key comes twice (no key is ever inserted again).
    @Test(arguments: [Kind.lockFree, .bucket])
    func lookupPassesReturnKeysPresentThroughoutExactlyOnce(_ kind: Kind) throws {
        let map = try LinuxInterfaceTests.make(kind, maxEntries: 2_048)
        let stable = (0..<500).map { UInt32($0) &* 2_654_435_761 | 1 }  // odd: writers' keys are even
        for key in stable { try map.put(key, UInt64(key)) }
        let problems = ThreadLock<[String]>([])
        let writersDone = Atomic<Int>(0)
        runOnThreads(4) { thread in
            if thread < 2 {
                // Writers: fresh even keys in and out (at most ~400 at once, under maxEntries),
                // and in-place updates of the stable keys (value: key + round << 32).
                for round in 0..<60 {
                    let fresh = (0..<200).map { UInt32(thread * 100_000_000 + round * 1_000 + $0) << 1 }
                    for key in fresh { _ = try? map.put(key, UInt64(key), flags: .noExist) }
                    for key in stable.prefix(64) { _ = try? map.put(key, UInt64(key) | UInt64(round) << 32, flags: .exist) }
                    for key in fresh { _ = withUnsafeBytes(of: key) { try? map.delete(key: $0) } }
                }
                writersDone.add(1, ordering: .releasing)
            } else {
                let buffers = Buffers(32)
                var passes = 0
                while passes < 5 || writersDone.load(ordering: .acquiring) < 2 {
                    passes += 1
                    var counts: [UInt32: Int] = [:]
                    var cursor: MapBatchCursor?
                    var calls = 0
                    while let result = try? lookup(map, buffers, from: cursor, count: 32) {
                        calls += 1
                        for index in 0..<result.count {
                            let key = buffers.keys[index]
                            counts[key, default: 0] += 1
                            if buffers.values[index] & 0xFFFF_FFFF != UInt64(key) {
                                problems.withLock { $0.append("key \(key) came with value \(buffers.values[index])") }
                            }
                        }
                        if result.isEndOfMap { break }
                        if result.error != nil && result.error != .noSpace {
                            problems.withLock { $0.append("a call failed: \(String(describing: result.error))") }
                            break
                        }
                        cursor = result.cursor
                        if calls > 10_000 { problems.withLock { $0.append("a pass does not end") }; break }
                    }
                    let twice = counts.filter { $0.value > 1 }.map(\.key)
                    let missing = stable.filter { counts[$0] != 1 }
                    if !twice.isEmpty || !missing.isEmpty {
                        problems.withLock { $0.append("pass \(passes): \(twice.count) keys twice, \(missing.count) stable keys not once") }
                    }
                }
            }
        }
        #expect(problems.withLock { $0 } == [])
        #expect(map.count == stable.count)
    }

    /// The lock-free hash's slots are reused as keys come and go, and a map filled to
    /// `maxEntries` again and again still fits (a slot goes back with every delete):
    /// each pass returns exactly the keys in the map; drained by lookup-and-delete batches.
    @Test func lockFreeBatchesSurviveRefillsAtCapacity() throws {
        let map = try LinuxInterfaceTests.make(.lockFree, maxEntries: 64)
        let buffers = Buffers(7)
        func pass(removing: Bool) throws -> [UInt32: UInt64] {
            var seen: [UInt32: UInt64] = [:]
            var cursor: MapBatchCursor?
            while true {
                let result = try lookup(map, buffers, from: cursor, count: 7, removing: removing)
                for index in 0..<result.count {
                    #expect(seen.updateValue(buffers.values[index], forKey: buffers.keys[index]) == nil, "a key came twice")
                }
                if result.isEndOfMap { return seen }
                #expect(result.error == nil)
                cursor = result.cursor
            }
        }
        for round in UInt32(0)..<40 {
            let keys = (0..<64).map { round &* 1_000 &+ $0 }
            for key in keys { try map.put(key, UInt64(key) &* 5, flags: .noExist) }
            #expect(throws: MapError.outOfSpace) { try map.put(UInt32.max, UInt64(0), flags: .noExist) }
            // Half out one by one, then a pass; the rest drained by a lookup-and-delete pass.
            for key in keys where key % 2 == 0 { try withUnsafeBytes(of: key) { try map.delete(key: $0) } }
            let odd = Dictionary(uniqueKeysWithValues: keys.filter { $0 % 2 == 1 }.map { ($0, UInt64($0) &* 5) })
            #expect(try pass(removing: false) == odd)
            #expect(try pass(removing: true) == odd)
            #expect(map.count == 0)
            #expect(try pass(removing: false).isEmpty)
        }
    }

    /// Update batches racing with lookup batches: counts stay consistent, values whole.
    @Test(arguments: Kind.allCases)
    func updateBatchesRacingWithLookupBatchesStayConsistent(_ kind: Kind) throws {
        let map = try LinuxInterfaceTests.make(kind, maxEntries: 256)
        let torn = Atomic<Int>(0)
        runOnThreads(3) { thread in
            for round in 0..<200 {
                if thread == 0 {
                    let keys = (0..<64).map { UInt32(($0 * 7 + round) % 256) }
                    _ = try? update(map, keys: keys, values: keys.map { UInt64($0) << 32 | UInt64($0) })
                } else {
                    let buffers = Buffers(64)
                    var cursor: MapBatchCursor?
                    while let result = try? lookup(map, buffers, from: cursor, count: 64) {
                        for index in 0..<result.count where buffers.values[index] != 0 {
                            if buffers.values[index] != UInt64(buffers.keys[index]) << 32 | UInt64(buffers.keys[index]) {
                                torn.add(1, ordering: .relaxed)
                            }
                        }
                        if result.error != nil { break }
                        cursor = result.cursor
                    }
                }
            }
        }
        #expect(torn.load(ordering: .relaxed) == 0)
        #expect(map.count <= 256)
    }
}
