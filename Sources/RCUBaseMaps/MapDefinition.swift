import RCUEpoch

/// Which of the two hash-map implementations serves a `HASH` map.
public enum HashImplementation: String, Hashable, Sendable, CaseIterable {
    /// liburcu's `rculfhash`: lock-free readers and writers, auto-resizing.
    case lockFree
    /// The eBPF-for-Windows design: lock-free readers, one lock per bucket for writers,
    /// immutable buckets replaced and retired through the epoch.
    case bucketLocked
}

/// Creation flags of a map (Linux `map_flags`, same bit values). Each map type accepts the
/// flags Linux 6.18 accepts for it and refuses the rest with EINVAL; docs/linux-compatibility.md
/// lists them per type.
public struct MapCreationFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The raw value.
    public var rawValue: UInt32
    /// Wraps a raw value (not validated here: maps validate what they are given).
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `BPF_F_NO_PREALLOC` (0x1): `HASH` and `PERCPU_HASH` accept it and `LPM_TRIE` requires
    /// it. The lock-free HASH allocates per entry with or without it; the bucket-locked HASH
    /// and the per-CPU hashes allocate their whole bucket table at creation either way, so a
    /// definition whose table cannot be allocated is ENOMEM where Linux, allocating per
    /// element, accepts it (docs/linux-compatibility.md); the LRU hashes refuse it (ENOTSUPP) and
    /// arrays, queues and stacks (EINVAL), as on Linux.
    public static let noPrealloc = MapCreationFlags(rawValue: 1 << 0)
    /// `BPF_F_NO_COMMON_LRU` (0x2): LRU hashes only (EINVAL on other types): `maxEntries`
    /// rounded to a multiple of the possible CPUs, as Linux; the eviction is the common
    /// LRU's (see docs/linux-compatibility.md).
    public static let noCommonLRU = MapCreationFlags(rawValue: 1 << 1)
    /// `BPF_F_NUMA_NODE` (0x4): ask for ``MapDefinition/numaNode`` (implied when that is set;
    /// node 0 when it is nil, as Linux takes the attribute's zero). The node is checked at
    /// creation (EINVAL when out of range or offline); only arrays (not `BPF_F_MMAPABLE`),
    /// queues and stacks place memory on it, and only on a machine with several nodes
    /// (docs/map-types.md says what each type does).
    public static let numaNode = MapCreationFlags(rawValue: 1 << 2)
    /// `BPF_F_RDONLY` (0x8): user mode (the syscall side) may only read: updates, deletes,
    /// lookup-and-delete, write batches and freeze fail with EPERM.
    public static let readOnly = MapCreationFlags(rawValue: 1 << 3)
    /// `BPF_F_WRONLY` (0x10): user mode may only write: lookups, get-next-key, lookup
    /// batches and lookup-and-delete fail with EPERM.
    public static let writeOnly = MapCreationFlags(rawValue: 1 << 4)
    /// `BPF_F_STACK_BUILD_ID` (0x20): stack-trace maps only (refused here).
    public static let stackBuildID = MapCreationFlags(rawValue: 1 << 5)
    /// `BPF_F_ZERO_SEED` (0x40), hash maps: hash with seed 0 instead of a random one, so the
    /// iteration order repeats from run to run. For tests: a known seed lets anyone aim
    /// keys at one bucket. (Linux requires CAP_SYS_ADMIN; a library has no such check.)
    public static let zeroSeed = MapCreationFlags(rawValue: 1 << 6)
    /// `BPF_F_RDONLY_PROG` (0x80): helper mode (the program side) may only read: helper-mode
    /// updates and deletes fail with EACCES, as Linux's verifier refuses such programs.
    public static let readOnlyProgram = MapCreationFlags(rawValue: 1 << 7)
    /// `BPF_F_WRONLY_PROG` (0x100): helper mode may only write: helper-mode lookups fail
    /// with EACCES.
    public static let writeOnlyProgram = MapCreationFlags(rawValue: 1 << 8)
    /// `BPF_F_CLONE` (0x200): socket-storage maps only (refused here).
    public static let clone = MapCreationFlags(rawValue: 1 << 9)
    /// `BPF_F_MMAPABLE` (0x400), arrays only: the values are laid out as Linux's mmap shows
    /// them (one page-aligned block, `round_up(valueSize, 8)` apart, no per-slot sequence
    /// word) and can be mapped directly (``RawArrayMap/mapStorage(writable:)``).
    public static let mmapable = MapCreationFlags(rawValue: 1 << 10)
    /// `BPF_F_PRESERVE_ELEMS` (0x800): perf-event arrays only (refused here).
    public static let preserveElements = MapCreationFlags(rawValue: 1 << 11)
    /// `BPF_F_INNER_MAP` (0x1000), arrays: accepted and kept, as Linux does (it relaxes a
    /// verifier check on inner maps).
    public static let innerMap = MapCreationFlags(rawValue: 1 << 12)

    /// The user-mode and helper-mode access flags (Linux's `BPF_F_ACCESS_MASK`).
    public static let accessFlags: MapCreationFlags = [.readOnly, .writeOnly, .readOnlyProgram, .writeOnlyProgram]

    /// A readable form (`BPF_F_NO_PREALLOC|BPF_F_RDONLY`).
    public var description: String {
        let names: [(MapCreationFlags, String)] = [
            (.noPrealloc, "BPF_F_NO_PREALLOC"), (.noCommonLRU, "BPF_F_NO_COMMON_LRU"), (.numaNode, "BPF_F_NUMA_NODE"),
            (.readOnly, "BPF_F_RDONLY"), (.writeOnly, "BPF_F_WRONLY"), (.stackBuildID, "BPF_F_STACK_BUILD_ID"),
            (.zeroSeed, "BPF_F_ZERO_SEED"), (.readOnlyProgram, "BPF_F_RDONLY_PROG"),
            (.writeOnlyProgram, "BPF_F_WRONLY_PROG"), (.clone, "BPF_F_CLONE"), (.mmapable, "BPF_F_MMAPABLE"),
            (.preserveElements, "BPF_F_PRESERVE_ELEMS"), (.innerMap, "BPF_F_INNER_MAP"),
        ]
        var parts = names.filter { contains($0.0) }.map(\.1)
        let unknown = subtracting(MapCreationFlags(names.map(\.0)))
        if !unknown.isEmpty { parts.append("0x" + String(unknown.rawValue, radix: 16)) }
        return parts.isEmpty ? "0" : parts.joined(separator: "|")
    }
}

/// What a map is: type, key and value sizes, capacity, flags, and a name.
///
/// Sizes are in bytes and fixed for the life of the map. Every constructor of a map
/// validates the definition and throws ``MapError/invalidArgument`` (or
/// ``MapError/outOfSpace`` for sizes beyond the limits, as Linux does), and, for a lock word
/// (``lockOffset``), ``MapError/accessDenied`` (EACCES) with a program access flag or
/// ``MapError/notSupported`` (EOPNOTSUPP) on a type whose values cannot hold one; each
/// constructor lists its type's own refusals besides.
public struct MapDefinition: Hashable, Sendable {
    /// The map type ID.
    public var type: MapType
    /// Key size in bytes. Arrays: 4 (a `UInt32` index). Queues and stacks: 0 (no key).
    public var keySize: Int
    /// Value size in bytes, as users see it.
    public var valueSize: Int
    /// Capacity. Hash maps refuse new keys beyond it (E2BIG; the LRU hashes evict instead);
    /// arrays have exactly this many slots; queues and stacks hold at most this many
    /// elements; an LPM trie refuses new prefixes beyond it (ENOSPC).
    public var maxEntries: Int
    /// Creation flags.
    public var flags: MapCreationFlags
    /// A name: at most 15 characters from `[A-Za-z0-9_.]`, as Linux's `BPF_OBJ_NAME_LEN`.
    public var name: String
    /// The NUMA node asked for (see ``MapCreationFlags/numaNode`` for which maps place memory
    /// on it), or `nil` for no preference. `-1` (and
    /// `UInt32.max`, the same `u32`) is Linux's `NUMA_NO_NODE`: no preference either, also
    /// with `BPF_F_NUMA_NODE`, as Linux accepts it.
    public var numaNode: Int?

    /// The node ``numaNode`` asks for: nil for none (`nil`, or `NUMA_NO_NODE`).
    public var requestedNUMANode: Int? {
        guard let numaNode, numaNode != -1, numaNode != Int(UInt32.max) else { return nil }
        return numaNode
    }

    /// Whether the definition asks for a NUMA node: a node, or `BPF_F_NUMA_NODE` without
    /// ``numaNode`` (Linux's node 0 then); not `NUMA_NO_NODE`.
    var asksForNUMANode: Bool { placementNode != nil }

    /// The node Linux's `map_create` takes: ``requestedNUMANode``, or node 0 for
    /// `BPF_F_NUMA_NODE` without ``numaNode`` (the attribute's zero); nil for none. The
    /// node checked at creation, and the one the maps that place memory place it on.
    var placementNode: Int? {
        requestedNUMANode ?? (numaNode == nil && flags.contains(.numaNode) ? 0 : nil)
    }
    /// For `HASH`: which implementation serves it.
    public var hashImplementation: HashImplementation
    /// The pool tag the map's memory is accounted under (default: one per map type).
    public var poolTag: PoolTag?
    /// The offset in the value of a 4-byte lock word — the userspace counterpart of a
    /// `struct bpf_spin_lock` field in the value's BTF — or `nil`. With one:
    /// - `BPF_F_LOCK` (``MapElementFlags/lock``) is accepted on lookups and updates: the copy
    ///   happens with the element's lock held (helper-mode code takes the same lock with
    ///   ``MapValueLock``);
    /// - user-mode lookups return the lock word as 0, and updates never copy the caller's
    ///   bytes into it (Linux's `copy_map_value` skips special fields);
    /// - HASH and ARRAY only (QUEUE and STACK: EINVAL, as Linux refuses their value BTF;
    ///   custom maps: EINVAL; other types: EOPNOTSUPP); not with `BPF_F_RDONLY_PROG` or
    ///   `BPF_F_WRONLY_PROG` (EACCES); such a map cannot be frozen or mapped (ENOTSUPP).
    ///
    /// Must be a multiple of 4 with the word inside the value (EINVAL otherwise).
    public var lockOffset: Int?

    /// A definition; nothing is validated until a map is created from it.
    public init(type: MapType, keySize: Int, valueSize: Int, maxEntries: Int,
                flags: MapCreationFlags = [], name: String = "",
                numaNode: Int? = nil, hashImplementation: HashImplementation = .lockFree,
                poolTag: PoolTag? = nil, lockOffset: Int? = nil) {
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        self.flags = flags
        self.name = name
        self.numaNode = numaNode
        self.hashImplementation = hashImplementation
        self.poolTag = poolTag
        self.lockOffset = lockOffset
    }

    /// Linux's `KMALLOC_MAX_SIZE` on x86-64 (4 MiB).
    public static let kmallocMaxSize = 1 << 22
    /// A hash map refuses `keySize + valueSize` from this up (E2BIG): `KMALLOC_MAX_SIZE`
    /// less Linux 6.18's 48-byte `struct htab_elem`. There is no other key-size limit.
    public static let maxHashKeyPlusValueSize = kmallocMaxSize - 48
    /// Most entries a hash map may have (E2BIG beyond): Linux 6.18's bucket array of
    /// `roundup_pow_of_two(max_entries)` 16-byte buckets must stay under 4 GiB.
    public static let maxHashEntries = 1 << 27
    /// Largest value an array accepts (E2BIG beyond): `INT_MAX`.
    public static let maxArrayValueSize = Int(Int32.max)
    /// Largest value the provider layer stores (a custom map's base value): the hash limit.
    public static let maxValueSize = maxHashKeyPlusValueSize - 1
    /// Longest name (Linux `BPF_OBJ_NAME_LEN - 1`).
    public static let maxNameLength = 15

    /// The flags a `HASH` map accepts (Linux `HTAB_CREATE_FLAG_MASK` without the LRU flag).
    public static let hashFlags: MapCreationFlags = [.noPrealloc, .numaNode, .accessFlags, .zeroSeed]
    /// The flags an `ARRAY` map accepts (Linux `ARRAY_CREATE_FLAG_MASK` for `ARRAY`).
    public static let arrayFlags: MapCreationFlags = [.numaNode, .mmapable, .accessFlags, .innerMap]
    /// The flags a `QUEUE` or `STACK` map accepts (Linux `QUEUE_STACK_CREATE_FLAG_MASK`:
    /// `BPF_F_NUMA_NODE` and the access flags).
    public static let queueStackFlags: MapCreationFlags = [.numaNode, .accessFlags]
    /// The flags a `PERCPU_ARRAY` map keeps: the access flags. Linux's
    /// `ARRAY_CREATE_FLAG_MASK` also holds `BPF_F_NUMA_NODE`, `BPF_F_MMAPABLE` and
    /// `BPF_F_INNER_MAP`, but `array_map_alloc_check` refuses `BPF_F_MMAPABLE` and
    /// `BPF_F_INNER_MAP` for a per-CPU array (EINVAL), and a NUMA node other than
    /// `NUMA_NO_NODE`: `BPF_F_NUMA_NODE` with ``numaNode`` -1 is accepted and dropped.
    public static let perCPUArrayFlags: MapCreationFlags = [.accessFlags]

    /// The tag the map's memory is accounted under: the definition's ``poolTag``, or the
    /// type's own default (`rcub`/`rcuh` HASH, `rcua` ARRAY, `rcup` PERCPU_ARRAY, `rcul`
    /// LRU_HASH, `rcuP` PERCPU_HASH, `rcuL` LRU_PERCPU_HASH, `rcut` LPM_TRIE, `rcuq` QUEUE,
    /// `rcus` STACK; no two types share one; a custom type's is its base map's,
    /// `PoolTag.customMapBase`, where the provider layer puts it).
    public var effectivePoolTag: PoolTag {
        if let poolTag { return poolTag }
        // (A custom type answered `rcum`, the general tag, where its base's memory is not:
        // found by review, 2026-12-05, nineteenth session.)
        if type.isCustom { return .customMapBase }
        switch type {
        case .array: return PoolTag("rcua")
        case .perCPUArray: return PoolTag("rcup")
        case .lpmTrie: return PoolTag("rcut")
        case .queue: return PoolTag("rcuq")
        case .stack: return PoolTag("rcus")
        case .hash: return hashImplementation == .lockFree ? PoolTag("rcuh") : PoolTag("rcub")
        case .lruHash: return PoolTag("rcul")
        case .perCPUHash: return PoolTag("rcuP")
        case .lruPerCPUHash: return PoolTag("rcuL")
        default: return .general
        }
    }

    // MARK: Validation, in Linux 6.18's order

    /// The checks `map_create` makes before the type's own: read and write access together
    /// (`BPF_F_RDONLY|BPF_F_WRONLY`), the NUMA node.
    /// `nodeCount` and `isOnline` describe the machine (this one's by default; a parameter so
    /// that tests can describe one whose node 0 is offline).
    package func validateCommon(nodeCount: Int = NUMATopology.nodeCount,
                                isOnline: (Int) -> Bool = NUMATopology.isOnline) throws(MapError) {
        guard !flags.isSuperset(of: [.readOnly, .writeOnly]) else {
            throw MapError.invalidArgument.with(reason: "BPF_F_RDONLY and BPF_F_WRONLY exclude each other")
        }
        // `placementNode`, not `requestedNUMANode`: `BPF_F_NUMA_NODE` without a node is node 0,
        // which Linux checks too (before, it was never checked: found by review, 2026-12-05,
        // eighteenth session).
        if let node = placementNode {
            try Self.checkNUMANode(node, nodeCount: nodeCount, isOnline: isOnline)
        }
    }

    /// Linux's check of a map's NUMA node: below the node count (`nr_node_ids`) and online
    /// (`node_online`), else EINVAL. `isOnline` answers for nodes below `nodeCount` (libnuma's
    /// configured nodes; a parameter so that tests can describe a machine with an offline
    /// node). Concurrency: as `isOnline`; any thread.
    package static func checkNUMANode(_ node: Int, nodeCount: Int, isOnline: (Int) -> Bool) throws(MapError) {
        guard node >= 0, node < nodeCount else {
            throw MapError.invalidArgument.with(reason: "numaNode \(node) out of range 0..<\(nodeCount)")
        }
        guard isOnline(node) else {
            throw MapError.invalidArgument.with(reason: "numaNode \(node) is offline (not among libnuma's configured nodes)")
        }
    }

    /// The checks `map_create` makes after the type's allocation (`ops->map_alloc`): the
    /// name (`bpf_obj_name_cpy`), then the lock word (`map_check_btf`) — a lock word allowed
    /// in HASH and ARRAY values only (EOPNOTSUPP elsewhere; EINVAL in QUEUE and STACK, whose
    /// value BTF Linux refuses). Every map's initialiser makes them last, after allocating,
    /// so that a definition refused both for memory and for its name answers ENOMEM, as
    /// Linux does (they ran with the type's checks, before the allocation: found by review,
    /// 2026-12-05, nineteenth session).
    package func validateAfterAllocation() throws(MapError) {
        switch type {
        case .queue, .stack:
            try validateName()
            guard lockOffset == nil else {
                throw MapError.invalidArgument.with(reason: "\(type) values cannot hold a lock word (Linux refuses their value BTF)")
            }
        case .hash, .array:
            try validateNameAndLock(lockAllowed: true)
        default:
            try validateNameAndLock(lockAllowed: false)
        }
    }

    /// The name, then the lock word (see ``validateAfterAllocation()``).
    func validateNameAndLock(lockAllowed: Bool) throws(MapError) {
        try validateName()
        guard let lockOffset else { return }
        guard lockOffset >= 0, lockOffset % 4 == 0, lockOffset <= valueSize - 4 else {
            throw MapError.invalidArgument.with(
                reason: "lockOffset \(lockOffset) must be a multiple of 4 with the 4-byte word inside the \(valueSize)-byte value")
        }
        guard flags.isDisjoint(with: [.readOnlyProgram, .writeOnlyProgram]) else {
            throw MapError.accessDenied.with(reason: "a value with a lock word cannot be BPF_F_RDONLY_PROG or BPF_F_WRONLY_PROG")
        }
        guard lockAllowed else {
            throw MapError.notSupported.with(reason: "\(type) values cannot hold a lock word")
        }
    }

    /// The name check of `map_create` (`bpf_obj_name_cpy`): EINVAL. As Linux, the name ends
    /// at its first NUL byte (a fixed-size C name read into a `String` keeps its padding).
    func validateName() throws(MapError) {
        let bytes = name.utf8.prefix { $0 != 0 }
        guard bytes.count <= Self.maxNameLength,
              bytes.allSatisfy({ $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
                  || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                  || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
                  || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) })
        else { throw MapError.invalidArgument.with(reason: "map name must be at most 15 characters of [A-Za-z0-9_.]") }
    }

    /// Checks a definition of any of the four hash types (`HASH` with either implementation,
    /// `LRU_HASH`, `PERCPU_HASH`, `LRU_PERCPU_HASH`), as Linux 6.18's `htab_map_alloc_check`
    /// and `htab_map_alloc` do, in their order: a flag outside ``hashFlags`` (plus
    /// `BPF_F_NO_COMMON_LRU` for the LRU types), or both program access flags → EINVAL;
    /// `BPF_F_NO_COMMON_LRU` on a type without LRU → EINVAL; an LRU type with
    /// `BPF_F_NO_PREALLOC` → ENOTSUPP (524); a NUMA node on a per-CPU type or with per-CPU
    /// LRU lists → EINVAL; zero sizes or entries → EINVAL; `keySize + valueSize` from
    /// ``maxHashKeyPlusValueSize`` → E2BIG; per-CPU `round_up(valueSize, 8)` over
    /// `PCPU_MIN_UNIT_SIZE` (32768) → E2BIG; too many entries → E2BIG. After the allocation,
    /// ``validateAfterAllocation()``: the name; a lock word (HASH only: EOPNOTSUPP for the
    /// others, as `map_check_btf` allows `bpf_spin_lock` only in HASH, ARRAY and the storage
    /// maps).
    ///
    /// `checkingKeyPlusValue` false skips the `keySize + valueSize` bound: the hash under a
    /// per-CPU hash, whose value holds every CPU's, checked by the per-CPU map for one CPU's.
    func validateHash(checkingKeyPlusValue: Bool = true) throws(MapError) {
        try validateCommon()
        let lru = type == .lruHash || type == .lruPerCPUHash
        let perCPU = type == .perCPUHash || type == .lruPerCPUHash
        guard Self.hashFlags.union(.noCommonLRU).isSuperset(of: flags),
              !flags.isSuperset(of: [.readOnlyProgram, .writeOnlyProgram]) else {
            throw MapError.invalidArgument.with(reason: "map flags \(flags) are not valid for \(type)")
        }
        let perCPULists = flags.contains(.noCommonLRU)
        guard lru || !perCPULists else {
            throw MapError.invalidArgument.with(reason: "BPF_F_NO_COMMON_LRU is for LRU hash maps, not \(type)")
        }
        guard !lru || !flags.contains(.noPrealloc) else {
            throw MapError.unsupportedByMapType.with(reason: "an LRU hash is always preallocated: BPF_F_NO_PREALLOC is not supported")
        }
        guard !(perCPU || perCPULists) || !asksForNUMANode else {
            throw MapError.invalidArgument.with(reason: "\(type) with per-CPU values or LRU lists cannot be placed on a NUMA node")
        }
        guard maxEntries > 0, keySize > 0, valueSize > 0 else {
            throw MapError.invalidArgument.with(
                reason: "maxEntries, keySize and valueSize must be positive (got \(maxEntries), \(keySize), \(valueSize))")
        }
        let (sum, overflow) = keySize.addingReportingOverflow(valueSize)
        guard !overflow, sum < Self.maxHashKeyPlusValueSize || !checkingKeyPlusValue else {
            throw MapError.outOfSpace.with(
                reason: "keySize + valueSize must stay under \(Self.maxHashKeyPlusValueSize), got \(keySize) + \(valueSize)")
        }
        guard !perCPU || roundUp8(valueSize) <= RawPerCPUArrayMap.maxPaddedValueSize else {
            throw MapError.outOfSpace.with(
                reason: "per-CPU values are at most 32768 bytes rounded up to 8 (PCPU_MIN_UNIT_SIZE), got \(valueSize)")
        }
        // Per-CPU LRU lists: Linux rounds maxEntries to a multiple of the possible CPUs before
        // it sizes the buckets, so the bound applies to the rounded count (found by review:
        // 2^27 - 1 entries on 12 CPUs rounds past the bound, E2BIG on Linux).
        let entries = perCPULists ? RawBucketHashMap.perCPUListEntries(maxEntries) : maxEntries
        guard entries <= Self.maxHashEntries else {
            throw MapError.outOfSpace.with(reason: "a hash map holds at most \(Self.maxHashEntries) entries, got \(entries)"
                + (entries == maxEntries ? "" : " (\(maxEntries) rounded to a multiple of the possible CPUs)"))
        }
    }

    /// Checks an array map definition, as Linux's `array_map_alloc_check` does (the name and
    /// lock word after the allocation: ``validateAfterAllocation()``).
    func validateArray() throws(MapError) {
        try validateCommon()
        guard maxEntries > 0, maxEntries <= Int(UInt32.max), keySize == 4, valueSize > 0,
              Self.arrayFlags.isSuperset(of: flags), !flags.isSuperset(of: [.readOnlyProgram, .writeOnlyProgram]) else {
            throw MapError.invalidArgument.with(reason: """
                an array needs 4-byte keys, a positive value size, 1...\(UInt32.max) entries and flags among \
                \(Self.arrayFlags) (got keySize \(keySize), valueSize \(valueSize), maxEntries \(maxEntries), flags \(flags))
                """)
        }
        guard valueSize <= Self.maxArrayValueSize else {
            throw MapError.outOfSpace.with(reason: "array values are at most \(Self.maxArrayValueSize) bytes, got \(valueSize)")
        }
    }

    /// Checks a `PERCPU_ARRAY` definition, as Linux 6.18's `array_map_alloc_check` does for
    /// it: `maxEntries` 0 (or beyond `UInt32.max`), `keySize` ≠ 4, `valueSize` 0, a flag
    /// outside ``perCPUArrayFlags`` (`BPF_F_MMAPABLE`, `BPF_F_INNER_MAP` and
    /// `BPF_F_PRESERVE_ELEMS` included), both program access flags, or a NUMA node other
    /// than `NUMA_NO_NODE` (``numaNode`` 0 or more, or `BPF_F_NUMA_NODE` without a node,
    /// node 0) → EINVAL (`BPF_F_NUMA_NODE` with ``numaNode`` -1 is accepted, as Linux does); `valueSize` over `INT_MAX`, or
    /// `round_up(valueSize, 8)` over `PCPU_MIN_UNIT_SIZE` (32768) → E2BIG; after the
    /// allocation (``validateAfterAllocation()``) the name (EINVAL), then a lock word: EACCES
    /// with a program access flag, else EOPNOTSUPP — `map_check_btf` allows `bpf_spin_lock`
    /// only in HASH, ARRAY and the storage maps.
    func validatePerCPUArray() throws(MapError) {
        try validateCommon()
        guard maxEntries > 0, maxEntries <= Int(UInt32.max), keySize == 4, valueSize > 0,
              // (`BPF_F_NUMA_NODE` with `NUMA_NO_NODE` is no node: Linux accepts it.)
              Self.perCPUArrayFlags.isSuperset(of: asksForNUMANode ? flags : flags.subtracting(.numaNode)),
              !flags.isSuperset(of: [.readOnlyProgram, .writeOnlyProgram]) else {
            throw MapError.invalidArgument.with(reason: """
                a per-CPU array needs 4-byte keys, a positive value size, 1...\(UInt32.max) entries and flags among \
                \(Self.perCPUArrayFlags) without both program access flags (got keySize \(keySize), valueSize \
                \(valueSize), maxEntries \(maxEntries), flags \(flags))
                """)
        }
        guard requestedNUMANode == nil else {
            throw MapError.invalidArgument.with(reason: "a per-CPU array cannot be placed on a NUMA node")
        }
        guard valueSize <= Self.maxArrayValueSize else {
            throw MapError.outOfSpace.with(reason: "array values are at most \(Self.maxArrayValueSize) bytes, got \(valueSize)")
        }
        guard (valueSize + 7) & ~7 <= 32768 else {
            throw MapError.outOfSpace.with(
                reason: "per-CPU values are at most 32768 bytes rounded up to 8 (PCPU_MIN_UNIT_SIZE), got \(valueSize)")
        }
    }

    /// Checks a `QUEUE` or `STACK` definition, as Linux 6.18's `queue_stack_map_alloc_check`
    /// and `map_create` do: `maxEntries` 0, `keySize` ≠ 0, `valueSize` 0, a flag outside
    /// ``queueStackFlags`` or both program access flags → EINVAL; `maxEntries` beyond
    /// `UInt32.max` (Linux's `max_entries` is a `u32`) → EINVAL; `valueSize` over
    /// ``kmallocMaxSize`` → E2BIG; after the ring's allocation (``validateAfterAllocation()``)
    /// the name (EINVAL), then a lock word → EINVAL — on Linux a value BTF on a map with no
    /// key type is refused by `map_check_btf` unless the type has a `map_check_btf` of its
    /// own, which queue and stack do not.
    func validateQueueStack() throws(MapError) {
        try validateCommon()
        guard maxEntries > 0, maxEntries <= Int(UInt32.max), keySize == 0, valueSize > 0,
              Self.queueStackFlags.isSuperset(of: flags),
              !flags.isSuperset(of: [.readOnlyProgram, .writeOnlyProgram]) else {
            throw MapError.invalidArgument.with(reason: """
                a \(type) needs keySize 0, a positive value size, 1...\(UInt32.max) entries and flags among \
                \(Self.queueStackFlags) without both program access flags (got keySize \(keySize), valueSize \
                \(valueSize), maxEntries \(maxEntries), flags \(flags))
                """)
        }
        guard valueSize <= Self.kmallocMaxSize else {
            throw MapError.outOfSpace.with(
                reason: "\(type) values are at most \(Self.kmallocMaxSize) bytes (KMALLOC_MAX_SIZE), got \(valueSize)")
        }
    }
}

extension PoolTag {
    /// `rcuc`: the default tag of a custom map's base map (the provider layer's
    /// `RawCustomMap` uses it when its definition names none). No built-in type's default
    /// (``MapDefinition/effectivePoolTag``) is the same.
    public static let customMapBase = PoolTag("rcuc")
}
