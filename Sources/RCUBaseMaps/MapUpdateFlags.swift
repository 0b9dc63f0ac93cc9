/// How an update treats an existing key: Linux's `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`.
///
/// Any other raw value is rejected with ``MapError/invalidArgument`` by every map.
public struct MapUpdateFlags: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw value.
    public var rawValue: UInt64

    /// Wraps a raw value (not validated here: maps validate what they are given).
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Create the entry or replace it (`BPF_ANY`, 0).
    public static let any = MapUpdateFlags(rawValue: 0)
    /// Create only; ``MapError/alreadyExists`` if the key exists (`BPF_NOEXIST`, 1).
    public static let noExist = MapUpdateFlags(rawValue: 1)
    /// Replace only; ``MapError/keyNotFound`` if the key is absent (`BPF_EXIST`, 2).
    public static let exist = MapUpdateFlags(rawValue: 2)

    /// Whether the value is one of the three flags.
    public var isValid: Bool { rawValue <= 2 }

    /// A readable form, for logs and error messages.
    public var description: String {
        switch rawValue {
        case 0: "BPF_ANY"
        case 1: "BPF_NOEXIST"
        case 2: "BPF_EXIST"
        default: "invalid(\(rawValue))"
        }
    }
}
