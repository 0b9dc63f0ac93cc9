/*
 * CRCUMapsShim implementation: thread registration, rculfhash wrappers,
 * ThreadSanitizer annotations, libnuma helpers.
 */
#define _GNU_SOURCE
#include "CRCUMapsShim.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <numa.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/mman.h>

/* ---------------------------------------------------------------------------
 * ThreadSanitizer
 * ------------------------------------------------------------------------- */
#if defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define RCUMAPS_TSAN 1
#  endif
#endif
#if defined(__SANITIZE_THREAD__)
#  define RCUMAPS_TSAN 1
#endif

#ifdef RCUMAPS_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
/* One sync object stands for "a grace period has elapsed": every reader
 * releases it when leaving a section, every reclaim callback acquires it. */
static char rcumaps_tsan_grace_sync;
const int rcumaps_tsan_enabled = 1;
void rcumaps_tsan_reader_exit(void) { __tsan_release(&rcumaps_tsan_grace_sync); }
void rcumaps_tsan_after_grace_period(void) { __tsan_acquire(&rcumaps_tsan_grace_sync); }
void rcumaps_tsan_publish(const void *addr) { __tsan_release((void *)addr); }
#  define RCUMAPS_TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
#else
const int rcumaps_tsan_enabled = 0;
void rcumaps_tsan_reader_exit(void) {}
void rcumaps_tsan_after_grace_period(void) {}
void rcumaps_tsan_publish(const void *addr) { (void)addr; }
#  define RCUMAPS_TSAN_ACQUIRE(addr) ((void)0)
#endif

/* ---------------------------------------------------------------------------
 * Thread registration
 * ------------------------------------------------------------------------- */

__thread rcumaps_thread_state_t rcumaps_tls __attribute__((tls_model("initial-exec")));
__thread rcumaps_callback_frames_t rcumaps_callback_frames __attribute__((tls_model("initial-exec")));

/* registered == 1: we registered this thread and must unregister it at exit.
 * registered == 2: liburcu registered it (call_rcu worker); we never unregister. */
enum { RCUMAPS_REGISTERED_BY_US = 1, RCUMAPS_REGISTERED_BY_LIBURCU = 2 };

static pthread_key_t rcumaps_exit_key;
static pthread_once_t rcumaps_exit_key_once = PTHREAD_ONCE_INIT;

/* Runs when a thread that we registered exits (pthread key destructor).
 * If a later destructor of another library enters a section again, the thread is
 * registered anew and the key re-armed, so this runs again in the next round
 * (glibc runs PTHREAD_DESTRUCTOR_ITERATIONS = 4 rounds). */
static void rcumaps_thread_exit(void *unused)
{
    (void)unused;
    if (rcumaps_tls.registered == RCUMAPS_REGISTERED_BY_US) {
        urcu_memb_unregister_thread();
        rcumaps_tls.registered = 0;
        rcumaps_tls.nesting = 0;
    }
}

static void rcumaps_make_exit_key(void)
{
    int err = pthread_key_create(&rcumaps_exit_key, rcumaps_thread_exit);
    if (err != 0) abort(); /* cannot guarantee unregistration: refuse to go on */
}

void rcumaps_register_current_thread(void)
{
    if (rcumaps_tls.registered) return;
    pthread_once(&rcumaps_exit_key_once, rcumaps_make_exit_key);
    urcu_memb_register_thread();
    rcumaps_tls.registered = RCUMAPS_REGISTERED_BY_US;
    /* Any non-NULL value makes the destructor run at thread exit. */
    if (pthread_setspecific(rcumaps_exit_key, (void *)1) != 0) abort();
}

void rcumaps_mark_thread_registered(void)
{
    if (!rcumaps_tls.registered) rcumaps_tls.registered = RCUMAPS_REGISTERED_BY_LIBURCU;
}

void rcumaps_epoch_enter(void) { rcumaps_read_lock(); }

/* How many unbalanced epoch_exit calls were refused (all threads). */
static unsigned long rcumaps_unbalanced_exits;

void rcumaps_epoch_exit(void)
{
    /* An exit with no matching enter would wrap the nesting counter to UINT_MAX: every
     * later section of this thread would then hold no read lock, and memory could be
     * freed under it. Refuse it: the thread's state stays as it was. */
    if (__builtin_expect(rcumaps_tls.nesting == 0, 0)) {
        unsigned long seen = __atomic_fetch_add(&rcumaps_unbalanced_exits, 1, __ATOMIC_RELAXED);
        if (seen < 8)
            fprintf(stderr, "rcumaps: epoch_exit() without a matching epoch_enter() on this thread: "
                            "ignored (a provider bug)%s\n",
                    seen == 7 ? "; further reports suppressed" : "");
        return;
    }
    rcumaps_read_unlock();
}

unsigned long rcumaps_unbalanced_exit_count(void)
{
    return __atomic_load_n(&rcumaps_unbalanced_exits, __ATOMIC_RELAXED);
}

void rcumaps_synchronize(void)
{
    rcumaps_ensure_registered();
    urcu_memb_synchronize_rcu();
}

void rcumaps_barrier(void)
{
    rcumaps_ensure_registered();
    urcu_memb_barrier();
}

void rcumaps_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head))
{
    rcumaps_ensure_registered();
    /* What the retiring thread did before retiring happens before the reclamation
     * (liburcu's queue hand-off is invisible to TSan). */
    rcumaps_tsan_reader_exit();
    urcu_memb_call_rcu(head, func);
}

/* ---------------------------------------------------------------------------
 * rculfhash
 * ------------------------------------------------------------------------- */

/* Match function: does the entry's key equal the looked-up key? */
static int rcumaps_lfht_match(struct cds_lfht_node *node, const void *key)
{
    const rcumaps_lfht_key_t *k = key;
    const rcumaps_lfht_entry_t *e = caa_container_of(node, rcumaps_lfht_entry_t, node);
    RCUMAPS_TSAN_ACQUIRE(e);
    if (k->size == 8) {
        uint64_t a, b;
        memcpy(&a, e->data, 8);
        memcpy(&b, k->bytes, 8);
        return a == b;
    }
    return memcmp(e->data, k->bytes, k->size) == 0;
}

static inline rcumaps_lfht_entry_t *entry_of(struct cds_lfht_node *node)
{
    if (!node) return NULL;
    rcumaps_lfht_entry_t *e = caa_container_of(node, rcumaps_lfht_entry_t, node);
    RCUMAPS_TSAN_ACQUIRE(e);
    return e;
}

struct cds_lfht *rcumaps_lfht_new(unsigned long init_size, unsigned long max_size)
{
    rcumaps_ensure_registered();
    return cds_lfht_new_flavor(init_size, 1, max_size,
                               CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                               &urcu_memb_flavor, NULL);
}

int rcumaps_lfht_destroy(struct cds_lfht *ht)
{
    rcumaps_ensure_registered();
    return cds_lfht_destroy(ht, NULL);
}

rcumaps_lfht_entry_t *rcumaps_lfht_lookup(struct cds_lfht *ht, unsigned long hash,
                                          const void *key, size_t key_size)
{
    struct cds_lfht_iter iter;
    rcumaps_lfht_key_t k = { key, key_size };
    cds_lfht_lookup(ht, hash, rcumaps_lfht_match, &k, &iter);
    return entry_of(cds_lfht_iter_get_node(&iter));
}

rcumaps_lfht_entry_t *rcumaps_lfht_add_unique(struct cds_lfht *ht, unsigned long hash,
                                              size_t key_size, rcumaps_lfht_entry_t *entry)
{
    rcumaps_lfht_key_t k = { entry->data, key_size };
    cds_lfht_node_init(&entry->node);
    struct cds_lfht_node *got = cds_lfht_add_unique(ht, hash, rcumaps_lfht_match, &k, &entry->node);
    return got == &entry->node ? entry : entry_of(got);
}

rcumaps_lfht_entry_t *rcumaps_lfht_add_replace(struct cds_lfht *ht, unsigned long hash,
                                               size_t key_size, rcumaps_lfht_entry_t *entry)
{
    rcumaps_lfht_key_t k = { entry->data, key_size };
    cds_lfht_node_init(&entry->node);
    return entry_of(cds_lfht_add_replace(ht, hash, rcumaps_lfht_match, &k, &entry->node));
}

int rcumaps_lfht_replace(struct cds_lfht *ht, unsigned long hash, size_t key_size,
                         rcumaps_lfht_entry_t *old_entry, rcumaps_lfht_entry_t *new_entry)
{
    struct cds_lfht_iter iter;
    rcumaps_lfht_key_t k = { new_entry->data, key_size };
    /* Rebuild the iterator a lookup would have produced for old_entry. */
    iter.node = &old_entry->node;
    iter.next = CMM_LOAD_SHARED(old_entry->node.next);
    cds_lfht_node_init(&new_entry->node);
    return cds_lfht_replace(ht, &iter, hash, rcumaps_lfht_match, &k, &new_entry->node);
}

int rcumaps_lfht_del(struct cds_lfht *ht, rcumaps_lfht_entry_t *entry)
{
    return cds_lfht_del(ht, &entry->node);
}

rcumaps_lfht_entry_t *rcumaps_lfht_first(struct cds_lfht *ht)
{
    struct cds_lfht_iter iter;
    cds_lfht_first(ht, &iter);
    return entry_of(cds_lfht_iter_get_node(&iter));
}

rcumaps_lfht_entry_t *rcumaps_lfht_next(struct cds_lfht *ht, rcumaps_lfht_entry_t *entry)
{
    struct cds_lfht_iter iter;
    iter.node = &entry->node;
    iter.next = CMM_LOAD_SHARED(entry->node.next);
    cds_lfht_next(ht, &iter);
    return entry_of(cds_lfht_iter_get_node(&iter));
}

unsigned long rcumaps_lfht_entry_order(const rcumaps_lfht_entry_t *entry)
{
    return entry->node.reverse_hash;
}

unsigned long rcumaps_lfht_order_of_hash(unsigned long hash)
{
    /* Same bit reversal rculfhash applies to a node's hash. */
    unsigned long v = hash, r = 0;
    for (unsigned i = 0; i < sizeof(unsigned long) * 8; i++) {
        r = (r << 1) | (v & 1);
        v >>= 1;
    }
    return r;
}

/* ---------------------------------------------------------------------------
 * libnuma
 * ------------------------------------------------------------------------- */

int rcumaps_numa_node_count(void)
{
    if (numa_available() < 0) return 1;
    int max = numa_max_node();
    return max >= 0 ? max + 1 : 1;
}

int rcumaps_current_cpu(void)
{
    int cpu = sched_getcpu();
    return cpu >= 0 ? cpu : 0;
}

int rcumaps_numa_current_node(void)
{
    if (numa_available() < 0) return 0;
    int node = numa_node_of_cpu(rcumaps_current_cpu());
    return node >= 0 ? node : 0;
}

void *rcumaps_numa_alloc_onnode(size_t size, int node)
{
    if (numa_available() < 0) return NULL;
    return numa_alloc_onnode(size, node);
}

void rcumaps_numa_free(void *ptr, size_t size)
{
    numa_free(ptr, size);
}

/* ---------------------------------------------------------------------------
 * Futex
 * ------------------------------------------------------------------------- */

void rcumaps_futex_wait(void *addr, uint32_t expected)
{
    (void)syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void rcumaps_futex_wake(void *addr, int count)
{
    (void)syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

/* ---------------------------------------------------------------------------
 * Transparent huge pages
 * ------------------------------------------------------------------------- */

void rcumaps_advise_huge_pages(void *addr, size_t size)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (size < 2 * huge) return;
    uintptr_t start = ((uintptr_t)addr + huge - 1) & ~(huge - 1);
    uintptr_t end = ((uintptr_t)addr + size) & ~(huge - 1);
    if (end > start) (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)addr;
    (void)size;
#endif
}
