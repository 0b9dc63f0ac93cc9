/// Get-next-key in a pass over an array's indices (ARRAY, PERCPU_ARRAY): an index beyond the
/// last is followed by nothing (ENOENT), where the array's `nextKey` restarts at 0 as Linux's
/// get-next-key does — a pass must never restart (it did, and a pass resumed from a stale
/// cursor returned every index again: found by review, 2026-12-05). Every other cursor goes
/// to `nextKey`, which makes the access and size checks in Linux's order; the index beyond
/// the last gets the same checks first.
@inline(__always)
func arrayNextKeyInPass(after key: UnsafeRawBufferPointer?, into nextKey: UnsafeMutableRawBufferPointer,
                        maxEntries: Int, access: MapAccess,
                        otherwise next: () throws(MapError) -> Void) throws(MapError) {
    if let key, key.count == 4, key.baseAddress != nil,
       Int(key.baseAddress!.loadUnaligned(as: UInt32.self)) >= maxEntries {
        try access.checkUserRead()
        guard nextKey.count == 4, nextKey.baseAddress != nil else {
            throw MapError.invalidArgument.with(reason: "key buffer is \(nextKey.count) bytes, array keys are 4")
        }
        throw MapError.keyNotFound
    }
    try next()
}
