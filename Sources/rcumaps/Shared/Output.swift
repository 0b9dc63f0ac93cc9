#if canImport(Glibc)
@preconcurrency import Glibc
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

/// Flushes standard output and stops the process with status 1 and a message if any of it
/// could not be written (a full disk, a closed pipe: the results are lost, and a script that
/// saves them must not see success). Call once the command's output is complete.
func checkStandardOutputWritten() {
    let flushed = fflush(standardOutputStream) == 0
    let failure = errno
    guard !flushed || ferror(standardOutputStream) != 0 else { return }
    writeToStandardError("rcumaps: error: the results could not be written to standard output"
        + (flushed ? "" : ": \(String(cString: strerror(failure)))") + "\n")
    exit(1)
}

/// The C library's `stdout`, which `print` writes through (read once; nothing reassigns it).
nonisolated(unsafe) let standardOutputStream = stdout

/// Where benchmark checksums end up, so the optimiser cannot drop the lookups that made them.
private let checksumSink = Atomic<UInt64>(0)

/// Consumes `value` (a black hole): folds it into a global the program never reads.
@inline(never)
func keepAlive(_ value: UInt64) {
    checksumSink.bitwiseXor(value, ordering: .relaxed)
}
