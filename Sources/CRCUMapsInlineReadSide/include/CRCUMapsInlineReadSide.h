/*
 * CRCUMapsInlineReadSide — the read-side fast path, inlined into its Swift callers.
 * Selected by the package trait `InlineReadSide`, which is on by default.
 *
 * The outermost enter and exit of a section follow liburcu-memb's read-side protocol
 * directly: the thread's reader counter (`urcu_memb_reader.ctr`) takes the grace-period
 * counter on entry and drops its nesting count on exit, then the grace-period waiter is
 * woken if it sleeps. That is what `_urcu_memb_read_lock` / `_urcu_memb_read_unlock` do,
 * except that the wake is skipped when the waiter is not waiting for this section (see
 * rcumaps_inline_wake_up_gp in inline_read_side.c);
 * written here, the fast path tests one per-thread word (`fast_read`: registered,
 * sys_membarrier, no ThreadSanitizer) instead of re-reading liburcu's sys_membarrier flag
 * at each of its three barriers and testing the registration and the TSan build
 * separately. Everything else — registering the thread, liburcu's own read lock when
 * it does not use sys_membarrier (real fences) or when a liburcu read lock the caller
 * took directly is already held, TSan's annotations — takes the slow path, out of line,
 * which calls liburcu's read lock and unlock in the shared library.
 *
 * Licence: what is compiled into the caller from liburcu's headers (read with
 * _LGPL_SOURCE) is data-structure layouts, macros and small inline functions:
 * `struct urcu_reader` / `struct urcu_gp`, `URCU_GP_COUNT` / `URCU_GP_CTR_NEST_MASK` /
 * `URCU_GP_CTR_PHASE`, the `cmm_*` barrier macros and `urcu_common_wake_up_gp` (its test
 * inline, its call in inline_read_side.c) — under ten lines; liburcu's header states that
 * its read-side functions "are intended to be usable by non-LGPL code, as called out in
 * LGPL", LGPL-2.1 section 5. The slow path calls liburcu's read lock
 * and unlock in liburcu-memb.so (inline_read_side.c). The grace-period,
 * call_rcu and hash-table code stay calls into the shared libraries. See README,
 * "Licence and the read-side trait". Building without the trait
 * (`--disable-default-traits`) uses CRCUMapsShim's call-only path.
 *
 * The header must be compiled against the liburcu headers of the installed
 * library's major version (it always is: pkg-config finds both).
 *
 * This header deliberately includes no other RCUMaps header: urcu-memb.h must
 * be read here with _LGPL_SOURCE defined, which an earlier include of it
 * (through CRCUMapsShim) would prevent. The per-thread state below is the same
 * object as in CRCUMapsShim.h (same layout, defined in shim.c, which checks it).
 */
#ifndef CRCUMAPS_INLINE_READ_SIDE_H
#define CRCUMAPS_INLINE_READ_SIDE_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif
#include <urcu/urcu-memb.h>

typedef struct rcumaps_inline_thread_state {
    unsigned int registered;
    unsigned int nesting;
    unsigned int stripe;
    unsigned int fast_read;
} rcumaps_inline_thread_state_t;

/* The same TLS object as CRCUMapsShim's rcumaps_tls, viewed with this layout (the first
 * four fields of CRCUMapsShim's, in the same order; shim.c checks the offsets). */
extern __thread rcumaps_inline_thread_state_t rcumaps_tls __asm__("rcumaps_tls")
    __attribute__((tls_model("initial-exec")));
void rcumaps_register_current_thread(void);
void rcumaps_section_underflow(void) __attribute__((noreturn, cold));
/* The slow paths (inline_read_side.c): registration, liburcu's own read lock and
 * unlock, TSan's annotations; the lock also sets `fast_read` when it applies. */
void rcumaps_inline_read_lock_slow(void);
void rcumaps_inline_read_unlock_slow(void);
/* Called when a grace period has announced that it may sleep on `urcu_memb_gp.futex`:
 * wakes it (liburcu's `urcu_common_wake_up_gp`, out of line) if the section that just
 * ended, whose reader counter was `counter`, is one it may be waiting for — one that began
 * under the other phase than the grace-period counter's now. See inline_read_side.c. */
void rcumaps_inline_wake_up_gp(unsigned long counter) __attribute__((cold));

/* Enters a read-side critical section, registering the thread first if needed. */
static inline __attribute__((always_inline)) void rcumaps_inline_read_lock(void)
{
    /* Only the outermost section touches liburcu's reader: it covers the nested ones. The
     * depth is raised after the reader counter is set, never before: a signal handler that
     * enters a section in between then finds depth 0 and a counter already taken, so takes
     * the slow path (liburcu's read lock, which nests). Raised first, the handler's section
     * read depth 1, took no lock at all, and a grace period did not wait for it (found by
     * review, 2026-12-06, thirtieth session). */
    if (rcumaps_tls.nesting == 0) {
        /* Fast path: `fast_read` (so registered, with sys_membarrier) and no liburcu read
         * lock held already (the reader counter's nesting count is zero). With
         * sys_membarrier the grace period orders this store against the updater, so a
         * compiler barrier is the read side's whole fence (urcu_memb_smp_mb_slave). */
        if (__builtin_expect(rcumaps_tls.fast_read != 0, 1)
            && __builtin_expect((_CMM_LOAD_SHARED(URCU_TLS(urcu_memb_reader).ctr) & URCU_GP_CTR_NEST_MASK) == 0, 1)) {
            cmm_barrier();
            _CMM_STORE_SHARED(URCU_TLS(urcu_memb_reader).ctr, _CMM_LOAD_SHARED(urcu_memb_gp.ctr));
            cmm_barrier();
        } else {
            rcumaps_inline_read_lock_slow();
        }
    }
    rcumaps_tls.nesting++;
}

/* Leaves a read-side critical section. Leaving one more time than entered stops the
 * program (`rcumaps_section_underflow`, checked on the nested branch only). */
static inline __attribute__((always_inline)) void rcumaps_inline_read_unlock(void)
{
    /* (The nested branch reads the depth again, with an atomic load the compiler does not
     * fold into the decrement: the outermost exit stays one `dec` in memory and a branch.) */
    if (--rcumaps_tls.nesting == 0) {
        if (__builtin_expect(rcumaps_tls.fast_read != 0, 1)) {
            /* Drop one nesting level of the reader counter (to zero, unless the caller
             * holds a liburcu read lock of its own around this section), then wake a
             * grace period that waits for readers. Waking it while such an outer lock is
             * still held only makes it look at the readers again. Compiler barriers, as
             * above: the section's accesses before the store, the store before the
             * waiter's futex is read. */
            unsigned long counter = _CMM_LOAD_SHARED(URCU_TLS(urcu_memb_reader).ctr);
            cmm_barrier();
            _CMM_STORE_SHARED(URCU_TLS(urcu_memb_reader).ctr, counter - URCU_GP_COUNT);
            cmm_barrier();
            /* liburcu's `urcu_common_wake_up_gp`, its test written here: a `static inline`
             * the compiler may outline, and did in 147 of RCUMaps' functions (a call and a
             * frame, about 9 instructions, on every section's exit there). */
            if (__builtin_expect(uatomic_read(&urcu_memb_gp.futex) == -1, 0)) rcumaps_inline_wake_up_gp(counter);
            cmm_barrier();
        } else {
            rcumaps_inline_read_unlock_slow();
        }
    } else if (__builtin_expect(__atomic_load_n(&rcumaps_tls.nesting, __ATOMIC_RELAXED) == (unsigned int)-1, 0)) {
        rcumaps_section_underflow();
    }
}

#endif /* CRCUMAPS_INLINE_READ_SIDE_H */
