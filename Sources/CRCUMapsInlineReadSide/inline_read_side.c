/* The slow paths of CRCUMapsInlineReadSide's read lock and unlock (see its header): the
 * outermost section of a thread whose `slow_read` word is set, or of any thread that
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
    rcumaps_tls.slow_read = !(urcu_memb_has_sys_membarrier && !rcumaps_tsan_enabled);
}

void rcumaps_inline_read_unlock_slow(void)
{
    /* TSan: release before unlocking, so that every access of the section is ordered
     * before the reclamation that the end of the section may allow. */
    if (rcumaps_tsan_enabled) rcumaps_tsan_reader_exit();
    urcu_memb_read_unlock();
}

/* A grace period waits only for readers in an *old* section: one whose reader counter,
 * taken from the grace-period counter at its start, has the other phase bit than the
 * grace-period counter has now (liburcu's URCU_READER_ACTIVE_OLD; a section that began
 * under the current phase is not waited for until the next flip, when it is old). So the
 * end of a section that began under the current phase has no one to wake, and waking
 * anyway did harm: liburcu's waiter, once it has spun its active attempts, announces
 * itself (futex -1), looks at the readers and sleeps only if the futex is still -1; on two
 * cores, where the grace-period thread runs by preempting a worker that may be inside an
 * old section, the other worker's exits from its own current-phase sections reset the
 * futex to 0 again and again, so the waiter never slept: it looped on sys_membarrier (an
 * interrupt of the other core each time) until the scheduler gave the preempted worker
 * its core back (the object map's churn on two threads, 2026-12-04: 62 membarriers a grace
 * period, and 11,000 futex wakes from the two workers in 10 M operations).
 *
 * Why skipping is safe. The waiter stores the flipped phase (phase 2), or leaves it (phase
 * 1), with a full barrier before it sets the futex to -1; this thread read -1, so its load
 * of the grace-period counter below, ordered after that read by a read barrier (on x86 a
 * compiler barrier: loads stay in order there), sees that phase or a later one. If it sees
 * the phase the section began under, the waiter that set -1 is not waiting for this section
 * in its current phase. If a later flip happened in between, the waiter finished the phase
 * in which this section was old, which it can only do having seen this section end (or a
 * new one begin). The store that ended the section precedes the futex load here exactly as
 * liburcu's protocol has it; only the decision to wake changes. Readers that take the slow
 * path (liburcu's own unlock: ThreadSanitizer builds, no sys_membarrier) wake as before. */
/* Wakes a sleeping grace-period waiter whatever it waits for: called after a thread is
 * unregistered (shim.c, rcumaps_thread_exit). A thread that exits holding a liburcu read
 * lock of its own is unregistered while its reader counter still says active; the waiter,
 * which rescans only when woken, used to be woken by any reader's exit, but with the skip
 * above only by the end of a section it waits for, and none is left (found by review). */
void rcumaps_inline_wake_up_gp_always(void)
{
    /* Under ThreadSanitizer every section takes liburcu's own unlock, which wakes at each
     * exit (no skip to make up for), and this file's plain accesses to the futex would be
     * reported as races between two exiting threads. */
    if (rcumaps_tsan_enabled) return;
    cmm_smp_mb();
    urcu_common_wake_up_gp(&urcu_memb_gp);
}

void rcumaps_inline_wake_up_gp(unsigned long counter)
{
    cmm_smp_rmb();
    if (((counter ^ CMM_LOAD_SHARED(urcu_memb_gp.ctr)) & URCU_GP_CTR_PHASE) == 0) return;
    urcu_common_wake_up_gp(&urcu_memb_gp);
}
