#if canImport(Glibc)
import Glibc
#endif

/// A heap buffer of exactly `count` bytes (malloc), so that AddressSanitizer reports any
/// access past its end — a Swift `[UInt8]` may have spare capacity that hides one.
/// `nilBase` gives a buffer with no address at all (count 0), as a C caller might pass.
public final class ExactBuffer {
    public let count: Int
    public let pointer: UnsafeMutableRawPointer?

    public init(_ bytes: [UInt8]) {
        count = bytes.count
        if bytes.isEmpty {
            pointer = malloc(1)  // an address, but no byte of it belongs to the buffer
        } else {
            pointer = malloc(bytes.count)
            bytes.withUnsafeBytes { pointer!.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        }
    }

    public init(zeros count: Int) {
        self.count = count
        pointer = malloc(max(count, 1))
        pointer!.initializeMemory(as: UInt8.self, repeating: 0xCD, count: max(count, 1))
    }

    /// No address, count 0.
    public init(nilBase: ()) {
        count = 0
        pointer = nil
    }

    deinit { free(pointer) }

    public var raw: UnsafeRawBufferPointer {
        pointer == nil ? UnsafeRawBufferPointer(start: nil, count: 0) : UnsafeRawBufferPointer(start: pointer, count: count)
    }

    public var mutableRaw: UnsafeMutableRawBufferPointer {
        pointer == nil ? UnsafeMutableRawBufferPointer(start: nil, count: 0)
            : UnsafeMutableRawBufferPointer(start: pointer, count: count)
    }

    public var bytes: [UInt8] { Array(raw) }
}
