/// How an update treats an existing key: Linux's `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`.
///
/// Any other raw value is rejected with ``MapError/invalidArgument`` by every map.
public struct MapUpdateFlags: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw value.
    public var rawValue: UInt64

    /// Wraps a raw value (not validated here: maps validate what they are given).
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Create the entry or replace it (`BPF_ANY`, 0).
    @inlinable public static var any: MapUpdateFlags { MapUpdateFlags(rawValue: 0) }
    /// Create only; ``MapError/alreadyExists`` if the key exists (`BPF_NOEXIST`, 1).
    @inlinable public static var noExist: MapUpdateFlags { MapUpdateFlags(rawValue: 1) }
    /// Replace only; ``MapError/keyNotFound`` if the key is absent (`BPF_EXIST`, 2).
    @inlinable public static var exist: MapUpdateFlags { MapUpdateFlags(rawValue: 2) }

    /// `BPF_F_LOCK` (4), combined with one of the three: update an existing element in
    /// place with its lock word held (a map whose definition names one; EINVAL otherwise).
    @inlinable public static var lock: MapUpdateFlags { MapUpdateFlags(rawValue: 4) }

    /// Combines with `BPF_F_LOCK`.
    public func union(_ other: MapUpdateFlags) -> MapUpdateFlags { MapUpdateFlags(rawValue: rawValue | other.rawValue) }

    /// Whether `other`'s bits are all set.
    public func contains(_ other: MapUpdateFlags) -> Bool { rawValue & other.rawValue == other.rawValue && other.rawValue != 0 }

    /// Whether the value is one of the three flags, possibly with `BPF_F_LOCK`.
    public var isValid: Bool { rawValue & ~4 <= 2 }

    /// A readable form, for logs and error messages.
    public var description: String {
        switch rawValue {
        case 0: "BPF_ANY"
        case 1: "BPF_NOEXIST"
        case 2: "BPF_EXIST"
        case 4: "BPF_F_LOCK"
        case 5: "BPF_NOEXIST|BPF_F_LOCK"
        case 6: "BPF_EXIST|BPF_F_LOCK"
        default: "invalid(\(rawValue))"
        }
    }
}
