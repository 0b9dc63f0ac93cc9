/// The maps `rcumaps stress` can exercise, by command-line name.
enum StressMapKind: String, CaseIterable, Sendable {
    /// `RawLockFreeHashMap`: 8-byte keys, 32-byte values.
    case hashLockFree = "hash-lockfree"
    /// `RawBucketHashMap`: 8-byte keys, 32-byte values.
    case hashBucket = "hash-bucket"
    /// `RawLockFreeHashMap`: 8-byte keys, 8-byte values (updated in place, sealed on delete).
    case hashLockFreeWord = "hash-lockfree-8"
    /// `RawBucketHashMap`: 8-byte keys, 8-byte values (exchanged in place).
    case hashBucketWord = "hash-bucket-8"
    /// `RawArrayMap`: `UInt32` index keys, 32-byte values (seqlocked slots).
    case array = "array"
    /// The sample provider's object map (custom type 4200 on the bucket-locked hash):
    /// `UInt32` keys, object-handle values, reference-counted objects.
    case objectMap = "object-map"

    /// One line for `rcumaps stress --help`.
    var summary: String {
        switch self {
        case .hashLockFree: "RawLockFreeHashMap (rculfhash), 8-byte keys, 32-byte values"
        case .hashBucket: "RawBucketHashMap (per-bucket locks), 8-byte keys, 32-byte values"
        case .hashLockFreeWord: "RawLockFreeHashMap, 8-byte keys, 8-byte values (updated in place)"
        case .hashBucketWord: "RawBucketHashMap, 8-byte keys, 8-byte values (exchanged in place)"
        case .array: "RawArrayMap, UInt32 index keys, 32-byte values"
        case .objectMap: "sample object map provider (type \(StressObjects.mapType.rawValue), bucket-locked base), handle values"
        }
    }

    /// Whether the map is an array (no inserts or deletes; every index always has a value).
    var isArray: Bool { self == .array }
    /// Whether values are one 8-byte word: the token itself, replaced in place by the map.
    var hasWordValues: Bool { self == .hashLockFreeWord || self == .hashBucketWord }
}

/// What `rcumaps stress` runs, as parsed from the command line.
struct StressOptions: Equatable, Sendable {
    /// Maps to stress, one after the other.
    var maps: [StressMapKind] = StressMapKind.allCases
    /// Seconds per map.
    var duration: Double = 5
    /// Worker threads per map.
    var threads = 4
    /// Seed of the workers' random streams; `nil`: chosen from the clock (and printed).
    var seed: UInt64?
    /// Size of the key space (array maps have exactly this many slots).
    var keys = 1024
    /// Where to write the memory samples (CSV); `nil`: none are written.
    var samples: String?

    /// Largest `--threads` (writer IDs are 8 bits, 0 is the prefill).
    static let maxThreads = 255
    /// Smallest `--keys`.
    static let minKeys = 16
    /// Largest `--keys` (keys and foreign keys fit the 20-bit key field of a value).
    static let maxKeys = 1 << 19
}

/// Parses the arguments after `stress`.
///
/// Options take their value as the next argument or after `=` (`--duration 1` or `--duration=1`).
func parseStressCommand(_ arguments: [String]) throws(UsageError) -> Command {
    var options = StressOptions()
    var help = false
    try forEachOption(arguments[...], unknown: "unknown stress option") { (token, value) throws(UsageError) in
        let name = token.name
        switch name {
        case "-h", "--help":
            try token.noValue()
            help = true
            return .stop
        case "--map", "--maps":
            options.maps = try parseList(try value(), option: name) { (text) throws(UsageError) in
                try parseName(text, option: name, as: StressMapKind.self)
            }
        case "--duration":
            options.duration = try parseSeconds(try value(), option: name)
        case "--threads":
            options.threads = try parseInt(try value(), option: name, in: 1...StressOptions.maxThreads)
        case "--keys":
            options.keys = try parseInt(try value(), option: name, in: StressOptions.minKeys...StressOptions.maxKeys)
        case "--seed":
            let text = try value()
            guard let seed = UInt64(text) else {
                throw UsageError(message: "\(name): '\(text)' is not an unsigned 64-bit integer")
            }
            options.seed = seed
        case "--samples":
            let path = try value()
            guard !path.isEmpty else { throw UsageError(message: "\(name) needs a file path") }
            options.samples = path
        default:
            return .unknown
        }
        return .handled
    }
    return help ? .stressHelp : .stress(options)
}
