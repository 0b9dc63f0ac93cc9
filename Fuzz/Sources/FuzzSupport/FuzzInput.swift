/// Reads a fuzz input as a stream of choices. Past the end every read is zero, so any byte
/// string is a valid input and a short one simply stops early (check ``isExhausted``).
public struct FuzzInput {
    public let bytes: [UInt8]
    public private(set) var position = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// No byte is left.
    public var isExhausted: Bool { position >= bytes.count }
    public var remaining: Int { max(0, bytes.count - position) }

    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func u16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }
    public mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    public mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
    public mutating func bool() -> Bool { byte() & 1 == 1 }

    /// `count` bytes (zeros past the end).
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        for index in 0..<count { result[index] = byte() }
        return result
    }

    /// One of `choices`, by the next byte.
    public mutating func pick<T>(_ choices: [T]) -> T { choices[Int(byte()) % choices.count] }

    /// One of `choices`, or (selector `choices.count`) a raw value read after the selector.
    public mutating func pick<T>(_ choices: [T], orRaw raw: (inout FuzzInput) -> T) -> T {
        let index = Int(byte()) % (choices.count + 1)
        return index < choices.count ? choices[index] : raw(&self)
    }
}

/// Builds inputs for the seed corpus, in the order a target reads them.
public final class InputBuilder {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    @discardableResult public func byte(_ value: UInt8) -> InputBuilder { bytes.append(value); return self }
    @discardableResult public func bytes(_ values: [UInt8]) -> InputBuilder { bytes += values; return self }
    @discardableResult public func u16(_ value: UInt16) -> InputBuilder { byte(UInt8(value & 0xFF)).byte(UInt8(value >> 8)) }
    @discardableResult public func u32(_ value: UInt32) -> InputBuilder { u16(UInt16(value & 0xFFFF)).u16(UInt16(value >> 16)) }
    @discardableResult public func u64(_ value: UInt64) -> InputBuilder { u32(UInt32(value & 0xFFFF_FFFF)).u32(UInt32(value >> 32)) }
}
