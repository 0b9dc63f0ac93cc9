#if canImport(Glibc)
import Glibc
#endif

/// Stops the process on a broken invariant. libFuzzer (or AddressSanitizer) catches the
/// SIGABRT, prints the stack and keeps the input as a crash file.
public func fuzzFail(_ message: String) -> Never {
    let text = "\nFUZZ FAILURE: \(message)\n(re-run the input with RCUMAPS_FUZZ_TRACE=1 and --replay to see every operation)\n"
    writeToStandardError(text)
    abort()
}

/// Checks a condition of the model comparison.
@inline(__always)
public func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fuzzFail(message()) }
}

/// `RCUMAPS_FUZZ_TRACE=1`: print every operation of every input (for reading a crash file).
public let fuzzTracing: Bool = getenv("RCUMAPS_FUZZ_TRACE") != nil

@inline(__always)
public func trace(_ message: @autoclosure () -> String) {
    guard fuzzTracing else { return }
    writeToStandardError(message() + "\n")
}

/// Bytes as hex, for messages.
public func hex(_ bytes: [UInt8], limit: Int = 24) -> String {
    let shown = bytes.prefix(limit).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    return bytes.count > limit ? shown + "…(\(bytes.count))" : shown
}

/// errno names for messages.
public func errnoName(_ code: Int32) -> String {
    switch code {
    case 0: "0"
    case ENOENT: "ENOENT"
    case EEXIST: "EEXIST"
    case E2BIG: "E2BIG"
    case EINVAL: "EINVAL"
    case EOPNOTSUPP: "EOPNOTSUPP"
    case ENOMEM: "ENOMEM"
    case EBUSY: "EBUSY"
    case EPERM: "EPERM"
    case EACCES: "EACCES"
    case EDEADLK: "EDEADLK"
    case ENOSPC: "ENOSPC"
    case 524: "ENOTSUPP"
    default: "errno \(code)"
    }
}

/// Writes to file descriptor 2 (unbuffered, so nothing is lost when the process aborts).
public func writeToStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}
