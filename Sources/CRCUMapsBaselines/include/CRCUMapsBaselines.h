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
 */
#ifndef CRCUMAPS_BASELINES_H
#define CRCUMAPS_BASELINES_H

#include <stddef.h>
#include <stdint.h>

typedef struct rcumaps_baseline_lfht rcumaps_baseline_lfht_t;
typedef struct rcumaps_baseline_oa rcumaps_baseline_oa_t;

/* rculfhash with room for `capacity` entries (auto-resizing). NULL on failure. */
rcumaps_baseline_lfht_t *rcumaps_baseline_lfht_create(size_t capacity);
/* Inserts or replaces; 0 on success. */
int rcumaps_baseline_lfht_insert(rcumaps_baseline_lfht_t *table, uint64_t key, uint64_t value);
/* One operation: read lock, lookup, copy the value out, read unlock. 1 if found. */
int rcumaps_baseline_lfht_lookup(rcumaps_baseline_lfht_t *table, uint64_t key, uint64_t *value);
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
int rcumaps_baseline_oa_lookup(const rcumaps_baseline_oa_t *table, uint64_t key, uint64_t *value);
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
