/* The slow paths of CRCUMapsInlineReadSide's read lock and unlock (see its header): the
 * outermost section of a thread whose `fast_read` word is clear, or of any thread that
 * already holds a liburcu read lock taken directly. */
#include "CRCUMapsInlineReadSide.h"

/* The slow paths call liburcu's read lock and unlock in liburcu-memb.so, not the inline
 * versions that _LGPL_SOURCE maps these names to: under ThreadSanitizer this file is
 * instrumented, and liburcu's inline code (plain accesses to the grace-period futex that
 * are atomic on x86 but not to TSan) would be reported as races; the shared library is not
 * instrumented. The slow path is rare everywhere else (a thread's first section, a
 * machine without sys_membarrier, a liburcu read lock held around the section), so the
 * call costs nothing that matters. */
#undef urcu_memb_read_lock
#undef urcu_memb_read_unlock
void urcu_memb_read_lock(void);
void urcu_memb_read_unlock(void);

void rcumaps_tsan_reader_exit(void);
extern const int rcumaps_tsan_enabled;

void rcumaps_inline_read_lock_slow(void)
{
    if (!rcumaps_tls.registered) rcumaps_register_current_thread();
    urcu_memb_read_lock();
    /* Registered now. The fast path needs read-side barriers that are compiler barriers
     * (liburcu decided at its initialisation, before any registration, whether it uses
     * sys_membarrier) and no TSan build, whose exit must release the grace-period sync
     * object (rcumaps_tsan_reader_exit). */
    rcumaps_tls.fast_read = urcu_memb_has_sys_membarrier && !rcumaps_tsan_enabled;
}

void rcumaps_inline_read_unlock_slow(void)
{
    /* TSan: release before unlocking, so that every access of the section is ordered
     * before the reclamation that the end of the section may allow. */
    if (rcumaps_tsan_enabled) rcumaps_tsan_reader_exit();
    urcu_memb_read_unlock();
}

void rcumaps_inline_wake_up_gp(void)
{
    urcu_common_wake_up_gp(&urcu_memb_gp);
}
