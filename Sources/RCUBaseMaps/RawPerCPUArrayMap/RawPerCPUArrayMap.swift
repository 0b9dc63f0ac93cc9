import CRCUMapsShim
import RCUEpoch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A `PERCPU_ARRAY` map (Linux `BPF_MAP_TYPE_PERCPU_ARRAY`, type 6): an ``RawArrayMap``
/// whose every index holds one value per *possible* CPU (``possibleCPUCount``).
///
/// Semantics follow Linux 6.18 (`kernel/bpf/arraymap.c`), errno for errno:
/// - **User mode** (the syscall side) sees all CPUs at once. A lookup copies every CPU's
///   value into a buffer of ``userValueSize`` bytes — `round_up(valueSize, 8)` per CPU, CPU
///   by CPU — and an update copies the same layout in, for every CPU. As Linux copies
///   `round_up(valueSize, 8)` bytes per CPU, the padding bytes read back are the last ones a
///   user-mode update wrote (zero at first); helper-mode updates leave them alone.
///   Update flags: `BPF_NOEXIST` → EEXIST (every index exists); any flag beyond `BPF_EXIST`,
///   `BPF_F_LOCK` included, → EINVAL. An index past the end: update E2BIG, lookup ENOENT.
///   Delete → EINVAL; lookup-and-delete → ENOTSUPP (524). Get-next-key, freezing and the
///   access flags as ``RawArrayMap``; batch lookup and update as ARRAY's, with the per-CPU
///   value layout per element; the delete and lookup-and-delete batches are ENOTSUPP.
/// - **Helper mode** (the program side) sees the calling CPU's slot only:
///   ``lookupInPlace(key:in:)`` returns a pointer to it, valid for the section, and
///   ``update(key:value:flags:in:)`` writes it alone (`valueSize` bytes).
///
/// A buffer of the wrong size is EINVAL here; Linux trusts the user pointer (and faults).
///
/// **Thread migration.** Linux runs a program with preemption (or migration) disabled, so
/// a CPU's slot has one writer at a time. A userspace thread can move to another CPU in the
/// middle of an operation, so two threads may touch one CPU's slot at once. That is made
/// safe the same way ``RawArrayMap`` makes concurrent writers safe: a value of at most 8
/// bytes is one atomic word; a larger one has a per-slot sequence word (a seqlock), so a
/// user-mode read never sees a torn value. Read-modify-write through the helper-mode
/// pointer must use atomics (the typed layer's `AtomicFields`): then the result stays
/// exact — an increment is never lost; a thread that migrated between reading the CPU
/// number and incrementing merely counts into the slot of the CPU it ran on before, and
/// a sum over all CPUs is the same — unless the same index is also changed with the
/// restartable-sequence add (the typed `PerCPUArrayMap.add(_:at:)`), whose plain add an
/// atomic add of a migrated thread can overlap (one of the two is then lost).
///
/// Layout: CPU-major. Each CPU has its own block of `maxEntries` slots, padded to 64 bytes
/// (a cache line), so no two CPUs' slots share a line — the point of the type.
/// Memory: `possibleCPUCount × round_up(maxEntries × slotStride, 64)` bytes, where
/// `slotStride` is `round_up(valueSize, 8)` plus 8 for a value over 8 bytes.
/// On a machine with several NUMA nodes each CPU's block starts on a page of its own, and
/// the kernel is asked (`mbind`, preferred policy) to put its pages on that CPU's node when
/// they are first touched, as Linux's per-CPU allocator keeps each CPU's copy local. One
/// mapping holds every block; a node that is full, or a kernel (or seccomp profile) that
/// refuses `mbind`, leaves the pages wherever the kernel puts them. Block `s` goes to the
/// node of CPU number `s`: with gaps in the possible-CPU list (`0-3,8-11`), where a block
/// serves every CPU whose number is `s` modulo the count, CPUs numbered past a gap may get
/// another node's memory (correct, not local). Consecutive blocks of one node are asked for
/// at once: the kernel splits a mapping wherever the policy changes, so each run of them is
/// a mapping of its own. Where CPU numbers alternate between the nodes (some firmware
/// numbers them round-robin), that would be a mapping per CPU and map, and a process's
/// mappings are limited (`vm.max_map_count`, 65,530 by default): with more than
/// 16 runs (`maxPlacementRuns`), whatever makes them (many nodes with their hyperthreads
/// numbered in a second range make two runs a node), the blocks are not placed, and each page goes where the
/// kernel's default policy puts it, the node of the thread that first writes it (found by
/// review, 2026-12-06, twenty-seventh session). Linux refuses a NUMA node in the
/// definition (`BPF_F_NUMA_NODE`) for this type, and so does this map.
///
/// Concurrency: any number of readers and writers on any threads.
public final class RawPerCPUArrayMap: RawMap, @unchecked Sendable {
    // @unchecked Sendable: `storage` is allocated once and only accessed through atomics
    // (user mode) or as borrowed memory (helper mode, caller's responsibility).

    /// The definition the map was created with. Immutable; any thread.
    public let definition: MapDefinition
    @usableFromInline let valueSize: Int
    @usableFromInline let maxEntries: Int
    /// `round_up(valueSize, 8)`: the bytes per CPU in a user-mode value.
    public let paddedValueSize: Int
    /// Slots per index: the number of possible CPUs.
    public let possibleCPUCount: Int
    /// Bytes per slot: the padded value, plus a sequence word in front when the value
    /// exceeds 8 bytes.
    @usableFromInline let slotStride: Int
    /// Offset of the value within a slot (0 or 8).
    @usableFromInline let valueOffset: Int
    /// Bytes per CPU block (a multiple of 64; of the page size when the blocks are placed on
    /// their CPUs' NUMA nodes).
    @usableFromInline let cpuStride: Int
    /// Whether ``addToCurrentCPUWord(_:at:)`` adds in a restartable sequence: the possible
    /// CPUs are exactly `0..<possibleCPUCount` (no gaps: every CPU number is its own slot),
    /// and the map was not made to add atomically (tests).
    @usableFromInline let restartableAdds: Bool
    /// The NUMA node each CPU's block was placed on (the kernel was asked to put its pages
    /// there), by CPU slot; nil when the blocks were not placed (one NUMA node, or CPU
    /// numbers that alternate between nodes: see the type's documentation).
    package let cpuBlockNodes: [Int]?
    let storageSize: Int
    /// The CPU blocks, which own `storage` (freed a grace period after the map goes).
    let blocks: PerCPUBlocks
    /// Invariant: `storageSize` bytes, 64-byte aligned, bound to `Atomic<UInt64>`, zero at
    /// creation (`blocks.base`).
    @usableFromInline let storage: UnsafeMutableRawPointer
    /// What user and helper mode may do (the access flags).
    public let access: MapAccess
    let freezeState = MapFreezeState()

    /// The number of possible CPUs, as libbpf's `libbpf_num_possible_cpus()` counts them:
    /// the CPUs listed in `/sys/devices/system/cpu/possible` (`0-3`, `0,2-5`), or
    /// `sysconf(_SC_NPROCESSORS_CONF)` when that file cannot be read (with no file
    /// descriptor free, glibc then counts the CPUs the process may run on, which can be
    /// fewer: every per-CPU map of the process has that many slots). Read once, with
    /// ``possibleCPUsAreDense`` and ``cpuIDLimit``.
    public static var possibleCPUs: Int { possibleCPUList.count }

    /// Whether the possible CPUs are numbered `0..<possibleCPUs` with no gap (`0-3`, not
    /// `0,2-5`): then a CPU's number is its slot, and no two CPUs share one. False when the
    /// list cannot be read. Read once.
    public static var possibleCPUsAreDense: Bool { possibleCPUList.dense }

    /// One more than the highest possible CPU number, as Linux's `nr_cpu_ids`: the bound
    /// `bpf_map_lookup_percpu_elem` checks a CPU number against (``possibleCPUs`` when the
    /// list cannot be read). Read once.
    public static var cpuIDLimit: Int { possibleCPUList.idLimit }

    /// The possible CPUs, from one read of their list: the three figures above must agree.
    /// (Each was read on its own: a read that failed for want of a file descriptor, then one
    /// that did not, gave one slot per map and "dense", and a thread on CPU 1 added with a
    /// locked instruction into the slot CPU 0 added to in a restartable sequence, losing
    /// counts. Found by review, 2026-12-06, twenty-seventh session.)
    package struct PossibleCPUList: Equatable, Sendable {
        package var count: Int
        package var dense: Bool
        package var idLimit: Int
        package init(count: Int, dense: Bool, idLimit: Int) {
            (self.count, self.dense, self.idLimit) = (count, dense, idLimit)
        }
    }

    /// See ``PossibleCPUList``.
    package static let possibleCPUList = possibleCPUList(
        fromList: readSmallFile("/sys/devices/system/cpu/possible"),
        configured: sysconf(Int32(_SC_NPROCESSORS_CONF)))

    /// The possible CPUs from the text of their list (nil: it could not be read, or is
    /// malformed), or else from `configured` (`sysconf(_SC_NPROCESSORS_CONF)`): not dense.
    package static func possibleCPUList(fromList text: String?, configured: Int) -> PossibleCPUList {
        if let text, let count = parseCPUList(text), count > 0, let limit = cpuIDLimit(ofList: text) {
            return PossibleCPUList(count: count, dense: limit == count, idLimit: max(limit, count))
        }
        let count = max(1, configured)
        return PossibleCPUList(count: count, dense: false, idLimit: count)
    }

    /// One more than the highest CPU number of a kernel CPU list; nil if malformed or empty.
    package static func cpuIDLimit(ofList text: String) -> Int? {
        guard let count = parseCPUList(text), count > 0 else { return nil }
        var highest = -1
        for part in text.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == " " }) {
            for bound in part.split(separator: "-") {
                guard let number = Int(bound) else { return nil }
                highest = max(highest, number)
            }
        }
        return highest + 1
    }

    /// The slot of CPU number `cpu` among `slots` (a CPU number beyond the slots, which a
    /// possible list with gaps gives, wraps around), as helper mode places the calling CPU.
    @inlinable @inline(__always)
    package static func slot(ofCPU cpu: Int, slots: Int) -> Int {
        cpu < slots ? cpu : cpu % slots
    }

    /// Whether a kernel CPU list names exactly `0 ... n - 1` for some n ≥ 1.
    package static func cpuListIsDense(_ text: String) -> Bool {
        // `count` CPUs numbered at most `limit - 1`: exactly `0 ..< count` when the two agree.
        guard let count = parseCPUList(text), count > 0, let limit = cpuIDLimit(ofList: text) else { return false }
        return limit == count
    }

    /// Counts the CPUs in a kernel CPU list (`0-3,8,10-11`); nil if malformed.
    package static func parseCPUList(_ text: String) -> Int? {
        var count = 0
        for part in text.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == " " }) {
            let bounds = part.split(separator: "-")
            // (A part of just "-" splits into nothing: malformed, not a trap.)
            guard let first = bounds.first, let low = Int(first) else { return nil }
            let high = bounds.count > 1 ? Int(bounds[1]) : low
            guard let high, high >= low, bounds.count <= 2 else { return nil }
            count += high - low + 1
        }
        return count
    }

    static func readSmallFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 4096)
        let read = fread(&buffer, 1, buffer.count - 1, file)
        guard read > 0 else { return nil }
        return String(decoding: buffer[..<read].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The most runs of consecutive CPU blocks on one node a map asks to place, each a
    /// mapping of its own (see the type's documentation): 16.
    package static let maxPlacementRuns = 16

    /// Runs of consecutive CPUs (slots) whose blocks go to one node: `nodes[s]` is slot `s`'s.
    package static func placementRuns(_ nodes: [Int]) -> [(first: Int, count: Int, node: Int)] {
        var runs: [(first: Int, count: Int, node: Int)] = []
        for (cpu, node) in nodes.enumerated() {
            if let last = runs.last, last.node == node {
                runs[runs.count - 1].count += 1
            } else {
                runs.append((cpu, 1, node))
            }
        }
        return runs
    }

    /// Linux's `PCPU_MIN_UNIT_SIZE`: `round_up(valueSize, 8)` beyond it is E2BIG.
    public static let maxPaddedValueSize = 32768

    /// Creates a per-CPU array with every value zero on every CPU.
    ///
    /// - Throws: ``MapError/invalidArgument`` (EINVAL: key size not 4, zero sizes or
    ///   entries, flags outside ``MapDefinition/perCPUArrayFlags``, both program access
    ///   flags, a NUMA node given, a bad name); ``MapError/outOfSpace`` (E2BIG: value size
    ///   over `INT_MAX`, or `round_up(valueSize, 8)` over 32768); ``MapError/notSupported``
    ///   (EOPNOTSUPP: a lock word, as Linux refuses `bpf_spin_lock` in per-CPU values);
    ///   ``MapError/noMemory``.
    public convenience init(_ definition: MapDefinition) throws(MapError) {
        try self.init(definition, placingBlocksOnNodes: NUMATopology.nodeCount > 1)
    }

    /// Creates the map, placing each CPU's block on its CPU's NUMA node when
    /// `placingBlocksOnNodes` (the public initializer does so when there are several nodes;
    /// tests force it on a machine with one), and adding counters in restartable sequences
    /// unless `restartableAdds` is false (tests of the atomic path).
    ///
    /// `nodeOfCPU` and `maxRuns` are for tests (another machine's node numbering, and a cap
    /// a two-CPU machine can reach).
    package init(_ definition: MapDefinition, placingBlocksOnNodes: Bool, restartableAdds: Bool = true,
                 nodeOfCPU: (Int) -> Int = { Int(rcumaps_numa_node_of_cpu(Int32($0))) },
                 maxRuns: Int = RawPerCPUArrayMap.maxPlacementRuns) throws(MapError) {
        self.restartableAdds = restartableAdds && Self.possibleCPUsAreDense
        guard definition.type == .perCPUArray else {
            throw MapError.invalidArgument.with(
                reason: "RawPerCPUArrayMap serves BPF_MAP_TYPE_PERCPU_ARRAY, not \(definition.type)")
        }
        try definition.validatePerCPUArray()
        self.definition = definition
        valueSize = definition.valueSize
        maxEntries = definition.maxEntries
        paddedValueSize = roundUp8(valueSize)
        possibleCPUCount = Self.possibleCPUs
        access = MapAccess(definition.flags)
        valueOffset = valueSize <= 8 ? 0 : 8
        slotStride = paddedValueSize + valueOffset
        let (block, overflow) = maxEntries.multipliedReportingOverflow(by: slotStride)
        guard !overflow else {
            throw MapError.noMemory.with(reason: "a per-CPU array of \(maxEntries) × \(slotStride) bytes × \(possibleCPUCount) CPUs does not fit in memory")
        }
        blocks = try PerCPUBlocks(blockBytes: block, cpuCount: possibleCPUCount, placingOnNodes: placingBlocksOnNodes,
                                  nodeOfCPU: nodeOfCPU, maxRuns: maxRuns, tag: definition.effectivePoolTag,
                                  what: "a per-CPU array")
        storage = blocks.base
        storageSize = blocks.size
        cpuStride = blocks.cpuStride
        cpuBlockNodes = blocks.nodes
        try definition.validateAfterAllocation()  // as Linux, after the allocation (deinit frees it)
    }

    /// Entries in the map: `maxEntries` (every index exists). Any thread.
    public var count: Int { maxEntries }

    /// Bytes of a user-mode value: `round_up(valueSize, 8) × possibleCPUCount`.
    public var userValueSize: Int { paddedValueSize * possibleCPUCount }

    // MARK: Slots

    @inlinable @inline(__always)
    func index(_ key: UnsafeRawBufferPointer) throws(MapError) -> Int {
        try checkKey(key, 4)
        return Int(key.baseAddress!.loadUnaligned(as: UInt32.self))
    }

    /// The slot of `index` on `cpu` (sequence word first for a wide value).
    @inlinable @inline(__always)
    func slot(_ index: Int, cpu: Int) -> UnsafeMutableRawPointer { storage + cpu &* cpuStride + index &* slotStride }

    /// The slot number of the calling thread's CPU (`sched_getcpu`; a CPU number beyond the
    /// possible count, which a sparse possible mask could give, wraps around).
    @inlinable @inline(__always)
    public var currentCPUSlot: Int { Self.currentCPUSlot(of: possibleCPUCount) }

    /// The calling thread's CPU as a slot number below `possibleCPUCount` (shared with the
    /// per-CPU hashes).
    @inlinable @inline(__always)
    package static func currentCPUSlot(of possibleCPUCount: Int) -> Int {
        slot(ofCPU: Int(rcumaps_current_cpu()), slots: possibleCPUCount)
    }

    /// Pins the calling thread to `cpu` (`sched_setaffinity`); false if the system refuses.
    /// For tests that check which CPU's slot helper mode touches.
    package static func pinCurrentThread(toCPU cpu: Int) -> Bool { rcumaps_pin_current_thread(Int32(cpu)) == 0 }

    @inlinable @inline(__always)
    func word(_ pointer: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        pointer.assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Copies `paddedValueSize` bytes of one CPU's slot out (whole words, atomic loads; a
    /// wide value under its sequence word).
    func copySlotOut(_ destination: UnsafeMutableRawPointer, from slot: UnsafeMutableRawPointer) {
        if valueOffset == 0 {
            destination.storeBytes(of: word(slot).pointee.load(ordering: .acquiring), as: UInt64.self)
            return
        }
        let sequence = word(slot)
        func copy() {
            var offset = 0
            while offset < paddedValueSize {
                destination.storeBytes(of: word(slot + 8 + offset).pointee.load(ordering: .relaxed),
                                       toByteOffset: offset, as: UInt64.self)
                offset += 8
            }
        }
        // Writers rewriting the slot back to back cannot starve this reader: see
        // `RawArrayMap.copySequenced`.
        SequencedReads.copy(guardedBy: sequence, extraBits: 0, copy)
    }

    /// Runs `write` as the wide slot's only writer, its sequence word odd meanwhile.
    @inline(__always)
    func writeSequenced(_ slot: UnsafeMutableRawPointer, _ write: () -> Void) {
        let sequence = word(slot)
        var spins = 0
        while true {
            let current = sequence.pointee.load(ordering: .relaxed)
            if current & 1 == 0,
               sequence.pointee.compareExchange(expected: current, desired: current &+ 1, ordering: .acquiring).exchanged {
                atomicMemoryFence(ordering: .releasing)
                write()
                sequence.pointee.store(current &+ 2, ordering: .releasing)
                return
            }
            spins += 1
            if spins & 63 == 0 { sched_yield() }
        }
    }

    /// Writes `length` bytes of `source` into the value at `value`; a partial last word keeps
    /// the slot's other bytes (the padding). Every word is written atomically — an exchange,
    /// or a compare-exchange for the partial last one — also under the slot's sequence word:
    /// that word holds off other sequenced writers only, not the in-place atomic writes of
    /// helpers (`lookupInPlace`, `withAtomicFields`), so a plain load and store lost an
    /// increment that landed between them, from both the map and `displaced`.
    func storeBytes(_ value: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int,
                    displaced: UnsafeMutableRawPointer?) {
        var offset = 0
        while offset < length {
            let cell = word(value + offset)
            let count = min(8, length - offset)
            if count == 8 {
                let bits = source.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                let old = cell.pointee.exchange(bits, ordering: .acquiringAndReleasing)
                displaced?.storeBytes(of: old, toByteOffset: offset, as: UInt64.self)
            } else {
                var bits: UInt64 = 0
                withUnsafeMutableBytes(of: &bits) { $0.baseAddress!.copyMemory(from: source + offset, byteCount: count) }
                // The padding (the word's bytes past the value, in memory) is kept.
                let old = WordBytes.merge(bits, length: count, into: cell)
                displaced?.storeBytes(of: old, toByteOffset: offset, as: UInt64.self)
            }
            offset += 8
        }
    }

    /// Writes one CPU's slot: `length` bytes (`paddedValueSize` from user mode, `valueSize`
    /// from helper mode), reporting the padded old value to `displaced`.
    func writeSlot(_ slot: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int,
                   displaced: UnsafeMutableRawPointer?) {
        if valueOffset == 0 {
            storeBytes(slot, from: source, length: length, displaced: displaced)
        } else {
            writeSequenced(slot) {
                storeBytes(slot + 8, from: source, length: length, displaced: displaced)
            }
        }
    }

    // MARK: Lookup

    /// User-mode lookup: every CPU's value, `round_up(valueSize, 8)` bytes apart, into a
    /// buffer of ``userValueSize`` bytes. Contract: ``RawMap/lookup(key:into:)``.
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try access.checkUserRead()
        let index = try self.index(key)
        try checkValue(value, userValueSize)
        guard index < maxEntries else { throw MapError.keyNotFound }
        copyAll(index, to: value.baseAddress!)
    }

    func copyAll(_ index: Int, to destination: UnsafeMutableRawPointer) {
        for cpu in 0..<possibleCPUCount {
            copySlotOut(destination + cpu &* paddedValueSize, from: slot(index, cpu: cpu))
        }
    }

    /// User-mode lookup with flags: any flag is EINVAL (`BPF_F_LOCK` too: no lock word),
    /// the access check between them, as Linux's `map_lookup_elem`.
    public func lookup(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                       flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: true)
        try access.checkUserRead()
        if flags.contains(.lock) { throw noLockWordError }
        try lookup(key: key, into: value)
    }

    /// Helper-mode lookup: the calling CPU's value (`valueSize` bytes), borrowed until
    /// `section` ends. See the type's notes on thread migration: modify it with atomics.
    @inlinable
    public func lookupInPlace(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        try access.checkProgramRead()
        let index = try self.index(key)
        guard index < maxEntries else { throw MapError.keyNotFound }
        return UnsafeMutableRawBufferPointer(start: slot(index, cpu: currentCPUSlot) + valueOffset, count: valueSize)
    }

    /// ``lookupInPlace(key:in:)`` for an index the caller has as a number (the typed map):
    /// the calling CPU's value at `index`, in place, borrowed until `section` ends; nil
    /// beyond the last index (where the byte-level lookup throws ENOENT). No key buffer to
    /// check, and inlined into the caller: a helper-mode counter's whole path.
    @inlinable @inline(__always)
    package func currentCPUValue(at index: UInt32, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawPointer?
    {
        try access.checkProgramRead()
        guard Int(index) < maxEntries else { return nil }
        return slot(Int(index), cpu: currentCPUSlot) + valueOffset
    }

    /// Adds `delta` to the calling CPU's value at `index`, an 8-byte word (helper mode, as an
    /// eBPF program's `*value += delta` on a per-CPU map). Returns false beyond the last index.
    ///
    /// With no epoch section and no atomic instruction: the map's storage lives as long as
    /// the map (the caller holds it), and on x86-64 with glibc 2.35 or later the CPU number
    /// and the add are one restartable sequence (`rcumaps_rseq_add_u64`): the kernel restarts
    /// it if the thread is preempted, migrated or signalled before the add, so each add runs
    /// on the CPU whose value it changes and two of them never overlap — exact without a
    /// lock, as Linux's programs are with preemption off. Elsewhere (no rseq, a CPU list with
    /// gaps) it adds atomically.
    ///
    /// Concurrency: any thread. Exact as long as every helper-mode change of the index's
    /// values goes through this method: an atomic add through ``lookupInPlace(key:in:)``'s
    /// pointer by a thread that migrated to another CPU meanwhile can overlap a plain add
    /// here and one of the two be lost. User-mode writes race with it as Linux's syscall
    /// writes race with programs' increments (each value stays whole).
    ///
    /// - Throws: ``MapError/accessDenied`` (EACCES) when programs may not write the map
    ///   (`BPF_F_RDONLY_PROG`); ``MapError/invalidArgument`` when values are not 8 bytes.
    @inlinable @inline(__always)
    package func addToCurrentCPUWord(_ delta: UInt64, at index: UInt32) throws(MapError) -> Bool {
        try access.checkProgramWrite()
        guard valueSize == 8 else {
            throw MapError.invalidArgument.with(reason: "per-CPU adds need 8-byte values, this map's are \(valueSize)")
        }
        guard Int(index) < maxEntries else { return false }
        // Invariant: slot `index` of CPU 0; CPU c's is `cpuStride * c` further, all 8-aligned.
        let first = storage + Int(index) &* slotStride
        if restartableAdds,
           rcumaps_rseq_add_u64(first, cpuStride, delta, UInt32(truncatingIfNeeded: possibleCPUCount)) == 0 {
            return true
        }
        word(first + currentCPUSlot &* cpuStride).pointee.wrappingAdd(delta, ordering: .relaxed)
        return true
    }

    /// The value of `index` on CPU number `cpu`, in place (helper mode on a chosen CPU's
    /// value, as `bpf_map_lookup_percpu_elem` does): the slot helper mode on that CPU uses
    /// (a CPU number beyond the slots wraps around). `cpu` at or beyond ``cpuIDLimit`` (`nr_cpu_ids`) → ENOENT,
    /// as Linux. (It took a slot number, which differs from the CPU number where the possible
    /// CPUs have gaps: found by review, 2026-12-05.)
    public func lookupInPlace(key: UnsafeRawBufferPointer, cpu: Int, in section: borrowing EpochSection) throws(MapError)
        -> UnsafeMutableRawBufferPointer
    {
        try access.checkProgramRead()
        let index = try self.index(key)
        guard index < maxEntries, cpu >= 0, cpu < Self.cpuIDLimit else { throw MapError.keyNotFound }
        return UnsafeMutableRawBufferPointer(start: slot(index, cpu: Self.slot(ofCPU: cpu, slots: possibleCPUCount)) + valueOffset,
                                             count: valueSize)
    }

    // MARK: Update

    /// User-mode update of every CPU's value from a buffer of ``userValueSize`` bytes.
    /// Contract: ``RawMap/update(key:value:flags:)``.
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags) throws(MapError) {
        try userUpdate(key: key, value: value, flags: flags, displaced: nil)
    }

    /// User-mode update that also reports every CPU's replaced value (the layout of a
    /// lookup), slot by slot. Always `true`: every index exists. Not a Linux operation.
    ///
    /// `displaced` may overlap `value` anywhere (as the other maps' `exchange`): the new
    /// values are then copied aside first, since each CPU's old value is stored before the
    /// next CPU's new one is read (an overlap at an offset gave a CPU another CPU's old
    /// value: found by review, 2026-12-06, twenty-third session).
    public func exchange(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                         into displaced: UnsafeMutableRawBufferPointer) throws(MapError) -> Bool {
        try checkValue(displaced, userValueSize)
        let out = displaced.baseAddress!
        if let start = value.baseAddress, out < start + value.count, start < out + displaced.count {
            return try withUnsafeTemporaryAllocation(byteCount: value.count, alignment: 16) { (copy) throws(MapError) in
                copy.copyMemory(from: value)
                try userUpdate(key: key, value: UnsafeRawBufferPointer(copy), flags: flags, displaced: out)
                return true
            }
        }
        try userUpdate(key: key, value: value, flags: flags, displaced: out)
        return true
    }

    func userUpdate(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                    displaced: UnsafeMutableRawPointer?) throws(MapError) {
        // Linux's order: access (EPERM), BPF_F_LOCK without a lock word (EINVAL), key and
        // value, then bpf_percpu_array_update: flags > BPF_EXIST, index (E2BIG), NOEXIST.
        try access.checkUserWrite(freezeState)
        if flags.contains(.lock) { throw noLockWordError }
        let index = try self.index(key)
        try checkValue(value, userValueSize)
        try checkFlags(flags)
        guard index < maxEntries else { throw MapError.indexOutOfRange }
        if flags == .noExist { throw MapError.alreadyExists }
        // A user-mode write checks the freeze inside a section (see MapFreezeState).
        Epoch._libraryEnter()
        defer { Epoch._libraryExit() }
        try access.checkUserWrite(freezeState)
        for cpu in 0..<possibleCPUCount {
            writeSlot(slot(index, cpu: cpu), from: value.baseAddress! + cpu &* paddedValueSize, length: paddedValueSize,
                      displaced: displaced.map { $0 + cpu &* paddedValueSize })
        }
    }

    /// Helper-mode update: writes the calling CPU's value only (`valueSize` bytes; the
    /// padding bytes stay). Flags as Linux's `array_map_update_elem`: beyond `BPF_EXIST`
    /// (besides `BPF_F_LOCK`) EINVAL, index E2BIG, `BPF_NOEXIST` EEXIST, `BPF_F_LOCK` EINVAL.
    public func update(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: MapUpdateFlags,
                       in section: borrowing EpochSection) throws(MapError) {
        try access.checkProgramWrite()
        let index = try self.index(key)
        try checkValue(value, valueSize)
        try checkFlags(flags)
        guard index < maxEntries else { throw MapError.indexOutOfRange }
        if flags.withoutLock == .noExist { throw MapError.alreadyExists }
        if flags.contains(.lock) { throw noLockWordError }
        writeSlot(slot(index, cpu: currentCPUSlot), from: value.baseAddress!, length: valueSize, displaced: nil)
    }

    // MARK: Delete (EINVAL), lookup-and-delete (ENOTSUPP)

    /// User-mode delete: EINVAL after the access checks, as Linux.
    public func delete(key: UnsafeRawBufferPointer) throws(MapError) {
        try access.checkUserWrite(freezeState)
        _ = try index(key)
        throw MapError.invalidArgument.with(reason: "per-CPU array elements cannot be deleted")
    }

    /// User-mode delete with flags: any flag EINVAL first.
    public func delete(key: UnsafeRawBufferPointer, flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: false)
        try delete(key: key)
    }

    /// Helper-mode delete: EINVAL (EACCES for `BPF_F_RDONLY_PROG`).
    public func delete(key: UnsafeRawBufferPointer, in section: borrowing EpochSection) throws(MapError) {
        try access.checkProgramWrite()
        _ = try index(key)
        throw MapError.invalidArgument.with(reason: "per-CPU array elements cannot be deleted")
    }

    /// Lookup-and-delete: ENOTSUPP (524) after Linux's checks.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer) throws(MapError) {
        try lookupAndDelete(key: key, into: value, flags: [])
    }

    /// Lookup-and-delete with flags: flags beyond `BPF_F_LOCK` EINVAL, then EPERM, then
    /// `BPF_F_LOCK` EINVAL (no lock word), then the key, then ENOTSUPP.
    public func lookupAndDelete(key: UnsafeRawBufferPointer, into value: UnsafeMutableRawBufferPointer,
                                flags: MapElementFlags) throws(MapError) {
        try checkElementFlags(flags, allowingLock: true)
        try access.checkUserRead()
        try access.checkUserWrite(freezeState)
        if flags.contains(.lock) { throw noLockWordError }
        _ = try index(key)
        throw MapError.unsupportedByMapType.with(reason: "lookup-and-delete is not supported on per-CPU arrays")
    }

    // MARK: Iteration

    /// Get-next-key, as ARRAY: an out-of-range cursor restarts at 0; the last index ends the pass.
    public func nextKey(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try access.checkUserRead()
        guard nextKey.count == 4, nextKey.baseAddress != nil else {
            throw MapError.invalidArgument.with(reason: "key buffer is \(nextKey.count) bytes, array keys are 4")
        }
        var next = 0
        if let key {
            let index = try self.index(key)
            if index >= maxEntries { next = 0 } else if index == maxEntries - 1 { throw MapError.keyNotFound } else { next = index + 1 }
        }
        nextKey.baseAddress!.storeBytes(of: UInt32(next), as: UInt32.self)
    }

    /// As ``nextKey(after:into:)`` (indices never leave the map), except after an index
    /// beyond the last, which ends the pass (ENOENT) where `nextKey` restarts at 0.
    public func nextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer) throws(MapError) {
        try arrayNextKeyInPass(after: key, into: nextKey, maxEntries: maxEntries, access: access) { () throws(MapError) in
            try self.nextKey(after: key, into: nextKey)
        }
    }

    // MARK: Freezing

    /// Whether the map is frozen. Any thread.
    public var isFrozen: Bool { freezeState.isFrozen }

    /// Freezes the map: user-mode writes fail with EPERM afterwards. Contract: ``RawMap/freeze()``.
    @available(*, noasync, message: "waits for a grace period: call it from a thread of your own, or use `await map.freezeAsync()`")
    public func freeze() throws(MapError) {
        try freezeState.freeze(access: access, lockWord: false)
    }

    // MARK: Batches

    /// `BPF_MAP_LOOKUP_BATCH`, as ARRAY's (the cursor is the last index returned), each
    /// value ``userValueSize`` bytes.
    public func lookupBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                            values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        let checks = BatchChecks(self)
        try checks.access(read: true, write: false)
        try checks.elementFlags(elementFlags)
        try checks.buffer(count, keys.count, of: 4, "keys")
        try checks.buffer(count, values.count, of: userValueSize, "values")
        guard count > 0 else { return MapBatchResult(count: 0, cursor: cursor, error: nil) }
        var next = 0
        if let cursor {
            guard let index = cursor.index else {
                throw MapError.invalidArgument.with(reason: "the batch cursor is not one of this map's (\(cursor.byteCount) bytes)")
            }
            let previous = Int(index)
            next = previous >= maxEntries ? 0 : previous + 1
        }
        let done = min(count, maxEntries - next)
        for element in 0..<done {
            (keys.baseAddress! + element &* 4).storeBytes(of: UInt32(truncatingIfNeeded: next &+ element), as: UInt32.self)
            copyAll(next &+ element, to: values.baseAddress! + element &* userValueSize)
        }
        next += done
        let out = done > 0 ? MapBatchCursor(index: UInt32(next - 1)) : cursor
        return MapBatchResult(count: done, cursor: out, error: next >= maxEntries && done < count ? .keyNotFound : nil)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`: ENOTSUPP (after the access checks).
    public func lookupAndDeleteBatch(from cursor: MapBatchCursor?, keys: UnsafeMutableRawBufferPointer,
                                     values: UnsafeMutableRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                                     flags: UInt64) throws(MapError) -> MapBatchResult {
        try unsupportedBatch(read: true, write: true, "lookup-and-delete")
    }

    /// `BPF_MAP_UPDATE_BATCH` (Linux's generic batch): each element a user-mode update of
    /// every CPU, values ``userValueSize`` bytes apart; stops at the first failure.
    public func updateBatch(keys: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, count: Int,
                            elementFlags: MapElementFlags, flags: UInt64) throws(MapError) -> MapBatchResult {
        try genericUpdateBatch(keys: keys, values: values, count: count, elementFlags: elementFlags,
                               valueSize: userValueSize)
    }

    /// `BPF_MAP_DELETE_BATCH`: ENOTSUPP (after the access checks).
    public func deleteBatch(keys: UnsafeRawBufferPointer, count: Int, elementFlags: MapElementFlags,
                            flags: UInt64) throws(MapError) -> MapBatchResult {
        try unsupportedBatch(read: false, write: true, "delete")
    }
}
