import Foundation
import RCUBaseMaps
import RCUMaps
import RCUMapsTestSupport
import Synchronization
import Testing

/// `PERCPU_ARRAY` (RawPerCPUArrayMap), errno for errno with Linux 6.18's
/// `kernel/bpf/arraymap.c` and `syscall.c`: creation refusals, the user-mode all-CPU value
/// layout with its padding, flags, range, delete / lookup-and-delete, freeze and access,
/// batches, helper mode on one CPU's slot, and concurrent helper-mode increments and writers.
@Suite("PERCPU_ARRAY")
struct PerCPUArrayMapTests {
    final class Shared: Sendable {
        let stop = Atomic<Bool>(false)
        let torn = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        let pinned = Mutex<[Int]>([])
    }

    static func definition(valueSize: Int = 8, maxEntries: Int = 4, flags: MapCreationFlags = [],
                           keySize: Int = 4, numaNode: Int? = nil, lockOffset: Int? = nil,
                           name: String = "") -> MapDefinition {
        MapDefinition(type: .perCPUArray, keySize: keySize, valueSize: valueSize, maxEntries: maxEntries, flags: flags,
                      name: name, numaNode: numaNode, poolTag: uniqueTag(), lockOffset: lockOffset)
    }

    static func make(valueSize: Int = 8, maxEntries: Int = 4, flags: MapCreationFlags = []) throws(MapError)
        -> RawPerCPUArrayMap
    {
        try MapRegistry.create(definition(valueSize: valueSize, maxEntries: maxEntries, flags: flags)) as! RawPerCPUArrayMap
    }

    func errno(_ body: () throws -> Void) -> Int32 {
        do { try body(); return 0 } catch let error as MapError { return error.code } catch { return -1 }
    }

    func create(_ definition: MapDefinition) -> Int32 { errno { _ = try MapRegistry.create(definition) } }

    /// User-mode lookup of index `index`, as bytes.
    func lookup(_ map: RawPerCPUArrayMap, _ index: UInt32, flags: MapElementFlags = []) throws -> [UInt8] {
        var out = [UInt8](repeating: 0xEE, count: map.userValueSize)
        try withUnsafeBytes(of: index) { key in
            try out.withUnsafeMutableBytes { value in try map.lookup(key: key, into: value, flags: flags) }
        }
        return out
    }

    func update(_ map: RawPerCPUArrayMap, _ index: UInt32, _ bytes: [UInt8], flags: MapUpdateFlags = .any) throws {
        try withUnsafeBytes(of: index) { key in
            try bytes.withUnsafeBytes { value in try map.update(key: key, value: value, flags: flags) }
        }
    }

    /// A user-mode value with CPU `c`'s value filled with byte `c + base` (padding included).
    func perCPUBytes(_ map: RawPerCPUArrayMap, base: UInt8) -> [UInt8] {
        var bytes: [UInt8] = []
        for cpu in 0..<map.possibleCPUCount {
            bytes += [UInt8](repeating: base &+ UInt8(truncatingIfNeeded: cpu), count: map.paddedValueSize)
        }
        return bytes
    }

    // MARK: Creation

    /// `exchange` with a displaced buffer overlapping the new values at an offset: each CPU
    /// gets its own new value (they were read after the previous CPU's old value was
    /// stored over them: found by review, 2026-12-06, twenty-third session).
    @Test func anExchangeThroughOverlappingBuffersStoresTheNewValues() throws {
        let map = try Self.make(valueSize: 8)
        let stride = map.paddedValueSize, size = map.userValueSize
        guard map.possibleCPUCount >= 2 else { try Test.cancel("one possible CPU: the buffers cannot overlap") }
        // One buffer: the new values at 0..<size, the displaced ones at 8..<size + 8.
        var buffer = [UInt8](repeating: 0, count: size + 8)
        for cpu in 0..<map.possibleCPUCount { buffer[cpu * stride] = UInt8(cpu + 1) }
        let newValues = Array(buffer[0..<size])
        try withUnsafeBytes(of: UInt32(1)) { key in
            try buffer.withUnsafeMutableBytes { bytes in
                _ = try map.exchange(key: key, value: UnsafeRawBufferPointer(rebasing: bytes[0..<size]), flags: .any,
                                     into: UnsafeMutableRawBufferPointer(rebasing: bytes[8..<size + 8]))
            }
        }
        #expect(try lookup(map, 1) == newValues)
        #expect(Array(buffer[8..<size + 8]) == [UInt8](repeating: 0, count: size))  // the old values: zeros
    }

    @Test func isCreatedAndReportsPossibleCPUs() throws {
        #expect(MapRegistry.supportedBuiltInTypes.contains(.perCPUArray))
        #expect(MapType.perCPUArray.linuxTypeID == 6)
        let map = try Self.make(valueSize: 12)
        #expect(map.possibleCPUCount == RawPerCPUArrayMap.possibleCPUs)
        #expect(map.possibleCPUCount >= ProcessInfo.processInfo.activeProcessorCount)
        #expect(map.paddedValueSize == 16)
        #expect(map.userValueSize == 16 * map.possibleCPUCount)
        #expect(map.count == 4)
        // Every value starts at zero on every CPU.
        #expect(try lookup(map, 3) == [UInt8](repeating: 0, count: map.userValueSize))
    }

    /// A per-CPU value whose size is not a multiple of 8 is written a word at a time, the
    /// padding after it kept (the array's user-mode writes, the per-CPU hash's helper-mode
    /// writes and one CPU's slice of a one-word value): the masks pick those bytes by their
    /// place in memory, where they assumed a little-endian machine (found by review,
    /// 2026-12-04). Checked for both byte orders, and through memory on this machine.
    @Test func partialWordMasksFollowTheByteOrder() {
        // Little-endian: byte i of the word in memory is bits 8i..<8i+8.
        #expect(WordBytes.mask(0..<3, littleEndian: true) == 0x0000_0000_00FF_FFFF)
        #expect(WordBytes.mask(2..<4, littleEndian: true) == 0x0000_0000_FFFF_0000)
        // Big-endian: byte 0 is the most significant.
        #expect(WordBytes.mask(0..<3, littleEndian: false) == 0xFFFF_FF00_0000_0000)
        #expect(WordBytes.mask(2..<4, littleEndian: false) == 0x0000_FFFF_0000_0000)
        #expect(WordBytes.mask(0..<8, littleEndian: false) == ~0 && WordBytes.mask(0..<0) == 0)
        // This machine: the mask's bytes in memory are 0xFF exactly at the range.
        for lower in 0..<8 {
            for upper in lower...8 {
                let bytes = withUnsafeBytes(of: WordBytes.mask(lower..<upper)) { Array($0) }
                #expect(bytes == (0..<8).map { (lower..<upper).contains($0) ? 0xFF : 0 }, "\(lower)..<\(upper)")
            }
        }
    }

    @Test func cpuListsParseAsTheKernelWritesThem() {
        #expect(RawPerCPUArrayMap.parseCPUList("0-3\n") == 4)
        #expect(RawPerCPUArrayMap.parseCPUList("0\n") == 1)
        #expect(RawPerCPUArrayMap.parseCPUList("0,2-5,8\n") == 6)
        #expect(RawPerCPUArrayMap.parseCPUList("x") == nil)
        #expect(RawPerCPUArrayMap.parseCPUList("3-1") == nil)
        #expect(RawPerCPUArrayMap.parseCPUList("-") == nil)      // trapped (found by review)
        #expect(RawPerCPUArrayMap.parseCPUList("0,-\n") == nil)
    }

    /// The possible CPUs' count, density and CPU-number bound come from one read of their
    /// list: unreadable, the list is not dense whatever `sysconf` says, so no map adds in
    /// restartable sequences into slots it may share (found by review, 2026-12-06,
    /// twenty-seventh session: three reads, and one that failed for want of a file
    /// descriptor, gave one slot and "dense").
    @Test func thePossibleCPUsComeFromOneReadOfTheirList() async {
        typealias List = RawPerCPUArrayMap.PossibleCPUList
        #expect(RawPerCPUArrayMap.possibleCPUList(fromList: "0-3\n", configured: 1) == List(count: 4, dense: true, idLimit: 4))
        #expect(RawPerCPUArrayMap.possibleCPUList(fromList: "0,2-5\n", configured: 1) == List(count: 5, dense: false, idLimit: 6))
        #expect(RawPerCPUArrayMap.possibleCPUList(fromList: nil, configured: 2) == List(count: 2, dense: false, idLimit: 2))
        #expect(RawPerCPUArrayMap.possibleCPUList(fromList: "x", configured: 0) == List(count: 1, dense: false, idLimit: 1))
        let list = RawPerCPUArrayMap.possibleCPUList
        #expect(!list.dense || list.idLimit == list.count)
        // The list read first while no descriptor is free, then readable: still one story.
        await #expect(processExitsWith: .success) { Self.readThePossibleCPUsWithNoDescriptorFree() }
    }

    static func readThePossibleCPUsWithNoDescriptorFree() {
        // Run on one CPU (glibc's fallback then counts one), and leave no descriptor free.
        _ = RawPerCPUArrayMap.pinCurrentThread(toCPU: 0)
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        var highest: Int32 = 2
        for fd in Int32(0)..<1024 where fcntl(fd, F_GETFD) != -1 { highest = fd }
        var lowered = limit
        lowered.rlim_cur = rlim_t(highest + 1)
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered) == 0 else { exit(2) }
        var filler: [Int32] = []
        while true {
            let fd = open("/dev/null", O_RDONLY)
            if fd < 0 { break }
            filler.append(fd)
        }
        let countRead = RawPerCPUArrayMap.possibleCPUs  // what a map's creation reads
        let list = RawPerCPUArrayMap.possibleCPUList
        for fd in filler { close(fd) }
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        // Read again now that it could be: the figures were fixed by the first read.
        let dense = RawPerCPUArrayMap.possibleCPUsAreDense
        let limitNow = RawPerCPUArrayMap.cpuIDLimit, count = RawPerCPUArrayMap.possibleCPUs
        guard list == RawPerCPUArrayMap.possibleCPUList, countRead == count, !dense || limitNow == count else {
            FileHandle.standardError.write(Data("count \(count), dense \(dense), CPU-number bound \(limitNow)\n".utf8))
            exit(1)
        }
        exit(0)
    }

    /// A CPU number names the slot helper mode uses on that CPU, also where the possible
    /// CPUs have gaps (`0,2-5`: 5 slots, CPU numbers below 6 = `nr_cpu_ids`): CPU 5 wraps to
    /// slot 0. `lookupInPlace(key:cpu:in:)` took a slot number, so CPU 5 answered ENOENT
    /// (found by review, 2026-12-05); on this machine's dense list the two are the same.
    @Test func cpuNumbersMapToTheSlotsHelperModeUses() throws {
        #expect(RawPerCPUArrayMap.cpuIDLimit(ofList: "0,2-5\n") == 6)
        #expect(RawPerCPUArrayMap.cpuIDLimit(ofList: "0-3\n") == 4)
        #expect(RawPerCPUArrayMap.cpuIDLimit(ofList: "x") == nil)
        #expect((0..<6).map { RawPerCPUArrayMap.slot(ofCPU: $0, slots: 5) } == [0, 1, 2, 3, 4, 0])
        #expect(RawPerCPUArrayMap.cpuIDLimit >= RawPerCPUArrayMap.possibleCPUs)
        let map = try Self.make(valueSize: 8, maxEntries: 1)
        Epoch.withSection { section in
            for cpu in 0..<RawPerCPUArrayMap.cpuIDLimit {
                let value = withUnsafeBytes(of: UInt32(0)) { try? map.lookupInPlace(key: $0, cpu: cpu, in: section) }
                #expect(value != nil, "CPU \(cpu)")
            }
            let beyond = withUnsafeBytes(of: UInt32(0)) { try? map.lookupInPlace(key: $0, cpu: RawPerCPUArrayMap.cpuIDLimit, in: section) }
            #expect(beyond == nil)
        }
    }

    @Test func creationRefusalsAreLinuxs() {
        let d = Self.definition
        #expect(create(d(8, 0, [], 4, nil, nil, "")) == EINVAL)             // maxEntries 0
        #expect(create(d(8, 4, [], 8, nil, nil, "")) == EINVAL)             // keySize 8
        #expect(create(d(8, 4, [], 0, nil, nil, "")) == EINVAL)             // keySize 0
        #expect(create(d(0, 4, [], 4, nil, nil, "")) == EINVAL)             // valueSize 0
        #expect(create(d(8, Int(UInt32.max) + 1, [], 4, nil, nil, "")) == EINVAL)
        for flags: MapCreationFlags in [.mmapable, .innerMap, .numaNode, .noPrealloc, .zeroSeed, .preserveElements,
                                        .noCommonLRU, .clone, .stackBuildID, [.readOnly, .writeOnly],
                                        [.readOnlyProgram, .writeOnlyProgram], MapCreationFlags(rawValue: 1 << 20)] {
            #expect(create(d(8, 4, flags, 4, nil, nil, "")) == EINVAL, "flags \(flags)")
        }
        #expect(create(d(8, 4, [], 4, 0, nil, "")) == EINVAL)               // a NUMA node
        #expect(create(d(8, 4, [], 4, nil, nil, "bad-name")) == EINVAL)
        // E2BIG: round_up(valueSize, 8) over PCPU_MIN_UNIT_SIZE, or over INT_MAX.
        #expect(create(d(32768, 1, [], 4, nil, nil, "")) == 0)
        #expect(create(d(32761, 1, [], 4, nil, nil, "")) == 0)
        #expect(create(d(32769, 1, [], 4, nil, nil, "")) == E2BIG)
        #expect(create(d(Int(Int32.max) + 1, 1, [], 4, nil, nil, "")) == E2BIG)
        // EINVAL comes before E2BIG.
        #expect(create(d(40000, 1, .mmapable, 4, nil, nil, "")) == EINVAL)
        // A lock word: EOPNOTSUPP (no bpf_spin_lock in per-CPU values); EACCES with a program
        // access flag; EINVAL when misplaced.
        #expect(create(d(8, 4, [], 4, nil, 0, "")) == EOPNOTSUPP)
        #expect(create(d(8, 4, .readOnlyProgram, 4, nil, 0, "")) == EACCES)
        #expect(create(d(8, 4, [], 4, nil, 6, "")) == EINVAL)
        // The access flags alone are fine.
        for flags: MapCreationFlags in [.readOnly, .writeOnly, .readOnlyProgram, .writeOnlyProgram] {
            #expect(create(d(8, 4, flags, 4, nil, nil, "ok")) == 0)
        }
    }

    // MARK: User mode

    @Test(arguments: [1, 4, 8, 12, 24, 100])
    func userModeLayoutAndPadding(valueSize: Int) throws {
        let map = try Self.make(valueSize: valueSize)
        let written = perCPUBytes(map, base: 0x10)
        try update(map, 2, written)
        // Linux copies round_up(valueSize, 8) bytes per CPU: padding comes back as written.
        #expect(try lookup(map, 2) == written)
        #expect(try lookup(map, 1) == [UInt8](repeating: 0, count: map.userValueSize))
        // A helper-mode update writes valueSize bytes of one CPU's slot: the padding stays.
        let value = [UInt8](repeating: 0xAB, count: valueSize)
        try Epoch.withSection { section in
            try withUnsafeBytes(of: UInt32(2)) { key in
                try value.withUnsafeBytes { try map.update(key: key, value: $0, flags: .any, in: section) }
            }
        }
        let after = try lookup(map, 2)
        var changed = 0
        for cpu in 0..<map.possibleCPUCount {
            let slot = Array(after[cpu * map.paddedValueSize ..< (cpu + 1) * map.paddedValueSize])
            let old = Array(written[cpu * map.paddedValueSize ..< (cpu + 1) * map.paddedValueSize])
            if slot != old {
                changed += 1
                #expect(Array(slot[..<valueSize]) == value)
                #expect(Array(slot[valueSize...]) == Array(old[valueSize...]), "padding bytes kept")
            }
        }
        // Exactly one: the calling CPU's (0xAB is never a CPU's fill; `<= 1` passed an update
        // that wrote nothing: found by review, 2026-12-06, twenty-fifth session).
        #expect(changed == 1, "a helper-mode update changed \(changed) CPUs' values")
    }

    @Test func flagsRangeAndBufferSizes() throws {
        let map = try Self.make()
        let value = perCPUBytes(map, base: 1)
        #expect(errno { try update(map, 0, value, flags: .noExist) } == EEXIST)
        #expect(errno { try update(map, 0, value, flags: .exist) } == 0)
        #expect(errno { try update(map, 0, value, flags: .lock) } == EINVAL)
        #expect(errno { try update(map, 0, value, flags: MapUpdateFlags(rawValue: 8)) } == EINVAL)
        #expect(errno { try update(map, 4, value) } == E2BIG)
        #expect(errno { try update(map, 4, value, flags: .noExist) } == E2BIG)  // range before NOEXIST
        #expect(errno { _ = try lookup(map, 4) } == ENOENT)
        #expect(errno { _ = try lookup(map, 0, flags: .lock) } == EINVAL)
        #expect(errno { _ = try lookup(map, 0, flags: MapElementFlags(rawValue: 1)) } == EINVAL)
        // Wrong buffer sizes: EINVAL (Linux trusts the pointer).
        #expect(errno { try update(map, 0, [UInt8](repeating: 0, count: 8)) } == (map.possibleCPUCount == 1 ? 0 : EINVAL))
        #expect(errno { try update(map, 0, value + [0]) } == EINVAL)
        var short = [UInt8](repeating: 0, count: map.userValueSize - 1)
        #expect(errno {
            try withUnsafeBytes(of: UInt32(0)) { key in try short.withUnsafeMutableBytes { try map.lookup(key: key, into: $0) } }
        } == EINVAL)
        #expect(errno { try withUnsafeBytes(of: UInt64(0)) { key in
            try value.withUnsafeBytes { try map.update(key: key, value: $0, flags: .any) } } } == EINVAL)
        // Helper mode: index E2BIG / ENOENT, NOEXIST EEXIST, BPF_F_LOCK EINVAL, value of valueSize.
        let one = [UInt8](repeating: 1, count: 8)
        func helperUpdate(_ index: UInt32, _ flags: MapUpdateFlags, _ bytes: [UInt8]) -> Int32 {
            errno {
                try withUnsafeBytes(of: index) { key in
                    try bytes.withUnsafeBytes { value in
                        try Epoch.withSection { (section) throws(MapError) in
                            try map.update(key: key, value: value, flags: flags, in: section)
                        }
                    }
                }
            }
        }
        func helperLookup(_ index: UInt32) -> Int32 {
            errno {
                try withUnsafeBytes(of: index) { key in
                    _ = try Epoch.withSection { (section) throws(MapError) in try map.lookupInPlace(key: key, in: section) }
                }
            }
        }
        #expect(helperUpdate(0, .any, one) == 0)
        #expect(helperUpdate(0, .exist, one) == 0)
        #expect(helperUpdate(0, .noExist, one) == EEXIST)
        #expect(helperUpdate(0, .lock, one) == EINVAL)
        #expect(helperUpdate(4, .any, one) == E2BIG)
        #expect(helperUpdate(0, .any, value + [0]) == EINVAL)
        #expect(helperLookup(4) == ENOENT)
        #expect(helperLookup(3) == 0)
        #expect(errno {
            try withUnsafeBytes(of: UInt32(0)) { key in
                try Epoch.withSection { (section) throws(MapError) in try map.delete(key: key, in: section) }
            }
        } == EINVAL)
    }

    @Test func deleteLookupAndDeleteAndNextKey() throws {
        let map = try Self.make(maxEntries: 3)
        var out = [UInt8](repeating: 0, count: map.userValueSize)
        #expect(errno { try withUnsafeBytes(of: UInt32(0)) { try map.delete(key: $0) } } == EINVAL)
        #expect(errno { try withUnsafeBytes(of: UInt32(9)) { try map.delete(key: $0) } } == EINVAL)
        #expect(errno { try withUnsafeBytes(of: UInt32(0)) { try map.delete(key: $0, flags: .lock) } } == EINVAL)
        #expect(errno { try withUnsafeBytes(of: UInt32(0)) { key in
            try out.withUnsafeMutableBytes { try map.lookupAndDelete(key: key, into: $0) } } } == 524)
        #expect(errno { try withUnsafeBytes(of: UInt32(0)) { key in
            try out.withUnsafeMutableBytes { try map.lookupAndDelete(key: key, into: $0, flags: .lock) } } } == EINVAL)
        #expect(throws: MapError.unsupportedByMapType) {
            try withUnsafeBytes(of: UInt32(0)) { key in try out.withUnsafeMutableBytes { try map.lookupAndDelete(key: key, into: $0) } }
        }
        #expect(try map.next(after: nil as UInt32?) == 0)
        #expect(try map.next(after: UInt32(0)) == 1)
        #expect(try map.next(after: UInt32(1)) == 2)
        #expect(try map.next(after: UInt32(2)) == nil)
        #expect(try map.next(after: UInt32(7), linuxRule: true) == 0)
    }

    @Test func freezeAndAccessFlags() throws {
        let map = try Self.make()
        let value = perCPUBytes(map, base: 3)
        try map.freeze()
        #expect(errno { try update(map, 0, value) } == EPERM)
        #expect(errno { try withUnsafeBytes(of: UInt32(0)) { try map.delete(key: $0) } } == EPERM)
        #expect(errno { _ = try lookup(map, 0) } == 0)
        // Helper mode still writes a frozen map, as on Linux.
        try Epoch.withSection { section in
            try withUnsafeBytes(of: UInt32(0)) { key in
                try [UInt8](repeating: 1, count: 8).withUnsafeBytes { try map.update(key: key, value: $0, flags: .any, in: section) }
            }
        }
        let readOnly = try Self.make(flags: .readOnly)
        #expect(errno { try update(readOnly, 0, value) } == EPERM)
        #expect(errno { try readOnly.freeze() } == EPERM)  // freezing needs write access, as Linux
        let writeOnly = try Self.make(flags: .writeOnly)
        #expect(errno { _ = try lookup(writeOnly, 0) } == EPERM)
        #expect(errno { try update(writeOnly, 0, value) } == 0)
        #expect(errno { _ = try writeOnly.next(after: nil as UInt32?) } == EPERM)
        let readOnlyProgram = try Self.make(flags: .readOnlyProgram)
        Epoch.withSection { section in
            #expect(errno { try withUnsafeBytes(of: UInt32(0)) { key in
                try [UInt8](repeating: 1, count: 8).withUnsafeBytes {
                    try readOnlyProgram.update(key: key, value: $0, flags: .any, in: section) } } } == EACCES)
        }
        let writeOnlyProgram = try Self.make(flags: .writeOnlyProgram)
        Epoch.withSection { section in
            #expect(errno { _ = try withUnsafeBytes(of: UInt32(0)) { try writeOnlyProgram.lookupInPlace(key: $0, in: section) } } == EACCES)
        }
    }

    @Test func batches() throws {
        let map = try Self.make(valueSize: 4, maxEntries: 5)
        let size = map.userValueSize
        var keys: [UInt32] = [0, 1, 2]
        var values: [UInt8] = []
        for index in 0..<3 { values += perCPUBytes(map, base: UInt8(index * 16)) }
        let updated = try keys.withUnsafeBytes { k in
            try values.withUnsafeBytes { v in try map.updateBatch(keys: k, values: v, count: 3, elementFlags: [], flags: 0) }
        }
        #expect(updated.count == 3 && updated.error == nil)
        #expect(try lookup(map, 1) == perCPUBytes(map, base: 16))
        // An out-of-range key stops the batch with E2BIG after the elements before it.
        keys = [3, 9, 4]
        let stopped = try keys.withUnsafeBytes { k in
            try values.withUnsafeBytes { v in try map.updateBatch(keys: k, values: v, count: 3, elementFlags: [], flags: 0) }
        }
        #expect(stopped.count == 1 && stopped.error == .outOfSpace)
        #expect(errno { _ = try keys.withUnsafeBytes { k in try values.withUnsafeBytes { v in
            try map.updateBatch(keys: k, values: v, count: 3, elementFlags: .lock, flags: 0) } } } == EINVAL)
        // Lookup batch: per-CPU values, cursor as ARRAY's, ENOENT at the end.
        var outKeys = [UInt32](repeating: 0, count: 4)
        var outValues = [UInt8](repeating: 0, count: 4 * size)
        let first = try outKeys.withUnsafeMutableBytes { k in try outValues.withUnsafeMutableBytes { v in
            try map.lookupBatch(from: nil, keys: k, values: v, count: 4, elementFlags: [], flags: 0) } }
        #expect(first.count == 4 && first.error == nil)
        #expect(outKeys == [0, 1, 2, 3])
        #expect(Array(outValues[2 * size ..< 3 * size]) == perCPUBytes(map, base: 32))
        #expect(Array(outValues[3 * size ..< 4 * size]) == perCPUBytes(map, base: 0))
        let second = try outKeys.withUnsafeMutableBytes { k in try outValues.withUnsafeMutableBytes { v in
            try map.lookupBatch(from: first.cursor, keys: k, values: v, count: 4, elementFlags: [], flags: 0) } }
        #expect(second.count == 1 && second.error == .keyNotFound && outKeys[0] == 4)
        // A values buffer sized for one CPU's values: EINVAL (when there are several CPUs).
        if map.possibleCPUCount > 1 {
            var small = [UInt8](repeating: 0, count: 4 * 8)
            #expect(errno { _ = try outKeys.withUnsafeMutableBytes { k in try small.withUnsafeMutableBytes { v in
                try map.lookupBatch(from: nil, keys: k, values: v, count: 4, elementFlags: [], flags: 0) } } } == EINVAL)
        }
        #expect(errno { _ = try outKeys.withUnsafeMutableBytes { k in try outValues.withUnsafeMutableBytes { v in
            try map.lookupAndDeleteBatch(from: nil, keys: k, values: v, count: 1, elementFlags: [], flags: 0) } } } == 524)
        #expect(errno { _ = try keys.withUnsafeBytes { k in try map.deleteBatch(keys: k, count: 1, elementFlags: [], flags: 0) } } == 524)
        try map.freeze()
        #expect(errno { _ = try keys.withUnsafeBytes { k in try values.withUnsafeBytes { v in
            try map.updateBatch(keys: k, values: v, count: 1, elementFlags: [], flags: 0) } } } == EPERM)
    }

    // MARK: Helper mode: the calling CPU's slot

    /// Pinned to each allowed CPU in turn, a helper-mode write lands in that CPU's slot alone.
    @Test func helperModeTouchesTheCallingCPUsSlotOnly() throws {
        let map = try Self.make(valueSize: 8, maxEntries: 2)
        let shared = Shared()
        runOnThreads(1) { _ in
            for cpu in 0..<map.possibleCPUCount where RawPerCPUArrayMap.pinCurrentThread(toCPU: cpu) {
                #expect(map.currentCPUSlot == cpu)
                try? Epoch.withSection { section in
                    let value = try withUnsafeBytes(of: UInt32(1)) { try map.lookupInPlace(key: $0, in: section) }
                    value.baseAddress!.storeBytes(of: UInt64(100 + cpu), as: UInt64.self)
                    try withUnsafeBytes(of: UInt32(0)) { key in
                        try withUnsafeBytes(of: UInt64(200 + cpu)) { try map.update(key: key, value: $0, flags: .any, in: section) }
                    }
                }
                shared.pinned.withLock { $0.append(cpu) }
            }
        }
        let pinned = shared.pinned.withLock { $0 }
        // No CPU could be pinned (a restricted cpuset): nothing to check, said as a cancelled
        // test rather than a pass (found by review, 2026-12-05, eighteenth session).
        if pinned.isEmpty { try Test.cancel("no CPU could be pinned") }
        let byIndex1 = try lookup(map, 1).withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
        let byIndex0 = try lookup(map, 0).withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
        for cpu in 0..<map.possibleCPUCount {
            #expect(byIndex1[cpu] == (pinned.contains(cpu) ? UInt64(100 + cpu) : 0), "CPU \(cpu)")
            #expect(byIndex0[cpu] == (pinned.contains(cpu) ? UInt64(200 + cpu) : 0), "CPU \(cpu)")
        }
    }

    /// N threads × M helper-mode atomic increments: the sum over all CPUs' slots is N × M
    /// exactly, however the threads migrate.
    @Test func concurrentHelperIncrementsSumExactly() throws {
        let map = try Self.make(valueSize: 8, maxEntries: 3)
        let threads = 4, increments = 50_000
        runOnThreads(threads) { _ in
            for _ in 0..<increments {
                Epoch.withSection { section in
                    let value = try! withUnsafeBytes(of: UInt32(1)) { try map.lookupInPlace(key: $0, in: section) }
                    value.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self).pointee
                        .wrappingAdd(1, ordering: .relaxed)
                }
            }
        }
        let slots = try lookup(map, 1).withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
        #expect(slots.reduce(0, +) == UInt64(threads * increments))
        #expect(try lookup(map, 0) == [UInt8](repeating: 0, count: map.userValueSize))
        #expect(try lookup(map, 2) == [UInt8](repeating: 0, count: map.userValueSize))
    }

    /// Readers never see a torn 24-byte value while user-mode and helper-mode writers (which
    /// may share a CPU's slot after migrating) store values whose three words are equal.
    @Test func wideValuesAreNeverTorn() throws {
        let map = try Self.make(valueSize: 24, maxEntries: 1)
        let shared = Shared()
        runOnThreads(4) { thread in
            var round: UInt64 = 1
            let key = UInt32(0)
            while !shared.stop.load(ordering: .relaxed) {
                switch thread {
                case 0:  // user-mode writer: every CPU at once
                    var value = [UInt64](repeating: 0, count: 3 * map.possibleCPUCount)
                    for i in value.indices { value[i] = round }
                    try! withUnsafeBytes(of: key) { k in try value.withUnsafeBytes { try map.update(key: k, value: $0, flags: .any) } }
                case 1:  // helper-mode writer
                    let value: (UInt64, UInt64, UInt64) = (round << 32, round << 32, round << 32)
                    try! Epoch.withSection { section in
                        try withUnsafeBytes(of: key) { k in
                            try withUnsafeBytes(of: value) { try map.update(key: k, value: $0, flags: .any, in: section) }
                        }
                    }
                default:  // readers
                    var value = [UInt64](repeating: 0, count: 3 * map.possibleCPUCount)
                    try! withUnsafeBytes(of: key) { k in try value.withUnsafeMutableBytes { try map.lookup(key: k, into: $0) } }
                    for cpu in 0..<map.possibleCPUCount where value[3 * cpu] != value[3 * cpu + 1] || value[3 * cpu] != value[3 * cpu + 2] {
                        shared.torn.wrappingAdd(1, ordering: .relaxed)
                    }
                    if shared.reads.wrappingAdd(1, ordering: .relaxed).newValue >= 100_000 { shared.stop.store(true, ordering: .relaxed) }
                }
                round &+= 1
            }
        }
        #expect(shared.torn.load(ordering: .relaxed) == 0)
    }

    /// Harvesting counters by exchanging zeros while a helper adds to them in place, with
    /// values over 8 bytes (a sequence word per slot): every increment is either in an
    /// exchange's displaced value or still in the map. The exchange loaded and stored each
    /// word plainly under the sequence word, which in-place atomic writers do not take, so
    /// an add between the load and the store was lost from both (found by review: up to
    /// 41,622 of 2,000,000 lost; 8-byte values, one atomic exchange a word, lost none).
    @Test(arguments: [8, 16, 12])
    func exchangesLoseNoConcurrentInPlaceIncrement(valueSize: Int) throws {
        let map = try Self.make(valueSize: valueSize, maxEntries: 1)
        let adds = 20_000_000
        let harvested = harvestIncrements(adds: adds, valueBytes: map.userValueSize, counter: { section in
            let value = withUnsafeBytes(of: UInt32(0)) { try? map.lookupInPlace(key: $0, cpu: 0, in: section) }
            return value!.baseAddress!.assumingMemoryBound(to: Atomic<UInt64>.self)
        }, exchange: { zeros, displaced in
            _ = try? withUnsafeBytes(of: UInt32(0)) { try map.exchange(key: $0, value: zeros, flags: .any, into: displaced) }
        })
        #expect(harvested.total == UInt64(adds))
        #expect(harvested.raced, "the exchanges never met the adds")
    }

}
