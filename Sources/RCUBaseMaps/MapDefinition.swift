import RCUEpoch

/// Which of the two hash-map implementations serves a `HASH` map.
public enum HashImplementation: String, Hashable, Sendable, CaseIterable {
    /// liburcu's `rculfhash`: lock-free readers and writers, auto-resizing.
    case lockFree
    /// The eBPF-for-Windows design: lock-free readers, one lock per bucket for writers,
    /// immutable buckets replaced and retired through the epoch.
    case bucketLocked
}

/// Creation flags of a map (Linux `map_flags`). Unknown bits are rejected with EINVAL.
public struct MapCreationFlags: OptionSet, Hashable, Sendable {
    /// The raw value.
    public var rawValue: UInt32
    /// Wraps a raw value (not validated here: maps validate what they are given).
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `BPF_F_NO_PREALLOC`: accepted by hash maps (which allocate per entry anyway);
    /// rejected by arrays, as on Linux.
    public static let noPrealloc = MapCreationFlags(rawValue: 1 << 0)
}

/// What a map is: type, key and value sizes, capacity, flags, and a name.
///
/// Sizes are in bytes and fixed for the life of the map. Every constructor of a map
/// validates the definition and throws ``MapError/invalidArgument`` (or
/// ``MapError/outOfSpace`` for sizes beyond the limits, as Linux does).
public struct MapDefinition: Hashable, Sendable {
    /// The map type ID.
    public var type: MapType
    /// Key size in bytes. Arrays: 4 (a `UInt32` index).
    public var keySize: Int
    /// Value size in bytes, as users see it.
    public var valueSize: Int
    /// Capacity. Hash maps refuse new keys beyond it (E2BIG); arrays have exactly this many slots.
    public var maxEntries: Int
    /// Creation flags.
    public var flags: MapCreationFlags
    /// A name: at most 15 characters from `[A-Za-z0-9_.]`, as Linux's `BPF_OBJ_NAME_LEN`.
    public var name: String
    /// The NUMA node to place the map's storage on, or `nil` for no preference.
    public var numaNode: Int?
    /// For `HASH`: which implementation serves it.
    public var hashImplementation: HashImplementation
    /// The pool tag the map's memory is accounted under (default: one per map type).
    public var poolTag: PoolTag?

    /// A definition; nothing is validated until a map is created from it.
    public init(type: MapType, keySize: Int, valueSize: Int, maxEntries: Int,
                flags: MapCreationFlags = [], name: String = "",
                numaNode: Int? = nil, hashImplementation: HashImplementation = .lockFree,
                poolTag: PoolTag? = nil) {
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        self.flags = flags
        self.name = name
        self.numaNode = numaNode
        self.hashImplementation = hashImplementation
        self.poolTag = poolTag
    }

    /// Largest key a hash map accepts (Linux `MAX_BPF_STACK`).
    public static let maxKeySize = 512
    /// Largest value any map accepts (Linux: `KMALLOC_MAX_SIZE` less overheads; 4 MiB here).
    public static let maxValueSize = 4 << 20
    /// Longest name (Linux `BPF_OBJ_NAME_LEN - 1`).
    public static let maxNameLength = 15

    /// The tag the map's memory is accounted under.
    public var effectivePoolTag: PoolTag {
        if let poolTag { return poolTag }
        switch type {
        case .array: return PoolTag("rcua")
        case .hash: return hashImplementation == .lockFree ? PoolTag("rcuh") : PoolTag("rcub")
        default: return .general
        }
    }

    /// Checks a definition in Linux's order: name, flags and zero sizes (EINVAL) first,
    /// then sizes beyond the limits (E2BIG), then the NUMA node.
    ///
    /// - Parameters:
    ///   - allowedFlags: the creation flags this map type accepts.
    ///   - keySizeRule: the type's own key-size check, run after the zero checks.
    func validate(allowedFlags: MapCreationFlags, keySizeRule: (Int) throws(MapError) -> Void) throws(MapError) {
        guard name.utf8.count <= Self.maxNameLength,
              name.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
                  || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                  || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
                  || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) })
        else { throw MapError.invalidArgument.with(reason: "map name must be at most 15 characters of [A-Za-z0-9_.]") }
        guard allowedFlags.isSuperset(of: flags) else {
            throw MapError.invalidArgument.with(reason: "unsupported map flags 0x\(String(flags.rawValue, radix: 16)) for \(type)")
        }
        guard maxEntries > 0, maxEntries <= Int(UInt32.max) else {
            throw MapError.invalidArgument.with(reason: "maxEntries must be 1...\(UInt32.max), got \(maxEntries)")
        }
        guard keySize > 0 else { throw MapError.invalidArgument.with(reason: "keySize must be positive, got \(keySize)") }
        guard valueSize > 0 else { throw MapError.invalidArgument.with(reason: "valueSize must be positive, got \(valueSize)") }
        try keySizeRule(keySize)
        guard valueSize <= Self.maxValueSize else {
            throw MapError.outOfSpace.with(reason: "valueSize \(valueSize) exceeds \(Self.maxValueSize)")
        }
        if let numaNode {
            guard numaNode >= 0, numaNode < NUMATopology.nodeCount else {
                throw MapError.invalidArgument.with(
                    reason: "numaNode \(numaNode) out of range 0..<\(NUMATopology.nodeCount)")
            }
        }
    }

    /// Checks a hash map definition (both implementations).
    func validateHash() throws(MapError) {
        try validate(allowedFlags: .noPrealloc) { (keySize) throws(MapError) in
            guard keySize <= Self.maxKeySize else {
                throw MapError.outOfSpace.with(reason: "keySize \(keySize) exceeds \(Self.maxKeySize)")
            }
        }
    }

    /// Checks an array map definition.
    func validateArray() throws(MapError) {
        try validate(allowedFlags: []) { (keySize) throws(MapError) in
            guard keySize == 4 else {
                throw MapError.invalidArgument.with(reason: "array keys are 4-byte indices, got keySize \(keySize)")
            }
        }
    }
}
