import Foundation
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// `QUEUE` and `STACK` (RawQueueStackMap), errno for errno with Linux 6.18's
/// `kernel/bpf/queue_stack_maps.c` and `syscall.c`: creation, push / pop / peek in both
/// modes, flags, empty and full, `BPF_EXIST` overwrite, delete / get-next-key / batches,
/// freeze, access flags, and many producers and consumers at once.
@Suite("QUEUE and STACK")
struct QueueStackMapTests {
    enum Kind: String, CaseIterable, Sendable { case queue, stack }

    static func type(_ kind: Kind) -> MapType { kind == .queue ? .queue : .stack }

    static func make(_ kind: Kind, valueSize: Int = 8, maxEntries: Int = 4, flags: MapCreationFlags = [],
                     name: String = "") throws(MapError) -> RawQueueStackMap {
        let map = try MapRegistry.create(MapDefinition(type: type(kind), keySize: 0, valueSize: valueSize,
                                                       maxEntries: maxEntries, flags: flags, name: name,
                                                       poolTag: uniqueTag()))
        return map as! RawQueueStackMap
    }

    func errno(_ body: () throws -> Void) -> Int32 {
        do { try body(); return 0 } catch let error as MapError { return error.code } catch { return -1 }
    }

    static var noKey: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

    // Typed conveniences over the byte API (user mode unless `helper`).
    func push(_ map: RawQueueStackMap, _ value: UInt64, flags: MapUpdateFlags = .any, helper: Bool = false) throws {
        try withUnsafeBytes(of: value) { bytes in
            if helper {
                try Epoch.withSection { (section) throws(MapError) in try map.push(bytes, flags: flags, in: section) }
            } else {
                try map.push(bytes, flags: flags)
            }
        }
    }

    func pop(_ map: RawQueueStackMap, helper: Bool = false) throws -> UInt64 {
        var value: UInt64 = 0
        try withUnsafeMutableBytes(of: &value) { bytes in
            if helper {
                try Epoch.withSection { (section) throws(MapError) in try map.pop(into: bytes, in: section) }
            } else {
                try map.pop(into: bytes)
            }
        }
        return value
    }

    func peek(_ map: RawQueueStackMap, helper: Bool = false) throws -> UInt64 {
        var value: UInt64 = 0
        try withUnsafeMutableBytes(of: &value) { bytes in
            if helper {
                try Epoch.withSection { (section) throws(MapError) in try map.peek(into: bytes, in: section) }
            } else {
                try map.peek(into: bytes)
            }
        }
        return value
    }

    func drain(_ map: RawQueueStackMap) throws -> [UInt64] {
        var values: [UInt64] = []
        while true {
            do { values.append(try pop(map)) } catch MapError.keyNotFound { return values }
        }
    }

    // MARK: Creation

    @Test(arguments: Kind.allCases)
    func creationAsLinux(_ kind: Kind) throws {
        let type = Self.type(kind)
        func create(keySize: Int = 0, valueSize: Int = 8, maxEntries: Int = 4, flags: MapCreationFlags = [],
                    name: String = "", numaNode: Int? = nil, lockOffset: Int? = nil) -> Int32 {
            errno {
                _ = try MapRegistry.create(MapDefinition(type: type, keySize: keySize, valueSize: valueSize,
                                                         maxEntries: maxEntries, flags: flags, name: name,
                                                         numaNode: numaNode, poolTag: uniqueTag(), lockOffset: lockOffset))
            }
        }
        // queue_stack_map_alloc_check: sizes and flags.
        #expect(create() == 0)
        #expect(create(maxEntries: 0) == EINVAL)
        #expect(create(maxEntries: -1) == EINVAL)
        #expect(create(keySize: 4) == EINVAL)
        #expect(create(keySize: -1) == EINVAL)
        #expect(create(valueSize: 0) == EINVAL)
        #expect(create(valueSize: -8) == EINVAL)
        #expect(create(maxEntries: Int(UInt32.max) + 1) == EINVAL)  // max_entries is a u32
        for flags: MapCreationFlags in [.numaNode, .readOnly, .writeOnly, .readOnlyProgram, .writeOnlyProgram,
                                        [.readOnly, .writeOnlyProgram], [.numaNode, .writeOnly, .readOnlyProgram]] {
            #expect(create(flags: flags) == 0, "\(flags)")
        }
        for flags: MapCreationFlags in [.noPrealloc, .noCommonLRU, .zeroSeed, .mmapable, .innerMap, .clone,
                                        .stackBuildID, .preserveElements, MapCreationFlags(rawValue: 1 << 20),
                                        [.readOnlyProgram, .writeOnlyProgram], [.readOnly, .writeOnly]] {
            #expect(create(flags: flags) == EINVAL, "\(flags)")
        }
        // E2BIG: value_size > KMALLOC_MAX_SIZE; the limit itself is accepted.
        #expect(create(valueSize: MapDefinition.kmallocMaxSize + 1) == E2BIG)
        #expect(create(valueSize: MapDefinition.kmallocMaxSize, maxEntries: 1) == 0)
        // The size checks come before the name; the name before the lock word.
        #expect(create(valueSize: MapDefinition.kmallocMaxSize + 1, name: "bad-name") == E2BIG)
        #expect(create(name: "bad-name") == EINVAL)
        #expect(create(name: "sixteen_chars_xx") == EINVAL)
        #expect(create(name: "fifteen_chars_x") == 0)
        // A lock word: Linux's map_check_btf refuses value BTF on a map with no key type (EINVAL).
        #expect(create(lockOffset: 0) == EINVAL)
        #expect(create(flags: .readOnlyProgram, lockOffset: 0) == EINVAL)
        // The NUMA node is checked first.
        #expect(create(maxEntries: 0, numaNode: NUMATopology.nodeCount) == EINVAL)
        #expect(create(numaNode: 0) == 0)
        // (max_entries + 1) × value_size bytes that cannot be had: ENOMEM.
        #expect(create(valueSize: MapDefinition.kmallocMaxSize, maxEntries: Int(UInt32.max)) == ENOMEM)
    }

    @Test func registryServesBothTypes() throws {
        #expect(MapRegistry.supportedBuiltInTypes.contains(.queue))
        #expect(MapRegistry.supportedBuiltInTypes.contains(.stack))
        #expect(MapType.queue.linuxTypeID == 22)
        #expect(MapType.stack.linuxTypeID == 23)
        #expect(try Self.make(.queue).kind == .queue)
        #expect(try Self.make(.stack).kind == .stack)
        // The class refuses other types.
        #expect(throws: MapError.invalidArgument) {
            _ = try RawQueueStackMap(MapDefinition(type: .array, keySize: 0, valueSize: 8, maxEntries: 4))
        }
    }

    // MARK: Order, empty, full

    @Test func queueIsFIFOAndStackIsLIFO() throws {
        let queue = try Self.make(.queue, maxEntries: 8)
        let stack = try Self.make(.stack, maxEntries: 8)
        for value: UInt64 in 1...5 {
            try push(queue, value)
            try push(stack, value)
        }
        #expect(queue.count == 5 && stack.count == 5)
        #expect(try peek(queue) == 1)
        #expect(try peek(stack) == 5)
        #expect(queue.count == 5 && stack.count == 5)  // peek removes nothing
        #expect(try drain(queue) == [1, 2, 3, 4, 5])
        #expect(try drain(stack) == [5, 4, 3, 2, 1])
        #expect(queue.count == 0 && stack.count == 0)
        #expect(queue.capacity == 8)
    }

    @Test(arguments: Kind.allCases)
    func emptyIsENOENT(_ kind: Kind) throws {
        let map = try Self.make(kind)
        // User mode: the caller's buffer is left as it was (the syscall copies nothing out).
        var value: UInt64 = 0xAAAA
        #expect(errno { try withUnsafeMutableBytes(of: &value) { try map.pop(into: $0) } } == ENOENT)
        #expect(errno { try withUnsafeMutableBytes(of: &value) { try map.peek(into: $0) } } == ENOENT)
        #expect(errno { try withUnsafeMutableBytes(of: &value) { try map.lookup(key: Self.noKey, into: $0) } } == ENOENT)
        #expect(errno { try withUnsafeMutableBytes(of: &value) { try map.lookupAndDelete(key: Self.noKey, into: $0) } } == ENOENT)
        #expect(value == 0xAAAA)
        // Helper mode: Linux's helpers zero the program's buffer.
        for pops in [true, false] {
            value = 0xAAAA
            let code = errno {
                try withUnsafeMutableBytes(of: &value) { bytes in
                    try Epoch.withSection { (section) throws(MapError) in
                        if pops { try map.pop(into: bytes, in: section) } else { try map.peek(into: bytes, in: section) }
                    }
                }
            }
            #expect(code == ENOENT)
            #expect(value == 0)
        }
        // After pushes and pops back to empty.
        try push(map, 1)
        _ = try pop(map)
        #expect(errno { _ = try pop(map) } == ENOENT)
    }

    @Test(arguments: Kind.allCases)
    func fullIsE2BIGAndLeavesTheMapAlone(_ kind: Kind) throws {
        let map = try Self.make(kind, maxEntries: 3)
        for value: UInt64 in 1...3 { try push(map, value) }
        #expect(errno { try push(map, 4) } == E2BIG)
        #expect(errno { try push(map, 4, helper: true) } == E2BIG)
        #expect(map.count == 3)
        #expect(try drain(map) == (kind == .queue ? [1, 2, 3] : [3, 2, 1]))
    }

    /// BPF_EXIST on a full map drops the oldest element — the bottom of a stack — to make
    /// room, as Linux's shared push does; on a map with room it is a plain push.
    @Test(arguments: Kind.allCases, [false, true])
    func existOverwritesTheOldest(_ kind: Kind, helper: Bool) throws {
        let map = try Self.make(kind, maxEntries: 3)
        try push(map, 1, flags: .exist, helper: helper)  // room: a plain push
        try push(map, 2, helper: helper)
        try push(map, 3, helper: helper)
        try push(map, 4, flags: .exist, helper: helper)  // full: 1 goes
        #expect(map.count == 3)
        try push(map, 5, flags: .exist, helper: helper)  // full: 2 goes
        #expect(try drain(map) == (kind == .queue ? [3, 4, 5] : [5, 4, 3]))
    }

    @Test(arguments: Kind.allCases)
    func exchangeReportsTheOverwrittenElement(_ kind: Kind) throws {
        let map = try Self.make(kind, maxEntries: 2)
        func exchange(_ value: UInt64, flags: MapUpdateFlags = .exist) throws -> UInt64? {
            var old: UInt64 = 0
            let replaced = try withUnsafeBytes(of: value) { bytes in
                try withUnsafeMutableBytes(of: &old) { try map.exchange(key: Self.noKey, value: bytes, flags: flags, into: $0) }
            }
            return replaced ? old : nil
        }
        #expect(try exchange(10) == nil)
        #expect(try exchange(20, flags: .any) == nil)
        #expect(try exchange(30) == 10)
        #expect(try exchange(40) == 20)
        #expect(errno { _ = try exchange(50, flags: .any) } == E2BIG)
        var small: UInt32 = 0
        #expect(errno {
            _ = try withUnsafeBytes(of: UInt64(1)) { bytes in
                try withUnsafeMutableBytes(of: &small) { try map.exchange(key: Self.noKey, value: bytes, flags: .exist, into: $0) }
            }
        } == EINVAL)
        #expect(try drain(map) == (kind == .queue ? [30, 40] : [40, 30]))
    }

    /// `exchange` with one buffer for the new element and the dropped one swaps them: the
    /// new element goes in, the oldest comes out (found by review: the dropped element was
    /// copied out first, over the new one, so the ring got it back and the new one was lost).
    @Test(arguments: Kind.allCases)
    func exchangeThroughOneBufferSwaps(_ kind: Kind) throws {
        let map = try Self.make(kind, maxEntries: 2)
        try push(map, 1)
        try push(map, 2)
        var element: UInt64 = 99
        let dropped = try withUnsafeMutableBytes(of: &element) { buffer in
            try map.exchange(key: Self.noKey, value: UnsafeRawBufferPointer(buffer), flags: .exist, into: buffer)
        }
        #expect(dropped && element == 1)
        #expect(try drain(map) == (kind == .queue ? [2, 99] : [99, 2]))
    }

    /// Pushes and pops far around the ring, with value sizes that are not multiples of 8.
    @Test(arguments: Kind.allCases, [1, 3, 8, 13, 64])
    func wrapsAroundTheRing(_ kind: Kind, valueSize: Int) throws {
        let map = try Self.make(kind, valueSize: valueSize, maxEntries: 5)
        var model: [[UInt8]] = []
        var rng = XorShift(seed: UInt64(valueSize) * 31 + (kind == .queue ? 1 : 2))
        for step in 0..<2000 {
            let choice = rng.next() % 4
            var bytes = [UInt8](repeating: 0, count: valueSize)
            for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: rng.next()) }
            if choice < 2 {
                let overwrite = choice == 1
                let code = errno {
                    try bytes.withUnsafeBytes { try map.push($0, flags: overwrite ? .exist : .any) }
                }
                if model.count == 5 {
                    if overwrite {
                        #expect(code == 0)
                        model.removeFirst()  // the oldest goes, queue or stack
                        model.append(bytes)
                    } else {
                        #expect(code == E2BIG, "step \(step)")
                    }
                } else {
                    #expect(code == 0)
                    model.append(bytes)
                }
            } else {
                var out = [UInt8](repeating: 0xEE, count: valueSize)
                let pops = choice == 2
                let code = errno { try out.withUnsafeMutableBytes { pops ? try map.pop(into: $0) : try map.peek(into: $0) } }
                if model.isEmpty {
                    #expect(code == ENOENT, "step \(step)")
                } else {
                    #expect(code == 0)
                    let expected = kind == .queue ? model.first! : model.last!
                    #expect(out == expected, "step \(step)")
                    if pops { if kind == .queue { model.removeFirst() } else { model.removeLast() } }
                }
            }
            #expect(map.count == model.count)
        }
    }

    // MARK: Flags, keys, sizes

    @Test(arguments: Kind.allCases)
    func flagsAsLinux(_ kind: Kind) throws {
        let map = try Self.make(kind)
        // Push: BPF_NOEXIST, BPF_F_LOCK and anything above BPF_EXIST are EINVAL, in both modes.
        for raw: UInt64 in [1, 3, 4, 5, 6, 8, 1 << 40, .max] {
            #expect(errno { try push(map, 1, flags: MapUpdateFlags(rawValue: raw)) } == EINVAL, "\(raw)")
            #expect(errno { try push(map, 1, flags: MapUpdateFlags(rawValue: raw), helper: true) } == EINVAL, "\(raw)")
            #expect(errno {
                try withUnsafeBytes(of: UInt64(1)) { try map.update(key: Self.noKey, value: $0, flags: MapUpdateFlags(rawValue: raw)) }
            } == EINVAL, "\(raw)")
        }
        #expect(map.count == 0)
        try push(map, 7)
        var value: UInt64 = 0
        // Peek (lookup): only BPF_F_LOCK passes the first check, and it is EINVAL (no lock word).
        for raw: UInt64 in [1, 2, 4, 8, 5, .max] {
            #expect(errno {
                try withUnsafeMutableBytes(of: &value) { try map.lookup(key: Self.noKey, into: $0, flags: MapElementFlags(rawValue: raw)) }
            } == EINVAL, "\(raw)")
            // Pop (lookup-and-delete): any flag is EINVAL for queues and stacks.
            #expect(errno {
                try withUnsafeMutableBytes(of: &value) {
                    try map.lookupAndDelete(key: Self.noKey, into: $0, flags: MapElementFlags(rawValue: raw))
                }
            } == EINVAL, "\(raw)")
        }
        #expect(map.count == 1)
        #expect(try pop(map) == 7)
    }

    @Test(arguments: Kind.allCases)
    func keysMustBeEmpty(_ kind: Kind) throws {
        let map = try Self.make(kind)
        let key: UInt32 = 0
        var value: UInt64 = 5
        try withUnsafeBytes(of: key) { key in
            #expect(errno { try withUnsafeBytes(of: value) { try map.update(key: key, value: $0, flags: .any) } } == EINVAL)
            #expect(map.count == 0)
            try push(map, 9)
            #expect(errno { try withUnsafeMutableBytes(of: &value) { try map.lookup(key: key, into: $0) } } == EINVAL)
            #expect(errno { try withUnsafeMutableBytes(of: &value) { try map.lookupAndDelete(key: key, into: $0) } } == EINVAL)
            #expect(errno { try map.delete(key: key) } == EINVAL)
            var next: UInt32 = 0
            #expect(errno { try withUnsafeMutableBytes(of: &next) { try map.nextKey(after: key, into: $0) } } == EINVAL)
            #expect(map.count == 1)
        }
        // An empty buffer with a base address is the null key too.
        var storage: UInt64 = 0
        try withUnsafeBytes(of: &storage) { whole in
            let empty = UnsafeRawBufferPointer(rebasing: whole[0..<0])
            #expect(empty.baseAddress != nil)
            try withUnsafeBytes(of: UInt64(10)) { try map.update(key: empty, value: $0, flags: .any) }
            var out: UInt64 = 0
            try withUnsafeMutableBytes(of: &out) { try map.lookup(key: empty, into: $0) }
            #expect(out == (kind == .queue ? 9 : 10))
            try withUnsafeMutableBytes(of: &out) { try map.lookupAndDelete(key: empty, into: $0) }
            #expect(out == (kind == .queue ? 9 : 10))
        }
        #expect(map.count == 1)
    }

    @Test(arguments: Kind.allCases)
    func valueSizesAreChecked(_ kind: Kind) throws {
        let map = try Self.make(kind, valueSize: 8)
        try push(map, 1)
        var small: UInt32 = 0
        var large: (UInt64, UInt64) = (0, 0)
        for helper in [false, true] {
            #expect(errno {
                try withUnsafeBytes(of: small) { bytes in
                    if helper {
                        try Epoch.withSection { (section) throws(MapError) in try map.push(bytes, flags: .any, in: section) }
                    } else {
                        try map.push(bytes, flags: .any)
                    }
                }
            } == EINVAL)
            for buffer in 0..<2 {
                let code = errno {
                    let body = { (bytes: UnsafeMutableRawBufferPointer) throws in
                        if helper {
                            try Epoch.withSection { (section) throws(MapError) in try map.pop(into: bytes, in: section) }
                            try Epoch.withSection { (section) throws(MapError) in try map.peek(into: bytes, in: section) }
                        } else {
                            try map.pop(into: bytes)
                        }
                    }
                    if buffer == 0 { try withUnsafeMutableBytes(of: &small, body) } else { try withUnsafeMutableBytes(of: &large, body) }
                }
                #expect(code == EINVAL)
            }
            #expect(errno { try withUnsafeMutableBytes(of: &small) { try map.peek(into: $0) } } == EINVAL)
        }
        #expect(map.count == 1)
    }

    // MARK: What queues and stacks lack

    @Test(arguments: Kind.allCases)
    func deleteAndGetNextKeyAreEINVAL(_ kind: Kind) throws {
        let map = try Self.make(kind)
        try push(map, 1)
        #expect(errno { try map.delete(key: Self.noKey) } == EINVAL)
        #expect(errno { try map.delete(key: Self.noKey, flags: []) } == EINVAL)
        #expect(errno { try map.delete(key: Self.noKey, flags: .lock) } == EINVAL)
        var next: UInt64 = 0
        #expect(errno { try withUnsafeMutableBytes(of: &next) { try map.nextKey(after: nil, into: $0) } } == EINVAL)
        #expect(errno { try withUnsafeMutableBytes(of: &next) { try map.nextKey(after: Self.noKey, into: $0) } } == EINVAL)
        #expect(errno { try withUnsafeMutableBytes(of: &next) { try map.nextKeyInPass(after: nil, into: $0) } } == EINVAL)
        // Helper mode: the verifier refuses update, delete and lookup on these types.
        Epoch.withSection { section in
            #expect(errno { _ = try map.lookupInPlace(key: Self.noKey, in: section) } == EINVAL)
            #expect(errno { try withUnsafeBytes(of: UInt64(1)) { try map.update(key: Self.noKey, value: $0, flags: .any, in: section) } } == EINVAL)
            #expect(errno { try map.delete(key: Self.noKey, in: section) } == EINVAL)
        }
        #expect(map.count == 1)
    }

    @Test(arguments: Kind.allCases)
    func batchesAreENOTSUPP(_ kind: Kind) throws {
        func batches(_ map: RawQueueStackMap) -> [Int32] {
            var keys = [UInt8](repeating: 0, count: 8)
            var values = [UInt8](repeating: 0, count: 64)
            return [
                errno { _ = try keys.withUnsafeMutableBytes { k in try values.withUnsafeMutableBytes { v in
                    try map.lookupBatch(from: nil, keys: k, values: v, count: 1, elementFlags: [], flags: 0) } } },
                errno { _ = try keys.withUnsafeMutableBytes { k in try values.withUnsafeMutableBytes { v in
                    try map.lookupAndDeleteBatch(from: nil, keys: k, values: v, count: 1, elementFlags: [], flags: 0) } } },
                errno { _ = try keys.withUnsafeBytes { k in try values.withUnsafeBytes { v in
                    try map.updateBatch(keys: k, values: v, count: 1, elementFlags: [], flags: 0) } } },
                errno { _ = try keys.withUnsafeBytes { k in try map.deleteBatch(keys: k, count: 1, elementFlags: [], flags: 0) } },
            ]
        }
        #expect(batches(try Self.make(kind)) == [524, 524, 524, 524])
        // The access checks come first (Linux's bpf_map_do_batch), then ENOTSUPP.
        #expect(batches(try Self.make(kind, flags: .writeOnly)) == [EPERM, EPERM, 524, 524])
        #expect(batches(try Self.make(kind, flags: .readOnly)) == [524, EPERM, EPERM, EPERM])
        let frozen = try Self.make(kind)
        try frozen.freeze()
        #expect(batches(frozen) == [524, EPERM, EPERM, EPERM])
    }

    // MARK: Freeze and access flags

    @Test(arguments: Kind.allCases)
    func freezeRefusesUserPushAndPop(_ kind: Kind) throws {
        let map = try Self.make(kind)
        try push(map, 1)
        try push(map, 2)
        try map.freeze()
        #expect(map.isFrozen)
        #expect(errno { try push(map, 3) } == EPERM)
        #expect(errno { try push(map, 3, flags: .exist) } == EPERM)
        #expect(errno { _ = try pop(map) } == EPERM)
        #expect(errno { try map.delete(key: Self.noKey) } == EPERM)
        #expect(try peek(map) == (kind == .queue ? 1 : 2))  // peek still works
        #expect(errno { try map.freeze() } == EPERM)  // a second freeze
        // Helper mode is unaffected.
        try push(map, 3, helper: true)
        #expect(try pop(map, helper: true) == (kind == .queue ? 1 : 3))
        #expect(try peek(map, helper: true) == 2)
        #expect(map.count == 2)
    }

    @Test(arguments: Kind.allCases)
    func accessFlagsAsLinux(_ kind: Kind) throws {
        // BPF_F_RDONLY: user push, pop, delete and freeze refused; peek allowed.
        let readOnly = try Self.make(kind, flags: .readOnly)
        try push(readOnly, 1, helper: true)
        #expect(errno { try push(readOnly, 2) } == EPERM)
        #expect(errno { _ = try pop(readOnly) } == EPERM)
        #expect(errno { try readOnly.delete(key: Self.noKey) } == EPERM)
        #expect(errno { try readOnly.freeze() } == EPERM)
        #expect(try peek(readOnly) == 1)
        // BPF_F_WRONLY: user peek, pop and get-next-key refused; push allowed.
        let writeOnly = try Self.make(kind, flags: .writeOnly)
        try push(writeOnly, 1)
        #expect(errno { _ = try peek(writeOnly) } == EPERM)
        #expect(errno { _ = try pop(writeOnly) } == EPERM)
        var next: UInt64 = 0
        #expect(errno { try withUnsafeMutableBytes(of: &next) { try writeOnly.nextKey(after: nil, into: $0) } } == EPERM)
        #expect(try pop(writeOnly, helper: true) == 1)
        // Order: an unknown pop flag is EINVAL before EPERM; BPF_F_LOCK passes the first
        // check, so EPERM comes first for it.
        var value: UInt64 = 0
        #expect(errno { try withUnsafeMutableBytes(of: &value) { try writeOnly.lookupAndDelete(key: Self.noKey, into: $0, flags: MapElementFlags(rawValue: 8)) } } == EINVAL)
        #expect(errno { try withUnsafeMutableBytes(of: &value) { try writeOnly.lookupAndDelete(key: Self.noKey, into: $0, flags: .lock) } } == EPERM)
        #expect(errno { try withUnsafeMutableBytes(of: &value) { try writeOnly.lookup(key: Self.noKey, into: $0, flags: .lock) } } == EPERM)
        #expect(errno { try withUnsafeBytes(of: UInt64(1)) { try readOnly.update(key: Self.noKey, value: $0, flags: .lock) } } == EPERM)
        // BPF_F_RDONLY_PROG: helper push and pop refused (EACCES, Linux's verifier), helper
        // peek and everything in user mode allowed.
        let readOnlyProgram = try Self.make(kind, flags: .readOnlyProgram)
        try push(readOnlyProgram, 1)
        #expect(errno { try push(readOnlyProgram, 2, helper: true) } == EACCES)
        #expect(errno { _ = try pop(readOnlyProgram, helper: true) } == EACCES)
        #expect(try peek(readOnlyProgram, helper: true) == 1)
        Epoch.withSection { section in
            #expect(errno { try withUnsafeBytes(of: UInt64(1)) { try readOnlyProgram.update(key: Self.noKey, value: $0, flags: .any, in: section) } } == EACCES)
            #expect(errno { try readOnlyProgram.delete(key: Self.noKey, in: section) } == EACCES)
        }
        #expect(try pop(readOnlyProgram) == 1)
        // BPF_F_WRONLY_PROG refuses nothing here: the verifier guards reads of map memory,
        // and peek and pop copy into the program's own buffer.
        let writeOnlyProgram = try Self.make(kind, flags: .writeOnlyProgram)
        try push(writeOnlyProgram, 1, helper: true)
        try push(writeOnlyProgram, 2, helper: true)
        #expect(try peek(writeOnlyProgram, helper: true) == (kind == .queue ? 1 : 2))
        #expect(try pop(writeOnlyProgram, helper: true) == (kind == .queue ? 1 : 2))
        #expect(try pop(writeOnlyProgram) == (kind == .queue ? 2 : 1))
    }

    // MARK: Many producers and consumers

    /// A value whose three words must agree: a torn copy would show.
    struct Payload: Equatable {
        var value: UInt64
        var inverse: UInt64
        var scaled: UInt64
        init(_ value: UInt64) { self.value = value; inverse = ~value; scaled = value &* 0x9E37_79B9_7F4A_7C15 }
        var isWhole: Bool { inverse == ~value && scaled == value &* 0x9E37_79B9_7F4A_7C15 }
    }

    /// N producers push distinct values, M consumers pop (and peek) until every value is
    /// seen: each is popped exactly once, none torn; from a queue, each consumer sees each
    /// producer's values in the order they were pushed.
    @Test(arguments: Kind.allCases)
    func producersAndConsumersLoseAndDuplicateNothing(_ kind: Kind) throws {
        let map = try Self.make(kind, valueSize: MemoryLayout<Payload>.size, maxEntries: 64)
        let producers = 3, consumers = 3, perProducer = 20_000
        let total = producers * perProducer
        let seen = UnsafeMutablePointer<Atomic<UInt8>>.allocate(capacity: total)
        for index in 0..<total { (seen + index).initialize(to: Atomic(0)) }
        defer { seen.deinitialize(count: total); seen.deallocate() }
        let popped = Atomic<Int>(0)
        let failures = Failures()
        let seenAddress = UInt(bitPattern: seen)
        let deadline = Deadline(after: .seconds(60))
        runOnThreads(producers + consumers) { thread in
            let seen = UnsafeMutablePointer<Atomic<UInt8>>(bitPattern: seenAddress)!
            if thread < producers {
                var index = 0
                while index < perProducer {
                    var payload = Payload(UInt64(thread * perProducer + index))
                    let code = self.errno { try withUnsafeBytes(of: &payload) { try map.push($0, flags: .any) } }
                    if code == 0 { index += 1 } else if code == E2BIG {
                        if deadline.hasPassed { return failures.record("full for a minute: producers gave up") }
                        sched_yield()
                    } else {
                        failures.record("push: errno \(code)")
                        return
                    }
                }
                return
            }
            var last = [Int](repeating: -1, count: producers)
            var spins = 0
            while popped.load(ordering: .relaxed) < total {
                // A lost value would leave the consumers waiting for ever: fail instead.
                if spins & 1023 == 0, deadline.hasPassed { return failures.record("values lost: consumers gave up") }
                var payload = Payload(0)
                let peeking = spins % 7 == 3
                let code = self.errno {
                    try withUnsafeMutableBytes(of: &payload) { peeking ? try map.peek(into: $0) : try map.pop(into: $0) }
                }
                spins += 1
                if code == ENOENT { sched_yield(); continue }
                guard code == 0 else { failures.record("pop: errno \(code)"); return }
                guard payload.isWhole, payload.value < UInt64(total) else {
                    failures.record("torn or foreign value \(payload)")
                    return
                }
                if peeking { continue }
                let value = Int(payload.value)
                if (seen + value).pointee.wrappingAdd(1, ordering: .relaxed).newValue != 1 {
                    failures.record("value \(value) popped twice")
                }
                popped.wrappingAdd(1, ordering: .relaxed)
                if kind == .queue {
                    let producer = value / perProducer
                    if value <= last[producer] {
                        failures.record("consumer saw producer \(producer)'s \(value) after \(last[producer])")
                    }
                    last[producer] = value
                }
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        #expect(popped.load(ordering: .relaxed) == total)
        var missing = 0
        for index in 0..<total where (seen + index).pointee.load(ordering: .relaxed) != 1 { missing += 1 }
        #expect(missing == 0)
        #expect(map.count == 0)
    }

    /// Producers push with BPF_EXIST into a small map (overwriting the oldest when full, each
    /// reporting what it overwrote), consumers pop, and at the end the map is drained:
    /// every value pushed is accounted for exactly once — popped, overwritten or left.
    @Test(arguments: Kind.allCases)
    func overwritingPushesAccountForEveryValue(_ kind: Kind) throws {
        let map = try Self.make(kind, maxEntries: 4)
        let producers = 3, consumers = 2, perProducer = 20_000
        let total = producers * perProducer
        let seen = UnsafeMutablePointer<Atomic<UInt8>>.allocate(capacity: total)
        for index in 0..<total { (seen + index).initialize(to: Atomic(0)) }
        defer { seen.deinitialize(count: total); seen.deallocate() }
        let overwritten = Atomic<Int>(0), popped = Atomic<Int>(0), producing = Atomic<Int>(producers)
        let failures = Failures()
        let seenAddress = UInt(bitPattern: seen)
        @Sendable func account(_ value: UInt64, _ how: String) {
            let seen = UnsafeMutablePointer<Atomic<UInt8>>(bitPattern: seenAddress)!
            guard value < UInt64(total) else { return failures.record("foreign value \(value) (\(how))") }
            if (seen + Int(value)).pointee.wrappingAdd(1, ordering: .relaxed).newValue != 1 {
                failures.record("value \(value) seen twice (\(how))")
            }
        }
        runOnThreads(producers + consumers) { thread in
            if thread < producers {
                defer { producing.wrappingAdd(-1, ordering: .releasing) }
                for index in 0..<perProducer {
                    var old: UInt64 = 0
                    do {
                        let dropped = try withUnsafeBytes(of: UInt64(thread * perProducer + index)) { bytes in
                            try withUnsafeMutableBytes(of: &old) { try map.exchange(key: Self.noKey, value: bytes, flags: .exist, into: $0) }
                        }
                        if dropped {
                            account(old, "overwritten")
                            overwritten.wrappingAdd(1, ordering: .relaxed)
                        }
                    } catch {
                        failures.record("push with BPF_EXIST: \(error)")
                        return
                    }
                }
                return
            }
            while producing.load(ordering: .acquiring) > 0 {
                var value: UInt64 = 0
                let code = self.errno { try withUnsafeMutableBytes(of: &value) { try map.pop(into: $0) } }
                if code == ENOENT { sched_yield(); continue }
                guard code == 0 else { failures.record("pop: errno \(code)"); return }
                account(value, "popped")
                popped.wrappingAdd(1, ordering: .relaxed)
            }
        }
        let left = try drain(map)
        for value in left { account(value, "left") }
        #expect(failures.all.isEmpty, "\(failures.all)")
        #expect(popped.load(ordering: .relaxed) + overwritten.load(ordering: .relaxed) + left.count == total)
        var missing = 0
        for index in 0..<total where (seen + index).pointee.load(ordering: .relaxed) != 1 { missing += 1 }
        #expect(missing == 0)
        #expect(overwritten.load(ordering: .relaxed) > 0, "the test should overwrite some elements")
    }

    /// A user-mode producer, a helper-mode consumer and a freeze in the middle: the
    /// producer's user pushes start failing with EPERM (it goes on in helper mode, which a
    /// freeze does not stop) and nothing pushed is lost.
    @Test(arguments: Kind.allCases)
    func freezeDuringTrafficLosesNothing(_ kind: Kind) throws {
        let map = try Self.make(kind, maxEntries: 32)
        let total = 20_000
        let pushedCount = Atomic<Int>(0), poppedCount = Atomic<Int>(0), frozenSeen = Atomic<Int>(0)
        let failures = Failures()
        runOnThreads(3) { thread in
            switch thread {
            case 0:  // user-mode producer until EPERM, then helper mode
                var value: UInt64 = 0
                var helper = false
                let deadline = Deadline(after: .seconds(60))
                while value < UInt64(total) {
                    // Half way, the producer waits for the freeze, so that it lands in the
                    // middle of the traffic however the threads are scheduled (on a loaded
                    // machine the producer once pushed everything before the freezer ran).
                    if value == UInt64(total / 2), !helper, !map.isFrozen {
                        if deadline.hasPassed { return failures.record("not frozen within a minute: the producer gave up") }
                        sched_yield()
                        continue
                    }
                    if deadline.hasPassed { return failures.record("full for a minute: the producer gave up") }
                    let code = self.errno { try self.push(map, value, helper: helper) }
                    if code == 0 { value += 1; pushedCount.wrappingAdd(1, ordering: .relaxed) }
                    else if code == EPERM, !helper { helper = true; frozenSeen.wrappingAdd(1, ordering: .relaxed) }
                    else if code == E2BIG { sched_yield() }
                    else { failures.record("push: errno \(code)"); return }
                }
            case 1:  // helper-mode consumer
                let deadline = Deadline(after: .seconds(60))
                while poppedCount.load(ordering: .relaxed) < total {
                    if deadline.hasPassed { return failures.record("values lost: the consumer gave up") }
                    let code = self.errno { _ = try self.pop(map, helper: true) }
                    if code == 0 { poppedCount.wrappingAdd(1, ordering: .relaxed) }
                    else if code == ENOENT { sched_yield() }
                    else { failures.record("helper pop: errno \(code)"); return }
                }
            default:
                let deadline = Deadline(after: .seconds(60))
                while pushedCount.load(ordering: .relaxed) < total / 4 {
                    if deadline.hasPassed { return failures.record("the producer stopped before a quarter: no freeze") }
                    sched_yield()
                }
                do { try map.freeze() } catch { failures.record("freeze: \(error)") }
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        #expect(frozenSeen.load(ordering: .relaxed) == 1)
        #expect(poppedCount.load(ordering: .relaxed) == total)
        #expect(map.count == 0)
    }

    /// Once `freeze()` returns, no user-mode push or pop in flight can still land: with only
    /// user-mode traffic, the elements present when it returns stay exactly as they are.
    @Test(arguments: Kind.allCases)
    func freezeWaitsForPushesAndPopsInFlight(_ kind: Kind) throws {
        for round in 0..<5 {
            let map = try Self.make(kind, maxEntries: 64)
            let frozen = Atomic<Bool>(false)
            let snapshot = Atomic<Int>(-1)
            let failures = Failures()
            runOnThreads(3) { thread in
                if thread == 2 {
                    for _ in 0..<UInt64(round * 20) { sched_yield() }
                    do { try map.freeze() } catch { return failures.record("freeze: \(error)") }
                    var values: [UInt64] = []
                    var value: UInt64 = 0
                    // Peek works on a frozen map; the count and the next element must not move.
                    if (try? withUnsafeMutableBytes(of: &value) { try map.peek(into: $0) }) != nil { values.append(value) }
                    snapshot.store(map.count << 32 | Int(truncatingIfNeeded: values.first ?? 0xFFFF_FFFF), ordering: .relaxed)
                    frozen.store(true, ordering: .releasing)
                    return
                }
                var counter: UInt64 = 0
                while !frozen.load(ordering: .acquiring) {
                    counter &+= 1
                    let code = self.errno {
                        if thread == 0 || counter % 3 == 0 { try self.push(map, counter & 0xFFFF_FFF, flags: .exist) } else { _ = try self.pop(map) }
                    }
                    if code != 0, code != ENOENT, code != EPERM { return failures.record("errno \(code)") }
                }
            }
            #expect(failures.all.isEmpty, "\(failures.all)")
            var value: UInt64 = 0
            let next = (try? withUnsafeMutableBytes(of: &value) { try map.peek(into: $0) }) != nil ? Int(value) : 0xFFFF_FFFF
            #expect(snapshot.load(ordering: .relaxed) == map.count << 32 | next, "round \(round)")
        }
    }

    #if DEBUG
    /// The two halves of the freeze's exclusion, each placed with a hook (the test above
    /// meets them only by chance: found by review, 2026-12-06, twenty-fifth session). A push
    /// parked after its unlocked frozen check, before the lock, is refused (EPERM) when it
    /// goes on after `freeze()` returned: it checks again with the lock held.
    @Test(arguments: Kind.allCases)
    func aPushParkedBeforeTheLockIsRefusedOnceFrozen(_ kind: Kind) throws {
        let map = try Self.make(kind, maxEntries: 8)
        let push = ParkedPush(self, map, atStep: 0)
        try map.freeze()
        #expect(push.releaseAndWait() == EPERM)
        #expect(map.count == 0)
    }

    /// A user push of 7 on a thread of its own, parked at `step` of ``RawQueueStackMap/userPushStep``
    /// (from `init`, which returns once it is parked) until ``releaseAndWait()``.
    final class ParkedPush: Sendable {
        let release = Atomic<Bool>(false)
        let result = Mutex<Int32?>(nil)

        init(_ tests: QueueStackMapTests, _ map: RawQueueStackMap, atStep step: Int) {
            let parked = Atomic<Bool>(false)
            map.userPushStep = { [self] reached in
                guard reached == step else { return }
                parked.store(true, ordering: .releasing)
                while !release.load(ordering: .acquiring) { usleep(100) }
            }
            Thread { [self] in
                let code = tests.errno { try tests.push(map, 7) }
                result.withLock { $0 = code }
            }.start()
            while !parked.load(ordering: .acquiring) { usleep(100) }
        }

        /// Lets the push go on; its errno once it has returned.
        func releaseAndWait() -> Int32 {
            release.store(true, ordering: .releasing)
            while true {
                if let code = result.withLock({ $0 }) { return code }
                usleep(100)
            }
        }
    }

    /// …and a push that holds the ring's lock (it found the map unfrozen there) has finished
    /// when `freeze()` returns: the freeze takes and releases that lock after it sets the flag.
    @Test(arguments: Kind.allCases)
    func freezeWaitsForAPushHoldingTheLock(_ kind: Kind) throws {
        let map = try Self.make(kind, maxEntries: 8)
        let push = ParkedPush(self, map, atStep: 1)
        let froze = Atomic<Bool>(false)
        let freezer = Thread {
            _ = try? map.freeze()
            froze.store(true, ordering: .releasing)
        }
        freezer.start()
        usleep(100_000)
        let returnedEarly = froze.load(ordering: .acquiring)
        #expect(!returnedEarly, "freeze() returned while a push held the ring's lock")
        #expect(push.releaseAndWait() == 0)
        while !froze.load(ordering: .acquiring) { usleep(100) }
        #expect(map.count == 1)
    }

    /// …and a second `freeze()` answers "frozen already" only once that push has finished,
    /// as the first does: it set `settled` before taking the lock, and the second answered
    /// while the push was still to land (found by review, 2026-12-06, thirtieth session).
    @Test(arguments: Kind.allCases)
    func aSecondFreezeWaitsForAPushHoldingTheLock(_ kind: Kind) throws {
        let map = try Self.make(kind, maxEntries: 8)
        let push = ParkedPush(self, map, atStep: 1)
        let second = secondFreezeWhileAWriteIsParked(freeze: { () throws(MapError) in try map.freeze() },
                                                     isFrozen: { map.isFrozen }, count: { map.count },
                                                     release: { #expect(push.releaseAndWait() == 0) })
        #expect(!second.answeredEarly, "a second freeze() answered while a push held the ring's lock")
        #expect(second.code == EPERM && second.count == 1, "\(second)")  // frozen already, with the push in
    }
    #endif

    /// A dropped queue's ring goes back at once: nothing can point into it (values are
    /// copied), so it waits for no grace period (it went through reclamation, its bytes
    /// pending until one passed: found by review, 2026-12-06, twenty-fifth session).
    @Test(arguments: Kind.allCases)
    func aDroppedRingIsFreedAtOnce(_ kind: Kind) throws {
        var map: RawQueueStackMap? = try Self.make(kind, maxEntries: 64)
        let tag = map!.definition.effectivePoolTag
        try self.push(map!, 1)
        #expect(EpochMemory.statistics(for: tag).liveBytes > 0)
        map = nil
        let after = EpochMemory.statistics(for: tag)
        #expect(after.liveBytes == 0 && after.pendingBytes == 0, "\(after)")
    }
}
