// The read-side fast path: the only file that chooses between the safe shim
// (a call into liburcu-memb.so) and the LGPL-inlined one (trait `LGPLInline`).
import CRCUMapsShim
#if RCUMAPS_LGPL_INLINE
import CRCUMapsShimLGPL
#endif

/// Enters a liburcu read-side critical section, registering the thread on first use.
@inlinable @inline(__always)
func _epochReadLock() {
    #if RCUMAPS_LGPL_INLINE
    rcumaps_lgpl_read_lock()
    #else
    rcumaps_read_lock()
    #endif
}

/// Leaves a liburcu read-side critical section.
@inlinable @inline(__always)
func _epochReadUnlock() {
    #if RCUMAPS_LGPL_INLINE
    rcumaps_lgpl_read_unlock()
    #else
    rcumaps_read_unlock()
    #endif
}
