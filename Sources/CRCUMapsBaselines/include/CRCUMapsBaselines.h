/*
 * Baselines for `rcumaps bench` and the Benchmarks package, written in C so that
 * they measure what a C programmer would get, with no Swift layer in between:
 *
 *  - raw liburcu rculfhash (memb flavour, same library build as RCUMaps, read
 *    lock inlined with _LGPL_SOURCE as in RCUMaps' default build): one read-side
 *    section + cds_lfht_lookup per operation;
 *  - an unsynchronised open-addressing table (linear probing, load <= 1/2): the
 *    floor under any hash lookup.
 *
 * Keys and values are 8 bytes. Key 0 is reserved (empty slot) in the open-addressing
 * table. Not part of the RCUMaps library.
 *
 * The two lookups are `static inline` here, so that a Swift caller compiles them into
 * its loop exactly as it inlines RCUMaps' @inlinable lookups: both sides of a ratio pay
 * the same call overhead (none). Writers stay out of line in baselines.c.
 */
#ifndef CRCUMAPS_BASELINES_H
#define CRCUMAPS_BASELINES_H

/* First: reads urcu-memb.h with _LGPL_SOURCE (liburcu's inline read lock and unlock,
 * as RCUMaps' default build) and declares RCUMaps' per-thread registration state. */
#include "CRCUMapsInlineReadSide.h"
#include <urcu/rculfhash.h>
#include <stddef.h>
#include <stdint.h>

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
static inline int rcumaps_baseline_lfht_lookup(rcumaps_baseline_lfht_t *table, uint64_t key, uint64_t *value)
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

#endif
