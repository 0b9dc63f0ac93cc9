#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// Writes `text` to standard error, unbuffered (progress and diagnostics).
func writeToStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let written = write(STDERR_FILENO, base + offset, bytes.count - offset)
            if written <= 0 {
                if written < 0 && errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}

/// Where benchmark checksums end up, so the optimiser cannot drop the lookups that made them.
private let checksumSink = Atomic<UInt64>(0)

/// Consumes `value` (a black hole): folds it into a global the program never reads.
@inline(never)
func keepAlive(_ value: UInt64) {
    checksumSink.bitwiseXor(value, ordering: .relaxed)
}
