/// Hands the value a removal took out of a map to the caller (`removed`) and then to the
/// map's observer, from one copy of `stored` (the retired slot or entry), with `between`
/// run after the caller's copy (a debug hook of the map's).
///
/// One copy: a holder of an older helper-mode pointer may still write the retired value in
/// place until a grace period, and two reads could tell the caller and the provider
/// different values (the observer read it again: found by review, 2026-12-07; row 214
/// closed the same for replaces). Only for maps with an observer, a provider's base, whose
/// values hold no lock word: without one, `removed` reads `stored` itself — it copies a
/// value with a lock word under that word, in the slot, which a program may hold, and a
/// copy taken first would carry the held lock and never acquire it.
@inline(__always)
func reportRemovedValue(_ stored: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, flags: MapOperationFlags,
                        observer: (any MapEntryObserver)?, removed: (UnsafeRawBufferPointer) -> Void,
                        between: () -> Void) {
    guard let observer else { return removed(stored) }
    withUnsafeTemporaryAllocation(byteCount: Swift.max(1, stored.count), alignment: 16) { copy in
        copy.copyMemory(from: stored)
        let value = UnsafeRawBufferPointer(rebasing: copy[..<stored.count])
        removed(value)
        between()
        observer.entryWasRemoved(key: key, value: value, flags: flags)
    }
}
