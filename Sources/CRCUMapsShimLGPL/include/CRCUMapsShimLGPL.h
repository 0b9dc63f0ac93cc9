/*
 * CRCUMapsShimLGPL — the read-side fast path with liburcu's inline
 * implementation (_LGPL_SOURCE). Selected by the package trait `LGPLInline`.
 *
 * Licence: with _LGPL_SOURCE, liburcu's LGPL-2.1 inline functions are
 * compiled into the calling code. Only enable the trait if your licence
 * allows that (see README, "Licence and the LGPL trait").
 *
 * This header deliberately includes no other RCUMaps header: urcu-memb.h must
 * be read here with _LGPL_SOURCE defined, which an earlier, non-LGPL include
 * of it (through CRCUMapsShim) would prevent. The per-thread state below is
 * the same object as in CRCUMapsShim.h (same layout, defined in shim.c).
 */
#ifndef CRCUMAPS_SHIM_LGPL_H
#define CRCUMAPS_SHIM_LGPL_H

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1
#endif
#include <urcu/urcu-memb.h>

typedef struct rcumaps_lgpl_thread_state {
    unsigned int registered;
    unsigned int nesting;
} rcumaps_lgpl_thread_state_t;

/* The same TLS object as CRCUMapsShim's rcumaps_tls, viewed with this layout. */
extern __thread rcumaps_lgpl_thread_state_t rcumaps_tls __asm__("rcumaps_tls")
    __attribute__((tls_model("initial-exec")));
void rcumaps_register_current_thread(void);
void rcumaps_tsan_reader_exit(void);
extern const int rcumaps_tsan_enabled;

/* Inlined `_urcu_memb_read_lock`, registering the thread first if needed. */
static inline __attribute__((always_inline)) void rcumaps_lgpl_read_lock(void)
{
    /* Only the outermost section calls liburcu: it covers the nested ones. */
    if (rcumaps_tls.nesting++ == 0) {
        if (__builtin_expect(!rcumaps_tls.registered, 0))
            rcumaps_register_current_thread();
        urcu_memb_read_lock();
    }
}

/* Leaves a read-side critical section; the outermost exit wraps `urcu_memb_read_unlock`. */
static inline __attribute__((always_inline)) void rcumaps_lgpl_read_unlock(void)
{
    if (--rcumaps_tls.nesting == 0) {
        /* TSan: release before unlocking, so that every access of the section is ordered
         * before the reclamation that the end of the section may allow. */
        if (__builtin_expect(rcumaps_tsan_enabled, 0))
            rcumaps_tsan_reader_exit();
        urcu_memb_read_unlock();
    }
}

#endif /* CRCUMAPS_SHIM_LGPL_H */
