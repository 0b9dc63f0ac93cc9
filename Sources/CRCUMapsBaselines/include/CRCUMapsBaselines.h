/*
 * Baselines for `rcumaps bench` and the Benchmarks package, written in C so that
 * they measure what a C programmer would get, with no Swift layer in between:
 *
 *  - raw liburcu rculfhash (memb flavour, same library build as RCUMaps, read
 *    lock inlined with _LGPL_SOURCE as in RCUMaps' default build): one read-side
 *    section + cds_lfht_lookup per operation;
 *  - an unsynchronised open-addressing table (linear probing, load <= 1/2): the
 *    floor under any hash lookup;
 *  - the same table behind one pthread reader-writer lock, with inserts and deletes
 *    (backward-shift deletion, no tombstones): the single-lock open-addressing peer of
 *    issue 13's field, what a C programmer writes when a lock is good enough;
 *  - liburcu's wfcqueue (wait-free enqueue, dequeue under the queue's own mutex)
 *    and lfstack (lock-free push, pop under the stack's own mutex): the peers of
 *    RCUMaps' QUEUE and STACK maps, one malloc'd node per push, freed after its pop.
 *
 * Keys and values are 8 bytes. Key 0 is reserved (empty slot) in the open-addressing
 * table. Not part of the RCUMaps library.
 *
 * The two lookups are `static inline` here, so that a Swift caller compiles them into
 * its loop exactly as it inlines RCUMaps' @inlinable lookups: both sides of a ratio pay
 * the same call overhead (none). Writers stay out of line in baselines.c. The queue and
 * stack pushes and pops are `static inline` too, with liburcu's own inline wfcqueue and
 * lfstack code (_LGPL_SOURCE, defined by the first include): what a C user of liburcu
 * compiles into a loop. That LGPL code is compiled into the rcumaps tool (and the
 * Benchmarks package) only; no library product of RCUMaps includes this target.
 */
#ifndef CRCUMAPS_BASELINES_H
#define CRCUMAPS_BASELINES_H

/* First: reads urcu-memb.h with _LGPL_SOURCE (liburcu's inline read lock and unlock,
 * as RCUMaps' default build) and declares RCUMaps' per-thread registration state. */
#include "CRCUMapsInlineReadSide.h"
#include <urcu/rculfhash.h>
#include <urcu/wfcqueue.h>
#include <urcu/lfstack.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct rcumaps_baseline_lfht rcumaps_baseline_lfht_t;
typedef struct rcumaps_baseline_oa rcumaps_baseline_oa_t;

/* Baseline threads share RCUMaps' lazy registration (a thread registered twice would
 * corrupt liburcu's registry): the same TLS test RCUMaps pays before a section. */
static inline void rcumaps_baseline_ensure_registered(void)
{
    if (__builtin_expect(!rcumaps_tls.registered, 0))
        rcumaps_register_current_thread();
}

/* A strong 64-bit mix (splitmix64 finaliser): what a C user would reach for. */
static inline uint64_t rcumaps_baseline_mix64(uint64_t x)
{
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

struct rcumaps_baseline_lfht_node {
    struct cds_lfht_node lfht;
    struct rcu_head rcu;
    uint64_t key;
    uint64_t value;
};

struct rcumaps_baseline_lfht { struct cds_lfht *ht; };

/* rculfhash's key comparison callback for these nodes (key: a const uint64_t *). */
int rcumaps_baseline_lfht_match(struct cds_lfht_node *node, const void *key);

struct rcumaps_baseline_oa_slot { uint64_t key; uint64_t value; };
struct rcumaps_baseline_oa { struct rcumaps_baseline_oa_slot *slots; size_t mask; };

/* rculfhash with room for `capacity` entries (auto-resizing). NULL on failure. */
rcumaps_baseline_lfht_t *rcumaps_baseline_lfht_create(size_t capacity);
/* Inserts or replaces; 0 on success. */
int rcumaps_baseline_lfht_insert(rcumaps_baseline_lfht_t *table, uint64_t key, uint64_t value);
/* One operation: read lock, lookup, copy the value out, read unlock. 1 if found. */
/* (always_inline: `static inline` alone left it out of line in the bench loop, a call and a
 * frame the inlined maps it is compared with do not pay; found by review, 2026-12-05.) */
static inline __attribute__((always_inline)) int rcumaps_baseline_lfht_lookup(rcumaps_baseline_lfht_t *table, uint64_t key,
                                                                              uint64_t *value)
{
    struct cds_lfht_iter iter;
    int found = 0;
    rcumaps_baseline_ensure_registered();
    urcu_memb_read_lock();
    cds_lfht_lookup(table->ht, rcumaps_baseline_mix64(key), rcumaps_baseline_lfht_match, &key, &iter);
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&iter);
    if (node) {
        *value = caa_container_of(node, struct rcumaps_baseline_lfht_node, lfht)->value;
        found = 1;
    }
    urcu_memb_read_unlock();
    return found;
}
/* Replaces the value of an existing key (new node, old one freed after a grace period). */
int rcumaps_baseline_lfht_update(rcumaps_baseline_lfht_t *table, uint64_t key, uint64_t value);
/* Inserts if absent (cds_lfht_add_unique): 1 inserted, 0 present, -1 no memory. */
int rcumaps_baseline_lfht_insert_unique(rcumaps_baseline_lfht_t *table, uint64_t key, uint64_t value);
/* Deletes (cds_lfht_del, node freed after a grace period): 1 deleted, 0 absent. */
int rcumaps_baseline_lfht_delete(rcumaps_baseline_lfht_t *table, uint64_t key);
void rcumaps_baseline_lfht_destroy(rcumaps_baseline_lfht_t *table);

/* Open addressing sized for `capacity` keys at load <= 1/2. NULL on failure. */
rcumaps_baseline_oa_t *rcumaps_baseline_oa_create(size_t capacity);
int rcumaps_baseline_oa_insert(rcumaps_baseline_oa_t *table, uint64_t key, uint64_t value);
/* 1 if found. Not thread-safe against writers (readers only). */
static inline int rcumaps_baseline_oa_lookup(const rcumaps_baseline_oa_t *table, uint64_t key, uint64_t *value)
{
    for (size_t index = rcumaps_baseline_mix64(key) & table->mask;; index = (index + 1) & table->mask) {
        uint64_t found = table->slots[index].key;
        if (found == key) { *value = table->slots[index].value; return 1; }
        if (found == 0) return 0;
    }
}
void rcumaps_baseline_oa_destroy(rcumaps_baseline_oa_t *table);

/* ------------------------------------------------ open addressing behind a rwlock */

/* The open-addressing table above behind one `pthread_rwlock_t`: lookups share the read
 * lock, writers take it exclusively. At most `capacity` keys (load <= 1/2); deletes shift
 * the keys after the hole back (linear probing without tombstones), so probe sequences
 * stay as short after churn as after a fill. */
typedef struct rcumaps_baseline_rwoa {
    pthread_rwlock_t lock;
    struct rcumaps_baseline_oa table;
    size_t count;
    size_t capacity;
} rcumaps_baseline_rwoa_t;

/* Room for `capacity` keys. NULL on failure. */
rcumaps_baseline_rwoa_t *rcumaps_baseline_rwoa_create(size_t capacity);
/* Inserts if absent: 1 inserted, 0 present, -1 full (or key 0, which is reserved). */
int rcumaps_baseline_rwoa_insert_unique(rcumaps_baseline_rwoa_t *table, uint64_t key, uint64_t value);
/* Replaces the value of an existing key: 0 replaced, -1 absent. */
int rcumaps_baseline_rwoa_update(rcumaps_baseline_rwoa_t *table, uint64_t key, uint64_t value);
/* Deletes: 1 deleted, 0 absent. */
int rcumaps_baseline_rwoa_delete(rcumaps_baseline_rwoa_t *table, uint64_t key);
/* Keys in the table (under the read lock). */
size_t rcumaps_baseline_rwoa_count(rcumaps_baseline_rwoa_t *table);
void rcumaps_baseline_rwoa_destroy(rcumaps_baseline_rwoa_t *table);
/* One operation: read lock, probe, copy the value out, unlock. 1 if found. */
static inline int rcumaps_baseline_rwoa_lookup(rcumaps_baseline_rwoa_t *table, uint64_t key, uint64_t *value)
{
    pthread_rwlock_rdlock(&table->lock);
    int found = key != 0 && rcumaps_baseline_oa_lookup(&table->table, key, value);
    pthread_rwlock_unlock(&table->lock);
    return found;
}

/* ------------------------------------------------------------- wfcqueue */

struct rcumaps_baseline_wfcq_node {
    struct cds_wfcq_node node;
    uint64_t value;
};

/* Head and tail on cache lines of their own (wfcqueue.h: no false sharing between
 * enqueuers and dequeuers): each padded to 64 bytes, the whole allocated 64-byte aligned
 * by the create function. (Padding, not an aligned attribute: Swift does not import
 * over-aligned C structs.) */
typedef struct rcumaps_baseline_wfcq {
    union { struct cds_wfcq_head head; char head_line[64]; };
    union { struct cds_wfcq_tail tail; char tail_line[64]; };
} rcumaps_baseline_wfcq_t;
_Static_assert(sizeof(struct cds_wfcq_head) <= 64 && sizeof(struct cds_wfcq_tail) <= 64,
               "wfcqueue head or tail larger than a cache line");

/* An empty queue. NULL on failure. */
rcumaps_baseline_wfcq_t *rcumaps_baseline_wfcq_create(void);
/* Frees every node left and the queue. No other thread may use it any more. */
void rcumaps_baseline_wfcq_destroy(rcumaps_baseline_wfcq_t *queue);

/* Enqueues `value` in a new node (wait-free). 0 on success, -1 without memory.
 * Any thread, concurrently with every other push and pop. */
static inline int rcumaps_baseline_wfcq_push(rcumaps_baseline_wfcq_t *queue, uint64_t value)
{
    struct rcumaps_baseline_wfcq_node *node = malloc(sizeof *node);
    if (!node) return -1;
    cds_wfcq_node_init(&node->node);
    node->value = value;
    cds_wfcq_enqueue(&queue->head, &queue->tail, &node->node);
    return 0;
}

/* Dequeues the oldest value into `*value` and frees its node: 1, or 0 when empty.
 * cds_wfcq_dequeue_blocking takes the queue's dequeue mutex (wfcqueue's rule for several
 * dequeuers) and waits for an enqueue in progress to link its node, so the node it returns
 * is referenced by nobody and is freed at once (no grace period needed). */
static inline int rcumaps_baseline_wfcq_pop(rcumaps_baseline_wfcq_t *queue, uint64_t *value)
{
    struct cds_wfcq_node *node = cds_wfcq_dequeue_blocking(&queue->head, &queue->tail);
    if (!node) return 0;
    struct rcumaps_baseline_wfcq_node *entry = caa_container_of(node, struct rcumaps_baseline_wfcq_node, node);
    *value = entry->value;
    free(entry);
    return 1;
}

/* -------------------------------------------------------------- lfstack */

struct rcumaps_baseline_lfs_node {
    struct cds_lfs_node node;
    uint64_t value;
};

/* Allocated 64-byte aligned by the create function: the head on a cache line of its own. */
typedef struct rcumaps_baseline_lfs {
    union { struct cds_lfs_stack stack; char line[64]; };
} rcumaps_baseline_lfs_t;

/* An empty stack. NULL on failure. */
rcumaps_baseline_lfs_t *rcumaps_baseline_lfs_create(void);
/* Frees every node left and the stack. No other thread may use it any more. */
void rcumaps_baseline_lfs_destroy(rcumaps_baseline_lfs_t *stack);

/* Pushes `value` in a new node (lock-free). 0 on success, -1 without memory. Any thread. */
static inline int rcumaps_baseline_lfs_push(rcumaps_baseline_lfs_t *stack, uint64_t value)
{
    struct rcumaps_baseline_lfs_node *node = malloc(sizeof *node);
    if (!node) return -1;
    cds_lfs_node_init(&node->node);
    node->value = value;
    cds_lfs_push(&stack->stack, &node->node);
    return 0;
}

/* Pops the newest value into `*value` and frees its node: 1, or 0 when empty.
 * cds_lfs_pop_blocking takes the stack's pop mutex (lfstack.h's second way for several
 * poppers), so no other popper can still be reading the node: it is freed at once. (The
 * first way, __cds_lfs_pop in a read-side section with each node freed through call_rcu,
 * is lock-free but measured 7x slower here: a call_rcu per pop; docs/performance.md.) */
static inline int rcumaps_baseline_lfs_pop(rcumaps_baseline_lfs_t *stack, uint64_t *value)
{
    struct cds_lfs_node *node = cds_lfs_pop_blocking(&stack->stack);
    if (!node) return 0;
    struct rcumaps_baseline_lfs_node *entry = caa_container_of(node, struct rcumaps_baseline_lfs_node, node);
    *value = entry->value;
    free(entry);
    return 1;
}

/* For `rcumaps memory`: glibc's heap bytes in use, `mallinfo2()`'s uordblks + hblkhd
 * (chunks of every arena, headers included, plus blocks malloc mmapped on its own);
 * -1 when the C library has no mallinfo2 (not glibc, or glibc < 2.33). */
long long rcumaps_heap_bytes_in_use(void);
/* 1 when a 1 MiB malloc shows in rcumaps_heap_bytes_in_use (0 under a sanitizer, whose
 * allocator replaces malloc, or without mallinfo2). */
int rcumaps_heap_figures_see_malloc(void);
/* `malloc_trim(0)`: hands free heap pages back, so resident figures count pages in use.
 * Returns 0 when the C library has no malloc_trim. */
int rcumaps_heap_trim(void);

/* ------------------------------------------------------------- LPM Patricia trie */

/* The peer of RCUMaps' LPM_TRIE lookups: a binary Patricia trie with Linux's algorithm
 * (kernel/bpf/lpm_trie.c): one node per stored prefix plus intermediate nodes where two
 * branches part, one bit decided per node, path-compressed; a lookup walks from the root,
 * compares the node's prefix with the key a word at a time, remembers the last
 * non-intermediate node that matched, and descends by the key's next bit. Written for the
 * benchmark from the algorithm's description, not copied. Writers are single-threaded (the
 * benchmark fills it before it measures); lookups take no read-side section, as nothing
 * changes while they run — which only favours the baseline. */
typedef struct rcumaps_baseline_lpm rcumaps_baseline_lpm_t;

/* An empty trie for keys of `data_size` bytes (1...256); NULL without memory. */
rcumaps_baseline_lpm_t *rcumaps_baseline_lpm_create(size_t data_size);
/* Stores `value` under the prefix (`prefix_len` bits of `data`), replacing a stored one.
 * Returns 0, or -1 (prefix too long, no memory). */
int rcumaps_baseline_lpm_insert(rcumaps_baseline_lpm_t *trie, uint32_t prefix_len, const uint8_t *data,
                                uint64_t value);
/* Longest-prefix match of all of `data`'s bits: 1 and the value in `*value`, or 0. */
int rcumaps_baseline_lpm_lookup(const rcumaps_baseline_lpm_t *trie, const uint8_t *data, uint64_t *value);
void rcumaps_baseline_lpm_destroy(rcumaps_baseline_lpm_t *trie);

#endif
