// Stopping the program with a message in every build configuration.
//
// `precondition` and `assert` drop their message in optimised (-O) builds: the program
// stops on an illegal instruction with nothing said. Where RCUMaps documents a trap "with
// a message" — API misuse that would otherwise corrupt memory — it goes through these
// instead, which keep the message in every configuration but -Ounchecked.

/// Stops the program with `message` (in every build configuration).
@usableFromInline @inline(never)
package func _rcumapsTrap(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError(message, file: file, line: line)
}

/// Stops the program with `message` unless `condition` holds (in every build configuration).
/// The message is built only on failure.
@inlinable @inline(__always)
package func _rcumapsPrecondition(_ condition: Bool, _ message: @autoclosure () -> String,
                                  file: StaticString = #fileID, line: UInt = #line) {
    if _slowPath(!condition) { _rcumapsTrap(message(), file: file, line: line) }
}
