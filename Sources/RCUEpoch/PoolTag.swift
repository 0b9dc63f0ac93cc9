/// A 32-bit tag that groups epoch allocations for accounting, as eBPF-for-Windows pool tags do.
///
/// Each map allocates under its own tag (settable in its definition), so
/// ``EpochMemory/statistics(for:)`` tells how much memory a map or subsystem holds and
/// how much is waiting for a grace period.
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
