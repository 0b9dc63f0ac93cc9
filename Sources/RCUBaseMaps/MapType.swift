/// A map type ID, as eBPF-for-Windows numbers them (`ebpf_map_type_t`).
///
/// IDs 1–4095 are reserved for built-in types; 4096–65535 are custom types served by
/// providers. ``linuxTypeID`` gives the Linux `enum bpf_map_type` value for people porting
/// code from Linux, where the numbering differs.
public struct MapType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw value.
    public var rawValue: UInt32

    /// Wraps a raw value (not validated here: maps validate what they are given).
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `BPF_MAP_TYPE_HASH` (1); its Linux ID is ``linuxTypeID``.
    public static let hash = MapType(rawValue: 1)
    /// `BPF_MAP_TYPE_ARRAY` (2); its Linux ID is ``linuxTypeID``.
    public static let array = MapType(rawValue: 2)
    /// `BPF_MAP_TYPE_PROG_ARRAY` (3); its Linux ID is ``linuxTypeID``.
    public static let programArray = MapType(rawValue: 3)
    /// `BPF_MAP_TYPE_PERCPU_HASH` (4); its Linux ID is ``linuxTypeID``.
    public static let perCPUHash = MapType(rawValue: 4)
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` (5); its Linux ID is ``linuxTypeID``.
    public static let perCPUArray = MapType(rawValue: 5)
    /// `BPF_MAP_TYPE_HASH_OF_MAPS` (6); its Linux ID is ``linuxTypeID``.
    public static let hashOfMaps = MapType(rawValue: 6)
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS` (7); its Linux ID is ``linuxTypeID``.
    public static let arrayOfMaps = MapType(rawValue: 7)
    /// `BPF_MAP_TYPE_LRU_HASH` (8); its Linux ID is ``linuxTypeID``.
    public static let lruHash = MapType(rawValue: 8)
    /// `BPF_MAP_TYPE_LPM_TRIE` (9); its Linux ID is ``linuxTypeID``.
    public static let lpmTrie = MapType(rawValue: 9)
    /// `BPF_MAP_TYPE_QUEUE` (10); its Linux ID is ``linuxTypeID``.
    public static let queue = MapType(rawValue: 10)
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH` (11); its Linux ID is ``linuxTypeID``.
    public static let lruPerCPUHash = MapType(rawValue: 11)
    /// `BPF_MAP_TYPE_STACK` (12); its Linux ID is ``linuxTypeID``.
    public static let stack = MapType(rawValue: 12)
    /// `BPF_MAP_TYPE_RINGBUF` (13); its Linux ID is ``linuxTypeID``.
    public static let ringBuffer = MapType(rawValue: 13)
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY` (14); its Linux ID is ``linuxTypeID``.
    public static let perfEventArray = MapType(rawValue: 14)

    /// Built-in type IDs: 1 through 4095.
    public static let builtInRange: ClosedRange<UInt32> = 1...4095
    /// Custom (provider) type IDs: 4096 through 65535.
    public static let customRange: ClosedRange<UInt32> = 4096...65535

    /// Whether the ID is in the built-in range.
    public var isBuiltInRange: Bool { Self.builtInRange.contains(rawValue) }
    /// Whether the ID is in the custom (provider) range.
    public var isCustom: Bool { Self.customRange.contains(rawValue) }

    /// The Linux `enum bpf_map_type` value of this type, or `nil` for IDs Linux lacks.
    public var linuxTypeID: UInt32? {
        switch self {
        case .hash: 1                 // BPF_MAP_TYPE_HASH
        case .array: 2                // BPF_MAP_TYPE_ARRAY
        case .programArray: 3         // BPF_MAP_TYPE_PROG_ARRAY
        case .perfEventArray: 4       // BPF_MAP_TYPE_PERF_EVENT_ARRAY
        case .perCPUHash: 5           // BPF_MAP_TYPE_PERCPU_HASH
        case .perCPUArray: 6          // BPF_MAP_TYPE_PERCPU_ARRAY
        case .lruHash: 9              // BPF_MAP_TYPE_LRU_HASH
        case .lruPerCPUHash: 10       // BPF_MAP_TYPE_LRU_PERCPU_HASH
        case .lpmTrie: 11             // BPF_MAP_TYPE_LPM_TRIE
        case .arrayOfMaps: 12         // BPF_MAP_TYPE_ARRAY_OF_MAPS
        case .hashOfMaps: 13          // BPF_MAP_TYPE_HASH_OF_MAPS
        case .queue: 22               // BPF_MAP_TYPE_QUEUE
        case .stack: 23               // BPF_MAP_TYPE_STACK
        case .ringBuffer: 27          // BPF_MAP_TYPE_RINGBUF
        default: nil
        }
    }

    /// The eBPF-for-Windows name (`BPF_MAP_TYPE_HASH`, …) or `CUSTOM(n)` / `UNKNOWN(n)`.
    public var description: String {
        switch self {
        case .hash: "BPF_MAP_TYPE_HASH"
        case .array: "BPF_MAP_TYPE_ARRAY"
        case .programArray: "BPF_MAP_TYPE_PROG_ARRAY"
        case .perCPUHash: "BPF_MAP_TYPE_PERCPU_HASH"
        case .perCPUArray: "BPF_MAP_TYPE_PERCPU_ARRAY"
        case .hashOfMaps: "BPF_MAP_TYPE_HASH_OF_MAPS"
        case .arrayOfMaps: "BPF_MAP_TYPE_ARRAY_OF_MAPS"
        case .lruHash: "BPF_MAP_TYPE_LRU_HASH"
        case .lpmTrie: "BPF_MAP_TYPE_LPM_TRIE"
        case .queue: "BPF_MAP_TYPE_QUEUE"
        case .lruPerCPUHash: "BPF_MAP_TYPE_LRU_PERCPU_HASH"
        case .stack: "BPF_MAP_TYPE_STACK"
        case .ringBuffer: "BPF_MAP_TYPE_RINGBUF"
        case .perfEventArray: "BPF_MAP_TYPE_PERF_EVENT_ARRAY"
        default: isCustom ? "CUSTOM(\(rawValue))" : "UNKNOWN(\(rawValue))"
        }
    }
}
