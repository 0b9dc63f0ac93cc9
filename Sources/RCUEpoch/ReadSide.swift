// The read-side fast path: the only file that chooses between liburcu's inline read
// lock (trait `InlineReadSide`, on by default) and the call-only shim (a call into
// liburcu-memb.so, when the trait is disabled).
import CRCUMapsShim
#if RCUMAPS_INLINE_READ_SIDE
import CRCUMapsInlineReadSide
#endif

/// Enters a liburcu read-side critical section, registering the thread on first use.
@inlinable @inline(__always)
func _epochReadLock() {
    #if RCUMAPS_INLINE_READ_SIDE
    rcumaps_inline_read_lock()
    #else
    rcumaps_read_lock()
    #endif
}

/// Leaves a liburcu read-side critical section.
@inlinable @inline(__always)
func _epochReadUnlock() {
    #if RCUMAPS_INLINE_READ_SIDE
    rcumaps_inline_read_unlock()
    #else
    rcumaps_read_unlock()
    #endif
}
