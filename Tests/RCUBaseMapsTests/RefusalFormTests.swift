import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// `insertIfAbsent(key:value:)`, `deleteIfPresent(key:)` and
/// `lookupAndDeleteIfPresent(key:into:)`: the refusal (EEXIST, ENOENT) comes back as
/// `false`; every other error is thrown as the throwing forms throw it. The two hashes
/// implement them without throwing; the other types go through the protocol's defaults.
@Suite("Refusals returned, not thrown")
struct RefusalFormTests {
    /// Both hashes, with a one-word value (exchanged in place) and a 24-byte one (a new
    /// slot or entry per write), and the LRU hash (the bucket hash with recency).
    static let shapes: [(type: MapType, implementation: HashImplementation, valueSize: Int)] = [
        (.hash, .bucketLocked, 8), (.hash, .bucketLocked, 24),
        (.hash, .lockFree, 8), (.hash, .lockFree, 24),
        (.lruHash, .bucketLocked, 8),
    ]

    func makeMap(_ shape: (type: MapType, implementation: HashImplementation, valueSize: Int),
                 maxEntries: Int = 64) throws -> any RawMap {
        try MapRegistry.create(MapDefinition(type: shape.type, keySize: 8, valueSize: shape.valueSize,
                                             maxEntries: maxEntries, hashImplementation: shape.implementation,
                                             poolTag: uniqueTag()))
    }

    func bytes(_ seed: UInt8, count: Int) -> [UInt8] { (0..<count).map { seed &+ UInt8($0) } }

    @Test(arguments: 0..<shapes.count)
    func refusalsAreFalseAndChangeNothing(_ index: Int) throws {
        let shape = Self.shapes[index]
        let map = try makeMap(shape)
        let size = shape.valueSize
        var key: UInt64 = 7
        let first = bytes(1, count: size), second = bytes(100, count: size)
        try withUnsafeBytes(of: &key) { key in
            #expect(try first.withUnsafeBytes { try map.insertIfAbsent(key: key, value: $0) } == true)
            #expect(try second.withUnsafeBytes { try map.insertIfAbsent(key: key, value: $0) } == false)
            #expect(map.count == 1)
            var out = [UInt8](repeating: 0, count: size)
            try out.withUnsafeMutableBytes { try map.lookup(key: key, into: $0) }
            #expect(out == first)   // the refused insert left the value as it was

            #expect(try map.deleteIfPresent(key: key) == true)
            #expect(try map.deleteIfPresent(key: key) == false)
            #expect(map.count == 0)

            try first.withUnsafeBytes { try map.update(key: key, value: $0, flags: .noExist) }
            var taken = [UInt8](repeating: 0xEE, count: size)
            #expect(try taken.withUnsafeMutableBytes { try map.lookupAndDeleteIfPresent(key: key, into: $0) } == true)
            #expect(taken == first)
            var untouched = [UInt8](repeating: 0xEE, count: size)
            #expect(try untouched.withUnsafeMutableBytes { try map.lookupAndDeleteIfPresent(key: key, into: $0) } == false)
            #expect(untouched == [UInt8](repeating: 0xEE, count: size))
            #expect(map.count == 0)

            // The throwing forms still throw the refusals as Linux's errnos.
            #expect(throws: MapError.keyNotFound) { try map.delete(key: key) }
            #expect(throws: MapError.keyNotFound) { try first.withUnsafeBytes { try map.update(key: key, value: $0, flags: .exist) } }
            try first.withUnsafeBytes { try map.update(key: key, value: $0, flags: .noExist) }
            #expect(throws: MapError.alreadyExists) { try first.withUnsafeBytes { try map.update(key: key, value: $0, flags: .noExist) } }
            #expect(throws: MapError.keyNotFound) {
                var other: UInt64 = 8
                try withUnsafeBytes(of: &other) { other in
                    try untouched.withUnsafeMutableBytes { try map.lookupAndDelete(key: other, into: $0) }
                }
            }
        }
    }

    func insert(_ map: any RawMap, _ key: UInt64, _ value: [UInt8]) throws -> Bool {
        var key = key
        return try withUnsafeBytes(of: &key) { key in
            try value.withUnsafeBytes { value in try map.insertIfAbsent(key: key, value: value) }
        }
    }

    func delete(_ map: any RawMap, _ key: UInt64) throws(MapError) -> Bool {
        var key = key
        return try withUnsafeBytes(of: &key) { (key) throws(MapError) -> Bool in try map.deleteIfPresent(key: key) }
    }

    @Test(arguments: 0..<shapes.count)
    func otherErrorsAreStillThrown(_ index: Int) throws {
        let shape = Self.shapes[index]
        let map = try makeMap(shape, maxEntries: 2)
        let value = bytes(3, count: shape.valueSize)
        let wrongKey: [UInt8] = [1, 2, 3]
        #expect(throws: MapError.invalidArgument) {
            try wrongKey.withUnsafeBytes { key in
                try value.withUnsafeBytes { value in _ = try map.insertIfAbsent(key: key, value: value) }
            }
        }
        #expect(throws: MapError.invalidArgument) {
            try wrongKey.withUnsafeBytes { key in _ = try map.deleteIfPresent(key: key) }
        }
        #expect(try insert(map, 1, value))
        #expect(try insert(map, 2, value))
        // Full: a present key is still a refusal (Linux checks EEXIST first), a new key is
        // E2BIG — except on the LRU hash, which evicts.
        #expect(try insert(map, 1, value) == false)
        if shape.type == .hash {
            #expect(throws: MapError.outOfSpace) { _ = try insert(map, 3, value) }
        }
        try map.freeze()
        #expect(throws: MapError.permissionDenied) { _ = try insert(map, 9, value) }
        #expect(throws: MapError.permissionDenied) { _ = try delete(map, 1) }
    }

    /// An insert refused because the map is full leaves nothing behind: the bucket hash
    /// fills the new key's slot before it counts the key (``CapacityGate/claim()``), and a
    /// slot whose key was refused is never published. The key is not found, not iterated,
    /// not counted, and the map takes it once there is room.
    @Test(arguments: 0..<shapes.count)
    func anInsertRefusedForAFullMapLeavesNoTrace(_ index: Int) throws {
        let shape = Self.shapes[index]
        guard shape.type == .hash else { return }  // the LRU hash evicts instead
        let map = try makeMap(shape, maxEntries: 3)
        let value = bytes(9, count: shape.valueSize)
        for key: UInt64 in 1...3 { #expect(try insert(map, key, value)) }
        for round in 0..<20 {
            #expect(throws: MapError.outOfSpace) { _ = try insert(map, 100 + UInt64(round), value) }
        }
        #expect(map.count == 3)
        var seen: Set<UInt64> = []
        var cursor: UInt64?
        while true {
            var next: UInt64 = 0
            do throws(MapError) {
                try withUnsafeMutableBytes(of: &next) { (next) throws(MapError) in
                    guard var current = cursor else { return try map.nextKey(after: nil, into: next) }
                    try withUnsafeBytes(of: &current) { (current) throws(MapError) in try map.nextKey(after: current, into: next) }
                }
            } catch {
                #expect(error == MapError.keyNotFound)
                break
            }
            seen.insert(next)
            cursor = next
        }
        #expect(seen == [1, 2, 3])
        var out = [UInt8](repeating: 0, count: shape.valueSize)
        #expect(throws: MapError.keyNotFound) {
            var key: UInt64 = 100
            try withUnsafeBytes(of: &key) { key in try out.withUnsafeMutableBytes { try map.lookup(key: key, into: $0) } }
        }
        #expect(try delete(map, 2))
        #expect(try insert(map, 100, value))
        #expect(map.count == 3)
        var key: UInt64 = 100
        try withUnsafeBytes(of: &key) { key in try out.withUnsafeMutableBytes { try map.lookup(key: key, into: $0) } }
        #expect(out == value)
    }

    /// `update` and `exchange` on a full map, as Linux: a present key is replaced (with any
    /// flag but NOEXIST) and its old value reported; an absent one is E2BIG with ANY, ENOENT
    /// with EXIST; NOEXIST on a present key is EEXIST; a frozen map refuses with EPERM. (The
    /// bucket hash's one-word values take its one-pass write, `writeInOnePass`; the other
    /// shapes the general update.)
    @Test(arguments: 0..<shapes.count)
    func updatesOfAFullMapFollowLinux(_ index: Int) throws {
        let shape = Self.shapes[index]
        guard shape.type == .hash else { return }  // the LRU hash evicts instead
        let map = try makeMap(shape, maxEntries: 2)
        let size = shape.valueSize
        func put(_ key: UInt64, _ seed: UInt8, _ flags: MapUpdateFlags) throws {
            var key = key
            let value = bytes(seed, count: size)
            try withUnsafeBytes(of: &key) { key in
                try value.withUnsafeBytes { value in try map.update(key: key, value: value, flags: flags) }
            }
        }
        func exchange(_ key: UInt64, _ seed: UInt8) throws -> [UInt8]? {
            var key = key
            let value = bytes(seed, count: size)
            var old = [UInt8](repeating: 0, count: size)
            let replaced = try withUnsafeBytes(of: &key) { key in
                try value.withUnsafeBytes { value in
                    try old.withUnsafeMutableBytes { old in try map.exchange(key: key, value: value, flags: .any, into: old) }
                }
            }
            return replaced ? old : nil
        }
        try put(1, 10, .any)
        #expect(try exchange(2, 20) == nil)  // a new key: nothing replaced
        #expect(map.count == 2)
        try put(1, 11, .any)
        try put(1, 12, .exist)
        #expect(try exchange(1, 13) == bytes(12, count: size))
        #expect(try exchange(2, 21) == bytes(20, count: size))
        #expect(throws: MapError.outOfSpace) { try put(3, 30, .any) }
        #expect(throws: MapError.keyNotFound) { try put(3, 30, .exist) }
        #expect(throws: MapError.alreadyExists) { try put(1, 14, .noExist) }
        #expect(throws: MapError.invalidArgument) { try put(1, 14, MapUpdateFlags(rawValue: 3)) }
        #expect(map.count == 2)
        var out = [UInt8](repeating: 0, count: size)
        var key: UInt64 = 1
        try withUnsafeBytes(of: &key) { key in try out.withUnsafeMutableBytes { try map.lookup(key: key, into: $0) } }
        #expect(out == bytes(13, count: size))
        #expect(try delete(map, 2))
        try put(3, 30, .noExist)
        #expect(map.count == 2)
        try map.freeze()
        #expect(throws: MapError.permissionDenied) { try put(1, 15, .any) }
        #expect(throws: MapError.permissionDenied) { _ = try exchange(3, 31) }
    }

    /// A new key's lock word starts free, whatever the caller's bytes hold there (as for
    /// `update`): `insertIfAbsent` stores the value around it.
    @Test func anInsertedValuesLockWordStartsFree() throws {
        let map = try MapRegistry.create(MapDefinition(type: .hash, keySize: 8, valueSize: 16, maxEntries: 8,
                                                       hashImplementation: .bucketLocked, poolTag: uniqueTag(),
                                                       lockOffset: 0))
        let value: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF] + (4..<16).map { UInt8($0) }
        #expect(try insert(map, 5, value))
        var key: UInt64 = 5
        let stored = withUnsafeBytes(of: &key) { key in
            Epoch.withSection { section in
                (try? map.lookupInPlace(key: key, in: section)).map { Array(UnsafeRawBufferPointer($0)) }
            }
        }
        #expect(stored == [0, 0, 0, 0] + (4..<16).map { UInt8($0) })
    }

    /// The protocol's defaults (here an ARRAY): every index holds a value, so an insert is
    /// always refused, and a delete is EINVAL as Linux has it.
    @Test func arraysGoThroughTheDefaults() throws {
        let map = try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: 4,
                                                       poolTag: uniqueTag()))
        var key: UInt32 = 1
        var value: UInt64 = 5
        let inserted = try withUnsafeBytes(of: &key) { (key) throws(MapError) -> Bool in
            try withUnsafeBytes(of: &value) { (value) throws(MapError) -> Bool in try map.insertIfAbsent(key: key, value: value) }
        }
        #expect(inserted == false)
        #expect(throws: MapError.invalidArgument) {
            try withUnsafeBytes(of: &key) { (key) throws(MapError) in _ = try map.deleteIfPresent(key: key) }
        }
    }

    /// Of threads inserting the same absent keys, exactly one gets `true` per key; of
    /// threads deleting them, exactly one gets `true` per key.
    @Test(arguments: 0..<shapes.count)
    func eachKeyIsInsertedAndDeletedByExactlyOneThread(_ index: Int) throws {
        let shape = Self.shapes[index]
        let keys = 512
        let map = try makeMap(shape, maxEntries: keys)
        let inserted = Atomic<Int>(0)
        let deleted = Atomic<Int>(0)
        let size = shape.valueSize
        for round in 0..<4 {
            runOnThreads(4) { thread in
                let value = [UInt8](repeating: UInt8(thread), count: size)
                value.withUnsafeBytes { value in
                    for key in 0..<UInt64(keys) {
                        let won = withUnsafeBytes(of: key) { (try? map.insertIfAbsent(key: $0, value: value)) ?? false }
                        if won { inserted.add(1, ordering: .relaxed) }
                    }
                }
            }
            #expect(inserted.load(ordering: .relaxed) == keys * (round + 1))
            #expect(map.count == keys)
            runOnThreads(4) { _ in
                for key in 0..<UInt64(keys) {
                    let won = withUnsafeBytes(of: key) { (try? map.deleteIfPresent(key: $0)) ?? false }
                    if won { deleted.add(1, ordering: .relaxed) }
                }
            }
            #expect(deleted.load(ordering: .relaxed) == keys * (round + 1))
            #expect(map.count == 0)
        }
    }

    /// `inlinedLookupInPlaceIfPresent(key:in:)` (and the hashes' `lookupInPlaceIfPresent`):
    /// a hit is the pointer `lookupInPlace` gives, a miss is `nil`, and the other refusals
    /// are still thrown — a key of the wrong size (EINVAL) and a `BPF_F_WRONLY_PROG` map's
    /// helper-mode read (EACCES). The array goes through the protocol's fallback (its
    /// `lookupInPlace` answers an index past the end with ENOENT).
    @Test(arguments: 0..<shapes.count + 1)
    func helperModeLookupsAnswerAMissWithNil(_ index: Int) throws {
        let isArray = index == Self.shapes.count
        let map: any RawMap = isArray
            ? try MapRegistry.create(MapDefinition(type: .array, keySize: 4, valueSize: 8, maxEntries: 4))
            : try makeMap(Self.shapes[index])
        let valueSize = map.definition.valueSize
        // Key buffers made before the sections (a closure cannot capture a borrowed section).
        func key(_ number: Int) -> UnsafeRawBufferPointer {
            let bytes = isArray ? withUnsafeBytes(of: UInt32(number)) { Array($0) } : withUnsafeBytes(of: UInt64(number)) { Array($0) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
            buffer.copyBytes(from: bytes)
            return UnsafeRawBufferPointer(buffer)
        }
        let present = key(2), absent = key(isArray ? 9 : 3)  // the array: past its 4 entries
        let wrongSize = UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer.allocate(byteCount: 3, alignment: 8))
        defer { for buffer in [present, absent, wrongSize] { buffer.deallocate() } }
        let value = bytes(40, count: valueSize)
        try value.withUnsafeBytes { try map.update(key: present, value: $0, flags: .any) }
        var wrongSizeError: MapError?
        try Epoch.withSection { (section) throws(MapError) in
            let hit = try map.inlinedLookupInPlaceIfPresent(key: present, in: section)
            let thrownForm = try map.lookupInPlace(key: present, in: section)
            #expect(hit?.baseAddress == thrownForm.baseAddress && hit?.count == valueSize)
            #expect(hit.map { Array(UnsafeRawBufferPointer($0)) } == value)
            let miss = try map.inlinedLookupInPlaceIfPresent(key: absent, in: section)
            #expect(miss == nil)
            do throws(MapError) { _ = try map.inlinedLookupInPlaceIfPresent(key: wrongSize, in: section) } catch { wrongSizeError = error }
        }
        #expect(wrongSizeError == .invalidArgument)
        if !isArray {
            // The concrete hashes' own entry point, on a map programs may not read.
            let guarded = try MapRegistry.create(MapDefinition(
                type: Self.shapes[index].type, keySize: 8, valueSize: valueSize, maxEntries: 8, flags: [.writeOnlyProgram],
                hashImplementation: Self.shapes[index].implementation, poolTag: uniqueTag()))
            var refused: MapError?
            Epoch.withSection { section in
                do throws(MapError) { _ = try guarded.inlinedLookupInPlaceIfPresent(key: present, in: section) } catch { refused = error }
            }
            #expect(refused == .accessDenied)
        }
    }
}
