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
 * written here, the fast path tests one per-thread word (`read_gate`: a section depth of 0,
 * and `slow_read` clear — registered,
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
    union {
        struct {
            unsigned int nesting;
            unsigned int slow_read;
        };
        unsigned long long read_gate;
    };
    unsigned int registered;
    unsigned int stripe;
} rcumaps_inline_thread_state_t;

/* The same TLS object as CRCUMapsShim's rcumaps_tls, viewed with this layout (the first
 * fields of CRCUMapsShim's, in the same order; shim.c checks the offsets). `read_gate` is
 * `nesting` (low half) and `slow_read` (high half) as one word: zero exactly when the
 * thread is in no section and may take the fast path. */
extern __thread rcumaps_inline_thread_state_t rcumaps_tls __asm__("rcumaps_tls")
    __attribute__((tls_model("initial-exec")));
void rcumaps_register_current_thread(void);
void rcumaps_section_underflow(void) __attribute__((noreturn, cold));
/* The slow paths (inline_read_side.c): registration, liburcu's own read lock and
 * unlock, TSan's annotations; the lock also clears `slow_read` when the fast path applies. */
void rcumaps_inline_read_lock_slow(void);
void rcumaps_inline_read_unlock_slow(void);
/* Called when a grace period has announced that it may sleep on `urcu_memb_gp.futex`:
 * wakes it (liburcu's `urcu_common_wake_up_gp`, out of line) if the section that just
 * ended, whose reader counter it left as `counter` (its phase bit is the section's), is
 * one it may be waiting for — one that began under the other phase than the grace-period
 * counter's now. See inline_read_side.c. */
void rcumaps_inline_wake_up_gp(unsigned long counter) __attribute__((cold));

/* The nesting count of liburcu's reader counter is its low 32 bits (URCU_GP_CTR_PHASE is
 * bit 32 on LP64), read below as one 32-bit word (little endian: the first four bytes),
 * through a type that may alias it; and one nesting level is 1. */
typedef unsigned int rcumaps_inline_u32_alias __attribute__((may_alias));
/* The halves read below (the reader counter's, and `read_gate`'s, whose low half must be
 * `nesting`) are those of a little-endian 64-bit target. Elsewhere the library products
 * build without the trait (`--disable-default-traits`: CRCUMapsShim's call-only read side);
 * CRCUMapsBaselines (the bench's C peers) includes this header whatever the trait. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && sizeof(unsigned long) == 8,
               "CRCUMapsInlineReadSide needs a 64-bit little-endian target (the library builds elsewhere with --disable-default-traits)");
_Static_assert(URCU_GP_CTR_NEST_MASK == 0xffffffffUL && URCU_GP_COUNT == 1UL,
               "liburcu's reader counter layout changed: the fast path below reads its low half");

/* Enters a read-side critical section, registering the thread first if needed. */
static inline __attribute__((always_inline)) void rcumaps_inline_read_lock(void)
{
    /* Only the outermost section touches liburcu's reader: it covers the nested ones. The
     * depth is raised after the reader counter is set, never before: a signal handler that
     * enters a section in between then finds depth 0 and a counter already taken, so takes
     * the slow path (liburcu's read lock, which nests). Raised first, the handler's section
     * read depth 1, took no lock at all, and a grace period did not wait for it (found by
     * review, 2026-12-06, thirtieth session).
     *
     * `read_gate` zero: depth 0 and `slow_read` clear (so registered, with sys_membarrier,
     * no ThreadSanitizer) — one test for both. */
    if (__builtin_expect(rcumaps_tls.read_gate == 0, 1)) {
        /* Fast path, unless a liburcu read lock is held already (the reader counter's
         * nesting count, its low half, is not zero). With sys_membarrier the grace period
         * orders this store against the updater, so a compiler barrier is the read side's
         * whole fence (urcu_memb_smp_mb_slave). */
        if (__builtin_expect(*(volatile rcumaps_inline_u32_alias *)&URCU_TLS(urcu_memb_reader).ctr == 0, 1)) {
            cmm_barrier();
            _CMM_STORE_SHARED(URCU_TLS(urcu_memb_reader).ctr, _CMM_LOAD_SHARED(urcu_memb_gp.ctr));
            cmm_barrier();
        } else {
            rcumaps_inline_read_lock_slow();
        }
    } else if (__atomic_load_n(&rcumaps_tls.nesting, __ATOMIC_RELAXED) == 0) {
        /* (An atomic load the compiler does not merge with the gate's: the gate's test then
         * stays one compare with memory.) */
        rcumaps_inline_read_lock_slow();
    }
    /* The whole word: its low half is the depth (which cannot reach 2^32), and a store of
     * the width the gate's next load has lets that load take the value from the store. */
    rcumaps_tls.read_gate++;
}

/* Leaves a read-side critical section. Leaving one more time than entered stops the
 * program (`rcumaps_section_underflow`, checked off the outermost fast exit). */
static inline __attribute__((always_inline)) void rcumaps_inline_read_unlock(void)
{
    /* The gate reaches zero exactly when this was the outermost section and the fast path
     * applies: one decrement in memory and a branch. (A depth of 0 borrows from `slow_read`;
     * the depth half then reads 0xffffffff, which the branch below reports after undoing
     * the decrement.) */
    if (__builtin_expect(--rcumaps_tls.read_gate == 0, 1)) {
        /* Drop one nesting level of the reader counter (to zero, unless the caller holds a
         * liburcu read lock of its own around this section), then wake a grace period that
         * waits for readers. Waking it while such an outer lock is still held only makes it
         * look at the readers again. Compiler barriers, as above: the section's accesses
         * before the store, the store before the waiter's futex is read. The store is a
         * relaxed atomic one (the grace-period thread reads the counter concurrently; only
         * this thread writes it). The waker gets the counter as this section left it, kept
         * in a register: read again after the store, it could be a signal handler's —
         * whose section, entered once the nesting count is 0, takes the fast path and
         * leaves the current phase there — and the wake this section owes a waiter of the
         * other phase was skipped by both (found by review, 2026-12-07). */
        cmm_barrier();
        unsigned long *counter = &URCU_TLS(urcu_memb_reader).ctr;
        unsigned long left = __atomic_load_n(counter, __ATOMIC_RELAXED) - URCU_GP_COUNT;
        __atomic_store_n(counter, left, __ATOMIC_RELAXED);
        cmm_barrier();
        /* liburcu's `urcu_common_wake_up_gp`, its test written here: a `static inline`
         * the compiler may outline, and did in 147 of RCUMaps' functions (a call and a
         * frame, about 9 instructions, on every section's exit there). */
        if (__builtin_expect(__atomic_load_n(&urcu_memb_gp.futex, __ATOMIC_RELAXED) == -1, 0))
            rcumaps_inline_wake_up_gp(left);
        cmm_barrier();
    } else {
        /* (Reads the depth again, with an atomic load the compiler does not fold into the
         * decrement.) */
        unsigned int depth = __atomic_load_n(&rcumaps_tls.nesting, __ATOMIC_RELAXED);
        if (__builtin_expect(depth == (unsigned int)-1, 0)) {
            /* The decrement borrowed from `slow_read`: undo it, so that until the process
             * stops no section takes the fast path the flag may forbid. */
            rcumaps_tls.read_gate++;
            rcumaps_section_underflow();
        } else if (depth == 0) {
            /* The outermost exit of a thread whose `slow_read` is set. */
            rcumaps_inline_read_unlock_slow();
        }
    }
}

#endif /* CRCUMAPS_INLINE_READ_SIDE_H */
