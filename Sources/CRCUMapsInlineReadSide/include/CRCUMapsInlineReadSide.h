/*
 * CRCUMapsInlineReadSide — the read-side fast path with liburcu's own inline
 * read lock and unlock (compiled with _LGPL_SOURCE). Selected by the package
 * trait `InlineReadSide`, which is on by default.
 *
 * Licence: only liburcu's read-side functions are compiled into the caller:
 * `_urcu_memb_read_lock`, `_urcu_memb_read_unlock` and their helpers
 * (urcu/static/urcu-memb.h, urcu/static/urcu-common.h). Each is under ten
 * lines; liburcu's header states that they "are intended to be usable by
 * non-LGPL code, as called out in LGPL" (LGPL-2.1 section 5: small inline
 * functions of ten lines or less). Nothing else of liburcu is inlined: the
 * grace-period, call_rcu and hash-table code stay calls into the shared
 * libraries. See README, "Licence and the read-side trait". Building without
 * the trait (`--disable-default-traits`) uses CRCUMapsShim's call-only path.
 *
 * The header must be compiled against the liburcu headers of the installed
 * library's major version (it always is: pkg-config finds both).
 *
 * This header deliberately includes no other RCUMaps header: urcu-memb.h must
 * be read here with _LGPL_SOURCE defined, which an earlier include of it
 * (through CRCUMapsShim) would prevent. The per-thread state below is the same
 * object as in CRCUMapsShim.h (same layout, defined in shim.c).
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
} rcumaps_inline_thread_state_t;

/* The same TLS object as CRCUMapsShim's rcumaps_tls, viewed with this layout (a prefix
 * of CRCUMapsShim's: its later fields are not touched here). */
extern __thread rcumaps_inline_thread_state_t rcumaps_tls __asm__("rcumaps_tls")
    __attribute__((tls_model("initial-exec")));
void rcumaps_register_current_thread(void);
void rcumaps_tsan_reader_exit(void);
void rcumaps_section_underflow(void) __attribute__((noreturn, cold));
extern const int rcumaps_tsan_enabled;

/* Inlined `_urcu_memb_read_lock`, registering the thread first if needed. */
static inline __attribute__((always_inline)) void rcumaps_inline_read_lock(void)
{
    /* Only the outermost section calls liburcu: it covers the nested ones. */
    if (rcumaps_tls.nesting++ == 0) {
        if (__builtin_expect(!rcumaps_tls.registered, 0))
            rcumaps_register_current_thread();
        urcu_memb_read_lock();
    }
}

/* Leaves a read-side critical section; the outermost exit is inlined `_urcu_memb_read_unlock`.
 * Leaving one more time than entered stops the program (`rcumaps_section_underflow`,
 * checked on the nested branch only). */
static inline __attribute__((always_inline)) void rcumaps_inline_read_unlock(void)
{
    /* (The nested branch reads the depth again, with an atomic load the compiler does not
     * fold into the decrement: the outermost exit stays one `dec` in memory and a branch.) */
    if (--rcumaps_tls.nesting == 0) {
        /* TSan: release before unlocking, so that every access of the section is ordered
         * before the reclamation that the end of the section may allow. */
        if (__builtin_expect(rcumaps_tsan_enabled, 0))
            rcumaps_tsan_reader_exit();
        urcu_memb_read_unlock();
    } else if (__builtin_expect(__atomic_load_n(&rcumaps_tls.nesting, __ATOMIC_RELAXED) == (unsigned int)-1, 0)) {
        rcumaps_section_underflow();
    }
}

#endif /* CRCUMAPS_INLINE_READ_SIDE_H */
