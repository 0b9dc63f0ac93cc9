#if canImport(Glibc)
import Glibc
#endif

/// A heap buffer of exactly `count` bytes (malloc), so that AddressSanitizer reports any
/// access past its end — a Swift `[UInt8]` may have spare capacity that hides one.
/// `nilBase` gives a buffer with no address at all (count 0), as a C caller might pass.
public final class ExactBuffer {
    public let count: Int
    public let pointer: UnsafeMutableRawPointer?
    /// What `malloc` returned (for `free`): `pointer`, or for an empty buffer the byte
    /// before it.
    private let allocation: UnsafeMutableRawPointer?

    /// An empty buffer's address: one past the end of a 1-byte allocation, so that any
    /// access through it is past the end (at the allocation's start, a read of byte 0 hit
    /// the allocated byte and went unreported: found by review, 2026-12-06, twenty-sixth
    /// session).
    private static func emptyBuffer() -> (allocation: UnsafeMutableRawPointer, pointer: UnsafeMutableRawPointer) {
        let allocation = malloc(1)!
        return (allocation, allocation + 1)
    }

    public init(_ bytes: [UInt8]) {
        count = bytes.count
        if bytes.isEmpty {
            (allocation, pointer) = Self.emptyBuffer()
        } else {
            allocation = malloc(bytes.count)
            pointer = allocation
            bytes.withUnsafeBytes { pointer!.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        }
    }

    public init(zeros count: Int) {
        self.count = count
        if count == 0 {
            (allocation, pointer) = Self.emptyBuffer()
        } else {
            allocation = malloc(count)
            pointer = allocation
            pointer!.initializeMemory(as: UInt8.self, repeating: 0xCD, count: count)
        }
    }

    /// No address, count 0.
    public init(nilBase: ()) {
        count = 0
        pointer = nil
        allocation = nil
    }

    deinit { free(allocation) }

    public var raw: UnsafeRawBufferPointer {
        pointer == nil ? UnsafeRawBufferPointer(start: nil, count: 0) : UnsafeRawBufferPointer(start: pointer, count: count)
    }

    public var mutableRaw: UnsafeMutableRawBufferPointer {
        pointer == nil ? UnsafeMutableRawBufferPointer(start: nil, count: 0)
            : UnsafeMutableRawBufferPointer(start: pointer, count: count)
    }

    public var bytes: [UInt8] { Array(raw) }
}
