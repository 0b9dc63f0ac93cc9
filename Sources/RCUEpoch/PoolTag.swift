/// A 32-bit tag that groups epoch allocations for accounting, as eBPF-for-Windows pool tags do.
///
/// A map allocates under the tag its definition names, or, without one, under its kind's
/// default tag, which every map of that kind shares (`MapDefinition.effectivePoolTag`:
/// `rcua` for arrays, `rcub` for bucket-locked hashes, …). Give a map a tag of its own
/// for ``EpochMemory/statistics(for:)`` to tell how much memory that map holds and how much
/// is waiting for a grace period; the default tags tell it per kind of map.
public struct PoolTag: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw value.
    public var rawValue: UInt32

    /// Wraps a raw value (not validated here: maps validate what they are given).
    @inlinable
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// A tag from four ASCII characters, stored little-endian as eBPF-for-Windows does
    /// (`"ebpf"` reads back as `ebpf` in a memory dump).
    ///
    /// - Precondition: `fourCC` is exactly four ASCII characters.
    public init(_ fourCC: StaticString) {
        _rcumapsPrecondition(fourCC.utf8CodeUnitCount == 4 && fourCC.isASCII,
                     "a pool tag is four ASCII characters")
        var value: UInt32 = 0
        fourCC.withUTF8Buffer { bytes in
            for (index, byte) in bytes.enumerated() { value |= UInt32(byte) << (8 * UInt32(index)) }
        }
        self.rawValue = value
    }

    /// A readable form, for logs and error messages.
    public var description: String {
        let bytes = (0..<4).map { UInt8(truncatingIfNeeded: rawValue >> (8 * $0)) }
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return "0x" + String(rawValue, radix: 16)
    }

    /// Tag for allocations that name none.
    public static let general = PoolTag("rcum")
    /// Tag of deferred work items.
    public static let workItem = PoolTag("rcuw")
}
